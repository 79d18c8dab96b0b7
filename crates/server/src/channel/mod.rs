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
        let at = match self.touched.iter().position(|q| q.same(queue)) {
            Some(at) => at,
            None => {
                self.touched.push(queue.clone());
                self.touched.len() - 1
            }
        };
        // A channel would need four billion queues to pass u32.
        u32::try_from(at).unwrap_or(u32::MAX)
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
