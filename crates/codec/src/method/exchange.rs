//! The exchange class (40): declare, delete, and RabbitMQ's exchange-to-exchange bindings.

methods! {
    /// Declares an exchange, or checks that it exists (passive).
    ExchangeDeclare = (40, 10, "exchange.declare") {
        /// Reserved ("ticket"), 0.
        ticket: short,
        /// Exchange name.
        exchange: shortstr,
        /// Exchange type: direct, fanout, topic, headers.
        kind: shortstr,
        /// Only check that the exchange exists.
        passive: bit,
        /// Survives a broker restart.
        durable: bit,
        /// Deleted when its last binding goes (RabbitMQ).
        auto_delete: bit,
        /// Cannot be published to directly, only through bindings (RabbitMQ).
        internal: bit,
        /// Do not reply.
        no_wait: bit,
        /// Extra arguments (alternate-exchange, ...).
        arguments: table,
    }
    /// Confirms a declare.
    ExchangeDeclareOk = (40, 11, "exchange.declare-ok") {}
    /// Deletes an exchange.
    ExchangeDelete = (40, 20, "exchange.delete") {
        /// Reserved ("ticket"), 0.
        ticket: short,
        /// Exchange name.
        exchange: shortstr,
        /// Only delete when it has no bindings.
        if_unused: bit,
        /// Do not reply.
        no_wait: bit,
    }
    /// Confirms a delete.
    ExchangeDeleteOk = (40, 21, "exchange.delete-ok") {}
    /// Binds an exchange to an exchange (RabbitMQ).
    ExchangeBind = (40, 30, "exchange.bind") {
        /// Reserved ("ticket"), 0.
        ticket: short,
        /// The exchange that receives.
        destination: shortstr,
        /// The exchange that routes.
        source: shortstr,
        /// Binding key.
        routing_key: shortstr,
        /// Do not reply.
        no_wait: bit,
        /// Binding arguments.
        arguments: table,
    }
    /// Confirms an exchange bind.
    ExchangeBindOk = (40, 31, "exchange.bind-ok") {}
    /// Removes an exchange-to-exchange binding (RabbitMQ).
    ExchangeUnbind = (40, 40, "exchange.unbind") {
        /// Reserved ("ticket"), 0.
        ticket: short,
        /// The exchange that receives.
        destination: shortstr,
        /// The exchange that routes.
        source: shortstr,
        /// Binding key.
        routing_key: shortstr,
        /// Do not reply.
        no_wait: bit,
        /// Binding arguments.
        arguments: table,
    }
    /// Confirms an exchange unbind. Its id is 51, not 41, in RabbitMQ's definition.
    ExchangeUnbindOk = (40, 51, "exchange.unbind-ok") {}
}
