//! The options of queue.declare (with RabbitMQ's queue arguments typed) and
//! queue.delete, and what queue.declare-ok reports.

use warren_codec::{FieldTable, FieldValue, ShortStr};

/// What the broker does when a queue with a length limit is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Drop (or dead-letter) the oldest message: RabbitMQ's default.
    DropHead,
    /// Refuse new messages (nacked under confirms).
    RejectPublish,
    /// Refuse new messages and dead-letter them.
    RejectPublishDlx,
}

impl Overflow {
    /// The `x-overflow` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Overflow::DropHead => "drop-head",
            Overflow::RejectPublish => "reject-publish",
            Overflow::RejectPublishDlx => "reject-publish-dlx",
        }
    }
}

/// Options for [`Channel::queue_declare`](crate::Channel::queue_declare).
///
/// The typed fields become RabbitMQ's `x-` arguments; anything else goes in
/// `arguments`, which the typed fields override key by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueDeclareOptions {
    /// Only check that the queue exists (404 NOT_FOUND if not); change nothing.
    pub passive: bool,
    /// Survives a broker restart.
    pub durable: bool,
    /// Used only by this connection and deleted when it closes.
    pub exclusive: bool,
    /// Deleted when its last consumer is cancelled.
    pub auto_delete: bool,
    /// `x-message-ttl`: messages expire after this many milliseconds in the queue.
    pub message_ttl: Option<u32>,
    /// `x-max-length`: at most this many ready messages.
    pub max_length: Option<u32>,
    /// `x-max-length-bytes`: at most this many bytes of ready message bodies.
    pub max_length_bytes: Option<u64>,
    /// `x-overflow`: what happens when a length limit is reached.
    pub overflow: Option<Overflow>,
    /// `x-dead-letter-exchange`: where rejected, expired and dropped messages go.
    pub dead_letter_exchange: Option<String>,
    /// `x-dead-letter-routing-key`: the routing key dead-lettered messages get.
    pub dead_letter_routing_key: Option<String>,
    /// `x-delivery-limit`: deliveries before a message is dead-lettered (quorum queues).
    pub delivery_limit: Option<u32>,
    /// `x-max-priority`: the highest message priority the queue orders by (1 to 255).
    pub max_priority: Option<u8>,
    /// `x-single-active-consumer`: deliver to one consumer at a time.
    pub single_active_consumer: bool,
    /// `x-expires`: delete the queue after this many milliseconds unused.
    pub expires: Option<u32>,
    /// Any other queue arguments (`x-queue-type`, ...).
    pub arguments: FieldTable,
}

impl QueueDeclareOptions {
    /// The arguments table sent: `arguments` with the typed fields set over it.
    pub fn to_arguments(&self) -> FieldTable {
        let mut table = self.arguments.clone();
        if let Some(ttl) = self.message_ttl {
            table.insert("x-message-ttl", i64::from(ttl));
        }
        if let Some(max) = self.max_length {
            table.insert("x-max-length", i64::from(max));
        }
        if let Some(max) = self.max_length_bytes {
            table.insert("x-max-length-bytes", i64::try_from(max).unwrap_or(i64::MAX));
        }
        if let Some(overflow) = self.overflow {
            table.insert("x-overflow", overflow.as_str());
        }
        if let Some(exchange) = &self.dead_letter_exchange {
            table.insert("x-dead-letter-exchange", exchange.as_str());
        }
        if let Some(key) = &self.dead_letter_routing_key {
            table.insert("x-dead-letter-routing-key", key.as_str());
        }
        if let Some(limit) = self.delivery_limit {
            table.insert("x-delivery-limit", i64::from(limit));
        }
        if let Some(priority) = self.max_priority {
            table.insert("x-max-priority", FieldValue::U8(priority));
        }
        if self.single_active_consumer {
            table.insert("x-single-active-consumer", true);
        }
        if let Some(expires) = self.expires {
            table.insert("x-expires", i64::from(expires));
        }
        table
    }
}

/// Options for [`Channel::queue_delete`](crate::Channel::queue_delete).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDeleteOptions {
    /// Delete only if it has no consumers (406 PRECONDITION_FAILED otherwise).
    pub if_unused: bool,
    /// Delete only if it has no messages (406 PRECONDITION_FAILED otherwise).
    pub if_empty: bool,
}

/// What queue.declare-ok reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// The queue's name: the broker's choice when declared with an empty name.
    pub name: ShortStr,
    /// Messages ready for delivery.
    pub message_count: u32,
    /// Consumers on the queue.
    pub consumer_count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_become_rabbitmq_arguments() {
        let mut raw = FieldTable::new();
        raw.insert("x-queue-type", "classic");
        raw.insert("x-message-ttl", 1);
        let options = QueueDeclareOptions {
            message_ttl: Some(60_000),
            max_length: Some(10),
            overflow: Some(Overflow::RejectPublishDlx),
            dead_letter_exchange: Some("dlx".into()),
            dead_letter_routing_key: Some("dead".into()),
            delivery_limit: Some(5),
            max_priority: Some(9),
            single_active_consumer: true,
            expires: Some(1_800_000),
            arguments: raw,
            ..Default::default()
        };
        let args = options.to_arguments();
        let int = |key: &str| args.get(key).and_then(FieldValue::as_i64);
        let text = |key: &str| args.get(key).and_then(FieldValue::as_str);
        assert_eq!(text("x-queue-type"), Some("classic"));
        assert_eq!(int("x-message-ttl"), Some(60_000));
        assert_eq!(int("x-max-length"), Some(10));
        assert_eq!(text("x-overflow"), Some("reject-publish-dlx"));
        assert_eq!(text("x-dead-letter-exchange"), Some("dlx"));
        assert_eq!(text("x-dead-letter-routing-key"), Some("dead"));
        assert_eq!(int("x-delivery-limit"), Some(5));
        assert_eq!(int("x-max-priority"), Some(9));
        assert_eq!(
            args.get("x-single-active-consumer"),
            Some(&FieldValue::Bool(true))
        );
        assert_eq!(int("x-expires"), Some(1_800_000));
        assert_eq!(args.get("x-max-length-bytes"), None);
        assert_eq!(args.len(), 10);
    }

    #[test]
    fn no_typed_fields_means_no_arguments() {
        assert!(QueueDeclareOptions::default().to_arguments().is_empty());
    }
}
