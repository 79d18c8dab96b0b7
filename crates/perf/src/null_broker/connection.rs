//! One connection's reader: the handshake, then every frame in, answered at once.
//!
//! The reader handles all the frames one socket read brought, routing each complete
//! publish as it goes, then flushes: one basic.ack (`multiple`) per confirm-mode
//! channel that published, and the batch's replies, as one piece to its writer.
//! Consumer changes flush first, to keep their order with the writer's bookkeeping
//! (see `outbound`).

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use warren_codec::{
    AccessRequestOk, BasicAck, BasicCancelOk, BasicConsume, BasicConsumeOk, BasicGetEmpty,
    BasicQosOk, BasicRecoverOk, ChannelCloseOk, ChannelFlowOk, ChannelOpenOk, ConfirmSelectOk,
    ConnectionCloseOk, ConnectionUpdateSecretOk, ExchangeBindOk, ExchangeDeclareOk,
    ExchangeDeleteOk, ExchangeUnbindOk, Frame, Method, QueueBindOk, QueueDeclareOk, QueueDeleteOk,
    QueuePurgeOk, QueueUnbindOk, ShortStr, TxCommitOk, TxRollbackOk, TxSelectOk,
};

use super::content::{Assembly, Message};
use super::error::ConnectionError;
use super::frames::FrameReader;
use super::handshake::{FRAME_MAX, Tuning, handshake};
use super::outbound::{self, Outbound};
use super::registry::{Registry, Target};
use super::router::Router;

/// Entries a writer's mailbox holds: about one read batch of small deliveries, so a
/// publisher runs ahead of a slow consumer by that much before it stops reading.
const MAILBOX: usize = 1024;

/// Serves one accepted connection until it closes.
pub(super) async fn serve(
    stream: TcpStream,
    registry: Arc<Registry>,
) -> Result<(), ConnectionError> {
    // Replies and deliveries are written once per batch already; Nagle would only
    // hold back the last write of a burst.
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut frames = FrameReader::new(read, FRAME_MAX);
    let tuning = match handshake(&mut frames, &mut write).await {
        Ok(tuning) => tuning,
        Err(e) => {
            if let Some(close) = e.close_method() {
                let mut buf = BytesMut::new();
                Frame::method(0, close).encode(&mut buf);
                // Best effort: the connection is over either way.
                let _ = write.write_all(&buf).await;
            }
            return Err(e);
        }
    };
    let (outbound, mailbox) = mpsc::channel(MAILBOX);
    let writer = tokio::spawn(outbound::write(write, mailbox, tuning.frame_max));
    let outcome = Connection::new(frames, outbound, registry, tuning)
        .run()
        .await;
    // The writer ends after the Close the reader sends; waiting keeps the task alive
    // until the last frame is out.
    let _ = writer.await;
    outcome
}

/// An open channel.
#[derive(Debug, Default)]
struct Channel {
    content: Assembly,
    /// In confirm mode: publishes counted and acknowledged so far.
    confirms: Option<Confirms>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Confirms {
    published: u64,
    acked: u64,
}

/// A consumer started on this connection.
struct OwnConsumer {
    id: u64,
    channel: u16,
    tag: ShortStr,
}

/// What to do after a frame.
enum Flow {
    Continue,
    /// The connection is closing: close-ok sent or received.
    Stop,
}

struct Connection {
    frames: FrameReader,
    outbound: mpsc::Sender<Outbound>,
    registry: Arc<Registry>,
    router: Router,
    channel_max: u16,
    /// Indexed by channel number; `None` when not open.
    channels: Vec<Option<Channel>>,
    consumers: Vec<OwnConsumer>,
    /// Replies encoded since the last flush.
    replies: BytesMut,
    /// Channels with publishes to acknowledge at the next flush.
    unconfirmed: Vec<u16>,
}

impl Connection {
    fn new(
        frames: FrameReader,
        outbound: mpsc::Sender<Outbound>,
        registry: Arc<Registry>,
        tuning: Tuning,
    ) -> Self {
        let start = registry.next_id() as usize;
        Connection {
            frames,
            outbound,
            router: Router::new(registry.clone(), start),
            registry,
            channel_max: tuning.channel_max,
            channels: Vec::new(),
            consumers: Vec::new(),
            replies: BytesMut::new(),
            unconfirmed: Vec::new(),
        }
    }

