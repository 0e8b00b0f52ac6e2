//! Runs a validated stack: loads each image once, starts containers in `depends_on` order,
//! reports how each one ended, and stops everything on shutdown.
//!
//! Every container is one tokio task. A dependency is awaited through a `watch` channel of
//! the dependency's [`Phase`], so a container waiting for `writer` to complete costs nothing
//! while it waits, and a failed dependency is reported instead of starting on top of it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use wasmtime::Module;

mod container;
pub mod events;
pub mod plan;

pub use container::{short_digest, ContainerInfo, ContainerStatus, State};
pub use events::{Event, EventBus};
pub use plan::{diff, Deployed, Plan, Reason};

use crate::broker::Broker;
use crate::host::{HostConfig, HostLimits};
use crate::images::{ImageError, ImageStore, LoadedModule, ModuleSource};
use crate::logs::{LogSink, Stream};
use crate::runtime::{ExitStatus, Prepared, Runtime};
use crate::spec::{ContainerSpec, DependencyCondition, ImageRef, RestartPolicy, SensorSpec, Stack};
use container::Launch;

/// Errors that stop a stack before any container runs.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("image {0} is not in the image store")]
    MissingDigest(String),
}

/// Where a container is in its life, as its dependents see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Running,
    Ended(Outcome),
}

/// How a container's run ended, including never having started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Finished(ExitStatus),
    /// Not started, because a dependency failed or the stack was stopped first.
    NotStarted(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Finished(status) => status.fmt(f),
            Outcome::NotStarted(why) => write!(f, "not started: {why}"),
        }
    }
}

/// The end of one `up`: how each container ended, in start order.
///
/// The names share one buffer instead of a `String` each, on purpose. The report is built
/// while the stopped stack's freed memory is full of holes; a thousand small allocations
/// land all over it, and each keeps its page from going back to the kernel: with a
/// `String` per name, `down` of 1,000 containers left ~2 MB behind for 20 KB of names;
/// with one buffer, under 100 KB stays behind in all.
#[derive(Debug, Clone, Default)]
pub struct StackReport {
    names: String,
    outcomes: Vec<(std::ops::Range<usize>, Outcome)>,
    /// True when the stack was stopped from outside (Ctrl-C, SIGTERM) rather than ending.
    pub interrupted: bool,
}

impl StackReport {
    /// An empty report with room for `containers` outcomes whose names take `name_bytes`.
    pub fn with_capacity(containers: usize, name_bytes: usize, interrupted: bool) -> Self {
        StackReport {
            names: String::with_capacity(name_bytes),
            outcomes: Vec::with_capacity(containers),
            interrupted,
        }
    }

    pub fn push(&mut self, name: &str, outcome: Outcome) {
        let start = self.names.len();
        self.names.push_str(name);
        self.outcomes.push((start..self.names.len(), outcome));
    }

    /// Each container's name and outcome, in start order.
    pub fn outcomes(&self) -> impl Iterator<Item = (&str, &Outcome)> {
        self.outcomes
            .iter()
            .map(|(range, outcome)| (self.names.get(range.clone()).unwrap_or_default(), outcome))
    }

    /// Success: every container exited 0, or was stopped by the operator.
    pub fn is_success(&self) -> bool {
        self.outcomes().all(|(_, outcome)| match outcome {
            Outcome::Finished(ExitStatus::Exited(0)) => true,
            Outcome::Finished(ExitStatus::Killed) | Outcome::NotStarted(_) => self.interrupted,
            _ => false,
        })
    }
}

/// Load every distinct image of the stack once (compile cache first).
pub fn load_modules(
    runtime: &Runtime,
    images: &ImageStore,
    stack: &Stack,
    mut on_loaded: impl FnMut(&PathBuf, &LoadedModule),
) -> Result<HashMap<ImageRef, LoadedImage>, SupervisorError> {
    let mut modules = HashMap::new();
    for container in &stack.containers {
        if modules.contains_key(&container.image) {
            continue;
        }
        let path = match &container.image {
            ImageRef::Path(path) => path.clone(),
            ImageRef::Digest(digest) => images
                .path_of(digest)
                .ok_or_else(|| SupervisorError::MissingDigest(digest.to_string()))?,
        };
        let loaded = images.load_module(runtime.engine(), &path)?;
        on_loaded(&path, &loaded);
        let digest = loaded.digest.to_string();
        modules.insert(
            container.image.clone(),
            LoadedImage {
                module: loaded.module,
                digest,
            },
        );
    }
    Ok(modules)
}

