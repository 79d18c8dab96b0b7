//! The connection handshake: protocol header, start / start-ok (SASL), tune / tune-ok,
//! open / open-ok. Runs before the connection's main loop, under the handshake timeout.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::FramedRead;
use tracing::warn;
use warren_codec::{
    ConnectionOpen, ConnectionOpenOk, ConnectionStart, ConnectionStartOk, ConnectionTune,
    ConnectionTuneOk, FRAME_MIN_SIZE, FieldTable, FieldValue, Frame, FrameCodec, Method,
    PROTOCOL_HEADER,
};

use crate::auth::{AuthenticatedUser, parse_plain};
use crate::broker::Broker;
use crate::error::ConnectionError;

/// What the handshake settled.
pub(crate) struct Negotiated {
    pub(crate) user: AuthenticatedUser,
    pub(crate) vhost: String,
    pub(crate) channel_max: u16,
    pub(crate) frame_max: u32,
    pub(crate) heartbeat: u16,
    pub(crate) client: ClientInfo,
}

/// What the client said about itself in start-ok.
#[derive(Default)]
pub(crate) struct ClientInfo {
    pub(crate) product: String,
    pub(crate) connection_name: Option<String>,
    /// The client handles server-sent basic.cancel.
    pub(crate) consumer_cancel_notify: bool,
    /// The client handles connection.blocked / unblocked.
    pub(crate) connection_blocked: bool,
}

/// How the handshake ended, when it did not succeed.
pub(crate) enum HandshakeError {
    /// The peer sent another protocol header; ours has been written back.
    WrongProtocol,
    /// The socket closed or failed.
    Io(std::io::Error),
    /// A protocol error to close the connection with.
    Close(ConnectionError),
}

impl From<std::io::Error> for HandshakeError {
    fn from(e: std::io::Error) -> Self {
        HandshakeError::Io(e)
    }
}

impl From<ConnectionError> for HandshakeError {
    fn from(e: ConnectionError) -> Self {
        HandshakeError::Close(e)
    }
}

/// Reads and checks the 8-byte protocol header, answering a wrong one with ours.
pub(crate) async fn read_protocol_header(
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
) -> Result<(), HandshakeError> {
    let mut header = [0u8; 8];
    reader.read_exact(&mut header).await?;
    if header != PROTOCOL_HEADER {
        writer.write_all(&PROTOCOL_HEADER).await?;
        writer.shutdown().await?;
        return Err(HandshakeError::WrongProtocol);
    }
    Ok(())
}

/// Runs start through open-ok on a connection whose protocol header was accepted.
pub(crate) async fn negotiate(
    frames: &mut FramedRead<OwnedReadHalf, FrameCodec>,
    writer: &mut OwnedWriteHalf,
    broker: &Broker,
    peer: SocketAddr,
) -> Result<Negotiated, HandshakeError> {
    let limits = &broker.config().limits;
    send(writer, start_method()).await?;

    let start_ok = match next_method(frames).await? {
        Method::ConnectionStartOk(m) => m,
        other => return Err(unexpected(&other, "connection.start-ok").into()),
    };
    let client = client_info(&start_ok.client_properties);
    let user = authenticate(broker, &start_ok, peer).map_err(|e| {
        warn!(%peer, mechanism = %start_ok.mechanism, reason = %e.0.detail, "login refused");
        // The client is told only that login failed, not which part was wrong.
        ConnectionError::access_refused(format!(
            "Login was refused using authentication mechanism {}. For details see the broker logfile.",
            start_ok.mechanism
        ))
        .in_method(10, 11)
    })?;

    send(
        writer,
        ConnectionTune {
            channel_max: limits.channel_max,
            frame_max: limits.frame_max,
            heartbeat: limits.heartbeat,
        }
        .into(),
    )
    .await?;
    let tune_ok = match next_method(frames).await? {
        Method::ConnectionTuneOk(m) => m,
        other => return Err(unexpected(&other, "connection.tune-ok").into()),
    };
    let (channel_max, frame_max) = check_tune(&tune_ok, limits.channel_max, limits.frame_max)?;
    frames.decoder_mut().set_frame_max(frame_max);

    let open = match next_method(frames).await? {
        Method::ConnectionOpen(m) => m,
        other => return Err(unexpected(&other, "connection.open").into()),
    };
    check_vhost(broker, &user, &open)?;
    send(writer, ConnectionOpenOk::default().into()).await?;

    Ok(Negotiated {
        vhost: open.virtual_host.to_string(),
        user,
        channel_max,
        frame_max,
        heartbeat: tune_ok.heartbeat,
        client,
    })
}

