//! Why a null-broker connection ended early.

use warren_codec::{CodecError, ConnectionClose, ReplyCode};

/// Why a connection ended other than by the client's connection.close.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectionError {
    /// The socket failed or closed mid-frame.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The client spoke another protocol; ours was written back.
    #[error("the client sent another protocol header")]
    WrongProtocol,
    /// The connection's writer task has ended (its socket failed).
    #[error("the connection's writer has stopped")]
    WriterGone,
    /// The client broke the protocol: the connection is closed with this reply.
    #[error("{}", code.text(text))]
    Protocol {
        /// The reply code sent in connection.close.
        code: ReplyCode,
        /// What went wrong.
        text: String,
        /// Class of the offending method, or 0.
        class_id: u16,
        /// The offending method, or 0.
        method_id: u16,
    },
}

impl ConnectionError {
    fn protocol(code: ReplyCode, text: impl Into<String>) -> Self {
        ConnectionError::Protocol {
            code,
            text: text.into(),
            class_id: 0,
            method_id: 0,
        }
    }

    /// 505 UNEXPECTED_FRAME: a frame the channel's state does not allow.
    pub(super) fn unexpected_frame(text: impl Into<String>) -> Self {
        Self::protocol(ReplyCode::UnexpectedFrame, text)
    }

    /// 503 COMMAND_INVALID: a method the null broker does not take here.
    pub(super) fn command_invalid(text: impl Into<String>, class_id: u16, method_id: u16) -> Self {
        ConnectionError::Protocol {
            code: ReplyCode::CommandInvalid,
            text: text.into(),
            class_id,
            method_id,
        }
    }

    /// 504 CHANNEL_ERROR: a channel that is not open, or opened twice.
    pub(super) fn channel_error(text: impl Into<String>) -> Self {
        Self::protocol(ReplyCode::ChannelError, text)
    }

    /// The connection.close telling the client about a protocol error, if this is one.
    pub(super) fn close_method(&self) -> Option<ConnectionClose> {
        match self {
            ConnectionError::Protocol {
                code,
                text,
                class_id,
                method_id,
            } => Some(ConnectionClose {
                reply_code: code.code(),
                reply_text: code.text(text).into(),
                class_id: *class_id,
                method_id: *method_id,
            }),
            _ => None,
        }
    }
}

impl From<CodecError> for ConnectionError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Io(e) => ConnectionError::Io(e),
            CodecError::Frame(e) => ConnectionError::Protocol {
                code: e.error.reply_code(),
                text: e.error.to_string(),
                class_id: e.class_id,
                method_id: e.method_id,
            },
        }
    }
}
