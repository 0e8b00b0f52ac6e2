//! Issue 16, faults 1, 2, 3 and 10: a guest hoarding descriptors, a guest blocked on a FIFO,
//! a runtime folder another user prepared, and clients that half-close the control socket.
//! Each test fails on the code before the fix (see each one's comment for how).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::control::up_detached;
use crate::support::*;

/// A compose file in the sandbox; `IMAGES` stands for the guest image folder.
fn compose(sandbox: &Sandbox, name: &str, body: &str) -> PathBuf {
    let body = body.replace("IMAGES", &images().display().to_string());
    sandbox.write(&format!("{name}.yaml"), &body)
}

/// `shoal logs -p project` (every container), polled until `done` holds (hang guard).
fn wait_logs(sandbox: &Sandbox, project: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs = sandbox.ok(&["logs", "-p", project]);
        if done(&logs) {
            return logs;
        }
        assert!(Instant::now() < deadline, "never saw {what}; logs:\n{logs}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pid serving `project`, from `shoal ls`.
fn server_pid(sandbox: &Sandbox, project: &str) -> i32 {
    let out = sandbox.ok(&["ls", "--format", "json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).expect("ls json");
    let row = list
        .iter()
        .find(|r| r["project"] == project)
        .unwrap_or_else(|| panic!("{project} not in ls: {out}"));
    row["pid"].as_i64().expect("pid") as i32
}

fn alive(pid: i32) -> bool {
    // A zombie is gone for this purpose: it holds no thread and no descriptor.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

/// Fault 1. Before the fix the hoarder took every descriptor of the process (19,984 of
/// 20,000): its count was not 256, the neighbour's appends failed and `logs` hung.
#[test]
fn a_guest_hoarding_descriptors_gets_emfile_and_nobody_else_notices() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path().join("data")).expect("mkdir");
    sandbox.write("data/f", "x");
    let file = compose(
        &sandbox,
        "fdhoard",
        "name: fdhoard\ncontainers:\n  hoarder:\n    image: IMAGES/fs-probe.wasm\n    args: [\"hoard:/data/f\", \"sleep:600000\"]\n    mounts: [\"./data:/data\"]\n  small:\n    image: IMAGES/fs-probe.wasm\n    args: [\"hoard:/data/f\", \"sleep:600000\"]\n    mounts: [\"./data:/data\"]\n    limits:\n      max_open_files: 10\n  neighbour:\n    image: IMAGES/fs-probe.wasm\n    args: [\"stat:/data/f\", \"append:/data/n:3\"]\n    mounts: [\"./data:/data\"]\n",
    );
    let _stack = up_detached(&sandbox, &file, "fdhoard");
    // Both hoards at their limits, and the neighbour's first run over (containers run on
    // several threads, so it may end before or after the hoards).
    let logs = wait_logs(&sandbox, "fdhoard", "both hoards ending", |logs| {
        logs.matches("hoard /data/f: ok").count() == 2 && logs.contains("neighbour exited")
    });
    assert!(
        logs.contains("hoard /data/f: ok 256 handles, then:"),
        "the default limit is 256:\n{logs}"
    );
    assert!(
        logs.contains("hoard /data/f: ok 10 handles, then:"),
        "limits.max_open_files: 10 holds:\n{logs}"
    );
    assert!(logs.contains("max_open_files"), "the refusal is reported once:\n{logs}");
    // The neighbour opens its files again now that the hoarders hold all they may.
    sandbox.ok(&["restart", "-p", "fdhoard", "neighbour"]);
    let logs = wait_logs(&sandbox, "fdhoard", "the neighbour's second run", |logs| {
        logs.matches("append /data/n: ok").count() == 2
    });
    assert_eq!(
        logs.matches("append /data/n: ok 3 lines, 0 failed").count(),
        2,
        "the neighbour's opens must all succeed:\n{logs}"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.path().join("data/n"))
            .expect("n")
            .lines()
            .count(),
        6
    );
    // The control plane answers and takes the stack down.
    assert!(sandbox.ps("fdhoard").len() >= 3);
    let down = sandbox.ok(&["down", "-p", "fdhoard"]);
    assert!(down.contains("hoarder"), "{down}");
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o666) },
        0,
        "mkfifo {}",
        path.display()
    );
}

