//! The connection task's state for one channel, and the commands it carries out.
//!
//! Lifecycle: `Opening` (channel.open sent) → `Open` (open-ok) → `Closing` (the
//! client sent channel.close) → `Closed`. A close from the broker goes straight to
//! `Closed` after close-ok is written; if the client's own channel.close crossed it,
//! the channel stays in the table until the broker's close-ok for it arrives, so that
//! close-ok cannot reach the next channel given the same number.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use tokio::sync::mpsc::OwnedPermit;
use tokio::sync::mpsc::error::SendError;
use tokio::sync::{mpsc, oneshot, watch};
use warren_codec::{
    BasicCancel, BasicConsume, BasicConsumeOk, BasicDeliver, BasicGetOk, BasicQos, BasicQosOk,
    BasicReject, BasicReturn, ChannelClose, ChannelOpen, ChannelOpenOk, ConfirmSelect,
    ConfirmSelectOk, ContentHeader, Method, ShortStr,
};

use super::assembler::Assembler;
use super::pending::Pending;
use super::{Channel, ChannelShared};
use crate::confirms::ConfirmTracker;
use crate::connection::command::{ChannelCommand, ChannelKey, MethodId, Publish, Reply};
use crate::consumer::CONSUMER_BUFFER;
use crate::delivery::Delivery;
use crate::error::Error;
use crate::outbound::Out;
use crate::publish::{Confirmation, ReturnedMessage};
use crate::status::ChannelStatus;

/// Where the channel is in its life.
pub(crate) enum Phase {
    Opening,
    Open,
    Closing,
    Closed { awaiting_close_ok: bool },
}

/// The task's end of one consumer.
pub(crate) struct ConsumerSink {
    pub(crate) deliveries: mpsc::Sender<Delivery>,
    /// Told why the consumer ended, unless it ended cleanly (dropped unsent).
    pub(crate) end: oneshot::Sender<Error>,
    pub(crate) no_ack: bool,
    /// A basic.cancel for it is in flight.
    pub(crate) cancelling: bool,
    /// The basic.consume that started it, with the tag it got: what a recovery sends.
    pub(crate) method: BasicConsume,
    /// The per-consumer prefetch in force when it started, restored with it.
    pub(crate) prefetch: u16,
}

/// The method that started content being assembled, with what completing it needs.
pub(crate) enum Incoming {
    Deliver(BasicDeliver),
    GetOk {
        method: BasicGetOk,
        no_ack: bool,
        reply: Reply<Option<Delivery>>,
    },
    Return(BasicReturn),
}

/// Resolves when a full consumer buffer has room (or the consumer is gone).
type PermitFuture =
    Pin<Box<dyn Future<Output = Result<OwnedPermit<Delivery>, SendError<()>>> + Send>>;

/// A delivery waiting for room in its consumer's full buffer. While one exists the
/// connection task reads nothing from the socket (see the `consumer` module).
pub(crate) struct Stall {
    pub(crate) key: ChannelKey,
    pub(crate) consumer_tag: ShortStr,
    pub(crate) no_ack: bool,
    pub(crate) delivery: Delivery,
    permit: PermitFuture,
}

impl Stall {
    /// Waits for room in the consumer's buffer; fails if the consumer was dropped.
    pub(crate) async fn ready(&mut self) -> Result<OwnedPermit<Delivery>, SendError<()>> {
        (&mut self.permit).await
    }
}

/// Confirm waiters: `None` for a publish sent while the handle believed confirms off.
type Waiter = Option<Reply<Confirmation>>;

