//! The control commands, one file each (mini-redis's layout): a command's request payload,
//! its reply type, how the running stack answers it and how the client prints the answer
//! live together, so a new verb is one new file here, one [`Request`] variant with its
//! arm in [`serve`], and its clap arguments in the CLI.
//!
//! Read-only commands are answered by the connection's task from shared state; those that
//! change the stack ([`Request::is_mutation`]) are queued to the controller, which hands
//! them to [`lifecycle::apply`] or its own reload.

pub mod down;
pub mod events;
pub mod gpio;
pub mod info;
pub mod lifecycle;
pub mod logs;
pub mod print;
pub mod ps;
pub mod reload;
pub mod stats;
pub mod topics;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::protocol::Reply;
use super::server::{Connection, ServerContext};

/// Every command a client can send, tagged by `cmd` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Project name, compose file, pid, version.
    Info,
    Ps,
    Stats,
    Logs(logs::LogsRequest),
    Events(events::EventsRequest),
    Stop {
        names: Vec<String>,
    },
    Start {
        names: Vec<String>,
    },
    Restart {
        names: Vec<String>,
    },
    Kill {
        names: Vec<String>,
    },
    Pause {
        names: Vec<String>,
    },
    Unpause {
        names: Vec<String>,
    },
    /// Re-read the compose file and apply the difference (what `up -d` on a running
    /// project does).
    Reload,
    /// Stop everything, report the memory, and end the `up` process.
    Down,
    /// Messages under a topic prefix as they flow.
    TopicsTail(topics::TailRequest),
    /// Read GPIO lines, or set a `sim` input.
    Gpio(gpio::GpioRequest),
}

impl Request {
    /// Requests that change the stack go through the controller, one at a time.
    pub fn is_mutation(&self) -> bool {
        lifecycle::Verb::of(self).is_some() || matches!(self, Request::Reload | Request::Down)
    }

    /// Requests that keep the connection open until the client hangs up; they end when
    /// the stack goes down instead of holding its teardown up.
    pub fn is_stream(&self) -> bool {
        match self {
            Request::Logs(logs) => logs.follow,
            Request::Events(events) => events.follow,
            Request::TopicsTail(_) => true,
            _ => false,
        }
    }
}

/// Answer one request on `conn`.
pub(super) async fn serve(request: Request, conn: &mut Connection, context: &ServerContext) {
    match request {
        Request::Info => info::serve(conn, context).await,
        Request::Ps => ps::serve(conn, context).await,
        Request::Stats => stats::serve(conn, context).await,
        Request::Logs(logs) => logs::serve(logs, conn, context).await,
        Request::Events(events) => events::serve(events, conn, context).await,
        Request::TopicsTail(tail) => topics::serve(tail, conn, context).await,
        Request::Gpio(request) => gpio::serve(request, conn, context).await,
        request => {
            debug_assert!(request.is_mutation());
            let reply = queue_for_controller(request, context).await;
            conn.send(&reply).await;
        }
    }
}

/// Hand a mutation to the controller and wait for its one reply.
async fn queue_for_controller(request: Request, context: &ServerContext) -> Reply {
    let gone = || Reply::Error("the stack is shutting down".into());
    let (tx, rx) = oneshot::channel();
    if context.commands.send((request, tx)).await.is_err() {
        return gone();
    }
    rx.await.unwrap_or_else(|_| gone())
}
