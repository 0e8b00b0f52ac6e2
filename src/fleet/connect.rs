//! The fleet's broker connection (agent and operator commands): URL, credentials and TLS
//! files from flags, the environment (`SHOAL_FLEET_*`) or a YAML file, turned into rumqttc
//! options with the same building blocks as the bridges (`bridge::base_options`,
//! `bridge::tls_transport`, `bridge::read_secret`). Flags and environment win over the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rumqttc::v5::MqttOptions;

use crate::bridge::{self, BridgeError};
use crate::spec::bridges::{parse_url, BrokerUrl, UrlError};
use crate::spec::{BridgeTls, SecretRef};

/// Publishes in flight at once on a fleet connection: documents and reports are few.
pub const INFLIGHT: u16 = 16;

/// The largest packet a fleet client takes: the largest document plus room for the topic
/// and properties. It is announced in CONNECT, so the broker never sends a larger one;
/// the bridges' smaller limit (a stack's message) would silently keep every deployment
/// over 64 KiB from arriving.
pub const MAX_PACKET: u32 = crate::fleet::document::MAX_DOCUMENT_BYTES as u32 + 16 * 1024;

/// Connection flags, each also read from its environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectArgs {
    /// Broker URL: `mqtt://host[:port]` or `mqtts://host[:port]` (TLS)
    #[arg(long = "broker", value_name = "URL", env = "SHOAL_FLEET_URL")]
    pub url: Option<String>,
    /// Broker user name
    #[arg(long, env = "SHOAL_FLEET_USERNAME")]
    pub username: Option<String>,
    /// Broker password (prefer --password-file: a flag is visible in `ps`)
    #[arg(long, env = "SHOAL_FLEET_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// File holding the broker password
    #[arg(long, value_name = "FILE", env = "SHOAL_FLEET_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// PEM CA certificate(s) for the broker's certificate (default: the system's roots)
    #[arg(long, value_name = "FILE", env = "SHOAL_FLEET_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for brokers that require one
    #[arg(long, value_name = "FILE", env = "SHOAL_FLEET_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of --cert-file
    #[arg(long, value_name = "FILE", env = "SHOAL_FLEET_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// MQTT client id (default: derived from the device id or user)
    #[arg(long, env = "SHOAL_FLEET_CLIENT_ID")]
    pub client_id: Option<String>,
}

/// The same settings in a YAML file (the agent's `broker:` section, the operator's file).
/// Relative paths are relative to the file's folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectFile {
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub client_id: Option<String>,
    /// Keep-alive, e.g. `30s` (default 30 s).
    pub keep_alive: Option<String>,
}

/// Why no connection could be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no broker URL\n  hint: give --broker mqtt://HOST:PORT, set SHOAL_FLEET_URL, or `url:` under `broker:` in the config file")]
    NoUrl,
    #[error("broker URL: {error}{}", error.hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    Url {
        #[from]
        error: UrlError,
    },
    #[error("{0}")]
    Setup(#[from] BridgeError),
    #[error("TLS files (--ca-file, --cert-file, --key-file) need an `mqtts://` broker URL")]
    TlsWithoutMqtts,
    #[error("--cert-file and --key-file go together")]
    HalfClientCert,
    #[error("keep_alive `{0}` is not a duration like `30s`")]
    KeepAlive(String),
}

/// Resolved settings, ready to make client options.
#[derive(Debug, Clone)]
pub struct Connection {
    pub url: String,
    pub broker: BrokerUrl,
    pub username: Option<String>,
    password: Option<SecretRef>,
    pub tls: BridgeTls,
    pub client_id: Option<String>,
    pub keep_alive: Duration,
}

