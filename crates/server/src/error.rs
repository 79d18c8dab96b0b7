//! Protocol errors raised while serving a connection, each carrying its reply code.
//!
//! A [`ChannelError`] closes one channel (soft codes: 403, 404, 405, 406, ...); a
//! [`ConnectionError`] closes the connection (hard codes: 501-541, 320). Handlers return
//! the narrowest type; [`Error`] joins them where a handler can raise both. The close
//! frame carries the class and method of the method that failed.

use std::fmt;

use warren_codec::{ChannelClose, ConnectionClose, Method, ReplyCode};

/// The reply code, text and failing method shared by both error kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply code.
    pub code: ReplyCode,
    /// Text after the code name: `no queue 'q' in vhost '/'`.
    pub detail: String,
    /// Class id of the failing method, or 0.
    pub class_id: u16,
    /// Method id of the failing method, or 0.
    pub method_id: u16,
}

impl Reply {
    fn new(code: ReplyCode, detail: impl Into<String>) -> Self {
        Reply {
            code,
            detail: detail.into(),
            class_id: 0,
            method_id: 0,
        }
    }

    /// The close text, `"NOT_FOUND - no queue 'q' in vhost '/'"`, at most 255 bytes.
    pub fn text(&self) -> String {
        self.code.text(&self.detail)
    }
}

/// An error that closes one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelError(pub Reply);

/// An error that closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError(pub Reply);

macro_rules! constructors {
    ($ty:ident { $($name:ident => $code:ident),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("A `", stringify!($code), "` error with the given detail.")]
                pub fn $name(detail: impl Into<String>) -> Self {
                    $ty(Reply::new(ReplyCode::$code, detail))
                }
            )*

            /// Records the method that failed, unless one is already recorded.
            pub fn in_method(mut self, class_id: u16, method_id: u16) -> Self {
                if self.0.class_id == 0 {
                    self.0.class_id = class_id;
                    self.0.method_id = method_id;
                }
                self
            }

            /// The reply code.
            pub fn code(&self) -> ReplyCode {
                self.0.code
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {}", self.0.code.code(), self.0.text())
            }
        }

        impl std::error::Error for $ty {}
    };
}

constructors!(ChannelError {
    access_refused => AccessRefused,
    not_found => NotFound,
    resource_locked => ResourceLocked,
    precondition_failed => PreconditionFailed,
    content_too_large => ContentTooLarge,
    no_route => NoRoute,
});

constructors!(ConnectionError {
    connection_forced => ConnectionForced,
    frame_error => FrameError,
    syntax_error => SyntaxError,
    command_invalid => CommandInvalid,
    channel_error => ChannelError,
    unexpected_frame => UnexpectedFrame,
    resource_error => ResourceError,
    not_allowed => NotAllowed,
    not_implemented => NotImplemented,
    internal_error => InternalError,
    access_refused => AccessRefused,
});

impl ChannelError {
    /// The channel.close method for this error.
    pub fn close_method(&self) -> Method {
        ChannelClose {
            reply_code: self.0.code.code(),
            reply_text: self.0.text().into(),
            class_id: self.0.class_id,
            method_id: self.0.method_id,
        }
        .into()
    }
}

impl ConnectionError {
    /// The connection.close method for this error.
    pub fn close_method(&self) -> Method {
        ConnectionClose {
            reply_code: self.0.code.code(),
            reply_text: self.0.text().into(),
            class_id: self.0.class_id,
            method_id: self.0.method_id,
        }
        .into()
    }
}

/// Either kind of protocol error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Closes the channel.
    Channel(ChannelError),
    /// Closes the connection.
    Connection(ConnectionError),
}

impl Error {
    /// Records the method that failed, unless one is already recorded.
    pub fn in_method(self, class_id: u16, method_id: u16) -> Self {
        match self {
            Error::Channel(e) => Error::Channel(e.in_method(class_id, method_id)),
            Error::Connection(e) => Error::Connection(e.in_method(class_id, method_id)),
        }
    }
}

impl From<ChannelError> for Error {
    fn from(e: ChannelError) -> Self {
        Error::Channel(e)
    }
}

impl From<ConnectionError> for Error {
    fn from(e: ConnectionError) -> Self {
        Error::Connection(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_carries_code_text_and_failing_method() {
        let err = ChannelError::not_found("no queue 'q' in vhost '/'").in_method(50, 10);
        assert_eq!(
            err.close_method(),
            Method::ChannelClose(ChannelClose {
                reply_code: 404,
                reply_text: "NOT_FOUND - no queue 'q' in vhost '/'".into(),
                class_id: 50,
                method_id: 10,
            })
        );
    }

    #[test]
    fn first_failing_method_wins() {
        let err = ConnectionError::frame_error("x")
            .in_method(60, 40)
            .in_method(10, 10);
        assert_eq!((err.0.class_id, err.0.method_id), (60, 40));
    }
}
