//! Turn a module's imported memory into a memory it defines, so that wasmtime can map its
//! data segments copy-on-write from one shared image.
//!
//! Why: Ocre-SDK guests import `env.memory`. wasmtime builds copy-on-write memory images
//! only for memories a module *defines*; for an imported memory it writes every data
//! segment into each instance's pages at instantiation, so 10,000 copies of a subscriber
//! held 10,000 private copies of its data. The import carries nothing a defined memory
//! lacks: shoal itself supplies a fresh memory of exactly the imported type to every
//! instance, and no other module shares it. A module that defines the same memory (same
//! initial and maximum pages, exported as `memory`) behaves identically, and its data then
//! comes from the image wasmtime maps from the compiled file (one copy in the page cache
//! for every instance; a page is copied only when a guest writes to it).
//!
//! Only the plain case is rewritten: exactly one memory, imported, 32-bit, not shared,
//! with the default page size. Everything else is left as it is (and keeps working through
//! the imported path), so the rewrite never changes what a module means.

use wasmparser::{Payload, TypeRef};

use crate::module::InvalidModule;
use crate::sections::{rewrite, Edit, SectionList};

/// Section ids that come after the memory section in a module's binary order (tag, global,
/// export, start, element, data count, code, data).
const AFTER_MEMORY: [u8; 8] = [13, 6, 7, 8, 9, 12, 10, 11];
const IMPORT_SECTION: u8 = 2;

