//! A queue's consumers, served round-robin.

use warren_codec::ShortStr;

use crate::connection::events::ConnectionId;
use crate::queue::ConsumerSpec;

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
    list: Vec<Consumer>,
    /// Where the next round-robin search starts.
    cursor: usize,
}

impl Consumers {
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
        self.list.push(Consumer { spec, unacked: 0 });
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Consumer> {
        self.list.get_mut(index)
    }

    pub(crate) fn find_mut(
        &mut self,
        connection: ConnectionId,
        channel: u16,
        tag: &str,
    ) -> Option<&mut Consumer> {
        self.list
            .iter_mut()
            .find(|c| c.is(connection, channel) && c.spec.tag == tag)
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
    ) -> bool {
        !self
            .remove_where(|c| c.is(connection, channel) && c.spec.tag == *tag)
            .is_empty()
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

    /// Drains every consumer (the queue is going away).
    pub(crate) fn take_all(&mut self) -> Vec<Consumer> {
        self.cursor = 0;
        std::mem::take(&mut self.list)
    }

    /// The first consumer at or after the cursor that `accept` takes, moving the cursor
    /// past it so the next search starts with the one after: round-robin.
    pub(crate) fn next(&mut self, mut accept: impl FnMut(&mut Consumer) -> bool) -> Option<usize> {
        let n = self.list.len();
        for step in 0..n {
            let i = (self.cursor + step) % n;
            if accept(&mut self.list[i]) {
                self.cursor = (i + 1) % n;
                return Some(i);
            }
        }
        None
    }
}
