//! Settling deliveries end to end: ack, nack and reject (single, multiple, with and
//! without requeue), unknown tags, basic.recover, and the requeue of unacked messages
//! when their channel or connection closes. Requeued messages go back to their
//! original place in the queue, marked redelivered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use futures_util::FutureExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRecoverOptions,
};
use warren_client::{ConsumeOptions, QueueDeclareOptions};
use warren_codec::{
    BasicAck, BasicGet, BasicNack, BasicProperties, BasicRecover, BasicReject, Frame, Method,
};

use common::{
    RawClient, TestBroker, connect_client, connect_lapin, counts, lapin_publish, next_client,
    next_lapin, publish_all, publish_to,
};

/// Bodies and redelivered flags of every message left in `queue`, taken with no-ack
/// basic.get.
async fn drain(channel: &warren_client::Channel, queue: &str) -> Vec<(String, bool)> {
    let mut left = Vec::new();
    while let Some(got) = channel.basic_get(queue, true).await.unwrap() {
        left.push((
            String::from_utf8(got.body.to_vec()).unwrap(),
            got.redelivered,
        ));
    }
    left
}

fn owned(expected: &[(&str, bool)]) -> Vec<(String, bool)> {
    expected
        .iter()
        .map(|(b, r)| ((*b).to_owned(), *r))
        .collect()
}

