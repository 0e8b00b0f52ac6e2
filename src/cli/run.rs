//! `shoal run`: one image as a one-container stack in the foreground, like `docker run`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use super::args::RunArgs;
use super::{shutdown_signal, tokio_runtime};
use crate::images::ImageStore;
use crate::logs::terminal::TerminalLog;
use crate::procstat;
use crate::runtime::{ExitStatus, Runtime, RuntimeConfig};
use crate::spec::{self, Diagnostic, Stack};
use crate::supervisor::{self, Outcome};

/// `shoal run`: one container in the foreground, no control socket (like a `docker run`
/// without a name, it is not a project other commands can address). It runs through the
/// same controller as `up`, without a socket or a watcher.
fn run_stack_in_foreground(
    images: &ImageStore,
    runtime_config: &RuntimeConfig,
    stack: &Stack,
) -> anyhow::Result<supervisor::StackReport> {
    let runtime = Arc::new(Runtime::new(runtime_config)?);
    let modules = supervisor::load_modules(&runtime, images, stack, |_, loaded| {
        if let Some(why) = &loaded.cache_error {
            tracing::warn!("cannot write the compile cache: {why}");
        }
    })?;
    let log = Arc::new(TerminalLog::new(
        stack.containers.iter().map(|c| c.name.as_str()),
        false,
    ));
    let executor = tokio_runtime()?;
    let mut controller = crate::controller::Controller::new(
        runtime,
        images.clone(),
        stack.clone(),
        log,
        crate::controller::Options::default(),
    );
    // `shutdown_signal` spawns its task on the executor, so it is called inside it.
    let report = executor.block_on(async {
        controller.open_gpio()?;
        anyhow::Ok(controller.run_to_completion(modules, shutdown_signal()).await)
    })?;
    procstat::release_free_memory();
    Ok(report)
}

pub(super) fn run_image(
    images: &ImageStore,
    runtime_config: &RuntimeConfig,
    args: RunArgs,
) -> anyhow::Result<ExitCode> {
    let (image_path, default_name) = find_image(images, &args.image)?;
    let name = args
        .name
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| spec::decode::sanitize_name(&default_name));
    let stack = command_line_stack(&name, &image_path, &args)?;
    let report = run_stack_in_foreground(images, runtime_config, &stack)?;
    // Like `docker run`: the container's own exit code, 1 for a trap or a failure to start,
    // 130 when stopped by Ctrl-C.
    let code = match report.outcomes().next().map(|(_, outcome)| outcome) {
        Some(Outcome::Finished(ExitStatus::Exited(code))) => u8::try_from(*code).unwrap_or(1),
        Some(Outcome::Finished(ExitStatus::Stopped | ExitStatus::Killed)) => 130,
        _ => 1,
    };
    Ok(ExitCode::from(code))
}

/// What `shoal run IMAGE` runs, and the container's default name: a file path; a registry
/// reference (pulled first if this board never pulled it, as `docker run` does); or an
/// image of the store by name (`hello` or `hello.wasm`), digest or digest prefix.
fn find_image(images: &ImageStore, image: &str) -> anyhow::Result<(PathBuf, String)> {
    let stem = |path: &Path| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if Path::new(image).is_file() {
        let path = std::fs::canonicalize(image)?;
        let name = stem(&path);
        return Ok((path, name));
    }
    if spec::reference::is_registry_reference(image) {
        let digest = match images.find_reference(image) {
            Some(found) => found.digest,
            None => crate::registry::pull(images, image)?.digest,
        };
        let path = images
            .path_of(&digest)
            .ok_or_else(|| anyhow::anyhow!("image {image} was pulled but {digest} is not in the store"))?;
        // `registry.example/org/sensor:1.4` runs as `sensor`.
        let repository = image.split(['@']).next().unwrap_or(image);
        let last = repository.rsplit('/').next().unwrap_or(repository);
        let name = last.split(':').next().unwrap_or(last).to_string();
        return Ok((path, name));
    }
    let found = images.find(image).map_err(|e| {
        anyhow::anyhow!("{e}\n  hint: give a .wasm path, a name from `shoal images`, or a registry reference; add a file with `shoal images add FILE`")
    })?;
    let name = stem(Path::new(&found.name));
    Ok((found.path, name))
}

/// Build the one-container stack of `shoal run` as a compose document and validate it like
/// a file, so that `-v`, `--cap` and `--memory` get exactly the checks and messages the
/// compose file gets (minus the file positions, which mean nothing here).
fn command_line_stack(name: &str, image: &Path, args: &RunArgs) -> anyhow::Result<Stack> {
    let mut container = serde_json::json!({
        "image": image,
        "args": args.args,
        "env": args.env,
        "mounts": args.volumes,
        "capabilities": args.caps,
    });
    if let Some(memory) = &args.memory {
        container["limits"] = serde_json::json!({ "memory": memory });
    }
    if let Some(cpu) = &args.cpu {
        container["limits"]["cpu"] = serde_json::json!(cpu);
    }
    let document = serde_json::json!({ "name": name, "containers": { name: container } });
    let env: HashMap<String, String> = HashMap::new();
    let no_store = |_: &spec::ImageDigest| None;
    let options = spec::LoadOptions {
        env: &env,
        lookup_digest: &no_store,
        resolve_reference: &crate::spec::no_registry,
    };
    let here = std::env::current_dir()?;
    // `$` in a command-line value is literal: the shell already expanded what it wanted.
    let text = serde_json::to_string(&document)?.replace('$', "$$");
    match spec::load_str(&text, &here.join("shoal-run.yaml"), &options) {
        Ok((mut stack, warnings)) => {
            for warning in warnings.iter().map(without_location) {
                eprintln!("{warning}");
            }
            stack.file = PathBuf::from("<command line>");
            Ok(stack)
        }
        Err(diagnostics) => {
            let messages: Vec<String> = diagnostics.iter().map(|d| without_location(d).to_string()).collect();
            anyhow::bail!("{}", messages.join("\n").trim_start_matches("error: "))
        }
    }
}

fn without_location(diagnostic: &Diagnostic) -> Diagnostic {
    Diagnostic {
        location: None,
        ..diagnostic.clone()
    }
}
