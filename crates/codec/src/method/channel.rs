//! The channel class (20): open, flow control, close.

methods! {
    /// Client → server: opens a channel.
    ChannelOpen = (20, 10, "channel.open") {
        /// Reserved ("out-of-band"), empty.
        reserved_1: shortstr,
    }
    /// Server → client: the channel is open.
    ChannelOpenOk = (20, 11, "channel.open-ok") {
        /// Reserved ("channel-id"), empty.
        reserved_1: longstr,
    }
    /// Either peer: pauses or resumes content flow on the channel.
    ChannelFlow = (20, 20, "channel.flow") {
        /// True to resume, false to pause.
        active: bit,
    }
    /// Either peer: confirms a flow change.
    ChannelFlowOk = (20, 21, "channel.flow-ok") {
        /// The flow state now in force.
        active: bit,
    }
    /// Either peer: closes the channel, with the reason.
    ChannelClose = (20, 40, "channel.close") {
        /// Reply code.
        reply_code: short,
        /// Reply text.
        reply_text: shortstr,
        /// Class of the method that failed, or 0.
        class_id: short,
        /// Method that failed, or 0.
        method_id: short,
    }
    /// Either peer: confirms a channel close.
    ChannelCloseOk = (20, 41, "channel.close-ok") {}
}
