//! The agent's report, retained on `shoal/v1/devices/<id>/reported`: what it runs, how that
//! went, what it refused, and each container's state. Shared by the agent (writes) and the
//! operator commands (`fleet ls`, `fleet ps`, the rollout's wait for health).

/// At most this many refusals are kept in a report, most recent first.
pub const MAX_REFUSED: usize = 10;

/// The whole report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub device: String,
    pub groups: Vec<String>,
    pub agent: AgentInfo,
    /// The state being applied or last applied; `None` before the first deployment.
    pub applied: Option<Applied>,
    /// The last state that passed its health window.
    pub last_good: Option<StateRef>,
    /// Documents refused, most recent first, at most [`MAX_REFUSED`].
    #[serde(default)]
    pub refused: Vec<Refused>,
    #[serde(default)]
    pub containers: Vec<ContainerReport>,
    /// RFC 3339 time of this report.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentInfo {
    pub version: String,
    /// `linux/arm64`.
    pub platform: String,
}

impl AgentInfo {
    /// This shoal's.
    pub fn this() -> Self {
        AgentInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: crate::registry::host_platform(),
        }
    }
}

/// Where an applied state stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Started; the health window is running.
    Applying,
    /// Passed its health window.
    Healthy,
    /// Failed its health window and there was no good state to go back to.
    Unhealthy,
    /// Failed; the last good state runs again.
    RolledBack,
    /// Could not be applied at all (images, files); what ran before keeps running.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Applying => "applying",
            Status::Healthy => "healthy",
            Status::Unhealthy => "unhealthy",
            Status::RolledBack => "rolled-back",
            Status::Failed => "failed",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An applied state: `source` is the deployment's target (`group:g`, `device:d`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    pub source: String,
    pub revision: u64,
    pub state_id: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339: when the status last changed.
    pub since: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateRef {
    pub source: String,
    pub revision: u64,
    pub state_id: String,
}

/// One refused document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refused {
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    pub reason: String,
    /// RFC 3339.
    pub at: String,
}

/// One container of the running stack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerReport {
    pub name: String,
    pub state: String,
    pub restarts: u32,
    pub memory_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Report {
    /// Put a refusal first, keeping at most [`MAX_REFUSED`].
    pub fn push_refused(&mut self, refused: Refused) {
        self.refused.insert(0, refused);
        self.refused.truncate(MAX_REFUSED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_reads_as_documented() {
        let mut report = Report {
            device: "d1".into(),
            groups: vec!["g".into()],
            agent: AgentInfo::this(),
            applied: Some(Applied {
                source: "group:g".into(),
                revision: 7,
                state_id: "group:g@7+vars:0badc0de".into(),
                status: Status::RolledBack,
                reason: Some("container s exited with status 3".into()),
                since: "2026-12-02T06:00:00Z".into(),
            }),
            last_good: None,
            refused: vec![],
            containers: vec![],
            at: "2026-12-02T06:00:01Z".into(),
        };
        for i in 0..12 {
            report.push_refused(Refused {
                topic: "t".into(),
                revision: Some(i),
                reason: "r".into(),
                at: "x".into(),
            });
        }
        assert_eq!(report.refused.len(), MAX_REFUSED);
        assert_eq!(report.refused[0].revision, Some(11));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["applied"]["status"], "rolled-back");
        assert_eq!(json["last_good"], serde_json::Value::Null);
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
