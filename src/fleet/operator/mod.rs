//! The operator's side of the fleet: `shoal fleet keygen|deploy|ls|ps|rollback|vars|acl`,
//! one file per command. Each reads the broker settings through [`crate::fleet::connect`]
//! (flags, `SHOAL_FLEET_*`, `--config` or `~/.config/shoal/fleet.yaml`), talks to the
//! broker through one [`session::Session`] and signs with the operator's key.
//!
//! The broker holds everything: desired documents, variables and the devices' reports are
//! retained messages; there is no server of shoal's own. A command reads the retained
//! state it needs, publishes signed documents, and (for `deploy`) watches the reports.

pub mod acl;
pub mod deploy;
pub mod keygen;
pub mod ls;
pub mod ps;
pub mod rollback;
pub mod session;
pub mod vars;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use bytes::Bytes;

use crate::fleet::connect::{ConnectArgs, ConnectError, ConnectFile, Connection};
use crate::fleet::document::{Envelope, Payload};
use crate::fleet::keys::{self, KeyError};
use crate::fleet::report::Report;
use crate::fleet::topics::{self, Target};

pub use session::Session;

/// Why an operator command failed; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(
        "cannot reach the broker at {url}: {message}\n  hint: is the broker running and the URL right? (--broker, SHOAL_FLEET_URL or `broker: url:` in the config file)"
    )]
    Unreachable { url: String, message: String },
    #[error(
        "{url}: not authorised: {what}\n  hint: the operator's MQTT user needs `topic readwrite shoal/v1/#` in the broker's ACL (`shoal fleet acl` writes it) and its password (--username, --password-file)"
    )]
    NotAuthorised { url: String, what: String },
    #[error("no devices in group `{group}`: none of the devices that reported to this broker lists it\n  hint: `shoal fleet ls` shows the devices and their groups; an agent joins a group through its `groups:`")]
    NoDevices { group: String },
    #[error("signing key {} not found\n  hint: make one with `shoal fleet keygen` (or give --key FILE / SHOAL_FLEET_KEY)", .0.display())]
    KeyMissing(PathBuf),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("cannot read {}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("the retained document on {topic} cannot be read: {message}")]
    Document { topic: String, message: String },
}

/// The operator's config file (`--config`, default `~/.config/shoal/fleet.yaml`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorFile {
    /// The broker connection (the same keys as the agent's `broker:`).
    #[serde(default)]
    pub broker: Option<ConnectFile>,
    /// The signing key (default `~/.config/shoal/fleet.key`).
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// `~/.config/shoal` (or `$XDG_CONFIG_HOME/shoal`).
pub fn config_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("shoal")
}

/// The settings every broker-facing command takes: connection and config file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OperatorArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Operator config file [default: ~/.config/shoal/fleet.yaml when it exists]
    #[arg(long, value_name = "FILE", env = "SHOAL_FLEET_CONFIG")]
    pub config: Option<PathBuf>,
}

impl OperatorArgs {
    /// The config file, if one was named or the default exists.
    pub fn file(&self) -> Result<(Option<OperatorFile>, Option<PathBuf>), OperatorError> {
        let (path, required) = match &self.config {
            Some(path) => (path.clone(), true),
            None => (config_dir().join("fleet.yaml"), false),
        };
        if !required && !path.is_file() {
            return Ok((None, None));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| OperatorError::Config {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let file: OperatorFile = serde_saphyr::from_str(&text).map_err(|e| OperatorError::Config {
            path: path.clone(),
            message: format!(
                "{e}\n  hint: the file holds `broker:` (url, username, password_file, ca_file, ...) and `key:`"
            ),
        })?;
        let base = path.parent().map(Path::to_path_buf);
        Ok((Some(file), base))
    }

    /// Connect to the broker.
    pub async fn session(&self) -> Result<Session, OperatorError> {
        let (file, base) = self.file()?;
        let broker = file.as_ref().and_then(|f| f.broker.as_ref());
        let connection = Connection::resolve(&self.connect, broker, base.as_deref())?;
        let client_id = format!("shoal-fleet-{}-{}", signer_user(), std::process::id());
        let client_id: String = client_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
            .collect();
        let options = connection.mqtt_options(&client_id)?;
        Session::connect(options, &connection.url).await
    }

    /// The signing key: `--key`, else the config file's `key:`, else the default file.
    pub fn signing_key(&self, flag: Option<&Path>) -> Result<ed25519_dalek::SigningKey, OperatorError> {
        let path = match flag {
            Some(path) => path.to_path_buf(),
            None => {
                let (file, base) = self.file()?;
                match file.and_then(|f| f.key) {
                    Some(key) if key.is_relative() => base.unwrap_or_default().join(key),
                    Some(key) => key,
                    None => config_dir().join(keygen::PRIVATE_NAME),
                }
            }
        };
        if !path.exists() {
            return Err(OperatorError::KeyMissing(path));
        }
        Ok(keys::load_private(&path)?)
    }
}

/// `user@host`, the `signer` of documents.
pub fn signer() -> String {
    let mut host = [0u8; 256];
    // SAFETY: gethostname writes at most len bytes into the buffer we own.
    let ok = unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) } == 0;
    let host = if ok {
        let end = host.iter().position(|&b| b == 0).unwrap_or(host.len());
        String::from_utf8_lossy(&host[..end]).into_owned()
    } else {
        "unknown".to_string()
    };
    format!("{}@{host}", signer_user())
}

