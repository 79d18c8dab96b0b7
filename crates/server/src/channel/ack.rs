//! basic.ack, basic.nack, basic.reject: settling deliveries by tag.

use warren_codec::{BasicAck, BasicNack, BasicReject};

use crate::channel::unacked::Pending;
use crate::connection::Connection;
use crate::error::{ChannelError, Error};
use crate::queue::{Command, Settle};

impl Connection {
    pub(crate) async fn handle_basic_ack(&mut self, ch: u16, m: BasicAck) -> Result<(), Error> {
        self.settle_tags(ch, m.delivery_tag, m.multiple, Settle::Ack)
            .await
    }

    pub(crate) async fn handle_basic_nack(&mut self, ch: u16, m: BasicNack) -> Result<(), Error> {
        let how = if m.requeue {
            Settle::Requeue
        } else {
            Settle::Discard
        };
        self.settle_tags(ch, m.delivery_tag, m.multiple, how).await
    }

    pub(crate) async fn handle_basic_reject(
        &mut self,
        ch: u16,
        m: BasicReject,
    ) -> Result<(), Error> {
        let how = if m.requeue {
            Settle::Requeue
        } else {
            Settle::Discard
        };
        self.settle_tags(ch, m.delivery_tag, false, how).await
    }

    /// Takes the deliveries a tag names (406 for a tag not outstanding) and settles
    /// them, or holds them in the transaction.
    async fn settle_tags(
        &mut self,
        ch: u16,
        tag: u64,
        multiple: bool,
        how: Settle,
    ) -> Result<(), Error> {
        let channel = self.channel(ch)?;
        let unknown = || ChannelError::precondition_failed(format!("unknown delivery tag {tag}"));
        let taken: Vec<(u64, Pending)> = if multiple {
            if tag != 0 && !channel.unacked.contains(tag) {
                return Err(unknown().into());
            }
            channel.unacked.take_through_tagged(tag)
        } else {
            let pending = channel.unacked.take(tag).ok_or_else(unknown)?;
            vec![(tag, pending)]
        };
        if let Some(tx) = &mut channel.tx {
            tx.settles
                .extend(taken.into_iter().map(|(tag, p)| (tag, p, how)));
            return Ok(());
        }
        self.settle(ch, taken.into_iter().map(|(_, p)| p).collect(), how)
            .await
    }

    /// Tells each queue what became of its deliveries, and frees their prefetch slots.
    pub(crate) async fn settle(
        &mut self,
        ch: u16,
        pending: Vec<Pending>,
        how: Settle,
    ) -> Result<(), Error> {
        let counted = pending.iter().filter(|p| p.counted).count();
        let mut by_queue: Vec<(u32, Vec<u64>)> = Vec::new();
        for p in pending {
            match by_queue.iter_mut().find(|(q, _)| *q == p.queue) {
                Some((_, ids)) => ids.push(p.message_id),
                None => by_queue.push((p.queue, vec![p.message_id])),
            }
        }
        for (index, ids) in by_queue {
            let Some(queue) = self.channels.get(&ch).and_then(|c| c.touched(index)) else {
                continue;
            };
            // A queue deleted meanwhile has nothing left to settle.
            queue.send(Command::Settle { ids, how }).await;
        }
        let channel = self.channel(ch)?;
        if channel
            .gate
            .release(u32::try_from(counted).unwrap_or(u32::MAX))
        {
            channel.resume_queues().await;
        }
        Ok(())
    }
}
