//! Queues. Each queue is an actor: one task owns its messages, consumers and unacked
//! deliveries, and channels talk to it through a bounded mailbox ([`QueueHandle`]).
//! A full mailbox slows the publishing connection, which is how backpressure reaches
//! a publisher. The queue itself never waits on anyone (see `connection::events`).

mod actor;
mod consumers;
mod dead_letter;
mod expiry;
mod ready;
mod settings;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::{mpsc, oneshot};
use warren_codec::{FieldTable, ShortStr};

use crate::alarm::Alarm;
use crate::channel::gate::ChannelGate;
use crate::connection::events::{ConnectionHandle, ConnectionId};
use crate::durable::Durable;
use crate::error::ChannelError;
use crate::message::Message;
use crate::vhost::Vhost;

pub(crate) use ready::Entry;
pub(crate) use settings::{Settings, expected_integer};

/// Commands a queue's mailbox holds before senders wait.
const MAILBOX: usize = 1024;

/// What a queue was declared with: fixed for its life.
#[derive(Debug)]
pub(crate) struct QueueInfo {
    pub(crate) name: ShortStr,
    /// The vhost's name, for error texts.
    pub(crate) vhost: Arc<str>,
    pub(crate) durable: bool,
    /// The connection that owns an exclusive queue.
    pub(crate) exclusive_owner: Option<ConnectionId>,
    pub(crate) auto_delete: bool,
    pub(crate) arguments: FieldTable,
    /// What the arguments ask of the queue's behaviour (policies may add to it: the
    /// queue task holds the settings in force).
    pub(crate) settings: Settings,
    /// Its id in the message store: durable, non-exclusive queues have one.
    pub(crate) store_id: Option<u32>,
}

/// What a durable queue held when the broker last stopped.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pub(crate) messages: Vec<warren_store::StoredMessage>,
    /// The broker stopped cleanly: recovered messages were not out with a consumer.
    pub(crate) clean: bool,
}

/// A channel's way to a queue. Cheap to clone.
#[derive(Clone)]
pub(crate) struct QueueHandle {
    pub(crate) info: Arc<QueueInfo>,
    tx: mpsc::Sender<Command>,
}

impl std::fmt::Debug for QueueHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QueueHandle({})", self.info.name)
    }
}

impl QueueHandle {
    /// Sends a command without waiting; hands it back when the mailbox is full.
    pub(crate) fn try_send(&self, command: Command) -> Result<(), Option<Command>> {
        self.tx.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(command) => Some(command),
            mpsc::error::TrySendError::Closed(_) => None,
        })
    }

    /// Sends a command, waiting for mailbox room; false if the queue has gone.
    pub(crate) async fn send(&self, command: Command) -> bool {
        self.tx.send(command).await.is_ok()
    }

    /// Sends a command, waiting for mailbox room; hands it back if the queue has gone.
    pub(crate) async fn send_or_return(&self, command: Command) -> Result<(), Command> {
        self.tx.send(command).await.map_err(|e| e.0)
    }

    /// Asks something and waits for the answer; None if the queue has gone.
    pub(crate) async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        if !self.send(make(reply)).await {
            return None;
        }
        rx.await.ok()
    }

    /// The store id a message persisted at `stored` has in this queue: itself for a
    /// queue the store keeps, 0 (not stored) for the others.
    pub(crate) fn stored_here(&self, stored: u64) -> u64 {
        if self.info.store_id.is_some() {
            stored
        } else {
            0
        }
    }

    /// True when both handles lead to the same queue.
    pub(crate) fn same(&self, other: &QueueHandle) -> bool {
        Arc::ptr_eq(&self.info, &other.info)
    }

    /// Checks that `connection` may use this queue: an exclusive queue belongs to the
    /// connection that declared it (405 otherwise).
    pub(crate) fn check_owner(&self, connection: ConnectionId) -> Result<(), ChannelError> {
        match self.info.exclusive_owner {
            Some(owner) if owner != connection => Err(self.locked()),
            _ => Ok(()),
        }
    }

    /// RabbitMQ's 405 for a queue another connection holds exclusively, or whose
    /// exclusive flag a redeclare does not match.
    pub(crate) fn locked(&self) -> ChannelError {
        ChannelError::resource_locked(format!(
            "cannot obtain exclusive access to locked queue '{}' in vhost '{}'. \
                 It could be originally declared on another connection or the exclusive \
                 property value does not match that of the original declaration.",
            self.info.name, self.info.vhost
        ))
    }
}

/// Names a consumer across the broker: deliveries carry it instead of the tag.
pub(crate) type ConsumerId = u64;

static NEXT_CONSUMER: AtomicU64 = AtomicU64::new(1);

/// A consumer id not used before.
pub(crate) fn new_consumer_id() -> ConsumerId {
    NEXT_CONSUMER.fetch_add(1, Ordering::Relaxed)
}

