//! Operations (issue 19): the Prometheus endpoint parsed by the reference parser, the
//! systemd notify protocol on a socket the test binds, JSON log lines, the hardened unit
//! checked by `systemd-analyze verify`, `shoal schema`, `shoal version` and man pages.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{arg, images, stderr, stdout, Sandbox};

/// A hang guard, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(60);

fn idle_stack(sandbox: &Sandbox, project: &str) -> std::path::PathBuf {
    sandbox.write(
        "shoal.yaml",
        &format!(
            "name: {project}\ncontainers:\n  calm:\n    image: {}/idle_subscriber.wasm\n    capabilities: [messaging]\n  other:\n    image: {}/idle_subscriber.wasm\n    capabilities: [messaging]\n",
            images().display(),
            images().display()
        ),
    )
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Every sample of a scrape of `url`, read by the reference parser (`prometheus_client`),
/// as JSON objects with the family, its type, the sample's name, labels and value.
fn scrape(url: &str) -> Vec<serde_json::Value> {
    let script = r#"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen(sys.argv[1], timeout=30).read().decode()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        print(json.dumps({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value}))
"#;
    let output = Command::new("python3")
        .args(["-c", script, url])
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "the parser refused the scrape:\n{}",
        stderr(&output)
    );
    stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// The value of the sample `name` whose labels include every pair of `labels`.
fn sample(samples: &[serde_json::Value], name: &str, labels: &[(&str, &str)]) -> Option<serde_json::Value> {
    samples
        .iter()
        .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .cloned()
}

#[test]
fn a_metrics_scrape_parses_with_the_reference_parser_and_has_per_container_series() {
    if !python_has("prometheus_client") {
        eprintln!("skipped: python3 with prometheus_client is missing (scripts/setup.sh installs it)");
        return;
    }
    let sandbox = Sandbox::new();
    let file = idle_stack(&sandbox, "scraped");
    // A guest that prints its banner and ends: started again below to print it once more.
    let hello = format!("  hello:\n    image: {}/hello.wasm\n", images().display());
    std::fs::write(&file, std::fs::read_to_string(&file).expect("compose file") + &hello).expect("write compose file");
    let mut up = sandbox.spawn(&["up", "-f", arg(&file), "--metrics", "127.0.0.1:0"]);
    let line = up.wait_for("metrics on http://", LIMIT);
    let url = line.split("metrics on ").nth(1).expect("url").trim().to_owned();
    sandbox.wait_row("scraped", "other", LIMIT, |r| r["state"] == "running");
    sandbox.wait_row("scraped", "hello", LIMIT, |r| {
        r["state"].as_str().is_some_and(|s| s.starts_with("exited"))
    });
    let samples = scrape(&url);
    let find = |name: &str, container: &str| {
        sample(&samples, name, &[("container", container)])
            .unwrap_or_else(|| panic!("no {name} for {container} in {samples:#?}"))
    };
    for container in ["calm", "other"] {
        let running = sample(
            &samples,
            "shoal_container_state",
            &[("container", container), ("state", "running")],
        )
        .expect("state series");
        assert_eq!(running["value"], 1.0, "{running}");
        assert_eq!(running["labels"]["project"], "scraped");
        assert_eq!(find("shoal_container_restarts_total", container)["type"], "counter");
        assert!(
            find("shoal_container_memory_bytes", container)["value"]
                .as_f64()
                .unwrap_or(0.0)
                > 0.0
        );
        find("shoal_container_messages_in_total", container);
        find("shoal_container_messages_dropped_total", container);
    }
    let rss = samples
        .iter()
        .find(|s| s["name"] == "process_resident_memory_bytes")
        .expect("rss");
    assert!(rss["value"].as_f64().unwrap_or(0.0) > 0.0);
    let published =
        sample(&samples, "shoal_broker_published_total", &[("project", "scraped")]).expect("the broker's table");
    assert_eq!(published["type"], "counter", "{published}");

    // Log bytes: a counter per container and stream, which the banner's lines raise.
    let hello_stdout = [("container", "hello"), ("stream", "stdout")];
    let first = sample(&samples, "shoal_container_log_bytes_total", &hello_stdout)
        .unwrap_or_else(|| panic!("no log bytes for hello's stdout in {samples:#?}"));
    assert_eq!(first["type"], "counter", "{first}");
    let once = first["value"].as_f64().unwrap_or(0.0);
    assert!(once > 0.0, "hello printed its banner: {first}");
    let quiet = sample(
        &samples,
        "shoal_container_log_bytes_total",
        &[("container", "hello"), ("stream", "stderr")],
    )
    .expect("a zero series for a stream nothing was written to");
    assert_eq!(quiet["value"], 0.0, "{quiet}");
    sandbox.ok(&["start", "-p", "scraped", "hello"]);
    let began = Instant::now();
    let twice = loop {
        let value = sample(&scrape(&url), "shoal_container_log_bytes_total", &hello_stdout)
            .and_then(|s| s["value"].as_f64())
            .unwrap_or(0.0);
        if value > once {
            break value;
        }
        assert!(
            began.elapsed() < LIMIT,
            "the counter stayed at {value} after hello ran again"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    sandbox.wait_row("scraped", "hello", LIMIT, |r| {
        r["state"].as_str().is_some_and(|s| s.starts_with("exited"))
    });
    let twice = sample(&scrape(&url), "shoal_container_log_bytes_total", &hello_stdout)
        .and_then(|s| s["value"].as_f64())
        .unwrap_or(twice);
    assert_eq!(twice, 2.0 * once, "the same banner printed twice counts twice");
    let _ = up.child.kill();
    let _ = up.child.wait();
}

#[test]
fn a_taken_metrics_port_fails_up_with_the_address_and_a_hint() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = holder.local_addr().expect("addr").to_string();
    let sandbox = Sandbox::new();
    let file = idle_stack(&sandbox, "taken");
    let output = sandbox.run(&["up", "-f", arg(&file), "--metrics", &addr]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains(&addr) && err.contains("hint:"), "{err}");
}

#[test]
fn under_systemd_shoal_sends_ready_regular_watchdog_pings_status_and_stopping() {
    let sandbox = Sandbox::new();
    let file = idle_stack(&sandbox, "notified");
    let socket_path = sandbox.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut cmd = sandbox.command(&["up", "-f", arg(&file)]);
    cmd.env("NOTIFY_SOCKET", &socket_path).env("WATCHDOG_USEC", "200000");
    let mut up = crate::support::Running::spawn(cmd);
    let mut received: Vec<String> = Vec::new();
    let began = Instant::now();
    let count = |received: &[String], key: &str| received.iter().filter(|m| m.lines().any(|l| l == key)).count();
    let mut buf = [0u8; 4096];
    while !(count(&received, "READY=1") >= 1 && count(&received, "WATCHDOG=1") >= 2) {
        assert!(began.elapsed() < LIMIT, "after {LIMIT:?} only: {received:?}");
        if let Ok(n) = socket.recv(&mut buf) {
            received.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    let status = received
        .iter()
        .rev()
        .find_map(|m| m.lines().find_map(|l| l.strip_prefix("STATUS=")).map(str::to_owned))
        .expect("a STATUS= line");
    assert!(status.contains("running"), "{status}");
    // SIGTERM: the teardown begins with STOPPING=1.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(up.child.id() as i32, libc::SIGTERM) };
    while count(&received, "STOPPING=1") == 0 {
        assert!(began.elapsed() < LIMIT * 2, "no STOPPING=1: {received:?}");
        if let Ok(n) = socket.recv(&mut buf) {
            received.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    let _ = up.child.wait();
}

/// A `kind: file` sensor whose path is a FIFO nobody writes. Its read once waited in
/// open(2) on an executor thread, stalling that worker (and every container on it) for
/// good, and SIGTERM could not stop shoal. Now the read runs on the blocking pool and
/// refuses anything but a regular file: the reader gets EIO with a warning, and the
/// per-worker watchdog keeps pinging. (The heartbeat's detection of a stuck worker is
/// tested in `src/systemd.rs` with a worker held in one poll; nothing in shoal is known
/// to stall one any more.)
#[test]
fn a_sensor_on_a_fifo_stalls_no_executor_thread_and_the_watchdog_goes_on() {
    let sandbox = Sandbox::new();
    let fifo = sandbox.path().join("board_temp");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", fifo.display());
    let file = sandbox.write(
        "shoal.yaml",
        &format!(
            "name: fifo\nsensors:\n  board:\n    kind: file\n    path: board_temp\n    channel_types: [temperature]\n\
             containers:\n  reader:\n    image: {images}/sensor_sdk.wasm\n    args: [board]\n    capabilities: [sensors]\n    sensors: [board]\n\
             \x20 calm:\n    image: {images}/idle_subscriber.wasm\n    capabilities: [messaging]\n",
            images = images().display()
        ),
    );
    let socket_path = sandbox.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    // Two workers: before the fix one stalled and the other went on pinging; the
    // heartbeat now stops the pings for either.
    let mut cmd = sandbox.command(&["--workers", "2", "up", "-f", arg(&file)]);
    cmd.env("NOTIFY_SOCKET", &socket_path).env("WATCHDOG_USEC", "400000");
    let mut up = crate::support::Running::spawn(cmd);
    up.wait_seen("not a regular file", LIMIT);
    let began = Instant::now();
    let mut buf = [0u8; 4096];
    let mut received: Vec<String> = Vec::new();
    let mut pings = 0;
    while pings < 3 {
        assert!(
            began.elapsed() < LIMIT,
            "no three pings after the sensor read: {received:?}"
        );
        let Ok(n) = socket.recv(&mut buf) else { continue };
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            !message.lines().any(|l| l.starts_with("STATUS=stalled")),
            "a worker stalled: {received:?} {message}"
        );
        if message.lines().any(|l| l == "WATCHDOG=1") {
            pings += 1;
        }
        received.push(message);
    }
    // SIGTERM ends it (the stalled worker once kept it alive until SIGKILL).
    up.signal(libc::SIGTERM);
    let status = up.wait_exit(LIMIT);
    assert!(status.code().is_some(), "shoal ended by a signal: {status:?}");
}

#[test]
fn json_log_lines_parse_each_with_a_level_a_message_and_container_fields() {
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "shoal.yaml",
        &format!(
            "name: jsonlog\ncontainers:\n  hello:\n    image: {}/hello.wasm\n",
            images().display()
        ),
    );
    let output = sandbox.run(&["--log-format", "json", "up", "-f", arg(&file)]);
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{err}")))
        .collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in &lines {
        assert!(line["level"].is_string() && line["message"].is_string(), "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["container"] == "hello" && l["project"] == "jsonlog"),
        "no line with container fields: {err}"
    );
    // The guest's own output stays a prefixed line on stdout.
    assert!(stdout(&output).contains("hello |"), "{}", stdout(&output));
}

#[test]
fn rust_log_debug_shows_more_than_the_default() {
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "shoal.yaml",
        &format!(
            "name: levels\ncontainers:\n  hello:\n    image: {}/hello.wasm\n",
            images().display()
        ),
    );
    let quiet = sandbox.run(&["--log-level", "error", "up", "-f", arg(&file)]);
    let mut cmd = sandbox.command(&["up", "-f", arg(&file)]);
    cmd.env("RUST_LOG", "debug");
    let loud = cmd.output().expect("run");
    assert!(quiet.status.success() && loud.status.success());
    assert!(
        stderr(&loud).lines().count() > stderr(&quiet).lines().count(),
        "debug:\n{}\nerror only:\n{}",
        stderr(&loud),
        stderr(&quiet)
    );
}

#[test]
fn the_shipped_systemd_unit_passes_systemd_analyze_verify() {
    let keys = [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "WatchdogSec=",
        "ReadWritePaths=",
    ];
    crate::support::verify_unit("shoal@.service", "shoal@line-3.service", &keys);
}

#[test]
fn ps_and_down_with_nothing_running_exit_zero_with_a_note() {
    let sandbox = Sandbox::new();
    for args in [
        &["ps"][..],
        &["down"],
        &["ps", "-p", "ghost"],
        &["down", "-p", "ghost"],
        &["ps", "-q"],
    ] {
        let output = sandbox.run(args);
        assert!(output.status.success(), "shoal {args:?}: {}", stderr(&output));
        let note = stderr(&output);
        assert!(
            note.contains("is not running") || note.contains("no stack is running"),
            "shoal {args:?}: {note}"
        );
    }
    assert_eq!(sandbox.ok(&["ps", "--format", "json"]).trim(), "[]");
}

#[test]
fn ps_quiet_and_services_print_names_only() {
    let sandbox = Sandbox::new();
    let file = idle_stack(&sandbox, "names");
    let mut up = sandbox.up(&file);
    // Containers are added one by one while the socket already answers.
    let began = Instant::now();
    let quiet = loop {
        let output = sandbox.run(&["ps", "-q", "-p", "names"]);
        let text = stdout(&output);
        if text.lines().count() == 2 {
            break text;
        }
        assert!(
            began.elapsed() < LIMIT,
            "ps -q never listed both: {text}{}",
            stderr(&output)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let services = sandbox.ok(&["ps", "--services", "-p", "names"]);
    let _ = up.child.kill();
    let _ = up.child.wait();
    assert_eq!(quiet.lines().collect::<Vec<_>>(), ["calm", "other"], "{quiet}");
    assert_eq!(services.lines().collect::<Vec<_>>(), ["calm", "other"], "{services}");
}

#[test]
fn shoal_version_names_the_commit_target_features_and_wasmtime() {
    let sandbox = Sandbox::new();
    for args in [&["version"][..], &["--version"]] {
        let out = sandbox.ok(args);
        for key in ["commit: ", "target: ", "features: ", "wasmtime: 48."] {
            assert!(out.contains(key), "shoal {args:?} lacks {key:?}:\n{out}");
        }
    }
}

#[test]
fn man_pages_generate_from_the_command_line() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("man1");
    sandbox.ok(&["man", arg(&dir)]);
    let page = std::fs::read_to_string(dir.join("shoal.1")).expect("shoal.1");
    assert!(page.contains(".TH shoal"), "{page}");
    let up = std::fs::read_to_string(dir.join("shoal-up.1")).expect("shoal-up.1");
    assert!(up.contains("\\-\\-metrics") || up.contains("metrics"), "{up}");
}

#[test]
fn exec_and_watch_give_a_hint_instead_of_a_bare_usage_error() {
    let sandbox = Sandbox::new();
    let exec = sandbox.fails(&["exec", "web", "sh"], 2);
    assert!(exec.contains("hint:") && exec.contains("shoal logs"), "{exec}");
    let watch = sandbox.fails(&["watch"], 2);
    assert!(watch.contains("up --watch"), "{watch}");
}

#[test]
fn shoal_schema_validates_every_shipped_example() {
    if !python_has("jsonschema") || !python_has("yaml") {
        eprintln!("skipped: python3 with jsonschema and PyYAML is missing (scripts/setup.sh installs them)");
        return;
    }
    let sandbox = Sandbox::new();
    let schema = sandbox.ok(&["schema"]);
    let parsed: serde_json::Value = serde_json::from_str(&schema).expect("schema is JSON");
    assert!(parsed["$id"].is_string(), "no $id");
    let schema_path = sandbox.write("schema.json", &schema);
    let script = r#"
import json, sys, pathlib, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(schema)
bad = 0
# compose files only: not the guests' sources, nor fleet/ (agent and operator configs)
files = sorted(p for p in pathlib.Path(sys.argv[2]).rglob("*.y*ml") if not {"guests", "fleet"} & set(p.parts))
for path in files:
    for error in validator.iter_errors(yaml.safe_load(path.read_text())):
        bad += 1
        print(f"{path}: {list(error.absolute_path)}: {error.message}")
print(f"{len(files)} files checked")
sys.exit(1 if bad or not files else 0)
"#;
    let examples = crate::support::repo().join("compose-examples");
    let output = Command::new("python3")
        .args(["-c", script, arg(&schema_path), arg(&examples)])
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    // And the typed fields refuse what editors used to accept.
    let bad = sandbox.write(
        "bad.json",
        r#"{"containers": {"a": {"image": "a.wasm", "stop_timeout": "fivesecs", "limits": {"memory": "512 megs"}}}}"#,
    );
    let check = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))))
print(len(errors))
"#;
    let output = Command::new("python3")
        .args(["-c", check, arg(&schema_path), arg(&bad)])
        .output()
        .expect("python3");
    assert_eq!(stdout(&output).trim(), "2", "{}", stderr(&output));
}

#[test]
fn logs_no_log_prefix_prints_the_lines_alone_and_piped_output_has_no_progress() {
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "shoal.yaml",
        &format!(
            "name: bare\ncontainers:\n  hello:\n    image: {}/hello.wasm\n",
            images().display()
        ),
    );
    let up = sandbox.run(&["up", "-d", "-f", arg(&file)]);
    assert!(up.status.success(), "{}", stderr(&up));
    // Piped: no progress bar, no control characters.
    assert!(
        !stderr(&up).contains("loading images") && !stderr(&up).contains('\u{1b}'),
        "{}",
        stderr(&up)
    );
    let prefixed = sandbox.ok(&["logs", "-p", "bare", "hello"]);
    let bare = sandbox.ok(&["logs", "-p", "bare", "--no-log-prefix", "hello"]);
    sandbox.ok(&["down", "-p", "bare"]);
    assert!(prefixed.lines().any(|l| l.starts_with("hello")), "{prefixed}");
    assert_eq!(prefixed.lines().count(), bare.lines().count(), "{prefixed}\n--\n{bare}");
    assert!(!bare.is_empty(), "no lines");
    for (with, without) in prefixed.lines().zip(bare.lines()) {
        assert!(
            with.starts_with("hello") && !without.starts_with("hello") && with.ends_with(without),
            "{with:?} vs {without:?}"
        );
    }
}

