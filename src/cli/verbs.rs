//! The commands that talk to a running stack: `ps`, `logs`, `stats`, `events`, `top`,
//! `stop`/`start`/`restart`/`kill`/`pause`/`unpause`, `down`, `ls`, `topics tail`.
//!
//! Only the command line lives here: which stack a command talks to ([`ProjectArgs`]) and
//! turning arguments into a call. Each command's request, handling and printing are in
//! its own file under [`crate::control::cmd`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::terminal::TerminalLog;
use super::OutputFormat as Format;
use crate::control::cmd::{self, down, events, info, lifecycle, logs::LogsRequest, ps, stats, topics};
use crate::control::{self, Client, ControlError, Request};
use crate::procstat::{unix_now, unix_seconds};

/// Which running stack a command talks to.
#[derive(Args, Debug, Clone, Default)]
pub struct ProjectArgs {
    /// Project name (see `shoal ls`) [default: from -f, or the compose file here, or the only running stack]
    #[arg(short = 'p', long = "project", value_name = "NAME")]
    pub project: Option<String>,
    /// Compose file whose project to use
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

impl ProjectArgs {
    /// The project name: `-p`, else the name of the compose file's stack (`name:` or its
    /// folder), else the only running stack.
    pub fn resolve(&self) -> anyhow::Result<String> {
        if let Some(project) = &self.project {
            return Ok(project.clone());
        }
        if let Ok(file) = super::compose::compose_path(self.file.as_deref()) {
            return Ok(project_of_file(&file));
        }
        match control::running_projects().as_slice() {
            [only] => Ok(only.clone()),
            [] => anyhow::bail!(
                "no stack is running, and there is no shoal.yaml here\n  hint: start one with `shoal up -d`"
            ),
            many => anyhow::bail!(
                "several stacks are running ({}); say which with `-p NAME`",
                many.join(", ")
            ),
        }
    }

    pub fn client(&self) -> anyhow::Result<Client> {
        let project = self.resolve()?;
        Client::for_project(&project).map_err(|e| match e {
            ControlError::NotRunning { project, .. } => anyhow::anyhow!(
                "project `{project}` is not running\n  hint: `shoal ls` lists running stacks; `shoal up -d` starts this one"
            ),
            other => other.into(),
        })
    }
}

/// The project name of a compose file, even when the file does not validate (then the
/// folder's name, which is what an unnamed stack is called).
pub fn project_of_file(file: &Path) -> String {
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let options = crate::spec::LoadOptions {
        env: &env,
        lookup_digest: &|_| None,
    };
    match crate::spec::load(file, &options) {
        Ok((stack, _)) => stack.name,
        Err(_) => {
            let dir = std::fs::canonicalize(file)
                .ok()
                .and_then(|f| f.parent().map(Path::to_path_buf))
                .unwrap_or_default();
            crate::spec::ProjectName::from_dir(&dir).into_string()
        }
    }
}

pub fn ps(project: &ProjectArgs, format: Format) -> anyhow::Result<ExitCode> {
    Ok(ps::ps(&project.client()?, format == Format::Json)?)
}

pub fn top(project: &ProjectArgs) -> anyhow::Result<ExitCode> {
    Ok(ps::top(&project.client()?)?)
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Project name [default: from --file, or the compose file here, or the only running stack]
    #[arg(short = 'p', long = "project", value_name = "NAME")]
    pub project: Option<String>,
    /// Compose file whose project to use (`-f` means --follow here, as in Docker)
    #[arg(long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Keep printing new lines
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each container
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only lines since a time: a duration (10m, 1h30m) or RFC 3339 (2026-11-28T10:00:00Z)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Prefix each line with its time
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Plain prefixes, no colours
    #[arg(long)]
    pub no_color: bool,
    /// Containers to show [default: all]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

pub fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let project = ProjectArgs {
        project: args.project.clone(),
        file: args.file.clone(),
    };
    let client = project.client()?;
    let rows = ps::rows(&client)?;
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
    let printer = TerminalLog::new(names.iter().map(String::as_str), args.no_color);
    let request = LogsRequest {
        follow: args.follow,
        tail: args.tail,
        since,
        names: if args.names.is_empty() { Vec::new() } else { names },
    };
    Ok(cmd::logs::print(&client, request, args.timestamps, &printer)?)
}

fn parse_since(text: &str) -> anyhow::Result<f64> {
    if let Ok(when) = humantime::parse_rfc3339_weak(text) {
        return Ok(unix_seconds(when));
    }
    let ago = humantime::parse_duration(text).map_err(|_| {
        anyhow::anyhow!(
            "invalid --since `{text}`\n  hint: a duration such as 10m or 2h, or a time such as 2026-11-28T10:00:00Z"
        )
    })?;
    Ok(unix_now() - ago.as_secs_f64())
}

pub fn stats(project: &ProjectArgs, no_stream: bool, format: Format) -> anyhow::Result<ExitCode> {
    Ok(stats::stats(&project.client()?, no_stream, format == Format::Json)?)
}

pub fn events(project: &ProjectArgs, json: bool, no_stream: bool) -> anyhow::Result<ExitCode> {
    Ok(events::print(&project.client()?, json, no_stream)?)
}

/// `stop`, `start`, `restart`, `kill`, `pause`, `unpause`.
pub fn lifecycle(project: &ProjectArgs, request: Request) -> anyhow::Result<ExitCode> {
    Ok(lifecycle::print(&project.client()?, request)?)
}

pub fn down(project: &ProjectArgs, verify: bool, threshold: &str) -> anyhow::Result<ExitCode> {
    let threshold_bytes = crate::spec::units::parse_memory(threshold)
        .map_err(|e| anyhow::anyhow!("invalid --threshold `{threshold}`: {e}"))?;
    Ok(down::print(&project.resolve()?, verify, threshold_bytes)?)
}

pub fn ls(format: Format) -> anyhow::Result<ExitCode> {
    Ok(info::ls(format == Format::Json)?)
}

pub fn topics_tail(project: &ProjectArgs, prefix: String) -> anyhow::Result<ExitCode> {
    Ok(topics::print(&project.client()?, prefix)?)
}

/// `gpio get` and `gpio set`.
pub fn gpio(
    project: &ProjectArgs,
    request: crate::control::cmd::gpio::GpioRequest,
    json: bool,
) -> anyhow::Result<ExitCode> {
    Ok(crate::control::cmd::gpio::print(&project.client()?, request, json)?)
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
}
