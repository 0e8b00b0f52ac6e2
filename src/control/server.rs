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

use super::protocol::{Envelope, Info, Reply, Request, TopicMessage, MAX_REQUEST, VERSION};
use super::{ensure_runtime_dir, is_live, socket_path, ControlError};
use crate::broker::Broker;
use crate::logs::{LogBook, LogLine};
use crate::supervisor::{Board, EventBus};

/// A request for the controller and where its one reply goes.
pub type Command = (Request, oneshot::Sender<Reply>);

/// Commands waiting for the controller. Small: a client waits for its own reply anyway.
pub const COMMAND_QUEUE: usize = 16;
/// Messages a `topics tail` may have queued before the oldest are dropped.
const TAIL_QUEUE: usize = 1024;

/// What connections read from.
#[derive(Clone)]
pub struct ServerContext {
    pub info: Info,
    pub board: Board,
    pub events: EventBus,
    pub book: Arc<LogBook>,
    pub broker: Broker,
    pub bridges: crate::bridge::BridgeMonitor,
    pub commands: mpsc::Sender<Command>,
}

/// The bound socket; removed again when dropped.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of our socket file, so that dropping never removes a successor's.
    identity: Option<(u64, u64)>,
}

impl Server {
    /// Bind `<runtime dir>/<project>.sock`, replacing a stale one. Must run inside tokio.
    pub fn bind(project: &str) -> Result<(Server, Option<String>), ControlError> {
        ensure_runtime_dir()?;
        let path = socket_path(project);
        let mut note = None;
        if path.exists() {
            if is_live(&path) {
                return Err(ControlError::AlreadyRunning {
                    project: project.to_owned(),
                    path,
                });
            }
            // Nobody answers: left by a process that was killed.
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
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            if let Ok((stream, _)) = accepted {
                connections.spawn(handle(stream, context.clone(), shutdown.clone()));
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

struct Connection {
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl Connection {
    /// Write one reply line; `false` once the client has gone.
    async fn send(&mut self, reply: &Reply) -> bool {
        let Ok(mut line) = serde_json::to_vec(reply) else {
            return false;
        };
        line.push(b'\n');
        self.writer.write_all(&line).await.is_ok()
    }
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
    let request = match serde_json::from_slice::<serde_json::Value>(&line) {
        Ok(value) => {
            let version = value.get("v").and_then(|v| v.as_u64());
            if version != Some(u64::from(VERSION)) {
                let text = format!(
                    "protocol version {} is not spoken here (this stack speaks {VERSION}); use the same shoal version for `up` and the other commands",
                    version.map_or("missing".to_string(), |v| v.to_string())
                );
                conn.send(&Reply::Error(text)).await;
                return;
            }
            match serde_json::from_value::<Envelope>(value) {
                Ok(envelope) => envelope.request,
                Err(e) => {
                    conn.send(&Reply::Error(format!("bad request: {e}"))).await;
                    return;
                }
            }
        }
        Err(e) => {
            conn.send(&Reply::Error(format!("bad request: {e}"))).await;
            return;
        }
    };
    // A client that hangs up (Ctrl-C on `logs -f`) ends its stream at once.
    let mut reader = reader.into_inner();
    let hangup = async move {
        let mut buf = [0u8; 64];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let streaming = matches!(
        request,
        Request::Logs { follow: true, .. } | Request::Events { follow: true } | Request::TopicsTail { .. }
    );
    tokio::select! {
        _ = hangup => {}
        _ = shutdown.cancelled(), if streaming => {}
        _ = serve_request(request, &mut conn, &context) => {}
    }
}

async fn serve_request(request: Request, conn: &mut Connection, context: &ServerContext) {
    match request {
        Request::Info => {
            let info = Info {
                containers: context.board.infos().len(),
                ..context.info.clone()
            };
            conn.send(&ok(&info)).await;
        }
        Request::Ps => {
            conn.send(&ok(&context.board.infos())).await;
        }
        Request::Stats => {
            let stats = serde_json::json!({
                "rss_kib": crate::procstat::rss_kib().unwrap_or(0),
                "peak_rss_kib": crate::procstat::peak_rss_kib().unwrap_or(0),
                "cpu_seconds": crate::procstat::cpu_time().as_secs_f64(),
                "broker": broker_stats(&context.broker),
                "bridges": context.bridges.stats(),
                "containers": context.board.infos(),
            });
            conn.send(&Reply::Ok(stats)).await;
        }
        Request::Logs {
            follow,
            tail,
            since,
            names,
        } => {
            let (lines, live) = context.book.snapshot();
            let wanted = |line: &LogLine| {
                (names.is_empty() || names.contains(&line.container)) && since.is_none_or(|t| line.time >= t)
            };
            let mut selected: Vec<LogLine> = lines.into_iter().filter(|l| wanted(l)).collect();
            if let Some(tail) = tail {
                selected = last_per_container(selected, tail);
            }
            for line in selected {
                if !conn.send(&Reply::Log(line)).await {
                    return;
                }
            }
            if follow {
                stream(live, conn, |line: LogLine| wanted(&line).then_some(Reply::Log(line))).await;
            }
        }
        Request::Events { follow } => {
            let (history, live) = context.events.subscribe();
            for event in history {
                if !conn.send(&Reply::Event(event)).await {
                    return;
                }
            }
            if follow {
                stream(live, conn, |event| Some(Reply::Event(event))).await;
            }
        }
        Request::TopicsTail { prefix } => {
            let mailbox = context.broker.mailbox(TAIL_QUEUE);
            mailbox.subscribe(&prefix);
            let notify = mailbox.notify();
            let mut reported_drops = 0;
            loop {
                while let Some(message) = mailbox.try_recv() {
                    let text = String::from_utf8(message.payload.clone()).ok();
                    let reply = Reply::Message(TopicMessage {
                        time: crate::supervisor::Event::new(None, "", "").time,
                        topic: message.topic.clone(),
                        content_type: message.content_type.clone(),
                        hex: text.is_none().then(|| hex::encode(&message.payload)),
                        text,
                        bytes: message.payload.len(),
                    });
                    if !conn.send(&reply).await {
                        return;
                    }
                }
                if mailbox.dropped() > reported_drops {
                    let missed = mailbox.dropped() - reported_drops;
                    reported_drops = mailbox.dropped();
                    if !conn.send(&Reply::Missed(missed)).await {
                        return;
                    }
                }
                notify.notified().await;
            }
        }
        request => {
            debug_assert!(request.is_mutation());
            let (tx, rx) = oneshot::channel();
            if context.commands.send((request, tx)).await.is_err() {
                conn.send(&Reply::Error("the stack is shutting down".into())).await;
                return;
            }
            let reply = rx
                .await
                .unwrap_or_else(|_| Reply::Error("the stack is shutting down".into()));
            conn.send(&reply).await;
        }
    }
}

fn ok<T: serde::Serialize>(value: &T) -> Reply {
    match serde_json::to_value(value) {
        Ok(value) => Reply::Ok(value),
        Err(e) => Reply::Error(format!("cannot encode the reply: {e}")),
    }
}

fn broker_stats(broker: &Broker) -> serde_json::Value {
    let stats = broker.stats();
    serde_json::json!({
        "mailboxes": stats.mailboxes,
        "subscriptions": stats.subscriptions,
        "published": stats.published,
        "delivered": stats.delivered,
        "dropped": stats.dropped,
    })
}

/// The last `n` lines of each container, keeping time order.
fn last_per_container(lines: Vec<LogLine>, n: usize) -> Vec<LogLine> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut keep: Vec<LogLine> = lines
        .into_iter()
        .rev()
        .filter(|line| {
            let count = seen.entry(line.container.clone()).or_default();
            *count += 1;
            *count <= n
        })
        .collect();
    keep.reverse();
    keep
}

/// Forward a broadcast stream until the client hangs up or the sender goes away.
async fn stream<T: Clone>(
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

    fn line(container: &str, text: &str) -> LogLine {
        LogLine {
            time: 0.0,
            container: container.into(),
            stream: "stdout".into(),
            text: text.into(),
        }
    }

    #[test]
    fn tail_is_per_container() {
        let lines = vec![line("a", "1"), line("b", "x"), line("a", "2"), line("a", "3")];
        let texts: Vec<_> = last_per_container(lines, 2).into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["x", "2", "3"]);
    }
}