/// Describe a module load for `-v`.
pub fn describe_load(path: &std::path::Path, loaded: &LoadedModule) -> String {
    let how = match loaded.source {
        ModuleSource::Compiled => "compiled",
        ModuleSource::Cached => "loaded from the compile cache",
        ModuleSource::Precompiled => "loaded precompiled",
    };
    format!(
        "{} ({}) {how} in {:.1?}",
        path.display(),
        loaded.digest.short(),
        loaded.elapsed
    )
}

/// Run the stack until every container has ended, or until `shutdown` is cancelled; then
/// stop what still runs (see [`Supervisor::stop_all`]).
pub async fn run_stack(
    runtime: Arc<Runtime>,
    modules: HashMap<ImageRef, LoadedImage>,
    stack: &Stack,
    log: Arc<dyn LogSink>,
    shutdown: CancellationToken,
) -> StackReport {
    let mut supervisor = Supervisor::new(runtime, log.clone());
    supervisor.set_sensors(stack.sensors.clone());
    // bridge: MQTT bridges tap the supervisor's broker before any container publishes.
    let bridges = crate::bridge::start(&stack.bridges, supervisor.broker(), log);
    for spec in &stack.containers {
        supervisor.add(spec, modules.get(&spec.image).cloned());
    }
    let interrupted = !supervisor.wait(&shutdown).await;
    if interrupted {
        supervisor.stop_all().await;
    }
    bridges.shutdown().await; // bridge: send what is queued (bounded by flush_timeout), disconnect
    supervisor.into_report(interrupted)
}

/// A compiled image and the sha256 of its bytes.
#[derive(Clone)]
pub struct LoadedImage {
    pub module: Module,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// Why a lifecycle request (stop, start, pause ...) on one container was refused; the
/// control plane carries it to the client as that container's result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("no container named `{0}` in this stack")]
    NoSuchContainer(String),
    #[error("container `{0}` is not running")]
    NotRunning(String),
    #[error("container `{0}` is already running")]
    AlreadyRunning(String),
    #[error("container `{0}` cannot start: its image was not loaded")]
    NoImage(String),
}

/// The containers of one stack, sharing one broker; started, stopped, paused and replaced
/// one by one.
///
/// `run_stack` starts a whole file's worth at once; `shoal bench` starts them one after
/// another and measures in between; the control socket and hot reload act on single
/// containers. All go through this type. It is driven from one task; what other tasks need
/// to read while it is busy (`ps`) is in the shared [`Board`].
pub struct Supervisor {
    runtime: Arc<Runtime>,
    broker: Broker,
    log: Arc<dyn LogSink>,
    events: EventBus,
    sensors: BTreeMap<String, SensorSpec>,
    containers: Vec<Container>,
    board: Board,
    /// Each container task sends `(name, generation, outcome)` here when it ends. Unbounded
    /// on purpose: at most one message per run, and a run cannot start before the previous
    /// one ended, so it never holds more than one message per container.
    ended_tx: mpsc::UnboundedSender<(String, u64, Outcome)>,
    ended_rx: mpsc::UnboundedReceiver<(String, u64, Outcome)>,
    next_generation: u64,
    /// Runs whose end [`Supervisor::next_end`] has taken note of.
    collected: usize,
}

struct Container {
    spec: ContainerSpec,
    image: Option<LoadedImage>,
    status: Arc<ContainerStatus>,
    phase: watch::Receiver<Phase>,
    run: Option<Run>,
}

