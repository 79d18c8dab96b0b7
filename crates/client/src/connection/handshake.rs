//! The client side of the connection handshake: protocol header, start / start-ok
//! (PLAIN), tune / tune-ok, open / open-ok. Runs before the connection task starts,
//! under the connection timeout.

use std::pin::Pin;

use bytes::{BufMut, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;
use warren_codec::{
    CodecError, ConnectionCloseOk, ConnectionOpen, ConnectionStartOk, ConnectionTune,
    ConnectionTuneOk, FieldTable, Frame, FrameCodec, Method, PROTOCOL_HEADER,
};

use crate::channel::name;
use crate::error::Error;
use crate::uri::ConnectOptions;

/// The socket's read half, framed.
pub(crate) type Reader = FramedRead<Pin<Box<dyn AsyncRead + Send>>, FrameCodec>;
/// The socket's write half.
pub(crate) type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// The largest frame accepted before tune settles frame-max: generous for a
/// connection.start with many server properties, bounded against a hostile peer.
pub(crate) const HANDSHAKE_FRAME_MAX: u32 = 131_072;

/// What the client advertises it can handle.
const CAPABILITIES: [&str; 7] = [
    "publisher_confirms",
    "consumer_cancel_notify",
    "basic.nack",
    "connection.blocked",
    "authentication_failure_close",
    "per_consumer_qos",
    "exchange_exchange_bindings",
];

/// The limits in force after tune-ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tuning {
    /// Highest channel number (0: no limit, i.e. 65535).
    pub(crate) channel_max: u16,
    /// Largest frame (0: no limit).
    pub(crate) frame_max: u32,
    /// Heartbeat interval in seconds (0: none).
    pub(crate) heartbeat: u16,
}

/// What the handshake settled.
pub(crate) struct Negotiated {
    pub(crate) tuning: Tuning,
    pub(crate) server_properties: FieldTable,
}

/// Runs the handshake on a fresh connection.
///
/// Fails with [`Error::ConnectionClosed`] when the server closes the connection
/// (403 ACCESS_REFUSED for bad credentials, 530 NOT_ALLOWED for an unknown vhost), or
/// [`Error::Protocol`] when it does not speak 0-9-1 or offer PLAIN.
pub(crate) async fn handshake(
    reader: &mut Reader,
    writer: &mut Writer,
    options: &ConnectOptions,
) -> Result<Negotiated, Error> {
    writer.write_all(&PROTOCOL_HEADER).await?;
    writer.flush().await?;
    let start = match next_method(reader, writer).await? {
        Method::ConnectionStart(start) => start,
        other => return Err(unexpected(&other)),
    };
    let mechanisms = String::from_utf8_lossy(&start.mechanisms).into_owned();
    if !mechanisms.split_whitespace().any(|m| m == "PLAIN") {
        return Err(Error::Protocol(format!(
            "the server does not offer PLAIN authentication (it offers '{mechanisms}')"
        )));
    }
    send(writer, start_ok(options).into()).await?;

    let tune = match next_method(reader, writer).await? {
        Method::ConnectionTune(tune) => tune,
        Method::ConnectionSecure(_) => {
            return Err(Error::Protocol(
                "the server sent a SASL challenge (connection.secure); only PLAIN is supported"
                    .into(),
            ));
        }
        other => return Err(unexpected(&other)),
    };
    let tuning = negotiate(&tune, options);
    send(
        writer,
        ConnectionTuneOk {
            channel_max: tuning.channel_max,
            frame_max: tuning.frame_max,
            heartbeat: tuning.heartbeat,
        }
        .into(),
    )
    .await?;
    reader.decoder_mut().set_frame_max(tuning.frame_max);

    send(
        writer,
        ConnectionOpen {
            virtual_host: name(&options.vhost, "vhost")?,
            ..Default::default()
        }
        .into(),
    )
    .await?;
    match next_method(reader, writer).await? {
        Method::ConnectionOpenOk(_) => {}
        other => return Err(unexpected(&other)),
    }
    Ok(Negotiated {
        tuning,
        server_properties: start.server_properties,
    })
}

/// Settles the limits: the server's values, lowered by the client's.
///
/// For channel-max and frame-max 0 means "no limit", so a 0 on either side yields the
/// other's value. For the heartbeat the client's `Some(0)` disables heartbeats (as in
/// the other RabbitMQ clients), and a server proposing 0 takes the client's value.
pub(crate) fn negotiate(server: &ConnectionTune, options: &ConnectOptions) -> Tuning {
    fn lower<T: Ord + Copy + Default>(server: T, client: Option<T>) -> T {
        let none = T::default();
        match client {
            None => server,
            Some(client) if client == none => server,
            Some(client) if server == none => client,
            Some(client) => client.min(server),
        }
    }
    let heartbeat = match options.heartbeat {
        None => server.heartbeat,
        Some(0) => 0,
        Some(client) if server.heartbeat == 0 => client,
        Some(client) => client.min(server.heartbeat),
    };
    Tuning {
        channel_max: lower(server.channel_max, options.channel_max),
        frame_max: lower(server.frame_max, options.frame_max),
        heartbeat,
    }
}

