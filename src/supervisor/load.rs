//! Loading a stack's images: each distinct image compiled (or read from the compile cache)
//! once, however many containers run it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use wasmtime::Module;

use crate::images::{ImageError, ImageStore, LoadedModule, ModuleSource};
use crate::runtime::Runtime;
use crate::spec::{ImageDigest, ImageRef, Stack};

/// Errors that stop a stack before any container runs.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("image {0} is not in the image store")]
    MissingDigest(String),
    #[error(transparent)]
    Placement(#[from] crate::executor::PlacementError),
}

/// A compiled image and the sha256 of its bytes.
#[derive(Clone)]
pub struct LoadedImage {
    pub module: Module,
    /// The sha256 of the image's bytes.
    pub digest: ImageDigest,
}

/// Load every distinct image of the stack once (compile cache first).
pub fn load_modules(
    runtime: &Runtime,
    images: &ImageStore,
    stack: &Stack,
    mut on_loaded: impl FnMut(&PathBuf, &LoadedModule),
) -> Result<HashMap<ImageRef, LoadedImage>, SupervisorError> {
    crate::executor::check_cores(stack)?;
    let mut modules = HashMap::new();
    for container in &stack.containers {
        if modules.contains_key(&container.image) {
            continue;
        }
        let path = match &container.image {
            ImageRef::Path(path) => path.clone(),
            // registry: a pulled reference is an image of the store like a digest.
            ImageRef::Digest(digest)
            | ImageRef::Registry {
                resolved: crate::spec::ResolvedImage { digest, .. },
                ..
            } => images
                .path_of(digest)
                .ok_or_else(|| SupervisorError::MissingDigest(digest.to_string()))?,
        };
        let loaded = images.load_module(runtime.engine(), &path)?;
        on_loaded(&path, &loaded);
        modules.insert(
            container.image.clone(),
            LoadedImage {
                module: loaded.module,
                digest: loaded.digest,
            },
        );
    }
    Ok(modules)
}

/// Heavy jobs (compiles, compile-cache loads, image reads, the static check) allowed at
/// once. Each takes a blocking thread for up to seconds; two leave the rest of the
/// blocking pool (WASI file I/O) free and a 2-core board one core for the executor.
pub const HEAVY_JOBS: usize = 2;

/// Run `job` on tokio's blocking pool, at most [`HEAVY_JOBS`] at a time, never on an
/// executor worker: a compile there would hold the worker's other containers (their
/// timers, their messages) for as long as it runs. A panic in `job` is passed on.
pub async fn off_executor<T, F>(job: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    static HEAVY: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HEAVY_JOBS);
    // The semaphore is never closed, so acquiring cannot fail; without a permit the job
    // would still run, only unbounded.
    let _permit = HEAVY.acquire().await.ok();
    match tokio::task::spawn_blocking(job).await {
        Ok(value) => value,
        // A blocking task is only ever cancelled by a runtime shutting down, which drops
        // this future before it can see that: what arrives here is the job's panic.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Describe a module load for `-v`.
pub fn describe_load(path: &Path, loaded: &LoadedModule) -> String {
    let how = match loaded.source {
        ModuleSource::Compiled => "compiled",
        ModuleSource::Cached => "loaded from the compile cache",
        ModuleSource::Precompiled => "loaded precompiled",
    };
    format!(
        "{} ({}) {how} in {:.1?}",
        path.display(),
        loaded.digest.short(),
        loaded.elapsed
    )
}
