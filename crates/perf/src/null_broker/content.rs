//! Assembling a publish: basic.publish, then its content header, then body frames
//! until the header's body size is reached.
//!
//! A body that comes in one frame (any body within frame-max, so every warren-perf
//! message up to 128 KiB) stays a slice of the read buffer; only a body split over
//! several frames is copied, into one buffer.

use bytes::{Bytes, BytesMut};
use warren_codec::{BASIC_CLASS_ID, BasicPublish, ContentHeader, ShortStr};

use super::error::ConnectionError;

/// A published message as its consumers get it. Every field shares the publisher's
/// read buffer, so a copy for each fanout target costs four reference counts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Message {
    /// The exchange it was published to.
    pub(super) exchange: ShortStr,
    /// Its routing key.
    pub(super) routing_key: ShortStr,
    /// The property flags and values, as the publisher encoded them.
    pub(super) properties: Bytes,
    /// The body.
    pub(super) body: Bytes,
}

/// Where a channel is in receiving a publish.
#[derive(Debug, Default)]
pub(super) enum Assembly {
    /// Between messages.
    #[default]
    Idle,
    /// basic.publish arrived; the header is next.
    AwaitingHeader(BasicPublish),
    /// The header arrived; body frames are next.
    AwaitingBody {
        publish: BasicPublish,
        properties: Bytes,
        /// Bytes still to come.
        remaining: u64,
        body: Body,
    },
}

/// The body received so far.
#[derive(Debug)]
pub(super) enum Body {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl Assembly {
    /// True between messages, when a method may come.
    pub(super) fn is_idle(&self) -> bool {
        matches!(self, Assembly::Idle)
    }

    /// basic.publish: its content follows. 505 UNEXPECTED_FRAME in mid-message.
    pub(super) fn start(&mut self, publish: BasicPublish) -> Result<(), ConnectionError> {
        if !self.is_idle() {
            return Err(ConnectionError::unexpected_frame(
                "basic.publish while content is expected",
            ));
        }
        *self = Assembly::AwaitingHeader(publish);
        Ok(())
    }

    /// The content header; the message when its body is empty. 505 UNEXPECTED_FRAME
    /// when no publish awaits a header, or for a class other than basic.
    pub(super) fn header(
        &mut self,
        header: ContentHeader,
    ) -> Result<Option<Message>, ConnectionError> {
        let Assembly::AwaitingHeader(publish) = std::mem::take(self) else {
            return Err(ConnectionError::unexpected_frame(
                "a content header without basic.publish",
            ));
        };
        if header.class_id != BASIC_CLASS_ID {
            return Err(ConnectionError::unexpected_frame(format!(
                "a content header of class {}",
                header.class_id
            )));
        }
        *self = Assembly::AwaitingBody {
            publish,
            properties: header.raw_properties(),
            remaining: header.body_size,
            body: Body::Empty,
        };
        Ok(self.complete())
    }

    /// A body frame; the message once the body is whole. 505 UNEXPECTED_FRAME when no
    /// body is expected or the frame runs past the header's body size.
    pub(super) fn body(&mut self, bytes: Bytes) -> Result<Option<Message>, ConnectionError> {
        let Assembly::AwaitingBody {
            remaining, body, ..
        } = self
        else {
            return Err(ConnectionError::unexpected_frame(
                "a body frame without a content header",
            ));
        };
        *remaining = u64::try_from(bytes.len())
            .ok()
            .and_then(|len| remaining.checked_sub(len))
            .ok_or_else(|| {
                ConnectionError::unexpected_frame("body frames beyond the header's body size")
            })?;
        *body = match std::mem::replace(body, Body::Empty) {
            Body::Empty => Body::One(bytes),
            Body::One(first) => {
                let mut joined = BytesMut::with_capacity(first.len() + bytes.len());
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&bytes);
                Body::Many(joined)
            }
            Body::Many(mut joined) => {
                joined.extend_from_slice(&bytes);
                Body::Many(joined)
            }
        };
        Ok(self.complete())
    }

    /// The message, if the body is whole; the assembly is then idle again.
    fn complete(&mut self) -> Option<Message> {
        if !matches!(self, Assembly::AwaitingBody { remaining: 0, .. }) {
            return None;
        }
        let Assembly::AwaitingBody {
            publish,
            properties,
            body,
            ..
        } = std::mem::take(self)
        else {
            return None;
        };
        Some(Message {
            exchange: publish.exchange,
            routing_key: publish.routing_key,
            properties,
            body: match body {
                Body::Empty => Bytes::new(),
                Body::One(bytes) => bytes,
                Body::Many(joined) => joined.freeze(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use warren_codec::BasicProperties;

    use super::*;

    fn publish() -> BasicPublish {
        BasicPublish {
            exchange: "x".into(),
            routing_key: "k".into(),
            ..Default::default()
        }
    }

    fn header(size: u64) -> ContentHeader {
        ContentHeader::new(
            size,
            BasicProperties {
                delivery_mode: Some(2),
                ..Default::default()
            },
        )
    }

    #[test]
    fn an_empty_body_completes_at_the_header() {
        let mut assembly = Assembly::default();
        assembly.start(publish()).unwrap();
        let message = assembly.header(header(0)).unwrap().unwrap();
        assert_eq!(message.exchange, "x");
        assert_eq!(message.routing_key, "k");
        assert!(message.body.is_empty());
        assert_eq!(&message.properties[..], &[0x10, 0, 2]);
        assert!(assembly.is_idle());
    }

    #[test]
    fn a_body_in_several_frames_is_joined() {
        let mut assembly = Assembly::default();
        assembly.start(publish()).unwrap();
        assert_eq!(assembly.header(header(5)).unwrap(), None);
        assert_eq!(assembly.body(Bytes::from_static(b"ab")).unwrap(), None);
        assert_eq!(assembly.body(Bytes::from_static(b"c")).unwrap(), None);
        let message = assembly.body(Bytes::from_static(b"de")).unwrap().unwrap();
        assert_eq!(&message.body[..], b"abcde");
        assert!(assembly.is_idle());
    }

    #[test]
    fn frames_out_of_order_are_refused() {
        let mut assembly = Assembly::default();
        assert!(assembly.header(header(1)).is_err());
        assert!(assembly.body(Bytes::from_static(b"a")).is_err());
        assembly.start(publish()).unwrap();
        assert!(assembly.start(publish()).is_err());
    }

    #[test]
    fn a_body_longer_than_announced_is_refused() {
        let mut assembly = Assembly::default();
        assembly.start(publish()).unwrap();
        assembly.header(header(2)).unwrap();
        assert!(assembly.body(Bytes::from_static(b"abc")).is_err());
    }
}
