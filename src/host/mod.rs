//! The guest API: every `env` function an Ocre SDK guest imports, served per container.
//!
//! One [`HostState`] lives in each container's `Store` data. Host functions reach it
//! through the `get` accessor given to [`add_to_linker`]. All guest pointers go through
//! [`memory`]; every failure is an error return for that call only (never a trap, a panic,
//! or a lock held).
//!
//! # Return codes
//! `0` success; negated errno values otherwise: `-22` (EINVAL) bad argument, bad pointer,
//! unknown id, or a **denied call** (the reference runtime's code for a missing
//! capability; shoal additionally logs one warning per container and import); `-42`
//! (ENOMSG) no event queued; `-16` (EBUSY) timer id taken; `-7` (E2BIG) payload over 64 KiB;
//! `-12` (ENOMEM) no room (timer count, host message region). Publishing to a topic
//! nobody subscribes to returns `0` (the reference returned ENOENT).
//!
//! # Event slots (`ocre_get_event(type*, id*, port*, state*, extra*, len*)`, six u32)
//! * timer: `type = 0`, `id = timer id`, the other four `0`.
//! * gpio: `type = 1`, `id = pin`, `port = port` (the SDK numbers the container knows the
//!   line by, see [`gpio`]), `state` = the line's logical value after the edge (0 or 1),
//!   `extra = len = 0`.
//! * message: `type = 3`, `id` = per-container message counter (starts at 1),
//!   `port` = guest offset of the NUL-terminated topic copy, `state` = offset of the
//!   NUL-terminated content-type copy, `extra` = offset of the NUL-terminated payload copy,
//!   `len` = payload length (without the NUL).
//!
//! Due timers are reported first, then GPIO edges, then queued messages (each periodic timer at most once per
//! period, so messages are never starved).
//!
//! # Sleep
//! `ocre_sleep(ms)` parks the container for `ms` (unsigned) milliseconds. If the previous
//! host call of the container was an `ocre_get_event` that returned ENOMSG, the sleep is an
//! *event wait*: it ends early, within microseconds, as soon as a message or a GPIO edge is
//! queued for the container or one of its timers falls due. Any other sleep lasts its full length.
//! Stopping a container drops the in-flight call, which ends a sleep at once.

pub mod events;
pub mod gpio;
mod heap;
pub mod memory;
pub mod messaging;
pub mod sensors;
pub mod sleep;
pub mod timers;
pub mod uname;
mod vec_map;

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::broker::{Broker, Mailbox, Message};
use crate::logs::{LogSink, Stream};
use crate::spec::{Capability, Location, SensorSpec};

pub const SUCCESS: i32 = 0;
pub const E2BIG: i32 = -7;
pub const ENOMEM: i32 = -12;
pub const EBUSY: i32 = -16;
pub const EINVAL: i32 = -22;
pub const ENOMSG: i32 = -42;
/// What a denied call returns (the reference runtime's code for a missing capability).
pub const DENIED: i32 = EINVAL;

/// How host functions reach the container's [`HostState`] in the store data.
pub(crate) type Get<T> = fn(&mut T) -> &mut HostState;

/// Tunable per-container limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLimits {
    /// Messages queued for the container before the oldest is dropped. Default 256.
    pub mailbox_capacity: usize,
    /// Timers a container may have at once (ids themselves may be any of `1..=i32::MAX`).
    /// Default 64.
    pub max_timers: usize,
    /// Topic prefixes a container may subscribe to (`-12` beyond). Default 256.
    pub max_subscriptions: usize,
    /// Longest topic / content type accepted, in bytes without the NUL. Default 1024.
    pub max_topic_len: u32,
    /// Bytes of guest memory the host may add (whole 64 KiB pages) to hold message copies
    /// (`limits.message_region`; default [`crate::spec::Limits::DEFAULT_MESSAGE_REGION`]).
    pub host_region_bytes: u64,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits {
            mailbox_capacity: 256,
            max_timers: 64,
            max_subscriptions: 256,
            max_topic_len: 1024,
            host_region_bytes: crate::spec::Limits::DEFAULT_MESSAGE_REGION,
        }
    }
}

impl HostLimits {
    /// The limits a container's `limits:` section sets; the rest keep their defaults.
    pub fn from_spec(limits: &crate::spec::Limits) -> Self {
        let count = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        HostLimits {
            mailbox_capacity: count(limits.queue),
            max_timers: count(limits.max_timers),
            max_subscriptions: count(limits.max_subscriptions),
            host_region_bytes: limits.message_region,
            ..HostLimits::default()
        }
    }
}

