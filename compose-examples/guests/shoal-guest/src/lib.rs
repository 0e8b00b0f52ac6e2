//! # shoal-guest: the Rust guest SDK for shoal
//!
//! A thin, safe layer over the Ocre-compatible `env` imports that shoal serves to its
//! WebAssembly containers: messaging (prefix-matched pub/sub), timers, sleep, sensors and an
//! event loop. Build guests for `wasm32-wasip1`.
//!
//! The raw imports are in [`sys`]; the exact wire layout (event slots, sensor signatures) is
//! in `ABI-NOTES.md` beside this crate's workspace.
//!
//! ## Example
//!
//! A guest that publishes a counter every second and prints everything under `demo/`:
//!
//! ```no_run
//! use shoal_guest::{Event, Timer};
//!
//! fn main() -> Result<(), shoal_guest::Error> {
//!     shoal_guest::register_dispatcher(shoal_guest::EventKind::Timer)?;
//!     shoal_guest::register_dispatcher(shoal_guest::EventKind::Message)?;
//!     shoal_guest::subscribe("demo/")?;
//!     let timer = Timer::create(1)?;
//!     timer.start(1000, true)?;
//!     let mut n = 0u32;
//!     shoal_guest::run(|event| match event {
//!         Event::Timer { id: 1 } => {
//!             let payload = n.to_string();
//!             if let Err(e) = shoal_guest::publish("demo/count", "text/plain", payload.as_bytes()) {
//!                 eprintln!("{e}");
//!             }
//!             n += 1;
//!         }
//!         Event::Message(m) => println!("{} = {}", m.topic, m.payload_str()),
//!         _ => {}
//!     })
//! }
//! ```
//!
//! ## Events
//!
//! Events are *polled*: [`run`], [`events`] and [`next_event`] call `ocre_get_event`, and when
//! nothing is queued they park with `ocre_sleep`. On shoal such a sleep ends as soon as an
//! event arrives, so an idle guest costs nothing and wakes at once. The exported
//! `timer_callback` / `message_callback` functions exist only so that
//! `ocre_register_dispatcher` (which checks for the export) succeeds; the host never needs to
//! call them.

#![warn(missing_docs)]

pub mod sys;

use std::ffi::{CStr, CString};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// An error returned by a host call: the function's name and its (negative) return code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// The `env` import that failed.
    pub call: &'static str,
    /// Its return code (a negated errno, e.g. -22 for EINVAL).
    pub code: i32,
}

impl Error {
    fn check(call: &'static str, code: i32) -> Result<i32, Error> {
        if code < 0 {
            Err(Error { call, code })
        } else {
            Ok(code)
        }
    }

    /// A short name for the errno in [`Error::code`], when known.
    pub fn errno_name(&self) -> &'static str {
        match -self.code {
            1 => "EPERM",
            2 => "ENOENT",
            12 => "ENOMEM",
            13 => "EACCES",
            16 => "EBUSY",
            19 => "ENODEV",
            22 => "EINVAL",
            28 => "ENOSPC",
            38 => "ENOSYS",
            42 => "ENOMSG",
            _ => "error",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {} ({})", self.call, self.code, self.errno_name())
    }
}

impl std::error::Error for Error {}

fn cstring(s: &str) -> CString {
    // An interior NUL would truncate the string on the host side; cut it here explicitly.
    let bytes = s.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).expect("no interior NUL")
}

// ---------------------------------------------------------------------------------------
// Messaging

/// Publish `payload` on `topic`, tagged with `content_type` (e.g. `"text/plain"`).
///
/// Every subscriber whose prefix matches `topic` receives a copy. Publishing to a topic
/// nobody listens to succeeds on shoal. An empty topic, empty content type or empty payload
/// is refused by the host (-22).
pub fn publish(topic: &str, content_type: &str, payload: &[u8]) -> Result<(), Error> {
    let t = cstring(topic);
    let c = cstring(content_type);
    let rc = unsafe {
        sys::ocre_publish_message(
            t.as_ptr().cast(),
            c.as_ptr().cast(),
            payload.as_ptr(),
            payload.len() as i32,
        )
    };
    Error::check("ocre_publish_message", rc).map(|_| ())
}

/// Subscribe to every topic that starts with `prefix` (`"test/"` matches `"test/topic"`).
pub fn subscribe(prefix: &str) -> Result<(), Error> {
    let p = cstring(prefix);
    let rc = unsafe { sys::ocre_subscribe_message(p.as_ptr().cast()) };
    Error::check("ocre_subscribe_message", rc).map(|_| ())
}

