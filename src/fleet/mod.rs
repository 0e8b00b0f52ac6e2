//! Fleet deployment (issue 18): signed desired state through an MQTT broker.
//!
//! An operator publishes signed, retained documents (deployments and variables) on
//! per-device and per-group topics ([`topics`]); each board's agent ([`agent`]) verifies
//! them against the keys it trusts ([`keys`], [`document`]), applies the effective
//! deployment through the same reload engine as `shoal up -d`, watches its health, rolls
//! back when it fails, and reports retained state ([`report`]). The broker only carries
//! documents: one that is compromised can stop updates, never run code on a board.
//! [`connect`] holds the broker settings both sides read.

pub mod agent;
pub mod connect;
pub mod document;
pub mod keys;
pub mod report;
pub mod topics;
// fleet-ops: the operator commands and the rollout plan.
pub mod operator;
pub mod rollout;
