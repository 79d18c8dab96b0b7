//! The topology a connection with automatic recovery declared, kept so that it can be
//! declared again on the new connection.
//!
//! Channels report what succeeded ([`Record`]); the connection task keeps the result:
//! the declares as they were sent, and the bindings, minus what was deleted. A
//! deletion also forgets the bindings that the broker removes with the queue or
//! exchange. Passive declares are checks, not topology, and are not recorded.

use std::collections::HashMap;

use warren_codec::{ExchangeBind, ExchangeDeclare, QueueBind, QueueDeclare, ShortStr};

/// A topology change the broker accepted.
#[derive(Debug)]
pub(crate) enum Record {
    Exchange(ExchangeDeclare),
    ExchangeDeleted(ShortStr),
    /// A queue declare as sent (an empty name asks the broker for one), and the name
    /// the queue got.
    Queue {
        declare: QueueDeclare,
        name: ShortStr,
    },
    QueueDeleted(ShortStr),
    QueueBound(QueueBind),
    /// queue.unbind, in queue.bind's shape so that it matches the recorded binding.
    QueueUnbound(QueueBind),
    ExchangeBound(ExchangeBind),
    /// exchange.unbind, in exchange.bind's shape.
    ExchangeUnbound(ExchangeBind),
}

/// The recorded topology.
#[derive(Debug, Default)]
pub(crate) struct Topology {
    exchanges: HashMap<ShortStr, ExchangeDeclare>,
    /// By the queue's current name; the declare keeps the requested name, empty for a
    /// server-named queue.
    queues: HashMap<ShortStr, QueueDeclare>,
    queue_bindings: Vec<QueueBind>,
    exchange_bindings: Vec<ExchangeBind>,
}

impl Topology {
    /// Applies a change.
    pub(crate) fn record(&mut self, record: Record) {
        match record {
            Record::Exchange(declare) => {
                if !declare.passive {
                    self.exchanges.insert(declare.exchange.clone(), declare);
                }
            }
            Record::ExchangeDeleted(name) => {
                self.exchanges.remove(&name);
                self.queue_bindings.retain(|b| b.exchange != name);
                self.exchange_bindings
                    .retain(|b| b.source != name && b.destination != name);
            }
            Record::Queue { declare, name } => {
                if !declare.passive {
                    self.queues.insert(name, declare);
                }
            }
            Record::QueueDeleted(name) => {
                self.queues.remove(&name);
                self.queue_bindings.retain(|b| b.queue != name);
            }
            Record::QueueBound(bind) => {
                if !self
                    .queue_bindings
                    .iter()
                    .any(|b| same_queue_binding(b, &bind))
                {
                    self.queue_bindings.push(bind);
                }
            }
            Record::QueueUnbound(unbind) => self
                .queue_bindings
                .retain(|b| !same_queue_binding(b, &unbind)),
            Record::ExchangeBound(bind) => {
                if !self
                    .exchange_bindings
                    .iter()
                    .any(|b| same_exchange_binding(b, &bind))
                {
                    self.exchange_bindings.push(bind);
                }
            }
            Record::ExchangeUnbound(unbind) => self
                .exchange_bindings
                .retain(|b| !same_exchange_binding(b, &unbind)),
        }
    }

    /// Nothing to replay.
    pub(crate) fn is_empty(&self) -> bool {
        self.exchanges.is_empty()
            && self.queues.is_empty()
            && self.queue_bindings.is_empty()
            && self.exchange_bindings.is_empty()
    }

    /// The exchange declares to replay.
    pub(crate) fn exchanges(&self) -> impl Iterator<Item = &ExchangeDeclare> {
        self.exchanges.values()
    }

    /// The queue declares to replay, each with the name the queue had.
    pub(crate) fn queues(&self) -> impl Iterator<Item = (&ShortStr, &QueueDeclare)> {
        self.queues.iter()
    }

    /// The queue bindings to replay.
    pub(crate) fn queue_bindings(&self) -> &[QueueBind] {
        &self.queue_bindings
    }

    /// The exchange-to-exchange bindings to replay.
    pub(crate) fn exchange_bindings(&self) -> &[ExchangeBind] {
        &self.exchange_bindings
    }

