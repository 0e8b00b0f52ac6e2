//! Hot reload: `up --watch` applies only the difference, and never loses a running stack
//! to a bad edit.

use std::time::Duration;

use crate::control::{up_detached, Detached};
use crate::support::*;

const LIMIT: Duration = Duration::from_secs(30);

/// A 3-container stack: a sequence publisher and subscriber, and `third`, whose args
/// the tests edit.
fn three(sandbox: &Sandbox, third_args: &str, extra: &str) -> std::path::PathBuf {
    let images = images().display().to_string();
    let body = format!(
        "name: reload\ncontainers:\n  sub:\n    image: {images}/seq-subscriber.wasm\n    capabilities: [messaging]\n  pub:\n    image: {images}/seq-publisher.wasm\n    capabilities: [messaging, timers]\n    env: {{PERIOD_MS: \"5\"}}\n    depends_on: {{sub: {{condition: service_started}}}}\n  third:\n    image: THIRD\n    capabilities: [messaging]\n    args: [{third_args}]\n{extra}"
    );
    let third = sandbox.path().join("third.wasm");
    if !third.exists() {
        std::fs::copy(image("idle_subscriber.wasm"), &third).expect("copy image");
    }
    sandbox.write("shoal.yaml", &body.replace("THIRD", &third.display().to_string()))
}

fn started_at(sandbox: &Sandbox, name: &str) -> f64 {
    sandbox.row("reload", name)["started_at"].as_f64().expect("started_at")
}

/// Wait until the n-th `reload` (or `reload-failed`) event is there; return its detail.
fn wait_reload(sandbox: &Sandbox, action: &str, n: usize) -> String {
    sandbox.wait_events("reload", action, LIMIT, |found| found.len() >= n)[n - 1].clone()
}

#[test]
fn edits_restart_only_what_changed() {
    let sandbox = Sandbox::new();
    let file = three(&sandbox, "a", "");
    sandbox.ok(&["up", "-d", "--watch", "-f", arg(&file)]);
    let _up = Detached {
        sandbox: &sandbox,
        project: "reload".into(),
    };
    sandbox.wait_row("reload", "sub", LIMIT, |r| r["messages_in"].as_u64().unwrap_or(0) > 5);
    let (sub0, pub0, third0) = (
        started_at(&sandbox, "sub"),
        started_at(&sandbox, "pub"),
        started_at(&sandbox, "third"),
    );

    // 1. Args of one container: only that one restarts.
    three(&sandbox, "b", "");
    let detail = wait_reload(&sandbox, "reload", 1);
    assert!(detail.contains("plan: ~third"), "{detail}");
    assert!(started_at(&sandbox, "third") > third0, "third restarted");
    assert_eq!(started_at(&sandbox, "sub"), sub0, "sub untouched");
    assert_eq!(started_at(&sandbox, "pub"), pub0, "pub untouched");
    let in_before = sandbox.row("reload", "sub")["messages_in"].as_u64().unwrap_or(0);
    sandbox.wait_row("reload", "sub", LIMIT, |r| {
        r["messages_in"].as_u64().unwrap_or(0) > in_before
    });
    let third1 = started_at(&sandbox, "third");

    // 2. Touch the image: same bytes, nothing restarts.
    let image_path = sandbox.path().join("third.wasm");
    let bytes = std::fs::read(&image_path).expect("read");
    std::fs::write(&image_path, &bytes).expect("touch");
    let detail = wait_reload(&sandbox, "reload", 2);
    assert!(detail.contains("plan: no changes"), "{detail}");
    assert_eq!(started_at(&sandbox, "third"), third1, "a touch restarts nothing");

    // 3. New bytes through a rename over the image: that container restarts.
    let mut changed = bytes.clone();
    changed.extend_from_slice(&[0, 5, 4, b'n', b'o', b't', b'e']); // an empty custom section "note"
    let tmp = sandbox.path().join(".third.wasm.tmp");
    std::fs::write(&tmp, &changed).expect("write");
    std::fs::rename(&tmp, &image_path).expect("rename");
    let detail = wait_reload(&sandbox, "reload", 3);
    assert!(detail.contains("plan: ~third"), "{detail}");
    let third2 = started_at(&sandbox, "third");
    assert!(third2 > third1);
    assert_eq!(started_at(&sandbox, "sub"), sub0, "sub untouched");

    // 4. An invalid file changes nothing and names the line.
    let good = std::fs::read_to_string(&file).expect("read");
    let bad = good.replace("    args: [b]", "    args: [b]\n    restart: sometimes");
    let line = bad.lines().position(|l| l.contains("sometimes")).expect("edited") + 1;
    sandbox.write("shoal.yaml", &bad);
    let detail = wait_reload(&sandbox, "reload-failed", 1);
    assert!(
        detail.contains(&format!("shoal.yaml:{line}:")),
        "the error names the line: {detail}"
    );
    let log = std::fs::read_to_string(sandbox.runtime_dir().join("reload.log")).expect("log");
    assert!(log.contains("reload rejected"), "{log}");
    assert!(sandbox.ps("reload").iter().all(|r| r["state"] == "running"));
    assert_eq!(started_at(&sandbox, "third"), third2);

    // 5. Add a container, then remove one.
    three(
        &sandbox,
        "b",
        &format!(
            "  extra:\n    image: {}/idle_subscriber.wasm\n    capabilities: [messaging]\n",
            images().display()
        ),
    );
    let detail = wait_reload(&sandbox, "reload", 4);
    assert!(detail.contains("plan: +extra"), "{detail}");
    assert_eq!(sandbox.row("reload", "extra")["state"], "running");
    let images = images().display().to_string();
    sandbox.write(
        "shoal.yaml",
        &format!("name: reload\ncontainers:\n  sub:\n    image: {images}/seq-subscriber.wasm\n    capabilities: [messaging]\n  pub:\n    image: {images}/seq-publisher.wasm\n    capabilities: [messaging, timers]\n    env: {{PERIOD_MS: \"5\"}}\n    depends_on: {{sub: {{condition: service_started}}}}\n"),
    );
    let detail = wait_reload(&sandbox, "reload", 5);
    assert!(detail.contains("-third") && detail.contains("-extra"), "{detail}");
    let names: Vec<_> = sandbox
        .ps("reload")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(names, ["sub", "pub"]);
    assert_eq!(started_at(&sandbox, "sub"), sub0, "sub untouched through five reloads");
    let logs = sandbox.ok(&["logs", "-p", "reload", "sub"]);
    assert!(!logs.contains("GAP") && !logs.contains("DUP"), "{logs}");
}

