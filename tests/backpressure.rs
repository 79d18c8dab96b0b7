//! The memory alarm: past `memory_high_watermark`, connections that publish stop being
//! read and get `connection.blocked`; consumers keep draining; below it again they get
//! `connection.unblocked` and what they sent meanwhile is taken.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use futures_util::StreamExt;
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use warren_codec::{BasicProperties, Method};
use warren_server::config::Watermark;

use common::{RawClient, TestBroker, connect_lapin, lapin_counts, publish_to, within};

const BODY: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_past_the_memory_watermark_is_blocked_until_consumers_drain() {
    let mut config = TestBroker::config();
    // Four 64 KiB messages are over it.
    config.limits.memory_high_watermark = Watermark::Bytes(4 * BODY as u64);
    let broker = TestBroker::start_with(config).await;
    let mut publisher = RawClient::connect(broker.addr(), "flooding publisher").await;
    publisher.open_channel(1).await;
    publisher.declare_queue(1, "flood").await;
    let body = vec![7u8; BODY];
    let publish = async |client: &mut RawClient| {
        client
            .publish(
                1,
                publish_to("", "flood"),
                BasicProperties::default(),
                &body,
                0,
            )
            .await;
    };
    for _ in 0..8 {
        publish(&mut publisher).await;
    }
    match publisher.recv_method().await {
        (0, Method::ConnectionBlocked(blocked)) => {
            assert_eq!(blocked.reason.as_str(), "low on memory")
        }
        other => panic!("expected connection.blocked, got {other:?}"),
    }
    // The broker stopped reading this connection: at most what it had read when the
    // alarm went off is queued, and this one more waits in the socket.
    publish(&mut publisher).await;

    let conn = connect_lapin(&broker.uri(), "draining consumer")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let queued = lapin_counts(&ch, "flood").await.0;
    assert!((4..=8).contains(&queued), "{queued} queued");
    let mut consumer = within(
        "basic.consume",
        ch.basic_consume(
            "flood".into(),
            "drain".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    // Draining clears the alarm, the publisher is read again, and its last message
    // arrives too.
    for n in 0..9 {
        let delivery = within("a delivery", consumer.next()).await;
        let delivery = delivery.unwrap_or_else(|| panic!("consumer ended after {n}"));
        assert_eq!(delivery.unwrap().data.len(), BODY);
    }
    match publisher.recv_method().await {
        (0, Method::ConnectionUnblocked(_)) => {}
        other => panic!("expected connection.unblocked, got {other:?}"),
    }
    conn.close(200, "bye".into()).await.unwrap();
    publisher.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_little_free_disk_blocks_publishers_but_not_consumers() {
    let mut config = TestBroker::config();
    // More free space than any disk has: the alarm is on from the start.
    config.limits.disk_free_limit = i64::MAX as u64;
    let broker = TestBroker::start_with(config).await;
    let conn = connect_lapin(&broker.uri(), "consumer").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    within(
        "queue.declare",
        ch.queue_declare("disk".into(), Default::default(), FieldTable::default()),
    )
    .await
    .unwrap();

    let mut publisher = RawClient::connect(broker.addr(), "publisher on a full disk").await;
    publisher.open_channel(1).await;
    publisher
        .publish(
            1,
            publish_to("", "disk"),
            BasicProperties::default(),
            b"m",
            0,
        )
        .await;
    match publisher.recv_method().await {
        (0, Method::ConnectionBlocked(blocked)) => {
            assert_eq!(blocked.reason.as_str(), "low on disk")
        }
        other => panic!("expected connection.blocked, got {other:?}"),
    }
    // A connection that does not publish is not held back.
    assert_eq!(lapin_counts(&ch, "disk").await.1, 0);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}
