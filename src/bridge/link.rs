//! One bridge's tasks: the poller drives the MQTT client's event loop (and so connects and
//! reconnects), the worker moves messages between it and the local broker.
//!
//! The poller is a task of its own so that `EventLoop::poll` is never cancelled half-way
//! (the worker waits on several things at once); it hands every event to the worker over a
//! small channel, which also gives imports backpressure: a slow worker slows the reads.
//!
//! **Import backpressure.** A QoS 1 import waits for room in the local mailboxes it goes to
//! ([`Broker::publish_with_room`]) rather than making a full mailbox drop its oldest
//! message. While it waits the worker reads nothing more from the poller, the poller stops
//! reading the socket, and TCP holds the broker back, which keeps the rest queued in the
//! session: after a reconnect the broker's burst arrives as fast as the guests read it, not
//! faster. A subscriber that takes nothing for [`IMPORT_ROOM_WAIT`] (paused, deaf, stuck)
//! stops holding imports back: it gets drop-oldest until it reads again. QoS 0 imports never
//! wait (drop-oldest, counted).
//!
//! Acknowledgements stay automatic (sent when the client reads the message). Acknowledging
//! only after the local delivery (rumqttc's manual acks) would also cover a shoal stopped
//! in the middle of a burst, but with it Mosquitto 2.0.11 stopped sending to the bridge for
//! good in 2 of 10 runs of `fanout::a_qos1_import_burst_waits_for_a_small_queue_and_loses_nothing`
//! (0 of 10 with automatic acknowledgements), so it is not used.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{
    DisconnectReasonCode, Filter, Packet, PublishProperties, RetainForwardRule, SubscribeReasonCode,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, StateError};
use rumqttc::Outgoing as ClientOutgoing;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, Origin};
use crate::logs::{LogSink, Stream};
use crate::spec::BridgeSpec;

use super::backoff::{Backoff, Takeover};
use super::outbox::{Outbox, Outgoing, WINDOW};
use super::topic::import_topic;

/// First wait after a failed connect or a lost link; it doubles up to `reconnect_max`.
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
/// Imported messages handed to the local broker before the worker lets the executor run
/// the containers that receive them (their mailboxes are bounded; see `broker`).
const IMPORTS_PER_YIELD: u32 = 16;
/// How long a QoS 1 import waits for room in a full local mailbox before that mailbox is
/// treated as stalled (see the module comment).
pub const IMPORT_ROOM_WAIT: Duration = Duration::from_secs(2);

/// Counters shared with [`super::BridgeHandle`].
#[derive(Default)]
pub struct Shared {
    pub connected: AtomicBool,
    pub exported: AtomicU64,
    pub imported: AtomicU64,
    pub queued: AtomicU64,
    pub dropped: AtomicU64,
    pub rejected: AtomicU64,
    pub reconnects: AtomicU64,
}

/// What the poller hands to the worker.
enum Polled {
    Event(Box<Event>),
    Failed {
        error: String,
        retry_in: Duration,
        /// Why the broker may have ended the connection, for one clear line (see [`Backoff`]).
        takeover: Option<Takeover>,
    },
}

