//! Decoding errors. Each knows the reply code the peer should be closed with.

use crate::reply_code::ReplyCode;

/// Why bytes could not be decoded. Incomplete input is not an error: the decoder
/// returns `Ok(None)` and waits for more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A frame header announced more than the negotiated frame-max.
    #[error("frame of {size} bytes exceeds frame-max {max}")]
    FrameTooLarge {
        /// The whole frame's size, 8 bytes of overhead included.
        size: u64,
        /// The negotiated limit.
        max: u32,
    },
    /// The byte after the payload was not 0xCE.
    #[error("frame end byte is {0:#04x}, expected 0xce")]
    BadFrameEnd(u8),
    /// A frame type other than method, header, body or heartbeat.
    #[error("unknown frame type {0}")]
    UnknownFrameType(u8),
    /// A heartbeat on a channel other than 0.
    #[error("heartbeat frame on channel {0}")]
    HeartbeatOnChannel(u16),
    /// A method id this codec does not know.
    #[error("unknown method {class_id}.{method_id}")]
    UnknownMethod {
        /// The class id read.
        class_id: u16,
        /// The method id read.
        method_id: u16,
    },
    /// A payload ended before all its fields were read.
    #[error("{0} truncated")]
    Truncated(&'static str),
    /// A payload had bytes left over after its last field.
    #[error("{0} has trailing bytes")]
    TrailingBytes(&'static str),
    /// A field-table value with an unknown type letter.
    #[error("unknown field value type {0:?}")]
    UnknownFieldType(char),
    /// A short string that is not UTF-8.
    #[error("short string is not valid UTF-8")]
    InvalidUtf8,
    /// Bytes offered as a short string are longer than 255.
    #[error("short string of {0} bytes exceeds 255")]
    ShortStringTooLong(usize),
    /// A content header's property flags set a reserved bit or a continuation word.
    #[error("invalid property flags {0:#06x}")]
    InvalidPropertyFlags(u16),
    /// Field tables nested deeper than the decoder allows.
    #[error("field tables nested too deep")]
    TooDeep,
}

impl DecodeError {
    /// The reply code to close the connection with.
    pub fn reply_code(&self) -> ReplyCode {
        match self {
            // RabbitMQ answers arguments it cannot decode with 501, not the spec's 502.
            DecodeError::FrameTooLarge { .. }
            | DecodeError::BadFrameEnd(_)
            | DecodeError::UnknownFrameType(_)
            | DecodeError::Truncated(_)
            | DecodeError::TrailingBytes(_) => ReplyCode::FrameError,
            DecodeError::HeartbeatOnChannel(_) => ReplyCode::UnexpectedFrame,
            // RabbitMQ drops the socket without a close here (its connection process
            // crashes); a close with 503 tells the client why.
            DecodeError::UnknownMethod { .. } => ReplyCode::CommandInvalid,
            DecodeError::UnknownFieldType(_)
            | DecodeError::InvalidUtf8
            | DecodeError::ShortStringTooLong(_)
            | DecodeError::InvalidPropertyFlags(_)
            | DecodeError::TooDeep => ReplyCode::SyntaxError,
        }
    }
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A short string longer than 255 bytes.
    #[error("short string of {0} bytes exceeds 255")]
    ShortStringTooLong(usize),
    /// A frame larger than the peer's frame-max.
    #[error("frame of {size} bytes exceeds frame-max {max}")]
    FrameTooLarge {
        /// The frame size.
        size: usize,
        /// The limit.
        max: u32,
    },
}

impl From<EncodeError> for std::io::Error {
    fn from(e: EncodeError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}
