//! The operator's MQTT session: connect, read the retained state of some topics, publish
//! documents and know the broker has taken them, watch reports arrive.
//!
//! MQTT has no "end of retained messages" marker. The session subscribes to a topic of its
//! own (`shoal/v1/operators/<client id>/sync`) and, to *sync*, publishes a marker there and
//! reads until the marker comes back: the broker handles one client's packets in order, so
//! by then it has sent every retained message of the earlier subscriptions and taken every
//! earlier publish (a refused one comes back as a negative acknowledgement first).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use tokio::sync::mpsc;

use super::OperatorError;
use crate::fleet::topics;

/// How long the broker may take to answer a sync before the command gives up.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// What the event loop task passes on.
enum Note {
    Message(String, Bytes),
    Refused(String),
    Lost(String),
}

/// A connected operator session.
pub struct Session {
    client: AsyncClient,
    notes: mpsc::UnboundedReceiver<Note>,
    url: String,
    sync_topic: String,
    marker: u64,
    /// The latest payload seen on each topic (an empty retained payload removes the topic).
    state: BTreeMap<String, Bytes>,
    task: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Connect with `options` (from `fleet::connect`); `url` names the broker in errors.
    pub async fn connect(mut options: MqttOptions, url: &str) -> Result<Session, OperatorError> {
        // The packet limit is the connection's (`fleet::connect`): a whole signed document.
        options.set_clean_start(true);
        let client_id = options.client_id();
        let (client, mut events) = AsyncClient::new(options, 1024);
        // Wait for the CONNACK here, so an unreachable or refusing broker is this call's error.
        loop {
            match tokio::time::timeout(ANSWER_WITHIN, events.poll()).await {
                Err(_) => {
                    return Err(OperatorError::Unreachable {
                        url: url.to_string(),
                        message: format!("no answer within {}s", ANSWER_WITHIN.as_secs()),
                    })
                }
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
                Ok(Ok(_)) => {}
                Ok(Err(ConnectionError::ConnectionRefused(
                    code @ (ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword),
                ))) => {
                    return Err(OperatorError::NotAuthorised {
                        url: url.to_string(),
                        what: format!("the broker refused the login ({code:?})"),
                    })
                }
                Ok(Err(e)) => {
                    return Err(OperatorError::Unreachable {
                        url: url.to_string(),
                        message: e.to_string(),
                    })
                }
            }
        }
        let (tx, notes) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let note = match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        Note::Message(String::from_utf8_lossy(&p.topic).into_owned(), p.payload)
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) if refused_publish(&ack.reason) => {
                        Note::Refused(format!("a publish was refused ({:?})", ack.reason))
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack)))
                        if ack
                            .return_codes
                            .iter()
                            .any(|c| !matches!(c, SubscribeReasonCode::Success(_))) =>
                    {
                        Note::Refused(format!("a subscription was refused ({:?})", ack.return_codes))
                    }
                    Ok(_) => continue,
                    Err(e) => Note::Lost(e.to_string()),
                };
                let lost = matches!(note, Note::Lost(_));
                if tx.send(note).is_err() || lost {
                    return;
                }
            }
        });
        let sync_topic = format!("{}/operators/{client_id}/sync", topics::PREFIX);
        let mut session = Session {
            client,
            notes,
            url: url.to_string(),
            sync_topic: sync_topic.clone(),
            marker: 0,
            state: BTreeMap::new(),
            task,
        };
        session.subscribe_only(&sync_topic).await?;
        session.sync().await?;
        Ok(session)
    }

    async fn subscribe_only(&self, filter: &str) -> Result<(), OperatorError> {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .map_err(|e| self.lost(e.to_string()))
    }

    fn lost(&self, message: String) -> OperatorError {
        OperatorError::Unreachable {
            url: self.url.clone(),
            message,
        }
    }

    /// Subscribe to `filters` and read their retained messages.
    pub async fn subscribe(&mut self, filters: &[String]) -> Result<(), OperatorError> {
        for filter in filters {
            self.subscribe_only(filter).await?;
        }
        self.sync().await
    }

    /// Publish `payload` retained with QoS 1 (an empty payload deletes the retained document).
    pub async fn publish_retained(&self, topic: &str, payload: Vec<u8>) -> Result<(), OperatorError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
            .map_err(|e| self.lost(e.to_string()))
    }

    /// Wait until the broker has handled everything sent so far (see the module docs).
    pub async fn sync(&mut self) -> Result<(), OperatorError> {
        self.marker += 1;
        let marker = self.marker.to_string();
        self.client
            .publish(&self.sync_topic, QoS::AtLeastOnce, false, marker.clone().into_bytes())
            .await
            .map_err(|e| self.lost(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + ANSWER_WITHIN;
        loop {
            match tokio::time::timeout_at(deadline, self.next_note()).await {
                Err(_) => {
                    return Err(self.lost(format!("the broker did not answer within {}s", ANSWER_WITHIN.as_secs())))
                }
                Ok(note) => {
                    let (topic, payload) = note?;
                    if topic == self.sync_topic && payload == marker.as_bytes() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The next message's topic (the message is recorded in [`Session::state`]); `None`
    /// when `within` passes first.
    pub async fn next(&mut self, within: Duration) -> Result<Option<String>, OperatorError> {
        match tokio::time::timeout(within, self.next_note()).await {
            Err(_) => Ok(None),
            Ok(note) => Ok(Some(note?.0)),
        }
    }

    /// One message from the event loop, recorded; a refusal by the broker or a lost
    /// connection is an error.
    async fn next_note(&mut self) -> Result<(String, Bytes), OperatorError> {
        match self.notes.recv().await {
            Some(Note::Message(topic, payload)) => {
                if payload.is_empty() {
                    self.state.remove(&topic);
                } else if topic != self.sync_topic {
                    self.state.insert(topic.clone(), payload.clone());
                }
                Ok((topic, payload))
            }
            Some(Note::Refused(what)) => Err(OperatorError::NotAuthorised {
                url: self.url.clone(),
                what,
            }),
            Some(Note::Lost(message)) => Err(self.lost(format!("connection lost: {message}"))),
            None => Err(self.lost("the connection closed".into())),
        }
    }

    /// The latest payload of every topic seen.
    pub fn state(&self) -> &BTreeMap<String, Bytes> {
        &self.state
    }

    /// Disconnect cleanly (retained documents stay on the broker).
    pub async fn close(self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

fn refused_publish(reason: &PubAckReason) -> bool {
    !matches!(reason, PubAckReason::Success | PubAckReason::NoMatchingSubscribers)
}
