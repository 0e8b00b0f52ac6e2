//! Which process serves a project: the one holding `<runtime dir>/<project>.lock`.
//!
//! The socket alone could not decide it. A server that found a socket file nobody answered
//! took it for stale and replaced it, but a file nobody answers is also one that another
//! `up` has bound and not yet listened on; that `up` then served an unlinked socket that
//! no `ls` or `down` could reach. And a racing `up -d` that was still loading its images
//! when the winner was taken down bound the freed path afterwards and ran the stack again.
//! An exclusive `flock` on a lock file beside the socket settles both: it is taken before
//! the stack is loaded, held for as long as the socket is served, and given back by the
//! kernel whenever the process ends (even killed), so it is never stale. Whoever holds it
//! owns the socket path: anything found there is left by a process that died.
//!
//! The lock file stays in the runtime folder: removing it would let a waiting process lock
//! the removed file while a newcomer locks a new one.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{ensure_runtime_dir, is_live, open_private, runtime_dir, socket_path, ControlError};

/// How often a process waiting for another's lock looks again.
const WAIT_POLL: Duration = Duration::from_millis(20);

/// The project's lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct ProjectLock {
    project: String,
    /// Open while held: closing the file gives the lock back.
    _file: File,
}

impl ProjectLock {
    /// Take `project`'s lock now. When another process holds it: `AlreadyRunning` if that
    /// process serves the socket, else `Starting` (it has not opened the socket yet).
    pub fn take(project: &str) -> Result<ProjectLock, ControlError> {
        ensure_runtime_dir()?;
        take_at(project, &lock_path(project), &socket_path(project))
    }

    /// Take `project`'s lock, waiting up to `limit` while another process that holds it is
    /// still starting: `AlreadyRunning` as soon as that process serves the socket; the lock
    /// if that process ends first (it failed, or was taken down).
    pub fn take_waiting(project: &str, limit: Duration) -> Result<ProjectLock, ControlError> {
        ensure_runtime_dir()?;
        take_waiting_at(project, &lock_path(project), &socket_path(project), limit)
    }

    pub fn project(&self) -> &str {
        &self.project
    }
}

/// [`ProjectLock::take`] with the paths given.
fn take_at(project: &str, lock: &Path, socket: &Path) -> Result<ProjectLock, ControlError> {
    let file = open_private(lock, true)?;
    let taken = try_flock(&file).map_err(|source| ControlError::RuntimeFile {
        path: lock.to_path_buf(),
        source,
    })?;
    if taken {
        note_holder(&file);
        return Ok(ProjectLock {
            project: project.to_owned(),
            _file: file,
        });
    }
    if is_live(socket) {
        return Err(ControlError::AlreadyRunning {
            project: project.to_owned(),
            path: socket.to_path_buf(),
        });
    }
    Err(ControlError::Starting {
        project: project.to_owned(),
        holder: holder_of(&file),
        path: lock.to_path_buf(),
    })
}

/// [`ProjectLock::take_waiting`] with the paths given.
fn take_waiting_at(project: &str, lock: &Path, socket: &Path, limit: Duration) -> Result<ProjectLock, ControlError> {
    let began = Instant::now();
    loop {
        match take_at(project, lock, socket) {
            Err(ControlError::Starting { .. }) if began.elapsed() < limit => std::thread::sleep(WAIT_POLL),
            other => return other,
        }
    }
}

/// `<runtime dir>/<project>.lock`.
fn lock_path(project: &str) -> PathBuf {
    runtime_dir().join(format!("{project}.lock"))
}

/// `flock(LOCK_EX | LOCK_NB)`: `true` when taken, `false` when another open file holds it.
fn try_flock(file: &File) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor this process owns and keeps open.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(error),
        }
    }
}

/// Write our pid into the lock file, for the message another process prints. Only a hint:
/// the lock itself is the `flock`, so a failed write changes nothing.
fn note_holder(file: &File) {
    let mut file = file;
    if file.set_len(0).is_ok() {
        let _ = writeln!(file, "{}", std::process::id());
    }
}

/// The pid the holder wrote, if it has yet.
fn holder_of(file: &File) -> Option<u32> {
    let mut buf = [0u8; 16];
    let n = file.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether some open file holds the lock at `path` (takes and gives it back when free).
    fn is_held(path: &Path) -> bool {
        let file = open_private(path, true).expect("open the lock file");
        !try_flock(&file).expect("flock")
    }

    #[test]
    fn one_holder_per_project_given_back_on_drop() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let paths = |name: &str| {
            (
                scratch.path().join(format!("{name}.lock")),
                scratch.path().join(format!("{name}.sock")),
            )
        };
        let (alpha, alpha_socket) = paths("alpha");
        let first = take_at("alpha", &alpha, &alpha_socket).expect("free lock");
        assert_eq!(first.project(), "alpha");
        assert!(is_held(&alpha));
        // A second open file (another `up`, or this one again) is refused, naming the holder.
        match take_at("alpha", &alpha, &alpha_socket) {
            Err(ControlError::Starting { holder, path, .. }) => {
                assert_eq!(holder, Some(std::process::id()));
                assert_eq!(path, alpha);
            }
            other => panic!("expected Starting, got {other:?}"),
        }
        let message = take_at("alpha", &alpha, &alpha_socket).unwrap_err().to_string();
        assert!(message.contains("`alpha`") && message.contains("hint:"), "{message}");
        // Another project is another lock.
        let (beta, beta_socket) = paths("beta");
        let other = take_at("beta", &beta, &beta_socket).expect("beta");
        // A waiter gives up after its limit while the holder has not served...
        let waited = take_waiting_at("alpha", &alpha, &alpha_socket, Duration::from_millis(60));
        assert!(matches!(waited, Err(ControlError::Starting { .. })), "{waited:?}");
        // ...and takes the lock once the holder is gone (the hang guard is not a timing
        // assertion: the holder goes at once).
        let waiter = {
            let (alpha, alpha_socket) = (alpha.clone(), alpha_socket.clone());
            std::thread::spawn(move || take_waiting_at("alpha", &alpha, &alpha_socket, Duration::from_secs(60)))
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(first);
        let second = waiter.join().expect("join").expect("taken after the holder ended");
        drop(second);
        drop(other);
        assert!(!is_held(&alpha));
        // A holder that serves the socket: the answer is `AlreadyRunning`, at once.
        let (gamma, gamma_socket) = paths("gamma");
        let serving = take_at("gamma", &gamma, &gamma_socket).expect("gamma");
        let _listener = std::os::unix::net::UnixListener::bind(&gamma_socket).expect("bind");
        let refused = take_waiting_at("gamma", &gamma, &gamma_socket, Duration::from_secs(60));
        assert!(
            matches!(refused, Err(ControlError::AlreadyRunning { .. })),
            "{refused:?}"
        );
        drop(serving);
    }
}
