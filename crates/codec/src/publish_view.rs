//! A whole basic.publish read in place: the method frame, its content header and its
//! one body frame, borrowed from the read buffer.
//!
//! Most publishes are small and arrive whole. Decoding them frame by frame slices the
//! buffer once per frame and per string (a reference count each), decodes the
//! properties into a heap-allocated struct and moves each large [`crate::Frame`]
//! through the content assembler, only for a broker to copy the parts into its own
//! message. [`PublishView::peek`] recognises only the plain case; anything else (a
//! content in several body frames, properties a broker must look at, a frame still
//! arriving, frames of other channels in between, anything malformed) is left to
//! [`crate::decode_frame`], which also reports the errors.

use crate::frame::FRAME_END;
use crate::method::BasicPublish;
use crate::properties::{BASIC_CLASS_ID, INVALID_BITS, LAYOUT, Width};

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;

/// A basic.publish and its whole content, borrowed from the buffer it was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishView<'a> {
    /// The channel of all three frames.
    pub channel: u16,
    /// Exchange to publish to.
    pub exchange: &'a str,
    /// Routing key.
    pub routing_key: &'a str,
    /// Return the message if it cannot be routed.
    pub mandatory: bool,
    /// The `immediate` flag (RabbitMQ refuses it).
    pub immediate: bool,
    /// The properties as encoded on the wire: flags word, then the present values.
    /// None of headers, reply-to, expiration or user-id is set.
    pub properties: &'a [u8],
    /// The body.
    pub body: &'a [u8],
    /// Bytes the frames take at the front of the buffer.
    pub len: usize,
}

/// Properties a broker must read to accept a publish: user-id is checked, expiration
/// and reply-to are acted on, headers may route. A publish carrying any of them is
/// left to the general path.
const INSPECTED: u16 = (1 << 13) | (1 << 9) | (1 << 8) | (1 << 4);

