//! Ready messages in delivery order. New messages go to the back; a requeued message
//! goes back to its original position (by its id), so a rejected message is retried
//! before anything published after it, as in RabbitMQ. A message can also be taken out
//! of the middle (it expired): it leaves a tombstone that keeps the order searchable
//! and frees the message at once. A priority queue keeps one such order per priority.

use std::collections::{BTreeMap, VecDeque};

use crate::message::Message;

/// A message in a queue, with the queue's delivery state for it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Queue-local id (increasing in publish order) in the low 46 bits, a "paged out"
    /// flag (the message is only in the store), a "maybe delivered" flag, how often the
    /// message came back from a consumer in the next 15, a tombstone flag on top: one
    /// word of state per queue slot.
    bits: u64,
    /// Its id in the message store; 0 when not stored.
    pub(crate) stored: u64,
    /// When the broker enqueued it, in milliseconds since the Unix epoch (0: unknown).
    /// Kept through paging out and requeues, so the age of the oldest ready message
    /// needs no producer timestamp. Costs the slot 8 bytes (56 before).
    enqueued: u64,
    pub(crate) message: Message,
}

const ID: u64 = (1 << 46) - 1;
const PAGED: u64 = 1 << 46;
const MAYBE_DELIVERED: u64 = 1 << 47;
const RETURNS_SHIFT: u32 = 48;
const MAX_RETURNS: u64 = (1 << 15) - 1;
const TOMBSTONE: u64 = 1 << 63;

impl Entry {
    pub(crate) fn new(id: u64, message: Message) -> Self {
        Entry {
            bits: id & ID,
            stored: 0,
            enqueued: 0,
            message,
        }
    }

    /// The same entry, enqueued at `ms` milliseconds since the Unix epoch.
    pub(crate) fn enqueued_at(mut self, ms: u64) -> Self {
        self.enqueued = ms;
        self
    }

    /// When the broker enqueued the message (ms since the Unix epoch; 0 if unknown).
    pub(crate) fn enqueued(&self) -> u64 {
        self.enqueued
    }

    /// The same entry, kept in the message store under `stored`.
    pub(crate) fn stored_as(mut self, stored: u64) -> Self {
        self.stored = stored;
        self
    }

    /// The same entry recovered with `returns` earlier returns, and possibly out with
    /// a consumer when the broker stopped (so it is delivered as redelivered).
    pub(crate) fn recovered(mut self, returns: u32, maybe_delivered: bool) -> Self {
        let returns = u64::from(returns).min(MAX_RETURNS);
        self.bits |= returns << RETURNS_SHIFT;
        if maybe_delivered {
            self.bits |= MAYBE_DELIVERED;
        }
        self
    }

    /// An entry for stored message `stored` whose bytes stay on disk until wanted.
    pub(crate) fn paged(id: u64, stored: u64) -> Self {
        Entry {
            bits: (id & ID) | PAGED,
            stored,
            enqueued: 0,
            message: Message::empty(),
        }
    }

    /// Whether the message's bytes are only in the store.
    pub(crate) fn is_paged(&self) -> bool {
        self.bits & PAGED != 0
    }

    /// Gives a paged entry its message back.
    pub(crate) fn fill(&mut self, message: Message) {
        self.message = message;
        self.bits &= !PAGED;
    }

    /// Drops the message's bytes, which the store keeps.
    fn page_out(&mut self) {
        self.message = Message::empty();
        self.bits |= PAGED;
    }

    /// Queue-local id, increasing in publish order.
    pub(crate) fn id(&self) -> u64 {
        self.bits & ID
    }

    /// How many times the message came back undone (nack or reject with requeue, or its
    /// consumer's channel closing); saturates at 32,767.
    pub(crate) fn returns(&self) -> u64 {
        (self.bits >> RETURNS_SHIFT) & MAX_RETURNS
    }

    /// Whether the message may have been delivered before.
    pub(crate) fn redelivered(&self) -> bool {
        self.returns() > 0 || self.bits & MAYBE_DELIVERED != 0
    }