/// Everything the connection task knows about one channel.
pub(crate) struct ChannelState {
    pub(crate) key: ChannelKey,
    pub(crate) phase: Phase,
    pub(crate) pending: VecDeque<Pending>,
    pub(crate) assembler: Assembler<Incoming>,
    pub(crate) consumers: HashMap<ShortStr, ConsumerSink>,
    pub(crate) confirms: Option<ConfirmTracker<Waiter>>,
    /// The last basic.qos prefetch count sent, which sizes new consumers' buffers.
    pub(crate) prefetch: u16,
    /// The last per-consumer (non-global) prefetch count sent.
    pub(crate) consumer_prefetch: u16,
    /// The last global prefetch count sent, if any.
    pub(crate) global_prefetch: Option<u16>,
    /// tx.select was sent: a recovery cannot restore the uncommitted work.
    pub(crate) transactional: bool,
    /// Delivery tags from the broker plus this are the tags the application sees: after
    /// a recovery the broker counts from 1 again, and the tags handed out before the
    /// loss (at most this) must not acknowledge the new deliveries.
    pub(crate) tag_offset: u64,
    /// The highest delivery tag handed out.
    pub(crate) last_tag: u64,
    pub(crate) returns: mpsc::Sender<ReturnedMessage>,
    /// A dropped return was logged at warn; later ones go to debug (no warn per message).
    pub(crate) returns_overflowed: bool,
    pub(crate) status: watch::Sender<ChannelStatus>,
    /// Weak, so that the table does not keep the mailbox open once every handle is gone.
    pub(crate) handle: Weak<ChannelShared>,
}

impl ChannelState {
    /// A channel whose channel.open has just been written.
    pub(crate) fn opening(
        key: ChannelKey,
        status: watch::Sender<ChannelStatus>,
        returns: mpsc::Sender<ReturnedMessage>,
        handle: Arc<ChannelShared>,
        reply: Reply<Channel>,
    ) -> Self {
        let weak = Arc::downgrade(&handle);
        ChannelState {
            key,
            phase: Phase::Opening,
            pending: VecDeque::from([Pending::Open { handle, reply }]),
            assembler: Assembler::Idle,
            consumers: HashMap::new(),
            confirms: None,
            prefetch: 0,
            consumer_prefetch: 0,
            global_prefetch: None,
            transactional: false,
            tag_offset: 0,
            last_tag: 0,
            returns,
            returns_overflowed: false,
            status,
            handle: weak,
        }
    }

    /// True once the channel can leave the table and its number be reused.
    pub(crate) fn is_finished(&self) -> bool {
        matches!(
            self.phase,
            Phase::Closed {
                awaiting_close_ok: false
            }
        )
    }

    /// Carries out a command from a handle.
    pub(crate) fn command(&mut self, command: ChannelCommand, out: &mut Out<'_>) {
        if !matches!(self.phase, Phase::Open) {
            let reason = self
                .status
                .borrow()
                .closed
                .clone()
                .unwrap_or(Error::ChannelNotOpen);
            return command.fail(reason);
        }
        let id = self.key.id;
        match command {
            ChannelCommand::Call {
                method,
                expect,
                reply,
            } => {
                match &method {
                    Method::BasicQos(qos) => {
                        self.prefetch = qos.prefetch_count;
                        if qos.global {
                            self.global_prefetch = Some(qos.prefetch_count);
                        } else {
                            self.consumer_prefetch = qos.prefetch_count;
                        }
                    }
                    Method::TxSelect(_) => self.transactional = true,
                    _ => {}
                }
                out.method(id, method);
                self.pending.push_back(Pending::Call { expect, reply });
            }
            ChannelCommand::Send { method } => {
                if let Some(method) = self.to_wire(method) {
                    out.method(id, method);
                }
            }
            ChannelCommand::Publish(publish) => self.publish(*publish, out),
            ChannelCommand::Consume { method, reply } => {
                // Sized by prefetch: a broker honouring it never overfills the buffer.
                let capacity = match (method.no_ack, self.prefetch) {
                    (false, prefetch) if prefetch > 0 => usize::from(prefetch),
                    _ => CONSUMER_BUFFER,
                };
                let (tx, deliveries) = mpsc::channel(capacity);
                let (end_tx, end) = oneshot::channel();
                let sink = ConsumerSink {
                    deliveries: tx,
                    end: end_tx,
                    no_ack: method.no_ack,
                    cancelling: false,
                    method: method.clone(),
                    prefetch: self.consumer_prefetch,
                };
                out.method(id, method);
                self.pending.push_back(Pending::Consume {
                    sink,
                    deliveries,
                    end,
                    reply,
                });
            }
            ChannelCommand::Cancel {
                consumer_tag,
                reply,
            } => self.cancel(consumer_tag, reply, out),
            ChannelCommand::Get { method, reply } => {
                let no_ack = method.no_ack;
                out.method(id, method);
                self.pending.push_back(Pending::Get { no_ack, reply });
            }
            ChannelCommand::ConfirmSelect { reply } => {
                // Publishes are numbered from the moment confirm.select is written,
                // which is when the broker starts counting them.
                if self.confirms.is_none() {
                    self.confirms = Some(ConfirmTracker::default());
                    self.status.send_modify(|s| s.confirms = true);
                }
                out.method(id, ConfirmSelect { nowait: false });
                self.pending.push_back(Pending::Call {
                    expect: (ConfirmSelectOk::CLASS_ID, ConfirmSelectOk::METHOD_ID),
                    reply,
                });
            }
            ChannelCommand::Close { reply } => self.close(Some(reply), out),
        }
    }

