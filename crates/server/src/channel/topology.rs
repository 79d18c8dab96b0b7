//! exchange.* and queue.* handlers.

use warren_codec::{
    ExchangeBind, ExchangeBindOk, ExchangeDeclare, ExchangeDeclareOk, ExchangeDelete,
    ExchangeDeleteOk, ExchangeUnbind, ExchangeUnbindOk, QueueBind, QueueBindOk, QueueDeclareOk,
    QueueDelete, QueueDeleteOk, QueuePurge, QueuePurgeOk, QueueUnbind, QueueUnbindOk, ShortStr,
};
use warren_routing::{ExchangeKind, ExchangeSpec};

use crate::channel::arguments;
use crate::connection::Connection;
use crate::direct_reply::{REPLY_TO, REPLY_TO_PREFIX};
use crate::error::{ChannelError, Error};
use crate::names;
use crate::queue::{Command, Settings};
use crate::vhost::QueueDeclare;

impl Connection {
    pub(crate) fn handle_exchange_declare(
        &mut self,
        ch: u16,
        m: ExchangeDeclare,
    ) -> Result<(), Error> {
        let name = m.exchange.as_str();
        let vhost = self.vhost.name();
        if name.is_empty() && !m.passive {
            return Err(ChannelError::access_refused(
                "operation not permitted on the default exchange",
            )
            .into());
        }
        let exists = name.is_empty() || self.vhost.snapshot().topology.exchange(name).is_some();
        if m.passive {
            if !exists {
                return Err(ChannelError::not_found(format!(
                    "no exchange '{name}' in vhost '{vhost}'"
                ))
                .into());
            }
        } else {
            self.check_configure("exchange", name)?;
            // 406, as RabbitMQ since 3.11 (3.10 closed the connection with 503).
            let kind = ExchangeKind::parse(&m.kind).ok_or_else(|| {
                ChannelError::precondition_failed(format!("invalid exchange type '{}'", m.kind))
            })?;
            if !exists && names::is_reserved(name) {
                return Err(names::reserved("exchange", name).into());
            }
            self.vhost.declare_exchange(ExchangeSpec {
                name: name.into(),
                kind,
                durable: m.durable,
                auto_delete: m.auto_delete,
                internal: m.internal,
                arguments: m.arguments,
            })?;
        }
        if !m.no_wait {
            self.out.method(ch, ExchangeDeclareOk::default());
        }
        Ok(())
    }

    pub(crate) fn handle_exchange_delete(
        &mut self,
        ch: u16,
        m: ExchangeDelete,
    ) -> Result<(), Error> {
        let name = m.exchange.as_str();
        if name.is_empty() {
            return Err(ChannelError::access_refused(
                "operation not permitted on the default exchange",
            )
            .into());
        }
        if names::is_reserved(name) {
            return Err(ChannelError::access_refused(format!(
                "deletion of system exchange '{name}' in vhost '{}' not allowed",
                self.vhost.name()
            ))
            .into());
        }
        self.check_configure("exchange", name)?;
        // Deleting an exchange that does not exist succeeds, as in RabbitMQ 3.x.
        if self.vhost.snapshot().topology.exchange(name).is_some() {
            self.vhost.delete_exchange(name, m.if_unused)?;
        }
        if !m.no_wait {
            self.out.method(ch, ExchangeDeleteOk::default());
        }
        Ok(())
    }

    pub(crate) async fn handle_queue_declare(
        &mut self,
        ch: u16,
        m: warren_codec::QueueDeclare,
    ) -> Result<(), Error> {
        let name = if m.queue.is_empty() && !m.passive {
            names::generated("amq.gen-")
        } else {
            self.queue_name(ch, &m.queue)?
        };
        if name.as_str().starts_with(REPLY_TO) {
            return self.declare_reply_queue(ch, name, m.no_wait);
        }
        let (queue, created) = if m.passive {
            let queue = self.vhost.queue(&name)?;
            queue.check_owner(self.handle.id)?;
            (queue, false)
        } else {
            if !m.queue.is_empty() && names::is_reserved(&name) {
                return Err(names::reserved("queue", &name).into());
            }
            self.check_configure("queue", &name)?;
            arguments::check_queue(&m.arguments)?;
            let settings = Settings::parse(&m.arguments).map_err(|invalid| {
                ChannelError::precondition_failed(invalid.text(&name, self.vhost.name()))
            })?;
            self.vhost.declare_queue(
                QueueDeclare {
                    name: name.clone(),
                    durable: m.durable,
                    exclusive: m.exclusive,
                    auto_delete: m.auto_delete,
                    arguments: m.arguments,
                    settings,
                },
                self.handle.id,
            )?
        };
        self.channel(ch)?.last_queue = Some(name.clone());
        if m.no_wait && !created {
            // Any declare renews an x-expires lease (a reply's Counts does too).
            queue.send(Command::Touch).await;
        }
        if !m.no_wait {
            let (message_count, consumer_count) = if created {
                (0, 0)
            } else {
                queue
                    .ask(|reply| Command::Counts { reply })
                    .await
                    .ok_or_else(|| self.vhost.no_queue(&name))?
            };
            self.out.method(
                ch,
                QueueDeclareOk {
                    queue: name,
                    message_count,
                    consumer_count,
                },
            );
        }
        Ok(())
    }

