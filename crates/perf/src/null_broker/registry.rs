//! What every connection must know about the others: the consumers, and which
//! exchanges are fanouts.
//!
//! Changes (consume, cancel, exchange.declare) are rare and publishes are not, so
//! the registry keeps an immutable [`Snapshot`] behind a mutex, replaces it on every
//! change and bumps a version number. A publisher keeps its own copy of the `Arc`
//! and only takes the lock when the version has moved: one atomic load per publish.
//!
//! Invariant: the version changes only under the lock, after the new snapshot is in
//! place, so a reader that sees version `v` and then locks gets a snapshot at least
//! as new as `v`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use warren_codec::ShortStr;

use super::outbound::Outbound;

/// A consumer, as a publisher reaches it.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// Unique on the broker; the consumer's writer drops deliveries for an id it no
    /// longer knows (cancelled, or its channel closed).
    pub(super) id: u64,
    /// The channel it consumes on.
    pub(super) channel: u16,
    /// Its tag, for basic.deliver.
    pub(super) consumer_tag: ShortStr,
    /// Its connection's writer.
    pub(super) outbound: mpsc::Sender<Outbound>,
}

/// The consumers and fanout exchanges at one moment.
#[derive(Debug, Clone, Default)]
pub(super) struct Snapshot {
    /// Every consumer, in the order they started.
    pub(super) consumers: Vec<Target>,
    /// Exchanges that deliver every message to every consumer.
    pub(super) fanouts: HashSet<ShortStr>,
}

/// The broker-wide registry, shared by every connection.
#[derive(Debug)]
pub(super) struct Registry {
    /// A std mutex: held only to swap an `Arc` or copy a short list, never across
    /// an `.await`.
    current: Mutex<Arc<Snapshot>>,
    version: AtomicU64,
    next_id: AtomicU64,
}

impl Registry {
    /// An empty registry, knowing `amq.fanout` as the one predeclared fanout.
    pub(super) fn new() -> Self {
        let mut snapshot = Snapshot::default();
        snapshot.fanouts.insert(ShortStr::from_static("amq.fanout"));
        Registry {
            current: Mutex::new(Arc::new(snapshot)),
            version: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        }
    }

    /// The version of the current snapshot; compare with the one a copy was taken at.
    pub(super) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The current snapshot and its version.
    pub(super) fn snapshot(&self) -> (Arc<Snapshot>, u64) {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        (current.clone(), self.version.load(Ordering::Acquire))
    }

    /// A number never handed out before: consumer ids, generated names.
    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds a consumer; publishes see it from their next message on.
    pub(super) fn add_consumer(&self, target: Target) {
        self.update(|s| s.consumers.push(target));
    }

    /// Removes the consumers with these ids.
    pub(super) fn remove_consumers(&self, ids: &[u64]) {
        if !ids.is_empty() {
            self.update(|s| s.consumers.retain(|t| !ids.contains(&t.id)));
        }
    }

    /// Records whether an exchange is a fanout: its type is all routing looks at.
    pub(super) fn set_fanout(&self, name: &ShortStr, fanout: bool) {
        let known = self.snapshot().0.fanouts.contains(name);
        if known != fanout {
            self.update(|s| {
                if fanout {
                    s.fanouts.insert(name.clone());
                } else {
                    s.fanouts.remove(name);
                }
            });
        }
    }

    fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = Snapshot::clone(&current);
        change(&mut next);
        *current = Arc::new(next);
        self.version.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: u64, outbound: &mpsc::Sender<Outbound>) -> Target {
        Target {
            id,
            channel: 1,
            consumer_tag: "c".into(),
            outbound: outbound.clone(),
        }
    }

    #[test]
    fn every_change_moves_the_version_and_the_snapshot() {
        let (tx, _rx) = mpsc::channel(1);
        let registry = Registry::new();
        let (before, v0) = registry.snapshot();
        registry.add_consumer(target(1, &tx));
        registry.add_consumer(target(2, &tx));
        assert!(registry.version() > v0);
        assert!(before.consumers.is_empty(), "an old snapshot never changes");
        registry.remove_consumers(&[1]);
        let ids: Vec<u64> = registry
            .snapshot()
            .0
            .consumers
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, [2]);
    }

    #[test]
    fn exchanges_are_fanouts_as_last_declared() {
        let registry = Registry::new();
        let name = ShortStr::from("perf-fanout");
        assert!(registry.snapshot().0.fanouts.contains("amq.fanout"));
        registry.set_fanout(&name, true);
        assert!(registry.snapshot().0.fanouts.contains(&name));
        let version = registry.version();
        registry.set_fanout(&name, true);
        assert_eq!(registry.version(), version, "no change, no new snapshot");
        registry.set_fanout(&name, false);
        assert!(!registry.snapshot().0.fanouts.contains(&name));
    }
}
