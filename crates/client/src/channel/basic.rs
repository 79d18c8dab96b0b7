//! The basic class (qos, publish, consume, get, acknowledgements), publisher confirms
//! and transactions.

use bytes::Bytes;
use tokio::sync::oneshot;
use warren_codec::{
    BasicAck, BasicConsume, BasicGet, BasicNack, BasicProperties, BasicPublish, BasicQos,
    BasicQosOk, BasicReject, Method, TxCommit, TxCommitOk, TxRollback, TxRollbackOk, TxSelect,
    TxSelectOk,
};

use super::{Channel, name};
use crate::connection::command::{ChannelCommand, Publish};
use crate::consumer::{ConsumeOptions, Consumer};
use crate::delivery::Delivery;
use crate::error::Error;
use crate::publish::{PublishOptions, PublisherConfirm};

impl Channel {
    /// Limits unacknowledged deliveries (basic.qos): per consumer started afterwards,
    /// or with `global` shared by the channel's consumers (RabbitMQ's reading of the
    /// flag). 0 means no limit. The prefetch count also sizes the buffer of consumers
    /// started afterwards (see [`Consumer`]).
    pub async fn basic_qos(&self, prefetch_count: u16, global: bool) -> Result<(), Error> {
        let method = BasicQos {
            prefetch_size: 0,
            prefetch_count,
            global,
        };
        self.call(method.into(), (BasicQosOk::CLASS_ID, BasicQosOk::METHOD_ID))
            .await?;
        Ok(())
    }