    fn count_return(&mut self) {
        let returns = (self.returns() + 1).min(MAX_RETURNS);
        self.bits = (self.bits & !(MAX_RETURNS << RETURNS_SHIFT)) | (returns << RETURNS_SHIFT);
    }

    fn is_tombstone(&self) -> bool {
        self.bits & TOMBSTONE != 0
    }

    fn body_len(&self) -> u64 {
        self.message.body().len() as u64
    }

    /// Memory this entry holds: its buffers and its slot.
    pub(crate) fn held(&self) -> u64 {
        (self.message.size() + std::mem::size_of::<Entry>()) as u64
    }
}

/// Messages waiting for a consumer, by priority level (one level unless the queue
/// was declared with `x-max-priority`): the highest level that has a message goes
/// first, and within a level, publish order.
#[derive(Debug)]
pub(crate) struct Ready {
    /// Index = priority; a message's priority above the top level counts as the top.
    levels: Vec<Level>,
    /// Messages, not counting tombstones.
    live: usize,
    /// Body bytes of those messages.
    bytes: u64,
    /// Memory they hold: buffers plus queue slots.
    held: u64,
}

/// What a queue slot costs besides its message.
const SLOT: u64 = std::mem::size_of::<Entry>() as u64;
/// The size of the placeholder message of a paged-out entry.
const EMPTY: u64 = 6;

#[derive(Debug, Default)]
struct Level {
    /// Never delivered, in id order; may hold tombstones.
    fresh: VecDeque<Entry>,
    /// Returned by consumers; merged with `fresh` by id on the way out.
    requeued: BTreeMap<u64, Entry>,
}

impl Default for Ready {
    fn default() -> Self {
        Ready::with_max_priority(0)
    }
}

