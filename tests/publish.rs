//! basic.publish end to end: content split over frames, the size limit, mandatory
//! returns, the refusals (immediate, user-id, missing exchange), properties, and volume:
//! a 16 MiB message and 10,000 messages through one queue in order; and that methods
//! after a batch of publishes see them queued.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use warren_client::{
    self as wc, Confirmation, ConsumeOptions, PublishOptions, QueueDeclareOptions,
};
use warren_codec::{
    BasicGet, BasicProperties, BasicPublish, FieldTable, FieldValue, Frame, Method, QueueDeclare,
    QueuePurge,
};

use common::{
    Login, RawClient, TestBroker, connect_client, connect_lapin, counts, encode_publish,
    next_client, publish_all, publish_to, within,
};

/// A body whose every byte depends on its position, so a reordered or dropped frame
/// shows.
fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

// ---------------------------------------------------------------------------------------
// Content framing and size
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_split_over_many_body_frames_is_reassembled_and_resplit() {
    let broker = TestBroker::start().await;
    let login = Login {
        frame_max: Some(4096),
        ..Login::guest("content_split_over_many_body_frames_is_reassembled_and_resplit")
    };
    let (mut client, _) = RawClient::connect_with(broker.addr(), &login)
        .await
        .unwrap();
    client.open_channel(1).await;
    client.declare_queue(1, "framed").await;
    let body = patterned(20_000);
    // 4088 bytes of body per frame: five body frames.
    client
        .publish(
            1,
            publish_to("", "framed"),
            BasicProperties::default(),
            &body,
            4096,
        )
        .await;
    client
        .send(Frame::method(
            1,
            BasicGet {
                queue: "framed".into(),
                no_ack: true,
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
    assert_eq!(got.body.len(), body.len());
    assert_eq!(&got.body[..], &body[..]);
    // The broker splits what it sends at the negotiated frame_max too.
    assert_eq!(got.body_frames, 5);
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_frames_of_two_channels_may_interleave() {
    let broker = TestBroker::start().await;
    let login = Login {
        frame_max: Some(4096),
        ..Login::guest("content_frames_of_two_channels_may_interleave")
    };
    let (mut client, _) = RawClient::connect_with(broker.addr(), &login)
        .await
        .unwrap();
    client.open_channel(1).await;
    client.open_channel(2).await;
    client.declare_queue(1, "woven").await;
    let (one, two) = (vec![1u8; 10_000], vec![2u8; 10_000]);
    let mut first = BytesMut::new();
    encode_publish(
        &mut first,
        1,
        publish_to("", "woven"),
        BasicProperties::default(),
        &one,
        4096,
    );
    let mut second = BytesMut::new();
    encode_publish(
        &mut second,
        2,
        publish_to("", "woven"),
        BasicProperties::default(),
        &two,
        4096,
    );
    // Split both into frames and alternate them on the wire.
    let split = |mut buf: BytesMut| {
        let mut frames = Vec::new();
        while !buf.is_empty() {
            let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
            frames.push(buf.split_to(size + 8));
        }
        frames
    };
    let (a, b) = (split(first), split(second));
    assert_eq!(a.len(), b.len());
    let mut woven = BytesMut::new();
    for (x, y) in a.iter().zip(&b) {
        woven.extend_from_slice(x);
        woven.extend_from_slice(y);
    }
    client.send_bytes(&woven).await;
    for expected in [&one, &two] {
        client
            .send(Frame::method(
                1,
                BasicGet {
                    queue: "woven".into(),
                    no_ack: true,
                    ..Default::default()
                },
            ))
            .await;
        let got = client.recv_content().await;
        assert_eq!(&got.body[..], &expected[..]);
    }
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_over_max_message_size_closes_the_channel_with_406() {
    let mut config = TestBroker::config();
    config.limits.max_message_size = 1000;
    let broker = TestBroker::start_with(config).await;
    let mut client = RawClient::connect(
        broker.addr(),
        "message_over_max_message_size_closes_the_channel_with_406",
    )
    .await;
    client.open_channel(1).await;
    client.declare_queue(1, "small").await;
    // Exactly at the limit is fine.
    client
        .publish(
            1,
            publish_to("", "small"),
            BasicProperties::default(),
            &[7; 1000],
            0,
        )
        .await;
    client
        .publish(
            1,
            publish_to("", "small"),
            BasicProperties::default(),
            &[8; 1001],
            0,
        )
        .await;
    let (code, text, class_id, method_id) = client.expect_channel_close(1).await;
    assert_eq!(code, 406);
    assert_eq!(
        text,
        "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000"
    );
    assert_eq!((class_id, method_id), (60, 40));
    client.open_channel(2).await;
    let reply = client
        .call(
            2,
            QueueDeclare {
                queue: "small".into(),
                passive: true,
                ..Default::default()
            },
        )
        .await;
    match reply {
        Method::QueueDeclareOk(ok) => assert_eq!(ok.message_count, 1, "only the first one"),
        other => panic!("{other:?}"),
    }
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_mib_message_round_trips_intact() {
    let broker = TestBroker::start().await;
    let publisher = connect_lapin(
        &broker.uri(),
        "a_16_mib_message_round_trips_intact/publisher",
    )
    .await
    .unwrap();
    let consumer_conn = connect_client(
        &broker.uri(),
        "a_16_mib_message_round_trips_intact/consumer",
    )
    .await;
    let consuming = consumer_conn.open_channel().await.unwrap();
    consuming
        .queue_declare("big", QueueDeclareOptions::default())
        .await
        .unwrap();
    let mut consumer = consuming
        .basic_consume("big", ConsumeOptions::default())
        .await
        .unwrap();
    let body = patterned(16 * 1024 * 1024);
    let channel = publisher.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = channel
        .basic_publish(
            "".into(),
            "big".into(),
            BasicPublishOptions::default(),
            &body,
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap();
    assert!(
        within("the 16 MiB confirm", confirm)
            .await
            .unwrap()
            .is_ack()
    );
    let delivery = next_client(&mut consumer).await;
    assert_eq!(delivery.body.len(), body.len());
    assert!(delivery.body[..] == body[..], "the body changed on the way");
    delivery.ack().await.unwrap();
    publisher.close(200, "bye".into()).await.unwrap();
    consumer_conn.close().await.unwrap();
    broker.stop().await;
}

/// The broker hands a read's publishes to their queues in one batch; whatever method
/// follows them on the connection must still find them there. Publishes, a get, a
/// passive declare and a purge go in one write, so they arrive in one read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_after_publishes_in_the_same_read_see_them_queued() {
    const COUNT: u32 = 50;
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "methods_after_publishes_in_the_same_read_see_them_queued",
    )
    .await;
    client.open_channel(1).await;
    client.declare_queue(1, "batched").await;
    let mut burst = BytesMut::new();
    for i in 0..COUNT {
        encode_publish(
            &mut burst,
            1,
            publish_to("", "batched"),
            BasicProperties::default(),
            i.to_string().as_bytes(),
            0,
        );
    }
    Frame::method(
        1,
        BasicGet {
            queue: "batched".into(),
            no_ack: true,
            ..Default::default()
        },
    )
    .encode(&mut burst);
    Frame::method(
        1,
        QueueDeclare {
            queue: "batched".into(),
            passive: true,
            ..Default::default()
        },
    )
    .encode(&mut burst);
    Frame::method(
        1,
        QueuePurge {
            queue: "batched".into(),
            ..Default::default()
        },
    )
    .encode(&mut burst);
    client.send_bytes(&burst).await;
    let got = client.recv_content().await;
    match &got.method {
        Method::BasicGetOk(ok) => assert_eq!(ok.message_count, COUNT - 1),
        other => panic!("expected get-ok, got {other:?}"),
    }
    assert_eq!(&got.body[..], b"0", "the first publish comes first");
    match client.recv_method().await {
        (1, Method::QueueDeclareOk(ok)) => assert_eq!(ok.message_count, COUNT - 1),
        other => panic!("expected declare-ok, got {other:?}"),
    }
    match client.recv_method().await {
        (1, Method::QueuePurgeOk(ok)) => assert_eq!(ok.message_count, COUNT - 1),
        other => panic!("expected purge-ok, got {other:?}"),
    }
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_pass_through_one_queue_in_order_with_none_lost() {
    const COUNT: usize = 10_000;
    let broker = TestBroker::start().await;
    let publisher = connect_client(
        &broker.uri(),
        "ten_thousand_messages_pass_through_one_queue_in_order_with_none_lost/publisher",
    )
    .await;
    let consumer_conn = connect_client(
        &broker.uri(),
        "ten_thousand_messages_pass_through_one_queue_in_order_with_none_lost/consumer",
    )
    .await;
    let consuming = consumer_conn.open_channel().await.unwrap();
    consuming
        .queue_declare("stream", QueueDeclareOptions::default())
        .await
        .unwrap();
    consuming.basic_qos(100, false).await.unwrap();
    let mut consumer = consuming
        .basic_consume("stream", ConsumeOptions::default())
        .await
        .unwrap();
    let received = tokio::spawn(async move {
        let mut bodies = Vec::with_capacity(COUNT);
        while bodies.len() < COUNT {
            let delivery = next_client(&mut consumer).await;
            assert!(!delivery.redelivered);
            delivery.ack().await.unwrap();
            bodies.push(delivery.body);
        }
        (consumer, bodies)
    });
    let channel = publisher.open_channel().await.unwrap();
    channel.confirm_select().await.unwrap();
    publish_all(&channel, "", "stream", (0..COUNT).map(|i| i.to_string())).await;
    let (consumer, bodies) = within("10,000 deliveries", received).await.unwrap();
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(
            body,
            &Bytes::from(i.to_string()),
            "message {i} out of order"
        );
    }
    // Every ack landed: closing the consumer's channel requeues nothing.
    drop(consumer);
    consuming.close().await.unwrap();
    assert_eq!(counts(&channel, "stream").await, (0, 0));
    publisher.close().await.unwrap();
    consumer_conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_and_headers_reach_the_consumer_unchanged() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "properties_and_headers_reach_the_consumer_unchanged",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("props", QueueDeclareOptions::default())
        .await
        .unwrap();
    let mut headers = FieldTable::new();
    headers.insert("zeta", "last-but-sent-first");
    headers.insert("alpha", 42);
    headers.insert("nested", FieldValue::Bool(true));
    let properties = BasicProperties {
        content_type: Some("application/json".into()),
        headers: Some(headers),
        delivery_mode: Some(2),
        priority: Some(3),
        correlation_id: Some("corr-1".into()),
        reply_to: Some("replies".into()),
        message_id: Some("id-7".into()),
        timestamp: Some(1_700_000_000),
        kind: Some("greeting".into()),
        user_id: Some("guest".into()),
        app_id: Some("tests".into()),
        ..Default::default()
    };
    channel
        .basic_publish(
            "",
            "props",
            "{}",
            properties.clone(),
            PublishOptions::default(),
        )
        .await
        .unwrap();
    let got = channel.basic_get("props", true).await.unwrap().unwrap();
    assert_eq!(got.properties, properties);
    // Field order is kept as sent, not re-sorted.
    let keys: Vec<&str> = got
        .properties
        .headers
        .as_ref()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, ["zeta", "alpha", "nested"]);
    conn.close().await.unwrap();
    broker.stop().await;
}

/// Properties the broker need not read (no headers, reply-to, expiration or user-id)
/// take the path that reads a whole publish in place: they and the body, empty or not,
/// still arrive byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_properties_and_bodies_read_in_place_reach_the_consumer_unchanged() {
    let broker = TestBroker::start().await;
    let conn = connect_client(&broker.uri(), "plain_properties_read_in_place").await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("plain-props", QueueDeclareOptions::default())
        .await
        .unwrap();
    let properties = BasicProperties {
        content_type: Some("text/plain".into()),
        content_encoding: Some("utf-8".into()),
        delivery_mode: Some(1),
        priority: Some(4),
        correlation_id: Some("corr-2".into()),
        message_id: Some("id-8".into()),
        timestamp: Some(1_700_000_001),
        kind: Some("note".into()),
        app_id: Some("tests".into()),
        ..Default::default()
    };
    let bodies: [&'static [u8]; 3] = [b"", b"hello", &[7u8; 4096]];
    for body in bodies {
        channel
            .basic_publish(
                "",
                "plain-props",
                body,
                properties.clone(),
                PublishOptions::default(),
            )
            .await
            .unwrap();
    }
    for body in bodies {
        let got = channel
            .basic_get("plain-props", true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.properties, properties);
        assert_eq!(&got.body[..], body);
        assert_eq!(got.routing_key.as_str(), "plain-props");
    }
    conn.close().await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Mandatory and unroutable messages
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_unroutable_message_is_returned_with_312_no_route() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "mandatory_unroutable_message_is_returned_with_312_no_route",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    let mut returns = channel.returns().unwrap();
    let properties = BasicProperties {
        message_id: Some("lost-1".into()),
        ..Default::default()
    };
    let mandatory = PublishOptions { mandatory: true };
    channel
        .basic_publish(
            "amq.direct",
            "nobody",
            "hello?",
            properties.clone(),
            mandatory,
        )
        .await
        .unwrap();
    let returned = within("basic.return", returns.next()).await.unwrap();
    assert_eq!(returned.reply_code, 312);
    assert_eq!(returned.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(returned.exchange.as_str(), "amq.direct");
    assert_eq!(returned.routing_key.as_str(), "nobody");
    assert_eq!(&returned.body[..], b"hello?");
    assert_eq!(returned.properties, properties);
    // A mandatory message that does route is not returned; the declare-ok after it
    // proves nothing came back before.
    channel
        .queue_declare("somebody", QueueDeclareOptions::default())
        .await
        .unwrap();
    channel
        .basic_publish("", "somebody", "hi", BasicProperties::default(), mandatory)
        .await
        .unwrap();
    assert_eq!(counts(&channel, "somebody").await, (1, 0));
    assert!(
        futures_util::FutureExt::now_or_never(returns.next()).is_none(),
        "a routed message came back"
    );
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_confirm_mode_a_returned_message_is_returned_before_its_ack() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "in_confirm_mode_a_returned_message_is_returned_before_its_ack",
    )
    .await
    .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = channel
        .basic_publish(
            "".into(),
            "no-such-queue".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"bounce",
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap();
    // lapin pairs the return with the ack only if the return came first.
    match within("the confirm", confirm).await.unwrap() {
        lapin::Confirmation::Ack(Some(returned)) => {
            assert_eq!(returned.reply_code, 312);
            assert_eq!(returned.reply_text.as_str(), "NO_ROUTE");
            assert_eq!(returned.delivery.data, b"bounce");
            assert_eq!(returned.delivery.routing_key.as_str(), "no-such-queue");
        }
        other => panic!("expected an ack carrying the returned message, got {other:?}"),
    }
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_message_without_mandatory_is_dropped_and_confirmed() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "unroutable_message_without_mandatory_is_dropped_and_confirmed",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    let mut returns = channel.returns().unwrap();
    channel.confirm_select().await.unwrap();
    let confirm = channel
        .basic_publish(
            "amq.fanout",
            "",
            "void",
            BasicProperties::default(),
            PublishOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        within("the confirm", confirm).await.unwrap(),
        Confirmation::Ack
    );
    assert!(futures_util::FutureExt::now_or_never(returns.next()).is_none());
    conn.close().await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_a_missing_exchange_closes_the_channel_with_404() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "publish_to_a_missing_exchange_closes_the_channel_with_404",
    )
    .await;
    client.open_channel(1).await;
    client
        .publish(
            1,
            publish_to("ghost", "k"),
            BasicProperties::default(),
            b"boo",
            0,
        )
        .await;
    let (code, text, class_id, method_id) = client.expect_channel_close(1).await;
    assert_eq!(code, 404);
    assert_eq!(text, "NOT_FOUND - no exchange 'ghost' in vhost '/'");
    assert_eq!((class_id, method_id), (60, 40));
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_a_missing_exchange_fails_the_bundled_clients_next_call_with_404() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "publish_to_a_missing_exchange_fails_the_bundled_clients_next_call_with_404",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel.confirm_select().await.unwrap();
    let confirm = channel
        .basic_publish(
            "ghost",
            "k",
            "boo",
            BasicProperties::default(),
            PublishOptions::default(),
        )
        .await
        .unwrap();
    let error = within("the confirm", confirm)
        .await
        .expect_err("the channel closes");
    assert_eq!(error.reply_code(), Some(404), "{error:?}");
    assert!(!channel.is_open());
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_publish_closes_the_connection_with_540() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "immediate_publish_closes_the_connection_with_540",
    )
    .await;
    client.open_channel(1).await;
    let publish = BasicPublish {
        immediate: true,
        ..publish_to("", "anything")
    };
    client
        .publish(1, publish, BasicProperties::default(), b"now!", 0)
        .await;
    let (code, text, class_id, method_id) = client.expect_close().await;
    assert_eq!(code, 540, "{text}");
    assert_eq!(text, "NOT_IMPLEMENTED - immediate=true");
    assert_eq!((class_id, method_id), (60, 40));
    client.close_ok().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_id_other_than_the_authenticated_user_closes_the_channel_with_406() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "user_id_other_than_the_authenticated_user_closes_the_channel_with_406",
    )
    .await;
    client.open_channel(1).await;
    client.declare_queue(1, "audited").await;
    // The authenticated user's own name passes.
    let honest = BasicProperties {
        user_id: Some("guest".into()),
        ..Default::default()
    };
    client
        .publish(1, publish_to("", "audited"), honest, b"from guest", 0)
        .await;
    let forged = BasicProperties {
        user_id: Some("mallory".into()),
        ..Default::default()
    };
    client
        .publish(1, publish_to("", "audited"), forged, b"from mallory?", 0)
        .await;
    let (code, text, class_id, method_id) = client.expect_channel_close(1).await;
    assert_eq!(code, 406);
    assert_eq!(
        text,
        "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'"
    );
    assert_eq!((class_id, method_id), (60, 40));
    client.open_channel(2).await;
    client
        .send(Frame::method(
            2,
            BasicGet {
                queue: "audited".into(),
                no_ack: true,
                ..Default::default()
            },
        ))
        .await;
    let got = client.recv_content().await;
    match got.method {
        Method::BasicGetOk(ok) => assert_eq!(ok.message_count, 0, "the forged one was dropped"),
        other => panic!("{other:?}"),
    }
    assert_eq!(&got.body[..], b"from guest");
    assert_eq!(got.header.properties().user_id.as_deref(), Some("guest"));
    client.close().await;
    broker.stop().await;
}

/// The bundled client surfaces a refused publish on the channel's next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_user_id_fails_the_bundled_clients_next_call_with_406() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "forged_user_id_fails_the_bundled_clients_next_call_with_406",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    let forged = BasicProperties {
        user_id: Some("root".into()),
        ..Default::default()
    };
    channel
        .basic_publish("", "whatever", "x", forged, PublishOptions::default())
        .await
        .unwrap();
    let error = channel
        .queue_declare("", QueueDeclareOptions::default())
        .await
        .expect_err("the channel was closed by the publish");
    assert!(
        matches!(
            error,
            wc::Error::ChannelClosed {
                code: 406,
                class_id: 60,
                method_id: 40,
                ..
            }
        ),
        "{error:?}"
    );
    conn.close().await.unwrap();
    broker.stop().await;
}
