//! The integration-test harness: an in-process broker per test, a lapin helper, and a
//! raw AMQP client for protocol-level tests.
//!
//! Every test starts its own [`TestBroker`] on `127.0.0.1:0` with a temporary data dir
//! and ends with [`TestBroker::stop`], which checks the teardown invariant: the server's
//! `run()` returns `Ok` only once every connection task has ended, so a connection task
//! that never finishes fails the test instead of leaking.
//!
//! Waits are bounded and wait for the event itself: a [`RawClient`] read that times out
//! is a failure, not a way to let time pass.
#![allow(dead_code)] // Each test binary uses its own part of the harness.

pub mod binary;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use warren_codec::{
    BasicProperties, BasicPublish, ChannelCloseOk, ConnectionClose, ConnectionCloseOk,
    ConnectionOpen, ConnectionStartOk, ConnectionTune, ConnectionTuneOk, ContentHeader, FieldTable,
    Frame, Method, PROTOCOL_HEADER, decode_frame, encode_content,
};
use warren_server::config::Config;
use warren_server::{ReloadHandle, Server, ShutdownHandle};

/// The longest a test waits for something the broker should do promptly. Reaching it is
/// a failure: the broker hung or never sent what the test expects.
pub const WAIT: Duration = Duration::from_secs(10);

/// A broker running in-process for one test.
pub struct TestBroker {
    addr: SocketAddr,
    management: Option<SocketAddr>,
    shutdown: ShutdownHandle,
    reload: ReloadHandle,
    data_dir: std::path::PathBuf,
    run: Option<JoinHandle<std::io::Result<()>>>,
    // Kept only to delete the directory when the broker goes (None: the test owns it).
    _data_dir: Option<tempfile::TempDir>,
}

impl TestBroker {
    /// The built-in default configuration (guest/guest, vhost "/"); `start_with` puts
    /// it on a free port and a temporary data dir.
    pub fn config() -> Config {
        Config::embedded_default()
    }

    /// Starts a broker with the built-in default configuration.
    pub async fn start() -> TestBroker {
        Self::start_with(Self::config()).await
    }

    /// Starts a broker with `config`, overriding its listen address (`127.0.0.1:0`) and
    /// data dir (a fresh temporary directory).
    pub async fn start_with(config: Config) -> TestBroker {
        let data_dir = tempfile::tempdir().expect("create a temporary data dir");
        let mut broker = Self::start_in(config, data_dir.path()).await;
        broker._data_dir = Some(data_dir);
        broker
    }

    /// Starts a broker with `config` on `127.0.0.1:0` and the data dir `data_dir`,
    /// which the test keeps: a restart on the same dir finds what was stored.
    pub async fn start_in(mut config: Config, data_dir: &std::path::Path) -> TestBroker {
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.management = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.data_dir = data_dir.to_owned();
        let server = Server::bind(config).await.expect("bind 127.0.0.1:0");
        let addr = server.local_addr();
        let management = server.management_addr();
        let shutdown = server.shutdown_handle();
        let reload = server.reload_handle();
        let run = tokio::spawn(server.run());
        TestBroker {
            addr,
            shutdown,
            reload,
            data_dir: data_dir.to_owned(),
            run: Some(run),
            management,
            _data_dir: None,
        }
    }

    /// The management API's address.
    pub fn management_addr(&self) -> SocketAddr {
        self.management.expect("the management API is on")
    }

    /// The address the broker accepts connections on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`.
    pub fn uri(&self) -> String {
        self.uri_for("guest", "guest", "%2f")
    }

    /// A URI for another user, password or (URL-encoded) vhost.
    pub fn uri_for(&self, user: &str, password: &str, vhost: &str) -> String {
        format!("amqp://{user}:{password}@{}/{vhost}", self.addr)
    }

    /// Puts `config` in force as a SIGHUP would, with the listen addresses and data
    /// dir the broker started with.
    pub async fn reload(&self, mut config: Config) -> warren_server::Reloaded {
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.management = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.data_dir = self.data_dir.clone();
        self.reload.reload(config).await
    }

    /// Starts the graceful shutdown: every client gets connection.close 320.
    pub fn shutdown(&self) {
        self.shutdown.shutdown();
    }

