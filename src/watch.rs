//! `up --watch`: notice when the compose file, an env file or an image file changes, and
//! say so once per burst of changes.
//!
//! Editors save in many ways: write in place, truncate and write, write a temporary file
//! and rename it over the original, delete and create. Watching the file's inode misses
//! the last two, so the *folders* holding the watched files are watched and events are
//! matched by path. A save produces a burst of events (create, modify, close, rename);
//! they are folded into one trigger once [`DEBOUNCE`] passes without a new one (but no
//! later than [`MAX_DELAY`] after the first, so a file rewritten continuously still
//! reloads).
//!
//! Whether the content really changed is not decided here: a `touch` triggers a reload
//! whose diff compares image digests and finds nothing to do.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

/// Quiet time that ends a burst of file events.
pub const DEBOUNCE: Duration = Duration::from_millis(150);
/// Longest a trigger waits after the first event of a burst.
pub const MAX_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

/// Watches a set of files through their folders.
pub struct FileWatcher {
    watcher: RecommendedWatcher,
    files: std::sync::Arc<std::sync::Mutex<BTreeSet<PathBuf>>>,
    dirs: BTreeSet<PathBuf>,
    raw: mpsc::UnboundedReceiver<PathBuf>,
}

impl FileWatcher {
    pub fn new() -> Result<Self, WatchError> {
        let (tx, raw) = mpsc::unbounded_channel();
        let files: std::sync::Arc<std::sync::Mutex<BTreeSet<PathBuf>>> = Default::default();
        let wanted = files.clone();
        // Runs on notify's own thread; only sends paths that are watched, so the channel
        // holds at most a burst's worth of events between two polls.
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            let wanted = wanted.lock().unwrap_or_else(|e| e.into_inner());
            for path in event.paths {
                if wanted.contains(&path) {
                    let _ = tx.send(path);
                }
            }
        })
        .map_err(|source| WatchError::Watch {
            path: PathBuf::from("."),
            source,
        })?;
        Ok(FileWatcher {
            watcher,
            files,
            dirs: BTreeSet::new(),
            raw,
        })
    }

    /// Watch exactly these files from now on (absolute paths).
    pub fn set_files(&mut self, files: impl IntoIterator<Item = PathBuf>) -> Result<(), WatchError> {
        let files: BTreeSet<PathBuf> = files.into_iter().collect();
        let dirs: BTreeSet<PathBuf> = files.iter().filter_map(|f| f.parent().map(Path::to_path_buf)).collect();
        for dir in dirs.difference(&self.dirs) {
            self.watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|source| WatchError::Watch {
                    path: dir.clone(),
                    source,
                })?;
        }
        for dir in self.dirs.difference(&dirs) {
            let _ = self.watcher.unwatch(dir);
        }
        self.dirs = dirs;
        *self.files.lock().unwrap_or_else(|e| e.into_inner()) = files;
        Ok(())
    }

    /// Wait for the next burst of changes; returns the files that changed, sorted.
    pub async fn changed(&mut self) -> Vec<PathBuf> {
        let Some(first) = self.raw.recv().await else {
            return std::future::pending().await;
        };
        let mut changed = BTreeSet::from([first]);
        let deadline = tokio::time::Instant::now() + MAX_DELAY;
        loop {
            let quiet = tokio::time::Instant::now() + DEBOUNCE;
            match tokio::time::timeout_at(quiet.min(deadline), self.raw.recv()).await {
                Ok(Some(path)) => {
                    changed.insert(path);
                }
                Ok(None) | Err(_) => break,
            }
        }
        changed.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way an editor saves yields exactly one trigger naming the file.
    #[tokio::test]
    async fn each_way_of_saving_triggers_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("shoal.yaml");
        std::fs::write(&file, "a").expect("write");
        let other = dir.path().join("unrelated.txt");
        let mut watcher = FileWatcher::new().expect("watcher");
        watcher.set_files([file.clone()]).expect("watch");
        type Save<'a> = (&'a str, Box<dyn Fn() + 'a>);
        let saves: [Save; 4] = [
            ("in place", Box::new(|| std::fs::write(&file, "b").expect("write"))),
            (
                "temp + rename",
                Box::new(|| {
                    let tmp = dir.path().join(".shoal.yaml.swp");
                    std::fs::write(&tmp, "c").expect("write");
                    std::fs::rename(&tmp, &file).expect("rename");
                }),
            ),
            (
                "delete + create",
                Box::new(|| {
                    std::fs::remove_file(&file).expect("rm");
                    std::fs::write(&file, "d").expect("write");
                }),
            ),
            (
                "truncate + write",
                Box::new(|| {
                    use std::io::Write;
                    let mut f = std::fs::File::create(&file).expect("truncate");
                    f.write_all(b"e").expect("write");
                }),
            ),
        ];
        for (how, save) in saves {
            std::fs::write(&other, how).expect("write unrelated");
            save();
            let changed = tokio::time::timeout(Duration::from_secs(10), watcher.changed())
                .await
                .unwrap_or_else(|_| panic!("no trigger for a save {how}"));
            assert_eq!(changed, std::slice::from_ref(&file), "{how}");
            // Nothing else is pending: the burst was folded into one trigger.
            let again = tokio::time::timeout(DEBOUNCE * 3, watcher.changed()).await;
            assert!(again.is_err(), "a save {how} triggered twice: {again:?}");
        }
    }
}
