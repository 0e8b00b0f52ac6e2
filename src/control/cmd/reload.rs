//! `reload`: re-read the compose file and apply the difference (what `up -d` on a running
//! project sends). The controller runs it; this file holds the reply.

use serde::{Deserialize, Serialize};

/// What a reload did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReloadReport {
    /// `+ added`, `- removed`, `~ changed (why)`; empty when nothing changed.
    pub plan: Vec<String>,
    pub failures: Vec<String>,
    pub millis: f64,
}
