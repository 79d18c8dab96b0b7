//! A binding: from an exchange to a destination, with a key and arguments.

use std::sync::Arc;

use warren_codec::FieldTable;

/// Where a binding leads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    /// A queue, by name.
    Queue(Arc<str>),
    /// An exchange, by name (exchange-to-exchange bindings).
    Exchange(Arc<str>),
}

/// One binding of an exchange. Bindings are equal when destination, key and arguments
/// are, as in RabbitMQ: binding twice is a no-op.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Where matching messages go.
    pub destination: Destination,
    /// The binding key.
    pub routing_key: Arc<str>,
    /// Binding arguments.
    pub arguments: FieldTable,
}
