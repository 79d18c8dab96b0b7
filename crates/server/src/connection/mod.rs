//! One task per client connection: the handshake, then a loop that reads frames,
//! dispatches them to channels, and writes replies in batches.
//!
//! The task owns the socket and every channel of the connection as plain structs, so
//! channel state needs no locks. Replies are encoded into one buffer and written when
//! the socket is writable; reading pauses while that buffer is over its high-water
//! mark, which is how a client that does not read is slowed down.

mod deliver;
pub(crate) mod events;
mod handshake;
mod heartbeat;
mod input;
pub(crate) mod outbound;
mod permissions;
pub(crate) mod publishes;
pub(crate) mod registry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};
use warren_codec::{
    ChannelCloseOk, ConnectionBlocked, ConnectionCloseOk, ConnectionUnblocked,
    ConnectionUpdateSecretOk, Frame, FrameCodec, FrameError, Method, PublishView,
};

use tokio::sync::{mpsc, watch};
use warren_store::Progress;

use crate::auth::{AuthenticatedUser, Permissions};
use crate::broker::Broker;
use crate::channel::dispatch::is_publish_path;
use crate::channel::{Channel, ChannelInfo};
use crate::direct_reply::REPLY_TO_PREFIX;
use crate::error::{ChannelError, ConnectionError, Error, Reply};
use crate::management::BlockedMark;
use crate::message::INLINE_BODY;
use crate::number_hash::NumberMap;
use crate::vhost::Vhost;
use events::{Batch, ConnectionHandle};
use handshake::ClientInfo;
use handshake::{HandshakeError, Negotiated};
use heartbeat::{Beat, Heartbeat};
use input::Input;
use outbound::Outbound;
use publishes::Outgoing;

/// How long a peer has to answer our connection.close with close-ok.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Frames handled per wake-up before the replies are flushed.
const READ_BATCH: usize = 64;

/// Serves one accepted socket until it closes.
pub(crate) async fn serve(stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>) {
    let Some(_slot) = broker.try_admit() else {
        warn!(%peer, "connection refused: max_connections reached");
        return;
    };
    // Small frames (acks, confirms) must not wait for Nagle.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "set_nodelay failed");
    }
    let local = stream.local_addr().ok();
    let (mut reader, mut writer) = stream.into_split();
    let limits = &broker.config().limits;
    let handshake = async {
        handshake::read_protocol_header(&mut reader, &mut writer).await?;
        Ok::<_, HandshakeError>(())
    };
    match tokio::time::timeout(limits.handshake_timeout, handshake).await {
        Ok(Ok(())) => {}
        Ok(Err(HandshakeError::WrongProtocol)) => {
            debug!(%peer, "wrong protocol header; sent ours and closed");
            return;
        }
        Ok(Err(_)) | Err(_) => return,
    }
    let mut frames = FramedRead::new(reader, FrameCodec::new(limits.frame_max));
    let negotiated = tokio::time::timeout(
        limits.handshake_timeout,
        handshake::negotiate(&mut frames, &mut writer, &broker, peer),
    )
    .await;
    let negotiated = match negotiated {
        Ok(Ok(n)) => n,
        Ok(Err(HandshakeError::Close(e))) => {
            close_during_handshake(&mut frames, &mut writer, &e).await;
            return;
        }
        Ok(Err(HandshakeError::Io(e))) => {
            debug!(%peer, error = %e, "socket failed during the handshake");
            return;
        }
        Ok(Err(HandshakeError::WrongProtocol)) => return,
        Err(_) => {
            warn!(%peer, "handshake timed out");
            return;
        }
    };
    info!(
        %peer,
        user = negotiated.user.name(),
        vhost = %negotiated.vhost,
        client = %negotiated.client.product,
        name = negotiated.client.connection_name.as_deref().unwrap_or(""),
        "connection opened"
    );
    let vhost = broker.vhost(&negotiated.vhost);
    let permissions = broker
        .users()
        .permissions(negotiated.user.name(), &negotiated.vhost)
        .cloned();
    let (Some(vhost), Some(permissions)) = (vhost, permissions) else {
        // The handshake checked both; a config without them cannot get here.
        return;
    };
    let (queries, queries_rx) = mpsc::channel(registry::QUERIES);
    let mut summary = registry::Summary {
        peer,
        local,
        user: negotiated.user.name().to_owned(),
        vhost: negotiated.vhost.clone(),
        product: negotiated.client.product.clone(),
        client_name: negotiated.client.connection_name.clone(),
        connected_at: crate::durable::now_ms(),
        id: 0,
        queries,
    };
    let registry = broker.open_connections.clone();
    let mut connection = Connection::new(
        broker,
        peer,
        negotiated,
        vhost,
        permissions,
        (frames, writer),
        queries_rx,
    );
    summary.id = connection.handle.id;
    let _listed = registry.register(summary);
    let reason = connection.run().await;
    info!(%peer, user = connection.user.name(), vhost = connection.vhost.name(), %reason, "connection closed");
}

