//! Content assembly: basic.publish, then a header frame, then body frames until the
//! announced size. Frames of other channels may interleave; this channel's may not.

use bytes::{Bytes, BytesMut};
use warren_codec::{BASIC_CLASS_ID, BasicPublish, ContentHeader};

use crate::error::{ChannelError, ConnectionError, Error};

/// A publish whose content has fully arrived.
#[derive(Debug)]
pub(crate) struct Publication {
    pub(crate) publish: BasicPublish,
    pub(crate) header: ContentHeader,
    pub(crate) body: Bytes,
}

#[derive(Debug, Default)]
pub(crate) enum Assembler {
    #[default]
    Idle,
    AwaitingHeader(BasicPublish),
    AwaitingBody {
        publish: BasicPublish,
        header: ContentHeader,
        body: Body,
    },
}

/// Body bytes so far: one frame's slice is kept as is (no copy); more are joined.
#[derive(Debug)]
pub(crate) enum Body {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::One(b) => b.len(),
            Body::Many(b) => b.len(),
        }
    }

    fn push(&mut self, bytes: Bytes, total: u64) {
        *self = match std::mem::replace(self, Body::Empty) {
            Body::Empty => Body::One(bytes),
            Body::One(first) => {
                // The total was checked against max_message_size at the header.
                let mut joined = BytesMut::with_capacity(usize::try_from(total).unwrap_or(0));
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&bytes);
                Body::Many(joined)
            }
            Body::Many(mut joined) => {
                joined.extend_from_slice(&bytes);
                Body::Many(joined)
            }
        };
    }

    fn freeze(self) -> Bytes {
        match self {
            Body::Empty => Bytes::new(),
            Body::One(b) => b,
            Body::Many(b) => b.freeze(),
        }
    }
}

fn unexpected(detail: &str) -> Error {
    ConnectionError::unexpected_frame(detail.to_owned()).into()
}

impl Assembler {
    pub(crate) fn is_idle(&self) -> bool {
        matches!(self, Assembler::Idle)
    }

    /// A basic.publish arrived; content follows.
    pub(crate) fn start(&mut self, publish: BasicPublish) {
        *self = Assembler::AwaitingHeader(publish);
    }

    /// A header frame arrived. Refuses bodies over `max_size` before any body byte is
    /// buffered (406, as RabbitMQ).
    pub(crate) fn header(
        &mut self,
        header: ContentHeader,
        max_size: u32,
    ) -> Result<Option<Publication>, Error> {
        let Assembler::AwaitingHeader(publish) = std::mem::take(self) else {
            return Err(unexpected(
                "content header frame without a preceding basic.publish",
            ));
        };
        if header.class_id != BASIC_CLASS_ID {
            return Err(ConnectionError::unexpected_frame(format!(
                "expected content header for class 60, got one for class {} instead",
                header.class_id
            ))
            .in_method(60, 40)
            .into());
        }
        if header.body_size > u64::from(max_size) {
            return Err(ChannelError::precondition_failed(format!(
                "message size {} is larger than configured max size {max_size}",
                header.body_size
            ))
            .in_method(60, 40)
            .into());
        }
        if header.body_size == 0 {
            return Ok(Some(Publication {
                publish,
                header,
                body: Bytes::new(),
            }));
        }
        *self = Assembler::AwaitingBody {
            publish,
            header,
            body: Body::Empty,
        };
        Ok(None)
    }

    /// A body frame arrived.
    pub(crate) fn body(&mut self, bytes: Bytes) -> Result<Option<Publication>, Error> {
        let Assembler::AwaitingBody {
            publish,
            header,
            mut body,
        } = std::mem::take(self)
        else {
            return Err(unexpected("content body frame without a content header"));
        };
        let size = header.body_size;
        let have = body.len() as u64 + bytes.len() as u64;
        if have > size {
            return Err(ConnectionError::unexpected_frame(format!(
                "content body of {have} bytes exceeds the {size} announced"
            ))
            .in_method(60, 40)
            .into());
        }
        body.push(bytes, size);
        if have == size {
            return Ok(Some(Publication {
                publish,
                header,
                body: body.freeze(),
            }));
        }
        *self = Assembler::AwaitingBody {
            publish,
            header,
            body,
        };
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_codec::{BasicProperties, ReplyCode};

    fn code(r: Result<Option<Publication>, Error>) -> Option<u16> {
        match r {
            Err(Error::Channel(e)) => Some(e.code().code()),
            Err(Error::Connection(e)) => Some(e.code().code()),
            Ok(_) => None,
        }
    }

    #[test]
    fn body_split_over_frames_is_joined() {
        let mut a = Assembler::default();
        a.start(BasicPublish::default());
        let header = ContentHeader::new(6, BasicProperties::default());
        assert!(matches!(a.header(header, 100), Ok(None)));
        assert!(matches!(a.body(Bytes::from_static(b"abc")), Ok(None)));
        let done = a.body(Bytes::from_static(b"def"));
        assert_eq!(
            done.ok().flatten().map(|p| p.body),
            Some(Bytes::from_static(b"abcdef"))
        );
        assert!(a.is_idle());
    }

    #[test]
    fn empty_body_completes_at_the_header() {
        let mut a = Assembler::default();
        a.start(BasicPublish::default());
        let header = ContentHeader::new(0, BasicProperties::default());
        assert!(matches!(a.header(header, 100), Ok(Some(_))));
    }

    #[test]
    fn oversized_message_is_refused_at_the_header() {
        let mut a = Assembler::default();
        a.start(BasicPublish::default());
        let header = ContentHeader::new(101, BasicProperties::default());
        assert_eq!(
            code(a.header(header, 100)),
            Some(ReplyCode::PreconditionFailed.code())
        );
    }

    #[test]
    fn frames_out_of_order_are_unexpected() {
        let mut a = Assembler::default();
        assert_eq!(code(a.body(Bytes::from_static(b"x"))), Some(505));
        let header = ContentHeader::new(1, BasicProperties::default());
        assert_eq!(code(a.header(header, 100)), Some(505));
    }

    #[test]
    fn body_longer_than_announced_is_unexpected() {
        let mut a = Assembler::default();
        a.start(BasicPublish::default());
        let header = ContentHeader::new(2, BasicProperties::default());
        assert!(matches!(a.header(header, 100), Ok(None)));
        assert_eq!(code(a.body(Bytes::from_static(b"abc"))), Some(505));
    }
}
