//! Frames: the unit of the AMQP byte stream, and the streaming parser for them.
//!
//! A frame is `type u8, channel u16, size u32, payload, 0xCE`. The parser reads the
//! 7-byte header first and checks the size against frame-max before waiting for the
//! payload, so an oversized frame is refused without buffering it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use nom::Parser;
use nom::number::streaming::{be_u8, be_u16, be_u32};

use crate::error::DecodeError;
use crate::method::Method;
use crate::properties::ContentHeader;
use crate::wire::long_len;

/// The header a 0-9-1 client sends first, and a server sends back when it refuses a
/// different one.
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";

/// The smallest frame-max a peer may negotiate.
pub const FRAME_MIN_SIZE: u32 = 4096;

/// Bytes a frame adds around its payload: 7 of header and the end octet.
pub const FRAME_OVERHEAD: usize = 8;

/// The octet that ends every frame.
pub const FRAME_END: u8 = 0xCE;

/// The most [`decode_frame`] reserves ahead for a frame still arriving (RabbitMQ's
/// default frame-max, so frames within it need one allocation).
const MAX_RESERVE: usize = 131_072;

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A method.
    Method {
        /// Channel number (0 for connection methods).
        channel: u16,
        /// The method.
        method: Method,
    },
    /// The content header following a content-bearing method.
    Header {
        /// Channel number.
        channel: u16,
        /// The header.
        header: ContentHeader,
    },
    /// A slice of content body.
    Body {
        /// Channel number.
        channel: u16,
        /// The bytes, sharing the read buffer.
        body: Bytes,
    },
    /// A heartbeat (always channel 0).
    Heartbeat,
}

impl Frame {
    /// A method frame.
    pub fn method(channel: u16, method: impl Into<Method>) -> Frame {
        Frame::Method {
            channel,
            method: method.into(),
        }
    }

    /// The channel the frame belongs to.
    pub fn channel(&self) -> u16 {
        match self {
            Frame::Method { channel, .. }
            | Frame::Header { channel, .. }
            | Frame::Body { channel, .. } => *channel,
            Frame::Heartbeat => 0,
        }
    }

    /// Appends the encoded frame to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Frame::Method { channel, method } => {
                write_frame(buf, FRAME_METHOD, *channel, |b| method.encode(b))
            }
            Frame::Header { channel, header } => {
                write_frame(buf, FRAME_HEADER, *channel, |b| header.encode(b))
            }
            Frame::Body { channel, body } => {
                write_frame(buf, FRAME_BODY, *channel, |b| b.put_slice(body))
            }
            Frame::Heartbeat => write_frame(buf, FRAME_HEARTBEAT, 0, |_| {}),
        }
    }
}

/// Writes a frame whose payload `fill` appends, patching the size in afterwards.
fn write_frame(buf: &mut BytesMut, kind: u8, channel: u16, fill: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(kind);
    buf.put_u16(channel);
    let size_at = buf.len();
    buf.put_u32(0);
    fill(buf);
    let size = long_len(buf.len() - size_at - 4).to_be_bytes();
    buf[size_at..size_at + 4].copy_from_slice(&size);
    buf.put_u8(FRAME_END);
}

/// Appends a content-bearing method, its header and its body split into frames of at
/// most `frame_max` bytes (0 = unlimited).
pub fn encode_content(
    buf: &mut BytesMut,
    channel: u16,
    method: &Method,
    header: &ContentHeader,
    body: &[u8],
    frame_max: u32,
) {
    write_frame(buf, FRAME_METHOD, channel, |b| method.encode(b));
    write_frame(buf, FRAME_HEADER, channel, |b| header.encode(b));
    encode_body(buf, channel, body, frame_max);
}

/// Like [`encode_content`], with the basic properties given as their encoded bytes
/// (flags word and properties, see [`ContentHeader::raw_properties`]).
pub fn encode_content_raw(
    buf: &mut BytesMut,
    channel: u16,
    method: &Method,
    properties: &[u8],
    body: &[u8],
    frame_max: u32,
) {
    write_frame(buf, FRAME_METHOD, channel, |b| method.encode(b));
    encode_raw_header_and_body(buf, channel, properties, body, frame_max);
}

/// basic.deliver's arguments, borrowed. A broker writes one per delivery; building an
/// owned [`crate::BasicDeliver`] would take a reference count on every string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverRef<'a> {
    /// The consumer's tag.
    pub consumer_tag: &'a str,
    /// Channel-wide sequence number for acks.
    pub delivery_tag: u64,
    /// The message was delivered before.
    pub redelivered: bool,
    /// Exchange published to.
    pub exchange: &'a str,
    /// Routing key published with.
    pub routing_key: &'a str,
}

