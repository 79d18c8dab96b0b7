//! Frames from the broker for one channel: replies to pending calls, deliveries,
//! returns, confirms, and the broker's own channel.close and basic.cancel.

use warren_codec::{
    BasicCancel, BasicCancelOk, BasicReject, ChannelClose, ChannelCloseOk, ChannelFlowOk, Frame,
    Method,
};

use super::Channel;
use super::assembler::Content;
use super::pending::Pending;
use super::state::{ChannelState, Incoming, Phase, Stall};
use crate::connection::command::ConsumerParts;
use crate::delivery::{Acker, Delivery};
use crate::error::Error;
use crate::outbound::Out;
use crate::publish::{Confirmation, ReturnedMessage};
use crate::violation::Violation;

impl ChannelState {
    /// Handles a frame for this channel. A `Stall` means a consumer's buffer is full
    /// and the connection must stop reading until it has room.
    pub(crate) fn frame(
        &mut self,
        frame: Frame,
        out: &mut Out<'_>,
    ) -> Result<Option<Stall>, Violation> {
        if let Phase::Closed { awaiting_close_ok } = &mut self.phase {
            // After close-ok to the broker's close, only the close-ok answering our
            // own crossing close matters; the rest was sent before the broker closed.
            if let Frame::Method {
                method: Method::ChannelCloseOk(_),
                ..
            } = frame
            {
                *awaiting_close_ok = false;
            }
            return Ok(None);
        }
        let content = match frame {
            Frame::Method { method, .. } => return self.method(method, out),
            Frame::Header { header, .. } => self.assembler.header(header)?,
            Frame::Body { body, .. } => self.assembler.body(body)?,
            Frame::Heartbeat => None,
        };
        Ok(content.and_then(|content| self.complete(content, out)))
    }

    fn method(&mut self, method: Method, out: &mut Out<'_>) -> Result<Option<Stall>, Violation> {
        if !self.assembler.is_idle() {
            return Err(Violation::unexpected(format!(
                "{} while content is expected",
                method.name()
            )));
        }
        let id = self.key.id;
        match method {
            Method::ChannelClose(close) => self.handle_channel_close(close, out),
            Method::BasicDeliver(m) => self.assembler.start(Incoming::Deliver(m))?,
            Method::BasicReturn(m) => self.assembler.start(Incoming::Return(m))?,
            Method::BasicAck(m) => self.settle(m.delivery_tag, m.multiple, true),
            Method::BasicNack(m) => self.settle(m.delivery_tag, m.multiple, false),
            Method::BasicCancel(m) => self.handle_basic_cancel(m, out),
            // RabbitMQ no longer sends channel.flow; it is answered, and publishing
            // goes on (TCP backpressure does the pausing).
            Method::ChannelFlow(m) => out.method(id, ChannelFlowOk { active: m.active }),
            reply => self.reply(reply, out)?,
        }
        Ok(None)
    }

    /// Answers the call at the front of the queue.
    fn reply(&mut self, method: Method, out: &mut Out<'_>) -> Result<(), Violation> {
        let Some(front) = self.pending.front() else {
            return Err(Violation::command_invalid(format!(
                "{} with no request awaiting it",
                method.name()
            )));
        };
        if !front.expects(&method) {
            return Err(Violation::command_invalid(format!(
                "{} while awaiting {}",
                method.name(),
                front.awaiting()
            )));
        }
        let Some(pending) = self.pending.pop_front() else {
            return Ok(());
        };
        match pending {
            Pending::Open { handle, reply } => {
                self.phase = Phase::Open;
                if reply.send(Ok(Channel::new(handle))).is_err() {
                    // The caller gave up waiting: nobody holds the channel, close it.
                    self.close(None, out);
                }
            }
            Pending::Call { reply, .. } => {
                let _ = reply.send(Ok(method));
            }
            Pending::Consume {
                mut sink,
                deliveries,
                end,
                reply,
            } => {
                if let Method::BasicConsumeOk(ok) = method {
                    sink.method.consumer_tag = ok.consumer_tag.clone();
                    self.consumers.insert(ok.consumer_tag.clone(), sink);
                    // If the caller is gone, the first delivery finds the stream
                    // dropped and cancels the consumer.
                    let _ = reply.send(Ok(ConsumerParts {
                        consumer_tag: ok.consumer_tag,
                        deliveries,
                        end,
                    }));
                }
            }
            Pending::Cancel {
                consumer_tag,
                reply,
            } => {
                // Dropping the sink ends the stream cleanly after its buffered deliveries.
                self.consumers.remove(&consumer_tag);
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
            }
            Pending::Get { no_ack, reply } => match method {
                Method::BasicGetOk(method) => self.assembler.start(Incoming::GetOk {
                    method,
                    no_ack,
                    reply,
                })?,
                _ => {
                    let _ = reply.send(Ok(None));
                }
            },
            Pending::Close { reply } => {
                self.finish(Error::closed_by_client(false), true);
                let _ = reply.send(Ok(()));
            }
            Pending::Replayed { .. } => {}
        }
        Ok(())
    }

