//! The agent's settings: flags, then the environment (`SHOAL_DEVICE_ID`,
//! `SHOAL_DEVICE_GROUPS`, `SHOAL_FLEET_*`), then the agent config file
//! (`/etc/shoal/agent.yaml` by default, see `compose-examples/fleet/agent.yaml`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fleet::connect::{ConnectArgs, ConnectError, ConnectFile, Connection};
use crate::fleet::keys::{KeyError, TrustSet};
use crate::fleet::topics::{check_id, InvalidId};
use crate::spec::names::ProjectName;

/// Where the agent looks for its config file when none is named.
pub const DEFAULT_CONFIG: &str = "/etc/shoal/agent.yaml";
/// Where the agent keeps its journal when neither flag nor file says.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/shoal/agent";
/// The project a deployment runs under when neither it nor the config names one.
pub const DEFAULT_PROJECT: &str = "fleet";
/// How long a new revision must stay healthy before it is the last good one.
pub const DEFAULT_HEALTH_WINDOW: Duration = Duration::from_secs(30);

/// `shoal agent` flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentArgs {
    /// Agent config file (default: /etc/shoal/agent.yaml when it exists)
    #[arg(long, value_name = "FILE", env = "SHOAL_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// This board's device id ([A-Za-z0-9][A-Za-z0-9._-]*, at most 64)
    #[arg(long, env = "SHOAL_DEVICE_ID")]
    pub device_id: Option<String>,
    /// The groups this board belongs to, in priority order (comma-separated)
    #[arg(long, value_name = "GROUP,...", env = "SHOAL_DEVICE_GROUPS", value_delimiter = ',')]
    pub groups: Vec<String>,
    /// A trusted operator public key (PEM file) or a folder of them; repeatable
    #[arg(long = "trust", value_name = "PATH")]
    pub trusted_keys: Vec<PathBuf>,
    /// Folder for the journal and the deployed files (default /var/lib/shoal/agent)
    #[arg(long, value_name = "DIR", env = "SHOAL_AGENT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Project name for deployments that do not name one (default `fleet`)
    #[arg(long = "project-name", value_name = "NAME")]
    pub project: Option<String>,
    /// Health window for deployments that do not give one, e.g. 30s
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub health_window: Option<Duration>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The agent config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    pub device_id: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub project: Option<String>,
    pub state_dir: Option<PathBuf>,
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
    pub health_window: Option<String>,
    /// Serve the stack on the local control socket (`shoal ps -p PROJECT`); default true.
    pub control_socket: Option<bool>,
    pub broker: Option<ConnectFile>,
}

/// Why the agent cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {message}")]
    File { path: PathBuf, message: String },
    /// `FILE:LINE:COLUMN: what is wrong`.
    #[error("{0}\n  hint: compose-examples/fleet/agent.yaml shows every key")]
    Invalid(String),
    #[error("no device id\n  hint: give --device-id, set SHOAL_DEVICE_ID, or `device_id:` in the agent config file")]
    NoDevice,
    #[error(transparent)]
    Id(#[from] InvalidId),
    #[error("no trusted keys: the agent would refuse every deployment\n  hint: give --trust FILE_OR_DIR or `trusted_keys:` in the agent config file (`shoal fleet keygen` makes a key pair)")]
    NoKeys,
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("project `{0}` is not a valid project name")]
    Project(String),
    #[error("health_window `{0}` is not a duration like `30s`")]
    HealthWindow(String),
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

/// Everything an [`super::Agent`] runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub device: String,
    pub groups: Vec<String>,
    pub project: ProjectName,
    pub state_dir: PathBuf,
    pub trust: TrustSet,
    pub health_window: Duration,
    pub connection: Connection,
    /// Serve each stack on its control socket (off for the simulated agents of the bench).
    pub control_socket: bool,
    /// Quiet time after a document arrives before the state is recomputed, so the burst
    /// of retained documents at (re)connect makes one apply, not one per document.
    pub settle: Duration,
    /// The longest wait between reconnection attempts.
    pub reconnect_max: Duration,
}

impl Settings {
    /// Settings for a device with the rest defaulted (tests, the bench).
    pub fn new(
        device: &str,
        groups: &[&str],
        state_dir: &Path,
        trust: TrustSet,
        connection: Connection,
    ) -> Result<Self, ConfigError> {
        check_id("device", device)?;
        for group in groups {
            check_id("group", group)?;
        }
        Ok(Settings {
            device: device.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            project: project_name(DEFAULT_PROJECT)?,
            state_dir: state_dir.to_path_buf(),
            trust,
            health_window: DEFAULT_HEALTH_WINDOW,
            connection,
            control_socket: true,
            settle: Duration::from_millis(300),
            reconnect_max: Duration::from_secs(30),
        })
    }

