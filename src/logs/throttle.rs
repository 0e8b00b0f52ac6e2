//! A guest that floods its stdout or stderr is slowed down, not the host: each stream has a
//! byte budget per second (a token bucket). When it is spent, the guest's write waits (its
//! fiber parks, its executor thread runs other containers) until the budget refills; no
//! output is dropped and nothing queues in host memory.
//!
//! The rate is one setting for the process (`shoal up --log-rate`; one process serves one
//! stack), read when a container's streams are created.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Default bytes per second per stream: a guest can still print 100 MiB in half a minute,
/// while 20 flooding containers write at most 80 MiB/s between them.
pub const DEFAULT_RATE: u64 = 4 << 20;

static RATE: AtomicU64 = AtomicU64::new(DEFAULT_RATE);

/// Set the rate of every stream created from now on (0: unlimited).
pub fn set_rate(bytes_per_second: u64) {
    RATE.store(bytes_per_second, Ordering::Relaxed);
}

/// The byte budget of one stream.
#[derive(Debug)]
pub struct Throttle {
    /// Bytes per second; 0 means unlimited.
    rate: u64,
    /// Bytes that may be written now; refills at `rate`, up to one second's worth.
    tokens: f64,
    refilled: Instant,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(RATE.load(Ordering::Relaxed))
    }
}

impl Throttle {
    pub fn new(rate: u64) -> Self {
        Throttle {
            rate,
            tokens: rate as f64,
            refilled: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.rate as f64);
        self.refilled = now;
    }

    /// How many bytes may be written now; 0 means wait for [`Throttle::wait`].
    pub fn allowance(&mut self, now: Instant) -> usize {
        if self.rate == 0 {
            return usize::MAX;
        }
        self.refill(now);
        self.tokens.max(0.0) as usize
    }

    /// `bytes` were written.
    pub fn spend(&mut self, bytes: usize) {
        if self.rate != 0 {
            self.tokens -= bytes as f64;
        }
    }

    /// How long until a useful amount (4 KiB, or the whole rate when it is smaller) may
    /// be written again.
    pub fn wait(&mut self, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        self.refill(now);
        let want = (self.rate as f64).min(4096.0);
        let missing = (want - self.tokens).max(0.0);
        Duration::from_secs_f64(missing / self.rate as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_refills_at_the_rate() {
        let start = Instant::now();
        let mut throttle = Throttle::new(1000);
        assert_eq!(throttle.allowance(start), 1000);
        throttle.spend(1000);
        assert_eq!(throttle.allowance(start), 0);
        assert_eq!(throttle.wait(start), Duration::from_secs(1), "1000 bytes at 1000/s");
        let later = start + Duration::from_millis(500);
        assert_eq!(throttle.allowance(later), 500);
        // Never more than one second's worth, however long it was idle.
        assert_eq!(throttle.allowance(later + Duration::from_secs(60)), 1000);
    }

    #[test]
    fn a_zero_rate_is_unlimited() {
        let now = Instant::now();
        let mut throttle = Throttle::new(0);
        throttle.spend(1 << 30);
        assert_eq!(throttle.allowance(now), usize::MAX);
        assert_eq!(throttle.wait(now), Duration::ZERO);
    }
}
