//! Regression tests for the reference runtime's measured defects (`../shared/ocre-abi.md`)
//! that no other test covers; `compose-examples/guests/HOSTILE.md` maps every defect to
//! the test that proves shoal does not have it.

use std::time::Duration;

use crate::support::*;

const LONG: Duration = Duration::from_secs(60);

fn run_stack(sandbox: &Sandbox, body: &str) -> String {
    let file = sandbox.write("shoal.yaml", &body.replace("IMAGES", &images().display().to_string()));
    stdout(&sandbox.run(&["up", "-f", arg(&file)]))
}

/// Reference: a dead container's leaked timer delivered events to the next container at
/// the same address. shoal: a container that exits with timers armed is restarted twice;
/// each new run sees no timer event it did not create.
#[test]
fn a_restarted_container_gets_no_timer_event_of_its_previous_run() {
    let sandbox = Sandbox::new();
    let out = run_stack(
        &sandbox,
        "containers:\n  again:\n    image: IMAGES/hostile.wasm\n    args: [orphan-check]\n    capabilities: [timers]\n    restart: on-failure:2\n    restart_delay: 100ms\n",
    );
    assert_eq!(out.matches("again | hostile: no orphan events").count(), 3, "{out}");
    assert_eq!(
        out.matches("again | hostile: exiting with timer 1 armed").count(),
        3,
        "{out}"
    );
    assert!(!out.contains("ORPHAN"), "{out}");
    assert!(out.contains("(not restarted again after 2 restarts)"), "{out}");
}

/// Reference: `ocre_publish_message` worked without the `ocre:api` capability. shoal: a
/// publisher without `messaging` is denied (-22 to the guest, one warning to the
/// operator) and nothing reaches the subscriber.
#[test]
fn publishing_without_the_messaging_capability_delivers_nothing() {
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "shoal.yaml",
        &"containers:\n  sub:\n    image: IMAGES/seq-subscriber.wasm\n    capabilities: [messaging]\n  pub:\n    image: IMAGES/seq-publisher.wasm\n    capabilities: [timers]\n    env: {COUNT: \"5\", PERIOD_MS: \"5\"}\n    depends_on: {sub: {condition: service_started}}\n"
            .replace("IMAGES", &images().display().to_string()),
    );
    let mut up = sandbox.up(&file);
    up.wait_for("pub exited with code 0", LONG);
    up.signal(libc::SIGINT);
    up.wait_exit(LONG);
    let out = up.seen.join("\n");
    let denied = up
        .seen
        .iter()
        .filter(|l| l.contains("warning: ocre_publish_message denied: container has no `messaging` capability"))
        .count();
    assert_eq!(denied, 1, "{out}");
    assert_eq!(
        out.matches("ocre_publish_message failed: -22 (EINVAL)").count(),
        5,
        "{out}"
    );
    assert!(!out.contains("| got "), "{out}");
}

/// Reference: 32 subscription slots and 5 timer ids for the whole process. shoal: 40
/// subscribers all receive every message, and one container holds 40 timers.
#[test]
fn no_process_wide_slot_limits() {
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "shoal.yaml",
        &"containers:\n  sub:\n    image: IMAGES/seq-subscriber.wasm\n    capabilities: [messaging]\n    replicas: 40\n  pub:\n    image: IMAGES/seq-publisher.wasm\n    capabilities: [messaging, timers]\n    env: {COUNT: \"10\", PERIOD_MS: \"5\"}\n    depends_on: [sub]\n  timers:\n    image: IMAGES/hostile.wasm\n    args: [timerstorm]\n    capabilities: [timers]\n    limits: {max_timers: 40}\n"
            .replace("IMAGES", &images().display().to_string()),
    );
    let mut up = sandbox.up(&file);
    up.wait_seen("timers exited with code 0", LONG);
    up.wait_seen("pub exited with code 0", LONG);
    let deadline = std::time::Instant::now() + LONG;
    while up.seen.iter().filter(|l| squash(l).contains("| got 9")).count() < 40 {
        assert!(std::time::Instant::now() < deadline, "{}", up.seen.join("\n"));
        up.wait_for("| got 9", LONG);
    }
    up.signal(libc::SIGINT);
    up.wait_exit(LONG);
    let seen = up.seen.join("\n");
    assert!(seen.contains("hostile: 40 timers, then -12"), "{seen}");
    // Every one of the 40 got all ten messages, 0 to 9, once each: the subscriber checks
    // its first number is 0 and flags any gap or repeat.
    let lines: Vec<String> = up.seen.iter().map(|l| squash(l)).collect();
    for n in 1..=40 {
        for m in 0..10 {
            let want = format!("sub-{n} | got {m}");
            assert_eq!(lines.iter().filter(|l| **l == want).count(), 1, "{want}:\n{seen}");
        }
    }
    assert!(!seen.contains("GAP") && !seen.contains("DUP"), "{seen}");
}