struct Run {
    generation: u64,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

/// A snapshot source for `ps` and `stats`, readable while the supervisor is busy.
#[derive(Clone, Default)]
pub struct Board {
    rows: Arc<std::sync::Mutex<Vec<BoardRow>>>,
}

#[derive(Clone)]
struct BoardRow {
    spec: ContainerSpec,
    digest: String,
    status: Arc<ContainerStatus>,
}

impl Board {
    /// Forget every row (the stack is gone).
    pub fn clear(&self) {
        *self.rows.lock().unwrap_or_else(|e| e.into_inner()) = Vec::new();
    }

    /// One row per container, in start order.
    pub fn infos(&self) -> Vec<ContainerInfo> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner()).clone();
        rows.iter().map(|row| row.status.info(&row.spec, &row.digest)).collect()
    }
}

impl Supervisor {
    pub fn new(runtime: Arc<Runtime>, log: Arc<dyn LogSink>) -> Self {
        let events = EventBus::default();
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        Supervisor {
            runtime,
            broker: Broker::new(),
            log: Arc::new(WarningEvents {
                inner: log,
                events: events.clone(),
            }),
            events,
            sensors: BTreeMap::new(),
            containers: Vec::new(),
            board: Board::default(),
            ended_tx,
            ended_rx,
            next_generation: 0,
            collected: 0,
        }
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    pub fn board(&self) -> Board {
        self.board.clone()
    }

    /// The sensor declarations containers added from now on may open.
    pub fn set_sensors(&mut self, sensors: BTreeMap<String, SensorSpec>) {
        self.sensors = sensors;
    }

    /// What is deployed now, for [`plan::diff`].
    pub fn deployed(&self) -> Vec<Deployed> {
        self.containers
            .iter()
            .map(|c| {
                let digest = c.image.as_ref().map(|i| i.digest.as_str()).unwrap_or("");
                Deployed::new(&c.spec, digest, &self.sensors)
            })
            .collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.containers.iter().map(|c| c.spec.name.clone()).collect()
    }

    /// Containers that have ended and will not run again by themselves.
    pub fn ended(&self) -> usize {
        self.containers
            .iter()
            .filter(|c| matches!(c.status.state(), State::Ended(_)))
            .count()
    }

    /// Containers that have been instantiated (running or already ended).
    pub fn started(&self) -> usize {
        self.containers
            .iter()
            .filter(|c| *c.phase.borrow() != Phase::Waiting)
            .count()
    }

    /// Containers with a live task (running, waiting for a dependency, or between restarts).
    pub fn active(&self) -> usize {
        self.containers.iter().filter(|c| c.run.is_some()).count()
    }

    /// Add a container and start it once its dependencies (added before it) allow. `None`
    /// for an image that could not be loaded: the container is listed as failed.
    pub fn add(&mut self, spec: &ContainerSpec, image: Option<LoadedImage>) {
        let (_, phase) = watch::channel(Phase::Waiting);
        self.containers.push(Container {
            spec: spec.clone(),
            image,
            status: Arc::new(ContainerStatus::default()),
            phase,
            run: None,
        });
        // One row, not a new board: `shoal bench` adds 10,000 containers one by one.
        if let Some(c) = self.containers.last() {
            self.board
                .rows
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(BoardRow {
                    spec: c.spec.clone(),
                    digest: c.image.as_ref().map(|i| i.digest.clone()).unwrap_or_default(),
                    status: c.status.clone(),
                });
        }
        self.spawn(self.containers.len() - 1, None);
    }

    fn index(&self, name: &str) -> Result<usize, LifecycleError> {
        self.containers
            .iter()
            .position(|c| c.spec.name == name)
            .ok_or_else(|| LifecycleError::NoSuchContainer(name.to_owned()))
    }

    fn publish_board(&self) {
        let rows = self
            .containers
            .iter()
            .map(|c| BoardRow {
                spec: c.spec.clone(),
                digest: c.image.as_ref().map(|i| i.digest.clone()).unwrap_or_default(),
                status: c.status.clone(),
            })
            .collect();
        *self.board.rows.lock().unwrap_or_else(|e| e.into_inner()) = rows;
    }

    fn spawn(&mut self, index: usize, prepared: Option<Prepared>) {
        let deps: Vec<_> = self.containers[index]
            .spec
            .depends_on
            .iter()
            .filter_map(|d| {
                self.containers
                    .iter()
                    .find(|c| c.spec.name == d.name)
                    .map(|c| (d.clone(), c.phase.clone()))
            })
            .collect();
        let generation = self.next_generation;
        self.next_generation += 1;
        let host = self.host_config(&self.containers[index]);
        let container = &mut self.containers[index];
        let (tx, rx) = watch::channel(Phase::Waiting);
        container.phase = rx;
        let Some(image) = container.image.clone() else {
            let outcome = Outcome::NotStarted("its image was not loaded".into());
            container.status.set_state(State::Ended(outcome.clone()));
            let _ = tx.send(Phase::Ended(outcome));
            return;
        };
        let stop = CancellationToken::new();
        let launch = Launch {
            runtime: self.runtime.clone(),
            spec: container.spec.clone(),
            module: image.module,
            host,
            log: self.log.clone(),
            events: self.events.clone(),
            status: container.status.clone(),
            stop: stop.clone(),
            phase: tx,
            prepared,
            deps,
        };
        let name = container.spec.name.clone();
        let ended = self.ended_tx.clone();
        let handle = tokio::spawn(async move {
            let outcome = launch.run().await;
            let _ = ended.send((name, generation, outcome));
        });
        container.run = Some(Run {
            generation,
            stop,
            handle,
        });
    }

    fn host_config(&self, container: &Container) -> HostConfig {
        host_config(
            &container.spec,
            &self.sensors,
            &self.broker,
            self.log.clone(),
            &container.status,
        )
    }

    /// Wait for the next container end and take note of it. `None` when nothing runs.
    pub async fn next_end(&mut self) -> Option<(String, Outcome)> {
        if self.active() == 0 {
            return None;
        }
        let (name, generation, outcome) = self.ended_rx.recv().await?;
        if let Some(c) = self.containers.iter_mut().find(|c| c.spec.name == name) {
            if c.run.as_ref().is_some_and(|r| r.generation == generation) {
                c.run = None;
                self.collected += 1;
            }
        }
        Some((name, outcome))
    }

    /// Wait until at least `count` containers have ended.
    pub async fn wait_ended(&mut self, count: usize) {
        while self.collected < count {
            if self.next_end().await.is_none() {
                return;
            }
        }
    }

    /// Wait until every container has ended (true) or `shutdown` is cancelled (false).
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        loop {
            tokio::select! {
                end = self.next_end() => if end.is_none() { return true },
                _ = shutdown.cancelled() => return false,
            }
        }
    }

