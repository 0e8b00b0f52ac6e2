//! Serving the control socket: one task per connection. Read-only requests are answered
//! from shared state (the status board, the log book, the event bus, the broker) so `ps`
//! answers even while the controller is busy stopping a container; requests that change
//! the stack are queued to the controller and run one at a time.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::cmd::{self, info::Info};
use super::protocol::{Envelope, Reply, Request, MAX_REQUEST, VERSION};
use super::{ensure_runtime_dir, is_live, socket_path, ControlError, ProjectLock};
use crate::broker::Broker;
use crate::logs::LogBook;
use crate::supervisor::{Board, EventBus};

/// A request for the controller and where its one reply goes.
pub type Command = (Request, oneshot::Sender<Reply>);

/// Commands waiting for the controller. Small: a client waits for its own reply anyway.
pub const COMMAND_QUEUE: usize = 16;

/// What connections read from.
#[derive(Clone)]
pub struct ServerContext {
    pub info: Info,
    pub board: Board,
    pub events: EventBus,
    pub book: Arc<LogBook>,
    pub broker: Broker,
    pub bridges: crate::bridge::BridgeMonitor,
    /// The stack's GPIO lines, for `shoal gpio` and `ps`.
    pub gpio: crate::gpio::GpioLines,
    pub commands: mpsc::Sender<Command>,
}

/// The bound socket; removed again when dropped, and then the project's lock given back.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of our socket file, so that dropping never removes a successor's.
    identity: Option<(u64, u64)>,
    /// Held for as long as the socket is served; dropped after the socket file is removed
    /// (fields drop after [`Drop::drop`]), so a successor never finds ours.
    _lock: ProjectLock,
}

impl Server {
    /// Bind `<runtime dir>/<project>.sock` for the holder of the project's `lock`,
    /// replacing a stale one. Must run inside tokio.
    pub fn bind(lock: ProjectLock) -> Result<(Server, Option<String>), ControlError> {
        ensure_runtime_dir()?;
        let project = lock.project();
        let path = socket_path(project);
        super::check_socket_path(&path)?;
        let mut note = None;
        if path.exists() {
            // Only a shoal without the lock (an older version) could serve it now.
            if is_live(&path) {
                return Err(ControlError::AlreadyRunning {
                    project: project.to_owned(),
                    path,
                });
            }
            // Nobody answers, and we hold the lock: left by a process that was killed.
            let _ = std::fs::remove_file(&path);
            note = Some(format!("replaced a stale control socket at {}", path.display()));
        }
        let listener = UnixListener::bind(&path).map_err(|source| ControlError::Bind {
            path: path.clone(),
            source,
        })?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
            ControlError::Bind {
                path: path.clone(),
                source,
            }
        })?;
        let identity = file_identity(&path);
        Ok((
            Server {
                listener,
                path,
                identity,
                _lock: lock,
            },
            note,
        ))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Accept connections until `shutdown`; then end the streams (`logs -f`, `events`,
    /// `topics tail`) and give the other connections a moment to write their reply (the
    /// reply to `down` is written after the stack is gone).
    pub async fn serve(&self, context: ServerContext, shutdown: CancellationToken) {
        let mut connections = tokio::task::JoinSet::new();
        let mut backoff = AcceptBackoff::default();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            match accepted {
                Ok((stream, _)) => {
                    backoff.delay = None;
                    connections.spawn(handle(stream, context.clone(), shutdown.clone()));
                }
                Err(error) => backoff.failed(&error).await,
            }
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while connections.join_next().await.is_some() {}
        })
        .await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.identity.is_some() && file_identity(&self.path) == self.identity {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// One client's connection, as the commands write to it.
pub(super) struct Connection {
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl Connection {
    /// Write one reply line; `false` once the client has gone.
    pub(super) async fn send(&mut self, reply: &Reply) -> bool {
        let Ok(mut line) = serde_json::to_vec(reply) else {
            return false;
        };
        line.push(b'\n');
        self.writer.write_all(&line).await.is_ok()
    }

    /// Write `value` as the one `ok` reply.
    pub(super) async fn send_ok<T: serde::Serialize>(&mut self, value: &T) -> bool {
        self.send(&Reply::ok(value)).await
    }
}

/// Why a request line was refused before any command saw it.
#[derive(Debug, thiserror::Error)]
enum BadRequest {
    #[error(
        "protocol version {found} is not spoken here (this stack speaks {VERSION}); use the same shoal version for `up` and the other commands"
    )]
    Version { found: String },
    #[error("bad request: {0}")]
    Json(#[from] serde_json::Error),
}

/// The request in one line. The version is checked before the command is decoded, so a
/// client of another version hears about the version, not about a field it misnamed.
fn parse_request(line: &[u8]) -> Result<Request, BadRequest> {
    let value = serde_json::from_slice::<serde_json::Value>(line)?;
    let version = value.get("v").and_then(|v| v.as_u64());
    if version != Some(u64::from(VERSION)) {
        let found = version.map_or("missing".to_string(), |v| v.to_string());
        return Err(BadRequest::Version { found });
    }
    Ok(serde_json::from_value::<Envelope>(value)?.request)
}

async fn handle(stream: UnixStream, context: ServerContext, shutdown: CancellationToken) {
    let (reader, writer) = stream.into_split();
    let mut conn = Connection { writer };
    let mut line = Vec::new();
    let mut reader = BufReader::new(reader).take(MAX_REQUEST as u64 + 1);
    if reader.read_until(b'\n', &mut line).await.is_err() || line.len() > MAX_REQUEST {
        conn.send(&Reply::Error("request line missing or too long".into()))
            .await;
        return;
    }
    let request = match parse_request(&line) {
        Ok(request) => request,
        Err(e) => {
            conn.send(&Reply::Error(e.to_string())).await;
            return;
        }
    };
    // A client that hangs up (Ctrl-C on `logs -f`) ends its stream at once. An end of
    // input alone is not a hang-up: `socat` and `nc -N` shut their writing side after the
    // request and still read the reply.
    let reader = reader.into_inner();
    let hangup = hung_up(reader);
    let streaming = request.is_stream();
    tokio::select! {
        _ = hangup => {}
        _ = shutdown.cancelled(), if streaming => {}
        _ = cmd::serve(request, &mut conn, &context) => {}
    }
}

/// Resolves once the client has gone: a read error (reset), or, after the end of its
/// input, the peer's full close. A Unix socket reports `POLLHUP` only when the peer closed
/// both directions; after a half-close (`shutdown(SHUT_WR)`) it reports just `POLLRDHUP`,
/// so a client still waiting for its reply is never taken for gone. Writes find a vanished
/// client too (EPIPE); this check only ends idle streams early.
async fn hung_up(mut reader: BufReader<tokio::net::unix::OwnedReadHalf>) {
    let mut buf = [0u8; 64];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(_) => continue,
            Err(_) => return,
        }
    }
    let fd = {
        use std::os::fd::AsRawFd;
        let half: &tokio::net::unix::OwnedReadHalf = reader.get_ref();
        let stream: &UnixStream = half.as_ref();
        stream.as_raw_fd()
    };
    loop {
        if peer_closed(fd) {
            return;
        }
        tokio::time::sleep(HANGUP_POLL).await;
    }
}