fn start_method() -> Method {
    let mut capabilities = FieldTable::new();
    for name in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        capabilities.insert(name, true);
    }
    let mut props = FieldTable::new();
    props.insert("product", "warren");
    props.insert("version", env!("CARGO_PKG_VERSION"));
    props.insert("platform", "Rust");
    props.insert("information", "An AMQP 0-9-1 broker");
    props.insert("capabilities", capabilities);
    ConnectionStart {
        version_major: 0,
        version_minor: 9,
        server_properties: props,
        mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
        locales: Bytes::from_static(b"en_US"),
    }
    .into()
}

fn client_info(props: &FieldTable) -> ClientInfo {
    let text = |key: &str| {
        props
            .get(key)
            .and_then(FieldValue::as_str)
            .map(str::to_owned)
    };
    let capability = |name: &str| match props.get("capabilities") {
        Some(FieldValue::Table(caps)) => caps.get(name) == Some(&FieldValue::Bool(true)),
        _ => false,
    };
    ClientInfo {
        product: text("product").unwrap_or_default(),
        connection_name: text("connection_name"),
        consumer_cancel_notify: capability("consumer_cancel_notify"),
        connection_blocked: capability("connection.blocked"),
    }
}

fn authenticate(
    broker: &Broker,
    start_ok: &ConnectionStartOk,
    peer: SocketAddr,
) -> Result<AuthenticatedUser, ConnectionError> {
    let (username, password) = match start_ok.mechanism.as_str() {
        "PLAIN" => parse_plain(&start_ok.response)
            .map(|(u, p)| (u.to_owned(), p.to_vec()))
            .ok_or_else(|| ConnectionError::access_refused("malformed PLAIN response"))?,
        "AMQPLAIN" => parse_amqplain(&start_ok.response)
            .ok_or_else(|| ConnectionError::access_refused("malformed AMQPLAIN response"))?,
        other => {
            return Err(ConnectionError::access_refused(format!(
                "unsupported mechanism {other}"
            )));
        }
    };
    broker
        .users()
        .authenticate(&username, &password, peer.ip())
        .map_err(|e| ConnectionError::access_refused(e.to_string()))
}

/// AMQPLAIN's response is a field table without its length: LOGIN and PASSWORD.
fn parse_amqplain(response: &Bytes) -> Option<(String, Vec<u8>)> {
    let table = FieldTable::decode_entries(response).ok()?;
    let field = |key: &str| match table.get(key)? {
        FieldValue::LongStr(b) => Some(b.clone()),
        _ => None,
    };
    let login = String::from_utf8(field("LOGIN")?.to_vec()).ok()?;
    Some((login, field("PASSWORD")?.to_vec()))
}

/// Settles channel-max and frame-max; 0 from the client means "no limit of mine".
fn check_tune(
    tune_ok: &ConnectionTuneOk,
    server_channel_max: u16,
    server_frame_max: u32,
) -> Result<(u16, u32), ConnectionError> {
    let fail = |detail: String| ConnectionError::not_allowed(detail).in_method(10, 31);
    let channel_max = match tune_ok.channel_max {
        0 => server_channel_max,
        n if n > server_channel_max => {
            return Err(fail(format!(
                "channel_max={n} > {server_channel_max} max channels"
            )));
        }
        n => n,
    };
    let frame_max = match tune_ok.frame_max {
        0 => server_frame_max,
        n if n < FRAME_MIN_SIZE => {
            return Err(fail(format!("frame_max={n} < {FRAME_MIN_SIZE} min size")));
        }
        n if n > server_frame_max => {
            return Err(fail(format!("frame_max={n} > {server_frame_max} max size")));
        }
        n => n,
    };
    Ok((channel_max, frame_max))
}

