//! The connection's write buffer: frames are encoded here and flushed in batches.

use bytes::BytesMut;
use warren_codec::{ContentHeader, Frame, Method, encode_content};

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
            buf: BytesMut::with_capacity(16 * 1024),
            frame_max,
        }
    }

    /// Appends a method frame.
    pub(crate) fn method(&mut self, channel: u16, method: impl Into<Method>) {
        Frame::method(channel, method).encode(&mut self.buf);
    }

    /// Appends a content-bearing method with its header and body frames.
    pub(crate) fn content(
        &mut self,
        channel: u16,
        method: &Method,
        header: &ContentHeader,
        body: &[u8],
    ) {
        encode_content(&mut self.buf, channel, method, header, body, self.frame_max);
    }

    pub(crate) fn heartbeat(&mut self) {
        Frame::Heartbeat.encode(&mut self.buf);
    }

    pub(crate) fn is_full(&self) -> bool {
        self.buf.len() >= HIGH_WATER
    }
}
