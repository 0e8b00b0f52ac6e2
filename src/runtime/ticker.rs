//! The epoch ticker, awake only while some container is executing guest code.
//!
//! A ticker that runs all the time costs ~0.35% of a core even when every container is
//! parked. Each store's call hook tells us when its fiber enters and leaves wasm; the
//! ticker thread parks itself whenever that count is zero.

use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use wasmtime::Engine;

struct Shared {
    /// Stores executing wasm. Signed: a store dropped while one of its paused slices is
    /// still pending may take it below zero for a moment (see [`Paused`]).
    executing: AtomicIsize,
    shutdown: AtomicBool,
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
        });
        let state = shared.clone();
        let thread = thread::Builder::new()
            .name("shoal-epoch".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                while !state.shutdown.load(Ordering::Acquire) {
                    if state.executing.load(Ordering::Acquire) <= 0 {
                        thread::park();
                        continue;
                    }
                    thread::sleep(tick);
                    engine.increment_epoch();
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

    /// Stop counting this store as executing while it is held off the executor (a CPU
    /// throttle); it counts again when the returned [`Paused`] is dropped. `None` when the
    /// store is not inside wasm.
    pub fn pause(&mut self) -> Option<Paused> {
        if !self.inside {
            return None;
        }
        self.shared.executing.fetch_sub(1, Ordering::AcqRel);
        Some(Paused {
            shared: self.shared.clone(),
            thread: self.thread.clone(),
        })
    }
}

/// A paused slice of execution: dropping it (when the pause ends, or when the container is
/// stopped during it) counts the store as executing again, so a throttled guest costs no
/// ticks while it waits and its own guard's accounting stays balanced.
pub struct Paused {
    shared: Arc<Shared>,
    thread: thread::Thread,
}

impl Drop for Paused {
    fn drop(&mut self) {
        if self.shared.executing.fetch_add(1, Ordering::AcqRel) <= 0 {
            self.thread.unpark();
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
    fn a_paused_store_does_not_count_and_the_count_always_balances() {
        let ticker = Ticker::start(Engine::default(), Duration::from_millis(10)).expect("ticker thread");
        let mut guard = ticker.guard();
        assert!(guard.pause().is_none(), "not inside wasm: nothing to pause");
        guard.enter();
        assert_eq!(executing(&ticker), 1);
        let paused = guard.pause();
        assert_eq!(executing(&ticker), 0);
        drop(paused);
        assert_eq!(executing(&ticker), 1);
        // A store stopped while paused: the guard goes first, then the pending pause.
        let paused = guard.pause();
        drop(guard);
        assert_eq!(executing(&ticker), -1);
        drop(paused);
        assert_eq!(executing(&ticker), 0);
    }
}
