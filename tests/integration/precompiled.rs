//! Precompiled images (`shoal images compile`), the path a board without a compiler takes.

use std::time::Duration;

use crate::support::*;

const LONG: Duration = Duration::from_secs(60);
const HOST: &str = env!("SHOAL_HOST_TARGET");

fn compile(sandbox: &Sandbox, target: &str, out_dir: &str, names: &[&str]) {
    let images: Vec<_> = names.iter().map(|name| image(name)).collect();
    let mut args = vec!["images", "compile", "--target", target, "-o", out_dir];
    args.extend(images.iter().map(|path| arg(path)));
    let out = sandbox.ok(&args);
    for name in names {
        let cwasm = name.replace(".wasm", ".cwasm");
        assert!(out.contains(&cwasm), "{out}");
        assert!(sandbox.path().join(out_dir).join(&cwasm).is_file());
    }
}

/// A stack of precompiled SDK guests runs: validated by `config`, loaded without the
/// compiler or its cache, and the messages flow through the host API.
#[test]
fn a_stack_of_precompiled_images_runs() {
    let sandbox = Sandbox::new();
    compile(
        &sandbox,
        HOST,
        "board",
        &["seq-subscriber.wasm", "seq-publisher.wasm", "hello.wasm"],
    );
    let file = sandbox.write(
        "board/shoal.yaml",
        "containers:\n  sub:\n    image: seq-subscriber.cwasm\n    capabilities: [messaging]\n  pub:\n    image: seq-publisher.cwasm\n    capabilities: [messaging, timers]\n    env: {COUNT: \"20\", PERIOD_MS: \"1\"}\n    depends_on: {sub: {condition: service_started}}\n  hi:\n    image: hello.cwasm\n",
    );
    let output = sandbox.check(&file, &[]);
    assert!(output.status.success(), "{}", stderr(&output));

    let mut up = sandbox.spawn(&["up", "-v", "-f", arg(&file)]);
    // The load line (stderr) and the containers' lines (stdout) come through two pipes,
    // and hi ends whenever its thread runs it: any order.
    up.wait_seen("seq-publisher.cwasm", LONG);
    up.wait_seen("sub | got 19", LONG);
    up.wait_seen("hi exited with code 0", LONG);
    up.signal(libc::SIGINT);
    up.wait_exit(LONG);
    let seen = up.seen.join("\n");
    assert!(seen.contains("loaded precompiled"), "{seen}");
    assert!(seen.contains("Hello from a shoal container!"), "{seen}");
    assert!(!seen.contains("GAP") && !seen.contains("DUP"), "{seen}");
    // Nothing went through the compile cache; and the place looked at is the cache (a
    // plain .wasm run in the same sandbox leaves its entry there), so a wrong path cannot
    // make this pass.
    let cache = sandbox.path().join("data/cache");
    assert_eq!(cached_modules(&cache), 0, "{seen}");
    sandbox.ok(&["run", arg(&image("hello.wasm"))]);
    assert_eq!(
        cached_modules(&cache),
        1,
        "the plain image was compiled into {}",
        cache.display()
    );
}

/// `.cwasm` files anywhere under `dir` (the cache keeps one folder per engine setting).
fn cached_modules(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                cached_modules(&path)
            } else {
                usize::from(path.extension().is_some_and(|x| x == "cwasm"))
            }
        })
        .sum()
}

/// An image compiled for aarch64, or with other engine settings, is refused before
/// anything runs, with the reason and the command that makes a fitting one.
#[test]
fn an_image_for_another_machine_or_settings_is_refused_clearly() {
    let sandbox = Sandbox::new();
    compile(&sandbox, "aarch64-unknown-linux-gnu", "arm", &["hello.wasm"]);
    compile(&sandbox, HOST, "host", &["hello.wasm"]);
    if !HOST.starts_with("aarch64") {
        let file = sandbox.write("arm/shoal.yaml", "containers:\n  hi:\n    image: hello.cwasm\n");
        let err = sandbox.fails(&["up", "-f", arg(&file)], 1);
        assert!(err.contains("arm/hello.cwasm cannot run on this shoal"), "{err}");
        assert!(err.contains("architecture 'aarch64'"), "{err}");
        assert!(
            err.contains(&format!("shoal images compile FILE.wasm --target {HOST}")),
            "{err}"
        );
    }

    let err = sandbox.fails(&["--memory-reservation", "64MiB", "run", "host/hello.cwasm"], 1);
    assert!(err.contains("host/hello.cwasm cannot run on this shoal"), "{err}");
    assert!(err.contains("memory") && err.contains("--memory-reservation"), "{err}");
    // With the settings it was compiled with, the same file runs.
    let out = sandbox.ok(&["run", "host/hello.cwasm"]);
    assert!(out.contains("Hello from a shoal container!"), "{out}");

    // The store keeps .wasm modules; a .cwasm is named by path.
    let err = sandbox.fails(&["images", "add", "host/hello.cwasm"], 1);
    assert!(err.contains("precompiled image"), "{err}");
}

/// Bad input to `images compile` names the file or the target and the fix.
#[test]
fn compile_refuses_bad_targets_and_inputs() {
    let sandbox = Sandbox::new();
    let hello = image("hello.wasm");
    let err = sandbox.fails(&["images", "compile", "--target", "nonsense-triple", arg(&hello)], 1);
    assert!(
        err.contains("cannot compile for target `nonsense-triple`") && err.contains("hint:"),
        "{err}"
    );
    let text = sandbox.write("t.wasm", "(module)");
    let err = sandbox.fails(&["images", "compile", arg(&text)], 1);
    assert!(err.contains("t.wasm"), "{err}");
}