// ---------------------------------------------------------------------------------------
// ack / nack / reject
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_with_multiple_settles_every_delivery_up_to_its_tag() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "ack_with_multiple_settles_every_delivery_up_to_its_tag",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("acked", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "acked", ["1", "2", "3", "4", "5"]).await;
    let getter = conn.open_channel().await.unwrap();
    let mut tags = Vec::new();
    for _ in 0..5 {
        tags.push(
            getter
                .basic_get("acked", false)
                .await
                .unwrap()
                .unwrap()
                .delivery_tag,
        );
    }
    assert_eq!(tags, [1, 2, 3, 4, 5]);
    getter.basic_ack(3, true).await.unwrap();
    // Closing the channel requeues only what is still unacked: 4 and 5.
    getter.close().await.unwrap();
    assert_eq!(
        drain(&channel, "acked").await,
        owned(&[("4", true), ("5", true)])
    );
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_with_multiple_and_tag_zero_settles_everything_outstanding() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "ack_with_multiple_and_tag_zero_settles_everything_outstanding",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("all-acked", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "all-acked", ["1", "2", "3"]).await;
    let getter = conn.open_channel().await.unwrap();
    for _ in 0..3 {
        getter.basic_get("all-acked", false).await.unwrap().unwrap();
    }
    getter.basic_ack(0, true).await.unwrap();
    getter.close().await.unwrap();
    assert_eq!(counts(&channel, "all-acked").await, (0, 0));
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeued_messages_go_back_to_their_original_place_marked_redelivered() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "requeued_messages_go_back_to_their_original_place_marked_redelivered",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("ordered", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "ordered", ["m1", "m2", "m3", "m4", "m5"]).await;
    let getter = conn.open_channel().await.unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(getter.basic_get("ordered", false).await.unwrap().unwrap());
    }
    // Put them back out of order: m2 with reject, then m1 with nack. m3 stays out.
    held[1].reject(true).await.unwrap();
    held[0].nack(true).await.unwrap();
    assert_eq!(counts(&channel, "ordered").await, (4, 0));
    assert_eq!(
        drain(&channel, "ordered").await,
        owned(&[("m1", true), ("m2", true), ("m4", false), ("m5", false)])
    );
    // m3 is still unacked on the getter's channel.
    getter.close().await.unwrap();
    assert_eq!(drain(&channel, "ordered").await, owned(&[("m3", true)]));
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_multiple_with_requeue_redelivers_the_run_in_order_to_the_consumer() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "nack_multiple_with_requeue_redelivers_the_run_in_order_to_the_consumer",
    )
    .await
    .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare("again".into(), Default::default(), Default::default())
        .await
        .unwrap();
    for body in [b"a", b"b", b"c", b"d"] {
        lapin_publish(&channel, "", "again", body).await;
    }
    channel
        .basic_qos(3, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            "again".into(),
            "".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(next_lapin(&mut consumer).await);
    }
    let bodies: Vec<&[u8]> = first.iter().map(|d| &d.data[..]).collect();
    assert_eq!(bodies, [b"a", b"b", b"c"]);
    assert!(first.iter().all(|d| !d.redelivered));
    // Nack b and everything before it: a and b come back ahead of d.
    first[1]
        .acker
        .nack(BasicNackOptions {
            multiple: true,
            requeue: true,
        })
        .await
        .unwrap();
    let mut second = Vec::new();
    for _ in 0..2 {
        second.push(next_lapin(&mut consumer).await);
    }
    let seen: Vec<(&[u8], bool, u64)> = second
        .iter()
        .map(|d| (&d.data[..], d.redelivered, d.delivery_tag))
        .collect();
    assert_eq!(seen, [(&b"a"[..], true, 4), (&b"b"[..], true, 5)]);
    // c is still held; acking everything lets d through.
    second[1]
        .acker
        .ack(BasicAckOptions { multiple: true })
        .await
        .unwrap();
    let last = next_lapin(&mut consumer).await;
    assert_eq!((&last.data[..], last.redelivered), (&b"d"[..], false));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_and_nack_without_requeue_discard_the_message() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "reject_and_nack_without_requeue_discard_the_message",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("discarded", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "discarded", ["1", "2", "3", "4"]).await;
    let getter = conn.open_channel().await.unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(getter.basic_get("discarded", false).await.unwrap().unwrap());
    }
    held[0].reject(false).await.unwrap();
    held[1].nack(false).await.unwrap();
    // nack multiple without requeue drops 3 and 4 together.
    getter.basic_nack(4, true, false).await.unwrap();
    getter.close().await.unwrap();
    assert_eq!(counts(&channel, "discarded").await, (0, 0));
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_already_settled_delivery_tag_closes_the_channel_with_406() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "unknown_or_already_settled_delivery_tag_closes_the_channel_with_406",
    )
    .await;
    client.open_channel(1).await;
    client.declare_queue(1, "tags").await;
    // (method, its method id): each on a fresh channel, as each closes its channel.
    let unknown: [(Method, u16); 4] = [
        (
            BasicAck {
                delivery_tag: 99,
                multiple: false,
            }
            .into(),
            80,
        ),
        (
            BasicAck {
                delivery_tag: 99,
                multiple: true,
            }
            .into(),
            80,
        ),
        (
            BasicReject {
                delivery_tag: 99,
                requeue: true,
            }
            .into(),
            90,
        ),
        (
            BasicNack {
                delivery_tag: 99,
                multiple: false,
                requeue: true,
            }
            .into(),
            120,
        ),
    ];
    for (ch, (settle, method_id)) in (2..).zip(unknown) {
        client.open_channel(ch).await;
        client.send(Frame::method(ch, settle)).await;
        let (code, text, class_id, mid) = client.expect_channel_close(ch).await;
        assert_eq!(code, 406, "{text}");
        assert_eq!(text, "PRECONDITION_FAILED - unknown delivery tag 99");
        assert_eq!((class_id, mid), (60, method_id));
    }

    // A tag settled once is unknown the second time.
    client.open_channel(10).await;
    client
        .publish(
            10,
            publish_to("", "tags"),
            BasicProperties::default(),
            b"x",
            0,
        )
        .await;
    client
        .send(Frame::method(
            10,
            BasicGet {
                queue: "tags".into(),
                ..Default::default()
            },
        ))
        .await;
    let got = client.recv_content().await;
    assert!(
        matches!(got.method, Method::BasicGetOk(_)),
        "{:?}",
        got.method
    );
    let ack = BasicAck {
        delivery_tag: 1,
        multiple: false,
    };
    client.send(Frame::method(10, ack.clone())).await;
    client.send(Frame::method(10, ack)).await;
    let (code, text, class_id, method_id) = client.expect_channel_close(10).await;
    assert_eq!(code, 406, "{text}");
    assert_eq!(text, "PRECONDITION_FAILED - unknown delivery tag 1");
    assert_eq!((class_id, method_id), (60, 80));
    client.close().await;
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// basic.recover
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_with_requeue_redelivers_every_unacked_message() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "recover_with_requeue_redelivers_every_unacked_message",
    )
    .await
    .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare("recovered".into(), Default::default(), Default::default())
        .await
        .unwrap();
    for body in [b"x", b"y", b"z"] {
        lapin_publish(&channel, "", "recovered", body).await;
    }
    let mut consumer = channel
        .basic_consume(
            "recovered".into(),
            "".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(next_lapin(&mut consumer).await);
    }
    // x is acked; y and z come back.
    first[0]
        .acker
        .ack(BasicAckOptions::default())
        .await
        .unwrap();
    channel
        .basic_recover(BasicRecoverOptions { requeue: true })
        .await
        .unwrap();
    let mut again = Vec::new();
    for _ in 0..2 {
        again.push(next_lapin(&mut consumer).await);
    }
    let seen: Vec<(&[u8], bool, u64)> = again
        .iter()
        .map(|d| (&d.data[..], d.redelivered, d.delivery_tag))
        .collect();
    assert_eq!(seen, [(&b"y"[..], true, 4), (&b"z"[..], true, 5)]);
    for delivery in &again {
        delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .unwrap();
    }
    assert_eq!(common::lapin_counts(&channel, "recovered").await, (0, 1));
    assert!(
        futures_util::StreamExt::next(&mut consumer)
            .now_or_never()
            .is_none(),
        "nothing else comes back"
    );
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_without_requeue_closes_the_connection_with_540() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "recover_without_requeue_closes_the_connection_with_540",
    )
    .await;
    client.open_channel(1).await;
    client
        .send(Frame::method(1, BasicRecover { requeue: false }))
        .await;
    let (code, text, class_id, method_id) = client.expect_close().await;
    assert_eq!(code, 540, "{text}");
    assert_eq!((class_id, method_id), (60, 110));
    client.close_ok().await;
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Requeue when a channel or connection goes
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_channel_requeues_its_unacked_messages_for_the_next_consumer() {
    let broker = TestBroker::start().await;
    let first = connect_lapin(
        &broker.uri(),
        "closing_a_channel_requeues_its_unacked_messages_for_the_next_consumer/first",
    )
    .await
    .unwrap();
    let second = connect_client(
        &broker.uri(),
        "closing_a_channel_requeues_its_unacked_messages_for_the_next_consumer/second",
    )
    .await;
    let channel = first.create_channel().await.unwrap();
    channel
        .queue_declare("handover".into(), Default::default(), Default::default())
        .await
        .unwrap();
    for body in [b"0", b"1", b"2"] {
        lapin_publish(&channel, "", "handover", body).await;
    }
    let mut greedy = channel
        .basic_consume(
            "handover".into(),
            "".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let mut taken = Vec::new();
    for _ in 0..3 {
        taken.push(next_lapin(&mut greedy).await);
    }
    // The second consumer arrives with everything already out.
    let patient_channel = second.open_channel().await.unwrap();
    let mut patient = patient_channel
        .basic_consume("handover", ConsumeOptions::default())
        .await
        .unwrap();
    assert_eq!(counts(&patient_channel, "handover").await, (0, 2));
    channel.close(200, "bye".into()).await.unwrap();
    for expected in ["0", "1", "2"] {
        let delivery = next_client(&mut patient).await;
        assert_eq!(&delivery.body[..], expected.as_bytes());
        assert!(
            delivery.redelivered,
            "{expected} must be marked redelivered"
        );
        delivery.ack().await.unwrap();
    }
    first.close(200, "bye".into()).await.unwrap();
    second.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_connection_requeues_its_unacked_messages_for_the_next_consumer() {
    let broker = TestBroker::start().await;
    let first = connect_client(
        &broker.uri(),
        "closing_a_connection_requeues_its_unacked_messages_for_the_next_consumer/first",
    )
    .await;
    let second = connect_client(
        &broker.uri(),
        "closing_a_connection_requeues_its_unacked_messages_for_the_next_consumer/second",
    )
    .await;
    let channel = first.open_channel().await.unwrap();
    channel
        .queue_declare("inheritance", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "inheritance", ["a", "b"]).await;
    let mut greedy = channel
        .basic_consume("inheritance", ConsumeOptions::default())
        .await
        .unwrap();
    let _held = [
        next_client(&mut greedy).await,
        next_client(&mut greedy).await,
    ];
    let heir_channel = second.open_channel().await.unwrap();
    let mut heir = heir_channel
        .basic_consume("inheritance", ConsumeOptions::default())
        .await
        .unwrap();
    first.close().await.unwrap();
    for expected in ["a", "b"] {
        let delivery = next_client(&mut heir).await;
        assert_eq!(&delivery.body[..], expected.as_bytes());
        assert!(delivery.redelivered);
    }
    second.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_get_is_back_in_the_queue_once_channel_close_ok_arrives() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "unacked_get_is_back_in_the_queue_once_channel_close_ok_arrives",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("returned", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "returned", ["only"]).await;
    let getter = conn.open_channel().await.unwrap();
    let got = getter.basic_get("returned", false).await.unwrap().unwrap();
    assert!(!got.redelivered);
    assert_eq!(counts(&channel, "returned").await, (0, 0));
    getter.close().await.unwrap();
    assert_eq!(drain(&channel, "returned").await, owned(&[("only", true)]));
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_can_still_be_acked_after_their_consumer_is_cancelled() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "deliveries_can_still_be_acked_after_their_consumer_is_cancelled",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("late-acks", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "late-acks", ["1", "2"]).await;
    let mut consumer = channel
        .basic_consume("late-acks", ConsumeOptions::default())
        .await
        .unwrap();
    let held = [
        next_client(&mut consumer).await,
        next_client(&mut consumer).await,
    ];
    consumer.cancel().await.unwrap();
    for delivery in &held {
        delivery.ack().await.unwrap();
    }
    channel.close().await.unwrap();
    let channel = conn.open_channel().await.unwrap();
    assert_eq!(counts(&channel, "late-acks").await, (0, 0));
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_channel_puts_its_unacked_messages_back_ahead_of_later_ones() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "closing_a_channel_puts_its_unacked_messages_back_ahead_of_later_ones",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("front", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "front", ["m1", "m2", "m3"]).await;
    let consuming = conn.open_channel().await.unwrap();
    consuming.basic_qos(2, false).await.unwrap();
    let mut consumer = consuming
        .basic_consume("front", ConsumeOptions::default())
        .await
        .unwrap();
    let _held = [
        next_client(&mut consumer).await,
        next_client(&mut consumer).await,
    ];
    assert_eq!(counts(&channel, "front").await, (1, 1));
    consuming.close().await.unwrap();
    assert_eq!(
        drain(&channel, "front").await,
        owned(&[("m1", true), ("m2", true), ("m3", false)])
    );
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_of_a_deleted_queue_can_still_be_settled() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "deliveries_of_a_deleted_queue_can_still_be_settled",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("gone-before-ack", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "gone-before-ack", ["1", "2"]).await;
    let first = channel
        .basic_get("gone-before-ack", false)
        .await
        .unwrap()
        .unwrap();
    let second = channel
        .basic_get("gone-before-ack", false)
        .await
        .unwrap()
        .unwrap();
    let deleter = conn.open_channel().await.unwrap();
    deleter
        .queue_delete("gone-before-ack", Default::default())
        .await
        .unwrap();
    // The tags are still the channel's: settling them is no error.
    first.ack().await.unwrap();
    second.reject(true).await.unwrap();
    channel
        .queue_declare("still-open", QueueDeclareOptions::default())
        .await
        .unwrap();
    assert!(channel.is_open());
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_requeues_its_unacked_messages() {
    let broker = TestBroker::start().await;
    let mut raw = RawClient::connect(
        broker.addr(),
        "a_dropped_socket_requeues_its_unacked_messages/raw",
    )
    .await;
    let conn = connect_client(
        &broker.uri(),
        "a_dropped_socket_requeues_its_unacked_messages/client",
    )
    .await;
    raw.open_channel(1).await;
    raw.declare_queue(1, "orphaned").await;
    for body in [&b"p"[..], b"q"] {
        raw.publish(
            1,
            publish_to("", "orphaned"),
            BasicProperties::default(),
            body,
            0,
        )
        .await;
    }
    let reply = raw
        .call(
            1,
            warren_codec::BasicConsume {
                queue: "orphaned".into(),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(reply, Method::BasicConsumeOk(_)), "{reply:?}");
    for expected in [&b"p"[..], b"q"] {
        let delivery = raw.recv_content().await;
        assert!(matches!(delivery.method, Method::BasicDeliver(_)));
        assert_eq!(&delivery.body[..], expected);
    }
    let channel = conn.open_channel().await.unwrap();
    let mut heir = channel
        .basic_consume("orphaned", ConsumeOptions::default())
        .await
        .unwrap();
    // No connection.close: the socket just goes.
    drop(raw);
    for expected in ["p", "q"] {
        let delivery = next_client(&mut heir).await;
        assert_eq!(&delivery.body[..], expected.as_bytes());
        assert!(delivery.redelivered);
    }
    conn.close().await.unwrap();
    broker.stop().await;
}