    /// Shuts down and waits for `run()` to return, asserting that it returned `Ok`
    /// within [`WAIT`]: every connection task ended.
    pub async fn stop(mut self) {
        self.shutdown.shutdown();
        let run = self.run.take().expect("stop runs once");
        match tokio::time::timeout(WAIT, run).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("the broker's run() failed: {e}"),
            Ok(Err(e)) => panic!("the broker's run task panicked: {e}"),
            Err(_) => panic!("the broker did not stop within {WAIT:?}: a connection task hung"),
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// Connects lapin, naming the connection after the test (the `connection_name` client
/// property, which the broker logs).
pub async fn connect_lapin(uri: &str, name: &str) -> lapin::Result<lapin::Connection> {
    let properties = lapin::ConnectionProperties::default().with_connection_name(name.into());
    // lapin 4 picks the tokio runtime the test runs on (its default `tokio` feature).
    tokio::time::timeout(WAIT, lapin::Connection::connect(uri, properties))
        .await
        .expect("lapin's connect did not finish in time")
}

/// The reply code lapin reports for a protocol error (a close from the broker).
pub fn lapin_reply_code(error: &lapin::Error) -> Option<u16> {
    match error.kind() {
        lapin::ErrorKind::ProtocolError(e) => Some(e.get_id()),
        _ => None,
    }
}

/// Waits for `future`, failing the test if it has not finished within [`WAIT`]: for
/// events that must happen (a delivery, a reply), never as a way to let time pass.
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: did not happen within {WAIT:?}"))
}

/// The reply code of the close a failed warren-client call reports; panics if the call
/// succeeded or failed some other way.
pub fn refused<T: std::fmt::Debug>(result: Result<T, warren_client::Error>) -> u16 {
    let error = result.expect_err("the broker must refuse this");
    error
        .reply_code()
        .unwrap_or_else(|| panic!("not a close from the broker: {error:?}"))
}

/// Connects the bundled client, naming the connection after the test.
pub async fn connect_client(uri: &str, name: &str) -> warren_client::Connection {
    let options = warren_client::ConnectOptions::from_uri(uri)
        .expect("a valid URI")
        .connection_name(name);
    within(
        "warren-client connect",
        warren_client::Connection::connect_with(options),
    )
    .await
    .expect("warren-client connect")
}

/// Ready messages and consumers of `queue`, from a passive queue.declare: a round trip
/// through the queue's own mailbox, so it counts every publish this connection made
/// before it.
pub async fn counts(channel: &warren_client::Channel, queue: &str) -> (u32, u32) {
    let options = warren_client::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let info = within(
        "a passive queue.declare",
        channel.queue_declare(queue, options),
    )
    .await
    .unwrap_or_else(|e| panic!("passive declare of '{queue}': {e}"));
    (info.message_count, info.consumer_count)
}

/// Waits until `queue` holds `ready` ready messages, polling [`counts`] (at most
/// [`WAIT`]): for what reaches a queue from another queue (dead letters, redrives), not
/// through this connection.
pub async fn until_ready(channel: &warren_client::Channel, queue: &str, ready: u32) {
    within(
        &format!("'{queue}' to hold {ready} ready messages"),
        async {
            while counts(channel, queue).await.0 != ready {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        },
    )
    .await;
}

/// [`counts`] with lapin.
pub async fn lapin_counts(channel: &lapin::Channel, queue: &str) -> (u32, u32) {
    let options = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let info = within(
        "a passive queue.declare",
        channel.queue_declare(queue.into(), options, Default::default()),
    )
    .await
    .unwrap_or_else(|e| panic!("passive declare of '{queue}': {e}"));
    (info.message_count(), info.consumer_count())
}

/// Publishes each body to `exchange` with `routing_key` with the bundled client, and
/// awaits every confirm if the channel is in confirm mode (each must be an ack).
pub async fn publish_all<B: Into<Bytes>>(
    channel: &warren_client::Channel,
    exchange: &str,
    routing_key: &str,
    bodies: impl IntoIterator<Item = B>,
) {
    let mut confirms = Vec::new();
    for body in bodies {
        let confirm = channel
            .basic_publish(
                exchange,
                routing_key,
                body,
                BasicProperties::default(),
                warren_client::PublishOptions::default(),
            )
            .await
            .expect("basic.publish");
        confirms.push(confirm);
    }
    for confirm in confirms {
        let outcome = within("a publisher confirm", confirm)
            .await
            .expect("the publish was confirmed");
        assert!(
            matches!(
                outcome,
                warren_client::Confirmation::Ack | warren_client::Confirmation::NotRequested
            ),
            "{outcome:?}"
        );
    }
}

/// Publishes one message with lapin and waits for its confirm when the channel is in
/// confirm mode (which must be an ack).
pub async fn lapin_publish(
    channel: &lapin::Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
) {
    let confirm = within(
        "a lapin basic.publish",
        channel.basic_publish(
            exchange.into(),
            routing_key.into(),
            lapin::options::BasicPublishOptions::default(),
            body,
            lapin::BasicProperties::default(),
        ),
    )
    .await
    .expect("basic.publish");
    let outcome = within("a lapin publisher confirm", confirm)
        .await
        .expect("the publish was confirmed");
    assert!(
        matches!(
            outcome,
            lapin::Confirmation::Ack(None) | lapin::Confirmation::NotRequested
        ),
        "{outcome:?}"
    );
}

/// The next delivery of a lapin consumer, within [`WAIT`]; panics if the stream ends
/// or fails instead.
pub async fn next_lapin(consumer: &mut lapin::Consumer) -> lapin::message::Delivery {
    use futures_util::StreamExt;
    match within("a lapin delivery", consumer.next()).await {
        Some(Ok(delivery)) => delivery,
        Some(Err(e)) => panic!("the lapin consumer failed: {e:?}"),
        None => panic!("the lapin consumer ended"),
    }
}

/// The next delivery of a warren-client consumer, within [`WAIT`]; panics if the
/// stream ends or fails instead.
pub async fn next_client(consumer: &mut warren_client::Consumer) -> warren_client::Delivery {
    use futures_util::StreamExt;
    match within("a warren-client delivery", consumer.next()).await {
        Some(Ok(delivery)) => delivery,
        Some(Err(e)) => panic!("the warren-client consumer failed: {e:?}"),
        None => panic!("the warren-client consumer ended"),
    }
}

/// Appends basic.publish, its content header and its body (split into frames of at
/// most `frame_max` bytes; 0 = one body frame) to `buf`, for tests that write many
/// publishes at once.
pub fn encode_publish(
    buf: &mut BytesMut,
    channel: u16,
    publish: BasicPublish,
    properties: BasicProperties,
    body: &[u8],
    frame_max: u32,
) {
    let header = ContentHeader::new(body.len() as u64, properties);
    encode_content(buf, channel, &publish.into(), &header, body, frame_max);
}

/// A basic.publish to `exchange` with `routing_key`, no flags.
pub fn publish_to(exchange: &str, routing_key: &str) -> BasicPublish {
    BasicPublish {
        exchange: exchange.into(),
        routing_key: routing_key.into(),
        ..Default::default()
    }
}

/// A content-bearing method the broker sent (basic.deliver, get-ok, return) with its
/// header and whole body.
#[derive(Debug, Clone)]
pub struct Content {
    /// The channel it came on.
    pub channel: u16,
    /// The method.
    pub method: Method,
    /// The content header.
    pub header: ContentHeader,
    /// The body, joined from its frames.
    pub body: Bytes,
    /// How many body frames carried it.
    pub body_frames: usize,
}

/// SASL mechanisms the raw client can log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `\0user\0password`.
    Plain,
    /// A field table with LOGIN and PASSWORD, without its length prefix.
    AmqPlain,
}

/// What the raw client says during the handshake.
#[derive(Debug, Clone)]
pub struct Login {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Vhost for connection.open.
    pub vhost: String,
    /// SASL mechanism.
    pub mechanism: Mechanism,
    /// channel-max for tune-ok; `None` takes the server's.
    pub channel_max: Option<u16>,
    /// frame-max for tune-ok; `None` takes the server's.
    pub frame_max: Option<u32>,
    /// Heartbeat for tune-ok in seconds; 0 (the default) disables heartbeats.
    pub heartbeat: u16,
    /// The `connection_name` client property: name it after the test.
    pub connection_name: String,
}

impl Login {
    /// guest/guest on "/" with PLAIN, the server's limits and no heartbeats.
    pub fn guest(connection_name: &str) -> Login {
        Login {
            user: "guest".into(),
            password: "guest".into(),
            vhost: "/".into(),
            mechanism: Mechanism::Plain,
            channel_max: None,
            frame_max: None,
            heartbeat: 0,
            connection_name: connection_name.into(),
        }
    }