/// Sends connection.close for a failed handshake and waits briefly for close-ok, so the
/// client reads the reason before the socket goes.
async fn close_during_handshake(
    frames: &mut FramedRead<OwnedReadHalf, FrameCodec>,
    writer: &mut OwnedWriteHalf,
    error: &ConnectionError,
) {
    let mut out = Outbound::new(0);
    out.method(0, error.close_method());
    if writer.write_all(&out.buf).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(frame)) = frames.next().await {
            if let Frame::Method {
                method: Method::ConnectionCloseOk(_) | Method::ConnectionClose(_),
                ..
            } = frame
            {
                break;
            }
        }
    })
    .await;
    let _ = writer.shutdown().await;
}

/// What a frame still needs once [`Connection::on_frame`] has done what it could
/// without waiting.
enum Deferred {
    /// Work that waits on queues, the store or other tasks.
    Frame(Frame),
    /// A channel failed on the publish path: it closes, releasing what it holds.
    ChannelError(u16, ChannelError),
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Open,
    /// We sent connection.close; only close / close-ok matter now.
    Closing,
    /// The connection is over; flush and stop.
    Done,
}

/// One client connection: the socket, the channels, and what the handshake settled.
pub(crate) struct Connection {
    pub(crate) broker: Arc<Broker>,
    peer: SocketAddr,
    pub(crate) user: AuthenticatedUser,
    pub(crate) vhost: Arc<Vhost>,
    pub(crate) permissions: Permissions,
    client: ClientInfo,
    /// How queues reach this connection.
    pub(crate) handle: ConnectionHandle,
    events: mpsc::UnboundedReceiver<Batch>,
    channel_max: u16,
    input: Input,
    writer: OwnedWriteHalf,
    pub(crate) out: Outbound,
    heartbeat: Heartbeat,
    pub(crate) channels: NumberMap<u16, Channel>,
    /// Routed messages not yet handed to their queues.
    pub(crate) outgoing: Outgoing,
    /// Some channel has confirms to send.
    pub(crate) confirms_dirty: bool,
    state: State,
    close_reason: String,
    /// Wakes the loop when the broker's resource alarm (memory or disk) changes.
    alarm: watch::Receiver<bool>,
    /// This connection has published: the alarm holds back its reading.
    pub(crate) publishes: bool,
    /// `connection.blocked` was sent and not yet followed by `unblocked`.
    blocked_sent: bool,
    /// Counts this connection among the blocked ones while the alarm holds it back.
    blocked_mark: Option<BlockedMark>,
    /// The management API's questions about this connection's channels.
    queries: mpsc::Receiver<registry::ChannelsQuery>,
    /// How far the message store is durable: confirms of stored messages wait on it.
    store: watch::Receiver<Progress>,
}

