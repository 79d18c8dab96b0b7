//! Connections: the cloneable [`Connection`] handle, connecting (TCP, handshake), and
//! the task that owns the socket.

pub(crate) mod command;
mod driver;
mod handshake;
mod heartbeat;
pub(crate) mod recorded;
mod recover;

use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::FramedRead;
use warren_codec::{FieldTable, FrameCodec};

use self::command::Command;
use self::driver::Driver;
use self::handshake::{HANDSHAKE_FRAME_MAX, Negotiated, Reader, Tuning, Writer, handshake};
use self::recover::Recoverable;
use crate::channel::Channel;
use crate::error::Error;
use crate::status::ConnectionStatus;
use crate::uri::ConnectOptions;

/// Commands the connection task's mailbox holds before callers wait for room.
const MAILBOX: usize = 256;

/// A connection to an AMQP 0-9-1 broker.
///
/// Cheap to clone; clones share the connection. A background task owns the socket:
/// it batches writes, reads frames, answers heartbeats and routes frames to channels.
/// The connection closes on [`Connection::close`], when the broker closes it, when the
/// socket fails or heartbeats stop, or once every handle (connections, channels,
/// consumers, deliveries) is dropped.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<ConnectionShared>,
}

struct ConnectionShared {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<ConnectionStatus>,
    tuning: Tuning,
    server_properties: FieldTable,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("open", &self.is_open())
            .field("channel_max", &self.shared.tuning.channel_max)
            .field("frame_max", &self.shared.tuning.frame_max)
            .field("heartbeat", &self.shared.tuning.heartbeat)
            .finish()
    }
}

impl Connection {
    /// Connects to the broker an AMQP URI names (see [`ConnectOptions`] for the URI
    /// form), authenticates with PLAIN and opens the vhost.
    ///
    /// Fails with [`Error::InvalidUri`], [`Error::Io`] when the TCP connection fails,
    /// [`Error::Timeout`] past the connection timeout, or
    /// [`Error::ConnectionClosed`] when the broker refuses: 403 ACCESS_REFUSED for bad
    /// credentials, 530 NOT_ALLOWED for an unknown vhost or one the user may not use.
    pub async fn connect(uri: &str) -> Result<Connection, Error> {
        Connection::connect_with(ConnectOptions::from_uri(uri)?).await
    }

    /// Connects with explicit options (for instance a URI's options with a
    /// connection name added).
    pub async fn connect_with(options: ConnectOptions) -> Result<Connection, Error> {
        let timeout = options.connection_timeout;
        let connecting = async {
            let (reader, writer, negotiated) = dial(&options).await?;
            Ok(start(reader, writer, negotiated, &options, true))
        };
        tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }

