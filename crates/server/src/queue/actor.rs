//! The queue task: owns ready messages, unacked deliveries and consumers.
//!
//! Invariants: a message is in exactly one of `ready` or `unacked` (or gone); a
//! consumer's `unacked` equals the number of `unacked` entries naming it; the queue
//! never awaits anything but its mailbox and delivery permits, so it cannot deadlock
//! with a connection.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::debug;
use warren_codec::ShortStr;

use crate::channel::gate::ChannelGate;
use crate::connection::events::{ConnectionHandle, ConnectionId, Delivery, Event};
use crate::error::ChannelError;
use crate::queue::consumers::{Consumer, Consumers};
use crate::queue::ready::{Entry, Ready};
use crate::queue::{Command, ConsumerSpec, Got, QueueHandle, Settle};
use crate::vhost::Vhost;

/// Commands handled per wake-up before delivering.
const BATCH: usize = 256;

/// A delivered message awaiting its ack.
struct Unacked {
    entry: Entry,
    connection: ConnectionId,
    channel: u16,
    /// The consumer it went to; None for basic.get.
    consumer: Option<ShortStr>,
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

pub(crate) struct Queue {
    handle: QueueHandle,
    vhost: Weak<Vhost>,
    ready: Ready,
    next_id: u64,
    unacked: HashMap<u64, Unacked>,
    consumers: Consumers,
    /// Connections out of delivery permits, and the waits for one.
    starved: HashSet<ConnectionId>,
    waits: FuturesUnordered<BoxFuture<'static, (ConnectionId, Option<OwnedSemaphorePermit>)>>,
    /// Permits obtained but not used yet.
    permits: HashMap<ConnectionId, OwnedSemaphorePermit>,
    /// Events for connections, sent as one batch per connection per wake-up: one
    /// wake of the connection task for many deliveries and confirms.
    outbox: Vec<(ConnectionHandle, Vec<Event>)>,
}

impl Queue {
    pub(crate) fn new(handle: QueueHandle, vhost: Weak<Vhost>) -> Self {
        Queue {
            handle,
            vhost,
            ready: Ready::default(),
            next_id: 1,
            unacked: HashMap::new(),
            consumers: Consumers::default(),
            starved: HashSet::new(),
            waits: FuturesUnordered::new(),
            permits: HashMap::new(),
            outbox: Vec::new(),
        }
    }

