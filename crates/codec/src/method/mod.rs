//! Every AMQP 0-9-1 method (with RabbitMQ's extensions) as a typed struct, and the flat
//! [`Method`] enum over them.

#[macro_use]
mod macros;
mod access;
mod basic;
mod channel;
mod confirm;
mod connection;
mod exchange;
mod queue;
mod tx;

pub use access::*;
pub use basic::*;
pub use channel::*;
pub use confirm::*;
pub use connection::*;
pub use exchange::*;
pub use queue::*;
pub use tx::*;

use bytes::{Bytes, BytesMut};

use crate::error::DecodeError;
use crate::wire::{Reader, Writer};

macro_rules! method_enum {
    ($($name:ident),* $(,)?) => {
        /// Any method, as carried by a method frame.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Method {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name($name),
            )*
        }

        impl Method {
            /// The class id on the wire.
            pub fn class_id(&self) -> u16 {
                match self { $( Method::$name(_) => $name::CLASS_ID, )* }
            }

            /// The method id on the wire.
            pub fn method_id(&self) -> u16 {
                match self { $( Method::$name(_) => $name::METHOD_ID, )* }
            }

            /// The spec's name, `queue.declare`.
            pub fn name(&self) -> &'static str {
                match self { $( Method::$name(_) => $name::NAME, )* }
            }

            /// Decodes a method frame's payload: class id, method id, arguments.
            pub fn decode(payload: &Bytes) -> Result<Method, DecodeError> {
                let mut r = Reader::new(payload, "method arguments");
                let class_id = r.u16()?;
                let method_id = r.u16()?;
                let method = match (class_id, method_id) {
                    $( ($name::CLASS_ID, $name::METHOD_ID) => Method::$name($name::decode(&mut r)?), )*
                    _ => return Err(DecodeError::UnknownMethod { class_id, method_id }),
                };
                r.finish()?;
                Ok(method)
            }

            /// Encodes the payload of a method frame.
            pub fn encode(&self, buf: &mut BytesMut) {
                let mut w = Writer::new(buf);
                w.u16(self.class_id());
                w.u16(self.method_id());
                match self { $( Method::$name(m) => m.encode(&mut w), )* }
            }
        }

        $(
            impl From<$name> for Method {
                fn from(m: $name) -> Method {
                    Method::$name(m)
                }
            }
        )*
    };
}

method_enum! {
    ConnectionStart, ConnectionStartOk, ConnectionSecure, ConnectionSecureOk,
    ConnectionTune, ConnectionTuneOk, ConnectionOpen, ConnectionOpenOk,
    ConnectionClose, ConnectionCloseOk, ConnectionBlocked, ConnectionUnblocked,
    ConnectionUpdateSecret, ConnectionUpdateSecretOk,
    AccessRequest, AccessRequestOk,
    ChannelOpen, ChannelOpenOk, ChannelFlow, ChannelFlowOk, ChannelClose, ChannelCloseOk,
    ExchangeDeclare, ExchangeDeclareOk, ExchangeDelete, ExchangeDeleteOk,
    ExchangeBind, ExchangeBindOk, ExchangeUnbind, ExchangeUnbindOk,
    QueueDeclare, QueueDeclareOk, QueueBind, QueueBindOk, QueueUnbind, QueueUnbindOk,
    QueuePurge, QueuePurgeOk, QueueDelete, QueueDeleteOk,
    BasicQos, BasicQosOk, BasicConsume, BasicConsumeOk, BasicCancel, BasicCancelOk,
    BasicPublish, BasicReturn, BasicDeliver, BasicGet, BasicGetOk, BasicGetEmpty,
    BasicAck, BasicReject, BasicRecoverAsync, BasicRecover, BasicRecoverOk, BasicNack,
    TxSelect, TxSelectOk, TxCommit, TxCommitOk, TxRollback, TxRollbackOk,
    ConfirmSelect, ConfirmSelectOk,
}

impl Method {
    /// True for the methods a content header and body follow.
    pub fn has_content(&self) -> bool {
        matches!(
            self,
            Method::BasicPublish(_)
                | Method::BasicReturn(_)
                | Method::BasicDeliver(_)
                | Method::BasicGetOk(_)
        )
    }

    /// Class and method ids read from the start of a payload, for error reports about a
    /// method that failed to decode.
    pub fn peek_ids(payload: &[u8]) -> (u16, u16) {
        match payload {
            [c0, c1, m0, m1, ..] => (
                u16::from_be_bytes([*c0, *c1]),
                u16::from_be_bytes([*m0, *m1]),
            ),
            _ => (0, 0),
        }
    }
}
