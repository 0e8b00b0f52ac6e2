//! GPIO lines declared in the compose file (`gpio:`), requested when the stack starts and
//! released when it stops (dropping [`GpioLines`]).
//!
//! Everything above the device calls is shared by both backends: a [`Line`] keeps the
//! declaration, the listeners (containers that registered a callback, with the SDK
//! `(port, pin)` each knows the line by) and the edge rule, and turns a value change into
//! [`GpioEvent`]s in the listeners' [`GpioInbox`]es. Only reading, writing and watching the
//! physical value differ:
//! * `sim`: the value is a cell in shoal's memory; `shoal gpio set` changes it from outside,
//!   and a change of an input line is an edge like a kernel one.
//! * `cdev`: a line request on the kernel's GPIO character device (uAPI v2, `gpiocdev`),
//!   with direction, active-low, bias, debounce and edge detection done by the kernel. Edge
//!   events are read off the executor's reactor (`AsyncFd` on the request's file): no
//!   thread and no polling per line.
//!
//! Values are logical everywhere (active-low applied by the kernel or, for `sim`, by
//! nothing: a sim line has no physical level).

#[cfg(target_os = "linux")]
mod cdev;
mod sim;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use tokio::sync::watch;

use crate::spec::{GpioBackend, GpioDirection, GpioLineSpec, Location};

/// Events queued for one container before the oldest is dropped (a guest that never reads
/// its events must not grow the host's memory).
pub const INBOX_CAPACITY: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    #[error("GPIO line `{line}` (declared at {location}): cannot open chip `{chip}`: {reason}")]
    Chip {
        line: String,
        location: Location,
        chip: String,
        reason: String,
    },
    #[error("GPIO line `{line}` (declared at {location}): chip `{chip}` has no line {what}")]
    NoSuchLine {
        line: String,
        location: Location,
        chip: String,
        what: String,
    },
    #[error("GPIO line `{line}` (declared at {location}): the kernel refused the line request: {reason}")]
    Request {
        line: String,
        location: Location,
        reason: String,
    },
    #[error("GPIO line `{line}`: {reason}")]
    Device { line: String, reason: String },
    #[error("no GPIO line `{line}` in this stack{known}")]
    Unknown { line: String, known: String },
    #[error("GPIO line `{line}` is a `cdev` line: its value comes from the hardware")]
    NotSim { line: String },
    #[error("GPIO line `{line}` is an output: its container drives it")]
    DrivenOutput { line: String },
    #[error("GPIO line `{line}` is an input")]
    Input { line: String },
    #[error("GPIO line `{line}`: the kernel GPIO character device exists only on Linux")]
    Unsupported { line: String },
}

/// One edge, as `ocre_get_event` reports it (type 1, id = pin, port, state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpioEvent {
    pub port: u32,
    pub pin: u32,
    pub state: bool,
    /// When shoal saw the edge (for `shoal bench gpio`).
    pub at: Instant,
}

/// One container's queue of GPIO events; a parked event-wait `ocre_sleep` wakes on
/// [`GpioInbox::signal`] as it does on its mailbox.
#[derive(Debug, Default)]
pub struct GpioInbox {
    queue: Mutex<VecDeque<GpioEvent>>,
    signal: crate::broker::Signal,
    dropped: std::sync::atomic::AtomicU64,
}

impl GpioInbox {
    fn push(&self, event: GpioEvent) {
        {
            let mut q = lock(&self.queue);
            if q.len() >= INBOX_CAPACITY {
                q.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(event);
        }
        self.signal.raise();
    }

    pub fn pop(&self) -> Option<GpioEvent> {
        lock(&self.queue).pop_front()
    }

    pub fn is_empty(&self) -> bool {
        lock(&self.queue).is_empty()
    }

    pub fn signal(&self) -> &crate::broker::Signal {
        &self.signal
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A poisoned lock only means another thread panicked mid-update of a queue or list;
/// both stay consistent (every update is one push or retain), so go on with them.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Listener {
    inbox: Weak<GpioInbox>,
    port: u32,
    pin: u32,
}

enum Device {
    Sim(sim::SimLine),
    #[cfg(target_os = "linux")]
    Cdev(cdev::CdevLine),
}

/// One requested line, shared by the containers granted it and the control socket.
pub struct Line {
    spec: GpioLineSpec,
    device: Device,
    listeners: Mutex<Vec<Listener>>,
    /// The last value shoal knows (set, injected, or seen in an edge), for `ps` and for
    /// whoever waits for a change (`shoal bench gpio`).
    value: watch::Sender<bool>,
    /// The task reading a `cdev` input's edge events; aborted with the line.
    reader: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Line {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.reader).take() {
            task.abort();
        }
    }
}

impl Line {
    pub fn spec(&self) -> &GpioLineSpec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn is_sim(&self) -> bool {
        matches!(self.device, Device::Sim(_))
    }

    pub fn is_output(&self) -> bool {
        self.spec.direction == GpioDirection::Output
    }

    /// The current logical value (read from the device for `cdev`).
    pub fn get(&self) -> Result<bool, GpioError> {
        match &self.device {
            Device::Sim(s) => Ok(s.get()),
            #[cfg(target_os = "linux")]
            Device::Cdev(c) => c.get().map_err(|reason| self.device_error(reason)),
        }
    }

    /// Drive an output (the guest's `pin_set`).
    pub fn set(&self, value: bool) -> Result<(), GpioError> {
        if !self.is_output() {
            return Err(GpioError::Input {
                line: self.spec.name.clone(),
            });
        }
        match &self.device {
            Device::Sim(s) => s.set(value),
            #[cfg(target_os = "linux")]
            Device::Cdev(c) => c.set(value).map_err(|reason| self.device_error(reason))?,
        }
        self.value.send_replace(value);
        Ok(())
    }

