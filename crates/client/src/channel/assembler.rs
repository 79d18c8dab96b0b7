//! Assembles content: a content-bearing method (deliver, get-ok, return), then its
//! header, then body frames adding up to the header's body size.
//!
//! Invariant: while not `Idle`, the only frames the server may send on the channel
//! are the header and body frames of this content; anything else is a 505.

use bytes::{Bytes, BytesMut};
use warren_codec::{BasicProperties, ContentHeader};

use crate::violation::Violation;

/// The most a body buffer reserves ahead: the header's size is the server's claim, and
/// a claim of 2^63 bytes must not allocate before any body arrives.
const MAX_RESERVE: usize = 1 << 20;

/// A complete message: the method that started it, its properties and body.
pub(crate) struct Content<K> {
    pub(crate) start: K,
    pub(crate) properties: BasicProperties,
    pub(crate) body: Bytes,
}

/// Where the channel is in receiving content.
pub(crate) enum Assembler<K> {
    /// No content in progress.
    Idle,
    /// A content-bearing method arrived; its header is next.
    AwaitingHeader(K),
    /// The header arrived; `size` bytes of body in total are expected.
    AwaitingBody {
        start: K,
        /// Boxed: the properties are most of the state's size.
        properties: Box<BasicProperties>,
        size: usize,
        body: Body,
    },
}

/// Body bytes received so far. One frame's body is kept as the frame's own slice of
/// the read buffer (no copy); only bodies spanning frames are joined.
pub(crate) enum Body {
    Empty,
    One(Bytes),
    Joined(BytesMut),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::One(b) => b.len(),
            Body::Joined(b) => b.len(),
        }
    }

    fn push(&mut self, more: Bytes, size: usize) {
        *self = match std::mem::replace(self, Body::Empty) {
            Body::Empty => Body::One(more),
            Body::One(first) => {
                let mut joined = BytesMut::with_capacity(size.min(MAX_RESERVE));
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&more);
                Body::Joined(joined)
            }
            Body::Joined(mut joined) => {
                joined.extend_from_slice(&more);
                Body::Joined(joined)
            }
        }
    }

    fn freeze(self) -> Bytes {
        match self {
            Body::Empty => Bytes::new(),
            Body::One(b) => b,
            Body::Joined(b) => b.freeze(),
        }
    }
}

impl<K> Assembler<K> {
    /// True when no content is in progress.
    pub(crate) fn is_idle(&self) -> bool {
        matches!(self, Assembler::Idle)
    }

    /// A content-bearing method arrived.
    pub(crate) fn start(&mut self, start: K) -> Result<(), Violation> {
        if !self.is_idle() {
            return Err(Violation::unexpected(
                "content-bearing method while content is still expected",
            ));
        }
        *self = Assembler::AwaitingHeader(start);
        Ok(())
    }

    /// A content header arrived; returns the content if its body is empty.
    pub(crate) fn header(
        &mut self,
        header: ContentHeader,
    ) -> Result<Option<Content<K>>, Violation> {
        let start = match std::mem::replace(self, Assembler::Idle) {
            Assembler::AwaitingHeader(start) => start,
            other => {
                *self = other;
                return Err(Violation::unexpected("content header without a method"));
            }
        };
        let size = usize::try_from(header.body_size)
            .map_err(|_| Violation::frame(format!("body size {} too large", header.body_size)))?;
        let properties = header.properties().clone();
        if size == 0 {
            return Ok(Some(Content {
                start,
                properties,
                body: Bytes::new(),
            }));
        }
        *self = Assembler::AwaitingBody {
            start,
            properties: Box::new(properties),
            size,
            body: Body::Empty,
        };
        Ok(None)
    }

    /// A body frame arrived; returns the content once the body is complete.
    pub(crate) fn body(&mut self, more: Bytes) -> Result<Option<Content<K>>, Violation> {
        let Assembler::AwaitingBody { size, body, .. } = self else {
            return Err(Violation::unexpected("body frame without a content header"));
        };
        let total = body.len().saturating_add(more.len());
        if total > *size {
            return Err(Violation::frame(format!(
                "body frames carry {total} bytes, the header announced {size}"
            )));
        }
        body.push(more, *size);
        if total < *size {
            return Ok(None);
        }
        match std::mem::replace(self, Assembler::Idle) {
            Assembler::AwaitingBody {
                start,
                properties,
                body,
                ..
            } => Ok(Some(Content {
                start,
                properties: *properties,
                body: body.freeze(),
            })),
            // Matched as AwaitingBody above.
            other => {
                *self = other;
                Ok(None)
            }
        }
    }