fn start_ok(options: &ConnectOptions) -> ConnectionStartOk {
    let mut capabilities = FieldTable::new();
    for capability in CAPABILITIES {
        capabilities.insert(capability, true);
    }
    let mut properties = FieldTable::new();
    properties.insert("product", "warren-client");
    properties.insert("version", env!("CARGO_PKG_VERSION"));
    properties.insert("platform", "Rust");
    properties.insert("capabilities", capabilities);
    if let Some(name) = &options.connection_name {
        properties.insert("connection_name", name.as_str());
    }
    let mut response = BytesMut::with_capacity(options.username.len() + options.password.len() + 2);
    response.put_u8(0);
    response.put_slice(options.username.as_bytes());
    response.put_u8(0);
    response.put_slice(options.password.as_bytes());
    ConnectionStartOk {
        client_properties: properties,
        mechanism: "PLAIN".into(),
        response: response.freeze(),
        locale: "en_US".into(),
    }
}

async fn send(writer: &mut Writer, method: Method) -> Result<(), Error> {
    let mut buf = BytesMut::new();
    Frame::method(0, method).encode(&mut buf);
    writer.write_all(&buf).await?;
    writer.flush().await?;
    Ok(())
}

/// The next method on channel 0, skipping heartbeats; a connection.close from the
/// server is answered and becomes the error.
async fn next_method(reader: &mut Reader, writer: &mut Writer) -> Result<Method, Error> {
    loop {
        let frame = match reader.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(CodecError::Io(e))) => return Err(e.into()),
            Some(Err(CodecError::Frame(e))) => {
                // A server refusing 0-9-1 answers with its own protocol header.
                if reader.read_buffer().starts_with(b"AMQP") {
                    return Err(Error::Protocol(
                        "the server does not accept AMQP 0-9-1 (it answered with another protocol header)"
                            .into(),
                    ));
                }
                return Err(Error::Protocol(format!("bad frame from the server: {e}")));
            }
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the socket during the handshake",
                )
                .into());
            }
        };
        match frame {
            Frame::Heartbeat => {}
            Frame::Method {
                channel: 0,
                method: Method::ConnectionClose(close),
            } => {
                // Best effort: the server closes the socket after close-ok either way.
                let _ = send(writer, ConnectionCloseOk {}.into()).await;
                return Err(Error::ConnectionClosed {
                    code: close.reply_code,
                    text: close.reply_text.to_string(),
                    class_id: close.class_id,
                    method_id: close.method_id,
                });
            }
            Frame::Method { channel: 0, method } => return Ok(method),
            other => {
                return Err(Error::Protocol(format!(
                    "unexpected frame on channel {} during the handshake",
                    other.channel()
                )));
            }
        }
    }
}

fn unexpected(method: &Method) -> Error {
    Error::Protocol(format!("unexpected {} during the handshake", method.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tune(channel_max: u16, frame_max: u32, heartbeat: u16) -> ConnectionTune {
        ConnectionTune {
            channel_max,
            frame_max,
            heartbeat,
        }
    }

    fn client(
        channel_max: Option<u16>,
        frame_max: Option<u32>,
        heartbeat: Option<u16>,
    ) -> ConnectOptions {
        ConnectOptions {
            channel_max,
            frame_max,
            heartbeat,
            ..ConnectOptions::default()
        }
    }

    #[test]
    fn without_client_values_the_servers_are_taken() {
        let t = negotiate(&tune(2047, 131_072, 60), &client(None, None, None));
        assert_eq!(
            (t.channel_max, t.frame_max, t.heartbeat),
            (2047, 131_072, 60)
        );
    }

    #[test]
    fn client_values_lower_the_servers() {
        let t = negotiate(
            &tune(2047, 131_072, 60),
            &client(Some(10), Some(8192), Some(5)),
        );
        assert_eq!((t.channel_max, t.frame_max, t.heartbeat), (10, 8192, 5));
        let t = negotiate(
            &tune(2047, 131_072, 60),
            &client(Some(9000), Some(1 << 20), Some(600)),
        );
        assert_eq!(
            (t.channel_max, t.frame_max, t.heartbeat),
            (2047, 131_072, 60)
        );
    }

    #[test]
    fn zero_means_no_limit_for_channel_and_frame_max() {
        let t = negotiate(&tune(0, 0, 0), &client(Some(64), Some(8192), None));
        assert_eq!((t.channel_max, t.frame_max), (64, 8192));
        let t = negotiate(&tune(100, 4096, 0), &client(Some(0), Some(0), None));
        assert_eq!((t.channel_max, t.frame_max), (100, 4096));
    }

    #[test]
    fn heartbeat_zero_from_the_client_disables_and_from_the_server_defers() {
        assert_eq!(
            negotiate(&tune(0, 0, 60), &client(None, None, Some(0))).heartbeat,
            0
        );
        assert_eq!(
            negotiate(&tune(0, 0, 0), &client(None, None, Some(15))).heartbeat,
            15
        );
        assert_eq!(
            negotiate(&tune(0, 0, 0), &client(None, None, None)).heartbeat,
            0
        );
    }

    #[test]
    fn start_ok_carries_plain_credentials_and_capabilities() {
        let options = ConnectOptions {
            username: "u".into(),
            password: "p".into(),
            ..ConnectOptions::default()
        }
        .connection_name("orders");
        let m = start_ok(&options);
        assert_eq!(&m.response[..], b"\0u\0p");
        assert_eq!(m.mechanism, "PLAIN");
        let props = &m.client_properties;
        assert_eq!(
            props.get("product").and_then(|v| v.as_str()),
            Some("warren-client")
        );
        assert_eq!(
            props.get("connection_name").and_then(|v| v.as_str()),
            Some("orders")
        );
        let Some(warren_codec::FieldValue::Table(caps)) = props.get("capabilities") else {
            unreachable!("capabilities missing");
        };
        for capability in CAPABILITIES {
            assert_eq!(
                caps.get(capability),
                Some(&warren_codec::FieldValue::Bool(true))
            );
        }
    }
}
