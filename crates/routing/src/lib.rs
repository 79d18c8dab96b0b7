//! Exchanges and bindings of one virtual host, and the routing decision: which queues
//! a message goes to. Pure data structures: no I/O, no locks, no async.
//!
//! The broker keeps a [`Topology`] per vhost, changes it on declare / bind / delete, and
//! publishes immutable copies for publishers to route against. Exchanges sit behind
//! `Arc` so such a copy costs a pointer per exchange, not a deep clone.
//!
//! ```
//! use warren_routing::{Envelope, ExchangeKind, ExchangeSpec, Topology};
//!
//! let mut topology = Topology::new();
//! topology.declare(ExchangeSpec::new("logs", ExchangeKind::Fanout)).unwrap();
//! topology.bind_queue("logs", "q1", "", Default::default()).unwrap();
//! topology.bind_queue("logs", "q2", "", Default::default()).unwrap();
//! let envelope = Envelope::new("anything", None).unwrap();
//! let mut queues: Vec<String> =
//!     topology.route("logs", &envelope).unwrap().iter().map(|q| q.to_string()).collect();
//! queues.sort();
//! assert_eq!(queues, ["q1", "q2"]);
//! ```
#![deny(missing_docs)]

mod binding;
mod envelope;
mod error;
mod exchange;
mod headers;
mod topic;
mod topology;

pub use binding::{Binding, Destination};
pub use envelope::Envelope;
pub use error::RoutingError;
pub use exchange::{
    ALTERNATE_EXCHANGE, Exchange, ExchangeKind, ExchangeSpec, Unroutable, X_UNROUTABLE,
};
pub use topology::Topology;
