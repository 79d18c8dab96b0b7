//! Durability end to end: durable exchanges, queues and bindings and persistent
//! messages survive a restart on the same data directory; transient ones do not;
//! delivery counts survive; acked messages stay gone and their disk space is reclaimed.
//! The crash (kill -9) tests are in `tests/crash.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};

use common::{
    TestBroker, connect_lapin, http_get, lapin_consume, lapin_counts, lapin_reply_code,
    lapin_table, next_lapin, within,
};

const PERSISTENT: u8 = 2;
const TRANSIENT: u8 = 1;

async fn open(broker: &TestBroker, name: &str) -> (lapin::Connection, Channel) {
    let connection = connect_lapin(&broker.uri(), name).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    within(
        "confirm.select",
        channel.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .unwrap();
    (connection, channel)
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

async fn declare_durable(channel: &Channel, queue: &str) {
    within(
        "queue.declare",
        channel.queue_declare(queue.into(), durable(), FieldTable::default()),
    )
    .await
    .unwrap();
}

/// Publishes persistent messages without waiting in between, then checks every
/// confirm is an ack.
async fn publish_pipelined(channel: &Channel, queue: &str, bodies: impl Iterator<Item = Vec<u8>>) {
    let mut confirms = Vec::new();
    for body in bodies {
        let properties = BasicProperties::default().with_delivery_mode(PERSISTENT);
        confirms.push(
            channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                )
                .await
                .unwrap(),
        );
    }
    for confirm in confirms {
        assert!(within("confirm", confirm).await.unwrap().is_ack());
    }
}

/// Publishes and waits for the broker's ack.
async fn publish(channel: &Channel, exchange: &str, key: &str, body: &[u8], mode: u8) {
    let properties = BasicProperties::default()
        .with_delivery_mode(mode)
        .with_headers(lapin_table(&[("n", AMQPValue::LongString(body.into()))]));
    let confirm = within(
        "basic.publish",
        channel.basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        ),
    )
    .await
    .unwrap();
    let outcome = within("the publisher confirm", confirm).await.unwrap();
    assert!(outcome.is_ack(), "{outcome:?}");
}

/// The bodies left in `queue`, taken with basic.get and acked, with their redelivered
/// flags.
async fn drain(channel: &Channel, queue: &str) -> Vec<(String, bool)> {
    let mut got = Vec::new();
    while let Some(m) = within(
        "basic.get",
        channel.basic_get(queue.into(), BasicGetOptions::default()),
    )
    .await
    .unwrap()
    {
        got.push((String::from_utf8(m.data.clone()).unwrap(), m.redelivered));
        m.ack(BasicAckOptions::default()).await.unwrap();
    }
    got
}

