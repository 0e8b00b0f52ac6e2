//! `shoal images`: list, add, remove, precompile, pull and push images of the
//! content-addressed store; and `shoal pull` for a compose file's registry images.

use std::process::ExitCode;

use super::args::{ImagesArgs, ImagesCommand, PullArgs};
use super::compile;
use crate::control::cmd::print::{header, human_bytes, print_table};
use crate::images::ImageStore;
use crate::registry;
use crate::runtime::RuntimeConfig;
use crate::spec;

pub(super) fn images_command(
    images: &ImageStore,
    runtime_config: &RuntimeConfig,
    args: ImagesArgs,
) -> anyhow::Result<ExitCode> {
    match args.command.unwrap_or(ImagesCommand::Ls) {
        ImagesCommand::Ls => {
            let mut table = vec![header(&["SHA-256", "SIZE", "NAME"])];
            for image in images.list()? {
                table.push(vec![image.digest.to_string(), human_bytes(image.size), image.name]);
            }
            print_table(&table);
            let refs = images.references();
            if !refs.is_empty() {
                println!();
                let mut table = vec![header(&["REGISTRY DIGEST", "IMAGE", "PLATFORM", "REFERENCE"])];
                for r in refs {
                    table.push(vec![
                        r.pinned.to_string(),
                        r.digest.short().to_string(),
                        r.platform.to_string(),
                        r.reference.to_string(),
                    ]);
                }
                print_table(&table);
            }
        }
        ImagesCommand::Add { files } => {
            if files.is_empty() {
                anyhow::bail!("`shoal images add` needs at least one .wasm file");
            }
            for file in files {
                let image = images.add(&file)?;
                println!("sha256:{} {}", image.digest, image.name);
            }
        }
        ImagesCommand::Compile(args) => compile::compile(runtime_config, args)?,
        ImagesCommand::Rm { images: refs, force } => {
            if refs.is_empty() {
                anyhow::bail!("`shoal images rm` needs a digest prefix or name");
            }
            // Every image is checked before any is removed: a refusal leaves the store as it was.
            if !force {
                for reference in &refs {
                    refuse_if_needed(images, reference)?;
                }
            }
            for reference in refs {
                let image = images.remove(&reference)?;
                println!("removed sha256:{} {}", image.digest, image.name);
            }
        }
        ImagesCommand::Pull { references } => {
            for reference in references {
                print_pulled(&registry::pull(images, &reference)?);
            }
        }
        ImagesCommand::Push {
            file,
            reference,
            platforms,
        } => {
            let compiled = compile_platforms(runtime_config, &file, &platforms)?;
            let pinned = registry::push(&file, &reference, &compiled)?;
            let name = reference.split_once('@').map_or(reference.as_str(), |(n, _)| n);
            println!("pushed {name}@{pinned}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Fail, naming who and the fix, when `reference`'s image is still needed: by a container of
/// a running stack (its control socket's `ps`), or by the last good state a fleet agent
/// journalled (what the board runs at its next boot, perhaps without its registry).
fn refuse_if_needed(images: &ImageStore, reference: &str) -> anyhow::Result<()> {
    let image = images.find(reference)?;
    let mut users = Vec::new();
    let mut projects = Vec::new();
    for project in crate::control::running_projects() {
        let rows =
            crate::control::Client::for_project(&project).and_then(|client| crate::control::cmd::ps::rows(&client));
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!("project {project} did not say what it runs: {e}");
                continue;
            }
        };
        let using: Vec<String> = rows
            .into_iter()
            .filter(|row| !row.image.is_empty() && image.digest.starts_with(&row.image))
            .map(|row| row.name)
            .collect();
        if !using.is_empty() {
            users.push(format!(
                "container {} of the running project {project}",
                using.join(", ")
            ));
            projects.push(project);
        }
    }
    // The registry digests this image was pulled as: a journal pins images by those.
    let pinned: Vec<String> = images
        .references()
        .into_iter()
        .filter(|r| r.digest.hex() == image.digest)
        .map(|r| r.pinned.to_string())
        .collect();
    let mut journalled = false;
    for dir in crate::fleet::agent::journal::registered(images.root()) {
        let Some(good) = crate::fleet::agent::journal::last_good(&dir) else {
            continue;
        };
        for (name, digest) in good.pinned_images() {
            if pinned.contains(&digest) {
                journalled = true;
                users.push(format!(
                    "{name} in the last good state {} of the fleet agent whose journal is {}",
                    good.state_id,
                    dir.join(crate::fleet::agent::journal::FILE).display()
                ));
            }
        }
    }
    if users.is_empty() {
        return Ok(());
    }
    let mut fixes = Vec::new();
    if !projects.is_empty() {
        let downs: Vec<String> = projects.iter().map(|p| format!("`shoal down -p {p}`")).collect();
        fixes.push(format!("stop the stack first ({})", downs.join(", ")));
    }
    if journalled {
        fixes.push("deploy a revision without it and let it pass its health window".to_owned());
    }
    fixes.push(format!("or remove it anyway: `shoal images rm --force {reference}`"));
    anyhow::bail!(
        "image sha256:{} ({}) is still needed:\n{}\n  hint: {}",
        image.digest,
        image.name,
        users.iter().map(|u| format!("  - {u}")).collect::<Vec<_>>().join("\n"),
        fixes.join("; ")
    )
}

fn print_pulled(pulled: &crate::images::refs::PulledRef) {
    println!(
        "pulled {} ({}) -> {} {}",
        pulled.reference,
        pulled.pinned,
        pulled.digest,
        if pulled.platform == "wasm" {
            ".wasm"
        } else {
            pulled.platform.as_str()
        }
    );
}

/// The `.cwasm` of `file` for each `--platform`, made as `shoal images compile --target`
/// makes them (same engine settings as this shoal's runtime).
#[cfg(feature = "compiler")]
fn compile_platforms(
    runtime: &RuntimeConfig,
    file: &std::path::Path,
    platforms: &[String],
) -> anyhow::Result<Vec<registry::Platform>> {
    let mut compiled = Vec::new();
    for platform in platforms {
        let target = registry::Platform::target_of(platform).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown platform `{platform}`\n  hint: give `linux/arm64`, `linux/amd64`, `linux/riscv64` or `linux/s390x`"
            )
        })?;
        let compiler = crate::images::precompiled::CrossCompiler::new(crate::runtime::engine_config(runtime), target)?;
        compiled.push(registry::Platform {
            platform: platform.clone(),
            target: target.to_string(),
            cwasm: compiler.compile(file)?,
        });
    }
    Ok(compiled)
}