impl Connection {
    fn new(
        broker: Arc<Broker>,
        peer: SocketAddr,
        n: Negotiated,
        vhost: Arc<Vhost>,
        permissions: Permissions,
        (frames, writer): (FramedRead<OwnedReadHalf, FrameCodec>, OwnedWriteHalf),
        queries: mpsc::Receiver<registry::ChannelsQuery>,
    ) -> Self {
        let (handle, events) = ConnectionHandle::new();
        let alarm = broker.alarm.subscribe();
        let store = vhost.durable.store.progress();
        Connection {
            broker,
            peer,
            user: n.user,
            vhost,
            permissions,
            client: n.client,
            handle,
            events,
            channel_max: n.channel_max,
            input: Input::new(frames),
            writer,
            out: Outbound::new(n.frame_max),
            heartbeat: Heartbeat::new(n.heartbeat),
            channels: NumberMap::default(),
            outgoing: Outgoing::default(),
            confirms_dirty: false,
            state: State::Open,
            close_reason: String::from("client closed"),
            alarm,
            publishes: false,
            blocked_sent: false,
            blocked_mark: None,
            queries,
            store,
        }
    }

    /// Whether the resource alarm holds this connection's reading back: only
    /// connections that publish are, so consumers keep draining queues.
    fn held_back(&self) -> bool {
        // A closing connection reads on: it waits for close-ok.
        self.publishes && self.is_open() && self.broker.alarm.is_on()
    }

    /// Tells a client that supports it when its connection is blocked and unblocked
    /// (RabbitMQ's `connection.blocked` extension).
    fn notify_blocked(&mut self, held_back: bool) {
        if !self.client.connection_blocked || held_back == self.blocked_sent || !self.is_open() {
            return;
        }
        self.blocked_sent = held_back;
        if held_back {
            self.out.method(
                0,
                ConnectionBlocked {
                    reason: self.broker.alarm.reason().into(),
                },
            );
        } else {
            self.out.method(0, ConnectionUnblocked::default());
        }
    }

    /// False once connection.close was sent or received: nothing more goes out but
    /// the close handshake.
    pub(crate) fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// The open channel `ch`; its absence here is a bug, reported as 541.
    pub(crate) fn channel(&mut self, ch: u16) -> Result<&mut Channel, Error> {
        self.channels
            .get_mut(&ch)
            .ok_or_else(|| ConnectionError::internal_error(format!("channel {ch} vanished")).into())
    }

    /// Runs until the connection ends; returns why.
    async fn run(&mut self) -> String {
        let early_end = self.serve_frames().await;
        // Release queues, consumers and exclusive queues before the last replies
        // (close-ok) go out: once a client has close-ok, its exclusive queues are gone.
        self.release().await;
        if let Some(reason) = early_end {
            return reason;
        }
        // Flush the last replies (close-ok or close) before the socket goes.
        let _ = self.writer.write_all(&self.out.buf).await;
        let _ = self.writer.shutdown().await;
        std::mem::take(&mut self.close_reason)
    }

