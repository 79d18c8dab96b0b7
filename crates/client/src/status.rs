//! What the connection task publishes to the handles through `watch` channels: one
//! writer (the task), any number of readers, no locks held by callers.

use crate::error::Error;

/// A connection's state as the handles see it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionStatus {
    /// Why the connection closed; `None` while it is open.
    pub(crate) closed: Option<Error>,
    /// The server's connection.blocked reason, until connection.unblocked.
    pub(crate) blocked: Option<String>,
    /// The connection was lost and is reconnecting.
    pub(crate) recovering: bool,
    /// How many recoveries have completed.
    pub(crate) recoveries: u64,
}

/// A channel's state as the handles see it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelStatus {
    /// Why the channel closed; `None` while it is open.
    pub(crate) closed: Option<Error>,
    /// confirm.select has been sent: publishes get a confirmation to wait for.
    pub(crate) confirms: bool,
}