#[test]
fn topics_tail_json_prints_one_object_per_message_with_its_origin() {
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "shoal.yaml",
        &format!(
            "name: tailed\ncontainers:\n  publisher:\n    image: {}/publisher.wasm\n    capabilities: [ocre:api]\n",
            images().display()
        ),
    );
    let mut up = sandbox.up(&file);
    let began = Instant::now();
    while sandbox.run(&["ps", "-q", "-p", "tailed"]).stdout.is_empty() {
        assert!(began.elapsed() < LIMIT, "the stack never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut tail = sandbox.spawn(&["topics", "tail", "-p", "tailed", "", "--format", "json"]);
    let line = tail.wait_for("\"topic\"", LIMIT);
    let _ = tail.child.kill();
    let _ = tail.child.wait();
    let _ = up.child.kill();
    let _ = up.child.wait();
    let message: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!(message["topic"].is_string() && message["bytes"].is_u64(), "{message}");
    assert_eq!(message["origin"], "local", "{message}");
}

#[test]
fn the_metrics_key_serves_the_endpoint_and_a_bad_address_names_its_line() {
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "shoal.yaml",
        &format!(
            "name: keyed\nmetrics:\n  listen: 127.0.0.1:0\ncontainers:\n  calm:\n    image: {}/idle_subscriber.wasm\n    capabilities: [messaging]\n",
            images().display()
        ),
    );
    let mut up = sandbox.up(&file);
    up.wait_for("metrics on http://127.0.0.1:", LIMIT);
    let _ = up.child.kill();
    let _ = up.child.wait();
    let bad = sandbox.write(
        "bad/shoal.yaml",
        "name: keyed\nmetrics:\n  listen: localhost\ncontainers:\n  calm:\n    image: x.wasm\n",
    );
    let err = sandbox.fails(&["config", "-q", "-f", arg(&bad)], 1);
    assert!(
        err.contains("shoal.yaml:3:11") && err.contains("127.0.0.1:9464"),
        "{err}"
    );
}

