//! The control plane: every `shoal up` (foreground or `-d`) serves its stack on a Unix
//! socket, so `ps`, `logs`, `stop`, `down`... work from any shell without a daemon of
//! their own. The running `up` process *is* the server; nothing else stays resident.
//!
//! # Where the socket lives
//! `$SHOAL_RUNTIME_DIR/<project>.sock` if set, else `$XDG_RUNTIME_DIR/shoal/<project>.sock`
//! (systemd's per-user tmpfs), else `/tmp/shoal-<uid>/<project>.sock`. A folder shoal
//! creates is made mode 0700; one that exists is checked, never chmod-ed (see
//! [`check_runtime_dir`]). The socket is chmod 0600: only its owner can talk to it. A
//! detached stack's own output (what `up` would print) goes to `<project>.log` beside it.
//!
//! # Stale sockets
//! A socket file left by a process that was killed is replaced by the next `up`: that one
//! holds the project's lock (below), so nothing else can be serving the path. A socket
//! that answers belongs to a running stack: a second `up` does not start another copy.
//!
//! # Who serves a project
//! The process holding `<project>.lock` beside the socket (an exclusive `flock`, see
//! [`ProjectLock`]); it takes the lock before loading the stack and keeps it until its
//! socket is gone, so two racing `up` never both serve, and none serves unseen.

pub mod client;
pub mod cmd;
mod lock;
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
pub use lock::ProjectLock;
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
    /// The runtime folder could be controlled by someone else: shoal keeps nothing there.
    #[error("refusing the runtime folder {path}: {why}\n  hint: remove it (shoal creates it again, owner-only) or set SHOAL_RUNTIME_DIR to a folder only you can write")]
    UnsafeRuntimeDir { path: PathBuf, why: String },
    /// A file in the runtime folder that shoal did not make (a planted symlink or link).
    #[error("refusing {path}: {why}\n  hint: remove it; shoal creates its own")]
    UnsafeRuntimeFile { path: PathBuf, why: String },
    #[error("cannot open {path}: {source}")]
    RuntimeFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("project `{project}` is already running (socket {path})")]
    AlreadyRunning { project: String, path: PathBuf },
    /// Another process holds the project's lock ([`ProjectLock`]) and has not opened its
    /// socket yet: it is loading the stack, or hangs doing so.
    #[error("project `{project}` is being started by another shoal process{} that has not opened its control socket yet (lock {path})\n  hint: `shoal ls` lists it once it serves; if it never does, stop that process", holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default())]
    Starting {
        project: String,
        holder: Option<u32>,
        path: PathBuf,
    },
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

/// Make sure [`runtime_dir`] exists and is safe to keep sockets and logs in; see
/// [`check_runtime_dir`] for the rule. A folder shoal creates is made mode 0700 (its
/// missing parents too); a folder that exists is never chmod-ed: it may be someone else's
/// (`/tmp`, or a trap another user laid).
pub fn ensure_runtime_dir() -> Result<PathBuf, ControlError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = runtime_dir();
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(source) => {
            return Err(ControlError::RuntimeDir {
                path: dir.clone(),
                source,
            })
        }
    }
    check_runtime_dir(&dir)?;
    Ok(dir)
}

/// The rule for the runtime folder. Its files are the stack's control socket and its log,
/// so whoever can replace them can take over the stack or redirect its output:
/// - it must be a real folder, not a symlink (a link can be swapped for another target);
/// - it must belong to the current user, or to root with the sticky bit set (a shared
///   folder such as `/tmp`, where nobody can remove or rename another user's files);
/// - if group or others may write in it, it must be sticky (otherwise anyone with that
///   right could replace the socket or the log).
///
/// Files inside are then opened with `O_NOFOLLOW` and checked for their owner (see
/// [`open_private_file`]), which covers what another user may have pre-created in a shared
/// sticky folder.
pub fn check_runtime_dir(dir: &Path) -> Result<(), ControlError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).map_err(|source| ControlError::RuntimeDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let unsafe_dir = |why: String| ControlError::UnsafeRuntimeDir {
        path: dir.to_path_buf(),
        why,
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir("it is a symlink".into()));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir("it is not a folder".into()));
    }
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let mode = meta.mode();
    let sticky = mode & 0o1000 != 0;
    if meta.uid() != me && !(meta.uid() == 0 && sticky) {
        return Err(unsafe_dir(format!(
            "it belongs to uid {}, not to you (uid {me})",
            meta.uid()
        )));
    }
    if mode & 0o022 != 0 && !sticky {
        return Err(unsafe_dir(format!(
            "others may write in it (mode {:o}) and it is not sticky",
            mode & 0o7777
        )));
    }
    Ok(())
}

