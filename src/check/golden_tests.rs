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
use crate::spec::golden::Run;

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

/// Every `.wasm` is its `.wat` assembled (rewritten when updating).
fn assemble(run: &mut Run) {
    for wat in sorted_files(&golden_dir().join("data"), "wat") {
        let wasm = wat.with_extension("wasm");
        run.derived(&wasm, &wat::parse_file(&wat).unwrap(), || {
            format!("{} is not {} assembled", wasm.display(), wat.display())
        });
    }
}

#[test]
fn golden_image_diagnostics() {
    let mut run = Run::new("SHOAL_UPDATE_GOLDEN");
    assemble(&mut run);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).display().to_string();
    let data = tempfile::tempdir().unwrap();
    let images = ImageStore::new(data.path());
    let config = RuntimeConfig::default();
    let cases = sorted_files(&golden_dir(), "yaml");
    assert!(cases.len() >= 5);
    for yaml in cases {
        let diagnostics = match load_checked(&yaml, &images, &Engines::from_config(&config)) {
            Ok((_, warnings)) => warnings,
            Err(all) => all,
        };
        let got = crate::spec::render_diagnostics(&diagnostics).replace(&root, "$ROOT");
        run.text(&yaml.with_extension("stderr"), &got);
    }
    run.finish(
        "golden image diagnostics differ (regenerate with `SHOAL_UPDATE_GOLDEN=1 cargo test -p shoal --lib golden`)",
    );
}
