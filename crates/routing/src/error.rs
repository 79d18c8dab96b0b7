//! Why a topology operation failed. The broker maps each to an AMQP reply code.

use thiserror::Error;

/// A refused topology operation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoutingError {
    /// The exchange does not exist (404).
    #[error("no exchange '{0}'")]
    ExchangeNotFound(String),
    /// A redeclare with other properties (406).
    #[error(
        "inequivalent arg '{field}' for exchange '{exchange}': received '{received}' but current is '{current}'"
    )]
    Inequivalent {
        /// The exchange.
        exchange: String,
        /// The property that differs.
        field: &'static str,
        /// What the redeclare asked for.
        received: String,
        /// What the exchange has.
        current: String,
    },
    /// The default exchange cannot be bound, unbound or deleted (403).
    #[error("operation not permitted on the default exchange")]
    DefaultExchange,
    /// `exchange.delete` with if-unused on an exchange that has bindings (406).
    #[error("exchange '{0}' in use")]
    InUse(String),
    /// An exchange argument of the wrong type or value (406).
    #[error("invalid arg '{argument}' for exchange '{exchange}': {reason}")]
    InvalidArgument {
        /// The exchange.
        exchange: String,
        /// The argument.
        argument: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Binding arguments the exchange type refuses, such as a bad `x-match` (406).
    #[error("{0}")]
    InvalidBinding(String),
    /// A `CC` or `BCC` header that is not an array (406).
    #[error(
        "invalid message: header '{header}' must be an array of strings, not type '{type_letter}'"
    )]
    RoutingHeader {
        /// `CC` or `BCC`.
        header: &'static str,
        /// The AMQP type letter the header had.
        type_letter: char,
    },
}
