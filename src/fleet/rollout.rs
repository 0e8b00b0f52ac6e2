//! Staged rollout, as pure functions: which devices get a new deployment in which order
//! (canaries, then waves), and whether a wave has finished, failed or is still waiting.
//! `fleet deploy` drives these with the broker's retained reports; nothing here does I/O,
//! so every rule is unit-tested without a broker.
//!
//! The rules:
//! * Only online devices are in the waves, ordered by id, so a plan is the same on every run
//!   and no wave waits for a board that cannot answer. Offline boards are listed apart:
//!   they get the group's document when they reconnect (it is published after the last
//!   wave).
//! * `--canary N`: the first N devices form wave 0, alone.
//! * `--max-unavailable N`: every later wave holds at most N devices (a wave's boards are
//!   the ones that may be down at once while they apply); without it the rest is one wave.
//! * A wave **fails** as soon as one of its devices reports the new state `rolled-back`,
//!   `unhealthy` or `failed`, or has refused the document; it **times out** when some
//!   device has not reported the new state healthy by the deadline (health window +
//!   `--timeout`, counted from when the wave's documents were published). Either stops the
//!   rollout. A wave **succeeds** when every device reports the new state healthy.

use std::collections::BTreeMap;

/// One device of the target group, as the retained reports show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub online: bool,
}

/// The order of a rollout: the waves, canaries first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Each inner list is one wave; `waves[0]` is the canary wave when `canary > 0`.
    pub waves: Vec<Vec<String>>,
    /// Wave 0 holds the canaries.
    pub has_canary: bool,
    /// Devices left out because they are offline.
    pub offline: Vec<String>,
}

impl Plan {
    /// Every device of the plan, in order.
    pub fn devices(&self) -> impl Iterator<Item = &String> {
        self.waves.iter().flatten()
    }
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the group has no devices (no device has reported membership; is its agent running with this group?)")]
    NoDevices,
    #[error("--canary {canary} is more than the {devices} online device(s) of the group")]
    TooManyCanaries { canary: usize, devices: usize },
    #[error("--max-unavailable must be at least 1")]
    ZeroUnavailable,
    #[error("no device of the group is online (offline: {})", .0.join(", "))]
    NoneOnline(Vec<String>),
}

/// The waves for `devices`. See the module rules.
pub fn plan(devices: &[Candidate], canary: usize, max_unavailable: Option<usize>) -> Result<Plan, PlanError> {
    if max_unavailable == Some(0) {
        return Err(PlanError::ZeroUnavailable);
    }
    let mut ordered: Vec<&Candidate> = devices.iter().collect();
    // By id first so duplicates sit together, then online first (a stable sort keeps the ids' order).
    ordered.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| b.online.cmp(&a.online)));
    ordered.dedup_by(|a, b| a.id == b.id);
    if ordered.is_empty() {
        return Err(PlanError::NoDevices);
    }
    let (online, offline): (Vec<&Candidate>, Vec<&Candidate>) = ordered.into_iter().partition(|d| d.online);
    let offline: Vec<String> = offline.into_iter().map(|d| d.id.clone()).collect();
    let ids: Vec<String> = online.into_iter().map(|d| d.id.clone()).collect();
    if ids.is_empty() {
        return Err(PlanError::NoneOnline(offline));
    }
    if canary > ids.len() {
        return Err(PlanError::TooManyCanaries {
            canary,
            devices: ids.len(),
        });
    }
    let (canaries, rest) = ids.split_at(canary);
    let mut waves = Vec::new();
    if !canaries.is_empty() {
        waves.push(canaries.to_vec());
    }
    let size = max_unavailable.unwrap_or(rest.len()).max(1);
    waves.extend(rest.chunks(size).map(<[String]>::to_vec));
    Ok(Plan {
        waves,
        has_canary: canary > 0,
        offline,
    })
}

/// What a device's report says about the state being rolled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// No report yet, or a report about another state, or the new state still applying.
    Pending,
    /// The new state ran through its health window.
    Healthy,
    /// The new state failed on the device; the words are the agent's reason.
    Failed(String),
}

