//! The confirm class (85, RabbitMQ): publisher confirms.

methods! {
    /// Puts the channel in confirm mode.
    ConfirmSelect = (85, 10, "confirm.select") {
        /// Do not reply.
        nowait: bit,
    }
    /// Confirms confirm.select.
    ConfirmSelectOk = (85, 11, "confirm.select-ok") {}
}
