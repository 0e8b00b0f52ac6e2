//! `shoal agent`: one board's side of the fleet.
//!
//! The agent runs the device's last good state from its journal at once (before and
//! without the broker), then keeps a session with the broker ([`mqtt`]): every signed
//! document on its device's and groups' desired and vars topics is verified
//! ([`crate::fleet::document`]), checked against the revisions accepted before, and
//! journalled; after a short quiet time the effective state ([`apply::effective`]) is
//! recomputed and, when it changed, applied through the controller's reload ([`stack`]),
//! watched for its health window ([`health`]), kept as the last good state or rolled back.
//! Every change is reported, retained, on the device's `reported` topic.
//!
//! An [`Agent`] is a library type with [`Agent::run`] so that `shoal bench fleet` can run
//! many in one process, each with its own MQTT session.

pub mod apply;
pub mod config;
pub mod health;
pub mod journal;
pub mod mqtt;
pub mod report;
pub mod stack;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use config::{AgentArgs, Settings};
pub use stack::Host;

use self::apply::{Inputs, State};
use self::journal::Journal;
use self::stack::Running;
use crate::fleet::document::{self, check_revision, Accepted, Freshness, Refusal};
use crate::fleet::report::{Refused, Report, Status};
use crate::fleet::topics::{self, Target};

/// How often the health of an applying state and the containers' rows are looked at.
const TICK: Duration = Duration::from_millis(250);
/// A report is republished at least this often (for `fleet ls`'s "last seen").
const REFRESH: Duration = Duration::from_secs(60);

/// Why the agent could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot create the state folder {path}: {source}")]
    StateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Connect(#[from] crate::fleet::connect::ConnectError),
}

/// The state being applied or last applied, and its health watch.
struct Current {
    state: State,
    status: Status,
    reason: Option<String>,
    since: String,
    /// Restart counts at apply and the end of the window, while the window is open.
    watch: Option<(HashMap<String, u32>, Instant)>,
}

/// One device's agent.
pub struct Agent {
    settings: Settings,
    host: Host,
    journal: Journal,
    inputs: Inputs,
    running: Option<Running>,
    /// The state whose files the stack runs now.
    running_id: Option<String>,
    current: Option<Current>,
    report: Report,
    published: Option<String>,
    session: Option<mqtt::Session>,
    /// Document topics that sent something since this connection began: at the marker
    /// ([`mqtt::Incoming::Synced`]) a source not among them was deleted while away.
    heard: std::collections::HashSet<String>,
}

impl Agent {
    pub fn new(settings: Settings, host: Host) -> Self {
        let report = report::new(&settings.device, &settings.groups);
        Agent {
            settings,
            host,
            journal: Journal::default(),
            inputs: Inputs::default(),
            running: None,
            running_id: None,
            current: None,
            report,
            published: None,
            session: None,
            heard: std::collections::HashSet::new(),
        }
    }

    /// The topics the agent reads: its own and its groups' desired and vars.
    pub fn subscriptions(settings: &Settings) -> Vec<String> {
        let own = Target::Device(settings.device.clone());
        let groups = settings.groups.iter().map(|g| Target::Group(g.clone()));
        std::iter::once(own)
            .chain(groups)
            .flat_map(|t| [t.desired_topic(), t.vars_topic()])
            .collect()
    }

