//! Runs a validated stack: starts containers in `depends_on` order, reports how each one
//! ended, acts on the operator's verbs and on reloads, and stops everything on shutdown.
//!
//! Every container is one tokio task. A dependency is awaited through a [`phase_cell`] of
//! the dependency's [`Phase`], so a container waiting for `writer` to complete costs nothing
//! while it waits, and a failed dependency is reported instead of starting on top of it.
//!
//! One concern per file: `report` (how containers ended), `load` (images), `board` (what
//! `ps` reads), `lifecycle` (the operator's verbs), `reload` (applying a plan), `restart`
//! (the restart policy), `container` (one container's task), `host` (what its host side
//! gets), [`events`] and [`plan`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod board;
mod container;
pub mod events;
mod host;
mod lifecycle;
mod load;
mod phase_cell;
pub mod plan;
mod reload;
mod report;
mod restart;

pub use board::Board;
pub use container::{ContainerInfo, ContainerStatus, State};
pub use events::{Event, EventBus};
pub use lifecycle::LifecycleError;
pub use load::{describe_load, load_modules, off_executor, LoadedImage, SupervisorError};
pub use plan::{diff, Deployed, Plan, Reason};
pub use reload::{ApplyFailure, ReplaceError};
pub use report::{Outcome, Phase, StackReport};
pub use restart::{restart_backoff, should_restart, MAX_RESTART_DELAY};

use crate::broker::Broker;
use crate::host::HostConfig;
use crate::logs::LogSink;
use crate::runtime::{ExitStatus, Prepared, Runtime};
use crate::spec::{ContainerSpec, SensorSpec};
use board::BoardRow;
use container::Launch;
use host::{host_config, WarningEvents};
use phase_cell::{phase_cell, PhaseReceiver};

/// The containers of one stack, sharing one broker; started, stopped, paused and replaced
/// one by one.
///
/// The [`crate::controller::Controller`] starts a whole file's worth at once; `shoal bench` starts them one after
/// another and measures in between; the control socket and hot reload act on single
/// containers. All go through this type. It is driven from one task; what other tasks need
/// to read while it is busy (`ps`) is in the shared [`Board`].
pub struct Supervisor {
    runtime: Arc<Runtime>,
    broker: Broker,
    log: Arc<dyn LogSink>,
    events: EventBus,
    sensors: BTreeMap<String, SensorSpec>,
    /// The stack's requested GPIO lines (empty until [`Supervisor::set_gpio`]).
    gpio: crate::gpio::GpioLines,
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
    /// Shared with the board row and the running task: one copy per container, not three.
    spec: Arc<ContainerSpec>,
    image: Option<LoadedImage>,
    status: Arc<ContainerStatus>,
    phase: PhaseReceiver,
    run: Option<Run>,
}

impl Container {
    fn board_row(&self) -> BoardRow {
        BoardRow {
            spec: self.spec.clone(),
            digest: self.image.as_ref().map(|i| i.digest.clone()),
            status: self.status.clone(),
        }
    }
}

/// Size of the last container task's future: tokio allocates it (with a task header) for
/// as long as the container lives, so it is part of every container's host heap.
static TASK_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Bytes of one container task's future (0 before the first container started): `shoal
/// bench density` prints it beside the heap per container.
pub fn task_future_bytes() -> usize {
    TASK_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

struct Run {
    generation: u64,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
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
            gpio: Default::default(),
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

    /// The GPIO lines containers added from now on may use.
    pub fn set_gpio(&mut self, lines: crate::gpio::GpioLines) {
        self.gpio = lines;
    }

    pub fn gpio(&self) -> &crate::gpio::GpioLines {
        &self.gpio
    }

    /// What is deployed now, for [`plan::diff`].
    pub fn deployed(&self) -> Vec<Deployed> {
        self.containers
            .iter()
            .map(|c| {
                let digest = c.image.as_ref().map(|i| i.digest.to_string()).unwrap_or_default();
                Deployed::new(&c.spec, &digest, &self.sensors)
            })
            .collect()
    }

    /// Each container's message and event counters, in the order they were added.
    pub fn counters(&self) -> Vec<Arc<crate::host::Counters>> {
        self.containers.iter().map(|c| c.status.counters.clone()).collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.containers.iter().map(|c| c.spec.name.to_string()).collect()
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
            .filter(|c| c.phase.current() != Phase::Waiting)
            .count()
    }

    /// Containers with a live task (running, waiting for a dependency, or between restarts).
    pub fn active(&self) -> usize {
        self.containers.iter().filter(|c| c.run.is_some()).count()
    }

    /// Add a container and start it once its dependencies (added before it) allow. `None`
    /// for an image that could not be loaded: the container is listed as failed.
    pub fn add(&mut self, spec: &ContainerSpec, image: Option<LoadedImage>) {
        let (_, phase) = phase_cell(Phase::Waiting);
        self.containers.push(Container {
            spec: Arc::new(spec.clone()),
            image,
            status: Arc::new(ContainerStatus::default()),
            phase,
            run: None,
        });
        // One row, not a new board: `shoal bench` adds 10,000 containers one by one.
        if let Some(c) = self.containers.last() {
            self.board.push(c.board_row());
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
        self.board
            .set(self.containers.iter().map(Container::board_row).collect());
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
        let (tx, rx) = phase_cell(Phase::Waiting);
        container.phase = rx;
        let Some(image) = container.image.clone() else {
            let outcome = Outcome::NotStarted("its image was not loaded".into());
            container.status.set_state(State::Ended(outcome.clone()));
            tx.send(Phase::Ended(outcome));
            return;
        };
        let placement = match crate::executor::placement(container.spec.cpus.as_ref()) {
            Ok(placement) => placement,
            Err(e) => {
                let outcome = Outcome::NotStarted(e.to_string());
                container.status.set_state(State::Ended(outcome.clone()));
                tx.send(Phase::Ended(outcome));
                return;
            }
        };
        let stop = CancellationToken::new();
        // Boxed: the task's future holds only a pointer to it, for as long as it runs.
        let launch = Box::new(Launch {
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
        });
        let spec = container.spec.clone();
        let ended = self.ended_tx.clone();
        let task = async move {
            let outcome = launch.run().await;
            let _ = ended.send((spec.name.to_string(), generation, outcome));
        };
        TASK_BYTES.store(std::mem::size_of_val(&task), std::sync::atomic::Ordering::Relaxed);
        let handle = crate::executor::spawn_on(placement.as_ref(), task);
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
            &self.gpio,
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

    /// Stop everything at once; each container gets its own `stop_timeout`, counted from
    /// the moment the stop began.
    pub async fn stop_all(&mut self) {
        self.stop_all_within(None).await;
    }

    /// [`Supervisor::stop_all`] with one wait for every container instead of each one's
    /// `stop_timeout` (`down -t SECONDS`).
    pub async fn stop_all_within(&mut self, timeout: Option<Duration>) {
        for container in &self.containers {
            if let Some(run) = &container.run {
                run.stop.cancel();
                container.status.probe.set_paused(false);
            }
        }
        let began = Instant::now();
        for index in (0..self.containers.len()).rev() {
            let limit = timeout.unwrap_or(self.containers[index].spec.stop_timeout);
            let left = limit.saturating_sub(began.elapsed());
            self.halt(index, left).await;
        }
        while self.ended_rx.try_recv().is_ok() {}
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