#[derive(Clone)]
pub struct HostConfig {
    pub container: String,
    pub capabilities: BTreeSet<Capability>,
    /// Where `capabilities:` is written, for "add it at ..." hints.
    pub capabilities_location: Location,
    /// `None` = unrestricted; `Some` = only topics under these prefixes.
    pub publish: Option<Vec<String>>,
    pub subscribe: Option<Vec<String>>,
    /// The declared sensors this container may open; handles index this list.
    pub sensors: Vec<SensorSpec>,
    /// The GPIO lines this container may use, with the SDK numbers it knows them by.
    pub gpio: Vec<gpio::GrantedLine>,
    pub broker: Broker,
    pub log: Arc<dyn LogSink>,
    pub limits: HostLimits,
    /// Kept by the supervisor across the container's restarts, read by `ps` and `stats`.
    pub counters: Arc<Counters>,
    /// While it holds `true` the container is paused: a parked call does not return to
    /// the guest until it turns `false` again.
    pub paused: Option<Arc<crate::runtime::Probe>>,
}

/// Live counters of one container, shared between its host state and the supervisor.
/// Relaxed atomics: they are statistics, not synchronisation.
#[derive(Debug, Default)]
pub struct Counters {
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    /// Messages dropped from the container's mailbox (overflow policy), all instances.
    pub dropped: Arc<AtomicU64>,
    pub timer_events: AtomicU64,
    pub denied: AtomicU64,
}

impl Counters {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Per-container counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerStats {
    /// Message events handed to the guest.
    pub messages_in: u64,
    /// Messages the guest published.
    pub messages_out: u64,
    /// Messages dropped from this container's mailbox (overflow policy).
    pub dropped: u64,
    /// Timer events handed to the guest.
    pub timer_events: u64,
    /// Calls refused for a missing capability or a topic outside the allowed prefixes.
    pub denied: u64,
    /// Bytes of guest memory the host has grown for message copies.
    pub host_region_bytes: u64,
    /// Message copies handed to the guest and not freed yet.
    pub unfreed_events: usize,
}

/// The guest API state of one container. Dropping it unsubscribes the container from the
/// broker (the mailbox goes with it) and kills all its timers (they are plain data here;
/// no task runs per timer).
pub struct HostState {
    /// Shared with every message this container publishes (their publisher).
    container: Arc<str>,
    /// The granted capabilities, a bit each ([`capability_bit`]): checked at every host
    /// call, and a `BTreeSet` cost a heap node per container and a walk per check.
    granted: u8,
    capabilities_location: Location,
    publish: Option<Vec<String>>,
    subscribe: Option<Vec<String>>,
    sensors: Vec<SensorSpec>,
    gpio: Vec<gpio::GrantedLine>,
    /// Edges of the lines the guest registered callbacks for; dropping the state drops
    /// the inbox, which unregisters it from every line. Made at the first registration:
    /// most containers never register one, and it costs 96 bytes of heap (issue 15).
    gpio_inbox: Option<Arc<crate::gpio::GpioInbox>>,
    broker: Broker,
    log: Arc<dyn LogSink>,
    limits: HostLimits,
    mailbox: Option<Mailbox>,
    /// A message taken from the mailbox that could not be placed in guest memory yet; it
    /// is the next message event.
    held: Option<Arc<Message>>,
    warned: HashSet<String>,
    timers: timers::Timers,
    heap: heap::GuestHeap,
    next_message_id: u32,
    /// The previous host call was an `ocre_get_event` that found nothing.
    event_wait: bool,
    /// When this container's parked fiber last gave back its unused stack pages.
    stack_release: crate::runtime::fiber_stack::StackRelease,
    counters: Arc<Counters>,
    paused: Option<Arc<crate::runtime::Probe>>,
    /// State of the `rng` sensors' generator (0 = not seeded yet).
    rng_state: u64,
    /// The memory the runtime created for an `env.memory` import, for guests that import
    /// their memory without also exporting it.
    imported_memory: Option<wasmtime::Memory>,
    /// The memory [`memory::guest_memory`] resolved on the first call that needed it: an
    /// instance's exports never change, and looking `memory` up by name cost every host
    /// call (four per delivered message) a string-keyed search.
    resolved_memory: Option<wasmtime::Memory>,
}

impl HostState {
    /// Tell the host API which memory the runtime supplied for `env.memory`.
    pub fn set_imported_memory(&mut self, memory: wasmtime::Memory) {
        self.imported_memory = Some(memory);
    }

    pub fn new(cfg: HostConfig) -> Self {
        HostState {
            container: Arc::from(cfg.container),
            granted: cfg.capabilities.iter().fold(0, |bits, &cap| bits | capability_bit(cap)),
            capabilities_location: cfg.capabilities_location,
            publish: cfg.publish,
            subscribe: cfg.subscribe,
            sensors: cfg.sensors,
            gpio: cfg.gpio,
            gpio_inbox: None,
            broker: cfg.broker,
            log: cfg.log,
            heap: heap::GuestHeap::new(cfg.limits.host_region_bytes),
            limits: cfg.limits,
            mailbox: None,
            held: None,
            imported_memory: None,
            resolved_memory: None,
            warned: HashSet::new(),
            timers: timers::Timers::default(),
            next_message_id: 0,
            event_wait: false,
            stack_release: Default::default(),
            counters: cfg.counters,
            paused: cfg.paused,
            rng_state: 0,
        }
    }

