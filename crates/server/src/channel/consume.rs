//! basic.qos, basic.consume, basic.cancel, basic.get, basic.recover.

use warren_codec::{
    BasicCancel, BasicCancelOk, BasicConsume, BasicConsumeOk, BasicGet, BasicGetEmpty, BasicGetOk,
    BasicQos, BasicQosOk, BasicRecoverOk, Method,
};

use crate::channel::unacked::Pending;
use crate::connection::Connection;
use crate::direct_reply::REPLY_TO;
use crate::error::{ChannelError, ConnectionError, Error};
use crate::names;
use crate::queue::{Command, ConsumerSpec, Settle, expected_integer, new_consumer_id};

impl Connection {
    pub(crate) async fn handle_basic_qos(&mut self, ch: u16, m: BasicQos) -> Result<(), Error> {
        if m.prefetch_size != 0 {
            return Err(ConnectionError::not_implemented(format!(
                "prefetch_size!=0 ({})",
                m.prefetch_size
            ))
            .into());
        }
        let channel = self.channel(ch)?;
        if m.global {
            if channel.gate.set_limit(u32::from(m.prefetch_count)) {
                channel.resume_queues().await;
            }
        } else {
            channel.prefetch = m.prefetch_count;
        }
        self.out.method(ch, BasicQosOk::default());
        Ok(())
    }

    pub(crate) async fn handle_basic_consume(
        &mut self,
        ch: u16,
        m: BasicConsume,
    ) -> Result<(), Error> {
        let name = self.queue_name(ch, &m.queue)?;
        if name == REPLY_TO {
            return self.consume_replies(ch, m);
        }
        self.check_read("queue", &name)?;
        let queue = self.vhost.queue(&name)?;
        queue.check_owner(self.handle.id)?;
        let tag = if m.consumer_tag.is_empty() {
            names::generated("amq.ctag-")
        } else {
            m.consumer_tag.clone()
        };
        let priority = match m.arguments.get("x-priority") {
            None => 0,
            Some(value) => value.as_i64().ok_or_else(|| {
                ChannelError::precondition_failed(format!(
                    "invalid arg 'x-priority' for queue '{name}' in vhost '{}': {}",
                    self.vhost.name(),
                    expected_integer(value)
                ))
            })?,
        };
        let connection = self.handle.clone();
        let channel = self.channel(ch)?;
        if channel.consumers.contains_tag(&tag) {
            return Err(ConnectionError::not_allowed(format!(
                "attempt to reuse consumer tag '{tag}'"
            ))
            .into());
        }
        let id = new_consumer_id();
        let spec = ConsumerSpec {
            id,
            tag: tag.clone(),
            connection,
            channel: ch,
            gate: channel.gate.clone(),
            no_ack: m.no_ack,
            exclusive: m.exclusive,
            prefetch: channel.prefetch,
            priority,
        };
        // Registered before the queue can deliver, so its first delivery finds it.
        let index = channel.touch(&queue);
        channel.consumers.add(id, tag.clone(), index);
        let result = queue
            .ask(|reply| Command::Consume {
                consumer: spec,
                reply,
            })
            .await
            .unwrap_or_else(|| Err(self.vhost.no_queue(&name)));
        if let Err(e) = result {
            self.channel(ch)?.consumers.forget(id);
            return Err(e.into());
        }
        if !m.no_wait {
            self.out.method(ch, BasicConsumeOk { consumer_tag: tag });
        }
        Ok(())
    }

    /// basic.consume on `amq.rabbitmq.reply-to`: the channel's direct reply consumer.
    fn consume_replies(&mut self, ch: u16, m: BasicConsume) -> Result<(), Error> {
        if !m.no_ack {
            return Err(
                ChannelError::precondition_failed("reply consumer cannot acknowledge").into(),
            );
        }
        let tag = if m.consumer_tag.is_empty() {
            names::generated("amq.ctag-")
        } else {
            m.consumer_tag.clone()
        };
        let (connection, registry) = (self.handle.clone(), self.broker.direct_replies.clone());
        let channel = self.channel(ch)?;
        if channel.reply_consumer.is_some() {
            return Err(ChannelError::precondition_failed("reply consumer already set").into());
        }
        if channel.consumers.contains_tag(&tag) {
            return Err(ConnectionError::not_allowed(format!(
                "attempt to reuse consumer tag '{tag}'"
            ))
            .into());
        }
        channel.reply_consumer = Some(registry.register(connection, ch, tag.clone()));
        if !m.no_wait {
            self.out.method(ch, BasicConsumeOk { consumer_tag: tag });
        }
        Ok(())
    }

