//! Consumers and basic.get end to end: consumer tags, exclusive consumers, cancel (by
//! the client and by the broker when the queue goes), get-ok / get-empty, and
//! round-robin between consumers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, QueueDeleteOptions,
};
use warren_client::{self as wc, ConsumeOptions, QueueDeclareOptions};
use warren_codec::{
    BasicCancel, BasicCancelOk, BasicConsume, BasicGet, BasicGetEmpty, BasicProperties, Frame,
    Method,
};

use common::{
    RawClient, TestBroker, connect_client, connect_lapin, counts, encode_publish, lapin_counts,
    lapin_publish, lapin_reply_code, next_client, next_lapin, publish_all, publish_to, within,
};

fn consume(queue: &str, consumer_tag: &str, exclusive: bool) -> BasicConsume {
    BasicConsume {
        queue: queue.into(),
        consumer_tag: consumer_tag.into(),
        exclusive,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------
// basic.consume
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_chosen_consumer_tags_are_unique_and_start_with_amq_ctag() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "server_chosen_consumer_tags_are_unique_and_start_with_amq_ctag",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("tagged", QueueDeclareOptions::default())
        .await
        .unwrap();
    let first = channel
        .basic_consume("tagged", ConsumeOptions::default())
        .await
        .unwrap();
    let second = channel
        .basic_consume("tagged", ConsumeOptions::default())
        .await
        .unwrap();
    for tag in [first.tag(), second.tag()] {
        assert!(tag.starts_with("amq.ctag-"), "{tag}");
        assert!(tag.len() > "amq.ctag-".len(), "{tag}");
    }
    assert_ne!(first.tag(), second.tag());
    // A tag the client chose is kept as given.
    let named = channel
        .basic_consume(
            "tagged",
            ConsumeOptions {
                consumer_tag: "my-tag".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(named.tag(), "my-tag");
    assert_eq!(counts(&channel, "tagged").await, (0, 3));
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_consumer_keeps_every_other_consumer_out_with_403() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "exclusive_consumer_keeps_every_other_consumer_out_with_403",
    )
    .await;
    client.open_channel(1).await;
    client.declare_queue(1, "solo").await;
    client.declare_queue(1, "crowd").await;
    let reply = client.call(1, consume("solo", "owner", true)).await;
    assert!(matches!(reply, Method::BasicConsumeOk(_)), "{reply:?}");

    // A second consumer, exclusive or not, is refused while the exclusive one exists.
    for (ch, exclusive) in [(2, false), (3, true)] {
        client.open_channel(ch).await;
        client
            .send(Frame::method(ch, consume("solo", "intruder", exclusive)))
            .await;
        let (code, text, class_id, method_id) = client.expect_channel_close(ch).await;
        assert_eq!(code, 403);
        assert_eq!(
            text,
            "ACCESS_REFUSED - queue 'solo' in vhost '/' in exclusive use"
        );
        assert_eq!((class_id, method_id), (60, 20));
    }

    // And an exclusive consumer is refused where others already consume.
    let reply = client.call(1, consume("crowd", "member", false)).await;
    assert!(matches!(reply, Method::BasicConsumeOk(_)), "{reply:?}");
    client.open_channel(4).await;
    client
        .send(Frame::method(4, consume("crowd", "loner", true)))
        .await;
    let (code, ..) = client.expect_channel_close(4).await;
    assert_eq!(code, 403);

    // Once the exclusive consumer is cancelled, others may consume.
    let reply = client
        .call(
            1,
            BasicCancel {
                consumer_tag: "owner".into(),
                no_wait: false,
            },
        )
        .await;
    assert!(matches!(reply, Method::BasicCancelOk(_)), "{reply:?}");
    client.open_channel(5).await;
    let reply = client.call(5, consume("solo", "next", false)).await;
    assert!(matches!(reply, Method::BasicConsumeOk(_)), "{reply:?}");
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_a_consumer_tag_on_a_channel_closes_the_connection_with_530() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "reusing_a_consumer_tag_on_a_channel_closes_the_connection_with_530",
    )
    .await;
    client.open_channel(1).await;
    client.open_channel(2).await;
    client.declare_queue(1, "twice").await;
    let reply = client.call(1, consume("twice", "dup", false)).await;
    assert!(matches!(reply, Method::BasicConsumeOk(_)), "{reply:?}");
    // Tags are per channel: the same tag on another channel is fine.
    let reply = client.call(2, consume("twice", "dup", false)).await;
    assert!(matches!(reply, Method::BasicConsumeOk(_)), "{reply:?}");
    client
        .send(Frame::method(1, consume("twice", "dup", false)))
        .await;
    let (code, text, class_id, method_id) = client.expect_close().await;
    assert_eq!(code, 530);
    assert_eq!(text, "NOT_ALLOWED - attempt to reuse consumer tag 'dup'");
    assert_eq!((class_id, method_id), (60, 20));
    client.close_ok().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_or_get_on_a_missing_queue_closes_the_channel_with_404() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "consume_or_get_on_a_missing_queue_closes_the_channel_with_404",
    )
    .await
    .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let error = channel
        .basic_consume(
            "absent".into(),
            "".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .expect_err("no queue to consume from");
    assert_eq!(lapin_reply_code(&error), Some(404), "{error:?}");
    let channel = conn.create_channel().await.unwrap();
    let error = channel
        .basic_get("absent".into(), BasicGetOptions::default())
        .await
        .expect_err("no queue to get from");
    assert_eq!(lapin_reply_code(&error), Some(404), "{error:?}");
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// basic.cancel
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_consumer_gets_nothing_more() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(&broker.uri(), "cancelled_consumer_gets_nothing_more")
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare("quitting".into(), Default::default(), Default::default())
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            "quitting".into(),
            "leaver".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    lapin_publish(&channel, "", "quitting", b"before").await;
    let delivery = next_lapin(&mut consumer).await;
    assert_eq!(delivery.data, b"before");
    delivery.acker.ack(Default::default()).await.unwrap();
    channel
        .basic_cancel("leaver".into(), BasicCancelOptions::default())
        .await
        .unwrap();
    assert!(
        within("the consumer's end", consumer.next())
            .await
            .is_none()
    );
    lapin_publish(&channel, "", "quitting", b"after").await;
    assert_eq!(lapin_counts(&channel, "quitting").await, (1, 0));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

/// A consumer cancelled with deliveries in flight: what reached the client before
/// cancel-ok stays unacked on the channel, the rest goes back to the queue, and a new
/// consumer reusing the tag at once gets each of those, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_reused_right_after_cancel_gets_each_undelivered_message_once() {
    const MESSAGES: usize = 2000;
    let broker = TestBroker::start().await;
    let mut raw = RawClient::connect(broker.addr(), "reused-tag").await;
    raw.open_channel(1).await;
    raw.declare_queue(1, "reused").await;
    let mut publishes = BytesMut::new();
    for i in 0..MESSAGES {
        let props = BasicProperties::default();
        encode_publish(
            &mut publishes,
            1,
            publish_to("", "reused"),
            props,
            i.to_string().as_bytes(),
            0,
        );
    }
    raw.send_bytes(&publishes).await;
    raw.send(Frame::method(1, consume("reused", "t", false)))
        .await;
    assert!(matches!(
        raw.recv_method().await,
        (1, Method::BasicConsumeOk(_))
    ));
    let mut before = vec![raw.recv_content().await.body];
    let mut again = BytesMut::new();
    let cancel = BasicCancel {
        consumer_tag: "t".into(),
        no_wait: false,
    };
    Frame::method(1, cancel).encode(&mut again);
    Frame::method(1, consume("reused", "t", false)).encode(&mut again);
    raw.send_bytes(&again).await;
    // Deliveries until cancel-ok are the old consumer's; nothing comes between
    // cancel-ok and consume-ok; after it, the new consumer's.
    loop {
        match raw.recv().await {
            Some(Frame::Method {
                method: Method::BasicCancelOk(_),
                ..
            }) => break,
            Some(Frame::Method {
                method: Method::BasicDeliver(_),
                ..
            }) => {
                before.push(content_after_deliver(&mut raw).await);
            }
            other => panic!("expected a delivery or cancel-ok, got {other:?}"),
        }
    }
    assert!(matches!(
        raw.recv_method().await,
        (1, Method::BasicConsumeOk(_))
    ));
    let mut after = Vec::new();
    while before.len() + after.len() < MESSAGES {
        let content = raw.recv_content().await;
        assert!(matches!(content.method, Method::BasicDeliver(ref d) if d.consumer_tag == "t"));
        after.push(content.body);
    }
    let mut all: Vec<usize> = before
        .iter()
        .chain(&after)
        .map(|b| String::from_utf8_lossy(b).parse().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..MESSAGES).collect::<Vec<_>>(),
        "each message exactly once"
    );
    raw.close().await;
    broker.stop().await;
}