/// Like [`encode_content_raw`] for a basic.deliver given as a [`DeliverRef`]. Its
/// strings are short strings: a longer one is cut to 255 bytes.
pub fn encode_deliver_raw(
    buf: &mut BytesMut,
    channel: u16,
    deliver: &DeliverRef<'_>,
    properties: &[u8],
    body: &[u8],
    frame_max: u32,
) {
    let short = |s: &str| s.len().min(usize::from(u8::MAX));
    let args = short(deliver.consumer_tag) + short(deliver.exchange) + short(deliver.routing_key);
    // Method frame (4 ids, 3 lengths, tag, bits), header frame (12 fixed), one body frame.
    buf.reserve(3 * FRAME_OVERHEAD + 16 + args + 12 + properties.len() + body.len());
    write_frame(buf, FRAME_METHOD, channel, |b| {
        let put_short = |b: &mut BytesMut, s: &str| {
            let s = &s.as_bytes()[..short(s)];
            b.put_u8(s.len() as u8);
            b.put_slice(s);
        };
        b.put_u16(crate::properties::BASIC_CLASS_ID);
        b.put_u16(crate::method::BasicDeliver::METHOD_ID);
        put_short(b, deliver.consumer_tag);
        b.put_u64(deliver.delivery_tag);
        b.put_u8(u8::from(deliver.redelivered));
        put_short(b, deliver.exchange);
        put_short(b, deliver.routing_key);
    });
    encode_raw_header_and_body(buf, channel, properties, body, frame_max);
}

/// A content header with already-encoded properties, then the body frames.
fn encode_raw_header_and_body(
    buf: &mut BytesMut,
    channel: u16,
    properties: &[u8],
    body: &[u8],
    frame_max: u32,
) {
    write_frame(buf, FRAME_HEADER, channel, |b| {
        b.put_u16(crate::properties::BASIC_CLASS_ID);
        b.put_u16(0);
        b.put_u64(body.len() as u64);
        b.put_slice(properties);
    });
    encode_body(buf, channel, body, frame_max);
}

fn encode_body(buf: &mut BytesMut, channel: u16, body: &[u8], frame_max: u32) {
    let chunk = match frame_max {
        0 => body.len().max(1),
        max => (max as usize).saturating_sub(FRAME_OVERHEAD).max(1),
    };
    buf.reserve(body.len() + body.len() / chunk * FRAME_OVERHEAD + FRAME_OVERHEAD);
    for piece in body.chunks(chunk) {
        write_frame(buf, FRAME_BODY, channel, |b| b.put_slice(piece));
    }
}

/// Why a frame could not be decoded, with the method ids when the failure was inside a
/// method's arguments (for the close frame's class-id and method-id).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct FrameError {
    /// What went wrong.
    pub error: DecodeError,
    /// Channel of the frame.
    pub channel: u16,
    /// Class id of the method being decoded, or 0.
    pub class_id: u16,
    /// Method id of the method being decoded, or 0.
    pub method_id: u16,
}

impl From<DecodeError> for FrameError {
    fn from(error: DecodeError) -> Self {
        FrameError {
            error,
            channel: 0,
            class_id: 0,
            method_id: 0,
        }
    }
}

