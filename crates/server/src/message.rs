//! A published message as the broker keeps it.
//!
//! Exchange, routing key and encoded properties sit together in one small allocation,
//! and a body of up to [`INLINE_BODY`] bytes is copied in after them. A queued message
//! thus pins no read buffer (a body sliced from the socket buffer would keep that
//! whole buffer alive) and costs one `Bytes` handle plus one allocation. Larger bodies
//! stay zero-copy slices: for them the copy would cost more than the frame overhead it
//! frees. Clones share both buffers, so fan-out copies nothing.
//!
//! Layout of `head`: `u8 len, exchange, u8 len, routing key, u32 len, properties,
//! [inline body]`. Only the broker writes it, through [`Message::new`].

use bytes::{BufMut, Bytes, BytesMut};
use warren_codec::{BasicProperties, DecodeError, ShortStr};

/// Bodies up to this size are stored next to the message head.
pub(crate) const INLINE_BODY: usize = 4096;

/// The head of a message: its layout is in the module documentation.
fn head(exchange: &str, routing_key: &str, properties: &[u8], body: &[u8]) -> Bytes {
    let (exchange, routing_key) = (short(exchange), short(routing_key));
    let mut head = BytesMut::with_capacity(
        6 + exchange.len() + routing_key.len() + properties.len() + body.len(),
    );
    // Cut to 255 bytes above; properties fit a frame, far below 4 GiB.
    head.put_u8(exchange.len() as u8);
    head.put_slice(exchange);
    head.put_u8(routing_key.len() as u8);
    head.put_slice(routing_key);
    head.put_u32(properties.len() as u32);
    head.put_slice(properties);
    head.put_slice(body);
    head.freeze()
}

/// A short string's bytes, cut to 255.
fn short(s: &str) -> &[u8] {
    &s.as_bytes()[..s.len().min(usize::from(u8::MAX))]
}

/// An immutable message; cloning shares it.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    head: Bytes,
    /// A body longer than [`INLINE_BODY`]. Boxed: most messages are small, and a queue
    /// slot stays 8 bytes smaller than with a second inline handle.
    large_body: Option<Box<Bytes>>,
}

impl Message {
    /// A message with no names, properties or body, allocating nothing: what a queue
    /// leaves in the place of a message it took out of the middle.
    pub(crate) fn empty() -> Message {
        // Lengths of exchange, routing key (u8) and properties (u32), all zero.
        const EMPTY_HEAD: [u8; 6] = [0; 6];
        Message {
            head: Bytes::from_static(&EMPTY_HEAD),
            large_body: None,
        }
    }

    /// The `priority` property (0 when absent), read without decoding the properties.
    pub(crate) fn priority(&self) -> u8 {
        BasicProperties::raw_priority(self.properties()).unwrap_or(0)
    }

    /// Whether the publisher asked for it to survive a restart (`delivery-mode` 2).
    pub(crate) fn is_persistent(&self) -> bool {
        BasicProperties::raw_delivery_mode(self.properties()) == Some(2)
    }

    /// The bytes the store keeps: the head, then a large body.
    pub(crate) fn stored_parts(&self) -> [&[u8]; 2] {
        [
            &self.head,
            self.large_body.as_deref().map_or(&[], |b| &b[..]),
        ]
    }

    /// The message back from what [`Message::stored_parts`] wrote. A body small enough
    /// to be inline shares the payload's buffer as the head; a larger one is a slice.
    pub(crate) fn from_stored(payload: Bytes) -> Message {
        let message = Message {
            head: payload,
            large_body: None,
        };
        let body_at = message.properties_range().1.min(message.head.len());
        if message.head.len() - body_at <= INLINE_BODY {
            return message;
        }
        let head = message.head.slice(..body_at);
        let body = message.head.slice(body_at..);
        Message {
            head,
            large_body: Some(Box::new(body)),
        }
    }

    /// A message from its parts; a body over [`INLINE_BODY`] bytes stays a shared slice.
    pub(crate) fn new(
        exchange: &ShortStr,
        routing_key: &ShortStr,
        properties: &[u8],
        body: Bytes,
    ) -> Message {
        if body.len() <= INLINE_BODY {
            return Message::inline(exchange, routing_key, properties, &body);
        }
        Message {
            head: head(exchange, routing_key, properties, &[]),
            large_body: Some(Box::new(body)),
        }
    }

    /// A message whose parts are all copied in: for a body of at most [`INLINE_BODY`]
    /// bytes. Exchange and routing key are short strings (at most 255 bytes).
    pub(crate) fn inline(
        exchange: &str,
        routing_key: &str,
        properties: &[u8],
        body: &[u8],
    ) -> Message {
        Message {
            head: head(exchange, routing_key, properties, body),
            large_body: None,
        }
    }

    fn exchange_range(&self) -> (usize, usize) {
        (1, 1 + usize::from(self.head.first().copied().unwrap_or(0)))
    }

    fn routing_key_range(&self) -> (usize, usize) {
        let start = self.exchange_range().1 + 1;
        let len = self.head.get(start - 1).copied().unwrap_or(0);
        (start, start + usize::from(len))
    }

