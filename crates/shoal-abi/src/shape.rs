//! What a module imports and exports, with types, and every reason shoal could not
//! instantiate or start it, decided before anything runs.
//!
//! `shoal config` used to compare only import *names* with the ABI table, so a module that
//! imported a known function with another signature, a table, a global, or a shared
//! memory passed, and `up` then started the rest of the stack and failed on it. The
//! [`ModuleShape`] here is the part of a module that decides linking and starting; it is
//! read from a `.wasm` by [`ModuleShape::parse`] (wasmparser, no compilation) and, in the
//! runtime crate, from a precompiled `.cwasm` through wasmtime, so both kinds of image get
//! the same [`problems`].

mod parse;

use crate::module::InvalidModule;
use crate::wasi::{find_wasi, WASI_P1_MODULE};
use crate::HostFn;

/// A function signature with its types as the text format names them (`i32`, `v128`,
/// `funcref`, ...), so types the ABI never uses still print in a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FuncSig {
    pub params: Vec<String>,
    pub results: Vec<String>,
}

impl FuncSig {
    /// Whether this is exactly the signature of the table's row `f`.
    pub fn matches(&self, f: &HostFn) -> bool {
        let same = |have: &[String], want: &[crate::WasmType]| {
            have.len() == want.len() && have.iter().zip(want).all(|(h, w)| h == w.as_str())
        };
        same(&self.params, f.params) && same(&self.results, f.results)
    }
}

impl std::fmt::Display for FuncSig {
    /// `(param i32 i32) (result f64)`, the form [`HostFn::signature`] prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut groups = Vec::new();
        if !self.params.is_empty() {
            groups.push(format!("(param {})", self.params.join(" ")));
        }
        if !self.results.is_empty() {
            groups.push(format!("(result {})", self.results.join(" ")));
        }
        if groups.is_empty() {
            return f.write_str("(no parameters, no results)");
        }
        f.write_str(&groups.join(" "))
    }
}

/// A linear memory's type: what decides whether shoal can create it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryShape {
    /// Initial size in pages.
    pub min_pages: u64,
    pub max_pages: Option<u64>,
    pub shared: bool,
    pub memory64: bool,
    /// Bytes per page (65,536 unless the module uses custom page sizes).
    pub page_size: u64,
}

impl MemoryShape {
    /// The bytes the memory holds as soon as it exists.
    pub fn initial_bytes(&self) -> u64 {
        self.min_pages.saturating_mul(self.page_size)
    }
}

/// The type of one import or export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternShape {
    Func(FuncSig),
    /// A table and its initial number of elements.
    Table {
        min: u64,
    },
    Memory(MemoryShape),
    Global,
    Tag,
}

impl ExternShape {
    /// "a function", "a table", ... for messages.
    pub fn what(&self) -> &'static str {
        match self {
            ExternShape::Func(_) => "a function",
            ExternShape::Table { .. } => "a table",
            ExternShape::Memory(_) => "a memory",
            ExternShape::Global => "a global",
            ExternShape::Tag => "a tag",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub module: String,
    pub name: String,
    pub ty: ExternShape,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub name: String,
    pub ty: ExternShape,
}

/// The imports and exports of a module, plus the memories and tables it defines itself
/// (they count against `limits.memory` from the start).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModuleShape {
    pub imports: Vec<Import>,
    pub exports: Vec<Export>,
    /// Memories the module defines (not imported ones).
    pub memories: Vec<MemoryShape>,
    /// Initial element counts of the tables the module defines.
    pub tables: Vec<u64>,
    /// Active data segments with a constant offset, as (memory index, end offset): one that
    /// ends past its memory's initial size traps instantiation. Empty for `.cwasm` images
    /// (wasmtime keeps no record of them that a check could read).
    pub data_ends: Vec<(u32, u64)>,
}

/// Bytes a table element costs against `limits.memory` (the runtime's limiter counts the
/// same: one pointer per element).
pub const TABLE_ELEMENT_BYTES: u64 = 8;

impl ModuleShape {
    /// Read the shape of a core module from its sections (no validation beyond what
    /// reading needs: validate the module first for a full verdict).
    pub fn parse(bytes: &[u8]) -> Result<ModuleShape, InvalidModule> {
        parse::parse(bytes)
    }

