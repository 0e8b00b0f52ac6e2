//! `shoal fleet ls [--group G] [--format json]`: the devices as their retained reports and
//! statuses show them: id, groups, online, the applied revision and its health, last seen.

use std::time::{Duration, SystemTime};

use super::FleetView;

/// One row of `fleet ls` (also its JSON form).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceRow {
    pub device: String,
    pub groups: Vec<String>,
    pub online: bool,
    /// `group:g` / `device:d` of the applied deployment.
    pub source: Option<String>,
    pub revision: Option<u64>,
    pub state_id: Option<String>,
    /// `applying`, `healthy`, `unhealthy`, `rolled-back`, `failed`.
    pub health: Option<String>,
    pub reason: Option<String>,
    pub containers: usize,
    /// RFC 3339 time of the last report.
    pub last_seen: Option<String>,
    /// The report could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// The rows, by device id; `group` keeps only its members. Every report is read even for
/// one group: membership is what each board's report says, and no topic lists a group's
/// devices (the inventory is the ACL's input, not what the boards run; see README "Fleet").
pub fn rows(fleet: &FleetView, group: Option<&str>) -> Vec<DeviceRow> {
    fleet
        .devices()
        .into_iter()
        .filter_map(|id| {
            let report = fleet.reports.get(&id);
            if let Some(group) = group {
                if !report.is_some_and(|r| r.groups.iter().any(|g| g == group)) {
                    return None;
                }
            }
            let applied = report.and_then(|r| r.applied.as_ref());
            Some(DeviceRow {
                online: fleet.online(&id),
                groups: report.map(|r| r.groups.clone()).unwrap_or_default(),
                source: applied.map(|a| a.source.clone()),
                revision: applied.map(|a| a.revision),
                state_id: applied.map(|a| a.state_id.clone()),
                health: applied.map(|a| a.status.to_string()),
                reason: applied.and_then(|a| a.reason.clone()),
                containers: report.map_or(0, |r| r.containers.len()),
                last_seen: report.map(|r| r.at.clone()),
                unreadable: fleet.unreadable.get(&id).cloned(),
                device: id,
            })
        })
        .collect()
}

/// The rows as a table.
pub fn table(rows: &[DeviceRow], now: SystemTime) -> String {
    let mut lines = vec![[
        "DEVICE".to_string(),
        "GROUPS".into(),
        "ONLINE".into(),
        "REVISION".into(),
        "HEALTH".into(),
        "CONTAINERS".into(),
        "LAST SEEN".into(),
    ]];
    for row in rows {
        let revision = match (&row.source, row.revision) {
            (Some(source), Some(revision)) => format!("{source}@{revision}"),
            _ => "-".into(),
        };
        let health = match (&row.health, &row.unreadable) {
            (_, Some(why)) => format!("unreadable report: {why}"),
            (Some(health), None) => match &row.reason {
                Some(reason) => format!("{health} ({reason})"),
                None => health.clone(),
            },
            (None, None) => "-".into(),
        };
        lines.push([
            row.device.clone(),
            if row.groups.is_empty() {
                "-".into()
            } else {
                row.groups.join(",")
            },
            if row.online { "yes".into() } else { "no".into() },
            revision,
            health,
            row.containers.to_string(),
            row.last_seen.as_deref().map_or("-".into(), |at| ago(at, now)),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in lines {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i + 1 == line.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// `12s ago` for an RFC 3339 time (the time itself when it does not parse).
fn ago(at: &str, now: SystemTime) -> String {
    match humantime::parse_rfc3339_weak(at) {
        Ok(then) => {
            let secs = now.duration_since(then).unwrap_or(Duration::ZERO).as_secs();
            format!("{} ago", humantime::format_duration(Duration::from_secs(secs)))
        }
        Err(_) => at.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::report::Report;

    #[test]
    fn rows_and_table() {
        let mut fleet = FleetView::default();
        let report: Report = serde_json::from_value(serde_json::json!({
            "device": "pi-01", "groups": ["line-3"], "agent": {"version": "0", "platform": "x"},
            "applied": {"source": "group:line-3", "revision": 7, "state_id": "group:line-3@7+vars:00000000",
                        "status": "healthy", "since": "2026-01-01T00:00:00Z"},
            "last_good": null, "refused": [], "containers": [], "at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        fleet.reports.insert("pi-01".into(), report);
        fleet.status.insert("pi-01".into(), "online".into());
        fleet.status.insert("pi-02".into(), "offline".into());
        let all = rows(&fleet, None);
        assert_eq!(all.len(), 2);
        assert!(all[0].online && !all[1].online);
        assert_eq!(rows(&fleet, Some("line-3")).len(), 1);
        assert_eq!(rows(&fleet, Some("other")).len(), 0);
        let now = humantime::parse_rfc3339("2026-01-01T00:00:12Z").unwrap();
        let text = table(&all, now);
        let line = text.lines().nth(1).unwrap();
        assert!(
            line.contains("group:line-3@7") && line.contains("healthy") && line.contains("12s ago"),
            "{text}"
        );
        assert!(text.lines().nth(2).unwrap().starts_with("pi-02"), "{text}");
    }
}
