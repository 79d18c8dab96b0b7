//! A channel's state, owned by its connection task (no task or lock per channel).
//!
//! The state lives in [`Channel`]; the method handlers are `impl Connection` blocks
//! split by concern (topology, publish, consume, ack, tx), because a handler needs the
//! connection's write buffer, vhost and identity as well as the channel.

mod ack;
pub(crate) mod arguments;
pub(crate) mod assembler;
pub(crate) mod confirms;
mod consume;
pub(crate) mod consumers;
pub(crate) mod dispatch;
pub(crate) mod gate;
mod publish;
mod topology;
mod tx;
pub(crate) mod unacked;

use std::sync::Arc;

use warren_codec::ShortStr;

use crate::number_hash::NumberMap;
use crate::queue::{Command, QueueHandle};
use assembler::Assembler;
use confirms::Confirms;
use consumers::ChannelConsumers;
use gate::ChannelGate;
use tx::Transaction;
use unacked::Unacked;

#[derive(Debug, PartialEq, Eq)]
enum State {
    Open,
    /// We sent channel.close; waiting for close-ok, ignoring everything else.
    Closing,
}

/// A channel as monitoring sees it (the management API's `/api/channels`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelInfo {
    pub(crate) number: u16,
    /// Its consumers (the direct reply-to one included).
    pub(crate) consumers: u32,
    /// Deliveries and gets awaiting an ack.
    pub(crate) unacked: u32,
    /// basic.qos prefetch for new consumers (global = false).
    pub(crate) prefetch: u16,
    /// The channel-wide prefetch window (global = true); 0 = no limit.
    pub(crate) global_prefetch: u32,
    pub(crate) confirm: bool,
    pub(crate) transactional: bool,
    /// It sent channel.close and waits for close-ok.
    pub(crate) closing: bool,
}

/// One open channel.
pub(crate) struct Channel {
    pub(crate) id: u16,
    state: State,
    pub(crate) gate: Arc<ChannelGate>,
    pub(crate) assembler: Assembler,
    pub(crate) unacked: Unacked,
    pub(crate) consumers: ChannelConsumers,
    /// basic.qos prefetch for consumers started from now on (global = false).
    pub(crate) prefetch: u16,
    /// Set by confirm.select.
    pub(crate) confirms: Option<Confirms>,
    /// Set by tx.select.
    pub(crate) tx: Option<Transaction>,
    /// The queue an empty queue name refers to (the spec's "current queue").
    pub(crate) last_queue: Option<ShortStr>,
    /// Queues that may hold this channel's consumers or unacked messages; consumers
    /// and unacked deliveries name their queue by its index here.
    touched: Vec<QueueHandle>,
    /// Where each touched queue is in `touched`, by the address of its info (kept
    /// alive by the handle there, so never reused while listed): a channel that gets
    /// from thousands of queues finds each without a scan.
    touched_at: NumberMap<usize, u32>,
    /// The direct reply-to consumer (`amq.rabbitmq.reply-to`), if any.
    pub(crate) reply_consumer: Option<crate::direct_reply::ReplyConsumer>,
}

impl Channel {
    pub(crate) fn new(id: u16) -> Self {
        Channel {
            id,
            state: State::Open,
            gate: Arc::new(ChannelGate::new()),
            assembler: Assembler::default(),
            unacked: Unacked::default(),
            consumers: ChannelConsumers::default(),
            prefetch: 0,
            confirms: None,
            tx: None,
            last_queue: None,
            touched: Vec::new(),
            touched_at: NumberMap::default(),
            reply_consumer: None,
        }
    }

    /// What monitoring shows of the channel.
    pub(crate) fn describe(&self) -> ChannelInfo {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        ChannelInfo {
            number: self.id,
            consumers: count(self.consumers.len() + usize::from(self.reply_consumer.is_some())),
            unacked: count(self.unacked.len()),
            prefetch: self.prefetch,
            global_prefetch: self.gate.limit(),
            confirm: self.confirms.is_some(),
            transactional: self.tx.is_some(),
            closing: self.is_closing(),
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.state == State::Closing
    }

    /// Enters the closing state after the connection sent channel.close.
    pub(crate) fn start_closing(&mut self) {
        self.state = State::Closing;
    }

    /// Remembers a queue to notify when this channel closes; its index in
    /// [`Channel::touched`].
    pub(crate) fn touch(&mut self, queue: &QueueHandle) -> u32 {
        let key = Arc::as_ptr(&queue.info) as usize;
        if let Some(&at) = self.touched_at.get(&key) {
            return at;
        }
        // A channel would need four billion queues to pass u32.
        let at = u32::try_from(self.touched.len()).unwrap_or(u32::MAX);
        self.touched.push(queue.clone());
        self.touched_at.insert(key, at);
        at
    }

    /// A queue by its index from [`Channel::touch`].
    pub(crate) fn touched(&self, index: u32) -> Option<&QueueHandle> {
        self.touched.get(index as usize)
    }

    /// Tells the queues this channel used to try delivering again.
    pub(crate) async fn resume_queues(&self) {
        for queue in &self.touched {
            queue.send(Command::Resume).await;
        }
    }

    /// Releases everything the channel holds: its consumers are cancelled and its
    /// unacked messages requeued, by the queues themselves.
    pub(crate) async fn release(&mut self, connection: crate::connection::events::ConnectionId) {
        self.consumers.clear();
        self.reply_consumer = None;
        self.touched_at.clear();
        for queue in self.touched.drain(..) {
            queue
                .send(Command::ChannelClosed {
                    connection,
                    channel: self.id,
                })
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{QueueInfo, test_handle};

    #[test]
    fn a_queue_is_touched_once_and_found_again_by_its_index() {
        let mut channel = Channel::new(1);
        let queues: Vec<QueueHandle> = (0..1000)
            .map(|i| test_handle(Arc::new(QueueInfo::named(&format!("q{i}")))))
            .collect();
        for (i, queue) in queues.iter().enumerate() {
            assert_eq!(channel.touch(queue) as usize, i);
        }
        assert_eq!(channel.touch(&queues[500]), 500);
        assert!(channel.touched(500).is_some_and(|q| q.same(&queues[500])));
        assert!(channel.touched(1000).is_none());
    }
}
