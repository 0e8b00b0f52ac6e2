//! Guest memory: growth up to `limits.memory` without copies that double the RSS, and
//! SDK-style guests (which import their memory) running from a memory shoal makes their own.

use crate::support::{self, arg, Sandbox};

/// A guest growing one page at a time to its 64 MiB limit must never hold much more than
/// the limit: with a 1 MiB growth reservation the memory was moved (copied) every 16 pages
/// past the first 8 MiB, holding old and new copy at once (peak ~2x the limit).
#[test]
fn growing_to_the_limit_page_by_page_keeps_the_peak_near_the_limit() {
    let sandbox = Sandbox::new();
    let json = sandbox.path().join("grow.json");
    let out = sandbox.ok(&["bench", "grow", "--limit", "64MiB", "--json", arg(&json)]);
    assert!(out.contains("reached the limit"), "{out}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["pages"], 1024, "{report}");
    let above = report["peak_above_baseline_kib"].as_u64().unwrap();
    // The limit plus 10%: the guest's own 64 MiB, nothing like a second copy.
    assert!(
        above <= 64 * 1024 * 11 / 10,
        "peak {above} KiB above the baseline:\n{out}"
    );
}

/// Past the limit the growth is refused as wasm specifies, and the bench says so.
#[test]
fn a_limit_below_one_page_is_refused_with_its_fix() {
    let sandbox = Sandbox::new();
    let err = sandbox.fails(&["bench", "grow", "--limit", "1KiB"], 1);
    assert!(err.contains("--limit must be at least one wasm page"), "{err}");
}

/// A C guest built the SDK's way imports `env.memory`; shoal now compiles it with that
/// memory defined (so its data segments map copy-on-write from one image). Its text lives
/// in those data segments, and WASI reads it through the memory's export: the banner must
/// come out whole, from `run` and from a precompiled image alike.
#[test]
fn an_sdk_guest_that_imports_its_memory_prints_from_its_data_segments() {
    let sandbox = Sandbox::new();
    let out = sandbox.ok(&["run", arg(&support::image("hello_c.wasm"))]);
    assert!(out.contains("Hello from a shoal C container!"), "{out}");
    assert!(out.contains(" |_| |_|_____|_____|_____\\___/"), "{out}");
    let board = sandbox.path().join("board");
    sandbox.ok(&[
        "images",
        "compile",
        "-o",
        arg(&board),
        arg(&support::image("hello_c.wasm")),
    ]);
    let out = sandbox.ok(&["run", arg(&board.join("hello_c.cwasm"))]);
    assert!(out.contains("Hello from a shoal C container!"), "{out}");
}
