//! A published message as the broker keeps it: shared by every queue it was routed to.

use bytes::Bytes;
use warren_codec::ShortStr;

/// An immutable message. Queues hold it in an `Arc`, so fan-out to many queues shares
/// one copy of the body and properties.
///
/// Only the encoded properties are kept, not the decoded struct: they are written back
/// to consumers byte for byte, and keeping them encoded costs a few dozen bytes instead
/// of the several hundred of a decoded `BasicProperties`.
#[derive(Debug)]
pub(crate) struct Message {
    /// The exchange it was published to.
    pub(crate) exchange: ShortStr,
    /// The routing key it was published with.
    pub(crate) routing_key: ShortStr,
    /// Property flags and properties, as encoded in the content header.
    pub(crate) properties: Bytes,
    /// The body.
    pub(crate) body: Bytes,
}