/// A device's applied state as its report gives it (the fields the verdict needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedView<'a> {
    pub source: &'a str,
    pub revision: u64,
    pub status: &'a str,
    pub reason: Option<&'a str>,
}

/// A refusal in a device's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalView<'a> {
    pub topic: &'a str,
    pub revision: Option<u64>,
    pub reason: &'a str,
}

/// Judge one device: the new state is `source@revision` (source `device:<id>` or
/// `group:<name>`), published on `topic`.
pub fn observe(
    applied: Option<&AppliedView<'_>>,
    refused: &[RefusalView<'_>],
    source: &str,
    topic: &str,
    revision: u64,
) -> Observed {
    if let Some(refusal) = refused
        .iter()
        .find(|r| r.topic == topic && r.revision.is_none_or(|rev| rev == revision))
    {
        return Observed::Failed(format!("refused the document: {}", refusal.reason));
    }
    let Some(applied) = applied else {
        return Observed::Pending;
    };
    if applied.source != source || applied.revision != revision {
        return Observed::Pending;
    }
    match applied.status {
        "healthy" => Observed::Healthy,
        "rolled-back" | "unhealthy" | "failed" => Observed::Failed(match applied.reason {
            Some(reason) => format!("{}: {reason}", applied.status),
            None => applied.status.to_string(),
        }),
        _ => Observed::Pending,
    }
}

/// Where a wave stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every device reported the new state healthy.
    Done,
    /// Still waiting for these devices.
    Waiting(Vec<String>),
    /// These devices failed (id, reason): stop.
    Failed(Vec<(String, String)>),
}

