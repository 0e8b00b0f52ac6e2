//! One published message: what every mailbox it reaches shares (one `Arc`).

use std::sync::{Arc, LazyLock};

/// Where a message entered the stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    /// Published by a container (or by shoal itself).
    #[default]
    Local,
    /// Imported from an external broker by an MQTT bridge.
    Bridge,
}

/// The publisher name of messages shoal publishes itself (benchmarks, tests): shared, so a
/// publish without a container behind it allocates no name either.
static SHOAL: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("shoal"));

/// The publisher recorded for messages published through [`super::Broker::publish`].
pub fn shoal_publisher() -> Arc<str> {
    SHOAL.clone()
}

/// One published message, shared by every mailbox it was delivered to.
///
/// Topic, content type and payload live in ONE buffer: a publish costs two allocations
/// (this buffer and the `Arc` around the message) however many subscribers it reaches, where
/// three separate fields cost four. The publisher's name is an `Arc<str>` its container
/// holds for its whole life, so naming the publisher costs a reference count, not a copy.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    /// `topic`, then `content_type`, then the payload. Invariant: the first `topic_len +
    /// content_type_len` bytes are the UTF-8 of two `&str`s (only [`Message::new`] builds it).
    data: Box<[u8]>,
    topic_len: usize,
    content_type_len: usize,
    pub origin: Origin,
    /// Who published it: a container's name, `bridge:NAME` for a bridge's imports, or
    /// `shoal`.
    pub publisher: Arc<str>,
}

impl Message {
    pub fn new(origin: Origin, publisher: Arc<str>, topic: &str, content_type: &str, payload: &[u8]) -> Self {
        let mut data = Vec::with_capacity(topic.len() + content_type.len() + payload.len());
        data.extend_from_slice(topic.as_bytes());
        data.extend_from_slice(content_type.as_bytes());
        data.extend_from_slice(payload);
        Message {
            data: data.into_boxed_slice(),
            topic_len: topic.len(),
            content_type_len: content_type.len(),
            origin,
            publisher,
        }
    }

    pub fn topic(&self) -> &str {
        // SAFETY: `new` copied these bytes from a `&str` and `data` is never changed after.
        unsafe { std::str::from_utf8_unchecked(&self.data[..self.topic_len]) }
    }

    pub fn content_type(&self) -> &str {
        let end = self.topic_len + self.content_type_len;
        // SAFETY: as in `topic`: the bytes came from a `&str` and are never changed.
        unsafe { std::str::from_utf8_unchecked(&self.data[self.topic_len..end]) }
    }

    pub fn payload(&self) -> &[u8] {
        &self.data[self.topic_len + self.content_type_len..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_come_back_whole() {
        let m = Message::new(Origin::Bridge, Arc::from("bridge:up"), "a/β", "", b"\xff\x00x");
        assert_eq!(
            (m.topic(), m.content_type(), m.payload()),
            ("a/β", "", &b"\xff\x00x"[..])
        );
        let empty = Message::new(Origin::Local, shoal_publisher(), "", "text/plain", b"");
        assert_eq!(
            (empty.topic(), empty.content_type(), empty.payload()),
            ("", "text/plain", &b""[..])
        );
        assert_eq!(&*empty.publisher, "shoal");
    }
}