#[test]
fn graph_p_of_a_running_stack_reads_its_file_not_this_folders_and_stays_quiet() {
    let sandbox = Sandbox::new();
    // A warning in the running stack's file (an unknown `x-` key is silent; `version` warns).
    let file = sandbox.write(
        "stack/shoal.yaml",
        &format!(
            "version: '3'\nname: graphed\ncontainers:\n  calm:\n    image: {}/idle_subscriber.wasm\n    capabilities: [messaging]\n",
            images().display()
        ),
    );
    let mut up = sandbox.up(&file);
    let began = Instant::now();
    while sandbox.run(&["ps", "-q", "-p", "graphed"]).stdout.is_empty() {
        assert!(began.elapsed() < LIMIT, "the stack never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Another folder with a broken compose file of its own.
    sandbox.write("shoal.yaml", "containers: [\n");
    let output = sandbox.run(&["graph", "-p", "graphed"]);
    let _ = up.child.kill();
    let _ = up.child.wait();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("calm"), "{}", stdout(&output));
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
}

#[test]
fn a_detached_stack_keeps_the_log_format_it_was_started_with() {
    let sandbox = Sandbox::new();
    let file = idle_stack(&sandbox, "detachedjson");
    let up = sandbox.run(&["--log-format", "json", "up", "-d", "-f", arg(&file)]);
    assert!(up.status.success(), "{}", stderr(&up));
    sandbox.ok(&["down", "-p", "detachedjson"]);
    let log = std::fs::read_to_string(sandbox.runtime_dir().join("detachedjson.log")).expect("log file");
    let shoal_lines: Vec<&str> = log.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!shoal_lines.is_empty(), "no JSON lines in the detached log:\n{log}");
    for line in shoal_lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value["level"].is_string() && value["message"].is_string(), "{line}");
    }
}
