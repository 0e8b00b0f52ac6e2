//! `info`: who serves this socket (project, file, pid, versions), and `shoal ls`, which
//! asks it of every running stack.

use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use super::print::{header, print_table};
use super::Request;
use crate::control::server::{Connection, ServerContext};
use crate::control::{running_projects, Client, ControlError, OutputFormat};

/// What `info` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    pub project: String,
    pub file: std::path::PathBuf,
    pub pid: u32,
    pub version: String,
    pub protocol: u32,
    pub started_at: f64,
    pub containers: usize,
    pub watching: bool,
}

pub(super) async fn serve(conn: &mut Connection, context: &ServerContext) {
    // The count changes with reloads; the rest was fixed when the stack started.
    let info = Info {
        containers: context.board.infos().len(),
        ..context.info.clone()
    };
    conn.send_ok(&info).await;
}

/// `shoal ls`: one row per stack that answers. A stack that goes away between the listing
/// and the question is left out rather than failing the whole list.
pub fn ls(json: bool) -> Result<ExitCode, ControlError> {
    let infos: Vec<Info> = running_projects()
        .iter()
        .filter_map(|project| Client::for_project(project).ok())
        .filter_map(|client| client.call_as::<Info>(Request::Info).ok())
        .collect();
    if json {
        println!("{}", super::print::to_json_pretty(&infos)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![header(&["NAME", "CONTAINERS", "PID", "WATCH", "CONFIG FILE"])];
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

/// `shoal ls`'s arguments.
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

pub fn run_ls(args: LsArgs) -> anyhow::Result<ExitCode> {
    Ok(ls(args.format == OutputFormat::Json)?)
}
