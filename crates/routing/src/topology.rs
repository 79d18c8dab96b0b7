//! The exchanges of one vhost and the routing decision.

use std::collections::HashMap;
use std::sync::Arc;

use warren_codec::FieldTable;

use crate::binding::{Binding, Destination};
use crate::error::RoutingError;
#[cfg(test)]
use crate::exchange::ExchangeKind;
use crate::exchange::{Exchange, ExchangeSpec};

/// Exchanges by name. The default exchange ("") is implicit: it routes to the queue
/// named by the routing key, and cannot be bound, unbound or deleted.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    exchanges: HashMap<Arc<str>, Arc<Exchange>>,
}

impl Topology {
    /// An empty topology (no predeclared exchanges; the broker adds those).
    pub fn new() -> Self {
        Topology::default()
    }

    /// The exchange named `name`.
    pub fn exchange(&self, name: &str) -> Option<&Exchange> {
        self.exchanges.get(name).map(|e| &**e)
    }

    /// Every exchange.
    pub fn exchanges(&self) -> impl Iterator<Item = &Exchange> {
        self.exchanges.values().map(|e| &**e)
    }

    /// Declares an exchange. Returns true when it was created, false when an equivalent
    /// one existed; a different one is [`RoutingError::Inequivalent`].
    pub fn declare(&mut self, spec: ExchangeSpec) -> Result<bool, RoutingError> {
        if let Some(existing) = self.exchanges.get(&spec.name) {
            check_equivalent(existing.spec(), &spec)?;
            return Ok(false);
        }
        self.exchanges
            .insert(spec.name.clone(), Arc::new(Exchange::new(spec)));
        Ok(true)
    }

    /// Deletes an exchange and every binding to it. With `if_unused`, refuses while it
    /// has bindings from it.
    pub fn delete(&mut self, name: &str, if_unused: bool) -> Result<(), RoutingError> {
        if name.is_empty() {
            return Err(RoutingError::DefaultExchange);
        }
        let exchange = self
            .exchanges
            .get(name)
            .ok_or_else(|| RoutingError::ExchangeNotFound(name.to_owned()))?;
        if if_unused && !exchange.bindings().is_empty() {
            return Err(RoutingError::InUse(name.to_owned()));
        }
        self.exchanges.remove(name);
        let target = Destination::Exchange(name.into());
        self.remove_bindings_to(&target);
        Ok(())
    }

