//! Precompiled images (`.cwasm`): machine code made ahead of time by `shoal images compile`,
//! as WAMR's AOT mode does, so that a board runs a shoal built without the compiler.
//!
//! A compose file names a precompiled image like any other, by path (`image:
//! collector.cwasm`). What tells it apart is the content, never the file name: wasmtime's
//! precompiled files are ELF objects with wasmtime's own OS/ABI mark. Each file records the
//! target, the CPU features, the wasm features and the engine settings it was compiled
//! with, and wasmtime refuses to load one whose record does not match the running engine;
//! [`load`] turns that refusal into an error that says how to make a file that fits.

use std::path::{Path, PathBuf};

use wasmtime::{Engine, Module};

use super::ImageError;

/// The target triple this shoal was built for (`x86_64-unknown-linux-gnu`, ...): the default
/// of `shoal images compile --target`, and what errors about a foreign image name.
pub const HOST_TARGET: &str = env!("SHOAL_HOST_TARGET");

/// Whether `bytes` claim to be a precompiled image, judged by the ELF header alone, by the
/// rule spec validation uses too; [`load`] does the full check, so a truncated or forged
/// file that passes here is refused there with wasmtime's reason.
pub use shoal_abi::module::is_precompiled;

/// Load a precompiled image into `engine`.
pub fn load(engine: &Engine, path: &Path) -> Result<Module, ImageError> {
    // SAFETY: wasmtime runs the machine code in the file as it is; a forged file could do
    // anything the shoal process can. shoal only accepts files that `shoal images compile`
    // made (the README says so: treat a .cwasm like the shoal binary itself). wasmtime
    // still checks the header, its own version, the target, the CPU features and the
    // engine settings, and refuses any mismatch, which becomes a clear error here.
    unsafe { Module::deserialize_file(engine, path) }.map_err(|e| ImageError::Precompiled {
        path: path.to_path_buf(),
        // The outer layers only repeat the path; the root cause says what differs.
        reason: lowercase_first(&e.root_cause().to_string()),
    })
}

/// Load a precompiled image from bytes already read (and, for the store, digest-checked),
/// so what runs is exactly what was checked.
pub fn load_bytes(engine: &Engine, path: &Path, bytes: &[u8]) -> Result<Module, ImageError> {
    // SAFETY: as for `load`: a .cwasm is trusted like the shoal binary; wasmtime checks
    // the header, version, target, CPU features and settings.
    unsafe { Module::deserialize(engine, bytes) }.map_err(|e| ImageError::Precompiled {
        path: path.to_path_buf(),
        reason: lowercase_first(&e.root_cause().to_string()),
    })
}

/// Where `shoal images compile` writes the image compiled from `source`: `<stem>.cwasm`,
/// in `out_dir` or else beside the source.
pub fn output_path(source: &Path, out_dir: Option<&Path>) -> PathBuf {
    let stem = source.file_stem().unwrap_or(source.as_os_str());
    let dir = match out_dir {
        Some(dir) => dir,
        None => source.parent().unwrap_or(Path::new(".")),
    };
    let mut name = stem.to_os_string();
    name.push(".cwasm");
    dir.join(name)
}

/// wasmtime's messages start with a capital letter; shoal's are lowercase.
fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Compiles `.wasm` images for one target with an engine configured exactly as the
/// runtime's, plus the target. The caller passes the runtime's engine configuration
/// (`runtime::engine_config`), so images do not depend on the runtime.
#[cfg(feature = "compiler")]
pub struct CrossCompiler {
    engine: Engine,
    target: String,
}

#[cfg(feature = "compiler")]
impl CrossCompiler {
    pub fn new(mut config: wasmtime::Config, target: &str) -> Result<Self, ImageError> {
        let refused = |e: wasmtime::Error| ImageError::Target {
            target: target.to_string(),
            reason: lowercase_first(&format!("{e:#}")),
        };
        config.target(target).map_err(refused)?;
        let engine = Engine::new(&config).map_err(refused)?;
        Ok(CrossCompiler {
            engine,
            target: target.to_string(),
        })
    }

    /// The precompiled bytes of one `.wasm` file.
    pub fn compile(&self, source: &Path) -> Result<Vec<u8>, ImageError> {
        let bytes = super::read_image(source)?;
        if is_precompiled(&bytes) {
            return Err(ImageError::Invalid {
                path: source.to_path_buf(),
                message: "it is already precompiled; give the .wasm it was made from".into(),
            });
        }
        super::validate_wasm(source, &bytes)?;
        // The same bytes the compile cache would compile (an imported-only memory exported).
        let runnable = super::as_runnable(source, &bytes)?;
        self.engine
            .precompile_module(&runnable)
            .map_err(|e| ImageError::Compile {
                path: source.to_path_buf(),
                target: self.target.clone(),
                reason: lowercase_first(&format!("{e:#}")),
            })
    }