/// A consumer as the queue keeps it.
pub(crate) struct ConsumerSpec {
    pub(crate) id: ConsumerId,
    pub(crate) tag: ShortStr,
    pub(crate) connection: ConnectionHandle,
    pub(crate) channel: u16,
    pub(crate) gate: Arc<ChannelGate>,
    pub(crate) no_ack: bool,
    pub(crate) exclusive: bool,
    /// Per-consumer prefetch (basic.qos global = false); 0 = no limit.
    pub(crate) prefetch: u16,
    /// `x-priority`: higher-priority consumers are served first.
    pub(crate) priority: i64,
}

/// What settling a delivery does with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    /// Done with it: remove.
    Ack,
    /// Put it back for redelivery.
    Requeue,
    /// Rejected without requeue: dead-letter (or drop when there is no
    /// dead-letter exchange).
    Discard,
}

/// A message taken by basic.get.
pub(crate) struct Got {
    pub(crate) entry: Entry,
    /// The message as delivered (with `x-delivery-count` when it came back before).
    pub(crate) message: Message,
    /// Ready messages left after this one.
    pub(crate) remaining: u32,
}

/// What monitoring sees of a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QueueStats {
    pub(crate) ready: u32,
    pub(crate) unacked: u32,
    pub(crate) consumers: u32,
    /// Messages through the queue since its task started.
    pub(crate) counters: Counters,
    /// When the oldest ready message was enqueued, in milliseconds since the Unix
    /// epoch (the broker's clock, not the producer's `timestamp`); None when no ready
    /// message has a known time.
    pub(crate) oldest_ready_at: Option<u64>,
}

/// Messages through a queue since its task started (a restart starts again from 0,
/// as RabbitMQ's counters do). Plain integers the queue task alone increments: no
/// atomics or locks on the hot path; monitoring reads a copy with `Command::Stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Enqueued (published, or dead-lettered here from another queue). Messages a
    /// length limit refused are not counted.
    pub(crate) published: u64,
    /// Delivered to consumers that acknowledge.
    pub(crate) delivered: u64,
    /// Delivered to no-ack consumers.
    pub(crate) delivered_no_ack: u64,
    /// Taken by basic.get with an ack to come.
    pub(crate) got: u64,
    /// Taken by basic.get with no-ack.
    pub(crate) got_no_ack: u64,
    /// Acknowledged by basic.ack (not counting no-ack deliveries).
    pub(crate) acked: u64,
    /// Deliveries and gets of a message that may have been delivered before.
    pub(crate) redelivered: u64,
    /// Sent to the queue's dead-letter exchange, by why they left.
    pub(crate) dead_lettered: DeadLettered,
}

impl Counters {
    /// Every delivery and get, acknowledged or not: RabbitMQ's `deliver_get`.
    pub(crate) fn deliver_get(&self) -> u64 {
        self.delivered + self.delivered_no_ack + self.got + self.got_no_ack
    }
}

/// Dead-lettered messages by reason (RabbitMQ's `x-death` reasons).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DeadLettered {
    pub(crate) rejected: u64,
    pub(crate) expired: u64,
    pub(crate) maxlen: u64,
    pub(crate) delivery_limit: u64,
}

/// A consumer as monitoring sees it (`Command::Consumers`).
#[derive(Debug, Clone)]
pub(crate) struct ConsumerInfo {
    pub(crate) tag: ShortStr,
    pub(crate) connection: ConnectionId,
    pub(crate) channel: u16,
    pub(crate) no_ack: bool,
    pub(crate) exclusive: bool,
    /// Per-consumer prefetch; 0 = no limit.
    pub(crate) prefetch: u16,
    /// `x-priority` (0 when not given).
    pub(crate) priority: i64,
    /// False for a waiting consumer of a single-active-consumer queue.
    pub(crate) active: bool,
    /// Its deliveries awaiting an ack.
    pub(crate) unacked: u32,
}

/// A ready message as `warren peek` shows it.
pub(crate) struct Peeked {
    pub(crate) message: Message,
    /// It went out to a consumer before and came back.
    pub(crate) redelivered: bool,
}

/// What a redrive did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Redriven {
    /// Messages sent back, by the queue they went to.
    pub(crate) moved: std::collections::BTreeMap<String, u32>,
    /// Messages left: never dead-lettered, or their queue is gone (or is this one).
    pub(crate) kept: u32,
    /// Messages looked at: fewer than asked once the queue has no more.
    pub(crate) examined: u32,
}

/// Messages for a queue from one sender, in the order they were published. A
/// connection sends what one read of its socket routed to the queue as one batch: one
/// mailbox send and one queue wake-up for many messages.
pub(crate) struct Publishes {
    /// Where confirms go: the publishing connection, when it wants any.
    pub(crate) confirm_to: Option<ConnectionHandle>,
    pub(crate) messages: Vec<Enqueue>,
}