    /// Server-named queues came back under new names: records follow them.
    pub(crate) fn rename(&mut self, renames: &HashMap<ShortStr, ShortStr>) {
        for (old, new) in renames {
            if let Some(declare) = self.queues.remove(old) {
                self.queues.insert(new.clone(), declare);
            }
        }
        for binding in &mut self.queue_bindings {
            if let Some(new) = renames.get(&binding.queue) {
                binding.queue = new.clone();
            }
        }
    }
}

fn same_queue_binding(a: &QueueBind, b: &QueueBind) -> bool {
    a.queue == b.queue
        && a.exchange == b.exchange
        && a.routing_key == b.routing_key
        && a.arguments == b.arguments
}

fn same_exchange_binding(a: &ExchangeBind, b: &ExchangeBind) -> bool {
    a.destination == b.destination
        && a.source == b.source
        && a.routing_key == b.routing_key
        && a.arguments == b.arguments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(queue: &str, exchange: &str, key: &str) -> QueueBind {
        QueueBind {
            queue: queue.into(),
            exchange: exchange.into(),
            routing_key: key.into(),
            ..Default::default()
        }
    }

    fn exchange(name: &str) -> Record {
        Record::Exchange(ExchangeDeclare {
            exchange: name.into(),
            kind: "topic".into(),
            ..Default::default()
        })
    }

    fn queue(requested: &str, name: &str) -> Record {
        Record::Queue {
            declare: QueueDeclare {
                queue: requested.into(),
                ..Default::default()
            },
            name: name.into(),
        }
    }

    #[test]
    fn bindings_are_kept_once_and_unbinding_forgets_them() {
        let mut topology = Topology::default();
        topology.record(Record::QueueBound(bind("q", "x", "a")));
        topology.record(Record::QueueBound(bind("q", "x", "a")));
        topology.record(Record::QueueBound(bind("q", "x", "b")));
        assert_eq!(topology.queue_bindings().len(), 2);
        topology.record(Record::QueueUnbound(bind("q", "x", "a")));
        assert_eq!(topology.queue_bindings(), [bind("q", "x", "b")]);
    }

    #[test]
    fn deleting_a_queue_or_exchange_forgets_its_bindings() {
        let mut topology = Topology::default();
        topology.record(exchange("x"));
        topology.record(exchange("y"));
        topology.record(queue("q", "q"));
        topology.record(Record::QueueBound(bind("q", "x", "a")));
        topology.record(Record::QueueBound(bind("q", "y", "a")));
        topology.record(Record::ExchangeBound(ExchangeBind {
            destination: "y".into(),
            source: "x".into(),
            ..Default::default()
        }));
        topology.record(Record::ExchangeDeleted("x".into()));
        assert_eq!(topology.queue_bindings(), [bind("q", "y", "a")]);
        assert!(topology.exchange_bindings().is_empty());
        assert_eq!(topology.exchanges().count(), 1);
        topology.record(Record::QueueDeleted("q".into()));
        assert!(topology.queue_bindings().is_empty());
        assert_eq!(topology.queues().count(), 0);
    }

    #[test]
    fn passive_declares_are_not_topology() {
        let mut topology = Topology::default();
        topology.record(Record::Exchange(ExchangeDeclare {
            exchange: "x".into(),
            passive: true,
            ..Default::default()
        }));
        topology.record(Record::Queue {
            declare: QueueDeclare {
                queue: "q".into(),
                passive: true,
                ..Default::default()
            },
            name: "q".into(),
        });
        assert_eq!(topology.exchanges().count(), 0);
        assert_eq!(topology.queues().count(), 0);
    }

    #[test]
    fn a_renamed_server_named_queue_keeps_its_bindings() {
        let mut topology = Topology::default();
        topology.record(queue("", "amq.gen-1"));
        topology.record(Record::QueueBound(bind("amq.gen-1", "x", "#")));
        let renames = HashMap::from([(ShortStr::from("amq.gen-1"), ShortStr::from("amq.gen-2"))]);
        topology.rename(&renames);
        let queues: Vec<_> = topology
            .queues()
            .map(|(name, d)| (name.clone(), d.queue.clone()))
            .collect();
        assert_eq!(queues, [(ShortStr::from("amq.gen-2"), ShortStr::from(""))]);
        assert_eq!(topology.queue_bindings(), [bind("amq.gen-2", "x", "#")]);
    }
}