    /// Reads and answers until the connection is done. Returns a reason when it ended
    /// without a clean close (the socket is unusable or the peer is gone).
    async fn serve_frames(&mut self) -> Option<String> {
        let shutdown = self.broker.shutdown.clone();
        let mut close_deadline = None;
        while self.state != State::Done {
            let held_back = self.held_back();
            self.notify_blocked(held_back);
            if held_back != self.blocked_mark.is_some() {
                self.blocked_mark = held_back.then(|| self.broker.monitoring.mark_blocked());
            }
            if held_back {
                // Not reading, so the client's heartbeats go unseen: count it alive.
                self.heartbeat.read();
            }
            let writable = !self.out.is_full();
            let reading = writable && !held_back;
            let awaits_store = self.awaits_store();
            let closing_timer = async {
                match close_deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled(), if self.state == State::Open => {
                    self.fail(ConnectionError::connection_forced("broker shutdown"));
                }
                written = self.writer.write_buf(&mut self.out.buf), if !self.out.buf.is_empty() => {
                    match written {
                        Ok(0) | Err(_) => return Some("socket closed while writing".into()),
                        Ok(_) => self.heartbeat.wrote(),
                    }
                }
                filled = self.input.fill(), if reading => match filled {
                    Ok(false) => self.end_of_input(),
                    Ok(true) => self.on_input().await,
                    Err(e) => {
                        self.close_reason = format!("read failed: {e}");
                        self.state = State::Done;
                    }
                },
                Some(batch) = self.events.recv(), if writable => {
                    self.on_events(batch).await;
                    self.drain_events().await;
                }
                beat = self.heartbeat.tick() => match beat {
                    Beat::Idle => {}
                    Beat::Send => self.out.heartbeat(),
                    Beat::PeerDead => {
                        warn!(peer = %self.peer, "missed heartbeats from client; closing");
                        return Some("missed heartbeats".into());
                    }
                },
                _ = closing_timer => return Some("no close-ok in time".into()),
                // The alarm changed: the loop re-checks whether to read.
                Ok(()) = self.alarm.changed() => {}
                // Answered whatever the socket does: a stuck consumer is what
                // monitoring most wants to see.
                Some(reply) = self.queries.recv() => {
                    let _ = reply.send(self.describe_channels());
                }
                Ok(()) = self.store.changed(), if awaits_store => self.on_store_progress(),
            }
            if self.confirms_dirty && self.state == State::Open {
                self.flush_confirms();
            }
            if self.state == State::Closing && close_deadline.is_none() {
                close_deadline = Some(tokio::time::Instant::now() + CLOSE_TIMEOUT);
            }
        }
        None
    }

    /// The channels as monitoring sees them, by number.
    fn describe_channels(&self) -> Vec<ChannelInfo> {
        let mut channels: Vec<ChannelInfo> =
            self.channels.values().map(Channel::describe).collect();
        channels.sort_unstable_by_key(|c| c.number);
        channels
    }

    /// Whether a confirm waits for the store to sync.
    fn awaits_store(&self) -> bool {
        self.channels
            .values()
            .any(|c| c.confirms.as_ref().is_some_and(|c| c.awaits_store()))
    }

    /// The store synced more: confirm what it covers.
    fn on_store_progress(&mut self) {
        let progress = self.store.borrow_and_update().clone();
        for channel in self.channels.values_mut() {
            if let Some(confirms) = channel.confirms.as_mut() {
                confirms.on_store(&progress);
            }
        }
        self.confirms_dirty = true;
    }

    /// The frame stream ended: the peer closed, or a decode error ended it (whose close
    /// is already in the write buffer).
    fn end_of_input(&mut self) {
        if self.state == State::Open {
            self.close_reason = "client closed the socket".into();
        }
        self.state = State::Done;
    }

