//! The epoch ticker, awake only while some container is running.
//!
//! A ticker that runs all the time costs ~0.35% of a core even when every container is
//! parked. Each container's guard counts it while its call is being polled (its fiber runs
//! wasm or a host call; see `Runtime::prepare`), and the ticker thread parks itself once
//! that count has stayed zero for a whole tick.
//!
//! Why per poll and not per host call (a call hook): a delivery to a parked subscriber
//! makes four host calls, and counting each entry and exit on this shared counter (and
//! reading a clock for `ps`) was work on every message; a poll is one wake-up, however
//! many messages it drains. Why a tick of grace before parking: wake-ups that come every
//! few microseconds (a fan-out) would otherwise unpark the thread, a system call and a
//! context switch, on nearly every one of them.

use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use wasmtime::Engine;

struct Shared {
    /// Containers being polled (running wasm or a host call).
    executing: AtomicIsize,
    shutdown: AtomicBool,
    /// Epoch increments so far (what the tests watch; one add per tick).
    ticks: AtomicU64,
}

pub struct Ticker {
    shared: Arc<Shared>,
    /// Taken only on drop, to join the thread.
    thread: Option<JoinHandle<()>>,
    /// The ticker thread's handle, for the guards to wake it.
    waker: thread::Thread,
}

impl Ticker {
    /// Spawn the ticker thread (parked until a store enters wasm). An error here must stop
    /// start-up: without the thread no spinning guest can be interrupted or stopped.
    pub fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            executing: AtomicIsize::new(0),
            shutdown: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
        });
        let state = shared.clone();
        let thread = thread::Builder::new()
            .name("shoal-epoch".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                // Ticks in a row that found nothing running.
                let mut idle = 0u32;
                while !state.shutdown.load(Ordering::Acquire) {
                    if state.executing.load(Ordering::Acquire) <= 0 {
                        if idle > 0 {
                            thread::park();
                            idle = 0;
                            continue;
                        }
                        idle += 1;
                    } else {
                        idle = 0;
                    }
                    thread::sleep(tick);
                    engine.increment_epoch();
                    state.ticks.fetch_add(1, Ordering::Relaxed);
                }
            })?;
        Ok(Ticker {
            shared,
            waker: thread.thread().clone(),
            thread: Some(thread),
        })
    }

    /// A guard for one store; it counts while that store executes wasm.
    pub fn guard(&self) -> ExecutionGuard {
        ExecutionGuard {
            shared: self.shared.clone(),
            thread: self.waker.clone(),
            inside: false,
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

pub struct ExecutionGuard {
    shared: Arc<Shared>,
    thread: thread::Thread,
    inside: bool,
}

impl ExecutionGuard {
    pub fn enter(&mut self) {
        if !self.inside {
            self.inside = true;
            if self.shared.executing.fetch_add(1, Ordering::AcqRel) <= 0 {
                self.thread.unpark();
            }
        }
    }

    pub fn leave(&mut self) {
        if self.inside {
            self.inside = false;
            self.shared.executing.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for ExecutionGuard {
    /// A store dropped mid-execution (a stopped spinning guest) must not keep the ticker awake.
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executing(t: &Ticker) -> isize {
        t.shared.executing.load(Ordering::Acquire)
    }

    #[test]
    fn the_count_always_balances() {
        let ticker = Ticker::start(Engine::default(), Duration::from_millis(10)).expect("ticker thread");
        let (mut a, mut b) = (ticker.guard(), ticker.guard());
        a.enter();
        a.enter();
        b.enter();
        assert_eq!(executing(&ticker), 2, "a guard counts once");
        a.leave();
        a.leave();
        assert_eq!(executing(&ticker), 1);
        // A container stopped while it runs: its guard goes with it.
        drop(b);
        assert_eq!(executing(&ticker), 0);
    }

    #[test]
    fn a_running_container_makes_the_epoch_advance_and_an_idle_one_does_not() {
        let ticker = Ticker::start(Engine::default(), Duration::from_millis(5)).expect("ticker thread");
        let epoch = || ticker.shared.ticks.load(Ordering::Relaxed);
        let mut guard = ticker.guard();
        guard.enter();
        let start = epoch();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while epoch() < start + 2 && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(epoch() >= start + 2, "the ticker must tick while a container runs");
        guard.leave();
        // After one tick of grace the ticker parks: the epoch stops moving.
        thread::sleep(Duration::from_millis(100));
        let parked = epoch();
        thread::sleep(Duration::from_millis(100));
        assert!(
            epoch() <= parked + 1,
            "an idle ticker must park: {parked} -> {}",
            epoch()
        );
    }
}
