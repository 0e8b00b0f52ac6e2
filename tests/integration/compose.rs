//! Compose's per-environment habits through the real binary: several `-f` files and the
//! override file, `.env` and `--env-file`, `-p` / `SHOAL_PROJECT_NAME`, profiles, `config`
//! output fed back, compose files that are not regular files, and one file on two boards
//! against one real Mosquitto.

use std::process::Command;
use std::time::Duration;

use shoal::bridge::mosquitto::Mosquitto;

use crate::mqtt_cli::MqttCli;
use crate::support::*;

/// A hang guard, not a timing assertion.
const LONG: Duration = Duration::from_secs(60);

/// Takes a detached stack down when the test ends, even when it fails.
struct Down<'a>(&'a Sandbox, &'a str);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["down", "-p", self.1]);
    }
}

fn base(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox.write(
        "shoal.yaml",
        &format!(
            "name: line-3\ncontainers:\n  sub:\n    image: {}\n    capabilities: [messaging]\n    env: {{UNIT: \"${{UNIT}}\"}}\n  debug:\n    image: {}\n    capabilities: [messaging]\n    profiles: [debug]\n",
            image("seq-subscriber.wasm").display(),
            image("seq-subscriber.wasm").display()
        ),
    )
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}\n{out}"))
}

#[test]
fn override_file_env_files_project_names_and_profiles_from_the_command_line() {
    let sandbox = Sandbox::new();
    base(&sandbox);
    // Without .env, the warning says where shoal looked.
    let output = sandbox.run(&["config", "-q"]);
    assert!(output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("variable `UNIT` is not set and there is no `.env` file")
            && err.contains("`.env` beside the compose file"),
        "{err}"
    );

    sandbox.write(".env", "UNIT=celsius\n");
    sandbox.write("board.env", "UNIT=kelvin\n");
    sandbox.write("shoal.override.yaml", "containers:\n  sub:\n    replicas: 2\n");
    let c = json(&sandbox.ok(&["config", "--format", "json"]));
    assert_eq!(c["containers"]["sub"]["env"]["UNIT"], "celsius");
    assert_eq!(
        c["containers"]["sub"]["replicas"], 2,
        "the override file beside shoal.yaml is merged"
    );
    assert!(c["containers"].get("debug").is_none(), "profiled out: {c}");

    // -f names files explicitly (no override pickup), merged in order; --env-file replaces .env.
    sandbox.write("board-7.yaml", "containers:\n  sub:\n    env: {BOARD: \"7\"}\n");
    let c = json(&sandbox.ok(&[
        "config",
        "--format",
        "json",
        "-f",
        "shoal.yaml",
        "-f",
        "board-7.yaml",
        "--env-file",
        "board.env",
        "--profile",
        "debug",
        "-p",
        "board-7",
    ]));
    assert_eq!(c["name"], "board-7");
    let sub = &c["containers"]["sub"];
    assert_eq!(
        (sub["env"]["UNIT"].as_str(), sub["env"]["BOARD"].as_str()),
        (Some("kelvin"), Some("7"))
    );
    assert!(sub.get("replicas").is_none(), "{c}");
    assert!(c["containers"].get("debug").is_some(), "{c}");

    // The environment: SHOAL_PROJECT_NAME under -p, SHOAL_PROFILES when no --profile.
    let mut cmd = sandbox.command(&["config", "--format", "json"]);
    cmd.env("SHOAL_PROJECT_NAME", "from-env").env("SHOAL_PROFILES", "debug");
    let c = json(&stdout(&sandbox.run_command(cmd, &["config"])));
    assert_eq!(c["name"], "from-env");
    assert!(c["containers"].get("debug").is_some(), "{c}");

    // A mistake in the override file is reported at its own line.
    sandbox.write("shoal.override.yaml", "containers:\n  sub:\n    replicas: lots\n");
    let err = sandbox.fails(&["config"], 1);
    assert!(
        err.contains("shoal.override.yaml:3:15: `replicas` must be an integer"),
        "{err}"
    );
}

#[test]
fn printed_config_loads_back_and_prints_the_same() {
    let sandbox = Sandbox::new();
    base(&sandbox);
    sandbox.write(".env", "UNIT=$$dollars\n");
    sandbox.write(
        "shoal.override.yaml",
        "containers:\n  sub:\n    limits: {memory: 3MiB, cpu: 25%}\n    stop_timeout: 1m 30s\n    mounts: [\".:/data:ro\"]\n",
    );
    let first = sandbox.ok(&["config"]);
    assert!(
        !first.contains("\nfile:") && first.contains("memory: 3MiB") && first.contains("1m 30s"),
        "{first}"
    );
    let printed = sandbox.write("printed/merged.yaml", &first);
    let second = sandbox.ok(&["config", "-f", arg(&printed)]);
    assert_eq!(first, second);
}

