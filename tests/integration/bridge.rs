//! MQTT bridges through the binary against a real Mosquitto on a free loopback port: two
//! boards exchanging 10,000 messages, interoperation with `mosquitto_sub`/`mosquitto_pub`,
//! a broker restart in the middle of a QoS 1 stream, and no echo of imported messages.

use std::collections::BTreeSet;
use std::time::Duration;

use shoal::bridge::mosquitto::Mosquitto;

use crate::mqtt_cli::MqttCli;
use crate::support::*;

/// A hang guard, not a timing assertion.
const LONG: Duration = Duration::from_secs(60);

fn broker(sandbox: &Sandbox) -> Mosquitto {
    Mosquitto::start_in(&sandbox.path().join("mosquitto"), false)
        .expect("start mosquitto (installed by scripts/setup.sh)")
}

fn board_a(sandbox: &Sandbox, url: &str, count: u32, burst: u32) -> std::path::PathBuf {
    sandbox.write(
        "board-a.yaml",
        &format!(
            "name: board-a\nbridges:\n  uplink:\n    url: {url}\n    queue: 20000\n    reconnect_max: 500ms\n    flush_timeout: 20s\n    export: [{{local: \"sensors/\", remote: \"factory/board-a/sensors/\", qos: 1}}]\ncontainers:\n  sensor:\n    image: {}\n    capabilities: [messaging, timers]\n    publish: [\"sensors/\"]\n    env: {{PREFIX: \"sensors/\", PERIOD_MS: \"1\", BURST: \"{burst}\", COUNT: \"{count}\"}}\n",
            image("seq-publisher.wasm").display()
        ),
    )
}

/// Board B's monitor keeps the default queue: after a broker restart Mosquitto hands the
/// bridge everything it held for B at once, and the QoS 1 import must wait for room in the
/// monitor's queue rather than drop the oldest.
fn board_b(sandbox: &Sandbox, url: &str) -> std::path::PathBuf {
    sandbox.write(
        "board-b.yaml",
        &format!(
            "name: board-b\nbridges:\n  uplink:\n    url: {url}\n    reconnect_max: 500ms\n    import: [{{remote: \"factory/board-a/sensors/#\", local: \"sensors/\", qos: 1}}]\ncontainers:\n  monitor:\n    image: {}\n    capabilities: [messaging]\n    subscribe: [\"sensors/\"]\n    env: {{PREFIX: \"sensors/\"}}\n",
            image("seq-subscriber.wasm").display()
        ),
    )
}

/// `mosquitto_sub` printing `topic|content type|payload`, subscribed to `filter` and to
/// `probe/#`; returns once a probe has come through, so it is known to be subscribed.
fn mosquitto_sub(broker: &Mosquitto, filter: &str) -> Running {
    let mut cmd = MqttCli::to(broker).sub(&[filter, "probe/#"]);
    cmd.args(["-q", "1", "-F", "%t|%C|%p"]);
    let mut sub = Running::spawn(cmd);
    for _ in 0..100 {
        mosquitto_pub(broker, "probe/ready", "ready", "text/plain");
        while let Some(line) = sub.next_line(Duration::from_millis(100)) {
            if line.starts_with("probe/ready") {
                return sub;
            }
        }
    }
    panic!("mosquitto_sub never received a probe; seen:\n{}", sub.seen.join("\n"));
}

fn mosquitto_pub(broker: &Mosquitto, topic: &str, payload: &str, content_type: &str) {
    let status = MqttCli::to(broker)
        .publish(topic)
        .args(["-q", "1", "-m", payload, "-D", "publish", "content-type", content_type])
        .status()
        .expect("run mosquitto_pub (installed by scripts/setup.sh)");
    assert!(status.success(), "mosquitto_pub failed");
}

/// The sequence numbers a `seq-subscriber` printed, and its GAP lines.
fn received(lines: &[String]) -> (BTreeSet<u64>, Vec<String>) {
    let numbers = lines
        .iter()
        .filter_map(|l| l.split_once("| got ").and_then(|(_, n)| n.trim().parse().ok()))
        .collect();
    let gaps = lines.iter().filter(|l| l.contains("GAP")).cloned().collect();
    (numbers, gaps)
}

