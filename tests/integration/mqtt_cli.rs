//! `mosquitto_sub` and `mosquitto_pub` command lines: one place that spells how a test
//! reaches its broker (host, port, protocol version, login, TLS CA, topics), so every test
//! talks to Mosquitto the same way and a change of one option is made once.

use std::path::{Path, PathBuf};
use std::process::Command;

use shoal::bridge::mosquitto::Mosquitto;

/// How to connect to a test broker; [`MqttCli::sub`] and [`MqttCli::publish`] make the
/// commands, to which a test adds what is its own (`-q`, `-C`, `-W`, `-m`, `-F`...).
#[derive(Debug, Clone)]
pub struct MqttCli {
    port: u16,
    login: Option<(String, String)>,
    ca_file: Option<PathBuf>,
    mqtt311: bool,
    line_buffered: bool,
}

impl MqttCli {
    /// MQTT v5 to `broker` on 127.0.0.1, no login, plain TCP.
    pub fn to(broker: &Mosquitto) -> Self {
        MqttCli {
            port: broker.port(),
            login: None,
            ca_file: None,
            mqtt311: false,
            line_buffered: false,
        }
    }

    /// As this user (`-u`, `-P`).
    pub fn login(mut self, user: &str, password: &str) -> Self {
        self.login = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Over TLS, trusting this CA (`--cafile`).
    pub fn tls(mut self, ca_file: &Path) -> Self {
        self.ca_file = Some(ca_file.to_path_buf());
        self
    }

    /// MQTT 3.1.1 instead of 5: there `-c` alone keeps a session after the client leaves
    /// (MQTT 5 would also need a session expiry).
    pub fn mqtt311(mut self) -> Self {
        self.mqtt311 = true;
        self
    }

    /// Through `stdbuf -oL`, so each line (and `-d` debug lines) reaches a pipe as printed.
    pub fn line_buffered(mut self) -> Self {
        self.line_buffered = true;
        self
    }

    /// `mosquitto_sub` subscribed to each of `filters`.
    pub fn sub(&self, filters: &[&str]) -> Command {
        let mut cmd = self.command("mosquitto_sub");
        for filter in filters {
            cmd.args(["-t", filter]);
        }
        cmd
    }

    /// `mosquitto_pub` publishing on `topic`.
    pub fn publish(&self, topic: &str) -> Command {
        let mut cmd = self.command("mosquitto_pub");
        cmd.args(["-t", topic]);
        cmd
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = if self.line_buffered {
            let mut cmd = Command::new("stdbuf");
            cmd.args(["-oL", program]);
            cmd
        } else {
            Command::new(program)
        };
        if !self.mqtt311 {
            cmd.args(["-V", "mqttv5"]);
        }
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some((user, password)) = &self.login {
            cmd.args(["-u", user, "-P", password]);
        }
        if let Some(ca_file) = &self.ca_file {
            cmd.arg("--cafile").arg(ca_file);
        }
        cmd
    }
}
