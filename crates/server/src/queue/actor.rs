//! The queue task: owns ready messages, unacked deliveries and consumers.
//!
//! Invariants: a message is in exactly one of `ready` or `unacked` (or gone); a
//! consumer's `unacked` equals the number of `unacked` entries naming it; the queue
//! never awaits anything but its mailbox, delivery permits and its timer, so it cannot
//! deadlock with a connection or another queue (dead-letters to a full queue are
//! handed to a task that waits instead).
//!
//! What the queue's settings ask (TTLs, length limits, the delivery limit,
//! dead-lettering, `x-expires`) is applied here, at the points where messages come and
//! go: publish, return, expiry.

use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, Sleep};
use tracing::{debug, error, warn};
use warren_routing::Envelope;

use crate::alarm::Alarm;
use crate::channel::gate::ChannelGate;
use crate::connection::events::{Batch, ConnectionHandle, ConnectionId, Delivery, Event};
use crate::durable::{self, Durable};
use crate::error::ChannelError;
use crate::message::Message;
use crate::number_hash::{NumberMap, NumberSet};
use crate::queue::Settings;
use crate::queue::consumers::{Consumer, Consumers};
use crate::queue::dead_letter::{self, Reason, Target};
use crate::queue::expiry::Expiry;
use crate::queue::ready::{Entry, Ready};
use crate::queue::settings::Overflow;
use crate::queue::{
    Command, ConsumerSpec, Got, Peeked, Publishes, QueueHandle, QueueStats, Redriven, Restored,
    Settle,
};
use crate::queue::{ConsumerId, ConsumerInfo, Counters};
use crate::vhost::Vhost;

/// Commands handled per wake-up before delivering.
const BATCH: usize = 256;
/// Bytes of ready messages a durable queue keeps in memory; stored messages past them
/// are read back from the store when their turn comes.
const PAGE_WINDOW: u64 = 8 << 20;
/// Paged-out messages read back at once.
const PAGE_IN: usize = 1024;

/// A delivered message awaiting its ack.
struct Unacked {
    entry: Entry,
    connection: ConnectionId,
    channel: u16,
    /// The consumer it went to; None for basic.get.
    consumer: Option<ConsumerId>,
    /// Its TTL ran out while a consumer held it: it expires if it comes back.
    expired: bool,
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

pub(crate) struct Queue {
    handle: QueueHandle,
    /// In force now: the declare arguments' settings with the vhost's policies.
    settings: Settings,
    vhost: Weak<Vhost>,
    ready: Ready,
    next_id: u64,
    unacked: NumberMap<u64, Unacked>,
    consumers: Consumers,
    /// Connections out of delivery permits, and the waits for one.
    starved: NumberSet<ConnectionId>,
    waits: FuturesUnordered<BoxFuture<'static, (ConnectionId, Option<OwnedSemaphorePermit>)>>,
    /// Permits obtained but not used yet.
    permits: NumberMap<ConnectionId, OwnedSemaphorePermit>,
    /// Events for connections, sent as one batch per connection per wake-up: one
    /// wake of the connection task for many deliveries and confirms.
    outbox: Vec<(ConnectionHandle, Batch)>,
    /// Message deadlines (TTLs).
    expiry: Expiry,
    /// Last consume, get, declare or consumer leaving, for `x-expires`.
    last_used: Instant,
    /// Wakes the queue for the next deadline (a message's, or its own `x-expires`).
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    /// The dead-letter exchange was missing: warned once.
    warned_missing_dlx: bool,
    /// Where the queue reports the memory it holds.
    memory: Arc<Alarm>,
    /// Memory held by unacked messages.
    unacked_held: u64,
    /// What was last reported to `memory`.
    reported: u64,
    durable: Arc<Durable>,
    /// Stored messages that left the queue, and ones given back, since the store last
    /// heard: recorded once per wake-up.
    store_removes: Vec<u64>,
    store_returns: Vec<u64>,
    /// Messages through the queue, for monitoring.
    counters: Counters,
    /// The wall clock in ms since the Unix epoch, read once per mailbox batch: the
    /// enqueue time of the messages published in it.
    now_ms: u64,
}

impl Queue {
    pub(crate) fn new(
        handle: QueueHandle,
        vhost: Weak<Vhost>,
        memory: Arc<Alarm>,
        durable: Arc<Durable>,
        settings: Settings,
    ) -> Self {
        let ready = Ready::with_max_priority(settings.max_priority.unwrap_or(0));
        let consumers = Consumers::new(settings.single_active_consumer);
        Queue {
            handle,
            settings,
            vhost,
            ready,
            next_id: 1,
            unacked: NumberMap::default(),
            consumers,
            starved: NumberSet::default(),
            waits: FuturesUnordered::new(),
            permits: NumberMap::default(),
            outbox: Vec::new(),
            expiry: Expiry::default(),
            last_used: Instant::now(),
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            timer_at: None,
            warned_missing_dlx: false,
            memory,
            unacked_held: 0,
            reported: 0,
            durable,
            store_removes: Vec::new(),
            store_returns: Vec::new(),
            counters: Counters::default(),
            now_ms: durable::now_ms(),
        }
    }

