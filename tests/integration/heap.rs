//! Host heap per parked container (issue 15), from the bench's own accounting: a change
//! that makes every container's task or host state larger again fails here, in bytes, not
//! in time.

use crate::support::Sandbox;

/// Debug build (the test binary's): the container task's future was 7,832 bytes and the
/// host heap of a parked minimal guest ~20 KB before issue 15 boxed the task's rare steps
/// and shared the spec; now ~1 KB and ~12.7 KB.
const MAX_TASK_FUTURE_BYTES: u64 = 2048;
const MAX_HOST_HEAP_BYTES: f64 = 16.0 * 1024.0;

#[test]
fn a_parked_containers_task_and_host_heap_stay_small() {
    let sandbox = Sandbox::new();
    let json = sandbox.path().join("density.json");
    let json_arg = json.to_str().expect("a UTF-8 temp path");
    sandbox.ok(&[
        "bench",
        "density",
        "--max",
        "200",
        "--idle-secs",
        "0",
        "--guest",
        "minimal",
        "--json",
        json_arg,
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the --json file")).expect("JSON");
    let task = report["task_future_bytes"]
        .as_u64()
        .expect("task_future_bytes in the report");
    assert!(
        task > 0 && task <= MAX_TASK_FUTURE_BYTES,
        "a container task's future is {task} bytes (at most {MAX_TASK_FUTURE_BYTES}): box what it holds only while starting"
    );
    // `null` where the C library cannot count its heap (not glibc): nothing to check there.
    if let Some(heap) = report["heap_per_container_bytes"].as_f64() {
        assert!(
            heap <= MAX_HOST_HEAP_BYTES,
            "host heap per parked container is {heap:.0} bytes (at most {MAX_HOST_HEAP_BYTES}); see runtime/heap_account.rs"
        );
    }
}
