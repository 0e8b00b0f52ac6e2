//! What the fleet tests (`fleet_agent`, `fleet_ops`) share: a Mosquitto that admits only
//! its users, each held by the ACL the shipped code generates (`fleet::operator::acl`, what
//! `shoal fleet acl` writes), a registry with the test guests pushed, the operator's key made
//! by `shoal fleet keygen`, and `shoal agent` processes, each in its own board sandbox.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use shoal::bridge::mosquitto::{Auth, Mosquitto};
use shoal::fleet::keys;
use shoal::fleet::operator::acl::{self, Inventory};
use shoal::registry::local::{LocalRegistry, Options};

use crate::mqtt_cli::MqttCli;
use crate::support::{arg, image, stderr, stdout, Running, Sandbox};

/// Hang guard for waits (not a timing assertion).
pub const LONG: Duration = Duration::from_secs(120);
/// The operator's MQTT login (reads and writes all of `shoal/v1/#`).
pub const OPERATOR: (&str, &str) = ("operator", "op-secret");

/// A device's MQTT password.
pub fn password(device: &str) -> String {
    format!("{device}-pw")
}

/// The operator's side: broker, registry, key.
pub struct Fleet {
    /// The operator's sandbox (keys, registry data, compose files).
    pub sandbox: Sandbox,
    pub broker: Mosquitto,
    pub registry: LocalRegistry,
    /// The operator's signing key (`keys/fleet.key`) and its public half, which agents trust.
    pub key: ed25519_dalek::SigningKey,
    pub public_key: PathBuf,
    /// Reference -> registry digest of each pushed guest.
    pub images: BTreeMap<String, String>,
}

impl Fleet {
    /// `devices`: `ID=GROUP,GROUP` as `shoal fleet acl --device` takes them; each device's
    /// login is its id and [`password`].
    pub fn new(devices: &[&str]) -> Fleet {
        let sandbox = Sandbox::new();
        let acl_file = sandbox.write("mosquitto.acl", &Fleet::acl(devices));
        let mut users = vec![(OPERATOR.0.to_owned(), OPERATOR.1.to_owned())];
        for device in devices {
            let id = device.split('=').next().unwrap_or(device);
            users.push((id.to_owned(), password(id)));
        }
        let broker = Mosquitto::start_with_auth(Auth { acl_file, users }).expect("start mosquitto");
        let registry =
            LocalRegistry::start_in(&sandbox.path().join("registry"), &Options::default()).expect("start registry");
        let out = sandbox.ok(&["fleet", "keygen", "--out", "keys"]);
        assert!(out.contains("key "), "{out}");
        let key = keys::load_private(&sandbox.path().join("keys/fleet.key")).expect("the key keygen wrote");
        let public_key = sandbox.path().join("keys/fleet.pub");
        let mut fleet = Fleet {
            sandbox,
            broker,
            registry,
            key,
            public_key,
            images: BTreeMap::new(),
        };
        for name in ["seq-subscriber", "exit-code"] {
            fleet.push(name);
        }
        fleet
    }

    /// The ACL of these devices, as the shipped generator writes it for the operator.
    pub fn acl(devices: &[&str]) -> String {
        let inventory = Inventory {
            operator: OPERATOR.0.to_owned(),
            devices: devices
                .iter()
                .map(|d| Inventory::device_flag(d).expect("ID=GROUP,..."))
                .collect(),
        };
        acl::render(&inventory).expect("a valid inventory")
    }

    pub fn reference(&self, name: &str) -> String {
        format!("{}/fleet/{name}:1", self.registry.host())
    }

    /// `shoal images push` the guest; remember the digest it printed.
    fn push(&mut self, name: &str) {
        let reference = self.reference(name);
        let out = self
            .sandbox
            .ok(&["images", "push", arg(&image(&format!("{name}.wasm"))), &reference]);
        let pinned = out
            .split_whitespace()
            .find_map(|w| w.split_once('@').map(|(_, d)| d.to_owned()))
            .unwrap_or_else(|| panic!("no digest in the push output: {out}"));
        self.images.insert(reference, pinned);
    }

    /// `mosquitto_sub`/`mosquitto_pub` to this broker, as `user`.
    pub fn mqtt(&self, user: (&str, &str)) -> MqttCli {
        MqttCli::to(&self.broker).login(user.0, user.1)
    }

    /// `mosquitto_pub -r -q 1` with the operator's login; an empty message deletes the
    /// retained one (`-n`).
    pub fn publish(&self, topic: &str, message: &[u8]) {
        let mut cmd = self.mqtt(OPERATOR).publish(topic);
        cmd.args(["-q", "1", "-r"]);
        if message.is_empty() {
            cmd.arg("-n");
        } else {
            let file = self.sandbox.path().join("message.json");
            std::fs::write(&file, message).expect("write message");
            cmd.arg("-f").arg(file);
        }
        let output = cmd.output().expect("mosquitto_pub");
        assert!(output.status.success(), "mosquitto_pub: {}", stderr(&output));
    }

    /// The retained message on `topic` as `user` sees it (`None`: nothing came).
    pub fn retained(&self, topic: &str, user: (&str, &str)) -> Option<String> {
        let output = self
            .mqtt(user)
            .sub(&[topic])
            .args(["-q", "1", "-C", "1", "-W", "2"])
            .output()
            .expect("mosquitto_sub");
        let text = stdout(&output);
        (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
    }

    /// `shoal agent` for `device` in its own board sandbox (own data dir, own sockets),
    /// trusting the operator's key.
    pub fn agent(&self, board: &Sandbox, device: &str, groups: &str) -> Running {
        let state = board.path().join("agent-state");
        let mut cmd = board.command(&[
            "agent",
            "--device-id",
            device,
            "--groups",
            groups,
            "--trust",
            arg(&self.public_key),
            "--state-dir",
            arg(&state),
            "--broker",
            &self.broker.url(),
            "--username",
            device,
            "--health-window",
            "2s",
        ]);
        cmd.env("SHOAL_FLEET_PASSWORD", password(device));
        // The agent's own environment never reaches a deployment's interpolation: the
        // device's variables are the agent's id and the signed documents' values.
        cmd.env("DEVICE_ID", "intruder").env("SITE", "west");
        Running::spawn(cmd)
    }
}