    /// New settings in force (the policies changed). The priority levels and single
    /// active consumer are fixed when the queue is created, so those stay. A lowered
    /// length limit drops the oldest messages at once under `drop-head` (dead-lettering
    /// them if there is where to); under `reject-publish` it refuses new ones until the
    /// queue is short enough. A new message TTL applies to messages published from now on.
    fn apply(&mut self, mut settings: Settings) {
        settings.max_priority = self.settings.max_priority;
        settings.single_active_consumer = self.settings.single_active_consumer;
        // A byte limit needs every ready message's size: bring paged-out ones back.
        let page_in = settings.max_length_bytes.is_some() && self.pages();
        self.settings = settings;
        if page_in {
            self.page_in_all();
        }
        if self.settings.overflow == Overflow::DropHead {
            while self.is_over_limit() {
                let Some(oldest) = self.ready.pop() else {
                    break;
                };
                self.drop_entry(oldest, Reason::Maxlen);
            }
        }
    }

    /// Reads every paged-out message back into memory.
    fn page_in_all(&mut self) {
        loop {
            let ids = self.ready.paged_front(PAGE_IN);
            if ids.is_empty() {
                return;
            }
            match self.durable.store.read(&ids) {
                Ok(payloads) => self
                    .ready
                    .fill_front(payloads.into_iter().map(Message::from_stored)),
                Err(e) => {
                    error!(queue = self.name(), error = %e,
                        "cannot read stored messages back; they stay on disk");
                    return;
                }
            }
        }
    }

    /// Whether this queue keeps only a window of its stored messages in memory: a
    /// durable queue, unless it needs every message's size or priority at hand.
    fn pages(&self) -> bool {
        self.handle.info.store_id.is_some()
            && self.settings.max_length_bytes.is_none()
            && self.settings.max_priority.is_none()
    }

    /// Takes back the messages the queue held before a restart, in order. Their bytes
    /// stay on disk until their turn comes (a queue that cannot page reads them now).
    /// After a crash any of them may have been out with a consumer: they go out as
    /// redelivered.
    pub(crate) fn restore(&mut self, restored: Restored) {
        let now = durable::now_ms();
        let queue_ttl = self.settings.message_ttl;
        let pages = self.pages();
        self.ready.reserve(restored.messages.len());
        for chunk in restored.messages.chunks(PAGE_IN) {
            let mut loaded = if pages {
                Vec::new()
            } else {
                let ids: Vec<u64> = chunk.iter().map(|m| m.id).collect();
                match self.durable.store.read(&ids) {
                    Ok(payloads) => payloads,
                    Err(e) => {
                        error!(queue = self.name(), error = %e,
                            "cannot read stored messages; they stay on disk");
                        continue;
                    }
                }
            }
            .into_iter();
            for stored in chunk {
                let id = self.next_id;
                self.next_id += 1;
                if let Some(ttl) = min_ttl(queue_ttl, stored.expiration()) {
                    let left = stored.timestamp.saturating_add(ttl).saturating_sub(now);
                    let deadline = self.expiry.now_ms().saturating_add(left);
                    self.expiry.schedule(id, deadline);
                }
                let entry = match loaded.next() {
                    Some(payload) => Entry::new(id, Message::from_stored(payload)),
                    None => Entry::paged(id, stored.id),
                };
                // Its first enqueue time: the store's publish timestamp.
                let entry = entry
                    .stored_as(stored.id)
                    .enqueued_at(stored.timestamp)
                    .recovered(stored.returns, !restored.clean);
                self.ready.push(entry);
            }
        }
    }