#[test]
fn two_boards_exchange_10000_messages_and_interoperate_with_mosquitto_clients() {
    let sandbox = Sandbox::new();
    let broker = broker(&sandbox);
    let url = broker.url();
    let mut b = sandbox.up(&board_b(&sandbox, &url));
    b.wait_for("bridge:uplink subscribed to factory/board-a/sensors/#", LONG);
    let mut sub = mosquitto_sub(&broker, "factory/board-a/sensors/#");

    // Board A publishes 10,000 readings (10 per millisecond tick) and ends; its bridge
    // sends everything queued before the process exits.
    let mut a = sandbox.up(&board_a(&sandbox, &url, 10_000, 10));
    let status = a.wait_exit(LONG);
    assert!(status.success(), "board A failed:\n{}", a.seen.join("\n"));
    let stopped = a.seen.iter().find(|l| l.contains("bridge:uplink stopped")).cloned();
    assert_eq!(
        stopped.as_deref(),
        Some("bridge:uplink stopped: exported 10000, imported 0, dropped 0, rejected 0, reconnects 0"),
        "{}",
        a.seen.join("\n")
    );

    b.wait_for("| got 9999", LONG);
    let (numbers, gaps) = received(&b.seen);
    assert!(gaps.is_empty(), "board B saw gaps: {gaps:?}");
    assert_eq!(numbers, (0..10_000).collect::<BTreeSet<u64>>());

    // A real client sees A's exports: topic mapped, content type and payload intact.
    let mut exports = 0;
    while exports < 10_000 {
        let line = sub.wait_for("factory/board-a/sensors/", LONG);
        if exports == 0 {
            assert_eq!(line, "factory/board-a/sensors/0|text/plain|0");
        }
        exports += 1;
    }

    // A real client reaches B's subscriber through B's import.
    mosquitto_pub(&broker, "factory/board-a/sensors/10000", "10000", "text/plain");
    b.wait_for("| got 10000", LONG);

    // `stats` from another process shows the bridge's counters.
    let stats: serde_json::Value =
        serde_json::from_str(&sandbox.ok(&["stats", "-p", "board-b", "--no-stream", "--format", "json"]))
            .expect("json");
    let uplink = &stats["bridges"][0];
    assert_eq!(uplink["name"], "uplink", "{stats}");
    assert_eq!(uplink["imported"], 10_001, "{stats}");
    assert_eq!(uplink["dropped"], 0, "{stats}");
    assert_eq!(uplink["connected"], true, "{stats}");
    b.signal(libc::SIGINT);
    assert!(b.wait_exit(LONG).success(), "{}", b.seen.join("\n"));
    assert!(
        b.seen
            .iter()
            .any(|l| l.contains("bridge:uplink stopped: exported 0, imported 10001, dropped 0")),
        "{}",
        b.seen.join("\n")
    );
}

#[test]
fn a_broker_restart_mid_stream_loses_no_qos1_message() {
    let sandbox = Sandbox::new();
    let mut broker = broker(&sandbox);
    let url = broker.url();
    let mut b = sandbox.up(&board_b(&sandbox, &url));
    b.wait_for("subscribed to", LONG);
    let mut a = sandbox.up(&board_a(&sandbox, &url, 3000, 1));
    b.wait_for("| got 500", LONG);
    // SIGTERM: Mosquitto saves its sessions (B's subscription and what is queued for it).
    broker.stop();
    std::thread::sleep(Duration::from_millis(700));
    broker.restart().expect("restart mosquitto");
    b.wait_for("| got 2999", LONG);
    let status = a.wait_exit(LONG);
    assert!(status.success(), "{}", a.seen.join("\n"));
    let a_log = a.seen.join("\n");
    assert!(a_log.contains("warning: lost the connection to"), "{a_log}");
    // The summary line ends with the reconnect count: match it whole ("reconnects 1"
    // alone would also match 12).
    assert!(
        a.seen
            .iter()
            .any(|l| l.contains(", dropped 0,") && l.ends_with(", reconnects 1")),
        "{a_log}"
    );
    // Everything arrived; QoS 1 allows a duplicate around the restart, never a hole.
    std::thread::sleep(Duration::from_millis(300));
    b.signal(libc::SIGINT);
    let status = b.wait_exit(LONG);
    assert!(status.success(), "{}", b.seen.join("\n"));
    let (numbers, _) = received(&b.seen);
    let missing: Vec<u64> = (0..3000).filter(|n| !numbers.contains(n)).collect();
    assert!(missing.is_empty(), "lost across the restart: {missing:?}");
}

