//! `gpio get` / `gpio set`: read a line of the running stack, or give a `sim` input a
//! value from outside (a change raises an edge event for the containers listening, exactly
//! as a kernel edge would). A `cdev` line's value comes from the hardware, and an output's
//! from its container: setting either from here is refused with a hint.

use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use super::print::{header, print_table, to_json_pretty};
use super::Request;
use crate::control::server::{Connection, ServerContext};
use crate::control::{Client, ControlError, OutputFormat, ProjectArgs};
use crate::gpio::{GpioError, LineState};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpioRequest {
    /// One line, or every line of the stack when `None` (only for reading).
    pub line: Option<String>,
    /// `Some`: set the line to this value first (0 or 1).
    pub set: Option<u8>,
}

/// The reply: the lines asked for, as they are after the request.
pub type Reply = Vec<LineState>;

pub(super) async fn serve(request: GpioRequest, conn: &mut Connection, context: &ServerContext) {
    match answer(&request, &context.gpio) {
        Ok(states) => conn.send_ok(&states).await,
        Err(e) => conn.send(&crate::control::Reply::Error(refusal(&e))).await,
    };
}

/// What the request does to `lines`, and the lines' states after it.
pub fn answer(request: &GpioRequest, lines: &crate::gpio::GpioLines) -> Result<Reply, GpioError> {
    let Some(name) = &request.line else {
        return Ok(lines.iter().map(|l| l.state()).collect());
    };
    let line = lines.get(name)?;
    if let Some(value) = request.set {
        line.inject(value != 0)?;
    }
    Ok(vec![line.state()])
}

/// The error with what to do about it.
fn refusal(e: &GpioError) -> String {
    let hint = match e {
        GpioError::NotSim { .. } => "; drive the physical line instead, or declare a `kind: sim` line to test with",
        GpioError::DrivenOutput { .. } => {
            "; `shoal gpio set` gives inputs a value (read this one with `shoal gpio get`)"
        }
        GpioError::Unknown { .. } => "; lines are declared under the compose file's `gpio:`",
        _ => "",
    };
    format!("{e}{hint}")
}

/// `shoal gpio get [LINE]` and `shoal gpio set LINE VALUE`. One line prints its value
/// alone (for scripts); all lines print a table.
pub fn print(client: &Client, request: GpioRequest, json: bool) -> Result<ExitCode, ControlError> {
    let one = request.line.is_some();
    let states: Reply = client.call_as(Request::Gpio(request))?;
    if json {
        println!("{}", to_json_pretty(&states)?);
        return Ok(ExitCode::SUCCESS);
    }
    let value = |s: &LineState| s.value.map_or_else(|| "?".to_string(), |v| v.to_string());
    if one {
        for s in &states {
            println!("{}", value(s));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![header(&["LINE", "KIND", "DIRECTION", "VALUE"])];
    for s in &states {
        table.push(vec![s.name.clone(), s.kind.clone(), s.direction.clone(), value(s)]);
    }
    print_table(&table);
    Ok(ExitCode::SUCCESS)
}

/// `shoal gpio`'s arguments.
#[derive(clap::Args, Debug)]
pub struct GpioArgs {
    #[command(subcommand)]
    pub command: GpioCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum GpioCommand {
    /// Print one line's value (0 or 1), or a table of every line
    Get {
        #[command(flatten)]
        project: ProjectArgs,
        /// A line under the compose file's `gpio:` [default: all]
        line: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
    /// Set a simulated (`kind: sim`) input line; a change raises an edge event
    Set {
        #[command(flatten)]
        project: ProjectArgs,
        line: String,
        #[arg(value_parser = clap::value_parser!(u8).range(0..=1))]
        value: u8,
    },
}

/// `gpio get` and `gpio set`.
pub fn run(args: GpioArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        GpioCommand::Get { project, line, format } => {
            let request = GpioRequest { line, set: None };
            Ok(print(&project.client()?, request, format == OutputFormat::Json)?)
        }
        GpioCommand::Set { project, line, value } => {
            let request = GpioRequest {
                line: Some(line),
                set: Some(value),
            };
            Ok(print(&project.client()?, request, false)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpio::tests::{lines, sim};
    use crate::spec::{GpioDirection, GpioEdge};

    #[test]
    fn set_feeds_sim_inputs_and_refuses_the_rest() {
        let l = lines(&[
            sim("button", GpioDirection::Input, GpioEdge::Both),
            sim("relay", GpioDirection::Output, GpioEdge::None),
        ]);
        let set = |line: &str, v: u8| GpioRequest {
            line: Some(line.into()),
            set: Some(v),
        };
        let got = answer(&set("button", 1), &l).unwrap();
        assert_eq!(got[0].value, Some(1));
        assert_eq!(got[0].kind, "sim");
        let e = refusal(&answer(&set("relay", 1), &l).unwrap_err());
        assert!(e.contains("is an output") && e.contains("gives inputs a value"), "{e}");
        let e = refusal(&answer(&set("nope", 1), &l).unwrap_err());
        assert!(e.contains("no GPIO line `nope`"), "{e}");
        let all = answer(&GpioRequest { line: None, set: None }, &l).unwrap();
        let values: Vec<(String, Option<u8>)> = all.into_iter().map(|s| (s.name, s.value)).collect();
        assert_eq!(values, vec![("button".into(), Some(1)), ("relay".into(), Some(0))]);
    }
}