/// The module with its one imported memory turned into a defined memory of the same type,
/// `Ok(None)` when the module is not the plain case described in the module docs.
pub fn define_imported_memory(bytes: &[u8]) -> Result<Option<Vec<u8>>, InvalidModule> {
    let mut sections: SectionList = Vec::new();
    // The import section's index among the sections, and what it keeps.
    let mut imports: Option<(usize, KeptImports)> = None;
    let mut memories = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload?;
        match &payload {
            Payload::ImportSection(section) => {
                let kept = without_memories(bytes, section)?;
                memories += kept.memories;
                imports = Some((sections.len(), kept));
            }
            Payload::MemorySection(section) => memories += section.count(),
            _ => {}
        }
        if let Some(section) = payload.as_section() {
            sections.push(section);
        }
    }
    let Some((
        import_at,
        KeptImports {
            raw,
            count,
            memory: Some(ty),
            ..
        },
    )) = imports
    else {
        return Ok(None);
    };
    if memories != 1 || ty.shared || ty.memory64 || ty.page_size_log2.is_some() {
        return Ok(None);
    }
    let mut import_data = Vec::with_capacity(raw.len() + 5);
    leb128_u32(&mut import_data, count);
    import_data.extend_from_slice(&raw);
    let import_section = wasm_encoder::RawSection {
        id: IMPORT_SECTION,
        data: &import_data,
    };
    let mut memory_section = wasm_encoder::MemorySection::new();
    memory_section.memory(wasm_encoder::MemoryType {
        minimum: ty.initial,
        maximum: ty.maximum,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let memory_at = sections
        .iter()
        .position(|(id, _)| AFTER_MEMORY.contains(id))
        .unwrap_or(sections.len());
    let edits = [
        // The import section without the memory (none at all when nothing else is left).
        Edit {
            at: import_at,
            replace: true,
            new: (count > 0).then_some(&import_section as &dyn wasm_encoder::Section),
        },
        Edit {
            at: memory_at,
            replace: false,
            new: Some(&memory_section),
        },
    ];
    Ok(Some(rewrite(bytes, &sections, &edits)?))
}

/// An import section with its memory imports taken out.
struct KeptImports {
    /// The other entries' raw bytes, in their order (function indices must not move).
    raw: Vec<u8>,
    /// How many entries `raw` holds.
    count: u32,
    /// How many memories were imported, and the last one's type.
    memories: u32,
    memory: Option<wasmparser::MemoryType>,
}

fn without_memories(bytes: &[u8], section: &wasmparser::ImportSectionReader) -> Result<KeptImports, InvalidModule> {
    let end = section.range().end;
    let mut entries: Vec<(usize, TypeRef)> = Vec::new();
    for item in section.clone().into_iter_with_offsets() {
        let (offset, import) = item?;
        entries.push((offset, import.ty));
    }
    let mut kept = KeptImports {
        raw: Vec::new(),
        count: 0,
        memories: 0,
        memory: None,
    };
    for (i, (offset, ty)) in entries.iter().enumerate() {
        if let TypeRef::Memory(ty) = ty {
            kept.memories += 1;
            kept.memory = Some(*ty);
            continue;
        }
        let next = entries.get(i + 1).map_or(end, |(o, _)| *o);
        let raw = bytes.get(*offset..next).ok_or(InvalidModule {
            message: "import extends past the end of the file".into(),
            offset: *offset,
        })?;
        kept.raw.extend_from_slice(raw);
        kept.count += 1;
    }
    Ok(kept)
}

/// Unsigned LEB128, as section counts are written.
fn leb128_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::{ExternShape, ModuleShape};

    fn wasm(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap()
    }

    fn memory_imports(shape: &ModuleShape) -> usize {
        shape
            .imports
            .iter()
            .filter(|i| matches!(i.ty, ExternShape::Memory(_)))
            .count()
    }

    #[test]
    fn an_sdk_style_module_defines_the_memory_it_imported() {
        let module = wasm(
            r#"(module
                 (type (func (param i32 i32) (result i32)))
                 (import "env" "ocre_publish_message" (func (type 0)))
                 (import "env" "memory" (memory 2 64))
                 (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                 (global (mut i32) (i32.const 1024))
                 (func (export "_start") (drop (call 0 (i32.const 8) (i32.const 1))))
                 (data (i32.const 8) "hello")
                 (@custom "note" "kept"))"#,
        );
        let rewritten = define_imported_memory(&module).unwrap().unwrap();
        crate::module::validate(&rewritten).unwrap();
        let shape = ModuleShape::parse(&rewritten).unwrap();
        assert_eq!(memory_imports(&shape), 0);
        // The function imports keep their order (function indices must not move).
        let names: Vec<&str> = shape.imports.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["ocre_publish_message", "proc_exit"]);
        assert_eq!(shape.memories.len(), 1);
        assert_eq!(shape.memories[0].min_pages, 2);
        assert_eq!(shape.memories[0].max_pages, Some(64));
        assert!(rewritten.windows(4).any(|w| w == b"kept"));
        // Done once: the result has no import left to rewrite.
        assert_eq!(define_imported_memory(&rewritten).unwrap(), None);
    }

    #[test]
    fn a_memory_as_the_only_import_leaves_no_import_section() {
        let module = wasm(r#"(module (import "env" "memory" (memory 1)) (func (export "_start")))"#);
        let rewritten = define_imported_memory(&module).unwrap().unwrap();
        crate::module::validate(&rewritten).unwrap();
        let shape = ModuleShape::parse(&rewritten).unwrap();
        assert!(shape.imports.is_empty());
        assert_eq!(shape.memories[0].min_pages, 1);
        assert_eq!(shape.memories[0].max_pages, None);
    }

    #[test]
    fn other_cases_are_left_alone() {
        for text in [
            // A memory the module defines already.
            r#"(module (memory 1))"#,
            // No memory at all.
            r#"(module (func (export "_start")))"#,
            // Two memories: an imported one and a defined one.
            r#"(module (import "env" "memory" (memory 1)) (memory 1))"#,
            // A shared memory (refused by the static check, never rewritten).
            r#"(module (import "env" "memory" (memory 1 2 shared)))"#,
            // A 64-bit memory.
            r#"(module (import "env" "memory" (memory i64 1)))"#,
        ] {
            assert_eq!(define_imported_memory(&wasm(text)).unwrap(), None, "{text}");
        }
    }

    #[test]
    fn leb128() {
        let mut out = Vec::new();
        for v in [0, 127, 128, 300, u32::MAX] {
            out.clear();
            leb128_u32(&mut out, v);
            let mut reader = wasmparser::BinaryReader::new(&out, 0);
            assert_eq!(reader.read_var_u32().unwrap(), v);
            assert!(reader.eof());
        }
    }
}
