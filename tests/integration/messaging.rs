//! The Ocre `env` API through the binary, with guests built like Ocre-SDK guests (C against
//! the raw imports, importing their memory) on both wasi-libc versions, and Rust guests on
//! the `shoal-guest` SDK.

use std::time::Duration;

use crate::support::*;

const LONG: Duration = Duration::from_secs(60);

fn stack(sandbox: &Sandbox, body: &str) -> std::path::PathBuf {
    sandbox.write("shoal.yaml", &body.replace("IMAGES", &images().display().to_string()))
}

/// Article experiment 1 with each libc flavour on each side: every published message is
/// received, in order, with the content type.
#[test]
fn pubsub_delivers_in_order_with_old_and_new_wasi_libc() {
    for (publisher, subscriber) in [("publisher", "subscriber.newlibc"), ("publisher.newlibc", "subscriber")] {
        let sandbox = Sandbox::new();
        let file = stack(
            &sandbox,
            &format!(
                "containers:\n  sub:\n    image: IMAGES/{subscriber}.wasm\n    capabilities: [messaging]\n    subscribe: [\"test/\"]\n  pub:\n    image: IMAGES/{publisher}.wasm\n    capabilities: [messaging, timers]\n    publish: [\"test/\"]\n    depends_on: {{sub: {{condition: service_started}}}}\n"
            ),
        );
        let mut up = sandbox.up(&file);
        for n in 0..3 {
            up.wait_for(
                &format!("sub | Received message: topic=test/topic, content_type=text/plain, payload=Test message {n}"),
                LONG,
            );
        }
        up.signal(libc::SIGINT);
        up.wait_exit(LONG);
        let received: Vec<_> = up.seen.iter().filter(|l| l.contains("Received message")).collect();
        for (i, line) in received.iter().enumerate() {
            assert!(
                line.ends_with(&format!("Test message {i}")),
                "out of order: {received:?}"
            );
        }
    }
}

/// Article experiment 2: two publishers into one prefix subscriber; both use timer id 1
/// without colliding.
#[test]
fn temperature_fan_in_interleaves_two_publishers() {
    let sandbox = Sandbox::new();
    let file = stack(
        &sandbox,
        "containers:\n  subscriber_temp:\n    image: IMAGES/subscriber_temp.wasm\n    capabilities: [messaging]\n  inside:\n    image: IMAGES/publisher_inside.wasm\n    capabilities: [messaging, timers]\n    depends_on: {subscriber_temp: {condition: service_started}}\n  outside:\n    image: IMAGES/publisher_outside.newlibc.wasm\n    capabilities: [messaging, timers]\n    depends_on: {subscriber_temp: {condition: service_started}}\n",
    );
    let mut up = sandbox.up(&file);
    // Inside publishes every 2 s, outside every 4 s, from two containers (on several
    // executor threads): each message is waited for, in whatever order they arrive.
    for n in 0..3 {
        up.wait_seen(&format!("payload=Temperature inside {n}"), LONG);
    }
    for n in 0..2 {
        up.wait_seen(&format!("payload=Temperature outside {n}"), LONG);
    }
    up.signal(libc::SIGINT);
    up.wait_exit(LONG);
}

