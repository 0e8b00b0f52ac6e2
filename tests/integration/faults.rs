//! Nothing lost: a mount removed under a running container, an image file deleted while
//! its container runs and restarts, a full disk. The stack keeps running, the error is
//! reported, and what containers wrote is never truncated by shoal.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

const LONG: Duration = Duration::from_secs(60);

/// Let the healthy pair exchange 100 more messages, stop the stack, and check the pair
/// lost nothing.
fn pair_goes_on_then_stop(up: &mut Running) -> String {
    let target = up.last_got() + 100;
    up.wait_seen(&format!("sub | got {target}"), LONG);
    up.signal(libc::SIGINT);
    up.wait_exit(LONG);
    let seen = up.seen.join("\n");
    assert!(!seen.contains("GAP") && !seen.contains("DUP"), "{seen}");
    seen
}

/// The lines of `file` must be `line 0`, `line 1`, ... in order: nothing cut or lost in
/// what the guest wrote.
fn assert_whole_lines(file: &Path, at_least: usize) -> usize {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let lines: Vec<_> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("line {i}"), "{}", file.display());
    }
    assert!(text.is_empty() || text.ends_with('\n'), "a line was cut: {text:?}");
    assert!(lines.len() >= at_least, "{} has {} lines", file.display(), lines.len());
    lines.len()
}

/// A mount folder deleted while a container appends to a file in it, and while another
/// container that mounts it keeps restarting; an image file deleted after its container
/// started, while it keeps restarting. shoal reports each failure and runs on.
#[test]
fn a_removed_mount_and_a_deleted_image_do_not_stop_the_stack() {
    let sandbox = Sandbox::new();
    let data = sandbox.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let copy = sandbox.path().join("exit-code.wasm");
    std::fs::copy(image("exit-code.wasm"), &copy).unwrap();
    let text = format!(
        "containers:\n{HEALTHY_PAIR}  logger:\n    image: IMAGES/fs-probe.wasm\n    args: [\"append:/data/log.txt:100\"]\n    mounts: [./data:/data]\n    depends_on: [pub]\n  remounter:\n    image: IMAGES/exit-code.wasm\n    args: [\"1\"]\n    mounts: [./data:/data]\n    restart: on-failure:2\n    restart_delay: 1s\n    depends_on: [pub]\n  orphaned:\n    image: ./exit-code.wasm\n    args: [\"1\"]\n    restart: on-failure:2\n    restart_delay: 500ms\n    depends_on: [pub]\n"
    );
    let file = sandbox.write("shoal.yaml", &text.replace("IMAGES", &images().display().to_string()));
    let mut up = sandbox.up(&file);

    // The image goes once its container has started; the mount once the log has lines.
    up.wait_seen("orphaned | exiting with 1", LONG);
    std::fs::remove_file(&copy).unwrap();
    let log = data.join("log.txt");
    let deadline = Instant::now() + LONG;
    while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < 5 {
        assert!(Instant::now() < deadline, "the logger never wrote");
        std::thread::sleep(Duration::from_millis(10));
    }
    let kept = std::fs::read(&log).unwrap();
    // The logger goes on appending (and may create the file again) while the folder is
    // removed: `remove_dir_all` can find it not empty; once the folder is gone, no write
    // can bring it back.
    let deadline = Instant::now() + LONG;
    while let Err(e) = std::fs::remove_dir_all(&data) {
        assert!(
            e.kind() == std::io::ErrorKind::DirectoryNotEmpty && Instant::now() < deadline,
            "removing {}: {e}",
            data.display()
        );
    }

    // The logger sees its writes fail, says so, and ends normally.
    up.wait_seen("logger | fs-probe: append /data/log.txt: line", LONG);
    let end = up.wait_seen("logger | fs-probe: append /data/log.txt: ok 100 lines", LONG);
    assert!(!end.contains(" 0 failed"), "{end}");
    up.wait_seen("logger exited with code 0", LONG);
    // The restarting container cannot mount the folder any more: a prompt, precise failure.
    up.wait_seen("remounter failed to start: cannot mount", LONG);
    // Both restarting containers end with this line, in either order (orphaned's delay is
    // shorter, but they run on several executor threads): the remounter's own is the one.
    let gave_up = "(not restarted again after 2 restarts)";
    let remounters = |up: &Running| {
        up.seen
            .iter()
            .find(|l| l.starts_with("remounter") && l.contains(gave_up))
            .cloned()
    };
    let last = loop {
        if let Some(line) = remounters(&up) {
            break line;
        }
        up.wait_for(gave_up, LONG);
    };
    assert!(last.starts_with("remounter failed to start: cannot mount"), "{last}");
    // The deleted image still runs from the module loaded at start.
    up.wait_seen(
        "orphaned exited with code 1 (not restarted again after 2 restarts)",
        LONG,
    );
    let seen = pair_goes_on_then_stop(&mut up);
    let runs = up
        .seen
        .iter()
        .filter(|l| squash(l) == "orphaned | exiting with 1")
        .count();
    assert_eq!(runs, 3, "{seen}");
    assert!(
        seen.contains(&data.display().to_string()),
        "the error names the folder:\n{seen}"
    );
    // What the logger wrote before the folder went was complete, line by line.
    let kept_path = sandbox.path().join("kept.txt");
    std::fs::write(&kept_path, kept).unwrap();
    assert_whole_lines(&kept_path, 5);
}