    /// The next ready message, read back from the store if it was paged out (with the
    /// paged-out messages right after it, in one read). None when the queue is empty,
    /// or when the read failed: the message then stays on disk, not in this queue,
    /// until the broker restarts.
    fn pop(&mut self) -> Option<Entry> {
        let entry = self.ready.pop()?;
        if !entry.is_paged() {
            return Some(entry);
        }
        let mut ids = vec![entry.stored];
        ids.extend(self.ready.paged_front(PAGE_IN - 1));
        self.read_back(entry, &ids)
    }

    /// Reads a paged-out entry (taken out of `ready`) back, and the front entries
    /// named after it in `ids`.
    fn read_back(&mut self, mut entry: Entry, ids: &[u64]) -> Option<Entry> {
        match self.durable.store.read(ids) {
            Ok(payloads) => {
                let mut messages = payloads.into_iter().map(Message::from_stored);
                entry.fill(messages.next()?);
                self.ready.fill_front(messages);
                Some(entry)
            }
            Err(e) => {
                error!(queue = self.name(), error = %e,
                    "cannot read a stored message; it stays on disk until a restart");
                None
            }
        }
    }

    /// An entry taken out of the middle, with its message read back if it was paged out.
    fn loaded(&mut self, entry: Entry) -> Option<Entry> {
        if entry.is_paged() {
            let ids = [entry.stored];
            self.read_back(entry, &ids)
        } else {
            Some(entry)
        }
    }

    /// A ready message leaves undelivered: dead-lettered (read back first if it was
    /// paged out) when the queue has a dead-letter exchange, and forgotten.
    fn drop_entry(&mut self, entry: Entry, reason: Reason) {
        self.forget(&entry);
        if self.settings.dead_letter_exchange.is_some()
            && let Some(entry) = self.loaded(entry)
        {
            self.dead_letter(&entry.message, reason);
        }
    }

    /// The message left the queue for good: the store forgets it.
    fn forget(&mut self, entry: &Entry) {
        if entry.stored != 0 {
            self.store_removes.push(entry.stored);
        }
    }

    /// Tells the store what left and what came back in this wake-up.
    fn flush_store(&mut self) {
        if let Some(queue) = self.handle.info.store_id {
            let store = &self.durable.store;
            store.returned(queue, &self.store_returns);
            store.remove(queue, &self.store_removes);
        }
        self.store_returns.clear();
        self.store_removes.clear();
    }

    fn name(&self) -> &str {
        &self.handle.info.name
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        self.arm_timer();
        'outer: loop {
            tokio::select! {
                command = rx.recv() => {
                    let Some(command) = command else { break };
                    // One clock read per batch, not per message.
                    self.now_ms = durable::now_ms();
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
                () = &mut self.timer, if self.timer_at.is_some() => {
                    self.timer_at = None;
                }
            }
            // A message whose TTL is 0 may still go to a consumer that can take it
            // now: expire strictly before delivering, and what is left after.
            self.expire_due(false);
            self.deliver();
            self.expire_due(true);
            if self.idle_expired() {
                debug!(queue = self.name(), "queue unused past its x-expires");
                self.remove_from_vhost();
                break;
            }
            self.arm_timer();
            if self.pages() {
                self.ready
                    .page_out(PAGE_WINDOW, self.durable.store.written());
            }
            self.report_memory();
            self.flush_store();
            self.flush_outbox();
        }
        self.memory.add(-(self.reported as i64));
        self.reported = 0;
        self.flush_store();
        self.flush_outbox();
        self.finish(rx).await;
    }

