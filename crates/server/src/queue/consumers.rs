//! A queue's consumers: served round-robin among those of the highest priority
//! (`x-priority`) that can take a delivery, as RabbitMQ does; or, on a single active
//! consumer queue, only the longest-standing consumer until it goes.

use warren_codec::ShortStr;

use crate::connection::events::ConnectionId;
use crate::queue::{ConsumerId, ConsumerSpec};

/// A consumer and how many of its deliveries await an ack.
pub(crate) struct Consumer {
    pub(crate) spec: ConsumerSpec,
    pub(crate) unacked: u32,
}

impl Consumer {
    /// Whether its own prefetch leaves room for another delivery.
    pub(crate) fn has_room(&self) -> bool {
        self.spec.no_ack || self.spec.prefetch == 0 || self.unacked < u32::from(self.spec.prefetch)
    }

    fn is(&self, connection: ConnectionId, channel: u16) -> bool {
        self.spec.connection.id == connection && self.spec.channel == channel
    }
}

#[derive(Default)]
pub(crate) struct Consumers {
    /// By priority, highest first; in arrival order within a priority (and always in
    /// arrival order with a single active consumer).
    list: Vec<Consumer>,
    /// Where the next round-robin search starts.
    cursor: usize,
    single_active: bool,
}

impl Consumers {
    /// No consumers yet; with `single_active`, only the first of them receives.
    pub(crate) fn new(single_active: bool) -> Self {
        Consumers {
            single_active,
            ..Consumers::default()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn has_exclusive(&self) -> bool {
        self.list.iter().any(|c| c.spec.exclusive)
    }

    pub(crate) fn add(&mut self, spec: ConsumerSpec) {
        let at = if self.single_active {
            self.list.len()
        } else {
            self.list
                .partition_point(|c| c.spec.priority >= spec.priority)
        };
        if at < self.cursor {
            self.cursor += 1;
        }
        self.list.insert(at, Consumer { spec, unacked: 0 });
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Consumer> {
        self.list.get_mut(index)
    }

    pub(crate) fn find_mut(&mut self, id: ConsumerId) -> Option<&mut Consumer> {
        self.list.iter_mut().find(|c| c.spec.id == id)
    }

    /// Removes matching consumers and returns them.
    pub(crate) fn remove_where(&mut self, pred: impl Fn(&Consumer) -> bool) -> Vec<Consumer> {
        let mut removed = Vec::new();
        let mut i = 0;
        while i < self.list.len() {
            if pred(&self.list[i]) {
                removed.push(self.list.remove(i));
                if self.cursor > i {
                    self.cursor -= 1;
                }
            } else {
                i += 1;
            }
        }
        if self.cursor >= self.list.len() {
            self.cursor = 0;
        }
        removed
    }

    pub(crate) fn remove(
        &mut self,
        connection: ConnectionId,
        channel: u16,
        tag: &ShortStr,
    ) -> Vec<Consumer> {
        self.remove_where(|c| c.is(connection, channel) && c.spec.tag == *tag)
    }

    pub(crate) fn remove_channel(
        &mut self,
        connection: ConnectionId,
        channel: u16,
    ) -> Vec<Consumer> {
        self.remove_where(|c| c.is(connection, channel))
    }

    pub(crate) fn remove_connection(&mut self, connection: ConnectionId) -> Vec<Consumer> {
        self.remove_where(|c| c.spec.connection.id == connection)
    }

    /// Every consumer, with whether it receives now (false for the waiting consumers
    /// of a single-active-consumer queue).
    pub(crate) fn iter_active(&self) -> impl Iterator<Item = (&Consumer, bool)> {
        let single = self.single_active;
        self.list
            .iter()
            .enumerate()
            .map(move |(i, c)| (c, !single || i == 0))
    }

    /// Drains every consumer (the queue is going away).
    pub(crate) fn take_all(&mut self) -> Vec<Consumer> {
        self.cursor = 0;
        std::mem::take(&mut self.list)
    }

    /// The consumer to try next that `accept` takes: within the highest priority
    /// that has one, the first at or after the cursor, moving the cursor past it so the
    /// next search starts with the one after (round-robin). With a single active
    /// consumer, only the first consumer is ever asked.
    pub(crate) fn next(&mut self, mut accept: impl FnMut(&mut Consumer) -> bool) -> Option<usize> {
        if self.single_active {
            let first = self.list.first_mut()?;
            return accept(first).then_some(0);
        }
        let mut start = 0;
        while start < self.list.len() {
            let priority = self.list[start].spec.priority;
            let end = start + self.list[start..].partition_point(|c| c.spec.priority == priority);
            let n = end - start;
            let from = if (start..end).contains(&self.cursor) {
                self.cursor - start
            } else {
                0
            };
            for step in 0..n {
                let i = start + (from + step) % n;
                if accept(&mut self.list[i]) {
                    self.cursor = i + 1;
                    return Some(i);
                }
            }
            start = end;
        }
        None
    }
}