    /// Compile `source` and write it to [`output_path`]; returns that path.
    pub fn compile_to(&self, source: &Path, out_dir: Option<&Path>) -> Result<PathBuf, ImageError> {
        let compiled = self.compile(source)?;
        let out = output_path(source, out_dir);
        super::write_atomically(&out, &compiled)?;
        Ok(out)
    }
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use super::*;
    use crate::runtime::{engine_config, RuntimeConfig};

    fn engine(config: &RuntimeConfig) -> Engine {
        Engine::new(&engine_config(config)).unwrap()
    }

    fn write_module(dir: &Path) -> PathBuf {
        let file = dir.join("m.wasm");
        let wasm = wat::parse_str("(module (memory 1) (func (export \"_start\")))").unwrap();
        std::fs::write(&file, wasm).unwrap();
        file
    }

    #[test]
    fn host_image_loads_into_the_runtime_engine() {
        let dir = tempfile::tempdir().unwrap();
        let source = write_module(dir.path());
        let config = RuntimeConfig::default();
        let out = CrossCompiler::new(engine_config(&config), HOST_TARGET)
            .unwrap()
            .compile_to(&source, None)
            .unwrap();
        assert_eq!(out, dir.path().join("m.cwasm"));
        let bytes = std::fs::read(&out).unwrap();
        assert!(is_precompiled(&bytes));
        // wasmtime recognises it too; the source is not taken for one.
        assert!(Engine::detect_precompiled(&bytes).is_some());
        assert!(!is_precompiled(&std::fs::read(&source).unwrap()));
        let module = load(&engine(&config), &out).unwrap();
        assert!(module.get_export("_start").is_some());
    }

    #[test]
    fn foreign_target_and_other_settings_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let source = write_module(dir.path());
        let config = RuntimeConfig::default();
        let arm = CrossCompiler::new(engine_config(&config), "aarch64-unknown-linux-gnu")
            .unwrap()
            .compile_to(&source, Some(&dir.path().join("arm")))
            .unwrap();
        let err = load(&engine(&config), &arm).unwrap_err().to_string();
        assert!(err.contains("arm.cwasm") || err.contains("m.cwasm"), "{err}");
        assert!(err.contains("aarch64") && err.contains("shoal images compile"), "{err}");

        let host = CrossCompiler::new(engine_config(&config), HOST_TARGET)
            .unwrap()
            .compile_to(&source, None)
            .unwrap();
        let bigger = RuntimeConfig {
            memory_reservation: 64 << 20,
            ..RuntimeConfig::default()
        };
        let err = load(&engine(&bigger), &host).unwrap_err().to_string();
        assert!(err.contains("memory") && err.contains("--memory-reservation"), "{err}");

        // A damaged file is refused, not run.
        let bytes = std::fs::read(&host).unwrap();
        std::fs::write(&host, &bytes[..bytes.len() / 2]).unwrap();
        let err = load(&engine(&config), &host).unwrap_err().to_string();
        assert!(err.contains("cannot run on this shoal"), "{err}");
    }

    #[test]
    fn wasm_text_and_precompiled_input_are_not_compiled() {
        let dir = tempfile::tempdir().unwrap();
        let compiler = CrossCompiler::new(engine_config(&RuntimeConfig::default()), HOST_TARGET).unwrap();
        let text = dir.path().join("t.wasm");
        std::fs::write(&text, "(module)").unwrap();
        assert!(matches!(compiler.compile(&text), Err(ImageError::Invalid { .. })));
        let out = compiler.compile_to(&write_module(dir.path()), None).unwrap();
        let err = compiler.compile(&out).unwrap_err().to_string();
        assert!(err.contains("already precompiled"), "{err}");
    }

    #[test]
    fn unknown_target_names_the_target() {
        let err = CrossCompiler::new(engine_config(&RuntimeConfig::default()), "not-a-triple")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not-a-triple"), "{err}");
    }

    #[test]
    fn output_goes_beside_the_source_or_into_the_folder() {
        assert_eq!(output_path(Path::new("a/b.wasm"), None), Path::new("a/b.cwasm"));
        assert_eq!(
            output_path(Path::new("a/b.wasm"), Some(Path::new("out"))),
            Path::new("out/b.cwasm")
        );
        assert_eq!(output_path(Path::new("b"), None), Path::new("b.cwasm"));
        assert_eq!(output_path(Path::new("x.v2.wasm"), None), Path::new("x.v2.cwasm"));
    }
}
