//! In-process publish/subscribe between the containers of one stack.
//!
//! * **Topics and prefixes.** A subscription is a topic *prefix* with Ocre's rule: the
//!   subscription `"temperature/"` receives `"temperature/inside"` (plain `starts_with`).
//!   A container may hold any number of prefixes (the only limit is memory); a message
//!   matching several prefixes of one container is delivered to it once.
//! * **One mailbox per container.** Every subscriber has its own bounded queue and its own
//!   waker ([`tokio::sync::Notify`]). There is no global queue: a container that never reads
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
//! Locks are `std::sync` locks held only for a few instructions and never across an
//! `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::Notify;

/// Largest payload accepted by [`Broker::publish`], in bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// One published message, shared by every mailbox it was delivered to.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub content_type: String,
    pub payload: Vec<u8>,
    pub origin: Origin,
}

/// Where a message entered the stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    /// Published by a container (or by shoal itself).
    #[default]
    Local,
    /// Imported from an external broker by an MQTT bridge.
    Bridge,
}

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

/// Lock a mutex, ignoring poisoning: the protected data is always left consistent (every
/// critical section is a handful of infallible operations).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Queue {
    items: VecDeque<Arc<Message>>,
    capacity: usize,
}

/// The receiving side shared between the broker and the [`Mailbox`] handle.
struct MailboxShared {
    queue: Mutex<Queue>,
    notify: Arc<Notify>,
    delivered: AtomicU64,
    /// Shared with whoever wants a drop count that outlives this mailbox (a container's
    /// counters survive its restarts).
    dropped: Arc<AtomicU64>,
}

impl MailboxShared {
    /// Queue `msg`, dropping the oldest message when full. Returns true if one was dropped.
    fn push(&self, msg: Arc<Message>) -> bool {
        let dropped = {
            let mut q = lock(&self.queue);
            let dropped = if q.items.len() >= q.capacity {
                q.items.pop_front();
                true
            } else {
                false
            };
            q.items.push_back(msg);
            dropped
        };
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if dropped {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.notify.notify_one();
        dropped
    }
}

struct Subscriber {
    prefixes: Vec<String>,
    /// Skip messages whose origin is not [`Origin::Local`] (bridge export taps).
    local_only: bool,
    shared: Arc<MailboxShared>,
}

#[derive(Default)]
struct Inner {
    subscribers: RwLock<HashMap<u64, Subscriber>>,
    next_id: AtomicU64,
    published: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
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

impl Broker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> BrokerStats {
        let subs = self.inner.subscribers.read().unwrap_or_else(|e| e.into_inner());
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
            notify: Arc::new(Notify::new()),
            delivered: AtomicU64::new(0),
            dropped,
        });
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
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
    /// mailboxes it was delivered to (0 is success too).
    pub fn publish(&self, topic: &str, content_type: &str, payload: &[u8]) -> Result<usize, PublishError> {
        self.publish_from(Origin::Local, topic, content_type, payload)
    }