fn signer_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "operator".to_string())
}

/// A target from `group:NAME`, `device:ID` or a bare name. The rule for a bare name: it is
/// a group if some device reports that group, else a device if one reported that id; a
/// name that is both is refused (write the prefix).
pub fn resolve_target(text: &str, fleet: &FleetView) -> Result<Target, OperatorError> {
    if text.contains(':') {
        return text
            .parse()
            .map_err(|e: topics::InvalidTarget| OperatorError::Usage(e.to_string()));
    }
    topics::check_id("group or device", text).map_err(|e| OperatorError::Usage(e.to_string()))?;
    let is_group = fleet.reports.values().any(|r| r.groups.iter().any(|g| g == text));
    let is_device = fleet.reports.contains_key(text) || fleet.status.contains_key(text);
    match (is_group, is_device) {
        (true, true) => Err(OperatorError::Usage(format!(
            "`{text}` is both a group and a device: write group:{text} or device:{text}"
        ))),
        (false, true) => Ok(Target::Device(text.to_string())),
        (true, false) => Ok(Target::Group(text.to_string())),
        (false, false) => Err(OperatorError::Usage(format!(
            "no device reports `{text}` as its id or one of its groups\n  hint: `shoal fleet ls` lists them; write group:{text} or device:{text} to address it anyway"
        ))),
    }
}

/// What the broker's retained reports and statuses say about the fleet.
#[derive(Debug, Default)]
pub struct FleetView {
    pub reports: BTreeMap<String, Report>,
    /// `online` / `offline` per device id.
    pub status: BTreeMap<String, String>,
    /// Reports that did not parse, by device: shown, never fatal.
    pub unreadable: BTreeMap<String, String>,
}

impl FleetView {
    /// The topics a view needs.
    pub fn filters() -> Vec<String> {
        vec![topics::all_reported(), topics::all_status()]
    }

    /// Build the view from a session's retained state.
    pub fn from_state(state: &BTreeMap<String, Bytes>) -> FleetView {
        let mut view = FleetView::default();
        for (topic, payload) in state {
            match topics::parse(topic) {
                Some((Target::Device(id), topics::Channel::Reported)) => {
                    match serde_json::from_slice::<Report>(payload) {
                        Ok(report) if report.device == id => {
                            view.reports.insert(id, report);
                        }
                        Ok(report) => {
                            view.unreadable
                                .insert(id, format!("report names another device ({})", report.device));
                        }
                        Err(e) => {
                            view.unreadable.insert(id, e.to_string());
                        }
                    }
                }
                Some((Target::Device(id), topics::Channel::Status)) => {
                    view.status.insert(id, String::from_utf8_lossy(payload).into_owned());
                }
                _ => {}
            }
        }
        view
    }

    /// Whether the device's last status is `online`.
    pub fn online(&self, id: &str) -> bool {
        self.status.get(id).is_some_and(|s| s == topics::ONLINE)
    }

    /// The devices that report membership of `group`.
    pub fn group_devices(&self, group: &str) -> Vec<String> {
        self.reports
            .values()
            .filter(|r| r.groups.iter().any(|g| g == group))
            .map(|r| r.device.clone())
            .collect()
    }

