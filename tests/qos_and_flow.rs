//! Limits on what the broker pushes to consumers: basic.qos per consumer
//! (global = false) and per channel (global = true), applied together as in RabbitMQ
//! 3.x, and channel.flow pausing and resuming deliveries.
//!
//! "Nothing more arrives" is proven without waiting: after the expected deliveries, a
//! passive queue.declare on the same connection makes a round trip through the queue's
//! own mailbox. Its declare-ok says how many messages the queue still holds ready (a
//! delivery the queue made would have left it), and the client has read every frame the
//! broker sent before that declare-ok, so a stray delivery would sit in the consumer's
//! buffer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use futures_util::{FutureExt, StreamExt};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ChannelFlowOptions};
use warren_client::{ConsumeOptions, QueueDeclareOptions};
use warren_codec::{BasicQos, Frame};

use common::{
    RawClient, TestBroker, connect_client, connect_lapin, counts, lapin_counts, lapin_publish,
    next_client, next_lapin, publish_all,
};

fn numbers(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

/// Asserts a lapin consumer has nothing buffered.
fn lapin_idle(consumer: &mut lapin::Consumer) {
    if let Some(item) = consumer.next().now_or_never() {
        panic!("a delivery beyond the limit arrived: {item:?}");
    }
}

/// Asserts a warren-client consumer has nothing buffered.
fn client_idle(consumer: &mut warren_client::Consumer) {
    if let Some(item) = consumer.next().now_or_never() {
        panic!("a delivery beyond the limit arrived: {item:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_count_caps_the_unacked_deliveries_of_a_consumer() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "prefetch_count_caps_the_unacked_deliveries_of_a_consumer",
    )
    .await
    .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare("capped".into(), Default::default(), Default::default())
        .await
        .unwrap();
    for body in numbers(0..10) {
        lapin_publish(&channel, "", "capped", body.as_bytes()).await;
    }
    channel
        .basic_qos(3, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            "capped".into(),
            "".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(next_lapin(&mut consumer).await);
    }
    assert_eq!(lapin_counts(&channel, "capped").await, (7, 1));
    lapin_idle(&mut consumer);

    // Each ack opens exactly one slot.
    let mut seen: Vec<Vec<u8>> = held.iter().map(|d| d.data.clone()).collect();
    held.remove(0)
        .acker
        .ack(BasicAckOptions::default())
        .await
        .unwrap();
    let fourth = next_lapin(&mut consumer).await;
    assert_eq!(fourth.data, b"3");
    seen.push(fourth.data.clone());
    held.push(fourth);
    assert_eq!(lapin_counts(&channel, "capped").await, (6, 1));
    lapin_idle(&mut consumer);

    // Acking the whole window lets the rest through, three at a time, in order.
    let mut last = held.pop().unwrap();
    while seen.len() < 10 {
        last.acker
            .ack(BasicAckOptions { multiple: true })
            .await
            .unwrap();
        let window = (10 - seen.len()).min(3);
        for _ in 0..window {
            last = next_lapin(&mut consumer).await;
            seen.push(last.data.clone());
        }
        assert_eq!(
            lapin_counts(&channel, "capped").await.0 as usize,
            10 - seen.len()
        );
        lapin_idle(&mut consumer);
    }
    let expected: Vec<Vec<u8>> = numbers(0..10).into_iter().map(String::into_bytes).collect();
    assert_eq!(seen, expected);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_wide_prefetch_spans_every_consumer_of_the_channel() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "channel_wide_prefetch_spans_every_consumer_of_the_channel",
    )
    .await;
    let setup = conn.open_channel().await.unwrap();
    for queue in ["window-a", "window-b"] {
        setup
            .queue_declare(queue, QueueDeclareOptions::default())
            .await
            .unwrap();
    }
    publish_all(&setup, "", "window-a", numbers(0..3)).await;
    publish_all(&setup, "", "window-b", numbers(0..10)).await;

    let channel = conn.open_channel().await.unwrap();
    channel.basic_qos(3, true).await.unwrap();
    let mut a = channel
        .basic_consume("window-a", ConsumeOptions::default())
        .await
        .unwrap();
    let held_a = [
        next_client(&mut a).await,
        next_client(&mut a).await,
        next_client(&mut a).await,
    ];
    // The window is full: a consumer of another queue on the same channel gets nothing.
    let mut b = channel
        .basic_consume("window-b", ConsumeOptions::default())
        .await
        .unwrap();
    assert_eq!(counts(&channel, "window-b").await, (10, 1));
    client_idle(&mut b);

    // One ack on a frees one slot, and only b's queue has messages to fill it.
    held_a[0].ack().await.unwrap();
    let first_b = next_client(&mut b).await;
    assert_eq!(&first_b.body[..], b"0");
    assert_eq!(counts(&channel, "window-b").await, (9, 1));
    client_idle(&mut b);

    // Two more acks on a, two more for b.
    held_a[2].ack_multiple().await.unwrap();
    let more = [next_client(&mut b).await, next_client(&mut b).await];
    assert_eq!(&more[1].body[..], b"2");
    assert_eq!(counts(&channel, "window-b").await, (7, 1));
    client_idle(&mut b);
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_consumer_and_channel_wide_prefetch_apply_together() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "per_consumer_and_channel_wide_prefetch_apply_together",
    )
    .await;
    let setup = conn.open_channel().await.unwrap();
    for queue in ["both-a", "both-b"] {
        setup
            .queue_declare(queue, QueueDeclareOptions::default())
            .await
            .unwrap();
        publish_all(&setup, "", queue, numbers(0..10)).await;
    }
    let channel = conn.open_channel().await.unwrap();
    // RabbitMQ 3.x: each consumer may hold 2, the channel 3 in all.
    channel.basic_qos(2, false).await.unwrap();
    channel.basic_qos(3, true).await.unwrap();
    let mut a = channel
        .basic_consume("both-a", ConsumeOptions::default())
        .await
        .unwrap();
    let _held_a = [next_client(&mut a).await, next_client(&mut a).await];
    assert_eq!(
        counts(&channel, "both-a").await,
        (8, 1),
        "a stops at its own 2"
    );
    client_idle(&mut a);
    let mut b = channel
        .basic_consume("both-b", ConsumeOptions::default())
        .await
        .unwrap();
    let held_b = next_client(&mut b).await;
    assert_eq!(
        counts(&channel, "both-b").await,
        (9, 1),
        "b stops at the channel's 3"
    );
    client_idle(&mut b);
    assert_eq!(counts(&channel, "both-a").await, (8, 1));
    client_idle(&mut a);

    // b's ack frees a channel slot; a is still at its own limit, so b gets it.
    held_b.ack().await.unwrap();
    let next_b = next_client(&mut b).await;
    assert_eq!(&next_b.body[..], b"1");
    assert_eq!(counts(&channel, "both-b").await, (8, 1));
    assert_eq!(counts(&channel, "both-a").await, (8, 1));
    client_idle(&mut a);
    client_idle(&mut b);
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_the_channel_wide_prefetch_lets_more_through_at_once() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "raising_the_channel_wide_prefetch_lets_more_through_at_once",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("widened", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "widened", numbers(0..10)).await;
    channel.basic_qos(2, true).await.unwrap();
    let mut consumer = channel
        .basic_consume("widened", ConsumeOptions::default())
        .await
        .unwrap();
    let mut held = vec![
        next_client(&mut consumer).await,
        next_client(&mut consumer).await,
    ];
    assert_eq!(counts(&channel, "widened").await, (8, 1));
    channel.basic_qos(5, true).await.unwrap();
    for _ in 0..3 {
        held.push(next_client(&mut consumer).await);
    }
    assert_eq!(counts(&channel, "widened").await, (5, 1));
    client_idle(&mut consumer);
    let bodies: Vec<&[u8]> = held.iter().map(|d| &d.body[..]).collect();
    assert_eq!(bodies, [b"0", b"1", b"2", b"3", b"4"]);
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_consumer_prefetch_applies_only_to_consumers_started_after_it() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "per_consumer_prefetch_applies_only_to_consumers_started_after_it",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("unlimited", QueueDeclareOptions::default())
        .await
        .unwrap();
    let mut early = channel
        .basic_consume("unlimited", ConsumeOptions::default())
        .await
        .unwrap();
    channel.basic_qos(1, false).await.unwrap();
    publish_all(&channel, "", "unlimited", numbers(0..5)).await;
    for expected in numbers(0..5) {
        let delivery = next_client(&mut early).await;
        assert_eq!(&delivery.body[..], expected.as_bytes());
    }
    assert_eq!(counts(&channel, "unlimited").await, (0, 1));
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_size_other_than_zero_closes_the_connection_with_540() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "prefetch_size_other_than_zero_closes_the_connection_with_540",
    )
    .await;
    client.open_channel(1).await;
    client
        .send(Frame::method(
            1,
            BasicQos {
                prefetch_size: 4096,
                prefetch_count: 10,
                global: false,
            },
        ))
        .await;
    let (code, text, class_id, method_id) = client.expect_close().await;
    assert_eq!(code, 540, "{text}");
    assert!(text.starts_with("NOT_IMPLEMENTED - "), "{text}");
    assert_eq!((class_id, method_id), (60, 10));
    client.close_ok().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_flow_inactive_pauses_deliveries_and_active_resumes_them() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "channel_flow_inactive_pauses_deliveries_and_active_resumes_them",
    )
    .await
    .unwrap();
    let publisher = conn.create_channel().await.unwrap();
    publisher
        .queue_declare("paused".into(), Default::default(), Default::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut consumer = channel
        .basic_consume(
            "paused".into(),
            "".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let mut no_ack = channel
        .basic_consume(
            "paused".into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
    let active = channel
        .channel_flow(ChannelFlowOptions { active: false })
        .await
        .unwrap();
    assert!(!active);
    for body in numbers(0..6) {
        lapin_publish(&publisher, "", "paused", body.as_bytes()).await;
    }
    // Paused: the queue keeps everything, for both kinds of consumer.
    assert_eq!(lapin_counts(&channel, "paused").await, (6, 2));
    lapin_idle(&mut consumer);
    lapin_idle(&mut no_ack);
    // Other channels are not paused: basic.get still works there.
    let got = publisher
        .basic_get(
            "paused".into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(got.delivery.data, b"0");

    let active = channel
        .channel_flow(ChannelFlowOptions { active: true })
        .await
        .unwrap();
    assert!(active);
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let delivery = tokio::select! {
            d = next_lapin(&mut consumer) => d,
            d = next_lapin(&mut no_ack) => d,
        };
        bodies.push(String::from_utf8(delivery.data.clone()).unwrap());
    }
    bodies.sort();
    assert_eq!(bodies, numbers(1..6));
    assert_eq!(lapin_counts(&channel, "paused").await, (0, 2));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}
