//! `shoal fleet deploy FILE... --to TARGET`: publish a signed deployment, staged.
//!
//! The files were validated before this runs (`cli/fleet.rs`, the same checks as
//! `shoal config`, every registry image pinned to its digest): nothing is published for an
//! invalid stack. Then, for a group:
//! 1. the group's devices come from their retained reports; [`rollout::plan`] orders them
//!    in waves (canaries first, then `--max-unavailable` at a time);
//! 2. each wave gets per-device documents (`devices/<id>/desired`, which win over the
//!    group's on those boards) and is watched until every board reports the new state
//!    healthy ([`rollout::verdict`]);
//! 3. when every wave is healthy, the group's current document is kept as `previous`, the
//!    new one becomes the group's `desired` (boards that join later get it) and the
//!    per-device documents are deleted (an empty retained payload): the boards then run the
//!    group's document, the same stack, so nothing restarts.
//!
//! When a wave fails (a board rolled back, failed or refused the document, or did not report
//! healthy within the health window plus `--timeout`), the rollout stops: the failed wave's
//! per-device documents are deleted so its boards go back to the group's document, the
//! group's document stays as it was, and the error names each board and its reason.
//! Boards of earlier, healthy waves keep the new state through their own documents (the
//! message says so, and how to undo it).
//!
//! For a device target there is one wave of that device, and its document stays.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ed25519_dalek::SigningKey;

use super::{next_revision, read_payload, FleetView, OperatorError, Session};
use crate::fleet::document::{now_rfc3339, DocFile, Envelope, Kind, Payload, MAX_DOCUMENT_BYTES, SCHEMA};
use crate::fleet::report::Report;
use crate::fleet::rollout::{self, AppliedView, Candidate, Observed, RefusalView, Verdict};
use crate::fleet::topics::{self, Target};
use crate::progress::Progress;

/// A validated deployment, ready to sign.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub files: Vec<DocFile>,
    /// Image reference as written -> registry digest.
    pub images: BTreeMap<String, String>,
    pub variables: BTreeMap<String, String>,
    pub project: Option<String>,
}

/// How to roll out.
#[derive(Debug, Clone)]
pub struct Staging {
    pub canary: usize,
    pub max_unavailable: Option<usize>,
    pub health_window: Duration,
    /// Added to the health window: how long a wave may take to pull and start.
    pub timeout: Duration,
}

/// How a rollout ended.
#[derive(Debug)]
pub struct Outcome {
    pub target: Target,
    pub revision: u64,
    pub devices: Vec<String>,
}

/// A rollout that stopped.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe_failure(.target, .revision, .wave, .failures, .kept))]
pub struct RolloutFailed {
    pub target: Target,
    pub revision: u64,
    /// 1-based wave number that failed.
    pub wave: usize,
    /// (device, reason)
    pub failures: Vec<(String, String)>,
    /// Devices of earlier waves that run the new revision through their own documents.
    pub kept: Vec<String>,
}

fn describe_failure(
    target: &Target,
    revision: &u64,
    wave: &usize,
    failures: &[(String, String)],
    kept: &[String],
) -> String {
    let mut text = format!("rollout of revision {revision} to {target} stopped at wave {wave}:");
    for (device, reason) in failures {
        text.push_str(&format!("\n  {device}: {reason}"));
    }
    text.push_str("\n  the failed wave's boards are back on the previous document; no later wave received it");
    if !kept.is_empty() {
        text.push_str(&format!(
            "\n  {} keep revision {revision} through their own documents (healthy in an earlier wave)\n  hint: fix and deploy again, or `shoal fleet rollback device:ID` to put them back on the group's document",
            kept.join(", ")
        ));
    }
    text
}