impl Ready {
    /// A queue whose messages have priorities 0 to `max`.
    pub(crate) fn with_max_priority(max: u8) -> Self {
        Ready {
            levels: (0..=max).map(|_| Level::default()).collect(),
            live: 0,
            bytes: 0,
            held: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Body bytes of the ready messages.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    fn level_of(&mut self, entry: &Entry) -> &mut Level {
        let top = self.levels.len() - 1;
        let at = if top == 0 {
            0
        } else {
            usize::from(entry.message.priority()).min(top)
        };
        &mut self.levels[at]
    }

    /// Memory the ready messages hold (buffers and slots).
    pub(crate) fn held(&self) -> u64 {
        self.held
    }

    /// Drops the bytes of stored messages (those below `written`, already in the
    /// store's files) from the back of the queue until the messages in memory hold at
    /// most `window` bytes. The front stays in memory for the consumers; what was
    /// paged out comes back through [`Ready::paged_front`] and [`Ready::fill_front`].
    /// Single-level queues only: a priority queue needs each message's priority.
    pub(crate) fn page_out(&mut self, window: u64, written: u64) {
        let Ready {
            levels,
            live,
            bytes,
            held,
        } = self;
        let [level] = levels.as_mut_slice() else {
            return;
        };
        let slots = *live as u64 * SLOT;
        let mut unpageable = 0;
        for entry in level.fresh.iter_mut().rev() {
            if held.saturating_sub(slots) <= window {
                break;
            }
            if entry.is_tombstone() {
                continue;
            }
            if entry.is_paged() {
                break;
            }
            if entry.stored == 0 || entry.stored >= written {
                // Transient, or not in the files yet: stays; give up past a few.
                unpageable += 1;
                if unpageable > 4096 {
                    break;
                }
                continue;
            }
            *bytes -= entry.body_len();
            *held -= entry.message.size() as u64 - EMPTY;
            entry.page_out();
        }
    }

    /// The store ids of the first paged-out messages, up to `max`, in delivery order:
    /// what to read before they are delivered. (Paging out stops at the messages
    /// already paged out, so they form one run.)
    pub(crate) fn paged_front(&self, max: usize) -> Vec<u64> {
        let [level] = self.levels.as_slice() else {
            return Vec::new();
        };
        level
            .fresh
            .iter()
            .filter(|e| !e.is_tombstone())
            .skip_while(|e| !e.is_paged())
            .take_while(|e| e.is_paged())
            .take(max)
            .map(|e| e.stored)
            .collect()
    }

    /// Gives the messages [`Ready::paged_front`] named their bytes back, in order.
    pub(crate) fn fill_front(&mut self, messages: impl IntoIterator<Item = Message>) {
        let Ready {
            levels,
            bytes,
            held,
            ..
        } = self;
        let [level] = levels.as_mut_slice() else {
            return;
        };
        let mut messages = messages.into_iter();
        let run = level
            .fresh
            .iter_mut()
            .filter(|e| !e.is_tombstone())
            .skip_while(|e| !e.is_paged());
        for entry in run {
            if !entry.is_paged() {
                break;
            }
            let Some(message) = messages.next() else {
                break;
            };
            *held += message.size() as u64 - EMPTY;
            entry.fill(message);
            *bytes += entry.body_len();
        }
    }

    /// Makes room for `n` more messages at once (a queue coming back from the store).
    pub(crate) fn reserve(&mut self, n: usize) {
        if let [level] = self.levels.as_mut_slice() {
            level.fresh.reserve(n);
        }
    }

    pub(crate) fn push(&mut self, entry: Entry) {
        self.live += 1;
        self.bytes += entry.body_len();
        self.held += entry.held();
        self.level_of(&entry).fresh.push_back(entry);
    }

    /// Puts back a delivered message, counting the return.
    pub(crate) fn requeue(&mut self, mut entry: Entry) {
        entry.count_return();
        self.live += 1;
        self.bytes += entry.body_len();
        self.held += entry.held();
        self.level_of(&entry).requeued.insert(entry.id(), entry);
    }

    /// Puts back a message taken out with [`Ready::remove`], at its place (by id),
    /// without counting a return: it never went to a consumer.
    pub(crate) fn restore(&mut self, entry: Entry) {
        self.live += 1;
        self.bytes += entry.body_len();
        self.held += entry.held();
        self.level_of(&entry).requeued.insert(entry.id(), entry);
    }

    /// The next message: highest priority first, then in id order.
    pub(crate) fn pop(&mut self) -> Option<Entry> {
        if self.live == 0 {
            return None;
        }
        let entry = self.levels.iter_mut().rev().find_map(Level::pop)?;
        self.taken(&entry);
        Some(entry)
    }

    /// Takes out the message with `id`, wherever it is.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.levels.iter_mut().find_map(|l| l.remove(id))?;
        self.taken(&entry);
        Some(entry)
    }

    /// When the oldest ready message was enqueued (ms since the Unix epoch), looking at
    /// the front of each level: ids, and so enqueue times, increase along it, and a
    /// requeued message keeps its time. Messages of unknown time are skipped.
    pub(crate) fn oldest_enqueued(&self) -> Option<u64> {
        self.levels.iter().filter_map(Level::oldest_enqueued).min()
    }

    /// Whether the message with `id` is ready.
    pub(crate) fn holds(&self, id: u64) -> bool {
        self.levels.iter().any(|l| l.holds(id))
    }

    /// The first `n` messages in delivery order, left in place (`warren peek`).
    pub(crate) fn front(&self, n: usize) -> Vec<&Entry> {
        let mut out = Vec::with_capacity(n.min(self.live));
        for level in self.levels.iter().rev() {
            let mut fresh = level.fresh.iter().filter(|e| !e.is_tombstone()).peekable();
            let mut requeued = level.requeued.values().peekable();
            while out.len() < n {
                let next = match (fresh.peek(), requeued.peek()) {
                    (Some(f), Some(r)) if r.id() < f.id() => requeued.next(),
                    (Some(_), _) => fresh.next(),
                    (None, _) => requeued.next(),
                };
                match next {
                    Some(entry) => out.push(entry),
                    None => break,
                }
            }
        }
        out
    }

    /// Removes every ready message; returns how many. `stored` gets the store id of
    /// each stored one.
    pub(crate) fn clear(&mut self, mut stored: impl FnMut(u64)) -> usize {
        let n = self.live;
        for level in &self.levels {
            for entry in level.fresh.iter().chain(level.requeued.values()) {
                if entry.stored != 0 && !entry.is_tombstone() {
                    stored(entry.stored);
                }
            }
        }
        *self = Ready::with_max_priority(u8::try_from(self.levels.len() - 1).unwrap_or(u8::MAX));
        n
    }

    fn taken(&mut self, entry: &Entry) {
        self.live -= 1;
        self.bytes -= entry.body_len();
        self.held -= entry.held();
    }
}

impl Level {
    fn pop(&mut self) -> Option<Entry> {
        self.drop_front_tombstones();
        let requeued_first = match (self.requeued.first_key_value(), self.fresh.front()) {
            (Some((id, _)), Some(fresh)) => *id < fresh.id(),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if requeued_first {
            self.requeued.pop_first().map(|(_, e)| e)
        } else {
            self.fresh.pop_front()
        }
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        if let Some(entry) = self.requeued.remove(&id) {
            return Some(entry);
        }
        let at = self.fresh.binary_search_by_key(&id, Entry::id).ok()?;
        let slot = self.fresh.get_mut(at)?;
        if slot.is_tombstone() {
            return None;
        }
        let tombstone = Entry {
            bits: id | TOMBSTONE,
            stored: 0,
            enqueued: 0,
            message: Message::empty(),
        };
        let entry = std::mem::replace(slot, tombstone);
        self.drop_front_tombstones();
        Some(entry)
    }

    /// The earlier enqueue time of the first fresh and the first requeued message
    /// (either can be older: the clock is not monotonic).
    fn oldest_enqueued(&self) -> Option<u64> {
        let fresh = self.fresh.iter().find(|e| !e.is_tombstone());
        let requeued = self.requeued.values().next();
        fresh
            .into_iter()
            .chain(requeued)
            .map(Entry::enqueued)
            .filter(|ms| *ms != 0)
            .min()
    }

    fn holds(&self, id: u64) -> bool {
        self.requeued.contains_key(&id)
            || self
                .fresh
                .binary_search_by_key(&id, Entry::id)
                .is_ok_and(|at| self.fresh.get(at).is_some_and(|e| !e.is_tombstone()))
    }

    fn drop_front_tombstones(&mut self) {
        while self.fresh.front().is_some_and(Entry::is_tombstone) {
            self.fresh.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use warren_codec::BasicProperties;

    fn entry_with_body(id: u64, len: usize) -> Entry {
        Entry::new(
            id,
            Message::new(&"".into(), &"q".into(), &[0, 0], Bytes::from(vec![0; len])),
        )
    }

    fn entry(id: u64) -> Entry {
        Entry::new(
            id,
            Message::new(&"".into(), &"q".into(), &[0, 0], Bytes::new()),
        )
    }

    #[test]
    fn a_restored_message_goes_back_to_its_place_uncounted() {
        let mut ready = Ready::default();
        for id in 1..=4 {
            ready.push(entry(id));
        }
        let taken = ready.remove(2);
        assert_eq!(ready.len(), 3);
        if let Some(taken) = taken {
            ready.restore(taken);
        }
        assert_eq!(ready.len(), 4);
        let order: Vec<(u64, u64)> = std::iter::from_fn(|| ready.pop())
            .map(|e| (e.id(), e.returns()))
            .collect();
        assert_eq!(order, [(1, 0), (2, 0), (3, 0), (4, 0)]);
    }

    #[test]
    fn front_lists_in_delivery_order_without_taking() {
        let mut ready = Ready::default();
        for id in 1..=5 {
            ready.push(entry(id));
        }
        let first = ready.pop();
        assert_eq!(first.as_ref().map(Entry::id), Some(1));
        ready.remove(3);
        if let Some(first) = first {
            ready.requeue(first);
        }
        let ids: Vec<u64> = ready.front(10).iter().map(|e| e.id()).collect();
        assert_eq!(ids, [1, 2, 4, 5]);
        let ids: Vec<u64> = ready.front(2).iter().map(|e| e.id()).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(ready.len(), 4);
        assert_eq!(ready.pop().map(|e| e.id()), Some(1));
    }

    #[test]
    fn requeued_messages_return_to_their_place() {
        let mut ready = Ready::default();
        for id in 1..=5 {
            ready.push(entry(id));
        }
        let first = ready.pop();
        let second = ready.pop();
        assert_eq!(ready.pop().map(|e| e.id()), Some(3));
        if let (Some(a), Some(b)) = (first, second) {
            ready.requeue(b);
            ready.requeue(a);
        }
        let order: Vec<(u64, u64)> = std::iter::from_fn(|| ready.pop())
            .map(|e| (e.id(), e.returns()))
            .collect();
        assert_eq!(order, [(1, 1), (2, 1), (4, 0), (5, 0)]);
    }

    #[test]
    fn a_queue_slot_is_64_bytes() {
        // State word, store id, enqueue time, message handles.
        assert_eq!(std::mem::size_of::<Entry>(), 64);
    }

    #[test]
    fn the_oldest_ready_time_survives_paging_requeues_and_priorities() {
        let at = |id: u64, ms: u64| entry_with_body(id, 10).enqueued_at(ms);
        let mut ready = Ready::default();
        assert_eq!(ready.oldest_enqueued(), None);
        for (id, ms) in [(1, 1000), (2, 2000), (3, 3000)] {
            ready.push(at(id, ms).stored_as(id));
        }
        assert_eq!(ready.oldest_enqueued(), Some(1000));
        ready.page_out(0, 10);
        assert_eq!(
            ready.oldest_enqueued(),
            Some(1000),
            "paged out, still known"
        );
        let first = ready.pop();
        assert_eq!(ready.oldest_enqueued(), Some(2000));
        if let Some(first) = first {
            ready.requeue(first);
        }
        assert_eq!(
            ready.oldest_enqueued(),
            Some(1000),
            "requeued keeps its time"
        );
        assert_eq!(ready.remove(1).map(|e| e.enqueued()), Some(1000));
        assert_eq!(ready.remove(2).map(|e| e.enqueued()), Some(2000));
        assert_eq!(
            ready.oldest_enqueued(),
            Some(3000),
            "taken ones leave no trace"
        );
        ready.push(entry(4));
        assert_eq!(ready.pop().map(|e| e.id()), Some(3));
        assert_eq!(ready.oldest_enqueued(), None, "unknown times are skipped");

        let mut levels = Ready::with_max_priority(2);
        let with_priority = |id: u64, priority: u8, ms: u64| {
            let mut properties = BytesMut::new();
            BasicProperties {
                priority: Some(priority),
                ..Default::default()
            }
            .encode(&mut properties);
            Entry::new(
                id,
                Message::new(&"".into(), &"q".into(), &properties, Bytes::new()),
            )
            .enqueued_at(ms)
        };
        levels.push(with_priority(1, 0, 500));
        levels.push(with_priority(2, 2, 900));
        assert_eq!(
            levels.oldest_enqueued(),
            Some(500),
            "the oldest of any level"
        );
    }

    #[test]
    fn clear_counts_both_kinds() {
        let mut ready = Ready::default();
        ready.push(entry(2));
        ready.requeue(entry(1));
        assert_eq!(ready.clear(|_| {}), 2);
        assert!(ready.is_empty());
    }

    #[test]
    fn paging_out_keeps_the_front_and_reading_back_restores_the_accounting() {
        let mut ready = Ready::default();
        for id in 1..=10 {
            // Store ids 100, 200, ...; the last one is not in the files yet.
            ready.push(entry_with_body(id, 1000).stored_as(id * 100));
        }
        ready.push(entry_with_body(11, 1000)); // transient: never paged
        let (held, bytes) = (ready.held(), ready.bytes());
        ready.page_out(3500, 1000);
        // From the back: 11 is transient, 10 is unwritten; 9, 8, ... go until at most
        // 3,500 bytes of messages are left in memory.
        // The run of paged-out messages, past the front still in memory.
        assert_eq!(
            ready.paged_front(10),
            [200, 300, 400, 500, 600, 700, 800, 900]
        );
        assert_eq!(ready.len(), 11);
        let taken: Vec<u64> = (0..2).filter_map(|_| ready.pop()).map(|e| e.id()).collect();
        assert_eq!(taken, [1, 2]);
        assert_eq!(ready.paged_front(3), [300, 400, 500]);
        let paged_held = ready.held();
        let message = |n: u64| entry_with_body(n, 1000).message;
        ready.fill_front((3..=9).map(message));
        let mut after = Vec::new();
        while let Some(e) = ready.pop() {
            assert!(!e.is_paged(), "{} still paged", e.id());
            after.push(e.id());
        }
        assert_eq!(after, (3..=11).collect::<Vec<_>>());
        assert!(paged_held < held - 2 * 1100);
        assert_eq!(
            (ready.held(), ready.bytes()),
            (0, 0),
            "started at {held}, {bytes}"
        );
    }

    #[test]
    fn removal_from_anywhere_keeps_order_counts_and_bytes() {
        let mut ready = Ready::default();
        for id in 1..=5 {
            ready.push(entry_with_body(id, id as usize));
        }
        assert_eq!((ready.len(), ready.bytes()), (5, 15));
        assert_eq!(ready.remove(3).map(|e| e.id()), Some(3));
        assert_eq!(ready.remove(3).map(|e| e.id()), None);
        assert_eq!(ready.remove(1).map(|e| e.id()), Some(1));
        let first = ready.pop();
        assert_eq!(first.as_ref().map(Entry::id), Some(2));
        if let Some(e) = first {
            ready.requeue(e);
        }
        assert_eq!(ready.remove(2).map(|e| (e.id(), e.returns())), Some((2, 1)));
        assert_eq!((ready.len(), ready.bytes()), (2, 9));
        let order: Vec<u64> = std::iter::from_fn(|| ready.pop()).map(|e| e.id()).collect();
        assert_eq!(order, [4, 5]);
        assert_eq!((ready.len(), ready.bytes()), (0, 0));
    }

    #[test]
    fn returns_count_up_and_saturate() {
        let mut e = entry(1);
        assert!(!e.redelivered());
        for _ in 0..40_000 {
            e.count_return();
        }
        assert_eq!(
            (e.id(), e.returns(), e.redelivered()),
            (1, MAX_RETURNS, true)
        );
    }

    #[test]
    fn higher_priorities_go_first_and_publish_order_within_one() {
        let mut ready = Ready::with_max_priority(5);
        let with_priority = |id: u64, priority: u8| {
            let mut properties = BytesMut::new();
            BasicProperties {
                priority: Some(priority),
                ..Default::default()
            }
            .encode(&mut properties);
            Entry::new(
                id,
                Message::new(&"".into(), &"q".into(), &properties, Bytes::new()),
            )
        };
        for (id, priority) in [(1, 0), (2, 9), (3, 5), (4, 1), (5, 5), (6, 0)] {
            ready.push(with_priority(id, priority));
        }
        assert_eq!(ready.remove(5).map(|e| e.id()), Some(5));
        let first = ready.pop();
        assert_eq!(first.as_ref().map(Entry::id), Some(2));
        if let Some(e) = first {
            ready.requeue(e);
        }
        let order: Vec<u64> = std::iter::from_fn(|| ready.pop()).map(|e| e.id()).collect();
        // 9 is capped at the top level, 5.
        assert_eq!(order, [2, 3, 4, 1, 6]);
    }
}
