//! Where containers run: the executors, their worker count, and pinning (`cpus:`).
//!
//! **Design: one multi-threaded (work-stealing) tokio runtime**, with as many workers as
//! the process may use cores, rather than one current-thread executor per core with
//! containers placed on them. Both were measured with `shoal bench isolation` and
//! `shoal bench messaging` (`SHOAL_EXECUTOR=per-core` selects the second design, kept for
//! that comparison); the reasons for the first:
//! - A container is one task, so a spinning guest occupies at most one worker (one core)
//!   however many there are, and yields it at every epoch tick. With placement, the
//!   neighbours placed on a spinner's core wait behind it while another core may sit idle;
//!   work stealing moves them to the idle worker instead, so a parked subscriber's latency
//!   beside `cores - 1` spinners stays that of an idle machine.
//! - Fan-out wakes subscribers that may sit on any core: the runtime spreads them over the
//!   idle workers without a placement policy to tune.
//! - Idle cost is the same: a parked task wakes nothing, and idle workers park in the OS.
//!
//! A container with `cpus:` runs on a runtime of its own core set instead (one per
//! distinct set, made on first use), whose threads are allowed only on those cores
//! (`sched_setaffinity`), with one worker per core of the set.
//!
//! The worker count defaults to the cores this process may use (`available_parallelism`,
//! which honours the affinity mask and cgroup CPU quota) and is set by the global
//! `--workers N` flag or `SHOAL_WORKERS`.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio::task::JoinHandle;

use crate::spec::{CoreSet, Stack};

/// Threads for blocking work (WASI file I/O, compiles moved off the workers) per runtime.
pub const MAX_BLOCKING_THREADS: usize = 8;

/// The worker count chosen on the command line (`--workers`), if any.
static WORKERS: OnceLock<usize> = OnceLock::new();

/// Errors placing a container on cores.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error(
        "{location}: container `{container}`: `cpus` names core {core}, but this process may only use cores {allowed}"
    )]
    NoSuchCore {
        location: String,
        container: String,
        core: u16,
        allowed: String,
    },
    #[error("cannot start an executor for cores {cores}: {source}")]
    Start {
        cores: String,
        #[source]
        source: std::io::Error,
    },
}

/// Set the worker count for the executors this process builds (the `--workers` flag).
/// The first call wins.
pub fn set_workers(workers: usize) {
    let _ = WORKERS.set(workers.max(1));
}

/// The worker count: `--workers`/`SHOAL_WORKERS` if given, else the cores this process may use.
pub fn workers() -> usize {
    WORKERS
        .get()
        .copied()
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The executor that runs a stack's containers and its control plane, with `workers` workers.
pub fn build(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .thread_name("shoal-worker")
        // A poll of a busy guest lasts up to a tick (10 ms): with tokio's defaults (every
        // 61 polls) a woken neighbour in the shared queue, or a timer, could wait 0.6 s.
        // Tried against the defaults (issue 15): the drivers every 61 polls save an
        // `epoll_wait` per wake-up (~10% of the CPU of a fan-out to 1,000 parked
        // subscribers); the test they made fail now and then was a start race, since
        // mended (`supervisor::container::has_started`), and the interval has not been
        // measured again. tokio's tuned shared-queue interval (at least every 2 polls)
        // doubled `bench isolation`'s p99 beside 4 spinners.
        .event_interval(1)
        .global_queue_interval(1)
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
}

/// The cores this process may run on (its affinity mask), in Linux's numbering.
pub fn allowed_cores() -> BTreeSet<u16> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return BTreeSet::new();
        }
        (0..=CoreSet::MAX_CORE)
            .filter(|&c| libc::CPU_ISSET(usize::from(c), &set))
            .collect()
    }
}

/// Refuse a stack whose `cpus:` names a core this process cannot use, naming the key.
pub fn check_cores(stack: &Stack) -> Result<(), PlacementError> {
    let allowed = allowed_cores();
    for container in &stack.containers {
        let Some(cores) = &container.cpus else { continue };
        if let Some(&core) = cores.0.iter().find(|c| !allowed.contains(c)) {
            return Err(PlacementError::NoSuchCore {
                location: container.cpus_location.to_string(),
                container: container.name.to_string(),
                core,
                allowed: CoreSet(allowed).to_string(),
            });
        }
    }
    Ok(())
}

/// Where a container runs: `None` for the current runtime, or the executor of its `cpus:`
/// (started on first use; the error when it cannot start).
pub fn placement(cores: Option<&CoreSet>) -> Result<Option<tokio::runtime::Handle>, PlacementError> {
    match cores {
        Some(cores) => pinned(cores).map(Some),
        None if per_core() => next_core().as_ref().map(pinned).transpose(),
        None => Ok(None),
    }
}

