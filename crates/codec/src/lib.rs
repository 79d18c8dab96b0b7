//! The AMQP 0-9-1 wire format, as RabbitMQ extends it: frames, every method as a typed
//! value, content headers with the basic properties, and field tables.
//!
//! No I/O here. [`decode_frame`] is a streaming parser: incomplete input is `Ok(None)`.
//! Bodies, strings and byte fields decode as slices of the input buffer, not copies.
//!
//! ```
//! use bytes::BytesMut;
//! use warren_codec::{Frame, QueueDeclare, decode_frame};
//!
//! let mut buf = BytesMut::new();
//! Frame::method(1, QueueDeclare { queue: "tasks".into(), durable: true, ..Default::default() })
//!     .encode(&mut buf);
//! let frame = decode_frame(&mut buf, 131_072).ok().flatten();
//! assert!(matches!(frame, Some(Frame::Method { channel: 1, .. })));
//! ```
#![deny(missing_docs)]

mod codec;
mod error;
mod frame;
mod method;
mod properties;
mod publish_view;
mod reply_code;
mod short_str;
mod table;
mod wire;

pub use codec::{CodecError, FrameCodec};
pub use error::{DecodeError, EncodeError};
pub use frame::{
    DeliverRef, FRAME_END, FRAME_MIN_SIZE, FRAME_OVERHEAD, Frame, FrameError, PROTOCOL_HEADER,
    decode_frame, encode_content, encode_content_raw, encode_deliver_raw,
};
pub use method::*;
pub use properties::{BASIC_CLASS_ID, BasicProperties, ContentHeader};
pub use publish_view::PublishView;
pub use reply_code::{ErrorLevel, ReplyCode};
pub use short_str::ShortStr;
pub use table::{FieldTable, FieldValue};

pub use bytes;