    /// Stop one container: interrupt it at once (at its next host call or epoch tick);
    /// if it is not gone after its `stop_timeout` (`Duration::ZERO`: at once, for `kill`),
    /// abandon it and report it killed.
    async fn halt(&mut self, index: usize, timeout: Duration) -> Option<Outcome> {
        let container = &mut self.containers[index];
        let mut run = container.run.take()?;
        run.stop.cancel();
        container.status.probe.set_paused(false);
        if tokio::time::timeout(timeout, &mut run.handle).await.is_err() {
            run.handle.abort();
            let _ = run.handle.await;
        }
        if !matches!(container.status.state(), State::Ended(_)) {
            container
                .status
                .set_state(State::Ended(Outcome::Finished(ExitStatus::Killed)));
        }
        match container.status.state() {
            State::Ended(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// `shoal stop NAME`: stop it and keep it stopped (no restart policy applies).
    pub async fn stop(&mut self, name: &str) -> Result<Outcome, LifecycleError> {
        self.operator_halt(name, "stop", None).await
    }

    /// `shoal kill NAME`: like stop, without waiting for `stop_timeout`.
    pub async fn kill(&mut self, name: &str) -> Result<Outcome, LifecycleError> {
        self.operator_halt(name, "kill", Some(Duration::ZERO)).await
    }

    async fn operator_halt(
        &mut self,
        name: &str,
        action: &str,
        timeout: Option<Duration>,
    ) -> Result<Outcome, LifecycleError> {
        let index = self.index(name)?;
        let container = &self.containers[index];
        if container.run.is_none() {
            return Err(LifecycleError::NotRunning(name.to_owned()));
        }
        container.status.mark_stopped_by_operator(true);
        let timeout = timeout.unwrap_or(container.spec.stop_timeout);
        let outcome = self
            .halt(index, timeout)
            .await
            .unwrap_or(Outcome::Finished(ExitStatus::Killed));
        self.events.record(Some(name), action, outcome.to_string());
        self.log
            .line(name, Stream::System, &format!("{action}ped by the operator"));
        Ok(outcome)
    }

    /// `shoal start NAME`: start a container that is not running (stopped, exited, failed).
    pub fn start(&mut self, name: &str) -> Result<(), LifecycleError> {
        let index = self.index(name)?;
        let container = &self.containers[index];
        if container.run.is_some() {
            return Err(LifecycleError::AlreadyRunning(name.to_owned()));
        }
        if container.image.is_none() {
            return Err(LifecycleError::NoImage(name.to_owned()));
        }
        container.status.mark_stopped_by_operator(false);
        self.spawn(index, None);
        Ok(())
    }

    /// `shoal restart NAME`: stop (if running), then start.
    pub async fn restart(&mut self, name: &str) -> Result<(), LifecycleError> {
        let index = self.index(name)?;
        if self.containers[index].run.is_some() {
            let timeout = self.containers[index].spec.stop_timeout;
            self.halt(index, timeout).await;
        }
        self.events.record(Some(name), "restart", "by the operator");
        self.start(name)
    }

    /// `shoal pause NAME` / `unpause`: a paused container runs no guest code (it is held
    /// at its next epoch tick or host-call return) and keeps all its state; messages for
    /// it queue in its mailbox under the usual bound.
    pub fn set_paused(&mut self, name: &str, paused: bool) -> Result<bool, LifecycleError> {
        let index = self.index(name)?;
        let container = &self.containers[index];
        if container.run.is_none() {
            return Err(LifecycleError::NotRunning(name.to_owned()));
        }
        let changed = container.status.probe.set_paused(paused);
        if changed {
            let action = if paused { "pause" } else { "unpause" };
            self.events.record(Some(name), action, "");
            self.log.line(name, Stream::System, &format!("{action}d"));
        }
        Ok(changed)
    }

    /// Stop everything at once; each container gets its own `stop_timeout`, counted from
    /// the moment the stop began.
    pub async fn stop_all(&mut self) {
        for container in &self.containers {
            if let Some(run) = &container.run {
                run.stop.cancel();
                container.status.probe.set_paused(false);
            }
        }
        let began = Instant::now();
        for index in (0..self.containers.len()).rev() {
            let left = self.containers[index].spec.stop_timeout.saturating_sub(began.elapsed());
            self.halt(index, left).await;
        }
        while self.ended_rx.try_recv().is_ok() {}
    }

    /// Apply a reload [`Plan`] towards `desired`, whose images are in `images`.
    ///
    /// Removed containers stop first (dependents first). A changed container's new
    /// instance is created and instantiated before the old one is stopped; if that fails,
    /// the old one keeps running and the failure is in the report. Unchanged containers
    /// are not touched at all: same instance, memory, timers, subscriptions and queue.
    pub async fn apply(
        &mut self,
        plan: &Plan,
        desired: &Stack,
        images: &HashMap<ImageRef, LoadedImage>,
    ) -> Vec<ApplyFailure> {
        let mut failures = Vec::new();
        self.sensors = desired.sensors.clone();
        for name in &plan.stop {
            if let Ok(index) = self.index(name) {
                let timeout = self.containers[index].spec.stop_timeout;
                self.halt(index, timeout).await;
                self.containers.remove(index);
                self.log.line(name, Stream::System, "removed (no longer in the file)");
            }
        }
        let restarting: HashMap<&str, &Reason> = plan.restart.iter().map(|(n, r)| (n.as_str(), r)).collect();
        for spec in &desired.containers {
            let image = images.get(&spec.image).cloned();
            if plan.start.contains(&spec.name) {
                self.add(spec, image);
                continue;
            }
            let Some(reason) = restarting.get(spec.name.as_str()) else {
                continue;
            };
            if let Err(why) = self.replace(spec, image, reason).await {
                failures.push(ApplyFailure {
                    container: spec.name.clone(),
                    reason: why,
                });
            }
        }
        // Keep the file's order, so the next stop and diff see dependents after dependencies.
        let order: HashMap<&str, usize> = desired
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect();
        self.containers
            .sort_by_key(|c| order.get(c.spec.name.as_str()).copied().unwrap_or(usize::MAX));
        self.publish_board();
        failures
    }

    async fn replace(
        &mut self,
        spec: &ContainerSpec,
        image: Option<LoadedImage>,
        reason: &Reason,
    ) -> Result<(), String> {
        let index = self.index(&spec.name).map_err(|e| e.to_string())?;
        let Some(image) = image else {
            return Err("its new image was not loaded; the old instance keeps running".into());
        };
        let status = Arc::new(ContainerStatus::default());
        let fresh = Container {
            spec: spec.clone(),
            image: Some(image.clone()),
            status: status.clone(),
            phase: self.containers[index].phase.clone(),
            run: None,
        };
        let host = self.host_config(&fresh);
        let prepared = self
            .runtime
            .prepare(spec, &image.module, host, status.probe.clone())
            .await
            .map_err(|status| format!("the new instance did not start ({status}); the old one keeps running"))?;
        let timeout = self.containers[index].spec.stop_timeout;
        self.halt(index, timeout).await;
        self.containers[index] = fresh;
        self.log
            .line(&spec.name, Stream::System, &format!("replaced ({reason})"));
        self.spawn(index, Some(prepared));
        self.publish_board();
        Ok(())
    }

    pub fn into_report(self, interrupted: bool) -> StackReport {
        let name_bytes = self.containers.iter().map(|c| c.spec.name.len()).sum();
        let mut report = StackReport::with_capacity(self.containers.len(), name_bytes, interrupted);
        for container in &self.containers {
            let outcome = match container.status.state() {
                State::Ended(outcome) => outcome,
                _ => Outcome::Finished(ExitStatus::Killed),
            };
            report.push(&container.spec.name, outcome);
        }
        report
    }
}

/// A change of a reload that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyFailure {
    pub container: String,
    pub reason: String,
}

/// Passes every line on, and turns warnings (denied calls, drops) into events too.
struct WarningEvents {
    inner: Arc<dyn LogSink>,
    events: EventBus,
}

impl LogSink for WarningEvents {
    fn line(&self, container: &str, stream: Stream, text: &str) {
        if stream == Stream::Warning {
            self.events.record(Some(container), "warning", text);
        }
        self.inner.line(container, stream, text);
    }
}

/// What the container's `env` API gets: its grants, its topic lists, the sensors it may
/// open, the stack's broker, and the counters and pause switch the supervisor watches.
pub fn host_config(
    spec: &ContainerSpec,
    sensors: &BTreeMap<String, SensorSpec>,
    broker: &Broker,
    log: Arc<dyn LogSink>,
    status: &ContainerStatus,
) -> HostConfig {
    HostConfig {
        container: spec.name.clone(),
        capabilities: spec.capabilities.clone(),
        capabilities_location: spec.capabilities_location.clone(),
        publish: spec.publish.clone(),
        subscribe: spec.subscribe.clone(),
        sensors: spec
            .sensors
            .iter()
            .filter_map(|name| sensors.get(name).cloned())
            .collect(),
        broker: broker.clone(),
        log,
        limits: HostLimits::from_spec(&spec.limits),
        counters: status.counters.clone(),
        paused: Some(status.probe.pause_receiver()),
    }
}

/// Runs shorter than this count towards the backoff and the crash-loop report.
pub(crate) const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);
/// Consecutive quick failures after which a restart is reported as a crash loop.
pub(crate) const CRASH_LOOP_AFTER: u32 = 3;
/// Longest wait between two restarts.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(300);

/// Whether a container that ended with `status` is started again under `policy`, after
/// `restarts` restarts so far. A container shoal stopped is never restarted.
pub fn should_restart(policy: RestartPolicy, status: &ExitStatus, restarts: u32) -> bool {
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::OnFailure { max_retries } => {
            !status.is_success() && *status != ExitStatus::Killed && max_retries.is_none_or(|max| restarts < max)
        }
        RestartPolicy::Always => *status != ExitStatus::Killed,
    }
}

