//! The management HTTP API and metrics over real HTTP: basic auth by broker users,
//! RabbitMQ-shaped queue depth after known traffic, and Prometheus text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};

use common::{TestBroker, connect_lapin, http_get as get, lapin_publish, lapin_table, within};

#[tokio::test]
async fn queue_depth_is_reported_as_rabbitmq_shapes_it() {
    let broker = TestBroker::start().await;
    let api = broker.management_addr();
    let connection = connect_lapin(&broker.uri(), "management").await.unwrap();
    let ch = connection.create_channel().await.unwrap();
    let args = lapin_table(&[("x-max-length", AMQPValue::LongInt(100))]);
    ch.queue_declare("orders".into(), QueueDeclareOptions::default(), args)
        .await
        .unwrap();
    ch.queue_declare(
        "empty".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    for body in [b"1", b"2", b"3"] {
        lapin_publish(&ch, "", "orders", body).await;
    }
    // One of the three out with a consumer, unacked.
    let taken = within(
        "basic.get",
        ch.basic_get("orders".into(), BasicGetOptions::default()),
    )
    .await
    .unwrap();
    assert!(taken.is_some());

    let (status, body) = get(api, "/api/queues/%2F/orders", Some("guest:guest")).await;
    assert_eq!(status, 200, "{body}");
    let queue: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(queue["name"], "orders");
    assert_eq!(queue["vhost"], "/");
    assert_eq!(queue["messages"], 3);
    assert_eq!(queue["messages_ready"], 2);
    assert_eq!(queue["messages_unacknowledged"], 1);
    assert_eq!(queue["consumers"], 0);
    assert_eq!(queue["arguments"]["x-max-length"], 100);

    let (status, body) = get(api, "/api/queues", Some("guest:guest")).await;
    assert_eq!(status, 200);
    let names: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&body)
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["empty", "orders"]);

    let (status, body) = get(api, "/api/overview", Some("guest:guest")).await;
    assert_eq!(status, 200);
    let overview: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(overview["product_name"], "warren");
    assert_eq!(overview["queue_totals"]["messages_ready"], 2);
    assert_eq!(overview["object_totals"]["queues"], 2);
    assert_eq!(overview["object_totals"]["connections"], 1);

    let (status, _) = get(api, "/api/queues/%2F/missing", Some("guest:guest")).await;
    assert_eq!(status, 404);
    let (status, metrics) = get(api, "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("warren_queue_messages_ready{vhost=\"/\",queue=\"orders\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("warren_queue_messages_unacked{vhost=\"/\",queue=\"orders\"} 1"));
    assert!(metrics.contains("warren_connections 1"));
    drop(connection);
    broker.stop().await;
}

#[tokio::test]
async fn exchanges_and_bindings_are_listed() {
    let broker = TestBroker::start().await;
    let api = broker.management_addr();
    let connection = connect_lapin(&broker.uri(), "management topology")
        .await
        .unwrap();
    let ch = connection.create_channel().await.unwrap();
    ch.exchange_declare(
        "logs".into(),
        lapin::ExchangeKind::Topic,
        lapin::options::ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_declare(
        "errors".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        "errors".into(),
        "logs".into(),
        "*.error".into(),
        lapin::options::QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();

    let (status, body) = get(api, "/api/exchanges/%2F", Some("guest:guest")).await;
    assert_eq!(status, 200);
    let exchanges: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let logs = exchanges.iter().find(|x| x["name"] == "logs").unwrap();
    assert_eq!(
        (&logs["type"], &logs["durable"]),
        (&"topic".into(), &false.into())
    );
    assert!(exchanges.iter().any(|x| x["name"] == "amq.topic"));
    assert!(exchanges.iter().any(|x| x["name"] == ""));

    let (status, body) = get(api, "/api/bindings/%2F", Some("guest:guest")).await;
    assert_eq!(status, 200);
    let bindings: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let shapes: Vec<(String, String, String)> = bindings
        .iter()
        .map(|b| {
            let s = |k: &str| b[k].as_str().unwrap().to_owned();
            (s("source"), s("destination"), s("routing_key"))
        })
        .collect();
    assert_eq!(
        shapes,
        [
            ("".into(), "errors".into(), "errors".into()),
            ("logs".into(), "errors".into(), "*.error".into())
        ]
    );
    assert_eq!(
        get(api, "/api/bindings/nowhere", Some("guest:guest"))
            .await
            .0,
        404
    );
    drop(connection);
    broker.stop().await;
}

#[tokio::test]
async fn the_api_needs_a_broker_user() {
    let broker = TestBroker::start().await;
    let api = broker.management_addr();
    assert_eq!(get(api, "/api/overview", None).await.0, 401);
    assert_eq!(get(api, "/api/overview", Some("guest:wrong")).await.0, 401);
    assert_eq!(get(api, "/api/overview", Some("nobody:guest")).await.0, 401);
    assert_eq!(get(api, "/api/overview", Some("guest:guest")).await.0, 200);
    broker.stop().await;
}

#[tokio::test]
async fn open_connections_are_listed_with_their_names() {
    let broker = TestBroker::start().await;
    let api = broker.management_addr();
    let connection = connect_lapin(&broker.uri(), "billing-service")
        .await
        .unwrap();
    let (status, body) = get(api, "/api/connections", Some("guest:guest")).await;
    assert_eq!(status, 200);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["user"], "guest");
    assert_eq!(listed[0]["vhost"], "/");
    assert_eq!(listed[0]["user_provided_name"], "billing-service");
    assert!(listed[0]["name"].as_str().unwrap().contains(" -> "));
    let (_, body) = get(api, "/api/vhosts/%2F/connections", Some("guest:guest")).await;
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&body)
            .unwrap()
            .len(),
        1
    );
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn a_queue_shows_its_merged_policies_and_where_each_setting_came_from() {
    use warren_server::policy::{Overflow, Policy, PolicyDefinition};
    let policy = |name: &str, pattern: &str, priority, definition| Policy {
        vhost: "/".into(),
        name: name.into(),
        pattern: glob::Pattern::new(pattern).unwrap(),
        priority,
        definition,
    };
    let mut config = TestBroker::config();
    config.policies = vec![
        policy(
            "dlx",
            "*",
            0,
            PolicyDefinition {
                dead_letter_exchange: Some("dead".into()),
                max_length: Some(100),
                ..Default::default()
            },
        ),
        policy(
            "orders-limit",
            "orders.*",
            10,
            PolicyDefinition {
                max_length: Some(5),
                overflow: Some(Overflow::RejectPublish),
                ..Default::default()
            },
        ),
    ];
    let broker = TestBroker::start_with(config).await;
    let connection = connect_lapin(&broker.uri(), "policies_api").await.unwrap();
    let ch = connection.create_channel().await.unwrap();
    ch.queue_declare(
        "orders.new".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let (status, body) = get(
        broker.management_addr(),
        "/api/queues/%2F/orders.new",
        Some("guest:guest"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let queue: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(queue["policy"], "orders-limit");
    assert_eq!(
        queue["policies"],
        serde_json::json!(["orders-limit", "dlx"])
    );
    assert_eq!(
        queue["effective_policy_definition"],
        serde_json::json!({
            "max-length": 5,
            "overflow": "reject-publish",
            "dead-letter-exchange": "dead",
        })
    );
    assert_eq!(
        queue["policy_sources"],
        serde_json::json!({
            "max-length": "orders-limit",
            "overflow": "orders-limit",
            "dead-letter-exchange": "dlx",
        })
    );
    drop(connection);
    broker.stop().await;
}
