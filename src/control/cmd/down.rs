//! `down`: stop every container, report what each ended with and how much memory went
//! back, and end the `up` process. The controller itself answers (it is the one that
//! tears the stack down); this file holds the reply and the client side.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Request;
use crate::control::{Client, ControlError, ProjectArgs};
use crate::procstat::Reclamation;
use crate::spec::units::ByteSize;

/// How long `down` waits for the process to close its socket after the reply.
const SOCKET_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What `down` replies.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DownReport {
    pub reclamation: Reclamation,
    /// (container, how it ended), in stop order.
    pub outcomes: Vec<(String, String)>,
}

/// `shoal down` on `project`; with `verify`, exit 1 when more than `threshold_bytes`
/// stayed allocated after the teardown.
pub fn print(
    project: &str,
    verify: bool,
    threshold_bytes: u64,
    timeout: Option<u64>,
) -> Result<ExitCode, ControlError> {
    let client = match Client::for_project(project) {
        Ok(client) => client,
        Err(ControlError::NotRunning { .. }) => {
            tracing::info!("project `{project}` is not running; nothing to take down");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e),
    };
    let report: DownReport = client.call_as(Request::Down { timeout })?;
    // The reply comes once the containers are gone; the process then closes its socket.
    // Return after that, so that a `down && up -d` never meets the old socket.
    let began = Instant::now();
    while client.path().exists() && began.elapsed() < SOCKET_CLOSE_TIMEOUT {
        std::thread::sleep(Duration::from_millis(10));
    }
    for (container, outcome) in &report.outcomes {
        println!(" ✔ container {container:<20} removed ({outcome})");
    }
    let r = report.reclamation;
    println!("{r}");
    let threshold_kib = threshold_bytes / 1024;
    if verify {
        match r.verify(threshold_kib) {
            Ok(residue) => {
                println!("verified: {residue} KB above the baseline, within the {threshold_kib} KB threshold")
            }
            Err(unreturned) => {
                eprintln!(
                    "error: {unreturned}\n  hint: a container's memory, a task or a buffer outlived the stack; `shoal bench soak` shows whether it grows with every cycle"
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `shoal down`'s arguments.
#[derive(clap::Args, Debug)]
pub struct DownArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Exit non-zero when more memory than --threshold stays in use after teardown
    #[arg(long)]
    pub verify: bool,
    /// Residue allowed by --verify
    #[arg(long, value_name = "SIZE", default_value = "1MiB")]
    pub threshold: ByteSize,
    /// Seconds to wait for each container to end before it is killed [default: its
    /// `stop_timeout`]
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
}

pub fn run(args: DownArgs) -> anyhow::Result<ExitCode> {
    if super::nothing_runs_here(&args.project) {
        tracing::info!("no stack is running; nothing to take down");
        return Ok(ExitCode::SUCCESS);
    }
    Ok(print(
        &args.project.resolve()?,
        args.verify,
        args.threshold.bytes(),
        args.timeout,
    )?)
}
