//! When a queue's messages expire: a min-heap of (deadline, message id), so the queue
//! wakes for the earliest deadline instead of scanning its messages on a timer.
//!
//! Entries are not removed when their message is acked or purged (a heap cannot remove
//! from the middle cheaply); the queue skips ids it no longer holds, and the heap is
//! compacted when such leftovers outnumber the live entries.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tokio::time::{Duration, Instant};

/// Leftovers tolerated before a compaction, beyond twice the live messages.
const SLACK: usize = 1024;

#[derive(Debug)]
pub(crate) struct Expiry {
    /// Deadlines are milliseconds since this instant.
    epoch: Instant,
    heap: BinaryHeap<Reverse<(u64, u64)>>,
}

impl Default for Expiry {
    fn default() -> Self {
        Expiry {
            epoch: Instant::now(),
            heap: BinaryHeap::new(),
        }
    }
}

impl Expiry {
    /// Whether no message has a deadline.
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Milliseconds since the epoch, now.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Message `id` expires at `deadline_ms`.
    pub(crate) fn schedule(&mut self, id: u64, deadline_ms: u64) {
        self.heap.push(Reverse((deadline_ms, id)));
    }

    /// When the earliest scheduled message expires.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap
            .peek()
            .map(|Reverse((ms, _))| self.epoch + Duration::from_millis(*ms))
    }

    /// Takes the next id whose deadline is before `now_ms` (or at it, with `inclusive`).
    pub(crate) fn pop_due(&mut self, now_ms: u64, inclusive: bool) -> Option<u64> {
        let Reverse((deadline, _)) = self.heap.peek()?;
        let due = if inclusive {
            *deadline <= now_ms
        } else {
            *deadline < now_ms
        };
        if !due {
            return None;
        }
        self.heap.pop().map(|Reverse((_, id))| id)
    }

    /// Drops entries of messages the queue no longer holds, when they have piled up.
    pub(crate) fn compact(&mut self, live: usize, holds: impl Fn(u64) -> bool) {
        if self.heap.len() > 2 * live + SLACK {
            self.heap.retain(|Reverse((_, id))| holds(*id));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let mut e = Expiry::default();
        e.schedule(1, 30);
        e.schedule(2, 10);
        e.schedule(3, 20);
        assert_eq!(e.pop_due(9, true), None);
        assert_eq!(e.pop_due(10, false), None);
        assert_eq!(e.pop_due(10, true), Some(2));
        assert_eq!(e.pop_due(25, false), Some(3));
        assert_eq!(e.pop_due(25, false), None);
        assert_eq!(e.next_deadline(), Some(e.epoch + Duration::from_millis(30)));
    }

    #[test]
    fn compaction_keeps_held_ids_once_leftovers_pile_up() {
        let mut e = Expiry::default();
        for id in 0..3000 {
            e.schedule(id, id);
        }
        // Few leftovers: nothing happens.
        e.compact(2000, |id| id % 2 == 0);
        assert_eq!(e.len(), 3000);
        e.compact(10, |id| id < 10);
        assert_eq!(e.len(), 10);
        assert_eq!(e.pop_due(u64::MAX, true), Some(0));
    }
}
