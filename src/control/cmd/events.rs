//! `events`: what happened in the stack (starts, exits, restarts, denials, reloads), the
//! recent history and then, unless `--no-stream`, the live stream.
//!
//! The event travels as this module's [`Event`], converted from the supervisor's at the
//! socket, so the supervisor may reshape its own type without changing the protocol.

use std::process::ExitCode;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::print::print_stream;
use super::Request;
use crate::control::protocol::Reply;
use crate::control::server::{forward, Connection, ServerContext};
use crate::control::{Client, ControlError, ProjectArgs};
use crate::supervisor;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventsRequest {
    /// Keep the connection open for new events.
    #[serde(default)]
    pub follow: bool,
}

/// One event on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the Unix epoch, with microseconds.
    pub time: f64,
    /// The container it is about; `None` for the stack itself (reloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Docker's words where they exist (`start`, `die`, `stop`...) plus shoal's own.
    pub action: String,
    /// Human-readable detail: the exit status, the plan of a reload, the denied call...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl From<supervisor::Event> for Event {
    fn from(event: supervisor::Event) -> Self {
        Event {
            time: event.time,
            container: event.container,
            action: event.action,
            detail: event.detail,
        }
    }
}

/// `docker events`'s line: time, subject, action, detail.
impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let when = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(self.time.max(0.0));
        write!(f, "{} ", humantime::format_rfc3339_millis(when))?;
        match &self.container {
            Some(name) => write!(f, "container {} {}", self.action, name)?,
            None => write!(f, "stack {}", self.action)?,
        }
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

fn reply(event: supervisor::Event) -> Reply {
    Reply::Event(event.into())
}

pub(super) async fn serve(request: EventsRequest, conn: &mut Connection, context: &ServerContext) {
    let (history, live) = context.events.subscribe();
    for event in history {
        if !conn.send(&reply(event)).await {
            return;
        }
    }
    if request.follow {
        forward(live, conn, |event| Some(reply(event))).await;
    }
}

/// `shoal events`: one line per event, or its JSON with `--json`.
pub fn print(client: &Client, json: bool, no_stream: bool) -> Result<ExitCode, ControlError> {
    let request = Request::Events(EventsRequest { follow: !no_stream });
    print_stream(client, request, "events", json, |reply| match reply {
        Reply::Event(event) => Some(event),
        _ => None,
    })
}

/// `shoal events`'s arguments.
#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// Print the recent events and exit instead of following
    #[arg(long)]
    pub no_stream: bool,
}

pub fn run(args: EventsArgs) -> anyhow::Result<ExitCode> {
    Ok(print(&args.project.client()?, args.json, args.no_stream)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(container: Option<&str>, detail: &str) -> supervisor::Event {
        supervisor::Event {
            time: 1_795_860_000.25,
            container: container.map(str::to_owned),
            action: "die".into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn the_wire_event_keeps_its_bytes_and_its_line() {
        let cases = [
            (
                internal(Some("collector"), "exited with code 1"),
                r#"{"event":{"time":1795860000.25,"container":"collector","action":"die","detail":"exited with code 1"}}"#,
                "2026-11-28T10:00:00.250Z container die collector (exited with code 1)",
            ),
            (
                internal(None, ""),
                r#"{"event":{"time":1795860000.25,"action":"die"}}"#,
                "2026-11-28T10:00:00.250Z stack die",
            ),
        ];
        for (event, bytes, printed) in cases {
            let wire = Event::from(event);
            let line = serde_json::to_string(&Reply::Event(wire.clone())).expect("json");
            assert_eq!(line, bytes, "the bytes on the wire (protocol version 1)");
            let back: Reply = serde_json::from_str(&line).expect("parse");
            assert_eq!(back, Reply::Event(wire.clone()));
            assert_eq!(wire.to_string(), printed);
        }
    }
}