impl<'a> PublishView<'a> {
    /// The publish at the front of `buf`, if the buffer starts with a whole one as
    /// described in the module documentation; frames over `frame_max` (0 = no limit)
    /// are left to the general path too. Consumes nothing.
    pub fn peek(buf: &'a [u8], frame_max: u32) -> Option<PublishView<'a>> {
        let (kind, channel, method, mut end) = frame_at(buf, 0, frame_max)?;
        if kind != FRAME_METHOD {
            return None;
        }
        let mut r = Cursor(method);
        if (r.u16()?, r.u16()?) != (BasicPublish::CLASS_ID, BasicPublish::METHOD_ID) {
            return None;
        }
        let _ticket = r.u16()?;
        let (exchange, routing_key) = (r.short_str()?, r.short_str()?);
        let bits = r.u8()?;
        r.finish()?;
        let (kind, header_channel, header, header_end) = frame_at(buf, end, frame_max)?;
        if kind != FRAME_HEADER || header_channel != channel {
            return None;
        }
        end = header_end;
        let mut r = Cursor(header);
        let (class_id, _weight, body_size) = (r.u16()?, r.u16()?, r.u64()?);
        if class_id != BASIC_CLASS_ID {
            return None;
        }
        let properties = r.0;
        check_properties(properties)?;
        let body: &[u8] = if body_size == 0 {
            &[]
        } else {
            let (kind, body_channel, body, body_end) = frame_at(buf, end, frame_max)?;
            if kind != FRAME_BODY || body_channel != channel || body.len() as u64 != body_size {
                return None;
            }
            end = body_end;
            body
        };
        Some(PublishView {
            channel,
            exchange,
            routing_key,
            mandatory: bits & 1 != 0,
            immediate: bits & 2 != 0,
            properties,
            body,
            len: end,
        })
    }
}

/// The frame starting at `at`: its type, channel, payload and where it ends.
fn frame_at(buf: &[u8], at: usize, frame_max: u32) -> Option<(u8, u16, &[u8], usize)> {
    let header = buf.get(at..)?.first_chunk::<7>()?;
    let channel = u16::from_be_bytes([header[1], header[2]]);
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
    let total = usize::try_from(size).ok()?.checked_add(8)?;
    if frame_max != 0 && total > usize::try_from(frame_max).ok()? {
        return None;
    }
    let end = at.checked_add(total)?;
    let frame = buf.get(at..end)?;
    let (&last, framed) = frame.split_last()?;
    (last == FRAME_END).then_some((header[0], channel, &framed[7..], end))
}

/// Checks properties as `BasicProperties::decode` would, without decoding them;
/// None also when an inspected property is present.
fn check_properties(raw: &[u8]) -> Option<()> {
    let mut r = Cursor(raw);
    let flags = r.u16()?;
    if flags & (INSPECTED | INVALID_BITS) != 0 {
        return None;
    }
    for (bit, width) in LAYOUT {
        if flags & bit == 0 {
            continue;
        }
        match width {
            Width::ShortStr => r.short_str().map(drop)?,
            Width::Octet => r.u8().map(drop)?,
            Width::LongLong => r.u64().map(drop)?,
            // Headers are inspected: never here.
            Width::Table => return None,
        }
    }
    r.finish()
}

/// Reads big-endian values off the front of a slice.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(taken)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn short_str(&mut self) -> Option<&'a str> {
        let len = self.u8()?;
        std::str::from_utf8(self.take(usize::from(len))?).ok()
    }

    fn finish(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::frame::{decode_frame, encode_content};
    use crate::method::Method;
    use crate::properties::{BasicProperties, ContentHeader};

    fn publish(properties: BasicProperties, body: &[u8], frame_max: u32) -> BytesMut {
        let method = Method::from(BasicPublish {
            exchange: "x".into(),
            routing_key: "key".into(),
            mandatory: true,
            ..Default::default()
        });
        let header = ContentHeader::new(body.len() as u64, properties);
        let mut buf = BytesMut::new();
        encode_content(&mut buf, 3, &method, &header, body, frame_max);
        buf
    }

    #[test]
    fn a_whole_publish_is_seen_with_all_its_parts() {
        let properties = BasicProperties {
            delivery_mode: Some(2),
            message_id: Some("m".into()),
            ..Default::default()
        };
        let buf = publish(properties, b"hello", 0);
        let view = PublishView::peek(&buf, 0);
        assert_eq!(
            view.map(|v| (v.channel, v.exchange, v.routing_key, v.body, v.len)),
            Some((3, "x", "key", &b"hello"[..], buf.len()))
        );
        assert_eq!(
            view.map(|v| (v.mandatory, v.immediate)),
            Some((true, false))
        );
        let delivery_mode = view.and_then(|v| BasicProperties::raw_delivery_mode(v.properties));
        assert_eq!(delivery_mode, Some(2));
    }

    #[test]
    fn anything_but_the_plain_case_is_left_to_the_frame_decoder() {
        let whole = publish(BasicProperties::default(), b"hello", 0);
        for len in 0..whole.len() {
            assert_eq!(PublishView::peek(&whole[..len], 0), None, "prefix {len}");
        }
        let inspected = BasicProperties {
            expiration: Some("5".into()),
            ..Default::default()
        };
        assert_eq!(PublishView::peek(&publish(inspected, b"a", 0), 0), None);
        // A body over two frames.
        let split = publish(BasicProperties::default(), &[1; 100], 64);
        assert_eq!(PublishView::peek(&split, 64), None);
        // A frame over frame-max.
        assert_eq!(PublishView::peek(&whole, 16), None);
    }

    #[test]
    fn an_empty_body_needs_no_body_frame() {
        let buf = publish(BasicProperties::default(), b"", 0);
        let view = PublishView::peek(&buf, 0);
        assert_eq!(view.map(|v| (v.body, v.len)), Some((&b""[..], buf.len())));
        let mut frames = buf.clone();
        let mut count = 0;
        while let Ok(Some(_)) = decode_frame(&mut frames, 0) {
            count += 1;
        }
        assert_eq!(count, 2);
    }
}
