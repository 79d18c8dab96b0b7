//! An exchange: its declared properties and its bindings, indexed for its type.

use std::sync::Arc;

use imbl::{HashMap, HashSet};

use warren_codec::FieldTable;

use crate::binding::{Binding, Destination};
use crate::envelope::Envelope;
use crate::error::RoutingError;
use crate::headers::HeadersBinding;
use crate::topic::TopicTrie;

/// The routing algorithm of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    /// Exact routing-key match.
    Direct,
    /// Every binding matches.
    Fanout,
    /// Binding keys are patterns of `.`-separated words with `*` and `#`.
    Topic,
    /// Binding arguments are conditions on the message headers.
    Headers,
}

impl ExchangeKind {
    /// The type name used in exchange.declare, or None for a type not supported.
    pub fn parse(name: &str) -> Option<ExchangeKind> {
        match name {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            _ => None,
        }
    }

    /// The type name as declared.
    pub fn name(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

/// The declared properties of an exchange: what a redeclare must match.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeSpec {
    /// Name.
    pub name: Arc<str>,
    /// Type.
    pub kind: ExchangeKind,
    /// Survives restarts.
    pub durable: bool,
    /// Deleted when its last binding goes.
    pub auto_delete: bool,
    /// Only reachable through bindings, not by publishing.
    pub internal: bool,
    /// Declare arguments.
    pub arguments: FieldTable,
}

impl ExchangeSpec {
    /// A non-durable exchange with no arguments.
    pub fn new(name: &str, kind: ExchangeKind) -> Self {
        ExchangeSpec {
            name: name.into(),
            kind,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: FieldTable::new(),
        }
    }
}

/// What happens to a message that no binding (and no alternate exchange) takes: the
/// `x-unroutable` exchange argument, a warren extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unroutable {
    /// Dropped (after a basic.return when mandatory), as in RabbitMQ. The default.
    #[default]
    Drop,
    /// Refused: a basic.nack under publisher confirms, else a channel error.
    Reject,
}

/// The exchange argument naming the alternate exchange.
pub const ALTERNATE_EXCHANGE: &str = "alternate-exchange";
/// The exchange argument choosing [`Unroutable`] behaviour.
pub const X_UNROUTABLE: &str = "x-unroutable";

/// An exchange and its bindings.
///
/// Every topology change copies the exchanges it touches (publishers may still route
/// against the old copy), so the bindings live in persistent maps: a copy costs O(1),
/// a bind or unbind O(log n) plus the bindings that share its routing key, however many
/// bindings the exchange has.
#[derive(Debug, Clone)]
pub struct Exchange {
    spec: ExchangeSpec,
    alternate: Option<Arc<str>>,
    unroutable: Unroutable,
    /// Bindings by routing key: what direct routing looks up, and what the topic
    /// trie's patterns lead to.
    by_key: HashMap<Arc<str>, Arc<[Entry]>>,
    /// Destination → the routing keys of its bindings, so that deleting a queue finds
    /// its bindings without a scan.
    keys_to: HashMap<Destination, HashSet<Arc<str>>>,
    count: usize,
    /// Topic exchanges: the binding keys as a trie.
    topic: TopicTrie,
}

/// One binding, under its routing key.
#[derive(Debug, Clone)]
struct Entry {
    destination: Destination,
    arguments: FieldTable,
    /// Headers exchanges: the arguments compiled into conditions.
    headers: Option<Arc<HeadersBinding>>,
}

impl Exchange {
    /// Checks the declare arguments warren reads and builds the exchange.
    pub(crate) fn new(spec: ExchangeSpec) -> Result<Self, RoutingError> {
        let invalid = |argument, reason: String| RoutingError::InvalidArgument {
            exchange: spec.name.to_string(),
            argument,
            reason,
        };
        let alternate = match spec.arguments.get(ALTERNATE_EXCHANGE) {
            None => None,
            Some(value) => Some(value.as_str().map(Arc::from).ok_or_else(|| {
                invalid(
                    ALTERNATE_EXCHANGE,
                    format!("type '{}' is not a string", char::from(value.type_letter())),
                )
            })?),
        };
        let unroutable = match spec.arguments.get(X_UNROUTABLE) {
            None => Unroutable::Drop,
            Some(value) => match value.as_str() {
                Some("drop") => Unroutable::Drop,
                Some("reject") => Unroutable::Reject,
                _ => {
                    return Err(invalid(
                        X_UNROUTABLE,
                        "expected the string \"drop\" or \"reject\"".into(),
                    ));
                }
            },
        };
        Ok(Exchange {
            spec,
            alternate,
            unroutable,
            by_key: HashMap::new(),
            keys_to: HashMap::new(),
            count: 0,
            topic: TopicTrie::default(),
        })
    }

