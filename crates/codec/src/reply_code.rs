//! AMQP reply codes, as sent in `connection.close`, `channel.close` and `basic.return`.

use std::fmt;

/// Whether an error closes the channel (a "soft" error) or the whole connection ("hard").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorLevel {
    /// Closes only the channel the error happened on.
    Channel,
    /// Closes the connection.
    Connection,
}

/// A reply code from the AMQP 0-9-1 spec, plus RabbitMQ's `NO_ROUTE` (312).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplyCode {
    /// 200: success, used in normal closes.
    Success,
    /// 311: the message was too large.
    ContentTooLarge,
    /// 312: a mandatory message could not be routed (RabbitMQ extension).
    NoRoute,
    /// 313: an immediate message had no consumer.
    NoConsumers,
    /// 320: the server closed the connection (shutdown, admin action).
    ConnectionForced,
    /// 402: the virtual host name is invalid.
    InvalidPath,
    /// 403: the client lacks permission, or used a reserved name.
    AccessRefused,
    /// 404: the named entity does not exist.
    NotFound,
    /// 405: the entity is exclusively owned by another connection.
    ResourceLocked,
    /// 406: a precondition failed (redeclare mismatch, unknown delivery tag, ...).
    PreconditionFailed,
    /// 501: a malformed frame.
    FrameError,
    /// 502: a frame that could not be parsed into a method.
    SyntaxError,
    /// 503: a method that is invalid in the current state.
    CommandInvalid,
    /// 504: a channel that is not open, or a channel number out of range.
    ChannelError,
    /// 505: a frame of an unexpected type.
    UnexpectedFrame,
    /// 506: the server ran out of a resource.
    ResourceError,
    /// 530: the operation is not allowed (e.g. an unknown vhost).
    NotAllowed,
    /// 540: the server does not implement the requested feature.
    NotImplemented,
    /// 541: an internal error in the server.
    InternalError,
}

impl ReplyCode {
    /// Every code, for lookups and tests.
    pub const ALL: [ReplyCode; 19] = [
        ReplyCode::Success,
        ReplyCode::ContentTooLarge,
        ReplyCode::NoRoute,
        ReplyCode::NoConsumers,
        ReplyCode::ConnectionForced,
        ReplyCode::InvalidPath,
        ReplyCode::AccessRefused,
        ReplyCode::NotFound,
        ReplyCode::ResourceLocked,
        ReplyCode::PreconditionFailed,
        ReplyCode::FrameError,
        ReplyCode::SyntaxError,
        ReplyCode::CommandInvalid,
        ReplyCode::ChannelError,
        ReplyCode::UnexpectedFrame,
        ReplyCode::ResourceError,
        ReplyCode::NotAllowed,
        ReplyCode::NotImplemented,
        ReplyCode::InternalError,
    ];

    /// The numeric code on the wire.
    pub fn code(self) -> u16 {
        match self {
            ReplyCode::Success => 200,
            ReplyCode::ContentTooLarge => 311,
            ReplyCode::NoRoute => 312,
            ReplyCode::NoConsumers => 313,
            ReplyCode::ConnectionForced => 320,
            ReplyCode::InvalidPath => 402,
            ReplyCode::AccessRefused => 403,
            ReplyCode::NotFound => 404,
            ReplyCode::ResourceLocked => 405,
            ReplyCode::PreconditionFailed => 406,
            ReplyCode::FrameError => 501,
            ReplyCode::SyntaxError => 502,
            ReplyCode::CommandInvalid => 503,
            ReplyCode::ChannelError => 504,
            ReplyCode::UnexpectedFrame => 505,
            ReplyCode::ResourceError => 506,
            ReplyCode::NotAllowed => 530,
            ReplyCode::NotImplemented => 540,
            ReplyCode::InternalError => 541,
        }
    }

    /// The code for a number, if it is one we know.
    pub fn from_code(code: u16) -> Option<ReplyCode> {
        ReplyCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The upper-case name RabbitMQ puts before the text: `NOT_FOUND`.
    pub fn name(self) -> &'static str {
        match self {
            ReplyCode::Success => "OK",
            ReplyCode::ContentTooLarge => "CONTENT_TOO_LARGE",
            ReplyCode::NoRoute => "NO_ROUTE",
            ReplyCode::NoConsumers => "NO_CONSUMERS",
            ReplyCode::ConnectionForced => "CONNECTION_FORCED",
            ReplyCode::InvalidPath => "INVALID_PATH",
            ReplyCode::AccessRefused => "ACCESS_REFUSED",
            ReplyCode::NotFound => "NOT_FOUND",
            ReplyCode::ResourceLocked => "RESOURCE_LOCKED",
            ReplyCode::PreconditionFailed => "PRECONDITION_FAILED",
            ReplyCode::FrameError => "FRAME_ERROR",
            ReplyCode::SyntaxError => "SYNTAX_ERROR",
            ReplyCode::CommandInvalid => "COMMAND_INVALID",
            ReplyCode::ChannelError => "CHANNEL_ERROR",
            ReplyCode::UnexpectedFrame => "UNEXPECTED_FRAME",
            ReplyCode::ResourceError => "RESOURCE_ERROR",
            ReplyCode::NotAllowed => "NOT_ALLOWED",
            ReplyCode::NotImplemented => "NOT_IMPLEMENTED",
            ReplyCode::InternalError => "INTERNAL_ERROR",
        }
    }

    /// Whether the spec makes this a channel ("soft") or connection ("hard") error.
    pub fn level(self) -> ErrorLevel {
        match self {
            ReplyCode::Success
            | ReplyCode::ContentTooLarge
            | ReplyCode::NoRoute
            | ReplyCode::NoConsumers
            | ReplyCode::AccessRefused
            | ReplyCode::NotFound
            | ReplyCode::ResourceLocked
            | ReplyCode::PreconditionFailed => ErrorLevel::Channel,
            _ => ErrorLevel::Connection,
        }
    }

    /// The close text in RabbitMQ's form, `"NOT_FOUND - no queue 'q' in vhost '/'"`,
    /// cut to fit a short string (255 bytes) on a character boundary.
    pub fn text(self, detail: &str) -> String {
        let mut text = format!("{} - {}", self.name(), detail);
        if text.len() > 255 {
            let mut end = 255;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        text
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_numbers() {
        for code in ReplyCode::ALL {
            assert_eq!(ReplyCode::from_code(code.code()), Some(code));
        }
        assert_eq!(ReplyCode::from_code(999), None);
    }

    #[test]
    fn levels_follow_the_spec_classes() {
        assert_eq!(ReplyCode::NotFound.level(), ErrorLevel::Channel);
        assert_eq!(ReplyCode::AccessRefused.level(), ErrorLevel::Channel);
        assert_eq!(ReplyCode::FrameError.level(), ErrorLevel::Connection);
        assert_eq!(ReplyCode::NotAllowed.level(), ErrorLevel::Connection);
    }

    #[test]
    fn text_is_cut_to_a_short_string_on_a_char_boundary() {
        let long = "é".repeat(300);
        let text = ReplyCode::NotFound.text(&long);
        assert!(text.len() <= 255);
        assert!(text.starts_with("NOT_FOUND - é"));
        assert_eq!(
            ReplyCode::NotFound.text("no queue 'q' in vhost '/'"),
            "NOT_FOUND - no queue 'q' in vhost '/'"
        );
    }
}