/// `restart_delay`, doubled for every quick failure before this one, capped.
pub fn restart_backoff(base: Duration, quick_failures: u32) -> Duration {
    let factor = 1u32.checked_shl(quick_failures.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(MAX_RESTART_DELAY)
}

pub(crate) async fn wait_for(
    name: &str,
    condition: DependencyCondition,
    phase: &mut watch::Receiver<Phase>,
) -> Result<(), String> {
    loop {
        let current = phase.borrow_and_update().clone();
        match (condition, current) {
            (DependencyCondition::ServiceStarted, Phase::Running) => return Ok(()),
            (_, Phase::Ended(Outcome::Finished(status))) => {
                return match condition {
                    DependencyCondition::ServiceStarted => Ok(()),
                    DependencyCondition::ServiceCompletedSuccessfully if status.is_success() => Ok(()),
                    DependencyCondition::ServiceCompletedSuccessfully => {
                        Err(format!("dependency `{name}` did not complete successfully ({status})"))
                    }
                };
            }
            (_, Phase::Ended(Outcome::NotStarted(_))) => return Err(format!("dependency `{name}` did not start")),
            _ => {}
        }
        if phase.changed().await.is_err() {
            return Err(format!("dependency `{name}` went away"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_keeps_names_and_outcomes_in_order_in_one_buffer() {
        let mut report = StackReport::with_capacity(3, 13, false);
        report.push("sub", Outcome::Finished(ExitStatus::Exited(0)));
        report.push("pub-1", Outcome::Finished(ExitStatus::Killed));
        report.push("pub-2", Outcome::NotStarted("sub failed".into()));
        let names: Vec<&str> = report.outcomes().map(|(name, _)| name).collect();
        assert_eq!(names, ["sub", "pub-1", "pub-2"]);
        assert_eq!(report.names.capacity(), 13, "no reallocation when sized up front");
        assert!(
            !report.is_success(),
            "a killed container fails a stack that was not interrupted"
        );
        report.interrupted = true;
        assert!(report.is_success());
        assert_eq!(StackReport::default().outcomes().count(), 0);
    }

    #[test]
    fn restart_policies() {
        let failed = ExitStatus::Exited(1);
        let trapped = ExitStatus::Trapped("unreachable".into());
        let ok = ExitStatus::Exited(0);
        assert!(!should_restart(RestartPolicy::No, &failed, 0));
        let three = RestartPolicy::OnFailure { max_retries: Some(3) };
        assert!(should_restart(three, &failed, 0) && should_restart(three, &trapped, 2));
        assert!(!should_restart(three, &failed, 3), "at most 3 restarts");
        assert!(!should_restart(three, &ok, 0), "success is not a failure");
        assert!(should_restart(
            RestartPolicy::OnFailure { max_retries: None },
            &failed,
            1000
        ));
        assert!(should_restart(RestartPolicy::Always, &ok, 1000));
        assert!(
            !should_restart(RestartPolicy::Always, &ExitStatus::Killed, 0),
            "a stopped container stays stopped"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(100);
        assert_eq!(restart_backoff(base, 0), base);
        assert_eq!(restart_backoff(base, 1), base);
        assert_eq!(restart_backoff(base, 2), base * 2);
        assert_eq!(restart_backoff(base, 4), base * 8);
        assert_eq!(restart_backoff(base, 40), MAX_RESTART_DELAY);
        assert_eq!(restart_backoff(Duration::from_secs(1000), 1), MAX_RESTART_DELAY);
    }
}
