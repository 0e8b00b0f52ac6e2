//! The control plane, across processes: `up -d` in one, `ps`, `logs`, `stop`, `start`,
//! `events`, `down` from others.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::*;

/// Takes a detached stack down when the test ends, even when it fails.
pub struct Detached<'a> {
    pub sandbox: &'a Sandbox,
    pub project: String,
}

impl Drop for Detached<'_> {
    fn drop(&mut self) {
        let _ = self.sandbox.run(&["down", "-p", &self.project]);
    }
}

pub fn up_detached<'a>(sandbox: &'a Sandbox, file: &std::path::Path, project: &str) -> Detached<'a> {
    sandbox.ok(&["up", "-d", "-f", arg(file)]);
    Detached {
        sandbox,
        project: project.to_owned(),
    }
}

fn stack(sandbox: &Sandbox, name: &str, containers: &str) -> std::path::PathBuf {
    let body = format!("name: {name}\ncontainers:\n{containers}").replace("IMAGES", &images().display().to_string());
    sandbox.write(&format!("{name}.yaml"), &body)
}

const PAIR: &str = "  sub:\n    image: IMAGES/seq-subscriber.wasm\n    capabilities: [messaging]\n  pub:\n    image: IMAGES/seq-publisher.wasm\n    capabilities: [messaging, timers]\n    env: {PERIOD_MS: \"20\"}\n    depends_on: {sub: {condition: service_started}}\n";

