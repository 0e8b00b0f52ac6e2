//! `logs`: the stored lines of the stack's containers, optionally followed live.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use super::print::rfc3339;
use super::Request;
use crate::control::protocol::Reply;
use crate::control::server::{forward, Connection, ServerContext};
use crate::control::{parse_name, Client, ControlError, ProjectArgs};
use crate::logs::terminal::TerminalLog;
use crate::logs::{LogLine, LogSink, Stream};
use crate::procstat::{unix_now, unix_seconds};
use crate::spec::units::Span;
use crate::spec::ProjectName;

/// Which lines a `logs` request wants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogsRequest {
    #[serde(default)]
    pub follow: bool,
    /// Last N lines per container.
    #[serde(default)]
    pub tail: Option<usize>,
    /// Only lines at or after this time (seconds since the Unix epoch).
    #[serde(default)]
    pub since: Option<f64>,
    /// Only these containers (empty: all).
    #[serde(default)]
    pub names: Vec<String>,
}

/// One log line on the wire, converted from the log book's at the socket so the book may
/// change its own type without changing the protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Seconds since the Unix epoch.
    pub time: f64,
    pub container: String,
    /// `stdout`, `stderr`, `system` or `warning`.
    pub stream: String,
    pub text: String,
}

impl From<LogLine> for Line {
    fn from(line: LogLine) -> Self {
        Line {
            time: line.time,
            container: line.container,
            stream: line.stream,
            text: line.text,
        }
    }
}

fn reply(line: LogLine) -> Reply {
    Reply::Log(line.into())
}

impl LogsRequest {
    fn wants(&self, line: &LogLine) -> bool {
        (self.names.is_empty() || self.names.contains(&line.container)) && self.since.is_none_or(|t| line.time >= t)
    }
}

