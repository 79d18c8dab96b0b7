//! The queue class (50): declare, bind, unbind, purge, delete.

methods! {
    /// Declares a queue, or checks that it exists (passive).
    QueueDeclare = (50, 10, "queue.declare") {
        /// Reserved ("ticket"), 0.
        ticket: short,
        /// Queue name; empty asks the server to pick one.
        queue: shortstr,
        /// Only check that the queue exists.
        passive: bit,
        /// Survives a broker restart.
        durable: bit,
        /// Owned by this connection and deleted with it.
        exclusive: bit,
        /// Deleted when its last consumer goes.
        auto_delete: bit,
        /// Do not reply.
        no_wait: bit,
        /// Extra arguments (x-message-ttl, x-max-length, ...).
        arguments: table,
    }
    /// Confirms a declare with the queue's name and counts.
    QueueDeclareOk = (50, 11, "queue.declare-ok") {
        /// The queue's name (server-generated when asked).
        queue: shortstr,
        /// Messages ready for delivery.
        message_count: long,
        /// Active consumers.
        consumer_count: long,
    }
    /// Binds a queue to an exchange.
    QueueBind = (50, 20, "queue.bind") {
        /// Reserved ("ticket"), 0.
        ticket: short,
        /// Queue name.
        queue: shortstr,
        /// Exchange name.
        exchange: shortstr,
        /// Binding key.
        routing_key: shortstr,
        /// Do not reply.
        no_wait: bit,
        /// Binding arguments (headers exchange matching, ...).
        arguments: table,
    }
    /// Confirms a bind.
    QueueBindOk = (50, 21, "queue.bind-ok") {}
    /// Removes a binding.
    QueueUnbind = (50, 50, "queue.unbind") {
        /// Reserved ("ticket"), 0.
        ticket: short,
        /// Queue name.
        queue: shortstr,
        /// Exchange name.
        exchange: shortstr,
        /// Binding key.
        routing_key: shortstr,
        /// Binding arguments.
        arguments: table,
    }
    /// Confirms an unbind.
    QueueUnbindOk = (50, 51, "queue.unbind-ok") {}
    /// Removes all ready messages from a queue.
    QueuePurge = (50, 30, "queue.purge") {
        /// Reserved ("ticket"), 0.
        ticket: short,
        /// Queue name.
        queue: shortstr,
        /// Do not reply.
        no_wait: bit,
    }
    /// Confirms a purge.
    QueuePurgeOk = (50, 31, "queue.purge-ok") {
        /// Messages removed.
        message_count: long,
    }
    /// Deletes a queue.
    QueueDelete = (50, 40, "queue.delete") {
        /// Reserved ("ticket"), 0.
        ticket: short,
        /// Queue name.
        queue: shortstr,
        /// Only delete when it has no consumers.
        if_unused: bit,
        /// Only delete when it has no messages.
        if_empty: bit,
        /// Do not reply.
        no_wait: bit,
    }
    /// Confirms a delete.
    QueueDeleteOk = (50, 41, "queue.delete-ok") {
        /// Messages deleted with the queue.
        message_count: long,
    }
}