fn relative_to(base: Option<&Path>, path: &Path) -> PathBuf {
    match base {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

impl Connection {
    /// Flags and environment first, then the file (`base`: the file's folder).
    pub fn resolve(args: &ConnectArgs, file: Option<&ConnectFile>, base: Option<&Path>) -> Result<Self, ConnectError> {
        let empty = ConnectFile::default();
        let file = file.unwrap_or(&empty);
        let path = |flag: &Option<PathBuf>, from_file: &Option<PathBuf>| {
            flag.clone()
                .or_else(|| from_file.as_deref().map(|p| relative_to(base, p)))
        };
        let url = args
            .url
            .clone()
            .or_else(|| file.url.clone())
            .ok_or(ConnectError::NoUrl)?;
        let broker = parse_url(&url)?;
        let password = match (&args.password, path(&args.password_file, &None)) {
            (Some(p), _) => Some(SecretRef::Plain(p.clone())),
            (None, Some(f)) => Some(SecretRef::File(f)),
            (None, None) => match (&file.password, path(&None, &file.password_file)) {
                (Some(p), _) => Some(SecretRef::Plain(p.clone())),
                (None, f) => f.map(SecretRef::File),
            },
        };
        let tls = BridgeTls {
            ca_file: path(&args.ca_file, &file.ca_file),
            cert_file: path(&args.cert_file, &file.cert_file),
            key_file: path(&args.key_file, &file.key_file),
        };
        if !broker.use_tls && (tls.ca_file.is_some() || tls.cert_file.is_some() || tls.key_file.is_some()) {
            return Err(ConnectError::TlsWithoutMqtts);
        }
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err(ConnectError::HalfClientCert);
        }
        let keep_alive = match &file.keep_alive {
            Some(text) => humantime::parse_duration(text).map_err(|_| ConnectError::KeepAlive(text.clone()))?,
            None => Duration::from_secs(30),
        };
        Ok(Connection {
            url,
            broker,
            username: args.username.clone().or_else(|| file.username.clone()),
            password,
            tls,
            client_id: args.client_id.clone().or_else(|| file.client_id.clone()),
            keep_alive,
        })
    }

    /// A connection to `url` with no credentials (tests, the bench).
    pub fn plain(url: &str) -> Result<Self, ConnectError> {
        Self::resolve(
            &ConnectArgs {
                url: Some(url.to_owned()),
                ..ConnectArgs::default()
            },
            None,
            None,
        )
    }

    /// With these credentials.
    pub fn with_login(mut self, username: &str, password: &str) -> Self {
        self.username = Some(username.to_owned());
        self.password = Some(SecretRef::Plain(password.to_owned()));
        self
    }

    /// MQTT 5 options: the configured client id or `default_client_id`, a clean start (the
    /// fleet's documents are retained, so nothing needs a stored session), credentials and
    /// secrets read now, TLS for `mqtts://`.
    pub fn mqtt_options(&self, default_client_id: &str) -> Result<MqttOptions, ConnectError> {
        let client_id = self.client_id.as_deref().unwrap_or(default_client_id);
        let mut options = bridge::base_options(
            client_id,
            &self.broker.host,
            self.broker.port,
            self.keep_alive,
            INFLIGHT,
        );
        options.set_clean_start(true);
        options.set_max_packet_size(Some(MAX_PACKET));
        if let Some(user) = &self.username {
            let password = match &self.password {
                Some(secret) => bridge::read_secret(secret)?,
                None => String::new(),
            };
            options.set_credentials(user.clone(), password);
        }
        if self.broker.use_tls {
            options.set_transport(bridge::tls_transport(&self.tls)?);
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "from-file\n").unwrap();
        let file: ConnectFile = serde_saphyr::from_str(
            "url: mqtt://broker.example\nusername: board-1\npassword_file: pw\nkeep_alive: 10s\n",
        )
        .unwrap();
        let c = Connection::resolve(&ConnectArgs::default(), Some(&file), Some(dir.path())).unwrap();
        assert_eq!((c.broker.host.as_str(), c.broker.port), ("broker.example", 1883));
        let options = c.mqtt_options("shoal-agent-board-1").unwrap();
        let login = options.credentials().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("board-1", "from-file")
        );
        assert_eq!(options.keep_alive(), Duration::from_secs(10));
        assert_eq!(options.client_id(), "shoal-agent-board-1");
        assert_eq!(options.max_packet_size(), Some(MAX_PACKET));

        let args = ConnectArgs {
            url: Some("mqtt://127.0.0.1:1999".into()),
            password: Some("flag".into()),
            ..ConnectArgs::default()
        };
        let c = Connection::resolve(&args, Some(&file), Some(dir.path())).unwrap();
        assert_eq!(c.broker.port, 1999);
        let options = c.mqtt_options("x").unwrap();
        assert_eq!(options.credentials().unwrap().password, "flag");
    }

    #[test]
    fn mistakes_are_named() {
        assert!(matches!(
            Connection::resolve(&ConnectArgs::default(), None, None),
            Err(ConnectError::NoUrl)
        ));
        assert!(matches!(Connection::plain("http://x"), Err(ConnectError::Url { .. })));
        let args = ConnectArgs {
            url: Some("mqtt://x".into()),
            ca_file: Some("/ca.pem".into()),
            ..ConnectArgs::default()
        };
        assert!(matches!(
            Connection::resolve(&args, None, None),
            Err(ConnectError::TlsWithoutMqtts)
        ));
        assert!(serde_saphyr::from_str::<ConnectFile>("url: mqtt://x\npasword: typo\n").is_err());
    }
}
