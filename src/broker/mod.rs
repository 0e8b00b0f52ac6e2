//! In-process publish/subscribe between the containers of one stack.
//!
//! * **Topics and prefixes.** A subscription is a topic *prefix* with Ocre's rule: the
//!   subscription `"temperature/"` receives `"temperature/inside"` (plain `starts_with`).
//!   A container may hold any number of prefixes (the only limit is memory); a message
//!   matching several prefixes of one container is delivered to it once.
//! * **One mailbox per container.** Every subscriber has its own bounded queue and its own
//!   waker ([`Signal`]). There is no global queue: a container that never reads
//!   never delays anyone else.
//! * **Overflow policy: drop the oldest.** When a mailbox is full, the oldest queued message
//!   is discarded to make room for the new one, and the mailbox's drop counter (and the
//!   broker's) is incremented. A slow reader therefore always sees the freshest data, and a
//!   publisher is never blocked or failed because of a slow reader.
//! * **Ordering.** Messages from one publisher reach one subscriber in publishing order.
//! * **Payload limit.** [`MAX_PAYLOAD`] bytes (64 KiB); larger payloads are refused with
//!   [`PublishError::TooLarge`] (the guest sees `-7`, E2BIG).
//! * **No subscriber is not an error.** Publishing to a topic nobody listens to succeeds and
//!   reports 0 deliveries (the reference runtime returned ENOENT; in pub/sub that is normal).
//! * **Zero-copy fan-out.** A message is one `Arc`; delivering it to 1,000 mailboxes copies
//!   1,000 pointers, not the payload.
//!
//! * **Origin.** Every message records whether a local container published it or an MQTT
//!   bridge imported it ([`Origin`]). A mailbox opened with [`Broker::local_mailbox`] (a
//!   bridge's export tap) never receives imported messages, so a message that came from a
//!   remote broker is never sent back out (no echo loops).
//!
//! * **Publisher.** Every message also names who published it (a container, `bridge:NAME`,
//!   or `shoal`), for `shoal topics tail`: the name is copied into the message (see
//!   [`Message`] for why not shared).
//! * **Routes.** The list of mailboxes a topic reaches is remembered per topic until a
//!   subscription changes, so a publish does not match every prefix of every mailbox.
//! * **Waiting for room.** [`Broker::publish_with_room`] (QoS 1 bridge imports) waits until
//!   the mailboxes have room instead of dropping their oldest messages, bounded in time. A
//!   waiting publisher goes on once the reader has emptied half of a full mailbox, so a
//!   stream moves in half-mailbox batches rather than one wake-up per message; behind a
//!   slower reader it goes on at the end of the wait. Only a reader that took nothing in
//!   the whole wait is marked stalled.
//!
//! Locks are `std::sync` locks held only for a few instructions and never across an
//! `.await`.

mod handoff;
mod message;
mod signal;
mod tally;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::Notify;

pub use message::{Message, Origin, SHOAL_PUBLISHER};
pub use signal::Signal;
use tally::{copies, Tally};

/// Largest payload accepted by [`Broker::publish`], in bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Topics whose subscriber lists the broker remembers (see [`Routes`]).
const MAX_ROUTES: usize = 1024;
/// Mailbox references all remembered lists may hold together (16 bytes each): a stack of
/// 1,000 subscribers on 16 topics fits; past it the cache starts over.
const MAX_ROUTED_TARGETS: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("payload of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
}

/// Counters for the whole broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Live mailboxes (one per subscribing container).
    pub mailboxes: usize,
    /// Live subscriptions (prefixes) over all mailboxes.
    pub subscriptions: usize,
    /// Messages accepted by `publish`.
    pub published: u64,
    /// Deliveries into mailboxes (one message to 3 subscribers counts 3).
    pub delivered: u64,
    /// Messages discarded by the overflow policy, over all mailboxes.
    pub dropped: u64,
}