/// The stored lines first, then (with `follow`) the live ones, through one filter. The
/// snapshot and the live receiver are taken together, so no line falls between them.
pub(super) async fn serve(request: LogsRequest, conn: &mut Connection, context: &ServerContext) {
    let (lines, live) = context.book.snapshot();
    let mut selected: Vec<LogLine> = lines.into_iter().filter(|l| request.wants(l)).collect();
    if let Some(tail) = request.tail {
        selected = last_per_container(selected, tail);
    }
    for line in selected {
        if !conn.send(&reply(line)).await {
            return;
        }
    }
    if request.follow {
        forward(live, conn, |line: LogLine| request.wants(&line).then(|| reply(line))).await;
    }
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

/// `shoal logs`: print each line through `printer` (the terminal's colours and padding),
/// prefixed with its time when `timestamps`.
pub fn print(
    client: &Client,
    request: LogsRequest,
    timestamps: bool,
    printer: &dyn LogSink,
) -> Result<ExitCode, ControlError> {
    client.stream(Request::Logs(request), |reply| {
        match reply {
            Reply::Log(line) => {
                let stream = match line.stream.as_str() {
                    "stderr" => Stream::Stderr,
                    "system" => Stream::System,
                    "warning" => Stream::Warning,
                    _ => Stream::Stdout,
                };
                let text = if timestamps {
                    format!("{} {}", rfc3339(line.time), line.text)
                } else {
                    line.text
                };
                printer.line(&line.container, stream, &text);
            }
            Reply::Missed(n) => tracing::warn!("{n} lines skipped: this reader fell behind"),
            _ => {}
        }
        true
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `shoal logs`'s arguments. `-f` means `--follow` here, as in Docker, so the compose file
/// is only `--file` and the project is spelled out instead of flattening [`ProjectArgs`].
#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// Project name [default: $SHOAL_PROJECT_NAME, else from --file or the compose file here, else the only running stack]
    #[arg(short = 'p', long = "project", visible_alias = "project-name", value_name = "NAME", env = crate::spec::PROJECT_NAME_VAR, value_parser = parse_name::<ProjectName>)]
    pub project: Option<ProjectName>,
    /// Compose file whose project to use, repeatable (`-f` means --follow here, as in Docker)
    #[arg(long = "file", value_name = "FILE")]
    pub file: Vec<PathBuf>,
    /// Keep printing new lines
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each container
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only lines since a time: a duration (10m, 1h30m) or RFC 3339 (2026-11-28T10:00:00Z)
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<f64>,
    /// Prefix each line with its time
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Plain prefixes, no colours
    #[arg(long)]
    pub no_color: bool,
    /// The lines alone, without the `name | ` prefix (as `docker compose logs --no-log-prefix`)
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Containers to show [default: all]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// `shoal logs`: check the names against the running stack, then print its lines with
/// `up`'s prefixes and colours.
pub fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let since = args.since;
    let project = ProjectArgs {
        project: args.project.clone(),
        file: args.file.clone(),
    };
    let client = project.client()?;
    let rows = super::ps::rows(&client)?;
    for name in &args.names {
        if !rows.iter().any(|r| &r.name == name || &r.service == name) {
            anyhow::bail!("no container named `{name}` in project `{}`", project.resolve()?);
        }
    }
    let names: Vec<String> = rows
        .iter()
        .filter(|r| args.names.is_empty() || args.names.contains(&r.name) || args.names.contains(&r.service))
        .map(|r| r.name.clone())
        .collect();
    let printer: Box<dyn LogSink> = if args.no_log_prefix {
        Box::new(crate::logs::terminal::BareLog)
    } else {
        Box::new(TerminalLog::new(names.iter().map(String::as_str), args.no_color))
    };
    let request = LogsRequest {
        follow: args.follow,
        tail: args.tail,
        since,
        names: if args.names.is_empty() { Vec::new() } else { names },
    };
    let follow = args.follow;
    match print(&client, request, args.timestamps, printer.as_ref()) {
        // The stream of `-f` ends only when the stack's server goes away (a Ctrl-C ends
        // this process instead): a silent exit 0 would look like a quiet stack.
        Ok(_) | Err(ControlError::Io { .. }) if follow => {
            let name = match &project.project {
                Some(name) => name.to_string(),
                None => project.resolve()?,
            };
            eprintln!(
                "error: the server for project `{name}` stopped; no more lines will come\n  hint: a detached stack's own output is in {}",
                crate::control::log_path(&name).display()
            );
            Ok(ExitCode::from(1))
        }
        other => Ok(other?),
    }
}

/// `--since`: an RFC 3339 time, or a duration back from now, as seconds since the Unix epoch
/// (the form the logs request carries). Refused at the flag when it is neither.
fn parse_since(text: &str) -> Result<f64, String> {
    if let Ok(when) = humantime::parse_rfc3339_weak(text) {
        return Ok(unix_seconds(when));
    }
    let ago: Span = text
        .parse()
        .map_err(|e| format!("{e}\n  hint: a duration such as 10m or 2h, or a time such as 2026-11-28T10:00:00Z"))?;
    Ok(unix_now() - ago.duration().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        let now = unix_now();
        let ten_minutes_ago = parse_since("10m").expect("duration");
        assert!((now - ten_minutes_ago - 600.0).abs() < 5.0);
        assert_eq!(parse_since("2026-11-28T10:00:00Z").expect("time"), 1_795_860_000.0);
        assert!(parse_since("yesterday").is_err());
    }

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

    #[test]
    fn the_wire_line_writes_the_same_bytes() {
        let stored = line("a", "hello");
        let before = serde_json::to_string(&stored).expect("json");
        let text = serde_json::to_string(&reply(stored.clone())).expect("json");
        assert_eq!(text, format!(r#"{{"log":{before}}}"#));
        let back: Reply = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, Reply::Log(stored.into()));
    }

    #[test]
    fn the_filter_takes_names_and_time() {
        let request = LogsRequest {
            since: Some(1.0),
            names: vec!["a".into()],
            ..LogsRequest::default()
        };
        let mut early = line("a", "1");
        assert!(!request.wants(&early), "before `since`");
        early.time = 2.0;
        assert!(request.wants(&early));
        let mut other = line("b", "1");
        other.time = 2.0;
        assert!(!request.wants(&other), "another container");
    }
}