/// Open (creating it if missing) a file in the runtime folder for appending, owner-only.
/// `O_NOFOLLOW` refuses a symlink planted in its place; a file that exists must be a
/// regular file of ours with one link (not a hard link to someone's file).
pub fn open_private_file(path: &Path) -> Result<std::fs::File, ControlError> {
    open_private(path, false)
}

/// [`open_private_file`], readable too when `read` (the project lock file is read back
/// for its holder's pid).
fn open_private(path: &Path, read: bool) -> Result<std::fs::File, ControlError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .read(read)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => ControlError::UnsafeRuntimeFile {
                path: path.to_path_buf(),
                why: "it is a symlink".into(),
            },
            // A FIFO without a reader refuses a non-blocking open for writing.
            Some(libc::ENXIO) => ControlError::UnsafeRuntimeFile {
                path: path.to_path_buf(),
                why: "it is a FIFO".into(),
            },
            _ => ControlError::RuntimeFile {
                path: path.to_path_buf(),
                source,
            },
        })?;
    let meta = file.metadata().map_err(|source| ControlError::RuntimeFile {
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let why = if !meta.is_file() {
        Some("it is not a regular file".to_string())
    } else if meta.uid() != me {
        Some(format!("it belongs to uid {}, not to you (uid {me})", meta.uid()))
    } else if meta.nlink() != 1 {
        Some(format!("it has {} hard links", meta.nlink()))
    } else {
        None
    };
    if let Some(why) = why {
        return Err(ControlError::UnsafeRuntimeFile {
            path: path.to_path_buf(),
            why,
        });
    }
    // Appends must block as usual once the file is known to be a regular one.
    set_blocking(&file);
    Ok(file)
}

/// Clear `O_NONBLOCK` (set while opening so a FIFO planted in place of a file cannot hang
/// the open).
fn set_blocking(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; failure leaves the flags as they were.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
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
    fn the_runtime_folder_rule() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = tempfile::tempdir().expect("tempdir");
        let dir = |name: &str, mode: u32| {
            let path = scratch.path().join(name);
            std::fs::create_dir(&path).expect("mkdir");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            path
        };
        assert!(check_runtime_dir(&dir("private", 0o700)).is_ok());
        assert!(check_runtime_dir(&dir("shared", 0o1777)).is_ok());
        let open = check_runtime_dir(&dir("open", 0o777)).unwrap_err().to_string();
        assert!(open.contains("not sticky") && open.contains("hint:"), "{open}");
        let link = scratch.path().join("link");
        std::os::unix::fs::symlink(scratch.path().join("private"), &link).expect("symlink");
        let linked = check_runtime_dir(&link).unwrap_err().to_string();
        assert!(linked.contains("it is a symlink"), "{linked}");
        // The mode of what was checked is left as it was.
        let mode = std::fs::metadata(scratch.path().join("open")).expect("stat");
        assert_eq!(mode.permissions().mode() & 0o7777, 0o777);
    }

    #[test]
    fn files_in_the_runtime_folder_are_never_reached_through_links() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let victim = scratch.path().join("victim");
        std::fs::write(&victim, "precious").expect("write");
        let planted = scratch.path().join("p.log");
        std::os::unix::fs::symlink(&victim, &planted).expect("symlink");
        let refused = open_private_file(&planted).unwrap_err().to_string();
        assert!(refused.contains("it is a symlink"), "{refused}");
        let hard = scratch.path().join("h.log");
        std::fs::hard_link(&victim, &hard).expect("link");
        let refused = open_private_file(&hard).unwrap_err().to_string();
        assert!(refused.contains("2 hard links"), "{refused}");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "precious");
        let fifo = scratch.path().join("f.log");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let refused = open_private_file(&fifo).unwrap_err().to_string();
        assert!(refused.contains("FIFO"), "{refused}");
        use std::io::Write;
        let mut fresh = open_private_file(&scratch.path().join("new.log")).expect("create");
        fresh.write_all(b"line\n").expect("append");
    }

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