    /// Drops any content in progress, handing back the method that started it.
    pub(crate) fn abandon(&mut self) -> Option<K> {
        match std::mem::replace(self, Assembler::Idle) {
            Assembler::Idle => None,
            Assembler::AwaitingHeader(start) | Assembler::AwaitingBody { start, .. } => Some(start),
        }
    }
}

#[cfg(test)]
mod tests {
    use warren_codec::ReplyCode;

    use super::*;

    fn header(size: u64) -> ContentHeader {
        ContentHeader::new(
            size,
            BasicProperties {
                message_id: Some("m".into()),
                ..Default::default()
            },
        )
    }

    fn done<K>(step: Result<Option<Content<K>>, Violation>) -> Content<K> {
        match step {
            Ok(Some(content)) => content,
            Ok(None) => unreachable!("content should be complete"),
            Err(v) => unreachable!("unexpected violation {v:?}"),
        }
    }

    #[test]
    fn empty_body_completes_at_the_header() {
        let mut a = Assembler::Idle;
        assert!(a.start(7).is_ok());
        let content = done(a.header(header(0)));
        assert_eq!(content.start, 7);
        assert!(content.body.is_empty());
        assert_eq!(content.properties.message_id.as_deref(), Some("m"));
        assert!(a.is_idle());
    }

    #[test]
    fn one_body_frame_is_kept_without_copying() {
        let mut a = Assembler::Idle;
        assert!(a.start(()).is_ok());
        assert!(matches!(a.header(header(5)), Ok(None)));
        let frame = Bytes::from_static(b"hello");
        let content = done(a.body(frame.clone()));
        assert_eq!(content.body.as_ptr(), frame.as_ptr());
        assert!(a.is_idle());
    }

    #[test]
    fn body_frames_are_joined() {
        let mut a = Assembler::Idle;
        assert!(a.start(()).is_ok());
        assert!(matches!(a.header(header(6)), Ok(None)));
        assert!(matches!(a.body(Bytes::from_static(b"ab")), Ok(None)));
        assert!(matches!(a.body(Bytes::from_static(b"cd")), Ok(None)));
        assert_eq!(&done(a.body(Bytes::from_static(b"ef"))).body[..], b"abcdef");
    }

    #[test]
    fn frames_out_of_order_are_unexpected() {
        let mut a: Assembler<()> = Assembler::Idle;
        let code = |r: Result<Option<Content<()>>, Violation>| r.err().map(|v| v.code);
        assert_eq!(code(a.header(header(1))), Some(ReplyCode::UnexpectedFrame));
        assert_eq!(
            code(a.body(Bytes::from_static(b"x"))),
            Some(ReplyCode::UnexpectedFrame)
        );
        assert!(a.start(()).is_ok());
        assert_eq!(
            a.start(()).err().map(|v| v.code),
            Some(ReplyCode::UnexpectedFrame)
        );
        assert_eq!(
            code(a.body(Bytes::from_static(b"x"))),
            Some(ReplyCode::UnexpectedFrame)
        );
    }

    #[test]
    fn a_body_longer_than_announced_is_a_frame_error() {
        let mut a = Assembler::Idle;
        assert!(a.start(()).is_ok());
        assert!(matches!(a.header(header(2)), Ok(None)));
        let err = a.body(Bytes::from_static(b"abc")).err();
        assert_eq!(err.map(|v| v.code), Some(ReplyCode::FrameError));
    }

    #[test]
    fn abandon_returns_the_starting_method() {
        let mut a = Assembler::Idle;
        assert_eq!(a.abandon(), None);
        assert!(a.start(3).is_ok());
        assert!(matches!(a.header(header(9)), Ok(None)));
        assert_eq!(a.abandon(), Some(3));
        assert!(a.is_idle());
    }
}
