//! Frames on their way to the socket: appended to the connection task's write buffer,
//! which the task writes in one go per batch of commands.

use bytes::BytesMut;
use warren_codec::{ContentHeader, Frame, Method, encode_content};

/// The write buffer and what encoding needs to know about the connection.
pub(crate) struct Out<'a> {
    pub(crate) buf: &'a mut BytesMut,
    /// The negotiated frame-max: content bodies are split to fit (0 = no limit).
    pub(crate) frame_max: u32,
}

impl Out<'_> {
    /// Appends a method frame.
    pub(crate) fn method(&mut self, channel: u16, method: impl Into<Method>) {
        Frame::method(channel, method).encode(self.buf);
    }

    /// Appends a content-bearing method, its header and its body frames.
    pub(crate) fn content(
        &mut self,
        channel: u16,
        method: &Method,
        header: &ContentHeader,
        body: &[u8],
    ) {
        // One copy of the body into the write buffer, so a batch leaves in one write; a
        // vectored write of the caller's `Bytes` would save it for large bodies.
        encode_content(self.buf, channel, method, header, body, self.frame_max);
    }
}
