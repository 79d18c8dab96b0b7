//! The connection task: the one owner of the socket and of every channel's state.
//!
//! One `select!` loop multiplexes four sources: frames from the socket, commands from
//! the handles' mailbox, the write buffer draining into the socket, and the heartbeat
//! ticker. Commands are taken in batches and their frames appended to one buffer, so a
//! burst of publishes leaves in a few large writes rather than one write each. Reading
//! and writing proceed independently: a slow writer never stops confirms from being read.
//!
//! Backpressure: the mailbox is bounded, and it is not read while the write buffer is
//! above `HIGH_WATER`, so publishers wait for the socket. Reading stops while a
//! consumer's buffer is full (a [`Stall`]), so the broker waits for the consumer.
//!
//! After the client sends connection.close, everything from the server but close and
//! close-ok is ignored, and commands fail with the closing reason. The task ends when
//! the connection is closed either way, the socket fails, heartbeats stop, or every
//! handle is dropped (then it closes the connection first).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::OwnedPermit;
use tokio::sync::mpsc::error::{SendError, TryRecvError};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use warren_codec::{
    ChannelOpen, CodecError, ConnectionClose, ConnectionCloseOk, Frame, Method, ShortStr,
};

use super::command::{ChannelCommand, ChannelKey, Command, Reply};
use super::handshake::{Reader, Tuning, Writer};
use super::heartbeat::{Beat, Heartbeat};
use super::recover::{Recoverable, Restored, reconnect};
use crate::channel::state::{ChannelState, Stall};
use crate::channel::{Channel, ChannelShared};
use crate::delivery::Delivery;
use crate::error::Error;
use crate::outbound::Out;
use crate::publish::RETURNS_BUFFER;
use crate::status::{ChannelStatus, ConnectionStatus};
use crate::violation::Violation;

/// Stop taking commands while this many bytes wait for the socket.
const HIGH_WATER: usize = 1 << 20;

/// Commands handled per wake-up before the socket gets a turn.
const BATCH: usize = 128;

/// Commands taken from the mailbox while recovering before callers wait for room.
const MAILBOX_DEFERRED: usize = 256;

/// The connection's state.
enum Phase {
    Open,
    /// connection.close was sent; waiting for close-ok until `deadline`.
    Closing {
        reason: Error,
        clean: bool,
        waiters: Vec<Reply<()>>,
        deadline: Instant,
    },
}

/// How the connection ended.
struct Ended {
    reason: Error,
    /// Closed by the client on purpose: consumers end without an error.
    clean: bool,
    waiters: Vec<Reply<()>>,
}

/// One wake-up of the loop.
enum Event {
    Wrote(std::io::Result<usize>),
    Frame(Option<Result<Frame, CodecError>>),
    Command(Option<Command>),
    Unstalled(Result<OwnedPermit<Delivery>, SendError<()>>),
    Tick,
    CloseTimeout,
}

/// The connection task.
pub(crate) struct Driver {
    reader: Reader,
    writer: Writer,
    wbuf: BytesMut,
    mailbox: mpsc::Receiver<Command>,
    mailbox_open: bool,
    /// Weak, so the task does not keep its own mailbox open.
    commands: mpsc::WeakSender<Command>,
    status: watch::Sender<ConnectionStatus>,
    channels: HashMap<u16, ChannelState>,
    tuning: Tuning,
    next_channel: u16,
    next_serial: u64,
    heartbeat: Option<Heartbeat>,
    stall: Option<Stall>,
    phase: Phase,
    close_timeout: Duration,
    /// Present when the connection recovers from a loss.
    recovery: Option<Recoverable>,
    /// Commands taken from the mailbox while recovering, carried out once recovered.
    deferred: VecDeque<Command>,
}

impl Driver {
    pub(crate) fn new(
        (reader, writer): (Reader, Writer),
        mailbox: mpsc::Receiver<Command>,
        commands: mpsc::WeakSender<Command>,
        status: watch::Sender<ConnectionStatus>,
        tuning: Tuning,
        close_timeout: Duration,
        recovery: Option<Recoverable>,
    ) -> Self {
        Driver {
            reader,
            writer,
            wbuf: BytesMut::with_capacity(64 * 1024),
            mailbox,
            mailbox_open: true,
            commands,
            status,
            channels: HashMap::new(),
            tuning,
            next_channel: 1,
            next_serial: 0,
            heartbeat: Heartbeat::new(tuning.heartbeat),
            stall: None,
            phase: Phase::Open,
            close_timeout,
            recovery,
            deferred: VecDeque::new(),
        }
    }

