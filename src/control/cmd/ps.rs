//! `ps` and `top`: two client views of the same reply, one row per container from the
//! status board.

use std::process::ExitCode;

use super::print::{header, human_bytes, human_secs, print_table, to_json_pretty};
use super::Request;
use crate::control::server::{Connection, ServerContext};
use crate::control::{Client, ControlError, OutputFormat, ProjectArgs};
use crate::supervisor::ContainerInfo;

/// The reply to `ps`.
pub type Rows = Vec<ContainerInfo>;

pub(super) async fn serve(conn: &mut Connection, context: &ServerContext) {
    let mut rows = context.board.infos();
    let grants = context.board.gpio_grants();
    for row in &mut rows {
        if let Some((_, names)) = grants.iter().find(|(name, _)| *name == row.name) {
            row.gpio = names
                .iter()
                .filter_map(|n| context.gpio.get(n).ok().map(|l| l.state()))
                .collect();
        }
    }
    conn.send_ok(&rows).await;
}

/// Ask for the rows.
pub fn rows(client: &Client) -> Result<Rows, ControlError> {
    client.call_as(Request::Ps)
}

/// `shoal ps`.
pub fn ps(client: &Client, json: bool) -> Result<ExitCode, ControlError> {
    let rows = rows(client)?;
    if json {
        println!("{}", to_json_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![header(&[
        "NAME", "IMAGE", "STATE", "UPTIME", "RESTARTS", "MEMORY", "CPU", "IN", "OUT", "DROPPED",
    ])];
    table.extend(rows.iter().map(ps_row));
    print_table(&table);
    print_gpio(&rows);
    Ok(ExitCode::SUCCESS)
}

/// Below the table, one line per container with GPIO lines: `ctl gpio: button=1 (sim in)`.
fn print_gpio(rows: &Rows) {
    for row in rows.iter().filter(|r| !r.gpio.is_empty()) {
        let lines: Vec<String> = row
            .gpio
            .iter()
            .map(|l| {
                let value = l.value.map_or_else(|| "?".to_string(), |v| v.to_string());
                let dir = if l.direction == "output" { "out" } else { "in" };
                format!("{}={value} ({} {dir})", l.name, l.kind)
            })
            .collect();
        println!("{} gpio: {}", row.name, lines.join(" "));
    }
}

fn ps_row(row: &ContainerInfo) -> Vec<String> {
    // A stopped container's exit is the stop itself: not worth repeating.
    let state = match &row.exit {
        Some(exit) if row.state != "stopped" && *exit != row.state => format!("{} ({exit})", row.state),
        _ => row.state.clone(),
    };
    let restarts = if row.crash_loop {
        format!("{} (crash loop)", row.restarts)
    } else {
        row.restarts.to_string()
    };
    vec![
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
    ]
}

/// `shoal top`: the busiest containers first.
pub fn top(client: &Client) -> Result<ExitCode, ControlError> {
    let mut rows = rows(client)?;
    rows.sort_by(|a, b| b.cpu_seconds.total_cmp(&a.cpu_seconds));
    let mut table = vec![header(&["NAME", "CPU TIME", "CPU %", "MEMORY", "STATE"])];
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

/// `shoal ps`'s arguments.
#[derive(clap::Args, Debug)]
pub struct PsArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Only the container names, one per line (as `docker compose ps -q` prints ids)
    #[arg(short, long)]
    pub quiet: bool,
    /// Only the service names (a replicated service once), one per line
    #[arg(long, conflicts_with = "quiet")]
    pub services: bool,
    /// Accepted for compose habits: shoal always lists stopped and exited containers too
    #[arg(short, long)]
    pub all: bool,
}

/// `shoal top`'s arguments.
#[derive(clap::Args, Debug)]
pub struct TopArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
}

pub fn run_ps(args: PsArgs) -> anyhow::Result<ExitCode> {
    let json = args.format == OutputFormat::Json;
    // Nothing running is an answer, not a failure (compose exits 0 too): an empty list.
    let Some(client) = super::client_or_nothing_running(&args.project)? else {
        if json {
            println!("[]");
        } else if !args.quiet && !args.services {
            print_table(&[header(&[
                "NAME", "IMAGE", "STATE", "UPTIME", "RESTARTS", "MEMORY", "CPU", "IN", "OUT", "DROPPED",
            ])]);
        }
        return Ok(ExitCode::SUCCESS);
    };
    if args.quiet || args.services {
        let mut names: Vec<String> = rows(&client)?
            .into_iter()
            .map(|r| if args.services { r.service } else { r.name })
            .collect();
        names.dedup();
        for name in names {
            println!("{name}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    Ok(ps(&client, json)?)
}

pub fn run_top(args: TopArgs) -> anyhow::Result<ExitCode> {
    Ok(top(&args.project.client()?)?)
}