    fn handle(&mut self, command: Command) -> Flow {
        match command {
            Command::Publish(batch) => {
                for m in batch.messages {
                    let confirm = m.confirm.zip(batch.confirm_to.as_ref());
                    self.publish(m.message, m.stored, confirm, m.expiration);
                }
            }
            Command::Consume { consumer, reply } => {
                self.last_used = Instant::now();
                let _ = reply.send(self.consume(consumer));
            }
            Command::Cancel {
                connection,
                channel,
                tag,
                reply,
            } => {
                for gone in self.consumers.remove(connection, channel, &tag) {
                    let (channel, consumer) = (gone.spec.channel, gone.spec.id);
                    self.post(
                        &gone.spec.connection,
                        Event::ConsumerGone { channel, consumer },
                    );
                }
                self.last_used = Instant::now();
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
                self.last_used = Instant::now();
                let got = self.pop().map(|entry| {
                    self.counters.redelivered += u64::from(entry.redelivered());
                    if no_ack {
                        self.counters.got_no_ack += 1;
                        self.forget(&entry);
                    } else {
                        self.counters.got += 1;
                        self.hold_unacked(Unacked {
                            entry: entry.clone(),
                            connection,
                            channel,
                            consumer: None,
                            expired: false,
                        });
                    }
                    Got {
                        message: self.as_delivered(&entry),
                        entry,
                        remaining: count(self.ready.len()),
                    }
                });
                let _ = reply.send(got);
            }
            Command::Purge { reply } => {
                let removes = &mut self.store_removes;
                let _ = reply.send(count(self.ready.clear(|id| removes.push(id))));
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
            Command::Touch => self.last_used = Instant::now(),
            Command::Counts { reply } => {
                self.last_used = Instant::now();
                let _ = reply.send((count(self.ready.len()), count(self.consumers.len())));
            }
            Command::Peek { count, reply } => {
                let _ = reply.send((self.peek(count), self::count(self.ready.len())));
            }
            Command::Redrive { skip, max, reply } => {
                let _ = reply.send(self.redrive(skip, max));
            }
            Command::Apply { settings } => self.apply(settings),
            Command::Consumers { reply } => {
                let _ = reply.send(self.describe_consumers());
            }
            Command::Stats { reply } => {
                let _ = reply.send(QueueStats {
                    ready: count(self.ready.len()),
                    unacked: count(self.unacked.len()),
                    consumers: count(self.consumers.len()),
                    counters: self.counters,
                    oldest_ready_at: self.ready.oldest_enqueued(),
                });
            }
            Command::ChannelClosed {
                connection,
                channel,
            } => {
                let had = !self.consumers.is_empty();
                self.consumers.remove_channel(connection, channel);
                self.requeue_where(|u| u.connection == connection && u.channel == channel);
                if had {
                    self.last_used = Instant::now();
                    return self.auto_delete_check();
                }
            }
            Command::Resume => {}
            Command::Shutdown => return Flow::Stop,
            Command::Flush { reply } => {
                self.flush_store();
                let _ = reply.send(());
            }
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
            let Some(u) = self.take_unacked(id) else {
                continue;
            };
            if let Some(c) = u.consumer.and_then(|id| self.consumers.find_mut(id)) {
                c.unacked = c.unacked.saturating_sub(1);
            }
            match how {
                Settle::Ack => {
                    self.counters.acked += 1;
                    self.forget(&u.entry);
                }
                Settle::Requeue => self.give_back(u),
                Settle::Discard => {
                    self.dead_letter(&u.entry.message, Reason::Rejected);
                    self.forget(&u.entry);
                }
            }
        }
    }

    fn requeue_where(&mut self, pred: impl Fn(&Unacked) -> bool) {
        let mut ids: Vec<u64> = self
            .unacked
            .iter()
            .filter(|(_, u)| pred(u))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(u) = self.take_unacked(id) {
                self.give_back(u);
            }
        }
    }

    fn hold_unacked(&mut self, u: Unacked) {
        self.unacked_held += u.entry.held();
        self.unacked.insert(u.entry.id(), u);
    }

    fn take_unacked(&mut self, id: u64) -> Option<Unacked> {
        let u = self.unacked.remove(&id)?;
        self.unacked_held -= u.entry.held();
        Some(u)
    }

    /// Tells the memory alarm how much this queue holds now.
    fn report_memory(&mut self) {
        let held = self.ready.held() + self.unacked_held;
        if held != self.reported {
            self.memory.add(held as i64 - self.reported as i64);
            self.reported = held;
        }
    }

    /// A delivered message came back undone: ready again, unless it expired meanwhile
    /// or has come back more often than the delivery limit allows.
    fn give_back(&mut self, u: Unacked) {
        let limit = self.settings.delivery_limit;
        if u.expired {
            self.dead_letter(&u.entry.message, Reason::Expired);
            self.forget(&u.entry);
        } else if limit.is_some_and(|limit| u.entry.returns() + 1 > limit) {
            self.dead_letter(&u.entry.message, Reason::DeliveryLimit);
            self.forget(&u.entry);
        } else {
            if u.entry.stored != 0 {
                self.store_returns.push(u.entry.stored);
            }
            self.ready.requeue(u.entry);
        }
    }

