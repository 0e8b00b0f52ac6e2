//! One container's life: wait for its dependencies, run, apply its restart policy, and
//! keep a status that `ps` can read at any moment without disturbing it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use wasmtime::Module;

use super::events::EventBus;
use super::phase_cell::{PhaseReceiver, PhaseSender};
use super::restart::{Restart, Restarts};
use super::{Outcome, Phase};
use crate::host::{Counters, HostConfig};
use crate::logs::{LogSink, Stream};
use crate::runtime::{ExitStatus, Prepared, Probe, Runtime};
use crate::spec::{ContainerSpec, Dependency, DependencyCondition, ImageDigest};

/// Where a container is, as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Waiting for a dependency.
    Waiting,
    Running,
    /// Ended, waiting `delay` before its next start (restart policy).
    Restarting {
        delay: Duration,
    },
    /// Ended and not restarted.
    Ended(Outcome),
}

/// The live, shared part of a container: lifecycle and counters. One per container name,
/// kept across restarts; a reload that replaces the container starts a fresh one.
#[derive(Debug)]
pub struct ContainerStatus {
    lifecycle: Mutex<Lifecycle>,
    pub counters: Arc<Counters>,
    pub probe: Arc<Probe>,
}

#[derive(Debug)]
struct Lifecycle {
    state: State,
    started_at: Option<(Instant, SystemTime)>,
    restarts: u32,
    /// The operator stopped it (`stop`, `kill`): shown as such, never restarted.
    stopped_by_operator: bool,
    crash_loop: bool,
}

impl Default for ContainerStatus {
    fn default() -> Self {
        ContainerStatus {
            lifecycle: Mutex::new(Lifecycle {
                state: State::Waiting,
                started_at: None,
                restarts: 0,
                stopped_by_operator: false,
                crash_loop: false,
            }),
            counters: Arc::default(),
            probe: Arc::default(),
        }
    }
}

impl ContainerStatus {
    fn lock(&self) -> MutexGuard<'_, Lifecycle> {
        self.lifecycle.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn state(&self) -> State {
        self.lock().state.clone()
    }

    pub(super) fn set_state(&self, state: State) {
        let mut life = self.lock();
        if state == State::Running {
            life.started_at = Some((Instant::now(), SystemTime::now()));
        }
        life.state = state;
    }

    pub(super) fn mark_stopped_by_operator(&self, stopped: bool) {
        self.lock().stopped_by_operator = stopped;
    }

    /// A row of `ps`; `digest` is `None` for a container whose image did not load.
    pub fn info(&self, spec: &ContainerSpec, digest: Option<&ImageDigest>) -> ContainerInfo {
        let life = self.lock();
        let (state, exit) = match &life.state {
            State::Waiting => ("waiting".to_owned(), None),
            State::Running if self.probe.is_paused() => ("paused".to_owned(), None),
            State::Running => ("running".to_owned(), None),
            State::Restarting { delay } => (format!("restarting in {}", humantime::format_duration(*delay)), None),
            State::Ended(outcome) => {
                let state = match outcome {
                    _ if life.stopped_by_operator => "stopped",
                    Outcome::Finished(ExitStatus::Exited(_)) => "exited",
                    Outcome::Finished(ExitStatus::Trapped(_)) => "trapped",
                    Outcome::Finished(ExitStatus::OutOfMemory(_)) => "out of memory",
                    Outcome::Finished(ExitStatus::HostError(_)) => "host error",
                    Outcome::Finished(ExitStatus::Killed) => "killed",
                    Outcome::Finished(ExitStatus::Stopped) => "stopped",
                    Outcome::Finished(ExitStatus::Failed(_)) | Outcome::NotStarted(_) => "failed",
                };
                (state.to_owned(), Some(outcome.to_string()))
            }
        };
        let exit_code = match &life.state {
            State::Ended(Outcome::Finished(ExitStatus::Exited(code))) => Some(*code),
            _ => None,
        };
        let running = matches!(life.state, State::Running);
        let c = &self.counters;
        ContainerInfo {
            name: spec.name.to_string(),
            service: spec.service.to_string(),
            image: digest.map(|d| d.short().to_owned()).unwrap_or_default(),
            state,
            exit,
            exit_code,
            started_at: life.started_at.map(|(_, at)| crate::procstat::unix_seconds(at)),
            uptime_seconds: life
                .started_at
                .filter(|_| running)
                .map(|(at, _)| at.elapsed().as_secs_f64()),
            restarts: life.restarts,
            crash_loop: life.crash_loop,
            memory_bytes: self.probe.memory_bytes(),
            cpu_seconds: self.probe.cpu_time().as_secs_f64(),
            messages_in: Counters::get(&c.messages_in),
            messages_out: Counters::get(&c.messages_out),
            dropped: Counters::get(&c.dropped),
            denied: Counters::get(&c.denied),
            gpio: Vec::new(),
        }
    }
}

