//! Channel errors: the broker's reason reaches the failing call and every later one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Broker, within};
use warren_client::{Error, ExchangeDeclareOptions, ExchangeKind, QueueDeclareOptions};

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn passive_declare_of_a_missing_queue_closes_the_channel_with_404() {
    let broker = Broker::start().await;
    let connection = broker.connect("passive_declare_of_a_missing_queue").await;
    let ch = within(connection.open_channel()).await.unwrap();
    let other = within(connection.open_channel()).await.unwrap();

    let err = within(ch.queue_declare("missing", passive()))
        .await
        .unwrap_err();
    match &err {
        Error::ChannelClosed {
            code,
            text,
            class_id,
            method_id,
        } => {
            assert_eq!(*code, 404);
            assert!(text.starts_with("NOT_FOUND"), "{text}");
            assert!(text.contains("missing"), "{text}");
            assert_eq!((*class_id, *method_id), (50, 10));
        }
        other => panic!("expected ChannelClosed, got {other:?}"),
    }
    assert!(!ch.is_open());
    assert_eq!(ch.close_reason().and_then(|e| e.reply_code()), Some(404));
    // Later calls report the same reason without a round trip.
    let again = within(ch.queue_declare("anything", QueueDeclareOptions::default()))
        .await
        .unwrap_err();
    assert_eq!(again.reply_code(), Some(404));
    // The connection and its other channels are unaffected.
    assert!(connection.is_open());
    within(other.queue_declare("fine", QueueDeclareOptions::default()))
        .await
        .unwrap();
    // The closed channel's number is free again.
    let replacement = within(connection.open_channel()).await.unwrap();
    assert!(replacement.is_open());
    within(connection.close()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn every_pipelined_call_after_the_failing_one_gets_the_reason() {
    let broker = Broker::start().await;
    let connection = broker.connect("every_pipelined_call").await;
    let ch = within(connection.open_channel()).await.unwrap();
    let failing = ch.queue_declare("missing", passive());
    let after = ch.queue_declare("would-work", QueueDeclareOptions::default());
    let (failing, after) = within(async { tokio::join!(failing, after) }).await;
    assert_eq!(failing.unwrap_err().reply_code(), Some(404));
    assert_eq!(after.unwrap_err().reply_code(), Some(404));
    within(connection.close()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn redeclaring_with_other_properties_is_406() {
    let broker = Broker::start().await;
    let connection = broker.connect("redeclaring_with_other_properties").await;
    let ch = within(connection.open_channel()).await.unwrap();
    within(ch.exchange_declare(
        "ex",
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
    ))
    .await
    .unwrap();
    let err = within(ch.exchange_declare(
        "ex",
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.reply_code(), Some(406), "{err}");
    within(connection.close()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn a_name_over_255_bytes_is_refused_before_sending() {
    let broker = Broker::start().await;
    let connection = broker.connect("a_name_over_255_bytes").await;
    let ch = within(connection.open_channel()).await.unwrap();
    let err = within(ch.queue_declare(&"q".repeat(256), QueueDeclareOptions::default()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(ch.is_open());
    within(connection.close()).await.unwrap();
    broker.stop().await;
}