    fn publish(
        &mut self,
        message: Message,
        stored: u64,
        confirm: Option<((u16, u64), &ConnectionHandle)>,
        expiration: Option<u64>,
    ) {
        let settings = &self.settings;
        let overflow = settings.overflow;
        if overflow != Overflow::DropHead && self.is_full() {
            if let Some(c) = confirm {
                self.confirm(c, false);
            }
            if stored != 0 {
                self.store_removes.push(stored);
            }
            if overflow == Overflow::RejectPublishDlx {
                self.dead_letter(&message, Reason::Maxlen);
            }
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        if let Some(ttl) = min_ttl(settings.message_ttl, expiration) {
            let deadline = self.expiry.now_ms().saturating_add(ttl);
            self.expiry.schedule(id, deadline);
        }
        self.ready.push(
            Entry::new(id, message)
                .stored_as(stored)
                .enqueued_at(self.now_ms),
        );
        self.counters.published += 1;
        if let Some(c) = confirm {
            self.confirm(c, true);
        }
        while self.is_over_limit() {
            let Some(oldest) = self.ready.pop() else {
                break;
            };
            self.drop_entry(oldest, Reason::Maxlen);
        }
    }

    fn confirm(&mut self, ((channel, seq), to): ((u16, u64), &ConnectionHandle), ack: bool) {
        self.post(to, Event::Confirm { channel, seq, ack });
    }

    /// At a length limit: one more message would exceed it.
    fn is_full(&self) -> bool {
        let s = &self.settings;
        s.max_length
            .is_some_and(|max| self.ready.len() as u64 >= max)
            || s.max_length_bytes
                .is_some_and(|max| self.ready.bytes() >= max)
    }

    /// Past a length limit.
    fn is_over_limit(&self) -> bool {
        let s = &self.settings;
        s.max_length
            .is_some_and(|max| self.ready.len() as u64 > max)
            || s.max_length_bytes
                .is_some_and(|max| self.ready.bytes() > max)
    }

    /// Expires the messages whose deadline has passed: ready ones go (dead-lettered
    /// when there is a dead-letter exchange); one a consumer holds expires if it comes
    /// back.
    fn expire_due(&mut self, inclusive: bool) {
        if self.expiry.is_empty() {
            return;
        }
        let now = self.expiry.now_ms();
        while let Some(id) = self.expiry.pop_due(now, inclusive) {
            if let Some(entry) = self.ready.remove(id) {
                self.drop_entry(entry, Reason::Expired);
            } else if let Some(u) = self.unacked.get_mut(&id) {
                u.expired = true;
            }
        }
        let (ready, unacked) = (&self.ready, &self.unacked);
        self.expiry.compact(ready.len() + unacked.len(), |id| {
            unacked.contains_key(&id) || ready.holds(id)
        });
    }

    /// Unused for longer than `x-expires`.
    fn idle_expired(&self) -> bool {
        self.settings.expires.is_some_and(|ms| {
            self.consumers.is_empty() && self.last_used.elapsed().as_millis() >= u128::from(ms)
        })
    }

    /// Sets the timer for the earliest deadline.
    fn arm_timer(&mut self) {
        let idle = self
            .settings
            .expires
            .filter(|_| self.consumers.is_empty())
            .map(|ms| self.last_used + tokio::time::Duration::from_millis(ms));
        let next = match (self.expiry.next_deadline(), idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if next != self.timer_at {
            if let Some(at) = next {
                self.timer.as_mut().reset(at);
            }
            self.timer_at = next;
        }
    }

    /// Sends a message that leaves this queue undone to the dead-letter exchange, if
    /// the queue has one; otherwise it is dropped.
    fn dead_letter(&mut self, message: &Message, reason: Reason) {
        let settings = &self.settings;
        let Some(exchange) = settings.dead_letter_exchange.clone() else {
            return;
        };
        let counted = &mut self.counters.dead_lettered;
        *match reason {
            Reason::Rejected => &mut counted.rejected,
            Reason::Expired => &mut counted.expired,
            Reason::Maxlen => &mut counted.maxlen,
            Reason::DeliveryLimit => &mut counted.delivery_limit,
        } += 1;
        let Some(vhost) = self.vhost.upgrade() else {
            return;
        };
        let target = Target {
            exchange: &exchange,
            routing_key: settings.dead_letter_routing_key.as_deref(),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let dead = match dead_letter::dead_letter(message, self.name(), reason, &target, now) {
            Ok(dead) => dead,
            Err(e) => {
                warn!(queue = self.name(), error = %e, "cannot dead-letter a message; dropped");
                return;
            }
        };
        // Routed by its (new) routing key and headers: CC keys, and a headers-type
        // dead-letter exchange, see the rewritten message as RabbitMQ routes it.
        let properties = dead.message.decoded_properties().unwrap_or_default();
        let routing_key = dead.message.routing_key();
        let Ok(envelope) = Envelope::new(&routing_key, properties.headers.as_ref()) else {
            return;
        };
        let snapshot = vhost.snapshot();
        let queues: Vec<QueueHandle> = match vhost.route(&snapshot, &exchange, &envelope) {
            Ok(found) => found
                .into_iter()
                .filter(|q| !dead.cycles_through(&q.info.name))
                .cloned()
                .collect(),
            Err(_) => {
                if !self.warned_missing_dlx {
                    self.warned_missing_dlx = true;
                    warn!(
                        queue = self.name(),
                        dead_letter_exchange = &*exchange,
                        "dead-letter exchange does not exist; dead-lettered messages are dropped"
                    );
                }
                return;
            }
        };
        let stored = self.durable.persist(&dead.message, None, &queues);
        for queue in queues {
            let stored = queue.stored_here(stored);
            let command = Command::Publish(Publishes::one(dead.message.clone(), stored));
            // Never wait on another queue's mailbox (two queues dead-lettering into
            // each other could wait forever): a full one gets a task that waits.
            if let Err(Some(command)) = queue.try_send(command) {
                tokio::spawn(async move { queue.send(command).await });
            }
        }
    }

    /// The first `count` ready messages, unchanged; paged-out ones are read from the
    /// store (and left there).
    fn peek(&self, count: usize) -> Vec<Peeked> {
        let front = self.ready.front(count);
        let paged: Vec<u64> = front
            .iter()
            .filter(|e| e.is_paged())
            .map(|e| e.stored)
            .collect();
        let mut read = match self.durable.store.read(&paged) {
            Ok(payloads) => payloads.into_iter().map(Message::from_stored).collect(),
            Err(e) => {
                error!(queue = self.name(), error = %e, "cannot read stored messages to peek");
                Vec::new()
            }
        }
        .into_iter();
        front
            .into_iter()
            .map_while(|e| {
                let message = if e.is_paged() {
                    read.next()?
                } else {
                    self.as_delivered(e)
                };
                Some(Peeked {
                    message,
                    redelivered: e.redelivered(),
                })
            })
            .collect()
    }

    /// Looks at up to `max` ready messages after the first `skip` and sends each
    /// dead-lettered one back to the queue it last died in, unchanged (its `x-death`
    /// history stays). Messages that never died, or whose queue is gone or is this
    /// one, stay where they were. A round reads at most `max` paged-out messages back,
    /// one at a time, so a large dead-letter queue never comes into memory at once.
    fn redrive(&mut self, skip: usize, max: usize) -> Redriven {
        let mut done = Redriven::default();
        let Some(vhost) = self.vhost.upgrade() else {
            return done;
        };
        let snapshot = vhost.snapshot();
        let ids: Vec<u64> = self
            .ready
            .front(skip.saturating_add(max))
            .iter()
            .skip(skip)
            .map(|e| e.id())
            .collect();
        done.examined = count(ids.len());
        for id in ids {
            // Read back if paged out; a failed read leaves it on disk until a restart.
            let Some(entry) = self.ready.remove(id).and_then(|e| self.loaded(e)) else {
                continue;
            };
            let target = dead_letter::origin(&entry.message)
                .and_then(|name| snapshot.queues.get(name.as_str()).cloned())
                .filter(|q| !q.same(&self.handle));
            let Some(target) = target else {
                done.kept += 1;
                self.ready.restore(entry);
                continue;
            };
            let stored = self
                .durable
                .persist(&entry.message, None, std::slice::from_ref(&target));
            self.forget(&entry);
            *done.moved.entry(target.info.name.to_string()).or_default() += 1;
            let command = Command::Publish(Publishes::one(entry.message, stored));
            // As dead-lettering: never wait on another queue's mailbox.
            if let Err(Some(command)) = target.try_send(command) {
                tokio::spawn(async move { target.send(command).await });
            }
        }
        done
    }

    /// The message as a consumer gets it: with `x-delivery-count` once it has come
    /// back, as RabbitMQ's quorum queues deliver it.
    fn as_delivered(&self, entry: &Entry) -> Message {
        match entry.returns() {
            0 => entry.message.clone(),
            returns => dead_letter::with_delivery_count(&entry.message, returns)
                .unwrap_or_else(|_| entry.message.clone()),
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
            let Some(entry) = self.pop() else {
                break;
            };
            let Some(consumer) = self.consumers.get_mut(index) else {
                break;
            };
            let spec = &consumer.spec;
            let (connection, channel, id, no_ack) =
                (spec.connection.id, spec.channel, spec.id, spec.no_ack);
            if !no_ack {
                consumer.unacked += 1;
            }
            self.counters.redelivered += u64::from(entry.redelivered());
            let (message_id, redelivered) = (entry.id(), entry.redelivered());
            let message = if no_ack {
                self.counters.delivered_no_ack += 1;
                self.forget(&entry);
                // Nothing keeps the entry: its message goes as it is, uncloned.
                match entry.returns() {
                    0 => entry.message,
                    _ => self.as_delivered(&entry),
                }
            } else {
                self.counters.delivered += 1;
                let message = self.as_delivered(&entry);
                self.hold_unacked(Unacked {
                    entry,
                    connection,
                    channel,
                    consumer: Some(id),
                    expired: false,
                });
                message
            };
            let delivery = Delivery {
                channel,
                consumer: id,
                message_id,
                redelivered,
                message,
                no_ack,
            };
            if let Some(consumer) = self.consumers.get_mut(index) {
                post_into(
                    &mut self.outbox,
                    &consumer.spec.connection,
                    Event::Deliver(delivery),
                    Some(permit),
                );
            }
        }
    }

    /// The consumers as monitoring lists them.
    fn describe_consumers(&self) -> Vec<ConsumerInfo> {
        self.consumers
            .iter_active()
            .map(|(c, active)| ConsumerInfo {
                tag: c.spec.tag.clone(),
                connection: c.spec.connection.id,
                channel: c.spec.channel,
                no_ack: c.spec.no_ack,
                exclusive: c.spec.exclusive,
                prefetch: c.spec.prefetch,
                priority: c.spec.priority,
                active,
                unacked: c.unacked,
            })
            .collect()
    }

    /// Queues an event for a connection until the end of this wake-up.
    fn post(&mut self, connection: &ConnectionHandle, event: Event) {
        post_into(&mut self.outbox, connection, event, None);
    }

    fn flush_outbox(&mut self) {
        for (connection, batch) in std::mem::take(&mut self.outbox) {
            if !connection.send_batch(batch) {
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
                consumer: consumer.spec.id,
            });
        }
        rx.close();
        while let Some(command) = rx.recv().await {
            match command {
                Command::Publish(Publishes {
                    confirm_to: Some(to),
                    messages,
                }) => {
                    let confirms = messages.iter().filter_map(|m| m.confirm);
                    let events: Vec<Event> = confirms
                        .map(|(channel, seq)| Event::Confirm {
                            channel,
                            seq,
                            ack: true,
                        })
                        .collect();
                    to.send_all(events);
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
                Command::Flush { reply } => {
                    let _ = reply.send(());
                }
                // Other replies drop their sender: the asker sees the queue has gone.
                _ => {}
            }
        }
        debug!(queue = self.name(), "queue stopped");
    }
}

/// Whether a channel's gate admits one more delivery of this kind.
/// Queues an event and the delivery permit it holds in a wake-up's outbox. (A free
/// function so a caller can pass a consumer's connection while it borrows the queue.)
fn post_into(
    outbox: &mut Vec<(ConnectionHandle, Batch)>,
    connection: &ConnectionHandle,
    event: Event,
    permit: Option<OwnedSemaphorePermit>,
) {
    match outbox.iter_mut().find(|(c, _)| c.id == connection.id) {
        Some((_, batch)) => batch.push(event, permit),
        None => {
            // Room for a few deliveries up front: growing from empty reallocates
            // (and copies) the events of a busy wake-up several times.
            let mut batch = Batch {
                events: Vec::with_capacity(16),
                credit: None,
            };
            batch.push(event, permit);
            outbox.push((connection.clone(), batch));
        }
    }
}

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

/// The tighter of the queue's and the message's own TTL.
fn min_ttl(queue: Option<u64>, message: Option<u64>) -> Option<u64> {
    match (queue, message) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