/// One message of a [`Publishes`] batch.
pub(crate) struct Enqueue {
    pub(crate) message: Message,
    /// Its id in the message store; 0 when not stored (for this queue).
    pub(crate) stored: u64,
    /// The channel and sequence number to confirm, in confirm mode.
    pub(crate) confirm: Option<(u16, u64)>,
    /// The message's own TTL in milliseconds (its `expiration` property).
    pub(crate) expiration: Option<u64>,
}

impl Publishes {
    /// One message that wants no confirm (dead-lettering, redrive).
    pub(crate) fn one(message: Message, stored: u64) -> Publishes {
        Publishes {
            confirm_to: None,
            messages: vec![Enqueue {
                message,
                stored,
                confirm: None,
                expiration: None,
            }],
        }
    }
}

/// The messages a queue's mailbox carries.
pub(crate) enum Command {
    Publish(Publishes),
    Consume {
        consumer: ConsumerSpec,
        reply: oneshot::Sender<Result<(), ChannelError>>,
    },
    Cancel {
        connection: ConnectionId,
        channel: u16,
        tag: ShortStr,
        reply: oneshot::Sender<()>,
    },
    Settle {
        ids: Vec<u64>,
        how: Settle,
    },
    Get {
        connection: ConnectionId,
        channel: u16,
        no_ack: bool,
        reply: oneshot::Sender<Option<Got>>,
    },
    Purge {
        reply: oneshot::Sender<u32>,
    },
    Delete {
        if_unused: bool,
        if_empty: bool,
        reply: oneshot::Sender<Result<u32, ChannelError>>,
    },
    /// A declare that wants no reply: the queue counts as used (`x-expires`).
    Touch,
    /// Ready messages and consumers, for declare-ok (the queue counts as used, as
    /// any declare, passive too, renews RabbitMQ's `x-expires` lease).
    Counts {
        reply: oneshot::Sender<(u32, u32)>,
    },
    /// A channel closed: drop its consumers, requeue what it had not acked.
    ChannelClosed {
        connection: ConnectionId,
        channel: u16,
    },
    /// A channel's window or flow opened up: try delivering again.
    Resume,
    /// Stop now (the vhost removed the queue).
    Shutdown,
    /// Reply once everything before this is handled and recorded in the store.
    Flush {
        reply: oneshot::Sender<()>,
    },
    /// New settings in force: the vhost's policies changed.
    Apply {
        settings: Settings,
    },
    /// The consumers, for monitoring (not a use of the queue).
    Consumers {
        reply: oneshot::Sender<Vec<ConsumerInfo>>,
    },
    /// Depth and consumers, for monitoring: unlike `Counts`, not a use of the queue.
    Stats {
        reply: oneshot::Sender<QueueStats>,
    },
    /// The first ready messages, left in place and not marked redelivered (`warren
    /// peek`): not a use of the queue either.
    Peek {
        count: usize,
        /// The messages, and how many are ready in all.
        reply: oneshot::Sender<(Vec<Peeked>, u32)>,
    },
    /// Sends ready dead-lettered messages back to the queue each died in (`warren
    /// redrive`), a round at a time.
    Redrive {
        /// Ready messages at the front to pass over (kept by earlier rounds).
        skip: usize,
        /// Messages to look at in this round: a round holds up the queue for its length.
        max: usize,
        reply: oneshot::Sender<Redriven>,
    },
}

#[cfg(test)]
impl QueueInfo {
    /// A plain queue, for tests.
    pub(crate) fn named(name: &str) -> Self {
        QueueInfo {
            name: name.into(),
            vhost: "/".into(),
            durable: false,
            exclusive_owner: None,
            auto_delete: false,
            arguments: FieldTable::new(),
            settings: Settings::default(),
            store_id: None,
        }
    }
}

/// A handle whose queue task does not run, for tests of channel bookkeeping.
#[cfg(test)]
pub(crate) fn test_handle(info: Arc<QueueInfo>) -> QueueHandle {
    let (tx, _rx) = mpsc::channel(1);
    QueueHandle { info, tx }
}

/// Starts a queue's task, holding what it held before a restart.
pub(crate) fn spawn(
    info: QueueInfo,
    vhost: Weak<Vhost>,
    memory: Arc<Alarm>,
    durable: Arc<Durable>,
    restored: Restored,
    settings: Settings,
) -> QueueHandle {
    let (tx, rx) = mpsc::channel(MAILBOX);
    let handle = QueueHandle {
        info: Arc::new(info),
        tx,
    };
    let mut queue = actor::Queue::new(handle.clone(), vhost, memory, durable, settings);
    queue.restore(restored);
    tokio::spawn(queue.run(rx));
    handle
}

#[cfg(test)]
mod tests;
