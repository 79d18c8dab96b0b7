//! A virtual host: its exchanges, bindings and queues.
//!
//! The vhost is the single writer of its topology. Writers take a short std mutex
//! (never held across `.await`; topology changes are rare and quick), build the next
//! [`Snapshot`] and publish it; publishers load the current snapshot without locking.
//! A change is published before its -ok is sent, so a publish right after bind-ok
//! sees the binding.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, Weak};

use arc_swap::ArcSwap;
use tracing::warn;
use warren_codec::{FieldTable, ShortStr};
use warren_routing::{Destination, Envelope, ExchangeKind, ExchangeSpec, RoutingError, Topology};

use crate::alarm::Alarm;
use crate::connection::events::ConnectionId;
use crate::durable::Durable;
use crate::durable::definitions::{StoredBinding, StoredQueue};
use crate::error::ChannelError;
use crate::number_hash::NumberSet;
use crate::policy::Policies;
use crate::queue::{self, Command, QueueHandle, QueueInfo, Restored, Settings};
use crate::unroutable::Unroutable;

/// What publishers route against: immutable once published.
#[derive(Clone, Default)]
pub(crate) struct Snapshot {
    pub(crate) topology: Topology,
    pub(crate) queues: HashMap<Arc<str>, QueueHandle>,
}

/// A queue.declare's request, after name checks.
pub(crate) struct QueueDeclare {
    pub(crate) name: ShortStr,
    pub(crate) durable: bool,
    pub(crate) exclusive: bool,
    pub(crate) auto_delete: bool,
    pub(crate) arguments: FieldTable,
    pub(crate) settings: crate::queue::Settings,
}

pub(crate) struct Vhost {
    name: Arc<str>,
    this: Weak<Vhost>,
    /// Serialises writers; the state itself is the published snapshot.
    writer: Mutex<()>,
    snapshot: ArcSwap<Snapshot>,
    pub(crate) unroutable: Unroutable,
    memory: Arc<Alarm>,
    pub(crate) durable: Arc<Durable>,
    /// The operator's policies for this vhost's queues.
    policies: ArcSwap<Policies>,
}

/// Up to this many destination queues, duplicates are found by a linear check.
const LINEAR_DEDUP: usize = 16;

