//! `shoal bench`: figures, never assertions. Each benchmark runs the real machinery
//! (spec, image store and compile cache, supervisor, broker, host API) in this process.

pub mod bridge;
pub mod density;
pub mod fleet; // fleet-ops (issue 18): simulated agents against a private broker
pub mod gpio;
pub mod grow;
pub mod guests;
pub mod isolation;
pub mod messaging;
pub mod plot;
pub mod reload;
pub mod soak;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::images::ImageStore;
use crate::spec::{self, Stack};

/// Errors that keep a benchmark from running.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot prepare the built-in guest: {0}")]
    Guest(String),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("the benchmark stack is invalid:\n{0}")]
    Stack(String),
    #[error(
        "the SDK-built guest {file} is not there (looked in {looked})\n  hint: run `bash scripts/build-guests.sh` in \
         the shoal repository (it needs clang, lld and wasi-libc: scripts/setup.sh installs them), or pass \
         `--guest minimal` for the built-in guest, or `--image FILE` for your own"
    )]
    MissingGuest { file: String, looked: String },
}

/// A module as the supervisor takes it. Benchmarks never diff stacks, so the digest is only
/// a label: the digest of the text "shoal bench", the same for every benchmark module.
pub(crate) fn bench_image(module: &wasmtime::Module) -> crate::supervisor::LoadedImage {
    crate::supervisor::LoadedImage {
        module: module.clone(),
        digest: crate::spec::ImageDigest::of(b"shoal bench"),
    }
}

/// Write a built-in guest into the data directory (so it goes through the image store's
/// compile cache like any image) and return its path.
pub fn built_in_image(images: &ImageStore, name: &str, bytes: &[u8]) -> Result<PathBuf, BenchError> {
    let dir = images.root().join("bench");
    let path = dir.join(format!("{name}.wasm"));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        if std::fs::read(&path).ok().as_deref() != Some(bytes) {
            std::fs::write(&path, bytes)?;
        }
        Ok(())
    };
    write().map_err(|source| BenchError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// A stack of `count` replicas of one image, validated like a compose file.
pub fn replicated_stack(image: &Path, count: usize, capabilities: &[&str]) -> Result<Stack, BenchError> {
    limited_stack(image, count, capabilities, serde_json::Value::Null)
}

/// [`replicated_stack`] with a `limits:` section (`null` for none).
pub fn limited_stack(
    image: &Path,
    count: usize,
    capabilities: &[&str],
    limits: serde_json::Value,
) -> Result<Stack, BenchError> {
    let mut document = serde_json::json!({
        "name": "bench",
        "containers": {
            "bench": {
                "image": image,
                "replicas": count.max(1),
                "capabilities": capabilities,
                "stop_timeout": "5s",
            }
        }
    });
    if !limits.is_null() {
        document["containers"]["bench"]["limits"] = limits;
    }
    stack_from(&document)
}

/// A stack from a compose document written as JSON (which is YAML).
pub fn stack_from(document: &serde_json::Value) -> Result<Stack, BenchError> {
    let env = HashMap::new();
    let no_store = |_: &spec::ImageDigest| None;
    let options = spec::LoadOptions {
        env: &env,
        lookup_digest: &no_store,
        resolve_reference: &crate::spec::no_registry,
    };
    let text = document.to_string().replace('$', "$$");
    let here = std::env::current_dir().unwrap_or_default();
    match spec::load_str(&text, &here.join("bench.yaml"), &options) {
        Ok((stack, _)) => Ok(stack),
        Err(diagnostics) => Err(BenchError::Stack(spec::render_diagnostics(&diagnostics))),
    }
}
