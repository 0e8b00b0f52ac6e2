//! `shoal up` and `shoal run` on real guests.

use std::time::Duration;

use crate::support::*;

fn compose_with(sandbox: &Sandbox, body: &str) -> std::path::PathBuf {
    let images = images().display().to_string();
    sandbox.write("shoal.yaml", &body.replace("IMAGES", &images))
}

#[test]
fn hello_stack_prints_the_banner_with_a_prefix() {
    let sandbox = Sandbox::new();
    let file = repo().join("compose-examples/hello/shoal.yaml");
    images();
    let out = sandbox.ok(&["up", "-f", arg(&file)]);
    let lines: Vec<_> = out.lines().collect();
    // Exactly the 6-line banner, the greeting, and the exit: every guest line prefixed,
    // nothing before, between or after.
    assert_eq!(lines.len(), 8, "{out}");
    assert!(lines[..7].iter().all(|l| l.starts_with("hello | ")), "{out}");
    assert_eq!(lines[0], "hello |   ____   _   _   ___     _     _", "{out}");
    assert_eq!(lines[6], "hello | Hello from a shoal container!", "{out}");
    assert_eq!(lines[7], "hello exited with code 0", "{out}");
}

#[test]
fn shared_fs_reader_reads_what_the_writer_wrote() {
    let sandbox = Sandbox::new();
    images();
    let example = repo().join("compose-examples/shared-fs");
    let shared = sandbox.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    // Copy the example next to a private shared folder so tests never race on the repo's.
    let text = std::fs::read_to_string(example.join("shoal.yaml")).unwrap();
    let text = text.replace("../images/", &format!("{}/", images().display()));
    let file = sandbox.write("shoal.yaml", &text);
    let out = sandbox.ok(&["up", "-f", arg(&file)]);
    assert!(out.contains("buffer read = Hello World"), "{out}");
    let writer_done = out.find("writer exited with code 0").expect("writer ended");
    let reader_start = out.find("reader | ").expect("reader printed");
    assert!(
        writer_done < reader_start,
        "reader must start after the writer completed:\n{out}"
    );
    assert_eq!(
        std::fs::read_to_string(shared.join("shared_data.txt")).unwrap(),
        "Hello World"
    );
}

#[test]
fn exits_are_reported_distinctly() {
    let sandbox = Sandbox::new();
    let file = compose_with(
        &sandbox,
        "containers:\n  ok:\n    image: IMAGES/hello.wasm\n  seven:\n    image: IMAGES/exit-code.wasm\n    args: [\"7\"]\n  boom:\n    image: IMAGES/trap.wasm\n",
    );
    let output = sandbox.run(&["up", "-f", arg(&file)]);
    let out = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed container makes `up` fail:\n{out}"
    );
    assert!(out.contains("ok exited with code 0"), "{out}");
    assert!(out.contains("seven exited with code 7"), "{out}");
    assert!(out.contains("boom trapped:") && out.contains("unreachable"), "{out}");
}

#[test]
fn failed_dependency_is_reported_and_its_dependent_not_started() {
    let sandbox = Sandbox::new();
    let file = compose_with(
        &sandbox,
        "containers:\n  first:\n    image: IMAGES/exit-code.wasm\n    args: [\"2\"]\n  second:\n    image: IMAGES/hello.wasm\n    depends_on:\n      first: {condition: service_completed_successfully}\n",
    );
    let output = sandbox.run(&["up", "-f", arg(&file)]);
    let out = stdout(&output);
    assert!(out.contains("first exited with code 2"), "{out}");
    assert!(
        out.contains("second not started: dependency `first` did not complete successfully"),
        "{out}"
    );
    assert!(!out.contains("second | "), "{out}");
}