    fn handle_channel_close(&mut self, close: ChannelClose, out: &mut Out<'_>) {
        out.method(self.key.id, ChannelCloseOk {});
        let crossing = self
            .pending
            .iter()
            .any(|p| matches!(p, Pending::Close { .. }));
        tracing::debug!(
            channel = self.key.id,
            code = close.reply_code,
            text = %close.reply_text,
            "channel closed by the broker"
        );
        self.finish(
            Error::ChannelClosed {
                code: close.reply_code,
                text: close.reply_text.to_string(),
                class_id: close.class_id,
                method_id: close.method_id,
            },
            false,
        );
        self.phase = Phase::Closed {
            awaiting_close_ok: crossing,
        };
    }

    /// The broker cancelled a consumer (its queue was deleted).
    fn handle_basic_cancel(&mut self, cancel: BasicCancel, out: &mut Out<'_>) {
        if let Some(sink) = self.consumers.remove(&cancel.consumer_tag) {
            let _ = sink.end.send(Error::ConsumerCancelled {
                consumer_tag: cancel.consumer_tag.to_string(),
            });
        }
        if !cancel.no_wait {
            out.method(
                self.key.id,
                BasicCancelOk {
                    consumer_tag: cancel.consumer_tag,
                },
            );
        }
    }

    /// basic.ack or basic.nack from the broker: settles publishes.
    fn settle(&mut self, tag: u64, multiple: bool, ack: bool) {
        let Some(tracker) = &mut self.confirms else {
            tracing::debug!(
                channel = self.key.id,
                tag,
                "confirm outside confirm mode ignored"
            );
            return;
        };
        for outstanding in tracker.settle(tag, multiple) {
            let Some(waiter) = outstanding.waiter else {
                continue;
            };
            let outcome = match (outstanding.returned, ack) {
                (Some(message), _) => Confirmation::Returned(message),
                (None, true) => Confirmation::Ack,
                (None, false) => Confirmation::Nack,
            };
            let _ = waiter.send(Ok(outcome));
        }
    }

    /// Content is complete: deliver it, answer a get, or report a return.
    fn complete(&mut self, content: Content<Incoming>, out: &mut Out<'_>) -> Option<Stall> {
        let Content {
            start,
            properties,
            body,
        } = content;
        match start {
            Incoming::Deliver(m) => {
                let no_ack = self
                    .consumers
                    .get(&m.consumer_tag)
                    .is_some_and(|sink| sink.no_ack);
                let delivery_tag = self.app_tag(m.delivery_tag);
                let Some(acker) = self.acker(delivery_tag, no_ack) else {
                    // Every handle is gone, so the consumer's stream is too.
                    self.consumer_gone(&m.consumer_tag, delivery_tag, out);
                    return None;
                };
                let delivery = Delivery {
                    delivery_tag,
                    redelivered: m.redelivered,
                    exchange: m.exchange,
                    routing_key: m.routing_key,
                    properties,
                    body,
                    acker,
                };
                return self.deliver(delivery, m.consumer_tag, out);
            }
            Incoming::GetOk {
                method,
                no_ack,
                reply,
            } => {
                let delivery_tag = self.app_tag(method.delivery_tag);
                let delivery = self.acker(delivery_tag, no_ack).map(|acker| Delivery {
                    delivery_tag,
                    redelivered: method.redelivered,
                    exchange: method.exchange,
                    routing_key: method.routing_key,
                    properties,
                    body,
                    acker,
                });
                let unread = match delivery {
                    Some(delivery) => reply.send(Ok(Some(delivery))).is_err(),
                    None => true,
                };
                if unread && !no_ack {
                    // The caller stopped waiting: give the message back.
                    out.method(
                        self.key.id,
                        BasicReject {
                            delivery_tag: method.delivery_tag,
                            requeue: true,
                        },
                    );
                }
            }
            Incoming::Return(m) => self.returned(Box::new(ReturnedMessage {
                reply_code: m.reply_code,
                reply_text: m.reply_text,
                exchange: m.exchange,
                routing_key: m.routing_key,
                properties,
                body,
            })),
        }
        None
    }

    fn acker(&self, delivery_tag: u64, no_ack: bool) -> Option<Acker> {
        let handle = self.handle.upgrade()?;
        Some(Acker::new(Channel::new(handle), delivery_tag, no_ack))
    }

    fn returned(&mut self, message: Box<ReturnedMessage>) {
        let unmatched = match &mut self.confirms {
            Some(tracker) => tracker.attach_return(message).err(),
            None => Some(message),
        };
        if let Some(message) = unmatched
            && self.returns.try_send(*message).is_err()
        {
            if self.returns_overflowed {
                tracing::debug!(channel = self.key.id, "returned message dropped");
            } else {
                self.returns_overflowed = true;
                tracing::warn!(
                    channel = self.key.id,
                    "returned message dropped: the channel's returns stream is full or \
                     was dropped (further drops are logged at debug)"
                );
            }
        }
    }
}