    /// The declared properties.
    pub fn spec(&self) -> &ExchangeSpec {
        &self.spec
    }

    /// The alternate exchange: where messages no binding matched go.
    pub fn alternate(&self) -> Option<&str> {
        self.alternate.as_deref()
    }

    /// What happens to messages that nothing takes.
    pub fn unroutable(&self) -> Unroutable {
        self.unroutable
    }

    /// Every binding (in no particular order).
    pub fn bindings(&self) -> impl Iterator<Item = Binding> + '_ {
        self.by_key.iter().flat_map(|(key, entries)| {
            entries.iter().map(|e| Binding {
                destination: e.destination.clone(),
                routing_key: key.clone(),
                arguments: e.arguments.clone(),
            })
        })
    }

    /// How many bindings lead from this exchange.
    pub fn binding_count(&self) -> usize {
        self.count
    }

    /// Whether some binding leads to `destination`.
    pub(crate) fn binds_to(&self, destination: &Destination) -> bool {
        self.keys_to.contains_key(destination)
    }

    /// Adds a binding; false when an equal one exists. A headers exchange refuses
    /// arguments it cannot match on.
    pub(crate) fn bind(&mut self, binding: Binding) -> Result<bool, RoutingError> {
        let Binding {
            destination,
            routing_key,
            arguments,
        } = binding;
        let existing = self.by_key.get(&routing_key).cloned();
        if existing.as_deref().is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e.destination == destination && e.arguments == arguments)
        }) {
            return Ok(false);
        }
        let headers = match self.spec.kind {
            ExchangeKind::Headers => Some(Arc::new(
                HeadersBinding::parse(&arguments).map_err(RoutingError::InvalidBinding)?,
            )),
            _ => None,
        };
        if existing.is_none() && self.spec.kind == ExchangeKind::Topic {
            self.topic.insert(&routing_key);
        }
        self.keys_to
            .entry(destination.clone())
            .or_default()
            .insert(routing_key.clone());
        let entry = Entry {
            destination,
            arguments,
            headers,
        };
        let entries: Arc<[Entry]> = match existing {
            None => Arc::new([entry]),
            Some(entries) => entries.iter().cloned().chain([entry]).collect(),
        };
        self.by_key.insert(routing_key, entries);
        self.count += 1;
        Ok(true)
    }

    /// Removes the bindings to `destination` under `routing_key` that `remove` picks;
    /// returns how many went.
    fn remove_under(
        &mut self,
        routing_key: &str,
        destination: &Destination,
        remove: impl Fn(&Entry) -> bool,
    ) -> usize {
        let Some((key, entries)) = self
            .by_key
            .get_key_value(routing_key)
            .map(|(k, v)| (k.clone(), v.clone()))
        else {
            return 0;
        };
        let picked = |e: &Entry| e.destination == *destination && remove(e);
        let removed = entries.iter().filter(|e| picked(e)).count();
        if removed == 0 {
            return 0;
        }
        let kept: Arc<[Entry]> = entries.iter().filter(|e| !picked(e)).cloned().collect();
        if !kept.iter().any(|e| e.destination == *destination)
            && let Some(keys) = self.keys_to.get_mut(destination)
        {
            keys.remove(routing_key);
            if keys.is_empty() {
                self.keys_to.remove(destination);
            }
        }
        if kept.is_empty() {
            self.by_key.remove(routing_key);
            if self.spec.kind == ExchangeKind::Topic {
                self.topic.remove(&key);
            }
        } else {
            self.by_key.insert(key, kept);
        }
        self.count -= removed;
        removed
    }

    /// Removes one binding; false when there was none.
    pub(crate) fn unbind(
        &mut self,
        destination: &Destination,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> bool {
        self.remove_under(routing_key, destination, |e| e.arguments == *arguments) > 0
    }

    /// Removes every binding to `destination`; returns how many went.
    pub(crate) fn remove_destination(&mut self, destination: &Destination) -> usize {
        let Some(keys) = self.keys_to.get(destination).cloned() else {
            return 0;
        };
        keys.iter()
            .map(|key| self.remove_under(key, destination, |_| true))
            .sum()
    }

    /// Calls `found` with the destination of every binding that matches the message
    /// (possibly more than once; the caller deduplicates).
    pub(crate) fn matches<'a>(
        &'a self,
        envelope: &Envelope<'_>,
        found: &mut impl FnMut(&'a Destination),
    ) {
        let mut under = |key: &str| {
            for e in self.by_key.get(key).into_iter().flat_map(|e| e.iter()) {
                found(&e.destination);
            }
        };
        match self.spec.kind {
            ExchangeKind::Direct => envelope.keys().for_each(&mut under),
            ExchangeKind::Topic => {
                for key in envelope.keys() {
                    self.topic.matches(key, &mut |pattern| under(pattern));
                }
            }
            ExchangeKind::Fanout => {
                for e in self.by_key.values().flat_map(|e| e.iter()) {
                    found(&e.destination);
                }
            }
            ExchangeKind::Headers => {
                let headers = envelope.headers();
                for e in self.by_key.values().flat_map(|e| e.iter()) {
                    if e.headers.as_ref().is_some_and(|h| h.matches(headers)) {
                        found(&e.destination);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Bind(u8, u8, u8),
        Unbind(u8, u8, u8),
        RemoveDestination(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        let small = || 0u8..3;
        prop_oneof![
            (small(), small(), small()).prop_map(|(d, k, a)| Op::Bind(d, k, a)),
            (small(), small(), small()).prop_map(|(d, k, a)| Op::Unbind(d, k, a)),
            small().prop_map(Op::RemoveDestination),
        ]
    }

    fn parts(d: u8, k: u8, a: u8) -> (Destination, Arc<str>, FieldTable) {
        let destination = if d == 2 {
            Destination::Exchange("x".into())
        } else {
            Destination::Queue(format!("q{d}").into())
        };
        let mut arguments = FieldTable::new();
        if a > 0 {
            arguments.insert("a", i32::from(a));
        }
        (destination, format!("k{k}").into(), arguments)
    }

    fn routed(x: &Exchange, key: &str) -> Vec<Destination> {
        let envelope = Envelope::new(key, None).unwrap();
        let mut found = Vec::new();
        x.matches(&envelope, &mut |d| found.push(d.clone()));
        found.sort();
        found
    }

    proptest! {
        /// The persistent indexes agree with a plain list of bindings after any
        /// sequence of changes, and copies taken along the way never change.
        #[test]
        fn indexes_agree_with_a_list_of_bindings(ops in proptest::collection::vec(op(), 0..40)) {
            let mut x = Exchange::new(ExchangeSpec::new("d", ExchangeKind::Direct)).unwrap();
            let mut model: Vec<(Destination, Arc<str>, FieldTable)> = Vec::new();
            let mut copies = Vec::new();
            for op in ops {
                match op {
                    Op::Bind(d, k, a) => {
                        let (destination, routing_key, arguments) = parts(d, k, a);
                        let new = !model.contains(&(destination.clone(), routing_key.clone(), arguments.clone()));
                        if new {
                            model.push((destination.clone(), routing_key.clone(), arguments.clone()));
                        }
                        let binding = Binding { destination, routing_key, arguments };
                        prop_assert_eq!(x.bind(binding).unwrap(), new);
                    }
                    Op::Unbind(d, k, a) => {
                        let b = parts(d, k, a);
                        let existed = model.contains(&b);
                        model.retain(|m| *m != b);
                        prop_assert_eq!(x.unbind(&b.0, &b.1, &b.2), existed);
                    }
                    Op::RemoveDestination(d) => {
                        let destination = parts(d, 0, 0).0;
                        let before = model.len();
                        model.retain(|m| m.0 != destination);
                        prop_assert_eq!(x.remove_destination(&destination), before - model.len());
                    }
                }
                prop_assert_eq!(x.binding_count(), model.len());
                for d in 0..3 {
                    let destination = parts(d, 0, 0).0;
                    prop_assert_eq!(x.binds_to(&destination), model.iter().any(|m| m.0 == destination));
                }
                for k in 0..3 {
                    let key = format!("k{k}");
                    let mut expected: Vec<Destination> = model
                        .iter()
                        .filter(|m| *m.1 == *key)
                        .map(|m| m.0.clone())
                        .collect();
                    expected.sort();
                    prop_assert_eq!(routed(&x, &key), expected);
                }
                copies.push((x.clone(), model.clone()));
            }
            for (copy, model) in copies {
                prop_assert_eq!(copy.binding_count(), model.len());
            }
        }
    }
}