    fn response(&self) -> Bytes {
        match self.mechanism {
            Mechanism::Plain => {
                Bytes::from(format!("\0{}\0{}", self.user, self.password).into_bytes())
            }
            Mechanism::AmqPlain => {
                let mut table = FieldTable::new();
                table.insert("LOGIN", self.user.as_str());
                table.insert("PASSWORD", self.password.as_str());
                let mut buf = BytesMut::new();
                table.encode_entries(&mut buf);
                buf.freeze()
            }
        }
    }
}

/// What the handshake settled.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuned {
    /// The server's connection.tune proposal.
    pub offered: ConnectionTune,
    /// What the client answered in tune-ok.
    pub agreed: ConnectionTuneOk,
}

/// A connection.close as the client read it: (reply code, text, class id, method id).
pub type CloseReason = (u16, String, u16, u16);

/// A hand-driven AMQP 0-9-1 client for protocol-level tests. Panics on anything it did
/// not expect; every read is bounded by [`WAIT`].
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
}

impl RawClient {
    /// Opens the TCP connection only; nothing is sent.
    pub async fn tcp(addr: SocketAddr) -> RawClient {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("TCP connect timed out")
            .expect("TCP connect");
        RawClient {
            stream,
            buf: BytesMut::with_capacity(8192),
        }
    }

