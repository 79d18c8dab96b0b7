//! Topology, publishing, basic.get and consuming against an in-process warren.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::{Broker, within};
use futures_util::StreamExt;
use warren_client::{
    BasicProperties, Channel, ConsumeOptions, Error, ExchangeDeclareOptions, ExchangeKind,
    FieldTable, FieldValue, PublishOptions, QueueDeclareOptions, QueueDeleteOptions,
};

async fn channel(broker: &Broker, test: &str) -> Channel {
    let connection = broker.connect(test).await;
    within(connection.open_channel()).await.unwrap()
}

async fn publish(channel: &Channel, queue: &str, body: &'static str) {
    within(channel.basic_publish(
        "",
        queue,
        body,
        BasicProperties::default(),
        PublishOptions::default(),
    ))
    .await
    .unwrap();
}

fn full_properties() -> BasicProperties {
    let mut nested = FieldTable::new();
    nested.insert("depth", 2);
    let mut headers = FieldTable::new();
    headers.insert("x-retries", FieldValue::I32(3));
    headers.insert("tenant", "acme");
    headers.insert("flags", FieldValue::Array(vec![true.into(), 7i64.into()]));
    headers.insert("nested", nested);
    BasicProperties {
        content_type: Some("application/json".into()),
        content_encoding: Some("utf-8".into()),
        headers: Some(headers),
        delivery_mode: Some(2),
        priority: Some(5),
        correlation_id: Some("corr-1".into()),
        reply_to: Some("replies".into()),
        expiration: Some("60000".into()),
        message_id: Some("msg-1".into()),
        timestamp: Some(1_700_000_000),
        kind: Some("order.created".into()),
        user_id: Some("guest".into()),
        app_id: Some("shop".into()),
        cluster_id: None,
    }
}

#[tokio::test]
async fn publish_and_get_round_trip_with_properties_and_headers() {
    let broker = Broker::start().await;
    let ch = channel(&broker, "publish_and_get_round_trip").await;
    let queue = within(ch.queue_declare("", QueueDeclareOptions::default()))
        .await
        .unwrap();
    assert!(queue.name.starts_with("amq.gen-"), "{}", queue.name);
    assert_eq!((queue.message_count, queue.consumer_count), (0, 0));

    within(ch.basic_publish(
        "",
        &queue.name,
        Bytes::from_static(b"{\"order\":1}"),
        full_properties(),
        PublishOptions::default(),
    ))
    .await
    .unwrap();
    let delivery = within(ch.basic_get(&queue.name, false))
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(&delivery.body[..], b"{\"order\":1}");
    assert_eq!(delivery.properties, full_properties());
    assert_eq!(delivery.exchange, "");
    assert_eq!(delivery.routing_key, queue.name.as_str());
    assert!(!delivery.redelivered);
    within(delivery.ack()).await.unwrap();
    assert!(
        within(ch.basic_get(&queue.name, false))
            .await
            .unwrap()
            .is_none()
    );
    broker.stop().await;
}