    fn name(&self) -> &str {
        &self.handle.info.name
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        'outer: loop {
            tokio::select! {
                command = rx.recv() => {
                    let Some(command) = command else { break };
                    if self.handle(command) == Flow::Stop {
                        break;
                    }
                    for _ in 0..BATCH {
                        match rx.try_recv() {
                            Ok(command) => {
                                if self.handle(command) == Flow::Stop {
                                    break 'outer;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
                Some((connection, permit)) = self.waits.next(), if !self.waits.is_empty() => {
                    self.starved.remove(&connection);
                    match permit {
                        Some(permit) => {
                            self.permits.insert(connection, permit);
                        }
                        None => self.connection_gone(connection),
                    }
                }
            }
            self.deliver();
            self.flush_outbox();
        }
        self.flush_outbox();
        self.finish(rx).await;
    }

    fn handle(&mut self, command: Command) -> Flow {
        match command {
            Command::Publish { message, confirm } => {
                let id = self.next_id;
                self.next_id += 1;
                self.ready.push(Entry::new(id, message));
                if let Some(c) = confirm {
                    self.post(
                        &c.connection,
                        Event::Confirm {
                            channel: c.channel,
                            seq: c.seq,
                            ack: true,
                        },
                    );
                }
            }
            Command::Consume { consumer, reply } => {
                let _ = reply.send(self.consume(consumer));
            }
            Command::Cancel {
                connection,
                channel,
                tag,
                reply,
            } => {
                self.consumers.remove(connection, channel, &tag);
                let _ = reply.send(());
                return self.auto_delete_check();
            }
            Command::Settle { ids, how } => self.settle(ids, how),
            Command::Get {
                connection,
                channel,
                no_ack,
                reply,
            } => {
                let got = self.ready.pop().map(|entry| {
                    if !no_ack {
                        self.unacked.insert(
                            entry.id(),
                            Unacked {
                                entry: entry.clone(),
                                connection,
                                channel,
                                consumer: None,
                            },
                        );
                    }
                    Got {
                        entry,
                        remaining: count(self.ready.len()),
                    }
                });
                let _ = reply.send(got);
            }
            Command::Purge { reply } => {
                let _ = reply.send(count(self.ready.clear()));
            }
            Command::Delete {
                if_unused,
                if_empty,
                reply,
            } => {
                let vhost = &self.handle.info.vhost;
                if if_unused && !self.consumers.is_empty() {
                    let _ = reply.send(Err(ChannelError::precondition_failed(format!(
                        "queue '{}' in vhost '{vhost}' in use",
                        self.name()
                    ))));
                } else if if_empty && !self.ready.is_empty() {
                    let _ = reply.send(Err(ChannelError::precondition_failed(format!(
                        "queue '{}' in vhost '{vhost}' is not empty",
                        self.name()
                    ))));
                } else {
                    let _ = reply.send(Ok(count(self.ready.len())));
                    self.remove_from_vhost();
                    return Flow::Stop;
                }
            }
            Command::Counts { reply } => {
                let _ = reply.send((count(self.ready.len()), count(self.consumers.len())));
            }
            Command::ChannelClosed {
                connection,
                channel,
            } => {
                let had = !self.consumers.is_empty();
                self.consumers.remove_channel(connection, channel);
                self.requeue_where(|u| u.connection == connection && u.channel == channel);
                if had {
                    return self.auto_delete_check();
                }
            }
            Command::Resume => {}
            Command::Shutdown => return Flow::Stop,
        }
        Flow::Continue
    }

    fn consume(&mut self, consumer: ConsumerSpec) -> Result<(), ChannelError> {
        if self.consumers.has_exclusive() || (consumer.exclusive && !self.consumers.is_empty()) {
            return Err(ChannelError::access_refused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                self.name(),
                self.handle.info.vhost
            )));
        }
        self.consumers.add(consumer);
        Ok(())
    }

    fn settle(&mut self, ids: Vec<u64>, how: Settle) {
        for id in ids {
            let Some(u) = self.unacked.remove(&id) else {
                continue;
            };
            if let Some(tag) = &u.consumer
                && let Some(c) = self.consumers.find_mut(u.connection, u.channel, tag)
            {
                c.unacked = c.unacked.saturating_sub(1);
            }
            if how == Settle::Requeue {
                self.ready.requeue(u.entry);
            }
        }
    }

    fn requeue_where(&mut self, pred: impl Fn(&Unacked) -> bool) {
        let ids: Vec<u64> = self
            .unacked
            .iter()
            .filter(|(_, u)| pred(u))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(u) = self.unacked.remove(&id) {
                self.ready.requeue(u.entry);
            }
        }
    }

    fn connection_gone(&mut self, connection: ConnectionId) {
        self.permits.remove(&connection);
        self.consumers.remove_connection(connection);
        self.requeue_where(|u| u.connection == connection);
    }

    /// An auto-delete queue goes when its last consumer does.
    fn auto_delete_check(&mut self) -> Flow {
        if self.handle.info.auto_delete && self.consumers.is_empty() {
            debug!(
                queue = self.name(),
                "auto-delete queue lost its last consumer"
            );
            self.remove_from_vhost();
            return Flow::Stop;
        }
        Flow::Continue
    }

    fn remove_from_vhost(&self) {
        if let Some(vhost) = self.vhost.upgrade() {
            vhost.remove_queue(&self.handle);
        }
    }

    /// Hands ready messages to consumers, round-robin, while any consumer can take one.
    fn deliver(&mut self) {
        while !self.ready.is_empty() {
            let Some((index, permit)) = self.pick_consumer() else {
                break;
            };
            let Some(entry) = self.ready.pop() else {
                break;
            };
            let Some(consumer) = self.consumers.get_mut(index) else {
                break;
            };
            let spec = &consumer.spec;
            let (connection, channel, no_ack) =
                (spec.connection.clone(), spec.channel, spec.no_ack);
            let tag = spec.tag.clone();
            if !no_ack {
                consumer.unacked += 1;
                self.unacked.insert(
                    entry.id(),
                    Unacked {
                        entry: entry.clone(),
                        connection: connection.id,
                        channel,
                        consumer: Some(tag.clone()),
                    },
                );
            }
            let delivery = Delivery {
                channel,
                consumer_tag: tag,
                queue: self.handle.clone(),
                message_id: entry.id(),
                redelivered: entry.redelivered(),
                message: entry.message,
                no_ack,
                _permit: permit,
            };
            self.post(&connection, Event::Deliver(delivery));
        }
    }

    /// Queues an event for a connection until the end of this wake-up.
    fn post(&mut self, connection: &ConnectionHandle, event: Event) {
        match self.outbox.iter_mut().find(|(c, _)| c.id == connection.id) {
            Some((_, events)) => events.push(event),
            None => self.outbox.push((connection.clone(), vec![event])),
        }
    }

    fn flush_outbox(&mut self) {
        for (connection, mut events) in std::mem::take(&mut self.outbox) {
            let event = match events.len() {
                1 => events.pop(),
                _ => Some(Event::Batch(events)),
            };
            if let Some(event) = event
                && !connection.send(event)
            {
                // Its deliveries are still unacked here: they go back to ready.
                self.connection_gone(connection.id);
            }
        }
    }

    /// The next consumer that may take a delivery now, with the permit for it.
    fn pick_consumer(&mut self) -> Option<(usize, OwnedSemaphorePermit)> {
        let starved = &mut self.starved;
        let permits = &mut self.permits;
        let waits = &mut self.waits;
        let mut chosen = None;
        let index = self.consumers.next(|c: &mut Consumer| {
            let connection = &c.spec.connection;
            if starved.contains(&connection.id) || !c.has_room() {
                return false;
            }
            let permit = match permits.remove(&connection.id) {
                Some(p) => p,
                None => match connection.try_permit() {
                    Some(p) => p,
                    None => {
                        starved.insert(connection.id);
                        waits.push(Box::pin(connection.clone().permit()));
                        return false;
                    }
                },
            };
            if !admit(&c.spec.gate, c.spec.no_ack) {
                permits.insert(connection.id, permit);
                return false;
            }
            chosen = Some(permit);
            true
        })?;
        chosen.map(|permit| (index, permit))
    }

    /// The queue is gone: answer whatever is still in the mailbox as a deleted queue
    /// would, so no publisher waits forever for a confirm.
    async fn finish(mut self, mut rx: mpsc::Receiver<Command>) {
        for consumer in self.consumers.take_all() {
            consumer.spec.connection.send(Event::ConsumerCancelled {
                channel: consumer.spec.channel,
                consumer_tag: consumer.spec.tag,
            });
        }
        rx.close();
        while let Some(command) = rx.recv().await {
            match command {
                Command::Publish {
                    confirm: Some(c), ..
                } => {
                    c.connection.send(Event::Confirm {
                        channel: c.channel,
                        seq: c.seq,
                        ack: true,
                    });
                }
                Command::Consume { reply, .. } => {
                    let _ = reply.send(Err(ChannelError::not_found(format!(
                        "no queue '{}' in vhost '{}'",
                        self.name(),
                        self.handle.info.vhost
                    ))));
                }
                Command::Delete { reply, .. } => {
                    let _ = reply.send(Ok(0));
                }
                // Other replies drop their sender: the asker sees the queue has gone.
                _ => {}
            }
        }
        debug!(queue = self.name(), "queue stopped");
    }
}

/// Whether a channel's gate admits one more delivery of this kind.
fn admit(gate: &Arc<ChannelGate>, no_ack: bool) -> bool {
    if no_ack {
        gate.is_flowing()
    } else {
        gate.try_acquire()
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
