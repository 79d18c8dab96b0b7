//! The read side of a connection: one buffer filled by socket reads and emptied by
//! the codec, so the connection can handle every frame one read brought before it
//! flushes (a `FramedRead` hides where one read's frames end).

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio_util::codec::Decoder;
use warren_codec::{FRAME_OVERHEAD, Frame, FrameCodec};

use super::error::ConnectionError;

/// The buffer allocated when the free space runs low: a read takes what is free, so a
/// batch holds hundreds of small messages or a few 64 KiB bodies.
const READ_CHUNK: usize = 256 * 1024;
/// Below this much free space a new buffer is allocated. Decoded frames share the
/// old one, so the partial frame at its end is copied over: waiting until little is
/// left makes that once per [`READ_CHUNK`], not once per read.
const MIN_FREE: usize = 16 * 1024;

/// A socket's read half and the bytes read from it but not yet decoded.
pub(super) struct FrameReader {
    socket: OwnedReadHalf,
    buf: BytesMut,
    codec: FrameCodec,
}

impl FrameReader {
    /// A reader that refuses frames larger than `frame_max` until told otherwise.
    pub(super) fn new(socket: OwnedReadHalf, frame_max: u32) -> Self {
        FrameReader {
            socket,
            buf: BytesMut::with_capacity(READ_CHUNK),
            codec: FrameCodec::new(frame_max),
        }
    }

    /// Enforces the frame-max settled by tune-ok.
    pub(super) fn set_frame_max(&mut self, frame_max: u32) {
        self.codec.set_frame_max(frame_max);
    }

    /// Reads once more from the socket; false when the peer has closed it.
    pub(super) async fn fill(&mut self) -> std::io::Result<bool> {
        if self.buf.capacity() - self.buf.len() < MIN_FREE {
            self.buf.reserve(READ_CHUNK);
        }
        Ok(self.socket.read_buf(&mut self.buf).await? > 0)
    }

    /// The next frame already read, if a whole one is buffered. Fails (with the
    /// codec's reply code) on a frame that does not decode.
    pub(super) fn buffered(&mut self) -> Result<Option<Frame>, ConnectionError> {
        self.make_room();
        Ok(self.codec.decode(&mut self.buf)?)
    }

    /// Makes room for the rest of a frame that has begun, with [`READ_CHUNK`] to
    /// spare. The codec would reserve just the frame's rest, and the next `fill`
    /// would then move the partial frame a second time.
    fn make_room(&mut self) {
        let Some(size) = self.buf.first_chunk::<7>() else {
            return;
        };
        let size = u32::from_be_bytes([size[3], size[4], size[5], size[6]]);
        // A size beyond frame-max is the codec's to refuse, not ours to allocate.
        if size >= self.codec.frame_max() {
            return;
        }
        let missing = (size as usize + FRAME_OVERHEAD).saturating_sub(self.buf.len());
        if missing > self.buf.capacity() - self.buf.len() {
            self.buf.reserve(missing.max(READ_CHUNK));
        }
    }

    /// The next frame, reading as needed. Fails on end of input too.
    pub(super) async fn next(&mut self) -> Result<Frame, ConnectionError> {
        loop {
            if let Some(frame) = self.buffered()? {
                return Ok(frame);
            }
            if !self.fill().await? {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
        }
    }

    /// The 8 bytes a client sends before any frame.
    pub(super) async fn protocol_header(&mut self) -> std::io::Result<[u8; 8]> {
        while self.buf.len() < 8 {
            if !self.fill().await? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        let mut header = [0u8; 8];
        header.copy_from_slice(&self.buf.split_to(8));
        Ok(header)
    }
}