    /// Serves frames until the connection closes, then removes its consumers and
    /// tells its writer to finish (after a connection.close for a protocol error).
    async fn run(mut self) -> Result<(), ConnectionError> {
        let outcome = self.serve().await;
        let ids: Vec<u64> = self.consumers.iter().map(|c| c.id).collect();
        self.registry.remove_consumers(&ids);
        if let Some(close) = outcome
            .as_ref()
            .err()
            .and_then(ConnectionError::close_method)
        {
            self.reply(0, close);
        }
        // The writer may be gone already (its socket failed); the outcome says why.
        let _ = self.flush().await;
        let _ = self.outbound.send(Outbound::Close).await;
        outcome
    }

    async fn serve(&mut self) -> Result<(), ConnectionError> {
        loop {
            while let Some(frame) = self.frames.buffered()? {
                if let Flow::Stop = self.frame(frame).await? {
                    return Ok(());
                }
            }
            self.flush().await?;
            if !self.frames.fill().await? {
                return Ok(());
            }
        }
    }

    async fn frame(&mut self, frame: Frame) -> Result<Flow, ConnectionError> {
        let message = match frame {
            Frame::Heartbeat => None,
            Frame::Method { channel: 0, method } => return self.connection_method(method),
            Frame::Method { channel, method } => {
                self.channel_method(channel, method).await?;
                None
            }
            Frame::Header { channel, header } => self
                .open_channel(channel)?
                .content
                .header(header)?
                .map(|m| (channel, m)),
            Frame::Body { channel, body } => self
                .open_channel(channel)?
                .content
                .body(body)?
                .map(|m| (channel, m)),
        };
        if let Some((channel, message)) = message {
            self.published(channel, message).await?;
        }
        Ok(Flow::Continue)
    }

    fn connection_method(&mut self, method: Method) -> Result<Flow, ConnectionError> {
        match method {
            Method::ConnectionClose(_) => {
                self.reply(0, ConnectionCloseOk {});
                Ok(Flow::Stop)
            }
            Method::ConnectionCloseOk(_) => Ok(Flow::Stop),
            // The null broker never updates anything it would check.
            Method::ConnectionUpdateSecret(_) => {
                self.reply(0, ConnectionUpdateSecretOk {});
                Ok(Flow::Continue)
            }
            other => Err(unexpected(&other, "on channel 0")),
        }
    }

    async fn channel_method(&mut self, id: u16, method: Method) -> Result<(), ConnectionError> {
        if let Method::ChannelOpen(_) = method {
            return self.handle_channel_open(id);
        }
        let channel = self.open_channel(id)?;
        if !channel.content.is_idle() {
            return Err(ConnectionError::unexpected_frame(format!(
                "{} while content is expected",
                method.name()
            )));
        }
        match method {
            Method::BasicPublish(m) => channel.content.start(m)?,
            Method::ConfirmSelect(m) => {
                channel.confirms.get_or_insert_with(Confirms::default);
                if !m.nowait {
                    self.reply(id, ConfirmSelectOk {});
                }
            }
            // Acknowledgements are not tracked: nothing is redelivered.
            Method::BasicAck(_) | Method::BasicNack(_) | Method::BasicReject(_) => {}
            Method::BasicRecoverAsync(_) => {}
            Method::BasicConsume(m) => self.handle_basic_consume(id, m).await?,
            Method::BasicCancel(m) => {
                self.handle_basic_cancel(id, &m.consumer_tag).await?;
                if !m.no_wait {
                    self.reply(
                        id,
                        BasicCancelOk {
                            consumer_tag: m.consumer_tag,
                        },
                    );
                }
            }
            Method::ChannelClose(_) => self.handle_channel_close(id).await?,
            // The reply to a close the null broker never sends.
            Method::ChannelCloseOk(_) => {}
            other => self.answer(id, other)?,
        }
        Ok(())
    }

