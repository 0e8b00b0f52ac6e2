//! The detached stack's log file (`<project>.log`), rotated by size while the stack runs:
//! when it passes its cap it becomes `<project>.log.1` (the older ones move up, the oldest
//! beyond `keep` is deleted) and a fresh file takes its place. The process's stdout and
//! stderr are that file (so panics and messages of any part land there too); rotating
//! re-points both descriptors at the new file with `dup2`.

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Default size of one log file (`up --log-size`).
pub const DEFAULT_MAX_BYTES: u64 = 10 << 20;
/// Default number of rotated files kept beside the current one (`up --log-files`).
pub const DEFAULT_KEEP: usize = 3;

/// The log file's cap is checked after this much was written since the last check (or
/// the cap's sixteenth, when smaller), so a file exceeds its cap by at most that.
const CHECK_EVERY: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("cannot rotate the log file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `path.N`.
fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Move `path` to `path.1`, `path.1` to `path.2`, ... dropping what would become
/// `path.{keep+1}`. With `keep` 0 the file is deleted. Names are renamed, never followed.
pub fn shift(path: &Path, keep: usize) -> Result<(), RotateError> {
    let io = |source| RotateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let ignore_missing = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
        _ => Ok(()),
    };
    if keep == 0 {
        return ignore_missing(std::fs::remove_file(path));
    }
    ignore_missing(std::fs::remove_file(numbered(path, keep)))?;
    for n in (1..keep).rev() {
        ignore_missing(std::fs::rename(numbered(path, n), numbered(path, n + 1)))?;
    }
    ignore_missing(std::fs::rename(path, numbered(path, 1)))
}

/// Rotates the file behind this process's stdout and stderr by size.
#[derive(Debug)]
pub struct RotatingLog {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    since_check: u64,
}

impl RotatingLog {
    /// `path` is the file stdout and stderr already write to.
    pub fn new(path: PathBuf, max_bytes: u64, keep: usize) -> Self {
        RotatingLog {
            path,
            max_bytes: max_bytes.max(1),
            keep,
            since_check: 0,
        }
    }

    /// `bytes` were written to stdout; rotate when the file passed its cap. An error is
    /// returned once per failed attempt (the caller reports it); writing goes on into the
    /// current file.
    pub fn wrote(&mut self, bytes: usize) -> Result<(), RotateError> {
        self.since_check += bytes as u64;
        if self.since_check < CHECK_EVERY.min(self.max_bytes / 16).max(1) {
            return Ok(());
        }
        self.since_check = 0;
        // SAFETY: fstat on our own stdout; `stat` is plain data written by the kernel.
        let size = unsafe {
            let mut stat: libc::stat = std::mem::zeroed();
            if libc::fstat(1, &mut stat) != 0 {
                return Ok(());
            }
            stat.st_size as u64
        };
        if size < self.max_bytes {
            return Ok(());
        }
        self.rotate()
    }

    fn rotate(&mut self) -> Result<(), RotateError> {
        let io = |source| RotateError::Io {
            path: self.path.clone(),
            source,
        };
        shift(&self.path, self.keep)?;
        let fresh = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)
            .map_err(io)?;
        for fd in [1, 2] {
            // SAFETY: dup2 onto our own stdout/stderr; `fresh` stays open until the end of
            // this function and the duplicates live on.
            if unsafe { libc::dup2(fresh.as_raw_fd(), fd) } < 0 {
                return Err(io(std::io::Error::last_os_error()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_keeps_the_newest_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        for round in 0..5 {
            std::fs::write(&log, format!("{round}")).expect("write");
            shift(&log, 2).expect("shift");
        }
        assert!(!log.exists());
        assert_eq!(std::fs::read_to_string(numbered(&log, 1)).expect(".1"), "4");
        assert_eq!(std::fs::read_to_string(numbered(&log, 2)).expect(".2"), "3");
        assert!(!numbered(&log, 3).exists(), "only `keep` files stay");
    }

    #[test]
    fn shift_renames_a_symlink_and_never_writes_through_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").expect("write");
        let log = dir.path().join("app.log");
        std::os::unix::fs::symlink(&victim, &log).expect("symlink");
        shift(&log, 1).expect("shift");
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious");
    }
}
