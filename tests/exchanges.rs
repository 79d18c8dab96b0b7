//! Exchanges end to end: declare (passive, redeclare checks, reserved names), delete,
//! the default exchange, the predeclared amq.direct and amq.fanout, direct, fanout and
//! topic routing. tests/routing.rs covers the rest of routing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use lapin::ExchangeKind as LapinKind;
use lapin::options::ExchangeDeclareOptions as LapinDeclare;
use warren_client::{
    self as wc, ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind, QueueDeclareOptions,
};
use warren_codec::{ExchangeDeclare, FieldTable, Frame, Method};

use common::{
    RawClient, TestBroker, connect_client, connect_lapin, counts, lapin_reply_code, publish_all,
    refused,
};

fn passive() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

async fn declare_queues(channel: &wc::Channel, names: &[&str]) {
    for name in names {
        channel
            .queue_declare(name, QueueDeclareOptions::default())
            .await
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// exchange.declare / exchange.delete
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_and_fanout_exchanges_are_declared_checked_and_deleted() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "direct_and_fanout_exchanges_are_declared_checked_and_deleted",
    )
    .await
    .unwrap();
    let passive = LapinDeclare {
        passive: true,
        ..Default::default()
    };
    for (name, kind) in [("orders", LapinKind::Direct), ("events", LapinKind::Fanout)] {
        // Each round ends with a 404, which closes its channel.
        let channel = conn.create_channel().await.unwrap();
        let declare = |kind: LapinKind, options| {
            channel.exchange_declare(name.into(), kind, options, Default::default())
        };
        declare(kind.clone(), LapinDeclare::default())
            .await
            .unwrap();
        // An equivalent redeclaration and a passive one both succeed.
        declare(kind.clone(), LapinDeclare::default())
            .await
            .unwrap();
        declare(kind, passive).await.unwrap();
        channel
            .exchange_delete(name.into(), Default::default())
            .await
            .unwrap();
        let error = declare(LapinKind::Direct, passive)
            .await
            .expect_err("a deleted exchange is gone");
        assert_eq!(lapin_reply_code(&error), Some(404), "{error:?}");
    }
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_declare_of_a_missing_exchange_closes_the_channel_with_404() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "passive_declare_of_a_missing_exchange_closes_the_channel_with_404",
    )
    .await;
    client.open_channel(1).await;
    client
        .send(Frame::method(
            1,
            ExchangeDeclare {
                exchange: "nope".into(),
                kind: "direct".into(),
                passive: true,
                ..Default::default()
            },
        ))
        .await;
    let (code, text, class_id, method_id) = client.expect_channel_close(1).await;
    assert_eq!(code, 404);
    assert_eq!(text, "NOT_FOUND - no exchange 'nope' in vhost '/'");
    assert_eq!((class_id, method_id), (40, 10));
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_with_another_type_or_flags_is_refused_with_406() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "redeclare_with_another_type_or_flags_is_refused_with_406",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .exchange_declare(
            "settled",
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
        )
        .await
        .unwrap();
    let variants = [
        (ExchangeKind::Fanout, ExchangeDeclareOptions::default()),
        (
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
        ),
        (
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
        ),
    ];
    for (kind, options) in variants {
        let channel = conn.open_channel().await.unwrap();
        let code = refused(
            channel
                .exchange_declare("settled", kind.clone(), options.clone())
                .await,
        );
        assert_eq!(code, 406, "{kind:?} {options:?}");
    }
    // The original is unchanged: it still routes as a direct exchange.
    let channel = conn.open_channel().await.unwrap();
    declare_queues(&channel, &["behind-settled"]).await;
    channel
        .queue_bind("behind-settled", "settled", "k", FieldTable::new())
        .await
        .unwrap();
    publish_all(&channel, "settled", "k", ["hit"]).await;
    publish_all(&channel, "settled", "other", ["miss"]).await;
    assert_eq!(counts(&channel, "behind-settled").await, (1, 0));
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_an_exchange_with_the_reserved_amq_prefix_is_refused_with_403() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "declaring_an_exchange_with_the_reserved_amq_prefix_is_refused_with_403",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    let code = refused(
        channel
            .exchange_declare(
                "amq.custom",
                ExchangeKind::Direct,
                ExchangeDeclareOptions::default(),
            )
            .await,
    );
    assert_eq!(code, 403);
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amq_direct_and_amq_fanout_are_predeclared_and_cannot_be_deleted() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "amq_direct_and_amq_fanout_are_predeclared_and_cannot_be_deleted",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    for (name, kind) in [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
    ] {
        channel
            .exchange_declare(name, kind.clone(), passive())
            .await
            .unwrap();
        // Redeclaring one as it is (durable) is allowed, as in RabbitMQ.
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel.exchange_declare(name, kind, durable).await.unwrap();
        let deleter = conn.open_channel().await.unwrap();
        let code = refused(
            deleter
                .exchange_delete(name, ExchangeDeleteOptions::default())
                .await,
        );
        assert_eq!(code, 403, "{name}");
    }
    // Both still route.
    declare_queues(&channel, &["via-direct", "via-fanout"]).await;
    channel
        .queue_bind("via-direct", "amq.direct", "k", FieldTable::new())
        .await
        .unwrap();
    channel
        .queue_bind("via-fanout", "amq.fanout", "", FieldTable::new())
        .await
        .unwrap();
    publish_all(&channel, "amq.direct", "k", ["d"]).await;
    publish_all(&channel, "amq.fanout", "anything", ["f"]).await;
    assert_eq!(counts(&channel, "via-direct").await, (1, 0));
    assert_eq!(counts(&channel, "via-fanout").await, (1, 0));
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_if_unused_refuses_an_exchange_with_bindings_with_406() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "delete_if_unused_refuses_an_exchange_with_bindings_with_406",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .exchange_declare(
            "busy",
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
        )
        .await
        .unwrap();
    declare_queues(&channel, &["busy-q"]).await;
    channel
        .queue_bind("busy-q", "busy", "", FieldTable::new())
        .await
        .unwrap();
    let if_unused = ExchangeDeleteOptions { if_unused: true };
    assert_eq!(
        refused(channel.exchange_delete("busy", if_unused).await),
        406
    );
    let channel = conn.open_channel().await.unwrap();
    channel
        .queue_unbind("busy-q", "busy", "", FieldTable::new())
        .await
        .unwrap();
    channel.exchange_delete("busy", if_unused).await.unwrap();
    assert_eq!(
        refused(
            channel
                .exchange_declare("busy", ExchangeKind::Fanout, passive())
                .await
        ),
        404
    );
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_exchange_drops_its_bindings_and_a_missing_one_deletes_fine() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "deleting_an_exchange_drops_its_bindings_and_a_missing_one_deletes_fine",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .exchange_declare(
            "phoenix",
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
        )
        .await
        .unwrap();
    declare_queues(&channel, &["phoenix-q"]).await;
    channel
        .queue_bind("phoenix-q", "phoenix", "", FieldTable::new())
        .await
        .unwrap();
    channel
        .exchange_delete("phoenix", ExchangeDeleteOptions::default())
        .await
        .unwrap();
    // Deleting it again (now missing) succeeds, as in RabbitMQ 3.x.
    channel
        .exchange_delete("phoenix", ExchangeDeleteOptions::default())
        .await
        .unwrap();
    channel
        .exchange_declare(
            "phoenix",
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
        )
        .await
        .unwrap();
    publish_all(&channel, "phoenix", "", ["unbound"]).await;
    assert_eq!(counts(&channel, "phoenix-q").await, (0, 0));
    conn.close().await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// The default exchange
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_exchange_routes_by_queue_name() {
    let broker = TestBroker::start().await;
    let conn = connect_client(&broker.uri(), "default_exchange_routes_by_queue_name").await;
    let channel = conn.open_channel().await.unwrap();
    declare_queues(&channel, &["alpha", "beta"]).await;
    publish_all(&channel, "", "alpha", ["a1", "a2"]).await;
    publish_all(&channel, "", "beta", ["b1"]).await;
    publish_all(&channel, "", "gamma", ["nowhere"]).await;
    assert_eq!(counts(&channel, "alpha").await, (2, 0));
    assert_eq!(counts(&channel, "beta").await, (1, 0));
    let got = channel.basic_get("beta", true).await.unwrap().unwrap();
    assert_eq!(&got.body[..], b"b1");
    assert_eq!(got.exchange.as_str(), "");
    assert_eq!(got.routing_key.as_str(), "beta");
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_exchange_cannot_be_declared_bound_or_deleted() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "default_exchange_cannot_be_declared_bound_or_deleted",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    // A passive check of it is fine.
    channel
        .exchange_declare("", ExchangeKind::Direct, passive())
        .await
        .unwrap();
    declare_queues(&channel, &["target"]).await;
    let code = refused(
        channel
            .exchange_declare("", ExchangeKind::Direct, ExchangeDeclareOptions::default())
            .await,
    );
    assert_eq!(code, 403, "declare");
    let channel = conn.open_channel().await.unwrap();
    let code = refused(
        channel
            .queue_bind("target", "", "target", FieldTable::new())
            .await,
    );
    assert_eq!(code, 403, "bind");
    let channel = conn.open_channel().await.unwrap();
    let code = refused(
        channel
            .exchange_delete("", ExchangeDeleteOptions::default())
            .await,
    );
    assert_eq!(code, 403, "delete");
    conn.close().await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_exchange_routes_on_the_exact_key_to_every_matching_queue() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "direct_exchange_routes_on_the_exact_key_to_every_matching_queue",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .exchange_declare(
            "router",
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
        )
        .await
        .unwrap();
    declare_queues(&channel, &["r-a1", "r-a2", "r-b"]).await;
    for (queue, key) in [("r-a1", "a"), ("r-a2", "a"), ("r-b", "b"), ("r-b", "a.b")] {
        channel
            .queue_bind(queue, "router", key, FieldTable::new())
            .await
            .unwrap();
    }
    publish_all(&channel, "router", "a", ["to a"]).await;
    publish_all(&channel, "router", "A", ["case matters"]).await;
    publish_all(&channel, "router", "a.b", ["to a.b"]).await;
    assert_eq!(counts(&channel, "r-a1").await, (1, 0));
    assert_eq!(counts(&channel, "r-a2").await, (1, 0));
    assert_eq!(counts(&channel, "r-b").await, (1, 0));
    let got = channel.basic_get("r-b", true).await.unwrap().unwrap();
    assert_eq!(&got.body[..], b"to a.b");
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_fans_out_to_ten_bound_queues() {
    let broker = TestBroker::start().await;
    let conn = connect_client(&broker.uri(), "a_message_fans_out_to_ten_bound_queues").await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .exchange_declare(
            "broadcast",
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
        )
        .await
        .unwrap();
    let queues: Vec<String> = (0..10).map(|i| format!("fan-{i}")).collect();
    for (i, queue) in queues.iter().enumerate() {
        channel
            .queue_declare(queue, QueueDeclareOptions::default())
            .await
            .unwrap();
        // The routing key does not matter to a fanout exchange.
        channel
            .queue_bind(queue, "broadcast", &format!("key-{i}"), FieldTable::new())
            .await
            .unwrap();
    }
    // The confirm comes only once all ten queues have the message.
    channel.confirm_select().await.unwrap();
    publish_all(&channel, "broadcast", "whatever", ["m0", "m1", "m2"]).await;
    for queue in &queues {
        assert_eq!(counts(&channel, queue).await, (3, 0), "{queue}");
        for expected in ["m0", "m1", "m2"] {
            let got = channel.basic_get(queue, true).await.unwrap().unwrap();
            assert_eq!(&got.body[..], expected.as_bytes(), "{queue}");
            assert_eq!(got.exchange.as_str(), "broadcast");
            assert_eq!(got.routing_key.as_str(), "whatever");
        }
    }
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_declare_no_wait_sends_no_reply() {
    let broker = TestBroker::start().await;
    let mut client =
        RawClient::connect(broker.addr(), "exchange_declare_no_wait_sends_no_reply").await;
    client.open_channel(1).await;
    client
        .send(Frame::method(
            1,
            ExchangeDeclare {
                exchange: "silent".into(),
                kind: "fanout".into(),
                no_wait: true,
                ..Default::default()
            },
        ))
        .await;
    let reply = client
        .call(
            1,
            ExchangeDeclare {
                exchange: "silent".into(),
                kind: "fanout".into(),
                passive: true,
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(reply, Method::ExchangeDeclareOk(_)), "{reply:?}");
    let reply = client.call(1, warren_codec::BasicQos::default()).await;
    assert!(matches!(reply, Method::BasicQosOk(_)), "{reply:?}");
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_exchange_routes_by_word_patterns() {
    let broker = TestBroker::start().await;
    let conn = connect_client(&broker.uri(), "topic_exchange_routes_by_word_patterns").await;
    let channel = conn.open_channel().await.unwrap();
    channel
        .exchange_declare("logs.topic", ExchangeKind::Topic, Default::default())
        .await
        .unwrap();
    for (queue, pattern) in [
        ("all", "#"),
        ("errors", "*.error"),
        ("kernel", "kernel.#"),
        ("exact", "kernel.error"),
    ] {
        channel
            .queue_declare(queue, QueueDeclareOptions::default())
            .await
            .unwrap();
        channel
            .queue_bind(queue, "logs.topic", pattern, FieldTable::new())
            .await
            .unwrap();
    }
    for key in ["kernel.error", "app.error", "kernel", "app.info.debug", ""] {
        publish_all(&channel, "logs.topic", key, ["m"]).await;
    }
    assert_eq!(counts(&channel, "all").await, (5, 0));
    assert_eq!(counts(&channel, "errors").await, (2, 0));
    assert_eq!(counts(&channel, "kernel").await, (2, 0));
    assert_eq!(counts(&channel, "exact").await, (1, 0));
    // amq.topic is predeclared.
    channel
        .queue_bind("exact", "amq.topic", "a.*", FieldTable::new())
        .await
        .unwrap();
    publish_all(&channel, "amq.topic", "a.b", ["m"]).await;
    assert_eq!(counts(&channel, "exact").await, (2, 0));
    conn.close().await.unwrap();
    broker.stop().await;
}