/// Run a container's task where [`placement`] said.
pub fn spawn_on<F>(placement: Option<&tokio::runtime::Handle>, task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match placement {
        Some(handle) => handle.spawn(task),
        None => tokio::spawn(task),
    }
}

/// `SHOAL_EXECUTOR=per-core`: the other design (one single-worker executor per core, each
/// container placed on the next core in turn), kept only so the benches can compare.
fn per_core() -> bool {
    static PER_CORE: OnceLock<bool> = OnceLock::new();
    *PER_CORE.get_or_init(|| std::env::var("SHOAL_EXECUTOR").is_ok_and(|v| v == "per-core"))
}

/// The next core for round-robin placement, among the first `workers()` allowed cores.
fn next_core() -> Option<CoreSet> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let allowed: Vec<u16> = allowed_cores().into_iter().take(workers()).collect();
    if allowed.is_empty() {
        return None;
    }
    let core = allowed[NEXT.fetch_add(1, Ordering::Relaxed) % allowed.len()];
    Some(CoreSet([core].into_iter().collect()))
}

/// The executors pinned to core sets (`cpus:`), by set, made on first use by [`pinned`].
static PINNED: OnceLock<Mutex<HashMap<BTreeSet<u16>, tokio::runtime::Runtime>>> = OnceLock::new();

/// Every executor whose threads the systemd watchdog must see making progress: `main`
/// (the one running the stack, named `shoal-worker`) and each pinned one
/// (`shoal-cpus-SET`), with those names.
pub fn executors(main: &tokio::runtime::Handle) -> Vec<(String, tokio::runtime::Handle)> {
    let mut all = vec![("shoal-worker".to_owned(), main.clone())];
    if let Some(pinned) = PINNED.get() {
        let map = pinned.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (cores, runtime) in map.iter() {
            all.push((
                format!("shoal-cpus-{}", CoreSet(cores.clone())),
                runtime.handle().clone(),
            ));
        }
    }
    all
}

/// The handle of the executor pinned to `cores`, started on first use. Its runtime lives
/// as long as the process: pinned containers may come and go with reloads.
fn pinned(cores: &CoreSet) -> Result<tokio::runtime::Handle, PlacementError> {
    let mut map = PINNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(runtime) = map.get(&cores.0) {
        return Ok(runtime.handle().clone());
    }
    let set = cores.0.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(set.len())
        .thread_name(format!("shoal-cpus-{cores}"))
        // As in `build`: a busy guest's poll lasts a tick, so check the drivers and the
        // shared queue at every poll (pinned executors had tokio's 61 until now).
        .event_interval(1)
        .global_queue_interval(1)
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .on_thread_start(move || pin_this_thread(&set))
        .build()
        .map_err(|source| PlacementError::Start {
            cores: cores.to_string(),
            source,
        })?;
    let handle = runtime.handle().clone();
    map.insert(cores.0.clone(), runtime);
    Ok(handle)
}

/// Allow the calling thread only on `cores`. The cores were checked at `up`; should the
/// call still fail (the mask changed since), the thread keeps running where it may and
/// the failure is printed (shoal logs its own lines to stderr).
fn pin_this_thread(cores: &BTreeSet<u16>) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays within its size
    // (cores are at most CoreSet::MAX_CORE < CPU_SETSIZE); sched_setaffinity reads it.
    let failed = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &core in cores {
            libc::CPU_SET(usize::from(core), &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0
    };
    if failed {
        eprintln!(
            "warning: cannot pin an executor thread to cores {}: {}",
            CoreSet(cores.clone()),
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_worker_count_is_the_cores_this_process_may_use() {
        let allowed = allowed_cores();
        assert!(!allowed.is_empty());
        // Without --workers: available_parallelism, which is at most the affinity mask.
        if WORKERS.get().is_none() {
            assert!(workers() >= 1 && workers() <= allowed.len());
        }
    }

    #[test]
    fn a_pinned_executor_runs_only_on_its_cores() {
        let first = *allowed_cores().iter().next().expect("a core");
        let cores = CoreSet([first].into_iter().collect());
        let runtime = build(1).expect("runtime");
        let mask = runtime
            .block_on(async {
                let placed = placement(Some(&cores)).expect("an executor for the core");
                spawn_on(placed.as_ref(), async { allowed_cores() }).await
            })
            .expect("task");
        assert_eq!(mask, cores.0);
        let names: Vec<String> = executors(runtime.handle()).into_iter().map(|(name, _)| name).collect();
        assert!(
            names.contains(&format!("shoal-cpus-{cores}")),
            "the watchdog sees the pinned executor: {names:?}"
        );
    }
}
