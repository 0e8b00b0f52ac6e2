//! The control commands, one file each (mini-redis's layout): a command's request payload,
//! its reply type, how the running stack answers it and how the client prints the answer
//! live together, with the command's clap arguments, so a new verb is one new file here
//! plus, in this file, its [`Request`] variant with its arm in [`serve`] and its
//! [`ClientCommand`] variant with its arm in [`ClientCommand::run`].
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

use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::protocol::Reply;
use super::server::{Connection, ServerContext};

/// The commands that talk to a running stack, as the command line spells them (flattened
/// into `shoal`'s own subcommands): each variant's arguments live in its command's file.
#[derive(clap::Subcommand, Debug)]
pub enum ClientCommand {
    /// Stop a running stack and report the memory it gave back
    #[command(
        after_help = "Examples:\n  shoal down\n  shoal down -p line-3 --verify\n  shoal down --verify --threshold 512KiB"
    )]
    Down(down::DownArgs),
    /// List the containers of a running stack
    #[command(after_help = "Examples:\n  shoal ps\n  shoal ps -p line-3 --format json")]
    Ps(ps::PsArgs),
    /// Print containers' output (the last 1,000 lines of each are kept)
    #[command(
        after_help = "Examples:\n  shoal logs\n  shoal logs -f collector\n  shoal logs --tail 20 --since 10m -t"
    )]
    Logs(logs::LogsArgs),
    /// Live figures per container and for the process
    #[command(after_help = "Examples:\n  shoal stats\n  shoal stats --no-stream --format json")]
    Stats(stats::StatsArgs),
    /// Lifecycle events: start, die, stop, restart, pause, warnings, reloads
    #[command(after_help = "Examples:\n  shoal events\n  shoal events --json --no-stream")]
    Events(events::EventsArgs),
    /// Containers sorted by the CPU time their guest code used
    #[command(after_help = "Examples:\n  shoal top\n  shoal top -p line-3")]
    Top(ps::TopArgs),
    /// Stop containers (they stay stopped; no restart policy applies)
    #[command(after_help = "Examples:\n  shoal stop watchdog\n  shoal stop        # every container")]
    Stop(lifecycle::StopArgs),
    /// Start stopped or ended containers
    #[command(after_help = "Examples:\n  shoal start watchdog")]
    Start(lifecycle::NamesArgs),
    /// Stop then start containers
    #[command(after_help = "Examples:\n  shoal restart collector aggregator")]
    Restart(lifecycle::StopArgs),
    /// Stop containers at once, without waiting for stop_timeout
    #[command(after_help = "Examples:\n  shoal kill spinner")]
    Kill(lifecycle::NamesArgs),
    /// Hold containers: no guest code runs, all state is kept, messages queue (bounded)
    #[command(after_help = "Examples:\n  shoal pause collector")]
    Pause(lifecycle::NamesArgs),
    /// Let paused containers run again
    #[command(after_help = "Examples:\n  shoal unpause collector")]
    Unpause(lifecycle::NamesArgs),
    /// Running stacks on this machine
    #[command(after_help = "Examples:\n  shoal ls\n  shoal ls --format json")]
    Ls(info::LsArgs),
    /// Watch the messages of a running stack
    #[command(after_help = "Examples:\n  shoal topics tail sensors/\n  shoal topics tail ''   # everything")]
    Topics(topics::TopicsArgs),
    /// Read the GPIO lines of a running stack, or give a simulated input a value
    #[command(
        after_help = "Examples:\n  shoal gpio get\n  shoal gpio get button\n  shoal gpio set button 1   # a `kind: sim` input; a change is an edge event"
    )]
    Gpio(gpio::GpioArgs),
}

impl ClientCommand {
    /// Run the client side of the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            ClientCommand::Down(args) => down::run(args),
            ClientCommand::Ps(args) => ps::run_ps(args),
            ClientCommand::Logs(args) => logs::run(args),
            ClientCommand::Stats(args) => stats::run(args),
            ClientCommand::Events(args) => events::run(args),
            ClientCommand::Top(args) => ps::run_top(args),
            ClientCommand::Stop(args) => lifecycle::run_with_timeout(lifecycle::Verb::Stop, args),
            ClientCommand::Start(args) => lifecycle::run(lifecycle::Verb::Start, args),
            ClientCommand::Restart(args) => lifecycle::run_with_timeout(lifecycle::Verb::Restart, args),
            ClientCommand::Kill(args) => lifecycle::run(lifecycle::Verb::Kill, args),
            ClientCommand::Pause(args) => lifecycle::run(lifecycle::Verb::Pause, args),
            ClientCommand::Unpause(args) => lifecycle::run(lifecycle::Verb::Unpause, args),
            ClientCommand::Ls(args) => info::run_ls(args),
            ClientCommand::Topics(args) => topics::run(args),
            ClientCommand::Gpio(args) => gpio::run(args),
        }
    }
}

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
        /// `-t`: seconds to wait before killing, instead of each container's `stop_timeout`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<u64>,
    },
    Start {
        names: Vec<String>,
    },
    Restart {
        names: Vec<String>,
        /// `-t`: as for `stop`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<u64>,
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
    /// project does). `files`: the compose file(s) the client means, canonical; the stack
    /// refuses when it runs others (two files never silently share one project). Empty
    /// (older clients, `reload`): whatever it runs.
    Reload {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<std::path::PathBuf>,
    },
    /// Stop everything, report the memory, and end the `up` process. `timeout` (`-t`):
    /// seconds to wait before killing, instead of each container's `stop_timeout`.
    Down {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<u64>,
    },
    /// Messages under a topic prefix as they flow.
    TopicsTail(topics::TailRequest),
    /// Read GPIO lines, or set a `sim` input.
    Gpio(gpio::GpioRequest),
}

impl Request {
    /// Requests that change the stack go through the controller, one at a time.
    pub fn is_mutation(&self) -> bool {
        lifecycle::Verb::of(self).is_some() || matches!(self, Request::Reload { .. } | Request::Down { .. })
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

// Operations (issue 19): `ps` and `down` with nothing running exit 0 with a note, as
// compose does.

/// No `-p`, no compose file here, and no stack running: nothing for `ps`/`down` to do.
pub(crate) fn nothing_runs_here(project: &crate::control::ProjectArgs) -> bool {
    project.project.is_none()
        && crate::spec::ComposeFiles::resolve_files(&project.file).is_err()
        && crate::control::running_projects().is_empty()
}

/// The client of the resolved project, or `None` (after a one-line note on stderr) when it
/// is not running.
pub(crate) fn client_or_nothing_running(
    project: &crate::control::ProjectArgs,
) -> anyhow::Result<Option<crate::control::Client>> {
    if nothing_runs_here(project) {
        tracing::info!("no stack is running");
        return Ok(None);
    }
    let name = project.resolve()?;
    match crate::control::Client::for_project(&name) {
        Ok(client) => Ok(Some(client)),
        Err(crate::control::ControlError::NotRunning { .. }) => {
            tracing::info!("project `{name}` is not running");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
