//! One published message: what every mailbox it reaches shares (one `Arc`).

/// Where a message entered the stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    /// Published by a container (or by shoal itself).
    #[default]
    Local,
    /// Imported from an external broker by an MQTT bridge.
    Bridge,
}

/// The publisher name of messages shoal publishes itself (benchmarks, tests).
pub const SHOAL_PUBLISHER: &str = "shoal";

/// One published message, shared by every mailbox it was delivered to.
///
/// Publisher, topic, content type and payload live in ONE buffer, inside the message itself
/// when they fit in [`INLINE`] bytes (a sensor reading, an acknowledgement): a publish then
/// costs one allocation (the `Arc`, small enough for glibc's fast bins) however many
/// subscribers it reaches, and two when larger.
///
/// The publisher's name is copied in, not shared as an `Arc<str>`: a shared name's count
/// is written by every publish and by the reader that drops the message last, on two
/// threads, so its cache line moved between the cores twice per message (issue 15: in a
/// profile of a stream to one subscriber, that increment and the decrement before the
/// free took about a tenth of the samples).
/// Copying a name of a few bytes into a buffer being written anyway costs less.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    /// `publisher`, `topic`, `content_type`, then the payload. Invariant: the first
    /// `publisher_len + topic_len + content_type_len` bytes are the UTF-8 of three `&str`s
    /// (only [`Message::new`] builds it).
    data: Bytes,
    publisher_len: usize,
    topic_len: usize,
    content_type_len: usize,
    pub origin: Origin,
}

impl Message {
    pub fn new(origin: Origin, publisher: &str, topic: &str, content_type: &str, payload: &[u8]) -> Self {
        let parts = [publisher.as_bytes(), topic.as_bytes(), content_type.as_bytes(), payload];
        Message {
            data: Bytes::concat(parts),
            publisher_len: publisher.len(),
            topic_len: topic.len(),
            content_type_len: content_type.len(),
            origin,
        }
    }

    /// The `len` bytes at `start` of the text part, as the `&str` they were copied from.
    fn text(&self, start: usize, len: usize) -> &str {
        // SAFETY: `new` copied the three texts from `&str`s, each on its own range, and
        // `data` is never changed after.
        unsafe { std::str::from_utf8_unchecked(&self.data.as_slice()[start..start + len]) }
    }

    /// Who published it: a container's name, `bridge:NAME` for a bridge's imports, or
    /// `shoal`.
    pub fn publisher(&self) -> &str {
        self.text(0, self.publisher_len)
    }

    pub fn topic(&self) -> &str {
        self.text(self.publisher_len, self.topic_len)
    }

    pub fn content_type(&self) -> &str {
        self.text(self.publisher_len + self.topic_len, self.content_type_len)
    }

    pub fn payload(&self) -> &[u8] {
        &self.data.as_slice()[self.publisher_len + self.topic_len + self.content_type_len..]
    }
}

/// Bytes a message keeps inside itself rather than in an allocation of their own.
pub const INLINE: usize = 64;

/// A message's bytes: inline up to [`INLINE`], else on the heap.
#[derive(Debug, PartialEq, Eq)]
enum Bytes {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Bytes {
    fn concat(parts: [&[u8]; 4]) -> Bytes {
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
        let m = Message::new(Origin::Bridge, "bridge:up", "a/β", "", b"\xff\x00x");
        assert_eq!(
            (m.publisher(), m.topic(), m.content_type(), m.payload()),
            ("bridge:up", "a/β", "", &b"\xff\x00x"[..])
        );
        let empty = Message::new(Origin::Local, SHOAL_PUBLISHER, "", "text/plain", b"");
        assert_eq!(
            (empty.publisher(), empty.topic(), empty.content_type(), empty.payload()),
            ("shoal", "", "text/plain", &b""[..])
        );
        let anonymous = Message::new(Origin::Local, "", "t", "c", b"p");
        assert_eq!((anonymous.publisher(), anonymous.topic()), ("", "t"));
    }

    #[test]
    fn small_and_large_messages_alike() {
        // Exactly at the inline limit, one byte over, and far over.
        for payload_len in [INLINE - 6, INLINE - 5, 70_000] {
            let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
            let m = Message::new(Origin::Local, "pub", "a/", "b", &payload);
            assert_eq!(
                (m.publisher(), m.topic(), m.content_type(), m.payload()),
                ("pub", "a/", "b", &payload[..])
            );
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
