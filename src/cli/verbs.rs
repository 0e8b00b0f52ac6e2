//! The commands that talk to a running stack: `ps`, `logs`, `stats`, `events`, `top`,
//! `stop`/`start`/`restart`/`kill`/`pause`/`unpause`, `down`, `ls`, `topics tail`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;

use super::terminal::TerminalLog;
use super::OutputFormat as Format;
use crate::control::{self, Client, ControlError, Info, Reply, Request, VerbResult};
use crate::controller::DownReport;
use crate::logs::{LogSink, Stream};
use crate::supervisor::ContainerInfo;

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
        let file = match &self.file {
            Some(path) if path.is_dir() => crate::spec::find_compose_file(path),
            Some(path) => Some(path.clone()),
            None => std::env::current_dir()
                .ok()
                .and_then(|here| crate::spec::find_compose_file(&here)),
        };
        if let Some(file) = file {
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
            let folder = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            crate::spec::decode::sanitize_name(&folder)
        }
    }
}

pub fn ps(project: &ProjectArgs, format: Format) -> anyhow::Result<ExitCode> {
    let rows: Vec<ContainerInfo> = project.client()?.call_as(Request::Ps)?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![[
        "NAME", "IMAGE", "STATE", "UPTIME", "RESTARTS", "MEMORY", "CPU", "IN", "OUT", "DROPPED",
    ]
    .map(String::from)
    .to_vec()];
    for row in &rows {
        let state = match &row.exit {
            Some(exit) if row.state != "stopped" => format!("{} ({exit})", row.state),
            _ => row.state.clone(),
        };
        let restarts = if row.crash_loop {
            format!("{} (crash loop)", row.restarts)
        } else {
            row.restarts.to_string()
        };
        table.push(vec![
            row.name.clone(),
            row.image.clone(),
            state,
            row.uptime_seconds.map(human_secs).unwrap_or_else(|| "-".into()),
            restarts,
            human_bytes(row.memory_bytes),
            format!("{:.2}s", row.cpu_seconds),
            row.messages_in.to_string(),
            row.messages_out.to_string(),
            row.dropped.to_string(),
        ]);
    }
    print_table(&table);
    Ok(ExitCode::SUCCESS)
}

pub fn top(project: &ProjectArgs) -> anyhow::Result<ExitCode> {
    let mut rows: Vec<ContainerInfo> = project.client()?.call_as(Request::Ps)?;
    rows.sort_by(|a, b| b.cpu_seconds.total_cmp(&a.cpu_seconds));
    let mut table = vec![["NAME", "CPU TIME", "CPU %", "MEMORY", "STATE"]
        .map(String::from)
        .to_vec()];
    for row in &rows {
        let share = row
            .uptime_seconds
            .filter(|up| *up > 0.0)
            .map(|up| format!("{:.2}", 100.0 * row.cpu_seconds / up))
            .unwrap_or_else(|| "-".into());
        table.push(vec![
            row.name.clone(),
            format!("{:.3}s", row.cpu_seconds),
            share,
            human_bytes(row.memory_bytes),
            row.state.clone(),
        ]);
    }
    print_table(&table);
    println!("(CPU time is time spent running guest code, measured at every host-call boundary)");
    Ok(ExitCode::SUCCESS)
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
    let rows: Vec<ContainerInfo> = client.call_as(Request::Ps)?;
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
    let filter = if args.names.is_empty() { Vec::new() } else { names };
    let request = Request::Logs {
        follow: args.follow,
        tail: args.tail,
        since,
        names: filter,
    };
    client.stream(request, |reply| {
        match reply {
            Reply::Log(line) => {
                let stream = match line.stream.as_str() {
                    "stderr" => Stream::Stderr,
                    "system" => Stream::System,
                    "warning" => Stream::Warning,
                    _ => Stream::Stdout,
                };
                let text = if args.timestamps {
                    format!("{} {}", rfc3339(line.time), line.text)
                } else {
                    line.text
                };
                printer.line(&line.container, stream, &text);
            }
            Reply::Missed(n) => eprintln!("({n} lines skipped: this reader fell behind)"),
            _ => {}
        }
        true
    })?;
    Ok(ExitCode::SUCCESS)
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
    Ok(unix_seconds(SystemTime::now()) - ago.as_secs_f64())
}