/// Kinds of events, as numbered by the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// 0: timer expiries.
    Timer = 0,
    /// 1: GPIO changes.
    Gpio = 1,
    /// 2: sensor events.
    Sensor = 2,
    /// 3: messages.
    Message = 3,
}

impl EventKind {
    fn export_name(self) -> &'static [u8] {
        match self {
            EventKind::Timer => b"timer_callback\0",
            EventKind::Gpio => b"gpio_callback\0",
            EventKind::Sensor => b"sensor_callback\0",
            EventKind::Message => b"message_callback\0",
        }
    }
}

/// Tell the host this guest handles events of `kind` (`ocre_register_dispatcher`).
///
/// This is where the host checks the capability for that kind of event; call it once per
/// kind before creating timers or subscribing. The export it names (`timer_callback`,
/// `message_callback`, ...) is provided by this crate.
pub fn register_dispatcher(kind: EventKind) -> Result<(), Error> {
    let rc = unsafe { sys::ocre_register_dispatcher(kind as i32, kind.export_name().as_ptr()) };
    Error::check("ocre_register_dispatcher", rc).map(|_| ())
}

// ---------------------------------------------------------------------------------------
// Time

/// Sleep for `ms` milliseconds (`ocre_sleep`). A `stop` of the container interrupts it.
pub fn sleep(ms: u32) -> Result<(), Error> {
    let rc = unsafe { sys::ocre_sleep(ms as i32) };
    Error::check("ocre_sleep", rc).map(|_| ())
}

/// A host timer, identified by a small integer chosen by the guest (ids are per container).
///
/// Each expiry queues an [`Event::Timer`] with this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    id: i32,
}

impl Timer {
    /// Create timer `id` (`ocre_timer_create`); -16 (EBUSY) if the id is taken.
    pub fn create(id: i32) -> Result<Timer, Error> {
        let rc = unsafe { sys::ocre_timer_create(id) };
        Error::check("ocre_timer_create", rc).map(|_| Timer { id })
    }

    /// The timer's id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Arm the timer: first expiry after `interval_ms`, then every `interval_ms` if `periodic`.
    pub fn start(&self, interval_ms: u32, periodic: bool) -> Result<(), Error> {
        let rc = unsafe { sys::ocre_timer_start(self.id, interval_ms as i32, periodic as i32) };
        Error::check("ocre_timer_start", rc).map(|_| ())
    }

    /// Disarm the timer; it can be started again.
    pub fn stop(&self) -> Result<(), Error> {
        let rc = unsafe { sys::ocre_timer_stop(self.id) };
        Error::check("ocre_timer_stop", rc).map(|_| ())
    }

    /// Delete the timer and free its id.
    pub fn delete(self) -> Result<(), Error> {
        let rc = unsafe { sys::ocre_timer_delete(self.id) };
        Error::check("ocre_timer_delete", rc).map(|_| ())
    }

    /// Milliseconds until the next expiry.
    pub fn remaining(&self) -> Result<u32, Error> {
        let rc = unsafe { sys::ocre_timer_get_remaining(self.id) };
        Error::check("ocre_timer_get_remaining", rc).map(|v| v as u32)
    }
}

// ---------------------------------------------------------------------------------------
// Sensors

/// Sensors declared for this container in the compose file (`sensors:`).
///
/// Handles are small non-negative integers; channels are numbered from 0. Reads return an
/// `f64`, NaN when the read failed. Names are the keys of the compose file's `sensors:` map
/// (e.g. `"cpu_temp"`, `"RNG Sensor"`).
pub mod sensors {
    use super::{cstring, sys, Error};

    /// Initialise sensor access (`ocre_sensors_init`).
    pub fn init() -> Result<(), Error> {
        Error::check("ocre_sensors_init", unsafe { sys::ocre_sensors_init() }).map(|_| ())
    }

    /// Number of sensors this container may use (`ocre_sensors_discover`).
    pub fn discover() -> Result<u32, Error> {
        Error::check("ocre_sensors_discover", unsafe { sys::ocre_sensors_discover() }).map(|n| n as u32)
    }

    /// Open a sensor by handle.
    pub fn open(handle: i32) -> Result<(), Error> {
        Error::check("ocre_sensors_open", unsafe { sys::ocre_sensors_open(handle) }).map(|_| ())
    }

