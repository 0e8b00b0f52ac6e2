//! The operator's commands (`shoal fleet keygen|acl|deploy|ls|rollback|vars`) against a real
//! Mosquitto that runs with the ACL `shoal fleet acl` generates and a password per user, a
//! real registry, and real `shoal agent` processes, each in its own board sandbox (all
//! [`crate::fleet_fixture`]'s, shared with `fleet_agent`).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fleet_fixture::{password, Fleet, LONG, OPERATOR};
use crate::support::{arg, image, stderr, stdout, Sandbox};

/// The operator's commands, run in the fixture's operator sandbox.
impl Fleet {
    /// `shoal fleet ARGS` as the operator (login and key through the environment).
    fn fleet(&self, args: &[&str]) -> Command {
        let mut cmd = self.sandbox.command(&[&["fleet"], args].concat());
        cmd.env("SHOAL_FLEET_URL", self.broker.url())
            .env("SHOAL_FLEET_USERNAME", OPERATOR.0)
            .env("SHOAL_FLEET_PASSWORD", OPERATOR.1)
            .env("SHOAL_FLEET_KEY", self.sandbox.path().join("keys/fleet.key"))
            .env("XDG_CONFIG_HOME", self.sandbox.path().join("config"));
        cmd
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.sandbox.run_command(self.fleet(args), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "`shoal fleet {}` failed:\n{}{}",
            args.join(" "),
            stdout(&output),
            stderr(&output)
        );
        stdout(&output)
    }

    /// A compose file whose `show` container prints `listening on fleet/<DEVICE_ID>/<SITE>/`
    /// and runs on; `extra` is more text under `containers:`.
    fn compose(&self, name: &str, extra: &str) -> PathBuf {
        self.sandbox.write(
            name,
            &format!(
                "containers:\n  show:\n    image: {}\n    capabilities: [messaging]\n    subscribe: [\"fleet/\"]\n    env: {{PREFIX: \"fleet/${{DEVICE_ID}}/${{SITE}}/\"}}\n{extra}",
                self.reference("seq-subscriber")
            ),
        )
    }

