//! Promises the README makes that had no test (issue 16), each proved through the real
//! binary on a detached stack: the control commands (`top`, `kill`, `restart`, `graph`,
//! `topics tail`), reloads that fail or remove containers, watched env files, the
//! `logs -f` missed-line notice, log rotation at start, and parked containers' CPU.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::control::Detached;
use crate::mqtt_cli::MqttCli;
use crate::support::*;

const LIMIT: Duration = Duration::from_secs(60);

/// Write `name.yaml` (project `name`) with `containers` (IMAGES for the images folder) and
/// start it detached; `down` when the guard drops.
fn detached<'a>(sandbox: &'a Sandbox, name: &str, containers: &str, up_args: &[&str]) -> (Detached<'a>, PathBuf) {
    let file = write_stack(sandbox, name, containers);
    let mut args = vec!["up", "-d"];
    args.extend_from_slice(up_args);
    args.extend(["-f", arg(&file)]);
    sandbox.ok(&args);
    let guard = Detached {
        sandbox,
        project: name.to_owned(),
    };
    (guard, file)
}

fn write_stack(sandbox: &Sandbox, name: &str, containers: &str) -> PathBuf {
    let body = format!("name: {name}\ncontainers:\n{containers}").replace("IMAGES", &images().display().to_string());
    sandbox.write(&format!("{name}.yaml"), &body)
}

/// `mosquitto_sub` as a persistent QoS 1 session `id` (clean session off) on `factory/#`,
/// printing topics, with `extra` options (`-C N -W S`).
fn receiver(broker: &MqttCli, id: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = broker.sub(&["factory/#"]);
    cmd.args(["-c", "-i", id, "-q", "1", "-F", "%t"]).args(extra);
    cmd
}

