//! Ready messages in delivery order. New messages go to the back; a requeued message
//! goes back to its original position (by its id), so a rejected message is retried
//! before anything published after it, as in RabbitMQ.

use std::collections::{BTreeMap, VecDeque};

use crate::message::Message;

/// A message in a queue, with the queue's delivery state for it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Queue-local id (increasing in publish order) in the low 63 bits, the
    /// redelivered flag in the top bit: a queue slot of 48 bytes instead of 56.
    id_and_flag: u64,
    pub(crate) message: Message,
}

const REDELIVERED: u64 = 1 << 63;

impl Entry {
    pub(crate) fn new(id: u64, message: Message) -> Self {
        Entry {
            id_and_flag: id & !REDELIVERED,
            message,
        }
    }

    /// Queue-local id, increasing in publish order.
    pub(crate) fn id(&self) -> u64 {
        self.id_and_flag & !REDELIVERED
    }

    /// Whether the message was delivered before.
    pub(crate) fn redelivered(&self) -> bool {
        self.id_and_flag & REDELIVERED != 0
    }
}

/// Messages waiting for a consumer.
#[derive(Debug, Default)]
pub(crate) struct Ready {
    /// Never delivered, in id order.
    fresh: VecDeque<Entry>,
    /// Returned by consumers; merged with `fresh` by id on the way out.
    requeued: BTreeMap<u64, Entry>,
}

impl Ready {
    pub(crate) fn len(&self) -> usize {
        self.fresh.len() + self.requeued.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.fresh.is_empty() && self.requeued.is_empty()
    }

    pub(crate) fn push(&mut self, entry: Entry) {
        self.fresh.push_back(entry);
    }

    /// Puts back a delivered message, marked redelivered.
    pub(crate) fn requeue(&mut self, mut entry: Entry) {
        entry.id_and_flag |= REDELIVERED;
        self.requeued.insert(entry.id(), entry);
    }

    /// The next message in id order.
    pub(crate) fn pop(&mut self) -> Option<Entry> {
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

    /// Removes every ready message; returns how many.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.len();
        self.fresh.clear();
        self.requeued.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(id: u64) -> Entry {
        Entry::new(
            id,
            Message::new(&"".into(), &"q".into(), &[0, 0], Bytes::new()),
        )
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
        let order: Vec<(u64, bool)> = std::iter::from_fn(|| ready.pop())
            .map(|e| (e.id(), e.redelivered()))
            .collect();
        assert_eq!(order, [(1, true), (2, true), (4, false), (5, false)]);
    }

    #[test]
    fn a_queue_slot_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 48);
    }

    #[test]
    fn clear_counts_both_kinds() {
        let mut ready = Ready::default();
        ready.push(entry(2));
        ready.requeue(entry(1));
        assert_eq!(ready.clear(), 2);
        assert!(ready.is_empty());
    }
}
