//! The access class (30), dropped from 0-9-1 but still answered by RabbitMQ: some
//! old clients send access.request before declaring anything.

methods! {
    /// Client → server: asks for an access ticket (obsolete).
    AccessRequest = (30, 10, "access.request") {
        /// The realm.
        realm: shortstr,
        /// Exclusive access.
        exclusive: bit,
        /// Passive access.
        passive: bit,
        /// Active access.
        active: bit,
        /// Write access.
        write: bit,
        /// Read access.
        read: bit,
    }
    /// Server → client: the ticket (always 1 in RabbitMQ, and ignored).
    AccessRequestOk = (30, 11, "access.request-ok") {
        /// The ticket.
        ticket: short,
    }
}
