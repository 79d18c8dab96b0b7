//! Channels: the cloneable [`Channel`] handle, and the state the connection task
//! keeps for each channel.
//!
//! The handle holds no channel state: every call becomes a command in the connection
//! task's mailbox, and synchronous methods wait on a oneshot for the task's answer.
//! The task owns the state ([`state::ChannelState`]): the FIFO of calls awaiting their
//! reply (AMQP answers a channel's synchronous methods in order, so calls pipeline),
//! the consumers, the confirm tracker, the content assembler. It publishes the
//! channel's open/closed state through a `watch`, which the handle reads to fail fast
//! with the close reason.

mod assembler;
mod basic;
mod incoming;
mod pending;
pub(crate) mod state;
mod topology;

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};
use warren_codec::{Method, ShortStr};

use crate::connection::command::{ChannelCommand, ChannelKey, Command, MethodId};
use crate::connection::recorded::Record;
use crate::error::Error;
use crate::publish::{ReturnedMessage, Returns};
use crate::status::{ChannelStatus, ConnectionStatus};

/// An AMQP channel: a lightweight session on a connection, from
/// [`Connection::open_channel`](crate::Connection::open_channel).
///
/// Cheap to clone; clones share the channel. Calls on one channel may run
/// concurrently from several tasks: synchronous methods are answered in the order the
/// connection task sends them.
///
/// When the broker closes the channel (a soft error such as 404 NOT_FOUND), every
/// waiting call and every later call fails with [`Error::ChannelClosed`] carrying the
/// broker's reason, and [`Channel::is_open`] turns false. A channel stays open until
/// closed by [`Channel::close`], the broker, or the connection closing; dropping the
/// handles does not close it.
#[derive(Clone)]
pub struct Channel {
    shared: Arc<ChannelShared>,
}

/// What every handle of one channel shares. Immutable after creation, except the
/// returns receiver that one caller takes.
pub(crate) struct ChannelShared {
    pub(crate) key: ChannelKey,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) status: watch::Receiver<ChannelStatus>,
    pub(crate) connection: watch::Receiver<ConnectionStatus>,
    /// A std Mutex: locked once, by the `returns()` call that takes the receiver,
    /// never across an await.
    pub(crate) returns: Mutex<Option<mpsc::Receiver<ReturnedMessage>>>,
    /// The connection recovers, so topology changes are reported to it.
    pub(crate) recording: bool,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.id())
            .field("open", &self.is_open())
            .finish()
    }
}

impl Channel {
    pub(crate) fn new(shared: Arc<ChannelShared>) -> Self {
        Channel { shared }
    }

    /// The channel number.
    pub fn id(&self) -> u16 {
        self.shared.key.id
    }

    /// False once the channel was closed, by either side, or its connection closed.
    pub fn is_open(&self) -> bool {
        self.shared.status.borrow().closed.is_none()
    }

    /// Why the channel closed: the broker's [`Error::ChannelClosed`], the connection's
    /// reason, or code 200 when the client closed it. `None` while open.
    pub fn close_reason(&self) -> Option<Error> {
        self.shared.status.borrow().closed.clone()
    }

    /// True after [`Channel::confirm_select`].
    pub fn is_confirm_mode(&self) -> bool {
        self.shared.status.borrow().confirms
    }

    /// The messages returned on this channel that are not reported through a
    /// publish's confirmation. The first call takes the stream; later calls (on any
    /// clone) get `None`. Returns arriving before it is taken are buffered.
    pub fn returns(&self) -> Option<Returns> {
        // A poisoned lock only means a panic elsewhere mid-take; the Option is intact.
        let mut slot = self
            .shared
            .returns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.take().map(|rx| Returns { rx })
    }

    /// Closes the channel (channel.close 200) and waits for close-ok. Calls waiting on
    /// the channel then fail, its consumers' streams end, and unconfirmed publishes
    /// fail with [`Error::ChannelClosed`] code 200. Closing a closed channel succeeds.
    pub async fn close(&self) -> Result<(), Error> {
        if !self.is_open() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        match self.submit(ChannelCommand::Close { reply }).await {
            Ok(()) => {}
            Err(_) if !self.is_open() => return Ok(()),
            Err(e) => return Err(e),
        }
        // However the task answers, the channel is closed now: by this call, by a
        // close from the broker that crossed it, or with the connection.
        let _ = rx.await;
        Ok(())
    }

    /// The reason to report for a call on a channel that is not open.
    pub(crate) fn closed_reason(&self) -> Error {
        if let Some(reason) = self.shared.status.borrow().closed.clone() {
            return reason;
        }
        if let Some(reason) = self.shared.connection.borrow().closed.clone() {
            return reason;
        }
        Error::ChannelNotOpen
    }

    /// Fails fast when the channel is known to be closed.
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        match &self.shared.status.borrow().closed {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// Queues a command for the connection task, waiting for mailbox space.
    pub(crate) async fn submit(&self, command: ChannelCommand) -> Result<(), Error> {
        self.check_open()?;
        self.shared
            .commands
            .send(Command::Channel {
                key: self.shared.key,
                command,
            })
            .await
            .map_err(|_| self.closed_reason())
    }

    /// Waits for the task's answer, mapping "not open" to the channel's close reason.
    pub(crate) async fn answer<T>(
        &self,
        rx: oneshot::Receiver<Result<T, Error>>,
    ) -> Result<T, Error> {
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Error::ChannelNotOpen)) | Err(_) => Err(self.closed_reason()),
            Ok(Err(e)) => Err(e),
        }
    }

    /// Sends a synchronous method and waits for the method answering it.
    pub(crate) async fn call(&self, method: Method, expect: MethodId) -> Result<Method, Error> {
        let (reply, rx) = oneshot::channel();
        self.submit(ChannelCommand::Call {
            method,
            expect,
            reply,
        })
        .await?;
        self.answer(rx).await
    }

    /// True when topology changes must be reported with [`Channel::record`].
    pub(crate) fn recording(&self) -> bool {
        self.shared.recording
    }

    /// Reports a topology change the broker accepted, for a recovery to replay.
    pub(crate) async fn record(&self, record: Record) {
        // A closed mailbox means a closed connection: nothing left to recover.
        let _ = self.shared.commands.send(Command::Record(record)).await;
    }

    /// Queues a cancel for a dropped consumer, without waiting (from `Drop`).
    pub(crate) fn cancel_on_drop(&self, consumer_tag: &ShortStr) {
        self.try_submit(ChannelCommand::Cancel {
            consumer_tag: consumer_tag.clone(),
            reply: None,
        });
    }

    /// Queues an asynchronous method without waiting (from `Drop`).
    pub(crate) fn send_on_drop(&self, method: Method) {
        self.try_submit(ChannelCommand::Send { method });
    }

    fn try_submit(&self, command: ChannelCommand) {
        if self.is_open() {
            let _ = self.shared.commands.try_send(Command::Channel {
                key: self.shared.key,
                command,
            });
        }
    }
}

/// A name as a short string, refusing more than 255 bytes.
pub(crate) fn name(value: &str, what: &str) -> Result<ShortStr, Error> {
    ShortStr::new(value).map_err(|e| Error::InvalidArgument(format!("{what} '{value}': {e}")))
}

/// The method a reply was expected to be, for an error when the broker sent another.
pub(crate) fn unexpected(method: &Method) -> Error {
    Error::Protocol(format!("unexpected reply {}", method.name()))
}
