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
}
