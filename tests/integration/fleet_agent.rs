//! `shoal agent` against a real Mosquitto (started with an ACL file and per-device
//! passwords, as a production broker runs) and a real registry: deployments to a group
//! with device variables, refusals (unsigned, untrusted key, replay) that leave the stack
//! running, rollback of a failing revision, the last good stack at boot without a broker,
//! and a device that cannot read another device's desired state.
//!
//! Documents are signed and published here by a small test publisher (the library's
//! `fleet::document` signed with the key `shoal fleet keygen` made, then `mosquitto_pub -r`
//! with the operator's login), so these tests need no other operator command. The broker,
//! registry and agents are [`crate::fleet_fixture`]'s, shared with `fleet_ops`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shoal::bridge::mosquitto::Mosquitto;
use shoal::fleet::document::{DocFile, Envelope, Kind, Payload, SCHEMA};
use shoal::fleet::keys;
use shoal::fleet::report::Report;
use shoal::fleet::topics;

use crate::fleet_fixture::{password, Fleet, LONG, OPERATOR};
use crate::mqtt_cli::MqttCli;
use crate::support::{arg, image, stderr, stdout, Sandbox};

/// The documents these tests publish themselves (signed with the operator's key).
impl Fleet {
    /// A deployment: `show` prints `listening on fleet/<DEVICE_ID>/<SITE>/` and runs on;
    /// `extra` is more compose text under `containers:`.
    fn deployment(&self, target: &str, revision: u64, extra: &str) -> Payload {
        let compose = format!(
            "containers:\n  show:\n    image: {}\n    capabilities: [messaging]\n    subscribe: [\"fleet/\"]\n    env: {{PREFIX: \"fleet/${{DEVICE_ID}}/${{SITE}}/\"}}\n{extra}",
            self.reference("seq-subscriber")
        );
        Payload {
            kind: Kind::Deployment,
            schema: SCHEMA,
            revision,
            target: target.parse().expect("target"),
            created: shoal::fleet::document::now_rfc3339(),
            signer: "test@fleet".into(),
            project: None,
            files: vec![DocFile {
                name: "compose.yaml".into(),
                text: compose,
            }],
            images: self.images.clone(),
            health_window: Some("2s".into()),
            variables: BTreeMap::from([("SITE".into(), "nowhere".into())]),
        }
    }

    fn vars(&self, target: &str, revision: u64, pairs: &[(&str, &str)]) -> Payload {
        Payload {
            kind: Kind::Vars,
            schema: SCHEMA,
            revision,
            target: target.parse().expect("target"),
            created: shoal::fleet::document::now_rfc3339(),
            signer: "test@fleet".into(),
            project: None,
            files: Vec::new(),
            images: BTreeMap::new(),
            health_window: None,
            variables: pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
        }
    }

    fn signed(&self, payload: &Payload) -> Vec<u8> {
        Envelope::sign(payload, &self.key).to_json()
    }