fn stats(sandbox: &Sandbox, project: &str) -> serde_json::Value {
    let out = sandbox.ok(&["stats", "-p", project, "--no-stream", "--format", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("stats json: {e}\n{out}"))
}

const PAIR: &str = "  sub:\n    image: IMAGES/seq-subscriber.wasm\n    capabilities: [messaging]\n    subscribe: [\"seq/\"]\n  pub:\n    image: IMAGES/seq-publisher.wasm\n    capabilities: [messaging, timers]\n    publish: [\"seq/\"]\n    env: {PERIOD_MS: \"5\"}\n    depends_on: {sub: {condition: service_started}}\n";

/// `top` sorts by guest CPU time, `graph` draws the declared topics with live counts (text
/// and dot), `topics tail` prints what is published, `kill` stops a container for good,
/// `restart` gives it a new instance.
#[test]
fn top_graph_topics_kill_and_restart_do_what_they_say() {
    let sandbox = Sandbox::new();
    let containers = format!("{PAIR}  spin:\n    image: IMAGES/spin.wasm\n    limits: {{cpu: 20%}}\n");
    let (_up, file) = detached(&sandbox, "prom", &containers, &[]);
    sandbox.wait_row("prom", "spin", LIMIT, |r| {
        r["cpu_seconds"].as_f64().unwrap_or(0.0) > 0.2
    });
    sandbox.wait_row("prom", "sub", LIMIT, |r| r["messages_in"].as_u64().unwrap_or(0) > 10);

    // top: the spinning guest first, then the two that spend almost nothing.
    let top = sandbox.ok(&["top", "-p", "prom"]);
    let rows: Vec<&str> = top.lines().skip(1).filter(|l| !l.starts_with('(')).collect();
    assert_eq!(rows.len(), 3, "{top}");
    assert!(
        top.lines()
            .next()
            .is_some_and(|h| h.starts_with("NAME") && h.contains("CPU TIME")),
        "{top}"
    );
    assert!(rows[0].starts_with("spin "), "the busiest first:\n{top}");

    // graph: the declared edge, with the counts of the running stack.
    let graph = sandbox.ok(&["graph", "-f", arg(&file)]);
    assert!(graph.lines().any(|l| l == "  ---> sub on \"seq/\""), "{graph}");
    let out_count = graph
        .lines()
        .find_map(|l| l.strip_prefix("pub (running, in 0, out "))
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no live count for pub:\n{graph}"));
    assert!(out_count > 10, "{graph}");
    let dot = sandbox.ok(&["graph", "-f", arg(&file), "--format", "dot"]);
    assert!(dot.contains("pub -> sub [label=\"seq/\"];"), "{dot}");

    // topics tail: each message as published, topic and payload agreeing.
    let mut tail = sandbox.spawn(&["topics", "tail", "-p", "prom", "seq/"]);
    for _ in 0..3 {
        let line = tail.next_line(LIMIT).expect("a published message");
        let (_, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{line}"));
        let mut parts = rest.split(' ');
        let (publisher, topic, kind, payload) = (parts.next(), parts.next(), parts.next(), parts.next());
        assert_eq!(publisher, Some("[pub]"), "{line}");
        assert_eq!(kind, Some("[text/plain]"), "{line}");
        assert_eq!(topic.and_then(|t| t.strip_prefix("seq/")), payload, "{line}");
    }
    tail.signal(libc::SIGINT);
    tail.wait_exit(LIMIT);

    // kill: stopped at once and stays stopped (no policy restarts it).
    let killed = sandbox.ok(&["kill", "-p", "prom", "spin"]);
    assert!(killed.contains("spin") && killed.contains("killed"), "{killed}");
    let row = sandbox.row("prom", "spin");
    assert_eq!(row["state"], "stopped", "{row}");
    let cpu = row["cpu_seconds"].as_f64().expect("cpu");
    sandbox.wait_row("prom", "sub", LIMIT, |r| r["messages_in"].as_u64().unwrap_or(0) > 100);
    let row = sandbox.row("prom", "spin");
    assert_eq!(
        (row["state"].as_str(), row["cpu_seconds"].as_f64()),
        (Some("stopped"), Some(cpu)),
        "{row}"
    );

    // restart: a new instance of pub (a later start), which publishes again.
    let before = sandbox.row("prom", "pub");
    let restarted = sandbox.ok(&["restart", "-p", "prom", "pub"]);
    assert!(
        restarted.contains("pub") && restarted.contains("restarted"),
        "{restarted}"
    );
    let out_before = before["messages_out"].as_u64().expect("counter");
    let after = sandbox.wait_row("prom", "pub", LIMIT, |r| {
        r["state"] == "running" && r["messages_out"].as_u64().unwrap_or(0) > out_before + 10
    });
    assert!(
        after["started_at"].as_f64() > before["started_at"].as_f64(),
        "{before}\n{after}"
    );
}

/// A changed container whose new instance cannot start (its start function traps) keeps
/// its old instance running, and the failure is reported (exit 1, the event).
#[test]
fn a_reload_whose_new_instance_fails_keeps_the_old_one() {
    let sandbox = Sandbox::new();
    let boom = sandbox.path().join("boom.wasm");
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func $boom unreachable) (start $boom) (func (export "_start")))"#,
    )
    .expect("wat");
    std::fs::write(&boom, wasm).expect("write");
    let (_up, file) = detached(&sandbox, "keep", PAIR, &[]);
    let before = sandbox.wait_row("keep", "sub", LIMIT, |r| r["messages_in"].as_u64().unwrap_or(0) > 5);
    let text = std::fs::read_to_string(&file).expect("read");
    let changed = text.replacen(
        &format!("{}/seq-subscriber.wasm", images().display()),
        &boom.display().to_string(),
        1,
    );
    assert_ne!(text, changed);
    std::fs::write(&file, changed).expect("write");
    let err = sandbox.fails(&["up", "-d", "-f", arg(&file)], 1);
    assert!(
        err.contains("sub: the new instance did not start (trapped: wasm `unreachable` instruction executed); the old one keeps running"),
        "{err}"
    );
    let events = sandbox.wait_events("keep", "reload", LIMIT, |found| !found.is_empty());
    assert!(events[0].contains("result: 1 failed: sub"), "{events:?}");
    // The same instance (same start) goes on receiving.
    let got = before["messages_in"].as_u64().unwrap_or(0);
    let after = sandbox.wait_row("keep", "sub", LIMIT, |r| {
        r["messages_in"].as_u64().unwrap_or(0) > got + 20
    });
    assert_eq!(after["state"], "running", "{after}");
    assert_eq!(
        after["started_at"], before["started_at"],
        "the old instance, not a new one"
    );
}

