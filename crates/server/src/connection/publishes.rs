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

use crate::connection::events::ConnectionHandle;
use crate::queue::{Enqueue, Publishes, QueueHandle};

/// Body bytes held back before the batch goes anyway: a queue's mailbox counts
/// batches, so this keeps what it can hold near what it held one message at a time.
const MAX_BYTES: usize = 64 * 1024;

/// The batches not yet sent, one per queue.
#[derive(Default)]
pub(crate) struct Outgoing {
    batches: Vec<(QueueHandle, Publishes)>,
    bytes: usize,
}

impl Outgoing {
    /// Adds a message for `queue`; `confirm_to` is this connection, for confirms.
    pub(crate) fn add(
        &mut self,
        queue: QueueHandle,
        message: Enqueue,
        confirm_to: &ConnectionHandle,
    ) {
        self.bytes += message.message.body().len();
        let wants_confirm = message.confirm.is_some();
        let batch = match self.batches.iter_mut().position(|(q, _)| q.same(&queue)) {
            Some(i) => &mut self.batches[i].1,
            None => {
                self.batches.push((
                    queue,
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
        std::mem::take(&mut self.batches)
    }
}