/// What [`Broker::publish_with_room`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Mailboxes the message went into.
    pub delivered: usize,
    /// Mailboxes that stayed full for the whole wait: they took the message under the
    /// drop-oldest policy and no longer hold publishers back until their reader takes one.
    pub stalled: usize,
}

/// Lock a mutex, ignoring poisoning: the protected data is always left consistent (every
/// critical section is a handful of infallible operations).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

struct Queue {
    items: VecDeque<Arc<Message>>,
    capacity: usize,
}

/// Wakes publishers waiting for room in a full mailbox ([`Broker::publish_with_room`]).
/// One per broker, not per mailbox: waiting is rare (bridge imports after a reconnect), and
/// a parked container then pays 8 bytes for it, not a `Notify`.
#[derive(Default)]
struct Room {
    notify: Notify,
    waiters: AtomicUsize,
}

/// The receiving side shared between the broker and the [`Mailbox`] handle.
struct MailboxShared {
    queue: Mutex<Queue>,
    /// Inline, not an `Arc` of its own: it shares its cache line with the queue's lock,
    /// which a delivery and its reader touch anyway.
    signal: Signal,
    delivered: AtomicU64,
    /// Shared with whoever wants a drop count that outlives this mailbox (a container's
    /// counters survive its restarts).
    dropped: Arc<AtomicU64>,
    room: Arc<Room>,
    /// A publisher waited the whole of its wait for room here: this reader is not reading
    /// (paused, deaf or stuck), so it no longer holds publishers back. Cleared when it takes
    /// a message.
    stalled: AtomicBool,
}

impl MailboxShared {
    /// Queue `msg`. A full mailbox drops its oldest message for it when `drop_oldest` is
    /// set (`Ok(true)`), else refuses it and hands it back unchanged (`Err`). One lock for
    /// the room check and the push: a publisher that waits for room checks and pushes in
    /// one go, so a stream takes the queue's lock (whose cache line its reader takes too)
    /// once per message, not twice.
    fn push(&self, msg: Arc<Message>, drop_oldest: bool) -> Result<bool, Arc<Message>> {
        let dropped = {
            let mut q = lock(&self.queue);
            let full = q.items.len() >= q.capacity;
            if full {
                if !drop_oldest {
                    return Err(msg);
                }
                q.items.pop_front();
            }
            q.items.push_back(msg);
            full
        };
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if dropped {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.signal.raise();
        Ok(dropped)
    }

    fn pop(&self) -> Option<Arc<Message>> {
        let (message, half_empty) = {
            let mut q = lock(&self.queue);
            let message = q.items.pop_front();
            (message, q.items.len() == q.capacity / 2)
        };
        if message.is_some() {
            if self.stalled.load(Ordering::Relaxed) {
                self.stalled.store(false, Ordering::Relaxed);
            }
            // Waiting publishers are woken when the reader has emptied half the mailbox,
            // not at its first free slot: woken at each slot, a publisher on another
            // thread than its reader paid a cross-thread wake-up per message (a stream to
            // one subscriber ran at 19k messages/s instead of ~600k). The length passes
            // the half mark on the way down from full, so no wait is missed.
            if half_empty && self.room.waiters.load(Ordering::SeqCst) > 0 {
                self.room.notify.notify_waiters();
            }
        }
        message
    }

    fn is_full(&self) -> bool {
        let q = lock(&self.queue);
        q.items.len() >= q.capacity
    }
}

struct Subscriber {
    prefixes: Vec<String>,
    /// Skip messages whose origin is not [`Origin::Local`] (bridge export taps).
    local_only: bool,
    shared: Arc<MailboxShared>,
}

/// One mailbox a topic's messages go to.
#[derive(Clone)]
struct Target {
    shared: Arc<MailboxShared>,
    local_only: bool,
}

impl Target {
    fn takes(&self, origin: Origin) -> bool {
        origin == Origin::Local || !self.local_only
    }
}

/// The subscriber list of each recently published topic. Matching a topic against every
/// prefix of every mailbox cost most of a fan-out at 1,000 subscribers (each of their 1,000
/// acknowledgements scanned all 1,001 mailboxes); with the list remembered, a publish is a
/// hash lookup and a walk over the mailboxes it reaches. Any subscription change clears it
/// (under the subscriber lock, so a list computed before the change is never kept).
#[derive(Default)]
struct Routes {
    by_topic: HashMap<Box<str>, Arc<[Target]>>,
    targets: usize,
}

#[derive(Default)]
struct Inner {
    subscribers: RwLock<HashMap<u64, Subscriber>>,
    routes: RwLock<Routes>,
    room: Arc<Room>,
    next_id: AtomicU64,
    published: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

impl Inner {
    /// Forget every remembered route. Called with the subscriber lock held for writing.
    fn clear_routes(&self) {
        let mut routes = write(&self.routes);
        if routes.targets > 0 || !routes.by_topic.is_empty() {
            *routes = Routes::default();
        }
    }

