//! The compose file: parse, interpolate, validate. No wasmtime, no tokio.
//!
//! Pipeline: text -> [`node::parse`] (spanned tree; only YAML syntax errors stop here) ->
//! [`interpolate`] (`${VAR}` in string values) -> [`decode`] (per-field checks) ->
//! [`validate`] (images, dependencies, cycles, replicas, start order) -> [`Stack`].
//! Every stage collects diagnostics instead of stopping, so one run shows every mistake.
//!
//! Choices worth knowing (each also explained where it is made):
//! - Docker Compose keys shoal lacks (`ports`, `volumes`, `build`, ...) get a specific message
//!   and hint from one table, [`decode::DOCKER_KEYS`]; `version` is a warning, not an error.
//! - `restart: unless-stopped` is an error with a hint to use `always` (no daemon outlives
//!   the stack, so the two would be the same; refusing keeps files honest).
//! - `env: {KEY: }` (no value) is an empty string plus a warning: unlike Compose, the host
//!   environment is never passed implicitly; `KEY: ${KEY}` passes it explicitly.
//! - `x-*` keys (top level and in containers) are ignored, as in Compose, for YAML anchors.
//! - `bridges:` ([`bridges`]) holds MQTT brokers; credentials are references (an environment
//!   variable or a file), never inline: `password:` is an error with a hint.
//! - Sensor names may be any non-empty string (`"RNG Sensor"`); container and project names
//!   are `[a-z0-9][a-z0-9_-]*` ([`names`]). Without `name:`, the project is named after the
//!   compose file's folder ([`ProjectName::from_dir`]), the rule clients that look for a
//!   running stack use too.
//! - MQTT topic syntax (prefixes, filters, matching) is in [`topic`], shared by the bridge
//!   decoder and the running bridge.
//! - The JSON schema ([`json_schema`], `schemas/shoal.schema.json`) is generated from the
//!   file-format types in [`schema`]; their `KEYS` lists are what the decoder accepts.

pub mod bridges;
pub mod channel_type;
pub mod decode;
pub mod diagnostic;
pub mod digest;
pub mod image_file;
pub mod interpolate;
pub mod model;
pub mod names;
pub mod node;
pub mod reference;
pub mod schema;
pub mod topic;
pub mod units;
pub mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use channel_type::ChannelType;
pub use diagnostic::{render_diagnostics, Diagnostic, Severity};
pub use digest::{ImageDigest, InvalidDigest};
pub use model::*;
pub use names::{InvalidName, MAX_NAME_LEN};
pub use reference::{no_registry, ResolvedImage};
pub use schema::json_schema;

/// What `load` needs from the outside world, passed in so `spec` stays free of global state.
pub struct LoadOptions<'a> {
    /// Environment for `${VAR}` interpolation (callers pass std::env::vars()).
    pub env: &'a HashMap<String, String>,
    /// Resolve `sha256:<hex>` image references against the image store: returns the stored .wasm path or None.
    pub lookup_digest: &'a dyn Fn(&ImageDigest) -> Option<PathBuf>,
    /// Resolve a registry reference (`registry.example/org/x:1`) against the pulled images:
    /// `Err` is the message shown at the `image:` line (never pulled, the last pull's
    /// error). [`no_registry`] for callers without a store. See [`reference`].
    pub resolve_reference: &'a dyn Fn(&str) -> Result<ResolvedImage, String>,
}

/// File names tried by [`find_compose_file`], in order.
pub const COMPOSE_FILE_NAMES: &[&str] = &["shoal.yaml", "shoal.yml", "compose.yaml", "compose.yml"];

