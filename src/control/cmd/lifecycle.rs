//! `stop`, `start`, `restart`, `kill`, `pause`, `unpause`: one verb over named containers
//! (none named: all), run by the controller one container at a time.

use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Request;
use crate::control::{Client, ControlError, ProjectArgs};
use crate::runtime::ExitStatus;
use crate::supervisor::{LifecycleError, Outcome, Supervisor};

/// Which lifecycle verb a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Stop,
    Start,
    Restart,
    Kill,
    Pause,
    Unpause,
}

impl Verb {
    /// The verb of a lifecycle request and the containers it names.
    pub fn of(request: &Request) -> Option<(Verb, &[String])> {
        let (verb, names) = match request {
            Request::Stop { names, .. } => (Verb::Stop, names),
            Request::Start { names } => (Verb::Start, names),
            Request::Restart { names, .. } => (Verb::Restart, names),
            Request::Kill { names } => (Verb::Kill, names),
            Request::Pause { names } => (Verb::Pause, names),
            Request::Unpause { names } => (Verb::Unpause, names),
            _ => return None,
        };
        Some((verb, names.as_slice()))
    }

    /// The request that asks for this verb on `names` (empty: every container).
    pub fn request(self, names: Vec<String>) -> Request {
        match self {
            Verb::Stop => Request::Stop { names, timeout: None },
            Verb::Start => Request::Start { names },
            Verb::Restart => Request::Restart { names, timeout: None },
            Verb::Kill => Request::Kill { names },
            Verb::Pause => Request::Pause { names },
            Verb::Unpause => Request::Unpause { names },
        }
    }

    /// Apply the verb to one container; `Ok` says what happened. `timeout` (`stop -t`,
    /// `restart -t`) replaces the container's `stop_timeout`.
    async fn run(
        self,
        supervisor: &mut Supervisor,
        name: &str,
        timeout: Option<Duration>,
    ) -> Result<String, LifecycleError> {
        match self {
            Verb::Stop => supervisor.stop_within(name, timeout).await.map(|o| match o {
                Outcome::Finished(ExitStatus::Stopped) => "stopped".to_owned(),
                o => format!("stopped ({o})"),
            }),
            Verb::Kill => supervisor.kill(name).await.map(|o| match o {
                Outcome::Finished(ExitStatus::Stopped | ExitStatus::Killed) => "killed".to_owned(),
                o => format!("killed ({o})"),
            }),
            Verb::Start => supervisor.start(name).map(|()| "started".to_owned()),
            Verb::Restart => supervisor
                .restart_within(name, timeout)
                .await
                .map(|()| "restarted".to_owned()),
            Verb::Pause => supervisor
                .set_paused(name, true)
                .map(|changed| if changed { "paused" } else { "already paused" }.to_owned()),
            Verb::Unpause => supervisor
                .set_paused(name, false)
                .map(|changed| if changed { "unpaused" } else { "was not paused" }.to_owned()),
        }
    }
}

/// Result of a lifecycle verb for one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerbResult {
    pub name: String,
    /// What happened (`stopped: exited with code 0`), or why nothing did.
    pub result: String,
    pub ok: bool,
}

/// Run `verb` on each named container (none named: every one), in order. A refusal for
/// one container is its row's result and does not stop the others.
pub async fn apply(
    supervisor: &mut Supervisor,
    verb: Verb,
    names: &[String],
    timeout: Option<Duration>,
) -> Vec<VerbResult> {
    let names = if names.is_empty() {
        supervisor.names()
    } else {
        names.to_vec()
    };
    let mut results = Vec::with_capacity(names.len());
    for name in names {
        results.push(match verb.run(supervisor, &name, timeout).await {
            Ok(result) => VerbResult { name, result, ok: true },
            Err(e) => VerbResult {
                name,
                result: e.to_string(),
                ok: false,
            },
        });
    }
    results
}

/// Print each container's result like `docker compose`; exit 1 when any was refused.
pub fn print(client: &Client, request: Request) -> Result<ExitCode, ControlError> {
    let results: Vec<VerbResult> = client.call_as(request)?;
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

/// The arguments of `stop`, `start`, `restart`, `kill`, `pause`, `unpause`.
#[derive(clap::Args, Debug)]
pub struct NamesArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Containers [default: all]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// Send `verb` for the named containers (all when none is named) and print the results.
pub fn run(verb: Verb, args: NamesArgs) -> anyhow::Result<ExitCode> {
    Ok(print(&args.project.client()?, verb.request(args.names))?)
}

/// The arguments of `stop` and `restart`: the names, and how long to wait.
#[derive(clap::Args, Debug)]
pub struct StopArgs {
    #[command(flatten)]
    pub names: NamesArgs,
    /// Seconds to wait for each container to end before it is killed [default: its
    /// `stop_timeout`]
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
}

/// `stop` / `restart` with their `-t`.
pub fn run_with_timeout(verb: Verb, args: StopArgs) -> anyhow::Result<ExitCode> {
    let request = match verb.request(args.names.names) {
        Request::Stop { names, .. } => Request::Stop {
            names,
            timeout: args.timeout,
        },
        Request::Restart { names, .. } => Request::Restart {
            names,
            timeout: args.timeout,
        },
        other => other,
    };
    Ok(print(&args.names.project.client()?, request)?)
}

impl Request {
    /// `-t` of a `stop`, `restart` or `down` request.
    pub fn stop_timeout(&self) -> Option<Duration> {
        match self {
            Request::Stop { timeout, .. } | Request::Restart { timeout, .. } | Request::Down { timeout } => {
                timeout.map(Duration::from_secs)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lifecycle_requests_have_a_verb() {
        let names = vec!["a".to_owned()];
        let stop = Request::Stop {
            names: names.clone(),
            timeout: None,
        };
        assert_eq!(Verb::of(&stop), Some((Verb::Stop, names.as_slice())));
        assert_eq!(
            Verb::of(&Request::Unpause { names: vec![] }).map(|(v, _)| v),
            Some(Verb::Unpause)
        );
        assert_eq!(Verb::of(&Request::Reload { files: vec![] }), None);
        assert_eq!(Verb::of(&Request::Ps), None);
        assert!(stop.is_mutation() && Request::Down { timeout: None }.is_mutation() && !Request::Stats.is_mutation());
    }
}
