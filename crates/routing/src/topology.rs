//! The exchanges of one vhost and the routing decision.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use warren_codec::{FieldTable, FieldValue};

use crate::binding::{Binding, Destination};
use crate::envelope::Envelope;
use crate::error::RoutingError;
#[cfg(test)]
use crate::exchange::ExchangeKind;
use crate::exchange::{ALTERNATE_EXCHANGE, Exchange, ExchangeSpec, X_UNROUTABLE};

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
    /// one existed; a different one is [`RoutingError::Inequivalent`], and arguments of
    /// the wrong type [`RoutingError::InvalidArgument`].
    pub fn declare(&mut self, spec: ExchangeSpec) -> Result<bool, RoutingError> {
        let exchange = Exchange::new(spec)?;
        if let Some(existing) = self.exchanges.get(&exchange.spec().name) {
            check_equivalent(existing.spec(), exchange.spec())?;
            return Ok(false);
        }
        self.exchanges
            .insert(exchange.spec().name.clone(), Arc::new(exchange));
        Ok(true)
    }

    /// Deletes an exchange and every binding from and to it. With `if_unused`, refuses
    /// while it has bindings from it.
    pub fn delete(&mut self, name: &str, if_unused: bool) -> Result<(), RoutingError> {
        if name.is_empty() {
            return Err(RoutingError::DefaultExchange);
        }
        let exchange = self
            .exchanges
            .get(name)
            .ok_or_else(|| RoutingError::ExchangeNotFound(name.to_owned()))?;
        if if_unused && exchange.binding_count() > 0 {
            return Err(RoutingError::InUse(name.to_owned()));
        }
        self.exchanges.remove(name);
        self.remove_bindings_to(&Destination::Exchange(name.into()));
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
    /// An exchange destination must exist; whether a queue exists is the caller's to
    /// check. Argument order does not matter: `{a, b}` and `{b, a}` are one binding.
    pub fn bind(
        &mut self,
        exchange: &str,
        destination: Destination,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<bool, RoutingError> {
        if let Destination::Exchange(name) = &destination {
            if name.is_empty() {
                return Err(RoutingError::DefaultExchange);
            }
            if !self.exchanges.contains_key(name) {
                return Err(RoutingError::ExchangeNotFound(name.to_string()));
            }
        }
        let source = self.exchange_mut(exchange)?;
        source.bind(Binding {
            destination,
            routing_key: routing_key.into(),
            // Key order, so that order does not make bindings differ.
            arguments: sorted(arguments),
        })
    }

    /// Removes a binding; returns whether it existed. Unbinding something that was never
    /// bound is not an error, as in RabbitMQ. An auto-delete exchange goes with its
    /// last binding.
    pub fn unbind(
        &mut self,
        exchange: &str,
        destination: &Destination,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> Result<bool, RoutingError> {
        let arguments = sorted(arguments.clone());
        let source = self.exchange_mut(exchange)?;
        let removed = source.unbind(destination, routing_key, &arguments);
        let now_unused = source.binding_count() == 0 && source.spec().auto_delete;
        if removed && now_unused {
            self.exchanges.remove(exchange);
            self.remove_bindings_to(&Destination::Exchange(exchange.into()));
        }
        Ok(removed)
    }

    /// Removes every binding to `destination` (its queue or exchange was deleted), and
    /// auto-delete exchanges left without bindings, and so on down the chain.
    pub fn remove_bindings_to(&mut self, destination: &Destination) {
        let mut gone = vec![destination.clone()];
        while let Some(destination) = gone.pop() {
            let mut emptied = Vec::new();
            for (name, exchange) in self.exchanges.iter_mut() {
                if exchange.binds_to(&destination) {
                    let exchange = Arc::make_mut(exchange);
                    exchange.remove_destination(&destination);
                    if exchange.binding_count() == 0 && exchange.spec().auto_delete {
                        emptied.push(name.clone());
                    }
                }
            }
            for name in emptied {
                self.exchanges.remove(&name);
                gone.push(Destination::Exchange(name));
            }
        }
    }

    /// The queues a message published to `exchange` goes to, each once.
    ///
    /// Routing follows exchange-to-exchange bindings, and an exchange none of whose
    /// bindings matched passes the message to its alternate exchange; each exchange is
    /// visited at most once, so cycles end. The default exchange ("") yields the queues
    /// named by the message's keys, whether or not they exist: the caller knows its
    /// queues.
    pub fn route(
        &self,
        exchange: &str,
        envelope: &Envelope<'_>,
    ) -> Result<Vec<Arc<str>>, RoutingError> {
        let mut queues = Queues::default();
        self.route_each(exchange, envelope, |name| queues.add_name(name))?;
        Ok(queues.into_vec())
    }

    /// As [`Topology::route`], but hands each destination queue's name to `found`
    /// instead of collecting them: a name may come more than once (two bindings
    /// matched), and the default exchange names queues whether or not they exist.
    /// Allocates nothing unless exchange-to-exchange bindings or alternate exchanges
    /// are followed; this is the broker's per-message path.
    pub fn route_each<'a>(
        &self,
        exchange: &str,
        envelope: &Envelope<'a>,
        mut found: impl FnMut(&str),
    ) -> Result<(), RoutingError> {
        if exchange.is_empty() {
            for key in envelope.keys() {
                found(key);
            }
            return Ok(());
        }
        let (source_name, source) = self
            .exchanges
            .get_key_value(exchange)
            .ok_or_else(|| RoutingError::ExchangeNotFound(exchange.to_owned()))?;
        // Exchanges visited, filled only once routing leaves the source exchange.
        let mut seen: Vec<&str> = Vec::new();
        let mut work: Vec<&Exchange> = Vec::new();
        let mut next = Some(&**source);
        while let Some(x) = next.take().or_else(|| work.pop()) {
            let mut matched = false;
            x.matches(envelope, &mut |destination| {
                matched = true;
                match destination {
                    Destination::Queue(q) => found(q),
                    Destination::Exchange(e) => self.visit(e, source_name, &mut seen, &mut work),
                }
            });
            if !matched && let Some(alternate) = x.alternate() {
                self.visit(alternate, source_name, &mut seen, &mut work);
            }
        }
        Ok(())
    }

    /// Queues exchange `name` for routing unless it was seen (or does not exist).
    fn visit<'t>(
        &'t self,
        name: &str,
        source: &'t str,
        seen: &mut Vec<&'t str>,
        work: &mut Vec<&'t Exchange>,
    ) {
        if seen.is_empty() {
            seen.push(source);
        }
        if !seen.contains(&name)
            && let Some((name, next)) = self.exchanges.get_key_value(name)
        {
            seen.push(name);
            work.push(next);
        }
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

/// The destination queues of one message, without duplicates. Most messages reach a
/// few queues, where a linear check beats hashing; a big fan-out switches to a set.
#[derive(Default)]
struct Queues {
    list: Vec<Arc<str>>,
    set: HashSet<Arc<str>>,
}

impl Queues {
    const LINEAR: usize = 16;

    fn add_name(&mut self, queue: &str) {
        if self.list.len() < Self::LINEAR {
            if !self.list.iter().any(|q| &**q == queue) {
                self.list.push(Arc::from(queue));
                if self.list.len() == Self::LINEAR {
                    self.set.extend(self.list.iter().cloned());
                }
            }
        } else if !self.set.contains(queue) {
            let queue: Arc<str> = Arc::from(queue);
            self.set.insert(queue.clone());
            self.list.push(queue);
        }
    }

    fn into_vec(self) -> Vec<Arc<str>> {
        self.list
    }
}

fn sorted(mut arguments: FieldTable) -> FieldTable {
    arguments.sort_keys();
    arguments
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
    // Of the arguments, only those that change behaviour must match, as RabbitMQ
    // checks only alternate-exchange.
    for argument in [ALTERNATE_EXCHANGE, X_UNROUTABLE] {
        let (got, has) = (
            wanted.arguments.get(argument),
            current.arguments.get(argument),
        );
        if got != has {
            return differ(argument, describe(got), describe(has));
        }
    }
    Ok(())
}

fn describe(value: Option<&FieldValue>) -> String {
    match value {
        None => "none".into(),
        Some(v) => v.as_str().map_or_else(|| format!("{v:?}"), str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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

    fn route(t: &Topology, exchange: &str, key: &str) -> Result<Vec<Arc<str>>, RoutingError> {
        t.route(exchange, &Envelope::new(key, None)?)
    }

    fn names(t: &Topology, exchange: &str, key: &str) -> Vec<String> {
        let mut queues: Vec<String> = route(t, exchange, key)
            .unwrap_or_default()
            .iter()
            .map(|q| q.to_string())
            .collect();
        queues.sort();
        queues
    }

    fn declare(t: &mut Topology, name: &str, kind: ExchangeKind, arguments: &[(&str, &str)]) {
        let mut spec = ExchangeSpec::new(name, kind);
        for (k, v) in arguments {
            spec.arguments.insert(*k, FieldValue::string(*v));
        }
        assert_eq!(t.declare(spec), Ok(true));
    }

    fn bind_x(t: &mut Topology, source: &str, destination: &str, key: &str) {
        assert_eq!(
            t.bind(
                source,
                Destination::Exchange(destination.into()),
                key,
                FieldTable::new()
            ),
            Ok(true)
        );
    }

    #[test]
    fn direct_routes_on_exact_key() {
        let mut t = topology();
        assert_eq!(t.bind_queue("d", "q1", "a", FieldTable::new()), Ok(true));
        assert_eq!(t.bind_queue("d", "q2", "b", FieldTable::new()), Ok(true));
        assert_eq!(t.bind_queue("d", "q3", "a", FieldTable::new()), Ok(true));
        assert_eq!(
            route(&t, "d", "a").map(sorted),
            Ok(vec!["q1".into(), "q3".into()])
        );
        assert_eq!(route(&t, "d", "c"), Ok(vec![]));
    }

    #[test]
    fn a_queue_bound_twice_gets_one_copy() {
        let mut t = topology();
        assert_eq!(t.bind_queue("f", "q", "x", FieldTable::new()), Ok(true));
        assert_eq!(t.bind_queue("f", "q", "y", FieldTable::new()), Ok(true));
        assert_eq!(t.bind_queue("f", "q", "y", FieldTable::new()), Ok(false));
        assert_eq!(route(&t, "f", "anything"), Ok(vec!["q".into()]));
    }

    #[test]
    fn default_exchange_routes_by_queue_name_and_refuses_bindings() {
        let mut t = topology();
        assert_eq!(route(&t, "", "tasks"), Ok(vec!["tasks".into()]));
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
        assert_eq!(route(&t, "d", "a"), Ok(vec!["q2".into()]));
        t.remove_bindings_to(&Destination::Queue("q2".into()));
        assert_eq!(route(&t, "d", "a"), Ok(vec![]));
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
            route(&t, "d", "a"),
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
                .map(|e| e.binding_count() == 0)
                .unwrap_or(false)
        );
    }

    #[test]
    fn exchange_to_exchange_bindings_route_transitively_each_queue_once() {
        let mut t = topology();
        declare(&mut t, "t", ExchangeKind::Topic, &[]);
        bind_x(&mut t, "f", "d", "");
        bind_x(&mut t, "f", "t", "");
        t.bind_queue("d", "q1", "a.b", FieldTable::new()).unwrap();
        t.bind_queue("t", "q1", "a.*", FieldTable::new()).unwrap();
        t.bind_queue("t", "q2", "#", FieldTable::new()).unwrap();
        assert_eq!(names(&t, "f", "a.b"), ["q1", "q2"]);
        assert_eq!(names(&t, "f", "z"), ["q2"]);
    }

    #[test]
    fn cycles_of_exchange_bindings_end() {
        let mut t = topology();
        bind_x(&mut t, "f", "d", "");
        bind_x(&mut t, "d", "f", "k");
        bind_x(&mut t, "d", "d", "k");
        t.bind_queue("d", "q", "k", FieldTable::new()).unwrap();
        assert_eq!(names(&t, "f", "k"), ["q"]);
        assert_eq!(names(&t, "d", "k"), ["q"]);
    }

    #[test]
    fn binding_to_a_missing_or_default_exchange_is_refused() {
        let mut t = topology();
        let to = |name: &str| Destination::Exchange(name.into());
        assert_eq!(
            t.bind("f", to("nope"), "", FieldTable::new()),
            Err(RoutingError::ExchangeNotFound("nope".into()))
        );
        assert_eq!(
            t.bind("f", to(""), "", FieldTable::new()),
            Err(RoutingError::DefaultExchange)
        );
    }

    #[test]
    fn alternate_exchange_takes_what_no_binding_matched() {
        let mut t = topology();
        declare(
            &mut t,
            "main",
            ExchangeKind::Direct,
            &[("alternate-exchange", "f")],
        );
        t.bind_queue("main", "orders", "order", FieldTable::new())
            .unwrap();
        t.bind_queue("f", "unrouted", "", FieldTable::new())
            .unwrap();
        assert_eq!(names(&t, "main", "order"), ["orders"]);
        assert_eq!(names(&t, "main", "other"), ["unrouted"]);
    }

    #[test]
    fn alternates_chain_and_cycles_of_alternates_end() {
        let mut t = topology();
        declare(
            &mut t,
            "a",
            ExchangeKind::Direct,
            &[("alternate-exchange", "b")],
        );
        declare(
            &mut t,
            "b",
            ExchangeKind::Direct,
            &[("alternate-exchange", "c")],
        );
        declare(
            &mut t,
            "c",
            ExchangeKind::Direct,
            &[("alternate-exchange", "a")],
        );
        assert_eq!(route(&t, "a", "k"), Ok(vec![]));
        t.bind_queue("c", "last", "k", FieldTable::new()).unwrap();
        assert_eq!(names(&t, "a", "k"), ["last"]);
    }

    #[test]
    fn a_missing_alternate_leaves_the_message_unroutable() {
        let mut t = topology();
        declare(
            &mut t,
            "a",
            ExchangeKind::Direct,
            &[("alternate-exchange", "ghost")],
        );
        assert_eq!(route(&t, "a", "k"), Ok(vec![]));
    }

    #[test]
    fn an_exchange_binding_that_matched_means_no_alternate() {
        // As RabbitMQ: the alternate applies only when the exchange's own bindings
        // matched nothing, even if what they led to routed nowhere.
        let mut t = topology();
        declare(
            &mut t,
            "a",
            ExchangeKind::Direct,
            &[("alternate-exchange", "f")],
        );
        t.bind_queue("f", "alt", "", FieldTable::new()).unwrap();
        bind_x(&mut t, "a", "d", "k");
        assert_eq!(route(&t, "a", "k"), Ok(vec![]));
        assert_eq!(names(&t, "a", "j"), ["alt"]);
    }

    #[test]
    fn alternate_exchange_must_be_a_string() {
        let mut t = topology();
        let mut spec = ExchangeSpec::new("a", ExchangeKind::Direct);
        spec.arguments
            .insert("alternate-exchange", FieldValue::I32(1));
        assert!(matches!(
            t.declare(spec),
            Err(RoutingError::InvalidArgument {
                argument: "alternate-exchange",
                ..
            })
        ));
        assert!(t.exchange("a").is_none());
    }

    #[test]
    fn redeclare_with_another_alternate_is_inequivalent() {
        let mut t = topology();
        declare(
            &mut t,
            "a",
            ExchangeKind::Direct,
            &[("alternate-exchange", "f")],
        );
        let mut spec = ExchangeSpec::new("a", ExchangeKind::Direct);
        spec.arguments
            .insert("alternate-exchange", FieldValue::string("d"));
        assert!(matches!(
            t.declare(spec),
            Err(RoutingError::Inequivalent {
                field: "alternate-exchange",
                ..
            })
        ));
    }

    #[test]
    fn x_unroutable_is_parsed_and_checked() {
        let mut t = topology();
        declare(
            &mut t,
            "r",
            ExchangeKind::Direct,
            &[("x-unroutable", "reject")],
        );
        assert_eq!(
            t.exchange("r").map(Exchange::unroutable),
            Some(crate::Unroutable::Reject)
        );
        assert_eq!(
            t.exchange("d").map(Exchange::unroutable),
            Some(crate::Unroutable::Drop)
        );
        let mut spec = ExchangeSpec::new("bad", ExchangeKind::Direct);
        spec.arguments
            .insert("x-unroutable", FieldValue::string("bounce"));
        assert!(matches!(
            t.declare(spec),
            Err(RoutingError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn cc_and_bcc_keys_route_too() {
        let mut t = topology();
        t.bind_queue("d", "q1", "a", FieldTable::new()).unwrap();
        t.bind_queue("d", "q2", "b", FieldTable::new()).unwrap();
        t.bind_queue("d", "q3", "c", FieldTable::new()).unwrap();
        let mut headers = FieldTable::new();
        headers.insert("CC", FieldValue::Array(vec![FieldValue::string("b")]));
        headers.insert("BCC", FieldValue::Array(vec![FieldValue::string("a")]));
        let envelope = Envelope::new("a", Some(&headers)).unwrap();
        assert_eq!(
            t.route("d", &envelope).map(sorted),
            Ok(vec!["q1".into(), "q2".into()])
        );
        assert_eq!(
            t.route("", &envelope).map(sorted),
            Ok(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn binding_arguments_in_another_order_are_the_same_binding() {
        let mut t = topology();
        let table = |pairs: &[(&str, i32)]| {
            let mut table = FieldTable::new();
            for (k, v) in pairs {
                table.insert(*k, FieldValue::I32(*v));
            }
            table
        };
        assert_eq!(
            t.bind_queue("d", "q", "k", table(&[("a", 1), ("b", 2)])),
            Ok(true)
        );
        assert_eq!(
            t.bind_queue("d", "q", "k", table(&[("b", 2), ("a", 1)])),
            Ok(false)
        );
        let q = Destination::Queue("q".into());
        assert_eq!(
            t.unbind("d", &q, "k", &table(&[("b", 2), ("a", 1)])),
            Ok(true)
        );
        assert_eq!(route(&t, "d", "k"), Ok(vec![]));
    }

    #[test]
    fn auto_delete_goes_down_the_chain() {
        // q is the only thing behind ad2, which is the only thing behind ad1.
        let mut t = topology();
        let mut spec = ExchangeSpec::new("ad1", ExchangeKind::Fanout);
        spec.auto_delete = true;
        t.declare(spec.clone()).unwrap();
        spec.name = "ad2".into();
        t.declare(spec).unwrap();
        bind_x(&mut t, "ad1", "ad2", "");
        t.bind_queue("ad2", "q", "", FieldTable::new()).unwrap();
        t.remove_bindings_to(&Destination::Queue("q".into()));
        assert!(t.exchange("ad2").is_none());
        assert!(t.exchange("ad1").is_none());
    }

    #[test]
    fn unbinding_the_last_binding_deletes_an_auto_delete_exchange() {
        let mut t = topology();
        let mut spec = ExchangeSpec::new("ad", ExchangeKind::Direct);
        spec.auto_delete = true;
        t.declare(spec).unwrap();
        t.bind_queue("ad", "q", "k", FieldTable::new()).unwrap();
        let q = Destination::Queue("q".into());
        assert_eq!(t.unbind("ad", &q, "k", &FieldTable::new()), Ok(true));
        assert!(t.exchange("ad").is_none());
    }

    #[test]
    fn a_large_fan_out_is_deduplicated() {
        let mut t = topology();
        for i in 0..100 {
            t.bind_queue("f", &format!("q{i}"), "a", FieldTable::new())
                .unwrap();
            t.bind_queue("f", &format!("q{i}"), "b", FieldTable::new())
                .unwrap();
        }
        assert_eq!(route(&t, "f", "x").map(|q| q.len()), Ok(100));
    }
}