/// Find the compose file: `shoal.yaml`, then `compose.yaml` (also .yml variants) in `dir`.
pub fn find_compose_file(dir: &Path) -> Option<PathBuf> {
    COMPOSE_FILE_NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Why no compose file was found.
#[derive(Debug, thiserror::Error)]
pub enum ComposeFileError {
    /// `-f DIR` (or a folder as the positional argument) without a compose file in it.
    #[error("no shoal.yaml or compose.yaml in {}", .0.display())]
    NotInFolder(PathBuf),
    /// Nothing given and none in the current folder.
    #[error("no shoal.yaml or compose.yaml in {}\n  hint: pass one with `-f FILE`", .0.display())]
    NotHere(PathBuf),
    /// The current folder cannot be read (removed under our feet, no permission).
    #[error(transparent)]
    CurrentDir(#[from] std::io::Error),
}

/// Which compose file a command means: `-f` or a positional path (a file as given, a
/// folder searched with [`find_compose_file`]), or shoal.yaml/compose.yaml in the current
/// folder. Every command goes through here, so the lookup and its hints are written once.
/// A given file is not checked here: reading it reports a missing one with its own hint.
pub fn compose_path(explicit: Option<&Path>) -> Result<PathBuf, ComposeFileError> {
    match explicit {
        Some(path) if path.is_dir() => {
            find_compose_file(path).ok_or_else(|| ComposeFileError::NotInFolder(path.to_path_buf()))
        }
        Some(path) => Ok(path.to_path_buf()),
        None => {
            let here = std::env::current_dir()?;
            find_compose_file(&here).ok_or(ComposeFileError::NotHere(here))
        }
    }
}

/// Parse and validate. On success returns the stack plus warnings; on failure returns ALL
/// errors found (plus warnings).
pub fn load(path: &Path, opts: &LoadOptions) -> Result<(Stack, Vec<Diagnostic>), Vec<Diagnostic>> {
    match std::fs::read(path) {
        // lifecycle (issue 16 fault 11): a file that is not UTF-8 is refused at its place.
        Ok(bytes) => match node::utf8(bytes) {
            Ok(text) => load_str(&text, path, opts),
            Err(p) => Err(vec![Diagnostic::error(
                p.pos.map(|pos| Location {
                    file: path.to_path_buf(),
                    line: pos.line,
                    column: pos.column,
                }),
                "",
                p.message,
            )]),
        },
        Err(e) => {
            let hint = (e.kind() == std::io::ErrorKind::NotFound)
                .then(|| "run shoal in the folder that holds `shoal.yaml`, or pass the file with `-f`".to_string());
            Err(vec![Diagnostic::error(
                None,
                "",
                format!("cannot read {}: {e}", path.display()),
            )
            .with_hint_opt(hint)])
        }
    }
}

/// Like [`load`] with the text given; `path` is used for messages and relative paths.
pub fn load_str(text: &str, path: &Path, opts: &LoadOptions) -> Result<(Stack, Vec<Diagnostic>), Vec<Diagnostic>> {
    let abs_file = decode::normalize(&if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    });
    let dir = abs_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut ctx = decode::Ctx {
        file: path.to_path_buf(),
        dir: dir.clone(),
        opts,
        diags: Vec::new(),
        env_files: Vec::new(),
    };

    let (mut root, problems) = match node::parse(text) {
        Ok(r) => r,
        Err(p) => {
            let loc = p.pos.map(|pos| ctx.loc(pos));
            return Err(vec![Diagnostic::error(loc, "", p.message)]);
        }
    };
    for p in problems {
        let loc = p.pos.map(|pos| ctx.loc(pos));
        ctx.diags.push(Diagnostic::error(loc, "", p.message));
    }

    let mut problems = Vec::new();
    interpolate::interpolate_tree(&mut root, opts.env, &mut problems);
    for p in problems {
        match p {
            interpolate::TreeProblem::Error { pos, key, message } => ctx.error(pos, &key, message, None),
            interpolate::TreeProblem::Unset { pos, key, name } => ctx.warn(
                pos,
                &key,
                format!("variable `{name}` is not set; using an empty string"),
                Some(format!("set it, or give a default: `${{{name}:-default}}`")),
            ),
        }
    }

    let mut decoded = decode::decode(&root, &mut ctx);
    let containers = validate::assemble(&decoded, &mut ctx);
    let name = decoded.name.clone().unwrap_or_else(|| ProjectName::from_dir(&dir));
    let mut bridges = std::mem::take(&mut decoded.bridges);
    bridges::fill_client_ids(&mut bridges, &name, &mut ctx);

    let mut diags = ctx.diags;
    let mut env_files = ctx.env_files;
    env_files.sort();
    env_files.dedup();
    // Report in file order; errors without a location first (they are about the whole file).
    diags.sort_by(|a, b| {
        let ka = a.location.as_ref().map(|l| (l.file != *path, l.line, l.column));
        let kb = b.location.as_ref().map(|l| (l.file != *path, l.line, l.column));
        ka.cmp(&kb)
    });
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    let stack = Stack {
        name,
        file: abs_file,
        dir,
        containers,
        sensors: decoded.sensors,
        gpio: decoded.gpio,
        watch: decoded.watch,
        bridges,
        env_files,
        metrics: decoded.metrics,
    };
    Ok((stack, diags))
}

#[cfg(test)]
mod tests;