    /// Handle of the sensor at discovery index `index`.
    pub fn get_handle(index: u32) -> Result<i32, Error> {
        Error::check("ocre_sensors_get_handle", unsafe {
            sys::ocre_sensors_get_handle(index as i32)
        })
    }

    /// Number of channels of a sensor.
    pub fn get_channel_count(handle: i32) -> Result<u32, Error> {
        Error::check("ocre_sensors_get_channel_count", unsafe {
            sys::ocre_sensors_get_channel_count(handle)
        })
        .map(|n| n as u32)
    }

    /// Channel type code (see ABI-NOTES.md).
    pub fn get_channel_type(handle: i32, channel: u32) -> Result<i32, Error> {
        Error::check("ocre_sensors_get_channel_type", unsafe {
            sys::ocre_sensors_get_channel_type(handle, channel as i32)
        })
    }

    /// Read one channel. `channel` is the channel's type (what [`get_channel_type`]
    /// returned), as the Ocre SDK defines; a number that is no channel's type is taken as a
    /// channel index. Errors come back as negated errno values (see [`failed`]).
    pub fn read(handle: i32, channel: u32) -> f64 {
        unsafe { sys::ocre_sensors_read(handle, channel as i32) }
    }

    /// Whether a value from [`read`] or [`read_by_name`] is an error code: -2 (no such
    /// sensor), -5 (no channel of that type, or unreadable), -22 (bad handle, denied). As
    /// with the Ocre SDK, a real reading of exactly one of these is indistinguishable.
    pub fn failed(value: f64) -> bool {
        value.is_nan() || value == -2.0 || value == -5.0 || value == -22.0
    }

    /// Open a sensor by its declared name; returns its handle.
    pub fn open_by_name(name: &str) -> Result<i32, Error> {
        let n = cstring(name);
        Error::check("ocre_sensors_open_by_name", unsafe {
            sys::ocre_sensors_open_by_name(n.as_ptr().cast())
        })?;
        get_handle_by_name(name)
    }

    /// Handle of a sensor by its declared name.
    pub fn get_handle_by_name(name: &str) -> Result<i32, Error> {
        let n = cstring(name);
        Error::check("ocre_sensors_get_handle_by_name", unsafe {
            sys::ocre_sensors_get_handle_by_name(n.as_ptr().cast())
        })
    }

    /// Number of channels of a sensor, by name.
    pub fn get_channel_count_by_name(name: &str) -> Result<u32, Error> {
        let n = cstring(name);
        Error::check("ocre_sensors_get_channel_count_by_name", unsafe {
            sys::ocre_sensors_get_channel_count_by_name(n.as_ptr().cast())
        })
        .map(|c| c as u32)
    }

    /// Channel type code, by name.
    pub fn get_channel_type_by_name(name: &str, channel: u32) -> Result<i32, Error> {
        let n = cstring(name);
        Error::check("ocre_sensors_get_channel_type_by_name", unsafe {
            sys::ocre_sensors_get_channel_type_by_name(n.as_ptr().cast(), channel as i32)
        })
    }

    /// Read one channel by sensor name, as [`read`] does.
    pub fn read_by_name(name: &str, channel: u32) -> f64 {
        let n = cstring(name);
        unsafe { sys::ocre_sensors_read_by_name(n.as_ptr().cast(), channel as i32) }
    }

    /// Handles of all sensors visible to this container (at most 64).
    pub fn list() -> Result<Vec<i32>, Error> {
        let mut buf = [0i32; 64];
        let n = Error::check("ocre_sensors_get_list", unsafe {
            sys::ocre_sensors_get_list(buf.as_mut_ptr(), buf.len() as i32)
        })?;
        Ok(buf[..(n as usize).min(buf.len())].to_vec())
    }
}

// ---------------------------------------------------------------------------------------
// Events

/// A message received on a subscribed prefix, copied out of the host's buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Host-assigned message id.
    pub id: u32,
    /// Full topic it was published on.
    pub topic: String,
    /// Content type given by the publisher.
    pub content_type: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

impl Message {
    /// The payload as text (lossy UTF-8), without trailing NUL bytes (C publishers often
    /// send the terminating NUL as part of the payload).
    pub fn payload_str(&self) -> std::borrow::Cow<'_, str> {
        let end = self.payload.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        String::from_utf8_lossy(&self.payload[..end])
    }
}

