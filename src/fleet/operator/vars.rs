//! `shoal fleet vars set|unset|show --group G|--device D`: signed variable documents
//! (Balena's device and fleet variables). The agent interpolates the compose files with,
//! highest first: `DEVICE_ID`/`DEVICE_GROUPS`, the device's vars, its groups' vars, the
//! deployment's own `variables`. A change makes a new applied state on the boards it
//! reaches, with the same health check and rollback as a deployment.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;

use super::{next_revision, read_payload, OperatorError, Session};
use crate::fleet::document::{now_rfc3339, Envelope, Kind, Payload, SCHEMA};
use crate::fleet::topics::Target;

/// What to change.
pub enum Change {
    Set(BTreeMap<String, String>),
    Unset(Vec<String>),
}

/// The target's current variables (empty when it has no document).
pub async fn show(session: &mut Session, target: &Target) -> Result<BTreeMap<String, String>, OperatorError> {
    let topic = target.vars_topic();
    session.subscribe(std::slice::from_ref(&topic)).await?;
    match session.state().get(&topic) {
        Some(message) => Ok(read_payload(&topic, message)?.variables),
        None => Ok(BTreeMap::new()),
    }
}

/// Apply `change` and publish the signed result; returns the new variables and revision.
pub async fn change(
    session: &mut Session,
    target: &Target,
    change: Change,
    key: &SigningKey,
) -> Result<(BTreeMap<String, String>, u64), OperatorError> {
    let mut variables = show(session, target).await?;
    match change {
        Change::Set(values) => variables.extend(values),
        Change::Unset(names) => {
            for name in names {
                if variables.remove(&name).is_none() {
                    return Err(OperatorError::Usage(format!("{target} has no variable `{name}`")));
                }
            }
        }
    }
    let topic = target.vars_topic();
    let revision = next_revision(session.state(), [&topic]);
    let payload = Payload {
        kind: Kind::Vars,
        schema: SCHEMA,
        revision,
        target: target.clone(),
        created: now_rfc3339(),
        signer: super::signer(),
        project: None,
        files: Vec::new(),
        images: BTreeMap::new(),
        health_window: None,
        variables: variables.clone(),
    };
    session
        .publish_retained(&topic, Envelope::sign(&payload, key).to_json())
        .await?;
    session.sync().await?;
    Ok((variables, revision))
}
