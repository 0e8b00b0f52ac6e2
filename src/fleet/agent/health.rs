//! Whether an applied state is healthy: for the whole health window every container is
//! running (or has completed successfully: exit 0) and none has restarted.

use std::collections::{HashMap, HashSet};

use crate::supervisor::ContainerInfo;

/// The judgement of one look at the containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing wrong yet; the window is still open (or a container is still waiting).
    Pending,
    Healthy,
    /// The reason, in words for the report.
    Unhealthy(String),
}

/// Restart counts when the window opened: untouched containers keep theirs (earlier
/// restarts are not this revision's fault), new containers start from 0.
pub fn baseline(before: &[ContainerInfo], after: &[ContainerInfo]) -> HashMap<String, u32> {
    let existed: HashSet<&str> = before.iter().map(|r| r.name.as_str()).collect();
    after
        .iter()
        .map(|r| {
            let base = if existed.contains(r.name.as_str()) {
                r.restarts
            } else {
                0
            };
            (r.name.clone(), base)
        })
        .collect()
}

/// Look at the rows once; `window_over`: the health window has passed.
pub fn judge(rows: &[ContainerInfo], baseline: &HashMap<String, u32>, window_over: bool) -> Verdict {
    if rows.is_empty() && window_over {
        return Verdict::Healthy;
    }
    let mut waiting = None;
    for row in rows {
        let restarts = row
            .restarts
            .saturating_sub(baseline.get(&row.name).copied().unwrap_or(0));
        let restarted = if restarts > 0 {
            format!(
                " ({restarts} restart{} within the health window)",
                if restarts == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        };
        let state = row.state.as_str();
        let ended_badly = match state {
            "running" | "paused" | "stopped" => None,
            "waiting" => {
                waiting = Some(row.name.clone());
                None
            }
            "exited" if row.exit_code == Some(0) => None,
            "exited" => Some(format!("exited with status {}", row.exit_code.unwrap_or(-1))),
            s if s.starts_with("restarting") => Some(s.to_owned()),
            _ => Some(row.exit.clone().unwrap_or_else(|| state.to_owned())),
        };
        match ended_badly {
            Some(how) => return Verdict::Unhealthy(format!("container {} {how}{restarted}", row.name)),
            None if restarts > 0 => {
                return Verdict::Unhealthy(format!("container {} restarted{restarted}", row.name));
            }
            None => {}
        }
    }
    match (window_over, waiting) {
        (false, _) => Verdict::Pending,
        (true, None) => Verdict::Healthy,
        (true, Some(name)) => Verdict::Unhealthy(format!(
            "container {name} was still waiting (for its dependencies) when the health window ended"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, state: &str, code: Option<i32>, restarts: u32) -> ContainerInfo {
        ContainerInfo {
            name: name.into(),
            service: name.into(),
            image: String::new(),
            state: state.into(),
            exit: None,
            exit_code: code,
            started_at: None,
            uptime_seconds: None,
            restarts,
            crash_loop: false,
            memory_bytes: 0,
            cpu_seconds: 0.0,
            messages_in: 0,
            messages_out: 0,
            dropped: 0,
            denied: 0,
            gpio: Vec::new(),
        }
    }

    #[test]
    fn running_or_completed_without_restarts_is_healthy() {
        let rows = [row("a", "running", None, 2), row("b", "exited", Some(0), 0)];
        let base = baseline(&rows, &rows);
        assert_eq!(judge(&rows, &base, false), Verdict::Pending);
        assert_eq!(judge(&rows, &base, true), Verdict::Healthy);
    }

    #[test]
    fn failures_and_restarts_are_named() {
        let before = [row("a", "running", None, 1)];
        let after = [row("a", "running", None, 1), row("s", "running", None, 0)];
        let base = baseline(&before, &after);
        let now = [row("a", "running", None, 1), row("s", "exited", Some(3), 2)];
        assert_eq!(
            judge(&now, &base, false),
            Verdict::Unhealthy("container s exited with status 3 (2 restarts within the health window)".into())
        );
        let now = [row("a", "running", None, 2), row("s", "running", None, 0)];
        assert_eq!(
            judge(&now, &base, false),
            Verdict::Unhealthy("container a restarted (1 restart within the health window)".into())
        );
        let now = [row("a", "running", None, 1), row("s", "waiting", None, 0)];
        assert_eq!(judge(&now, &base, false), Verdict::Pending);
        assert!(matches!(judge(&now, &base, true), Verdict::Unhealthy(_)));
    }
}