#[cfg(not(feature = "compiler"))]
fn compile_platforms(
    _runtime: &RuntimeConfig,
    _file: &std::path::Path,
    platforms: &[String],
) -> anyhow::Result<Vec<registry::Platform>> {
    if !platforms.is_empty() {
        anyhow::bail!(
            "this shoal has no compiler, so it cannot make the .cwasm for --platform\n  hint: push from the full shoal"
        );
    }
    Ok(Vec::new())
}

/// `shoal pull`: load the compose file with a resolver that pulls each registry image (so
/// the file's own errors come out as `config` shows them), then report.
pub(super) fn pull_compose(images: &ImageStore, args: PullArgs) -> anyhow::Result<ExitCode> {
    let input = args.file.compose_files(args.positional.as_deref())?;
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let lookup = |digest: &spec::ImageDigest| images.path_of(digest);
    let pull = |reference: &str| match registry::pull(images, reference) {
        Ok(pulled) => {
            print_pulled(&pulled);
            Ok(pulled.into())
        }
        Err(e) => Err(format!("cannot pull {reference}: {e}")),
    };
    let options = spec::LoadOptions {
        env: &env,
        lookup_digest: &lookup,
        resolve_reference: &pull,
    };
    match spec::load_files(&input, &options) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(diagnostics) => {
            eprint!("{}", spec::render_diagnostics(&diagnostics));
            Ok(ExitCode::from(1))
        }
    }
}