/// How often a half-closed connection is checked for its peer's full close.
const HANGUP_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Whether the peer of the connected Unix socket `fd` closed both directions (or the socket
/// is in error). Never blocks: a poll with timeout 0.
fn peer_closed(fd: std::os::fd::RawFd) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, timeout 0; `fd` is owned by the caller's live stream.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

/// Pacing for a failing `accept`. Out of descriptors (EMFILE/ENFILE) the pending connection
/// stays queued and `accept` fails again at once: retrying without a pause spun the server
/// at 100% CPU. It waits a little (doubling up to a second) and logs once per episode.
#[derive(Default)]
struct AcceptBackoff {
    delay: Option<std::time::Duration>,
}

impl AcceptBackoff {
    async fn failed(&mut self, error: &std::io::Error) {
        let delay = match self.delay {
            None => {
                eprintln!("warning: the control socket cannot accept a connection ({error}); retrying");
                std::time::Duration::from_millis(10)
            }
            Some(d) => (d * 2).min(std::time::Duration::from_secs(1)),
        };
        self.delay = Some(delay);
        tokio::time::sleep(delay).await;
    }
}

/// Forward a broadcast stream until the client hangs up or the sender goes away; a
/// reader that lagged is told how many items it missed.
pub(super) async fn forward<T: Clone>(
    mut live: broadcast::Receiver<T>,
    conn: &mut Connection,
    mut to_reply: impl FnMut(T) -> Option<Reply>,
) {
    loop {
        let reply = match live.recv().await {
            Ok(item) => match to_reply(item) {
                Some(reply) => reply,
                None => continue,
            },
            Err(broadcast::error::RecvError::Lagged(missed)) => Reply::Missed(missed),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !conn.send(&reply).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_checked_before_the_command() {
        assert_eq!(parse_request(br#"{"v":1,"cmd":"ps"}"#).expect("ps"), Request::Ps);
        let other = parse_request(br#"{"v":2,"cmd":"nonsense"}"#).expect_err("v2");
        assert!(
            other.to_string().starts_with("protocol version 2 is not spoken here"),
            "{other}"
        );
        let missing = parse_request(br#"{"cmd":"ps"}"#).expect_err("no v");
        assert!(missing.to_string().starts_with("protocol version missing"), "{missing}");
        let bad = parse_request(br#"{"v":1,"cmd":"nonsense"}"#).expect_err("unknown");
        assert!(bad.to_string().starts_with("bad request: "), "{bad}");
        assert!(parse_request(b"not json").is_err());
    }
}