    /// Flags and environment over the config file.
    pub fn resolve(args: &AgentArgs) -> Result<Self, ConfigError> {
        let (file, base) = read_file(args.config.as_deref())?;
        let base = base.as_deref();
        let relative = |p: &PathBuf| match base {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.clone(),
        };
        let device = args
            .device_id
            .clone()
            .or(file.device_id.clone())
            .ok_or(ConfigError::NoDevice)?;
        let groups: Vec<String> = if args.groups.is_empty() {
            file.groups.clone()
        } else {
            args.groups
                .iter()
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .collect()
        };
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        check_id("device", &device)?;
        for group in &groups {
            check_id("group", group)?;
        }
        let keys: Vec<PathBuf> = if args.trusted_keys.is_empty() {
            file.trusted_keys.iter().map(relative).collect()
        } else {
            args.trusted_keys.clone()
        };
        if keys.is_empty() {
            return Err(ConfigError::NoKeys);
        }
        let trust = TrustSet::load(&keys)?;
        let connection = Connection::resolve(&args.connect, file.broker.as_ref(), base)?;
        let state_dir = args
            .state_dir
            .clone()
            .or_else(|| file.state_dir.as_ref().map(relative))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        let mut settings = Settings::new(&device, &groups, &state_dir, trust, connection)?;
        if let Some(project) = args.project.as_deref().or(file.project.as_deref()) {
            settings.project = project_name(project)?;
        }
        settings.health_window = match (args.health_window, &file.health_window) {
            (Some(window), _) => window,
            (None, Some(text)) => {
                humantime::parse_duration(text).map_err(|_| ConfigError::HealthWindow(text.clone()))?
            }
            (None, None) => DEFAULT_HEALTH_WINDOW,
        };
        settings.control_socket = file.control_socket.unwrap_or(true);
        Ok(settings)
    }
}

fn project_name(name: &str) -> Result<ProjectName, ConfigError> {
    name.parse().map_err(|_| ConfigError::Project(name.to_owned()))
}

/// The config file named, or the default one if it exists; with its folder.
fn read_file(named: Option<&Path>) -> Result<(AgentFile, Option<PathBuf>), ConfigError> {
    let path = match named {
        Some(path) => path.to_path_buf(),
        None if Path::new(DEFAULT_CONFIG).is_file() => PathBuf::from(DEFAULT_CONFIG),
        None => return Ok((AgentFile::default(), None)),
    };
    let fail = |message: String| ConfigError::File {
        path: path.clone(),
        message,
    };
    let text = crate::spec::read_text_file(&path).map_err(|e| fail(e.to_string()))?;
    let file: AgentFile = serde_saphyr::from_str(&text).map_err(|e| invalid(&path, &e))?;
    let base = path.parent().map(Path::to_path_buf);
    Ok((file, base))
}

/// A YAML or schema error as `FILE:LINE:COLUMN: message`.
fn invalid(path: &Path, error: &serde_saphyr::Error) -> ConfigError {
    let text = error.without_snippet().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    // "line 4 column 1: unknown field ..." -> the message alone; the place goes in front.
    let message = match text.split_once(": ") {
        Some((place, rest)) if place.starts_with("line ") => rest,
        _ => text,
    };
    ConfigError::Invalid(match error.location() {
        Some(at) => format!("{}:{}:{}: {message}", path.display(), at.line(), at.column()),
        None => format!("{}: {message}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::keys;

    #[test]
    fn the_shipped_example_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("compose-examples/fleet/agent.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let file: AgentFile = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(file.device_id.as_deref(), Some("board-7"));
        assert_eq!(file.groups, ["line-3", "all-boards"]);
        let broker = file.broker.unwrap();
        assert!(broker.url.unwrap().starts_with("mqtts://"));
    }

    #[test]
    fn the_file_fills_what_flags_leave_out() {
        let dir = tempfile::tempdir().unwrap();
        keys::write_public(&dir.path().join("op.pem"), &keys::generate().unwrap().verifying_key()).unwrap();
        let config = dir.path().join("agent.yaml");
        std::fs::write(
            &config,
            "device_id: board-1\ngroups: [line-3, all]\ntrusted_keys: [op.pem]\nstate_dir: state\nhealth_window: 5s\nbroker:\n  url: mqtt://127.0.0.1:1883\n",
        )
        .unwrap();
        let args = AgentArgs {
            config: Some(config.clone()),
            ..AgentArgs::default()
        };
        let s = Settings::resolve(&args).unwrap();
        assert_eq!(s.device, "board-1");
        assert_eq!(s.groups, ["line-3", "all"]);
        assert_eq!(s.state_dir, dir.path().join("state"));
        assert_eq!(s.health_window, Duration::from_secs(5));
        assert_eq!(s.trust.len(), 1);
        let args = AgentArgs {
            config: Some(config.clone()),
            device_id: Some("board-2".into()),
            groups: vec!["g".into()],
            ..AgentArgs::default()
        };
        let s = Settings::resolve(&args).unwrap();
        assert_eq!(
            (s.device.as_str(), s.groups.as_slice()),
            ("board-2", &["g".to_string()][..])
        );
        let args = AgentArgs {
            config: Some(config),
            device_id: Some("a/b".into()),
            ..AgentArgs::default()
        };
        assert!(matches!(Settings::resolve(&args), Err(ConfigError::Id(_))));
        std::fs::write(dir.path().join("bad.yaml"), "device: x\n").unwrap();
        let args = AgentArgs {
            config: Some(dir.path().join("bad.yaml")),
            ..AgentArgs::default()
        };
        match Settings::resolve(&args) {
            Err(ConfigError::Invalid(m)) => {
                assert!(
                    m.starts_with(&format!(
                        "{}:1:1: unknown field `device`",
                        dir.path().join("bad.yaml").display()
                    )),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