    /// Sends channel.close 200; `reply` is told at close-ok.
    pub(crate) fn close(&mut self, reply: Option<Reply<()>>, out: &mut Out<'_>) {
        self.phase = Phase::Closing;
        self.status.send_modify(|s| {
            s.closed
                .get_or_insert_with(|| Error::closed_by_client(false));
        });
        out.method(
            self.key.id,
            ChannelClose {
                reply_code: 200,
                reply_text: "Goodbye".into(),
                class_id: 0,
                method_id: 0,
            },
        );
        let reply = reply.unwrap_or_else(|| oneshot::channel().0);
        self.pending.push_back(Pending::Close { reply });
    }

    fn publish(&mut self, publish: Publish, out: &mut Out<'_>) {
        let Publish {
            method,
            properties,
            body,
            confirm,
        } = publish;
        match &mut self.confirms {
            Some(tracker) => {
                let route = method
                    .mandatory
                    .then(|| (method.exchange.clone(), method.routing_key.clone()));
                tracker.register(confirm, route);
            }
            None => {
                if let Some(confirm) = confirm {
                    let _ = confirm.send(Ok(Confirmation::NotRequested));
                }
            }
        }
        let header = ContentHeader::new(body.len() as u64, properties);
        out.content(self.key.id, &Method::BasicPublish(method), &header, &body);
    }

    fn cancel(&mut self, consumer_tag: ShortStr, reply: Option<Reply<()>>, out: &mut Out<'_>) {
        let Some(sink) = self.consumers.get_mut(&consumer_tag) else {
            // Already ended: cancelled by the broker, or by an earlier cancel-ok.
            if let Some(reply) = reply {
                let _ = reply.send(Ok(()));
            }
            return;
        };
        if sink.cancelling {
            // A basic.cancel is in flight; its cancel-ok answers this call too, or,
            // if someone already waits on it, this caller is told now.
            let Some(reply) = reply else { return };
            let slot = self.pending.iter_mut().find_map(|p| match p {
                Pending::Cancel {
                    consumer_tag: tag,
                    reply: slot,
                } if *tag == consumer_tag && slot.is_none() => Some(slot),
                _ => None,
            });
            match slot {
                Some(slot) => *slot = Some(reply),
                None => {
                    let _ = reply.send(Ok(()));
                }
            }
            return;
        }
        sink.cancelling = true;
        out.method(
            self.key.id,
            BasicCancel {
                consumer_tag: consumer_tag.clone(),
                no_wait: false,
            },
        );
        self.pending.push_back(Pending::Cancel {
            consumer_tag,
            reply,
        });
    }

    /// Nobody will read this consumer's deliveries any more: hands the delivery back to
    /// the broker and cancels the consumer.
    pub(crate) fn consumer_gone(
        &mut self,
        consumer_tag: &ShortStr,
        delivery_tag: u64,
        out: &mut Out<'_>,
    ) {
        if !matches!(self.phase, Phase::Open) {
            return;
        }
        let wire_tag = self.wire_tag(delivery_tag);
        let Some(sink) = self.consumers.get_mut(consumer_tag) else {
            return;
        };
        if !sink.no_ack
            && let Some(delivery_tag) = wire_tag
        {
            out.method(
                self.key.id,
                BasicReject {
                    delivery_tag,
                    requeue: true,
                },
            );
        }
        if !sink.cancelling {
            sink.cancelling = true;
            out.method(
                self.key.id,
                BasicCancel {
                    consumer_tag: consumer_tag.clone(),
                    no_wait: false,
                },
            );
            self.pending.push_back(Pending::Cancel {
                consumer_tag: consumer_tag.clone(),
                reply: None,
            });
        }
    }