    /// Publishes a message (basic.publish with its content).
    ///
    /// Returns once the message is queued for the socket; the returned
    /// [`PublisherConfirm`] resolves when the broker confirms it (after
    /// [`Channel::confirm_select`]) or at once otherwise. Publishes pipeline: start many,
    /// then await their confirms together. A mandatory message that no queue takes
    /// resolves as [`Confirmation::Returned`](crate::Confirmation::Returned) in confirm
    /// mode, and otherwise arrives on [`Channel::returns`].
    ///
    /// Publishing to a missing exchange makes the broker close the channel with 404
    /// NOT_FOUND; the publish itself has already returned, so the error surfaces on the
    /// confirm or the channel's next call.
    pub async fn basic_publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: impl Into<Bytes>,
        properties: BasicProperties,
        options: PublishOptions,
    ) -> Result<PublisherConfirm, Error> {
        let method = BasicPublish {
            exchange: name(exchange, "exchange")?,
            routing_key: name(routing_key, "routing key")?,
            mandatory: options.mandatory,
            ..Default::default()
        };
        let (confirm, waiting) = if self.is_confirm_mode() {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.submit(ChannelCommand::Publish(Box::new(Publish {
            method,
            properties,
            body: body.into(),
            confirm,
        })))
        .await?;
        Ok(match waiting {
            Some(rx) => PublisherConfirm::waiting(rx, self.clone()),
            None => PublisherConfirm::not_requested(),
        })
    }

    /// Starts a consumer on a queue (basic.consume) and returns its stream of
    /// deliveries.
    ///
    /// The broker closes the channel with 404 NOT_FOUND for a missing queue, 403
    /// ACCESS_REFUSED if the queue has an exclusive consumer (or this one asks to be
    /// exclusive and there are others), 405 RESOURCE_LOCKED for another connection's
    /// exclusive queue, 530 NOT_ALLOWED (connection) for a consumer tag in use.
    pub async fn basic_consume(
        &self,
        queue: &str,
        options: ConsumeOptions,
    ) -> Result<Consumer, Error> {
        let method = BasicConsume {
            queue: name(queue, "queue")?,
            consumer_tag: name(&options.consumer_tag, "consumer tag")?,
            no_local: options.no_local,
            no_ack: options.no_ack,
            exclusive: options.exclusive,
            arguments: options.arguments,
            ..Default::default()
        };
        let (reply, rx) = oneshot::channel();
        self.submit(ChannelCommand::Consume { method, reply })
            .await?;
        let parts = self.answer(rx).await?;
        Ok(Consumer::new(
            parts.consumer_tag,
            self.clone(),
            parts.deliveries,
            parts.end,
        ))
    }

    /// Cancels a consumer by tag (basic.cancel) and waits for cancel-ok. Succeeds for a
    /// consumer that has already ended.
    pub async fn basic_cancel(&self, consumer_tag: &str) -> Result<(), Error> {
        let consumer_tag = name(consumer_tag, "consumer tag")?;
        let (reply, rx) = oneshot::channel();
        self.submit(ChannelCommand::Cancel {
            consumer_tag,
            reply: Some(reply),
        })
        .await?;
        self.answer(rx).await
    }

    /// Fetches one message (basic.get): `None` when the queue is empty. 404 NOT_FOUND
    /// for a missing queue.
    pub async fn basic_get(&self, queue: &str, no_ack: bool) -> Result<Option<Delivery>, Error> {
        let method = BasicGet {
            queue: name(queue, "queue")?,
            no_ack,
            ..Default::default()
        };
        let (reply, rx) = oneshot::channel();
        self.submit(ChannelCommand::Get { method, reply }).await?;
        self.answer(rx).await
    }

    /// Acknowledges a delivery by tag (basic.ack), with `multiple` every earlier one
    /// too. An unknown tag makes the broker close the channel with 406.
    pub async fn basic_ack(&self, delivery_tag: u64, multiple: bool) -> Result<(), Error> {
        let method = BasicAck {
            delivery_tag,
            multiple,
        };
        self.submit(ChannelCommand::Send {
            method: method.into(),
        })
        .await
    }

    /// Refuses deliveries by tag (basic.nack, a RabbitMQ extension).
    pub async fn basic_nack(
        &self,
        delivery_tag: u64,
        multiple: bool,
        requeue: bool,
    ) -> Result<(), Error> {
        let method = BasicNack {
            delivery_tag,
            multiple,
            requeue,
        };
        self.submit(ChannelCommand::Send {
            method: method.into(),
        })
        .await
    }

    /// Refuses one delivery by tag (basic.reject).
    pub async fn basic_reject(&self, delivery_tag: u64, requeue: bool) -> Result<(), Error> {
        let method = BasicReject {
            delivery_tag,
            requeue,
        };
        self.submit(ChannelCommand::Send {
            method: method.into(),
        })
        .await
    }

    /// Puts the channel in confirm mode (confirm.select): from now on every publish's
    /// [`PublisherConfirm`] resolves when the broker acks or nacks it. A channel in
    /// transaction mode refuses it with 406 PRECONDITION_FAILED.
    pub async fn confirm_select(&self) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        self.submit(ChannelCommand::ConfirmSelect { reply }).await?;
        self.answer(rx).await?;
        Ok(())
    }

    /// Puts the channel in transaction mode (tx.select). A channel in confirm mode
    /// refuses it with 406 PRECONDITION_FAILED.
    pub async fn tx_select(&self) -> Result<(), Error> {
        self.tx(
            TxSelect {}.into(),
            (TxSelectOk::CLASS_ID, TxSelectOk::METHOD_ID),
        )
        .await
    }

    /// Commits the publishes and acknowledgements since the last commit (tx.commit).
    /// 406 PRECONDITION_FAILED outside transaction mode.
    pub async fn tx_commit(&self) -> Result<(), Error> {
        self.tx(
            TxCommit {}.into(),
            (TxCommitOk::CLASS_ID, TxCommitOk::METHOD_ID),
        )
        .await
    }

    /// Discards the publishes and acknowledgements since the last commit
    /// (tx.rollback). 406 PRECONDITION_FAILED outside transaction mode.
    pub async fn tx_rollback(&self) -> Result<(), Error> {
        self.tx(
            TxRollback {}.into(),
            (TxRollbackOk::CLASS_ID, TxRollbackOk::METHOD_ID),
        )
        .await
    }

    async fn tx(&self, method: Method, expect: (u16, u16)) -> Result<(), Error> {
        self.call(method, expect).await?;
        Ok(())
    }
}
