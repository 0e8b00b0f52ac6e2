//! The agent's journal: `journal.json` in its state folder holds the last good state (the
//! signed envelopes of the deployment and vars documents it used), the highest revision
//! accepted per topic, and the states that failed their health window. It is written
//! atomically (temporary file, fsync, rename, fsync of the folder), so a power cut leaves
//! either the old journal or the new one, never half of one.
//!
//! At boot the agent re-verifies the journalled envelopes with the keys it trusts now and
//! runs that state before (and without) the broker.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::fleet::document::{Accepted, Envelope};

pub const FILE: &str = "journal.json";
/// The folder of the image store where each agent that pulls into it leaves the path of its
/// state folder: `shoal images rm` knows the store but not the agent's `--state-dir`, and
/// asks these journals which images their last good state still needs.
const AGENTS_DIR: &str = "agents";
/// Failed state ids kept (the oldest are forgotten first).
const MAX_FAILED: usize = 32;

/// One signed document as journalled: the topic it came on and its envelope.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub topic: String,
    pub envelope: Envelope,
}

/// The last state that passed its health window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GoodState {
    pub state_id: String,
    pub source: String,
    pub revision: u64,
    pub deployment: Entry,
    #[serde(default)]
    pub vars: Vec<Entry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Journal {
    /// Topic -> the highest revision accepted on it (and its payload hash).
    #[serde(default)]
    pub accepted: BTreeMap<String, Accepted>,
    #[serde(default)]
    pub last_good: Option<GoodState>,
    /// States that failed their health window, oldest first: not applied again.
    #[serde(default)]
    pub failed: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot write the journal {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read the journal {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the journal {path} is damaged ({message}); it was moved to {moved} and the agent starts without a last good state")]
    Damaged {
        path: PathBuf,
        moved: PathBuf,
        message: String,
    },
}

impl Journal {
    /// The journal in `dir`, empty when there is none. A damaged one is moved aside (and
    /// the error says so) so that the agent still starts and can receive a deployment.
    pub fn load(dir: &Path) -> Result<Journal, JournalError> {
        let path = dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Journal::default()),
            Err(source) => return Err(JournalError::Read { path, source }),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            let moved = dir.join(format!("{FILE}.damaged"));
            let _ = std::fs::rename(&path, &moved);
            JournalError::Damaged {
                path,
                moved,
                message: e.to_string(),
            }
        })
    }

    /// Write the journal to `dir` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), JournalError> {
        let path = dir.join(FILE);
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        write_atomically(&path, &bytes).map_err(|source| JournalError::Write { path, source })
    }

    pub fn is_failed(&self, state_id: &str) -> bool {
        self.failed.iter().any(|f| f == state_id)
    }

    pub fn mark_failed(&mut self, state_id: &str) {
        if !self.is_failed(state_id) {
            self.failed.push(state_id.to_owned());
        }
        let excess = self.failed.len().saturating_sub(MAX_FAILED);
        self.failed.drain(..excess);
    }

    /// The topics whose documents the last good state uses (kept when others are pruned).
    pub fn good_topics(&self) -> BTreeSet<&str> {
        self.last_good
            .iter()
            .flat_map(|g| std::iter::once(&g.deployment).chain(&g.vars))
            .map(|e| e.topic.as_str())
            .collect()
    }
}

impl GoodState {
    /// The images the deployment pins (reference -> registry digest); empty when the
    /// journalled envelope cannot be read.
    pub fn pinned_images(&self) -> BTreeMap<String, String> {
        self.deployment
            .envelope
            .unverified_payload()
            .map(|payload| payload.images)
            .unwrap_or_default()
    }
}

/// The last good state of the journal in `dir`, read only: a missing or damaged journal
/// gives `None` and is left where it is (the agent moves a damaged one aside itself).
pub fn last_good(dir: &Path) -> Option<GoodState> {
    let bytes = std::fs::read(dir.join(FILE)).ok()?;
    serde_json::from_slice::<Journal>(&bytes).ok()?.last_good
}