    /// Runs the connection over a stream already connected to the broker (a TLS
    /// stream, an in-memory pipe in tests). `options.host` and `options.port` are
    /// not used.
    pub async fn connect_on<S>(stream: S, options: ConnectOptions) -> Result<Connection, Error>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let timeout = options.connection_timeout;
        let (read, write) = tokio::io::split(stream);
        let connecting = async {
            let (read, write): (Pin<Box<dyn AsyncRead + Send>>, Writer) =
                (Box::pin(read), Box::pin(write));
            let mut reader: Reader = FramedRead::new(read, FrameCodec::new(HANDSHAKE_FRAME_MAX));
            let mut writer = write;
            let negotiated = handshake(&mut reader, &mut writer, &options).await?;
            // There is no address to dial again: no recovery over a given stream.
            Ok(start(reader, writer, negotiated, &options, false))
        };
        tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }

    /// Opens a channel (channel.open) on the lowest free number after the last one
    /// handed out. Fails with [`Error::ChannelLimitReached`] when every number up to
    /// the negotiated channel-max is in use.
    pub async fn open_channel(&self) -> Result<Channel, Error> {
        let (reply, rx) = oneshot::channel();
        self.submit(Command::OpenChannel { reply }).await?;
        match rx.await {
            Ok(outcome) => outcome,
            Err(_) => Err(self.closed_reason()),
        }
    }

    /// Closes the connection (connection.close 200) and waits for close-ok, or for
    /// the connection timeout. Every channel closes with it: waiting calls fail,
    /// consumers' streams end. Closing a closed connection succeeds.
    pub async fn close(&self) -> Result<(), Error> {
        if !self.is_open() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        if self
            .shared
            .commands
            .send(Command::CloseConnection { reply })
            .await
            .is_err()
        {
            return Ok(());
        }
        // However the task answers, the connection is closed now.
        let _ = rx.await;
        Ok(())
    }

    /// False once the connection has closed.
    pub fn is_open(&self) -> bool {
        self.shared.status.borrow().closed.is_none()
    }

    /// Why the connection closed (code 200 when the client closed it); `None` while
    /// it is open.
    pub fn close_reason(&self) -> Option<Error> {
        self.shared.status.borrow().closed.clone()
    }

    /// Waits until the connection closes, and says why.
    pub async fn closed(&self) -> Error {
        let mut status = self.shared.status.clone();
        let reason = match status.wait_for(|s| s.closed.is_some()).await {
            Ok(status) => status.closed.clone(),
            Err(_) => None,
        };
        reason.unwrap_or_else(|| self.closed_reason())
    }

    /// The broker's reason while it blocks publishers (connection.blocked, for
    /// instance a memory or disk alarm); `None` when not blocked.
    pub fn blocked(&self) -> Option<String> {
        self.shared.status.borrow().blocked.clone()
    }

    /// Waits until the broker no longer blocks publishers (at once when it does not):
    /// a publisher that pauses on connection.blocked resumes on connection.unblocked.
    /// Fails with the close reason if the connection closes first.
    pub async fn unblocked(&self) -> Result<(), Error> {
        let mut status = self.shared.status.clone();
        match status
            .wait_for(|s| s.blocked.is_none() || s.closed.is_some())
            .await
        {
            Ok(s) => match &s.closed {
                Some(reason) => Err(reason.clone()),
                None => Ok(()),
            },
            Err(_) => Err(self.closed_reason()),
        }
    }

    /// True while the connection, having lost the broker, reconnects (see
    /// [`Recovery`](crate::Recovery)). Calls made meanwhile wait for it.
    pub fn is_recovering(&self) -> bool {
        self.shared.status.borrow().recovering
    }

    /// How many times the connection has recovered from a lost connection.
    pub fn recoveries(&self) -> u64 {
        self.shared.status.borrow().recoveries
    }

    /// Waits until the connection has recovered at least `count` times in all (at once
    /// if it has). Fails with the close reason if the connection closes for good first.
    pub async fn wait_recoveries(&self, count: u64) -> Result<(), Error> {
        let mut status = self.shared.status.clone();
        let outcome = status
            .wait_for(|s| s.recoveries >= count || s.closed.is_some())
            .await
            .map(|s| (s.recoveries >= count, s.closed.clone()));
        match outcome {
            Ok((true, _)) => Ok(()),
            Ok((false, Some(reason))) => Err(reason),
            _ => Err(self.closed_reason()),
        }
    }

    /// The broker's connection.start properties (product, version, capabilities).
    pub fn server_properties(&self) -> &FieldTable {
        &self.shared.server_properties
    }

    /// The negotiated channel-max (0: no limit).
    pub fn channel_max(&self) -> u16 {
        self.shared.tuning.channel_max
    }

    /// The negotiated frame-max in bytes (0: no limit).
    pub fn frame_max(&self) -> u32 {
        self.shared.tuning.frame_max
    }

    /// The negotiated heartbeat interval in seconds (0: none).
    pub fn heartbeat(&self) -> u16 {
        self.shared.tuning.heartbeat
    }

    async fn submit(&self, command: Command) -> Result<(), Error> {
        if let Some(reason) = self.close_reason() {
            return Err(reason);
        }
        self.shared
            .commands
            .send(command)
            .await
            .map_err(|_| self.closed_reason())
    }

    fn closed_reason(&self) -> Error {
        self.close_reason().unwrap_or(Error::ConnectionClosed {
            code: 0,
            text: "the connection task ended".into(),
            class_id: 0,
            method_id: 0,
        })
    }
}

/// Opens a TCP connection to the broker and runs the handshake.
pub(crate) async fn dial(options: &ConnectOptions) -> Result<(Reader, Writer, Negotiated), Error> {
    let stream = TcpStream::connect(options.address()).await?;
    // The task batches writes itself; Nagle would only delay each batch.
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let read: Pin<Box<dyn AsyncRead + Send>> = Box::pin(read);
    let mut reader: Reader = FramedRead::new(read, FrameCodec::new(HANDSHAKE_FRAME_MAX));
    let mut writer: Writer = Box::pin(write);
    let negotiated = handshake(&mut reader, &mut writer, options).await?;
    Ok((reader, writer, negotiated))
}

/// Starts the connection task on a socket past the handshake. `dialled`: the socket
/// came from [`dial`], so recovery (if the options ask for it) can dial again.
fn start(
    reader: Reader,
    writer: Writer,
    negotiated: Negotiated,
    options: &ConnectOptions,
    dialled: bool,
) -> Connection {
    tracing::info!(
        host = %options.host,
        port = options.port,
        vhost = %options.vhost,
        user = %options.username,
        heartbeat = negotiated.tuning.heartbeat,
        frame_max = negotiated.tuning.frame_max,
        "connection opened"
    );
    let (commands, mailbox) = mpsc::channel(MAILBOX);
    let (status_tx, status) = watch::channel(ConnectionStatus::default());
    let recovery = match (&options.recovery, dialled) {
        (Some(_), true) => Some(Recoverable::new(options.clone())),
        _ => None,
    };
    let driver = Driver::new(
        (reader, writer),
        mailbox,
        commands.downgrade(),
        status_tx,
        negotiated.tuning,
        options.connection_timeout,
        recovery,
    );
    tokio::spawn(driver.run());
    Connection {
        shared: Arc::new(ConnectionShared {
            commands,
            status,
            tuning: negotiated.tuning,
            server_properties: negotiated.server_properties,
        }),
    }
}