    /// Serves the connection until it ends (recovering from losses if asked to), then
    /// fails whatever is still waiting.
    pub(crate) async fn run(mut self) {
        loop {
            let ended = self.serve().await;
            let ended = if self.recovers_from(&ended) {
                match self.recover(ended.reason).await {
                    Ok(()) => continue,
                    Err(ended) => ended,
                }
            } else {
                ended
            };
            self.shutdown(ended).await;
            return;
        }
    }

    /// A loss the broker did not mean as final: the socket failed, heartbeats stopped,
    /// or the broker closed the connection for a restart or failure of its own (320
    /// CONNECTION_FORCED, 541 INTERNAL_ERROR). Refusals of the client's own doing (a
    /// protocol error, an access refusal) would only repeat.
    fn recovers_from(&self, ended: &Ended) -> bool {
        self.recovery.is_some()
            && !ended.clean
            && ended.waiters.is_empty()
            && match &ended.reason {
                Error::Io(_) | Error::MissedHeartbeats(_) => true,
                Error::ConnectionClosed { code, .. } => matches!(code, 320 | 541),
                _ => false,
            }
    }

    /// Reconnects with backoff until it succeeds, the attempts run out, or the
    /// application closes the connection (or drops every handle) meanwhile.
    async fn recover(&mut self, lost: Error) -> Result<(), Ended> {
        warn!(reason = %lost, "connection lost; recovering");
        if matches!(lost, Error::ConnectionClosed { .. }) {
            // The close-ok answering the broker's close, best effort.
            let flush = self.writer.write_all_buf(&mut self.wbuf);
            let _ = tokio::time::timeout(Duration::from_secs(1), flush).await;
        }
        self.wbuf.clear();
        self.stall = None;
        self.heartbeat = None;
        self.status.send_modify(|s| {
            s.recovering = true;
            s.blocked = None;
        });
        self.channels.retain(|_, channel| channel.lost(&lost));
        let Some(recovery) = self.recovery.as_ref() else {
            return Err(self.end(lost));
        };
        let settings = recovery.settings();
        let mut attempt = 0u32;
        let restored = loop {
            attempt = attempt.saturating_add(1);
            let delay = settings.delay(attempt);
            let attempting = async {
                tokio::time::sleep(delay).await;
                reconnect(&recovery.options, &recovery.topology).await
            };
            tokio::pin!(attempting);
            let outcome = loop {
                tokio::select! {
                    outcome = &mut attempting => break outcome,
                    command = self.mailbox.recv(), if self.deferred.len() < MAILBOX_DEFERRED => {
                        match command {
                            Some(Command::CloseConnection { reply }) => {
                                return Err(Ended {
                                    reason: Error::closed_by_client(true),
                                    clean: true,
                                    waiters: vec![reply],
                                });
                            }
                            Some(command) => self.deferred.push_back(command),
                            None => {
                                debug!("every handle dropped while recovering; giving up");
                                return Err(Ended {
                                    reason: Error::closed_by_client(true),
                                    clean: true,
                                    waiters: Vec::new(),
                                });
                            }
                        }
                    }
                }
            };
            match outcome {
                Ok(restored) => break restored,
                Err(e) => {
                    warn!(attempt, error = %e, "reconnection attempt failed");
                    if settings.max_attempts.is_some_and(|max| attempt >= max) {
                        return Err(Ended {
                            reason: e,
                            clean: false,
                            waiters: Vec::new(),
                        });
                    }
                }
            }
        };
        info!(attempt, "connection recovered");
        self.install(restored);
        Ok(())
    }

    /// Puts the recovered connection in place: channels reopen and consumers restart,
    /// then the commands that waited run.
    fn install(&mut self, restored: Restored) {
        let Restored {
            reader,
            writer,
            tuning,
            renames,
            blocked,
        } = restored;
        self.reader = reader;
        self.writer = writer;
        self.tuning = tuning;
        self.heartbeat = Heartbeat::new(tuning.heartbeat);
        if let Some(recovery) = &mut self.recovery {
            recovery.topology.rename(&renames);
        }
        let mut out = Out {
            buf: &mut self.wbuf,
            frame_max: self.tuning.frame_max,
        };
        for channel in self.channels.values_mut() {
            channel.reopen(&renames, &mut out);
        }
        self.status.send_modify(|s| {
            s.recovering = false;
            s.recoveries += 1;
            s.blocked = blocked;
        });
        while let Some(command) = self.deferred.pop_front() {
            self.handle_command(command);
        }
    }