#[test]
fn a_second_shell_drives_a_detached_stack() {
    let sandbox = Sandbox::new();
    let file = stack(&sandbox, "line1", PAIR);
    let up = up_detached(&sandbox, &file, "line1");

    let socket = sandbox.runtime_dir().join("line1.sock");
    let mode = std::fs::metadata(&socket).expect("socket").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the control socket is owner-only");

    let row = sandbox.wait_row("line1", "sub", Duration::from_secs(20), |r| {
        r["messages_in"].as_u64().unwrap_or(0) >= 3
    });
    assert_eq!(row["state"], "running");
    assert_eq!(row["image"].as_str().map(str::len), Some(12), "short digest: {row}");

    let logs = sandbox.ok(&["logs", "-p", "line1", "--tail", "2", "sub"]);
    let sub_lines: Vec<_> = logs.lines().filter(|l| l.starts_with("sub")).collect();
    assert_eq!(sub_lines.len(), 2, "--tail 2 gives the last two lines:\n{logs}");
    assert!(sub_lines.iter().all(|l| l.contains("got ")), "{logs}");

    let stopped = sandbox.ok(&["stop", "-p", "line1", "pub"]);
    assert!(stopped.contains("pub") && stopped.contains("stopped"), "{stopped}");
    let row = sandbox.row("line1", "pub");
    assert_eq!(row["state"], "stopped", "{row}");
    let events = sandbox.ok(&["events", "-p", "line1", "--json", "--no-stream"]);
    let events: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event per line"))
        .collect();
    assert!(
        events.iter().any(|e| e["action"] == "stop" && e["container"] == "pub"),
        "events show the stop: {events:?}"
    );

    let out_before = row["messages_out"].as_u64().expect("counter");
    sandbox.ok(&["start", "-p", "line1", "pub"]);
    sandbox.wait_row("line1", "pub", Duration::from_secs(20), |r| {
        r["state"] == "running" && r["messages_out"].as_u64().unwrap_or(0) > out_before
    });

    let unknown = sandbox.run(&["stop", "-p", "line1", "nope"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no container named `nope`"),
        "{}",
        stderr(&unknown)
    );

    let down = sandbox.ok(&["down", "-p", "line1", "--verify"]);
    assert!(down.contains("verified:"), "{down}");
    assert!(!socket.exists(), "down removes the socket");
    // Nothing running is an empty list with a note, exit 0 (as compose; issue 19).
    let again = sandbox.run(&["ps", "-p", "line1"]);
    assert!(again.status.success());
    assert!(stderr(&again).contains("is not running"), "{}", stderr(&again));
    drop(up);
}

#[test]
fn a_killed_stack_leaves_a_stale_socket_that_the_next_up_replaces() {
    let sandbox = Sandbox::new();
    let file = stack(&sandbox, "stale", PAIR);
    let _up = up_detached(&sandbox, &file, "stale");
    let info: serde_json::Value = serde_json::from_str(&sandbox.ok(&["ls", "--format", "json"])).expect("json");
    let pid = info[0]["pid"].as_i64().expect("pid") as i32;
    // The server runs with shoal's malloc tunables (procstat::reexec_with_malloc_tunables).
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    assert!(
        String::from_utf8_lossy(&environ).contains("glibc.malloc.tcache_count"),
        "GLIBC_TUNABLES is not set in the server"
    );
    // SAFETY: kill(2) on the stack's own process.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let socket = sandbox.runtime_dir().join("stale.sock");
    for _ in 0..200 {
        // SAFETY: signal 0 only asks whether the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(socket.exists(), "SIGKILL leaves the socket file behind");
    let ls = sandbox.ok(&["ls"]);
    assert!(!ls.contains("stale"), "a dead socket is not a running stack:\n{ls}");
    let out = sandbox.ok(&["up", "-d", "-f", arg(&file)]);
    assert!(out.contains("runs in the background"), "{out}");
    let log = std::fs::read_to_string(sandbox.runtime_dir().join("stale.log")).expect("log");
    assert!(log.contains("replaced a stale control socket"), "{log}");
    assert_eq!(sandbox.row("stale", "sub")["state"], "running");
}

#[test]
fn a_second_foreground_up_refuses_and_up_d_applies_changes() {
    let sandbox = Sandbox::new();
    let file = stack(&sandbox, "twice", PAIR);
    let _up = up_detached(&sandbox, &file, "twice");
    let second = sandbox.run(&["up", "-f", arg(&file)]);
    assert!(!second.status.success());
    assert!(stderr(&second).contains("already running"), "{}", stderr(&second));
    let same = sandbox.ok(&["up", "-d", "-f", arg(&file)]);
    assert!(same.contains("up to date"), "{same}");
}

#[test]
fn a_crashing_guest_is_restarted_three_times_then_left_stopped() {
    let sandbox = Sandbox::new();
    let file = stack(
        &sandbox,
        "crashy",
        "  boom:\n    image: IMAGES/trap.wasm\n    restart: on-failure:3\n    restart_delay: 50ms\n  calm:\n    image: IMAGES/idle_subscriber.wasm\n    capabilities: [messaging]\n",
    );
    let up = sandbox.run(&["up", "-d", "-f", arg(&file)]);
    let _up = Detached {
        sandbox: &sandbox,
        project: "crashy".into(),
    };
    assert!(!up.status.success(), "up -d reports the failing container");
    assert!(stdout(&up).contains("✘ container boom"), "{}", stdout(&up));
    let row = sandbox.wait_row("crashy", "boom", Duration::from_secs(30), |r| r["state"] == "trapped");
    assert_eq!(row["restarts"], 3, "{row}");
    assert!(
        row["exit"].as_str().unwrap_or("").contains("unreachable"),
        "ps says why: {row}"
    );
    let events = sandbox.ok(&["events", "-p", "crashy", "--no-stream"]);
    let delays: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("restart boom") || l.contains("crash-loop boom"))
        .collect();
    assert_eq!(delays.len(), 3, "{events}");
    assert!(delays[0].contains("restarting in 50ms"), "{events}");
    assert!(delays[1].contains("restarting in 100ms"), "growing delays: {events}");
    assert!(delays[2].contains("restarting in 200ms"), "growing delays: {events}");
    assert_eq!(sandbox.row("crashy", "calm")["state"], "running");
    let ps = sandbox.ok(&["ps", "-p", "crashy"]);
    assert!(ps.contains("trapped"), "{ps}");
}

#[test]
fn pause_holds_a_guest_and_unpause_lets_it_go_on() {
    let sandbox = Sandbox::new();
    let file = stack(&sandbox, "pausing", PAIR);
    let _up = up_detached(&sandbox, &file, "pausing");
    sandbox.wait_row("pausing", "pub", Duration::from_secs(20), |r| {
        r["messages_out"].as_u64().unwrap_or(0) >= 2
    });
    sandbox.ok(&["pause", "-p", "pausing", "pub"]);
    let paused = sandbox.row("pausing", "pub");
    assert_eq!(paused["state"], "paused");
    std::thread::sleep(Duration::from_millis(300));
    let settled = sandbox.row("pausing", "pub")["messages_out"].as_u64().unwrap_or(0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sandbox.row("pausing", "pub")["messages_out"].as_u64().unwrap_or(0),
        settled,
        "a paused publisher publishes nothing"
    );
    sandbox.ok(&["unpause", "-p", "pausing", "pub"]);
    sandbox.wait_row("pausing", "pub", Duration::from_secs(20), |r| {
        r["messages_out"].as_u64().unwrap_or(0) > settled
    });
    let logs = sandbox.ok(&["logs", "-p", "pausing", "sub"]);
    assert!(!logs.contains("GAP") && !logs.contains("DUP"), "{logs}");
}

#[test]
fn down_verify_passes_after_a_thousand_containers() {
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "big.yaml",
        &format!(
            "name: big\ncontainers:\n  idle:\n    image: {}/idle_subscriber.wasm\n    capabilities: [messaging]\n    replicas: 1000\n",
            images().display()
        ),
    );
    let _up = up_detached(&sandbox, &file, "big");
    let rows = sandbox.ps("big");
    assert_eq!(rows.len(), 1000);
    assert!(rows.iter().all(|r| r["state"] == "running"), "all running");
    let down = sandbox.ok(&["down", "-p", "big", "--verify"]);
    assert!(down.contains("verified:"), "{down}");
}
