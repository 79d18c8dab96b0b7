//! basic.publish: check, route, hand to queues, return or confirm.

use std::borrow::Borrow;

use warren_codec::{BasicPublish, BasicReturn, Method, PublishView, ReplyCode, ShortStr};
use warren_routing::{Envelope, Exchange, RoutingError, Unroutable};

use crate::channel::assembler::Publication;
use crate::connection::Connection;
use crate::direct_reply::{REPLY_TO, REPLY_TO_PREFIX};
use crate::error::{ChannelError, ConnectionError, Error};
use crate::management::UnroutableOutcome;
use crate::message::Message;
use crate::queue::{Command, Enqueue, QueueHandle};
use crate::vhost::Snapshot;

/// A message routed and ready to enqueue (now, or at tx.commit). Its queues are
/// borrowed from the routing snapshot (`&QueueHandle`) unless it waits in a
/// transaction.
pub(crate) struct Routed<Q = QueueHandle> {
    pub(crate) message: Message,
    pub(crate) queues: Vec<Q>,
    pub(crate) mandatory: bool,
    /// Routed nowhere, on an exchange that refuses such messages.
    pub(crate) reject: bool,
    /// The message's own TTL in milliseconds (its `expiration` property).
    pub(crate) expiration: Option<u64>,
}

impl Connection {
    pub(crate) fn handle_basic_publish(&mut self, ch: u16, m: BasicPublish) -> Result<(), Error> {
        if m.immediate {
            return Err(ConnectionError::not_implemented("immediate=true").into());
        }
        self.check_publish_to(&m.exchange)?;
        self.channel(ch)?.assembler.start(m);
        Ok(())
    }

    /// What basic.publish itself is checked for: write permission on the exchange.
    fn check_publish_to(&mut self, exchange: &str) -> Result<(), ChannelError> {
        let exchange = if exchange.is_empty() {
            "amq.default"
        } else {
            exchange
        };
        self.check_write("exchange", exchange)?;
        self.publishes = true;
        Ok(())
    }

    /// A publish read whole from the socket buffer (see [`PublishView`]): the general
    /// path's checks and routing for a message that carries none of the properties
    /// those look at, built straight from the buffer. The caller has checked it is
    /// not `immediate`, not a direct reply, fits inline and within the size limit.
    pub(crate) fn publish_whole(&mut self, v: &PublishView<'_>) -> Result<(), Error> {
        let failed = |e: ChannelError| Error::from(e.in_method(60, 40));
        self.check_publish_to(v.exchange).map_err(failed)?;
        let snapshot = self.vhost.snapshot();
        let source = self
            .source_exchange(&snapshot, v.exchange)
            .map_err(failed)?;
        let envelope =
            Envelope::new(v.routing_key, None).map_err(|e| failed(self.vhost.routing_error(e)))?;
        let queues = self
            .vhost
            .route(&snapshot, v.exchange, &envelope)
            .map_err(failed)?;
        let reject = queues.is_empty()
            && self.note_unroutable(source, v.exchange, v.routing_key, v.mandatory);
        let routed = Routed {
            message: Message::inline(v.exchange, v.routing_key, v.properties, v.body),
            queues,
            mandatory: v.mandatory,
            reject,
            expiration: None,
        };
        self.hand_over(v.channel, routed)
    }