#[test]
fn a_hundred_reloads_of_a_neighbour_lose_and_duplicate_nothing() {
    let sandbox = Sandbox::new();
    let file = three(&sandbox, "r0", "");
    let _up = up_detached(&sandbox, &file, "reload");
    sandbox.wait_row("reload", "sub", LIMIT, |r| r["messages_in"].as_u64().unwrap_or(0) > 5);
    let (sub0, pub0) = (started_at(&sandbox, "sub"), started_at(&sandbox, "pub"));
    for i in 1..=100 {
        three(&sandbox, &format!("r{i}"), "");
        let out = sandbox.ok(&["up", "-d", "-f", arg(&file)]);
        assert!(out.contains("~ third (args changed)"), "reload {i}: {out}");
    }
    assert_eq!(started_at(&sandbox, "sub"), sub0);
    assert_eq!(started_at(&sandbox, "pub"), pub0);
    sandbox.ok(&["stop", "-p", "reload", "pub"]);
    let published = sandbox.row("reload", "pub")["messages_out"].as_u64().expect("out");
    let received = sandbox.wait_row("reload", "sub", LIMIT, |r| r["messages_in"].as_u64() == Some(published))
        ["messages_in"]
        .as_u64();
    assert_eq!(received, Some(published));
    sandbox.ok(&["down", "-p", "reload"]);
    // The detached log holds every line the stack printed.
    let log = std::fs::read_to_string(sandbox.runtime_dir().join("reload.log")).expect("log");
    assert!(
        !log.contains("GAP") && !log.contains("DUP"),
        "lost or duplicated messages"
    );
    let got: Vec<u64> = log
        .lines()
        .filter_map(|l| l.strip_prefix("sub   | got "))
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    assert_eq!(got.len() as u64, published, "every message printed once");
    assert!(got.iter().enumerate().all(|(i, n)| *n == i as u64), "in order from 0");
    let reloads = log.matches("applying:").count();
    assert_eq!(reloads, 100);
}
