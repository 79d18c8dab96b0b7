//! What the management API changes, over real HTTP against the real broker: peek
//! (messages stay, unmarked), get that takes or dead-letters, purge, delete of queues
//! and exchanges with RabbitMQ's status codes, permissions, and redrive of a
//! dead-letter queue back to the queues its messages died in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};
use warren_client::{BasicProperties, QueueDeclareOptions};
use warren_server::config::{PermissionConfig, UserConfig};

use common::{
    TestBroker, connect_client, counts, http_get, http_request, publish_all, until_ready,
};

const GUEST: Option<&str> = Some("guest:guest");

async fn post(broker: &TestBroker, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = http_request(
        broker.management_addr(),
        "POST",
        path,
        GUEST,
        &body.to_string(),
    )
    .await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn delete(broker: &TestBroker, path: &str, credentials: Option<&str>) -> (u16, Value) {
    let (status, text) =
        http_request(broker.management_addr(), "DELETE", path, credentials, "").await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A confirming channel (publishes are enqueued when `publish_all` returns).
async fn channel(broker: &TestBroker) -> (warren_client::Connection, warren_client::Channel) {
    let connection = connect_client(&broker.uri(), "operations").await;
    let channel = connection.open_channel().await.unwrap();
    channel.confirm_select().await.unwrap();
    (connection, channel)
}

#[tokio::test]
async fn peek_shows_the_first_messages_and_leaves_them_unmarked() {
    let broker = TestBroker::start().await;
    let (_connection, ch) = channel(&broker).await;
    ch.queue_declare("orders", QueueDeclareOptions::default())
        .await
        .unwrap();
    let properties = BasicProperties {
        content_type: Some("text/plain".into()),
        message_id: Some("m-1".into()),
        ..Default::default()
    };
    let confirm = ch
        .basic_publish("", "orders", &b"first"[..], properties, Default::default())
        .await
        .unwrap();
    confirm.await.unwrap();
    publish_all(&ch, "", "orders", [&b"second"[..], &[0xff, 0x00][..]]).await;

    let request = json!({"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"});
    let (status, shown) = post(&broker, "/api/queues/%2F/orders/get", request).await;
    assert_eq!(status, 200, "{shown}");
    let shown = shown.as_array().unwrap();
    assert_eq!(shown.len(), 3);
    assert_eq!(shown[0]["payload"], "first");
    assert_eq!(shown[0]["payload_encoding"], "string");
    assert_eq!(shown[0]["routing_key"], "orders");
    assert_eq!(shown[0]["redelivered"], false);
    assert_eq!(shown[0]["message_count"], 2);
    assert_eq!(
        shown[0]["properties"],
        json!({"content_type": "text/plain", "message_id": "m-1"})
    );
    assert_eq!(shown[1]["payload"], "second");
    // Not UTF-8: base64.
    assert_eq!(shown[2]["payload"], "/wA=");
    assert_eq!(shown[2]["payload_encoding"], "base64");
    assert_eq!(shown[2]["message_count"], 0);

    // Still there, in order, and never delivered.
    assert_eq!(counts(&ch, "orders").await.0, 3);
    let first = ch.basic_get("orders", true).await.unwrap().unwrap();
    assert_eq!(&first.body[..], b"first");
    assert!(!first.redelivered);

    let truncated = json!({"count": 1, "ackmode": "reject_requeue_true", "truncate": 3});
    let (_, shown) = post(&broker, "/api/queues/%2F/orders/get", truncated).await;
    assert_eq!(shown[0]["payload"], "sec");
    assert_eq!(shown[0]["payload_bytes"], 6);
}

#[tokio::test]
async fn get_without_requeue_takes_or_dead_letters() {
    let broker = TestBroker::start().await;
    let (_connection, ch) = channel(&broker).await;
    ch.queue_declare("dead", QueueDeclareOptions::default())
        .await
        .unwrap();
    let options = QueueDeclareOptions {
        dead_letter_exchange: Some(String::new()),
        dead_letter_routing_key: Some("dead".into()),
        ..Default::default()
    };
    ch.queue_declare("work", options).await.unwrap();
    publish_all(&ch, "", "work", [&b"a"[..], b"b", b"c"]).await;

    let take = json!({"count": 1, "ackmode": "ack_requeue_false"});
    let (status, taken) = post(&broker, "/api/queues/%2F/work/get", take).await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(taken[0]["payload"], "a");
    assert_eq!(taken[0]["message_count"], 2);
    let reject = json!({"count": 1, "ackmode": "reject_requeue_false"});
    let (_, rejected) = post(&broker, "/api/queues/%2F/work/get", reject).await;
    assert_eq!(rejected[0]["payload"], "b");
    assert_eq!(counts(&ch, "work").await.0, 1);
    until_ready(&ch, "dead", 1).await;
    let dead = ch.basic_get("dead", true).await.unwrap().unwrap();
    assert_eq!(&dead.body[..], b"b");

    let bad = json!({"count": 1, "ackmode": "sometimes"});
    let (status, body) = post(&broker, "/api/queues/%2F/work/get", bad).await;
    assert_eq!(status, 400);
    assert!(
        body["reason"].as_str().unwrap().contains("ackmode"),
        "{body}"
    );
    let missing = json!({"count": 1, "ackmode": "ack_requeue_true"});
    let (status, _) = post(&broker, "/api/queues/%2F/nowhere/get", missing).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn purge_and_delete_answer_as_rabbitmq() {
    let broker = TestBroker::start().await;
    let (_connection, ch) = channel(&broker).await;
    ch.queue_declare("full", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&ch, "", "full", [&b"1"[..], b"2", b"3"]).await;

    let (status, body) = delete(&broker, "/api/queues/%2F/full?if-empty=true", GUEST).await;
    assert_eq!(status, 400);
    assert!(
        body["reason"].as_str().unwrap().contains("not empty"),
        "{body}"
    );
    let (status, body) = delete(&broker, "/api/queues/%2F/full/contents", GUEST).await;
    assert_eq!((status, &body["message_count"]), (200, &json!(3)));
    assert_eq!(counts(&ch, "full").await.0, 0);
    let (status, _) = delete(&broker, "/api/queues/%2F/full?if-empty=true", GUEST).await;
    assert_eq!(status, 200);
    let (status, _) = http_get(broker.management_addr(), "/api/queues/%2F/full", GUEST).await;
    assert_eq!(status, 404);
    let (status, _) = delete(&broker, "/api/queues/%2F/full", GUEST).await;
    assert_eq!(status, 404);

    ch.exchange_declare(
        "events",
        warren_client::ExchangeKind::Fanout,
        Default::default(),
    )
    .await
    .unwrap();
    let (status, _) = delete(&broker, "/api/exchanges/%2F/events", GUEST).await;
    assert_eq!(status, 200);
    let (status, _) = delete(&broker, "/api/exchanges/%2F/events", GUEST).await;
    assert_eq!(status, 404);
    let (status, _) = delete(&broker, "/api/exchanges/%2F/amq.direct", GUEST).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn changes_need_the_users_permissions() {
    let mut config = TestBroker::config();
    config.users.push(UserConfig {
        name: "reader".into(),
        password_hash: warren_server::auth::PasswordHash::compute([9, 9, 9, 9], b"pw"),
        loopback_only: false,
    });
    config.permissions.push(PermissionConfig {
        user: "reader".into(),
        vhost: "/".into(),
        permissions: warren_server::auth::Permissions {
            configure: warren_server::auth::ResourcePattern::nothing(),
            write: warren_server::auth::ResourcePattern::nothing(),
            read: warren_server::auth::ResourcePattern::everything(),
        },
    });
    let broker = TestBroker::start_with(config).await;
    let (_connection, ch) = channel(&broker).await;
    ch.queue_declare("kept", QueueDeclareOptions::default())
        .await
        .unwrap();
    let (status, body) = delete(&broker, "/api/queues/%2F/kept", Some("reader:pw")).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = delete(&broker, "/api/queues/%2F/kept", Some("reader:wrong")).await;
    assert_eq!(status, 401);
    // Reading is allowed: purge is a read, as over AMQP.
    let (status, _) = delete(&broker, "/api/queues/%2F/kept/contents", Some("reader:pw")).await;
    assert_eq!(status, 200);
    assert_eq!(counts(&ch, "kept").await, (0, 0));
}

#[tokio::test]
async fn redrive_returns_dead_letters_to_the_queues_they_died_in() {
    let broker = TestBroker::start().await;
    let (_connection, ch) = channel(&broker).await;
    ch.queue_declare("orders.dlq", QueueDeclareOptions::default())
        .await
        .unwrap();
    for queue in ["orders", "payments"] {
        let options = QueueDeclareOptions {
            dead_letter_exchange: Some(String::new()),
            dead_letter_routing_key: Some("orders.dlq".into()),
            ..Default::default()
        };
        ch.queue_declare(queue, options).await.unwrap();
    }
    publish_all(&ch, "", "orders", [&b"o1"[..], b"o2", b"o3"]).await;
    publish_all(&ch, "", "payments", [&b"p1"[..]]).await;
    // Two orders and the payment fail for good.
    for (queue, n) in [("orders", 2), ("payments", 1)] {
        for _ in 0..n {
            let d = ch.basic_get(queue, false).await.unwrap().unwrap();
            ch.basic_reject(d.delivery_tag, false).await.unwrap();
        }
    }
    until_ready(&ch, "orders.dlq", 3).await;
    // One message that never died sits in the DLQ too.
    publish_all(&ch, "", "orders.dlq", [&b"stray"[..]]).await;

    let (status, done) = post(&broker, "/api/queues/%2F/orders.dlq/redrive", Value::Null).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done,
        json!({"moved": 3, "to": {"orders": 2, "payments": 1}, "kept": 1})
    );
    assert_eq!(counts(&ch, "orders.dlq").await.0, 1);
    until_ready(&ch, "orders", 3).await;
    let mut orders = Vec::new();
    while let Some(d) = ch.basic_get("orders", true).await.unwrap() {
        // The history stays with the message.
        let headers = d.properties.headers.clone().unwrap_or_default();
        orders.push((
            String::from_utf8_lossy(&d.body).into_owned(),
            headers.get("x-death").is_some(),
        ));
    }
    assert_eq!(
        orders,
        [
            ("o3".into(), false),
            ("o1".into(), true),
            ("o2".into(), true)
        ]
    );
    let payment = ch.basic_get("payments", true).await.unwrap().unwrap();
    assert_eq!(&payment.body[..], b"p1");
    let stray = ch.basic_get("orders.dlq", true).await.unwrap().unwrap();
    assert_eq!(&stray.body[..], b"stray");
}

#[tokio::test]
async fn definitions_are_exported_as_rabbitmq_shapes_them() {
    let mut config = TestBroker::config();
    config.queues.push(warren_server::config::QueueConfig {
        vhost: "/".into(),
        name: "declared".into(),
        durable: true,
        auto_delete: false,
        arguments: Default::default(),
    });
    config.policies.push(warren_server::policy::Policy {
        vhost: "/".into(),
        name: "limits".into(),
        pattern: glob::Pattern::new("orders.*").unwrap(),
        priority: 3,
        definition: warren_server::policy::PolicyDefinition {
            max_length: Some(10),
            ..Default::default()
        },
    });
    let broker = TestBroker::start_with(config).await;
    let (_connection, ch) = channel(&broker).await;
    let options = QueueDeclareOptions {
        max_length: Some(5),
        ..Default::default()
    };
    ch.queue_declare("orders.new", options).await.unwrap();
    ch.queue_declare(
        "mine",
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let (status, body) = http_get(broker.management_addr(), "/api/definitions", GUEST).await;
    assert_eq!(status, 200, "{body}");
    let d: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["users"][0]["name"], "guest");
    assert_eq!(
        d["users"][0]["hashing_algorithm"],
        "rabbit_password_hashing_sha256"
    );
    assert_eq!(d["vhosts"], json!([{"name": "/"}]));
    assert_eq!(
        d["permissions"][0],
        json!({"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"})
    );
    assert_eq!(
        d["policies"],
        json!([{"vhost": "/", "name": "limits", "pattern": "^orders\\..*$",
                "apply-to": "queues", "priority": 3, "definition": {"max-length": 10}}])
    );
    // Exclusive queues die with their connection: not exported.
    let queues: Vec<(&str, bool)> = d["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["name"].as_str().unwrap(), q["from_config"] == true))
        .collect();
    assert_eq!(queues, [("declared", true), ("orders.new", false)]);
    assert_eq!(d["queues"][1]["arguments"], json!({"x-max-length": 5}));
    // Only what a vhost does not have anyway.
    assert_eq!(d["exchanges"], json!([]));
}

#[tokio::test]
async fn redrive_works_through_a_dead_letter_queue_larger_than_a_round() {
    let broker = TestBroker::start().await;
    let (_connection, ch) = channel(&broker).await;
    ch.queue_declare("big.dlq", QueueDeclareOptions::default())
        .await
        .unwrap();
    let options = QueueDeclareOptions {
        dead_letter_exchange: Some(String::new()),
        dead_letter_routing_key: Some("big.dlq".into()),
        ..Default::default()
    };
    ch.queue_declare("big", options).await.unwrap();
    // Messages expire at once (expiration "0") into the DLQ, among strays published
    // there directly: more of both than one redrive round looks at.
    let expiring = BasicProperties {
        expiration: Some("0".into()),
        ..Default::default()
    };
    let mut confirms = Vec::new();
    for i in 0..1500u32 {
        let body = i.to_string().into_bytes();
        let (queue, properties) = if i % 2 == 0 {
            ("big", expiring.clone())
        } else {
            ("big.dlq", BasicProperties::default())
        };
        let confirm = ch
            .basic_publish("", queue, body, properties, Default::default())
            .await
            .unwrap();
        confirms.push(confirm);
    }
    for confirm in confirms {
        confirm.await.unwrap();
    }
    until_ready(&ch, "big.dlq", 1500).await;

    let (status, done) = post(&broker, "/api/queues/%2F/big.dlq/redrive", Value::Null).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done, json!({"moved": 750, "to": {"big": 750}, "kept": 750}));
    until_ready(&ch, "big", 750).await;
    assert_eq!(counts(&ch, "big.dlq").await.0, 750);
    // The strays kept their order and were never counted as returned.
    let mut strays = Vec::new();
    while let Some(d) = ch.basic_get("big.dlq", true).await.unwrap() {
        assert!(!d.redelivered);
        assert!(
            d.properties
                .headers
                .is_none_or(|h| h.get("x-delivery-count").is_none())
        );
        strays.push(String::from_utf8_lossy(&d.body).parse::<u32>().unwrap());
    }
    let expected: Vec<u32> = (0..1500).filter(|i| i % 2 == 1).collect();
    assert_eq!(strays, expected);
}