/// Record, in the image store at `store_root`, that an agent keeps its journal in
/// `state_dir` (one small file per state folder, named by its path's hash).
pub fn register(store_root: &Path, state_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let state_dir = std::fs::canonicalize(state_dir)?;
    let bytes = state_dir.as_os_str().as_bytes();
    let path = store_root
        .join(AGENTS_DIR)
        .join(format!("{}.path", crate::fleet::document::sha256_hex(bytes)));
    if std::fs::read(&path).is_ok_and(|kept| kept == bytes) {
        return Ok(());
    }
    write_atomically(&path, bytes)
}

/// The state folders of the agents registered in the image store at `store_root` that
/// still hold a journal, sorted.
pub fn registered(store_root: &Path) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(entries) = std::fs::read_dir(store_root.join(AGENTS_DIR)) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "path"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .map(|bytes| PathBuf::from(std::ffi::OsStr::from_bytes(&bytes)))
        .filter(|dir| dir.join(FILE).is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Temporary file in the same folder, fsync, rename over `path`, fsync the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_round_trips_and_a_damaged_one_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Journal::load(dir.path()).unwrap(), Journal::default());
        let mut journal = Journal::default();
        journal.accepted.insert(
            "shoal/v1/groups/g/desired".into(),
            Accepted {
                revision: 3,
                hash: "ab".into(),
            },
        );
        for i in 0..40 {
            journal.mark_failed(&format!("s{i}"));
        }
        assert_eq!(journal.failed.len(), MAX_FAILED);
        assert!(journal.is_failed("s39") && !journal.is_failed("s0"));
        journal.save(dir.path()).unwrap();
        assert_eq!(Journal::load(dir.path()).unwrap(), journal);
        std::fs::write(dir.path().join(FILE), "{ half").unwrap();
        assert!(matches!(Journal::load(dir.path()), Err(JournalError::Damaged { .. })));
        assert!(dir.path().join("journal.json.damaged").is_file());
        assert_eq!(Journal::load(dir.path()).unwrap(), Journal::default());
    }

    #[test]
    fn a_registered_state_folder_tells_the_store_what_its_last_good_state_pins() {
        use crate::fleet::document::{DocFile, Kind, Payload, SCHEMA};
        let store = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        assert!(registered(store.path()).is_empty());
        register(store.path(), state.path()).unwrap();
        register(store.path(), state.path()).unwrap();
        // No journal yet: nothing to ask.
        assert!(registered(store.path()).is_empty());
        let pinned = BTreeMap::from([("r.example/a:1".to_string(), format!("sha256:{}", "a".repeat(64)))]);
        let payload = Payload {
            kind: Kind::Deployment,
            schema: SCHEMA,
            revision: 4,
            target: "group:line".parse().unwrap(),
            created: crate::fleet::document::now_rfc3339(),
            signer: "test".into(),
            project: None,
            files: vec![DocFile {
                name: "compose.yaml".into(),
                text: "containers: {}\n".into(),
            }],
            images: pinned.clone(),
            health_window: None,
            variables: BTreeMap::new(),
        };
        let key = crate::fleet::keys::generate().unwrap();
        let journal = Journal {
            last_good: Some(GoodState {
                state_id: "group:line@4".into(),
                source: "group:line".into(),
                revision: 4,
                deployment: Entry {
                    topic: "shoal/v1/groups/line/desired".into(),
                    envelope: Envelope::sign(&payload, &key),
                },
                vars: Vec::new(),
            }),
            ..Journal::default()
        };
        journal.save(state.path()).unwrap();
        assert_eq!(registered(store.path()), [state.path().canonicalize().unwrap()]);
        let good = last_good(state.path()).unwrap();
        assert_eq!(good.pinned_images(), pinned);
        // A damaged journal is not moved aside by a reader.
        std::fs::write(state.path().join(FILE), "{ half").unwrap();
        assert!(last_good(state.path()).is_none());
        assert!(state.path().join(FILE).is_file());
    }
}
