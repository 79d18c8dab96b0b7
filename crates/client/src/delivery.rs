//! A message delivered by a consumer or fetched by basic.get, and its acknowledgement.

use std::fmt;

use bytes::Bytes;
use warren_codec::{BasicProperties, BasicReject, ShortStr};

use crate::channel::Channel;
use crate::error::Error;

/// A message from the broker.
#[derive(Debug)]
pub struct Delivery {
    /// The channel-wide number that acknowledges it.
    pub delivery_tag: u64,
    /// The broker delivered it before (to this or another consumer).
    pub redelivered: bool,
    /// The exchange it was published to (empty: the default exchange).
    pub exchange: ShortStr,
    /// The routing key it was published with.
    pub routing_key: ShortStr,
    /// Its properties, headers included.
    pub properties: BasicProperties,
    /// Its body.
    pub body: Bytes,
    /// Acknowledges it on the channel it came from.
    pub acker: Acker,
}

impl Delivery {
    /// Acknowledges this message (basic.ack).
    pub async fn ack(&self) -> Result<(), Error> {
        self.acker.ack().await
    }

    /// Acknowledges this message and every earlier unacknowledged one on the channel.
    pub async fn ack_multiple(&self) -> Result<(), Error> {
        self.acker.ack_multiple().await
    }

    /// Refuses this message (basic.nack): requeued, or dead-lettered or dropped.
    pub async fn nack(&self, requeue: bool) -> Result<(), Error> {
        self.acker.nack(requeue).await
    }

    /// Refuses this message (basic.reject): requeued, or dead-lettered or dropped.
    pub async fn reject(&self, requeue: bool) -> Result<(), Error> {
        self.acker.reject(requeue).await
    }
}

/// Acknowledges one delivery. Cloneable and detachable from the [`Delivery`], so the
/// body can go one way and the acknowledgement another.
///
/// Acknowledgements are asynchronous methods: each call returns once the method is
/// queued for the socket. On a delivery received with `no_ack` they do nothing. On a
/// closed channel they fail with its close reason (the broker has requeued the message).
/// Acknowledging the same delivery twice makes the broker close the channel with 406
/// PRECONDITION_FAILED.
#[derive(Clone)]
pub struct Acker {
    channel: Channel,
    delivery_tag: u64,
    no_ack: bool,
}

impl fmt::Debug for Acker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acker")
            .field("channel", &self.channel.id())
            .field("delivery_tag", &self.delivery_tag)
            .field("no_ack", &self.no_ack)
            .finish()
    }
}

impl Acker {
    pub(crate) fn new(channel: Channel, delivery_tag: u64, no_ack: bool) -> Self {
        Acker {
            channel,
            delivery_tag,
            no_ack,
        }
    }

    /// The delivery tag this acker settles.
    pub fn delivery_tag(&self) -> u64 {
        self.delivery_tag
    }

    /// Requeues the delivery without waiting (a dropped consumer's buffered deliveries).
    pub(crate) fn reject_on_drop(&self) {
        if !self.no_ack {
            self.channel.send_on_drop(
                BasicReject {
                    delivery_tag: self.delivery_tag,
                    requeue: true,
                }
                .into(),
            );
        }
    }

    /// basic.ack for this delivery.
    pub async fn ack(&self) -> Result<(), Error> {
        if self.no_ack {
            return Ok(());
        }
        self.channel.basic_ack(self.delivery_tag, false).await
    }

    /// basic.ack with `multiple`: this delivery and every earlier one on the channel.
    pub async fn ack_multiple(&self) -> Result<(), Error> {
        if self.no_ack {
            return Ok(());
        }
        self.channel.basic_ack(self.delivery_tag, true).await
    }

    /// basic.nack for this delivery.
    pub async fn nack(&self, requeue: bool) -> Result<(), Error> {
        if self.no_ack {
            return Ok(());
        }
        self.channel
            .basic_nack(self.delivery_tag, false, requeue)
            .await
    }

    /// basic.reject for this delivery.
    pub async fn reject(&self, requeue: bool) -> Result<(), Error> {
        if self.no_ack {
            return Ok(());
        }
        self.channel.basic_reject(self.delivery_tag, requeue).await
    }
}