    pub(crate) async fn handle_basic_cancel(
        &mut self,
        ch: u16,
        m: BasicCancel,
    ) -> Result<(), Error> {
        let channel = self.channel(ch)?;
        if channel
            .reply_consumer
            .as_ref()
            .is_some_and(|r| r.tag == m.consumer_tag)
        {
            channel.reply_consumer = None;
        }
        let consumer = channel.consumers.by_tag(&m.consumer_tag);
        let queue = consumer.and_then(|(id, index)| Some((id, channel.touched(index)?.clone())));
        if let Some((id, queue)) = queue {
            let (connection, tag) = (self.handle.id, m.consumer_tag.clone());
            let answered = queue
                .ask(|reply| Command::Cancel {
                    connection,
                    channel: ch,
                    tag,
                    reply,
                })
                .await
                .is_some();
            // Deliveries the queue sent before it saw the cancel are in our mailbox:
            // they go out before cancel-ok, after which the consumer gets nothing.
            self.drain_events().await;
            let consumers = &mut self.channel(ch)?.consumers;
            if answered {
                // Its last deliveries may still be on their way: known until the
                // queue says it is done (Event::ConsumerGone).
                consumers.cancel(&m.consumer_tag);
            } else {
                consumers.forget(id);
            }
        }
        // Cancelling an unknown tag is not an error, as in RabbitMQ.
        if !m.no_wait {
            self.out.method(
                ch,
                BasicCancelOk {
                    consumer_tag: m.consumer_tag,
                },
            );
        }
        Ok(())
    }

    pub(crate) async fn handle_basic_get(&mut self, ch: u16, m: BasicGet) -> Result<(), Error> {
        let name = self.queue_name(ch, &m.queue)?;
        self.check_read("queue", &name)?;
        let queue = self.vhost.queue(&name)?;
        queue.check_owner(self.handle.id)?;
        let (connection, no_ack) = (self.handle.id, m.no_ack);
        let got = queue
            .ask(|reply| Command::Get {
                connection,
                channel: ch,
                no_ack,
                reply,
            })
            .await
            .ok_or_else(|| self.vhost.no_queue(&name))?;
        let Some(got) = got else {
            self.out.method(ch, BasicGetEmpty::default());
            return Ok(());
        };
        let channel = self.channel(ch)?;
        let index = channel.touch(&queue);
        let delivery_tag = if no_ack {
            channel.unacked.skip()
        } else {
            channel.unacked.push(Pending {
                queue: index,
                message_id: got.entry.id(),
                counted: false,
            })
        };
        let redelivered = got.entry.redelivered();
        let message = got.message;
        let method = Method::BasicGetOk(BasicGetOk {
            delivery_tag,
            redelivered,
            exchange: message.exchange(),
            routing_key: message.routing_key(),
            message_count: got.remaining,
        });
        self.out
            .content_raw(ch, &method, message.properties(), message.body());
        Ok(())
    }

    /// basic.recover and recover-async: every unacked message goes back to its queue.
    pub(crate) async fn handle_basic_recover(
        &mut self,
        ch: u16,
        requeue: bool,
        reply: bool,
    ) -> Result<(), Error> {
        if !requeue {
            // As RabbitMQ: redelivering to the same consumer is not supported.
            return Err(ConnectionError::not_implemented("requeue=false").into());
        }
        let pending = self.channel(ch)?.unacked.take_through(0);
        self.settle(ch, pending, Settle::Requeue).await?;
        if reply {
            self.out.method(ch, BasicRecoverOk::default());
        }
        Ok(())
    }
}
