//! Reading a [`ModuleShape`] from a `.wasm` file's sections with wasmparser: types are
//! resolved through the index spaces (imports first, then the module's own), so exports
//! carry the signature or memory type they name.

use wasmparser::{ExternalKind, Payload, TypeRef};

use super::{Export, ExternShape, FuncSig, Import, MemoryShape, ModuleShape};
use crate::module::InvalidModule;

/// The index spaces seen so far, and the shape being built.
#[derive(Default)]
struct Reader {
    /// Function types by type index (`None` for GC struct/array types).
    types: Vec<Option<FuncSig>>,
    /// Type index of each function, imports first.
    funcs: Vec<u32>,
    memories: Vec<MemoryShape>,
    tables: Vec<u64>,
    /// Exports as read, resolved once every section was seen.
    exports: Vec<(String, ExternalKind, u32)>,
    shape: ModuleShape,
}

pub(super) fn parse(bytes: &[u8]) -> Result<ModuleShape, InvalidModule> {
    let mut reader = Reader::default();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        reader.section(payload?)?;
    }
    Ok(reader.finish())
}

impl Reader {
    fn section(&mut self, payload: Payload<'_>) -> Result<(), InvalidModule> {
        match payload {
            Payload::TypeSection(section) => {
                for group in section {
                    for sub in group?.into_types() {
                        self.types.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => Some(sig_of(f)),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(section) => {
                for import in section {
                    let import = import?;
                    let ty = self.imported(import.ty);
                    self.shape.imports.push(Import {
                        module: import.module.to_string(),
                        name: import.name.to_string(),
                        ty,
                    });
                }
            }
            Payload::FunctionSection(section) => {
                for index in section {
                    self.funcs.push(index?);
                }
            }
            Payload::TableSection(section) => {
                for table in section {
                    let initial = table?.ty.initial;
                    self.tables.push(initial);
                    self.shape.tables.push(initial);
                }
            }
            Payload::MemorySection(section) => {
                for memory in section {
                    let memory = memory_shape(&memory?);
                    self.memories.push(memory);
                    self.shape.memories.push(memory);
                }
            }
            Payload::DataSection(section) => {
                for data in section {
                    if let Some(end) = constant_end(&data?) {
                        self.shape.data_ends.push(end);
                    }
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    let export = export?;
                    self.exports.push((export.name.to_string(), export.kind, export.index));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The shape of one import, entered into its index space.
    fn imported(&mut self, ty: TypeRef) -> ExternShape {
        match ty {
            TypeRef::Func(index) => {
                self.funcs.push(index);
                ExternShape::Func(func_type(&self.types, index))
            }
            TypeRef::Table(t) => {
                self.tables.push(t.initial);
                ExternShape::Table { min: t.initial }
            }
            TypeRef::Memory(m) => {
                self.memories.push(memory_shape(&m));
                ExternShape::Memory(memory_shape(&m))
            }
            TypeRef::Global(_) => ExternShape::Global,
            TypeRef::Tag(_) => ExternShape::Tag,
        }
    }

    /// Resolve the exports to the types they name.
    fn finish(mut self) -> ModuleShape {
        for (name, kind, index) in std::mem::take(&mut self.exports) {
            let at = index as usize;
            let ty = match kind {
                ExternalKind::Func => ExternShape::Func(
                    self.funcs
                        .get(at)
                        .map(|&t| func_type(&self.types, t))
                        .unwrap_or_default(),
                ),
                ExternalKind::Table => ExternShape::Table {
                    min: self.tables.get(at).copied().unwrap_or(0),
                },
                ExternalKind::Memory => match self.memories.get(at) {
                    Some(m) => ExternShape::Memory(*m),
                    None => continue,
                },
                ExternalKind::Global => ExternShape::Global,
                ExternalKind::Tag => ExternShape::Tag,
            };
            self.shape.exports.push(Export { name, ty });
        }
        self.shape
    }
}

/// (memory, offset + length) of an active data segment whose offset is a constant.
fn constant_end(data: &wasmparser::Data<'_>) -> Option<(u32, u64)> {
    let wasmparser::DataKind::Active {
        memory_index,
        offset_expr,
    } = &data.kind
    else {
        return None;
    };
    let mut ops = offset_expr.get_operators_reader();
    let offset = match ops.read().ok()? {
        wasmparser::Operator::I32Const { value } => u64::from(value as u32),
        wasmparser::Operator::I64Const { value } => u64::try_from(value).ok()?,
        _ => return None,
    };
    if !matches!(ops.read().ok()?, wasmparser::Operator::End) {
        return None;
    }
    Some((*memory_index, offset.saturating_add(data.data.len() as u64)))
}

fn sig_of(f: &wasmparser::FuncType) -> FuncSig {
    FuncSig {
        params: f.params().iter().map(|t| t.to_string()).collect(),
        results: f.results().iter().map(|t| t.to_string()).collect(),
    }
}

fn func_type(types: &[Option<FuncSig>], index: u32) -> FuncSig {
    types.get(index as usize).cloned().flatten().unwrap_or_default()
}

fn memory_shape(m: &wasmparser::MemoryType) -> MemoryShape {
    MemoryShape {
        min_pages: m.initial,
        max_pages: m.maximum,
        shared: m.shared,
        memory64: m.memory64,
        page_size: m
            .page_size_log2
            .map_or(65536, |log| 1u64.checked_shl(log).unwrap_or(u64::MAX)),
    }
}
