//! Routed messages on their way to queues, batched per queue.
//!
//! A connection handles a read's worth of frames, then hands each queue what was
//! routed to it as one [`Publishes`] batch: one mailbox send, one wake-up of the queue
//! task and one confirm handle for many messages, where sending each message alone
//! cost a semaphore permit, a wake-up and a handle clone apiece.
//!
//! Order holds: a queue gets a connection's messages in publish order, and the
//! connection flushes before any other method, so a publish is in its queue before a
//! later `basic.get`, `queue.purge` or `tx.commit-ok` on the same connection.

use std::sync::Arc;

use crate::connection::events::ConnectionHandle;
use crate::number_hash::NumberMap;
use crate::queue::{Enqueue, Publishes, QueueHandle};

/// Body bytes held back before the batch goes anyway: a queue's mailbox counts
/// batches, so this keeps what it can hold near what it held one message at a time.
const MAX_BYTES: usize = 64 * 1024;

/// Up to this many queues in a batch, a queue's batch is found by a linear check.
const LINEAR: usize = 16;

/// The batches not yet sent, one per queue.
#[derive(Default)]
pub(crate) struct Outgoing {
    batches: Vec<(QueueHandle, Publishes)>,
    /// Where each queue's batch is, by its `QueueInfo` address, once there are more
    /// than [`LINEAR`]: a fan-out to thousands of queues must not scan them all.
    index: NumberMap<usize, usize>,
    bytes: usize,
}

impl Outgoing {
    /// Adds a message for `queue`; `confirm_to` is this connection, for confirms.
    pub(crate) fn add(
        &mut self,
        queue: &QueueHandle,
        message: Enqueue,
        confirm_to: &ConnectionHandle,
    ) {
        self.bytes += message.message.body().len();
        let wants_confirm = message.confirm.is_some();
        let key = Arc::as_ptr(&queue.info) as usize;
        let found = if self.batches.len() <= LINEAR {
            self.batches.iter().position(|(q, _)| q.same(queue))
        } else {
            if self.index.is_empty() {
                let keys = self
                    .batches
                    .iter()
                    .map(|(q, _)| Arc::as_ptr(&q.info) as usize);
                self.index = keys.zip(0..).collect();
            }
            self.index.get(&key).copied()
        };
        let batch = match found {
            Some(i) => &mut self.batches[i].1,
            None => {
                if !self.index.is_empty() {
                    self.index.insert(key, self.batches.len());
                }
                self.batches.push((
                    queue.clone(),
                    Publishes {
                        confirm_to: None,
                        messages: Vec::new(),
                    },
                ));
                let last = self.batches.len() - 1;
                &mut self.batches[last].1
            }
        };
        if wants_confirm && batch.confirm_to.is_none() {
            batch.confirm_to = Some(confirm_to.clone());
        }
        batch.messages.push(message);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Whether enough is held back that it should go now.
    pub(crate) fn is_full(&self) -> bool {
        self.bytes >= MAX_BYTES
    }

    /// The batches to send, leaving this empty.
    pub(crate) fn take(&mut self) -> Vec<(QueueHandle, Publishes)> {
        self.bytes = 0;
        self.index.clear();
        std::mem::take(&mut self.batches)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::message::Message;
    use crate::queue::{QueueInfo, test_handle};

    fn enqueue(n: u32, size: usize) -> Enqueue {
        let mut body = n.to_be_bytes().to_vec();
        body.resize(size.max(4), 0);
        Enqueue {
            message: Message::new(&"".into(), &"k".into(), &[0, 0], Bytes::from(body)),
            stored: 0,
            confirm: Some((1, u64::from(n))),
            expiration: None,
        }
    }

    fn numbers(batch: &Publishes) -> Vec<u32> {
        let first4 = |m: &Enqueue| m.message.body()[..4].try_into().unwrap_or([0xff; 4]);
        batch
            .messages
            .iter()
            .map(|m| u32::from_be_bytes(first4(m)))
            .collect()
    }

    /// A fan-out past the linear check (the index) and back under it (after take).
    #[test]
    fn one_batch_per_queue_with_its_messages_in_order() {
        let (connection, _events) = ConnectionHandle::new();
        for queue_count in [3, 100] {
            let queues: Vec<QueueHandle> = (0..queue_count)
                .map(|i| test_handle(Arc::new(QueueInfo::named(&format!("q{i}")))))
                .collect();
            let mut outgoing = Outgoing::default();
            for n in 0..5 {
                for q in &queues {
                    outgoing.add(q, enqueue(n, 4), &connection);
                }
            }
            let batches = outgoing.take();
            assert_eq!(batches.len(), queue_count);
            for ((queue, batch), expected) in batches.iter().zip(&queues) {
                assert!(
                    queue.same(expected),
                    "batches keep the order queues came in"
                );
                assert_eq!(numbers(batch), [0, 1, 2, 3, 4]);
                assert!(batch.confirm_to.is_some());
            }
            assert!(outgoing.is_empty());
        }
    }

    #[test]
    fn is_full_once_the_bodies_reach_the_limit() {
        let (connection, _events) = ConnectionHandle::new();
        let queue = test_handle(Arc::new(QueueInfo::named("q")));
        let mut outgoing = Outgoing::default();
        outgoing.add(&queue, enqueue(0, MAX_BYTES - 1), &connection);
        assert!(!outgoing.is_full());
        outgoing.add(&queue, enqueue(1, 1), &connection);
        assert!(outgoing.is_full());
        outgoing.take();
        assert!(!outgoing.is_full());
    }
}
