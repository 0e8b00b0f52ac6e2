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
pub mod dotenv;
#[doc(hidden)]
pub mod golden;
pub mod image_file;
pub mod interpolate;
pub mod merge;
pub mod model;
pub mod names;
pub mod node;
pub mod profiles;
pub mod reference;
pub mod render;
pub mod schema;
pub mod source;
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
pub use source::{read_text_file, ComposeFiles, ReadError, MAX_CONFIG_FILE_SIZE};

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

/// Parse and validate one compose file (with the `.env` beside it). On success returns the
/// stack plus warnings; on failure returns ALL errors found (plus warnings).
pub fn load(path: &Path, opts: &LoadOptions) -> Result<(Stack, Vec<Diagnostic>), Vec<Diagnostic>> {
    load_files(&ComposeFiles::from(path), opts)
}

/// Parse, merge in order and validate the files of `input` (an empty list: the compose
/// file of the current folder and its override file), with its env files, project name and
/// profiles.
pub fn load_files(input: &ComposeFiles, opts: &LoadOptions) -> Result<(Stack, Vec<Diagnostic>), Vec<Diagnostic>> {
    let files = if input.files.is_empty() {
        ComposeFiles::resolve_files(&[]).map_err(|e| vec![Diagnostic::error(None, "", e.to_string())])?
    } else {
        input.files.clone()
    };
    let sources = files.iter().map(|f| (f.clone(), read_text_file(f))).collect();
    let input = ComposeFiles { files, ..input.clone() };
    load_sources(sources, &input, opts)
}

/// Like [`load`] with the text given; `path` is used for messages and relative paths.
pub fn load_str(text: &str, path: &Path, opts: &LoadOptions) -> Result<(Stack, Vec<Diagnostic>), Vec<Diagnostic>> {
    load_sources(
        vec![(path.to_path_buf(), Ok(text.to_string()))],
        &ComposeFiles::from(path),
        opts,
    )
}

/// The pipeline over already read files: `.env`, then each file parsed, interpolated and
/// merged into the ones before it, then decoded once.
fn load_sources(
    sources: Vec<(PathBuf, Result<String, ReadError>)>,
    input: &ComposeFiles,
    opts: &LoadOptions,
) -> Result<(Stack, Vec<Diagnostic>), Vec<Diagnostic>> {
    let path = input.main_file().map(Path::to_path_buf).unwrap_or_default();
    let abs_file = decode::normalize(&if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(&path)
    });
    let dir = abs_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut ctx = decode::Ctx {
        file: path.clone(),
        files: sources.iter().map(|(f, _)| f.clone()).collect(),
        dir: dir.clone(),
        opts,
        diags: Vec::new(),
        env_files: Vec::new(),
    };
    let (env, dotenv) = environment(input, &dir, &mut ctx);
    let root = parse_and_merge(sources, &env, &dotenv, input.env_files.as_deref(), &mut ctx)
        .ok_or_else(|| std::mem::take(&mut ctx.diags))?;

    let mut decoded = decode::decode(&root, &mut ctx);
    profiles::apply(
        &mut decoded,
        &profiles::enabled(input.profiles.as_deref(), &env),
        &mut ctx,
    );
    let containers = validate::assemble(&decoded, &mut ctx);
    let name = project_name(input, &env, decoded.name.take(), &dir, &mut ctx);
    let mut bridges = std::mem::take(&mut decoded.bridges);
    bridges::fill_client_ids(&mut bridges, &name, &mut ctx);

    let mut diags = std::mem::take(&mut ctx.diags);
    let mut env_files = std::mem::take(&mut ctx.env_files);
    env_files.extend(
        dotenv
            .read
            .iter()
            .map(|f| decode::normalize(&std::env::current_dir().unwrap_or_default().join(f))),
    );
    env_files.sort();
    env_files.dedup();
    // Report in file order (the merge order); errors without a location first (they are
    // about the whole file).
    let order = |file: &Path| ctx.files.iter().position(|f| f == file).unwrap_or(usize::MAX);
    diags.sort_by_key(|d| d.location.as_ref().map(|l| (order(&l.file), l.line, l.column)));
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
        compose: absolute(input),
    };
    Ok((stack, diags))
}

/// `input` with absolute paths, so a reload (or a process started elsewhere) reads the same.
fn absolute(input: &ComposeFiles) -> ComposeFiles {
    let here = std::env::current_dir().unwrap_or_default();
    let abs = |p: &PathBuf| decode::normalize(&here.join(p));
    ComposeFiles {
        files: input.files.iter().map(abs).collect(),
        env_files: input.env_files.as_ref().map(|f| f.iter().map(abs).collect()),
        ..input.clone()
    }
}

