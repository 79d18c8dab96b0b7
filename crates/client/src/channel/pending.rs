//! Calls awaiting their reply, in the order they were sent.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use warren_codec::{
    BasicCancelOk, BasicConsumeOk, BasicGetEmpty, BasicGetOk, ChannelCloseOk, ChannelOpenOk,
    Method, ShortStr,
};

use super::state::ConsumerSink;
use super::{Channel, ChannelShared};
use crate::connection::command::{ConsumerParts, MethodId, Reply};
use crate::delivery::Delivery;
use crate::error::Error;

/// A synchronous method sent on a channel, awaiting the broker's answer.
pub(crate) enum Pending {
    /// channel.open: the handle to give out at open-ok.
    Open {
        handle: Arc<ChannelShared>,
        reply: Reply<Channel>,
    },
    /// Any method answered by one reply method.
    Call {
        expect: MethodId,
        reply: Reply<Method>,
    },
    /// basic.consume: the consumer is registered at consume-ok, under the tag it names.
    Consume {
        sink: ConsumerSink,
        deliveries: mpsc::Receiver<Delivery>,
        end: oneshot::Receiver<Error>,
        reply: Reply<ConsumerParts>,
    },
    /// basic.cancel: the consumer is removed at cancel-ok.
    Cancel {
        consumer_tag: ShortStr,
        reply: Option<Reply<()>>,
    },
    /// basic.get: get-empty, or get-ok followed by content.
    Get {
        no_ack: bool,
        reply: Reply<Option<Delivery>>,
    },
    /// channel.close sent by the client.
    Close { reply: Reply<()> },
    /// A method a recovery replays to restore the channel; nobody waits on it.
    Replayed { expect: MethodId },
}

impl Pending {
    /// True when `method` is the answer this call waits for.
    pub(crate) fn expects(&self, method: &Method) -> bool {
        match self {
            Pending::Open { .. } => matches!(method, Method::ChannelOpenOk(_)),
            Pending::Call {
                expect: (class_id, method_id),
                ..
            }
            | Pending::Replayed {
                expect: (class_id, method_id),
            } => method.class_id() == *class_id && method.method_id() == *method_id,
            Pending::Consume { .. } => matches!(method, Method::BasicConsumeOk(_)),
            Pending::Cancel { .. } => matches!(method, Method::BasicCancelOk(_)),
            Pending::Get { .. } => {
                matches!(method, Method::BasicGetOk(_) | Method::BasicGetEmpty(_))
            }
            Pending::Close { .. } => matches!(method, Method::ChannelCloseOk(_)),
        }
    }

    /// What the call waits for, for error messages.
    pub(crate) fn awaiting(&self) -> String {
        match self {
            Pending::Open { .. } => ChannelOpenOk::NAME.to_owned(),
            Pending::Call {
                expect: (class_id, method_id),
                ..
            }
            | Pending::Replayed {
                expect: (class_id, method_id),
            } => format!("method {class_id}.{method_id}"),
            Pending::Consume { .. } => BasicConsumeOk::NAME.to_owned(),
            Pending::Cancel { .. } => BasicCancelOk::NAME.to_owned(),
            Pending::Get { .. } => format!("{} or {}", BasicGetOk::NAME, BasicGetEmpty::NAME),
            Pending::Close { .. } => ChannelCloseOk::NAME.to_owned(),
        }
    }

    /// Answers the call with the channel's close reason. A client close succeeds: the
    /// channel is closed, whoever closed it.
    pub(crate) fn fail(self, reason: &Error) {
        match self {
            Pending::Open { reply, .. } => {
                let _ = reply.send(Err(reason.clone()));
            }
            Pending::Call { reply, .. } => {
                let _ = reply.send(Err(reason.clone()));
            }
            Pending::Consume { reply, .. } => {
                let _ = reply.send(Err(reason.clone()));
            }
            Pending::Cancel { reply, .. } => {
                // The consumer is gone with the channel: cancelled either way.
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
            }
            Pending::Get { reply, .. } => {
                let _ = reply.send(Err(reason.clone()));
            }
            Pending::Close { reply } => {
                let _ = reply.send(Ok(()));
            }
            Pending::Replayed { .. } => {}
        }
    }
}