#[tokio::test]
async fn durable_topology_and_persistent_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(TestBroker::config(), dir.path()).await;
    let (connection, ch) = open(&broker, "durability before").await;
    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    within(
        "exchange.declare",
        ch.exchange_declare(
            "orders".into(),
            ExchangeKind::Topic,
            durable_exchange,
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    within(
        "exchange.declare",
        ch.exchange_declare(
            "scratch".into(),
            ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let limited = lapin_table(&[("x-max-length", AMQPValue::LongInt(100))]);
    within(
        "queue.declare",
        ch.queue_declare("kept".into(), durable(), limited.clone()),
    )
    .await
    .unwrap();
    within(
        "queue.declare",
        ch.queue_declare("dropped".into(), Default::default(), FieldTable::default()),
    )
    .await
    .unwrap();
    for (queue, exchange, key) in [
        ("kept", "orders", "order.*"),
        ("kept", "scratch", ""),
        ("dropped", "orders", "#"),
    ] {
        within(
            "queue.bind",
            ch.queue_bind(
                queue.into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
        .unwrap();
    }
    publish(&ch, "", "kept", b"one", PERSISTENT).await;
    publish(&ch, "", "kept", b"transient", TRANSIENT).await;
    publish(&ch, "orders", "order.new", b"two", PERSISTENT).await;
    publish(&ch, "", "dropped", b"in a transient queue", PERSISTENT).await;
    assert_eq!(lapin_counts(&ch, "kept").await.0, 3);
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;

    let broker = TestBroker::start_in(TestBroker::config(), dir.path()).await;
    let (_connection, ch) = open(&broker, "durability after").await;
    // The durable queue, with its arguments, and its persistent messages in order.
    within(
        "queue.declare",
        ch.queue_declare("kept".into(), durable(), limited),
    )
    .await
    .unwrap();
    // Through the durable binding of the durable exchange.
    publish(&ch, "orders", "order.paid", b"three", PERSISTENT).await;
    let mut consumer = lapin_consume(&ch, "kept", false).await;
    for expected in ["one", "two", "three"] {
        let m = next_lapin(&mut consumer).await;
        assert_eq!(String::from_utf8_lossy(&m.data), expected);
        assert!(
            !m.redelivered,
            "a clean restart does not mark {expected} redelivered"
        );
        let headers = m.properties.headers().clone().unwrap();
        assert_eq!(
            headers.inner().get("n"),
            Some(&AMQPValue::LongString(expected.as_bytes().into()))
        );
        assert_eq!(*m.properties.delivery_mode(), Some(PERSISTENT));
        m.ack(BasicAckOptions::default()).await.unwrap();
    }
    // The transient exchange, the transient queue and its binding are gone.
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let gone = within(
        "passive declare",
        ch.queue_declare("dropped".into(), passive, FieldTable::default()),
    )
    .await;
    assert_eq!(lapin_reply_code(&gone.unwrap_err()), Some(404));
    let connection = connect_lapin(&broker.uri(), "durability scratch")
        .await
        .unwrap();
    let ch = connection.create_channel().await.unwrap();
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let gone = within(
        "passive exchange.declare",
        ch.exchange_declare(
            "scratch".into(),
            ExchangeKind::Fanout,
            passive,
            FieldTable::default(),
        ),
    )
    .await;
    assert_eq!(lapin_reply_code(&gone.unwrap_err()), Some(404));
    broker.stop().await;
}

#[tokio::test]
async fn delivery_counts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(TestBroker::config(), dir.path()).await;
    let (connection, ch) = open(&broker, "delivery count before").await;
    declare_durable(&ch, "poison").await;
    publish(&ch, "", "poison", b"bad", PERSISTENT).await;
    let mut consumer = lapin_consume(&ch, "poison", false).await;
    let m = next_lapin(&mut consumer).await;
    m.nack(BasicNackOptions {
        requeue: true,
        ..Default::default()
    })
    .await
    .unwrap();
    // Delivered again and left unacked: the connection's close gives it back.
    let m = next_lapin(&mut consumer).await;
    assert!(m.redelivered);
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;

    let broker = TestBroker::start_in(TestBroker::config(), dir.path()).await;
    let (_connection, ch) = open(&broker, "delivery count after").await;
    let mut consumer = lapin_consume(&ch, "poison", false).await;
    let m = next_lapin(&mut consumer).await;
    assert!(m.redelivered);
    let count = m
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count").cloned());
    assert_eq!(
        count,
        Some(AMQPValue::LongLongInt(2)),
        "two returns before the restart"
    );
    broker.stop().await;
}

#[tokio::test]
async fn acked_messages_stay_gone_and_their_segments_are_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(TestBroker::config(), dir.path()).await;
    let (connection, ch) = open(&broker, "reclaim").await;
    declare_durable(&ch, "work").await;
    publish_pipelined(&ch, "work", (0..4000).map(|_| vec![b'x'; 1024])).await;
    let store = dir.path().join("store");
    let full = segment_bytes(&store);
    assert!(full > 4000 * 1024, "4000 KiB stored, {full} bytes on disk");
    assert_eq!(drain(&ch, "work").await.len(), 4000);
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
    let left = segment_bytes(&store);
    assert!(
        left < 1 << 20,
        "{left} bytes left on disk after acking everything"
    );

    let broker = TestBroker::start_in(TestBroker::config(), dir.path()).await;
    let (_connection, ch) = open(&broker, "reclaim after").await;
    assert_eq!(lapin_counts(&ch, "work").await, (0, 0));
    broker.stop().await;
}

fn segment_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// 2,000 persistent 8 KiB messages: 16 MB, twice what a queue keeps in memory, so most
/// are read back from the store when their turn comes, before and after a restart.
#[tokio::test]
async fn a_queue_longer_than_memory_is_read_back_in_order() {
    let body = |n: u32| {
        let mut body = format!("message {n:05} ").into_bytes();
        body.resize(8192, b'.');
        body
    };
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(TestBroker::config(), dir.path()).await;
    let (connection, ch) = open(&broker, "paging before").await;
    declare_durable(&ch, "long").await;
    publish_pipelined(&ch, "long", (0..2000).map(body)).await;
    // Every message is written now; a declare wakes the queue, which then drops the
    // bodies past its window. The queue must hold well under the 16 MB it was sent.
    assert_eq!(lapin_counts(&ch, "long").await.0, 2000);
    let (status, metrics) = http_get(broker.management_addr(), "/metrics", None).await;
    assert_eq!(status, 200);
    let held: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("warren_queued_bytes "))
        .and_then(|v| v.parse().ok())
        .expect("warren_queued_bytes in /metrics");
    assert!(
        held < 10 << 20,
        "the queue holds {held} bytes of 16 MB sent"
    );
    let mut consumer = lapin_consume(&ch, "long", false).await;
    for n in 0..1000 {
        let m = next_lapin(&mut consumer).await;
        assert!(
            m.data == body(n),
            "message {n} came back as {:?}",
            String::from_utf8_lossy(&m.data[..20])
        );
        m.ack(BasicAckOptions::default()).await.unwrap();
    }
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;

    let broker = TestBroker::start_in(TestBroker::config(), dir.path()).await;
    let (_connection, ch) = open(&broker, "paging after").await;
    let mut consumer = lapin_consume(&ch, "long", false).await;
    for n in 1000..2000 {
        let m = next_lapin(&mut consumer).await;
        assert!(
            m.data == body(n),
            "message {n} came back as {:?}",
            String::from_utf8_lossy(&m.data[..20])
        );
        m.ack(BasicAckOptions::default()).await.unwrap();
    }
    assert_eq!(lapin_counts(&ch, "long").await.0, 0);
    broker.stop().await;
}

/// tx.commit-ok comes after the committed persistent messages are on disk: they are
/// there after a restart; a rolled-back one is not.
#[tokio::test]
async fn committed_persistent_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(TestBroker::config(), dir.path()).await;
    let connection = connect_lapin(&broker.uri(), "tx before").await.unwrap();
    let ch = connection.create_channel().await.unwrap();
    declare_durable(&ch, "ledger").await;
    within("tx.select", ch.tx_select()).await.unwrap();
    for (body, commit) in [("kept", true), ("rolled back", false)] {
        let properties = BasicProperties::default().with_delivery_mode(PERSISTENT);
        ch.basic_publish(
            "".into(),
            "ledger".into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            properties,
        )
        .await
        .unwrap();
        if commit {
            within("tx.commit", ch.tx_commit()).await.unwrap();
        } else {
            within("tx.rollback", ch.tx_rollback()).await.unwrap();
        }
    }
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;

    let broker = TestBroker::start_in(TestBroker::config(), dir.path()).await;
    let (_connection, ch) = open(&broker, "tx after").await;
    assert_eq!(drain(&ch, "ledger").await, [("kept".to_owned(), false)]);
    broker.stop().await;
}
