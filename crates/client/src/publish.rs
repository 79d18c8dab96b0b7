//! Publishing: options, publisher confirms, and returned messages.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};
use warren_codec::{BasicProperties, ShortStr};

use crate::channel::Channel;
use crate::error::Error;

/// Options for [`Channel::basic_publish`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// Return the message (basic.return, 312 NO_ROUTE) if no queue receives it.
    pub mandatory: bool,
}

/// How the broker settled a publish on a channel in confirm mode.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirmation {
    /// The broker took responsibility for the message (every queue it was routed to
    /// accepted it, or it was routed nowhere and was not mandatory).
    Ack,
    /// The broker could not take the message (an internal error, or a queue refused it,
    /// as with `x-overflow = reject-publish`).
    Nack,
    /// The message was mandatory, routed to no queue, and came back.
    Returned(Box<ReturnedMessage>),
    /// The channel is not in confirm mode: nothing to wait for.
    NotRequested,
}

impl Confirmation {
    /// True for [`Confirmation::Ack`].
    pub fn is_ack(&self) -> bool {
        matches!(self, Confirmation::Ack)
    }
}

/// A message the broker sent back with basic.return.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnedMessage {
    /// Why: 312 NO_ROUTE for an unroutable mandatory message.
    pub reply_code: u16,
    /// The reply text, `NO_ROUTE`.
    pub reply_text: ShortStr,
    /// The exchange it was published to.
    pub exchange: ShortStr,
    /// The routing key it was published with.
    pub routing_key: ShortStr,
    /// Its properties.
    pub properties: BasicProperties,
    /// Its body.
    pub body: Bytes,
}

/// The pending outcome of one publish: await it for the [`Confirmation`].
///
/// Awaiting is optional and can happen in any order: keep many in flight and await
/// them together. On a channel not in confirm mode it resolves at once to
/// [`Confirmation::NotRequested`]. It fails with the channel's close reason if the
/// channel closes before the broker confirms.
#[derive(Debug)]
pub struct PublisherConfirm {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Settled,
    Waiting {
        rx: oneshot::Receiver<Result<Confirmation, Error>>,
        channel: Channel,
    },
}

impl PublisherConfirm {
    pub(crate) fn not_requested() -> Self {
        PublisherConfirm {
            inner: Inner::Settled,
        }
    }

    pub(crate) fn waiting(
        rx: oneshot::Receiver<Result<Confirmation, Error>>,
        channel: Channel,
    ) -> Self {
        PublisherConfirm {
            inner: Inner::Waiting { rx, channel },
        }
    }
}

impl Future for PublisherConfirm {
    type Output = Result<Confirmation, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            Inner::Settled => Poll::Ready(Ok(Confirmation::NotRequested)),
            Inner::Waiting { rx, channel } => match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
                // The task always answers before dropping a waiter; this is its death.
                Poll::Ready(Err(_)) => Poll::Ready(Err(channel.closed_reason())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// The messages returned on a channel that were not matched to a confirm: every
/// return when the channel is not in confirm mode. From [`Channel::returns`].
///
/// It buffers a bounded number of returns (see [`RETURNS_BUFFER`]); while it is full,
/// or when nobody took it, further returns are dropped with a warning rather than
/// stalling the connection.
#[derive(Debug)]
pub struct Returns {
    pub(crate) rx: mpsc::Receiver<ReturnedMessage>,
}

/// Returns buffered per channel for [`Returns`].
pub const RETURNS_BUFFER: usize = 256;

impl Stream for Returns {
    type Item = ReturnedMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReturnedMessage>> {
        self.rx.poll_recv(cx)
    }
}
