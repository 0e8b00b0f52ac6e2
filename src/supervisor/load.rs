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