/// Why a deploy did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error(transparent)]
    Plan(#[from] rollout::PlanError),
    #[error(transparent)]
    Failed(#[from] RolloutFailed),
}

/// Roll `prepared` out to `target` (text as given to `--to`), signed with `key`.
pub async fn deploy(
    session: &mut Session,
    target: &str,
    prepared: &Prepared,
    staging: &Staging,
    key: &SigningKey,
) -> Result<Outcome, DeployError> {
    let (target, plan) = plan_for(session, target, staging).await?;
    // The documents the revision must be above: the target's and every per-device one.
    let mut watched: Vec<String> = plan.devices().map(|id| topics::device_desired(id)).collect();
    if let Target::Group(group) = &target {
        watched.push(topics::group_desired(group));
        watched.push(topics::group_previous(group));
    }
    session.subscribe(&watched).await?;
    let revision = next_revision(session.state(), watched.iter());
    let signed = |target: Target| document(prepared, staging, revision, target, key);
    check_size(signed(target.clone()).len())?;
    let total = plan.devices().count();
    let progress = Progress::new(total as u64, "deploy");
    progress.println(&format!(
        "deploying revision {revision} to {target}: {total} device(s) in {} wave(s){}",
        plan.waves.len(),
        if plan.has_canary { ", canaries first" } else { "" }
    ));
    if !plan.offline.is_empty() {
        progress.println(&format!(
            "offline, not waited for (they get the group's document when they reconnect): {}",
            plan.offline.join(", ")
        ));
    }
    let mut done: Vec<String> = Vec::new();
    for (index, wave) in plan.waves.iter().enumerate() {
        let label = wave_label(&plan, index);
        progress.println(&format!("{label}: {}", wave.join(", ")));
        let published = std::time::SystemTime::now();
        for id in wave {
            let document = signed(Target::Device(id.clone()));
            session.publish_retained(&topics::device_desired(id), document).await?;
        }
        session.sync().await?;
        if let Some(failures) = watch_wave(session, wave, (revision, published), staging, &progress).await? {
            // Back to the group's document for the failed wave; a device target keeps
            // its own (it has no group document to go back to from here).
            let kept = match &target {
                Target::Group(_) => {
                    delete_device_documents(session, wave).await?;
                    done
                }
                Target::Device(_) => Vec::new(),
            };
            return Err(RolloutFailed {
                target,
                revision,
                wave: index + 1,
                failures,
                kept,
            }
            .into());
        }
        progress.println(&format!("{label}: healthy"));
        done.extend(wave.iter().cloned());
    }
    if let Target::Group(group) = &target {
        promote(session, group, signed(target.clone()), &done).await?;
        progress.println(&format!("{target}: revision {revision} is the group's document"));
    }
    Ok(Outcome {
        target,
        revision,
        devices: done,
    })
}

/// The signed deployment document for `target`.
fn document(prepared: &Prepared, staging: &Staging, revision: u64, target: Target, key: &SigningKey) -> Vec<u8> {
    let payload = Payload {
        kind: Kind::Deployment,
        schema: SCHEMA,
        revision,
        target,
        created: now_rfc3339(),
        signer: super::signer(),
        project: prepared.project.clone(),
        files: prepared.files.clone(),
        images: prepared.images.clone(),
        health_window: Some(humantime::format_duration(staging.health_window).to_string()),
        variables: prepared.variables.clone(),
    };
    Envelope::sign(&payload, key).to_json()
}

/// Agents (and their connections) take documents up to [`MAX_DOCUMENT_BYTES`]; a larger
/// one would never arrive, so it is refused before anything is published.
fn check_size(size: usize) -> Result<(), OperatorError> {
    if size > MAX_DOCUMENT_BYTES {
        return Err(OperatorError::Usage(format!(
            "the signed deployment is {size} bytes; boards accept at most {MAX_DOCUMENT_BYTES}\n  hint: the files travel inside the document: keep data out of them"
        )));
    }
    Ok(())
}

/// `canary` for the canary wave, else `wave N`.
fn wave_label(plan: &rollout::Plan, index: usize) -> String {
    if plan.has_canary && index == 0 {
        "canary".to_string()
    } else {
        format!("wave {}", index + 1)
    }
}

/// The target and its waves, from the retained reports.
async fn plan_for(
    session: &mut Session,
    target: &str,
    staging: &Staging,
) -> Result<(Target, rollout::Plan), DeployError> {
    session.subscribe(&FleetView::filters()).await?;
    let fleet = FleetView::from_state(session.state());
    let target = super::resolve_target(target, &fleet)?;
    let devices = match &target {
        Target::Device(id) => vec![id.clone()],
        Target::Group(group) => fleet.group_devices(group),
    };
    if let (Target::Group(group), true) = (&target, devices.is_empty()) {
        return Err(OperatorError::NoDevices { group: group.clone() }.into());
    }
    let candidates: Vec<Candidate> = devices
        .iter()
        .map(|id| Candidate {
            id: id.clone(),
            // A device target is waited for even when offline: it was named.
            online: matches!(target, Target::Device(_)) || fleet.online(id),
        })
        .collect();
    let plan = match &target {
        Target::Device(_) => rollout::plan(&candidates, 0, None)?,
        Target::Group(_) => rollout::plan(&candidates, staging.canary, staging.max_unavailable)?,
    };
    Ok((target, plan))
}

/// Delete the per-device documents of `devices` (an empty retained payload).
async fn delete_device_documents(session: &mut Session, devices: &[String]) -> Result<(), OperatorError> {
    for id in devices {
        session
            .publish_retained(&topics::device_desired(id), Vec::new())
            .await?;
    }
    session.sync().await
}

/// Every wave healthy: the group's current document becomes `previous` (what `fleet
/// rollback` restores), `document` the group's, and the per-device documents go.
async fn promote(session: &mut Session, group: &str, document: Vec<u8>, done: &[String]) -> Result<(), OperatorError> {
    let current = session.state().get(&topics::group_desired(group)).cloned();
    if let Some(current) = current {
        session
            .publish_retained(&topics::group_previous(group), current.to_vec())
            .await?;
    }
    session
        .publish_retained(&topics::group_desired(group), document)
        .await?;
    session.sync().await?;
    delete_device_documents(session, done).await
}

/// Watch one wave until it is done (`None`) or failed (`Some(failures)`).
async fn watch_wave(
    session: &mut Session,
    wave: &[String],
    (revision, published): (u64, std::time::SystemTime),
    staging: &Staging,
    progress: &Progress,
) -> Result<Option<Vec<(String, String)>>, OperatorError> {
    let limit = staging.health_window + staging.timeout;
    let deadline = tokio::time::Instant::now() + limit;
    let members: BTreeSet<&String> = wave.iter().collect();
    let mut healthy: BTreeSet<String> = BTreeSet::new();
    loop {
        // Only this wave's reports are read (a fleet's thousand others are not parsed
        // again at every message).
        let observed: BTreeMap<String, Observed> = wave
            .iter()
            .map(|id| {
                let report = session
                    .state()
                    .get(&topics::device_reported(id))
                    .and_then(|m| serde_json::from_slice::<Report>(m).ok());
                (id.clone(), observe_device(report.as_ref(), id, revision, published))
            })
            .collect();
        for (id, seen) in &observed {
            if *seen == Observed::Healthy && healthy.insert(id.clone()) {
                progress.inc();
                progress.step(&format!("{id} healthy"));
            }
        }
        let expired = tokio::time::Instant::now() >= deadline;
        let why = format!(
            "no healthy report within {} (health window {} + --timeout {})",
            humantime::format_duration(limit),
            humantime::format_duration(staging.health_window),
            humantime::format_duration(staging.timeout)
        );
        match rollout::verdict(wave, &observed, expired.then_some(why.as_str())) {
            Verdict::Done => return Ok(None),
            Verdict::Failed(failures) => return Ok(Some(failures)),
            Verdict::Waiting(_) => {}
        }
        // Wait for the next report of one of this wave's devices, or the deadline.
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(topic) = session.next(left).await? else {
                break;
            };
            if let Some((Target::Device(id), topics::Channel::Reported)) = topics::parse(&topic) {
                if members.contains(&id) {
                    break;
                }
            }
        }
    }
}