/// Fault 2. Before the fix the nine readers each blocked a thread of the pool (8) forever:
/// the neighbour's stat never returned, and after `down` the process lived on.
#[test]
fn guests_opening_a_fifo_cannot_starve_neighbours_or_keep_shoal_alive() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path().join("data")).expect("mkdir");
    mkfifo(&sandbox.path().join("data/fifo"));
    sandbox.write("data/f", "hello");
    let file = compose(
        &sandbox,
        "fifo",
        "name: fifo\ncontainers:\n  reader:\n    image: IMAGES/fs-probe.wasm\n    args: [\"read:/data/fifo\", \"sleep:600000\"]\n    mounts: [\"./data:/data\"]\n    replicas: 9\n    stop_timeout: 1s\n  neighbour:\n    image: IMAGES/fs-probe.wasm\n    args: [\"sleep:300\", \"stat:/data/f\", \"read:/data/f\", \"append:/data/n:3\"]\n    mounts: [\"./data:/data\"]\n",
    );
    let _stack = up_detached(&sandbox, &file, "fifo");
    let pid = server_pid(&sandbox, "fifo");
    let logs = wait_logs(&sandbox, "fifo", "the neighbour finishing", |logs| {
        logs.contains("append /data/n: ok")
    });
    assert!(logs.contains("read /data/f: ok 5 bytes"), "{logs}");
    assert!(logs.contains("append /data/n: ok 3 lines, 0 failed"), "{logs}");
    let logs = wait_logs(&sandbox, "fifo", "nine refusals", |logs| {
        logs.matches("read /data/fifo: refused").count() == 9
    });
    assert!(
        logs.contains("special_files: true"),
        "the refusal says how to allow it:\n{logs}"
    );
    sandbox.ok(&["down", "-p", "fifo"]);
    wait_gone(pid);
}

/// Poll until `pid` has exited (a liveness bound, generous: not a timing assertion).
fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "shoal (pid {pid}) still runs 30 s after `down`"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fault 2 (c): a FIFO the mount allows blocks its reader's thread for good; `down` stops
/// the container (within its `stop_timeout`) and the process still exits (before: it
/// waited for the blocked thread).
#[test]
fn shoal_exits_after_stop_timeout_whatever_a_guests_file_io_does() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path().join("pipes")).expect("mkdir");
    mkfifo(&sandbox.path().join("pipes/fifo"));
    let file = compose(
        &sandbox,
        "stuck",
        "name: stuck\ncontainers:\n  reader:\n    image: IMAGES/fs-probe.wasm\n    args: [\"stat:/pipes/fifo\", \"read:/pipes/fifo\"]\n    mounts:\n      - {source: ./pipes, target: /pipes, special_files: true}\n    stop_timeout: 1s\n",
    );
    let _stack = up_detached(&sandbox, &file, "stuck");
    let pid = server_pid(&sandbox, "stuck");
    // The stat answered; the read is now blocked in the open of the FIFO.
    wait_logs(&sandbox, "stuck", "the stat", |logs| {
        logs.contains("stat /pipes/fifo: ok")
    });
    let down = sandbox.ok(&["down", "-p", "stuck"]);
    // Stopped at once: the container's call is dropped; the thread stuck in the FIFO's
    // open is left behind (and cannot keep the process alive, below).
    assert!(down.contains("removed (stopped)"), "{down}");
    wait_gone(pid);

    // The same in the foreground, stopped by one SIGTERM.
    let mut up = sandbox.up(&file);
    up.wait_seen("stat /pipes/fifo: ok", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(200));
    up.signal(libc::SIGTERM);
    let status = up.wait_exit(Duration::from_secs(30));
    assert!(status.code().is_some(), "{status}");
    assert!(up.seen.iter().any(|l| l == "reader stopped"), "{:?}", up.seen);
}

