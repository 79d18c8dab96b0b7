//! An exchange: its declared properties and its bindings, indexed for its type.

use std::collections::HashMap;
use std::sync::Arc;

use warren_codec::FieldTable;

use crate::binding::{Binding, Destination};
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
}

impl ExchangeKind {
    /// The type name used in exchange.declare, or None for a type not supported.
    pub fn parse(name: &str) -> Option<ExchangeKind> {
        match name {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            _ => None,
        }
    }

    /// The type name as declared.
    pub fn name(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
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

/// An exchange and its bindings.
#[derive(Debug, Clone)]
pub struct Exchange {
    spec: ExchangeSpec,
    bindings: Vec<Binding>,
    /// Direct exchanges: routing key → indexes into `bindings`, for O(1) routing.
    by_key: HashMap<Arc<str>, Vec<usize>>,
    /// Topic exchanges: binding keys compiled into a trie of indexes into `bindings`.
    topic: TopicTrie,
}

impl Exchange {
    pub(crate) fn new(spec: ExchangeSpec) -> Self {
        Exchange {
            spec,
            bindings: Vec::new(),
            by_key: HashMap::new(),
            topic: TopicTrie::default(),
        }
    }

    /// The declared properties.
    pub fn spec(&self) -> &ExchangeSpec {
        &self.spec
    }

    /// The bindings, in the order they were made.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// Adds a binding; false when an equal one exists.
    pub(crate) fn bind(&mut self, binding: Binding) -> bool {
        if self.bindings.contains(&binding) {
            return false;
        }
        self.index(self.bindings.len(), &binding);
        self.bindings.push(binding);
        true
    }

    /// Removes bindings matching `keep == false`; returns how many went.
    pub(crate) fn retain(&mut self, keep: impl Fn(&Binding) -> bool) -> usize {
        let before = self.bindings.len();
        self.bindings.retain(keep);
        let removed = before - self.bindings.len();
        if removed > 0 {
            self.reindex();
        }
        removed
    }

    /// Adds binding `index` to the routing index of the exchange's type.
    fn index(&mut self, index: usize, binding: &Binding) {
        match self.spec.kind {
            ExchangeKind::Direct => self
                .by_key
                .entry(binding.routing_key.clone())
                .or_default()
                .push(index),
            ExchangeKind::Topic => self.topic.insert(&binding.routing_key, index),
            ExchangeKind::Fanout => {}
        }
    }

    /// Rebuilds the routing index after removals (rare next to routing).
    fn reindex(&mut self) {
        self.by_key.clear();
        self.topic = TopicTrie::default();
        let bindings = std::mem::take(&mut self.bindings);
        for (i, b) in bindings.iter().enumerate() {
            self.index(i, b);
        }
        self.bindings = bindings;
    }

    /// Calls `found` with the destination of every binding that matches the routing
    /// key (possibly more than once; the caller deduplicates).
    pub(crate) fn matches<'a>(
        &'a self,
        routing_key: &str,
        found: &mut impl FnMut(&'a Destination),
    ) {
        match self.spec.kind {
            ExchangeKind::Fanout => self.bindings.iter().for_each(|b| found(&b.destination)),
            ExchangeKind::Direct => {
                for &i in self.by_key.get(routing_key).into_iter().flatten() {
                    if let Some(b) = self.bindings.get(i) {
                        found(&b.destination);
                    }
                }
            }
            ExchangeKind::Topic => self.topic.matches(routing_key, &mut |i| {
                if let Some(b) = self.bindings.get(i) {
                    found(&b.destination);
                }
            }),
        }
    }
}