    /// Poll the device's retained report until `check` holds (hang guard: LONG).
    fn wait_report(&self, device: &str, check: impl Fn(&Report) -> bool) -> Report {
        let deadline = Instant::now() + LONG;
        let mut last = None;
        loop {
            if let Some(text) = self.retained(&topics::device_reported(device), OPERATOR) {
                let report: Report =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("report is not JSON ({e}): {text}"));
                if check(&report) {
                    return report;
                }
                last = Some(report);
            }
            assert!(
                Instant::now() < deadline,
                "the report of {device} never reached the awaited state; last: {last:#?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn applied(report: &Report, revision: u64, status: &str) -> bool {
    report
        .applied
        .as_ref()
        .is_some_and(|a| a.revision == revision && a.status.as_str() == status)
}

fn state_of(board: &Sandbox, name: &str) -> String {
    board.row("fleet", name)["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn two_agents_in_a_group_run_a_deployment_with_their_own_variables_and_cannot_read_each_other() {
    let fleet = Fleet::new(&["board-a=line", "board-b=line"]);
    let (board_a, board_b) = (Sandbox::new(), Sandbox::new());
    let mut a = fleet.agent(&board_a, "board-a", "line");
    let mut b = fleet.agent(&board_b, "board-b", "line");
    fleet.publish(
        &topics::device_vars("board-a"),
        &fleet.signed(&fleet.vars("device:board-a", 1, &[("SITE", "north")])),
    );
    fleet.publish(
        &topics::device_vars("board-b"),
        &fleet.signed(&fleet.vars("device:board-b", 1, &[("SITE", "south")])),
    );
    fleet.publish(
        &topics::group_desired("line"),
        &fleet.signed(&fleet.deployment("group:line", 10, "")),
    );
    a.wait_for("listening on fleet/board-a/north/", LONG);
    b.wait_for("listening on fleet/board-b/south/", LONG);
    for device in ["board-a", "board-b"] {
        let report = fleet.wait_report(device, |r| applied(r, 10, "healthy"));
        assert_eq!(report.groups, ["line"]);
        let good = report.last_good.expect("last good");
        assert_eq!((good.source.as_str(), good.revision), ("group:line", 10));
        assert_eq!(report.containers.len(), 1, "{:?}", report.containers);
        assert_eq!(report.containers[0].state, "running");
        assert!(report.agent.platform.starts_with("linux/"));
        assert_eq!(
            fleet.retained(&topics::device_status(device), OPERATOR).as_deref(),
            Some("online")
        );
    }
    // The local control socket serves the agent's stack as any `shoal up` does.
    assert_eq!(state_of(&board_a, "show"), "running");

    // Broker security: board-a's login reads its own group's desired topic but nothing of
    // board-b's (Mosquitto 2.0 grants the subscription and delivers nothing the ACL does
    // not allow; newer brokers refuse it in the SUBACK: either way nothing arrives).
    let own = fleet.retained(&topics::group_desired("line"), ("board-a", &password("board-a")));
    assert!(own.is_some_and(|m| m.contains("\"signature\"")));
    let pw = password("board-a");
    let other = fleet
        .mqtt(("board-a", &pw))
        .sub(&[&topics::device_vars("board-b")])
        .args(["-q", "1", "-C", "1", "-W", "2"])
        .output()
        .expect("mosquitto_sub");
    assert!(
        stdout(&other).trim().is_empty(),
        "board-a read board-b's vars: {}",
        stdout(&other)
    );
    assert!(
        !other.status.success() || stderr(&other).contains("denied"),
        "the broker accepted board-a's subscription to board-b's topic: {}",
        stderr(&other)
    );
    // Nor can a device write another's report.
    let forged = fleet
        .mqtt(("board-a", &pw))
        .publish(&topics::device_reported("board-b"))
        .args(["-q", "1", "-r", "-m", "forged"])
        .output()
        .expect("mosquitto_pub");
    assert!(stderr(&forged).contains("Not authorized"), "{}", stderr(&forged));
    let b_report = fleet
        .retained(&topics::device_reported("board-b"), OPERATOR)
        .expect("report");
    assert!(
        b_report.starts_with('{'),
        "board-a overwrote board-b's report: {b_report}"
    );

    a.signal(libc::SIGTERM);
    b.signal(libc::SIGTERM);
    assert!(a.wait_exit(LONG).success(), "{}", a.seen.join("\n"));
    assert!(b.wait_exit(LONG).success(), "{}", b.seen.join("\n"));
    assert_eq!(
        fleet.retained(&topics::device_status("board-a"), OPERATOR).as_deref(),
        Some("offline")
    );
}

#[test]
fn unsigned_untrusted_and_replayed_documents_are_refused_and_reported_while_the_stack_runs() {
    let fleet = Fleet::new(&["board-a=line"]);
    let board = Sandbox::new();
    let mut agent = fleet.agent(&board, "board-a", "line");
    let desired = topics::group_desired("line");
    fleet.publish(&desired, &fleet.signed(&fleet.deployment("group:line", 5, "")));
    agent.wait_for("listening on fleet/board-a/nowhere/", LONG);
    fleet.wait_report("board-a", |r| applied(r, 5, "healthy"));

    // Unsigned: the bare payload.
    fleet.publish(&desired, &fleet.deployment("group:line", 6, "").to_bytes());
    fleet.wait_report("board-a", |r| {
        r.refused.iter().any(|x| x.reason.starts_with("unsigned"))
    });
    // Signed by a key the agent does not trust.
    let stranger = keys::generate().expect("key");
    let foreign = Envelope::sign(&fleet.deployment("group:line", 7, ""), &stranger).to_json();
    fleet.publish(&desired, &foreign);
    fleet.wait_report("board-a", |r| {
        r.refused.iter().any(|x| x.reason.contains("unknown key"))
    });
    // A replay: an older revision, properly signed.
    fleet.publish(&desired, &fleet.signed(&fleet.deployment("group:line", 3, "")));
    let report = fleet.wait_report("board-a", |r| r.refused.iter().any(|x| x.reason.contains("replayed")));
    // A document for another group, republished on this group's topic.
    fleet.publish(&desired, &fleet.signed(&fleet.deployment("group:other", 8, "")));
    let report2 = fleet.wait_report("board-a", |r| {
        r.refused.iter().any(|x| x.reason.contains("wrong target"))
    });

    assert_eq!(report.refused.len(), 3, "{:#?}", report.refused);
    assert!(report.refused.iter().all(|x| x.topic == desired));
    assert_eq!(report.refused[0].revision, Some(3));
    assert_eq!(report2.refused.len(), 4);
    // Nothing changed: revision 5 still applied and healthy, its container still running.
    assert!(applied(&report2, 5, "healthy"), "{:#?}", report2.applied);
    assert_eq!(state_of(&board, "show"), "running");
    agent.wait_seen("refused a document: unsigned", LONG);
    // Nor can a local `up -d` swap the signed deployment for a file of its own.
    let local = board.write(
        "local.yaml",
        &format!("containers:\n  other:\n    image: {}\n", image("hello.wasm").display()),
    );
    let refused = board.fails(&["up", "-d", "-p", "fleet", "-f", arg(&local)], 1);
    assert!(refused.contains("run by the fleet agent"), "{refused}");
    assert_eq!(state_of(&board, "show"), "running");
    // A deployment larger than an MQTT message of the stack (64 KiB) still arrives: fleet
    // connections take documents up to 1 MiB.
    let big_comment = "# a long comment to make the document large\n".repeat(5000);
    fleet.publish(
        &desired,
        &fleet.signed(&fleet.deployment("group:line", 9, &big_comment)),
    );
    fleet.wait_report("board-a", |r| applied(r, 9, "healthy"));
}

#[test]
fn a_revision_whose_container_fails_is_rolled_back_and_the_reason_reported() {
    let fleet = Fleet::new(&["board-a=line"]);
    let board = Sandbox::new();
    let mut agent = fleet.agent(&board, "board-a", "line");
    let desired = topics::group_desired("line");
    fleet.publish(&desired, &fleet.signed(&fleet.deployment("group:line", 1, "")));
    agent.wait_for("listening on fleet/board-a/nowhere/", LONG);
    fleet.wait_report("board-a", |r| applied(r, 1, "healthy"));

    let failing = format!(
        "  sensor:\n    image: {}\n    restart: on-failure\n",
        fleet.reference("exit-code")
    );
    fleet.publish(&desired, &fleet.signed(&fleet.deployment("group:line", 2, &failing)));
    let report = fleet.wait_report("board-a", |r| applied(r, 2, "rolled-back"));
    let reason = report
        .applied
        .as_ref()
        .and_then(|a| a.reason.clone())
        .unwrap_or_default();
    assert!(reason.contains("container sensor"), "{reason}");
    let good = report.last_good.expect("last good");
    assert_eq!(good.revision, 1);
    // The last good stack runs again: `sensor` is gone, `show` runs.
    let deadline = Instant::now() + LONG;
    loop {
        let rows = board.ps("fleet");
        let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
        if names == ["show"] && rows[0]["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "after the rollback: {rows:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The failed state is not tried again until a newer document comes.
    let still = fleet.wait_report("board-a", |r| r.applied.is_some());
    assert!(applied(&still, 2, "rolled-back"));

    // A revision that cannot be applied at all (an image the deployment does not pin)
    // is reported `failed` with the reason; what runs keeps running.
    let unpinned = format!("  other:\n    image: {}/fleet/unknown:1\n", fleet.registry.host());
    fleet.publish(&desired, &fleet.signed(&fleet.deployment("group:line", 3, &unpinned)));
    let report = fleet.wait_report("board-a", |r| applied(r, 3, "failed"));
    let reason = report.applied.and_then(|a| a.reason).unwrap_or_default();
    assert!(reason.contains("not pinned"), "{reason}");
    assert_eq!(state_of(&board, "show"), "running");
}

#[test]
fn an_agent_restarted_with_the_broker_and_registry_down_runs_its_last_good_stack() {
    let mut fleet = Fleet::new(&["board-a=line"]);
    let board = Sandbox::new();
    let mut agent = fleet.agent(&board, "board-a", "line");
    fleet.publish(
        &topics::group_vars("line"),
        &fleet.signed(&fleet.vars("group:line", 1, &[("SITE", "hall-2")])),
    );
    fleet.publish(
        &topics::group_desired("line"),
        &fleet.signed(&fleet.deployment("group:line", 4, "")),
    );
    agent.wait_for("listening on fleet/board-a/hall-2/", LONG);
    fleet.wait_report("board-a", |r| applied(r, 4, "healthy"));
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit(LONG).success(), "{}", agent.seen.join("\n"));
    drop(agent);

    fleet.broker.stop();
    fleet.registry.stop();
    let journal = board.path().join("agent-state/journal.json");
    assert!(journal.is_file(), "no journal at {}", journal.display());
    // With the registry down, the board's copy of the last good state's image is the only
    // one: `images rm` keeps it and names the journal that needs it.
    let reference = fleet.reference("seq-subscriber");
    let refused = board.fails(&["images", "rm", &reference], 1);
    assert!(
        refused.contains("is still needed")
            && refused.contains(&format!("{reference} in the last good state group:line@4"))
            && refused.contains("agent-state/journal.json")
            && refused.contains(&format!("`shoal images rm --force {reference}`")),
        "{refused}"
    );
    let mut again = fleet.agent(&board, "board-a", "line");
    again.wait_for("listening on fleet/board-a/hall-2/", LONG);
    assert_eq!(state_of(&board, "show"), "running");
    // Running, it is also in use by the agent's stack.
    let refused = board.fails(&["images", "rm", &reference], 1);
    assert!(
        refused.contains("container show of the running project fleet") && refused.contains("last good state"),
        "{refused}"
    );
    again.signal(libc::SIGTERM);
    assert!(again.wait_exit(LONG).success(), "{}", again.seen.join("\n"));
    let removed = board.ok(&["images", "rm", "--force", &reference]);
    assert!(removed.contains("removed sha256:"), "{removed}");
    assert!(!board.ok(&["images"]).contains(&reference));
}

/// A document deleted while the board was off (here the device's own variables: an empty
/// retained message, which the broker does not keep) is noticed when the agent comes back:
/// its marker returns with nothing on that topic, so the group's value applies again.
/// Before the marker the agent kept the journalled document for good.
#[test]
fn a_document_deleted_while_the_agent_was_away_is_dropped_when_it_comes_back() {
    let fleet = Fleet::new(&["board-a=line"]);
    let board = Sandbox::new();
    let mut agent = fleet.agent(&board, "board-a", "line");
    fleet.publish(
        &topics::group_vars("line"),
        &fleet.signed(&fleet.vars("group:line", 1, &[("SITE", "hall-2")])),
    );
    fleet.publish(
        &topics::device_vars("board-a"),
        &fleet.signed(&fleet.vars("device:board-a", 1, &[("SITE", "desk")])),
    );
    fleet.publish(
        &topics::group_desired("line"),
        &fleet.signed(&fleet.deployment("group:line", 4, "")),
    );
    agent.wait_for("listening on fleet/board-a/desk/", LONG);
    fleet.wait_report("board-a", |r| applied(r, 4, "healthy"));
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit(LONG).success(), "{}", agent.seen.join("\n"));
    drop(agent);

    fleet.publish(&topics::device_vars("board-a"), b"");
    let mut again = fleet.agent(&board, "board-a", "line");
    // The journal's last good state first (the device's value), then the broker's word.
    again.wait_seen("listening on fleet/board-a/desk/", LONG);
    again.wait_for("listening on fleet/board-a/hall-2/", LONG);
    again.signal(libc::SIGTERM);
    assert!(again.wait_exit(LONG).success(), "{}", again.seen.join("\n"));
}

#[test]
fn the_agent_unit_passes_systemd_analyze_verify() {
    let keys = [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectory=",
        "--config",
    ];
    crate::support::verify_unit("shoal-agent.service", "shoal-agent.service", &keys);
}

/// Many agents in one process (what `shoal bench fleet` runs), each with its own MQTT
/// session: all come online, and what one idle agent costs is printed (a figure, not an
/// assertion).
#[test]
fn a_hundred_agents_in_one_process_come_online_each_with_its_own_session() {
    use std::sync::Arc;

    use shoal::fleet::agent::{Agent, Host, Settings};
    use shoal::fleet::connect::Connection;

    const AGENTS: usize = 100;
    let broker = Mosquitto::start().expect("start mosquitto");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut trust = keys::TrustSet::default();
    trust.add(keys::generate().expect("key").verifying_key());
    let runtime = Arc::new(shoal::runtime::Runtime::new(&shoal::runtime::RuntimeConfig::default()).expect("runtime"));
    let host = Host {
        runtime,
        images: shoal::images::ImageStore::new(dir.path().join("data")),
        log: Arc::new(shoal::logs::Tee(Vec::new())),
    };
    let executor = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let shutdown = tokio_util::sync::CancellationToken::new();
    shoal::procstat::release_free_memory();
    let before = shoal::procstat::rss_kib().unwrap_or(0);
    let tasks: Vec<_> = (0..AGENTS)
        .map(|i| {
            let device = format!("sim-{i}");
            let connection = Connection::plain(&broker.url()).expect("url");
            let mut settings = Settings::new(&device, &["sim"], &dir.path().join(&device), trust.clone(), connection)
                .expect("settings");
            settings.control_socket = false;
            let agent = Agent::new(settings, host.clone());
            executor.spawn(agent.run(shutdown.clone()))
        })
        .collect();
    let deadline = Instant::now() + LONG;
    loop {
        let output = MqttCli::to(&broker)
            .sub(&["shoal/v1/devices/+/status"])
            .args(["-v", "-W", "1"])
            .output()
            .expect("mosquitto_sub");
        let online = stdout(&output).lines().filter(|l| l.ends_with(" online")).count();
        if online == AGENTS {
            break;
        }
        assert!(Instant::now() < deadline, "{online} of {AGENTS} agents online");
    }
    shoal::procstat::release_free_memory();
    let after = shoal::procstat::rss_kib().unwrap_or(0);
    println!(
        "{AGENTS} idle agents (connected, subscribed, reported): {:.1} KiB RSS each",
        after.saturating_sub(before) as f64 / AGENTS as f64
    );
    shutdown.cancel();
    executor.block_on(async {
        for task in tasks {
            let result = task.await.expect("agent task");
            assert!(result.is_ok(), "{result:?}");
        }
    });
}
