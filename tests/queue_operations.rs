//! Queue operations end to end: queue.bind / queue.unbind, and queue.purge /
//! queue.delete with their counts and refusals (if-unused, if-empty, missing queues).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use lapin::options::{BasicCancelOptions, BasicConsumeOptions};
use warren_client::{QueueDeclareOptions, QueueDeleteOptions};
use warren_codec::{FieldTable, Method, QueueDeclare, QueueDeclareOk, QueueDelete, QueuePurge};

use common::{
    RawClient, TestBroker, connect_client, connect_lapin, counts, publish_all, refused, within,
};

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------
// queue.bind / queue.unbind
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_routes_matching_keys_and_unbind_stops_routing() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "bind_routes_matching_keys_and_unbind_stops_routing",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("bound", QueueDeclareOptions::default())
        .await
        .unwrap();
    channel
        .queue_bind("bound", "amq.direct", "red", FieldTable::new())
        .await
        .unwrap();
    publish_all(&channel, "amq.direct", "red", ["routed"]).await;
    publish_all(&channel, "amq.direct", "blue", ["not routed"]).await;
    assert_eq!(counts(&channel, "bound").await, (1, 0));
    channel
        .queue_unbind("bound", "amq.direct", "red", FieldTable::new())
        .await
        .unwrap();
    publish_all(&channel, "amq.direct", "red", ["after unbind"]).await;
    assert_eq!(counts(&channel, "bound").await, (1, 0));
    let got = channel.basic_get("bound", true).await.unwrap().unwrap();
    assert_eq!(&got.body[..], b"routed");
    assert_eq!(got.routing_key.as_str(), "red");
    assert_eq!(got.exchange.as_str(), "amq.direct");
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_to_a_missing_exchange_or_queue_is_refused_with_404() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "bind_to_a_missing_exchange_or_queue_is_refused_with_404",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("lonely", QueueDeclareOptions::default())
        .await
        .unwrap();
    let code = refused(
        channel
            .queue_bind("lonely", "no-such-exchange", "k", FieldTable::new())
            .await,
    );
    assert_eq!(code, 404, "missing exchange");
    let channel = conn.open_channel().await.unwrap();
    let code = refused(
        channel
            .queue_bind("no-such-queue", "amq.direct", "k", FieldTable::new())
            .await,
    );
    assert_eq!(code, 404, "missing queue");
    conn.close().await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// queue.purge / queue.delete
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_removes_ready_messages_reports_their_count_and_leaves_unacked_ones() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "purge_removes_ready_messages_reports_their_count_and_leaves_unacked_ones",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("purged", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "purged", ["1", "2", "3", "4", "5"]).await;
    let getter = conn.open_channel().await.unwrap();
    let held = getter.basic_get("purged", false).await.unwrap().unwrap();
    assert_eq!(&held.body[..], b"1");
    assert_eq!(channel.queue_purge("purged").await.unwrap(), 4);
    assert_eq!(counts(&channel, "purged").await, (0, 0));
    assert_eq!(channel.queue_purge("purged").await.unwrap(), 0);
    // The unacked message survived the purge: closing its channel puts it back.
    getter.close().await.unwrap();
    assert_eq!(counts(&channel, "purged").await, (1, 0));
    let back = channel.basic_get("purged", true).await.unwrap().unwrap();
    assert_eq!(&back.body[..], b"1");
    assert!(back.redelivered);
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_of_a_missing_queue_closes_the_channel_with_404() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "purge_of_a_missing_queue_closes_the_channel_with_404",
    )
    .await;
    client.open_channel(1).await;
    client
        .send(warren_codec::Frame::method(
            1,
            QueuePurge {
                queue: "nothing-here".into(),
                ..Default::default()
            },
        ))
        .await;
    let (code, text, class_id, method_id) = client.expect_channel_close(1).await;
    assert_eq!(code, 404, "{text}");
    assert_eq!((class_id, method_id), (50, 30));
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_reports_the_ready_message_count_and_removes_queue_and_bindings() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "delete_reports_the_ready_message_count_and_removes_queue_and_bindings",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("doomed", QueueDeclareOptions::default())
        .await
        .unwrap();
    channel
        .queue_bind("doomed", "amq.fanout", "", FieldTable::new())
        .await
        .unwrap();
    publish_all(&channel, "amq.fanout", "", ["a", "b", "c"]).await;
    let deleted = channel
        .queue_delete("doomed", QueueDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(deleted, 3);
    assert_eq!(
        refused(channel.queue_declare("doomed", passive()).await),
        404
    );
    // A queue of the same name starts empty and without the old binding.
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("doomed", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "amq.fanout", "", ["d"]).await;
    assert_eq!(counts(&channel, "doomed").await, (0, 0));
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_of_a_missing_queue_succeeds_with_zero_messages() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "delete_of_a_missing_queue_succeeds_with_zero_messages",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    let deleted = channel
        .queue_delete("never-declared", QueueDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(deleted, 0);
    assert!(channel.is_open());
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_if_unused_refuses_a_queue_with_consumers_with_406() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "delete_if_unused_refuses_a_queue_with_consumers_with_406",
    )
    .await;
    client.open_channel(1).await;
    client.declare_queue(1, "in-use").await;
    let reply = client
        .call(
            1,
            warren_codec::BasicConsume {
                queue: "in-use".into(),
                consumer_tag: "c".into(),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(reply, Method::BasicConsumeOk(_)), "{reply:?}");
    client.open_channel(2).await;
    client
        .send(warren_codec::Frame::method(
            2,
            QueueDelete {
                queue: "in-use".into(),
                if_unused: true,
                ..Default::default()
            },
        ))
        .await;
    let (code, text, class_id, method_id) = client.expect_channel_close(2).await;
    assert_eq!(code, 406, "{text}");
    assert_eq!(
        text,
        "PRECONDITION_FAILED - queue 'in-use' in vhost '/' in use"
    );
    assert_eq!((class_id, method_id), (50, 40));
    // Still there, consumer and all.
    let reply = client
        .call(
            1,
            QueueDeclare {
                queue: "in-use".into(),
                passive: true,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        reply,
        Method::QueueDeclareOk(QueueDeclareOk {
            queue: "in-use".into(),
            message_count: 0,
            consumer_count: 1,
        })
    );
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_if_empty_refuses_a_queue_with_messages_with_406() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "delete_if_empty_refuses_a_queue_with_messages_with_406",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_declare("full", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "full", ["x"]).await;
    let if_empty = QueueDeleteOptions {
        if_empty: true,
        ..Default::default()
    };
    assert_eq!(refused(channel.queue_delete("full", if_empty).await), 406);
    let channel = conn.open_channel().await.unwrap();
    assert_eq!(counts(&channel, "full").await, (1, 0));
    // Empty, it goes.
    channel.queue_purge("full").await.unwrap();
    assert_eq!(channel.queue_delete("full", if_empty).await.unwrap(), 0);
    assert_eq!(refused(channel.queue_declare("full", passive()).await), 404);
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_if_unused_and_if_empty_succeed_on_an_idle_empty_queue() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "delete_if_unused_and_if_empty_succeed_on_an_idle_empty_queue",
    )
    .await
    .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare("idle".into(), Default::default(), Default::default())
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            "idle".into(),
            "gone-soon".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    channel
        .basic_cancel("gone-soon".into(), BasicCancelOptions::default())
        .await
        .unwrap();
    let deleted = channel
        .queue_delete(
            "idle".into(),
            lapin::options::QueueDeleteOptions {
                if_unused: true,
                if_empty: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(deleted, 0);
    // The cancelled consumer's stream has ended and holds nothing.
    let end = within("the cancelled consumer's end", async {
        use futures_util::StreamExt;
        consumer.next().await
    })
    .await;
    assert!(end.is_none(), "{end:?}");
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}