/// Fault 3. Before the fix shoal chmod-ed the other user's folder and appended its output
/// through the planted symlink.
#[test]
fn a_runtime_folder_of_another_user_is_refused_and_nothing_goes_through_its_links() {
    let sandbox = Sandbox::new();
    let run = sandbox.path().join("foreign");
    std::fs::create_dir(&run).expect("mkdir");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let victim = sandbox.write("victim.txt", "precious\n");
    std::os::unix::fs::symlink(&victim, run.join("hello.log")).expect("symlink");
    let c = std::ffi::CString::new(run.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: chown with a valid path; the tests run as root (CI), 65534 is `nobody`.
    let owned = unsafe { libc::chown(c.as_ptr(), 65534, 65534) } == 0;
    let file = compose(
        &sandbox,
        "hello",
        "name: hello\ncontainers:\n  hello:\n    image: IMAGES/hello.wasm\n",
    );
    let mut up = sandbox.command(&["up", "-d", "-f", arg(&file)]);
    up.env("SHOAL_RUNTIME_DIR", &run);
    let output = sandbox.run_command(up, &["up", "-d"]);
    assert!(!output.status.success(), "{}", stdout(&output));
    let message = stderr(&output);
    if owned {
        assert!(message.contains("belongs to uid 65534"), "{message}");
    } else {
        assert!(message.contains("not sticky"), "{message}");
    }
    assert!(message.contains("hint:"), "{message}");
    let mode = std::fs::metadata(&run).expect("stat").mode() & 0o7777;
    assert_eq!(mode, 0o777, "the folder's mode must not change");
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious\n");

    // A folder of ours with the log planted as a symlink: refused, nothing written through.
    let mine = sandbox.path().join("mine");
    std::fs::create_dir(&mine).expect("mkdir");
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::symlink(&victim, mine.join("hello.log")).expect("symlink");
    let mut up = sandbox.command(&["up", "-d", "-f", arg(&file)]);
    up.env("SHOAL_RUNTIME_DIR", &mine);
    let output = sandbox.run_command(up, &["up", "-d"]);
    assert!(!output.status.success(), "{}", stdout(&output));
    assert!(stderr(&output).contains("it is a symlink"), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious\n");
}

/// Fault 3: a shared sticky folder (as `/tmp`) is used as it is, never chmod-ed to 0700.
#[test]
fn a_shared_sticky_runtime_folder_keeps_its_mode() {
    let sandbox = Sandbox::new();
    let shared = sandbox.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let file = compose(
        &sandbox,
        "sticky",
        "name: sticky\ncontainers:\n  idle:\n    image: IMAGES/fs-probe.wasm\n    args: [\"sleep:600000\"]\n",
    );
    let mut up = sandbox.command(&["up", "-d", "-f", arg(&file)]);
    up.env("SHOAL_RUNTIME_DIR", &shared);
    let output = sandbox.run_command(up, &["up", "-d"]);
    let mut down = sandbox.command(&["down", "-p", "sticky"]);
    down.env("SHOAL_RUNTIME_DIR", &shared);
    let stopped = sandbox.run_command(down, &["down"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stopped.status.success(), "{}", stderr(&stopped));
    let mode = std::fs::metadata(&shared).expect("stat").mode() & 0o7777;
    assert_eq!(mode, 0o1777, "the shared folder's mode must not change");
    let log = std::fs::symlink_metadata(shared.join("sticky.log")).expect("log");
    assert_eq!(log.mode() & 0o777, 0o600);
}

/// One request as `socat` or `nc -N` send it: the line (here in two writes, as a pipe
/// delivers it when its writer is slow), then `shutdown(SHUT_WR)`, then the reply to the end.
/// The pause between the writes is what let the server see the line's end and the end of
/// input in one wake-up, the case where the old hang-up check won the race (about one reply
/// in four was lost); it is not a timing assertion.
fn half_closed_request(socket: &Path, request: &str) -> String {
    let mut stream = UnixStream::connect(socket).expect("connect");
    let (first, rest) = request.split_at(5);
    stream.write_all(first.as_bytes()).expect("write");
    std::thread::sleep(Duration::from_millis(1));
    stream.write_all(rest.as_bytes()).expect("write");
    stream.shutdown(std::net::Shutdown::Write).expect("shutdown");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut reply = String::new();
    let mut reader = BufReader::new(stream);
    while let Ok(n) = reader.read_line(&mut reply) {
        if n == 0 {
            break;
        }
    }
    reply
}

/// Fault 10. Before the fix the end of the client's input raced the reply and won now and
/// then (5 of 40 `ps`, 2 of 20 `logs`): the reply was never written.
#[test]
fn every_request_of_a_half_closed_client_gets_its_reply() {
    let sandbox = Sandbox::new();
    let file = compose(
        &sandbox,
        "halfclose",
        "name: halfclose\ncontainers:\n  hello:\n    image: IMAGES/fs-probe.wasm\n    args: [\"stat:/\", \"sleep:600000\"]\n",
    );
    let _stack = up_detached(&sandbox, &file, "halfclose");
    wait_logs(&sandbox, "halfclose", "the guest's line", |logs| {
        logs.contains("stat /:")
    });
    let socket = sandbox.runtime_dir().join("halfclose.sock");
    let mut lost = Vec::new();
    for i in 0..50 {
        let ps = half_closed_request(&socket, "{\"v\":1,\"cmd\":\"ps\"}\n");
        if !ps.contains("hello") {
            lost.push(format!("ps #{i}: {ps:?}"));
        }
        let logs = half_closed_request(
            &socket,
            "{\"v\":1,\"cmd\":\"logs\",\"names\":[],\"tail\":null,\"follow\":false}\n",
        );
        if !logs.contains("stat /:") {
            lost.push(format!("logs #{i}: {logs:?}"));
        }
    }
    assert!(lost.is_empty(), "replies lost:\n{}", lost.join("\n"));
}

/// Fault 1, the reserve: with a process limit of 640 descriptors, two hoarders with the
/// default limit (256 each) would take all of them; the guests' cap (640 - 256) stops the
/// second with ENFILE and `ps`, `logs` and `down` still answer. Before the fix the control
/// socket could not accept and `logs` hung.
#[test]
fn guests_together_leave_the_control_plane_its_reserve() {
    use std::os::unix::process::CommandExt;
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path().join("data")).expect("mkdir");
    sandbox.write("data/f", "x");
    let file = compose(
        &sandbox,
        "reserve",
        "name: reserve\ncontainers:\n  one:\n    image: IMAGES/fs-probe.wasm\n    args: [\"hoard:/data/f\", \"sleep:600000\"]\n    mounts: [\"./data:/data\"]\n  two:\n    image: IMAGES/fs-probe.wasm\n    args: [\"hoard:/data/f\", \"sleep:600000\"]\n    mounts: [\"./data:/data\"]\n",
    );
    let mut up = sandbox.command(&["up", "-d", "-f", arg(&file)]);
    // SAFETY: setrlimit only, between fork and exec; the detached server inherits it.
    unsafe {
        up.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 640,
                rlim_max: 640,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = sandbox.run_command(up, &["up", "-d"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let _stack = crate::control::Detached {
        sandbox: &sandbox,
        project: "reserve".into(),
    };
    let logs = wait_logs(&sandbox, "reserve", "both hoards ending", |logs| {
        logs.matches("hoard /data/f: ok").count() == 2
    });
    let counts: Vec<u32> = logs
        .lines()
        .filter_map(|l| l.split("hoard /data/f: ok ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(counts.iter().sum::<u32>(), 640 - 256, "{logs}");
    assert!(logs.contains("ENFILE"), "{logs}");
    assert_eq!(sandbox.ps("reserve").len(), 2);
    sandbox.ok(&["down", "-p", "reserve"]);
}