/// The variables `${VAR}` reads: the env files', then the process's over them.
fn environment(input: &ComposeFiles, dir: &Path, ctx: &mut decode::Ctx) -> (HashMap<String, String>, dotenv::DotEnv) {
    let mut problems = Vec::new();
    let dotenv = dotenv::read(input.env_files.as_deref(), dir, &mut problems);
    for p in problems {
        let location = p.line.map(|line| Location {
            file: p.file.clone(),
            line,
            column: 1,
        });
        let message = match location {
            Some(_) => p.message,
            None => p.message.to_string(),
        };
        ctx.diags
            .push(Diagnostic::error(location, "", message).with_hint_opt(p.hint));
    }
    let mut env = dotenv.vars.clone();
    env.extend(ctx.opts.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    (env, dotenv)
}

/// Each file read, parsed, marked with its index, interpolated, and merged into the ones
/// before it. `None` when a file cannot be read or parsed (nothing after that can be trusted).
fn parse_and_merge(
    sources: Vec<(PathBuf, Result<String, ReadError>)>,
    env: &HashMap<String, String>,
    dotenv: &dotenv::DotEnv,
    input_env_files: Option<&[PathBuf]>,
    ctx: &mut decode::Ctx,
) -> Option<node::Node> {
    let mut merged: Option<node::Node> = None;
    let mut failed = false;
    for (index, (file, text)) in sources.into_iter().enumerate() {
        let index = u16::try_from(index).unwrap_or(u16::MAX);
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                // A file that is not UTF-8 is refused at the place of its first bad byte.
                let place = match &e {
                    ReadError::NotText { path, line, column, .. } => Some(Location {
                        file: path.clone(),
                        line: *line,
                        column: *column,
                    }),
                    _ => None,
                };
                ctx.diags
                    .push(Diagnostic::error(place, "", e.to_string()).with_hint_opt(e.hint()));
                failed = true;
                continue;
            }
        };
        let at = |pos: node::Pos| Location {
            file: file.clone(),
            line: pos.line,
            column: pos.column,
        };
        let (mut root, problems) = match node::parse(&text) {
            Ok(r) => r,
            Err(p) => {
                ctx.diags.push(Diagnostic::error(p.pos.map(at), "", p.message));
                failed = true;
                continue;
            }
        };
        for p in problems {
            ctx.diags.push(Diagnostic::error(p.pos.map(at), "", p.message));
        }
        node::set_file(&mut root, index);
        interpolate_file(&mut root, env, dotenv, input_env_files, ctx);
        match merged.as_mut() {
            None => merged = Some(root),
            Some(base) => merge::merge(base, root),
        }
    }
    if failed {
        return None;
    }
    merged
}

/// `${VAR}` in one file's values; an unset variable's warning says where shoal looked.
fn interpolate_file(
    root: &mut node::Node,
    env: &HashMap<String, String>,
    dotenv: &dotenv::DotEnv,
    input_env_files: Option<&[PathBuf]>,
    ctx: &mut decode::Ctx,
) {
    let mut problems = Vec::new();
    interpolate::interpolate_tree(root, env, &mut problems);
    for p in problems {
        match p {
            interpolate::TreeProblem::Error { pos, key, message } => ctx.error(pos, &key, message, None),
            interpolate::TreeProblem::Unset { pos, key, name } => {
                let (looked, add) = match (&dotenv.missing_default, dotenv.read.as_slice()) {
                    (Some(_), _) => (
                        " and there is no `.env` file".to_string(),
                        format!(" (in the environment, or `{name}=...` in a `.env` beside the compose file)"),
                    ),
                    (None, []) => (String::new(), String::new()),
                    (None, read) => {
                        let files: Vec<String> = read
                            .iter()
                            .map(|f| match input_env_files {
                                Some(_) => format!("`{}`", f.display()),
                                None => "`.env`".to_string(),
                            })
                            .collect();
                        (
                            format!(" in the environment nor in {}", files.join(", ")),
                            format!(" (`{name}=...` in {})", files.last().cloned().unwrap_or_default()),
                        )
                    }
                };
                ctx.warn(
                    pos,
                    &key,
                    format!("variable `{name}` is not set{looked}; using an empty string"),
                    Some(format!("set it{add}, or give a default: `${{{name}:-default}}`")),
                )
            }
        }
    }
}

/// The project's name, Compose's order: `-p`, `SHOAL_PROJECT_NAME` (environment or `.env`),
/// `name:`, the project folder's name.
fn project_name(
    input: &ComposeFiles,
    env: &HashMap<String, String>,
    from_file: Option<ProjectName>,
    dir: &Path,
    ctx: &mut decode::Ctx,
) -> ProjectName {
    if let Some(name) = &input.project_name {
        return name.clone();
    }
    if let Some(value) = env.get(PROJECT_NAME_VAR).filter(|v| !v.is_empty()) {
        match ProjectName::try_from(value.clone()) {
            Ok(name) => return name,
            Err(e) => ctx.diags.push(
                Diagnostic::error(
                    None,
                    "",
                    format!("{PROJECT_NAME_VAR}=`{value}` is not a valid project name: {e}"),
                )
                .with_hint(e.hint()),
            ),
        }
    }
    from_file.unwrap_or_else(|| ProjectName::from_dir(dir))
}

/// The environment variable naming the project (below `-p`, above `name:`).
pub const PROJECT_NAME_VAR: &str = "SHOAL_PROJECT_NAME";

#[cfg(test)]
mod compose_tests;
#[cfg(test)]
mod tests;
