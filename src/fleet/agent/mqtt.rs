//! The agent's broker session on its own task: connect (with the last will `offline`),
//! subscribe to the device's and its groups' desired and vars topics on every connect,
//! say `online`, hand every message to the agent, and reconnect with the bridges' capped
//! backoff. Kept apart from the agent's loop so that a long apply (a pull, a compile)
//! never stops the keep-alive.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
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
    let (client, mut eventloop) = AsyncClient::new(options, REQUESTS);
    let (tx, incoming) = mpsc::channel(QUEUE);
    let stop = CancellationToken::new();
    let task = {
        let client = client.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut backoff = Backoff::new(reconnect_max);
            let mut pending_subs: Vec<Vec<String>> = Vec::new();
            loop {
                let event = tokio::select! {
                    _ = stop.cancelled() => return,
                    event = eventloop.poll() => event,
                };
                let note = match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff.connected(Instant::now());
                        pending_subs.clear();
                        for topic in &subscriptions {
                            let _ = client.try_subscribe(topic.clone(), QoS::AtLeastOnce);
                            pending_subs.push(vec![topic.clone()]);
                        }
                        let _ = client.try_publish(status.clone(), QoS::AtLeastOnce, true, topics::ONLINE);
                        Some(Incoming::Connected)
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => Some(Incoming::Message {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        payload: p.payload,
                    }),
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        let topic = if pending_subs.is_empty() {
                            Vec::new()
                        } else {
                            pending_subs.remove(0)
                        };
                        let refused = ack
                            .return_codes
                            .iter()
                            .any(|c| !matches!(c, rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)));
                        refused.then(|| Incoming::SubscribeRefused(topic.join(", ")))
                    }
                    Ok(Event::Incoming(Packet::Disconnect(d))) => {
                        if d.reason_code == rumqttc::v5::mqttbytes::v5::DisconnectReasonCode::SessionTakenOver {
                            backoff.taken_over();
                        }
                        None
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                    Ok(_) => None,
                    Err(e) => {
                        let _ = tx.send(Incoming::Disconnected(e.to_string())).await;
                        let (wait, _) = backoff.failed(Instant::now());
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
        })
    };
    Session {
        client,
        incoming,
        stop,
        task,
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