    /// Methods answered with their -ok and nothing else.
    fn answer(&mut self, id: u16, method: Method) -> Result<(), ConnectionError> {
        match method {
            Method::ExchangeDeclare(m) => {
                if !m.passive {
                    self.registry.set_fanout(&m.exchange, m.kind == "fanout");
                }
                if !m.no_wait {
                    self.reply(id, ExchangeDeclareOk {});
                }
            }
            Method::ExchangeDelete(m) => {
                self.registry.set_fanout(&m.exchange, false);
                if !m.no_wait {
                    self.reply(id, ExchangeDeleteOk {});
                }
            }
            Method::ExchangeBind(m) if !m.no_wait => self.reply(id, ExchangeBindOk {}),
            Method::ExchangeUnbind(m) if !m.no_wait => self.reply(id, ExchangeUnbindOk {}),
            Method::QueueDeclare(m) if !m.no_wait => {
                let queue = if m.queue.is_empty() {
                    ShortStr::from(format!("amq.gen-{}", self.registry.next_id()))
                } else {
                    m.queue
                };
                self.reply(
                    id,
                    QueueDeclareOk {
                        queue,
                        message_count: 0,
                        consumer_count: 0,
                    },
                );
            }
            Method::QueueBind(m) if !m.no_wait => self.reply(id, QueueBindOk {}),
            Method::QueueUnbind(_) => self.reply(id, QueueUnbindOk {}),
            Method::QueuePurge(m) if !m.no_wait => {
                self.reply(id, QueuePurgeOk { message_count: 0 })
            }
            Method::QueueDelete(m) if !m.no_wait => {
                self.reply(id, QueueDeleteOk { message_count: 0 })
            }
            Method::ExchangeBind(_)
            | Method::ExchangeUnbind(_)
            | Method::QueueDeclare(_)
            | Method::QueueBind(_)
            | Method::QueuePurge(_)
            | Method::QueueDelete(_) => {}
            Method::BasicQos(_) => self.reply(id, BasicQosOk {}),
            Method::BasicGet(_) => self.reply(id, BasicGetEmpty::default()),
            Method::BasicRecover(_) => self.reply(id, BasicRecoverOk {}),
            Method::ChannelFlow(m) => self.reply(id, ChannelFlowOk { active: m.active }),
            Method::TxSelect(_) => self.reply(id, TxSelectOk {}),
            Method::TxCommit(_) => self.reply(id, TxCommitOk {}),
            Method::TxRollback(_) => self.reply(id, TxRollbackOk {}),
            Method::AccessRequest(_) => self.reply(id, AccessRequestOk { ticket: 1 }),
            other => return Err(unexpected(&other, "from a client")),
        }
        Ok(())
    }

    fn handle_channel_open(&mut self, id: u16) -> Result<(), ConnectionError> {
        if id > self.channel_max {
            return Err(ConnectionError::channel_error(format!(
                "channel {id} is above channel-max {}",
                self.channel_max
            )));
        }
        let slot = usize::from(id);
        if self.channels.len() <= slot {
            self.channels.resize_with(slot + 1, || None);
        }
        if self.channels[slot].is_some() {
            return Err(ConnectionError::channel_error(format!(
                "channel {id} is already open"
            )));
        }
        self.channels[slot] = Some(Channel::default());
        self.reply(id, ChannelOpenOk::default());
        Ok(())
    }

    async fn handle_channel_close(&mut self, id: u16) -> Result<(), ConnectionError> {
        let (closed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.consumers)
            .into_iter()
            .partition(|c| c.channel == id);
        self.consumers = kept;
        let ids: Vec<u64> = closed.iter().map(|c| c.id).collect();
        self.registry.remove_consumers(&ids);
        self.flush_replies().await?;
        self.send(Outbound::ChannelClosed { channel: id }).await?;
        if let Some(slot) = self.channels.get_mut(usize::from(id)) {
            *slot = None;
        }
        self.reply(id, ChannelCloseOk {});
        Ok(())
    }

