//! The tokio-util `Decoder`/`Encoder` pair over [`decode_frame`] and [`Frame::encode`].

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::frame::{Frame, FrameError, decode_frame};

/// Frames in and out of a byte stream, enforcing the negotiated frame-max on input.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    frame_max: u32,
}

impl FrameCodec {
    /// A codec that refuses frames larger than `frame_max` bytes (0 = no limit).
    pub fn new(frame_max: u32) -> Self {
        FrameCodec { frame_max }
    }

    /// Changes the limit, once tune-ok has settled it.
    pub fn set_frame_max(&mut self, frame_max: u32) {
        self.frame_max = frame_max;
    }

    /// The limit in force.
    pub fn frame_max(&self) -> u32 {
        self.frame_max
    }
}

/// An I/O failure or a frame that could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The peer sent a bad frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(decode_frame(src, self.frame_max)?)
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        frame.encode(dst);
        Ok(())
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        frame.encode(dst);
        Ok(())
    }
}
