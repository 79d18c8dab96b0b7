//! The handshake, accepting everyone: protocol header, start / start-ok (any PLAIN or
//! AMQPLAIN credentials), tune / tune-ok, open / open-ok (any vhost).

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use warren_codec::{
    ConnectionOpenOk, ConnectionStart, ConnectionTune, FieldTable, Frame, Method, PROTOCOL_HEADER,
};

use super::error::ConnectionError;
use super::frames::FrameReader;

/// The channel-max proposed (RabbitMQ's default).
pub(super) const CHANNEL_MAX: u16 = 2047;
/// The frame-max proposed (RabbitMQ's default).
pub(super) const FRAME_MAX: u32 = 131_072;

/// The limits settled by tune-ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tuning {
    /// Highest channel number.
    pub(super) channel_max: u16,
    /// Largest frame, both ways.
    pub(super) frame_max: u32,
}

/// Runs the handshake up to open-ok. Fails with [`ConnectionError::WrongProtocol`]
/// for another protocol header, or 503 COMMAND_INVALID for a method out of order.
pub(super) async fn handshake(
    frames: &mut FrameReader,
    writer: &mut OwnedWriteHalf,
) -> Result<Tuning, ConnectionError> {
    if frames.protocol_header().await? != PROTOCOL_HEADER {
        writer.write_all(&PROTOCOL_HEADER).await?;
        return Err(ConnectionError::WrongProtocol);
    }
    send(writer, start()).await?;
    match next_method(frames).await? {
        Method::ConnectionStartOk(_) => {}
        other => return Err(unexpected(&other, "connection.start-ok")),
    }
    let tune = ConnectionTune {
        channel_max: CHANNEL_MAX,
        frame_max: FRAME_MAX,
        // No heartbeats: the null broker never checks the client's, and proposing
        // none means the client expects none unless it insists.
        heartbeat: 0,
    };
    send(writer, tune.into()).await?;
    let tuning = match next_method(frames).await? {
        Method::ConnectionTuneOk(ok) => Tuning {
            channel_max: lower(CHANNEL_MAX, ok.channel_max),
            frame_max: lower(FRAME_MAX, ok.frame_max),
        },
        other => return Err(unexpected(&other, "connection.tune-ok")),
    };
    frames.set_frame_max(tuning.frame_max);
    match next_method(frames).await? {
        Method::ConnectionOpen(_) => {}
        other => return Err(unexpected(&other, "connection.open")),
    }
    send(writer, ConnectionOpenOk::default().into()).await?;
    Ok(tuning)
}

/// The client's value unless it is 0 ("no limit of mine") or above ours. Deviation:
/// a value above ours is lowered instead of refused with 530, and one below the
/// spec's minimum frame size is taken as it is.
fn lower<T: Ord + Default>(ours: T, client: T) -> T {
    if client == T::default() {
        ours
    } else {
        client.min(ours)
    }
}

fn start() -> Method {
    let mut capabilities = FieldTable::new();
    for name in [
        "publisher_confirms",
        "basic.nack",
        "consumer_cancel_notify",
        "exchange_exchange_bindings",
        "per_consumer_qos",
    ] {
        capabilities.insert(name, true);
    }
    let mut properties = FieldTable::new();
    properties.insert("product", "warren-null-broker");
    properties.insert("version", env!("CARGO_PKG_VERSION"));
    properties.insert("platform", "Rust");
    properties.insert(
        "information",
        "warren-perf's null broker: it stores nothing, for measuring the load tool",
    );
    properties.insert("capabilities", capabilities);
    ConnectionStart {
        version_major: 0,
        version_minor: 9,
        server_properties: properties,
        mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
        locales: Bytes::from_static(b"en_US"),
    }
    .into()
}

/// The next method on channel 0, skipping heartbeats.
async fn next_method(frames: &mut FrameReader) -> Result<Method, ConnectionError> {
    loop {
        match frames.next().await? {
            Frame::Heartbeat => continue,
            Frame::Method { channel: 0, method } => return Ok(method),
            other => {
                return Err(ConnectionError::unexpected_frame(format!(
                    "a frame on channel {} during the handshake",
                    other.channel()
                )));
            }
        }
    }
}

fn unexpected(got: &Method, expected: &str) -> ConnectionError {
    ConnectionError::command_invalid(
        format!("expected '{expected}', got '{}'", got.name()),
        got.class_id(),
        got.method_id(),
    )
}

async fn send(writer: &mut OwnedWriteHalf, method: Method) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    Frame::Method { channel: 0, method }.encode(&mut buf);
    writer.write_all(&buf).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_from_the_client_takes_ours_and_more_is_lowered() {
        assert_eq!(lower(FRAME_MAX, 0), FRAME_MAX);
        assert_eq!(lower(FRAME_MAX, 8192), 8192);
        assert_eq!(lower(CHANNEL_MAX, u16::MAX), CHANNEL_MAX);
    }
}