    async fn handle_basic_consume(
        &mut self,
        channel: u16,
        m: BasicConsume,
    ) -> Result<(), ConnectionError> {
        let tag = if m.consumer_tag.is_empty() {
            ShortStr::from(format!("amq.ctag-{}", self.registry.next_id()))
        } else {
            m.consumer_tag
        };
        if !m.no_wait {
            self.reply(
                channel,
                BasicConsumeOk {
                    consumer_tag: tag.clone(),
                },
            );
        }
        // consume-ok, then ConsumerStarted, then the registry: nothing can reach
        // the client for this consumer before its consume-ok.
        self.flush_replies().await?;
        let id = self.registry.next_id();
        self.send(Outbound::ConsumerStarted { id, channel }).await?;
        self.registry.add_consumer(Target {
            id,
            channel,
            consumer_tag: tag.clone(),
            outbound: self.outbound.clone(),
        });
        self.consumers.push(OwnConsumer { id, channel, tag });
        Ok(())
    }

    /// Removes the consumer; the caller then replies cancel-ok, which its writer
    /// sends after `ConsumerEnded`, so no delivery follows it.
    async fn handle_basic_cancel(
        &mut self,
        channel: u16,
        tag: &ShortStr,
    ) -> Result<(), ConnectionError> {
        let Some(at) = self
            .consumers
            .iter()
            .position(|c| c.channel == channel && &c.tag == tag)
        else {
            return Ok(());
        };
        let consumer = self.consumers.swap_remove(at);
        self.registry.remove_consumers(&[consumer.id]);
        self.flush_replies().await?;
        self.send(Outbound::ConsumerEnded { id: consumer.id }).await
    }

    /// A complete publish: count it for confirms, then hand it to its consumers.
    async fn published(&mut self, channel: u16, message: Message) -> Result<(), ConnectionError> {
        if let Some(confirms) = self.open_channel(channel)?.confirms.as_mut() {
            let first_since_flush = confirms.published == confirms.acked;
            confirms.published += 1;
            if first_since_flush {
                self.unconfirmed.push(channel);
            }
        }
        self.router.route(message).await;
        Ok(())
    }

    fn open_channel(&mut self, id: u16) -> Result<&mut Channel, ConnectionError> {
        self.channels
            .get_mut(usize::from(id))
            .and_then(Option::as_mut)
            .ok_or_else(|| ConnectionError::channel_error(format!("channel {id} is not open")))
    }

    fn reply(&mut self, channel: u16, method: impl Into<Method>) {
        Frame::method(channel, method).encode(&mut self.replies);
    }

    /// Acknowledges the batch's publishes, then sends the batch's frames.
    async fn flush(&mut self) -> Result<(), ConnectionError> {
        let mut unconfirmed = std::mem::take(&mut self.unconfirmed);
        for id in unconfirmed.drain(..) {
            let confirms = self
                .channels
                .get_mut(usize::from(id))
                .and_then(Option::as_mut)
                .and_then(|c| c.confirms.as_mut());
            if let Some(confirms) = confirms
                && confirms.published > confirms.acked
            {
                confirms.acked = confirms.published;
                let ack = BasicAck {
                    delivery_tag: confirms.published,
                    multiple: true,
                };
                Frame::method(id, ack).encode(&mut self.replies);
            }
        }
        // Kept for its capacity.
        self.unconfirmed = unconfirmed;
        self.flush_replies().await
    }

    /// Sends the replies encoded so far to the writer.
    async fn flush_replies(&mut self) -> Result<(), ConnectionError> {
        if self.replies.is_empty() {
            return Ok(());
        }
        let frames = self.replies.split().freeze();
        self.send(Outbound::Frames(frames)).await
    }

    async fn send(&self, outbound: Outbound) -> Result<(), ConnectionError> {
        self.outbound
            .send(outbound)
            .await
            .map_err(|_| ConnectionError::WriterGone)
    }
}

fn unexpected(method: &Method, context: &str) -> ConnectionError {
    ConnectionError::command_invalid(
        format!("{} {context}", method.name()),
        method.class_id(),
        method.method_id(),
    )
}