#[test]
fn compose_files_that_are_not_regular_files_are_refused_at_once() {
    let sandbox = Sandbox::new();
    let err = sandbox.fails(&["config", "-f", "/dev/zero"], 1);
    assert!(
        err.contains("/dev/zero is a character device, not a regular file"),
        "{err}"
    );
    let fifo = sandbox.path().join("pipe.yaml");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let err = sandbox.fails(&["config", "-f", arg(&fifo)], 1);
    assert!(err.contains("is a named pipe (FIFO), not a regular file"), "{err}");
    let err = sandbox.fails(&["config", "-f", "shoal.yaml", "--env-file", "/dev/zero"], 1);
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn up_detached_with_override_and_profile_then_clients_find_it_by_environment() {
    let sandbox = Sandbox::new();
    base(&sandbox);
    sandbox.write(".env", "UNIT=celsius\n");
    sandbox.write("shoal.override.yaml", "containers:\n  sub:\n    replicas: 2\n");
    sandbox.ok(&["up", "-d", "-p", "board-9", "--profile", "debug"]);
    let _down = Down(&sandbox, "board-9");
    let mut names: Vec<String> = sandbox
        .ps("board-9")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["debug", "sub-1", "sub-2"]);
    // A client in another folder finds it through SHOAL_PROJECT_NAME.
    let mut cmd = sandbox.command(&["ps", "--format", "json"]);
    cmd.env("SHOAL_PROJECT_NAME", "board-9").current_dir("/");
    let out = sandbox.run_command(cmd, &["ps"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&stdout(&out)).as_array().map(Vec::len), Some(3));
}

/// One file on two boards against one broker, with the bridge's default client id.
fn bridged(sandbox: &Sandbox, broker: &Mosquitto, client_id: &str) -> std::path::PathBuf {
    sandbox.write(
        "shoal.yaml",
        &format!(
            "name: line-3\nbridges:\n  uplink:\n    url: {}\n{client_id}    export: [{{local: \"seq/\", remote: \"factory/${{BOARD}}/seq/\", qos: 1}}]\ncontainers:\n  sensor:\n    image: {}\n    capabilities: [messaging, timers]\n    env: {{PERIOD_MS: \"50\"}}\n",
            broker.url(),
            image("seq-publisher.wasm").display()
        ),
    )
}

/// A board: its own runtime folder (its own machine), board id and `BOARD`.
fn board(sandbox: &Sandbox, file: &std::path::Path, id: &str) -> Running {
    let mut cmd = sandbox.command(&["up", "-f", arg(file)]);
    cmd.env("SHOAL_BOARD_ID", id)
        .env("BOARD", id)
        .env("SHOAL_RUNTIME_DIR", sandbox.path().join(format!("run-{id}")));
    Running::spawn(cmd)
}

fn subscribe(broker: &Mosquitto, filter: &str) -> Running {
    let mut cmd = MqttCli::to(broker).sub(&[filter]);
    cmd.args(["-q", "1", "-F", "%t"]);
    Running::spawn(cmd)
}

#[test]
fn two_boards_with_one_file_and_one_broker_both_stay_connected() {
    let sandbox = Sandbox::new();
    let broker = Mosquitto::start_in(&sandbox.path().join("mosquitto"), false).expect("start mosquitto");
    let file = bridged(&sandbox, &broker, "");
    let mut a = board(&sandbox, &file, "a");
    let mut b = board(&sandbox, &file, "b");
    let id_a = a.wait_for("bridge:uplink connected to", LONG);
    let id_b = b.wait_for("bridge:uplink connected to", LONG);
    assert_ne!(id_a.split(" as ").nth(1), id_b.split(" as ").nth(1), "{id_a}\n{id_b}");
    let mut sub = subscribe(&broker, "factory/#");
    sub.wait_for("factory/a/seq/", LONG);
    sub.wait_for("factory/b/seq/", LONG);
    // Over a few more seconds, messages keep coming from both, and neither link drops.
    for _ in 0..40 {
        sub.wait_for("factory/a/seq/", LONG);
        sub.wait_for("factory/b/seq/", LONG);
    }
    while a.next_line(Duration::from_millis(10)).is_some() {}
    while b.next_line(Duration::from_millis(10)).is_some() {}
    for (name, board) in [("a", &a), ("b", &b)] {
        let log = board.seen.join("\n");
        assert!(
            !log.contains("lost the connection") && !log.contains("client id") && !log.contains("taken"),
            "board {name}:\n{log}"
        );
    }
}

#[test]
fn an_explicit_shared_client_id_is_named_once_and_not_fought_over() {
    let sandbox = Sandbox::new();
    let broker = Mosquitto::start_in(&sandbox.path().join("mosquitto"), false).expect("start mosquitto");
    let file = bridged(&sandbox, &broker, "    client_id: same-id\n");
    let mut boards = [board(&sandbox, &file, "a"), board(&sandbox, &file, "b")];
    // The broker keeps one session per id: whichever board is dropped says why (Mosquitto
    // closes the older connection without a reason code, so the link notices the drops
    // right after each connect), then waits `reconnect_max` instead of taking it back.
    let told = |b: &Running| b.seen.iter().filter(|l| l.contains("same client id `same-id`")).count();
    let deadline = std::time::Instant::now() + LONG;
    while boards.iter().all(|b| told(b) == 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "nobody named the shared id:\n{}\n--\n{}",
            boards[0].seen.join("\n"),
            boards[1].seen.join("\n")
        );
        for b in boards.iter_mut() {
            b.next_line(Duration::from_millis(20));
        }
    }
    // One board holds the session: its messages keep arriving.
    let mut sub = subscribe(&broker, "factory/#");
    for _ in 0..40 {
        sub.wait_for("/seq/", LONG);
    }
    for b in boards.iter_mut() {
        while b.next_line(Duration::from_millis(10)).is_some() {}
    }
    let log = format!("{}\n--\n{}", boards[0].seen.join("\n"), boards[1].seen.join("\n"));
    assert!(
        told(&boards[0]) <= 1 && told(&boards[1]) <= 1,
        "said more than once:\n{log}"
    );
    assert!(log.contains("hint: give each board its own `client_id`"), "{log}");
}
