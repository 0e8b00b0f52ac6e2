//! What an image file is, judged from its bytes: the one place that knows the formats.
//!
//! The compose-file check (`shoal-spec`) and the image store (`shoal images add`,
//! `shoal images compile`) both refuse files that shoal cannot run; they used to apply
//! different rules (only one spotted components and native programs). Both now ask
//! [`detect`] and [`validate`] here and word the answer for their own users.

/// The kinds of file a container's `image:` may point at, or be mistaken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// A WebAssembly core module (`\0asm`, version 1): what shoal compiles and runs.
    CoreModule,
    /// A WebAssembly component (`\0asm`, another version/layer): shoal runs core modules only.
    Component,
    /// An image precompiled by `shoal images compile` (wasmtime's ELF object).
    Precompiled,
    /// Some other ELF file: a native program, not something a wasm runtime runs.
    NativeElf,
    /// Anything else. `text` is set when it looks like the wasm text format, so the
    /// message can say how to assemble it.
    NotWasm { text: bool },
}

/// The wasm magic bytes every binary module and component starts with.
pub const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// The version field of a core module (a component has another).
const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];
const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// Classify an image file by its first bytes (no parsing beyond the header).
pub fn detect(bytes: &[u8]) -> ImageFormat {
    if is_precompiled(bytes) {
        return ImageFormat::Precompiled;
    }
    if bytes.starts_with(ELF_MAGIC) {
        return ImageFormat::NativeElf;
    }
    if bytes.len() < 8 || !bytes.starts_with(WASM_MAGIC) {
        let text = bytes.starts_with(b"(module") || bytes.starts_with(b"(component") || bytes.starts_with(b";;");
        return ImageFormat::NotWasm { text };
    }
    if bytes[4..8] != CORE_VERSION {
        return ImageFormat::Component;
    }
    ImageFormat::CoreModule
}

/// Whether `bytes` look like an image precompiled by `shoal images compile`: wasmtime writes
/// ELF objects whose OS/ABI byte is its own mark (200). Only the header is judged; the full
/// check (wasmtime version, target, CPU features, engine settings) happens when the runtime
/// loads the file, so a truncated or forged file that passes here is refused there.
pub fn is_precompiled(bytes: &[u8]) -> bool {
    const ELF_OSABI: usize = 7;
    const WASMTIME_OSABI: u8 = 200;
    bytes.len() > ELF_OSABI && bytes.starts_with(ELF_MAGIC) && bytes[ELF_OSABI] == WASMTIME_OSABI
}

/// Why a module failed validation: wasmparser's message and the byte offset it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidModule {
    pub message: String,
    pub offset: usize,
}

impl std::fmt::Display for InvalidModule {
    /// wasmparser's own wording, which `shoal images add` has always shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at offset {:#x})", self.message, self.offset)
    }
}

impl std::error::Error for InvalidModule {}

impl From<wasmparser::BinaryReaderError> for InvalidModule {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        InvalidModule {
            message: e.message().to_string(),
            offset: e.offset(),
        }
    }
}

/// Validate a whole core module with the wasm features shoal's engine enables by default,
/// without compiling it, so a broken module is reported before anything starts.
pub fn validate(bytes: &[u8]) -> Result<(), InvalidModule> {
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::default())
        .validate_all(bytes)
        .map(|_| ())
        .map_err(InvalidModule::from)
}

/// The function imports of a module, as `(module, name)` pairs, read from its import
/// section alone (no validation, no compilation).
pub fn function_imports(bytes: &[u8]) -> Result<Vec<(String, String)>, InvalidModule> {
    let mut imports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let wasmparser::Payload::ImportSection(section) = payload? {
            for import in section {
                let import = import?;
                if matches!(import.ty, wasmparser::TypeRef::Func(_)) {
                    imports.push((import.module.to_string(), import.name.to_string()));
                }
            }
        }
    }
    Ok(imports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_apart_by_their_header() {
        assert_eq!(detect(b"\0asm\x01\0\0\0"), ImageFormat::CoreModule);
        assert_eq!(detect(b"\0asm\x0d\0\x01\0"), ImageFormat::Component);
        let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0".to_vec();
        assert_eq!(detect(&elf), ImageFormat::NativeElf);
        elf[7] = 200;
        assert_eq!(detect(&elf), ImageFormat::Precompiled);
        assert!(is_precompiled(&elf));
        assert_eq!(detect(b"(module)"), ImageFormat::NotWasm { text: true });
        assert_eq!(detect(b"hello"), ImageFormat::NotWasm { text: false });
        assert_eq!(detect(b"\0asm"), ImageFormat::NotWasm { text: false });
        assert!(!is_precompiled(b"\x7fELF"));
    }

    #[test]
    fn validation_names_the_offset() {
        assert_eq!(validate(b"\0asm\x01\0\0\0"), Ok(()));
        let err = validate(b"\0asm\x01\0\0\0\x01").unwrap_err();
        assert!(
            err.to_string().ends_with(&format!("(at offset {:#x})", err.offset)),
            "{err}"
        );
    }

    #[test]
    fn function_imports_are_read_without_validation() {
        // (import "env" "f" (func)) and (import "env" "m" (memory 1)).
        let module = b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0\x02\x12\x02\x03env\x01f\0\0\x03env\x01m\x02\0\x01";
        assert_eq!(function_imports(module), Ok(vec![("env".to_string(), "f".to_string())]));
        assert!(function_imports(b"\0asm\x01\0\0\0\x02\x05").is_err());
    }
}
