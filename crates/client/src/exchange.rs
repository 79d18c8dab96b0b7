//! Exchange kinds and the options of exchange.declare and exchange.delete.

use std::fmt;

use warren_codec::FieldTable;

/// The type of an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    /// Routes to queues bound with exactly the routing key.
    Direct,
    /// Routes to every bound queue.
    Fanout,
    /// Routes by pattern: `*` is one dot-separated word, `#` zero or more.
    Topic,
    /// Routes by header values (`x-match` any/all).
    Headers,
    /// A plugin's type, such as `x-consistent-hash`.
    Custom(String),
}

impl ExchangeKind {
    /// The name sent in exchange.declare.
    pub fn as_str(&self) -> &str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
            ExchangeKind::Custom(name) => name,
        }
    }
}

impl fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options for [`Channel::exchange_declare`](crate::Channel::exchange_declare).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExchangeDeclareOptions {
    /// Only check that the exchange exists (404 NOT_FOUND if not); change nothing.
    pub passive: bool,
    /// Survives a broker restart.
    pub durable: bool,
    /// Deleted when its last binding is removed.
    pub auto_delete: bool,
    /// Cannot be published to directly, only through exchange-to-exchange bindings.
    pub internal: bool,
    /// Exchange arguments (`alternate-exchange`, ...).
    pub arguments: FieldTable,
}

/// Options for [`Channel::exchange_delete`](crate::Channel::exchange_delete).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExchangeDeleteOptions {
    /// Delete only if it has no bindings (406 PRECONDITION_FAILED otherwise).
    pub if_unused: bool,
}
