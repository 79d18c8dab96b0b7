//! Delivery tags of one channel and the deliveries still waiting for an ack.
//!
//! Tags are consecutive, so outstanding deliveries sit in a deque indexed by
//! `tag - base`: acking in order (the common case) is a pop at the front, and any
//! single tag is found in O(1).

use std::collections::VecDeque;

/// A delivery awaiting its ack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    /// Its queue, as an index into the channel's touched queues.
    pub(crate) queue: u32,
    pub(crate) message_id: u64,
    /// It took a slot of the channel-wide prefetch window (consumer deliveries do,
    /// basic.get does not).
    pub(crate) counted: bool,
}

#[derive(Debug)]
pub(crate) struct Unacked {
    /// Tag of `entries[0]`.
    base: u64,
    entries: VecDeque<Option<Pending>>,
    len: usize,
}

impl Default for Unacked {
    fn default() -> Self {
        Unacked {
            base: 1,
            entries: VecDeque::new(),
            len: 0,
        }
    }
}

impl Unacked {
    /// Deliveries awaiting an ack.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Takes the next tag for a delivery that needs no ack.
    pub(crate) fn skip(&mut self) -> u64 {
        if self.entries.is_empty() {
            self.base += 1;
            return self.base - 1;
        }
        self.entries.push_back(None);
        self.base + self.entries.len() as u64 - 1
    }

    /// Takes the next tag for a delivery that needs an ack.
    pub(crate) fn push(&mut self, pending: Pending) -> u64 {
        self.entries.push_back(Some(pending));
        self.len += 1;
        self.base + self.entries.len() as u64 - 1
    }

    /// Removes one outstanding delivery.
    pub(crate) fn take(&mut self, tag: u64) -> Option<Pending> {
        let index = usize::try_from(tag.checked_sub(self.base)?).ok()?;
        let pending = self.entries.get_mut(index)?.take()?;
        self.len -= 1;
        self.trim();
        Some(pending)
    }

    /// Removes every outstanding delivery up to and including `tag` (0: all).
    pub(crate) fn take_through(&mut self, tag: u64) -> Vec<Pending> {
        self.take_through_tagged(tag)
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// As [`take_through`](Self::take_through), keeping each delivery's tag.
    pub(crate) fn take_through_tagged(&mut self, tag: u64) -> Vec<(u64, Pending)> {
        let mut taken = Vec::new();
        while !self.entries.is_empty() && (tag == 0 || self.base <= tag) {
            if let Some(Some(p)) = self.entries.pop_front() {
                self.len -= 1;
                taken.push((self.base, p));
            }
            self.base += 1;
        }
        taken
    }

    /// Whether `tag` is outstanding.
    pub(crate) fn contains(&self, tag: u64) -> bool {
        tag.checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.entries.get(i))
            .is_some_and(Option::is_some)
    }

    /// Puts back deliveries (a rolled-back transaction's acks) under their tags.
    pub(crate) fn restore(&mut self, tag: u64, pending: Pending) {
        while tag < self.base {
            self.entries.push_front(None);
            self.base -= 1;
        }
        let Ok(index) = usize::try_from(tag - self.base) else {
            return;
        };
        while self.entries.len() <= index {
            self.entries.push_back(None);
        }
        if let Some(slot) = self.entries.get_mut(index)
            && slot.is_none()
        {
            *slot = Some(pending);
            self.len += 1;
        }
    }

    fn trim(&mut self) {
        while let Some(None) = self.entries.front() {
            self.entries.pop_front();
            self.base += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: u64) -> Pending {
        Pending {
            queue: 0,
            message_id: id,
            counted: true,
        }
    }

    fn ids(v: Vec<Pending>) -> Vec<u64> {
        v.into_iter().map(|p| p.message_id).collect()
    }

    #[test]
    fn tags_are_consecutive_across_acked_and_unacked_deliveries() {
        let mut u = Unacked::default();
        assert_eq!(u.push(pending(10)), 1);
        assert_eq!(u.skip(), 2);
        assert_eq!(u.push(pending(11)), 3);
        assert_eq!(u.len(), 2);
        assert_eq!(u.take(2).map(|p| p.message_id), None);
        assert_eq!(u.take(1).map(|p| p.message_id), Some(10));
        assert_eq!(
            u.take(1).map(|p| p.message_id),
            None,
            "double ack finds nothing"
        );
        assert_eq!(u.push(pending(12)), 4);
        assert_eq!(ids(u.take_through(3)), [11]);
        assert!(u.contains(4));
        assert_eq!(ids(u.take_through(0)), [12]);
        assert_eq!(u.len(), 0);
        assert_eq!(u.skip(), 5);
    }

    #[test]
    fn restore_puts_deliveries_back_under_their_tags() {
        let mut u = Unacked::default();
        u.push(pending(1));
        u.push(pending(2));
        let taken = u.take_through(2);
        for (tag, p) in (1..).zip(taken) {
            u.restore(tag, p);
        }
        assert_eq!(u.len(), 2);
        assert_eq!(u.push(pending(3)), 3);
        assert_eq!(ids(u.take_through(0)), [1, 2, 3]);
    }
}