/// A guest that touches 32 MiB and then parks, as WAT.
const HOG: &str = r#"(module
  (import "env" "ocre_sleep" (func $sleep (param i32) (result i32)))
  (memory (export "memory") 512)
  (func (export "_start") (local $p i32)
    (loop $touch
      (i32.store (local.get $p) (i32.const 1))
      (local.set $p (i32.add (local.get $p) (i32.const 4096)))
      (br_if $touch (i32.lt_u (local.get $p) (i32.const 33554432))))
    (loop $park (drop (call $sleep (i32.const 60000))) (br $park))))"#;

/// Removing two containers holding 32 MiB each by a reload gives their memory back to
/// the kernel (the server's RSS drops by most of the 64 MiB), as `down` does.
#[test]
fn removed_containers_memory_comes_back_on_reload() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.path().join("hog.wasm"), wat::parse_str(HOG).expect("wat")).expect("write");
    let hogs = "  hog1:\n    image: hog.wasm\n    limits: {memory: 40MiB}\n  hog2:\n    image: hog.wasm\n    limits: {memory: 40MiB}\n";
    let (_up, file) = detached(&sandbox, "hogs", &format!("{PAIR}{hogs}"), &[]);
    for hog in ["hog1", "hog2"] {
        sandbox.wait_row("hogs", hog, LIMIT, |r| {
            r["memory_bytes"].as_u64().unwrap_or(0) >= 32 << 20
        });
    }
    let before = stats(&sandbox, "hogs")["rss_kib"].as_u64().expect("rss");
    write_stack(&sandbox, "hogs", PAIR);
    let applied = sandbox.ok(&["up", "-d", "-f", arg(&file)]);
    assert!(applied.contains("- hog1") && applied.contains("- hog2"), "{applied}");
    let after = stats(&sandbox, "hogs")["rss_kib"].as_u64().expect("rss");
    assert!(
        after + 48 * 1024 <= before,
        "RSS {before} KiB -> {after} KiB after removing 64 MiB of guests"
    );
    assert_eq!(sandbox.ps("hogs").len(), 2);
}

