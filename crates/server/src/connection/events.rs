//! What queues send to a connection: deliveries and publisher confirms.
//!
//! Queues never wait on a connection (that could deadlock against a connection waiting
//! on a full queue mailbox), so the mailbox is unbounded and deliveries are bounded
//! another way: each takes a permit from the connection's delivery semaphore, and a
//! batch carries its deliveries' permits as one, given back once the batch is encoded.
//! A queue without a permit parks that consumer and waits for one in its own loop;
//! credit coming back a batch at a time wakes it once per batch, not per message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use warren_codec::ShortStr;

use crate::message::Message;
use crate::queue::ConsumerId;

/// Deliveries a connection may have in its mailbox, not yet encoded, across all queues.
const DELIVERY_CREDIT: usize = 512;

/// Identifies a connection for the life of the broker.
pub(crate) type ConnectionId = u64;

/// The "connection" the operator acts as (the file's declared topology, the
/// management API's operations): never a client's, which are numbered from 1.
pub(crate) const OPERATOR: ConnectionId = 0;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How queues reach a connection. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ConnectionHandle {
    pub(crate) id: ConnectionId,
    events: mpsc::UnboundedSender<Batch>,
    credit: Arc<Semaphore>,
}

/// Events from one queue wake-up, to be handled in order.
#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) events: Vec<Event>,
    /// The delivery permits of the batch's deliveries.
    pub(crate) credit: Option<OwnedSemaphorePermit>,
}

impl Batch {
    /// Adds an event; a delivery's permit joins the batch's credit.
    pub(crate) fn push(&mut self, event: Event, permit: Option<OwnedSemaphorePermit>) {
        self.events.push(event);
        match (&mut self.credit, permit) {
            (Some(credit), Some(permit)) => credit.merge(permit),
            (credit @ None, permit) => *credit = permit,
            (Some(_), None) => {}
        }
    }
}

impl ConnectionHandle {
    /// A new connection's handle, and where its events arrive: in batches, one per
    /// queue wake-up. (Batches keep the channel's slots small: tokio allocates a block
    /// of 32 slots per channel up front, and an idle connection should cost little.)
    pub(crate) fn new() -> (ConnectionHandle, mpsc::UnboundedReceiver<Batch>) {
        let (events, rx) = mpsc::unbounded_channel();
        let handle = ConnectionHandle {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            events,
            credit: Arc::new(Semaphore::new(DELIVERY_CREDIT)),
        };
        (handle, rx)
    }

    /// A delivery permit if one is free right now.
    pub(crate) fn try_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.credit.clone().try_acquire_owned().ok()
    }

    /// Waits for a delivery permit; None once the connection is gone.
    pub(crate) async fn permit(self) -> (ConnectionId, Option<OwnedSemaphorePermit>) {
        (self.id, self.credit.acquire_owned().await.ok())
    }

    /// Sends an event; false when the connection has gone.
    pub(crate) fn send(&self, event: Event) -> bool {
        self.send_all(vec![event])
    }

    /// Sends events to be handled in order; false when the connection has gone.
    pub(crate) fn send_all(&self, events: Vec<Event>) -> bool {
        self.send_batch(Batch {
            events,
            credit: None,
        })
    }

    /// Sends a batch; false when the connection has gone.
    pub(crate) fn send_batch(&self, batch: Batch) -> bool {
        self.events.send(batch).is_ok()
    }

    /// Closes the semaphore so queues stop waiting on a finished connection.
    pub(crate) fn close(&self) {
        self.credit.close();
    }
}

/// A message for a consumer.
pub(crate) struct Delivery {
    pub(crate) channel: u16,
    pub(crate) consumer: ConsumerId,
    /// The queue's id for the message, echoed back in acks.
    pub(crate) message_id: u64,
    pub(crate) message: Message,
    pub(crate) redelivered: bool,
    pub(crate) no_ack: bool,
}

/// Something a queue tells a connection.
pub(crate) enum Event {
    /// Deliver a message.
    Deliver(Delivery),
    /// A queue has taken (`ack`) or refused a published message.
    Confirm { channel: u16, seq: u64, ack: bool },
    /// The queue of a consumer was deleted: send basic.cancel if the client wants it.
    ConsumerCancelled { channel: u16, consumer: ConsumerId },
    /// The queue has sent everything it will for a consumer the client cancelled.
    ConsumerGone { channel: u16, consumer: ConsumerId },
    /// A reply for the channel's direct reply-to consumer (no-ack, no queue).
    DirectReply {
        channel: u16,
        consumer_tag: ShortStr,
        message: crate::message::Message,
    },
}
