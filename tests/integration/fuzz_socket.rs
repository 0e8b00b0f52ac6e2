//! The fuzzer's fourth door: the control socket. Any process of the same user can connect,
//! so the server must survive whatever arrives: valid requests with wrong fields, huge
//! numbers and strings, lines longer than the limit, truncated frames, binary garbage,
//! half-closed and idle connections, many at once. Against a real detached stack:
//! - every connection is answered (a reply line) or closed, within a hang guard, except a
//!   request that really is a `follow`, which may stay open (it is dropped after the guard);
//! - afterwards `ps` shows the stack as it was, and `down` stops it cleanly;
//! - the detached log holds no panic.
//!
//! Cases come from [`super::fuzz::seed`] (fixed in the test run; `scripts/fuzz.sh` passes
//! a random one and prints it). A failing request is saved in `target/fuzz-findings/`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::fuzz::{cases, findings_dir, seed, Rng};
use crate::support::*;

/// How long one connection may take to be answered or closed: a hang guard.
const GUARD: Duration = Duration::from_secs(15);

/// Requests the server understands; none of them changes the stack (the fuzzer mutates
/// them, and a mutation of `down` might still be `down`).
const VALID: &[&str] = &[
    r#"{"v":1,"cmd":"ps"}"#,
    r#"{"v":1,"cmd":"info"}"#,
    r#"{"v":1,"cmd":"stats"}"#,
    r#"{"v":1,"cmd":"logs","follow":false,"tail":5,"since":null,"names":["sub"]}"#,
    r#"{"v":1,"cmd":"logs","follow":false,"tail":null,"since":1.5,"names":[]}"#,
    r#"{"v":1,"cmd":"events","follow":false}"#,
    r#"{"v":1,"cmd":"topics-tail","prefix":"nosuch/"}"#,
    r#"{"v":2,"cmd":"ps"}"#,
];

/// Tokens that replace a value or a key in a valid request.
const TOKENS: &[&str] = &[
    "null",
    "true",
    "-1",
    "1e309",
    "18446744073709551616",
    "-9223372036854775809",
    "\"\"",
    "[]",
    "{}",
    "[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"cmd\"",
    "\"v\"",
    "\"follow\"",
    "\"names\"",
    "\"tail\"",
    "\"logs\"",
    "\"ps\"",
    "\"stats\"",
    "\"topics-tail\"",
    "\"nosuch\"",
    "\"sub/../../etc\"",
];

/// One fuzz request: the bytes and whether to half-close the writing side after them.
struct Request {
    bytes: Vec<u8>,
    half_close: bool,
}

fn mutate(rng: &mut Rng) -> Request {
    let base = rng.pick(VALID).as_bytes().to_vec();
    let mut bytes = match rng.below(8) {
        // A token in place of a random span.
        0..=2 => {
            let mut b = base.clone();
            let at = rng.below(b.len());
            let end = (at + rng.below(12)).min(b.len());
            b.splice(at..end, rng.pick(TOKENS).bytes());
            b
        }
        // Bytes flipped.
        3 => {
            let mut b = base.clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(b.len());
                b[at] ^= 1 << rng.below(8);
            }
            b
        }
        // Truncated: a frame cut short, with no newline.
        4 => base[..rng.below(base.len())].to_vec(),
        // Binary garbage, some of it with NULs and invalid UTF-8.
        5 => (0..rng.below(4096)).map(|_| rng.next() as u8).collect(),
        // Huge: a string value past the request limit, or a line that never ends.
        6 => {
            let n = [60_000, 70_000, 1 << 20][rng.below(3)];
            let mut b = br#"{"v":1,"cmd":"logs","names":[""#.to_vec();
            b.extend(std::iter::repeat_n(b'a', n));
            b.extend_from_slice(br#""]}"#);
            b
        }
        // A valid request with a huge or negative number.
        _ => format!(
            r#"{{"v":1,"cmd":"logs","follow":false,"tail":{},"since":{},"names":[]}}"#,
            rng.pick(&["18446744073709551615", "-1", "1e400", "0"]),
            rng.pick(&["-1e308", "1e308", "0", "NaN"]),
        )
        .into_bytes(),
    };
    if rng.below(4) != 0 {
        bytes.push(b'\n');
    }
    Request {
        bytes,
        half_close: rng.below(2) == 0,
    }
}

