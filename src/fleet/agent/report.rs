//! The agent's side of the report: what it knows, turned into [`Report`].

use crate::fleet::report::{AgentInfo, Applied, ContainerReport, Report, StateRef, Status};
use crate::supervisor::ContainerInfo;

use super::journal::GoodState;

/// Each container's row as the report carries it.
pub fn containers(rows: &[ContainerInfo]) -> Vec<ContainerReport> {
    rows.iter()
        .map(|r| {
            let fine = matches!(r.state.as_str(), "running" | "paused" | "waiting" | "stopped")
                || (r.state == "exited" && r.exit_code == Some(0));
            ContainerReport {
                name: r.name.clone(),
                state: r.state.clone(),
                restarts: r.restarts,
                memory_bytes: r.memory_bytes,
                last_error: if fine { None } else { r.exit.clone() },
            }
        })
        .collect()
}

/// The applied part.
pub fn applied(
    source: &str,
    revision: u64,
    state_id: &str,
    status: Status,
    reason: Option<&str>,
    since: &str,
) -> Applied {
    Applied {
        source: source.to_owned(),
        revision,
        state_id: state_id.to_owned(),
        status,
        reason: reason.map(str::to_owned),
        since: since.to_owned(),
    }
}

pub fn last_good(good: Option<&GoodState>) -> Option<StateRef> {
    good.map(|g| StateRef {
        source: g.source.clone(),
        revision: g.revision,
        state_id: g.state_id.clone(),
    })
}

/// An empty report for a device.
pub fn new(device: &str, groups: &[String]) -> Report {
    Report {
        device: device.to_owned(),
        groups: groups.to_vec(),
        agent: AgentInfo::this(),
        applied: None,
        last_good: None,
        refused: Vec::new(),
        containers: Vec::new(),
        at: crate::fleet::document::now_rfc3339(),
    }
}
