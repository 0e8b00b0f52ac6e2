//! All cores: the executor's workers (`--workers`), pinning with `cpus:`, and spinning
//! guests beside a messaging pair. Functional checks only; the speed is `shoal bench
//! isolation`'s to print.

use std::time::Duration;

use crate::support::{arg, images, Sandbox};

const LONG: Duration = Duration::from_secs(120);

fn compose_with(sandbox: &Sandbox, body: &str) -> std::path::PathBuf {
    let images = images().display().to_string();
    sandbox.write("shoal.yaml", &body.replace("IMAGES", &images))
}

/// The threads of process `pid`: (name, allowed cpu list, the core it last ran on).
fn threads(pid: u32) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        // Field 39 of stat: the processor; the name (field 2) may hold spaces, so count
        // from after its closing parenthesis (field 3 is the first after it).
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        let processor = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(39 - 3))
            .unwrap_or_default()
            .to_owned();
        out.push((field("Name:"), field("Cpus_allowed_list:"), processor));
    }
    out
}

/// The cores this test process may use.
fn allowed_cores() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity writes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..1024).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

#[test]
fn a_pinned_container_runs_only_on_its_core_and_workers_follow_the_flag() {
    let sandbox = Sandbox::new();
    let core = *allowed_cores().last().expect("a core");
    let file = compose_with(
        &sandbox,
        &format!(
            "containers:\n  pinned:\n    image: IMAGES/spin.wasm\n    cpus: [{core}]\n    stop_timeout: 2s\n  free:\n    image: IMAGES/hello.wasm\n"
        ),
    );
    let mut cmd = sandbox.shoal();
    cmd.args(["--workers", "2", "up", "-f", arg(&file)]);
    let mut running = crate::support::Running::spawn(cmd);
    running.wait_seen("pinned | spinning", LONG);
    running.wait_seen("free exited with code 0", LONG);
    let pid = running.child.id();
    let all = threads(pid);
    let pinned: Vec<_> = all
        .iter()
        .filter(|(name, ..)| name.starts_with("shoal-cpus-"))
        .collect();
    assert!(!pinned.is_empty(), "no pinned executor thread: {all:?}");
    for (name, allowed, processor) in &pinned {
        assert_eq!(allowed, &core.to_string(), "{name} may run elsewhere: {all:?}");
        assert_eq!(processor, &core.to_string(), "{name} ran elsewhere: {all:?}");
    }
    let workers = all.iter().filter(|(name, ..)| name == "shoal-worker").count();
    assert_eq!(workers, 2, "--workers 2: {all:?}");
    running.signal(libc::SIGINT);
    let status = running.wait_exit(LONG);
    assert_eq!(status.code(), Some(0), "{}", running.seen.join("\n"));
}

#[test]
fn a_core_the_machine_does_not_have_is_refused_at_up_naming_the_key() {
    let sandbox = Sandbox::new();
    let file = compose_with(
        &sandbox,
        "containers:\n  pinned:\n    image: IMAGES/hello.wasm\n    cpus: \"1000-1001\"\n",
    );
    let err = sandbox.fails(&["up", "-f", arg(&file)], 1);
    assert!(err.contains("shoal.yaml:4:5"), "{err}");
    assert!(err.contains("container `pinned`: `cpus` names core 1000"), "{err}");
    assert!(err.contains("may only use cores"), "{err}");
    // Decoding alone accepts it: the spec knows nothing of the machine.
    sandbox.ok(&["config", "-q", "-f", arg(&file)]);
}

#[test]
fn two_spinners_and_a_messaging_pair_all_complete() {
    let sandbox = Sandbox::new();
    let file = compose_with(
        &sandbox,
        "containers:
  spin:
    image: IMAGES/spin.wasm
    stop_timeout: 2s
  spin-limited:
    image: IMAGES/spin.wasm
    stop_timeout: 2s
    limits: {cpu: 0.2}
  sub:
    image: IMAGES/seq-subscriber.wasm
    capabilities: [messaging]
  pub:
    image: IMAGES/seq-publisher.wasm
    capabilities: [messaging, timers]
    env: {COUNT: \"50\", PERIOD_MS: \"20\"}
    depends_on: {sub: {condition: service_started}}
",
    );
    let mut running = sandbox.up(&file);
    running.wait_seen("sub | got 49", LONG);
    running.wait_seen("pub exited with code 0", LONG);
    let seen = running.seen.join("\n");
    assert!(!seen.contains("GAP") && !seen.contains("DUP"), "{seen}");
    running.signal(libc::SIGINT);
    let status = running.wait_exit(LONG);
    let seen = running.seen.join("\n");
    assert!(
        seen.contains("spin stopped") && seen.contains("spin-limited stopped"),
        "{seen}"
    );
    assert_eq!(status.code(), Some(0), "{seen}");
}
