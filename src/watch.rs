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

    /// Watch exactly these files from now on (absolute paths). A symlink is watched
    /// through to its target (an edit of the target changes nothing in the link's folder),
    /// as well as in its own folder (the link itself may be replaced). Targets are resolved
    /// again on every call, so a reload follows a link that was moved.
    pub fn set_files(&mut self, files: impl IntoIterator<Item = PathBuf>) -> Result<(), WatchError> {
        let files: BTreeSet<PathBuf> = files.into_iter().flat_map(with_target).collect();
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
        match next_burst(&mut self.raw).await {
            Some(changed) => changed,
            // notify's thread is gone (the watcher was dropped): nothing will ever change.
            None => std::future::pending().await,
        }
    }
}

/// The file, and where it leads when it is a symlink (possibly through several).
fn with_target(file: PathBuf) -> Vec<PathBuf> {
    let is_link = std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink());
    match is_link.then(|| std::fs::canonicalize(&file).ok()).flatten() {
        Some(target) if target != file => vec![file, target],
        _ => vec![file],
    }
}

/// The debounce stage, apart from notify so it can be tested with tokio's paused clock:
/// waits for a first raw event, then folds in every event that follows within [`DEBOUNCE`]
/// of the previous one, for at most [`MAX_DELAY`] after the first. Returns each path once,
/// sorted; `None` when the channel closed before any event came.
pub(crate) async fn next_burst(raw: &mut mpsc::UnboundedReceiver<PathBuf>) -> Option<Vec<PathBuf>> {
    let first = raw.recv().await?;
    let mut changed = BTreeSet::from([first]);
    let deadline = tokio::time::Instant::now() + MAX_DELAY;
    loop {
        let quiet = tokio::time::Instant::now() + DEBOUNCE;
        match tokio::time::timeout_at(quiet.min(deadline), raw.recv()).await {
            Ok(Some(path)) => {
                changed.insert(path);
            }
            // A closed channel ends the burst at once: what came so far is still a change.
            Ok(None) | Err(_) => break,
        }
    }
    Some(changed.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way an editor saves yields exactly one trigger naming the file.
    ///
    /// "Exactly one" without a time window: after each save's trigger the test touches a
    /// second watched file, `marker`. The kernel queues events in order, so any late event
    /// of the save comes before the marker's: the next trigger is `[marker]` alone only if
    /// the save was folded into one trigger.
    #[tokio::test]
    async fn each_way_of_saving_triggers_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("shoal.yaml");
        std::fs::write(&file, "a").expect("write");
        let marker = dir.path().join("marker.env");
        std::fs::write(&marker, "0").expect("write");
        let other = dir.path().join("unrelated.txt");
        let mut watcher = FileWatcher::new().expect("watcher");
        watcher.set_files([file.clone(), marker.clone()]).expect("watch");
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
            std::fs::write(&marker, how).expect("write marker");
            let next = tokio::time::timeout(Duration::from_secs(10), watcher.changed())
                .await
                .unwrap_or_else(|_| panic!("no trigger for the marker after a save {how}"));
            assert_eq!(next, std::slice::from_ref(&marker), "a save {how} triggered twice");
        }
    }

    /// A compose file that is a symlink into another folder: editing the target (where the
    /// link's folder sees nothing) triggers, and so does replacing the link.
    #[tokio::test]
    async fn a_symlinked_file_is_watched_through_to_its_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        std::fs::create_dir(root.join("real")).expect("mkdir");
        std::fs::create_dir(root.join("app")).expect("mkdir");
        let target = root.join("real/stack.yaml");
        std::fs::write(&target, "a").expect("write");
        let link = root.join("app/shoal.yaml");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let mut watcher = FileWatcher::new().expect("watcher");
        watcher.set_files([link.clone()]).expect("watch");
        std::fs::write(&target, "b").expect("edit the target");
        let changed = tokio::time::timeout(Duration::from_secs(10), watcher.changed())
            .await
            .expect("an edit of the link's target triggers");
        assert_eq!(changed, std::slice::from_ref(&target));
        let other = root.join("real/other.yaml");
        std::fs::write(&other, "c").expect("write");
        let tmp = root.join("app/.new-link");
        std::os::unix::fs::symlink(&other, &tmp).expect("symlink");
        std::fs::rename(&tmp, &link).expect("replace the link");
        let changed = tokio::time::timeout(Duration::from_secs(10), watcher.changed())
            .await
            .expect("replacing the link triggers");
        assert!(changed.contains(&link), "{changed:?}");
    }

    /// The debounce stage on tokio's paused clock: `events` are `(delay after the previous
    /// one, path)`, sent by a task; returns each burst with the time (from the start) it
    /// was returned at.
    async fn bursts(events: &[(u64, &str)]) -> Vec<(Duration, Vec<PathBuf>)> {
        let (tx, mut raw) = mpsc::unbounded_channel();
        let events: Vec<(u64, PathBuf)> = events.iter().map(|(ms, p)| (*ms, PathBuf::from(p))).collect();
        let start = tokio::time::Instant::now();
        tokio::spawn(async move {
            for (ms, path) in events {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let _ = tx.send(path);
            }
            // Dropping `tx` closes the channel once everything is sent.
        });
        let mut out = Vec::new();
        while let Some(burst) = next_burst(&mut raw).await {
            out.push((start.elapsed(), burst));
        }
        out
    }

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    /// A save's burst (events closer together than the window) is one batch, returned one
    /// quiet window after its last event, each path once and sorted.
    #[tokio::test(start_paused = true)]
    async fn a_burst_within_the_window_is_one_batch() {
        let got = bursts(&[(0, "/b"), (50, "/a"), (50, "/b"), (40, "/a"), (1000, "/c")]).await;
        assert_eq!(got[0], (Duration::from_millis(140) + DEBOUNCE, paths(&["/a", "/b"])));
        assert_eq!(got.len(), 2, "{got:?}");
    }

    /// An event after a quiet window starts a second batch.
    #[tokio::test(start_paused = true)]
    async fn an_event_after_the_window_is_a_second_batch() {
        let after = DEBOUNCE.as_millis() as u64 + 10;
        let got = bursts(&[(0, "/a"), (after, "/a"), (after, "/b")]).await;
        let batches: Vec<_> = got.iter().map(|(_, b)| b.clone()).collect();
        assert_eq!(batches, [paths(&["/a"]), paths(&["/a"]), paths(&["/b"])]);
        assert_eq!(got[0].0, DEBOUNCE);
        assert_eq!(got[1].0, Duration::from_millis(after) + DEBOUNCE);
    }

    /// A file rewritten without pause still triggers: the batch ends [`MAX_DELAY`] after
    /// its first event, and the rest of the stream makes the next batch.
    #[tokio::test(start_paused = true)]
    async fn a_continuous_stream_is_cut_at_the_max_delay() {
        let step = DEBOUNCE.as_millis() as u64 / 2;
        let count = 3 * MAX_DELAY.as_millis() as u64 / step;
        let events: Vec<(u64, &str)> = (0..count).map(|i| (if i == 0 { 0 } else { step }, "/f")).collect();
        let got = bursts(&events).await;
        assert_eq!(got[0], (MAX_DELAY, paths(&["/f"])));
        // The second batch starts with the first event after the cut.
        let next_event = (MAX_DELAY.as_millis() as u64).div_ceil(step) * step;
        assert_eq!(got[1].0, Duration::from_millis(next_event) + MAX_DELAY, "{got:?}");
        assert!(got.len() >= 3, "{got:?}");
    }

    /// The sender going away ends a burst at once, and ends the stage after it.
    #[tokio::test(start_paused = true)]
    async fn a_closed_channel_ends_the_burst_and_the_stage() {
        let (tx, mut raw) = mpsc::unbounded_channel();
        tx.send(PathBuf::from("/a")).expect("send");
        drop(tx);
        let start = tokio::time::Instant::now();
        assert_eq!(next_burst(&mut raw).await, Some(paths(&["/a"])));
        assert_eq!(start.elapsed(), Duration::ZERO, "no wait for a window that cannot fill");
        assert_eq!(next_burst(&mut raw).await, None);
    }

    /// Stepping the clock by hand: every event restarts the quiet window, and the batch
    /// comes out only once a whole window passes without one.
    #[tokio::test(start_paused = true)]
    async fn each_event_restarts_the_quiet_window() {
        let (tx, mut raw) = mpsc::unbounded_channel();
        let stage = tokio::spawn(async move { next_burst(&mut raw).await });
        let almost = DEBOUNCE - Duration::from_millis(1);
        for name in ["/a", "/b", "/a"] {
            tx.send(PathBuf::from(name)).expect("send");
            tokio::task::yield_now().await;
            tokio::time::advance(almost).await;
            tokio::task::yield_now().await;
            assert!(!stage.is_finished(), "returned before a quiet window after {name}");
        }
        tokio::time::advance(Duration::from_millis(1)).await;
        let burst = stage.await.expect("stage task");
        assert_eq!(burst, Some(paths(&["/a", "/b"])));
    }
}
