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

    /// The `priority` property, read from the encoded properties without decoding
    /// them (0 when absent or unreadable).
    pub(crate) fn priority(&self) -> u8 {
        let props = self.properties();
        let Some(&[high, _]) = props.first_chunk::<2>() else {
            return 0;
        };
        // Flag bits 15..11: content-type, content-encoding, headers, delivery-mode,
        // priority; the values follow in that order.
        if high & 0x08 == 0 {
            return 0;
        }
        let mut at = 2;
        let short_str = |at: usize| props.get(at).map(|&len| at + 1 + usize::from(len));
        let table = |at: usize| {
            props
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(|b| at + 4 + u32::from_be_bytes(b) as usize)
        };
        for (bit, skip) in [(0x80, 0), (0x40, 0), (0x20, 1), (0x10, 2)] {
            if high & bit != 0 {
                let next = match skip {
                    0 => short_str(at),
                    1 => table(at),
                    _ => Some(at + 1),
                };
                let Some(next) = next else { return 0 };
                at = next;
            }
        }
        props.get(at).copied().unwrap_or(0)
    }

    /// A message from its parts; a body over [`INLINE_BODY`] bytes stays a shared slice.
    pub(crate) fn new(
        exchange: &ShortStr,
        routing_key: &ShortStr,
        properties: &[u8],
        body: Bytes,
    ) -> Message {
        let inline = body.len() <= INLINE_BODY;
        let inline_len = if inline { body.len() } else { 0 };
        let mut head = BytesMut::with_capacity(
            6 + exchange.len() + routing_key.len() + properties.len() + inline_len,
        );
        // Short strings are at most 255 bytes; properties fit a frame, far below 4 GiB.
        head.put_u8(exchange.len() as u8);
        head.put_slice(exchange.as_bytes());
        head.put_u8(routing_key.len() as u8);
        head.put_slice(routing_key.as_bytes());
        head.put_u32(properties.len() as u32);
        head.put_slice(properties);
        if inline {
            head.put_slice(&body);
        }
        Message {
            head: head.freeze(),
            large_body: (!inline).then(|| Box::new(body)),
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
    fn priority_is_read_past_the_properties_before_it() {
        use warren_codec::{BasicProperties, FieldTable};
        let mut headers = FieldTable::new();
        headers.insert("k", "v");
        for (properties, expected) in [
            (BasicProperties::default(), 0),
            (
                BasicProperties {
                    priority: Some(7),
                    ..Default::default()
                },
                7,
            ),
            (
                BasicProperties {
                    content_type: Some("text/plain".into()),
                    content_encoding: Some("gzip".into()),
                    headers: Some(headers),
                    delivery_mode: Some(2),
                    priority: Some(9),
                    correlation_id: Some("c".into()),
                    ..Default::default()
                },
                9,
            ),
        ] {
            let mut raw = bytes::BytesMut::new();
            properties.encode(&mut raw);
            let m = Message::new(&"".into(), &"q".into(), &raw, Bytes::new());
            assert_eq!(m.priority(), expected, "{properties:?}");
        }
        assert_eq!(Message::empty().body(), b"");
        assert_eq!(Message::empty().priority(), 0);
    }

    #[test]
    fn decoded_properties_read_back() {
        let properties = BasicProperties {
            content_type: Some("text/plain".into()),
            expiration: Some("100".into()),
            ..Default::default()
        };
        let mut raw = BytesMut::new();
        properties.encode(&mut raw);
        let m = Message::new(&"ex".into(), &"rk".into(), &raw, Bytes::from_static(b"hi"));
        assert_eq!(m.decoded_properties(), Ok(properties));
        let empty = Message::new(&"".into(), &"".into(), &[], Bytes::new());
        assert!(empty.decoded_properties().is_err());
    }

    #[test]
    fn rewritten_keeps_the_body_and_shares_a_large_one() {
        let small = Message::new(
            &"ex".into(),
            &"rk".into(),
            &[0, 0],
            Bytes::from_static(b"hi"),
        );
        let moved = small.rewritten(&"dlx".into(), &"dlq".into(), &[0x90, 0]);
        assert_eq!(moved.exchange(), "dlx");
        assert_eq!(moved.routing_key(), "dlq");
        assert_eq!(moved.properties(), &[0x90, 0]);
        assert_eq!(moved.body(), b"hi");
        assert_eq!(small.routing_key(), "rk");

        let big = Bytes::from(vec![7u8; INLINE_BODY + 1]);
        let large = Message::new(&"".into(), &"q".into(), &[0, 0], big.clone());
        let moved = large.rewritten(&"dlx".into(), &"q".into(), &[0, 0]);
        assert_eq!(moved.exchange(), "dlx");
        assert_eq!(moved.body().as_ptr(), big.as_ptr());
    }

    #[test]
    fn a_queued_message_is_small() {
        // The handles a queue keeps per message; the head's allocation adds the names,
        // properties and inline body plus 6 bytes of lengths.
        assert_eq!(std::mem::size_of::<Message>(), 40);
    }
}