/// One row of `ps --format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub name: String,
    pub service: String,
    /// Short sha256 of the image bytes.
    pub image: String,
    /// `waiting`, `running`, `paused`, `restarting in 2s`, `exited`, `trapped`, `killed`,
    /// `failed`, `stopped`.
    pub state: String,
    /// How it ended (`exited with code 1`, `trapped: ...`), once it has.
    pub exit: Option<String>,
    pub exit_code: Option<i32>,
    /// When the current (or last) run started, seconds since the Unix epoch.
    pub started_at: Option<f64>,
    pub uptime_seconds: Option<f64>,
    pub restarts: u32,
    pub crash_loop: bool,
    /// Linear memory of the running instance.
    pub memory_bytes: u64,
    /// Time spent executing guest code, all runs.
    pub cpu_seconds: f64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub dropped: u64,
    pub denied: u64,
    /// The container's GPIO lines and their values (filled in by `ps`; absent when the
    /// container has none, so older readers of the JSON see what they saw before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpio: Vec<crate::gpio::LineState>,
}

/// Everything one run of the container task needs.
pub(super) struct Launch {
    pub runtime: Arc<Runtime>,
    pub spec: Arc<ContainerSpec>,
    pub module: Module,
    pub host: HostConfig,
    pub log: Arc<dyn LogSink>,
    pub events: EventBus,
    pub status: Arc<ContainerStatus>,
    pub stop: CancellationToken,
    pub phase: PhaseSender,
    /// An instance prepared ahead (a reload prepares before it stops the old one).
    pub prepared: Option<Prepared>,
    pub deps: Vec<(Dependency, PhaseReceiver)>,
}

impl Launch {
    /// The container task's whole life. `self` is boxed and the rarely used, large steps
    /// (waiting for dependencies, instantiating, the restart delay) are boxed futures of
    /// their own, so the task tokio keeps for a parked container holds little more than
    /// the running call (`supervisor::task_future_bytes`).
    pub async fn run(self: Box<Self>) -> Outcome {
        let (spec, log, events, status, phase) = (
            self.spec.clone(),
            self.log.clone(),
            self.events.clone(),
            self.status.clone(),
            self.phase.clone(),
        );
        let outcome = self.run_inner().await;
        let name = &spec.name;
        log.line(name, Stream::System, &outcome.to_string());
        let action = match &outcome {
            Outcome::NotStarted(_) => "not-started",
            Outcome::Finished(_) => "die",
        };
        events.record(Some(name), action, outcome.to_string());
        status.set_state(State::Ended(outcome.clone()));
        phase.send(Phase::Ended(outcome.clone()));
        outcome
    }

    async fn run_inner(mut self: Box<Self>) -> Outcome {
        if let Err(outcome) = Box::pin(self.wait_for_dependencies()).await {
            return outcome;
        }
        let mut restarts = Restarts::default();
        loop {
            let began = Instant::now();
            let status = self.run_once().await;
            let name = &self.spec.name;
            // A container shoal stopped is never restarted.
            let restart = if self.stop.is_cancelled() {
                None
            } else {
                restarts.next(self.spec.restart, self.spec.restart_delay, &status, began.elapsed())
            };
            let Some(Restart { delay, crash_loop }) = restart else {
                if restarts.count > 0 && !self.stop.is_cancelled() {
                    let why = format!(
                        "{status} (not restarted again after {} restart{})",
                        restarts.count,
                        if restarts.count == 1 { "" } else { "s" }
                    );
                    self.log.line(name, Stream::System, &why);
                }
                return Outcome::Finished(status);
            };
            {
                let mut life = self.status.lock();
                life.restarts = restarts.count;
                life.crash_loop = crash_loop;
            }
            let note = if crash_loop {
                " (crash loop: it keeps ending within seconds)"
            } else {
                ""
            };
            let text = format!(
                "{status}; restarting in {} (restart {}){note}",
                humantime::format_duration(delay),
                restarts.count
            );
            self.log.line(name, Stream::System, &text);
            self.events.record(Some(name), "die", status.to_string());
            self.events
                .record(Some(name), if crash_loop { "crash-loop" } else { "restart" }, text);
            self.status.set_state(State::Restarting { delay });
            let stop = self.stop.clone();
            let wait = Box::pin(async move {
                tokio::select! {
                    _ = stop.cancelled() => true,
                    _ = tokio::time::sleep(delay) => false,
                }
            });
            if wait.await {
                return Outcome::Finished(status);
            }
        }
    }

