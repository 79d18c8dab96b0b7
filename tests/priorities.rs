//! Priority queues (`x-max-priority`), consumer priorities (`x-priority`) and single
//! active consumer queues, end to end with lapin.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};

use common::{TestBroker, connect_lapin, lapin_reply_code, lapin_table, next_lapin, within};

async fn declare(channel: &Channel, queue: &str, arguments: FieldTable) -> lapin::Result<()> {
    within(
        "queue.declare",
        channel.queue_declare(queue.into(), Default::default(), arguments),
    )
    .await
    .map(|_| ())
}

async fn publish(channel: &Channel, queue: &str, body: &[u8], priority: Option<u8>) {
    let mut properties = BasicProperties::default();
    if let Some(p) = priority {
        properties = properties.with_priority(p);
    }
    let confirm = within(
        "basic.publish",
        channel.basic_publish(
            "".into(),
            queue.into(),
            Default::default(),
            body,
            properties,
        ),
    )
    .await
    .unwrap();
    within("a confirm", confirm).await.unwrap();
}

async fn consume(channel: &Channel, tag: &str) -> lapin::Result<lapin::Consumer> {
    channel
        .basic_consume(
            "sac".into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
}

async fn get_body(channel: &Channel, queue: &str) -> Option<Vec<u8>> {
    within(
        "basic.get",
        channel.basic_get(queue.into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .unwrap()
    .map(|m| m.delivery.data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_queue_delivers_higher_priorities_first() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "a_priority_queue_delivers_higher_priorities_first",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(
        &ch,
        "prio",
        lapin_table(&[("x-max-priority", AMQPValue::ShortShortUInt(5))]),
    )
    .await
    .unwrap();
    declare(&ch, "plain", FieldTable::default()).await.unwrap();
    for (body, priority) in [
        (b"low-1", None),
        (b"high1", Some(5)),
        (b"mid-1", Some(3)),
        (b"over1", Some(9)),
        (b"low-2", Some(0)),
        (b"mid-2", Some(3)),
    ] {
        publish(&ch, "prio", body, priority).await;
        publish(&ch, "plain", body, priority).await;
    }
    let mut order = Vec::new();
    while let Some(body) = get_body(&ch, "prio").await {
        order.push(String::from_utf8(body).unwrap());
    }
    // Above the maximum counts as the maximum; publish order within a priority.
    assert_eq!(
        order,
        ["high1", "over1", "mid-1", "mid-2", "low-1", "low-2"]
    );
    // A queue without x-max-priority ignores priorities.
    assert_eq!(get_body(&ch, "plain").await.as_deref(), Some(&b"low-1"[..]));

    let error = declare(
        &ch,
        "too-high",
        lapin_table(&[("x-max-priority", AMQPValue::LongInt(256))]),
    )
    .await
    .expect_err("256 priorities");
    assert_eq!(lapin_reply_code(&error), Some(406), "{error:?}");
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_active_consumer_gets_everything_and_the_next_takes_over() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "a_single_active_consumer_gets_everything_and_the_next_takes_over",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(
        &ch,
        "sac",
        lapin_table(&[("x-single-active-consumer", AMQPValue::Boolean(true))]),
    )
    .await
    .unwrap();
    let first_ch = conn.create_channel().await.unwrap();
    let second_ch = conn.create_channel().await.unwrap();
    let mut first = within("consume", consume(&first_ch, "first"))
        .await
        .unwrap();
    let mut second = within("consume", consume(&second_ch, "second"))
        .await
        .unwrap();
    for i in 0..3u8 {
        publish(&ch, "sac", &[i], None).await;
    }
    for i in 0..3u8 {
        let d = next_lapin(&mut first).await;
        assert_eq!(d.data, [i]);
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    // The first goes (its channel closes): the second becomes active.
    first_ch.close(200, "bye".into()).await.unwrap();
    publish(&ch, "sac", b"after", None).await;
    let d = next_lapin(&mut second).await;
    assert_eq!(d.data, b"after");
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_consumers_get_messages_while_they_have_room() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "higher_priority_consumers_get_messages_while_they_have_room",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "work", FieldTable::default()).await.unwrap();
    let high_ch = conn.create_channel().await.unwrap();
    high_ch
        .basic_qos(2, BasicQosOptions::default())
        .await
        .unwrap();
    let low_ch = conn.create_channel().await.unwrap();
    let mut low = within(
        "consume",
        low_ch.basic_consume(
            "work".into(),
            "low".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let mut high = within(
        "consume",
        high_ch.basic_consume(
            "work".into(),
            "high".into(),
            BasicConsumeOptions::default(),
            lapin_table(&[("x-priority", AMQPValue::LongInt(10))]),
        ),
    )
    .await
    .unwrap();
    for i in 0..3u8 {
        publish(&ch, "work", &[i], None).await;
    }
    // The high-priority consumer takes two (its prefetch), the low one the third.
    assert_eq!(next_lapin(&mut high).await.data, [0]);
    assert_eq!(next_lapin(&mut high).await.data, [1]);
    assert_eq!(next_lapin(&mut low).await.data, [2]);

    let bad = conn.create_channel().await.unwrap();
    let error = within(
        "consume",
        bad.basic_consume(
            "work".into(),
            "bad".into(),
            BasicConsumeOptions::default(),
            lapin_table(&[("x-priority", AMQPValue::LongString("high".into()))]),
        ),
    )
    .await
    .expect_err("x-priority must be an integer");
    assert_eq!(lapin_reply_code(&error), Some(406), "{error:?}");
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}
