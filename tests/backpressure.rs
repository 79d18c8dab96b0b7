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
