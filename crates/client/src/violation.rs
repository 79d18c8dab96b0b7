//! A protocol violation by the server, which the client answers by closing the
//! connection with a reply code, as a server does for a misbehaving client.

use warren_codec::ReplyCode;

use crate::error::Error;

/// What the server did wrong, and the code the connection.close will carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The reply code for connection.close (505 UNEXPECTED_FRAME, 501 FRAME_ERROR, ...).
    pub(crate) code: ReplyCode,
    /// What happened, for the close text and the error handed to callers.
    pub(crate) text: String,
}

impl Violation {
    /// A frame or method arrived where the protocol does not allow it (505).
    pub(crate) fn unexpected(text: impl Into<String>) -> Self {
        Violation {
            code: ReplyCode::UnexpectedFrame,
            text: text.into(),
        }
    }

    /// A malformed frame or content (501).
    pub(crate) fn frame(text: impl Into<String>) -> Self {
        Violation {
            code: ReplyCode::FrameError,
            text: text.into(),
        }
    }

    /// A method the client did not ask for or cannot handle here (503).
    pub(crate) fn command_invalid(text: impl Into<String>) -> Self {
        Violation {
            code: ReplyCode::CommandInvalid,
            text: text.into(),
        }
    }

    /// The error callers see.
    pub(crate) fn to_error(&self) -> Error {
        Error::Protocol(format!("{} - {}", self.code.name(), self.text))
    }
}