/// The header and body frames after a basic.deliver already read: the body.
async fn content_after_deliver(raw: &mut RawClient) -> Bytes {
    let Some(Frame::Header { header, .. }) = raw.recv().await else {
        panic!("expected a content header");
    };
    let mut body = BytesMut::new();
    while (body.len() as u64) < header.body_size {
        match raw.recv().await {
            Some(Frame::Body { body: part, .. }) => body.extend_from_slice(&part),
            other => panic!("expected a body frame, got {other:?}"),
        }
    }
    body.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_unknown_consumer_tag_is_answered_with_cancel_ok() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "cancelling_an_unknown_consumer_tag_is_answered_with_cancel_ok",
    )
    .await;
    client.open_channel(1).await;
    let reply = client
        .call(
            1,
            BasicCancel {
                consumer_tag: "never-was".into(),
                no_wait: false,
            },
        )
        .await;
    assert_eq!(
        reply,
        Method::BasicCancelOk(BasicCancelOk {
            consumer_tag: "never-was".into()
        })
    );
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_queue_cancels_its_consumers_with_a_server_basic_cancel() {
    let broker = TestBroker::start().await;
    let lapin_conn = connect_lapin(
        &broker.uri(),
        "deleting_a_queue_cancels_its_consumers_with_a_server_basic_cancel/lapin",
    )
    .await
    .unwrap();
    let client_conn = connect_client(
        &broker.uri(),
        "deleting_a_queue_cancels_its_consumers_with_a_server_basic_cancel/client",
    )
    .await;
    let lapin_channel = lapin_conn.create_channel().await.unwrap();
    lapin_channel
        .queue_declare("vanishing".into(), Default::default(), Default::default())
        .await
        .unwrap();
    let mut lapin_consumer = lapin_channel
        .basic_consume(
            "vanishing".into(),
            "".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let client_channel = client_conn.open_channel().await.unwrap();
    let mut client_consumer = client_channel
        .basic_consume("vanishing", ConsumeOptions::default())
        .await
        .unwrap();
    let deleter = lapin_conn.create_channel().await.unwrap();
    let deleted = deleter
        .queue_delete("vanishing".into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(deleted, 0);

    // lapin ends the stream on the broker's basic.cancel.
    assert!(
        within("lapin's consumer end", lapin_consumer.next())
            .await
            .is_none()
    );
    // The bundled client says why.
    match within("warren-client's consumer end", client_consumer.next()).await {
        Some(Err(wc::Error::ConsumerCancelled { consumer_tag })) => {
            assert_eq!(consumer_tag, client_consumer.tag());
        }
        other => panic!("expected ConsumerCancelled, got {other:?}"),
    }
    // Only the consumers went: both channels are still usable.
    assert!(client_channel.is_open());
    client_channel
        .queue_declare("after", QueueDeclareOptions::default())
        .await
        .unwrap();
    assert!(lapin_channel.status().connected());
    lapin_channel
        .queue_declare("after".into(), Default::default(), Default::default())
        .await
        .unwrap();
    lapin_conn.close(200, "bye".into()).await.unwrap();
    client_conn.close().await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// basic.get
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_get_answers_get_ok_with_the_remaining_count_then_get_empty() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "basic_get_answers_get_ok_with_the_remaining_count_then_get_empty",
    )
    .await;
    client.open_channel(1).await;
    client.declare_queue(1, "pull").await;
    for body in [&b"one"[..], b"two"] {
        client
            .publish(
                1,
                publish_to("", "pull"),
                BasicProperties::default(),
                body,
                0,
            )
            .await;
    }
    let get = || {
        Frame::method(
            1,
            BasicGet {
                queue: "pull".into(),
                ..Default::default()
            },
        )
    };
    for (tag, body, remaining) in [(1, &b"one"[..], 1), (2, b"two", 0)] {
        client.send(get()).await;
        let got = client.recv_content().await;
        match got.method {
            Method::BasicGetOk(ok) => {
                assert_eq!(ok.delivery_tag, tag);
                assert!(!ok.redelivered);
                assert_eq!(ok.exchange.as_str(), "");
                assert_eq!(ok.routing_key.as_str(), "pull");
                assert_eq!(ok.message_count, remaining);
            }
            other => panic!("expected get-ok, got {other:?}"),
        }
        assert_eq!(&got.body[..], body);
    }
    let reply = client
        .call(
            1,
            BasicGet {
                queue: "pull".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(reply, Method::BasicGetEmpty(BasicGetEmpty::default()));
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_get_with_lapin_reports_the_message_count_and_none_when_empty() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "basic_get_with_lapin_reports_the_message_count_and_none_when_empty",
    )
    .await
    .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare("lapin-pull".into(), Default::default(), Default::default())
        .await
        .unwrap();
    for body in [b"a", b"b", b"c"] {
        lapin_publish(&channel, "", "lapin-pull", body).await;
    }
    for (body, remaining) in [(b"a", 2), (b"b", 1), (b"c", 0)] {
        let got = channel
            .basic_get("lapin-pull".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .expect("a message");
        assert_eq!(got.delivery.data, body);
        assert_eq!(got.message_count, remaining);
    }
    let empty = channel
        .basic_get("lapin-pull".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap();
    assert!(empty.is_none());
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Several consumers
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_share_a_queue_round_robin_five_each_alternating() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "two_consumers_share_a_queue_round_robin_five_each_alternating",
    )
    .await
    .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare("shared-work".into(), Default::default(), Default::default())
        .await
        .unwrap();
    let consume_on_own_channel = |tag: &'static str| {
        let conn = &conn;
        async move {
            let ch = conn.create_channel().await.unwrap();
            let consumer = ch
                .basic_consume(
                    "shared-work".into(),
                    tag.into(),
                    BasicConsumeOptions::default(),
                    Default::default(),
                )
                .await
                .unwrap();
            (ch, consumer.map(move |d| (tag, d)))
        }
    };
    let (_left_channel, left) = consume_on_own_channel("left").await;
    let (_right_channel, right) = consume_on_own_channel("right").await;
    for i in 0..10 {
        lapin_publish(&channel, "", "shared-work", i.to_string().as_bytes()).await;
    }
    // Message number → the consumer that got it.
    let mut owner = [""; 10];
    let mut merged = futures_util::stream::select(left, right);
    for _ in 0..10 {
        let (tag, delivery) = within("a delivery", merged.next()).await.unwrap();
        let delivery = delivery.unwrap();
        let n: usize = std::str::from_utf8(&delivery.data)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(owner[n], "", "message {n} delivered twice");
        owner[n] = tag;
        delivery.acker.ack(Default::default()).await.unwrap();
    }
    for pair in owner.windows(2) {
        assert_ne!(pair[0], pair[1], "not alternating: {owner:?}");
    }
    assert_eq!(
        owner.iter().filter(|t| **t == "left").count(),
        5,
        "{owner:?}"
    );
    assert_eq!(
        owner.iter().filter(|t| **t == "right").count(),
        5,
        "{owner:?}"
    );
    assert_eq!(lapin_counts(&channel, "shared-work").await, (0, 2));
    assert!(
        merged.next().now_or_never().is_none(),
        "an eleventh delivery"
    );
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ack_consumer_takes_messages_for_good() {
    let broker = TestBroker::start().await;
    let conn = connect_client(&broker.uri(), "no_ack_consumer_takes_messages_for_good").await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("fire-and-forget", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "fire-and-forget", ["x", "y"]).await;
    let consuming = conn.open_channel().await.unwrap();
    let mut consumer = consuming
        .basic_consume(
            "fire-and-forget",
            ConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for expected in ["x", "y"] {
        let delivery = next_client(&mut consumer).await;
        assert_eq!(&delivery.body[..], expected.as_bytes());
    }
    // Nothing was outstanding, so closing the channel brings nothing back.
    consuming.close().await.unwrap();
    assert_eq!(counts(&channel, "fire-and-forget").await, (0, 0));
    conn.close().await.unwrap();
    broker.stop().await;
}