    async fn serve(&mut self) -> Ended {
        loop {
            let reading = self.stall.is_none();
            let accepting = self.mailbox_open && self.wbuf.len() < HIGH_WATER;
            let deadline = match &self.phase {
                Phase::Closing { deadline, .. } => Some(*deadline),
                Phase::Open => None,
            };
            let event = tokio::select! {
                written = self.writer.write_buf(&mut self.wbuf), if !self.wbuf.is_empty() => {
                    Event::Wrote(written)
                }
                frame = self.reader.next(), if reading => Event::Frame(frame),
                command = self.mailbox.recv(), if accepting => Event::Command(command),
                permit = stalled(&mut self.stall) => Event::Unstalled(permit),
                () = Heartbeat::tick(&mut self.heartbeat) => Event::Tick,
                () = until(deadline) => Event::CloseTimeout,
            };
            if let Some(ended) = self.handle(event, reading).await {
                return ended;
            }
        }
    }

    async fn handle(&mut self, event: Event, reading: bool) -> Option<Ended> {
        match event {
            Event::Wrote(Ok(0)) => {
                Some(self.end(std::io::Error::from(std::io::ErrorKind::WriteZero).into()))
            }
            Event::Wrote(Ok(_)) => {
                if let Some(h) = &mut self.heartbeat {
                    h.wrote();
                }
                if self.wbuf.is_empty()
                    && let Err(e) = self.writer.flush().await
                {
                    return Some(self.end(e.into()));
                }
                None
            }
            Event::Wrote(Err(e)) => Some(self.end(e.into())),
            Event::Frame(Some(Ok(frame))) => {
                if let Some(h) = &mut self.heartbeat {
                    h.read();
                }
                self.handle_frame(frame)
            }
            Event::Frame(Some(Err(CodecError::Io(e)))) => Some(self.end(e.into())),
            Event::Frame(Some(Err(CodecError::Frame(e)))) => {
                self.violate(Violation {
                    code: e.error.reply_code(),
                    text: e.to_string(),
                });
                None
            }
            Event::Frame(None) => Some(
                self.end(
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server closed the socket",
                    )
                    .into(),
                ),
            ),
            Event::Command(Some(command)) => {
                self.handle_command(command);
                self.drain_mailbox();
                None
            }
            Event::Command(None) => {
                self.mailbox_closed();
                None
            }
            Event::Unstalled(permit) => {
                if let Some(h) = &mut self.heartbeat {
                    h.read();
                }
                if let Some(stall) = self.stall.take() {
                    let mut out = Out {
                        buf: &mut self.wbuf,
                        frame_max: self.tuning.frame_max,
                    };
                    match self.channels.get_mut(&stall.key.id) {
                        Some(channel) if channel.key == stall.key => {
                            channel.resume_stall(stall, permit, &mut out)
                        }
                        _ => {}
                    }
                }
                None
            }
            Event::Tick => match self.heartbeat.as_mut().map(|h| h.check(reading)) {
                Some(Beat::Send) => {
                    Frame::Heartbeat.encode(&mut self.wbuf);
                    None
                }
                Some(Beat::Dead(silent)) => Some(self.end(Error::MissedHeartbeats(silent))),
                Some(Beat::Idle) | None => None,
            },
            Event::CloseTimeout => {
                warn!("no connection.close-ok from the server in time; dropping the socket");
                Some(self.end(Error::Timeout(self.close_timeout)))
            }
        }
    }

    /// Takes further commands already waiting, up to a batch, while the buffer has room.
    fn drain_mailbox(&mut self) {
        for _ in 0..BATCH {
            if self.wbuf.len() >= HIGH_WATER {
                return;
            }
            match self.mailbox.try_recv() {
                Ok(command) => self.handle_command(command),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.mailbox_closed();
                    return;
                }
            }
        }
    }

    /// Every handle is gone: nobody can use the connection, so close it.
    fn mailbox_closed(&mut self) {
        self.mailbox_open = false;
        debug!("every handle dropped; closing the connection");
        self.begin_close(200, "Goodbye", Error::closed_by_client(true), true, None);
    }

    fn handle_command(&mut self, command: Command) {
        if let Phase::Closing {
            reason, waiters, ..
        } = &mut self.phase
        {
            match command {
                Command::CloseConnection { reply } => waiters.push(reply),
                Command::OpenChannel { reply } => {
                    let _ = reply.send(Err(reason.clone()));
                }
                Command::Channel { command, .. } => command.fail(reason.clone()),
                Command::Record(_) => {}
            }
            return;
        }
        match command {
            Command::Record(record) => {
                if let Some(recovery) = &mut self.recovery {
                    recovery.record(record);
                }
            }
            Command::OpenChannel { reply } => self.open_channel(reply),
            Command::CloseConnection { reply } => self.begin_close(
                200,
                "Goodbye",
                Error::closed_by_client(true),
                true,
                Some(reply),
            ),
            Command::Channel { key, command } => self.channel_command(key, command),
        }
    }

    fn channel_command(&mut self, key: ChannelKey, command: ChannelCommand) {
        // A cancel of the stalled consumer, or a close of its channel, must not wait
        // for the consumer to make room: that could be never.
        let releases_stall = self.stall.as_ref().is_some_and(|stall| {
            stall.key == key
                && match &command {
                    ChannelCommand::Cancel { consumer_tag, .. } => {
                        *consumer_tag == stall.consumer_tag
                    }
                    ChannelCommand::Close { .. } => true,
                    _ => false,
                }
        });
        let released = if releases_stall {
            self.stall.take()
        } else {
            None
        };
        let mut out = Out {
            buf: &mut self.wbuf,
            frame_max: self.tuning.frame_max,
        };
        match self.channels.get_mut(&key.id) {
            Some(channel) if channel.key == key => {
                if let Some(stall) = released {
                    channel.release_stall(stall, &mut out);
                }
                channel.command(command, &mut out);
            }
            _ => command.fail(Error::ChannelNotOpen),
        }
    }

    fn open_channel(&mut self, reply: Reply<Channel>) {
        let Some(id) = self.free_channel() else {
            let _ = reply.send(Err(Error::ChannelLimitReached {
                channel_max: self.channel_max(),
            }));
            return;
        };
        // The command came from a live handle, so the mailbox has a sender.
        let Some(commands) = self.commands.upgrade() else {
            return;
        };
        let key = ChannelKey {
            id,
            serial: self.next_serial,
        };
        self.next_serial = self.next_serial.wrapping_add(1);
        let (status_tx, status_rx) = watch::channel(ChannelStatus::default());
        let (returns_tx, returns_rx) = mpsc::channel(RETURNS_BUFFER);
        let shared = Arc::new(ChannelShared {
            key,
            commands,
            status: status_rx,
            connection: self.status.subscribe(),
            returns: Mutex::new(Some(returns_rx)),
            recording: self.recovery.is_some(),
        });
        Frame::method(id, ChannelOpen::default()).encode(&mut self.wbuf);
        self.channels.insert(
            id,
            ChannelState::opening(key, status_tx, returns_tx, shared, reply),
        );
    }

    fn channel_max(&self) -> u16 {
        match self.tuning.channel_max {
            0 => u16::MAX,
            max => max,
        }
    }

    /// The next free channel number, going round from the last one handed out so a
    /// number just closed is not reused at once.
    fn free_channel(&mut self) -> Option<u16> {
        let max = self.channel_max();
        for _ in 0..max {
            let id = self.next_channel;
            self.next_channel = if id >= max { 1 } else { id + 1 };
            if !self.channels.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    fn handle_frame(&mut self, frame: Frame) -> Option<Ended> {
        if matches!(self.phase, Phase::Closing { .. }) {
            // Only close and close-ok matter once connection.close is sent.
            return match frame {
                Frame::Method {
                    channel: 0,
                    method: Method::ConnectionCloseOk(_),
                } => Some(self.end(Error::closed_by_client(true))),
                Frame::Method {
                    channel: 0,
                    method: Method::ConnectionClose(_),
                } => {
                    Frame::method(0, ConnectionCloseOk {}).encode(&mut self.wbuf);
                    Some(self.end(Error::closed_by_client(true)))
                }
                _ => None,
            };
        }
        let id = frame.channel();
        if id == 0 {
            return self.connection_frame(frame);
        }
        let mut out = Out {
            buf: &mut self.wbuf,
            frame_max: self.tuning.frame_max,
        };
        let Some(channel) = self.channels.get_mut(&id) else {
            debug!(channel = id, "frame for a channel not open ignored");
            return None;
        };
        let outcome = channel.frame(frame, &mut out);
        if channel.is_finished() {
            self.channels.remove(&id);
        }
        match outcome {
            Ok(stall) => self.stall = stall,
            Err(violation) => self.violate(violation),
        }
        None
    }

    fn connection_frame(&mut self, frame: Frame) -> Option<Ended> {
        let method = match frame {
            Frame::Heartbeat => return None,
            Frame::Method { method, .. } => method,
            Frame::Header { .. } | Frame::Body { .. } => {
                self.violate(Violation::unexpected("content frame on channel 0"));
                return None;
            }
        };
        match method {
            Method::ConnectionClose(close) => {
                Frame::method(0, ConnectionCloseOk {}).encode(&mut self.wbuf);
                Some(Ended {
                    reason: Error::ConnectionClosed {
                        code: close.reply_code,
                        text: close.reply_text.to_string(),
                        class_id: close.class_id,
                        method_id: close.method_id,
                    },
                    clean: false,
                    waiters: Vec::new(),
                })
            }
            Method::ConnectionBlocked(blocked) => {
                info!(reason = %blocked.reason, "connection blocked by the server");
                self.status
                    .send_modify(|s| s.blocked = Some(blocked.reason.to_string()));
                None
            }
            Method::ConnectionUnblocked(_) => {
                info!("connection unblocked by the server");
                self.status.send_modify(|s| s.blocked = None);
                None
            }
            other => {
                self.violate(Violation::command_invalid(format!(
                    "unexpected {} on channel 0",
                    other.name()
                )));
                None
            }
        }
    }

    /// The server broke the protocol: close the connection with the violation's code.
    fn violate(&mut self, violation: Violation) {
        warn!(code = violation.code.code(), text = %violation.text, "server protocol violation; closing");
        let reason = violation.to_error();
        self.begin_close(violation.code.code(), &violation.text, reason, false, None);
    }

    /// Sends connection.close (once) and waits for close-ok from then on.
    fn begin_close(
        &mut self,
        code: u16,
        text: &str,
        reason: Error,
        clean: bool,
        waiter: Option<Reply<()>>,
    ) {
        match &mut self.phase {
            Phase::Closing { waiters, .. } => waiters.extend(waiter),
            Phase::Open => {
                // The broker requeues the stalled delivery when the connection closes;
                // waiting for its consumer would hold up the close-ok.
                self.stall = None;
                Frame::method(
                    0,
                    ConnectionClose {
                        reply_code: code,
                        reply_text: ShortStr::from(text),
                        class_id: 0,
                        method_id: 0,
                    },
                )
                .encode(&mut self.wbuf);
                self.phase = Phase::Closing {
                    reason,
                    clean,
                    waiters: waiter.into_iter().collect(),
                    deadline: Instant::now() + self.close_timeout,
                };
            }
        }
    }

    /// The connection ended with `reason`, or with the reason of a close in progress.
    fn end(&mut self, reason: Error) -> Ended {
        match std::mem::replace(&mut self.phase, Phase::Open) {
            Phase::Closing {
                reason,
                clean,
                waiters,
                ..
            } => Ended {
                reason,
                clean,
                waiters,
            },
            Phase::Open => Ended {
                reason,
                clean: false,
                waiters: Vec::new(),
            },
        }
    }

    async fn shutdown(mut self, ended: Ended) {
        let Ended {
            reason,
            clean,
            waiters,
        } = ended;
        if clean {
            info!("connection closed");
        } else {
            warn!(reason = %reason, "connection closed");
        }
        self.stall = None;
        // Status first: a caller woken by the failures below already sees it closed.
        self.status.send_modify(|s| {
            s.closed.get_or_insert_with(|| reason.clone());
            s.recovering = false;
        });
        for (_, mut channel) in self.channels.drain() {
            channel.finish(reason.clone(), clean);
        }
        self.mailbox.close();
        let mut deferred = std::mem::take(&mut self.deferred);
        while let Some(command) = deferred
            .pop_front()
            .or_else(|| self.mailbox.try_recv().ok())
        {
            match command {
                Command::OpenChannel { reply } => {
                    let _ = reply.send(Err(reason.clone()));
                }
                Command::CloseConnection { reply } => {
                    let _ = reply.send(Ok(()));
                }
                Command::Channel { command, .. } => command.fail(reason.clone()),
                Command::Record(_) => {}
            }
        }
        // The connection is closed as far as callers are concerned; what remains is
        // socket hygiene.
        for waiter in waiters {
            let _ = waiter.send(Ok(()));
        }
        // Best effort: the close-ok answering the server's close.
        let flush = async {
            self.writer.write_all_buf(&mut self.wbuf).await?;
            self.writer.shutdown().await
        };
        let _ = tokio::time::timeout(self.close_timeout, flush).await;
    }
}

/// Waits for room for the stalled delivery; never resolves without a stall.
async fn stalled(stall: &mut Option<Stall>) -> Result<OwnedPermit<Delivery>, SendError<()>> {
    match stall {
        Some(stall) => stall.ready().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`; never resolves without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