    /// The mailboxes subscribed to a prefix of `topic`.
    fn route(&self, topic: &str) -> Arc<[Target]> {
        if let Some(route) = read(&self.routes).by_topic.get(topic) {
            return route.clone();
        }
        let subs = read(&self.subscribers);
        let route: Arc<[Target]> = subs
            .values()
            .filter(|sub| sub.prefixes.iter().any(|p| topic.starts_with(p.as_str())))
            .map(|sub| Target {
                shared: sub.shared.clone(),
                local_only: sub.local_only,
            })
            .collect();
        // Still under the subscriber lock: no subscription changed since `route` was made.
        let mut routes = write(&self.routes);
        if routes.by_topic.len() >= MAX_ROUTES || routes.targets + route.len() > MAX_ROUTED_TARGETS {
            *routes = Routes::default();
        }
        if route.len() <= MAX_ROUTED_TARGETS {
            routes.targets += route.len();
            routes.by_topic.insert(topic.into(), route.clone());
        }
        route
    }
}

/// The stack's message broker. Cheap to clone (an `Arc` inside).
#[derive(Clone, Default)]
pub struct Broker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("stats", &self.stats()).finish()
    }
}

/// Counts a publisher among the room's waiters for as long as it lives (also when the wait
/// is cancelled).
struct Waiting<'a>(&'a Room);