    pub(crate) fn handle_queue_bind(&mut self, ch: u16, m: QueueBind) -> Result<(), Error> {
        let queue = self.queue_name(ch, &m.queue)?;
        self.check_write("queue", &queue)?;
        self.check_read("exchange", &m.exchange)?;
        self.vhost.queue(&queue)?.check_owner(self.handle.id)?;
        self.vhost
            .bind_queue(&queue, &m.exchange, &m.routing_key, m.arguments)?;
        if !m.no_wait {
            self.out.method(ch, QueueBindOk::default());
        }
        Ok(())
    }

    pub(crate) fn handle_exchange_bind(&mut self, ch: u16, m: ExchangeBind) -> Result<(), Error> {
        self.check_exchange_binding(&m.destination, &m.source)?;
        self.vhost
            .bind_exchange(&m.destination, &m.source, &m.routing_key, m.arguments)?;
        if !m.no_wait {
            self.out.method(ch, ExchangeBindOk::default());
        }
        Ok(())
    }

    pub(crate) fn handle_exchange_unbind(
        &mut self,
        ch: u16,
        m: ExchangeUnbind,
    ) -> Result<(), Error> {
        self.check_exchange_binding(&m.destination, &m.source)?;
        self.vhost
            .unbind_exchange(&m.destination, &m.source, &m.routing_key, &m.arguments)?;
        if !m.no_wait {
            self.out.method(ch, ExchangeUnbindOk::default());
        }
        Ok(())
    }

    /// RabbitMQ's checks for exchange.bind / unbind, in its order: write on the
    /// destination, neither is the default exchange, read on the source.
    fn check_exchange_binding(&self, destination: &str, source: &str) -> Result<(), Error> {
        self.check_write("exchange", destination)?;
        if destination.is_empty() || source.is_empty() {
            return Err(ChannelError::access_refused(
                "operation not permitted on the default exchange",
            )
            .into());
        }
        self.check_read("exchange", source)?;
        Ok(())
    }

    pub(crate) fn handle_queue_unbind(&mut self, ch: u16, m: QueueUnbind) -> Result<(), Error> {
        let queue = self.queue_name(ch, &m.queue)?;
        self.check_write("queue", &queue)?;
        self.check_read("exchange", &m.exchange)?;
        self.vhost.queue(&queue)?.check_owner(self.handle.id)?;
        self.vhost
            .unbind_queue(&queue, &m.exchange, &m.routing_key, &m.arguments)?;
        self.out.method(ch, QueueUnbindOk::default());
        Ok(())
    }

    pub(crate) async fn handle_queue_purge(&mut self, ch: u16, m: QueuePurge) -> Result<(), Error> {
        let name = self.queue_name(ch, &m.queue)?;
        self.check_read("queue", &name)?;
        let queue = self.vhost.queue(&name)?;
        queue.check_owner(self.handle.id)?;
        let message_count = queue
            .ask(|reply| Command::Purge { reply })
            .await
            .ok_or_else(|| self.vhost.no_queue(&name))?;
        if !m.no_wait {
            self.out.method(ch, QueuePurgeOk { message_count });
        }
        Ok(())
    }

    pub(crate) async fn handle_queue_delete(
        &mut self,
        ch: u16,
        m: QueueDelete,
    ) -> Result<(), Error> {
        let name = self.queue_name(ch, &m.queue)?;
        self.check_configure("queue", &name)?;
        // Deleting a queue that does not exist succeeds, as in RabbitMQ 3.x.
        let message_count = match self.vhost.queue(&name) {
            Err(_) => 0,
            Ok(queue) => {
                queue.check_owner(self.handle.id)?;
                let (if_unused, if_empty) = (m.if_unused, m.if_empty);
                queue
                    .ask(|reply| Command::Delete {
                        if_unused,
                        if_empty,
                        reply,
                    })
                    .await
                    .unwrap_or(Ok(0))?
            }
        };
        if !m.no_wait {
            self.out.method(ch, QueueDeleteOk { message_count });
        }
        Ok(())
    }

    /// The queue a name means: an empty name is the channel's last declared queue.
    /// A declare of the direct reply-to pseudo-queue, or of a reply address: as
    /// RabbitMQ, it succeeds (0 messages, 1 consumer) when the name is the pseudo-queue
    /// or a live reply address, passive or not, and creates nothing.
    fn declare_reply_queue(&mut self, ch: u16, name: ShortStr, no_wait: bool) -> Result<(), Error> {
        let live = name.as_str() == REPLY_TO
            || (name.as_str().starts_with(REPLY_TO_PREFIX)
                && self.broker.direct_replies.is_live(&name));
        if !live {
            return Err(self.vhost.no_queue(&name).into());
        }
        if !no_wait {
            self.out.method(
                ch,
                QueueDeclareOk {
                    queue: name,
                    message_count: 0,
                    consumer_count: 1,
                },
            );
        }
        Ok(())
    }

    pub(crate) fn queue_name(&mut self, ch: u16, name: &ShortStr) -> Result<ShortStr, Error> {
        if !name.is_empty() {
            return Ok(name.clone());
        }
        self.channel(ch)?
            .last_queue
            .clone()
            .ok_or_else(|| ChannelError::not_found("no previously declared queue").into())
    }
}