#[test]
fn imported_messages_are_not_exported_back() {
    let sandbox = Sandbox::new();
    let broker = broker(&sandbox);
    // The same topics both ways: without the origin mark every import would go straight out.
    let file = sandbox.write(
        "shoal.yaml",
        &format!(
            "name: echo\nbridges:\n  both:\n    url: {}\n    export: [\"loop/\"]\n    import: [\"loop/#\"]\ncontainers:\n  monitor:\n    image: {}\n    capabilities: [messaging]\n    subscribe: [\"loop/\"]\n    env: {{PREFIX: \"loop/\"}}\n",
            broker.url(),
            image("seq-subscriber.wasm").display()
        ),
    );
    let mut stack = sandbox.up(&file);
    stack.wait_for("subscribed to loop/#", LONG);
    let mut sub = mosquitto_sub(&broker, "loop/#");
    mosquitto_pub(&broker, "loop/1", "1", "text/plain");
    stack.wait_for("| got 1", LONG);
    mosquitto_pub(&broker, "loop/2", "2", "text/plain");
    stack.wait_for("| got 2", LONG);
    stack.signal(libc::SIGINT);
    assert!(stack.wait_exit(LONG).success());
    let log = stack.seen.join("\n");
    assert!(log.contains("bridge:both stopped: exported 0, imported 2"), "{log}");
    // The broker saw the two originals and nothing else on loop/.
    std::thread::sleep(Duration::from_millis(200));
    let _ = sub.child.kill();
    let _ = sub.wait_exit(LONG);
    let on_loop: Vec<&String> = sub.seen.iter().filter(|l| l.starts_with("loop/")).collect();
    assert_eq!(on_loop, ["loop/1|text/plain|1", "loop/2|text/plain|2"]);
}

/// A CA and a server certificate for 127.0.0.1. Every call names its CA alike, so a
/// certificate from another call fails on its signature, not on an unknown issuer.
fn certificates(sandbox: &Sandbox) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    test_certificates(&sandbox.path().join("tls"), "shoal test CA")
}

#[test]
fn mqtts_checks_the_broker_certificate_against_the_ca_file() {
    let sandbox = Sandbox::new();
    let (ca, cert, key) = certificates(&sandbox);
    let broker =
        Mosquitto::start_tls_in(&sandbox.path().join("mosquitto"), &cert, &key).expect("start mosquitto with TLS");
    let stack = |ca_file: &std::path::Path| {
        format!(
            "name: tls\nbridges:\n  secure:\n    url: {}\n    tls: {{ca_file: {}}}\n    export: [\"sensors/\"]\ncontainers:\n  sensor:\n    image: {}\n    capabilities: [messaging, timers]\n    env: {{PREFIX: \"sensors/\", PERIOD_MS: \"20\", COUNT: \"3\"}}\n",
            broker.url(),
            ca_file.display(),
            image("seq-publisher.wasm").display()
        )
    };
    // Line-buffered, so its debug lines (the SUBACK) arrive as they are printed.
    let mut sub = MqttCli::to(&broker).tls(&ca).line_buffered().sub(&["sensors/#"]);
    sub.args(["-d", "-q", "1", "-F", "%t|%p", "-C", "3"]);
    let mut sub = Running::spawn(sub);
    // Publish only once the broker confirmed the subscription (`-d` prints its SUBACK):
    // a fixed wait loses the first messages on a slow machine.
    sub.wait_for("received SUBACK", LONG);
    let mut a = sandbox.up(&sandbox.write("good.yaml", &stack(&ca)));
    assert!(a.wait_exit(LONG).success(), "{}", a.seen.join("\n"));
    assert!(
        a.seen.iter().any(|l| l.contains("connected to mqtts://127.0.0.1")),
        "{}",
        a.seen.join("\n")
    );
    assert!(
        a.seen.iter().any(|l| l.contains("stopped: exported 3,")),
        "{}",
        a.seen.join("\n")
    );
    sub.wait_for("sensors/2|2", LONG);

    // A CA that did not sign the broker's certificate: refused, said so, nothing sent.
    let elsewhere = Sandbox::new();
    let (other_ca, _, _) = certificates(&elsewhere);
    let mut b = sandbox.up(&sandbox.write("bad.yaml", &stack(&other_ca)));
    b.wait_for("cannot connect to mqtts://127.0.0.1", LONG);
    b.signal(libc::SIGINT);
    let status = b.wait_exit(LONG);
    let log = b.seen.join("\n");
    assert!(status.success(), "an operator stop is a clean exit:\n{log}");
    // The specific refusal: the certificate's signature does not verify against the given
    // CA (both test CAs are named `shoal test CA`, so the issuer is found by name and its
    // key does not match), not a connection refused, a name mismatch or an unreadable file.
    assert!(
        b.seen.iter().any(|l| l.contains("cannot connect to mqtts://127.0.0.1")
            && l.contains("TLS: I/O: invalid peer certificate: BadSignature")),
        "{log}"
    );
    assert!(log.contains("stopped: exported 0,"), "{log}");
}
