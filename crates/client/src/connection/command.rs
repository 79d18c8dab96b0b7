//! What the handles ask of the connection task, through its bounded mailbox.

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use warren_codec::{BasicConsume, BasicGet, BasicProperties, BasicPublish, Method, ShortStr};

use super::recorded::Record;
use crate::channel::Channel;
use crate::delivery::Delivery;
use crate::error::Error;
use crate::publish::Confirmation;

/// Where the task sends the outcome of a command.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// A channel as the task knows it: its number and which opening of that number (numbers
/// are reused after a close, and a late ack must not reach the next channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChannelKey {
    pub(crate) id: u16,
    pub(crate) serial: u64,
}

/// A class id and method id: the reply a synchronous method waits for.
pub(crate) type MethodId = (u16, u16);

/// A command for the connection task.
pub(crate) enum Command {
    /// Allocate a channel number and send channel.open.
    OpenChannel { reply: Reply<Channel> },
    /// Send connection.close and wait for close-ok.
    CloseConnection { reply: Reply<()> },
    /// Something for one channel.
    Channel {
        key: ChannelKey,
        command: ChannelCommand,
    },
    /// A topology change to re-declare after a recovery (recovery on only).
    Record(Record),
}

/// A command for one channel.
pub(crate) enum ChannelCommand {
    /// A synchronous method: send it, reply with the method that answers it.
    Call {
        method: Method,
        expect: MethodId,
        reply: Reply<Method>,
    },
    /// An asynchronous method with no answer (basic.ack, basic.nack, basic.reject).
    Send { method: Method },
    /// basic.publish with its content.
    Publish(Box<Publish>),
    /// basic.consume: on consume-ok, the consumer's receiving ends.
    Consume {
        method: BasicConsume,
        reply: Reply<ConsumerParts>,
    },
    /// basic.cancel; `reply` is `None` when a dropped consumer cancels itself.
    Cancel {
        consumer_tag: ShortStr,
        reply: Option<Reply<()>>,
    },
    /// basic.get: the message, or `None` for get-empty.
    Get {
        method: BasicGet,
        reply: Reply<Option<Delivery>>,
    },
    /// confirm.select; the task numbers publishes from the moment it writes it.
    ConfirmSelect { reply: Reply<Method> },
    /// channel.close, answered at close-ok.
    Close { reply: Reply<()> },
}

/// A message to publish.
pub(crate) struct Publish {
    pub(crate) method: BasicPublish,
    pub(crate) properties: BasicProperties,
    pub(crate) body: Bytes,
    /// Told the outcome when the channel is in confirm mode.
    pub(crate) confirm: Option<Reply<Confirmation>>,
}

/// A started consumer's receiving ends.
pub(crate) struct ConsumerParts {
    pub(crate) consumer_tag: ShortStr,
    pub(crate) deliveries: mpsc::Receiver<Delivery>,
    /// Sent the reason when the consumer ends abnormally; dropped on a clean end.
    pub(crate) end: oneshot::Receiver<Error>,
}

impl ChannelCommand {
    /// Fails the command without sending anything.
    pub(crate) fn fail(self, reason: Error) {
        match self {
            ChannelCommand::Call { reply, .. } | ChannelCommand::ConfirmSelect { reply } => {
                let _ = reply.send(Err(reason));
            }
            ChannelCommand::Consume { reply, .. } => {
                let _ = reply.send(Err(reason));
            }
            ChannelCommand::Cancel { reply, .. } => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(reason));
                }
            }
            ChannelCommand::Get { reply, .. } => {
                let _ = reply.send(Err(reason));
            }
            ChannelCommand::Close { reply } => {
                let _ = reply.send(Err(reason));
            }
            ChannelCommand::Publish(publish) => {
                if let Some(confirm) = publish.confirm {
                    let _ = confirm.send(Err(reason));
                }
            }
            ChannelCommand::Send { .. } => {}
        }
    }
}
