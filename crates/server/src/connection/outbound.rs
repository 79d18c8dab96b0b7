//! The connection's write buffer: frames are encoded here and flushed in batches.

use bytes::BytesMut;
use warren_codec::{DeliverRef, Frame, Method, encode_content_raw, encode_deliver_raw};

use crate::message::Message;

/// Encoded frames waiting for the socket, and the frame-max they are split at.
pub(crate) struct Outbound {
    pub(crate) buf: BytesMut,
    frame_max: u32,
}

/// Past this many buffered bytes the connection stops taking new work until the socket
/// drains: a client that does not read cannot make the broker buffer without bound.
pub(crate) const HIGH_WATER: usize = 1 << 20;

impl Outbound {
    pub(crate) fn new(frame_max: u32) -> Self {
        Outbound {
            buf: BytesMut::new(),
            frame_max,
        }
    }

    /// Appends a method frame.
    pub(crate) fn method(&mut self, channel: u16, method: impl Into<Method>) {
        Frame::method(channel, method).encode(&mut self.buf);
    }

    /// Appends a content-bearing method whose properties are already encoded.
    pub(crate) fn content_raw(
        &mut self,
        channel: u16,
        method: &Method,
        properties: &[u8],
        body: &[u8],
    ) {
        encode_content_raw(
            &mut self.buf,
            channel,
            method,
            properties,
            body,
            self.frame_max,
        );
    }

    /// Appends a basic.deliver of `message`.
    pub(crate) fn deliver(&mut self, channel: u16, deliver: &DeliverRef<'_>, message: &Message) {
        encode_deliver_raw(
            &mut self.buf,
            channel,
            deliver,
            message.properties(),
            message.body(),
            self.frame_max,
        );
    }

    pub(crate) fn heartbeat(&mut self) {
        Frame::Heartbeat.encode(&mut self.buf);
    }

    pub(crate) fn is_full(&self) -> bool {
        self.buf.len() >= HIGH_WATER
    }
}
