//! Issue 15/19 (fan-out helper): `topics tail` names who published each message, a local
//! container or a bridge's import, in its text and JSON forms.

use std::collections::BTreeSet;
use std::time::Duration;

use shoal::bridge::mosquitto::Mosquitto;

use crate::mqtt_cli::MqttCli;
use crate::support::*;

/// A hang guard, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn topics_tail_names_the_publisher_of_each_message() {
    let sandbox = Sandbox::new();
    let broker = Mosquitto::start_in(&sandbox.path().join("mosquitto"), false)
        .expect("start mosquitto (installed by scripts/setup.sh)");
    let file = sandbox.write(
        "shoal.yaml",
        &format!(
            "name: named\nbridges:\n  uplink:\n    url: {}\n    import: [{{remote: \"remote/#\", local: \"seq/\", qos: 1}}]\ncontainers:\n  sensor:\n    image: {}\n    capabilities: [messaging, timers]\n    env: {{PREFIX: \"seq/\", PERIOD_MS: \"20\"}}\n",
            broker.url(),
            image("seq-publisher.wasm").display()
        ),
    );
    let mut up = sandbox.up(&file);
    up.wait_for("subscribed to remote/#", LIMIT);

    let mut text = sandbox.spawn(&["topics", "tail", "-p", "named", "seq/"]);
    let line = text.wait_for("[sensor] seq/", LIMIT);
    // TIME [PUBLISHER] TOPIC [CONTENT TYPE] PAYLOAD
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.get(1), Some(&"[sensor]"), "{line}");
    assert!(fields.get(2).is_some_and(|t| t.starts_with("seq/")), "{line}");

    let mut json = sandbox.spawn(&["topics", "tail", "-p", "named", "seq/", "--format", "json"]);
    json.wait_for("\"publisher\":\"sensor\"", LIMIT);
    // An import: published on the external broker, named after the bridge that brought it.
    let imported = |tail: &mut Running, needle: &str| {
        for _ in 0..100 {
            let status = MqttCli::to(&broker)
                .publish("remote/x")
                .args(["-q", "1", "-m", "from-afar"])
                .status()
                .expect("run mosquitto_pub");
            assert!(status.success());
            while let Some(line) = tail.next_line(Duration::from_millis(200)) {
                if line.contains("from-afar") {
                    assert!(line.contains(needle), "{line}");
                    return line;
                }
            }
        }
        panic!(
            "no imported message reached topics tail; seen:\n{}",
            tail.seen.join("\n")
        );
    };
    let line = imported(&mut text, "[bridge:uplink] seq/x ");
    assert!(!line.contains("[sensor]"), "{line}");
    let line = imported(&mut json, "\"publisher\":\"bridge:uplink\"");
    let message: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(
        (
            message["origin"].as_str(),
            message["publisher"].as_str(),
            message["topic"].as_str()
        ),
        (Some("bridge"), Some("bridge:uplink"), Some("seq/x")),
        "{message}"
    );
    for tail in [&mut text, &mut json] {
        let _ = tail.child.kill();
        let _ = tail.child.wait();
    }
    up.signal(libc::SIGINT);
    assert!(up.wait_exit(LIMIT).success(), "{}", up.seen.join("\n"));
}

/// A QoS 1 burst from the broker into a subscriber with a tiny queue: the bridge waits for
/// room (and stops reading the broker's socket meanwhile) instead of dropping the oldest. Before the
/// import waited, the import ran on another executor thread than the guest and outran it:
/// gaps, counted as the monitor's drops. The burst comes from a second stack exporting at
/// QoS 1 (what it exports is confirmed by the broker, so nothing is lost before the broker).
#[test]
fn a_qos1_import_burst_waits_for_a_small_queue_and_loses_nothing() {
    const COUNT: u64 = 2000;
    let sandbox = Sandbox::new();
    let broker = Mosquitto::start_in(&sandbox.path().join("mosquitto"), false)
        .expect("start mosquitto (installed by scripts/setup.sh)");
    let receiver = sandbox.write(
        "receiver.yaml",
        &format!(
            "name: burst\nbridges:\n  uplink:\n    url: {}\n    import: [{{remote: \"burst/#\", local: \"seq/\", qos: 1}}]\ncontainers:\n  monitor:\n    image: {}\n    capabilities: [messaging]\n    env: {{PREFIX: \"seq/\"}}\n    limits: {{queue: 4}}\n",
            broker.url(),
            image("seq-subscriber.wasm").display()
        ),
    );
    let sender = sandbox.write(
        "sender.yaml",
        &format!(
            "name: sender\nbridges:\n  uplink:\n    url: {}\n    queue: 20000\n    flush_timeout: 30s\n    export: [{{local: \"seq/\", remote: \"burst/\", qos: 1}}]\ncontainers:\n  sensor:\n    image: {}\n    capabilities: [messaging, timers]\n    env: {{PREFIX: \"seq/\", PERIOD_MS: \"1\", BURST: \"100\", COUNT: \"{COUNT}\"}}\n",
            broker.url(),
            image("seq-publisher.wasm").display()
        ),
    );
    let mut up = sandbox.up(&receiver);
    // Both lines come, in either order (the guest and the bridge start side by side).
    for needle in ["subscribed to burst/#", "listening on seq/"] {
        if !up.seen.iter().any(|l| l.contains(needle)) {
            up.wait_for(needle, LIMIT);
        }
    }
    let mut send = sandbox.up(&sender);
    assert!(send.wait_exit(LIMIT).success(), "{}", send.seen.join("\n"));
    // The sender's broker confirmed every message: what follows is the receiver's doing.
    assert!(
        send.seen
            .iter()
            .any(|l| l.contains(&format!("exported {COUNT}, imported 0, dropped 0,"))),
        "{}",
        send.seen.join("\n")
    );
    // Every number, in any order: Mosquitto 2.0.11 may reorder QoS 1 messages it held back
    // while the receiver's acknowledgements were outstanding (seen as GAP/DUP lines); a
    // hole is what the drop-oldest policy made, and what must not happen.
    let numbers = |seen: &[String]| -> BTreeSet<u64> {
        seen.iter()
            .filter_map(|l| l.split_once("| got ").and_then(|(_, n)| n.trim().parse().ok()))
            .collect()
    };
    let began = std::time::Instant::now();
    while numbers(&up.seen).len() < COUNT as usize && began.elapsed() < LIMIT {
        let _ = up.next_line(Duration::from_millis(200));
    }
    let row = sandbox.row("burst", "monitor");
    up.signal(libc::SIGINT);
    assert!(up.wait_exit(LIMIT).success(), "{}", up.seen.join("\n"));
    let got = numbers(&up.seen);
    let missing: Vec<u64> = (0..COUNT).filter(|n| !got.contains(n)).collect();
    assert!(missing.is_empty(), "lost in the burst ({row}): {missing:?}");
    let warnings: Vec<&String> = up.seen.iter().filter(|l| l.contains("warning")).collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(row["dropped"].as_u64(), Some(0), "{row}");
}
