//! `shoal fleet rollback GROUP|DEVICE`.
//!
//! A group: its `previous` document (kept by `fleet deploy`) is signed again with a new
//! revision and published as the group's `desired`; the document it replaces becomes
//! `previous`, so a second rollback undoes the first. (Re-signing is needed: the agents
//! refuse the old revision as a replay.)
//!
//! A device: its own document is deleted, so it runs its group's document again. A
//! device without a document of its own already runs its group's: roll back the group.

use ed25519_dalek::SigningKey;

use super::deploy::resign;
use super::{next_revision, resolve_target, FleetView, OperatorError, Session};
use crate::fleet::topics::{self, Target};

/// What was done, for the command's output.
pub async fn rollback(session: &mut Session, target: &str, key: &SigningKey) -> Result<String, OperatorError> {
    session.subscribe(&FleetView::filters()).await?;
    let fleet = FleetView::from_state(session.state());
    let target = resolve_target(target, &fleet)?;
    match &target {
        Target::Group(group) => {
            let desired = topics::group_desired(group);
            let previous = topics::group_previous(group);
            session.subscribe(&[desired.clone(), previous.clone()]).await?;
            let Some(old) = session.state().get(&previous).cloned() else {
                return Err(OperatorError::Usage(format!(
                    "group `{group}` has no previous document to roll back to (one is kept by each `shoal fleet deploy` after the first)"
                )));
            };
            let current = session.state().get(&desired).cloned();
            let revision = next_revision(session.state(), [&desired, &previous]);
            let document = resign(&previous, &old, revision, key)?;
            if let Some(current) = current {
                session.publish_retained(&previous, current.to_vec()).await?;
            }
            session.publish_retained(&desired, document).await?;
            session.sync().await?;
            let old_revision = super::read_payload(&previous, &old)?.revision;
            Ok(format!(
                "{target}: the document of revision {old_revision} is the group's again, as revision {revision}"
            ))
        }
        Target::Device(id) => {
            let desired = topics::device_desired(id);
            session.subscribe(std::slice::from_ref(&desired)).await?;
            if !session.state().contains_key(&desired) {
                let groups = fleet.reports.get(id).map(|r| r.groups.join(", ")).unwrap_or_default();
                return Err(OperatorError::Usage(format!(
                    "device `{id}` has no document of its own; it runs its group's ({groups})\n  hint: roll back the group: `shoal fleet rollback group:NAME`"
                )));
            }
            session.publish_retained(&desired, Vec::new()).await?;
            session.sync().await?;
            Ok(format!(
                "{target}: its own document is deleted; it runs its group's document again"
            ))
        }
    }
}
