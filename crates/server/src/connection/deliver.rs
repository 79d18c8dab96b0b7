//! Events from queues: deliveries to write, confirms to batch, consumers cancelled.

use warren_codec::{BasicAck, BasicCancel, BasicDeliver, BasicNack, Method, ShortStr};

use crate::channel::unacked::Pending;
use crate::connection::Connection;
use crate::connection::events::{Batch, Delivery, Event};
use crate::message::Message;
use crate::queue::{Command, QueueHandle, Settle};

/// Batches of events (one per queue wake-up) handled per wake-up before the socket is
/// written.
const EVENT_BATCH: usize = 256;

impl Connection {
    /// Handles a batch of events from one queue wake-up, in order; its delivery
    /// credit goes back to the queues after.
    pub(crate) async fn on_events(&mut self, batch: Batch) {
        // Handled without waiting, so no future is built per event; only messages
        // whose consumer went meanwhile wait, to go back to their queue.
        let mut returned = Vec::new();
        for event in batch.events {
            self.on_event(event, &mut returned);
        }
        for (queue, id) in returned {
            queue
                .send(Command::Settle {
                    ids: vec![id],
                    how: Settle::Requeue,
                })
                .await;
        }
    }

    fn on_event(&mut self, event: Event, returned: &mut Vec<(QueueHandle, u64)>) {
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
            Event::ConsumerCancelled {
                channel,
                consumer_tag,
            } => {
                let notify = self.client.consumer_cancel_notify && self.is_open();
                let Some(c) = self.channels.get_mut(&channel) else {
                    return;
                };
                if c.consumers.remove(&consumer_tag).is_some() && notify && !c.is_closing() {
                    self.out.method(
                        channel,
                        BasicCancel {
                            consumer_tag,
                            no_wait: true,
                        },
                    );
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
        let method = Method::BasicDeliver(BasicDeliver {
            consumer_tag,
            delivery_tag: channel.unacked.skip(),
            redelivered: false,
            exchange: message.exchange(),
            routing_key: message.routing_key(),
        });
        self.out
            .content_raw(ch, &method, message.properties(), message.body());
    }

    /// Writes a delivery; one whose consumer has gone is added to `returned`.
    fn deliver(&mut self, d: Delivery, returned: &mut Vec<(QueueHandle, u64)>) {
        let open = self.is_open();
        let live = self
            .channels
            .get_mut(&d.channel)
            .filter(|c| open && !c.is_closing() && c.consumers.contains_key(&d.consumer_tag));
        let Some(channel) = live else {
            // The consumer went while this was in flight: the message goes back.
            if !d.no_ack {
                if let Some(c) = self.channels.get(&d.channel) {
                    c.gate.release(1);
                }
                returned.push((d.queue, d.message_id));
            }
            return;
        };
        let delivery_tag = if d.no_ack {
            channel.unacked.skip()
        } else {
            channel.unacked.push(Pending {
                queue: d.queue,
                message_id: d.message_id,
                counted: true,
            })
        };
        let method = Method::BasicDeliver(BasicDeliver {
            consumer_tag: d.consumer_tag,
            delivery_tag,
            redelivered: d.redelivered,
            exchange: d.message.exchange(),
            routing_key: d.message.routing_key(),
        });
        self.out
            .content_raw(d.channel, &method, d.message.properties(), d.message.body());
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