/// `up --watch` watches the env files too: editing one reloads the container that uses
/// it, which then runs with the new value.
#[test]
fn env_files_are_watched() {
    let sandbox = Sandbox::new();
    sandbox.write("pub.env", "PREFIX=first/\nPERIOD_MS=5\n");
    let containers =
        "  pub:\n    image: IMAGES/seq-publisher.wasm\n    capabilities: [messaging, timers]\n    env_file: pub.env\n";
    let (_up, _) = detached(&sandbox, "envw", containers, &["--watch"]);
    let logs = sandbox.ok(&["logs", "-p", "envw", "pub"]);
    assert!(logs.contains("publishing first/<n>"), "{logs}");
    sandbox.write("pub.env", "PREFIX=second/\nPERIOD_MS=5\n");
    let reloads = sandbox.wait_events("envw", "reload", LIMIT, |found| !found.is_empty());
    assert!(
        reloads[0].contains("plan: ~pub") && reloads[0].contains("result: ok"),
        "{reloads:?}"
    );
    let deadline = Instant::now() + LIMIT;
    loop {
        let logs = sandbox.ok(&["logs", "-p", "envw", "pub"]);
        if logs.contains("publishing second/<n>") {
            break;
        }
        assert!(Instant::now() < deadline, "the new env never reached pub:\n{logs}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `logs -f` reader that falls behind is told how many lines it missed (on stderr),
/// instead of the server holding every line for it.
#[test]
fn a_slow_log_follower_is_told_what_it_missed() {
    let sandbox = Sandbox::new();
    let containers = "  chatty:\n    image: IMAGES/hostile.wasm\n    args: [stdout, \"8\"]\n";
    let (_up, _) = detached(&sandbox, "slow", containers, &[]);
    let first = sandbox.wait_row("slow", "chatty", LIMIT, |r| r["state"] == "exited");
    // A follower that reads nothing: its stdout pipe fills, so it stops reading the socket.
    let errors = sandbox.path().join("follower.err");
    let mut follower = sandbox
        .command(&["logs", "-f", "-p", "slow", "chatty"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&errors).expect("stderr file"))
        .spawn()
        .expect("spawn logs -f");
    // The same 8 MiB again, while the follower does not read.
    sandbox.ok(&["start", "-p", "slow", "chatty"]);
    sandbox.wait_row("slow", "chatty", LIMIT, |r| {
        r["state"] == "exited" && r["started_at"].as_f64() > first["started_at"].as_f64()
    });
    // Now read: the server finds the reader lagged and says by how much.
    let mut out = follower.stdout.take().expect("stdout");
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let deadline = Instant::now() + LIMIT;
    let notice = loop {
        let text = std::fs::read_to_string(&errors).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|l| l.contains("lines skipped: this reader fell behind"))
        {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "no missed-lines notice; stderr:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let missed: u64 = notice
        .trim_start_matches("warning: ")
        .trim_start_matches('(')
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{notice}"));
    assert!(missed > 0, "{notice}");
    let _ = follower.kill();
    let _ = follower.wait();
    let _ = drain.join();
}

/// A detached stack's log file past 10 MiB is rotated when the stack starts: the old one
/// becomes `<project>.log.1`, whole, and the new log starts empty of it.
#[test]
fn the_detached_log_is_rotated_at_start() {
    let sandbox = Sandbox::new();
    let run = sandbox.runtime_dir();
    std::fs::create_dir_all(&run).expect("mkdir");
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
    let old = "an old line of the previous run\n".repeat((11 << 20) / 32);
    std::fs::write(run.join("rot.log"), &old).expect("write");
    let (_up, _) = detached(&sandbox, "rot", "  hi:\n    image: IMAGES/hello.wasm\n", &[]);
    let rotated = std::fs::read_to_string(run.join("rot.log.1")).expect("rot.log.1");
    assert_eq!(rotated.len(), old.len(), "the old log is kept whole");
    let fresh = std::fs::read_to_string(run.join("rot.log")).expect("rot.log");
    assert!(!fresh.contains("an old line"), "{fresh}");
    assert!(fresh.len() < 1 << 20, "{} bytes", fresh.len());
}

/// CPU time of a process from /proc (user + system), in clock ticks.
fn cpu_ticks(pid: u64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// 200 parked containers (the SDK poll loop, nothing to do) cost the server less than 5%
/// of a core over 2 s, from /proc. Coarse on purpose, so a busy machine cannot fail it: a
/// parked guest wakes only for events, so the figure is near 0, and a regression that
/// polls (a timer per guest, a spinning wait) costs whole percents per container.
#[test]
fn parked_containers_stay_near_zero_cpu() {
    let sandbox = Sandbox::new();
    let containers =
        "  idle:\n    image: IMAGES/idle_subscriber.wasm\n    capabilities: [messaging]\n    replicas: 200\n";
    let (_up, _) = detached(&sandbox, "parked", containers, &[]);
    let stacks: serde_json::Value = serde_json::from_str(&sandbox.ok(&["ls", "--format", "json"])).expect("ls json");
    let pid = stacks[0]["pid"].as_u64().expect("pid");
    assert_eq!(stacks[0]["containers"], 200, "{stacks}");
    assert!(sandbox.ps("parked").iter().all(|r| r["state"] == "running"));
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = (cpu_ticks(pid) - before) as f64 / ticks_per_second;
    assert!(used < 0.1, "200 parked containers used {used:.3} s of CPU in 2 s");
}

/// A bridge's export queue overflows while the broker is down: the oldest are dropped and
/// counted, the operator is warned once, and when the broker is back exactly the newest
/// `queue` messages reach a subscriber (a persistent session kept by the broker across its
/// restart, so nothing here depends on who reconnects first).
#[test]
fn a_bridge_queue_overflow_keeps_the_newest_messages_end_to_end() {
    let sandbox = Sandbox::new();
    let mut broker = shoal::bridge::mosquitto::Mosquitto::start_in(&sandbox.path().join("mosquitto"), false)
        .expect("start mosquitto (installed by scripts/setup.sh)");
    let client = MqttCli::to(&broker).mqtt311();
    let receiver = |extra: &[&str]| receiver(&client, "promises-receiver", extra);
    // Register the receiver's persistent session (QoS 1, clean session off), then leave.
    let registered = receiver(&["-C", "1", "-W", "2"]).output().expect("mosquitto_sub");
    assert!(registered.status.code().is_some(), "{registered:?}");
    // SIGTERM: the broker saves the receiver's session.
    broker.stop();

    let file = sandbox.write(
        "overflow.yaml",
        &format!(
            "name: overflow\nbridges:\n  uplink:\n    url: {}\n    queue: 100\n    reconnect_max: 500ms\n    flush_timeout: 60s\n    export: [{{local: \"sensors/\", remote: \"factory/sensors/\", qos: 1}}]\ncontainers:\n  sensor:\n    image: {}\n    capabilities: [messaging, timers]\n    publish: [\"sensors/\"]\n    env: {{PREFIX: \"sensors/\", PERIOD_MS: \"1\", COUNT: \"500\"}}\n",
            broker.url(),
            image("seq-publisher.wasm").display()
        ),
    );
    let mut up = sandbox.up(&file);
    up.wait_seen("sensor exited with code 0", LIMIT);
    up.wait_seen(
        "export queue full (100 messages): dropping the oldest while the broker is unreachable",
        LIMIT,
    );
    let bridge = &stats(&sandbox, "overflow")["bridges"][0];
    assert_eq!(bridge["dropped"], 400, "{bridge}");
    assert_eq!(bridge["queued"], 100, "{bridge}");

    // The only container has ended, so the stack is ending: the bridge holds it for up to
    // `flush_timeout` (60 s) to deliver its queue, which the restarted broker now takes.
    broker.restart().expect("restart mosquitto");
    let status = up.wait_exit(LIMIT + LIMIT);
    let seen = up.seen.join("\n");
    assert!(status.success(), "{seen}");
    assert!(seen.contains("(new session, 100 queued)"), "{seen}");
    assert!(
        seen.contains("stopped: exported 100, imported 0, dropped 400,"),
        "{seen}"
    );
    let warnings = up.seen.iter().filter(|l| l.contains("export queue full")).count();
    assert_eq!(warnings, 1, "one warning per outage:\n{seen}");

    // The receiver's session holds what the broker got: exactly 400..=499, once each.
    let drained = receiver(&["-C", "100", "-W", "60"]).output().expect("mosquitto_sub");
    let text = String::from_utf8_lossy(&drained.stdout);
    let got: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("factory/sensors/"))
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(got, (400..500).collect::<Vec<u64>>(), "{text}");
}

/// A broker that lost the bridge's session (here: `session_expiry: 0s`, a clean session on
/// every connect) gets the bridge's unacknowledged window again from the bridge itself:
/// across a broker restart in the middle of a QoS 1 stream, a subscriber whose own session
/// the broker kept receives every message (a duplicate is allowed, a hole is not).
#[test]
fn a_lost_bridge_session_is_made_good_by_resending_end_to_end() {
    let sandbox = Sandbox::new();
    let mut broker = shoal::bridge::mosquitto::Mosquitto::start_in(&sandbox.path().join("mosquitto"), false)
        .expect("start mosquitto (installed by scripts/setup.sh)");
    let client = MqttCli::to(&broker).mqtt311();
    let receiver = |extra: &[&str]| receiver(&client, "promises-resend", extra);
    let registered = receiver(&["-C", "1", "-W", "2"]).output().expect("mosquitto_sub");
    assert!(registered.status.code().is_some(), "{registered:?}");

    let file = sandbox.write(
        "resend.yaml",
        &format!(
            "name: resend\nbridges:\n  uplink:\n    url: {}\n    session_expiry: 0s\n    queue: 20000\n    reconnect_max: 500ms\n    flush_timeout: 60s\n    export: [{{local: \"sensors/\", remote: \"factory/sensors/\", qos: 1}}]\ncontainers:\n  sensor:\n    image: {}\n    capabilities: [messaging, timers]\n    publish: [\"sensors/\"]\n    env: {{PREFIX: \"sensors/\", PERIOD_MS: \"1\"}}\n",
            broker.url(),
            image("seq-publisher.wasm").display()
        ),
    );
    let mut up = sandbox.up(&file);
    up.wait_seen("(new session,", LIMIT);
    // The publisher never ends by itself: the stream goes on through the restart until
    // the test has seen 500 more messages exported after it, however slow the machine.
    let exported = || {
        stats(&sandbox, "resend")["bridges"][0]["exported"]
            .as_u64()
            .unwrap_or(0)
    };
    let wait_exported = |at_least: u64| {
        let deadline = Instant::now() + LIMIT;
        while exported() < at_least {
            assert!(
                Instant::now() < deadline,
                "the bridge stopped exporting before {at_least}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Mid-stream: stop the broker (it saves the receiver's session, not the bridge's).
    wait_exported(300);
    broker.stop();
    std::thread::sleep(Duration::from_millis(700));
    broker.restart().expect("restart mosquitto");
    let after = exported();
    wait_exported(after + 500);
    up.signal(libc::SIGINT);
    let status = up.wait_exit(LIMIT + LIMIT);
    let seen = up.seen.join("\n");
    assert!(status.success(), "{seen}");
    let sessions = up.seen.iter().filter(|l| l.contains("(new session,")).count();
    assert_eq!(sessions, 2, "a new session at the start and after the restart:\n{seen}");
    assert!(
        up.seen
            .iter()
            .any(|l| l.contains(", dropped 0,") && l.ends_with(", reconnects 1")),
        "{seen}"
    );

    // Everything the bridge exported is in the receiver's session: drain it (at least the
    // `after + 500` the test waited for, then whatever else came). No number below the
    // highest received may be missing.
    let count = (after + 500).to_string();
    let mut got = BTreeSet::new();
    for extra in [&["-C", count.as_str(), "-W", "60"][..], &["-W", "3"][..]] {
        let drained = receiver(extra).output().expect("mosquitto_sub");
        got.extend(
            String::from_utf8_lossy(&drained.stdout)
                .lines()
                .filter_map(|l| l.strip_prefix("factory/sensors/"))
                .filter_map(|n| n.parse::<u64>().ok()),
        );
    }
    let top = got.iter().max().copied().unwrap_or(0);
    assert!(
        top + 1 >= after + 500,
        "only up to {top} received; {after} exported at the restart"
    );
    let missing: Vec<u64> = (0..=top).filter(|n| !got.contains(n)).collect();
    assert!(missing.is_empty(), "lost across the lost session: {missing:?}");
}
