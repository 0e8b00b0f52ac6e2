//! Rewriting a module section by section: every section copied byte for byte, except the
//! few a rewrite replaces, drops or inserts. Both rewrites shoal makes before compiling
//! ([`crate::own_memory::define_imported_memory`] and
//! [`crate::module::export_memory_if_missing`]) change one or two sections and must leave
//! everything else exactly as the toolchain wrote it; this is the one copy loop they share.

use std::ops::Range;

use wasm_encoder::{RawSection, Section};

use crate::module::InvalidModule;

/// A module's sections in file order: the section id and the byte range of its contents
/// (as [`wasmparser::Payload::as_section`] gives them).
pub(crate) type SectionList = Vec<(u8, Range<usize>)>;

/// One change to a module's sections, by index into its [`SectionList`].
pub(crate) struct Edit<'a> {
    /// Where: `new` goes before the section at this index (after the last one when it is
    /// the list's length).
    pub at: usize,
    /// Whether the section that was at `at` is left out (replaced by `new`, or removed
    /// when `new` is `None`).
    pub replace: bool,
    /// The section written there, if any.
    pub new: Option<&'a dyn Section>,
}

/// The module `bytes` (whose sections are `sections`) with `edits` applied, in the order
/// given where two name the same index.
pub(crate) fn rewrite(bytes: &[u8], sections: &[(u8, Range<usize>)], edits: &[Edit]) -> Result<Vec<u8>, InvalidModule> {
    let mut out = wasm_encoder::Module::new().finish();
    let insert = |at: usize, out: &mut Vec<u8>| {
        let mut replaced = false;
        for edit in edits.iter().filter(|e| e.at == at) {
            if let Some(new) = edit.new {
                new.append_to(out);
            }
            replaced |= edit.replace;
        }
        replaced
    };
    for (i, (id, range)) in sections.iter().enumerate() {
        if insert(i, &mut out) {
            continue;
        }
        let data = bytes.get(range.clone()).ok_or(InvalidModule {
            message: "section extends past the end of the file".into(),
            offset: range.start,
        })?;
        RawSection { id: *id, data }.append_to(&mut out);
    }
    insert(sections.len(), &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(bytes: &[u8]) -> SectionList {
        wasmparser::Parser::new(0)
            .parse_all(bytes)
            .filter_map(|p| p.unwrap().as_section())
            .collect()
    }

    #[test]
    fn no_edit_copies_the_module_byte_for_byte() {
        let module = wat::parse_str(r#"(module (memory 1) (func (export "f")) (data (i32.const 0) "x"))"#).unwrap();
        assert_eq!(rewrite(&module, &sections(&module), &[]).unwrap(), module);
    }

    /// Each section as its id, or the name of a custom section.
    fn names(bytes: &[u8]) -> Vec<String> {
        wasmparser::Parser::new(0)
            .parse_all(bytes)
            .filter_map(|p| match p.unwrap() {
                wasmparser::Payload::CustomSection(c) => Some(c.name().to_string()),
                p => p.as_section().map(|(id, _)| id.to_string()),
            })
            .collect()
    }

    #[test]
    fn edits_insert_replace_and_remove_in_place() {
        let module = wat::parse_str(r#"(module (@custom "a" "1") (memory 1) (@custom "b" "2"))"#).unwrap();
        let list = sections(&module);
        assert_eq!(names(&module), ["5", "a", "b"]);
        let new = wasm_encoder::CustomSection {
            name: "new".into(),
            data: b"x".as_slice().into(),
        };
        // Insert before "a", remove the memory section, append at the end.
        let edits = [
            Edit {
                at: 1,
                replace: false,
                new: Some(&new),
            },
            Edit {
                at: 0,
                replace: true,
                new: None,
            },
            Edit {
                at: 3,
                replace: false,
                new: Some(&new),
            },
        ];
        assert_eq!(
            names(&rewrite(&module, &list, &edits).unwrap()),
            ["new", "a", "b", "new"]
        );
        // Replace in place.
        let edits = [Edit {
            at: 2,
            replace: true,
            new: Some(&new),
        }];
        assert_eq!(names(&rewrite(&module, &list, &edits).unwrap()), ["5", "a", "new"]);
    }

    #[test]
    fn a_range_past_the_end_is_an_error_not_a_panic() {
        let module = wasm_encoder::Module::new().finish();
        let err = rewrite(&module, &[(1, 8..40)], &[]).unwrap_err();
        assert_eq!(err.offset, 8);
    }
}