fn check_vhost(
    broker: &Broker,
    user: &AuthenticatedUser,
    open: &ConnectionOpen,
) -> Result<(), ConnectionError> {
    let vhost = open.virtual_host.as_str();
    let refuse = |detail: String| ConnectionError::not_allowed(detail).in_method(10, 40);
    if !broker.users().vhost_exists(vhost) {
        return Err(refuse(format!("vhost {vhost} not found")));
    }
    if broker.users().permissions(user.name(), vhost).is_none() {
        return Err(refuse(format!(
            "access to vhost '{vhost}' refused for user '{}'",
            user.name()
        )));
    }
    Ok(())
}

/// The next method on channel 0, skipping heartbeats.
async fn next_method(
    frames: &mut FramedRead<OwnedReadHalf, FrameCodec>,
) -> Result<Method, HandshakeError> {
    loop {
        match frames.next().await {
            None => {
                return Err(HandshakeError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            Some(Err(warren_codec::CodecError::Io(e))) => return Err(HandshakeError::Io(e)),
            Some(Err(warren_codec::CodecError::Frame(e))) => {
                return Err(ConnectionError(crate::error::Reply {
                    code: e.error.reply_code(),
                    detail: e.error.to_string(),
                    class_id: e.class_id,
                    method_id: e.method_id,
                })
                .into());
            }
            Some(Ok(Frame::Heartbeat)) => continue,
            Some(Ok(Frame::Method { channel: 0, method })) => return Ok(method),
            Some(Ok(_)) => {
                return Err(ConnectionError::unexpected_frame(
                    "expected a connection method on channel 0 during the handshake",
                )
                .into());
            }
        }
    }
}

fn unexpected(got: &Method, expected: &str) -> ConnectionError {
    ConnectionError::command_invalid(format!("expected '{expected}', got '{}'", got.name()))
        .in_method(got.class_id(), got.method_id())
}

async fn send(writer: &mut OwnedWriteHalf, method: Method) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    Frame::Method { channel: 0, method }.encode(&mut buf);
    writer.write_all(&buf).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tune_ok(channel_max: u16, frame_max: u32) -> ConnectionTuneOk {
        ConnectionTuneOk {
            channel_max,
            frame_max,
            heartbeat: 0,
        }
    }

    #[test]
    fn zero_means_the_server_limit() {
        assert_eq!(
            check_tune(&tune_ok(0, 0), 2047, 131_072),
            Ok((2047, 131_072))
        );
        assert_eq!(
            check_tune(&tune_ok(10, 4096), 2047, 131_072),
            Ok((10, 4096))
        );
    }

    #[test]
    fn limits_beyond_the_server_or_below_the_minimum_are_refused() {
        let code = |r: Result<(u16, u32), ConnectionError>| r.err().map(|e| e.0.code.code());
        assert_eq!(
            code(check_tune(&tune_ok(3000, 0), 2047, 131_072)),
            Some(530)
        );
        assert_eq!(
            code(check_tune(&tune_ok(0, 1024), 2047, 131_072)),
            Some(530)
        );
        assert_eq!(
            code(check_tune(&tune_ok(0, 200_000), 2047, 131_072)),
            Some(530)
        );
    }

    #[test]
    fn amqplain_reads_login_and_password() {
        let mut table = FieldTable::new();
        table.insert("LOGIN", "guest");
        table.insert("PASSWORD", "secret");
        let mut buf = BytesMut::new();
        table.encode_entries(&mut buf);
        assert_eq!(
            parse_amqplain(&buf.freeze()),
            Some(("guest".to_owned(), b"secret".to_vec()))
        );
        assert_eq!(parse_amqplain(&Bytes::from_static(b"\x05LOGIN")), None);
    }
}