    fn properties_range(&self) -> (usize, usize) {
        let at = self.routing_key_range().1;
        let len = self
            .head
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes);
        (at + 4, at + 4 + len as usize)
    }

    fn short_str(&self, (start, end): (usize, usize)) -> ShortStr {
        // Written from a ShortStr by `new`, so it is valid; never fails in practice.
        ShortStr::from_bytes(self.head.slice(start.min(end)..end.min(self.head.len())))
            .unwrap_or_default()
    }

    fn str_at(&self, (start, end): (usize, usize)) -> &str {
        // Written from a ShortStr by `new`, so it is valid; never fails in practice.
        let bytes = self.head.get(start.min(end)..end).unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// The exchange it was published to, borrowed.
    pub(crate) fn exchange_str(&self) -> &str {
        self.str_at(self.exchange_range())
    }

    /// The routing key it was published with, borrowed.
    pub(crate) fn routing_key_str(&self) -> &str {
        self.str_at(self.routing_key_range())
    }

    /// The exchange it was published to (shares the message's buffer).
    pub(crate) fn exchange(&self) -> ShortStr {
        self.short_str(self.exchange_range())
    }

    /// The routing key it was published with (shares the message's buffer).
    pub(crate) fn routing_key(&self) -> ShortStr {
        self.short_str(self.routing_key_range())
    }

    /// Property flags and properties, as encoded in the content header.
    pub(crate) fn properties(&self) -> &[u8] {
        let (start, end) = self.properties_range();
        self.head.get(start..end).unwrap_or_default()
    }

    /// The properties, decoded.
    pub(crate) fn decoded_properties(&self) -> Result<BasicProperties, DecodeError> {
        let (start, end) = self.properties_range();
        BasicProperties::decode(&self.head.slice(start.min(end)..end.min(self.head.len())))
    }

    /// The same body under another exchange, routing key and properties. A large body
    /// is shared, not copied.
    pub(crate) fn rewritten(
        &self,
        exchange: &ShortStr,
        routing_key: &ShortStr,
        properties: &[u8],
    ) -> Message {
        let body = match &self.large_body {
            Some(body) => Bytes::clone(body),
            None => {
                let start = self.properties_range().1.min(self.head.len());
                self.head.slice(start..)
            }
        };
        Message::new(exchange, routing_key, properties, body)
    }

    /// Bytes of buffers this message holds (shared between the queues that hold it).
    pub(crate) fn size(&self) -> usize {
        self.head.len() + self.large_body.as_ref().map_or(0, |b| b.len())
    }

    /// The body.
    pub(crate) fn body(&self) -> &[u8] {
        match &self.large_body {
            Some(body) => body,
            None => {
                let start = self.properties_range().1;
                self.head.get(start..).unwrap_or_default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_read_back_inline_and_separate() {
        let small = Message::new(
            &"ex".into(),
            &"rk".into(),
            &[0x90, 0],
            Bytes::from_static(b"hi"),
        );
        assert_eq!(small.exchange(), "ex");
        assert_eq!(small.routing_key(), "rk");
        assert_eq!(small.properties(), &[0x90, 0]);
        assert_eq!(small.body(), b"hi");

        let big = Bytes::from(vec![7u8; INLINE_BODY + 1]);
        let large = Message::new(&"".into(), &"q".into(), &[0, 0], big.clone());
        assert_eq!(large.exchange(), "");
        assert_eq!(large.routing_key(), "q");
        assert_eq!(large.properties(), &[0, 0]);
        assert_eq!(large.body(), &big[..]);
        assert_eq!(large.head.len(), 1 + 1 + 1 + 4 + 2);
    }

    #[test]
    fn stored_messages_read_back() {
        for size in [0, 16, INLINE_BODY, INLINE_BODY + 1] {
            let body = Bytes::from(vec![3u8; size]);
            let m = Message::new(&"ex".into(), &"rk".into(), &[0x10, 0, 2], body);
            assert!(m.is_persistent());
            let stored: Vec<u8> = m.stored_parts().concat();
            let back = Message::from_stored(Bytes::from(stored));
            assert_eq!(
                (back.exchange(), back.routing_key()),
                ("ex".into(), "rk".into())
            );
            assert_eq!((back.properties(), back.body()), (m.properties(), m.body()));
            assert_eq!(back.large_body.is_some(), size > INLINE_BODY);
        }
    }

    #[test]
    fn the_empty_message_has_nothing() {
        let empty = Message::empty();
        assert_eq!(
            (empty.exchange(), empty.routing_key()),
            ("".into(), "".into())
        );
        assert_eq!((empty.properties(), empty.body()), (&[][..], &[][..]));
        assert_eq!(empty.priority(), 0);
    }

    #[test]
    fn a_queued_message_is_small() {
        // The handles a queue keeps per message; the head's allocation adds the names,
        // properties and inline body plus 6 bytes of lengths.
        assert_eq!(std::mem::size_of::<Message>(), 40);
    }
}