    /// Gives up a stalled delivery without handing it to its consumer (the consumer is
    /// being cancelled or the channel closed): the broker gets it back to requeue.
    pub(crate) fn release_stall(&mut self, stall: Stall, out: &mut Out<'_>) {
        if !stall.no_ack
            && matches!(self.phase, Phase::Open)
            && let Some(delivery_tag) = self.wire_tag(stall.delivery.delivery_tag)
        {
            out.method(
                self.key.id,
                BasicReject {
                    delivery_tag,
                    requeue: true,
                },
            );
        }
    }

    /// A stall whose consumer has room again, or is gone.
    pub(crate) fn resume_stall(
        &mut self,
        stall: Stall,
        permit: Result<OwnedPermit<Delivery>, SendError<()>>,
        out: &mut Out<'_>,
    ) {
        match permit {
            Ok(permit) => {
                permit.send(stall.delivery);
            }
            Err(_) => self.consumer_gone(&stall.consumer_tag, stall.delivery.delivery_tag, out),
        }
    }

    /// Hands a delivery to its consumer; returns a stall if the consumer's buffer is full.
    pub(crate) fn deliver(
        &mut self,
        delivery: Delivery,
        consumer_tag: ShortStr,
        out: &mut Out<'_>,
    ) -> Option<Stall> {
        let Some(sink) = self.consumers.get_mut(&consumer_tag) else {
            // RabbitMQ clients drop deliveries for consumers they do not know; the
            // broker requeues them when the channel closes.
            tracing::warn!(channel = self.key.id, %consumer_tag, "delivery for an unknown consumer dropped");
            return None;
        };
        match sink.deliveries.try_send(delivery) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(delivery)) => {
                tracing::debug!(channel = self.key.id, %consumer_tag, "consumer buffer full; reading paused");
                Some(Stall {
                    key: self.key,
                    permit: Box::pin(sink.deliveries.clone().reserve_owned()),
                    no_ack: sink.no_ack,
                    consumer_tag,
                    delivery,
                })
            }
            Err(mpsc::error::TrySendError::Closed(delivery)) => {
                self.consumer_gone(&consumer_tag, delivery.delivery_tag, out);
                None
            }
        }
    }

    /// The broker's delivery tag for one the application holds; `None` for a tag from
    /// before a recovery, which the broker has requeued already. Tag 0 (with
    /// `multiple`: every unacknowledged delivery) stays 0.
    pub(crate) fn wire_tag(&self, tag: u64) -> Option<u64> {
        if tag == 0 {
            return Some(0);
        }
        tag.checked_sub(self.tag_offset).filter(|&t| t > 0)
    }

    /// The tag the application sees for a delivery the broker numbered `wire_tag`.
    pub(crate) fn app_tag(&mut self, wire_tag: u64) -> u64 {
        let tag = wire_tag.saturating_add(self.tag_offset);
        self.last_tag = self.last_tag.max(tag);
        tag
    }

    /// An acknowledgement with its tag as the broker knows it; `None` when it settles
    /// a delivery from before a recovery (nothing to send).
    fn to_wire(&self, method: Method) -> Option<Method> {
        Some(match method {
            Method::BasicAck(mut m) => {
                m.delivery_tag = self.wire_tag(m.delivery_tag)?;
                m.into()
            }
            Method::BasicNack(mut m) => {
                m.delivery_tag = self.wire_tag(m.delivery_tag)?;
                m.into()
            }
            Method::BasicReject(mut m) => {
                m.delivery_tag = self.wire_tag(m.delivery_tag)?;
                m.into()
            }
            other => other,
        })
    }

    /// The connection was lost and is about to be recovered. Whatever was in flight
    /// fails with `reason`: calls awaiting answers, unconfirmed publishes, a message
    /// being received. The consumers stay, to be restarted by [`ChannelState::reopen`].
    /// Returns false when the channel cannot be recovered and has been finished: it was
    /// not open, or it is in transaction mode (its uncommitted work is gone).
    pub(crate) fn lost(&mut self, reason: &Error) -> bool {
        match self.phase {
            Phase::Open if !self.transactional => {}
            Phase::Closing => {
                // Closed, as the client asked.
                self.finish(Error::closed_by_client(false), true);
                return false;
            }
            _ => {
                self.finish(reason.clone(), false);
                return false;
            }
        }
        for pending in std::mem::take(&mut self.pending) {
            if let Pending::Cancel { consumer_tag, .. } = &pending {
                // Cancelled either way: the broker forgot it with the connection.
                self.consumers.remove(consumer_tag);
            }
            pending.fail(reason);
        }
        if let Some(Incoming::GetOk { reply, .. }) = self.assembler.abandon() {
            let _ = reply.send(Err(reason.clone()));
        }
        if let Some(tracker) = &mut self.confirms {
            for outstanding in tracker.drain() {
                if let Some(waiter) = outstanding.waiter {
                    let _ = waiter.send(Err(reason.clone()));
                }
            }
            // confirm.select is sent again first thing, and the broker counts from 1.
            *tracker = ConfirmTracker::default();
        }
        self.tag_offset = self.last_tag;
        true
    }

    /// Opens the channel again on a recovered connection, in the state it had:
    /// channel.open, confirm.select, the global prefetch, then each consumer with its
    /// own prefetch (a server-named queue under its new name). All of it is pipelined
    /// ahead of whatever the application sends next; a refusal closes the channel as
    /// any broker close does, ending its consumers with the reason.
    pub(crate) fn reopen(&mut self, renames: &HashMap<ShortStr, ShortStr>, out: &mut Out<'_>) {
        let id = self.key.id;
        let mut replay = |method: Method, pending: &mut VecDeque<Pending>| {
            let expect = answer_to(&method);
            out.method(id, method);
            pending.push_back(Pending::Replayed { expect });
        };
        replay(ChannelOpen::default().into(), &mut self.pending);
        if self.confirms.is_some() {
            replay(ConfirmSelect { nowait: false }.into(), &mut self.pending);
        }
        if let Some(count) = self.global_prefetch {
            replay(qos(count, true), &mut self.pending);
        }
        let mut prefetch = 0;
        for sink in self.consumers.values_mut() {
            if let Some(new) = renames.get(&sink.method.queue) {
                sink.method.queue = new.clone();
            }
            if sink.prefetch != prefetch {
                prefetch = sink.prefetch;
                replay(qos(prefetch, false), &mut self.pending);
            }
            replay(sink.method.clone().into(), &mut self.pending);
        }
        if prefetch != self.consumer_prefetch {
            replay(qos(self.consumer_prefetch, false), &mut self.pending);
        }
    }

    /// Ends the channel: every waiting call fails with `reason`, consumers end (with
    /// `reason`, unless `clean`), unconfirmed publishes fail, and the handles see it
    /// closed.
    pub(crate) fn finish(&mut self, reason: Error, clean: bool) {
        if matches!(self.phase, Phase::Closed { .. }) {
            return;
        }
        self.phase = Phase::Closed {
            awaiting_close_ok: false,
        };
        // Status first: a caller woken by the failures below already sees it closed.
        self.status.send_modify(|s| {
            s.closed.get_or_insert_with(|| reason.clone());
        });
        for pending in self.pending.drain(..) {
            pending.fail(&reason);
        }
        if let Some(Incoming::GetOk { reply, .. }) = self.assembler.abandon() {
            let _ = reply.send(Err(reason.clone()));
        }
        for (_, sink) in self.consumers.drain() {
            if !clean {
                let _ = sink.end.send(reason.clone());
            }
        }
        if let Some(tracker) = &mut self.confirms {
            for outstanding in tracker.drain() {
                if let Some(waiter) = outstanding.waiter {
                    let _ = waiter.send(Err(reason.clone()));
                }
            }
        }
    }
}

fn qos(prefetch_count: u16, global: bool) -> Method {
    BasicQos {
        prefetch_size: 0,
        prefetch_count,
        global,
    }
    .into()
}

/// The answer to a method [`ChannelState::reopen`] replays.
fn answer_to(method: &Method) -> MethodId {
    match method {
        Method::ChannelOpen(_) => (ChannelOpenOk::CLASS_ID, ChannelOpenOk::METHOD_ID),
        Method::ConfirmSelect(_) => (ConfirmSelectOk::CLASS_ID, ConfirmSelectOk::METHOD_ID),
        Method::BasicConsume(_) => (BasicConsumeOk::CLASS_ID, BasicConsumeOk::METHOD_ID),
        _ => (BasicQosOk::CLASS_ID, BasicQosOk::METHOD_ID),
    }
}
