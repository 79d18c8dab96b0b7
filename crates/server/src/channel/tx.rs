//! Transactions (tx.select / commit / rollback) and confirm.select.
//!
//! As in RabbitMQ: publishes and acks in a transaction take effect at commit; a
//! rollback drops the publishes and leaves the acked deliveries unacked again. A
//! channel is either transactional or in confirm mode, never both.

use warren_codec::{ConfirmSelect, ConfirmSelectOk, TxCommitOk, TxRollbackOk, TxSelectOk};

use crate::channel::confirms::Confirms;
use crate::channel::publish::Routed;
use crate::channel::unacked::Pending;
use crate::connection::Connection;
use crate::error::{ChannelError, ConnectionError, Error};
use crate::queue::Settle;

/// What a transaction holds until commit.
#[derive(Default)]
pub(crate) struct Transaction {
    pub(crate) publishes: Vec<Routed>,
    /// Settled deliveries with their tags, to restore on rollback.
    pub(crate) settles: Vec<(u64, Pending, Settle)>,
}

fn not_transactional() -> Error {
    ChannelError::precondition_failed("channel is not transactional").into()
}

impl Connection {
    pub(crate) fn handle_tx_select(&mut self, ch: u16) -> Result<(), Error> {
        let channel = self.channel(ch)?;
        if channel.confirms.is_some() {
            return Err(
                ChannelError::precondition_failed("cannot switch from confirm to tx mode").into(),
            );
        }
        channel.tx.get_or_insert_with(Transaction::default);
        self.out.method(ch, TxSelectOk::default());
        Ok(())
    }

    pub(crate) async fn handle_tx_commit(&mut self, ch: u16) -> Result<(), Error> {
        let tx = self
            .channel(ch)?
            .tx
            .as_mut()
            .ok_or_else(not_transactional)?;
        let Transaction { publishes, settles } = std::mem::take(tx);
        let mut stored = None;
        for routed in publishes {
            stored = self.enqueue(ch, routed)?.or(stored);
        }
        self.flush_publishes().await;
        // Committed persistent messages are on disk before commit-ok, as confirmed
        // ones are before their ack.
        if let Some(last) = stored {
            let mut progress = self.vhost.durable.store.progress();
            let durable = progress
                .wait_for(|p| p.outcome(last).is_some())
                .await
                .map(|p| p.outcome(last) == Some(true))
                .unwrap_or(false);
            if !durable {
                return Err(ConnectionError::internal_error(
                    "the message store could not write the transaction's messages",
                )
                .in_method(90, 20)
                .into());
            }
        }
        for how in [Settle::Ack, Settle::Requeue, Settle::Discard] {
            let batch: Vec<Pending> = settles
                .iter()
                .filter(|(_, _, h)| *h == how)
                .map(|(_, p, _)| *p)
                .collect();
            if !batch.is_empty() {
                self.settle(ch, batch, how).await?;
            }
        }
        self.out.method(ch, TxCommitOk::default());
        Ok(())
    }

    pub(crate) fn handle_tx_rollback(&mut self, ch: u16) -> Result<(), Error> {
        let channel = self.channel(ch)?;
        let tx = channel.tx.as_mut().ok_or_else(not_transactional)?;
        let Transaction { settles, .. } = std::mem::take(tx);
        for (tag, pending, _) in settles {
            channel.unacked.restore(tag, pending);
        }
        self.out.method(ch, TxRollbackOk::default());
        Ok(())
    }

    pub(crate) fn handle_confirm_select(&mut self, ch: u16, m: ConfirmSelect) -> Result<(), Error> {
        let channel = self.channel(ch)?;
        if channel.tx.is_some() {
            return Err(
                ChannelError::precondition_failed("cannot switch from tx to confirm mode").into(),
            );
        }
        channel.confirms.get_or_insert_with(Confirms::default);
        if !m.nowait {
            self.out.method(ch, ConfirmSelectOk::default());
        }
        Ok(())
    }
}
