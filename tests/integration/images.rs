//! The image store and the compile cache through the CLI.

use crate::support::*;

#[test]
fn add_list_run_by_digest_and_remove() {
    let sandbox = Sandbox::new();
    let added = sandbox.ok(&["images", "add", arg(&image("hello.wasm"))]);
    let digest = added
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    assert_eq!(digest.len(), 64);

    let list = sandbox.ok(&["images"]);
    assert!(list.starts_with("SHA-256"), "{list}");
    assert!(list.contains(&digest) && list.contains("hello.wasm"), "{list}");

    let file = sandbox.write(
        "shoal.yaml",
        &format!("containers:\n  hi:\n    image: sha256:{digest}\n"),
    );
    let output = sandbox.run(&["up", "-v", "-f", arg(&file)]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("hi | "));
    assert!(
        stderr(&output).contains("compiled"),
        "first up compiles: {}",
        stderr(&output)
    );
    let output = sandbox.run(&["up", "-v", "-f", arg(&file)]);
    assert!(
        stderr(&output).contains("loaded from the compile cache"),
        "second up hits the cache: {}",
        stderr(&output)
    );

    sandbox.ok(&["images", "rm", &digest[..10]]);
    let output = sandbox.check(&file, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("not in the image store"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn adding_a_file_that_is_not_wasm_fails_clearly() {
    let sandbox = Sandbox::new();
    let bad = sandbox.write("bad.wasm", "definitely not wasm");
    let err = sandbox.fails(&["images", "add", arg(&bad)], 1);
    assert!(err.contains("is not a valid WebAssembly module"), "{err}");
}