    /// `shoal gpio set`: give a `sim` input a value from outside; a change is an edge.
    pub fn inject(&self, value: bool) -> Result<(), GpioError> {
        let line = self.spec.name.clone();
        let Device::Sim(s) = &self.device else {
            return Err(GpioError::NotSim { line });
        };
        if self.is_output() {
            return Err(GpioError::DrivenOutput { line });
        }
        let before = s.get();
        s.set(value);
        if before != value {
            self.changed(value);
        }
        Ok(())
    }

    /// A value change seen on an input (an injected one, or a kernel edge event): record
    /// it and queue an event for each listener if the line's `edge:` reports it.
    fn changed(&self, value: bool) {
        self.value.send_replace(value);
        if !self.spec.edge.reports(value) {
            return;
        }
        let at = Instant::now();
        let mut listeners = lock(&self.listeners);
        listeners.retain(|l| match l.inbox.upgrade() {
            Some(inbox) => {
                inbox.push(GpioEvent {
                    port: l.port,
                    pin: l.pin,
                    state: value,
                    at,
                });
                true
            }
            None => false,
        });
    }

    /// Deliver this line's edges to `inbox` as `(port, pin)` (the guest's
    /// `register_callback`); registering twice is one registration.
    pub fn listen(&self, inbox: &Arc<GpioInbox>, port: u32, pin: u32) {
        let mut listeners = lock(&self.listeners);
        listeners.retain(|l| l.inbox.strong_count() > 0 && !std::ptr::eq(l.inbox.as_ptr(), Arc::as_ptr(inbox)));
        listeners.push(Listener {
            inbox: Arc::downgrade(inbox),
            port,
            pin,
        });
    }

    /// Stop delivering to `inbox`; `false` when it was not listening.
    pub fn unlisten(&self, inbox: &Arc<GpioInbox>) -> bool {
        let mut listeners = lock(&self.listeners);
        let before = listeners.len();
        listeners.retain(|l| l.inbox.strong_count() > 0 && !std::ptr::eq(l.inbox.as_ptr(), Arc::as_ptr(inbox)));
        listeners.len() < before
    }

    /// Changes of the value shoal knows, for waiting on one.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.value.subscribe()
    }

    /// The value shoal knows, without touching the device.
    pub fn known_value(&self) -> bool {
        *self.value.borrow()
    }

    fn device_error(&self, reason: String) -> GpioError {
        GpioError::Device {
            line: self.spec.name.clone(),
            reason,
        }
    }
}

/// A line as `shoal gpio get` and `ps` show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineState {
    pub name: String,
    /// `sim` or `cdev`.
    pub kind: String,
    /// `input` or `output`.
    pub direction: String,
    /// The logical value; `None` when it could not be read (or was not asked for).
    pub value: Option<u8>,
}

impl Line {
    /// The line now, its value read from the device.
    pub fn state(&self) -> LineState {
        LineState {
            name: self.spec.name.clone(),
            kind: if self.is_sim() { "sim" } else { "cdev" }.to_string(),
            direction: if self.is_output() { "output" } else { "input" }.to_string(),
            value: self.get().ok().map(u8::from),
        }
    }
}

/// The stack's requested lines, by name. Cloning shares them; the lines are released when
/// the last clone goes (the stack stops).
#[derive(Clone, Default)]
pub struct GpioLines {
    lines: Arc<BTreeMap<String, Arc<Line>>>,
}

impl GpioLines {
    /// Request every declared line. Must run inside the tokio runtime (a `cdev` input's
    /// edge reader is a task on it). The first line that cannot be had is the error, which
    /// names its place in the compose file; lines requested before it are released.
    pub fn open(specs: &BTreeMap<String, GpioLineSpec>) -> Result<GpioLines, GpioError> {
        let mut lines = BTreeMap::new();
        for (name, spec) in specs {
            lines.insert(name.clone(), open_line(spec)?);
        }
        Ok(GpioLines { lines: Arc::new(lines) })
    }

    pub fn get(&self, name: &str) -> Result<&Arc<Line>, GpioError> {
        self.lines.get(name).ok_or_else(|| GpioError::Unknown {
            line: name.to_string(),
            known: if self.lines.is_empty() {
                String::new()
            } else {
                format!(
                    " (lines: {})",
                    self.lines.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            },
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Line>> {
        self.lines.values()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

fn open_line(spec: &GpioLineSpec) -> Result<Arc<Line>, GpioError> {
    let (device, initial) = match &spec.backend {
        GpioBackend::Sim => {
            let initial = spec.direction == GpioDirection::Output && spec.initial;
            (Device::Sim(sim::SimLine::new(initial)), initial)
        }
        #[cfg(target_os = "linux")]
        GpioBackend::Cdev { chip, line } => {
            let c = cdev::CdevLine::open(spec, chip, line)?;
            let initial = c.get().unwrap_or(spec.initial);
            (Device::Cdev(c), initial)
        }
        #[cfg(not(target_os = "linux"))]
        GpioBackend::Cdev { .. } => {
            return Err(GpioError::Unsupported {
                line: spec.name.clone(),
            })
        }
    };
    let line = Arc::new(Line {
        spec: spec.clone(),
        device,
        listeners: Mutex::new(Vec::new()),
        value: watch::Sender::new(initial),
        reader: Mutex::new(None),
    });
    #[cfg(target_os = "linux")]
    if let Device::Cdev(c) = &line.device {
        if let Some(task) = c.watch_edges(Arc::downgrade(&line)) {
            *lock(&line.reader) = Some(task);
        }
    }
    Ok(line)
}

#[cfg(test)]
pub(crate) mod tests;
