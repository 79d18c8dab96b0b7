//! Declaring, binding and deleting exchanges and queues.

use warren_codec::{
    ExchangeBind, ExchangeBindOk, ExchangeDeclare, ExchangeDeclareOk, ExchangeDelete,
    ExchangeDeleteOk, ExchangeUnbind, ExchangeUnbindOk, FieldTable, Method, QueueBind, QueueBindOk,
    QueueDeclare, QueueDeclareOk, QueueDelete, QueueDeleteOk, QueuePurge, QueuePurgeOk,
    QueueUnbind, QueueUnbindOk,
};

use super::{Channel, name, unexpected};
use crate::connection::recorded::Record;
use crate::error::Error;
use crate::exchange::{ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind};
use crate::queue::{QueueDeclareOptions, QueueDeleteOptions, QueueInfo};

macro_rules! id {
    ($ok:ident) => {
        ($ok::CLASS_ID, $ok::METHOD_ID)
    };
}

impl Channel {
    /// Declares an exchange (exchange.declare), or with `passive` checks it exists.
    ///
    /// The broker closes the channel with 406 PRECONDITION_FAILED if the exchange
    /// exists with other properties, 404 NOT_FOUND for a passive declare of a missing
    /// exchange, 403 ACCESS_REFUSED for a reserved `amq.` name; the connection with 503
    /// COMMAND_INVALID for an unknown kind.
    pub async fn exchange_declare(
        &self,
        exchange: &str,
        kind: ExchangeKind,
        options: ExchangeDeclareOptions,
    ) -> Result<(), Error> {
        let method = ExchangeDeclare {
            exchange: name(exchange, "exchange")?,
            kind: name(kind.as_str(), "exchange kind")?,
            passive: options.passive,
            durable: options.durable,
            auto_delete: options.auto_delete,
            internal: options.internal,
            arguments: options.arguments,
            ..Default::default()
        };
        let recorded = self.recording().then(|| method.clone());
        self.call(method.into(), id!(ExchangeDeclareOk)).await?;
        if let Some(declare) = recorded {
            self.record(Record::Exchange(declare)).await;
        }
        Ok(())
    }

    /// Deletes an exchange (exchange.delete). Deleting a missing exchange succeeds on
    /// RabbitMQ; `if_unused` on one with bindings closes the channel with 406.
    pub async fn exchange_delete(
        &self,
        exchange: &str,
        options: ExchangeDeleteOptions,
    ) -> Result<(), Error> {
        let method = ExchangeDelete {
            exchange: name(exchange, "exchange")?,
            if_unused: options.if_unused,
            ..Default::default()
        };
        let recorded = self.recording().then(|| method.exchange.clone());
        self.call(method.into(), id!(ExchangeDeleteOk)).await?;
        if let Some(name) = recorded {
            self.record(Record::ExchangeDeleted(name)).await;
        }
        Ok(())
    }

