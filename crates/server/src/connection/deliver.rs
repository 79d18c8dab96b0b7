//! Events from queues: deliveries to write, confirms to batch, consumers cancelled.

use warren_codec::{BasicAck, BasicCancel, BasicNack, DeliverRef, ShortStr};

use crate::channel::unacked::Pending;
use crate::connection::Connection;
use crate::connection::events::{Batch, Delivery, Event};
use crate::message::Message;
use crate::queue::{Command, QueueHandle, Settle};

/// Batches of events (one per queue wake-up) handled per wake-up before the socket is
/// written.
const EVENT_BATCH: usize = 256;

/// Deliveries for consumers cancelled meanwhile, to go back to their queues, and the
/// channels whose prefetch window that reopened.
#[derive(Default)]
struct Returned {
    messages: Vec<(QueueHandle, u64)>,
    reopened: Vec<u16>,
}

impl Connection {
    /// Handles a batch of events from one queue wake-up, in order; its delivery
    /// credit goes back to the queues after.
    pub(crate) async fn on_events(&mut self, batch: Batch) {
        // Handled without waiting, so no future is built per event; only messages
        // for a consumer cancelled meanwhile wait, to go back to their queue.
        let mut returned = Returned::default();
        for event in batch.events {
            self.on_event(event, &mut returned);
        }
        for (queue, id) in returned.messages {
            queue
                .send(Command::Settle {
                    ids: vec![id],
                    how: Settle::Requeue,
                })
                .await;
        }
        // Their prefetch slots were freed: queues held back by a full channel-wide
        // window may deliver again.
        for ch in returned.reopened {
            if let Some(channel) = self.channels.get(&ch) {
                channel.resume_queues().await;
            }
        }
    }

    fn on_event(&mut self, event: Event, returned: &mut Returned) {
        match event {
            Event::Deliver(delivery) => self.deliver(delivery, returned),
            Event::DirectReply {
                channel,
                consumer_tag,
                message,
            } => self.deliver_reply(channel, consumer_tag, message),
            Event::Confirm { channel, seq, ack } => {
                if let Some(confirms) = self
                    .channels
                    .get_mut(&channel)
                    .and_then(|c| c.confirms.as_mut())
                {
                    confirms.on_queue_result(seq, ack);
                    self.confirms_dirty = true;
                }
            }
            Event::ConsumerCancelled { channel, consumer } => {
                let notify = self.client.consumer_cancel_notify && self.is_open();
                let Some(c) = self.channels.get_mut(&channel) else {
                    return;
                };
                let Some(tag) = c.consumers.get(consumer).map(|c| c.tag.clone()) else {
                    return;
                };
                c.consumers.forget(consumer);
                if notify && !c.is_closing() {
                    self.out.method(
                        channel,
                        BasicCancel {
                            consumer_tag: tag,
                            no_wait: true,
                        },
                    );
                }
            }
            Event::ConsumerGone { channel, consumer } => {
                if let Some(c) = self.channels.get_mut(&channel) {
                    c.consumers.forget(consumer);
                }
            }
        }
    }

    /// Handles the events already waiting, up to a batch.
    pub(crate) async fn drain_events(&mut self) {
        for _ in 0..EVENT_BATCH {
            match self.events.try_recv() {
                Ok(batch) => self.on_events(batch).await,
                Err(_) => break,
            }
        }
    }

    /// A direct reply: delivered if its consumer is still there, else dropped.
    fn deliver_reply(&mut self, ch: u16, consumer_tag: ShortStr, message: Message) {
        let open = self.is_open();
        let Some(channel) = self.channels.get_mut(&ch).filter(|c| {
            open && !c.is_closing()
                && c.reply_consumer
                    .as_ref()
                    .is_some_and(|r| r.tag == consumer_tag)
        }) else {
            return;
        };
        let deliver = DeliverRef {
            consumer_tag: &consumer_tag,
            delivery_tag: channel.unacked.skip(),
            redelivered: false,
            exchange: message.exchange_str(),
            routing_key: message.routing_key_str(),
        };
        self.out.deliver(ch, &deliver, &message);
    }

    /// Writes a delivery. One for a consumer the client cancelled is added to
    /// `returned`; one for a channel that is closing or gone is dropped, as its queue
    /// requeues whatever that channel held once it hears of the close.
    fn deliver(&mut self, d: Delivery, returned: &mut Returned) {
        let open = self.is_open();
        let Some(channel) = self
            .channels
            .get_mut(&d.channel)
            .filter(|c| open && !c.is_closing())
        else {
            return;
        };
        let Some(consumer) = channel.consumers.get(d.consumer) else {
            return;
        };
        if consumer.cancelled {
            if !d.no_ack {
                if channel.gate.release(1) && !returned.reopened.contains(&d.channel) {
                    returned.reopened.push(d.channel);
                }
                if let Some(queue) = channel.touched(consumer.queue) {
                    returned.messages.push((queue.clone(), d.message_id));
                }
            }
            return;
        }
        let delivery_tag = if d.no_ack {
            channel.unacked.skip()
        } else {
            channel.unacked.push(Pending {
                queue: consumer.queue,
                message_id: d.message_id,
                counted: true,
            })
        };
        let deliver = DeliverRef {
            consumer_tag: &consumer.tag,
            delivery_tag,
            redelivered: d.redelivered,
            exchange: d.message.exchange_str(),
            routing_key: d.message.routing_key_str(),
        };
        self.out.deliver(d.channel, &deliver, &d.message);
    }

    /// Writes the acks and nacks every confirm-mode channel has ready.
    pub(crate) fn flush_confirms(&mut self) {
        self.confirms_dirty = false;
        for (id, channel) in &mut self.channels {
            let Some(confirms) = channel.confirms.as_mut() else {
                continue;
            };
            for reply in confirms.drain() {
                if reply.ack {
                    self.out.method(
                        *id,
                        BasicAck {
                            delivery_tag: reply.seq,
                            multiple: reply.multiple,
                        },
                    );
                } else {
                    self.out.method(
                        *id,
                        BasicNack {
                            delivery_tag: reply.seq,
                            multiple: reply.multiple,
                            requeue: false,
                        },
                    );
                }
            }
        }
    }
}