    fn export(&self, name: &str) -> Option<&ExternShape> {
        self.exports.iter().find(|e| e.name == name).map(|e| &e.ty)
    }
}

/// One reason the module cannot be instantiated or started by shoal: what is wrong, and
/// how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub hint: String,
}

fn problem(message: String, hint: impl Into<String>) -> Problem {
    Problem {
        message,
        hint: hint.into(),
    }
}

/// Every reason linking, instantiation or `_start` would fail, all at once. `memory_limit`
/// is the container's `limits.memory` in bytes. Import *names* of `env` functions shoal
/// does not serve are the caller's business (it words them with the capabilities); this
/// covers everything else: signatures, kinds of import, memories, the entry point.
pub fn problems(shape: &ModuleShape, memory_limit: Option<u64>) -> Vec<Problem> {
    let mut found = Vec::new();
    for import in &shape.imports {
        if let Some(p) = import_problem(import) {
            found.push(p);
        }
    }
    let all_memories = shape
        .imports
        .iter()
        .filter_map(|i| match &i.ty {
            ExternShape::Memory(m) => Some(*m),
            _ => None,
        })
        .chain(shape.memories.iter().copied());
    for memory in all_memories.clone() {
        if memory.shared {
            found.push(problem(
                "it has a shared memory, and shoal runs no wasm threads".into(),
                "link without `--shared-memory` and build without `-pthread` (target `wasm32-wasip1`, not `wasm32-wasip1-threads`)",
            ));
        }
        if memory.memory64 {
            found.push(problem(
                "it has a 64-bit memory (memory64), which the Ocre ABI's 32-bit pointers cannot address".into(),
                "build for `wasm32-wasip1` (32-bit memory)",
            ));
        }
    }
    found.extend(limit_problem(shape, all_memories.clone(), memory_limit));
    let index_space: Vec<MemoryShape> = all_memories.collect();
    for &(memory, end) in &shape.data_ends {
        let size = index_space.get(memory as usize).map_or(0, MemoryShape::initial_bytes);
        if end > size {
            found.push(problem(
                format!("a data segment ends at byte {end}, past its memory's initial {} (instantiation would trap)", bytes(size)),
                "link the module again (a linker places data inside the initial memory), or raise the memory's initial size",
            ));
        }
    }
    found.extend(entry_problems(shape));
    if let Some(other) = shape
        .export(crate::module::MEMORY_EXPORT)
        .filter(|t| !matches!(t, ExternShape::Memory(_)))
    {
        found.push(problem(
            format!(
                "its `memory` export is {}, but WASI reads guest memory through that name",
                other.what()
            ),
            "export the linear memory as `memory` (wasm-ld `--export-memory`) and rename the other export",
        ));
    }
    found
}

/// A problem with one import: wrong kind, wrong signature, or a WASI function shoal lacks.
fn import_problem(import: &Import) -> Option<Problem> {
    let what = format!("`{}.{}`", import.module, import.name);
    match (&import.ty, import.module.as_str()) {
        (ExternShape::Memory(_), _) => None,
        (ExternShape::Func(_), "env") if import.name == crate::module::MEMORY_EXPORT => Some(problem(
            format!("it imports {what} as a function; shoal supplies `env.memory` as the linear memory"),
            "rename the function, or import the memory (wasm-ld `--import-memory`)",
        )),
        (ExternShape::Func(sig), "env") => {
            let row = HostFn::find(&import.name)?;
            (!sig.matches(row)).then(|| {
                problem(
                    format!(
                        "it imports {what} as {sig}, but shoal serves it as {}",
                        row.signature()
                    ),
                    format!(
                        "declare it as the Ocre SDK header does: {} {}",
                        row.name,
                        row.signature()
                    ),
                )
            })
        }
        (ExternShape::Func(sig), WASI_P1_MODULE) => match find_wasi(&import.name) {
            None => Some(problem(
                format!("it imports {what}, which is not a WASI preview 1 function"),
                "build with a wasi-libc for `wasm32-wasip1`; shoal serves the functions of the WASI preview 1 spec",
            )),
            Some(row) if !sig.matches(row) => Some(problem(
                format!("it imports {what} as {sig}, but WASI preview 1 defines it as {}", row.signature()),
                "build with a wasi-libc for `wasm32-wasip1`",
            )),
            Some(_) => None,
        },
        // Functions of other modules are reported by name by the caller.
        (ExternShape::Func(_), _) => None,
        (ExternShape::Table { .. }, _) => Some(problem(
            format!("it imports {what} as a table; shoal provides no tables"),
            "link without `--import-table` (the module then defines its own table)",
        )),
        (ExternShape::Global, _) => Some(problem(
            format!("it imports {what} as a global; shoal provides no globals"),
            "link the module fully (no `--import-undefined` for data symbols, no dynamic linking with `-shared`/`-pie`)",
        )),
        (ExternShape::Tag, _) => Some(problem(
            format!("it imports {what} as an exception tag; shoal provides none"),
            "define the tag in the module, or build without exception handling imports",
        )),
    }
}

