//! When to reconnect a bridge, and noticing that another client holds its client id
//! (compose: bridges on many boards). Kept apart from the link's tasks so the rule can be
//! tested without a broker or a clock.

use std::time::Duration;

use tokio::time::Instant;

use super::link::FIRST_RETRY;

/// A connection that looks taken over by another client with the same client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Takeover {
    /// The broker said so: MQTT 5 DISCONNECT with reason 0x8E "Session taken over".
    Said,
    /// The broker closed this many connections in a row right after accepting them, what
    /// a broker that does not give reasons (MQTT 3.1.1) does to the older of two clients
    /// sharing an id.
    QuickDrops(u32),
}

/// A connection the broker ends within this long of accepting it is a quick drop.
const QUICK_DROP: Duration = Duration::from_secs(5);
/// Quick drops in a row before the link says another client probably uses its id.
const QUICK_DROPS_TO_WARN: u32 = 3;

/// The wait before each reconnection attempt. It doubles from [`FIRST_RETRY`] up to
/// `reconnect_max`, and goes back to the start only after a connection that lasted (a
/// broker that accepts and at once drops us is not a reason to come straight back). When
/// another client took the session (the broker said so, or it dropped us right after
/// accepting us [`QUICK_DROPS_TO_WARN`] times in a row), the wait jumps to `reconnect_max`:
/// two clients with one id that both reconnect at once would take the session from each
/// other forever.
pub(crate) struct Backoff {
    delay: Duration,
    max: Duration,
    connected_at: Option<Instant>,
    quick_drops: u32,
    taken_over: bool,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Self {
        Backoff {
            delay: FIRST_RETRY,
            max,
            connected_at: None,
            quick_drops: 0,
            taken_over: false,
        }
    }

    pub(crate) fn connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    /// The broker's DISCONNECT said another client took the session.
    pub(crate) fn taken_over(&mut self) {
        self.taken_over = true;
    }

    /// A failed attempt or a lost connection at `now`: how long to wait, and whether it
    /// looks like a takeover.
    pub(crate) fn failed(&mut self, now: Instant) -> (Duration, Option<Takeover>) {
        match self.connected_at.take() {
            Some(at) if now.duration_since(at) >= QUICK_DROP => {
                self.quick_drops = 0;
                self.delay = FIRST_RETRY;
            }
            Some(_) => self.quick_drops += 1,
            None => {}
        }
        let takeover = if std::mem::take(&mut self.taken_over) {
            Some(Takeover::Said)
        } else {
            (self.quick_drops >= QUICK_DROPS_TO_WARN).then_some(Takeover::QuickDrops(self.quick_drops))
        };
        if takeover.is_some() {
            // Come back seldom: the other client keeps the session meanwhile.
            self.delay = self.max;
        }
        let wait = self.delay;
        self.delay = (self.delay * 2).min(self.max);
        (wait, takeover)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(30);

    #[test]
    fn a_lasting_connection_starts_the_wait_again() {
        let mut b = Backoff::new(MAX);
        let t = Instant::now();
        assert_eq!(b.failed(t), (FIRST_RETRY, None));
        assert_eq!(b.failed(t), (FIRST_RETRY * 2, None));
        b.connected(t);
        assert_eq!(b.failed(t + QUICK_DROP), (FIRST_RETRY, None));
    }

    #[test]
    fn quick_drops_back_off_and_are_named_after_three() {
        let mut b = Backoff::new(MAX);
        let mut t = Instant::now();
        let mut waits = Vec::new();
        let mut said = Vec::new();
        for _ in 0..4 {
            b.connected(t);
            t += Duration::from_millis(10);
            let (wait, takeover) = b.failed(t);
            waits.push(wait);
            said.push(takeover);
            t += wait;
        }
        assert_eq!(waits, [FIRST_RETRY, FIRST_RETRY * 2, MAX, MAX]);
        assert_eq!(
            said,
            [None, None, Some(Takeover::QuickDrops(3)), Some(Takeover::QuickDrops(4))]
        );
    }

    #[test]
    fn a_session_taken_over_waits_the_longest() {
        let mut b = Backoff::new(MAX);
        let t = Instant::now();
        b.connected(t);
        b.taken_over();
        assert_eq!(b.failed(t + Duration::from_secs(60)), (MAX, Some(Takeover::Said)));
        // The next plain failure is not called a takeover again.
        assert_eq!(b.failed(t + Duration::from_secs(90)), (MAX, None));
    }
}
