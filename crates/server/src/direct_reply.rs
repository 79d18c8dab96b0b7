//! Direct reply-to (RabbitMQ's `amq.rabbitmq.reply-to`): RPC replies that go straight
//! to the requesting channel's consumer, with no reply queue.
//!
//! A requester consumes from the pseudo-queue `amq.rabbitmq.reply-to` (no-ack only,
//! one such consumer per channel) and publishes requests with `reply-to` set to that
//! name, which the broker rewrites to `amq.rabbitmq.reply-to.<token>`. A reply published
//! to the default exchange with that routing key is delivered to the consumer at once;
//! when the requester has gone, it is dropped (at-most-once, as in RabbitMQ).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use warren_codec::ShortStr;

use crate::connection::events::{ConnectionHandle, Event};
use crate::message::Message;
use crate::names;

/// The pseudo-queue requesters consume from and name in `reply-to`.
pub(crate) const REPLY_TO: &str = "amq.rabbitmq.reply-to";
/// The prefix of the names the broker writes into `reply-to`.
pub(crate) const REPLY_TO_PREFIX: &str = "amq.rabbitmq.reply-to.";

/// Where replies to one token go.
struct Target {
    connection: ConnectionHandle,
    channel: u16,
    consumer_tag: ShortStr,
}

/// Every live reply consumer of the broker, by token.
///
/// A std mutex around a map: consumers come and go per channel and replies look one
/// up; each critical section is one map operation, never held across `.await`. A
/// registry task would cost a message round trip per reply.
#[derive(Default)]
pub(crate) struct DirectReplies {
    targets: Mutex<HashMap<Box<str>, Target>>,
}

/// A channel's reply consumer; unregisters itself when dropped (cancel, channel or
/// connection close).
pub(crate) struct ReplyConsumer {
    pub(crate) tag: ShortStr,
    /// The name requests carry in `reply-to`.
    pub(crate) address: ShortStr,
    registry: Arc<DirectReplies>,
}

impl Drop for ReplyConsumer {
    fn drop(&mut self) {
        if let Some(token) = self.address.as_str().strip_prefix(REPLY_TO_PREFIX) {
            self.registry.lock().remove(token);
        }
    }
}

impl DirectReplies {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Target>> {
        // Each critical section is a single insert, remove or lookup: a panic cannot
        // leave the map half changed.
        self.targets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a reply consumer and returns it with its reply address.
    pub(crate) fn register(
        self: &Arc<Self>,
        connection: ConnectionHandle,
        channel: u16,
        consumer_tag: ShortStr,
    ) -> ReplyConsumer {
        let address = names::generated(REPLY_TO_PREFIX);
        let token = address
            .as_str()
            .strip_prefix(REPLY_TO_PREFIX)
            .unwrap_or_default();
        self.lock().insert(
            token.into(),
            Target {
                connection,
                channel,
                consumer_tag: consumer_tag.clone(),
            },
        );
        ReplyConsumer {
            tag: consumer_tag,
            address,
            registry: self.clone(),
        }
    }

    /// Whether `address` (a full `amq.rabbitmq.reply-to.<token>` name) has a consumer.
    pub(crate) fn is_live(&self, address: &str) -> bool {
        address
            .strip_prefix(REPLY_TO_PREFIX)
            .is_some_and(|token| self.lock().contains_key(token))
    }

    /// Delivers a reply published to `address`; false when nobody waits for it.
    pub(crate) fn deliver(&self, address: &str, message: Message) -> bool {
        let Some(token) = address.strip_prefix(REPLY_TO_PREFIX) else {
            return false;
        };
        let target = self.lock().get(token).map(|t| {
            (
                t.connection.clone(),
                Event::DirectReply {
                    channel: t.channel,
                    consumer_tag: t.consumer_tag.clone(),
                    message,
                },
            )
        });
        match target {
            Some((connection, event)) => connection.send(event),
            None => false,
        }
    }
}