impl<'a> Waiting<'a> {
    fn new(room: &'a Room) -> Self {
        room.waiters.fetch_add(1, Ordering::SeqCst);
        Waiting(room)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Broker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> BrokerStats {
        let subs = read(&self.inner.subscribers);
        BrokerStats {
            mailboxes: subs.len(),
            subscriptions: subs.values().map(|s| s.prefixes.len()).sum(),
            published: self.inner.published.load(Ordering::Relaxed),
            delivered: self.inner.delivered.load(Ordering::Relaxed),
            dropped: self.inner.dropped.load(Ordering::Relaxed),
        }
    }

    /// Open a mailbox holding at most `capacity` messages (at least 1). It receives nothing
    /// until [`Mailbox::subscribe`] is called; dropping it unsubscribes everything.
    pub fn mailbox(&self, capacity: usize) -> Mailbox {
        self.mailbox_counting_drops(capacity, Arc::new(AtomicU64::new(0)))
    }

    /// Like [`Broker::mailbox`], but drops are also added to `dropped`, which the caller
    /// keeps (so `ps` sees a container's drops while it runs and after it restarts).
    pub fn mailbox_counting_drops(&self, capacity: usize, dropped: Arc<AtomicU64>) -> Mailbox {
        self.open_mailbox(capacity, dropped, false)
    }

    /// Like [`Broker::mailbox`], but it receives only messages published locally, never
    /// those imported by a bridge: what a bridge exports must not include what it (or
    /// another bridge) brought in.
    pub fn local_mailbox(&self, capacity: usize) -> Mailbox {
        self.open_mailbox(capacity, Arc::new(AtomicU64::new(0)), true)
    }

    fn open_mailbox(&self, capacity: usize, dropped: Arc<AtomicU64>, local_only: bool) -> Mailbox {
        let shared = Arc::new(MailboxShared {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                capacity: capacity.max(1),
            }),
            signal: Signal::default(),
            delivered: AtomicU64::new(0),
            dropped,
            room: self.inner.room.clone(),
            stalled: AtomicBool::new(false),
        });
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        write(&self.inner.subscribers).insert(
            id,
            Subscriber {
                prefixes: Vec::new(),
                local_only,
                shared: shared.clone(),
            },
        );
        Mailbox {
            broker: self.clone(),
            id,
            shared,
        }
    }

    /// Deliver a message to every mailbox with a matching prefix. Returns the number of
    /// mailboxes it was delivered to (0 is success too). The publisher is recorded as `shoal`.
    pub fn publish(&self, topic: &str, content_type: &str, payload: &[u8]) -> Result<usize, PublishError> {
        self.publish_as(Origin::Local, SHOAL_PUBLISHER, topic, content_type, payload)
    }

    /// [`Broker::publish`] for a message of the given origin (bridges pass [`Origin::Bridge`]).
    pub fn publish_from(
        &self,
        origin: Origin,
        topic: &str,
        content_type: &str,
        payload: &[u8],
    ) -> Result<usize, PublishError> {
        self.publish_as(origin, SHOAL_PUBLISHER, topic, content_type, payload)
    }

    /// [`Broker::publish`] naming its publisher (a container's name, `bridge:NAME`).
    pub fn publish_as(
        &self,
        origin: Origin,
        publisher: &str,
        topic: &str,
        content_type: &str,
        payload: &[u8],
    ) -> Result<usize, PublishError> {
        let msg = Self::message(origin, publisher, topic, content_type, payload)?;
        let route = self.inner.route(topic);
        let mut tally = Tally::new(&self.inner);
        for (target, msg) in copies(&route, msg) {
            // Dropping the oldest when full, the push always takes the message.
            let _ = tally.delivered_to(&target.shared, msg, true);
        }
        Ok(tally.delivered)
    }

    /// [`Broker::publish_as`] that waits, up to `max_wait`, until a mailbox the message
    /// goes to has room, so that none of them drops its oldest message for it: a bridge's
    /// QoS 1 imports, which can arrive in bursts faster than the guests read. A mailbox that
    /// stays full for the whole wait is marked stalled and takes the message under the
    /// drop-oldest policy; later publishes do not wait for it until its reader takes a
    /// message again. So a paused or deaf container costs one wait, not one per message.
    ///
    /// The mailboxes get the message one after the other, each as soon as it has room; if
    /// the future is dropped in a wait, the mailboxes before that one have it.
    pub async fn publish_with_room(
        &self,
        origin: Origin,
        publisher: &str,
        topic: &str,
        content_type: &str,
        payload: &[u8],
        max_wait: Duration,
    ) -> Result<Delivery, PublishError> {
        let msg = Self::message(origin, publisher, topic, content_type, payload)?;
        let route = self.inner.route(topic);
        let mut tally = Tally::new(&self.inner);
        // Read the clock only once there is a wait: most publishes find room at once.
        let mut deadline = None;
        let mut stalled = 0;
        let room = &self.inner.room;
        for (target, msg) in copies(&route, msg) {
            let shared = &target.shared;
            let mut msg = msg;
            loop {
                let drop_oldest = shared.stalled.load(Ordering::Relaxed);
                match tally.delivered_to(shared, msg, drop_oldest) {
                    Ok(()) => break,
                    Err(back) => msg = back,
                }
                let _waiting = Waiting::new(room);
                let notified = room.notify.notified();
                tokio::pin!(notified);
                // Registered before the check, so a reader taking a message in between
                // still wakes this wait.
                notified.as_mut().enable();
                if !shared.is_full() {
                    continue;
                }
                let until = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + max_wait);
                // The reader runs next on this worker (see `handoff`).
                handoff::give_up_turn().await;
                let wait = tokio::task::coop::unconstrained(tokio::time::timeout_at(until, notified));
                if wait.await.is_err() {
                    // Waiters are woken only at the half mark (see `MailboxShared::pop`):
                    // a reader that took a message in the wait but fewer than half is
                    // reading, slowly, and is not stalled. The message goes in; the next
                    // wait gets a whole `max_wait` again.
                    if !shared.is_full() {
                        deadline = None;
                        continue;
                    }
                    shared.stalled.store(true, Ordering::Relaxed);
                    stalled += 1;
                }
            }
        }
        Ok(Delivery {
            delivered: tally.delivered,
            stalled,
        })
    }

    fn message(
        origin: Origin,
        publisher: &str,
        topic: &str,
        content_type: &str,
        payload: &[u8],
    ) -> Result<Arc<Message>, PublishError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(PublishError::TooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD,
            });
        }
        Ok(Arc::new(Message::new(origin, publisher, topic, content_type, payload)))
    }
}