/// What a device's report says about `device:<id>@revision`. Refusals older than the
/// wave's documents (`published`, less a little clock skew) are history, not this wave's.
fn observe_device(report: Option<&Report>, id: &str, revision: u64, published: std::time::SystemTime) -> Observed {
    let Some(report) = report else {
        return Observed::Pending;
    };
    let status = report.applied.as_ref().map(|a| a.status.as_str());
    let applied = report.applied.as_ref().zip(status).map(|(a, status)| AppliedView {
        source: &a.source,
        revision: a.revision,
        status,
        reason: a.reason.as_deref(),
    });
    let refused: Vec<RefusalView> = report
        .refused
        .iter()
        .filter(|r| {
            let since = published - Duration::from_secs(2);
            humantime::parse_rfc3339_weak(&r.at).is_ok_and(|at| at >= since)
        })
        .map(|r| RefusalView {
            topic: &r.topic,
            revision: r.revision,
            reason: &r.reason,
        })
        .collect();
    let source = Target::Device(id.to_string()).to_string();
    rollout::observe(
        applied.as_ref(),
        &refused,
        &source,
        &topics::device_desired(id),
        revision,
    )
}

/// The group's `previous` document, re-signed with a new revision (`fleet rollback`).
pub fn resign(topic: &str, message: &[u8], revision: u64, key: &SigningKey) -> Result<Vec<u8>, OperatorError> {
    let mut payload = read_payload(topic, message)?;
    payload.revision = revision;
    payload.created = now_rfc3339();
    payload.signer = super::signer();
    Ok(Envelope::sign(&payload, key).to_json())
}