    /// Connects and logs in as guest with the server's limits and no heartbeats.
    pub async fn connect(addr: SocketAddr, connection_name: &str) -> RawClient {
        let (client, _) = Self::connect_with(addr, &Login::guest(connection_name))
            .await
            .unwrap_or_else(|close| panic!("handshake refused: {close:?}"));
        client
    }

    /// Connects and runs the handshake; `Err` is the connection.close the server sent.
    pub async fn connect_with(
        addr: SocketAddr,
        login: &Login,
    ) -> Result<(RawClient, Tuned), CloseReason> {
        let mut client = Self::tcp(addr).await;
        let tuned = client.handshake(login).await?;
        Ok((client, tuned))
    }

    /// Runs protocol header through open-ok. `Err` is the connection.close the server
    /// sent instead of the next handshake step (after which close-ok has been sent).
    pub async fn handshake(&mut self, login: &Login) -> Result<Tuned, CloseReason> {
        self.send_bytes(&PROTOCOL_HEADER).await;
        match self.recv_method().await {
            (0, Method::ConnectionStart(start)) => {
                assert_eq!((start.version_major, start.version_minor), (0, 9));
            }
            other => panic!("expected connection.start, got {other:?}"),
        }
        let mut properties = FieldTable::new();
        properties.insert("product", "warren tests");
        properties.insert("connection_name", login.connection_name.as_str());
        // So that tests see connection.blocked / unblocked.
        let mut capabilities = FieldTable::new();
        capabilities.insert("connection.blocked", true);
        properties.insert("capabilities", capabilities);
        let mechanism = match login.mechanism {
            Mechanism::Plain => "PLAIN",
            Mechanism::AmqPlain => "AMQPLAIN",
        };
        self.send(Frame::method(
            0,
            ConnectionStartOk {
                client_properties: properties,
                mechanism: mechanism.into(),
                response: login.response(),
                locale: "en_US".into(),
            },
        ))
        .await;
        let offered = match self.recv_method().await {
            (0, Method::ConnectionTune(tune)) => tune,
            (0, Method::ConnectionClose(close)) => return Err(self.closed_by_server(close).await),
            other => panic!("expected connection.tune, got {other:?}"),
        };
        let agreed = ConnectionTuneOk {
            channel_max: login.channel_max.unwrap_or(offered.channel_max),
            frame_max: login.frame_max.unwrap_or(offered.frame_max),
            heartbeat: login.heartbeat,
        };
        self.send(Frame::method(0, agreed.clone())).await;
        self.send(Frame::method(
            0,
            ConnectionOpen {
                virtual_host: login.vhost.as_str().into(),
                ..Default::default()
            },
        ))
        .await;
        match self.recv_method().await {
            (0, Method::ConnectionOpenOk(_)) => Ok(Tuned { offered, agreed }),
            (0, Method::ConnectionClose(close)) => Err(self.closed_by_server(close).await),
            other => panic!("expected connection.open-ok, got {other:?}"),
        }
    }

    async fn closed_by_server(&mut self, close: ConnectionClose) -> CloseReason {
        self.send(Frame::method(0, ConnectionCloseOk::default()))
            .await;
        close_reason(close)
    }

    /// Writes one frame.
    pub async fn send(&mut self, frame: Frame) {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        self.send_bytes(&buf).await;
    }