    /// [`Broker::publish`] for a message of the given origin (bridges pass [`Origin::Bridge`]).
    pub fn publish_from(
        &self,
        origin: Origin,
        topic: &str,
        content_type: &str,
        payload: &[u8],
    ) -> Result<usize, PublishError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(PublishError::TooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD,
            });
        }
        let msg = Arc::new(Message {
            topic: topic.to_owned(),
            content_type: content_type.to_owned(),
            payload: payload.to_vec(),
            origin,
        });
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        let mut delivered = 0usize;
        let mut dropped = 0u64;
        {
            let subs = self.inner.subscribers.read().unwrap_or_else(|e| e.into_inner());
            for sub in subs.values() {
                if (origin == Origin::Local || !sub.local_only)
                    && sub.prefixes.iter().any(|p| topic.starts_with(p.as_str()))
                {
                    delivered += 1;
                    if sub.shared.push(msg.clone()) {
                        dropped += 1;
                    }
                }
            }
        }
        self.inner.delivered.fetch_add(delivered as u64, Ordering::Relaxed);
        if dropped > 0 {
            self.inner.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        Ok(delivered)
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
        let mut subs = self.broker.inner.subscribers.write().unwrap_or_else(|e| e.into_inner());
        if let Some(sub) = subs.get_mut(&self.id) {
            if !sub.prefixes.iter().any(|p| p == prefix) {
                sub.prefixes.push(prefix.to_owned());
            }
        }
    }

    /// Prefixes this mailbox is subscribed to.
    pub fn subscriptions(&self) -> usize {
        let subs = self.broker.inner.subscribers.read().unwrap_or_else(|e| e.into_inner());
        subs.get(&self.id).map_or(0, |sub| sub.prefixes.len())
    }

    /// Whether `prefix` is one of this mailbox's subscriptions already.
    pub fn is_subscribed(&self, prefix: &str) -> bool {
        let subs = self.broker.inner.subscribers.read().unwrap_or_else(|e| e.into_inner());
        subs.get(&self.id)
            .is_some_and(|sub| sub.prefixes.iter().any(|p| p == prefix))
    }

    /// Take the oldest queued message.
    pub fn try_recv(&self) -> Option<Arc<Message>> {
        lock(&self.shared.queue).items.pop_front()
    }

    pub fn is_empty(&self) -> bool {
        lock(&self.shared.queue).items.is_empty()
    }

    pub fn len(&self) -> usize {
        lock(&self.shared.queue).items.len()
    }

    /// The waker signalled on every delivery. `notify_one` is used, so a delivery that
    /// happens while nobody waits leaves a permit and the next wait returns at once.
    pub fn notify(&self) -> Arc<Notify> {
        self.shared.notify.clone()
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

impl Drop for Mailbox {
    fn drop(&mut self) {
        let mut subscribers = self.broker.inner.subscribers.write().unwrap_or_else(|e| e.into_inner());
        subscribers.remove(&self.id);
        // A map never shrinks on its own: after 10,000 containers went away it would keep
        // their buckets for the life of the process. Shrinking when three quarters are
        // empty keeps the cost amortised.
        if subscribers.len() < subscribers.capacity() / 4 {
            subscribers.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn prefix_matching() {
        let b = Broker::new();
        let m = b.mailbox(16);
        m.subscribe("temperature/");
        assert_eq!(b.publish("temperature/inside", "text/plain", b"21").unwrap(), 1);
        assert_eq!(b.publish("temperature", "text/plain", b"x").unwrap(), 0);
        assert_eq!(b.publish("humidity/inside", "text/plain", b"x").unwrap(), 0);
        let got = m.try_recv().unwrap();
        assert_eq!(got.topic, "temperature/inside");
        assert_eq!(got.payload, b"21");
        assert!(m.try_recv().is_none());
    }

    #[test]
    fn overlapping_prefixes_deliver_once() {
        let b = Broker::new();
        let m = b.mailbox(16);
        m.subscribe("a/");
        m.subscribe("a/b");
        m.subscribe("a/");
        assert_eq!(b.stats().subscriptions, 2);
        assert_eq!(b.publish("a/b/c", "t", b"1").unwrap(), 1);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn no_subscriber_is_success() {
        let b = Broker::new();
        assert_eq!(b.publish("nobody", "t", b"x").unwrap(), 0);
        assert_eq!(b.stats().published, 1);
    }

    #[test]
    fn payload_limit() {
        let b = Broker::new();
        let m = b.mailbox(4);
        m.subscribe("");
        assert!(b.publish("t", "t", &vec![7u8; MAX_PAYLOAD]).is_ok());
        assert!(matches!(
            b.publish("t", "t", &vec![7u8; MAX_PAYLOAD + 1]),
            Err(PublishError::TooLarge { .. })
        ));
        assert_eq!(m.try_recv().unwrap().payload.len(), MAX_PAYLOAD);
    }

    #[test]
    fn order_is_kept() {
        let b = Broker::new();
        let m = b.mailbox(1000);
        m.subscribe("t/");
        for i in 0..500u32 {
            b.publish("t/x", "n", &i.to_le_bytes()).unwrap();
        }
        for i in 0..500u32 {
            assert_eq!(m.try_recv().unwrap().payload, i.to_le_bytes());
        }
    }

    #[test]
    fn thousand_subscribers_share_one_copy() {
        let b = Broker::new();
        let boxes: Vec<_> = (0..1000)
            .map(|_| {
                let m = b.mailbox(8);
                m.subscribe("s/");
                m
            })
            .collect();
        assert_eq!(b.publish("s/1", "t", &[1; 1024]).unwrap(), 1000);
        let first = boxes[0].try_recv().unwrap();
        for m in &boxes[1..] {
            assert!(Arc::ptr_eq(&first, &m.try_recv().unwrap()));
        }
        assert_eq!(b.stats().delivered, 1000);
    }

    #[test]
    fn a_reader_that_never_reads_hurts_only_itself() {
        let b = Broker::new();
        let lazy = b.mailbox(4);
        lazy.subscribe("x/");
        let busy = b.mailbox(4);
        busy.subscribe("x/");
        for i in 0..100u8 {
            assert_eq!(b.publish("x/y", "t", &[i]).unwrap(), 2);
            assert_eq!(busy.try_recv().unwrap().payload, [i]);
        }
        assert_eq!(busy.dropped(), 0);
        assert_eq!(lazy.dropped(), 96);
        assert_eq!(b.stats().dropped, 96);
        // The lazy reader keeps the freshest four.
        let kept: Vec<u8> = std::iter::from_fn(|| lazy.try_recv()).map(|m| m.payload[0]).collect();
        assert_eq!(kept, [96, 97, 98, 99]);
    }

    #[test]
    fn drop_unsubscribes() {
        let b = Broker::new();
        let m = b.mailbox(4);
        m.subscribe("a");
        m.subscribe("b");
        assert_eq!(b.stats().mailboxes, 1);
        assert_eq!(b.stats().subscriptions, 2);
        drop(m);
        assert_eq!(b.stats().mailboxes, 0);
        assert_eq!(b.stats().subscriptions, 0);
        assert_eq!(b.publish("a", "t", b"x").unwrap(), 0);
    }

    #[test]
    fn imported_messages_skip_local_only_mailboxes() {
        let b = Broker::new();
        let guest = b.mailbox(8);
        guest.subscribe("s/");
        let tap = b.local_mailbox(8);
        tap.subscribe("s/");
        assert_eq!(b.publish("s/1", "t", b"local").unwrap(), 2);
        assert_eq!(b.publish_from(Origin::Bridge, "s/2", "t", b"remote").unwrap(), 1);
        let first = guest.try_recv().unwrap();
        assert_eq!(first.origin, Origin::Local);
        let second = guest.try_recv().unwrap();
        assert_eq!(
            (second.origin, second.payload.as_slice()),
            (Origin::Bridge, &b"remote"[..])
        );
        assert_eq!(tap.try_recv().unwrap().payload, b"local");
        assert!(tap.try_recv().is_none(), "an imported message reached an export tap");
    }

    #[tokio::test]
    async fn a_parked_subscriber_wakes() {
        let b = Broker::new();
        let m = b.mailbox(4);
        m.subscribe("w/");
        let notify = m.notify();
        let b2 = b.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            b2.publish("w/1", "t", b"x").unwrap();
        });
        tokio::time::timeout(Duration::from_secs(5), notify.notified())
            .await
            .expect("woken");
        assert!(m.try_recv().is_some());
    }
}