    /// Binds queue `queue` to `exchange`. Returns true when the binding is new.
    pub fn bind_queue(
        &mut self,
        exchange: &str,
        queue: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<bool, RoutingError> {
        self.bind(
            exchange,
            Destination::Queue(queue.into()),
            routing_key,
            arguments,
        )
    }

    /// Adds a binding from `exchange` to `destination`. Returns true when it is new.
    pub fn bind(
        &mut self,
        exchange: &str,
        destination: Destination,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<bool, RoutingError> {
        let source = self.exchange_mut(exchange)?;
        Ok(source.bind(Binding {
            destination,
            routing_key: routing_key.into(),
            arguments,
        }))
    }

    /// Removes a binding; returns whether it existed. Unbinding something that was never
    /// bound is not an error, as in RabbitMQ.
    pub fn unbind(
        &mut self,
        exchange: &str,
        destination: &Destination,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> Result<bool, RoutingError> {
        let source = self.exchange_mut(exchange)?;
        let removed = source.retain(|b| {
            !(b.destination == *destination
                && &*b.routing_key == routing_key
                && b.arguments == *arguments)
        });
        let now_unused = source.bindings().is_empty() && source.spec().auto_delete;
        if removed > 0 && now_unused {
            self.exchanges.remove(exchange);
        }
        Ok(removed > 0)
    }

    /// Removes every binding to `destination` (its queue or exchange was deleted), and
    /// auto-delete exchanges left without bindings.
    pub fn remove_bindings_to(&mut self, destination: &Destination) {
        let mut emptied = Vec::new();
        for (name, exchange) in self.exchanges.iter_mut() {
            if exchange
                .bindings()
                .iter()
                .any(|b| b.destination == *destination)
            {
                let exchange = Arc::make_mut(exchange);
                exchange.retain(|b| b.destination != *destination);
                if exchange.bindings().is_empty() && exchange.spec().auto_delete {
                    emptied.push(name.clone());
                }
            }
        }
        for name in emptied {
            self.exchanges.remove(&name);
        }
    }

    /// The queues a message published to `exchange` with `routing_key` goes to, each
    /// once. The default exchange ("") yields the queue named by the key, whether or not
    /// it exists: the caller knows its queues.
    pub fn route(&self, exchange: &str, routing_key: &str) -> Result<Vec<Arc<str>>, RoutingError> {
        if exchange.is_empty() {
            return Ok(vec![routing_key.into()]);
        }
        let source = self
            .exchange(exchange)
            .ok_or_else(|| RoutingError::ExchangeNotFound(exchange.to_owned()))?;
        let mut queues: Vec<Arc<str>> = Vec::new();
        source.matches(routing_key, &mut |destination| {
            if let Destination::Queue(q) = destination
                // Few destinations per message: a linear check beats hashing.
                && !queues.contains(q)
            {
                queues.push(q.clone());
            }
        });
        Ok(queues)
    }

    fn exchange_mut(&mut self, name: &str) -> Result<&mut Exchange, RoutingError> {
        if name.is_empty() {
            return Err(RoutingError::DefaultExchange);
        }
        self.exchanges
            .get_mut(name)
            .map(Arc::make_mut)
            .ok_or_else(|| RoutingError::ExchangeNotFound(name.to_owned()))
    }
}

fn check_equivalent(current: &ExchangeSpec, wanted: &ExchangeSpec) -> Result<(), RoutingError> {
    let differ = |field: &'static str, received: String, current: String| {
        Err(RoutingError::Inequivalent {
            exchange: wanted.name.to_string(),
            field,
            received,
            current,
        })
    };
    if current.kind != wanted.kind {
        return differ(
            "type",
            wanted.kind.name().into(),
            current.kind.name().into(),
        );
    }
    if current.durable != wanted.durable {
        return differ(
            "durable",
            wanted.durable.to_string(),
            current.durable.to_string(),
        );
    }
    if current.auto_delete != wanted.auto_delete {
        return differ(
            "auto_delete",
            wanted.auto_delete.to_string(),
            current.auto_delete.to_string(),
        );
    }
    if current.internal != wanted.internal {
        return differ(
            "internal",
            wanted.internal.to_string(),
            current.internal.to_string(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        let mut t = Topology::new();
        assert_eq!(
            t.declare(ExchangeSpec::new("d", ExchangeKind::Direct)),
            Ok(true)
        );
        assert_eq!(
            t.declare(ExchangeSpec::new("f", ExchangeKind::Fanout)),
            Ok(true)
        );
        t
    }

    fn sorted(mut v: Vec<Arc<str>>) -> Vec<Arc<str>> {
        v.sort();
        v
    }

    #[test]
    fn direct_routes_on_exact_key() {
        let mut t = topology();
        assert_eq!(t.bind_queue("d", "q1", "a", FieldTable::new()), Ok(true));
        assert_eq!(t.bind_queue("d", "q2", "b", FieldTable::new()), Ok(true));
        assert_eq!(t.bind_queue("d", "q3", "a", FieldTable::new()), Ok(true));
        assert_eq!(
            t.route("d", "a").map(sorted),
            Ok(vec!["q1".into(), "q3".into()])
        );
        assert_eq!(t.route("d", "c"), Ok(vec![]));
    }

    #[test]
    fn a_queue_bound_twice_gets_one_copy() {
        let mut t = topology();
        assert_eq!(t.bind_queue("f", "q", "x", FieldTable::new()), Ok(true));
        assert_eq!(t.bind_queue("f", "q", "y", FieldTable::new()), Ok(true));
        assert_eq!(t.bind_queue("f", "q", "y", FieldTable::new()), Ok(false));
        assert_eq!(t.route("f", "anything"), Ok(vec!["q".into()]));
    }

    #[test]
    fn default_exchange_routes_by_queue_name_and_refuses_bindings() {
        let mut t = topology();
        assert_eq!(t.route("", "tasks"), Ok(vec!["tasks".into()]));
        assert_eq!(
            t.bind_queue("", "q", "q", FieldTable::new()),
            Err(RoutingError::DefaultExchange)
        );
        assert_eq!(t.delete("", false), Err(RoutingError::DefaultExchange));
    }

    #[test]
    fn redeclare_must_match() {
        let mut t = topology();
        assert_eq!(
            t.declare(ExchangeSpec::new("d", ExchangeKind::Direct)),
            Ok(false)
        );
        let err = t.declare(ExchangeSpec::new("d", ExchangeKind::Fanout));
        assert!(matches!(
            err,
            Err(RoutingError::Inequivalent { field: "type", .. })
        ));
    }

    #[test]
    fn unbind_and_queue_removal_drop_bindings() {
        let mut t = topology();
        assert_eq!(t.bind_queue("d", "q1", "a", FieldTable::new()), Ok(true));
        assert_eq!(t.bind_queue("d", "q2", "a", FieldTable::new()), Ok(true));
        let q1 = Destination::Queue("q1".into());
        assert_eq!(t.unbind("d", &q1, "a", &FieldTable::new()), Ok(true));
        assert_eq!(t.unbind("d", &q1, "a", &FieldTable::new()), Ok(false));
        assert_eq!(t.route("d", "a"), Ok(vec!["q2".into()]));
        t.remove_bindings_to(&Destination::Queue("q2".into()));
        assert_eq!(t.route("d", "a"), Ok(vec![]));
    }

    #[test]
    fn auto_delete_exchange_goes_with_its_last_binding() {
        let mut t = topology();
        let mut spec = ExchangeSpec::new("ad", ExchangeKind::Fanout);
        spec.auto_delete = true;
        assert_eq!(t.declare(spec), Ok(true));
        assert_eq!(t.bind_queue("ad", "q", "", FieldTable::new()), Ok(true));
        t.remove_bindings_to(&Destination::Queue("q".into()));
        assert!(t.exchange("ad").is_none());
    }

    #[test]
    fn delete_if_unused_refuses_while_bound() {
        let mut t = topology();
        assert_eq!(t.bind_queue("d", "q", "a", FieldTable::new()), Ok(true));
        assert_eq!(t.delete("d", true), Err(RoutingError::InUse("d".into())));
        assert_eq!(t.delete("d", false), Ok(()));
        assert_eq!(
            t.route("d", "a"),
            Err(RoutingError::ExchangeNotFound("d".into()))
        );
    }

    #[test]
    fn deleting_an_exchange_removes_bindings_to_it() {
        let mut t = topology();
        assert_eq!(
            t.bind(
                "f",
                Destination::Exchange("d".into()),
                "",
                FieldTable::new()
            ),
            Ok(true)
        );
        assert_eq!(t.delete("d", false), Ok(()));
        assert!(
            t.exchange("f")
                .map(|e| e.bindings().is_empty())
                .unwrap_or(false)
        );
    }
}
