//! Behaviour against a scripted broker on an in-memory pipe, with paused time where
//! timing matters: heartbeats, protocol violations, closes the broker starts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fake::FakeServer;
use common::within;
use warren_client::{ConnectOptions, Connection, Error};
use warren_codec::{
    ChannelOpenOk, ConnectionClose, ConnectionCloseOk, ConnectionTune, Frame, Method,
    QueueDeclareOk,
};

fn tune(heartbeat: u16) -> ConnectionTune {
    ConnectionTune {
        channel_max: 16,
        frame_max: 131_072,
        heartbeat,
    }
}

/// Connects a client to a fake server that has completed the handshake.
async fn connected(heartbeat: u16, options: ConnectOptions) -> (Connection, FakeServer) {
    let (client_io, mut server) = FakeServer::pair();
    let (connection, _) = tokio::join!(
        Connection::connect_on(client_io, options),
        server.handshake(tune(heartbeat))
    );
    (connection.unwrap(), server)
}

#[tokio::test(start_paused = true)]
async fn an_idle_client_sends_heartbeats() {
    let (connection, mut server) = connected(2, ConnectOptions::default()).await;
    assert_eq!(connection.heartbeat(), 2);
    // Nothing else is written, so the next frame is a heartbeat, after half the interval.
    let started = tokio::time::Instant::now();
    assert_eq!(within(server.frame()).await, Some(Frame::Heartbeat));
    assert_eq!(started.elapsed(), std::time::Duration::from_secs(1));
    // The server's heartbeats keep the connection alive.
    for _ in 0..5 {
        server.send(Frame::Heartbeat).await;
        assert_eq!(within(server.frame()).await, Some(Frame::Heartbeat));
    }
    assert!(connection.is_open());
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_is_declared_dead_after_two_intervals() {
    let (connection, _server) = connected(1, ConnectOptions::default()).await;
    let reason = within(connection.closed()).await;
    assert!(matches!(reason, Error::MissedHeartbeats(_)), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn heartbeat_zero_in_the_options_disables_them() {
    let options = ConnectOptions {
        heartbeat: Some(0),
        ..ConnectOptions::default()
    };
    let (connection, mut server) = connected(60, options).await;
    assert_eq!(connection.heartbeat(), 0);
    // An hour of (paused, instantly advanced) time, in which 60 s heartbeats would
    // have sent frames and declared the silent server dead.
    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    assert!(connection.is_open());
    drop(connection);
    // The first frame since the handshake is the close sent because every handle
    // was dropped.
    match within(server.method()).await {
        Method::ConnectionClose(close) => assert_eq!(close.reply_code, 200),
        other => panic!("expected connection.close, got {other:?}"),
    }
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let (connection, mut server) = connected(0, ConnectOptions::default()).await;
    let channel = {
        let opening = tokio::spawn({
            let connection = connection.clone();
            async move { connection.open_channel().await }
        });
        assert!(matches!(
            within(server.method()).await,
            Method::ChannelOpen(_)
        ));
        server
            .send(Frame::method(1, ChannelOpenOk::default()))
            .await;
        within(opening).await.unwrap().unwrap()
    };
    drop(connection);
    // The channel still holds the connection open: nothing is sent yet. Dropping it
    // too closes the connection.
    drop(channel);
    match within(server.method()).await {
        Method::ConnectionClose(close) => assert_eq!(close.reply_code, 200),
        other => panic!("expected connection.close, got {other:?}"),
    }
    server.send(Frame::method(0, ConnectionCloseOk {})).await;
    assert_eq!(
        within(server.frame()).await,
        None,
        "the client closes the socket"
    );
}

#[tokio::test]
async fn a_reply_nobody_asked_for_closes_the_connection_with_503() {
    let (connection, mut server) = connected(0, ConnectOptions::default()).await;
    let opening = tokio::spawn({
        let connection = connection.clone();
        async move { connection.open_channel().await }
    });
    assert!(matches!(
        within(server.method()).await,
        Method::ChannelOpen(_)
    ));
    server
        .send(Frame::method(1, ChannelOpenOk::default()))
        .await;
    let channel = within(opening).await.unwrap().unwrap();
    server
        .send(Frame::method(1, QueueDeclareOk::default()))
        .await;
    match within(server.method()).await {
        Method::ConnectionClose(close) => assert_eq!(close.reply_code, 503),
        other => panic!("expected connection.close, got {other:?}"),
    }
    server.send(Frame::method(0, ConnectionCloseOk {})).await;
    let reason = within(connection.closed()).await;
    assert!(
        matches!(&reason, Error::Protocol(text) if text.contains("COMMAND_INVALID")),
        "{reason}"
    );
    assert!(!channel.is_open());
}

#[tokio::test]
async fn a_close_from_the_broker_is_answered_and_reported() {
    let (connection, mut server) = connected(0, ConnectOptions::default()).await;
    server
        .send(Frame::method(
            0,
            ConnectionClose {
                reply_code: 320,
                reply_text: "CONNECTION_FORCED - bye".into(),
                class_id: 0,
                method_id: 0,
            },
        ))
        .await;
    assert!(matches!(
        within(server.method()).await,
        Method::ConnectionCloseOk(_)
    ));
    match within(connection.closed()).await {
        Error::ConnectionClosed { code, text, .. } => {
            assert_eq!((code, text.as_str()), (320, "CONNECTION_FORCED - bye"));
        }
        other => panic!("unexpected reason {other}"),
    }
}

#[tokio::test]
async fn a_server_refusing_the_protocol_is_reported() {
    let (client_io, mut server) = FakeServer::pair();
    let (connection, ()) = tokio::join!(
        Connection::connect_on(client_io, ConnectOptions::default()),
        async {
            server.read_protocol_header().await;
            server.write_raw(b"AMQP\x01\x01\x00\x0a").await;
        }
    );
    match connection {
        Err(Error::Protocol(text)) => assert!(text.contains("0-9-1"), "{text}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn client_properties_name_the_connection() {
    let (client_io, mut server) = FakeServer::pair();
    let options = ConnectOptions::default().connection_name("orders-worker");
    let (connection, start_ok) = tokio::join!(
        Connection::connect_on(client_io, options),
        server.handshake(tune(0))
    );
    assert!(connection.is_ok());
    let name = start_ok.client_properties.get("connection_name");
    assert_eq!(name.and_then(|v| v.as_str()), Some("orders-worker"));
    assert_eq!(&start_ok.response[..], b"\0guest\0guest");
}

#[tokio::test]
async fn a_blocked_publisher_learns_when_it_may_go_on() {
    use futures_util::FutureExt;
    let (connection, mut server) = connected(0, ConnectOptions::default()).await;
    within(connection.unblocked()).await.unwrap();
    let blocked = warren_codec::ConnectionBlocked {
        reason: "low on memory".into(),
    };
    server.send(Frame::method(0, blocked)).await;
    // A round trip after it: once channel.open-ok is in, the block was seen.
    let opening = tokio::spawn({
        let connection = connection.clone();
        async move { connection.open_channel().await }
    });
    assert!(matches!(
        within(server.method()).await,
        Method::ChannelOpen(_)
    ));
    server
        .send(Frame::method(1, ChannelOpenOk::default()))
        .await;
    within(opening).await.unwrap().unwrap();
    assert_eq!(connection.blocked().as_deref(), Some("low on memory"));
    assert!(
        connection.unblocked().now_or_never().is_none(),
        "still blocked"
    );
    server
        .send(Frame::method(
            0,
            warren_codec::ConnectionUnblocked::default(),
        ))
        .await;
    within(connection.unblocked()).await.unwrap();
    assert_eq!(connection.blocked(), None);
}