/// Parses one frame from the front of `src`, consuming it. `Ok(None)` means more bytes
/// are needed; `frame_max` of 0 means no limit.
pub fn decode_frame(src: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>, FrameError> {
    let header = (be_u8::<&[u8], ()>, be_u16, be_u32).parse(&src[..]);
    let (kind, channel, size) = match header {
        Ok((_, header)) => header,
        Err(_) => return Ok(None), // streaming parsers only fail as Incomplete here
    };
    let total = u64::from(size) + FRAME_OVERHEAD as u64;
    if frame_max != 0 && total > u64::from(frame_max) {
        return Err(DecodeError::FrameTooLarge {
            size: total,
            max: frame_max,
        }
        .into());
    }
    // Fits in usize: bounded by frame_max, or by u32 + 8 when unlimited on 64-bit.
    let total = usize::try_from(total).map_err(|_| DecodeError::FrameTooLarge {
        size: total,
        max: frame_max,
    })?;
    if src.len() < total {
        // The size is only the peer's claim: without a frame-max, reserving all of it
        // would let 7 bytes allocate 4 GiB. Past the cap the buffer grows as bytes arrive.
        src.reserve((total - src.len()).min(MAX_RESERVE));
        return Ok(None);
    }
    // Trimmed in place before freezing: slicing a frozen frame would cost a
    // reference-count increment and decrement per frame.
    let mut payload = src.split_to(total);
    let end = payload[total - 1];
    if end != FRAME_END {
        return Err(DecodeError::BadFrameEnd(end).into());
    }
    payload.truncate(total - 1);
    payload.advance(7);
    let payload = payload.freeze();
    let in_channel = |error: DecodeError| FrameError {
        error,
        channel,
        class_id: 0,
        method_id: 0,
    };
    let frame = match kind {
        FRAME_METHOD => match Method::decode(&payload) {
            Ok(method) => Frame::Method { channel, method },
            Err(error) => {
                let (class_id, method_id) = Method::peek_ids(&payload);
                return Err(FrameError {
                    error,
                    channel,
                    class_id,
                    method_id,
                });
            }
        },
        FRAME_HEADER => Frame::Header {
            channel,
            header: ContentHeader::decode(&payload).map_err(in_channel)?,
        },
        FRAME_BODY => Frame::Body {
            channel,
            body: payload,
        },
        FRAME_HEARTBEAT if channel == 0 => Frame::Heartbeat,
        FRAME_HEARTBEAT => return Err(in_channel(DecodeError::HeartbeatOnChannel(channel))),
        other => return Err(in_channel(DecodeError::UnknownFrameType(other))),
    };
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::{BasicPublish, ChannelOpen};
    use crate::properties::BasicProperties;
    use crate::reply_code::ReplyCode;

    #[test]
    fn heartbeat_is_eight_bytes() {
        let mut buf = BytesMut::new();
        Frame::Heartbeat.encode(&mut buf);
        assert_eq!(&buf[..], &[8, 0, 0, 0, 0, 0, 0, 0xCE]);
        assert_eq!(decode_frame(&mut buf, 4096), Ok(Some(Frame::Heartbeat)));
        assert!(buf.is_empty());
    }

    #[test]
    fn every_strict_prefix_needs_more() {
        let mut full = BytesMut::new();
        Frame::method(3, ChannelOpen::default()).encode(&mut full);
        for len in 0..full.len() {
            let mut part = BytesMut::from(&full[..len]);
            assert_eq!(decode_frame(&mut part, 4096), Ok(None), "prefix {len}");
        }
    }

    #[test]
    fn oversized_frame_is_refused_from_its_header_alone() {
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0x10, 0][..]);
        let err = decode_frame(&mut buf, 4096).err();
        assert_eq!(
            err.map(|e| e.error),
            Some(DecodeError::FrameTooLarge {
                size: 4104,
                max: 4096
            })
        );
    }

    #[test]
    fn bad_frame_end_is_a_frame_error() {
        let mut buf = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 0, 0xCD][..]);
        let err = decode_frame(&mut buf, 0).err();
        assert_eq!(
            err.as_ref().map(|e| e.error.reply_code()),
            Some(ReplyCode::FrameError)
        );
    }

    #[test]
    fn unknown_method_reports_its_ids() {
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 4, 0x03, 0xE7, 0, 1, 0xCE][..]);
        let err = decode_frame(&mut buf, 0).err();
        assert_eq!(
            err.map(|e| (e.class_id, e.method_id, e.channel)),
            Some((999, 1, 1))
        );
    }

    #[test]
    fn a_borrowed_deliver_cuts_long_strings_to_a_short_string() {
        let long = "k".repeat(300);
        let deliver = DeliverRef {
            consumer_tag: "c",
            delivery_tag: 7,
            redelivered: true,
            exchange: "",
            routing_key: &long,
        };
        let mut buf = BytesMut::new();
        encode_deliver_raw(&mut buf, 1, &deliver, &[0, 0], b"hi", 0);
        let seen = match decode_frame(&mut buf, 0) {
            Ok(Some(Frame::Method {
                method: Method::BasicDeliver(m),
                ..
            })) => Some((m.routing_key.len(), m.delivery_tag, m.redelivered)),
            _ => None,
        };
        assert_eq!(seen, Some((255, 7, true)));
    }

    #[test]
    fn content_is_split_at_frame_max() {
        let body = vec![7u8; 10_000];
        let method = Method::from(BasicPublish::default());
        let header = ContentHeader::new(body.len() as u64, BasicProperties::default());
        let mut buf = BytesMut::new();
        encode_content(&mut buf, 1, &method, &header, &body, 4096);
        let mut frames = Vec::new();
        while let Ok(Some(frame)) = decode_frame(&mut buf, 4096) {
            frames.push(frame);
        }
        assert!(buf.is_empty());
        let sizes: Vec<usize> = frames
            .iter()
            .filter_map(|f| match f {
                Frame::Body { body, .. } => Some(body.len()),
                _ => None,
            })
            .collect();
        assert_eq!(sizes, [4088, 4088, 1824]);
    }
}
