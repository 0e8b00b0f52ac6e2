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
/// Topic, content type and payload live in ONE buffer, inside the message itself when they
/// fit in [`INLINE`] bytes (a sensor reading, an acknowledgement): a publish then costs one
/// allocation (the `Arc`, small enough for glibc's fast bins) however many subscribers it
/// reaches, and two when larger. The publisher's name is an `Arc<str>` its container holds
/// for its whole life, so naming the publisher costs a reference count, not a copy.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    /// `topic`, then `content_type`, then the payload. Invariant: the first `topic_len +
    /// content_type_len` bytes are the UTF-8 of two `&str`s (only [`Message::new`] builds it).
    data: Bytes,
    topic_len: usize,
    content_type_len: usize,
    pub origin: Origin,
    /// Who published it: a container's name, `bridge:NAME` for a bridge's imports, or
    /// `shoal`.
    pub publisher: Arc<str>,
}

impl Message {
    pub fn new(origin: Origin, publisher: Arc<str>, topic: &str, content_type: &str, payload: &[u8]) -> Self {
        let parts = [topic.as_bytes(), content_type.as_bytes(), payload];
        Message {
            data: Bytes::concat(parts),
            topic_len: topic.len(),
            content_type_len: content_type.len(),
            origin,
            publisher,
        }
    }

    pub fn topic(&self) -> &str {
        // SAFETY: `new` copied these bytes from a `&str` and `data` is never changed after.
        unsafe { std::str::from_utf8_unchecked(&self.data.as_slice()[..self.topic_len]) }
    }

    pub fn content_type(&self) -> &str {
        let end = self.topic_len + self.content_type_len;
        // SAFETY: as in `topic`: the bytes came from a `&str` and are never changed.
        unsafe { std::str::from_utf8_unchecked(&self.data.as_slice()[self.topic_len..end]) }
    }

    pub fn payload(&self) -> &[u8] {
        &self.data.as_slice()[self.topic_len + self.content_type_len..]
    }
}

/// Bytes a message keeps inside itself rather than in an allocation of their own.
pub const INLINE: usize = 48;

/// A message's bytes: inline up to [`INLINE`], else on the heap.
#[derive(Debug, PartialEq, Eq)]
enum Bytes {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Bytes {
    fn concat(parts: [&[u8]; 3]) -> Bytes {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if let Ok(len) = u8::try_from(total) {
            if total <= INLINE {
                let mut bytes = [0; INLINE];
                let mut at = 0;
                for part in parts {
                    bytes[at..at + part.len()].copy_from_slice(part);
                    at += part.len();
                }
                return Bytes::Inline { len, bytes };
            }
        }
        Bytes::Heap(parts.concat().into_boxed_slice())
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Bytes::Heap(bytes) => bytes,
        }
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

    #[test]
    fn small_and_large_messages_alike() {
        // Exactly at the inline limit, one byte over, and far over.
        for payload_len in [INLINE - 4, INLINE - 3, 70_000] {
            let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
            let m = Message::new(Origin::Local, shoal_publisher(), "a/", "b", &payload);
            assert_eq!((m.topic(), m.content_type(), m.payload()), ("a/", "b", &payload[..]));
        }
        // What a small message costs: the `Arc` around it stays within glibc's fast bins
        // (requests of at most 120 bytes on 64-bit).
        assert!(
            std::mem::size_of::<Message>() + 16 <= 120,
            "{}",
            std::mem::size_of::<Message>()
        );
    }
}