    /// Writes raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        tokio::time::timeout(WAIT, self.stream.write_all(bytes))
            .await
            .expect("write timed out: the broker stopped reading")
            .expect("write");
    }

    /// The next frame, or `None` once the broker closed the socket (EOF or reset).
    /// Panics when nothing arrives within [`WAIT`] or the bytes are not a frame.
    pub async fn recv(&mut self) -> Option<Frame> {
        tokio::time::timeout(WAIT, self.read_frame())
            .await
            .unwrap_or_else(|_| panic!("no frame and no EOF from the broker within {WAIT:?}"))
    }

    async fn read_frame(&mut self) -> Option<Frame> {
        loop {
            // The client takes any size: it is the server's limits under test.
            match decode_frame(&mut self.buf, 0) {
                Ok(Some(frame)) => return Some(frame),
                Ok(None) => {}
                Err(e) => panic!("the broker sent an undecodable frame: {e}"),
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => {
                    assert!(
                        self.buf.is_empty(),
                        "EOF inside a frame: {:?}",
                        &self.buf[..]
                    );
                    return None;
                }
                Ok(_) => {}
                // A reset is the broker dropping the socket too.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// The next method (channel, method), skipping heartbeats. Panics on EOF or on a
    /// content frame.
    pub async fn recv_method(&mut self) -> (u16, Method) {
        loop {
            match self.recv().await {
                Some(Frame::Heartbeat) => continue,
                Some(Frame::Method { channel, method }) => return (channel, method),
                Some(other) => panic!("expected a method, got {other:?}"),
                None => panic!("the broker closed the socket; expected a method"),
            }
        }
    }

    /// Reads the connection.close the broker must send next (heartbeats skipped).
    pub async fn expect_close(&mut self) -> CloseReason {
        match self.recv_method().await {
            (0, Method::ConnectionClose(close)) => close_reason(close),
            other => panic!("expected connection.close, got {other:?}"),
        }
    }

    /// Answers the broker's connection.close and checks that the socket then closes.
    pub async fn close_ok(&mut self) {
        self.send(Frame::method(0, ConnectionCloseOk::default()))
            .await;
        self.expect_eof().await;
    }

    /// Asserts the broker closes the socket, allowing only heartbeats before it.
    pub async fn expect_eof(&mut self) {
        loop {
            match self.recv().await {
                None => return,
                Some(Frame::Heartbeat) => continue,
                Some(other) => panic!("expected the socket to close, got {other:?}"),
            }
        }
    }

    /// Every byte the broker sends until it closes the socket.
    pub async fn read_to_eof(&mut self) -> Vec<u8> {
        let mut bytes = std::mem::take(&mut self.buf).to_vec();
        let read = tokio::time::timeout(WAIT, async {
            loop {
                let mut chunk = [0u8; 4096];
                match self.stream.read(&mut chunk).await {
                    Ok(0) => return,
                    Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                    Err(e) => panic!("read failed: {e}"),
                }
            }
        })
        .await;
        assert!(read.is_ok(), "the broker did not close the socket");
        bytes
    }

    /// Opens channel `id` and waits for open-ok.
    pub async fn open_channel(&mut self, id: u16) {
        self.send(Frame::method(id, warren_codec::ChannelOpen::default()))
            .await;
        match self.recv_method().await {
            (ch, Method::ChannelOpenOk(_)) if ch == id => {}
            other => panic!("expected channel.open-ok on {id}, got {other:?}"),
        }
    }

    /// Sends a synchronous method on `channel` and returns the broker's reply, which
    /// must come on the same channel (a channel.close is returned too, unanswered).
    pub async fn call(&mut self, channel: u16, method: impl Into<Method>) -> Method {
        self.send(Frame::method(channel, method)).await;
        match self.recv_method().await {
            (ch, reply) if ch == channel => reply,
            other => panic!("expected a reply on channel {channel}, got {other:?}"),
        }
    }

    /// Declares a plain queue named `queue` on `channel` and waits for declare-ok.
    pub async fn declare_queue(&mut self, channel: u16, queue: &str) {
        let reply = self
            .call(
                channel,
                warren_codec::QueueDeclare {
                    queue: queue.into(),
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(reply, Method::QueueDeclareOk(_)),
            "declaring '{queue}': {reply:?}"
        );
    }

    /// Reads the channel.close the broker must send next on `channel`, answers it with
    /// close-ok, and returns its reason.
    pub async fn expect_channel_close(&mut self, channel: u16) -> CloseReason {
        match self.recv_method().await {
            (ch, Method::ChannelClose(close)) if ch == channel => {
                self.send(Frame::method(channel, ChannelCloseOk::default()))
                    .await;
                (
                    close.reply_code,
                    close.reply_text.as_str().to_owned(),
                    close.class_id,
                    close.method_id,
                )
            }
            other => panic!("expected channel.close on channel {channel}, got {other:?}"),
        }
    }

    /// Sends one publish with its content (see [`encode_publish`]).
    pub async fn publish(
        &mut self,
        channel: u16,
        publish: BasicPublish,
        properties: BasicProperties,
        body: &[u8],
        frame_max: u32,
    ) {
        let mut buf = BytesMut::new();
        encode_publish(&mut buf, channel, publish, properties, body, frame_max);
        self.send_bytes(&buf).await;
    }

    /// Reads a content-bearing method, its header and every body frame. Panics on
    /// anything else (heartbeats are skipped).
    pub async fn recv_content(&mut self) -> Content {
        let (channel, method) = self.recv_method().await;
        assert!(
            matches!(
                method,
                Method::BasicDeliver(_) | Method::BasicGetOk(_) | Method::BasicReturn(_)
            ),
            "expected a content-bearing method, got {method:?} on channel {channel}"
        );
        let header = loop {
            match self.recv().await {
                Some(Frame::Heartbeat) => continue,
                Some(Frame::Header {
                    channel: ch,
                    header,
                }) if ch == channel => break header,
                other => panic!("expected a content header on channel {channel}, got {other:?}"),
            }
        };
        let mut body = BytesMut::new();
        let mut body_frames = 0;
        while (body.len() as u64) < header.body_size {
            match self.recv().await {
                Some(Frame::Heartbeat) => continue,
                Some(Frame::Body {
                    channel: ch,
                    body: part,
                }) if ch == channel => {
                    body.extend_from_slice(&part);
                    body_frames += 1;
                }
                other => panic!("expected a body frame on channel {channel}, got {other:?}"),
            }
        }
        assert_eq!(
            body.len() as u64,
            header.body_size,
            "body longer than announced"
        );
        Content {
            channel,
            method,
            header,
            body: body.freeze(),
            body_frames,
        }
    }

    /// Closes the connection cleanly: close 200, close-ok, then EOF.
    pub async fn close(mut self) {
        self.send(Frame::method(
            0,
            ConnectionClose {
                reply_code: 200,
                reply_text: "bye".into(),
                ..Default::default()
            },
        ))
        .await;
        match self.recv_method().await {
            (0, Method::ConnectionCloseOk(_)) => {}
            other => panic!("expected connection.close-ok, got {other:?}"),
        }
        self.expect_eof().await;
    }
}

fn close_reason(close: ConnectionClose) -> CloseReason {
    (
        close.reply_code,
        close.reply_text.as_str().to_owned(),
        close.class_id,
        close.method_id,
    )
}

/// A lapin field table from pairs, in the given order.
pub fn lapin_table(pairs: &[(&str, lapin::types::AMQPValue)]) -> lapin::types::FieldTable {
    let mut table = lapin::types::FieldTable::default();
    for (key, value) in pairs {
        table.insert(lapin::types::ShortString::from(*key), value.clone());
    }
    table
}

/// A lapin long-string value.
pub fn lapin_text(s: &str) -> lapin::types::AMQPValue {
    lapin::types::AMQPValue::LongString(lapin::types::LongString::from(s))
}

/// Starts a lapin consumer on `queue` with a server-chosen tag.
pub async fn lapin_consume(channel: &lapin::Channel, queue: &str, no_ack: bool) -> lapin::Consumer {
    within(
        "basic.consume",
        channel.basic_consume(
            queue.into(),
            "".into(),
            lapin::options::BasicConsumeOptions {
                no_ack,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("consume '{queue}': {e}"))
}

/// A GET with HTTP/1.1 over a plain socket: the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str, credentials: Option<&str>) -> (u16, String) {
    http_request(addr, "GET", path, credentials, "").await
}

/// A request with HTTP/1.1 over a plain socket: the status code and the body.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    credentials: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut stream = within(
        "connect to the management API",
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .unwrap();
    let auth = credentials
        .map(|c| {
            format!(
                "Authorization: Basic {}\r\n",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, c)
            )
        })
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    within("the HTTP response", stream.read_to_end(&mut response))
        .await
        .unwrap();
    let text = String::from_utf8(response).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