#[tokio::test]
async fn a_body_larger_than_frame_max_is_split_and_reassembled() {
    let broker = Broker::start().await;
    let uri = format!("{}?frame_max=4096", broker.uri());
    let connection = within(warren_client::Connection::connect(&uri))
        .await
        .unwrap();
    let ch = within(connection.open_channel()).await.unwrap();
    let queue = within(ch.queue_declare("", QueueDeclareOptions::default()))
        .await
        .unwrap();
    let body: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    within(ch.basic_publish(
        "",
        &queue.name,
        body.clone(),
        BasicProperties::default(),
        PublishOptions::default(),
    ))
    .await
    .unwrap();
    let delivery = within(ch.basic_get(&queue.name, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.body, body);
    within(connection.close()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn consumer_stream_delivers_in_order_and_acks() {
    let broker = Broker::start().await;
    let ch = channel(&broker, "consumer_stream_delivers_in_order_and_acks").await;
    within(ch.queue_declare("work", QueueDeclareOptions::default()))
        .await
        .unwrap();
    within(ch.basic_qos(10, false)).await.unwrap();
    let mut consumer = within(ch.basic_consume("work", ConsumeOptions::default()))
        .await
        .unwrap();
    assert!(
        consumer.tag().starts_with("amq.ctag-"),
        "{}",
        consumer.tag()
    );
    for body in ["a", "b", "c", "d", "e"] {
        publish(&ch, "work", body).await;
    }
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let delivery = within(consumer.next()).await.unwrap().unwrap();
        seen.push(String::from_utf8(delivery.body.to_vec()).unwrap());
        within(delivery.ack()).await.unwrap();
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    within(consumer.cancel()).await.unwrap();
    assert!(
        within(consumer.next()).await.is_none(),
        "the stream ends after cancel"
    );
    // Everything was acked: nothing is left to get.
    let queue = within(ch.queue_declare(
        "work",
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    assert_eq!((queue.message_count, queue.consumer_count), (0, 0));
    broker.stop().await;
}

#[tokio::test]
async fn nack_with_requeue_redelivers() {
    let broker = Broker::start().await;
    let ch = channel(&broker, "nack_with_requeue_redelivers").await;
    within(ch.queue_declare("retry", QueueDeclareOptions::default()))
        .await
        .unwrap();
    let mut consumer = within(ch.basic_consume("retry", ConsumeOptions::default()))
        .await
        .unwrap();
    publish(&ch, "retry", "job").await;
    let first = within(consumer.next()).await.unwrap().unwrap();
    assert!(!first.redelivered);
    within(first.nack(true)).await.unwrap();
    let second = within(consumer.next()).await.unwrap().unwrap();
    assert!(second.redelivered);
    assert_eq!(&second.body[..], b"job");
    within(second.reject(false)).await.unwrap();
    within(consumer.cancel()).await.unwrap();
    let purged = within(ch.queue_purge("retry")).await.unwrap();
    assert_eq!(purged, 0);
    broker.stop().await;
}

#[tokio::test]
async fn deleting_the_queue_ends_the_stream_with_consumer_cancelled() {
    let broker = Broker::start().await;
    let ch = channel(&broker, "deleting_the_queue_ends_the_stream").await;
    within(ch.queue_declare("doomed", QueueDeclareOptions::default()))
        .await
        .unwrap();
    let mut consumer = within(ch.basic_consume(
        "doomed",
        ConsumeOptions {
            consumer_tag: "watcher".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    assert_eq!(consumer.tag(), "watcher");
    publish(&ch, "doomed", "last words").await;
    let delivery = within(consumer.next()).await.unwrap().unwrap();
    within(delivery.ack()).await.unwrap();
    within(ch.queue_delete("doomed", QueueDeleteOptions::default()))
        .await
        .unwrap();
    match within(consumer.next()).await {
        Some(Err(Error::ConsumerCancelled { consumer_tag })) => assert_eq!(consumer_tag, "watcher"),
        other => panic!("expected the broker's cancel, got {other:?}"),
    }
    assert!(within(consumer.next()).await.is_none());
    // Cancelling a consumer the broker already ended succeeds.
    within(consumer.cancel()).await.unwrap();
    assert!(ch.is_open());
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_no_ack_consumer_pauses_reading_without_losing_messages() {
    let broker = Broker::start().await;
    let consumer_connection = broker.connect("slow_consumer").await;
    let ch = within(consumer_connection.open_channel()).await.unwrap();
    within(ch.queue_declare("firehose", QueueDeclareOptions::default()))
        .await
        .unwrap();
    let mut consumer = within(ch.basic_consume(
        "firehose",
        ConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    // Far more than the consumer's buffer: the connection task must stall on it.
    let count = warren_client::CONSUMER_BUFFER * 3;
    let publisher = channel(&broker, "slow_consumer_publisher").await;
    within(publisher.confirm_select()).await.unwrap();
    let mut confirms = Vec::new();
    for i in 0..count {
        let confirm = within(publisher.basic_publish(
            "",
            "firehose",
            i.to_string(),
            BasicProperties::default(),
            PublishOptions::default(),
        ))
        .await
        .unwrap();
        confirms.push(confirm);
    }
    for confirm in confirms {
        assert!(within(confirm).await.unwrap().is_ack());
    }
    for i in 0..count {
        let delivery = within(consumer.next()).await.unwrap().unwrap();
        assert_eq!(delivery.body, i.to_string().into_bytes());
    }
    within(consumer_connection.close()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn dropping_a_consumer_requeues_what_it_buffered() {
    let broker = Broker::start().await;
    let ch = channel(&broker, "dropping_a_consumer_requeues").await;
    within(ch.queue_declare("jobs", QueueDeclareOptions::default()))
        .await
        .unwrap();
    for body in ["1", "2", "3"] {
        publish(&ch, "jobs", body).await;
    }
    let mut consumer = within(ch.basic_consume("jobs", ConsumeOptions::default()))
        .await
        .unwrap();
    // Wait until the consumer holds the first delivery; the rest follow it.
    let first = within(consumer.next()).await.unwrap().unwrap();
    drop(first);
    drop(consumer);
    // The cancel goes out before the rejects, so all three come back to the queue:
    // the unacked first on channel close, the buffered ones now. A second consumer
    // sees the two rejected ones at least (and the first after the channel closes).
    let other = channel(&broker, "dropping_a_consumer_requeues_2").await;
    let mut second = within(other.basic_consume("jobs", ConsumeOptions::default()))
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let delivery = within(second.next()).await.unwrap().unwrap();
        bodies.push(String::from_utf8(delivery.body.to_vec()).unwrap());
        within(delivery.ack()).await.unwrap();
    }
    bodies.sort();
    assert_eq!(bodies, ["2", "3"]);
    within(ch.close()).await.unwrap();
    let delivery = within(second.next()).await.unwrap().unwrap();
    assert_eq!(&delivery.body[..], b"1");
    assert!(delivery.redelivered);
    broker.stop().await;
}

#[tokio::test]
async fn fanout_exchange_routes_to_every_bound_queue() {
    let broker = Broker::start().await;
    let ch = channel(&broker, "fanout_exchange_routes").await;
    within(ch.exchange_declare(
        "events",
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
    ))
    .await
    .unwrap();
    for queue in ["audit", "billing"] {
        within(ch.queue_declare(queue, QueueDeclareOptions::default()))
            .await
            .unwrap();
        within(ch.queue_bind(queue, "events", "", FieldTable::new()))
            .await
            .unwrap();
    }
    within(ch.basic_publish(
        "events",
        "ignored",
        "hello",
        BasicProperties::default(),
        PublishOptions::default(),
    ))
    .await
    .unwrap();
    for queue in ["audit", "billing"] {
        let delivery = within(ch.basic_get(queue, true)).await.unwrap().unwrap();
        assert_eq!(&delivery.body[..], b"hello");
        assert_eq!(delivery.exchange, "events");
        assert_eq!(delivery.routing_key, "ignored");
    }
    within(ch.queue_unbind("billing", "events", "", FieldTable::new()))
        .await
        .unwrap();
    publish_to(&ch, "events", "again").await;
    assert_eq!(within(ch.queue_purge("audit")).await.unwrap(), 1);
    assert_eq!(within(ch.queue_purge("billing")).await.unwrap(), 0);
    within(ch.exchange_delete("events", Default::default()))
        .await
        .unwrap();
    assert_eq!(
        within(ch.queue_delete("audit", QueueDeleteOptions::default()))
            .await
            .unwrap(),
        0
    );
    broker.stop().await;
}

async fn publish_to(channel: &Channel, exchange: &str, body: &'static str) {
    within(channel.basic_publish(
        exchange,
        "",
        body,
        BasicProperties::default(),
        PublishOptions::default(),
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn transactions_commit_and_roll_back_publishes() {
    let broker = Broker::start().await;
    let ch = channel(&broker, "transactions").await;
    within(ch.queue_declare("ledger", QueueDeclareOptions::default()))
        .await
        .unwrap();
    within(ch.tx_select()).await.unwrap();
    publish(&ch, "ledger", "kept").await;
    within(ch.tx_commit()).await.unwrap();
    publish(&ch, "ledger", "discarded").await;
    within(ch.tx_rollback()).await.unwrap();
    let delivery = within(ch.basic_get("ledger", true)).await.unwrap().unwrap();
    assert_eq!(&delivery.body[..], b"kept");
    assert!(
        within(ch.basic_get("ledger", true))
            .await
            .unwrap()
            .is_none()
    );
    broker.stop().await;
}

#[tokio::test]
async fn calls_pipeline_from_many_tasks_on_one_channel() {
    let broker = Broker::start().await;
    let ch = channel(&broker, "calls_pipeline").await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("pipelined-{i}");
            let info = ch
                .queue_declare(&name, QueueDeclareOptions::default())
                .await
                .unwrap();
            assert_eq!(info.name, name.as_str());
        }));
    }
    for task in tasks {
        within(task).await.unwrap();
    }
    broker.stop().await;
}
