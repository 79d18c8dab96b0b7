//! The basic class (60): publishing, consuming, acknowledging.

methods! {
    /// Sets the prefetch window.
    BasicQos = (60, 10, "basic.qos") {
        /// Window in bytes (0 = none; RabbitMQ refuses anything else).
        prefetch_size: long,
        /// Window in messages (0 = none).
        prefetch_count: short,
        /// RabbitMQ: true applies to the channel, false to each new consumer.
        global: bit,
    }
    /// Confirms a qos.
    BasicQosOk = (60, 11, "basic.qos-ok") {}
    /// Starts a consumer.
    BasicConsume = (60, 20, "basic.consume") {
        /// Reserved ("ticket"), 0.
        ticket: short,
        /// Queue name.
        queue: shortstr,
        /// Consumer tag; empty asks the server to pick one.
        consumer_tag: shortstr,
        /// Do not deliver this connection's own messages (ignored by RabbitMQ).
        no_local: bit,
        /// Deliveries need no acknowledgement.
        no_ack: bit,
        /// The only consumer of the queue.
        exclusive: bit,
        /// Do not reply.
        no_wait: bit,
        /// Consumer arguments (x-priority, ...).
        arguments: table,
    }
    /// Confirms a consumer with its tag.
    BasicConsumeOk = (60, 21, "basic.consume-ok") {
        /// The consumer tag.
        consumer_tag: shortstr,
    }
    /// Ends a consumer (either direction in RabbitMQ).
    BasicCancel = (60, 30, "basic.cancel") {
        /// The consumer tag.
        consumer_tag: shortstr,
        /// Do not reply.
        no_wait: bit,
    }
    /// Confirms a cancel.
    BasicCancelOk = (60, 31, "basic.cancel-ok") {
        /// The consumer tag.
        consumer_tag: shortstr,
    }
    /// Publishes a message; a content header and body follow.
    BasicPublish = (60, 40, "basic.publish") {
        /// Reserved ("ticket"), 0.
        ticket: short,
        /// Exchange name; empty is the default exchange.
        exchange: shortstr,
        /// Routing key.
        routing_key: shortstr,
        /// Return the message if no queue gets it.
        mandatory: bit,
        /// Return the message if no consumer takes it now (refused by RabbitMQ).
        immediate: bit,
    }
    /// Returns an unroutable mandatory message; content follows.
    BasicReturn = (60, 50, "basic.return") {
        /// Reply code (312 NO_ROUTE).
        reply_code: short,
        /// Reply text.
        reply_text: shortstr,
        /// Exchange published to.
        exchange: shortstr,
        /// Routing key published with.
        routing_key: shortstr,
    }
    /// Delivers a message to a consumer; content follows.
    BasicDeliver = (60, 60, "basic.deliver") {
        /// The consumer's tag.
        consumer_tag: shortstr,
        /// Channel-wide sequence number for acks.
        delivery_tag: longlong,
        /// The message was delivered before.
        redelivered: bit,
        /// Exchange published to.
        exchange: shortstr,
        /// Routing key published with.
        routing_key: shortstr,
    }
    /// Fetches one message synchronously.
    BasicGet = (60, 70, "basic.get") {
        /// Reserved ("ticket"), 0.
        ticket: short,
        /// Queue name.
        queue: shortstr,
        /// The message needs no acknowledgement.
        no_ack: bit,
    }
    /// Answers a get with a message; content follows.
    BasicGetOk = (60, 71, "basic.get-ok") {
        /// Channel-wide sequence number for acks.
        delivery_tag: longlong,
        /// The message was delivered before.
        redelivered: bit,
        /// Exchange published to.
        exchange: shortstr,
        /// Routing key published with.
        routing_key: shortstr,
        /// Messages still in the queue.
        message_count: long,
    }
    /// Answers a get on an empty queue.
    BasicGetEmpty = (60, 72, "basic.get-empty") {
        /// Reserved ("cluster-id"), empty.
        reserved_1: shortstr,
    }
    /// Acknowledges deliveries; from the server, confirms publishes.
    BasicAck = (60, 80, "basic.ack") {
        /// The delivery tag (or publish sequence number).
        delivery_tag: longlong,
        /// Covers every tag up to and including this one.
        multiple: bit,
    }
    /// Rejects one delivery.
    BasicReject = (60, 90, "basic.reject") {
        /// The delivery tag.
        delivery_tag: longlong,
        /// Put the message back in the queue.
        requeue: bit,
    }
    /// Redelivers unacknowledged messages, without a reply (deprecated).
    BasicRecoverAsync = (60, 100, "basic.recover-async") {
        /// Requeue instead of redelivering to the same consumer.
        requeue: bit,
    }
    /// Redelivers unacknowledged messages.
    BasicRecover = (60, 110, "basic.recover") {
        /// Requeue instead of redelivering to the same consumer.
        requeue: bit,
    }
    /// Confirms a recover.
    BasicRecoverOk = (60, 111, "basic.recover-ok") {}
    /// Rejects deliveries, several at once (RabbitMQ); from the server, refuses publishes.
    BasicNack = (60, 120, "basic.nack") {
        /// The delivery tag (or publish sequence number).
        delivery_tag: longlong,
        /// Covers every tag up to and including this one.
        multiple: bit,
        /// Put the messages back in the queue.
        requeue: bit,
    }
}