    /// `fleet ls --format json`, polled until `check` holds for it (hang guard LONG).
    fn wait_ls(&self, what: &str, check: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + LONG;
        loop {
            let text = self.ok(&["ls", "--format", "json"]);
            let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("fleet ls --format json parses");
            if check(&rows) {
                return rows;
            }
            assert!(Instant::now() < deadline, "fleet ls never showed {what}:\n{text}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn row<'a>(rows: &'a [serde_json::Value], device: &str) -> Option<&'a serde_json::Value> {
    rows.iter().find(|r| r["device"] == device)
}

/// Both devices online, on the group's document at `revision`, healthy.
fn on_group(rows: &[serde_json::Value], revision: u64) -> bool {
    ["pi-01", "pi-02"].iter().all(|d| {
        row(rows, d).is_some_and(|r| {
            r["online"] == true && r["source"] == "group:line" && r["revision"] == revision && r["health"] == "healthy"
        })
    })
}

/// The revision in `revision N deployed to ...`.
fn deployed_revision(out: &str) -> u64 {
    out.split_whitespace()
        .skip_while(|w| *w != "revision")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no revision in: {out}"))
}

#[test]
fn deploy_to_a_group_staged_rollout_stops_at_a_failing_canary_rollback_and_vars() {
    let ops = Fleet::new(&["pi-01=line", "pi-02=line"]);
    let (board_1, board_2) = (Sandbox::new(), Sandbox::new());
    let mut a = ops.agent(&board_1, "pi-01", "line");
    let mut b = ops.agent(&board_2, "pi-02", "line");
    ops.wait_ls("both devices online", |rows| {
        ["pi-01", "pi-02"]
            .iter()
            .all(|d| row(rows, d).is_some_and(|r| r["online"] == true && r["groups"][0] == "line"))
    });

    // Revision one reaches both boards, with the deployment's own SITE. It is larger than
    // an MQTT bridge's packet limit (a 100 KB comment): the operator reads it back as the
    // group's document and as `previous` below.
    let v1 = ops.compose("v1.yaml", &format!("# {}\n", "x".repeat(100_000)));
    let out = ops.ok(&[
        "deploy",
        arg(&v1),
        "--to",
        "group:line",
        "--var",
        "SITE=one",
        "--health-window",
        "2s",
    ]);
    let first = deployed_revision(&out);
    a.wait_seen("listening on fleet/pi-01/one/", LONG);
    b.wait_seen("listening on fleet/pi-02/one/", LONG);
    ops.wait_ls("both on the group's first revision, healthy", |rows| {
        on_group(rows, first)
    });
    let table = ops.ok(&["ls"]);
    assert!(
        table.contains(&format!("group:line@{first}")) && table.contains("healthy"),
        "{table}"
    );

    // Revision two has a container that fails: the canary (pi-01, first by id) gets it,
    // rolls back, the rollout stops, pi-02 never sees it.
    let v2 = ops.compose(
        "v2.yaml",
        &format!(
            "  broken:\n    image: {}\n    args: [\"3\"]\n",
            ops.reference("exit-code")
        ),
    );
    let output = ops.run(&[
        "deploy",
        arg(&v2),
        "--to",
        "group:line",
        "--var",
        "SITE=two",
        "--canary",
        "1",
        "--health-window",
        "2s",
    ]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{}{err}", stdout(&output));
    assert!(err.contains("stopped at wave 1"), "{err}");
    assert!(err.contains("pi-01: rolled-back") && err.contains("status 3"), "{err}");
    assert!(!err.contains("pi-02:"), "{err}");
    // pi-01 is back on the group's document; pi-02 never left it.
    ops.wait_ls("both back on the first revision", |rows| on_group(rows, first));
    assert!(
        !b.seen
            .iter()
            .any(|l| l.contains("exiting with 3") || l.contains("/two/")),
        "pi-02 ran the failed revision:\n{}",
        b.seen.join("\n")
    );
    assert!(ops.retained("shoal/v1/devices/pi-01/desired", OPERATOR).is_none());

    // Revision three, then `fleet rollback` puts the first back (re-signed, newer).
    let v3 = ops.compose("v3.yaml", "");
    let out = ops.ok(&[
        "deploy",
        arg(&v3),
        "--to",
        "line",
        "--var",
        "SITE=three",
        "--health-window",
        "2s",
    ]);
    let third = deployed_revision(&out);
    a.wait_for("listening on fleet/pi-01/three/", LONG);
    b.wait_for("listening on fleet/pi-02/three/", LONG);
    let out = ops.ok(&["rollback", "group:line"]);
    assert!(out.contains(&format!("revision {first}")), "{out}");
    a.wait_for("listening on fleet/pi-01/one/", LONG);
    b.wait_for("listening on fleet/pi-02/one/", LONG);
    let rows = ops.wait_ls("both on the rolled-back document", |rows| {
        ["pi-01", "pi-02"].iter().all(|d| {
            row(rows, d).is_some_and(|r| r["revision"].as_u64().is_some_and(|n| n > third) && r["health"] == "healthy")
        })
    });
    assert_eq!(rows.len(), 2);

    // A device variable reaches only that board's container.
    let out = ops.ok(&["vars", "set", "--device", "pi-02", "SITE=south"]);
    assert!(out.contains("SITE=south"), "{out}");
    b.wait_for("listening on fleet/pi-02/south/", LONG);
    let shown = ops.ok(&["vars", "show", "--device", "pi-02"]);
    assert_eq!(shown.trim(), "SITE=south");
    // Under the generated ACL, pi-01 cannot read pi-02's variables; pi-02 can.
    assert!(ops
        .retained("shoal/v1/devices/pi-02/vars", ("pi-01", &password("pi-01")))
        .is_none());
    assert!(ops
        .retained("shoal/v1/devices/pi-02/vars", ("pi-02", &password("pi-02")))
        .is_some());
    assert!(!a.seen.iter().any(|l| l.contains("south")), "{}", a.seen.join("\n"));

    let ps = ops.ok(&["ps", "pi-02"]);
    assert!(ps.contains("show") && ps.contains("running"), "{ps}");

    // One device alone: its own document wins over the group's; `rollback device:`
    // deletes it and the board runs the group's document again.
    let out = ops.ok(&[
        "deploy",
        arg(&v1),
        "--to",
        "device:pi-01",
        "--var",
        "SITE=solo",
        "--health-window",
        "2s",
    ]);
    assert!(out.contains("device:pi-01"), "{out}");
    a.wait_for("listening on fleet/pi-01/solo/", LONG);
    assert!(ops.retained("shoal/v1/devices/pi-01/desired", OPERATOR).is_some());
    let out = ops.ok(&["rollback", "device:pi-01"]);
    assert!(out.contains("runs its group's document again"), "{out}");
    a.wait_for("listening on fleet/pi-01/one/", LONG);
    assert!(!b.seen.iter().any(|l| l.contains("solo")), "{}", b.seen.join("\n"));
}

#[test]
fn operator_errors_name_the_fix_and_publish_nothing() {
    let ops = Fleet::new(&["pi-01=line"]);
    // The broker runs with the ACL the library renders; `shoal fleet acl` writes that text.
    let acl = ops.sandbox.ok(&["fleet", "acl", "--device", "pi-01=line"]);
    assert_eq!(acl, Fleet::acl(&["pi-01=line"]));
    let v1 = ops.compose("v1.yaml", "");
    // No device reports the group yet.
    let output = ops.run(&["deploy", arg(&v1), "--to", "group:line"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no devices in group `line`"),
        "{}",
        stderr(&output)
    );
    // A local image file is refused before the broker is asked.
    let local = ops.sandbox.write(
        "local.yaml",
        &format!("containers:\n  hello:\n    image: {}\n", arg(&image("hello.wasm"))),
    );
    let output = ops.run(&["deploy", arg(&local), "--to", "group:line"]);
    assert!(
        stderr(&output).contains("is not from a registry"),
        "{}",
        stderr(&output)
    );
    // Larger than a board accepts: refused before anything is published.
    let huge = ops.compose("huge.yaml", &format!("# {}\n", "x".repeat(900_000)));
    let output = ops.run(&["deploy", arg(&huge), "--to", "device:pi-01"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("boards accept at most"), "{}", stderr(&output));
    assert!(ops.retained("shoal/v1/devices/pi-01/desired", OPERATOR).is_none());
    // An invalid file: its diagnostics with file:line:col, nothing published.
    let bad = ops
        .sandbox
        .write("bad.yaml", "containers:\n  a:\n    image: x\n    bogus: 1\n");
    let output = ops.run(&["deploy", arg(&bad), "--to", "group:line"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        err.contains("bad.yaml:4:5") && err.contains("nothing was published"),
        "{err}"
    );
    assert!(ops.retained("shoal/v1/groups/line/desired", OPERATOR).is_none());
    // The key is missing: say how to make one.
    let mut cmd = ops.fleet(&["deploy", arg(&v1), "--to", "group:line"]);
    cmd.env("SHOAL_FLEET_KEY", ops.sandbox.path().join("nope.key"));
    let output = ops.sandbox.run_command(cmd, &["deploy"]);
    assert!(stderr(&output).contains("shoal fleet keygen"), "{}", stderr(&output));
    // A wrong password, and a device's login used as the operator's: not authorised.
    let mut cmd = ops.fleet(&["ls"]);
    cmd.env("SHOAL_FLEET_PASSWORD", "wrong");
    let output = ops.sandbox.run_command(cmd, &["ls"]);
    assert!(stderr(&output).contains("not authorised"), "{}", stderr(&output));
    let mut cmd = ops.fleet(&["vars", "set", "--group", "line", "A=1"]);
    cmd.env("SHOAL_FLEET_USERNAME", "pi-01")
        .env("SHOAL_FLEET_PASSWORD", password("pi-01"));
    let output = ops.sandbox.run_command(cmd, &["vars"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not authorised"), "{}", stderr(&output));
    assert!(ops.retained("shoal/v1/groups/line/vars", OPERATOR).is_none());
    // No broker there: the URL is named.
    let mut cmd = ops.fleet(&["ls"]);
    cmd.env("SHOAL_FLEET_URL", "mqtt://127.0.0.1:9");
    let output = ops.sandbox.run_command(cmd, &["ls"]);
    assert!(
        stderr(&output).contains("cannot reach the broker at mqtt://127.0.0.1:9"),
        "{}",
        stderr(&output)
    );
    // keygen never overwrites.
    let output = ops.sandbox.run(&["fleet", "keygen", "--out", "keys"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("never overwritten"), "{}", stderr(&output));
}
