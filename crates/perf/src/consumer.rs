//! A consumer: one channel, one basic.consume, counting deliveries and recording
//! their latency until the run cancels it.
//!
//! Manual acknowledgement is one basic.ack with `multiple` per batch of deliveries
//! (`--multi-ack-every`), and a last one for the remainder when the stream ends, so
//! no delivery is left unacknowledged to be requeued when the channel closes.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use warren_client::Consumer;

use crate::error::Error;
use crate::latency::Recorder;
use crate::shared::Shared;

/// What one consumer did.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerReport {
    /// Deliveries received.
    pub consumed: u64,
    /// When the last one arrived.
    pub last: Option<Instant>,
}

/// Consumes until the stream ends (after basic.cancel). `ack_every` is `None` for a
/// no_ack consumer. Fails if the broker cancels the consumer or closes the channel;
/// the run is told through [`Shared::fail`].
pub async fn consume(
    consumer: Consumer,
    ack_every: Option<usize>,
    shared: Arc<Shared>,
) -> Result<ConsumerReport, Error> {
    let outcome = receive_all(consumer, ack_every, &shared).await;
    if outcome.is_err() {
        shared.fail();
    }
    outcome
}

async fn receive_all(
    mut consumer: Consumer,
    ack_every: Option<usize>,
    shared: &Arc<Shared>,
) -> Result<ConsumerReport, Error> {
    let mut recorder = Recorder::new(shared.epoch, shared.latency.clone());
    let mut report = ConsumerReport {
        consumed: 0,
        last: None,
    };
    let mut unacked = 0usize;
    let mut last_tag = 0u64;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let now = Instant::now();
        recorder.record(&delivery.body, now);
        shared.delivered();
        report.consumed += 1;
        report.last = Some(now);
        if let Some(every) = ack_every {
            unacked += 1;
            last_tag = delivery.delivery_tag;
            if unacked >= every {
                consumer.channel().basic_ack(last_tag, every > 1).await?;
                unacked = 0;
            }
        }
    }
    if unacked > 0 {
        consumer.channel().basic_ack(last_tag, true).await?;
    }
    recorder.merge();
    Ok(report)
}