/// Whether the server may rightly keep this connection open: a client that has not
/// finished its line (no newline, writing side still open: the server cannot know it is
/// done), or a parsed request that follows (logs, events) or tails topics.
fn may_stay_open(request: &Request) -> bool {
    if !request.bytes.ends_with(b"\n") && !request.half_close {
        return true;
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&request.bytes) else {
        return false;
    };
    value["follow"] == true || value["cmd"] == "topics-tail"
}

/// Send one request; `Err` when the server neither answered nor closed within [`GUARD`].
fn exchange(socket: &Path, request: &Request) -> Result<(), String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    // A follow may rightly say nothing for a while: give it a short look, not the guard.
    let open = may_stay_open(request);
    let wait = if open { Duration::from_millis(100) } else { GUARD };
    stream.set_read_timeout(Some(wait)).expect("timeout");
    stream.set_write_timeout(Some(GUARD)).expect("timeout");
    // The server may close before reading everything (a line too long): a failed write is
    // an answer too.
    let _ = stream.write_all(&request.bytes);
    if request.half_close {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.contains(&b'\n') {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if open {
                    return Ok(());
                }
                return Err(format!("no reply and no close in {:?}", started.elapsed()));
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

#[test]
fn fuzz_the_control_socket() {
    let seed = seed();
    let count = cases("SHOAL_FUZZ_SOCKET_CASES", 200);
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "sockfuzz.yaml",
        &format!("name: sockfuzz\ncontainers:\n{HEALTHY_PAIR}").replace("IMAGES", &images().display().to_string()),
    );
    sandbox.ok(&["up", "-d", "-f", arg(&file)]);
    let socket = sandbox.runtime_dir().join("sockfuzz.sock");
    let mut rng = Rng(seed);
    let mut problems = Vec::new();

    // One connection after another.
    for case in 0..count {
        let request = mutate(&mut rng);
        if let Err(why) = exchange(&socket, &request) {
            let path = findings_dir().join(format!("socket-{seed}-{case}"));
            let _ = std::fs::write(&path, &request.bytes);
            problems.push(format!(
                "case {case} (seed {seed}, {}): {why}; request saved to {}",
                if request.half_close { "half-closed" } else { "left open" },
                path.display()
            ));
        }
    }

    // Many at once: 100 idle connections held open while 16 threads send requests.
    let idle: Vec<UnixStream> = (0..100).filter_map(|_| UnixStream::connect(&socket).ok()).collect();
    let requests: Vec<Vec<Request>> = (0..16).map(|_| (0..10).map(|_| mutate(&mut rng)).collect()).collect();
    let threads: Vec<_> = requests
        .into_iter()
        .map(|batch| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                batch
                    .iter()
                    .filter_map(|r| exchange(&socket, r).err())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for thread in threads {
        problems.extend(thread.join().expect("a client thread"));
    }
    // Still served while the idle ones wait.
    let rows = sandbox.ps("sockfuzz");
    drop(idle);
    eprintln!(
        "fuzz socket: {} requests from seed {seed}, {} problems",
        count + 160,
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The stack is as it was: both containers running, the pair still counting.
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["state"] == "running"), "{rows:?}");
    let before = sandbox.row("sockfuzz", "sub")["messages_in"].as_u64().unwrap_or(0);
    sandbox.wait_row("sockfuzz", "sub", Duration::from_secs(30), |r| {
        r["messages_in"].as_u64().unwrap_or(0) > before + 20
    });
    let down = sandbox.ok(&["down", "-p", "sockfuzz"]);
    assert!(down.contains("sub"), "{down}");
    let log = std::fs::read_to_string(sandbox.runtime_dir().join("sockfuzz.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!socket.exists(), "down removes the socket");
}
