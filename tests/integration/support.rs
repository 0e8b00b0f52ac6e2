//! Shared helpers: the guest images, a `shoal` command with a private data directory, and
//! a child process whose output can be awaited line by line.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Build the guest images once per test run (`scripts/build-guests.sh` is quick when
/// nothing changed) and return the folder holding them.
pub fn images() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new("bash")
            .arg(repo().join("scripts/build-guests.sh"))
            .current_dir(repo())
            .status()
            .expect("run scripts/build-guests.sh");
        assert!(
            status.success(),
            "building the guests failed; run scripts/setup.sh first"
        );
        repo().join("compose-examples/images")
    })
}

pub fn image(name: &str) -> PathBuf {
    let path = images().join(name);
    assert!(path.is_file(), "guest image {} was not built", path.display());
    path
}

/// A scratch folder plus a data directory that no other test shares.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    /// Where this sandbox's stacks put their control sockets and detached logs.
    pub fn runtime_dir(&self) -> PathBuf {
        self.path().join("run")
    }

    /// `shoal config -q [EXTRA...] -f FILE`: validate a compose file the way users do first.
    pub fn check(&self, file: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["config", "-q"];
        args.extend_from_slice(extra);
        args.extend(["-f", arg(file)]);
        self.run(&args)
    }

    /// `shoal ARGS` as a command not yet started, for a test that adds environment
    /// variables or reads the output its own way.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.shoal();
        cmd.args(args);
        cmd
    }

    /// Run `shoal ARGS` to its end (a hang guard of 120 s, not a timing assertion),
    /// returning the output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_command(self.command(args), args)
    }

    /// Run a command made by [`Sandbox::command`] to its end, as [`Sandbox::run`] does;
    /// `args` name it if it hangs.
    pub fn run_command(&self, mut cmd: Command, args: &[&str]) -> Output {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shoal");
        let pid = child.id() as i32;
        // Read the pipes while waiting: a large output would block the child otherwise.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(output) => output.expect("output"),
            Err(_) => {
                // SAFETY: kill(2) on our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                panic!("`shoal {}` did not finish within 120 s", args.join(" "));
            }
        }
    }

    /// Run `shoal ARGS`, insist that it exits with `code`, return stderr (the message the
    /// test then checks).
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(code),
            "`shoal {}`:\n{}\n{}",
            args.join(" "),
            stdout(&output),
            stderr(&output)
        );
        stderr(&output)
    }

    /// Start `shoal ARGS` and follow its output line by line.
    pub fn spawn(&self, args: &[&str]) -> Running {
        Running::spawn(self.command(args))
    }

    /// A foreground `shoal up -f FILE`, followed line by line.
    pub fn up(&self, file: &Path) -> Running {
        self.spawn(&["up", "-f", arg(file)])
    }

    /// Run `shoal ARGS`, insist on success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "`shoal {}` failed ({}):\n{}\n{}",
            args.join(" "),
            output.status,
            stdout(&output),
            stderr(&output)
        );
        stdout(&output)
    }

    /// `shoal ps --format json` of `project`.
    pub fn ps(&self, project: &str) -> Vec<serde_json::Value> {
        let out = self.ok(&["ps", "-p", project, "--format", "json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ps json: {e}\n{out}"))
    }

    /// The row of `name` in `ps`.
    pub fn row(&self, project: &str, name: &str) -> serde_json::Value {
        self.ps(project)
            .into_iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no container {name} in ps"))
    }

    /// Poll `ps` until `check` holds for the row of `name` (hang guard `limit`).
    pub fn wait_row(
        &self,
        project: &str,
        name: &str,
        limit: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let row = self.row(project, name);
            if check(&row) {
                return row;
            }
            if Instant::now() > deadline {
                panic!("container {name} never reached the awaited state; last row: {row}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Poll `events --no-stream` until `done` holds for the `detail` of every event of
    /// `action` so far (hang guard `limit`); returns those details.
    pub fn wait_events(
        &self,
        project: &str,
        action: &str,
        limit: Duration,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let out = self.ok(&["events", "-p", project, "--json", "--no-stream"]);
            let found: Vec<String> = out
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|e| e["action"] == action)
                .map(|e| e["detail"].as_str().unwrap_or("").to_owned())
                .collect();
            if done(&found) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "not the awaited {action} events; events:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `shoal` with this sandbox's data directory and no colours.
    pub fn shoal(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
        cmd.env("SHOAL_DATA_DIR", self.path().join("data"))
            .env("SHOAL_RUNTIME_DIR", self.runtime_dir())
            .env("NO_COLOR", "1")
            .env_remove("RUST_BACKTRACE")
            .current_dir(self.path());
        cmd
    }
}

impl Sandbox {
    /// The live `shoal` processes started from this sandbox (detached servers included):
    /// this test's binary with this sandbox's runtime folder in its environment. Exited
    /// ones not yet reaped (zombies) have no executable and are not counted.
    pub fn shoal_processes(&self) -> Vec<i32> {
        let binary =
            std::fs::canonicalize(env!("CARGO_BIN_EXE_shoal")).unwrap_or_else(|_| env!("CARGO_BIN_EXE_shoal").into());
        let marker = format!("SHOAL_RUNTIME_DIR={}", self.runtime_dir().display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut pids: Vec<i32> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == binary))
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == marker.as_bytes()))
            })
            .collect();
        pids.sort_unstable();
        pids
    }

    /// Wait until no `shoal` process of this sandbox is left (hang guard `limit`, not a
    /// timing assertion: a server ends right after `down`); panics naming the ones left.
    pub fn wait_no_shoal_processes(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let left = self.shoal_processes();
            if left.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                let lines: Vec<String> = left
                    .iter()
                    .map(|pid| {
                        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                        format!("  {pid}: {}", String::from_utf8_lossy(&cmdline).replace('\0', " "))
                    })
                    .collect();
                panic!(
                    "shoal processes still running {}s after the end:\n{}",
                    limit.as_secs(),
                    lines.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A test that fails before its `down` (or a product bug that outlives it) must not leave a
/// server running after the run: whatever shoal process of the sandbox is still there when
/// the sandbox goes (after the test's own `down` guards, declared after it) is killed.
/// Tests that check for leftovers ([`Sandbox::wait_no_shoal_processes`]) do so before.
impl Drop for Sandbox {
    fn drop(&mut self) {
        for pid in self.shoal_processes() {
            // SAFETY: kill(2) on a process this sandbox started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// A path as one argument of a `shoal` command line (test paths are UTF-8).
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A running `shoal` whose stdout lines arrive on a channel.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Self {
        // A test run started in the background by a non-interactive shell (`cargo test &`,
        // some CI runners) ignores SIGINT, and an ignored signal stays ignored across exec:
        // a client without its own handler (`topics tail`) then outlived the tests' Ctrl-C.
        // The child gets the default back, as a user's terminal would give it.
        // SAFETY: signal(2) is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shoal");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let tx_err = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx_err.send(format!("[stderr] {line}"));
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait for a line containing `needle`; panics with everything seen after `limit`
    /// (a hang guard, not a timing assertion).
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line containing {needle:?} within {limit:?}; seen:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Like [`Running::wait_for`], but a line seen before this call counts too, and runs of
    /// spaces are collapsed on both sides (needles need not know the name padding).
    pub fn wait_seen(&mut self, needle: &str, limit: Duration) -> String {
        let needle = squash(needle);
        if let Some(line) = self.seen.iter().find(|l| squash(l).contains(&needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no line containing {needle:?} within {limit:?}:\n{}",
                self.seen.join("\n")
            );
            let line = self.wait_for("", left);
            if squash(&line).contains(&needle) {
                return line;
            }
        }
    }

    /// The next line if one comes within `within` (also kept in `seen`).
    pub fn next_line(&mut self, within: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(within).ok()?;
        self.seen.push(line.clone());
        Some(line)
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Wait for exit (hang guard `limit`), collecting the remaining lines.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                std::thread::sleep(Duration::from_millis(50));
                while let Ok(line) = self.lines.try_recv() {
                    self.seen.push(line);
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("shoal did not exit within {limit:?}; seen:\n{}", self.seen.join("\n"));
            }
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line with runs of spaces collapsed: `sub    | got 3` -> `sub | got 3`.
pub fn squash(line: &str) -> String {
    line.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A `seq-publisher` (every 5 ms) -> `seq-subscriber` pair, as `containers:` entries with
/// `IMAGES` for the images folder: the healthy neighbours of the isolation tests.
///
/// `FIRST: any`: `service_started` lets the publisher start when the subscriber's `_start`
/// begins, not once it has subscribed; on a loaded machine with several executor threads
/// the publisher's first message can come before the subscription (seen once: `GAP
/// expected 0 got 1`). What these tests check is that the pair goes on without a gap or a
/// repeat while its neighbours misbehave, which the subscriber still checks from its first
/// message on.
pub const HEALTHY_PAIR: &str = "  sub:
    image: IMAGES/seq-subscriber.wasm
    capabilities: [messaging]
    env: {FIRST: any}
  pub:
    image: IMAGES/seq-publisher.wasm
    capabilities: [messaging, timers]
    env: {PERIOD_MS: \"5\"}
    depends_on: {sub: {condition: service_started}}
";

impl Running {
    /// The highest `got N` the healthy pair's subscriber (`sub`) printed so far.
    pub fn last_got(&self) -> u64 {
        self.seen
            .iter()
            .filter_map(|l| squash(l).strip_prefix("sub | got ").map(str::to_owned))
            .filter_map(|n| n.trim().parse().ok())
            .max()
            .unwrap_or(0)
    }
}

/// A CA (its subject `CN=ca_name`) and a server certificate for 127.0.0.1 in `dir`, made
/// with the `openssl` command: (CA, certificate, key).
pub fn test_certificates(dir: &Path, ca_name: &str) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(output.status.success(), "openssl {args:?}: {}", stderr(&output));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca_name}"),
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

/// `systemd-analyze verify` of a shipped unit (`compose-examples/systemd/UNIT`), installed
/// as `installed_as` with ExecStart pointed at the shoal under test (`verify` insists that
/// it exists), after checking it still has each of `keys`. `verify` exits 0 on unknown
/// keys and bad values, printing them: no output is the pass. Skipped, saying so, where
/// systemd-analyze is not installed.
pub fn verify_unit(unit: &str, installed_as: &str, keys: &[&str]) {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let sandbox = Sandbox::new();
    let text = std::fs::read_to_string(repo().join("compose-examples/systemd").join(unit)).expect("unit");
    let text = text.replace("/usr/local/bin/shoal", env!("CARGO_BIN_EXE_shoal"));
    for key in keys {
        assert!(text.contains(key), "{unit} lost {key}");
    }
    let path = sandbox.write(installed_as, &text);
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no", arg(&path)])
        .output()
        .expect("systemd-analyze");
    assert!(
        output.status.success() && stderr(&output).trim().is_empty(),
        "systemd-analyze verify {unit}:\n{}",
        stderr(&output)
    );
}