/// The memories and tables a module holds from the start, against `limits.memory`: more
/// than the limit and instantiation is refused.
fn limit_problem(
    shape: &ModuleShape,
    memories: impl Iterator<Item = MemoryShape>,
    limit: Option<u64>,
) -> Option<Problem> {
    let limit = limit?;
    let table_elements = shape.imports.iter().filter_map(|i| match i.ty {
        ExternShape::Table { min } => Some(min),
        _ => None,
    });
    let tables: u64 = table_elements
        .chain(shape.tables.iter().copied())
        .fold(0u64, |sum, n| sum.saturating_add(n.saturating_mul(TABLE_ELEMENT_BYTES)));
    let memory: u64 = memories.fold(0u64, |sum, m| sum.saturating_add(m.initial_bytes()));
    let initial = memory.saturating_add(tables);
    (initial > limit).then(|| {
        problem(
            format!(
                "it needs {} of memory and tables as soon as it starts, more than `limits.memory` ({})",
                bytes(initial),
                bytes(limit)
            ),
            format!(
                "raise `limits.memory` to at least {}, or link the module with a smaller initial memory",
                bytes(initial)
            ),
        )
    })
}

/// The entry point: shoal runs WASI commands, so `_start` with no parameters and no results.
fn entry_problems(shape: &ModuleShape) -> Option<Problem> {
    match shape.export("_start") {
        Some(ExternShape::Func(sig)) if sig.params.is_empty() && sig.results.is_empty() => None,
        Some(ExternShape::Func(sig)) => Some(problem(
            format!("its `_start` export has the signature {sig}; a WASI command's takes no parameters and returns nothing"),
            "build it as a WASI command (`main` in C or Rust, linked by the wasi-libc crt1)",
        )),
        Some(other) => Some(problem(
            format!("its `_start` export is {}, not a function", other.what()),
            "build it as a WASI command (`main` in C or Rust, linked by the wasi-libc crt1)",
        )),
        None if shape.export("_initialize").is_some() => Some(problem(
            "it is a WASI reactor (exports `_initialize` but no `_start`); shoal runs commands".into(),
            "build it as a command with a `main` (drop `-mexec-model=reactor`)",
        )),
        None => Some(problem(
            "it has neither `_start` nor `_initialize`, so there is nothing to run".into(),
            "build it as a WASI command with a `main` (wasi-libc's crt1 exports `_start`); with `--no-entry` nothing runs",
        )),
    }
}