    /// Binds exchange `destination` to exchange `source` (exchange.bind, a RabbitMQ
    /// extension). 404 NOT_FOUND if either is missing.
    pub async fn exchange_bind(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<(), Error> {
        let method = ExchangeBind {
            destination: name(destination, "exchange")?,
            source: name(source, "exchange")?,
            routing_key: name(routing_key, "routing key")?,
            arguments,
            ..Default::default()
        };
        let recorded = self.recording().then(|| method.clone());
        self.call(method.into(), id!(ExchangeBindOk)).await?;
        if let Some(bind) = recorded {
            self.record(Record::ExchangeBound(bind)).await;
        }
        Ok(())
    }

    /// Removes an exchange-to-exchange binding (exchange.unbind).
    pub async fn exchange_unbind(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<(), Error> {
        let method = ExchangeUnbind {
            destination: name(destination, "exchange")?,
            source: name(source, "exchange")?,
            routing_key: name(routing_key, "routing key")?,
            arguments,
            ..Default::default()
        };
        let recorded = self.recording().then(|| ExchangeBind {
            destination: method.destination.clone(),
            source: method.source.clone(),
            routing_key: method.routing_key.clone(),
            arguments: method.arguments.clone(),
            ..Default::default()
        });
        self.call(method.into(), id!(ExchangeUnbindOk)).await?;
        if let Some(unbind) = recorded {
            self.record(Record::ExchangeUnbound(unbind)).await;
        }
        Ok(())
    }

    /// Declares a queue (queue.declare), or with `passive` checks it exists. An empty
    /// name lets the broker choose one, returned in [`QueueInfo::name`].
    ///
    /// The broker closes the channel with 404 NOT_FOUND for a passive declare of a
    /// missing queue, 406 PRECONDITION_FAILED if the queue exists with other
    /// properties or arguments, 405 RESOURCE_LOCKED if another connection owns it
    /// exclusively, 403 ACCESS_REFUSED for a reserved `amq.` name.
    pub async fn queue_declare(
        &self,
        queue: &str,
        options: QueueDeclareOptions,
    ) -> Result<QueueInfo, Error> {
        let method = QueueDeclare {
            queue: name(queue, "queue")?,
            passive: options.passive,
            durable: options.durable,
            exclusive: options.exclusive,
            auto_delete: options.auto_delete,
            arguments: options.to_arguments(),
            ..Default::default()
        };
        let recorded = self.recording().then(|| method.clone());
        let ok = match self.call(method.into(), id!(QueueDeclareOk)).await? {
            Method::QueueDeclareOk(ok) => ok,
            other => return Err(unexpected(&other)),
        };
        if let Some(declare) = recorded {
            let name = ok.queue.clone();
            self.record(Record::Queue { declare, name }).await;
        }
        Ok(QueueInfo {
            name: ok.queue,
            message_count: ok.message_count,
            consumer_count: ok.consumer_count,
        })
    }

    /// Binds a queue to an exchange (queue.bind). 404 NOT_FOUND if either is missing.
    pub async fn queue_bind(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<(), Error> {
        let method = QueueBind {
            queue: name(queue, "queue")?,
            exchange: name(exchange, "exchange")?,
            routing_key: name(routing_key, "routing key")?,
            arguments,
            ..Default::default()
        };
        let recorded = self.recording().then(|| method.clone());
        self.call(method.into(), id!(QueueBindOk)).await?;
        if let Some(bind) = recorded {
            self.record(Record::QueueBound(bind)).await;
        }
        Ok(())
    }

    /// Removes a queue binding (queue.unbind).
    pub async fn queue_unbind(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<(), Error> {
        let method = QueueUnbind {
            queue: name(queue, "queue")?,
            exchange: name(exchange, "exchange")?,
            routing_key: name(routing_key, "routing key")?,
            arguments,
            ..Default::default()
        };
        let recorded = self.recording().then(|| QueueBind {
            queue: method.queue.clone(),
            exchange: method.exchange.clone(),
            routing_key: method.routing_key.clone(),
            arguments: method.arguments.clone(),
            ..Default::default()
        });
        self.call(method.into(), id!(QueueUnbindOk)).await?;
        if let Some(unbind) = recorded {
            self.record(Record::QueueUnbound(unbind)).await;
        }
        Ok(())
    }

    /// Removes a queue's ready messages (queue.purge); returns how many. 404 NOT_FOUND
    /// if the queue is missing.
    pub async fn queue_purge(&self, queue: &str) -> Result<u32, Error> {
        let method = QueuePurge {
            queue: name(queue, "queue")?,
            ..Default::default()
        };
        match self.call(method.into(), id!(QueuePurgeOk)).await? {
            Method::QueuePurgeOk(ok) => Ok(ok.message_count),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes a queue (queue.delete); returns how many messages it held. Its
    /// consumers are cancelled. 406 PRECONDITION_FAILED when `if_unused` or `if_empty`
    /// does not hold.
    pub async fn queue_delete(
        &self,
        queue: &str,
        options: QueueDeleteOptions,
    ) -> Result<u32, Error> {
        let method = QueueDelete {
            queue: name(queue, "queue")?,
            if_unused: options.if_unused,
            if_empty: options.if_empty,
            ..Default::default()
        };
        let recorded = self.recording().then(|| method.queue.clone());
        let count = match self.call(method.into(), id!(QueueDeleteOk)).await? {
            Method::QueueDeleteOk(ok) => ok.message_count,
            other => return Err(unexpected(&other)),
        };
        if let Some(name) = recorded {
            self.record(Record::QueueDeleted(name)).await;
        }
        Ok(count)
    }
}
