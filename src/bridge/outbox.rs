//! The export side of a bridge: a bounded queue of local messages waiting for the broker,
//! and the window of messages handed to the MQTT client but not yet confirmed.
//!
//! * **The queue** is a broker mailbox that receives only locally published messages
//!   ([`Broker::local_mailbox`]) under the export prefixes. It is bounded by `queue:`; when
//!   full the oldest waiting message is dropped and counted (as every local mailbox does), so
//!   after a long outage the broker gets the freshest data.
//! * **The window** holds at most [`WINDOW`] messages handed to the client. A QoS 1 message
//!   leaves it when the broker's PUBACK for its packet id arrives, a QoS 0 message when it
//!   has been written to the socket. Until then the message is kept here: if the link drops
//!   and the broker no longer has our session (it restarted without persistence, or the
//!   session expired), the MQTT client forgets its unacknowledged packets, and the bridge
//!   hands the whole window over again ([`Outbox::take_for_resend`]). If the session is
//!   still there, the client retransmits them itself (with the DUP flag). Either way a
//!   QoS 1 message within the bound is delivered at least once.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::broker::{Broker, Mailbox, Message};
use crate::spec::ExportRule;

use super::topic::{export_topic, invalid_topic_name};

/// Messages handed to the MQTT client at once (the broker's own receive maximum, 20 for
/// Mosquitto, further limits what is on the wire; the rest waits in the client's channel).
pub const WINDOW: usize = 64;

/// One message on its way to the broker.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic: String,
    pub qos: u8,
    pub message: Arc<Message>,
}

#[derive(Debug)]
struct InFlight {
    outgoing: Outgoing,
    /// The packet id the client gave it (QoS 1), once known.
    pkid: Option<u16>,
}

pub struct Outbox {
    tap: Mailbox,
    rules: Vec<ExportRule>,
    window: VecDeque<InFlight>,
    /// Messages dropped because their mapped topic is not a valid MQTT topic name.
    invalid: u64,
}

/// What the bridge should report about a message it could not export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexportable {
    pub local_topic: String,
    pub remote_topic: String,
    pub why: &'static str,
}

impl Outbox {
    /// Subscribe a local-only mailbox of `capacity` messages to every export prefix.
    pub fn new(broker: &Broker, rules: Vec<ExportRule>, capacity: usize) -> Self {
        let tap = broker.local_mailbox(capacity);
        for rule in &rules {
            tap.subscribe(&rule.local);
        }
        Outbox {
            tap,
            rules,
            window: VecDeque::new(),
            invalid: 0,
        }
    }

    /// The waker signalled when a local message is queued.
    pub fn signal(&self) -> crate::broker::MailboxSignal {
        self.tap.signal()
    }

    pub fn has_room(&self) -> bool {
        self.window.len() < WINDOW
    }

    /// Waiting plus unconfirmed messages.
    pub fn queued(&self) -> usize {
        self.tap.len() + self.window.len()
    }

    pub fn is_empty(&self) -> bool {
        self.window.is_empty() && self.tap.is_empty()
    }

    /// Messages dropped: queue overflow plus unexportable topics.
    pub fn dropped(&self) -> u64 {
        self.tap.dropped() + self.invalid
    }

    /// The next message to hand to the client, moved into the window; `None` when the
    /// window is full or nothing waits. `Err` reports (and drops) a message whose mapped
    /// topic the broker would refuse.
    pub fn take_next(&mut self) -> Option<Result<Outgoing, Unexportable>> {
        if !self.has_room() {
            return None;
        }
        let message = self.tap.try_recv()?;
        // The tap only holds topics under some rule's prefix.
        let (topic, rule) = export_topic(&self.rules, message.topic())?;
        if let Some(why) = invalid_topic_name(&topic) {
            self.invalid += 1;
            return Some(Err(Unexportable {
                local_topic: message.topic().to_owned(),
                remote_topic: topic,
                why,
            }));
        }
        let outgoing = Outgoing {
            topic,
            qos: rule.qos,
            message,
        };
        self.window.push_back(InFlight {
            outgoing: outgoing.clone(),
            pkid: None,
        });
        Some(Ok(outgoing))
    }

    /// The client wrote a publish with this packet id (0 for QoS 0). Returns true when that
    /// confirmed a message (QoS 0: written is all there is).
    pub fn on_sent(&mut self, pkid: u16) -> bool {
        if pkid != 0 && self.window.iter().any(|f| f.pkid == Some(pkid)) {
            // A retransmission after a reconnect, or a packet released after a collision.
            return false;
        }
        self.assign(pkid)
    }

    /// The client held a publish back because its packet id is still in flight (a broker
    /// acknowledging out of order); it will be sent after that id's acknowledgement.
    pub fn on_held(&mut self, pkid: u16) {
        self.assign(pkid);
    }

    /// Give `pkid` to the oldest message the client has not numbered yet (the client takes
    /// requests in order); a QoS 0 message is done at that point.
    fn assign(&mut self, pkid: u16) -> bool {
        let Some(index) = self.window.iter().position(|f| f.pkid.is_none()) else {
            return false;
        };
        if self.window[index].outgoing.qos == 0 {
            self.window.remove(index);
            return true;
        }
        self.window[index].pkid = Some(pkid);
        false
    }