/// A small tmpfs mounted for the test; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts, or fails the test loudly: mounting needs root (CAP_SYS_ADMIN), which CI has
    /// (`.ci/run` runs as root, and the mount works there). A developer without root skips
    /// it explicitly with `SHOAL_SKIP_PRIVILEGED=1` (`None`), never silently.
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        if std::env::var_os("SHOAL_SKIP_PRIVILEGED").is_some_and(|v| v == "1") {
            eprintln!("skipped on request (SHOAL_SKIP_PRIVILEGED=1): mounting a tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(at).expect("mount point");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "shoal-test"])
            .arg(at)
            .output()
            .expect("run mount(8)");
        assert!(
            output.status.success(),
            "mounting a {size} tmpfs at {} failed ({}): {}\nthis test needs root (CAP_SYS_ADMIN), \
             as CI has; without it, set SHOAL_SKIP_PRIVILEGED=1 to skip it on purpose",
            at.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Some(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A full disk under a container's mount and under shoal's data directory: the guest's
/// writes fail with ENOSPC and it says how far it got, the file holds exactly what it
/// wrote, the compile cache that cannot be written is reported (and leaves no partial
/// file), and the stack runs on.
#[test]
fn a_full_disk_is_reported_and_nothing_is_truncated() {
    let sandbox = Sandbox::new();
    let full = sandbox.path().join("full");
    let Some(_tmpfs) = Tmpfs::mount(&full, "1m") else {
        return;
    };
    // Leave ~64 KiB free: less than any compiled module needs in the cache.
    std::fs::write(full.join("ballast"), vec![0u8; 960 << 10]).unwrap();
    std::fs::create_dir(full.join("data")).unwrap();
    let text = format!(
        "containers:\n{HEALTHY_PAIR}  filler:\n    image: IMAGES/fs-probe.wasm\n    args: [\"fill:/data/big\", \"append:/data/log.txt:3\"]\n    mounts: [./full/data:/data]\n    depends_on: [pub]\n"
    );
    let file = sandbox.write("shoal.yaml", &text.replace("IMAGES", &images().display().to_string()));
    let mut cmd = sandbox.command(&["up", "-f", arg(&file)]);
    cmd.env("SHOAL_DATA_DIR", full.join("shoal-data"));
    let mut up = Running::spawn(cmd);
    let filled = up.wait_seen("filler | fs-probe: fill /data/big: ok", LONG);
    up.wait_seen("filler exited with code 0", LONG);
    let seen = pair_goes_on_then_stop(&mut up);

    assert!(filled.contains("then: No space left on device"), "{filled}");
    let written: u64 = filled
        .split("ok ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{filled}"));
    assert!(written > 0, "{filled}");
    assert_eq!(std::fs::metadata(full.join("data/big")).unwrap().len(), written);
    assert!(
        seen.contains("append /data/log.txt: line 0 failed: No space left on device"),
        "{seen}"
    );
    assert!(
        seen.contains("[stderr] warning: cannot write the compile cache") && seen.contains("No space left on device"),
        "{seen}"
    );
    let leftovers: Vec<_> = walk(&full.join("shoal-data"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
