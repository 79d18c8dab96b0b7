//! What survives a restart: durable exchanges, queues and bindings, and persistent
//! messages in durable queues, kept in the message store ([`warren_store`]).
//!
//! The rules, as RabbitMQ's: a definition is stored when it is durable (a binding when
//! both ends are; an exclusive queue never); a message is stored when it is persistent
//! (delivery-mode 2), once, for the durable queues it was routed to. A publisher's
//! confirm for a stored message waits until the store has synced it to disk.

pub(crate) mod definitions;
mod recover;

use std::borrow::Borrow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use warren_routing::{Destination, ExchangeSpec};

use definitions::binding_key;
use warren_store::{Recovered, Store};

use crate::message::Message;
use crate::queue::QueueHandle;
use crate::vhost::Snapshot;

pub(crate) use recover::recover;

/// The broker's store and the ids of its durable queues.
pub(crate) struct Durable {
    pub(crate) store: Store,
    next_queue: AtomicU32,
    /// Unit tests' store directory, deleted with the store.
    #[cfg(test)]
    _dir: Option<tempfile::TempDir>,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Durable {
    /// Wraps an opened store; queue ids continue after the highest one its log names
    /// (recovery raises that past the stored definitions, [`Durable::in_use`]).
    pub(crate) fn new(store: Store, recovered: &Recovered) -> Durable {
        Durable {
            store,
            next_queue: AtomicU32::new(recovered.max_queue_id + 1),
            #[cfg(test)]
            _dir: None,
        }
    }

    /// A store in a fresh temporary directory, for unit tests.
    #[cfg(test)]
    pub(crate) fn in_temp_dir() -> std::sync::Arc<Durable> {
        #![allow(clippy::expect_used)]
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (store, recovered) =
            Store::open(warren_store::Options::new(dir.path())).expect("a store");
        let mut durable = Durable::new(store, &recovered);
        durable._dir = Some(dir);
        std::sync::Arc::new(durable)
    }

    /// Queue id `id` is taken (by a recovered definition): never allocate it.
    pub(crate) fn in_use(&self, id: u32) {
        self.next_queue
            .fetch_max(id.saturating_add(1), Ordering::Relaxed);
    }

    /// A queue id never used before in this store.
    pub(crate) fn allocate_queue(&self) -> u32 {
        self.next_queue.fetch_add(1, Ordering::Relaxed)
    }

    /// Stores `message` (with its own TTL, `expiration`) for those of `queues` that are
    /// durable, if it is persistent. Returns its store id, or 0 when nothing was stored.
    pub(crate) fn persist(
        &self,
        message: &Message,
        expiration: Option<u64>,
        queues: &[impl Borrow<QueueHandle>],
    ) -> u64 {
        if !message.is_persistent() {
            return 0;
        }
        let ids: Vec<u32> = queues
            .iter()
            .filter_map(|q| q.borrow().info.store_id)
            .collect();
        if ids.is_empty() {
            return 0;
        }
        self.store
            .publish(&ids, now_ms(), expiration, &message.stored_parts())
    }

    pub(crate) fn put_exchange(&self, vhost: &str, spec: &ExchangeSpec) {
        // The predeclared amq.* exchanges are made at every start.
        if spec.durable && !spec.name.starts_with("amq.") {
            self.store.put_definition(
                &definitions::exchange_key(vhost, &spec.name),
                &definitions::exchange_value(spec),
            );
        }
    }

    pub(crate) fn put_queue(&self, vhost: &str, queue: &QueueHandle) {
        let info = &queue.info;
        if let Some(id) = info.store_id {
            self.store.put_definition(
                &definitions::queue_key(vhost, &info.name),
                &definitions::queue_value(id, info.auto_delete, &info.arguments),
            );
        }
    }

    /// Forgets a durable queue and the messages it held.
    pub(crate) fn delete_queue(&self, vhost: &str, queue: &QueueHandle) {
        if let Some(id) = queue.info.store_id {
            self.store
                .delete_definition(&definitions::queue_key(vhost, &queue.info.name));
            self.store.queue_deleted(id);
        }
    }

    /// Stores a new binding if both its ends are durable.
    pub(crate) fn put_binding(
        &self,
        vhost: &str,
        snapshot: &Snapshot,
        source: &str,
        destination: &Destination,
        routing_key: &str,
        arguments: &warren_codec::FieldTable,
    ) {
        if is_durable(snapshot, source) && ends_durable(snapshot, destination) {
            self.store.put_definition(
                &binding_key(vhost, source, destination, routing_key, arguments),
                &[],
            );
        }
    }

    /// Forgets a stored binding (one whose ends did not come back).
    pub(crate) fn forget_binding(&self, vhost: &str, b: &definitions::StoredBinding) {
        self.store.delete_definition(&binding_key(
            vhost,
            &b.source,
            &b.destination,
            &b.routing_key,
            &b.arguments,
        ));
    }

    /// Removes from the store what a topology change removed: durable exchanges, and
    /// durable bindings of the exchanges it changed (deleting an exchange or a queue
    /// takes bindings with it, and auto-delete exchanges may follow).
    pub(crate) fn sync_removed(&self, vhost: &str, before: &Snapshot, after: &Snapshot) {
        for old in before.topology.exchanges() {
            let spec = old.spec();
            if !spec.durable {
                continue;
            }
            let new = after.topology.exchange(&spec.name);
            if new.is_some_and(|new| std::ptr::eq(new, old)) {
                continue;
            }
            if new.is_none() && !spec.name.starts_with("amq.") {
                self.store
                    .delete_definition(&definitions::exchange_key(vhost, &spec.name));
            }
            let kept: HashSet<Bytes> = new
                .map(|new| {
                    new.bindings()
                        .map(|b| {
                            binding_key(
                                vhost,
                                &spec.name,
                                &b.destination,
                                &b.routing_key,
                                &b.arguments,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            for b in old.bindings() {
                if !ends_durable(before, &b.destination) {
                    continue;
                }
                let key = binding_key(
                    vhost,
                    &spec.name,
                    &b.destination,
                    &b.routing_key,
                    &b.arguments,
                );
                if !kept.contains(&key) {
                    self.store.delete_definition(&key);
                }
            }
        }
    }
}

fn is_durable(snapshot: &Snapshot, exchange: &str) -> bool {
    snapshot
        .topology
        .exchange(exchange)
        .is_some_and(|x| x.spec().durable)
}

fn ends_durable(snapshot: &Snapshot, destination: &Destination) -> bool {
    match destination {
        Destination::Queue(q) => snapshot
            .queues
            .get(q)
            .is_some_and(|q| q.info.store_id.is_some()),
        Destination::Exchange(x) => is_durable(snapshot, x),
    }
}