    /// The broker acknowledged `pkid`. Returns true when that confirmed a message.
    pub fn on_acked(&mut self, pkid: u16) -> bool {
        match self.window.iter().position(|f| f.pkid == Some(pkid)) {
            Some(index) => {
                self.window.remove(index);
                true
            }
            None => false,
        }
    }

    /// After a connect without our old session the client has discarded everything
    /// unacknowledged: hand the whole window over again, in order.
    pub fn take_for_resend(&mut self) -> Vec<Outgoing> {
        self.window
            .iter_mut()
            .map(|f| {
                f.pkid = None;
                f.outgoing.clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(broker: &Broker, capacity: usize, qos: u8) -> Outbox {
        let rules = vec![ExportRule {
            local: "s/".into(),
            remote: "r/".into(),
            qos,
        }];
        Outbox::new(broker, rules, capacity)
    }

    #[test]
    fn the_queue_is_bounded_and_drops_the_oldest() {
        let broker = Broker::new();
        let mut out = outbox(&broker, 3, 1);
        for i in 0..5u8 {
            broker.publish("s/x", "text/plain", &[i]).unwrap();
        }
        assert_eq!((out.queued(), out.dropped()), (3, 2));
        let kept: Vec<u8> = std::iter::from_fn(|| out.take_next())
            .map(|o| o.unwrap().message.payload()[0])
            .collect();
        assert_eq!(kept, [2, 3, 4]);
        // Handed over but not acknowledged: still counted as queued.
        assert_eq!(out.queued(), 3);
        assert!(!out.is_empty());
    }

    #[test]
    fn only_local_messages_under_the_export_prefixes_are_taken() {
        let broker = Broker::new();
        let mut out = outbox(&broker, 10, 1);
        broker.publish("s/1", "t", b"a").unwrap();
        broker.publish("other/1", "t", b"b").unwrap();
        broker
            .publish_from(crate::broker::Origin::Bridge, "s/2", "t", b"imported")
            .unwrap();
        let first = out.take_next().unwrap().unwrap();
        assert_eq!((first.topic.as_str(), first.qos), ("r/1", 1));
        assert!(out.take_next().is_none());
    }

    #[test]
    fn qos1_leaves_the_window_on_its_ack_and_survives_a_lost_session() {
        let broker = Broker::new();
        let mut out = outbox(&broker, 100, 1);
        for i in 0..3u8 {
            broker.publish("s/x", "t", &[i]).unwrap();
        }
        while out.take_next().is_some() {}
        assert!(!out.on_sent(1) && !out.on_sent(2) && !out.on_sent(3));
        assert!(!out.on_sent(1), "a retransmission confirms nothing");
        assert!(out.on_acked(2), "acks may come out of order");
        assert!(!out.on_acked(2));
        assert_eq!(out.queued(), 2);
        // The broker lost our session: both unacknowledged messages go again, in order.
        let again: Vec<u8> = out.take_for_resend().iter().map(|o| o.message.payload()[0]).collect();
        assert_eq!(again, [0, 2]);
        assert!(!out.on_sent(1) && !out.on_sent(2));
        assert!(out.on_acked(1) && out.on_acked(2));
        assert!(out.is_empty());
    }

    #[test]
    fn a_held_packet_gets_its_id_before_it_is_sent() {
        let broker = Broker::new();
        let mut out = outbox(&broker, 100, 1);
        for i in 0..2u8 {
            broker.publish("s/x", "t", &[i]).unwrap();
        }
        while out.take_next().is_some() {}
        out.on_sent(1);
        // Packet id 1 is still in flight: the second publish is held with the same id.
        out.on_held(1);
        assert!(out.on_acked(1));
        assert!(!out.on_sent(1), "the held packet going out is not a new message");
        assert!(out.on_acked(1));
        assert!(out.is_empty());
    }

    #[test]
    fn qos0_is_done_once_written_and_the_window_is_bounded() {
        let broker = Broker::new();
        let mut out = outbox(&broker, 1000, 0);
        for i in 0..(WINDOW + 10) {
            broker.publish("s/x", "t", &i.to_le_bytes()).unwrap();
        }
        let mut handed = 0;
        while let Some(o) = out.take_next() {
            o.unwrap();
            handed += 1;
        }
        assert_eq!(handed, WINDOW);
        assert!(!out.has_room());
        assert!(out.on_sent(0));
        assert!(out.has_room());
        assert_eq!(out.queued(), WINDOW + 9);
    }

    #[test]
    fn unexportable_topics_are_dropped_and_counted() {
        let broker = Broker::new();
        let mut out = outbox(&broker, 10, 1);
        broker.publish("s/a+b", "t", b"x").unwrap();
        let err = out.take_next().unwrap().unwrap_err();
        assert_eq!(err.remote_topic, "r/a+b");
        assert_eq!(out.dropped(), 1);
    }
}
