//! What happened in a stack, for `shoal events` and the log: lifecycle changes, restarts,
//! capability denials, reloads.
//!
//! A bounded history (the last [`HISTORY`] events) lets a client that connects late see
//! what just happened (`events` after a `stop` still shows the stop); a broadcast channel
//! carries the live stream. A client too slow to keep up misses events rather than
//! holding memory: it is told how many it missed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

/// Events kept for late readers.
pub const HISTORY: usize = 512;
/// Events buffered per live reader before it starts missing some.
const LIVE_BUFFER: usize = 1024;

/// One event. `action` uses Docker's words where they exist (`start`, `die`, `stop`,
/// `kill`, `restart`, `pause`, `unpause`) plus shoal's own (`waiting`, `not-started`,
/// `crash-loop`, `warning`, `reload`, `reload-failed`, `oom`). Clients see it as the
/// control protocol's own event type (`control::cmd::events::Event`), which prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch, with microseconds.
    pub time: f64,
    /// The container it is about; `None` for the stack itself (reloads).
    pub container: Option<String>,
    pub action: String,
    /// Human-readable detail: the exit status, the plan of a reload, the denied call...
    pub detail: String,
}

impl Event {
    pub fn new(container: Option<&str>, action: &str, detail: impl Into<String>) -> Self {
        Event {
            time: crate::procstat::unix_now(),
            container: container.map(str::to_owned),
            action: action.to_owned(),
            detail: detail.into(),
        }
    }
}

/// The stack's event stream. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    history: Arc<Mutex<VecDeque<Event>>>,
    /// Created on the first [`EventBus::subscribe`] and dropped on [`EventBus::clear`]: a
    /// broadcast ring keeps its last values (and its slots) alive.
    live: Arc<Mutex<Option<broadcast::Sender<Event>>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            history: Arc::new(Mutex::new(VecDeque::with_capacity(HISTORY))),
            live: Arc::new(Mutex::new(None)),
        }
    }
}

impl EventBus {
    pub fn emit(&self, event: Event) {
        {
            let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
            if history.len() >= HISTORY {
                history.pop_front();
            }
            history.push_back(event.clone());
        }
        // No live reader is fine.
        if let Some(live) = self.live.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = live.send(event);
        }
    }

    /// Shorthand for [`EventBus::emit`] of a new [`Event`].
    pub fn record(&self, container: Option<&str>, action: &str, detail: impl Into<String>) {
        self.emit(Event::new(container, action, detail));
    }

    /// Forget the history (the stack is gone).
    pub fn clear(&self) {
        *self.history.lock().unwrap_or_else(|e| e.into_inner()) = VecDeque::new();
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The history so far and a receiver for what comes next, taken together so that no
    /// event falls between them.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let live = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| broadcast::Sender::new(LIVE_BUFFER))
            .subscribe();
        (history.iter().cloned().collect(), live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_subscribe_misses_nothing() {
        let bus = EventBus::default();
        for i in 0..HISTORY + 10 {
            bus.record(Some("a"), "start", i.to_string());
        }
        let (history, mut live) = bus.subscribe();
        assert_eq!(history.len(), HISTORY);
        assert_eq!(history[0].detail, "10", "the oldest are dropped first");
        bus.record(None, "reload", "");
        let next = live.try_recv().expect("live event");
        assert_eq!(next.action, "reload");
        assert_eq!(next.container, None, "a reload is about the stack");
    }
}
