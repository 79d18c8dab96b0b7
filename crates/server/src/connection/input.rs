//! The connection's read side after the handshake: socket bytes into a buffer, frames
//! decoded from it one at a time, in place.
//!
//! The read loop takes each frame straight from [`Input::frame`] instead of through a
//! `Stream` (tokio-util's `FramedRead`): a frame is a large value, and the stream moved
//! it through several layers of futures and `Option`s per frame.

use bytes::{Buf, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio_util::codec::FramedRead;
use warren_codec::{Frame, FrameCodec, FrameError, decode_frame};

/// Bytes read per read call at least, as tokio-util's `FramedRead` reads.
const READ_SIZE: usize = 8 * 1024;

pub(crate) struct Input {
    reader: OwnedReadHalf,
    buf: BytesMut,
    frame_max: u32,
    /// The buffer may hold another whole frame: decode before reading again.
    buffered: bool,
}

impl Input {
    /// Takes over from the handshake's reader, keeping what it read ahead.
    pub(crate) fn new(frames: FramedRead<OwnedReadHalf, FrameCodec>) -> Input {
        let frame_max = frames.decoder().frame_max();
        let parts = frames.into_parts();
        Input {
            reader: parts.io,
            buffered: !parts.read_buf.is_empty(),
            buf: parts.read_buf,
            frame_max,
        }
    }

    /// Waits until there are bytes to decode: at once while the buffer may hold a
    /// frame, else after a read from the socket. False once the peer has closed it.
    /// Cancel-safe, as the read loop's `select!` needs.
    pub(crate) async fn fill(&mut self) -> std::io::Result<bool> {
        if self.buffered {
            return Ok(true);
        }
        if self.buf.len() == self.buf.capacity() {
            self.buf.reserve(READ_SIZE);
        }
        let read = self.reader.read_buf(&mut self.buf).await?;
        self.buffered = read > 0;
        Ok(read > 0)
    }

    /// Lends the buffer out, for a whole publish to be handled straight from it
    /// (see [`warren_codec::PublishView`]) while the connection is borrowed whole.
    pub(crate) fn lend(&mut self) -> BytesMut {
        std::mem::take(&mut self.buf)
    }

    /// Takes the lent buffer back, its first `consumed` bytes handled.
    pub(crate) fn give_back(&mut self, mut buf: BytesMut, consumed: usize) {
        buf.advance(consumed.min(buf.len()));
        self.buf = buf;
    }

    pub(crate) fn frame_max(&self) -> u32 {
        self.frame_max
    }

    /// The next whole frame in the buffer, if any.
    pub(crate) fn frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let frame = decode_frame(&mut self.buf, self.frame_max);
        self.buffered = matches!(frame, Ok(Some(_)));
        frame
    }
}