/// The exchanges every vhost has from the start.
const PREDECLARED: [(&str, ExchangeKind); 5] = [
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

impl Vhost {
    pub(crate) fn new(
        name: &str,
        memory: Arc<Alarm>,
        durable: Arc<Durable>,
        policies: Policies,
    ) -> Arc<Vhost> {
        let mut topology = Topology::new();
        for (exchange, kind) in PREDECLARED {
            let mut spec = ExchangeSpec::new(exchange, kind);
            spec.durable = true;
            // A fresh topology has no exchange to clash with.
            let _ = topology.declare(spec);
        }
        Arc::new_cyclic(|this| Vhost {
            name: name.into(),
            this: this.clone(),
            writer: Mutex::new(()),
            snapshot: ArcSwap::from_pointee(Snapshot {
                topology,
                queues: HashMap::new(),
            }),
            unroutable: Unroutable::default(),
            memory,
            durable,
            policies: ArcSwap::from_pointee(policies),
        })
    }

    /// The policies in force.
    pub(crate) fn policies(&self) -> arc_swap::Guard<Arc<Policies>> {
        self.policies.load()
    }

    /// The settings a queue named `name` runs with: its own (from `arguments`) with the
    /// policies'.
    pub(crate) fn settings_for(
        &self,
        name: &str,
        arguments: &FieldTable,
        own: &Settings,
    ) -> Settings {
        own.with_policy(arguments, &self.policies.load().resolve(name).definition)
    }

    /// Puts new policies in force, on every queue of the vhost at once.
    pub(crate) async fn set_policies(&self, policies: Policies) {
        let queues: Vec<QueueHandle> = {
            // Under the writer lock: a queue declared meanwhile gets the new policies.
            let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            self.policies.store(Arc::new(policies));
            self.snapshot().queues.values().cloned().collect()
        };
        for queue in queues {
            let info = &queue.info;
            let settings = self.settings_for(&info.name, &info.arguments, &info.settings);
            queue.send(Command::Apply { settings }).await;
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The current snapshot, for routing and lookups.
    pub(crate) fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// Runs `change` on a copy of the current snapshot and publishes the result.
    /// A refused change publishes nothing.
    fn update<T, E>(&self, change: impl FnOnce(&mut Snapshot) -> Result<T, E>) -> Result<T, E> {
        self.update_then(change, |_, _| {})
    }

    /// As [`Vhost::update`], then `stored(before, after)` while still the only writer:
    /// the store sees changes in the order they were made.
    fn update_then<T, E>(
        &self,
        change: impl FnOnce(&mut Snapshot) -> Result<T, E>,
        stored: impl FnOnce(&Snapshot, &Snapshot),
    ) -> Result<T, E> {
        // Poisoning only means a writer panicked mid-change; the snapshot it was
        // building was never published, so the lock's data (nothing) is still fine.
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let before = self.snapshot.load_full();
        let mut next = Snapshot::clone(&before);
        let result = change(&mut next)?;
        stored(&before, &next);
        self.snapshot.store(Arc::new(next));
        Ok(result)
    }

    /// Removes from the store what a change removed.
    fn sync_removed(&self) -> impl FnOnce(&Snapshot, &Snapshot) + '_ {
        |before, after| self.durable.sync_removed(&self.name, before, after)
    }

    pub(crate) fn routing_error(&self, e: RoutingError) -> ChannelError {
        match e {
            RoutingError::ExchangeNotFound(name) => {
                ChannelError::not_found(format!("no exchange '{name}' in vhost '{}'", self.name))
            }
            RoutingError::Inequivalent {
                exchange,
                field,
                received,
                current,
            } => ChannelError::precondition_failed(format!(
                "inequivalent arg '{field}' for exchange '{exchange}' in vhost '{}': \
                 received '{received}' but current is '{current}'",
                self.name
            )),
            RoutingError::DefaultExchange => {
                ChannelError::access_refused("operation not permitted on the default exchange")
            }
            RoutingError::InUse(name) => ChannelError::precondition_failed(format!(
                "exchange '{name}' in vhost '{}' in use",
                self.name
            )),
            RoutingError::InvalidArgument {
                exchange,
                argument,
                reason,
            } => ChannelError::precondition_failed(format!(
                "invalid arg '{argument}' for exchange '{exchange}' in vhost '{}': {reason}",
                self.name
            )),
            e @ (RoutingError::InvalidBinding(_) | RoutingError::RoutingHeader { .. }) => {
                ChannelError::precondition_failed(e.to_string())
            }
        }
    }

    pub(crate) fn declare_exchange(&self, spec: ExchangeSpec) -> Result<(), ChannelError> {
        self.update(|s| {
            if s.topology.declare(spec.clone())? {
                self.durable.put_exchange(&self.name, &spec);
            }
            Ok(())
        })
        .map_err(|e| self.routing_error(e))
    }

    pub(crate) fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<(), ChannelError> {
        self.update_then(|s| s.topology.delete(name, if_unused), self.sync_removed())
            .map_err(|e| self.routing_error(e))
    }

    /// Declares an exchange read back from the store.
    pub(crate) fn restore_exchange(&self, spec: ExchangeSpec) {
        let name = spec.name.clone();
        if let Err(e) = self.update(|s| s.topology.declare(spec)) {
            warn!(vhost = &*self.name, exchange = &*name, error = %e, "stored exchange not restored");
        }
    }

    /// Starts a durable queue read back from the store, with its messages.
    pub(crate) fn restore_queue(
        &self,
        stored: StoredQueue,
        messages: Vec<warren_store::StoredMessage>,
        clean: bool,
    ) {
        let settings = match crate::queue::Settings::parse(&stored.arguments) {
            Ok(settings) => settings,
            Err(invalid) => {
                warn!(
                    vhost = &*self.name,
                    queue = &*stored.name,
                    error = invalid.text(&stored.name, &self.name),
                    "stored queue not restored"
                );
                return;
            }
        };
        let Ok(name) = ShortStr::new(stored.name.clone()) else {
            return;
        };
        let info = QueueInfo {
            name: name.clone(),
            vhost: self.name.clone(),
            durable: true,
            exclusive_owner: None,
            auto_delete: stored.auto_delete,
            arguments: stored.arguments,
            settings,
            store_id: Some(stored.id),
        };
        let restored = Restored { messages, clean };
        let settings = self.settings_for(&info.name, &info.arguments, &info.settings);
        let handle = queue::spawn(
            info,
            self.this.clone(),
            self.memory.clone(),
            self.durable.clone(),
            restored,
            settings,
        );
        let _: Result<(), Infallible> = self.update(|s| {
            s.queues.insert(name.as_str().into(), handle);
            Ok(())
        });
    }

    /// Binds as a stored binding says; one whose ends are gone is forgotten.
    pub(crate) fn restore_binding(&self, b: StoredBinding) {
        let restored = self.update(|s| {
            if let Destination::Queue(q) = &b.destination
                && !s.queues.contains_key(q)
            {
                return Err(RoutingError::ExchangeNotFound(q.to_string()));
            }
            s.topology.bind(
                &b.source,
                b.destination.clone(),
                &b.routing_key,
                b.arguments.clone(),
            )
        });
        if restored.is_err() {
            self.durable.forget_binding(&self.name, &b);
        }
    }

    /// Declares a queue, or finds the existing one and checks it matches. Returns the
    /// handle and whether it was created.
    pub(crate) fn declare_queue(
        &self,
        declare: QueueDeclare,
        connection: ConnectionId,
    ) -> Result<(QueueHandle, bool), ChannelError> {
        self.update(|s| {
            if let Some(existing) = s.queues.get(declare.name.as_str()) {
                existing.check_owner(connection)?;
                self.check_equivalent(existing, &declare)?;
                return Ok((existing.clone(), false));
            }
            let info = QueueInfo {
                name: declare.name.clone(),
                vhost: self.name.clone(),
                durable: declare.durable,
                exclusive_owner: declare.exclusive.then_some(connection),
                auto_delete: declare.auto_delete,
                arguments: declare.arguments,
                settings: declare.settings,
                // Exclusive queues go with their connection: never stored.
                store_id: (declare.durable && !declare.exclusive)
                    .then(|| self.durable.allocate_queue()),
            };
            let settings = self.settings_for(&info.name, &info.arguments, &info.settings);
            let handle = queue::spawn(
                info,
                self.this.clone(),
                self.memory.clone(),
                self.durable.clone(),
                Restored::default(),
                settings,
            );
            self.durable.put_queue(&self.name, &handle);
            s.queues
                .insert(declare.name.as_str().into(), handle.clone());
            Ok((handle, true))
        })
    }

    fn check_equivalent(
        &self,
        queue: &QueueHandle,
        wanted: &QueueDeclare,
    ) -> Result<(), ChannelError> {
        let info = &queue.info;
        let differ = |field: &str, received: String, current: String| {
            Err(ChannelError::precondition_failed(format!(
                "inequivalent arg '{field}' for queue '{}' in vhost '{}': \
                 received '{received}' but current is '{current}'",
                info.name, self.name
            )))
        };
        // As RabbitMQ: an exclusive flag that differs is a lock conflict (405), checked
        // before the other properties.
        if info.exclusive_owner.is_some() != wanted.exclusive {
            return Err(queue.locked());
        }
        if info.durable != wanted.durable {
            return differ(
                "durable",
                wanted.durable.to_string(),
                info.durable.to_string(),
            );
        }
        if info.auto_delete != wanted.auto_delete {
            return differ(
                "auto_delete",
                wanted.auto_delete.to_string(),
                info.auto_delete.to_string(),
            );
        }
        for (key, value) in wanted.arguments.iter() {
            if info.arguments.get(key) != Some(value) {
                return differ(
                    key,
                    format!("{value:?}"),
                    info.arguments
                        .get(key)
                        .map_or_else(|| "none".to_owned(), |v| format!("{v:?}")),
                );
            }
        }
        for (key, value) in info.arguments.iter() {
            if wanted.arguments.get(key).is_none() {
                return differ(key, "none".to_owned(), format!("{value:?}"));
            }
        }
        Ok(())
    }

    /// The queue named `name`, or 404.
    pub(crate) fn queue(&self, name: &str) -> Result<QueueHandle, ChannelError> {
        self.snapshot()
            .queues
            .get(name)
            .cloned()
            .ok_or_else(|| self.no_queue(name))
    }

    pub(crate) fn no_queue(&self, name: &str) -> ChannelError {
        ChannelError::not_found(format!("no queue '{name}' in vhost '{}'", self.name))
    }

    /// Removes a queue and its bindings (called by the queue itself as it stops).
    pub(crate) fn remove_queue(&self, queue: &QueueHandle) {
        let name: &str = &queue.info.name;
        let removed: Result<bool, Infallible> = self.update_then(
            |s| {
                let ours = s.queues.get(name).is_some_and(|q| q.same(queue));
                if ours {
                    s.queues.remove(name);
                    s.topology
                        .remove_bindings_to(&Destination::Queue(name.into()));
                }
                Ok(ours)
            },
            |before, after| {
                self.durable.sync_removed(&self.name, before, after);
                if before.queues.get(name).is_some_and(|q| q.same(queue)) {
                    self.durable.delete_queue(&self.name, queue);
                }
            },
        );
        let Ok(_) = removed;
    }

    /// Deletes the exclusive queues of a connection that closed.
    pub(crate) async fn connection_closed(&self, connection: ConnectionId) {
        let owned: Vec<QueueHandle> = self
            .snapshot()
            .queues
            .values()
            .filter(|q| q.info.exclusive_owner == Some(connection))
            .cloned()
            .collect();
        for queue in owned {
            self.remove_queue(&queue);
            queue.send(Command::Shutdown).await;
        }
    }

    /// Binds a queue to an exchange; true when the binding is new.
    pub(crate) fn bind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<bool, ChannelError> {
        self.update(|s| {
            if !s.queues.contains_key(queue) {
                return Err(self.no_queue(queue));
            }
            let destination = Destination::Queue(queue.into());
            let new = s
                .topology
                .bind(
                    exchange,
                    destination.clone(),
                    routing_key,
                    arguments.clone(),
                )
                .map_err(|e| self.routing_error(e))?;
            if new {
                self.durable.put_binding(
                    &self.name,
                    s,
                    exchange,
                    &destination,
                    routing_key,
                    &arguments,
                );
            }
            Ok(new)
        })
    }

    /// Binds exchange `destination` to exchange `source`; true when the binding is new.
    pub(crate) fn bind_exchange(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<bool, ChannelError> {
        self.update(|s| {
            let to = Destination::Exchange(destination.into());
            let new = s
                .topology
                .bind(source, to.clone(), routing_key, arguments.clone())?;
            if new {
                self.durable
                    .put_binding(&self.name, s, source, &to, routing_key, &arguments);
            }
            Ok(new)
        })
        .map_err(|e| self.routing_error(e))
    }

    /// Removes an exchange-to-exchange binding; both exchanges must exist.
    pub(crate) fn unbind_exchange(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> Result<(), ChannelError> {
        self.update_then(
            |s| {
                if s.topology.exchange(destination).is_none() {
                    return Err(RoutingError::ExchangeNotFound(destination.to_owned()));
                }
                s.topology.unbind(
                    source,
                    &Destination::Exchange(destination.into()),
                    routing_key,
                    arguments,
                )
            },
            self.sync_removed(),
        )
        .map(|_| ())
        .map_err(|e| self.routing_error(e))
    }

    pub(crate) fn unbind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> Result<(), ChannelError> {
        self.update_then(
            |s| {
                if !s.queues.contains_key(queue) {
                    return Err(self.no_queue(queue));
                }
                s.topology
                    .unbind(
                        exchange,
                        &Destination::Queue(queue.into()),
                        routing_key,
                        arguments,
                    )
                    .map(|_| ())
                    .map_err(|e| self.routing_error(e))
            },
            self.sync_removed(),
        )
    }

    /// The queues a message goes to. 404 for an unknown exchange; an empty list when
    /// nothing matched.
    pub(crate) fn route<'s>(
        &self,
        snapshot: &'s Snapshot,
        exchange: &str,
        envelope: &Envelope<'_>,
    ) -> Result<Vec<&'s QueueHandle>, ChannelError> {
        let mut queues: Vec<&QueueHandle> = Vec::new();
        // Two bindings to one queue route one copy. A big fan-out checks a set, not
        // the list, for ones already there.
        let mut seen: NumberSet<usize> = NumberSet::default();
        snapshot
            .topology
            .route_each(exchange, envelope, |name| {
                let Some(queue) = snapshot.queues.get(name) else {
                    return;
                };
                let new = if queues.len() < LINEAR_DEDUP {
                    !queues.iter().any(|q| q.same(queue))
                } else {
                    if seen.is_empty() {
                        seen.extend(queues.iter().map(|q| Arc::as_ptr(&q.info) as usize));
                    }
                    seen.insert(Arc::as_ptr(&queue.info) as usize)
                };
                if new {
                    queues.push(queue);
                }
            })
            .map_err(|e| self.routing_error(e))?;
        Ok(queues)
    }
}
