//! The management HTTP API and metrics over real HTTP: basic auth by broker users,
//! RabbitMQ-shaped queue depth, message counters, channels and consumers after known
//! traffic, the age of the oldest ready message, and Prometheus text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use warren_codec::{BasicProperties, Method};
use warren_server::config::Watermark;

use common::{
    RawClient, TestBroker, connect_lapin, http_get as get, lapin_consume, lapin_publish,
    lapin_table, lapin_text, next_lapin, publish_to, within,
};

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

/// A GET of JSON with the guest login.
async fn get_json(api: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = get(api, path, Some("guest:guest")).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `/metrics` until it has `line`, failing the test past the harness's wait.
async fn metrics_with(api: std::net::SocketAddr, line: &str) -> String {
    within(&format!("/metrics with {line:?}"), async {
        loop {
            let (status, metrics) = get(api, "/metrics", None).await;
            assert_eq!(status, 200);
            if metrics.lines().any(|l| l == line) {
                return metrics;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

/// Every `{name}_details` rate of a `message_stats` object, checked to be a number
/// that is not negative.
fn assert_rates(stats: &serde_json::Value, names: &[&str]) {
    for name in names {
        let rate = &stats[format!("{name}_details")]["rate"];
        assert!(rate.as_f64().is_some_and(|r| r >= 0.0), "{name}: {rate}");
    }
}

const QUEUE_STATS: [&str; 8] = [
    "publish",
    "deliver_get",
    "deliver",
    "deliver_no_ack",
    "get",
    "get_no_ack",
    "ack",
    "redeliver",
];

#[tokio::test]
async fn message_stats_channels_consumers_and_metrics_follow_the_traffic() {
    let broker = TestBroker::start().await;
    let api = broker.management_addr();
    let publisher = connect_lapin(&broker.uri(), "stats publisher")
        .await
        .unwrap();
    let pch = publisher.create_channel().await.unwrap();
    within("confirm.select", pch.confirm_select(Default::default()))
        .await
        .unwrap();
    for queue in ["idle", "work"] {
        pch.queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    let started = std::time::Instant::now();
    for n in 0..5 {
        lapin_publish(&pch, "", "work", format!("m{n}").as_bytes()).await;
    }
    // Routed nowhere: one dropped, one returned.
    lapin_publish(&pch, "amq.direct", "nowhere", b"dropped").await;
    let returned = within(
        "a mandatory basic.publish",
        pch.basic_publish(
            "amq.direct".into(),
            "nowhere".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"returned",
            lapin::BasicProperties::default(),
        ),
    )
    .await
    .unwrap();
    let confirmed = within("the returned message's confirm", returned)
        .await
        .unwrap();
    assert!(matches!(confirmed, lapin::Confirmation::Ack(Some(_))));

    let consuming = connect_lapin(&broker.uri(), "stats consumer")
        .await
        .unwrap();
    let cch = consuming.create_channel().await.unwrap();
    cch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut consumer = lapin_consume(&cch, "work", false).await;
    // With a prefetch of 1 each delivery waits for the last one's ack: after the
    // redelivery arrives, the queue has handled everything before it.
    for _ in 0..3 {
        let delivery = next_lapin(&mut consumer).await;
        assert!(!delivery.redelivered);
        delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .unwrap();
    }
    let fourth = next_lapin(&mut consumer).await;
    fourth
        .acker
        .reject(BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    let again = next_lapin(&mut consumer).await;
    assert!(again.redelivered);
    assert_eq!(again.data, fourth.data);

    let queue = get_json(api, "/api/queues/%2F/work").await;
    assert_eq!(
        (&queue["messages_ready"], &queue["messages_unacknowledged"]),
        (&1.into(), &1.into())
    );
    let stats = &queue["message_stats"];
    let counts: Vec<u64> = QUEUE_STATS
        .iter()
        .map(|name| stats[name].as_u64().unwrap())
        .collect();
    // publish, deliver_get, deliver, deliver_no_ack, get, get_no_ack, ack, redeliver
    assert_eq!(counts, [5, 5, 5, 0, 0, 0, 3, 1], "{stats}");
    assert_rates(stats, &QUEUE_STATS);
    let age = queue["oldest_message_age_seconds"].as_f64().unwrap();
    assert!(
        age >= 0.0 && age <= started.elapsed().as_secs_f64() + 0.05,
        "{age}"
    );
    let idle = get_json(api, "/api/queues/%2F/idle").await;
    assert_eq!(idle["oldest_message_age_seconds"], 0.0);
    assert_eq!(idle["message_stats"]["publish"], 0);
    assert_rates(&idle["message_stats"], &QUEUE_STATS);

    let overview = get_json(api, "/api/overview").await;
    let totals = &overview["message_stats"];
    assert_eq!(totals["publish"], 5);
    assert_eq!(totals["deliver_get"], 5);
    assert_eq!(totals["ack"], 3);
    assert_eq!(totals["redeliver"], 1);
    assert_eq!(totals["return_unroutable"], 1);
    assert_eq!(totals["drop_unroutable"], 1);
    assert_eq!(totals["reject_unroutable"], 0);
    assert_rates(totals, &QUEUE_STATS);
    assert_rates(totals, &["return_unroutable", "drop_unroutable"]);
    assert_eq!(overview["object_totals"]["channels"], 2);
    assert_eq!(overview["object_totals"]["consumers"], 1);

    // Channels: the consumer's and the publisher's, named after their connections.
    let connections = get_json(api, "/api/connections").await;
    let connection_name = |wanted: &str| {
        connections
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["user_provided_name"] == wanted)
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let (consumer_connection, publisher_connection) = (
        connection_name("stats consumer"),
        connection_name("stats publisher"),
    );
    let channels = get_json(api, "/api/channels").await;
    let channels = channels.as_array().unwrap();
    assert_eq!(channels.len(), 2, "{channels:?}");
    let channel = |connection: &str| {
        channels
            .iter()
            .find(|c| c["connection_details"]["name"] == connection)
            .unwrap()
    };
    let consuming_channel = channel(&consumer_connection);
    assert_eq!(
        consuming_channel["name"],
        format!("{consumer_connection} (1)")
    );
    assert_eq!(consuming_channel["number"], 1);
    assert_eq!(consuming_channel["vhost"], "/");
    assert_eq!(consuming_channel["user"], "guest");
    assert_eq!(consuming_channel["consumer_count"], 1);
    assert_eq!(consuming_channel["messages_unacknowledged"], 1);
    assert_eq!(consuming_channel["prefetch_count"], 1);
    assert_eq!(consuming_channel["confirm"], false);
    assert_eq!(consuming_channel["transactional"], false);
    assert_eq!(
        consuming_channel["connection_details"]["peer_host"],
        "127.0.0.1"
    );
    assert!(consuming_channel["connection_details"]["peer_port"].is_u64());
    let publishing_channel = channel(&publisher_connection);
    assert_eq!(publishing_channel["confirm"], true);
    assert_eq!(publishing_channel["consumer_count"], 0);
    assert_eq!(publishing_channel["messages_unacknowledged"], 0);
    assert_eq!(
        get_json(api, "/api/vhosts/%2F/channels")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let consumers = get_json(api, "/api/consumers").await;
    assert_eq!(consumers.as_array().unwrap().len(), 1, "{consumers}");
    let listed = &consumers[0];
    assert_eq!(listed["consumer_tag"], consumer.tag().as_str());
    assert_eq!(
        listed["queue"],
        serde_json::json!({"name": "work", "vhost": "/"})
    );
    let details = &listed["channel_details"];
    assert_eq!(details["name"], format!("{consumer_connection} (1)"));
    assert_eq!(details["number"], 1);
    assert_eq!(details["connection_name"], consumer_connection);
    assert_eq!(details["peer_host"], "127.0.0.1");
    assert_eq!(listed["ack_required"], true);
    assert_eq!(listed["prefetch_count"], 1);
    assert_eq!(listed["exclusive"], false);
    assert_eq!(listed["active"], true);
    assert_eq!(listed["arguments"], serde_json::json!({}));
    assert_eq!(get_json(api, "/api/consumers/%2F").await, consumers);
    assert_eq!(
        get(api, "/api/consumers/nowhere", Some("guest:guest"))
            .await
            .0,
        404
    );

    let (status, metrics) = get(api, "/metrics", None).await;
    assert_eq!(status, 200);
    let work = "{vhost=\"/\",queue=\"work\"}";
    for line in [
        format!("warren_queue_messages_published_total{work} 5"),
        format!("warren_queue_messages_delivered_total{work} 5"),
        format!("warren_queue_messages_acked_total{work} 3"),
        format!("warren_queue_messages_redelivered_total{work} 1"),
        "warren_queue_messages_dead_lettered_total{vhost=\"/\",queue=\"work\",reason=\"rejected\"} 0"
            .into(),
        "warren_queue_oldest_message_age_seconds{vhost=\"/\",queue=\"idle\"} 0".into(),
        "warren_unroutable_messages_total{outcome=\"returned\"} 1".into(),
        "warren_unroutable_messages_total{outcome=\"dropped\"} 1".into(),
        "warren_unroutable_messages_total{outcome=\"rejected\"} 0".into(),
        "warren_connections 2".into(),
        "warren_channels 2".into(),
        "warren_blocked_connections 0".into(),
        "# TYPE warren_queue_messages_published_total counter".into(),
        "# TYPE warren_queue_oldest_message_age_seconds gauge".into(),
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line:?} in\n{metrics}");
    }
    let gauge = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map(|v| v.parse::<f64>().unwrap())
    };
    let age = gauge(&format!("warren_queue_oldest_message_age_seconds{work}")).unwrap();
    assert!(age >= 0.0 && age <= started.elapsed().as_secs_f64() + 0.05);
    assert!(gauge("warren_process_resident_memory_bytes").is_some_and(|rss| rss > 0.0));
    assert!(gauge("warren_disk_free_bytes").is_some_and(|free| free > 0.0));

    consuming.close(200, "bye".into()).await.unwrap();
    publisher.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn dead_lettered_messages_are_counted_by_reason() {
    let broker = TestBroker::start().await;
    let api = broker.management_addr();
    let connection = connect_lapin(&broker.uri(), "dead letters").await.unwrap();
    let ch = connection.create_channel().await.unwrap();
    within("confirm.select", ch.confirm_select(Default::default()))
        .await
        .unwrap();
    ch.queue_declare(
        "dlq".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let args = lapin_table(&[
        ("x-max-length", AMQPValue::LongInt(1)),
        ("x-dead-letter-exchange", lapin_text("")),
        ("x-dead-letter-routing-key", lapin_text("dlq")),
    ]);
    ch.queue_declare("source".into(), QueueDeclareOptions::default(), args)
        .await
        .unwrap();
    // The second pushes the first out (maxlen); the second is then rejected.
    lapin_publish(&ch, "", "source", b"first").await;
    lapin_publish(&ch, "", "source", b"second").await;
    let taken = within(
        "basic.get",
        ch.basic_get("source".into(), BasicGetOptions::default()),
    )
    .await
    .unwrap()
    .unwrap();
    taken
        .delivery
        .acker
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    // Both reach the dead-letter queue, handed over asynchronously.
    let metrics = metrics_with(
        api,
        "warren_queue_messages_published_total{vhost=\"/\",queue=\"dlq\"} 2",
    )
    .await;
    let source = "vhost=\"/\",queue=\"source\"";
    for (reason, n) in [
        ("rejected", 1),
        ("expired", 0),
        ("maxlen", 1),
        ("delivery_limit", 0),
    ] {
        let line = format!(
            "warren_queue_messages_dead_lettered_total{{{source},reason=\"{reason}\"}} {n}"
        );
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    let queue = get_json(api, "/api/queues/%2F/source").await;
    assert_eq!(queue["message_stats"]["publish"], 2);
    assert_eq!(queue["message_stats"]["get"], 1);
    assert_eq!(queue["message_stats"]["deliver_get"], 1);
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_held_back_by_the_alarm_counts_as_blocked_until_unblocked() {
    const BODY: usize = 64 * 1024;
    let mut config = TestBroker::config();
    // Four 64 KiB messages are over it.
    config.limits.memory_high_watermark = Watermark::Bytes(4 * BODY as u64);
    let broker = TestBroker::start_with(config).await;
    let api = broker.management_addr();
    let mut publisher = RawClient::connect(broker.addr(), "blocked publisher").await;
    publisher.open_channel(1).await;
    publisher.declare_queue(1, "flood").await;
    let body = vec![7u8; BODY];
    for _ in 0..8 {
        publisher
            .publish(
                1,
                publish_to("", "flood"),
                BasicProperties::default(),
                &body,
                0,
            )
            .await;
    }
    match publisher.recv_method().await {
        (0, Method::ConnectionBlocked(_)) => {}
        other => panic!("expected connection.blocked, got {other:?}"),
    }
    // Counted before connection.blocked went out.
    let (_, metrics) = get(api, "/metrics", None).await;
    for line in ["warren_blocked_connections 1", "warren_resource_alarm 1"] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    // Draining clears the alarm; the publisher is read again and sends the rest.
    let draining = connect_lapin(&broker.uri(), "draining").await.unwrap();
    let ch = draining.create_channel().await.unwrap();
    let mut consumer = lapin_consume(&ch, "flood", true).await;
    for _ in 0..8 {
        assert_eq!(next_lapin(&mut consumer).await.data.len(), BODY);
    }
    match publisher.recv_method().await {
        (0, Method::ConnectionUnblocked(_)) => {}
        other => panic!("expected connection.unblocked, got {other:?}"),
    }
    // Uncounted when unblocked (polled: the last messages may block it once more).
    metrics_with(api, "warren_blocked_connections 0").await;
    draining.close(200, "bye".into()).await.unwrap();
    publisher.close().await;
    broker.stop().await;
}

#[tokio::test]
async fn a_recovered_message_keeps_its_enqueue_time_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(TestBroker::config(), dir.path()).await;
    let connection = connect_lapin(&broker.uri(), "before the restart")
        .await
        .unwrap();
    let ch = connection.create_channel().await.unwrap();
    within("confirm.select", ch.confirm_select(Default::default()))
        .await
        .unwrap();
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare("kept".into(), durable, FieldTable::default())
        .await
        .unwrap();
    let confirm = within(
        "basic.publish",
        ch.basic_publish(
            "".into(),
            "kept".into(),
            BasicPublishOptions::default(),
            b"persistent",
            lapin::BasicProperties::default().with_delivery_mode(2),
        ),
    )
    .await
    .unwrap();
    within("the confirm", confirm).await.unwrap();
    let confirmed = std::time::Instant::now();
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;

    // Recovered (its body paged out until wanted): still as old as it is.
    let broker = TestBroker::start_in(TestBroker::config(), dir.path()).await;
    let at_least = confirmed.elapsed().as_secs_f64();
    let queue = get_json(broker.management_addr(), "/api/queues/%2F/kept").await;
    assert_eq!(queue["messages_ready"], 1);
    let age = queue["oldest_message_age_seconds"].as_f64().unwrap();
    // Millisecond timestamps, rounded down on both ends.
    assert!(age > 0.0 && age + 0.002 >= at_least, "{age} < {at_least}");
    // Counters start over with the queue's task, as RabbitMQ's do.
    assert_eq!(queue["message_stats"]["publish"], 0);
    broker.stop().await;
}

#[tokio::test]
async fn recent_depths_are_returned_for_lengths_age_as_rabbitmq_does() {
    let mut config = TestBroker::config();
    config.queues.push(warren_server::config::QueueConfig {
        vhost: "/".into(),
        name: "charted".into(),
        durable: false,
        auto_delete: false,
        arguments: Default::default(),
    });
    let broker = TestBroker::start_with(config).await;
    let api = broker.management_addr();
    let plain = get_json(api, "/api/queues/%2F/charted").await;
    assert!(plain.get("messages_ready_details").is_none(), "{plain}");
    // The sampler reads every queue when it starts, then every 5 s.
    let samples = within("a depth sample of 'charted'", async {
        loop {
            let q = get_json(
                api,
                "/api/queues/%2F/charted?lengths_age=300&lengths_incr=5",
            )
            .await;
            let samples = q["messages_ready_details"]["samples"].clone();
            if samples.as_array().is_some_and(|s| !s.is_empty()) {
                break samples;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let first = &samples[0];
    assert_eq!(first["sample"], 0);
    let at = first["timestamp"].as_u64().unwrap();
    assert!(at <= now_ms && now_ms - at < 60_000, "{first}");
    let listed = get_json(api, "/api/queues?lengths_age=300").await;
    assert!(
        listed[0]["messages_ready_details"]["samples"].is_array(),
        "{listed}"
    );
}
