//! The content-addressed image store and the compile cache.
//!
//! Images are plain `.wasm` files, as in Ocre: no manifest, no layers. The store keeps each
//! under its SHA-256 so a compose file can pin `sha256:<hex>`, and keeps the machine code
//! wasmtime produced for it, keyed by the digest *and* the engine's compatibility hash: a
//! cached `.cwasm` built with other memory settings or another wasmtime is never loaded.
//!
//! Layout under the data directory:
//! ```text
//! images/<hex>.wasm        the image bytes
//! images/<hex>.name        the name it was added under (what `shoal images` shows)
//! cache/<engine>/<hex>.cwasm  precompiled module for one engine configuration
//! ```
//!
//! An image file may also be precompiled already (`shoal images compile`, see
//! [`precompiled`]): it is loaded as it is, and it is the only kind a shoal built without
//! the `compiler` feature runs.

pub mod precompiled;
pub mod refs;

#[cfg(feature = "compiler")]
use std::collections::hash_map::DefaultHasher;
use std::fs;
#[cfg(feature = "compiler")]
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shoal_abi::module::{self, ImageFormat};
use wasmtime::{Engine, Module};

/// Errors at the image store's border.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read image {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write to the image store at {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid WebAssembly module: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot read image {path}: {source}")]
    File {
        path: PathBuf,
        source: crate::spec::image_file::ImageFileError,
    },
    #[error(
        "image {path} in the store is damaged: its bytes hash to {actual}, not the digest it is stored under\n  \
         hint: remove it with `shoal images rm {expected}` and pull or add it again"
    )]
    Damaged {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("no image matches `{0}`")]
    NotFound(String),
    #[error("`{0}` matches more than one image; give more digits")]
    Ambiguous(String),
    #[error(
        "precompiled image {path} cannot run on this shoal: {reason}\n  hint: compile it again from its .wasm for \
         this machine with the same shoal version and settings: `shoal images compile FILE.wasm --target {host}` \
         (and the same --memory-reservation, if this shoal is given one)",
        host = precompiled::HOST_TARGET
    )]
    Precompiled { path: PathBuf, reason: String },
    #[error(
        "{path} is a .wasm module and this shoal has no compiler (it was built without the `compiler` feature)\n  \
         hint: precompile it on a machine with the full shoal: `shoal images compile FILE.wasm --target {host}`, \
         then name the .cwasm file as the image",
        host = precompiled::HOST_TARGET
    )]
    NoCompiler { path: PathBuf },
    #[error(
        "cannot compile for target `{target}`: {reason}\n  hint: give a target triple such as \
         `aarch64-unknown-linux-gnu` or `x86_64-unknown-linux-gnu`; other architectures need shoal built with \
         `--features all-arch`"
    )]
    Target { target: String, reason: String },
    #[error("cannot compile {path} for {target}: {reason}")]
    Compile {
        path: PathBuf,
        target: String,
        reason: String,
    },
}

/// The checked digest type lives with the compose file (an `image: sha256:<hex>` holds
/// one); the store names its files by it.
pub use crate::spec::ImageDigest;

/// One stored image, as listed by `shoal images`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredImage {
    pub digest: String,
    pub size: u64,
    pub name: String,
    /// Registry references pulled to this image (`shoal images pull`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    #[serde(skip)]
    pub path: PathBuf,
}

/// How a module was obtained, for `-v` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleSource {
    /// Compiled now with cranelift (and written to the cache).
    Compiled,
    /// Loaded from the compile cache.
    Cached,
    /// The image file itself was precompiled (`shoal images compile`).
    Precompiled,
}

/// A module ready to instantiate, with its digest and how long it took to get.
pub struct LoadedModule {
    pub module: Module,
    pub digest: ImageDigest,
    pub source: ModuleSource,
    pub elapsed: Duration,
    /// Why the compiled code could not be written to the cache (a full disk, a read-only
    /// data directory). The module is fine; it is only compiled again next time.
    pub cache_error: Option<String>,
}

/// The store under one data directory.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

/// The data directory: `$SHOAL_DATA_DIR`, else `$XDG_DATA_HOME/shoal`, else
/// `~/.local/share/shoal`, else `./.shoal` when there is no home at all.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SHOAL_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("shoal");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/share/shoal");
    }
    PathBuf::from(".shoal")
}

