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

/// `images rm` keeps an image a running stack uses (the error names the container, the
/// project and the fix) and removes nothing of the list then; `--force` removes it.
#[test]
fn an_image_a_running_stack_uses_is_kept_unless_forced() {
    let sandbox = Sandbox::new();
    let digest_of = |name: &str| {
        let added = sandbox.ok(&["images", "add", arg(&image(name))]);
        added
            .split_whitespace()
            .next()
            .and_then(|d| d.strip_prefix("sha256:"))
            .unwrap_or_else(|| panic!("no digest in: {added}"))
            .to_owned()
    };
    let used = digest_of("seq-subscriber.wasm");
    let unused = digest_of("hello.wasm");
    let file = sandbox.write(
        "shoal.yaml",
        &format!("name: keep\ncontainers:\n  show:\n    image: sha256:{used}\n    capabilities: [messaging]\n    subscribe: [\"seq/\"]\n"),
    );
    sandbox.ok(&["up", "-d", "-f", arg(&file)]);
    sandbox.wait_row("keep", "show", std::time::Duration::from_secs(60), |r| {
        r["state"] == "running"
    });

    let err = sandbox.fails(&["images", "rm", &unused[..12], &used[..12]], 1);
    assert!(
        err.contains(&format!("image sha256:{used} (seq-subscriber.wasm) is still needed"))
            && err.contains("container show of the running project keep")
            && err.contains("`shoal down -p keep`")
            && err.contains(&format!("`shoal images rm --force {}`", &used[..12])),
        "{err}"
    );
    // Nothing of the list was removed.
    let list = sandbox.ok(&["images"]);
    assert!(list.contains(&used) && list.contains(&unused), "{list}");

    let out = sandbox.ok(&["images", "rm", "--force", &used[..12]]);
    assert!(out.contains(&format!("removed sha256:{used}")), "{out}");
    sandbox.ok(&["images", "rm", &unused[..12]]);
    assert!(!sandbox.ok(&["images"]).contains(&unused));
    sandbox.ok(&["down", "-p", "keep"]);
}
