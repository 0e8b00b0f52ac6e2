//! The control plane: every `shoal up` (foreground or `-d`) serves its stack on a Unix
//! socket, so `ps`, `logs`, `stop`, `down`... work from any shell without a daemon of
//! their own. The running `up` process *is* the server; nothing else stays resident.
//!
//! # Where the socket lives
//! `$SHOAL_RUNTIME_DIR/<project>.sock` if set, else `$XDG_RUNTIME_DIR/shoal/<project>.sock`
//! (systemd's per-user tmpfs), else `/tmp/shoal-<uid>/<project>.sock`. The folder is
//! created mode 0700 and the socket is chmod 0600: only its owner can talk to it. A
//! detached stack's own output (what `up` would print) goes to `<project>.log` beside it.
//!
//! # Stale sockets
//! A socket file left by a process that was killed is detected (connecting to it is
//! refused) and replaced by the next `up`. A socket that answers belongs to a running
//! stack: a second `up` does not start another copy.

pub mod client;
pub mod cmd;
mod project;
pub mod protocol;
pub mod server;

use std::path::{Path, PathBuf};

pub use client::Client;
pub use cmd::down::DownReport;
pub use cmd::info::Info;
pub use cmd::lifecycle::VerbResult;
pub use cmd::reload::ReloadReport;
pub use cmd::stats::Stats;
pub use cmd::topics::TopicMessage;
pub use project::{parse_name, project_of_file, OutputFormat, ProjectArgs};
pub use protocol::{Envelope, Reply, Request, VERSION};
pub use server::{Server, ServerContext};

/// The control plane's one error type: finding, binding and talking to a stack's socket,
/// and the stack's own refusals (`Refused` carries its text as the client prints it).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot create the runtime folder {path}: {source}")]
    RuntimeDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("project `{project}` is already running (socket {path})")]
    AlreadyRunning { project: String, path: PathBuf },
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The kernel limits a Unix socket's path (`sun_path`); names are kept short enough for
    /// the usual runtime folders, so only a long `SHOAL_RUNTIME_DIR` gets here.
    #[error("the control socket path {path} is {len} bytes; the kernel allows at most {max}\n  hint: set SHOAL_RUNTIME_DIR to a shorter folder", len = path.as_os_str().len(), max = MAX_SOCKET_PATH)]
    SocketPathTooLong { path: PathBuf },
    #[error("project `{project}` is not running (no live socket at {path})")]
    NotRunning { project: String, path: PathBuf },
    #[error("cannot talk to {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the stack answered something this shoal cannot read: {0}")]
    Protocol(String),
    #[error("{0}")]
    Refused(String),
    /// Printing a reply as JSON (`--format json`) failed.
    #[error("cannot write the reply as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The folder holding every project's socket and detached log.
pub fn runtime_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SHOAL_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("shoal");
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("shoal-{uid}"))
}

/// Create [`runtime_dir`] owner-only.
pub fn ensure_runtime_dir() -> Result<PathBuf, ControlError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = runtime_dir();
    let error = |source| ControlError::RuntimeDir {
        path: dir.clone(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(error)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(error)?;
    Ok(dir)
}

/// Longest socket path the kernel binds: `sun_path` is 108 bytes with its closing NUL.
pub const MAX_SOCKET_PATH: usize = 107;

/// Refuses a socket path the kernel would not bind, with a message saying what to change
/// (instead of the kernel's bare "path must be shorter than SUN_LEN").
pub fn check_socket_path(path: &Path) -> Result<(), ControlError> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(ControlError::SocketPathTooLong {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

pub fn socket_path(project: &str) -> PathBuf {
    runtime_dir().join(format!("{project}.sock"))
}

/// Where a detached stack's own output goes.
pub fn log_path(project: &str) -> PathBuf {
    runtime_dir().join(format!("{project}.log"))
}

/// Whether something answers on `path` (false for a missing or stale socket).
pub fn is_live(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// Projects with a live socket, sorted.
pub fn running_projects() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(runtime_dir()) else {
        return Vec::new();
    };
    let mut projects: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            let name = path.file_name()?.to_str()?.strip_suffix(".sock")?.to_owned();
            is_live(&path).then_some(name)
        })
        .collect();
    projects.sort();
    projects
}

/// Tell systemd (`Type=notify`) that the stack is up, when started by it.
pub fn notify_systemd_ready() {
    crate::systemd::notify(&format!("READY=1\nMAINPID={}", std::process::id()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_past_the_kernel_limit_are_refused_with_a_fix() {
        let longest_name = "a".repeat(crate::spec::MAX_NAME_LEN);
        let usual = PathBuf::from(format!("/run/user/1000/shoal/{longest_name}.sock"));
        assert!(check_socket_path(&usual).is_ok());
        let deep = PathBuf::from(format!("/{}/{longest_name}.sock", "d".repeat(60)));
        let message = check_socket_path(&deep).unwrap_err().to_string();
        assert!(
            message.contains("at most 107") && message.contains("SHOAL_RUNTIME_DIR"),
            "{message}"
        );
    }
}
