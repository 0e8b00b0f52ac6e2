//! Filesystem confinement: a mount exposes exactly its folder. `..`, absolute paths and
//! symlinks that lead outside are refused, `:ro` refuses every write, and a container
//! without a mount sees no host file at all. The `fs-probe` guest tries each operation and
//! prints what happened; the host side is checked too.

use std::path::Path;

use crate::support::*;

/// Run `fs-probe` with `shoal run`, `volumes` as `-v` flags; its output lines.
fn probe(sandbox: &Sandbox, volumes: &[&str], ops: &[&str]) -> Vec<String> {
    let probe = image("fs-probe.wasm");
    let mut args = vec!["run"];
    for volume in volumes {
        args.extend(["-v", volume]);
    }
    args.push(arg(&probe));
    args.extend_from_slice(ops);
    sandbox
        .ok(&args)
        .lines()
        .filter_map(|l| l.strip_prefix("fs-probe | fs-probe: "))
        .map(str::to_owned)
        .collect()
}

/// The line for one operation, e.g. `read /data/x`.
fn result<'a>(lines: &'a [String], op: &str) -> &'a str {
    let prefix = format!("{op}: ");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no result for {op}: {lines:?}"))
}

fn assert_ok(lines: &[String], op: &str) {
    let r = result(lines, op);
    assert!(r.starts_with("ok"), "{op} should work: {r}");
}

fn assert_refused(lines: &[String], op: &str) {
    let r = result(lines, op);
    assert!(r.starts_with("refused: "), "{op} must be refused: {r}");
}

/// A sandbox with `data/inside.txt`, a `secret.txt` beside `data/`, and symlinks in `data/`
/// that point outside it (relative, absolute, and to a folder).
fn layout() -> Sandbox {
    let sandbox = Sandbox::new();
    let root = sandbox.path();
    sandbox.write("data/inside.txt", "inside");
    sandbox.write("secret.txt", "secret");
    std::os::unix::fs::symlink("../secret.txt", root.join("data/escape")).unwrap();
    std::os::unix::fs::symlink(root.join("secret.txt"), root.join("data/absolute")).unwrap();
    std::os::unix::fs::symlink(root, root.join("data/up")).unwrap();
    sandbox
}

#[test]
fn a_mount_exposes_exactly_its_folder() {
    let sandbox = layout();
    let lines = probe(
        &sandbox,
        &["./data:/data"],
        &[
            "read:/data/inside.txt",
            "read:/data/../secret.txt",
            "read:/secret.txt",
            "read:/data/escape",
            "read:/data/absolute",
            "ls:/data/up",
            "read:/data/up/secret.txt",
            "write:/data/../planted.txt",
            "write:/data/up/planted.txt",
            "write:/data/new.txt",
            "symlink:../secret.txt:/data/made",
            "read:/data/made",
            "read:/etc/passwd",
            "ls:/",
        ],
    );
    assert_ok(&lines, "read /data/inside.txt");
    assert_ok(&lines, "write /data/new.txt");
    for op in [
        "read /data/../secret.txt",
        "read /secret.txt",
        "read /data/escape",
        "read /data/absolute",
        "ls /data/up",
        "read /data/up/secret.txt",
        "write /data/../planted.txt",
        "write /data/up/planted.txt",
        "read /data/made",
        "read /etc/passwd",
        "ls /",
    ] {
        assert_refused(&lines, op);
    }
    // The guest may create a symlink inside its folder (WASI allows it), but never follows
    // one out of it; nothing appeared outside the folder.
    assert_ok(&lines, "symlink ../secret.txt");
    let root = sandbox.path();
    assert_eq!(std::fs::read_to_string(root.join("data/new.txt")).unwrap(), "probe");
    assert!(!root.join("planted.txt").exists());
    assert_eq!(std::fs::read_to_string(root.join("secret.txt")).unwrap(), "secret");
}

#[test]
fn a_read_only_mount_refuses_every_write() {
    let sandbox = layout();
    let lines = probe(
        &sandbox,
        &["./data:/ro:ro"],
        &[
            "read:/ro/inside.txt",
            "write:/ro/inside.txt",
            "write:/ro/new.txt",
            "append:/ro/inside.txt:1",
            "symlink:inside.txt:/ro/link",
        ],
    );
    assert_ok(&lines, "read /ro/inside.txt");
    assert_refused(&lines, "write /ro/inside.txt");
    assert_refused(&lines, "write /ro/new.txt");
    assert_refused(&lines, "symlink inside.txt");
    assert!(
        lines.iter().any(|l| l == "append /ro/inside.txt: ok 1 lines, 1 failed"),
        "{lines:?}"
    );
    let data = sandbox.path().join("data");
    assert_eq!(std::fs::read_to_string(data.join("inside.txt")).unwrap(), "inside");
    assert!(!data.join("new.txt").exists() && !data.join("link").exists());
}

#[test]
fn a_container_without_mounts_sees_no_host_file() {
    let sandbox = layout();
    let secret = sandbox.path().join("secret.txt");
    let secret = secret.display().to_string();
    let ops = [
        "read:/etc/passwd".to_string(),
        "ls:/".to_string(),
        "ls:.".to_string(),
        "read:secret.txt".to_string(),
        format!("read:{secret}"),
        "write:/tmp/planted.txt".to_string(),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let lines = probe(&sandbox, &[], &ops);
    for op in ops {
        let (verb, path) = op.split_once(':').unwrap();
        assert_refused(&lines, &format!("{verb} {path}"));
    }
    assert!(!Path::new("/tmp/planted.txt").exists());
}