    /// Wait for every dependency's condition; `Err` with the outcome of not starting.
    async fn wait_for_dependencies(&mut self) -> Result<(), Outcome> {
        let deps = std::mem::take(&mut self.deps);
        if !deps.is_empty() {
            self.status.set_state(State::Waiting);
        }
        for (dep, mut phase) in deps {
            let ready = tokio::select! {
                _ = self.stop.cancelled() => return Err(Outcome::NotStarted("the stack was stopped first".into())),
                ready = wait_for(&dep.name, dep.condition, &mut phase) => ready,
            };
            ready.map_err(Outcome::NotStarted)?;
        }
        Ok(())
    }

    /// One run: instantiate (or take the instance a reload prepared) and run `_start`.
    async fn run_once(&mut self) -> ExitStatus {
        let prepared = match self.prepared.take() {
            Some(prepared) => Ok(prepared),
            None => {
                tokio::select! {
                    biased;
                    _ = self.stop.cancelled() => Err(ExitStatus::Stopped),
                    // Boxed: instantiating is a large future, needed once per run.
                    prepared = Box::pin(self.runtime.prepare(&self.spec, &self.module, self.host.clone(), self.status.probe.clone())) => prepared,
                }
            }
        };
        match prepared {
            Ok(prepared) => {
                // Running (what `service_started` waits for) once `_start` has started in
                // the sense of [`has_started`], not before its first poll: a publisher that
                // depends on a subscriber could then run first and publish before the
                // subscriber had subscribed.
                let probe = &self.status.probe;
                let holds_at_run_start = probe.deadline_holds();
                let mut start = std::pin::pin!(prepared.start(self.stop.clone()));
                let mut announced = false;
                std::future::poll_fn(|cx| {
                    if announced {
                        return std::future::Future::poll(start.as_mut(), cx);
                    }
                    let holds_before_poll = probe.deadline_holds();
                    let polled = std::future::Future::poll(start.as_mut(), cx);
                    if has_started(
                        polled.is_ready(),
                        holds_at_run_start,
                        holds_before_poll,
                        probe.deadline_holds(),
                    ) {
                        announced = true;
                        self.status.set_state(State::Running);
                        self.phase.send(Phase::Running);
                        self.events.record(Some(&self.spec.name), "start", "");
                    }
                    polled
                })
                .await
            }
            Err(status) => status,
        }
    }
}

/// Whether a run's `_start` has started, seen after one of its polls: it has ended, or the
/// poll ended in a wait (an event wait, a sleep, a blocking call: the poll returned without
/// the guest being held at an epoch deadline; an SDK guest has subscribed by then), or the
/// guest has been held at two deadlines since the run began (a guest that never waits).
///
/// One deadline is not enough: a store's first deadline is set when it is created, and when
/// the epoch has moved on before `_start`'s first poll (a busy executor, a neighbour keeping
/// the ticker going) that poll is held at once, before the guest did anything. Counted as
/// started then, a subscriber let its dependent publisher run before it had subscribed
/// (`regressions::no_process_wide_slot_limits`: 4 of 12 runs with the executor's drivers at
/// tokio's interval of 61 polls; 12 of 12 passed with this rule).
fn has_started(ended: bool, holds_at_run_start: u64, holds_before_poll: u64, holds_after_poll: u64) -> bool {
    ended || holds_after_poll == holds_before_poll || holds_after_poll.wrapping_sub(holds_at_run_start) >= 2
}

/// Wait until dependency `name`, whose phase `phase` carries, meets `condition`; `Err`
/// says why it never will.
async fn wait_for(name: &str, condition: DependencyCondition, phase: &mut PhaseReceiver) -> Result<(), String> {
    loop {
        let current = phase.current_and_update();
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
    use super::has_started;

    #[test]
    fn a_container_has_started_at_its_first_wait_not_at_a_stale_deadline() {
        // The first poll was held at the deadline the store was created with: not yet.
        assert!(!has_started(false, 5, 5, 6));
        // The next poll ended in the guest's first wait (its subscription made).
        assert!(has_started(false, 5, 6, 6));
        // A first poll that ends in a wait, or ends the run, is a start.
        assert!(has_started(false, 5, 5, 5));
        assert!(has_started(true, 5, 5, 6));
    }

    #[test]
    fn a_guest_that_never_waits_has_started_at_its_second_deadline() {
        assert!(!has_started(false, 0, 0, 1));
        assert!(has_started(false, 0, 1, 2));
        // Counts from earlier runs (the probe is kept across restarts) do not count.
        assert!(!has_started(false, 40, 40, 41));
    }
}
