//! `shoal schema`, `shoal version`, `shoal man DIR`, and the hints for `exec` and `watch`.

use std::path::Path;
use std::process::ExitCode;

/// `--version` and `shoal version`: what a bug report needs (which commit, which target,
/// the lean build or the one with the compiler, which wasmtime).
pub(super) const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("SHOAL_GIT_COMMIT"),
    "\ntarget: ",
    env!("SHOAL_HOST_TARGET"),
    "\nfeatures: ",
    env!("SHOAL_FEATURES"),
    "\nwasmtime: ",
    env!("SHOAL_WASMTIME_VERSION"),
);

pub(super) fn version() -> anyhow::Result<ExitCode> {
    println!("shoal {LONG_VERSION}");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn schema() -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(&crate::spec::schema::json_schema())?);
    Ok(ExitCode::SUCCESS)
}

/// One page per command and subcommand (`shoal-images-add.1`), as `git` ships them.
pub(super) fn man(dir: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let command = <super::Cli as clap::CommandFactory>::command();
    clap_mangen::generate_to(command, dir)
        .map_err(|e| anyhow::anyhow!("cannot write man pages to {}: {e}", dir.display()))?;
    let pages = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "1"))
        .count();
    println!("{pages} man pages in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// A command compose users type that shoal does not have: exit 2 (a usage error) with
/// what to use instead.
pub(super) fn hint(command: &str, instead: &str) -> anyhow::Result<ExitCode> {
    eprintln!("error: shoal has no `{command}` command\n  hint: {instead}");
    Ok(ExitCode::from(2))
}