/// A container's receiving end. Dropping it removes all its subscriptions.
pub struct Mailbox {
    broker: Broker,
    id: u64,
    shared: Arc<MailboxShared>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").field("id", &self.id).finish()
    }
}

impl Mailbox {
    /// Add a prefix. Subscribing twice to the same prefix is a no-op.
    pub fn subscribe(&self, prefix: &str) {
        let inner = &self.broker.inner;
        let mut subs = write(&inner.subscribers);
        if let Some(sub) = subs.get_mut(&self.id) {
            if !sub.prefixes.iter().any(|p| p == prefix) {
                sub.prefixes.push(prefix.to_owned());
                inner.clear_routes();
            }
        }
    }

    /// Prefixes this mailbox is subscribed to.
    pub fn subscriptions(&self) -> usize {
        let subs = read(&self.broker.inner.subscribers);
        subs.get(&self.id).map_or(0, |sub| sub.prefixes.len())
    }

    /// Whether `prefix` is one of this mailbox's subscriptions already.
    pub fn is_subscribed(&self, prefix: &str) -> bool {
        let subs = read(&self.broker.inner.subscribers);
        subs.get(&self.id)
            .is_some_and(|sub| sub.prefixes.iter().any(|p| p == prefix))
    }

    /// Take the oldest queued message.
    pub fn try_recv(&self) -> Option<Arc<Message>> {
        self.shared.pop()
    }

    pub fn is_empty(&self) -> bool {
        lock(&self.shared.queue).items.is_empty()
    }

    pub fn len(&self) -> usize {
        lock(&self.shared.queue).items.len()
    }

    /// The wake-up raised on every delivery, for this mailbox's one reader: a delivery
    /// that happens while the reader is not waiting leaves a permit, and its next wait
    /// returns at once.
    pub fn signal(&self) -> MailboxSignal {
        MailboxSignal(self.shared.clone())
    }

    /// Messages delivered into this mailbox so far.
    pub fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::Relaxed)
    }

    /// Messages this mailbox discarded under the overflow policy.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// A mailbox's [`Signal`], held apart from the [`Mailbox`] (a parked container's wait holds
/// one while the store that owns the mailbox is busy).
#[derive(Clone)]
pub struct MailboxSignal(Arc<MailboxShared>);

impl std::ops::Deref for MailboxSignal {
    type Target = Signal;

    fn deref(&self) -> &Signal {
        &self.0.signal
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        let inner = &self.broker.inner;
        let mut subscribers = write(&inner.subscribers);
        if subscribers.remove(&self.id).is_some_and(|sub| !sub.prefixes.is_empty()) {
            inner.clear_routes();
        }
        // A map never shrinks on its own: after 10,000 containers went away it would keep
        // their buckets for the life of the process. Shrinking when three quarters are
        // empty keeps the cost amortised.
        if subscribers.len() < subscribers.capacity() / 4 {
            subscribers.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests;
