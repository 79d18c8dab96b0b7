//! The one error type every client operation returns.

use std::sync::Arc;
use std::time::Duration;

/// Why an operation failed.
///
/// Cloneable, because one failure (a channel closed by the server, a lost socket) is
/// handed to every call that was waiting on that channel or connection.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The channel is closed: by the server with this reason (a soft error such as 404
    /// NOT_FOUND or 406 PRECONDITION_FAILED), or by the client with code 200.
    #[error("channel closed: {code} {text}")]
    ChannelClosed {
        /// The reply code (404, 406, ...; 200 when the client closed it).
        code: u16,
        /// The server's reply text, `NOT_FOUND - no queue 'q' in vhost '/'`.
        text: String,
        /// Class id of the method that failed, or 0.
        class_id: u16,
        /// Method id of the method that failed, or 0.
        method_id: u16,
    },
    /// The connection is closed: by the server with this reason (a hard error such as
    /// 320 CONNECTION_FORCED, 403 ACCESS_REFUSED, 530 NOT_ALLOWED), or by the client
    /// with code 200.
    #[error("connection closed: {code} {text}")]
    ConnectionClosed {
        /// The reply code.
        code: u16,
        /// The reply text.
        text: String,
        /// Class id of the method that failed, or 0.
        class_id: u16,
        /// Method id of the method that failed, or 0.
        method_id: u16,
    },
    /// The server cancelled the consumer (its queue was deleted, or it failed over).
    #[error("consumer {consumer_tag} was cancelled by the server")]
    ConsumerCancelled {
        /// The cancelled consumer's tag.
        consumer_tag: String,
    },
    /// The socket failed or closed without a connection.close.
    #[error("I/O error: {0}")]
    Io(Arc<std::io::Error>),
    /// The server broke the protocol (a malformed frame, a method out of order); the
    /// client closed the connection.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The AMQP URI could not be parsed.
    #[error("invalid AMQP URI: {0}")]
    InvalidUri(String),
    /// An argument cannot be sent (a name longer than 255 bytes).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Nothing arrived from the server for two heartbeat intervals.
    #[error("no traffic from the server for {0:?}: missed heartbeats")]
    MissedHeartbeats(Duration),
    /// Connecting or closing took longer than the connection timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Every channel number up to the negotiated channel-max is in use.
    #[error("all {channel_max} channel numbers are in use")]
    ChannelLimitReached {
        /// The negotiated channel-max.
        channel_max: u16,
    },
    /// The channel is not open, and why is no longer known. Calls on a closed channel
    /// normally return its [`Error::ChannelClosed`] reason instead.
    #[error("the channel is not open")]
    ChannelNotOpen,
}

impl Error {
    /// The AMQP reply code of a channel or connection close, if this is one.
    pub fn reply_code(&self) -> Option<u16> {
        match self {
            Error::ChannelClosed { code, .. } | Error::ConnectionClosed { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The reason given to calls on a channel or connection the client closed itself.
    pub(crate) fn closed_by_client(connection: bool) -> Error {
        let text = "closed by the client".to_owned();
        if connection {
            Error::ConnectionClosed {
                code: 200,
                text,
                class_id: 0,
                method_id: 0,
            }
        } else {
            Error::ChannelClosed {
                code: 200,
                text,
                class_id: 0,
                method_id: 0,
            }
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}