    /// Handles the frames in the read buffer, up to a batch, then hands the
    /// publishes they made to their queues.
    async fn on_input(&mut self) {
        for handled in 1.. {
            if let Some(deferred) = self.on_whole_publish() {
                if let Some(deferred) = deferred {
                    self.on_deferred(deferred).await;
                }
                if handled == READ_BATCH || self.out.is_full() || self.outgoing.is_full() {
                    break;
                }
                continue;
            }
            let frame = match self.input.frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    self.on_bad_frame(e);
                    // Nothing after a bad frame can be trusted to be a frame.
                    self.end_of_input();
                    break;
                }
            };
            // Most frames are handled without waiting; only the others build a future.
            if let Some(deferred) = self.on_frame(frame) {
                self.on_deferred(deferred).await;
            }
            if handled == READ_BATCH
                || self.state == State::Done
                || self.out.is_full()
                || self.outgoing.is_full()
            {
                break;
            }
        }
        self.flush_publishes().await;
    }

    /// Handles a publish lying whole at the front of the read buffer without decoding
    /// its frames, when nothing about it needs the general path. None when it was not
    /// taken; else what is left to do.
    fn on_whole_publish(&mut self) -> Option<Option<Deferred>> {
        if self.state != State::Open {
            return None;
        }
        let buf = self.input.lend();
        let taken = PublishView::peek(&buf, self.input.frame_max())
            .filter(|v| self.takes_whole(v))
            .map(|v| {
                self.heartbeat.read();
                (v.len, v.channel, self.publish_whole(&v))
            });
        self.input.give_back(buf, taken.as_ref().map_or(0, |t| t.0));
        let (_, channel, result) = taken?;
        Some(match result {
            Ok(()) => None,
            Err(Error::Channel(e)) => Some(Deferred::ChannelError(channel, e)),
            Err(Error::Connection(e)) => {
                self.fail(e);
                None
            }
        })
    }

    /// Whether a whole publish can skip the general path: on a serving channel with no
    /// content pending, not `immediate` (refused there), not a direct reply, and small
    /// enough to copy (larger bodies are kept as slices of the buffer instead).
    fn takes_whole(&self, v: &PublishView<'_>) -> bool {
        let limit = self.broker.config().limits.max_message_size;
        self.channels
            .get(&v.channel)
            .is_some_and(|c| !c.is_closing() && c.assembler.is_idle())
            && !v.immediate
            && !(v.exchange.is_empty() && v.routing_key.starts_with(REPLY_TO_PREFIX))
            && v.body.len() <= INLINE_BODY
            && v.body.len() as u64 <= u64::from(limit)
    }

    /// A frame that could not be decoded closes the connection with its reply code.
    fn on_bad_frame(&mut self, e: FrameError) {
        self.heartbeat.read();
        let reply = Reply {
            code: e.error.reply_code(),
            detail: e.error.to_string(),
            class_id: e.class_id,
            method_id: e.method_id,
        };
        self.fail(ConnectionError(reply));
    }

    /// Handles what a frame needs without waiting: heartbeats, connection methods and
    /// the publish path. Hands back what needs more.
    fn on_frame(&mut self, frame: Frame) -> Option<Deferred> {
        self.heartbeat.read();
        if self.state == State::Closing {
            // After sending close, everything but close and close-ok is discarded.
            match frame {
                Frame::Method {
                    channel: 0,
                    method: Method::ConnectionCloseOk(_),
                } => self.state = State::Done,
                Frame::Method {
                    channel: 0,
                    method: Method::ConnectionClose(_),
                } => {
                    self.out.method(0, ConnectionCloseOk::default());
                }
                _ => {}
            }
            return None;
        }
        let result = match frame {
            Frame::Heartbeat => Ok(()),
            Frame::Method { channel: 0, method } => self.on_connection_method(method),
            frame if is_publish_path(&frame) && self.is_serving(frame.channel()) => {
                let id = frame.channel();
                match self.dispatch_content(id, frame) {
                    Ok(()) => Ok(()),
                    Err(Error::Channel(e)) => return Some(Deferred::ChannelError(id, e)),
                    Err(Error::Connection(e)) => Err(e),
                }
            }
            frame => return Some(Deferred::Frame(frame)),
        };
        if let Err(e) = result {
            self.fail(e);
        }
        None
    }

    /// Whether channel `id` is open and not closing.
    fn is_serving(&self, id: u16) -> bool {
        self.channels.get(&id).is_some_and(|c| !c.is_closing())
    }

    /// The rest of a frame's handling, which may wait on queues or the store.
    async fn on_deferred(&mut self, deferred: Deferred) {
        match deferred {
            Deferred::ChannelError(id, e) => self.close_channel(id, e).await,
            Deferred::Frame(frame) => {
                // It may depend on the publishes before it being in their queues.
                self.flush_publishes().await;
                if let Err(e) = self.on_channel_frame(frame).await {
                    self.fail(e);
                }
            }
        }
    }

    fn on_connection_method(&mut self, method: Method) -> Result<(), ConnectionError> {
        match method {
            Method::ConnectionClose(close) => {
                self.close_reason =
                    format!("client closed: {} {}", close.reply_code, close.reply_text);
                self.out.method(0, ConnectionCloseOk::default());
                self.state = State::Done;
                Ok(())
            }
            Method::ConnectionUpdateSecret(update) => {
                // PLAIN credentials: the new secret must be this user's password.
                self.broker
                    .users()
                    .authenticate(self.user.name(), &update.new_secret, self.peer.ip())
                    .map_err(|_| {
                        ConnectionError::access_refused("new secret rejected").in_method(10, 70)
                    })?;
                self.out.method(0, ConnectionUpdateSecretOk::default());
                Ok(())
            }
            // RabbitMQ's code and text for a non-connection method on channel 0.
            other => Err(ConnectionError::channel_error(
                "unexpected method in connection state running",
            )
            .in_method(other.class_id(), other.method_id())),
        }
    }

    async fn on_channel_frame(&mut self, frame: Frame) -> Result<(), ConnectionError> {
        let id = frame.channel();
        if id == 0 {
            return Err(ConnectionError::unexpected_frame(
                "content frame on channel 0",
            ));
        }
        let Some(channel) = self.channels.get_mut(&id) else {
            return self.open_channel(id, frame);
        };
        if channel.is_closing() {
            match frame {
                Frame::Method {
                    method: Method::ChannelCloseOk(_),
                    ..
                } => {
                    self.channels.remove(&id);
                }
                Frame::Method {
                    method: Method::ChannelClose(_),
                    ..
                } => self.out.method(id, ChannelCloseOk::default()),
                _ => {}
            }
            return Ok(());
        }
        if let Frame::Method {
            method: Method::ChannelClose(_),
            ..
        } = frame
        {
            if let Some(mut channel) = self.channels.remove(&id) {
                channel.release(self.handle.id).await;
            }
            self.out.method(id, ChannelCloseOk::default());
            return Ok(());
        }
        match self.dispatch(id, frame).await {
            Ok(()) => Ok(()),
            Err(Error::Channel(e)) => {
                self.close_channel(id, e).await;
                Ok(())
            }
            Err(Error::Connection(e)) => Err(e),
        }
    }

    /// A channel error: channel.close goes out, and the channel gives back its
    /// consumers and unacked messages while it waits for close-ok.
    async fn close_channel(&mut self, id: u16, e: ChannelError) {
        debug!(peer = %self.peer, channel = id, error = %e, "channel error");
        self.out.method(id, e.close_method());
        if let Some(channel) = self.channels.get_mut(&id) {
            channel.start_closing();
            channel.release(self.handle.id).await;
        }
    }

    /// Gives back everything the connection held: its channels' consumers and
    /// unacked messages, and its exclusive queues.
    async fn release(&mut self) {
        // What was read was accepted: it reaches its queues even as the socket goes.
        self.flush_publishes().await;
        for (_, mut channel) in self.channels.drain() {
            channel.release(self.handle.id).await;
        }
        self.handle.close();
        self.vhost.connection_closed(self.handle.id).await;
    }

    fn open_channel(&mut self, id: u16, frame: Frame) -> Result<(), ConnectionError> {
        match frame {
            Frame::Method {
                method: Method::ChannelOpen(_),
                ..
            } => {
                if id > self.channel_max {
                    return Err(ConnectionError::not_allowed(format!(
                        "channel number {id} exceeds channel_max {}",
                        self.channel_max
                    ))
                    .in_method(20, 10));
                }
                self.channels.insert(id, Channel::new(id));
                self.out.method(id, warren_codec::ChannelOpenOk::default());
                Ok(())
            }
            Frame::Method { method, .. } => Err(ConnectionError::channel_error(format!(
                "expected 'channel.open' on channel {id}, got '{}'",
                method.name()
            ))
            .in_method(method.class_id(), method.method_id())),
            _ => Err(ConnectionError::unexpected_frame(format!(
                "content frame on channel {id}, which is not open"
            ))),
        }
    }

    /// Sends connection.close with the error and waits for close-ok.
    fn fail(&mut self, error: ConnectionError) {
        warn!(peer = %self.peer, user = self.user.name(), error = %error, "closing connection");
        self.close_reason = error.to_string();
        self.out.method(0, error.close_method());
        self.state = State::Closing;
    }
}
