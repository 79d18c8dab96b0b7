//! Connecting, opening channels and closing, against an in-process warren.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Broker, within};
use warren_client::{Connection, Error, QueueDeclareOptions};

#[tokio::test]
async fn connect_open_channel_and_close() {
    let broker = Broker::start().await;
    let connection = broker.connect("connect_open_channel_and_close").await;
    assert!(connection.is_open());
    assert_eq!(
        connection
            .server_properties()
            .get("product")
            .and_then(|v| v.as_str()),
        Some("warren")
    );
    let channel = within(connection.open_channel()).await.unwrap();
    assert!(channel.is_open());
    assert_eq!(channel.id(), 1);
    within(channel.close()).await.unwrap();
    assert!(!channel.is_open());
    assert_eq!(
        channel.close_reason().and_then(|e| e.reply_code()),
        Some(200)
    );
    // Closing twice is fine, and calls on the closed channel say why it closed.
    within(channel.close()).await.unwrap();
    let err = within(channel.queue_declare("q", QueueDeclareOptions::default()))
        .await
        .unwrap_err();
    assert_eq!(err.reply_code(), Some(200));

    within(connection.close()).await.unwrap();
    assert!(!connection.is_open());
    assert!(matches!(
        connection.close_reason(),
        Some(Error::ConnectionClosed { code: 200, .. })
    ));
    within(connection.close()).await.unwrap();
    assert!(within(connection.open_channel()).await.is_err());
    broker.stop().await;
}

#[tokio::test]
async fn channel_numbers_are_not_reused_at_once() {
    let broker = Broker::start().await;
    let connection = broker
        .connect("channel_numbers_are_not_reused_at_once")
        .await;
    let first = within(connection.open_channel()).await.unwrap();
    let second = within(connection.open_channel()).await.unwrap();
    assert_eq!((first.id(), second.id()), (1, 2));
    within(first.close()).await.unwrap();
    let third = within(connection.open_channel()).await.unwrap();
    assert_eq!(third.id(), 3);
    within(connection.close()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn uri_options_lower_the_servers_tuning() {
    let broker = Broker::start().await;
    let uri = format!("{}?heartbeat=5&frame_max=8192&channel_max=2", broker.uri());
    let connection = within(Connection::connect(&uri)).await.unwrap();
    assert_eq!(connection.heartbeat(), 5);
    assert_eq!(connection.frame_max(), 8192);
    assert_eq!(connection.channel_max(), 2);
    let _one = within(connection.open_channel()).await.unwrap();
    let _two = within(connection.open_channel()).await.unwrap();
    let err = within(connection.open_channel()).await.unwrap_err();
    assert!(matches!(err, Error::ChannelLimitReached { channel_max: 2 }));
    within(connection.close()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn wrong_password_is_refused_with_403() {
    let broker = Broker::start().await;
    let uri = broker.uri().replace("guest:guest", "guest:wrong");
    let err = within(Connection::connect(&uri)).await.unwrap_err();
    assert_eq!(err.reply_code(), Some(403), "{err}");
    broker.stop().await;
}

#[tokio::test]
async fn unknown_vhost_is_refused_with_530() {
    let broker = Broker::start().await;
    let uri = broker.uri().replace("/%2f", "/nowhere");
    let err = within(Connection::connect(&uri)).await.unwrap_err();
    assert_eq!(err.reply_code(), Some(530), "{err}");
    broker.stop().await;
}

#[tokio::test]
async fn nothing_listening_is_an_io_error() {
    // Bind and drop a listener to find a port with nothing behind it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = within(Connection::connect(&format!("amqp://127.0.0.1:{port}")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
}

#[tokio::test]
async fn broker_shutdown_closes_the_connection_with_320() {
    let broker = Broker::start().await;
    let connection = broker
        .connect("broker_shutdown_closes_the_connection_with_320")
        .await;
    let channel = within(connection.open_channel()).await.unwrap();
    broker.shutdown();
    let reason = within(connection.closed()).await;
    assert_eq!(reason.reply_code(), Some(320), "{reason}");
    assert!(!channel.is_open());
    let err = within(channel.queue_declare("q", QueueDeclareOptions::default()))
        .await
        .unwrap_err();
    assert_eq!(err.reply_code(), Some(320));
    broker.stop().await;
}