#[test]
fn ctrl_c_stops_a_spinning_guest() {
    let sandbox = Sandbox::new();
    let file = compose_with(
        &sandbox,
        "containers:\n  spin:\n    image: IMAGES/spin.wasm\n    stop_timeout: 2s\n  hello:\n    image: IMAGES/hello.wasm\n",
    );
    let mut running = sandbox.up(&file);
    running.wait_seen("| spinning", Duration::from_secs(60));
    // The spinning guest must not starve its neighbour (on several executor threads the
    // two lines come in either order, so both are looked for among the lines seen so far).
    running.wait_seen("hello exited with code 0", Duration::from_secs(30));
    running.signal(libc::SIGINT);
    let status = running.wait_exit(Duration::from_secs(30));
    let seen = running.seen.join("\n");
    assert!(seen.contains("spin stopped"), "{seen}");
    assert_eq!(status.code(), Some(0), "an operator stop is a clean exit:\n{seen}");
}

#[test]
fn run_passes_args_env_and_mounts_and_returns_the_exit_code() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["run", arg(&image("exit-code.wasm")), "42"]);
    assert_eq!(output.status.code(), Some(42), "{}", stdout(&output));
    assert!(stdout(&output).contains("exiting with 42"));

    // The environment reaches the guest: seq-publisher takes its prefix and count from it.
    let out = sandbox.ok(&[
        "run",
        "--cap",
        "messaging",
        "--cap",
        "timers",
        "-e",
        "PREFIX=fromenv/",
        "-e",
        "COUNT=2",
        "-e",
        "PERIOD_MS=1",
        arg(&image("seq-publisher.wasm")),
    ]);
    assert!(
        out.contains("seq-publisher: publishing fromenv/<n> every 1 ms"),
        "{out}"
    );
    assert!(out.contains("seq-publisher: done 2"), "{out}");

    std::fs::create_dir(sandbox.path().join("shared")).unwrap();
    let data = sandbox.path().join("shared/shared_data.txt");
    sandbox.ok(&["run", "-v", "./shared:/shared", arg(&image("writer.wasm"))]);
    assert_eq!(std::fs::read_to_string(&data).unwrap(), "Hello World");

    // Read-only mounts refuse writes: the run fails, and the file the writer would have
    // replaced still holds what was there (a write that got through would change it).
    std::fs::write(&data, "untouched").unwrap();
    sandbox.fails(&["run", "-v", "./shared:/shared:ro", arg(&image("writer.wasm"))], 1);
    assert_eq!(std::fs::read_to_string(&data).unwrap(), "untouched");
    let names: Vec<_> = std::fs::read_dir(sandbox.path().join("shared"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["shared_data.txt"], "nothing new in a read-only mount");
}

#[test]
fn thousand_replicas_start_in_one_up() {
    let sandbox = Sandbox::new();
    let file = compose_with(
        &sandbox,
        "containers:\n  hello:\n    image: IMAGES/hello.wasm\n    replicas: 1000\n",
    );
    let out = sandbox.ok(&["up", "-f", arg(&file)]);
    let exited = out.lines().filter(|l| l.ends_with("exited with code 0")).count();
    assert_eq!(exited, 1000);
    assert!(out.contains("hello-1000 | "));
}

#[test]
fn on_failure_restarts_with_growing_delays_then_gives_up() {
    let sandbox = Sandbox::new();
    let file = compose_with(
        &sandbox,
        "containers:\n  boom:\n    image: IMAGES/trap.wasm\n    restart: on-failure:3\n    restart_delay: 100ms\n  fine:\n    image: IMAGES/exit-code.wasm\n    args: [\"0\"]\n    restart: on-failure\n",
    );
    let output = sandbox.run(&["up", "-f", arg(&file)]);
    let out = stdout(&output);
    let restarts: Vec<_> = out
        .lines()
        .filter(|l| l.starts_with("boom trapped") && l.contains("restarting in"))
        .collect();
    assert_eq!(restarts.len(), 3, "{out}");
    for (line, delay) in restarts
        .iter()
        .zip(["100ms (restart 1)", "200ms (restart 2)", "400ms (restart 3)"])
    {
        assert!(line.contains(delay), "expected {delay}: {line}");
    }
    assert!(out.contains("(not restarted again after 3 restarts)"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("boom | ")).count(),
        4,
        "1 run + 3 restarts:\n{out}"
    );
    assert!(
        !out.contains("fine exited with code 0; restarting"),
        "success is not restarted under on-failure"
    );
    assert_eq!(output.status.code(), Some(1));
}
