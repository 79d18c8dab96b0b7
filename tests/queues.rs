//! Queues end to end: declare (server-named, passive, no-wait, redeclare checks) and
//! the exclusive and auto-delete lifetimes; bind, purge and delete are in
//! `queue_operations.rs`. The bundled client and lapin check what applications see;
//! the raw client checks exact reply codes, texts and failing-method ids.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use warren_client::{self as wc, QueueDeclareOptions, QueueDeleteOptions};
use warren_codec::{BasicQos, BasicQosOk, FieldTable, Method, QueueDeclare, QueueDeclareOk};

use common::{
    RawClient, TestBroker, connect_client, connect_lapin, counts, lapin_counts, lapin_publish,
    lapin_reply_code, next_lapin, publish_all, refused,
};

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------
// queue.declare
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_named_queues_get_unique_amq_gen_names() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "server_named_queues_get_unique_amq_gen_names",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    let first = channel
        .queue_declare("", QueueDeclareOptions::default())
        .await
        .unwrap();
    let second = channel
        .queue_declare("", QueueDeclareOptions::default())
        .await
        .unwrap();
    for info in [&first, &second] {
        assert!(info.name.starts_with("amq.gen-"), "{}", info.name);
        assert!(info.name.len() > "amq.gen-".len(), "{}", info.name);
        assert_eq!((info.message_count, info.consumer_count), (0, 0));
    }
    assert_ne!(first.name, second.name);
    // Both exist: the default exchange routes to them by name.
    publish_all(&channel, "", &first.name, ["to first"]).await;
    assert_eq!(counts(&channel, &first.name).await, (1, 0));
    assert_eq!(counts(&channel, &second.name).await, (0, 0));
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_ok_reports_ready_messages_and_consumers() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "declare_ok_reports_ready_messages_and_consumers",
    )
    .await
    .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare("counted".into(), Default::default(), Default::default())
        .await
        .unwrap();
    for body in [b"1", b"2", b"3"] {
        lapin_publish(&channel, "", "counted", body).await;
    }
    channel
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            "counted".into(),
            "".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    // With prefetch 1 the consumer holds one unacked message; two stay ready.
    let delivery = next_lapin(&mut consumer).await;
    assert_eq!(delivery.data, b"1");
    let again = channel
        .queue_declare("counted".into(), Default::default(), Default::default())
        .await
        .unwrap();
    assert_eq!((again.message_count(), again.consumer_count()), (2, 1));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_with_other_properties_or_arguments_is_refused_with_406() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "redeclare_with_other_properties_or_arguments_is_refused_with_406",
    )
    .await;
    let note = |value: &str| {
        let mut arguments = FieldTable::new();
        arguments.insert("x-note", value);
        arguments
    };
    let same = QueueDeclareOptions {
        durable: true,
        arguments: note("kept"),
        ..Default::default()
    };
    let setup = conn.open_channel().await.unwrap();
    setup.queue_declare("settled", same.clone()).await.unwrap();
    let variants = [
        QueueDeclareOptions {
            durable: false,
            ..same.clone()
        },
        QueueDeclareOptions {
            auto_delete: true,
            ..same.clone()
        },
        QueueDeclareOptions {
            arguments: note("changed"),
            ..same.clone()
        },
        QueueDeclareOptions {
            arguments: FieldTable::new(),
            ..same.clone()
        },
    ];
    for options in variants {
        let channel = conn.open_channel().await.unwrap();
        let code = refused(channel.queue_declare("settled", options.clone()).await);
        assert_eq!(code, 406, "{options:?}");
        assert!(!channel.is_open());
    }
    // The equivalent declaration is still accepted, and the queue is untouched.
    let channel = conn.open_channel().await.unwrap();
    channel.queue_declare("settled", same).await.unwrap();
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_with_a_different_exclusive_flag_is_refused_with_405() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "redeclare_with_a_different_exclusive_flag_is_refused_with_405",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("shared", QueueDeclareOptions::default())
        .await
        .unwrap();
    channel
        .queue_declare(
            "owned",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let channel = conn.open_channel().await.unwrap();
    let code = refused(
        channel
            .queue_declare(
                "shared",
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
            )
            .await,
    );
    assert_eq!(code, 405, "non-exclusive queue redeclared as exclusive");
    let channel = conn.open_channel().await.unwrap();
    let code = refused(
        channel
            .queue_declare("owned", QueueDeclareOptions::default())
            .await,
    );
    assert_eq!(
        code, 405,
        "exclusive queue redeclared as non-exclusive by its owner"
    );
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_declare_of_a_missing_queue_closes_the_channel_with_404() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "passive_declare_of_a_missing_queue_closes_the_channel_with_404",
    )
    .await;
    client.open_channel(1).await;
    client
        .send(warren_codec::Frame::method(
            1,
            QueueDeclare {
                queue: "missing".into(),
                passive: true,
                ..Default::default()
            },
        ))
        .await;
    let (code, text, class_id, method_id) = client.expect_channel_close(1).await;
    assert_eq!(code, 404);
    assert_eq!(text, "NOT_FOUND - no queue 'missing' in vhost '/'");
    assert_eq!((class_id, method_id), (50, 10));
    // Only the channel closed: the connection still serves others.
    client.open_channel(2).await;
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_a_queue_with_the_reserved_amq_prefix_is_refused_with_403() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "declaring_a_queue_with_the_reserved_amq_prefix_is_refused_with_403",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    let code = refused(
        channel
            .queue_declare("amq.mine", QueueDeclareOptions::default())
            .await,
    );
    assert_eq!(code, 403);
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wait_declare_sends_no_reply_and_creates_the_queue() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "no_wait_declare_sends_no_reply_and_creates_the_queue",
    )
    .await;
    client.open_channel(1).await;
    client
        .send(warren_codec::Frame::method(
            1,
            QueueDeclare {
                queue: "quiet".into(),
                no_wait: true,
                ..Default::default()
            },
        ))
        .await;
    // Had the no-wait declare been answered, its declare-ok would come first here and
    // the qos-ok below would find the passive declare's reply instead.
    let reply = client
        .call(
            1,
            QueueDeclare {
                queue: "quiet".into(),
                passive: true,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        reply,
        Method::QueueDeclareOk(QueueDeclareOk {
            queue: "quiet".into(),
            message_count: 0,
            consumer_count: 0,
        })
    );
    let reply = client.call(1, BasicQos::default()).await;
    assert_eq!(reply, Method::BasicQosOk(BasicQosOk::default()));
    client.close().await;
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Exclusive queues
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_queue_refuses_every_other_connection_with_405() {
    let broker = TestBroker::start().await;
    let owner = connect_client(
        &broker.uri(),
        "exclusive_queue_refuses_every_other_connection_with_405/owner",
    )
    .await;
    let other = connect_client(
        &broker.uri(),
        "exclusive_queue_refuses_every_other_connection_with_405/other",
    )
    .await;
    let mine = owner.open_channel().await.unwrap();
    mine.queue_declare(
        "private",
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    publish_all(&mine, "", "private", ["secret"]).await;

    let ch = other.open_channel().await.unwrap();
    let code = refused(
        ch.queue_declare(
            "private",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(code, 405, "declare");
    let ch = other.open_channel().await.unwrap();
    assert_eq!(refused(ch.queue_declare("private", passive()).await), 405);
    let ch = other.open_channel().await.unwrap();
    assert_eq!(refused(ch.basic_get("private", false).await), 405, "get");
    let ch = other.open_channel().await.unwrap();
    let code = refused(
        ch.basic_consume("private", wc::ConsumeOptions::default())
            .await,
    );
    assert_eq!(code, 405, "consume");
    let ch = other.open_channel().await.unwrap();
    assert_eq!(refused(ch.queue_purge("private").await), 405, "purge");
    let ch = other.open_channel().await.unwrap();
    let code = refused(
        ch.queue_bind("private", "amq.direct", "k", FieldTable::new())
            .await,
    );
    assert_eq!(code, 405, "bind");
    let ch = other.open_channel().await.unwrap();
    let code = refused(
        ch.queue_delete("private", QueueDeleteOptions::default())
            .await,
    );
    assert_eq!(code, 405, "delete");

    // None of that touched it; the owner still has its message.
    assert_eq!(counts(&mine, "private").await, (1, 0));
    let got = mine.basic_get("private", true).await.unwrap().unwrap();
    assert_eq!(&got.body[..], b"secret");
    owner.close().await.unwrap();
    other.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_queue_is_deleted_when_its_connection_closes() {
    let broker = TestBroker::start().await;
    let owner = connect_client(
        &broker.uri(),
        "exclusive_queue_is_deleted_when_its_connection_closes/owner",
    )
    .await;
    let observer = connect_client(
        &broker.uri(),
        "exclusive_queue_is_deleted_when_its_connection_closes/observer",
    )
    .await;
    let channel = owner.open_channel().await.unwrap();
    channel
        .queue_declare(
            "short-lived",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    publish_all(&channel, "", "short-lived", ["a", "b"]).await;
    let probe = observer.open_channel().await.unwrap();
    assert_eq!(
        refused(probe.queue_declare("short-lived", passive()).await),
        405
    );
    // close() returns on the broker's close-ok, which follows the deletion.
    owner.close().await.unwrap();
    let probe = observer.open_channel().await.unwrap();
    assert_eq!(
        refused(probe.queue_declare("short-lived", passive()).await),
        404
    );
    // The name is free again, and the new queue starts empty.
    let channel = observer.open_channel().await.unwrap();
    let info = channel
        .queue_declare("short-lived", QueueDeclareOptions::default())
        .await
        .unwrap();
    assert_eq!(info.message_count, 0);
    observer.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_queue_is_gone_once_connection_close_ok_arrives() {
    let broker = TestBroker::start().await;
    let observer = connect_client(
        &broker.uri(),
        "exclusive_queue_is_gone_once_connection_close_ok_arrives/observer",
    )
    .await;
    let mut owner = RawClient::connect(
        broker.addr(),
        "exclusive_queue_is_gone_once_connection_close_ok_arrives/owner",
    )
    .await;
    owner.open_channel(1).await;
    for (queue, exclusive) in [("scoped", true), ("crowded", false)] {
        let reply = owner
            .call(
                1,
                QueueDeclare {
                    queue: queue.into(),
                    exclusive,
                    ..Default::default()
                },
            )
            .await;
        assert!(matches!(reply, Method::QueueDeclareOk(_)), "{reply:?}");
    }
    // Many channels with consumers give the broker work to do when the connection
    // closes, which widens the window between close-ok and the deletion.
    const CHANNELS: u16 = 1500;
    let mut burst = bytes::BytesMut::new();
    for ch in 2..2 + CHANNELS {
        warren_codec::Frame::method(ch, warren_codec::ChannelOpen::default()).encode(&mut burst);
        warren_codec::Frame::method(
            ch,
            warren_codec::BasicConsume {
                queue: "crowded".into(),
                ..Default::default()
            },
        )
        .encode(&mut burst);
    }
    owner.send_bytes(&burst).await;
    for _ in 0..2 * CHANNELS {
        let (_, reply) = owner.recv_method().await;
        assert!(
            matches!(reply, Method::ChannelOpenOk(_) | Method::BasicConsumeOk(_)),
            "{reply:?}"
        );
    }
    let probe = observer.open_channel().await.unwrap();
    owner
        .send(warren_codec::Frame::method(
            0,
            warren_codec::ConnectionClose {
                reply_code: 200,
                reply_text: "bye".into(),
                ..Default::default()
            },
        ))
        .await;
    match owner.recv_method().await {
        (0, Method::ConnectionCloseOk(_)) => {}
        other => panic!("expected connection.close-ok, got {other:?}"),
    }
    let code = refused(probe.queue_declare("scoped", passive()).await);
    assert_eq!(
        code, 404,
        "the exclusive queue outlived connection.close-ok"
    );
    owner.expect_eof().await;
    observer.close().await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Auto-delete queues
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_delete_queue_is_deleted_when_its_last_consumer_cancels() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "auto_delete_queue_is_deleted_when_its_last_consumer_cancels",
    )
    .await
    .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let options = lapin::options::QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    channel
        .queue_declare("transient".into(), options, Default::default())
        .await
        .unwrap();
    let mut consumers = Vec::new();
    for tag in ["first", "second"] {
        consumers.push(
            channel
                .basic_consume(
                    "transient".into(),
                    tag.into(),
                    BasicConsumeOptions::default(),
                    Default::default(),
                )
                .await
                .unwrap(),
        );
    }
    assert_eq!(lapin_counts(&channel, "transient").await, (0, 2));
    channel
        .basic_cancel("first".into(), BasicCancelOptions::default())
        .await
        .unwrap();
    // One consumer left: the queue stays.
    assert_eq!(lapin_counts(&channel, "transient").await, (0, 1));
    channel
        .basic_cancel("second".into(), BasicCancelOptions::default())
        .await
        .unwrap();
    // The passive declare queues behind the cancel in the queue's mailbox, so the
    // deletion has happened by the time it is handled.
    let error = channel
        .queue_declare(
            "transient".into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .expect_err("the auto-delete queue must be gone");
    assert_eq!(lapin_reply_code(&error), Some(404), "{error:?}");
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_delete_queue_is_deleted_when_its_last_consumers_channel_closes() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "auto_delete_queue_is_deleted_when_its_last_consumers_channel_closes",
    )
    .await;
    let consuming = conn.open_channel().await.unwrap();
    consuming
        .queue_declare(
            "ephemeral",
            QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let _consumer = consuming
        .basic_consume("ephemeral", wc::ConsumeOptions::default())
        .await
        .unwrap();
    consuming.close().await.unwrap();
    let probe = conn.open_channel().await.unwrap();
    assert_eq!(
        refused(probe.queue_declare("ephemeral", passive()).await),
        404
    );
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_delete_queue_that_never_had_a_consumer_is_kept() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "auto_delete_queue_that_never_had_a_consumer_is_kept",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare(
            "waiting",
            QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    publish_all(&channel, "", "waiting", ["kept"]).await;
    // basic.get is not a consumer: taking a message does not delete the queue.
    let got = channel.basic_get("waiting", false).await.unwrap().unwrap();
    got.ack().await.unwrap();
    assert_eq!(counts(&channel, "waiting").await, (0, 0));
    conn.close().await.unwrap();
    broker.stop().await;
}