impl ImageStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ImageStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Path of a stored image by digest, if present.
    pub fn path_of(&self, digest: &ImageDigest) -> Option<PathBuf> {
        // A pulled precompiled image is kept as `<hex>.cwasm` (see `crate::registry`).
        ["wasm", "cwasm"]
            .iter()
            .map(|ext| self.images_dir().join(format!("{}.{ext}", digest.hex())))
            .find(|path| path.is_file())
    }

    /// An image inside the store is named by its digest: check the bytes still hash to it
    /// before wasmtime compiles or (for a pulled `.cwasm`) runs them.
    fn check_stored_digest(&self, file: &Path, digest: &ImageDigest) -> Result<(), ImageError> {
        let Some(name) = file.file_stem().and_then(|n| n.to_str()) else {
            return Ok(());
        };
        let in_store = file.parent() == Some(self.images_dir().as_path()) && ImageDigest::is_hex(name);
        if in_store && name != digest.hex() {
            return Err(ImageError::Damaged {
                path: file.to_path_buf(),
                expected: name.to_string(),
                actual: digest.hex().to_string(),
            });
        }
        Ok(())
    }

    /// Add a `.wasm` file (validated first) under its digest. Adding the same bytes twice
    /// is a no-op apart from the name.
    pub fn add(&self, file: &Path) -> Result<StoredImage, ImageError> {
        let bytes = read_image(file)?;
        validate_wasm(file, &bytes)?;
        let digest = ImageDigest::of(&bytes);
        let dir = self.images_dir();
        let path = dir.join(format!("{}.wasm", digest.hex()));
        if !path.is_file() {
            write_atomically(&path, &bytes)?;
        }
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        write_atomically(&dir.join(format!("{}.name", digest.hex())), name.as_bytes())?;
        Ok(StoredImage {
            digest: digest.hex().to_string(),
            size: bytes.len() as u64,
            name,
            references: Vec::new(),
            path,
        })
    }

    /// Every stored image, sorted by name then digest.
    pub fn list(&self) -> Result<Vec<StoredImage>, ImageError> {
        let dir = self.images_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(ImageError::Read { path: dir, source }),
        };
        let refs = self.references();
        let mut images = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(hex) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".wasm").or_else(|| n.strip_suffix(".cwasm")))
            else {
                continue;
            };
            if !ImageDigest::is_hex(hex) {
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            let name = fs::read_to_string(dir.join(format!("{hex}.name"))).unwrap_or_default();
            let references = refs
                .iter()
                .filter(|r| r.digest.hex() == hex)
                .map(|r| r.reference.clone())
                .collect();
            images.push(StoredImage {
                digest: hex.to_string(),
                size,
                name,
                references,
                path: path.clone(),
            });
        }
        images.sort_by(|a, b| (&a.name, &a.digest).cmp(&(&b.name, &b.digest)));
        Ok(images)
    }

    /// Find one image by digest (full, `sha256:`-prefixed, or a unique prefix) or by name.
    pub fn find(&self, reference: &str) -> Result<StoredImage, ImageError> {
        let wanted = ImageDigest::hex_prefix_of(reference);
        let images = self.list()?;
        let by_digest: Vec<_> = images
            .iter()
            .filter(|i| wanted.is_some_and(|hex| i.digest.starts_with(hex)))
            .collect();
        // `shoal images add hello.wasm` then `shoal run hello`: the name without `.wasm`
        // works too, and so does a pulled registry reference.
        let stem_of = |name: &str| {
            name.strip_suffix(".wasm")
                .or_else(|| name.strip_suffix(".cwasm"))
                .map(str::to_string)
        };
        let matches = if by_digest.is_empty() {
            images
                .iter()
                .filter(|i| {
                    i.name == reference
                        || stem_of(&i.name).as_deref() == Some(reference)
                        || i.references.iter().any(|r| r == reference)
                })
                .collect()
        } else {
            by_digest
        };
        match matches.as_slice() {
            [] => Err(ImageError::NotFound(reference.to_string())),
            [one] => Ok((*one).clone()),
            _ => Err(ImageError::Ambiguous(reference.to_string())),
        }
    }

    /// Remove an image and its cached machine code for every engine.
    pub fn remove(&self, reference: &str) -> Result<StoredImage, ImageError> {
        let image = self.find(reference)?;
        let dir = self.images_dir();
        let refs = self.references().into_iter().filter(|r| r.digest.hex() == image.digest);
        let ref_files: Vec<PathBuf> = refs.map(|r| self.reference_path(&r.reference)).collect();
        for path in [
            dir.join(format!("{}.wasm", image.digest)),
            dir.join(format!("{}.cwasm", image.digest)),
            dir.join(format!("{}.name", image.digest)),
        ]
        .into_iter()
        .chain(ref_files)
        {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ImageError::Write { path, source }),
            }
        }
        if let Ok(engines) = fs::read_dir(self.root.join("cache")) {
            for engine in engines.flatten() {
                let _ = fs::remove_file(engine.path().join(format!("{}.cwasm", image.digest)));
            }
        }
        Ok(image)
    }

    /// Load a module from an image file: a precompiled image as it is, a `.wasm` file
    /// through the compile cache (only in a shoal with the compiler).
    ///
    /// A cache entry that fails to load (another wasmtime, other settings, a truncated
    /// file) is compiled again and replaced, never trusted.
    pub fn load_module(&self, engine: &Engine, file: &Path) -> Result<LoadedModule, ImageError> {
        let started = Instant::now();
        let bytes = read_image(file)?;
        let digest = ImageDigest::of(&bytes);
        self.check_stored_digest(file, &digest)?;
        if precompiled::is_precompiled(&bytes) {
            return Ok(LoadedModule {
                module: precompiled::load_bytes(engine, file, &bytes)?,
                digest,
                source: ModuleSource::Precompiled,
                elapsed: started.elapsed(),
                cache_error: None,
            });
        }
        #[cfg(feature = "compiler")]
        return self.compile_through_cache(engine, file, &bytes, digest, started);
        #[cfg(not(feature = "compiler"))]
        Err(ImageError::NoCompiler {
            path: file.to_path_buf(),
        })
    }

    #[cfg(feature = "compiler")]
    fn compile_through_cache(
        &self,
        engine: &Engine,
        file: &Path,
        bytes: &[u8],
        digest: ImageDigest,
        started: Instant,
    ) -> Result<LoadedModule, ImageError> {
        // A module that imports its memory without exporting it gets the export WASI
        // needs (see `as_runnable`); the cache is keyed by the bytes really compiled.
        let runnable = as_runnable(file, bytes)?;
        let cache_key = match &runnable {
            std::borrow::Cow::Borrowed(_) => digest.clone(),
            std::borrow::Cow::Owned(rewritten) => ImageDigest::of(rewritten),
        };
        let bytes: &[u8] = &runnable;
        let cached = self.cache_path(engine, &cache_key);
        if let Some(module) = load_cached(engine, &cached) {
            return Ok(LoadedModule {
                module,
                digest,
                source: ModuleSource::Cached,
                elapsed: started.elapsed(),
                cache_error: None,
            });
        }
        let module = Module::new(engine, bytes).map_err(|e| ImageError::Invalid {
            path: file.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        // A cache that cannot be written only costs a compile next time; say why.
        let cache_error = match module.serialize() {
            Ok(serialized) => write_atomically(&cached, &serialized)
                .and_then(|()| write_atomically(&checksum_path(&cached), ImageDigest::of(&serialized).hex().as_bytes()))
                .err()
                .map(|e| format!("{e}; {} will be compiled again next time", file.display())),
            Err(e) => Some(format!("cannot serialize the compiled {}: {e:#}", file.display())),
        };
        Ok(LoadedModule {
            module,
            digest,
            source: ModuleSource::Compiled,
            elapsed: started.elapsed(),
            cache_error,
        })
    }

    #[cfg(feature = "compiler")]
    fn cache_path(&self, engine: &Engine, digest: &ImageDigest) -> PathBuf {
        self.root
            .join("cache")
            .join(engine_fingerprint(engine))
            .join(format!("{}.cwasm", digest.hex()))
    }
}

/// A short stable name for an engine configuration (wasmtime version, target, settings).
#[cfg(feature = "compiler")]
pub fn engine_fingerprint(engine: &Engine) -> String {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Read an image file: a regular file of at most `spec::image_file::MAX_IMAGE_BYTES`
/// (never a device, a FIFO or a folder; see `spec::image_file`).
pub fn read_image(path: &Path) -> Result<Vec<u8>, ImageError> {
    crate::spec::image_file::read(path).map_err(|source| ImageError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// Where the sha256 of a compile-cache entry is kept: beside it, `<hex>.cwasm.sha256`.
#[cfg(feature = "compiler")]
fn checksum_path(cached: &Path) -> PathBuf {
    let mut name = cached.as_os_str().to_os_string();
    name.push(".sha256");
    PathBuf::from(name)
}

/// A compile-cache entry, if it is there and intact.
///
/// wasmtime runs a `.cwasm` as machine code, checking only its header: one flipped bit
/// in the code killed shoal by SIGTRAP with no message (issue 16, fault 4). So each entry
/// carries the sha256 it was written with, checked before wasmtime sees the bytes; an
/// entry that does not match (or has no checksum) is reported once, deleted and compiled
/// again. wasmtime's own refusal (other version or settings) also means compile again.
#[cfg(feature = "compiler")]
fn load_cached(engine: &Engine, cached: &Path) -> Option<Module> {
    let bytes = match crate::spec::image_file::read(cached) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return None,
        Err(_) => {
            drop_cache_entry(cached, "cannot be read");
            return None;
        }
    };
    let recorded = fs::read_to_string(checksum_path(cached)).unwrap_or_default();
    if recorded.trim() != ImageDigest::of(&bytes).hex() {
        drop_cache_entry(cached, "does not match its checksum (damaged on disk)");
        return None;
    }
    // SAFETY: the bytes are exactly those this code serialized from a module the same
    // engine configuration compiled (the checksum above proves it); wasmtime still checks
    // the header and the compatibility hash and refuses a mismatch, compiled again below.
    unsafe { Module::deserialize(engine, &bytes) }.ok()
}

/// Delete a bad compile-cache entry, saying so once: the next load compiles it again.
#[cfg(feature = "compiler")]
fn drop_cache_entry(cached: &Path, why: &str) {
    eprintln!(
        "warning: compile cache entry {} {why}; deleted, compiling the image again",
        cached.display()
    );
    let _ = fs::remove_file(cached);
    let _ = fs::remove_file(checksum_path(cached));
}

/// Check a module's bytes without compiling it, for errors that name the file. The format
/// rules are `shoal_abi::module`'s, the same the compose-file check applies.
pub fn validate_wasm(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let message = match module::detect(bytes) {
        ImageFormat::CoreModule => match module::validate(bytes) {
            Ok(()) => return Ok(()),
            Err(e) => e.to_string(),
        },
        ImageFormat::Precompiled => "it is a precompiled image; the store keeps .wasm modules, so name the .cwasm \
                                     file by its path as the `image` of a container"
            .into(),
        ImageFormat::NotWasm { .. } => "it does not start with the wasm magic bytes `\\0asm`".into(),
        ImageFormat::NativeElf => "it is a native program; give the .wasm module".into(),
        ImageFormat::Component => {
            "it is a WebAssembly component; shoal runs core modules (build for `wasm32-wasip1`)".into()
        }
    };
    Err(ImageError::Invalid {
        path: path.to_path_buf(),
        message,
    })
}

/// The bytes shoal compiles for a `.wasm` image: the file's own, or, for a module that
/// imports its memory without exporting it (`--import-memory` alone, as Debian 12's
/// wasm-ld 14 links), the same module plus a `memory` export of that memory, which WASI
/// preview 1 reads guest memory through (`shoal_abi::module::export_memory_if_missing`).
/// An imported memory also becomes one the module defines, so its data segments map
/// copy-on-write from one image (`shoal_abi::module::runnable`).
#[cfg(feature = "compiler")]
pub fn as_runnable<'a>(path: &Path, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, ImageError> {
    match module::runnable(bytes) {
        Ok(Some(rewritten)) => Ok(std::borrow::Cow::Owned(rewritten)),
        Ok(None) => Ok(std::borrow::Cow::Borrowed(bytes)),
        Err(e) => Err(ImageError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

/// Sha256 of a file, for `shoal config`.
pub fn digest_file(path: &Path) -> Result<ImageDigest, ImageError> {
    Ok(ImageDigest::of(&read_image(path)?))
}

/// Write through a temporary file and a rename, so a reader never sees half a file and a
/// crash never leaves a truncated image or cache entry behind.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let err = |source| ImageError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(err)?;
    // fleet-ops: the pid and a counter, so two threads of one process writing the same
    // file (agents sharing a store in `bench fleet`) never share, and lose, a temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x"),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let written = fs::File::create(&tmp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        // A full disk must not leave half a file behind.
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";

    // fleet-ops: threads of one process writing the same file used one temporary name and
    // lost it to each other (`rename: No such file or directory`).
    #[test]
    fn concurrent_writes_of_one_file_in_one_process_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("refs").join("same.json");
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || (0..50).try_for_each(|_| write_atomically(&path, format!("{i}").as_bytes())))
            })
            .collect();
        for writer in writers {
            writer.join().unwrap().unwrap();
        }
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.parse::<u32>().is_ok_and(|i| i < 8), "{text}");
    }

    #[test]
    fn add_list_find_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::new(dir.path().join("data"));
        let file = dir.path().join("empty.wasm");
        fs::write(&file, EMPTY_MODULE).unwrap();
        let added = store.add(&file).unwrap();
        assert_eq!(added.digest, ImageDigest::of(EMPTY_MODULE).hex());
        assert_eq!(store.list().unwrap().len(), 1);
        assert_eq!(store.find(&added.digest[..8]).unwrap().name, "empty.wasm");
        assert_eq!(store.find("empty.wasm").unwrap().digest, added.digest);
        assert!(store.path_of(&ImageDigest::from_hex(&added.digest).unwrap()).is_some());
        store.remove("empty.wasm").unwrap();
        assert!(store.list().unwrap().is_empty());
        assert!(matches!(store.find("empty.wasm"), Err(ImageError::NotFound(_))));
    }

    #[test]
    fn invalid_wasm_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::new(dir.path());
        let file = dir.path().join("bad.wasm");
        fs::write(&file, b"hello").unwrap();
        let err = store.add(&file).unwrap_err().to_string();
        assert!(err.contains("bad.wasm") && err.contains("magic"), "{err}");
        fs::write(&file, b"\0asm\x01\0\0\0\x01").unwrap();
        assert!(matches!(store.add(&file), Err(ImageError::Invalid { .. })));
        // The format rules shared with the compose-file check.
        fs::write(&file, b"\0asm\x0d\0\x01\0").unwrap();
        let err = store.add(&file).unwrap_err().to_string();
        assert!(
            err.contains("bad.wasm is not a valid WebAssembly module: it is a WebAssembly component"),
            "{err}"
        );
        fs::write(&file, b"\x7fELF\x02\x01\x01\0\0\0\0\0").unwrap();
        let err = store.add(&file).unwrap_err().to_string();
        assert!(err.contains("it is a native program"), "{err}");
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    #[cfg(feature = "compiler")]
    fn second_load_comes_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::new(dir.path());
        let file = dir.path().join("m.wasm");
        fs::write(&file, wat::parse_str("(module (func (export \"f\")))").unwrap()).unwrap();
        let engine = Engine::default();
        assert_eq!(
            store.load_module(&engine, &file).unwrap().source,
            ModuleSource::Compiled
        );
        assert_eq!(store.load_module(&engine, &file).unwrap().source, ModuleSource::Cached);
        // A corrupted cache entry is recompiled, not trusted.
        let digest = ImageDigest::of(&fs::read(&file).unwrap());
        fs::write(store.cache_path(&engine, &digest), b"garbage").unwrap();
        assert_eq!(
            store.load_module(&engine, &file).unwrap().source,
            ModuleSource::Compiled
        );
    }

    /// A module that only imports its memory is compiled with a `memory` export added, and
    /// cached under the digest of what was compiled; its own digest stays the file's.
    #[test]
    #[cfg(feature = "compiler")]
    fn an_imported_only_memory_is_exported_and_cached() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::new(dir.path());
        let file = dir.path().join("m.wasm");
        let wasm =
            wat::parse_str(r#"(module (import "env" "memory" (memory 2 64)) (func (export "_start")))"#).unwrap();
        fs::write(&file, &wasm).unwrap();
        let engine = Engine::default();
        let loaded = store.load_module(&engine, &file).unwrap();
        assert_eq!(loaded.digest, ImageDigest::of(&wasm));
        assert!(matches!(
            loaded.module.get_export("memory"),
            Some(wasmtime::ExternType::Memory(_))
        ));
        let rewritten = module::runnable(&wasm).unwrap().unwrap();
        assert!(store.cache_path(&engine, &ImageDigest::of(&rewritten)).is_file());
        let again = store.load_module(&engine, &file).unwrap();
        assert_eq!(again.source, ModuleSource::Cached);
        assert!(again.module.get_export("memory").is_some());
    }
}