    pub fn stats(&self) -> ContainerStats {
        let c = &self.counters;
        ContainerStats {
            messages_in: Counters::get(&c.messages_in),
            messages_out: Counters::get(&c.messages_out),
            dropped: Counters::get(&c.dropped),
            timer_events: Counters::get(&c.timer_events),
            denied: Counters::get(&c.denied),
            host_region_bytes: self.heap.owned_bytes(),
            unfreed_events: self.heap.live_blocks(),
        }
    }

    pub fn container(&self) -> &str {
        &self.container
    }

    /// Called at the start of every host function except `ocre_get_event` and
    /// `ocre_sleep`: any other call in between makes the next sleep a plain sleep.
    fn enter(&mut self) {
        self.event_wait = false;
    }

    /// Entry of every capability-gated call: [`Self::enter`], then [`Self::require`] for
    /// the capability the function's row in the ABI table names (so the grant a function
    /// needs is written once, in `shoal_abi`, for the static check and for this check).
    fn begin(&mut self, function: &'static HostFn) -> Result<(), i32> {
        self.enter();
        match function.capability {
            Some(cap) => self.require(function.name, cap),
            None => Ok(()),
        }
    }

    /// Log `text` as a warning once per `key` for this container.
    fn warn_once(&mut self, key: &str, text: impl FnOnce() -> String) {
        if !self.warned.contains(key) {
            self.warned.insert(key.to_owned());
            let text = text();
            self.log.line(&self.container, Stream::Warning, &text);
        }
    }

    /// The capability check every gated call goes through: `Ok` when granted, else the
    /// error to return, after one warning per (container, import).
    fn require(&mut self, import: &'static str, cap: Capability) -> Result<(), i32> {
        if self.granted & capability_bit(cap) != 0 {
            return Ok(());
        }
        Counters::bump(&self.counters.denied);
        let loc = self.capabilities_location.clone();
        self.warn_once(&format!("cap:{import}:{cap}"), || {
            format!("{import} denied: container has no `{cap}` capability; add it to `capabilities:` at {loc}")
        });
        Err(DENIED)
    }

    /// The topic check for publish/subscribe lists: a topic (or subscription prefix) is
    /// allowed when it starts with one of the listed prefixes.
    fn require_topic(&mut self, import: &'static str, subscribe: bool, topic: &str) -> Result<(), i32> {
        let list = if subscribe { &self.subscribe } else { &self.publish };
        let Some(prefixes) = list else { return Ok(()) };
        if prefixes.iter().any(|p| topic.starts_with(p.as_str())) {
            return Ok(());
        }
        Counters::bump(&self.counters.denied);
        let field = if subscribe { "subscribe" } else { "publish" };
        let allowed = prefixes.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ");
        let loc = self.capabilities_location.clone();
        self.warn_once(&format!("topic:{import}"), || {
            format!(
                "{import} denied: topic {topic:?} is outside the container's `{field}:` prefixes [{allowed}]; change `{field}:` near {loc}"
            )
        });
        Err(DENIED)
    }

    /// An event is ready right now (a held or queued message, or a due timer).
    fn has_ready_event(&self, now: std::time::Instant) -> bool {
        self.held.is_some()
            || self.gpio_inbox.as_ref().is_some_and(|inbox| !inbox.is_empty())
            || self.mailbox.as_ref().is_some_and(|m| !m.is_empty())
            || self.timers.next_deadline().is_some_and(|d| d <= now)
    }
}

/// Register every `env` function of the ABI (not `env.memory`, which the runtime creates).
/// A capability's bit in [`HostState`]'s `granted`.
fn capability_bit(cap: Capability) -> u8 {
    1 << (cap as u8)
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::Linker<T>,
    get: fn(&mut T) -> &mut HostState,
) -> wasmtime::Result<()> {
    messaging::add_to_linker(linker, get)?;
    events::add_to_linker(linker, get)?;
    timers::add_to_linker(linker, get)?;
    sleep::add_to_linker(linker, get)?;
    sensors::add_to_linker(linker, get)?;
    gpio::add_to_linker(linker, get)?;
    uname::add_to_linker(linker, get)?;
    Ok(())
}

pub use shoal_abi::{classify_env_import, HostFn, ImportKind, WasmType, HOST_FUNCTIONS};

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod table_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capability_has_a_bit_of_its_own() {
        let bits: Vec<u8> = Capability::ALL.iter().map(|&c| capability_bit(c)).collect();
        let all = bits.iter().fold(0u8, |acc, b| acc | b);
        assert_eq!(all.count_ones() as usize, Capability::ALL.len(), "{bits:?}");
    }

    #[test]
    fn limits_from_the_file_default_to_the_host_defaults() {
        assert_eq!(
            HostLimits::from_spec(&crate::spec::Limits::default()),
            HostLimits::default()
        );
        let limits = crate::spec::Limits {
            queue: 3,
            max_timers: 4,
            max_subscriptions: 5,
            message_region: 6 << 16,
            ..Default::default()
        };
        let host = HostLimits::from_spec(&limits);
        assert_eq!(
            (
                host.mailbox_capacity,
                host.max_timers,
                host.max_subscriptions,
                host.host_region_bytes
            ),
            (3, 4, 5, 6 << 16)
        );
    }
}
