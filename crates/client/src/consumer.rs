//! A consumer: the stream of deliveries basic.consume starts.
//!
//! Backpressure: each consumer has a bounded buffer between the connection task and
//! the stream, sized by the channel's prefetch count when one is set and the consumer
//! acknowledges (the broker then never has more than that many deliveries in flight to
//! it, so the buffer cannot overflow), else [`CONSUMER_BUFFER`]. If a buffer does fill
//! (a `no_ack` consumer, or no prefetch, read slower than the broker delivers), the
//! connection task stops reading the socket until the stream takes a delivery, and TCP
//! slows the broker down. That pauses every channel of the connection, not just this
//! consumer: give such consumers a connection of their own, or set a prefetch.
//! Writes (publishes, acks, heartbeats) go on while reading is paused.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};
use warren_codec::{FieldTable, ShortStr};

use crate::channel::Channel;
use crate::delivery::Delivery;
use crate::error::Error;

/// Deliveries buffered for a consumer with no prefetch limit (or `no_ack`).
pub const CONSUMER_BUFFER: usize = 512;

/// Options for [`Channel::basic_consume`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumeOptions {
    /// Deliveries need no acknowledgement (the broker forgets them once sent).
    pub no_ack: bool,
    /// The only consumer of the queue (403 ACCESS_REFUSED if there is another).
    pub exclusive: bool,
    /// Do not deliver messages published on this connection (RabbitMQ ignores it).
    pub no_local: bool,
    /// The consumer tag; empty lets the broker choose one.
    pub consumer_tag: String,
    /// Consumer arguments (`x-priority`, ...).
    pub arguments: FieldTable,
}

/// The deliveries of one consumer, as a [`Stream`].
///
/// The stream ends (`None`) after [`Consumer::cancel`], when the channel or
/// connection is closed by the client, or after an `Err` saying why it ended otherwise:
/// [`Error::ConsumerCancelled`] when the broker cancelled it (its queue was deleted),
/// the close reason when the channel or connection closed under it. Deliveries that
/// arrived before the end are yielded first.
///
/// Dropping a consumer without cancelling it cancels it and rejects (requeues) the
/// deliveries still buffered for it.
pub struct Consumer {
    consumer_tag: ShortStr,
    channel: Channel,
    deliveries: mpsc::Receiver<Delivery>,
    end: Option<oneshot::Receiver<Error>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("consumer_tag", &self.consumer_tag)
            .field("channel", &self.channel.id())
            .finish()
    }
}

impl Consumer {
    pub(crate) fn new(
        consumer_tag: ShortStr,
        channel: Channel,
        deliveries: mpsc::Receiver<Delivery>,
        end: oneshot::Receiver<Error>,
    ) -> Self {
        Consumer {
            consumer_tag,
            channel,
            deliveries,
            end: Some(end),
        }
    }

    /// The consumer tag (the broker's choice if none was given).
    pub fn tag(&self) -> &str {
        &self.consumer_tag
    }

    /// The channel the consumer runs on.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Cancels the consumer (basic.cancel) and waits for cancel-ok. The stream then
    /// yields the deliveries that arrived before the cancel took effect, and ends.
    /// Cancelling a consumer that has already ended succeeds.
    pub async fn cancel(&self) -> Result<(), Error> {
        self.channel.basic_cancel(&self.consumer_tag).await
    }
}

impl Stream for Consumer {
    type Item = Result<Delivery, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.deliveries.poll_recv(cx) {
            Poll::Ready(Some(delivery)) => return Poll::Ready(Some(Ok(delivery))),
            Poll::Ready(None) => {}
            Poll::Pending => return Poll::Pending,
        }
        // Every delivery has been yielded; say why the consumer ended, once.
        let Some(end) = this.end.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(end).poll(cx) {
            Poll::Ready(outcome) => {
                this.end = None;
                Poll::Ready(outcome.ok().map(Err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if self.end.is_none() {
            return;
        }
        // Best effort, as Drop cannot wait: if the mailbox is full, the task cancels
        // the consumer when its next delivery finds the stream gone, and the broker
        // requeues unacknowledged deliveries when the channel closes. Cancel first, so
        // the broker does not deliver the rejected messages straight back here.
        self.channel.cancel_on_drop(&self.consumer_tag);
        self.deliveries.close();
        while let Ok(delivery) = self.deliveries.try_recv() {
            delivery.acker.reject_on_drop();
        }
    }
}
