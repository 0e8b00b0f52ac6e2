//! The agent's broker session on its own task: connect (with the last will `offline`),
//! subscribe to the device's and its groups' desired and vars topics on every connect,
//! say `online`, hand every message to the agent, and reconnect with the bridges' capped
//! backoff. Kept apart from the agent's loop so that a long apply (a pull, a compile)
//! never stops the keep-alive.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{DisconnectReasonCode, LastWill, Packet, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bridge::backoff::Backoff;
use crate::fleet::topics;

/// What the session tells the agent.
#[derive(Debug)]
pub enum Incoming {
    Connected,
    Disconnected(String),
    Message {
        topic: String,
        payload: Bytes,
    },
    /// The broker refused a subscription (the ACL does not allow it).
    SubscribeRefused(String),
    /// The marker published after this connection's subscriptions came back: every
    /// retained document has arrived by now (see [`topics::device_sync`]).
    Synced,
}

/// Messages waiting for the agent. Documents are few (one per topic); a full queue makes
/// the session wait, it never drops one.
const QUEUE: usize = 256;
/// Requests (publishes) waiting for the session.
const REQUESTS: usize = 32;

/// The running session.
pub struct Session {
    pub client: AsyncClient,
    pub incoming: mpsc::Receiver<Incoming>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Start the session for `device` reading `subscriptions`.
pub fn start(mut options: MqttOptions, device: &str, subscriptions: Vec<String>, reconnect_max: Duration) -> Session {
    let status = topics::device_status(device);
    options.set_last_will(LastWill::new(
        status.clone(),
        topics::OFFLINE,
        QoS::AtLeastOnce,
        true,
        None,
    ));
    let (client, eventloop) = AsyncClient::new(options, REQUESTS);
    let (tx, incoming) = mpsc::channel(QUEUE);
    let stop = CancellationToken::new();
    let link = Link {
        client: client.clone(),
        subscriptions,
        sync: topics::device_sync(device),
        marker: 0,
        status,
        pending: Vec::new(),
        backoff: Backoff::new(reconnect_max),
    };
    let task = tokio::spawn(link.serve(eventloop, tx, stop.clone()));
    Session {
        client,
        incoming,
        stop,
        task,
    }
}

/// The session's task state.
struct Link {
    client: AsyncClient,
    subscriptions: Vec<String>,
    /// [`topics::device_sync`] of this device.
    sync: String,
    /// The marker of the current connection (a new one on every connect, so a late marker
    /// of an earlier connection is not taken for this one's).
    marker: u64,
    status: String,
    /// Topics subscribed whose SUBACK has not come yet, in order.
    pending: Vec<String>,
    backoff: Backoff,
}

impl Link {
    /// Poll the connection until stopped or cleanly disconnected; a failure waits the
    /// backoff, then the event loop reconnects.
    async fn serve(mut self, mut eventloop: EventLoop, tx: mpsc::Sender<Incoming>, stop: CancellationToken) {
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                event = eventloop.poll() => event,
            };
            let note = match event {
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                Ok(event) => self.on_event(event),
                Err(e) => {
                    let _ = tx.send(Incoming::Disconnected(e.to_string())).await;
                    let (wait, _) = self.backoff.failed(Instant::now());
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    None
                }
            };
            if let Some(note) = note {
                if tx.send(note).await.is_err() {
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, event: Event) -> Option<Incoming> {
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                self.backoff.connected(Instant::now());
                self.pending.clear();
                for topic in self.subscriptions.iter().chain([&self.sync]) {
                    let _ = self.client.try_subscribe(topic.clone(), QoS::AtLeastOnce);
                    self.pending.push(topic.clone());
                }
                // Published after the subscriptions, so the broker sends it after their
                // retained messages.
                self.marker = self.marker.wrapping_add(1);
                let _ = self
                    .client
                    .try_publish(self.sync.clone(), QoS::AtLeastOnce, false, self.marker.to_string());
                let _ = self
                    .client
                    .try_publish(self.status.clone(), QoS::AtLeastOnce, true, topics::ONLINE);
                Some(Incoming::Connected)
            }
            Event::Incoming(Packet::Publish(p)) if p.topic == self.sync.as_bytes() => {
                (p.payload == self.marker.to_string().as_bytes()).then_some(Incoming::Synced)
            }
            Event::Incoming(Packet::Publish(p)) => Some(Incoming::Message {
                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                payload: p.payload,
            }),
            Event::Incoming(Packet::SubAck(ack)) => {
                let topic = if self.pending.is_empty() {
                    String::new()
                } else {
                    self.pending.remove(0)
                };
                let refused = ack
                    .return_codes
                    .iter()
                    .any(|c| !matches!(c, SubscribeReasonCode::Success(_)));
                refused.then_some(Incoming::SubscribeRefused(topic))
            }
            Event::Incoming(Packet::Disconnect(d)) => {
                if d.reason_code == DisconnectReasonCode::SessionTakenOver {
                    self.backoff.taken_over();
                }
                None
            }
            _ => None,
        }
    }
}

impl Session {
    /// Publish retained at QoS 1 without waiting: while the broker is away the request
    /// queue may be full, and the agent must not stall on it (it republishes its report
    /// on every connect anyway).
    pub fn publish_retained(&self, topic: String, payload: Vec<u8>) {
        let _ = self.client.try_publish(topic, QoS::AtLeastOnce, true, payload);
    }

    /// Say `offline`, disconnect cleanly (bounded wait), end the task.
    pub async fn close(self, device: &str) {
        let _ = self
            .client
            .try_publish(topics::device_status(device), QoS::AtLeastOnce, true, topics::OFFLINE);
        let _ = self.client.try_disconnect();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task).await.is_err() {
            self.stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), &mut task).await;
            task.abort();
        }
    }
}