    /// Run until `shutdown`: the journal's last good state first, then the broker. On
    /// shutdown it says `offline`, disconnects and stops the stack.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), AgentError> {
        let dir = self.settings.state_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| AgentError::StateDir {
            path: dir.clone(),
            source,
        })?;
        if let Err(e) = journal::register(self.host.images.root(), &dir) {
            tracing::warn!(device = %self.settings.device, "cannot note the state folder {} in the image store ({e}): `shoal images rm` will not know which images its last good state needs", dir.display());
        }
        self.boot().await;
        // After the boot: a credential or TLS file that cannot be read must not keep the
        // last good stack from running.
        let options = match self
            .settings
            .connection
            .mqtt_options(&format!("shoal-agent-{}", self.settings.device))
        {
            Ok(options) => options,
            Err(e) => {
                tracing::error!(device = %self.settings.device, "{e}; running without the broker until restarted");
                shutdown.cancelled().await;
                if let Some(running) = self.running.take() {
                    running.stop().await;
                }
                return Err(e.into());
            }
        };
        let subscriptions = Self::subscriptions(&self.settings);
        self.session = Some(mqtt::start(
            options,
            &self.settings.device,
            subscriptions,
            self.settings.reconnect_max,
        ));
        let mut settle: Option<Instant> = None;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refreshed = Instant::now();
        while let Some(session) = self.session.as_mut() {
            let settling = settle.is_some();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                incoming = session.incoming.recv() => match incoming {
                    Some(mqtt::Incoming::Message { topic, payload }) => {
                        self.heard.insert(topic.clone());
                        if self.on_message(&topic, payload) {
                            settle = Some(Instant::now() + self.settings.settle);
                        }
                    }
                    Some(mqtt::Incoming::Synced) => {
                        if self.forget_unheard() {
                            settle = Some(Instant::now() + self.settings.settle);
                        }
                    }
                    Some(mqtt::Incoming::Connected) => {
                        self.heard.clear();
                        tracing::info!(device = %self.settings.device, "connected to {}", self.settings.connection.url);
                        self.published = None;
                        self.publish();
                    }
                    Some(mqtt::Incoming::Disconnected(why)) => {
                        tracing::warn!(device = %self.settings.device, "broker {}: {why}; reconnecting", self.settings.connection.url);
                    }
                    Some(mqtt::Incoming::SubscribeRefused(topic)) => {
                        tracing::warn!(device = %self.settings.device, "the broker refused the subscription to {topic} (check its ACL)");
                    }
                    None => break,
                },
                _ = sleep_until(settle), if settling => {
                    settle = None;
                    self.evaluate().await;
                }
                _ = tick.tick() => {
                    self.check_health().await;
                    if refreshed.elapsed() >= REFRESH {
                        refreshed = Instant::now();
                        self.published = None;
                    }
                    self.publish();
                }
            }
        }
        if let Some(session) = self.session.take() {
            session.close(&self.settings.device).await;
        }
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        Ok(())
    }

    /// The journal's last good state, re-verified with the keys trusted now, run at once.
    async fn boot(&mut self) {
        let dir = self.settings.state_dir.clone();
        self.journal = match Journal::load(&dir) {
            Ok(journal) => journal,
            Err(e) => {
                tracing::warn!(device = %self.settings.device, "{e}");
                Journal::default()
            }
        };
        let Some(good) = self.journal.last_good.clone() else {
            return;
        };
        for entry in std::iter::once(&good.deployment).chain(&good.vars) {
            let Some((target, kind)) = apply::input_kind(&entry.topic) else {
                continue;
            };
            match document::open(&entry.envelope.to_json(), &target, kind, &self.settings.trust) {
                Ok(doc) => {
                    let map = match kind {
                        document::Kind::Deployment => &mut self.inputs.desired,
                        document::Kind::Vars => &mut self.inputs.vars,
                    };
                    map.insert(entry.topic.clone(), doc);
                }
                Err(refusal) => {
                    tracing::warn!(device = %self.settings.device, "the journalled document of {} no longer verifies ({refusal}); not run", entry.topic);
                    self.inputs = Inputs::default();
                    return;
                }
            }
        }
        tracing::info!(device = %self.settings.device, "running the last good state {} from the journal", good.state_id);
        self.evaluate().await;
    }

    /// At the marker: every source that held a document (from the journal, or from before a
    /// reconnect) but sent nothing on this connection was deleted while the agent was away
    /// (an empty retained message is not kept by the broker, so it is never redelivered).
    /// `true` when the inputs changed.
    fn forget_unheard(&mut self) -> bool {
        let heard = &self.heard;
        let before = self.inputs.desired.len() + self.inputs.vars.len();
        self.inputs.desired.retain(|topic, _| heard.contains(topic));
        self.inputs.vars.retain(|topic, _| heard.contains(topic));
        let after = self.inputs.desired.len() + self.inputs.vars.len();
        if after < before {
            tracing::info!(device = %self.settings.device, "{} document(s) were deleted while the agent was away", before - after);
        }
        after < before
    }

    /// A message on a document topic. `true` when the inputs changed.
    fn on_message(&mut self, topic: &str, payload: Bytes) -> bool {
        let Some((target, kind)) = apply::input_kind(topic) else {
            return false;
        };
        let map = match kind {
            document::Kind::Deployment => &mut self.inputs.desired,
            document::Kind::Vars => &mut self.inputs.vars,
        };
        if payload.is_empty() {
            // Deleted (an empty retained message): fall back to the next source.
            return map.remove(topic).is_some();
        }
        let doc = match document::open(&payload, &target, kind, &self.settings.trust) {
            Ok(doc) => doc,
            Err(refusal) => {
                self.refuse(topic, refusal);
                return false;
            }
        };
        match check_revision(&doc, self.journal.accepted.get(topic)) {
            Err(refusal) => {
                self.refuse(topic, refusal);
                false
            }
            Ok(Freshness::Same) => {
                let map = self.inputs_of(kind);
                if map.contains_key(topic) {
                    return false;
                }
                map.insert(topic.to_owned(), doc);
                true
            }
            Ok(Freshness::New) => {
                self.journal.accepted.insert(
                    topic.to_owned(),
                    Accepted {
                        revision: doc.payload.revision,
                        hash: doc.hash.clone(),
                    },
                );
                self.save_journal();
                self.inputs_of(kind).insert(topic.to_owned(), doc);
                true
            }
        }
    }

    fn inputs_of(&mut self, kind: document::Kind) -> &mut std::collections::BTreeMap<String, document::Verified> {
        match kind {
            document::Kind::Deployment => &mut self.inputs.desired,
            document::Kind::Vars => &mut self.inputs.vars,
        }
    }

    fn refuse(&mut self, topic: &str, refusal: Refusal) {
        let reason = refusal.to_string();
        let first = reason.lines().next().unwrap_or_default().to_owned();
        tracing::warn!(device = %self.settings.device, topic, "refused a document: {first}");
        // The same retained document comes again after every reconnect: one entry for it.
        let revision = refusal.revision();
        self.report
            .refused
            .retain(|r| !(r.topic == topic && r.reason == first && r.revision == revision));
        self.report.push_refused(Refused {
            topic: topic.to_owned(),
            revision,
            reason: first,
            at: document::now_rfc3339(),
        });
        self.published = None;
        self.publish();
    }

    fn save_journal(&self) {
        if let Err(e) = self.journal.save(&self.settings.state_dir) {
            tracing::error!(device = %self.settings.device, "{e}");
        }
    }

    /// Recompute the effective state; apply it when it is new and has not failed before.
    /// With no deployment left (every source deleted) what runs keeps running: an empty
    /// topic is no instruction to stop a board.
    async fn evaluate(&mut self) {
        let Some(state) = apply::effective(&self.settings, &self.inputs) else {
            return;
        };
        if self.current.as_ref().is_some_and(|c| c.state.id == state.id) {
            return;
        }
        if self.journal.is_failed(&state.id) {
            tracing::info!(device = %self.settings.device, "state {} failed before; waiting for a newer document", state.id);
            return;
        }
        self.apply(state).await;
    }

    /// Put `state` on the board: prepare its files and images, then start or reload the
    /// stack, and open its health window. A failure changes nothing that runs.
    async fn apply(&mut self, state: State) {
        tracing::info!(device = %self.settings.device, "applying {}", state.id);
        self.set_current(state.clone(), Status::Applying, None);
        let before = self.running.as_ref().map(Running::rows).unwrap_or_default();
        match self.put_on_board(&state).await {
            Ok(()) => {
                let after = self.running.as_ref().map(Running::rows).unwrap_or_default();
                let baseline = health::baseline(&before, &after);
                if let Some(current) = self.current.as_mut() {
                    current.watch = Some((baseline, Instant::now() + state.health_window));
                }
            }
            Err(reason) => {
                tracing::warn!(device = %self.settings.device, "{} could not be applied: {reason}", state.id);
                self.journal.mark_failed(&state.id);
                self.save_journal();
                let restorable = self.journal.last_good.as_ref().is_some_and(|g| g.state_id != state.id);
                if restorable && self.running.as_ref().is_none_or(|r| !r.is_running()) {
                    // The old stack was stopped for a new project that then did not start:
                    // put the last good one back rather than leave the board empty.
                    self.roll_back(state, reason).await;
                } else {
                    self.set_current(state, Status::Failed, Some(reason));
                }
            }
        }
        self.publish();
    }

    /// Files, images, then the stack: a reload of the running one, or a new one (a first
    /// deployment, another project name, or a stack that was taken down).
    async fn put_on_board(&mut self, state: &State) -> Result<(), String> {
        let prepared = {
            let (state, dir, images) = (state.clone(), self.settings.state_dir.clone(), self.host.images.clone());
            tokio::task::spawn_blocking(move || apply::prepare(&state, &dir, &images))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.0)?
        };
        let reusable = self
            .running
            .as_ref()
            .is_some_and(|r| r.is_running() && r.project == state.project.as_str());
        if reusable {
            if let Some(running) = &self.running {
                running.reload(&prepared.compose).await?;
            }
        } else {
            let old = self.running.take();
            if let Some(old) = old {
                old.stop().await;
            }
            let running = Running::start(&self.host, prepared.compose, self.settings.control_socket).await?;
            self.running = Some(running);
        }
        self.running_id = Some(state.id.clone());
        Ok(())
    }

    fn set_current(&mut self, state: State, status: Status, reason: Option<String>) {
        self.current = Some(Current {
            state,
            status,
            reason,
            since: document::now_rfc3339(),
            watch: None,
        });
        self.published = None;
    }

    /// Judge the open health window, if any.
    async fn check_health(&mut self) {
        let Some(current) = self.current.as_ref() else { return };
        let Some((baseline, deadline)) = current.watch.as_ref() else {
            return;
        };
        let rows = self.running.as_ref().map(Running::rows).unwrap_or_default();
        match health::judge(&rows, baseline, Instant::now() >= *deadline) {
            health::Verdict::Pending => {}
            health::Verdict::Healthy => {
                let state = current.state.clone();
                tracing::info!(device = %self.settings.device, "{} is healthy", state.id);
                self.journal.last_good = Some(state.good());
                self.save_journal();
                apply::prune(&self.settings.state_dir, &self.journal, &state.id);
                self.set_current(state, Status::Healthy, None);
            }
            health::Verdict::Unhealthy(reason) => {
                let state = current.state.clone();
                tracing::warn!(device = %self.settings.device, "{} is unhealthy: {reason}", state.id);
                self.journal.mark_failed(&state.id);
                self.save_journal();
                self.roll_back(state, reason).await;
            }
        }
    }

    /// Run the last good state again (when there is one other than `failed`).
    async fn roll_back(&mut self, failed: State, reason: String) {
        let good = self.journal.last_good.clone().filter(|g| g.state_id != failed.id);
        let Some(good) = good else {
            self.set_current(
                failed,
                Status::Unhealthy,
                Some(format!("{reason}; no earlier good state to go back to")),
            );
            return;
        };
        let mut inputs = Inputs::default();
        for entry in std::iter::once(&good.deployment).chain(&good.vars) {
            let Some((target, kind)) = apply::input_kind(&entry.topic) else {
                continue;
            };
            if let Ok(doc) = document::open(&entry.envelope.to_json(), &target, kind, &self.settings.trust) {
                match kind {
                    document::Kind::Deployment => inputs.desired.insert(entry.topic.clone(), doc),
                    document::Kind::Vars => inputs.vars.insert(entry.topic.clone(), doc),
                };
            }
        }
        let restored = match apply::effective(&self.settings, &inputs) {
            Some(state) => self.put_on_board(&state).await,
            None => Err("the journalled last good state no longer verifies".to_owned()),
        };
        let (status, reason) = match restored {
            Ok(()) => (Status::RolledBack, reason),
            Err(why) => (
                Status::Unhealthy,
                format!("{reason}; rolling back to {} failed: {why}", good.state_id),
            ),
        };
        self.set_current(failed, status, Some(reason));
    }

    /// Publish the report when anything in it changed (memory alone does not count).
    fn publish(&mut self) {
        let rows = self.running.as_ref().map(Running::rows).unwrap_or_default();
        self.report.containers = report::containers(&rows);
        self.report.last_good = report::last_good(self.journal.last_good.as_ref());
        self.report.applied = self.current.as_ref().map(|c| {
            report::applied(
                &c.state.source.to_string(),
                c.state.revision,
                &c.state.id,
                c.status,
                c.reason.as_deref(),
                &c.since,
            )
        });
        let mut key = self.report.clone();
        key.at = String::new();
        for c in &mut key.containers {
            c.memory_bytes = 0;
        }
        let key = serde_json::to_string(&key).unwrap_or_default();
        if self.published.as_ref() == Some(&key) {
            return;
        }
        let Some(session) = self.session.as_ref() else { return };
        self.report.at = document::now_rfc3339();
        let bytes = serde_json::to_vec(&self.report).unwrap_or_default();
        session.publish_retained(topics::device_reported(&self.settings.device), bytes);
        self.published = Some(key);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
