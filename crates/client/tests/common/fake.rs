//! A scripted broker on an in-memory pipe, for what a real broker will not do on cue:
//! fall silent, break the protocol, refuse the protocol header.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use warren_codec::{
    ConnectionOpenOk, ConnectionStart, ConnectionStartOk, ConnectionTune, FieldTable, Frame,
    Method, PROTOCOL_HEADER, decode_frame,
};

/// The server end of a pipe whose client end goes to `Connection::connect_on`.
pub struct FakeServer {
    io: DuplexStream,
    buf: BytesMut,
}

impl FakeServer {
    /// A connected pair: the client's stream and the fake server.
    pub fn pair() -> (DuplexStream, FakeServer) {
        let (client, server) = tokio::io::duplex(1 << 16);
        (
            client,
            FakeServer {
                io: server,
                buf: BytesMut::new(),
            },
        )
    }

    /// Reads the protocol header the client sends first.
    pub async fn read_protocol_header(&mut self) {
        let mut header = [0u8; 8];
        self.io.read_exact(&mut header).await.unwrap();
        assert_eq!(header, PROTOCOL_HEADER);
    }

    /// Plays the broker's side of the handshake with `tune`; returns the start-ok.
    pub async fn handshake(&mut self, tune: ConnectionTune) -> ConnectionStartOk {
        self.read_protocol_header().await;
        let mut properties = FieldTable::new();
        properties.insert("product", "fake");
        self.send(Frame::method(
            0,
            ConnectionStart {
                version_major: 0,
                version_minor: 9,
                server_properties: properties,
                mechanisms: "PLAIN".into(),
                locales: "en_US".into(),
            },
        ))
        .await;
        let start_ok = match self.method().await {
            Method::ConnectionStartOk(m) => m,
            other => panic!("expected start-ok, got {other:?}"),
        };
        self.send(Frame::method(0, tune)).await;
        assert!(matches!(self.method().await, Method::ConnectionTuneOk(_)));
        assert!(matches!(self.method().await, Method::ConnectionOpen(_)));
        self.send(Frame::method(0, ConnectionOpenOk::default()))
            .await;
        start_ok
    }

    /// Writes a frame.
    pub async fn send(&mut self, frame: Frame) {
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        self.write_raw(&out).await;
    }

    /// Writes raw bytes.
    pub async fn write_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// The next frame from the client; `None` when it closed the pipe.
    pub async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = decode_frame(&mut self.buf, 0).unwrap() {
                return Some(frame);
            }
            if self.io.read_buf(&mut self.buf).await.unwrap_or(0) == 0 {
                return None;
            }
        }
    }

    /// The next method from the client, skipping heartbeats.
    pub async fn method(&mut self) -> Method {
        loop {
            match self.frame().await {
                Some(Frame::Method { method, .. }) => return method,
                Some(Frame::Heartbeat) => {}
                other => panic!("expected a method, got {other:?}"),
            }
        }
    }
}