/// Article experiment 4, loudly: the container starts, its denied call returns an error the
/// guest sees, and the operator gets one warning naming the grant and the line to change.
#[test]
fn a_container_without_the_capability_is_denied_loudly() {
    let sandbox = Sandbox::new();
    let file = stack(
        &sandbox,
        "containers:\n  publisher:\n    image: IMAGES/publisher.wasm\n",
    );
    let output = sandbox.run(&["up", "-f", arg(&file)]);
    let out = stdout(&output);
    let warnings: Vec<_> = out
        .lines()
        .filter(|l| l.contains("warning: ocre_register_dispatcher denied"))
        .collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert!(
        warnings[0].contains("no `timers` capability") && warnings[0].contains("shoal.yaml:2:3"),
        "{out}"
    );
    assert!(out.contains("publisher | Failed to register timer callback"), "{out}");
    assert!(out.contains("publisher exited with code 1"), "{out}");
    // The static check saw it coming, and --strict refuses to run it.
    let err = stderr(&output);
    assert!(
        err.contains("has no `timers` capability: those calls will be denied"),
        "{err}"
    );
    let output = sandbox.check(&file, &["--strict"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--strict"), "{}", stderr(&output));
}

/// Publish/subscribe lists are enforced at run time, not only validated: each publish
/// outside the list returns -22 (EINVAL) to the guest, nothing reaches a subscriber of that
/// topic, the guest goes on to exit 0, and the operator is warned once.
#[test]
fn publishing_outside_the_declared_prefixes_is_denied() {
    let sandbox = Sandbox::new();
    let file = stack(
        &sandbox,
        "containers:\n  sub:\n    image: IMAGES/seq-subscriber.wasm\n    capabilities: [messaging]\n  pub:\n    image: IMAGES/seq-publisher.wasm\n    capabilities: [messaging, timers]\n    publish: [\"allowed/\"]\n    env: {COUNT: \"3\", PERIOD_MS: \"1\"}\n    depends_on: {sub: {condition: service_started}}\n",
    );
    let mut up = sandbox.up(&file);
    up.wait_for("pub exited with code 0", LONG);
    // The subscriber runs on its own (maybe on another executor thread): its first line may
    // come after the publisher's end, but before the stop.
    up.wait_seen("sub | seq-subscriber: listening on seq/", LONG);
    up.signal(libc::SIGINT);
    up.wait_exit(LONG);
    let out = up.seen.join("\n");
    let denied: Vec<_> = up
        .seen
        .iter()
        .filter(|l| l.contains("warning: ocre_publish_message denied"))
        .collect();
    assert_eq!(denied.len(), 1, "one warning per (container, import):\n{out}");
    assert!(denied[0].contains("allowed/"), "{out}");
    for n in 0..3 {
        let refused = format!("seq-publisher: {n}: ocre_publish_message failed: -22");
        assert!(up.seen.iter().any(|l| l.contains(&refused)), "{refused}:\n{out}");
    }
    assert!(
        up.seen.iter().any(|l| l == "sub | seq-subscriber: listening on seq/"),
        "{out}"
    );
    assert!(!up.seen.iter().any(|l| l.starts_with("sub | got")), "delivered:\n{out}");
}

/// The host's copies of message data never overlap the guest's heap, with the 2022 libc
/// (whose first malloc adopts all memory up to memory.size) and the current one.
#[test]
fn message_copies_never_overlap_the_guest_heap_on_either_libc() {
    for checker in ["heap_check", "heap_check.newlibc"] {
        let sandbox = Sandbox::new();
        let file = stack(
            &sandbox,
            &format!("containers:\n  check:\n    image: IMAGES/{checker}.wasm\n    capabilities: [messaging]\n  pub:\n    image: IMAGES/seq-publisher.wasm\n    capabilities: [messaging, timers]\n    env: {{PREFIX: \"heap/\", COUNT: \"40\", PERIOD_MS: \"2\"}}\n    depends_on: {{check: {{condition: service_started}}}}\n"),
        );
        let mut up = sandbox.up(&file);
        up.wait_for("pub exited with code 0", LONG);
        // The last check may print before or after the publisher's end.
        up.wait_seen("check | heap ok 39", LONG);
        up.signal(libc::SIGINT);
        up.wait_exit(LONG);
        let seen = up.seen.join("\n");
        assert!(!seen.contains("HEAP"), "{checker}: {seen}");
    }
}

/// Many messages between two Rust SDK guests: none lost, none duplicated, in order.
#[test]
fn a_thousand_messages_arrive_in_order_without_gaps() {
    let sandbox = Sandbox::new();
    let file = stack(
        &sandbox,
        "containers:\n  sub:\n    image: IMAGES/seq-subscriber.wasm\n    capabilities: [messaging]\n  pub:\n    image: IMAGES/seq-publisher.wasm\n    capabilities: [messaging, timers]\n    env: {COUNT: \"1000\", PERIOD_MS: \"1\"}\n    depends_on: {sub: {condition: service_started}}\n",
    );
    let mut up = sandbox.up(&file);
    up.wait_for("sub | got 999", LONG);
    up.signal(libc::SIGINT);
    up.wait_exit(LONG);
    let seen = up.seen.join("\n");
    assert!(!seen.contains("GAP") && !seen.contains("DUP"), "{seen}");
    assert_eq!(up.seen.iter().filter(|l| l.starts_with("sub | got ")).count(), 1000);
}

/// Parked containers (SDK poll loop, no events) stop at once on Ctrl-C. Their
/// `stop_timeout` is 5 minutes, far beyond the 60 s hang guard of `wait_exit`: a stop that
/// only ended when the timeout expired fails the guard; a prompt stop says "stopped", one
/// forced at the timeout "killed".
#[test]
fn parked_subscribers_stop_on_ctrl_c() {
    let sandbox = Sandbox::new();
    let file = stack(
        &sandbox,
        "containers:\n  idle:\n    image: IMAGES/idle_subscriber.wasm\n    capabilities: [messaging]\n    replicas: 50\n    stop_timeout: 5m\n  marker:\n    image: IMAGES/hello.wasm\n    depends_on: {idle: {condition: service_started}}\n",
    );
    let mut up = sandbox.up(&file);
    up.wait_for("marker exited with code 0", LONG);
    up.signal(libc::SIGTERM);
    let status = up.wait_exit(LONG);
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        up.seen
            .iter()
            .filter(|l| l.starts_with("idle-") && l.ends_with(" stopped"))
            .count(),
        50
    );
}

/// A container inside `ocre_sleep(60000)` (a plain sleep, not an event wait) stops at once:
/// the reference runtime waited out 4 s of a 5 s sleep. The hang guard is far below 60 s.
#[test]
fn stop_during_a_long_sleep_ends_it_at_once() {
    let sandbox = Sandbox::new();
    let wasm = wat::parse_str(
        r#"(module
            (import "env" "ocre_sleep" (func $sleep (param i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 16) "sleeping\n")
            (func (export "_start")
              (i32.store (i32.const 0) (i32.const 16))
              (i32.store (i32.const 4) (i32.const 9))
              (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
              (drop (call $sleep (i32.const 60000)))))"#,
    )
    .unwrap();
    std::fs::write(sandbox.path().join("sleeper.wasm"), wasm).unwrap();
    let file = sandbox.write(
        "shoal.yaml",
        "containers:\n  sleeper:\n    image: sleeper.wasm\n    stop_timeout: 30s\n",
    );
    let mut up = sandbox.up(&file);
    up.wait_for("sleeper | sleeping", LONG);
    let stopping = std::time::Instant::now();
    up.signal(libc::SIGINT);
    up.wait_exit(Duration::from_secs(20));
    // Not a timing assertion: anything short of the 60 s sleep (and the 30 s stop_timeout)
    // proves the sleep was interrupted rather than waited out.
    assert!(stopping.elapsed() < Duration::from_secs(20));
    assert!(up.seen.iter().any(|l| l == "sleeper stopped"), "{:?}", up.seen);
}

/// A guest that imports its memory without exporting it still reaches the `env` API
/// through the memory the runtime created for it.
#[test]
fn imported_memory_without_an_export_works() {
    let sandbox = Sandbox::new();
    let wasm = wat::parse_str(
        r#"(module
            (import "env" "memory" (memory 2 64))
            (import "env" "ocre_subscribe_message" (func $sub (param i32) (result i32)))
            (import "env" "ocre_publish_message" (func $pub (param i32 i32 i32 i32) (result i32)))
            (import "env" "ocre_get_event" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (data (i32.const 1024) "t/x\00text/plain\00hi")
            (func (export "_start")
              (if (call $sub (i32.const 1024)) (then (call $exit (i32.const 2))))
              (if (call $pub (i32.const 1024) (i32.const 1028) (i32.const 1039) (i32.const 2))
                (then (call $exit (i32.const 3))))
              (if (call $get (i32.const 2048) (i32.const 2052) (i32.const 2056) (i32.const 2060) (i32.const 2064) (i32.const 2068))
                (then (call $exit (i32.const 4))))
              (if (i32.ne (i32.load (i32.const 2048)) (i32.const 3)) (then (call $exit (i32.const 5))))
              (if (i32.ne (i32.load16_u (i32.load (i32.const 2064))) (i32.const 0x6968)) (then (call $exit (i32.const 6))))))"#,
    )
    .unwrap();
    let image = sandbox.path().join("noexport.wasm");
    std::fs::write(&image, wasm).unwrap();
    sandbox.ok(&["run", "--cap", "messaging", arg(&image)]);
}
