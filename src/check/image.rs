//! Each image's shape (imports and exports with their types) and every reason it could not
//! be linked, instantiated or started, as diagnostics at the container's `image:` line.
//!
//! A `.wasm` is read with wasmparser; a precompiled `.cwasm` has no sections to read, so
//! it is loaded through wasmtime with the engine settings the runtime will use (loading
//! maps the file and checks it; nothing is compiled or run) and its types are read from
//! the loaded module. Both kinds then go through the same `shoal_abi::shape::problems`.

use std::cell::OnceCell;
use std::path::Path;

use shoal_abi::shape::{Export, ExternShape, FuncSig, Import, MemoryShape, ModuleShape};
use wasmtime::{Engine, ExternType};

use crate::runtime::{engine_config, RuntimeConfig};
use crate::spec::{ContainerSpec, Diagnostic};

/// Where the check gets the engine it loads precompiled images with: the running stack's
/// own, or one made (once, and only when a stack has a `.cwasm`) from the settings the
/// command was given, so an image compiled with other settings is refused as `up` would.
pub enum Engines<'a> {
    Existing(&'a Engine),
    Config(&'a RuntimeConfig, OnceCell<Result<Engine, String>>),
}

impl<'a> Engines<'a> {
    /// An engine made on first use from `config`.
    pub fn from_config(config: &'a RuntimeConfig) -> Self {
        Engines::Config(config, OnceCell::new())
    }

    fn get(&self) -> Result<&Engine, String> {
        match self {
            Engines::Existing(engine) => Ok(engine),
            Engines::Config(config, cell) => cell
                .get_or_init(|| Engine::new(&engine_config(config)).map_err(|e| format!("{e:#}")))
                .as_ref()
                .map_err(Clone::clone),
        }
    }
}

/// The shape of the image at `path` whose bytes are `bytes`; `Err` is a diagnostic
/// message for an image that cannot be read at all (a `.cwasm` this shoal cannot load).
pub fn shape_of(path: &Path, bytes: &[u8], engines: &Engines<'_>) -> Result<ModuleShape, String> {
    if !shoal_abi::module::is_precompiled(bytes) {
        return ModuleShape::parse(bytes).map_err(|e| format!("image {} cannot be read: {e}", path.display()));
    }
    let engine = engines.get()?;
    let module = crate::images::precompiled::load(engine, path).map_err(|e| e.to_string())?;
    Ok(shape_of_module(&module))
}

/// The shape of a loaded module, read through wasmtime's types. Memories and tables the
/// module defines without exporting are not visible here; wasmtime's own record of the
/// largest one stands in for them, so the `limits.memory` check still sees at least that.
pub fn shape_of_module(module: &wasmtime::Module) -> ModuleShape {
    let imports = module
        .imports()
        .map(|i| Import {
            module: i.module().to_string(),
            name: i.name().to_string(),
            ty: extern_shape(&i.ty()),
        })
        .collect();
    let exports: Vec<Export> = module
        .exports()
        .map(|e| Export {
            name: e.name().to_string(),
            ty: extern_shape(&e.ty()),
        })
        .collect();
    // Counts and sizes of the memories and tables the module defines (not imported ones).
    let required = module.resources_required();
    let memories = (required.num_memories > 0)
        .then(|| MemoryShape {
            min_pages: required.max_initial_memory_size.unwrap_or(0),
            max_pages: None,
            shared: false,
            memory64: false,
            page_size: 65536,
        })
        .into_iter()
        .collect();
    let tables = (required.num_tables > 0)
        .then(|| required.max_initial_table_size.unwrap_or(0))
        .into_iter()
        .collect();
    ModuleShape {
        imports,
        exports,
        memories,
        tables,
        data_ends: Vec::new(),
    }
}

fn extern_shape(ty: &ExternType) -> ExternShape {
    match ty {
        ExternType::Func(f) => ExternShape::Func(FuncSig {
            params: f.params().map(|t| t.to_string()).collect(),
            results: f.results().map(|t| t.to_string()).collect(),
        }),
        ExternType::Table(t) => ExternShape::Table { min: t.minimum() },
        ExternType::Memory(m) => ExternShape::Memory(MemoryShape {
            min_pages: m.minimum(),
            max_pages: m.maximum(),
            shared: m.is_shared(),
            memory64: m.is_64(),
            page_size: m.page_size(),
        }),
        ExternType::Global(_) => ExternShape::Global,
        ExternType::Tag(_) => ExternShape::Tag,
    }
}

/// Every reason the container's image could not start, at its `image:` line, each with
/// its fix.
pub fn start_problems(container: &ContainerSpec, path: &Path, shape: &ModuleShape) -> Vec<Diagnostic> {
    shoal_abi::shape::problems(shape, container.limits.memory)
        .into_iter()
        .map(|p| {
            Diagnostic::error(
                Some(container.image_location.clone()),
                format!("containers.{}.image", container.service),
                format!("image {} cannot start: {}", path.display(), p.message),
            )
            .with_hint(p.hint)
        })
        .collect()
}

/// The function imports of a shape as `(module, name)` pairs, for the grant and topic
/// checks.
pub fn function_imports(shape: &ModuleShape) -> Vec<(String, String)> {
    shape
        .imports
        .iter()
        .filter(|i| matches!(i.ty, ExternShape::Func(_)))
        .map(|i| (i.module.clone(), i.name.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_abi::wasi::{WASI_P1_FUNCTIONS, WASI_P1_MODULE};

    /// Every function wasmtime-wasi's preview 1 linker defines, with its signature.
    fn linked_wasi() -> Vec<(String, FuncSig)> {
        let engine = Engine::new(&engine_config(&RuntimeConfig::default())).unwrap();
        let mut linker: wasmtime::Linker<wasmtime_wasi::p1::WasiP1Ctx> = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |cx| cx).unwrap();
        let mut store = wasmtime::Store::new(&engine, wasmtime_wasi::WasiCtxBuilder::new().build_p1());
        let items: Vec<(String, String, wasmtime::Extern)> = linker
            .iter(&mut store)
            .map(|(module, name, item)| (module.to_string(), name.to_string(), item))
            .collect();
        let mut found: Vec<(String, FuncSig)> = items
            .into_iter()
            .map(|(module, name, item)| {
                assert_eq!(module, WASI_P1_MODULE);
                let ExternShape::Func(sig) = extern_shape(&item.ty(&store)) else {
                    panic!("{name} is not a function");
                };
                (name, sig)
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    #[test]
    fn the_wasi_table_is_what_the_linker_serves() {
        let linked = linked_wasi();
        let names: Vec<&str> = linked.iter().map(|(n, _)| n.as_str()).collect();
        let table: Vec<&str> = WASI_P1_FUNCTIONS.iter().map(|f| f.name).collect();
        assert_eq!(names, table);
        for ((name, sig), row) in linked.iter().zip(WASI_P1_FUNCTIONS) {
            assert!(
                sig.matches(row),
                "{name}: linked as {sig}, the table says {}",
                row.signature()
            );
        }
    }

    #[cfg(feature = "compiler")]
    #[test]
    fn a_precompiled_image_has_the_shape_of_its_source() {
        use crate::images::precompiled::{CrossCompiler, HOST_TARGET};
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("m.wasm");
        let wasm = wat::parse_str(
            r#"(module (import "env" "memory" (memory 2 64))
                 (import "env" "ocre_sleep" (func (param i64) (result i32)))
                 (import "env" "table" (table 3 funcref))
                 (memory 5) (table 7 funcref)
                 (func (export "_initialize")))"#,
        )
        .unwrap();
        std::fs::write(&source, &wasm).unwrap();
        let config = RuntimeConfig::default();
        let out = CrossCompiler::new(engine_config(&config), HOST_TARGET)
            .unwrap()
            .compile_to(&source, None)
            .unwrap();
        let engines = Engines::from_config(&config);
        let from_source = shape_of(&source, &wasm, &engines).unwrap();
        let precompiled = shape_of(&out, &std::fs::read(&out).unwrap(), &engines).unwrap();
        assert_eq!(precompiled.imports, from_source.imports);
        // The precompiled module also exports the memory it imports (see `as_runnable`).
        let names = |s: &ModuleShape| s.exports.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&from_source), ["_initialize"]);
        assert_eq!(names(&precompiled), ["_initialize", "memory"]);
        assert_eq!(precompiled.memories.len(), 1);
        assert_eq!(precompiled.memories[0].min_pages, 5);
        assert_eq!(precompiled.tables, [7]);
        let messages = |s: &ModuleShape| -> Vec<String> {
            shoal_abi::shape::problems(s, Some(1 << 20))
                .into_iter()
                .map(|p| p.message)
                .collect()
        };
        assert_eq!(messages(&precompiled), messages(&from_source));
        assert_eq!(messages(&precompiled).len(), 3, "{:#?}", messages(&precompiled));

        // Settings other than the file's: refused with the fix, as `up` would refuse it.
        let other = RuntimeConfig {
            memory_reservation: 64 << 20,
            ..RuntimeConfig::default()
        };
        let err = shape_of(&out, &std::fs::read(&out).unwrap(), &Engines::from_config(&other)).unwrap_err();
        assert!(
            err.contains("cannot run on this shoal") && err.contains("hint:"),
            "{err}"
        );
    }
}
