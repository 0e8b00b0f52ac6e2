//! Golden diagnostics of the image check: each `tests/golden/check/NAME.yaml` goes through
//! [`load_checked`](super::load_checked) (spec, then the images), as `shoal config` does,
//! and its diagnostics are compared with `NAME.stderr`. The images are small modules in the
//! text format, `data/*.wat`, assembled to `data/*.wasm` beside them (committed, so the
//! compose files can name them; this test fails when one is stale).
//! Regenerate both with `SHOAL_UPDATE_GOLDEN=1 cargo test -p shoal --lib golden`.
//!
//! They live apart from `tests/golden/config` because that folder's runner (in
//! `shoal-spec`) checks the file alone, without images' imports.

use std::path::{Path, PathBuf};

use super::{load_checked, Engines};
use crate::images::ImageStore;
use crate::runtime::RuntimeConfig;
use crate::spec::golden::{compare, finish, update_requested};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/check")
}

fn sorted_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

/// Every `.wasm` is its `.wat` assembled; with `update`, (re)write the stale ones.
/// Returns the stale ones (when checking) and how many were rewritten (when updating).
fn assemble(update: bool) -> (Vec<String>, usize) {
    let mut stale = Vec::new();
    let mut rewritten = 0;
    for wat in sorted_files(&golden_dir().join("data"), "wat") {
        let want = wat::parse_file(&wat).unwrap();
        let wasm = wat.with_extension("wasm");
        if std::fs::read(&wasm).ok().as_deref() != Some(&want[..]) {
            if update {
                std::fs::write(&wasm, &want).unwrap();
                rewritten += 1;
            } else {
                stale.push(format!("{} is not {} assembled", wasm.display(), wat.display()));
            }
        }
    }
    (stale, rewritten)
}

#[test]
fn golden_image_diagnostics() {
    let update = update_requested("SHOAL_UPDATE_GOLDEN");
    let (mut failures, mut rewritten) = assemble(update);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).display().to_string();
    let data = tempfile::tempdir().unwrap();
    let images = ImageStore::new(data.path());
    let config = RuntimeConfig::default();
    let cases = sorted_files(&golden_dir(), "yaml");
    assert!(cases.len() >= 5);
    let total = cases.len() + sorted_files(&golden_dir().join("data"), "wat").len();
    for yaml in cases {
        let diagnostics = match load_checked(&yaml, &images, &Engines::from_config(&config)) {
            Ok((_, warnings)) => warnings,
            Err(all) => all,
        };
        let got = crate::spec::render_diagnostics(&diagnostics).replace(&root, "$ROOT");
        match compare(&yaml.with_extension("stderr"), &got, update) {
            Ok(rewrote) => rewritten += usize::from(rewrote),
            Err(failure) => failures.push(failure),
        }
    }
    finish(
        "SHOAL_UPDATE_GOLDEN",
        update,
        rewritten,
        total,
        &failures,
        "golden image diagnostics differ (regenerate with `SHOAL_UPDATE_GOLDEN=1 cargo test -p shoal --lib golden`)",
    );
}
