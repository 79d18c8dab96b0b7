//! Publisher confirms and returned messages against an in-process warren.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Broker, within};
use futures_util::StreamExt;
use warren_client::{BasicProperties, Confirmation, Error, PublishOptions, QueueDeclareOptions};

// Multi-threaded, as most applications run: the connection task and the publisher
// really run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_pipelined_publishes_are_all_acked() {
    let broker = Broker::start().await;
    let connection = broker.connect("a_thousand_pipelined_publishes").await;
    let ch = within(connection.open_channel()).await.unwrap();
    within(ch.queue_declare("bulk", QueueDeclareOptions::default()))
        .await
        .unwrap();
    assert!(!ch.is_confirm_mode());
    within(ch.confirm_select()).await.unwrap();
    assert!(ch.is_confirm_mode());
    let mut confirms = Vec::with_capacity(1000);
    for i in 0..1000u32 {
        let confirm = within(ch.basic_publish(
            "",
            "bulk",
            i.to_be_bytes().to_vec(),
            BasicProperties::default(),
            PublishOptions::default(),
        ))
        .await
        .unwrap();
        confirms.push(confirm);
    }
    // Awaited only now: all 1000 were in flight together.
    let outcomes = within(futures_util::future::join_all(confirms)).await;
    assert_eq!(outcomes.len(), 1000);
    for outcome in outcomes {
        assert_eq!(outcome.unwrap(), Confirmation::Ack);
    }
    let queue = within(ch.queue_declare(
        "bulk",
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    assert_eq!(queue.message_count, 1000);
    within(connection.close()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn an_unroutable_mandatory_publish_resolves_as_returned() {
    let broker = Broker::start().await;
    let connection = broker.connect("an_unroutable_mandatory_publish").await;
    let ch = within(connection.open_channel()).await.unwrap();
    within(ch.queue_declare("routable", QueueDeclareOptions::default()))
        .await
        .unwrap();
    within(ch.confirm_select()).await.unwrap();
    let mandatory = PublishOptions { mandatory: true };
    let properties = BasicProperties {
        message_id: Some("lost-1".into()),
        ..Default::default()
    };
    let routed =
        within(ch.basic_publish("", "routable", "ok", BasicProperties::default(), mandatory))
            .await
            .unwrap();
    let lost = within(ch.basic_publish("", "nowhere", "lost", properties.clone(), mandatory))
        .await
        .unwrap();
    let not_mandatory = within(ch.basic_publish(
        "",
        "nowhere",
        "dropped",
        BasicProperties::default(),
        PublishOptions::default(),
    ))
    .await
    .unwrap();
    assert_eq!(within(routed).await.unwrap(), Confirmation::Ack);
    match within(lost).await.unwrap() {
        Confirmation::Returned(message) => {
            assert_eq!(message.reply_code, 312);
            assert_eq!(message.reply_text, "NO_ROUTE");
            assert_eq!(message.exchange, "");
            assert_eq!(message.routing_key, "nowhere");
            assert_eq!(&message.body[..], b"lost");
            assert_eq!(message.properties, properties);
        }
        other => panic!("expected a return, got {other:?}"),
    }
    // Unroutable but not mandatory: silently dropped, and acked.
    assert_eq!(within(not_mandatory).await.unwrap(), Confirmation::Ack);
    within(connection.close()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn without_confirms_returns_arrive_on_the_returns_stream() {
    let broker = Broker::start().await;
    let connection = broker.connect("without_confirms_returns").await;
    let ch = within(connection.open_channel()).await.unwrap();
    let mut returns = ch.returns().expect("the first call takes the stream");
    assert!(ch.clone().returns().is_none(), "only once");
    let confirm = within(ch.basic_publish(
        "",
        "nowhere",
        "bounced",
        BasicProperties::default(),
        PublishOptions { mandatory: true },
    ))
    .await
    .unwrap();
    assert_eq!(within(confirm).await.unwrap(), Confirmation::NotRequested);
    let message = within(returns.next()).await.unwrap();
    assert_eq!(message.reply_code, 312);
    assert_eq!(&message.body[..], b"bounced");
    within(connection.close()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn unconfirmed_publishes_fail_with_the_channels_close_reason() {
    let broker = Broker::start().await;
    let connection = broker.connect("unconfirmed_publishes_fail").await;
    let ch = within(connection.open_channel()).await.unwrap();
    within(ch.confirm_select()).await.unwrap();
    // A missing exchange: the broker closes the channel with 404 instead of confirming.
    let confirm = within(ch.basic_publish(
        "no-such-exchange",
        "",
        "x",
        BasicProperties::default(),
        PublishOptions::default(),
    ))
    .await
    .unwrap();
    let err = within(confirm).await.unwrap_err();
    assert!(
        matches!(err, Error::ChannelClosed { code: 404, .. }),
        "{err}"
    );
    assert!(!ch.is_open());
    within(connection.close()).await.unwrap();
    broker.stop().await;
}
