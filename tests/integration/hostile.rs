//! The hostile-guest suite (`compose-examples/guests/HOSTILE.md`): every kind of misbehaving
//! guest runs beside a healthy `seq-publisher` -> `seq-subscriber` pair in one `shoal up`.
//! For each: the host stays up, the pair's messages keep arriving (no GAP, no DUP, the
//! sequence keeps advancing after every offender is done), the offender's end is reported
//! precisely, and its memory comes back.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::*;

const LONG: Duration = Duration::from_secs(120);

/// A `/proc/PID/status` field in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Every offender that ends on its own, plus a spinner and a reader that never reads,
/// started together once the pair runs.
const OFFENDERS: &str = "  trap:
    image: IMAGES/trap.wasm
    depends_on: [pub]
  oom:
    image: IMAGES/hostile.wasm
    args: [oom]
    limits: {memory: 32MiB}
    depends_on: [pub]
  grow:
    image: IMAGES/hostile.wasm
    args: [grow]
    limits: {memory: 1MiB}
    depends_on: [pub]
  spin:
    image: IMAGES/hostile.wasm
    args: [spin]
    limits: {cpu: 10%}
    depends_on: [pub]
  recurse:
    image: IMAGES/recurse.wasm
    depends_on: [pub]
  badptr:
    image: IMAGES/badptr.wasm
    capabilities: [\"ocre:api\"]
    sensors: [noise]
    depends_on: [pub]
  deaf:
    image: IMAGES/hostile.wasm
    args: [deaf, flood/]
    capabilities: [messaging]
    limits: {queue: 16}
    depends_on: [pub]
  pubflood:
    image: IMAGES/hostile.wasm
    args: [pubflood, \"100000\"]
    capabilities: [messaging]
    depends_on: [deaf]
  substorm:
    image: IMAGES/hostile.wasm
    args: [substorm]
    capabilities: [messaging]
    depends_on: [pub]
  timerstorm:
    image: IMAGES/hostile.wasm
    args: [timerstorm]
    capabilities: [timers]
    limits: {max_timers: 16}
    depends_on: [pub]
  exitcb:
    image: IMAGES/hostile.wasm
    args: [exit-in-callback]
    capabilities: [messaging, timers]
    depends_on: [pub]
";

#[test]
fn hostile_guests_leave_the_host_and_their_neighbours_alone() {
    let sandbox = Sandbox::new();
    let text = format!("name: hostile\nsensors:\n  noise: {{kind: rng}}\ncontainers:\n{HEALTHY_PAIR}{OFFENDERS}");
    let file = sandbox.write("shoal.yaml", &text.replace("IMAGES", &images().display().to_string()));
    let mut up = sandbox.up(&file);
    let pid = up.child.id();

    // Each offender's end, told precisely.
    let ends = [
        "trap trapped: wasm `unreachable` instruction executed",
        "oom ran out of memory: `limits.memory` (32 MiB) refused a growth of",
        "grow | hostile: memory.grow refused at 15 pages",
        "grow exited with code 3",
        "recurse trapped: call stack exhausted",
        "badptr | badptr: all 48 env calls refused",
        "badptr trapped: a WASI call was given memory outside the guest: Pointer out of bounds",
        "pubflood | hostile: published 100000 messages (0 refused)",
        "pubflood exited with code 0",
        "substorm | hostile: 256 subscriptions, then -12; 10000 of 10000 more refused",
        "substorm exited with code 0",
        "timerstorm | hostile: 16 timers, then -12; 5000 timer events",
        "timerstorm exited with code 0",
        "exitcb | hostile: exiting inside the message handler",
        "exitcb exited with code 7",
    ];
    for end in ends {
        up.wait_seen(end, LONG);
    }
    // The deaf subscriber (queue 16, never reads) lost all but its queue's worth of the
    // 100,000 messages, and each loss was counted against it.
    let deaf = sandbox.row("hostile", "deaf");
    let dropped = deaf["dropped"].as_u64().unwrap_or(0);
    assert!((100_000 - 16..=100_000).contains(&dropped), "deaf: {deaf}");
    // The operator was told about each limit once.
    for warning in [
        "oom | warning: `limits.memory` (32 MiB) refused a growth",
        "grow | warning: `limits.memory` (1 MiB) refused a growth",
        "spin | warning: over its `limits.cpu` share (10%)",
        "substorm | warning: ocre_subscribe_message refused: the container already has 256 subscriptions",
        "timerstorm | warning: ocre_timer_create refused: the container already has 16 timers",
    ] {
        up.wait_seen(warning, LONG);
    }

    // The oom guest's 32 MiB came back when it ended (its store is dropped at once).
    let peak = status_kib(pid, "VmHWM");
    let now = status_kib(pid, "VmRSS");
    assert!(peak > 0 && now + 16 * 1024 < peak, "RSS {now} KiB, peak {peak} KiB");

    // The pair keeps going after every offender is done: 200 more messages, in order.
    let after = up.last_got() + 200;
    up.wait_seen(&format!("sub | got {after}"), LONG);
    up.signal(libc::SIGINT);
    let status = up.wait_exit(LONG);
    let seen = up.seen.join("\n");
    assert!(!seen.contains("GAP") && !seen.contains("DUP"), "{seen}");
    for killed in ["spin stopped", "deaf stopped", "sub stopped", "pub stopped"] {
        assert!(up.seen.iter().any(|l| l == killed), "{killed}:\n{seen}");
    }
    assert!(!seen.contains("panicked"), "{seen}");
    assert_eq!(status.code(), Some(1), "failed containers make `up` fail:\n{seen}");
}

/// 100 MiB of stdout in 1 KiB lines from one container, read by the test as fast as it
/// comes: every line arrives, and the pair beside it goes on.
#[test]
fn a_hundred_mib_of_stdout_is_passed_on_and_the_pair_goes_on() {
    let sandbox = Sandbox::new();
    let text = format!(
        "containers:\n{HEALTHY_PAIR}  chatty:\n    image: IMAGES/hostile.wasm\n    args: [stdout, \"100\"]\n    depends_on: [pub]\n"
    );
    let file = sandbox.write("shoal.yaml", &text.replace("IMAGES", &images().display().to_string()));
    let mut child = sandbox
        .command(&["up", "-f", arg(&file)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn shoal");
    // Count the flood's lines without keeping them; pass everything else on.
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut flood_lines = 0u64;
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with("chatty | xxxx") {
                flood_lines += 1;
                assert_eq!(line.len(), "chatty | ".len() + 1023, "a line was cut or merged");
            } else if tx.send(line).is_err() {
                break;
            }
        }
        flood_lines
    });
    let mut seen = Vec::new();
    let wait = |needle: &str, seen: &mut Vec<String>| {
        let deadline = Instant::now() + LONG;
        while !seen.iter().any(|l: &String| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!("no {needle:?} within {LONG:?}:\n{}", seen.join("\n")),
            }
        }
    };
    wait("chatty exited with code 0", &mut seen);
    let got = seen
        .iter()
        .filter_map(|l| l.strip_prefix("sub    | got "))
        .filter_map(|n| n.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    wait(&format!("sub    | got {}", got + 100), &mut seen);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + LONG;
    while child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "shoal did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let flood_lines = reader.join().expect("reader");
    seen.extend(rx.try_iter());
    let text = seen.join("\n");
    assert_eq!(flood_lines, 100 * 1024, "every line of the 100 MiB arrives");
    assert!(!text.contains("GAP") && !text.contains("DUP"), "{text}");
    assert!(text.contains("chatty | hostile: wrote 100 MiB to stdout"), "{text}");
}

/// The wasm stack limit is one setting for the process, and it is applied: a recursion of
/// a fixed depth (20,000 calls, `depth.wat`) traps under 64 KiB and finishes under 4 MiB,
/// an endless one traps under any value, and a value out of range is a usage error before
/// anything runs.
#[test]
fn the_wasm_stack_limit_is_a_process_setting() {
    let sandbox = Sandbox::new();
    let recurse = image("recurse.wasm");
    for size in ["64KiB", "4MiB"] {
        let output = sandbox.run(&["--max-wasm-stack", size, "run", arg(&recurse)]);
        let out = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{out}");
        assert!(out.contains("recurse trapped: call stack exhausted"), "{size}: {out}");
    }
    let depth = image("depth.wasm");
    let small = sandbox.run(&["--max-wasm-stack", "64KiB", "run", arg(&depth)]);
    let out = stdout(&small);
    assert_eq!(small.status.code(), Some(1), "64KiB: {out}");
    assert!(out.contains("depth trapped: call stack exhausted"), "64KiB: {out}");
    assert!(!out.contains("reached depth"), "64KiB: {out}");
    let large = sandbox.run(&["--max-wasm-stack", "4MiB", "run", arg(&depth)]);
    let out = stdout(&large);
    assert_eq!(large.status.code(), Some(0), "4MiB: {out}");
    assert!(out.contains("depth | reached depth 20000"), "4MiB: {out}");
    let err = sandbox.fails(&["--max-wasm-stack", "1GiB", "run", arg(&recurse)], 1);
    assert!(
        err.contains("--max-wasm-stack `1GiB` is out of range: use 64KiB to 64MiB"),
        "{err}"
    );
    // A compose file cannot set it per container, and says where to set it instead.
    let file = sandbox.write(
        "shoal.yaml",
        &format!(
            "containers:\n  deep:\n    image: {}\n    limits: {{stack: 1MiB}}\n",
            image("recurse.wasm").display()
        ),
    );
    let output = sandbox.check(&file, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("`--max-wasm-stack SIZE`"),
        "{}",
        stderr(&output)
    );
}
