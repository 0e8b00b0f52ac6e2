//! Issue 14, items 2 and 3 through the binary: a module that only imports its memory runs
//! (`shoal run` and `up`), and `shoal config -q` finds every reason an image could not
//! start, at its `image:` line, for `.wasm` and precompiled `.cwasm` images alike.

use std::path::Path;
use std::time::Duration;

use crate::support::*;

const LONG: Duration = Duration::from_secs(60);
const HOST: &str = env!("SHOAL_HOST_TARGET");

/// The golden check cases' modules (`tests/golden/check/data/*.wat`), assembled into the
/// sandbox under `dir`.
fn write_cases(sandbox: &Sandbox, dir: &str, names: &[&str]) {
    for name in names {
        let wat = repo().join(format!("tests/golden/check/data/{name}.wat"));
        let wasm = wat::parse_file(&wat).unwrap();
        let path = sandbox.path().join(dir).join(format!("{name}.wasm"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, wasm).unwrap();
    }
}

/// A compose file with one container per case, `image: NAME.EXT`; the image lines are
/// 3, 5, 7, ... (column 12).
fn compose(names: &[&str], ext: &str, extra: &str) -> String {
    let mut text = String::from("containers:\n");
    for name in names {
        let service = name.replace('_', "-");
        text.push_str(&format!("  {service}:\n    image: {name}.{ext}\n"));
    }
    text + extra
}

#[test]
fn run_a_module_that_only_imports_its_memory() {
    let sandbox = Sandbox::new();
    let image = image("hello_import_memory.wasm");
    let out = sandbox.ok(&["run", arg(&image)]);
    assert!(out.contains("Hello from a shoal C container!"), "{out}");

    // The same under `up`, precompiled too (`images compile` adds the export first).
    sandbox.ok(&["images", "compile", "-o", "board", arg(&image)]);
    let out = sandbox.ok(&["run", arg(&sandbox.path().join("board/hello_import_memory.cwasm"))]);
    assert!(out.contains("Hello from a shoal C container!"), "{out}");
    let file = sandbox.write(
        "stack/shoal.yaml",
        &format!("containers:\n  hi:\n    image: {}\n", image.display()),
    );
    let output = sandbox.check(&file, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut up = sandbox.up(&file);
    up.wait_seen("hi exited with code 0", LONG);
    up.wait_exit(LONG);
    let seen = up.seen.join("\n");
    assert!(seen.contains("Hello from a shoal C container!"), "{seen}");
}

/// Each case, one container each, all reported in one run with `file:line:col`.
fn assert_all_reported(err: &str, file: &Path, cases: &[(&str, &str)]) {
    for (i, (name, needle)) in cases.iter().enumerate() {
        let line = 3 + 2 * i;
        let place = format!("{}:{line}:12: image ", file.display());
        let reported = err
            .lines()
            .any(|l| l.starts_with(&format!("error: {place}")) && l.contains(name) && l.contains(needle));
        assert!(reported, "{name}: no `{needle}` at {place}\n{err}");
    }
    assert!(err.contains("  hint: "), "{err}");
}

const CASES: [(&str, &str); 4] = [
    (
        "signature",
        "as (param i64) (result i32), but shoal serves it as (param i32) (result i32)",
    ),
    ("table", "as a table; shoal provides no tables"),
    ("no_entry", "neither `_start` nor `_initialize`"),
    ("shared_memory", "shared memory"),
];

#[test]
fn config_finds_every_reason_an_image_cannot_start() {
    let sandbox = Sandbox::new();
    let names: Vec<&str> = CASES.iter().map(|(n, _)| *n).collect();
    write_cases(&sandbox, "stack", &names);
    let file = sandbox.write("stack/shoal.yaml", &compose(&names, "wasm", ""));
    let err = sandbox.fails(&["config", "-q", "-f", arg(&file)], 1);
    assert_all_reported(&err, &file, &CASES);
    // `up` stops at the same check: nothing starts.
    let err = sandbox.fails(&["up", "-f", arg(&file)], 1);
    assert_all_reported(&err, &file, &CASES);
    assert!(!err.contains("failed to start"), "{err}");
}

/// A precompiled image gets the same check, read through wasmtime. A shared memory cannot
/// be precompiled at all (the engine has no threads), so that case is the `.wasm` test's.
#[test]
fn precompiled_images_get_the_same_check() {
    let sandbox = Sandbox::new();
    let cases = &CASES[..3];
    let names: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
    write_cases(&sandbox, "src", &names);
    let sources: Vec<String> = names
        .iter()
        .map(|n| sandbox.path().join(format!("src/{n}.wasm")).display().to_string())
        .collect();
    let mut args = vec!["images", "compile", "--target", HOST, "-o", "board"];
    args.extend(sources.iter().map(String::as_str));
    sandbox.ok(&args);
    let file = sandbox.write("board/shoal.yaml", &compose(&names, "cwasm", ""));
    let err = sandbox.fails(&["config", "-q", "-f", arg(&file)], 1);
    assert_all_reported(&err, &file, cases);
    assert!(err.contains(".cwasm cannot start"), "{err}");

    // Other engine settings than the files': refused at the image line, with the fix.
    let err = sandbox.fails(&["--memory-reservation", "64MiB", "config", "-q", "-f", arg(&file)], 1);
    assert!(
        err.contains(&format!("{}:3:12: precompiled image", file.display())),
        "{err}"
    );
    assert!(err.contains("--memory-reservation"), "{err}");
}