/// One event for this container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Timer `id` expired.
    Timer {
        /// The timer id.
        id: u32,
    },
    /// A GPIO pin changed.
    Gpio {
        /// Pin number.
        pin: u32,
        /// GPIO port.
        port: u32,
        /// New state.
        state: u32,
    },
    /// A sensor event (raw slots).
    Sensor {
        /// Sensor handle.
        handle: u32,
        /// The remaining slots, as written by the host.
        port: u32,
        /// Raw `state` slot.
        state: u32,
        /// Raw `extra` slot.
        extra: u32,
    },
    /// A message on a subscribed prefix.
    Message(Message),
    /// An event type this SDK does not know; all six slots as written.
    Unknown {
        /// The raw slots: type, id, port, state, extra, len.
        slots: [u32; 6],
    },
}

static PARK_MS: AtomicU32 = AtomicU32::new(60_000);

/// How long [`next_event`] parks in `ocre_sleep` when nothing is queued (default 60 000 ms).
///
/// On shoal the park ends as soon as an event arrives, so the value only bounds how often an
/// idle guest wakes for nothing. On a runtime without early wake-up, use a small value
/// (the C SDK uses 10 ms).
pub fn set_park_ms(ms: u32) {
    PARK_MS.store(ms.max(1), Ordering::Relaxed);
}

unsafe fn c_str_at(offset: u32) -> String {
    if offset == 0 {
        return String::new();
    }
    CStr::from_ptr(offset as usize as *const core::ffi::c_char)
        .to_string_lossy()
        .into_owned()
}

/// Take the next queued event without waiting; `None` when nothing is queued.
///
/// For a message, the topic, content type and payload are copied out of guest memory and the
/// host's copies are released with `ocre_messaging_free_module_event_data` before returning.
pub fn poll_event() -> Option<Event> {
    let mut s = [0u32; 6];
    let rc = unsafe {
        let p = s.as_mut_ptr();
        sys::ocre_get_event(p, p.add(1), p.add(2), p.add(3), p.add(4), p.add(5))
    };
    if rc != 0 {
        return None;
    }
    let [ty, id, port, state, extra, len] = s;
    Some(match ty as i32 {
        sys::EVENT_TIMER => Event::Timer { id },
        sys::EVENT_GPIO => Event::Gpio { pin: id, port, state },
        sys::EVENT_SENSOR => Event::Sensor {
            handle: id,
            port,
            state,
            extra,
        },
        sys::EVENT_MESSAGE => {
            let (topic, content_type, payload) = unsafe {
                let topic = c_str_at(port);
                let content_type = c_str_at(state);
                let payload = if extra == 0 || len == 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(extra as usize as *const u8, len as usize).to_vec()
                };
                sys::ocre_messaging_free_module_event_data(port as i32, state as i32, extra as i32);
                (topic, content_type, payload)
            };
            Event::Message(Message {
                id,
                topic,
                content_type,
                payload,
            })
        }
        _ => Event::Unknown { slots: s },
    })
}

/// Wait for the next event: poll, and park in `ocre_sleep` while nothing is queued.
pub fn next_event() -> Event {
    loop {
        if let Some(e) = poll_event() {
            return e;
        }
        unsafe {
            sys::ocre_sleep(PARK_MS.load(Ordering::Relaxed) as i32);
        }
    }
}

/// An endless iterator over this container's events (see [`next_event`]).
pub fn events() -> Events {
    Events { _private: () }
}

/// Iterator returned by [`events`].
#[derive(Debug)]
pub struct Events {
    _private: (),
}

impl Iterator for Events {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        Some(next_event())
    }
}

/// Run the event loop forever, calling `handler` for every event.
pub fn run<F: FnMut(Event)>(mut handler: F) -> ! {
    loop {
        handler(next_event());
    }
}

// ---------------------------------------------------------------------------------------
// Exports checked by `ocre_register_dispatcher`. Events are delivered by polling, so these
// do nothing; they exist so the host's "does the export exist" check passes.

/// Export named by `register_dispatcher(EventKind::Timer)`. Does nothing.
#[no_mangle]
pub extern "C" fn timer_callback(_id: i32) {}

/// Export named by `register_dispatcher(EventKind::Gpio)`. Does nothing.
#[no_mangle]
pub extern "C" fn gpio_callback(_pin: i32, _state: i32, _port: i32) {}

/// Export named by `register_dispatcher(EventKind::Sensor)`. Does nothing.
#[no_mangle]
pub extern "C" fn sensor_callback(_handle: i32) {}

/// Export named by `register_dispatcher(EventKind::Message)`. Does nothing.
#[no_mangle]
pub extern "C" fn message_callback(_id: i32, _topic: i32, _ct: i32, _payload: i32, _len: i32) {}