/// The wave's verdict from its devices' observations. `expired`: the deadline has passed,
/// so devices still pending count as failed ("no healthy report within ...").
pub fn verdict(wave: &[String], observed: &BTreeMap<String, Observed>, expired: Option<&str>) -> Verdict {
    let mut failed = Vec::new();
    let mut waiting = Vec::new();
    for id in wave {
        match observed.get(id).unwrap_or(&Observed::Pending) {
            Observed::Healthy => {}
            Observed::Failed(reason) => failed.push((id.clone(), reason.clone())),
            Observed::Pending => waiting.push(id.clone()),
        }
    }
    if !failed.is_empty() {
        return Verdict::Failed(failed);
    }
    if waiting.is_empty() {
        return Verdict::Done;
    }
    match expired {
        Some(why) => Verdict::Failed(waiting.into_iter().map(|id| (id, why.to_string())).collect()),
        None => Verdict::Waiting(waiting),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(list: &[(&str, bool)]) -> Vec<Candidate> {
        list.iter()
            .map(|(id, online)| Candidate {
                id: id.to_string(),
                online: *online,
            })
            .collect()
    }

    fn ids(waves: &[&[&str]]) -> Vec<Vec<String>> {
        waves
            .iter()
            .map(|w| w.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn canary_first_then_waves_of_max_unavailable() {
        let d = devices(&[("e", true), ("a", true), ("c", true), ("b", true), ("d", true)]);
        let p = plan(&d, 1, Some(2)).unwrap();
        assert_eq!(p.waves, ids(&[&["a"], &["b", "c"], &["d", "e"]]));
        assert!(p.has_canary);
        assert_eq!(p.devices().count(), 5);
    }

    #[test]
    fn without_flags_one_wave_of_everything_online() {
        let d = devices(&[("c", true), ("b", true), ("a", false)]);
        let p = plan(&d, 0, None).unwrap();
        assert_eq!(p.waves, ids(&[&["b", "c"]]));
        assert!(!p.has_canary);
        assert_eq!(p.offline, ["a"]);
    }

    #[test]
    fn offline_devices_are_left_out_and_never_canaries() {
        let d = devices(&[("a", false), ("b", true), ("c", false), ("d", true)]);
        let p = plan(&d, 1, Some(1)).unwrap();
        assert_eq!(p.waves, ids(&[&["b"], &["d"]]));
        assert_eq!(p.offline, ["a", "c"]);
        // Canaries are counted among the online devices.
        assert_eq!(
            plan(&d, 3, None),
            Err(PlanError::TooManyCanaries { canary: 3, devices: 2 })
        );
        let d = devices(&[("a", false)]);
        assert_eq!(plan(&d, 0, None), Err(PlanError::NoneOnline(vec!["a".into()])));
    }

    #[test]
    fn canary_of_everything_and_duplicates() {
        // A device that reported twice counts once.
        let d = devices(&[("a", true), ("a", true), ("b", true)]);
        assert_eq!(plan(&d, 2, None).unwrap().waves, ids(&[&["a", "b"]]));
        assert_eq!(
            plan(&d, 3, None),
            Err(PlanError::TooManyCanaries { canary: 3, devices: 2 })
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(plan(&[], 0, None), Err(PlanError::NoDevices));
        let d = devices(&[("a", true)]);
        assert_eq!(
            plan(&d, 2, None),
            Err(PlanError::TooManyCanaries { canary: 2, devices: 1 })
        );
        assert_eq!(plan(&d, 0, Some(0)), Err(PlanError::ZeroUnavailable));
    }

    fn applied<'a>(source: &'a str, revision: u64, status: &'a str, reason: Option<&'a str>) -> AppliedView<'a> {
        AppliedView {
            source,
            revision,
            status,
            reason,
        }
    }

    #[test]
    fn observation_of_the_new_state_only() {
        let t = "shoal/v1/devices/a/desired";
        let s = "device:a";
        assert_eq!(observe(None, &[], s, t, 7), Observed::Pending);
        // The old state healthy says nothing about the new one.
        assert_eq!(
            observe(Some(&applied(s, 6, "healthy", None)), &[], s, t, 7),
            Observed::Pending
        );
        assert_eq!(
            observe(Some(&applied("group:g", 7, "healthy", None)), &[], s, t, 7),
            Observed::Pending
        );
        assert_eq!(
            observe(Some(&applied(s, 7, "applying", None)), &[], s, t, 7),
            Observed::Pending
        );
        assert_eq!(
            observe(Some(&applied(s, 7, "healthy", None)), &[], s, t, 7),
            Observed::Healthy
        );
        assert_eq!(
            observe(
                Some(&applied(s, 7, "rolled-back", Some("container x exited with status 3"))),
                &[],
                s,
                t,
                7
            ),
            Observed::Failed("rolled-back: container x exited with status 3".into())
        );
        assert_eq!(
            observe(Some(&applied(s, 7, "failed", None)), &[], s, t, 7),
            Observed::Failed("failed".into())
        );
        let refused = [RefusalView {
            topic: t,
            revision: Some(7),
            reason: "unknown key",
        }];
        assert_eq!(
            observe(Some(&applied(s, 6, "healthy", None)), &refused, s, t, 7),
            Observed::Failed("refused the document: unknown key".into())
        );
        // A refusal of an older revision on that topic is history.
        let old = [RefusalView {
            topic: t,
            revision: Some(3),
            reason: "replay",
        }];
        assert_eq!(observe(None, &old, s, t, 7), Observed::Pending);
    }

    #[test]
    fn verdicts() {
        let wave: Vec<String> = vec!["a".into(), "b".into()];
        let mut seen = BTreeMap::new();
        assert_eq!(verdict(&wave, &seen, None), Verdict::Waiting(wave.clone()));
        seen.insert("a".to_string(), Observed::Healthy);
        assert_eq!(verdict(&wave, &seen, None), Verdict::Waiting(vec!["b".into()]));
        assert_eq!(
            verdict(&wave, &seen, Some("no healthy report within 40s")),
            Verdict::Failed(vec![("b".into(), "no healthy report within 40s".into())])
        );
        seen.insert("b".to_string(), Observed::Healthy);
        assert_eq!(verdict(&wave, &seen, None), Verdict::Done);
        seen.insert("a".to_string(), Observed::Failed("rolled-back".into()));
        seen.insert("b".to_string(), Observed::Pending);
        // One failure stops the wave at once, without waiting for the rest.
        assert_eq!(
            verdict(&wave, &seen, None),
            Verdict::Failed(vec![("a".into(), "rolled-back".into())])
        );
    }
}