fn unix_seconds(when: SystemTime) -> f64 {
    when.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn rfc3339(time: f64) -> String {
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(time.max(0.0));
    humantime::format_rfc3339_millis(when).to_string()
}

pub fn stats(project: &ProjectArgs, no_stream: bool, format: Format) -> anyhow::Result<ExitCode> {
    let client = project.client()?;
    let terminal = std::io::stdout().is_terminal();
    loop {
        let stats = client.call(Request::Stats)?;
        if format == Format::Json {
            println!("{}", serde_json::to_string(&stats)?);
        } else {
            if terminal && !no_stream {
                print!("\x1b[2J\x1b[H");
            }
            let kib = |key: &str| stats.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
            let broker = &stats["broker"];
            println!(
                "process: {} RSS (peak {}), {:.2}s CPU; broker: {} published, {} delivered, {} dropped",
                human_bytes(kib("rss_kib") * 1024),
                human_bytes(kib("peak_rss_kib") * 1024),
                stats["cpu_seconds"].as_f64().unwrap_or(0.0),
                broker["published"],
                broker["delivered"],
                broker["dropped"],
            );
            let bridges: Vec<crate::bridge::BridgeStats> =
                serde_json::from_value(stats["bridges"].clone()).unwrap_or_default();
            for b in &bridges {
                println!(
                    "bridge {} ({}): {}, exported {}, imported {}, queued {}, dropped {}, rejected {}, reconnects {}",
                    b.name,
                    b.url,
                    if b.connected { "connected" } else { "disconnected" },
                    b.exported,
                    b.imported,
                    b.queued,
                    b.dropped,
                    b.rejected,
                    b.reconnects
                );
            }
            let rows: Vec<ContainerInfo> = serde_json::from_value(stats["containers"].clone())?;
            let mut table = vec![["NAME", "STATE", "MEMORY", "CPU", "IN", "OUT", "DROPPED", "DENIED"]
                .map(String::from)
                .to_vec()];
            for row in rows {
                table.push(vec![
                    row.name,
                    row.state,
                    human_bytes(row.memory_bytes),
                    format!("{:.2}s", row.cpu_seconds),
                    row.messages_in.to_string(),
                    row.messages_out.to_string(),
                    row.dropped.to_string(),
                    row.denied.to_string(),
                ]);
            }
            print_table(&table);
        }
        let _ = std::io::stdout().flush();
        if no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

pub fn events(project: &ProjectArgs, json: bool, no_stream: bool) -> anyhow::Result<ExitCode> {
    let client = project.client()?;
    client.stream(Request::Events { follow: !no_stream }, |reply| {
        match reply {
            Reply::Event(event) if json => {
                if let Ok(line) = serde_json::to_string(&event) {
                    println!("{line}");
                }
            }
            Reply::Event(event) => println!("{event}"),
            Reply::Missed(n) => eprintln!("({n} events skipped: this reader fell behind)"),
            _ => {}
        }
        let _ = std::io::stdout().flush();
        true
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `stop`, `start`, `restart`, `kill`, `pause`, `unpause`.
pub fn lifecycle(project: &ProjectArgs, request: Request) -> anyhow::Result<ExitCode> {
    let results: Vec<VerbResult> = project.client()?.call_as(request)?;
    let mut failed = 0;
    for result in &results {
        if result.ok {
            println!(" ✔ container {:<20} {}", result.name, result.result);
        } else {
            failed += 1;
            eprintln!(" ✘ container {:<20} {}", result.name, result.result);
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn down(project: &ProjectArgs, verify: bool, threshold: &str) -> anyhow::Result<ExitCode> {
    let threshold_bytes = crate::spec::units::parse_memory(threshold)
        .map_err(|e| anyhow::anyhow!("invalid --threshold `{threshold}`: {e}"))?;
    let name = project.resolve()?;
    let client = match Client::for_project(&name) {
        Ok(client) => client,
        Err(ControlError::NotRunning { .. }) => {
            println!("project `{name}` is not running; nothing to take down");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    let report: DownReport = client.call_as(Request::Down)?;
    // The reply comes once the containers are gone; the process then closes its socket.
    // Return after that, so that a `down && up -d` never meets the old socket.
    let began = std::time::Instant::now();
    while client.path().exists() && began.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    for (container, outcome) in &report.outcomes {
        println!(" ✔ container {container:<20} removed ({outcome})");
    }
    let r = report.reclamation;
    println!("{r}");
    let residue = r.residue_kib();
    let threshold_kib = threshold_bytes / 1024;
    if verify {
        if residue > threshold_kib {
            eprintln!(
                "error: {residue} KB of memory was not returned after teardown (the threshold is {threshold_kib} KB)\n  hint: a container's memory, a task or a buffer outlived the stack; `shoal bench soak` shows whether it grows with every cycle"
            );
            return Ok(ExitCode::from(1));
        }
        println!("verified: {residue} KB above the baseline, within the {threshold_kib} KB threshold");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn ls(format: Format) -> anyhow::Result<ExitCode> {
    let mut infos = Vec::new();
    for project in control::running_projects() {
        if let Ok(client) = Client::for_project(&project) {
            if let Ok(info) = client.call_as::<Info>(Request::Info) {
                infos.push(info);
            }
        }
    }
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&infos)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![["NAME", "CONTAINERS", "PID", "WATCH", "CONFIG FILE"]
        .map(String::from)
        .to_vec()];
    for info in infos {
        table.push(vec![
            info.project,
            info.containers.to_string(),
            info.pid.to_string(),
            if info.watching { "yes" } else { "no" }.to_owned(),
            info.file.display().to_string(),
        ]);
    }
    print_table(&table);
    Ok(ExitCode::SUCCESS)
}

pub fn topics_tail(project: &ProjectArgs, prefix: String) -> anyhow::Result<ExitCode> {
    let client = project.client()?;
    client.stream(Request::TopicsTail { prefix }, |reply| {
        match reply {
            Reply::Message(m) => {
                let body = match (&m.text, &m.hex) {
                    (Some(text), _) => text.clone(),
                    (None, Some(hex)) => format!("0x{hex}"),
                    _ => String::new(),
                };
                println!("{} {} [{}] {body}", rfc3339(m.time), m.topic, m.content_type);
            }
            Reply::Missed(n) => eprintln!("({n} messages skipped: this reader fell behind)"),
            _ => {}
        }
        let _ = std::io::stdout().flush();
        true
    })?;
    Ok(ExitCode::SUCCESS)
}

fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        0 => "0".into(),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

fn human_secs(secs: f64) -> String {
    let secs = secs as u64;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        let now = unix_seconds(SystemTime::now());
        let ten_minutes_ago = parse_since("10m").expect("duration");
        assert!((now - ten_minutes_ago - 600.0).abs() < 5.0);
        assert_eq!(parse_since("2026-11-28T10:00:00Z").expect("time"), 1_795_860_000.0);
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(64 * 1024), "64.0 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_secs(3725.0), "1h2m");
    }
}
