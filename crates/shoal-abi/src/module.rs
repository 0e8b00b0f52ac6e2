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

/// The export name WASI preview 1 reads guest memory through (wasmtime-wasi looks the
/// caller's `memory` export up on every call that takes a pointer).
pub const MEMORY_EXPORT: &str = "memory";

/// An export as read: name, kind, index.
type ExportEntry = (String, wasmparser::ExternalKind, u32);

/// Give a module that does not export `memory` an export of its first memory under that
/// name; `Ok(None)` when nothing needs to change (it exports `memory` already, or has no
/// memory at all).
///
/// Why: modules linked with `--import-memory` alone (Debian 12's wasm-ld 14 has no
/// `--export-memory`, older Ocre SDK toolchains linked that way) import `env.memory` and
/// never export it. shoal creates that memory itself, but WASI preview 1 in wasmtime finds
/// guest memory only through the instance's `memory` export, so the first `fd_write`
/// ended the container with "missing required memory export". Adding one export entry
/// changes nothing else: every other section is copied byte for byte, and the memory the
/// instance exports is the very memory shoal supplied. The image store compiles (and
/// `shoal images compile` precompiles) the rewritten bytes, so both paths behave alike.
pub fn export_memory_if_missing(bytes: &[u8]) -> Result<Option<Vec<u8>>, InvalidModule> {
    use crate::sections::{rewrite, Edit, SectionList};
    use wasmparser::{ExternalKind, Payload, TypeRef};
    let mut sections: SectionList = Vec::new();
    // Where the export section is among the sections, and its entries.
    let mut exports: Option<(usize, Vec<ExportEntry>)> = None;
    let mut has_memory = false;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload?;
        match &payload {
            Payload::ImportSection(section) => {
                for import in section.clone() {
                    has_memory |= matches!(import?.ty, TypeRef::Memory(_));
                }
            }
            Payload::MemorySection(section) => has_memory |= section.count() > 0,
            Payload::ExportSection(section) => {
                let mut list = Vec::new();
                for export in section.clone() {
                    let export = export?;
                    if export.name == MEMORY_EXPORT {
                        return Ok(None);
                    }
                    list.push((export.name.to_string(), export.kind, export.index));
                }
                exports = Some((sections.len(), list));
            }
            _ => {}
        }
        if let Some(section) = payload.as_section() {
            sections.push(section);
        }
    }
    if !has_memory {
        return Ok(None);
    }
    // Sections after the export section in the binary order: start, element, data count,
    // code, data. A new export section goes before the first of them.
    const AFTER_EXPORT: [u8; 5] = [8, 9, 12, 10, 11];
    let (at, mut list) = exports.unwrap_or_else(|| {
        let at = sections
            .iter()
            .position(|(id, _)| AFTER_EXPORT.contains(id))
            .unwrap_or(sections.len());
        (at, Vec::new())
    });
    list.push((MEMORY_EXPORT.to_string(), ExternalKind::Memory, 0));
    let mut export_section = wasm_encoder::ExportSection::new();
    for (name, kind, index) in &list {
        let kind = match kind {
            ExternalKind::Func => wasm_encoder::ExportKind::Func,
            ExternalKind::Table => wasm_encoder::ExportKind::Table,
            ExternalKind::Memory => wasm_encoder::ExportKind::Memory,
            ExternalKind::Global => wasm_encoder::ExportKind::Global,
            ExternalKind::Tag => wasm_encoder::ExportKind::Tag,
        };
        export_section.export(name, kind, *index);
    }
    let edits = [Edit {
        at,
        // The module's own export section (7) is replaced; otherwise the new one is
        // inserted before the section at `at`.
        replace: sections.get(at).is_some_and(|(id, _)| *id == 7),
        new: Some(&export_section),
    }];
    Ok(Some(rewrite(bytes, &sections, &edits)?))
}

/// The bytes shoal compiles for a module: its memory made its own when it imports it
/// ([`crate::own_memory::define_imported_memory`], so data segments map copy-on-write from
/// one image), then exported as `memory` when it is not ([`export_memory_if_missing`]).
/// `Ok(None)`: the module runs as it is.
pub fn runnable(bytes: &[u8]) -> Result<Option<Vec<u8>>, InvalidModule> {
    let defined = crate::own_memory::define_imported_memory(bytes)?;
    let source = defined.as_deref().unwrap_or(bytes);
    Ok(export_memory_if_missing(source)?.or(defined))
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

    fn memory_exports(bytes: &[u8]) -> Vec<(String, u32)> {
        let mut found = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            if let wasmparser::Payload::ExportSection(section) = payload.unwrap() {
                for export in section {
                    let export = export.unwrap();
                    if export.kind == wasmparser::ExternalKind::Memory {
                        found.push((export.name.to_string(), export.index));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn an_imported_memory_gets_its_export() {
        // (import "env" "memory" (memory 2 64)), a function, a data segment, a custom
        // section: written by hand so this crate needs no assembler.
        let module = b"\0asm\x01\0\0\0\
            \x01\x04\x01\x60\0\0\
            \x02\x10\x01\x03env\x06memory\x02\x01\x02\x40\
            \x03\x02\x01\0\
            \x0a\x04\x01\x02\0\x0b\
            \x0b\x07\x01\0\x41\x08\x0b\x01\x2a\
            \0\x04\x03abc";
        validate(module).unwrap();
        let rewritten = export_memory_if_missing(module).unwrap().unwrap();
        validate(&rewritten).unwrap();
        assert_eq!(memory_exports(&rewritten), [("memory".to_string(), 0)]);
        // Everything else is kept: the export section is inserted, nothing removed.
        assert_eq!(rewritten.len(), module.len() + 12);
        assert!(rewritten.ends_with(b"\0\x04\x03abc"));
        // Done once: a module that exports `memory` is left alone.
        assert_eq!(export_memory_if_missing(&rewritten).unwrap(), None);
    }

    #[test]
    fn existing_exports_are_kept_and_memoryless_modules_left_alone() {
        // (memory 1) (func (export "_start")), no memory export.
        let module = b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0\x03\x02\x01\0\x05\x03\x01\0\x01\
            \x07\x0a\x01\x06_start\0\0\x0a\x04\x01\x02\0\x0b";
        validate(module).unwrap();
        let rewritten = export_memory_if_missing(module).unwrap().unwrap();
        validate(&rewritten).unwrap();
        assert_eq!(memory_exports(&rewritten), [("memory".to_string(), 0)]);
        let shape = crate::shape::ModuleShape::parse(&rewritten).unwrap();
        let names: Vec<&str> = shape.exports.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["_start", "memory"]);
        assert_eq!(export_memory_if_missing(b"\0asm\x01\0\0\0").unwrap(), None);
    }
}