    /// The exchange a publish names (None for the default exchange): 404 when it
    /// does not exist, 403 when it is internal.
    fn source_exchange<'s>(
        &self,
        snapshot: &'s Snapshot,
        exchange: &str,
    ) -> Result<Option<&'s Exchange>, ChannelError> {
        let source = match exchange {
            "" => None,
            name => Some(snapshot.topology.exchange(name).ok_or_else(|| {
                self.vhost
                    .routing_error(RoutingError::ExchangeNotFound(name.into()))
            })?),
        };
        if source.is_some_and(|x| x.spec().internal) {
            return Err(ChannelError::access_refused(format!(
                "cannot publish to internal exchange '{exchange}' in vhost '{}'",
                self.vhost.name()
            )));
        }
        Ok(source)
    }

    /// Enqueues a routed message, or holds it in the channel's transaction.
    fn hand_over(&mut self, ch: u16, routed: Routed<&QueueHandle>) -> Result<(), Error> {
        let channel = self.channel(ch)?;
        if let Some(tx) = &mut channel.tx {
            tx.publishes.push(Routed {
                queues: routed.queues.into_iter().cloned().collect(),
                message: routed.message,
                mandatory: routed.mandatory,
                reject: routed.reject,
                expiration: routed.expiration,
            });
            return Ok(());
        }
        self.enqueue(ch, routed).map(|_| ())
    }

    /// A publish whose content is complete.
    pub(crate) fn publish(&mut self, ch: u16, mut p: Publication) -> Result<(), Error> {
        let failed = |e: ChannelError| Error::from(e.in_method(60, 40));
        let exchange = p.publish.exchange.as_str();
        let snapshot = self.vhost.snapshot();
        // The checks in RabbitMQ's order: exchange, internal, user-id, routing headers.
        let source = self.source_exchange(&snapshot, exchange).map_err(failed)?;
        let properties = p.header.properties();
        if let Some(user_id) = &properties.user_id
            && user_id.as_str() != self.user.name()
        {
            return Err(failed(ChannelError::precondition_failed(format!(
                "user_id property set to '{user_id}' but authenticated user was '{}'",
                self.user.name()
            ))));
        }
        let expiration = match &properties.expiration {
            None => None,
            Some(text) => Some(parse_expiration(text).map_err(|reason| {
                failed(ChannelError::precondition_failed(format!(
                    "invalid expiration '{text}': {reason}"
                )))
            })?),
        };
        // A request naming the direct reply-to pseudo-queue gets this channel's reply
        // address instead; there must be a reply consumer on the channel.
        let reply_address = match &properties.reply_to {
            Some(reply_to) if reply_to.as_str() == REPLY_TO => Some(
                self.channels
                    .get(&ch)
                    .and_then(|c| c.reply_consumer.as_ref())
                    .map(|r| r.address.clone())
                    .ok_or_else(|| {
                        failed(ChannelError::precondition_failed(
                            "fast reply consumer does not exist",
                        ))
                    })?,
            ),
            _ => None,
        };
        if exchange.is_empty() && p.publish.routing_key.as_str().starts_with(REPLY_TO_PREFIX) {
            drop(snapshot);
            return self.publish_reply(ch, p, reply_address);
        }
        let envelope = Envelope::new(&p.publish.routing_key, properties.headers.as_ref())
            .map_err(|e| failed(self.vhost.routing_error(e)))?;
        let queues = self
            .vhost
            .route(&snapshot, exchange, &envelope)
            .map_err(failed)?;
        let publish = &p.publish;
        let reject = queues.is_empty()
            && self.note_unroutable(
                source,
                &publish.exchange,
                &publish.routing_key,
                publish.mandatory,
            );
        let strip_bcc = envelope.has_bcc();
        drop(envelope);
        // BCC routes but is not delivered: the recipients must not see each other.
        if strip_bcc && let Some(headers) = &mut p.header.properties_mut().headers {
            headers.remove("BCC");
        }
        if let Some(address) = reply_address {
            p.header.properties_mut().reply_to = Some(address);
        }
        let routed = Routed {
            message: Message::new(
                &p.publish.exchange,
                &p.publish.routing_key,
                &p.header.raw_properties(),
                p.body,
            ),
            queues,
            mandatory: p.publish.mandatory,
            reject,
            expiration,
        };
        self.hand_over(ch, routed)
    }

    /// A reply to a direct reply-to address: straight to the requester's channel, or
    /// dropped if it has gone. It counts as routed, as in RabbitMQ: confirmed, never
    /// returned.
    fn publish_reply(
        &mut self,
        ch: u16,
        mut p: Publication,
        reply_address: Option<ShortStr>,
    ) -> Result<(), Error> {
        if let Some(address) = reply_address {
            p.header.properties_mut().reply_to = Some(address);
        }
        let message = Message::new(
            &p.publish.exchange,
            &p.publish.routing_key,
            &p.header.raw_properties(),
            p.body,
        );
        self.broker
            .direct_replies
            .deliver(p.publish.routing_key.as_str(), message);
        if let Some(confirms) = self.channel(ch)?.confirms.as_mut() {
            confirms.publish(0, None);
            self.confirms_dirty = true;
        }
        Ok(())
    }

    /// Counts and logs a message that routed nowhere; true when its exchange rejects
    /// such messages (`x-unroutable = "reject"`).
    fn note_unroutable(
        &self,
        source: Option<&Exchange>,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
    ) -> bool {
        let reject = source.is_some_and(|x| x.unroutable() == Unroutable::Reject);
        let outcome = match (reject, mandatory) {
            (true, _) => UnroutableOutcome::Rejected,
            (false, true) => UnroutableOutcome::Returned,
            (false, false) => UnroutableOutcome::Dropped,
        };
        self.broker.monitoring.count_unroutable(outcome);
        self.vhost
            .unroutable
            .record(self.vhost.name(), exchange, routing_key, outcome.as_str());
        reject
    }

    /// Hands a routed message to its queues, or returns it when it had none and the
    /// publisher asked (mandatory). Returns its store id when it was stored. The
    /// message waits in the connection's outgoing batches until the next
    /// [`Connection::flush_publishes`].
    pub(crate) fn enqueue<Q: Borrow<QueueHandle>>(
        &mut self,
        ch: u16,
        routed: Routed<Q>,
    ) -> Result<Option<u64>, Error> {
        let Routed {
            message,
            queues,
            mandatory,
            reject,
            expiration,
        } = routed;
        if queues.is_empty() && mandatory {
            let method = Method::BasicReturn(BasicReturn {
                reply_code: ReplyCode::NoRoute.code(),
                reply_text: "NO_ROUTE".into(),
                exchange: message.exchange(),
                routing_key: message.routing_key(),
            });
            self.out
                .content_raw(ch, &method, message.properties(), message.body());
        }
        if reject {
            match self.channel(ch)?.confirms.as_mut() {
                Some(confirms) => {
                    confirms.publish_refused();
                    self.confirms_dirty = true;
                }
                // A returned message has told its publisher already.
                None if mandatory => {}
                None => {
                    return Err(ChannelError::no_route(format!(
                        "message to exchange '{}' with routing key '{}' routed to no queue \
                         and the exchange rejects unroutable messages",
                        message.exchange(),
                        message.routing_key()
                    ))
                    .in_method(60, 40)
                    .into());
                }
            }
            return Ok(None);
        }
        let stored = self.vhost.durable.persist(&message, expiration, &queues);
        // A stored message is confirmed once the store has synced it, too.
        let sync = (stored != 0).then_some(stored);
        let channel = self.channel(ch)?;
        let queue_count = u32::try_from(queues.len()).unwrap_or(u32::MAX);
        let seq = channel
            .confirms
            .as_mut()
            .map(|c| c.publish(queue_count, sync));
        if seq.is_some() {
            self.confirms_dirty = true;
        }
        let last = queues.len().saturating_sub(1);
        let mut message = Some(message);
        for (i, queue) in queues.iter().enumerate() {
            let queue = queue.borrow();
            let stored = queue.stored_here(stored);
            // The last queue takes the message itself: the first clone of a message
            // allocates its shared header, so one queue means no clone at all.
            let message = if i == last {
                message.take()
            } else {
                message.clone()
            };
            let Some(message) = message else { break };
            let message = Enqueue {
                message,
                stored,
                confirm: seq.map(|seq| (ch, seq)),
                expiration,
            };
            self.outgoing.add(queue, message, &self.handle);
        }
        Ok(sync)
    }

    /// Hands the routed messages held back to their queues, waiting for mailbox room
    /// (how a full queue slows its publishers). A queue deleted since routing had the
    /// message routed, as RabbitMQ counts it, so its confirms are acks.
    pub(crate) async fn flush_publishes(&mut self) {
        if self.outgoing.is_empty() {
            return;
        }
        for (queue, batch) in self.outgoing.take() {
            let Err(Command::Publish(batch)) = queue.send_or_return(Command::Publish(batch)).await
            else {
                continue;
            };
            for (ch, seq) in batch.messages.iter().filter_map(|m| m.confirm) {
                if let Some(c) = self.channels.get_mut(&ch).and_then(|c| c.confirms.as_mut()) {
                    c.on_queue_result(seq, true);
                    self.confirms_dirty = true;
                }
            }
        }
    }
}

/// The `expiration` property: a non-negative integer of milliseconds, as RabbitMQ reads
/// it; the error is RabbitMQ's reason term.
fn parse_expiration(text: &str) -> Result<u64, String> {
    let n: i64 = text.parse().map_err(|_| "no_integer".to_owned())?;
    u64::try_from(n).map_err(|_| format!("{{value_negative,{n}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_is_milliseconds_as_an_integer_string() {
        assert_eq!(parse_expiration("60000"), Ok(60_000));
        assert_eq!(parse_expiration("0"), Ok(0));
        assert_eq!(parse_expiration("abc"), Err("no_integer".into()));
        assert_eq!(parse_expiration("1.5"), Err("no_integer".into()));
        assert_eq!(parse_expiration("-1"), Err("{value_negative,-1}".into()));
    }
}