/// Aborts the poller when the worker ends, however it ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn poll(mut eventloop: EventLoop, tx: mpsc::Sender<Polled>, reconnect_max: Duration) {
    let mut backoff = Backoff::new(reconnect_max);
    loop {
        match eventloop.poll().await {
            Ok(event) => {
                match &event {
                    Event::Incoming(Packet::ConnAck(_)) => backoff.connected(Instant::now()),
                    Event::Incoming(Packet::Disconnect(d))
                        if d.reason_code == DisconnectReasonCode::SessionTakenOver =>
                    {
                        backoff.taken_over()
                    }
                    _ => {}
                }
                if tx.send(Polled::Event(Box::new(event))).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                if let ConnectionError::MqttState(StateError::ServerDisconnect {
                    reason_code: DisconnectReasonCode::SessionTakenOver,
                    ..
                }) = &e
                {
                    backoff.taken_over();
                }
                let (delay, takeover) = backoff.failed(Instant::now());
                let failed = Polled::Failed {
                    error: e.to_string(),
                    retry_in: delay,
                    takeover,
                };
                if tx.send(failed).await.is_err() {
                    return;
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn qos(level: u8) -> QoS {
    if level == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

struct Worker {
    spec: BridgeSpec,
    /// `bridge:NAME`: the log prefix, and the publisher of every imported message.
    label: Arc<str>,
    broker: Broker,
    log: Arc<dyn LogSink>,
    shared: Arc<Shared>,
    client: AsyncClient,
    outbox: Outbox,
    connected: bool,
    connects: u64,
    failures_in_a_row: u32,
    /// Queue drops seen so far, and whether this connection (or outage) has warned about
    /// an overflow already: one line per episode, not one per message.
    drops_seen: u64,
    overflow_warned: bool,
    unexportable_reported: bool,
    unroutable_reported: bool,
    /// A local subscriber was found stalled during an import (one line per connection).
    stall_reported: bool,
    imports_since_yield: u32,
    /// The takeover line was printed (once per bridge); later drops of the same kind are
    /// quiet apart from every power of two.
    takeover_reported: bool,
    takeover_drops: u32,
}

/// `outbox` is made (its local subscriptions taken) by the caller before this task is
/// spawned: containers run on several threads and may publish before the task first runs,
/// and a message published before the subscription would never be exported.
pub async fn run(
    spec: BridgeSpec,
    options: MqttOptions,
    broker: Broker,
    outbox: Outbox,
    log: Arc<dyn LogSink>,
    shared: Arc<Shared>,
    drain: CancellationToken,
) {
    // Room for the whole window twice (messages handed over between a lost link and the
    // worker hearing of it, then the window resent after a connect without our session),
    // one subscribe and one disconnect request: `try_publish` never finds it full.
    let (client, eventloop) = AsyncClient::new(options, 2 * WINDOW + 4);
    let (tx, mut rx) = mpsc::channel(64);
    let _poller = AbortOnDrop(tokio::spawn(poll(eventloop, tx, spec.reconnect_max)));
    let signal = outbox.signal();
    let mut w = Worker {
        label: Arc::from(super::log_name(&spec)),
        spec,
        broker,
        log,
        shared,
        client,
        outbox,
        connected: false,
        connects: 0,
        failures_in_a_row: 0,
        drops_seen: 0,
        overflow_warned: false,
        unexportable_reported: false,
        unroutable_reported: false,
        stall_reported: false,
        imports_since_yield: 0,
        takeover_reported: false,
        takeover_drops: 0,
    };
    let mut deadline: Option<Instant> = None;
    loop {
        w.hand_over();
        w.publish_stats();
        if let Some(limit) = deadline {
            if w.outbox.is_empty() || Instant::now() >= limit {
                break;
            }
        }
        tokio::select! {
            _ = drain.cancelled(), if deadline.is_none() => {
                deadline = Some(Instant::now() + w.spec.flush_timeout);
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
            _ = signal.wait(), if w.connected && w.outbox.has_room() => {}
            polled = rx.recv() => match polled {
                Some(polled) => w.handle(polled).await,
                None => break,
            },
        }
    }
    w.finish(&mut rx).await;
}

impl Worker {
    /// Hand waiting exports to the client while connected and the window has room.
    fn hand_over(&mut self) {
        if !self.connected {
            return;
        }
        while let Some(next) = self.outbox.take_next() {
            match next {
                Ok(outgoing) => self.publish(outgoing),
                Err(bad) => {
                    if !self.unexportable_reported {
                        self.unexportable_reported = true;
                        self.log.line(
                            &self.label,
                            Stream::Warning,
                            &format!(
                                "not exporting `{}`: its broker topic `{}` is invalid because {} (dropped; further ones are only counted)",
                                bad.local_topic, bad.remote_topic, bad.why
                            ),
                        );
                    }
                }
            }
        }
    }

    fn publish(&mut self, outgoing: Outgoing) {
        let properties = PublishProperties {
            content_type: (!outgoing.message.content_type().is_empty())
                .then(|| outgoing.message.content_type().to_owned()),
            ..Default::default()
        };
        let payload = bytes::Bytes::copy_from_slice(outgoing.message.payload());
        // The channel has room for it (see `run`), so this only fails if the poller is gone,
        // and then the worker ends on the closed event channel; the message stays counted.
        let _ = self
            .client
            .try_publish_with_properties(outgoing.topic, qos(outgoing.qos), false, payload, properties);
    }

    fn publish_stats(&mut self) {
        let s = &self.shared;
        s.connected.store(self.connected, Ordering::Relaxed);
        s.queued.store(self.outbox.queued() as u64, Ordering::Relaxed);
        let dropped = self.outbox.dropped();
        s.dropped.store(dropped, Ordering::Relaxed);
        if dropped > self.drops_seen && !self.overflow_warned {
            self.overflow_warned = true;
            let why = if self.connected {
                "local publishers are faster than the broker link"
            } else {
                "the broker is unreachable"
            };
            self.log.line(
                &self.label,
                Stream::Warning,
                &format!(
                    "export queue full ({} messages): dropping the oldest while {why}",
                    self.spec.queue
                ),
            );
        }
        self.drops_seen = dropped;
    }

    async fn handle(&mut self, polled: Polled) {
        match polled {
            Polled::Failed {
                error,
                retry_in,
                takeover,
            } => match takeover {
                Some(takeover) => self.taken_over(takeover, retry_in),
                None => self.lost(&error, retry_in),
            },
            Polled::Event(event) => match *event {
                Event::Incoming(packet) => self.incoming(packet).await,
                Event::Outgoing(ClientOutgoing::Publish(pkid)) => {
                    let confirmed = self.outbox.on_sent(pkid);
                    self.count_export(confirmed);
                }
                Event::Outgoing(ClientOutgoing::AwaitAck(pkid)) => self.outbox.on_held(pkid),
                Event::Outgoing(_) => {}
            },
        }
    }

    fn count_export(&self, confirmed: bool) {
        if confirmed {
            self.shared.exported.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lost(&mut self, error: &str, retry_in: Duration) {
        self.failures_in_a_row += 1;
        let retry = humantime::format_duration(retry_in);
        if self.connected {
            self.connected = false;
            self.log.line(
                &self.label,
                Stream::Warning,
                &format!(
                    "lost the connection to {}: {error}; {} messages queued; reconnecting in {retry}",
                    self.spec.url,
                    self.outbox.queued()
                ),
            );
        } else if self.failures_in_a_row.is_power_of_two() {
            // 1st, 2nd, 4th, 8th... attempt: enough to see it, not a line every retry.
            self.log.line(
                &self.label,
                Stream::Warning,
                &format!(
                    "cannot connect to {} (attempt {}): {error}; retrying in {retry}",
                    self.spec.url, self.failures_in_a_row
                ),
            );
        }
    }

    /// Another client seems to hold this bridge's client id: say so once, with what to do,
    /// and then only count (the poller already waits `reconnect_max` between attempts).
    fn taken_over(&mut self, takeover: Takeover, retry_in: Duration) {
        self.failures_in_a_row += 1;
        self.connected = false;
        self.takeover_drops += 1;
        let retry = humantime::format_duration(retry_in);
        let id = &self.spec.client_id;
        if !self.takeover_reported {
            self.takeover_reported = true;
            let why = match takeover {
                Takeover::Said => format!(
                    "the broker ended the session because another client connected with the same client id `{id}` (MQTT reason 0x8E, session taken over)"
                ),
                Takeover::QuickDrops(n) => format!(
                    "the broker closed the connection right after accepting it {n} times in a row: another client probably uses the same client id `{id}`"
                ),
            };
            self.log.line(
                &self.label,
                Stream::Warning,
                &format!(
                    "{why}; backing off (next attempt in {retry}) instead of taking it back\n  hint: give each board its own `client_id` for bridge `{}`, or remove `client_id:` (the default is unique per board: it includes /etc/machine-id or SHOAL_BOARD_ID)",
                    self.spec.name
                ),
            );
        } else if self.takeover_drops.is_power_of_two() {
            self.log.line(
                &self.label,
                Stream::Warning,
                &format!(
                    "client id `{id}` taken over again ({} times); retrying in {retry}",
                    self.takeover_drops
                ),
            );
        }
    }

    async fn incoming(&mut self, packet: Packet) {
        match packet {
            Packet::ConnAck(ack) => {
                self.connected = true;
                self.failures_in_a_row = 0;
                self.overflow_warned = false;
                self.stall_reported = false;
                self.connects += 1;
                if self.connects > 1 {
                    self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                let session = if ack.session_present {
                    "session resumed"
                } else {
                    "new session"
                };
                self.log.line(
                    &self.label,
                    Stream::System,
                    &format!(
                        "connected to {} as {} ({session}, {} queued)",
                        self.spec.url,
                        self.spec.client_id,
                        self.outbox.queued()
                    ),
                );
                if !ack.session_present {
                    // The client dropped what the old session had in flight: send it again.
                    for outgoing in self.outbox.take_for_resend() {
                        self.publish(outgoing);
                    }
                }
                self.subscribe();
            }
            Packet::Publish(publish) => self.import(publish).await,
            Packet::PubAck(ack) => {
                let confirmed = self.outbox.on_acked(ack.pkid);
                self.count_export(confirmed);
            }
            Packet::SubAck(ack) => {
                let failed: Vec<String> = ack
                    .return_codes
                    .iter()
                    .zip(&self.spec.import)
                    .filter(|(code, _)| !matches!(code, SubscribeReasonCode::Success(_)))
                    .map(|(code, rule)| format!("{} ({code:?})", rule.remote))
                    .collect();
                if failed.is_empty() {
                    let filters: Vec<&str> = self.spec.import.iter().map(|r| r.remote.as_str()).collect();
                    self.log.line(
                        &self.label,
                        Stream::System,
                        &format!("subscribed to {}", filters.join(", ")),
                    );
                } else {
                    self.log.line(
                        &self.label,
                        Stream::Warning,
                        &format!("the broker refused the subscription to {}", failed.join(", ")),
                    );
                }
            }
            Packet::Disconnect(d) => {
                self.log.line(
                    &self.label,
                    Stream::Warning,
                    &format!("the broker closed the session: {:?}", d.reason_code),
                );
            }
            _ => {}
        }
    }

    /// Subscribe every import filter, on every connect: a resumed session already has them
    /// (then this is a no-op for the broker, and `OnNewSubscribe` keeps retained messages
    /// from coming again), a new one needs them, and a changed file may have added some.
    fn subscribe(&mut self) {
        if self.spec.import.is_empty() {
            return;
        }
        let filters: Vec<Filter> = self
            .spec
            .import
            .iter()
            .map(|rule| Filter {
                path: rule.remote.clone(),
                qos: qos(rule.qos),
                nolocal: true,
                preserve_retain: false,
                retain_forward_rule: RetainForwardRule::OnNewSubscribe,
            })
            .collect();
        let _ = self.client.try_subscribe_many(filters);
    }

    async fn import(&mut self, publish: rumqttc::v5::mqttbytes::v5::Publish) {
        let delivered = match std::str::from_utf8(&publish.topic) {
            Ok(topic) => match import_topic(&self.spec.import, topic) {
                Some((local, _)) => {
                    let content_type = publish
                        .properties
                        .as_ref()
                        .and_then(|p| p.content_type.as_deref())
                        .unwrap_or("");
                    self.deliver(&publish, &local, content_type)
                        .await
                        .map_err(|e| format!("`{topic}`: {e}"))
                }
                // A subscription left in a resumed session by an earlier version of the file.
                None => Err(format!("`{topic}` matches no import rule")),
            },
            Err(_) => Err("a topic that is not UTF-8".to_string()),
        };
        match delivered {
            Ok(_) => {
                self.shared.imported.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => {
                self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                if !self.unroutable_reported {
                    self.unroutable_reported = true;
                    self.log.line(
                        &self.label,
                        Stream::Warning,
                        &format!("not importing {why} (further ones are only counted)"),
                    );
                }
            }
        }
        self.imports_since_yield += 1;
        if self.imports_since_yield >= IMPORTS_PER_YIELD {
            self.imports_since_yield = 0;
            tokio::task::yield_now().await;
        }
    }

    /// Publish one import locally: QoS 0 at once (drop-oldest), QoS 1 after waiting for room.
    async fn deliver(
        &mut self,
        publish: &rumqttc::v5::mqttbytes::v5::Publish,
        local: &str,
        content_type: &str,
    ) -> Result<usize, crate::broker::PublishError> {
        if publish.qos == QoS::AtMostOnce {
            return self
                .broker
                .publish_as(Origin::Bridge, &self.label, local, content_type, &publish.payload);
        }
        let delivery = self
            .broker
            .publish_with_room(
                Origin::Bridge,
                &self.label,
                local,
                content_type,
                &publish.payload,
                IMPORT_ROOM_WAIT,
            )
            .await?;
        if delivery.stalled > 0 && !self.stall_reported {
            self.stall_reported = true;
            self.log.line(
                &self.label,
                Stream::Warning,
                &format!(
                    "a local subscriber of `{local}` took no message for {}: QoS 1 imports no longer wait for it (its full queue drops the oldest, counted as its drops) until it reads again",
                    humantime::format_duration(IMPORT_ROOM_WAIT)
                ),
            );
        }
        Ok(delivery.delivered)
    }

    /// Disconnect cleanly (bounded), then report what the bridge did.
    async fn finish(&mut self, rx: &mut mpsc::Receiver<Polled>) {
        let unsent = self.outbox.queued();
        if self.connected && self.client.try_disconnect().is_ok() {
            let wait = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(polled) = rx.recv().await {
                    match polled {
                        Polled::Failed { .. } => break,
                        Polled::Event(event) if matches!(*event, Event::Outgoing(ClientOutgoing::Disconnect)) => break,
                        other => self.handle(other).await,
                    }
                }
            });
            let _ = wait.await;
        }
        self.connected = false;
        self.publish_stats();
        if unsent > 0 {
            self.log.line(
                &self.label,
                Stream::Warning,
                &format!(
                    "{unsent} exported messages were not confirmed by the broker within flush_timeout ({})",
                    humantime::format_duration(self.spec.flush_timeout)
                ),
            );
        }
        let s = &self.shared;
        self.log.line(
            &self.label,
            Stream::System,
            &format!(
                "stopped: exported {}, imported {}, dropped {}, rejected {}, reconnects {}",
                s.exported.load(Ordering::Relaxed),
                s.imported.load(Ordering::Relaxed),
                s.dropped.load(Ordering::Relaxed),
                s.rejected.load(Ordering::Relaxed),
                s.reconnects.load(Ordering::Relaxed)
            ),
        );
    }
}