    /// Every device id seen (reports or statuses).
    pub fn devices(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.reports.keys().chain(self.status.keys()).cloned().collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// The payload of a retained envelope, read without checking the signature: the operator
/// only needs its revision and content to re-sign (a broker that forged it could at most
/// make the operator choose a higher revision, or re-sign content the operator then sees).
pub fn read_payload(topic: &str, message: &[u8]) -> Result<Payload, OperatorError> {
    let bad = |message: String| OperatorError::Document {
        topic: topic.to_string(),
        message,
    };
    let envelope: Envelope = serde_json::from_slice(message).map_err(|e| bad(e.to_string()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(envelope.payload.as_bytes())
        .map_err(|e| bad(format!("payload is not base64: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))
}

/// The next revision for documents on `topics`: the time in milliseconds, or one more than
/// the highest revision retained on any of them (a clock that went back never makes an
/// agent refuse a new document as a replay).
pub fn next_revision<'a>(state: &BTreeMap<String, Bytes>, on: impl IntoIterator<Item = &'a String>) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    on.into_iter()
        .filter_map(|topic| state.get(topic).map(|m| (topic, m)))
        .filter_map(|(topic, message)| read_payload(topic, message).ok())
        .map(|payload| payload.revision.saturating_add(1))
        .fold(now, u64::max)
}

/// Parse `K=V` words.
pub fn parse_assignments(words: &[String]) -> Result<BTreeMap<String, String>, OperatorError> {
    let mut out = BTreeMap::new();
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(OperatorError::Usage(format!("`{word}` is not KEY=VALUE")));
        };
        if key.is_empty()
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || key.as_bytes()[0].is_ascii_digit()
        {
            return Err(OperatorError::Usage(format!(
                "`{key}` is not a variable name (letters, digits and `_`, not starting with a digit)"
            )));
        }
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments() {
        let words = vec!["A=1".to_string(), "B_2=x=y".to_string(), "A=3".to_string()];
        let vars = parse_assignments(&words).unwrap();
        assert_eq!(vars.get("A").map(String::as_str), Some("3"));
        assert_eq!(vars.get("B_2").map(String::as_str), Some("x=y"));
        assert!(parse_assignments(&["novalue".to_string()]).is_err());
        assert!(parse_assignments(&["1A=x".to_string()]).is_err());
        assert!(parse_assignments(&["A-B=x".to_string()]).is_err());
    }

    #[test]
    fn config_file_gives_the_broker_and_the_key_relative_to_itself() {
        let dir = tempfile::tempdir().unwrap();
        let pair = keygen::keygen(&dir.path().join("keys")).unwrap();
        let config = dir.path().join("fleet.yaml");
        std::fs::write(
            &config,
            "broker:\n  url: mqtt://broker.example:1999\n  username: operator\nkey: keys/fleet.key\n",
        )
        .unwrap();
        let args = OperatorArgs {
            config: Some(config.clone()),
            ..OperatorArgs::default()
        };
        let (file, base) = args.file().unwrap();
        let broker = file.unwrap().broker.unwrap();
        assert_eq!(broker.url.as_deref(), Some("mqtt://broker.example:1999"));
        assert_eq!(base.as_deref(), Some(dir.path()));
        let key = args.signing_key(None).unwrap();
        assert_eq!(keys::key_id(&key.verifying_key()), pair.id);
        // A flag wins; a missing key says how to make one.
        let missing = args.signing_key(Some(&dir.path().join("nope.key"))).unwrap_err();
        assert!(missing.to_string().contains("shoal fleet keygen"), "{missing}");
        // A typo in the file is named.
        std::fs::write(&config, "brokr: {}\n").unwrap();
        let error = args.file().unwrap_err().to_string();
        assert!(error.contains("fleet.yaml") && error.contains("brokr"), "{error}");
    }

    #[test]
    fn bare_names_resolve_by_what_reported() {
        let mut fleet = FleetView::default();
        let report: Report = serde_json::from_value(serde_json::json!({
            "device": "pi-01", "groups": ["line-3"], "agent": {"version": "0", "platform": "x"},
            "applied": null, "last_good": null, "refused": [], "containers": [], "at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        fleet.reports.insert("pi-01".into(), report);
        assert_eq!(
            resolve_target("line-3", &fleet).unwrap(),
            Target::Group("line-3".into())
        );
        assert_eq!(resolve_target("pi-01", &fleet).unwrap(), Target::Device("pi-01".into()));
        assert_eq!(resolve_target("group:x", &fleet).unwrap(), Target::Group("x".into()));
        assert!(resolve_target("nobody", &fleet).is_err());
        assert!(resolve_target("a/b", &fleet).is_err());
        fleet.status.insert("line-3".into(), "online".into());
        assert!(resolve_target("line-3", &fleet).is_err());
    }

    #[test]
    fn revisions_go_up() {
        let key = keys::generate().unwrap();
        let payload = Payload {
            kind: crate::fleet::document::Kind::Vars,
            schema: crate::fleet::document::SCHEMA,
            revision: u64::MAX / 2,
            target: Target::Group("g".into()),
            created: String::new(),
            signer: String::new(),
            project: None,
            files: vec![],
            images: BTreeMap::new(),
            health_window: None,
            variables: BTreeMap::new(),
        };
        let topic = topics::group_vars("g");
        let mut state = BTreeMap::new();
        state.insert(topic.clone(), Bytes::from(Envelope::sign(&payload, &key).to_json()));
        assert_eq!(next_revision(&state, [&topic]), u64::MAX / 2 + 1);
        let other = topics::group_vars("h");
        let now = next_revision(&state, [&other]);
        assert!(now > 1_700_000_000_000 && now < u64::MAX / 2);
        assert!(read_payload(&topic, b"nope").is_err());
    }
}