/// A byte count as people read it.
fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if n >= scale && n % scale == 0 {
            return format!("{} {unit}", n / scale);
        }
        if n >= scale {
            return format!("{:.1} {unit}", n as f64 / scale as f64);
        }
    }
    format!("{n} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problems of a module written in the text format, as their messages.
    fn found(wat: &str, limit: Option<u64>) -> Vec<String> {
        let bytes = wat::parse_str(wat).unwrap();
        problems(&ModuleShape::parse(&bytes).unwrap(), limit)
            .into_iter()
            .map(|p| p.message)
            .collect()
    }

    const START: &str = r#"(func (export "_start"))"#;

    #[test]
    fn a_command_with_right_signatures_has_no_problems() {
        let module = format!(
            r#"(module (import "env" "memory" (memory 2 64))
                 (import "env" "ocre_sensors_read" (func (param i32 i32) (result f64)))
                 (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
                 (import "other" "thing" (func)) {START})"#
        );
        assert_eq!(found(&module, Some(128 << 10)), Vec::<String>::new());
    }

    #[test]
    fn wrong_signatures_are_named_with_the_right_one() {
        let module = format!(
            r#"(module (import "env" "ocre_sleep" (func (param i64) (result i32)))
                 (import "wasi_snapshot_preview1" "proc_exit" (func (param i32) (result i32)))
                 (import "wasi_snapshot_preview1" "thread_spawn" (func (param i32) (result i32))) {START})"#
        );
        assert_eq!(
            found(&module, None),
            [
                "it imports `env.ocre_sleep` as (param i64) (result i32), but shoal serves it as (param i32) (result i32)",
                "it imports `wasi_snapshot_preview1.proc_exit` as (param i32) (result i32), but WASI preview 1 defines it as (param i32)",
                "it imports `wasi_snapshot_preview1.thread_spawn`, which is not a WASI preview 1 function",
            ]
        );
    }

    #[test]
    fn tables_globals_and_shared_memories_cannot_be_served() {
        let module = format!(
            r#"(module (import "env" "__indirect_function_table" (table 1 funcref))
                 (import "env" "__stack_pointer" (global (mut i32)))
                 (memory 1 1 shared) {START})"#
        );
        let got = found(&module, None);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(
            got[0].contains("`env.__indirect_function_table` as a table"),
            "{got:#?}"
        );
        assert!(got[1].contains("`env.__stack_pointer` as a global"), "{got:#?}");
        assert!(got[2].contains("shared memory"), "{got:#?}");
    }

    #[test]
    fn the_entry_point_is_checked() {
        assert_eq!(
            found("(module (memory 1))", None),
            ["it has neither `_start` nor `_initialize`, so there is nothing to run"]
        );
        assert!(found(r#"(module (func (export "_initialize")))"#, None)[0].contains("reactor"));
        assert!(found(r#"(module (func (export "_start") (param i32)))"#, None)[0]
            .contains("its `_start` export has the signature (param i32)"));
        assert!(found(r#"(module (memory (export "_start") 1))"#, None)[0].contains("is a memory, not a function"));
        assert!(
            found(r#"(module (func (export "_start")) (func (export "memory")))"#, None)[0]
                .contains("its `memory` export is a function")
        );
    }

    #[test]
    fn the_initial_memory_must_fit_the_limit() {
        let module = format!(r#"(module (import "env" "memory" (memory 2 64)) (table 1024 funcref) {START})"#);
        assert_eq!(found(&module, Some((128 << 10) + 8192)), Vec::<String>::new());
        assert_eq!(
            found(&module, Some(128 << 10)),
            ["it needs 136 KiB of memory and tables as soon as it starts, more than `limits.memory` (128 KiB)"]
        );
    }

    #[test]
    fn data_must_fit_the_initial_memory() {
        let module = |offset: u32| {
            format!(r#"(module (import "env" "memory" (memory 1)) (data (i32.const {offset}) "abcd") {START})"#)
        };
        assert_eq!(found(&module(65532), None), Vec::<String>::new());
        assert_eq!(
            found(&module(65533), None),
            ["a data segment ends at byte 65537, past its memory's initial 64 KiB (instantiation would trap)"]
        );
    }

    #[test]
    fn exports_carry_their_types() {
        let bytes = wat::parse_str(
            r#"(module (type (func (param i32))) (import "env" "f" (func (type 0)))
                 (memory (export "memory") 3) (func (export "g") (type 0)) (export "f" (func 0)))"#,
        )
        .unwrap();
        let shape = ModuleShape::parse(&bytes).unwrap();
        let i32_param = ExternShape::Func(FuncSig {
            params: vec!["i32".into()],
            results: vec![],
        });
        assert_eq!(shape.export("g"), Some(&i32_param));
        assert_eq!(shape.export("f"), Some(&i32_param));
        assert!(matches!(shape.export("memory"), Some(ExternShape::Memory(m)) if m.min_pages == 3));
        assert_eq!(shape.memories.len(), 1);
    }
}
