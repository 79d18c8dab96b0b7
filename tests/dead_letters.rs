//! Dead-lettering end to end with lapin: `x-dead-letter-exchange` and
//! `x-dead-letter-routing-key`, the `x-death` and first/last death headers a message
//! collects on each death (rejected, expired, maxlen, delivery_limit), the automatic
//! cycle rule, a dead-letter exchange that does not exist, and `x-delivery-limit`.
//!
//! Checked against RabbitMQ 3.10.8 (classic queues; quorum queues for
//! `x-delivery-limit`, which 3.10 honours only there). Where 3.10 differs from what
//! warren does, the test says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicRejectOptions, ConfirmSelectOptions,
    QueueBindOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, ExchangeKind};

use common::{
    TestBroker, connect_lapin, lapin_consume, lapin_counts, lapin_table, lapin_text, next_lapin,
    within,
};

fn texts(items: &[&str]) -> AMQPValue {
    AMQPValue::FieldArray(FieldArray::from(
        items.iter().map(|s| lapin_text(s)).collect::<Vec<_>>(),
    ))
}

/// Dead-letter arguments: through the default exchange straight to `queue`.
fn dead_letter_to(queue: &str) -> Vec<(&'static str, AMQPValue)> {
    vec![
        ("x-dead-letter-exchange", lapin_text("")),
        ("x-dead-letter-routing-key", lapin_text(queue)),
    ]
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn declare(channel: &Channel, queue: &str, arguments: FieldTable) {
    within(
        "queue.declare",
        channel.queue_declare(queue.into(), Default::default(), arguments),
    )
    .await
    .unwrap_or_else(|e| panic!("declare '{queue}': {e}"));
}

async fn exchange(channel: &Channel, name: &str, kind: ExchangeKind) {
    within(
        "exchange.declare",
        channel.exchange_declare(name.into(), kind, Default::default(), FieldTable::default()),
    )
    .await
    .unwrap_or_else(|e| panic!("declare exchange '{name}': {e}"));
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) {
    within(
        "queue.bind",
        channel.queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("bind '{queue}' to '{exchange}': {e}"));
}

/// Publishes one message (and waits for its confirm in confirm mode).
async fn publish(
    channel: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    properties: BasicProperties,
) {
    let confirm = within(
        "basic.publish",
        channel.basic_publish(
            exchange.into(),
            key.into(),
            Default::default(),
            body,
            properties,
        ),
    )
    .await
    .unwrap();
    within("a publisher confirm", confirm).await.unwrap();
}

/// The next message of `queue` by basic.get with manual ack; `None` if it is empty.
async fn get(channel: &Channel, queue: &str) -> Option<Delivery> {
    within(
        "basic.get",
        channel.basic_get(queue.into(), BasicGetOptions { no_ack: false }),
    )
    .await
    .unwrap_or_else(|e| panic!("basic.get '{queue}': {e}"))
    .map(|m| m.delivery)
}

async fn nack(delivery: &Delivery, requeue: bool) {
    delivery
        .acker
        .nack(BasicNackOptions {
            multiple: false,
            requeue,
        })
        .await
        .unwrap();
}

async fn reject(delivery: &Delivery, requeue: bool) {
    delivery
        .acker
        .reject(BasicRejectOptions { requeue })
        .await
        .unwrap();
}

fn headers(delivery: &Delivery) -> FieldTable {
    delivery.properties.headers().clone().unwrap_or_default()
}

fn string_value(value: &AMQPValue, what: &str) -> String {
    match value {
        AMQPValue::LongString(s) => String::from_utf8(s.as_bytes().to_vec()).unwrap(),
        other => panic!("{what} must be a long string, got {other:?}"),
    }
}

/// One `x-death` entry, its `time` checked apart.
#[derive(Debug, PartialEq)]
struct Death {
    count: i64,
    reason: String,
    queue: String,
    exchange: String,
    routing_keys: Vec<String>,
    original_expiration: Option<String>,
}

fn death(count: i64, reason: &str, queue: &str, exchange: &str, keys: &[&str]) -> Death {
    Death {
        count,
        reason: reason.into(),
        queue: queue.into(),
        exchange: exchange.into(),
        routing_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        original_expiration: None,
    }
}

/// The `x-death` entries of `headers`, newest first. Each must hold exactly RabbitMQ's
/// fields with RabbitMQ's types (`count` a signed 64-bit integer, `time` a timestamp
/// that lies between `since` and now, in seconds).
fn x_death(headers: &FieldTable, since: u64) -> Vec<Death> {
    let Some(AMQPValue::FieldArray(entries)) = headers.inner().get("x-death") else {
        panic!("no x-death array in {headers:?}");
    };
    let until = now_secs();
    entries
        .as_slice()
        .iter()
        .map(|entry| {
            let AMQPValue::FieldTable(entry) = entry else {
                panic!("an x-death entry must be a table, got {entry:?}");
            };
            let fields = entry.inner();
            let mut keys: Vec<&str> = fields.keys().map(ShortString::as_str).collect();
            keys.sort_unstable();
            let mut expected = vec![
                "count",
                "exchange",
                "queue",
                "reason",
                "routing-keys",
                "time",
            ];
            if fields.contains_key("original-expiration") {
                expected.push("original-expiration");
                expected.sort_unstable();
            }
            assert_eq!(keys, expected, "x-death entry {entry:?}");
            match fields.get("time") {
                Some(AMQPValue::Timestamp(t)) => {
                    assert!(
                        (since..=until).contains(t),
                        "time {t} not in {since}..={until}"
                    )
                }
                other => panic!("time must be a timestamp, got {other:?}"),
            }
            let count = match fields.get("count") {
                Some(AMQPValue::LongLongInt(n)) => *n,
                other => panic!("count must be a signed 64-bit integer, got {other:?}"),
            };
            let routing_keys = match fields.get("routing-keys") {
                Some(AMQPValue::FieldArray(keys)) => keys
                    .as_slice()
                    .iter()
                    .map(|k| string_value(k, "a routing key"))
                    .collect(),
                other => panic!("routing-keys must be an array, got {other:?}"),
            };
            let field = |name: &str| string_value(&fields[name], name);
            Death {
                count,
                reason: field("reason"),
                queue: field("queue"),
                exchange: field("exchange"),
                routing_keys,
                original_expiration: fields
                    .get("original-expiration")
                    .map(|v| string_value(v, "original-expiration")),
            }
        })
        .collect()
}

/// The `x-first-death-*` and `x-last-death-*` headers, sorted by name. (RabbitMQ 3.10
/// sets only `x-first-death-*`; `x-last-death-*` came with 3.13. Everything else these
/// tests check about the headers is as 3.10 does it.)
fn first_and_last(headers: &FieldTable) -> Vec<(String, String)> {
    headers
        .inner()
        .iter()
        .filter(|(k, _)| {
            k.as_str().starts_with("x-first-death-") || k.as_str().starts_with("x-last-death-")
        })
        .map(|(k, v)| (k.as_str().to_owned(), string_value(v, k.as_str())))
        .collect()
}

/// The expected `x-first-death-*` and `x-last-death-*` headers, sorted by name:
/// (reason, queue, exchange) of the first and of the last death.
fn expected_first_and_last(first: [&str; 3], last: [&str; 3]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (prefix, [reason, queue, exchange]) in [("x-first-death-", first), ("x-last-death-", last)]
    {
        for (field, value) in [("exchange", exchange), ("queue", queue), ("reason", reason)] {
            out.push((format!("{prefix}{field}"), value.to_owned()));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// x-death after each reason
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_message_is_dead_lettered_with_x_death_and_death_headers() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "rejected_message_is_dead_lettered_with_x_death_and_death_headers",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "dl.reject.dlq", FieldTable::default()).await;
    declare(
        &ch,
        "dl.reject.src",
        lapin_table(&dead_letter_to("dl.reject.dlq")),
    )
    .await;
    bind(&ch, "dl.reject.src", "amq.direct", "task").await;
    let since = now_secs();
    let mut app_headers = FieldTable::default();
    app_headers.insert("app".into(), lapin_text("kept"));
    let properties = BasicProperties::default()
        .with_headers(app_headers)
        .with_message_id("m-1".into());
    publish(&ch, "amq.direct", "task", b"job", properties).await;
    let taken = get(&ch, "dl.reject.src").await.expect("the message");
    let mut dlq = lapin_consume(&ch, "dl.reject.dlq", true).await;
    reject(&taken, false).await;

    let dead = next_lapin(&mut dlq).await;
    assert_eq!(dead.data, b"job");
    // Routed anew: through the dead-letter exchange with the dead-letter routing key.
    assert_eq!(
        (
            dead.exchange.as_str(),
            dead.routing_key.as_str(),
            dead.redelivered
        ),
        ("", "dl.reject.dlq", false)
    );
    assert_eq!(
        dead.properties
            .message_id()
            .as_ref()
            .map(ShortString::as_str),
        Some("m-1")
    );
    let h = headers(&dead);
    assert_eq!(
        x_death(&h, since),
        [death(
            1,
            "rejected",
            "dl.reject.src",
            "amq.direct",
            &["task"]
        )]
    );
    assert_eq!(h.inner().get("app"), Some(&lapin_text("kept")));
    let src = ["rejected", "dl.reject.src", "amq.direct"];
    assert_eq!(first_and_last(&h), expected_first_and_last(src, src));
    assert_eq!(lapin_counts(&ch, "dl.reject.src").await, (0, 0));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dead_letter_routing_key_the_original_keys_route_the_message() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "without_a_dead_letter_routing_key_the_original_keys_route_the_message",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    exchange(&ch, "dl.keys.dlx", ExchangeKind::Direct).await;
    declare(&ch, "dl.keys.dlq", FieldTable::default()).await;
    // Only the CC key leads from the dead-letter exchange to the dead-letter queue.
    bind(&ch, "dl.keys.dlq", "dl.keys.dlx", "audit").await;
    declare(
        &ch,
        "dl.keys.src",
        lapin_table(&[("x-dead-letter-exchange", lapin_text("dl.keys.dlx"))]),
    )
    .await;
    bind(&ch, "dl.keys.src", "amq.direct", "task").await;
    let since = now_secs();
    for body in [b"one", b"two"] {
        let mut cc = FieldTable::default();
        cc.insert("CC".into(), texts(&["audit"]));
        let properties = BasicProperties::default().with_headers(cc);
        publish(&ch, "amq.direct", "task", body, properties).await;
    }
    let _first = get(&ch, "dl.keys.src").await.expect("one");
    let second = get(&ch, "dl.keys.src").await.expect("two");
    let mut dlq = lapin_consume(&ch, "dl.keys.dlq", true).await;
    // nack multiple without requeue dead-letters both, oldest first.
    second
        .acker
        .nack(BasicNackOptions {
            multiple: true,
            requeue: false,
        })
        .await
        .unwrap();
    for body in [&b"one"[..], b"two"] {
        let dead = next_lapin(&mut dlq).await;
        assert_eq!(dead.data, body);
        assert_eq!(
            (dead.exchange.as_str(), dead.routing_key.as_str()),
            ("dl.keys.dlx", "task")
        );
        let h = headers(&dead);
        assert_eq!(
            x_death(&h, since),
            [death(
                1,
                "rejected",
                "dl.keys.src",
                "amq.direct",
                &["task", "audit"]
            )]
        );
        // Without a dead-letter routing key the CC header stays.
        assert_eq!(h.inner().get("CC"), Some(&texts(&["audit"])));
    }
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_message_is_dead_lettered_with_its_original_expiration() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "expired_message_is_dead_lettered_with_its_original_expiration",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "dl.expire.dlq", FieldTable::default()).await;
    declare(
        &ch,
        "dl.expire.src",
        lapin_table(&dead_letter_to("dl.expire.dlq")),
    )
    .await;
    let mut dlq = lapin_consume(&ch, "dl.expire.dlq", true).await;
    let since = now_secs();
    let properties = BasicProperties::default().with_expiration("50".into());
    publish(&ch, "", "dl.expire.src", b"stale", properties).await;

    // Nobody consumes the source queue: the message expires there on its own.
    let dead = next_lapin(&mut dlq).await;
    assert_eq!(dead.data, b"stale");
    // The expiration moves into x-death, so the message does not expire again.
    assert_eq!(dead.properties.expiration(), &None);
    let h = headers(&dead);
    let mut expected = death(1, "expired", "dl.expire.src", "", &["dl.expire.src"]);
    expected.original_expiration = Some("50".into());
    assert_eq!(x_death(&h, since), [expected]);
    let src = ["expired", "dl.expire.src", ""];
    assert_eq!(first_and_last(&h), expected_first_and_last(src, src));
    assert_eq!(lapin_counts(&ch, "dl.expire.src").await, (0, 0));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_dropped_by_max_length_is_dead_lettered_with_reason_maxlen() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "message_dropped_by_max_length_is_dead_lettered_with_reason_maxlen",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "dl.maxlen.dlq", FieldTable::default()).await;
    let mut arguments = dead_letter_to("dl.maxlen.dlq");
    arguments.push(("x-max-length", AMQPValue::LongInt(2)));
    declare(&ch, "dl.maxlen.src", lapin_table(&arguments)).await;
    let mut dlq = lapin_consume(&ch, "dl.maxlen.dlq", true).await;
    let since = now_secs();
    for body in [b"m1", b"m2", b"m3", b"m4"] {
        publish(&ch, "", "dl.maxlen.src", body, BasicProperties::default()).await;
    }
    for body in [b"m1", b"m2"] {
        let dead = next_lapin(&mut dlq).await;
        assert_eq!(dead.data, body);
        let h = headers(&dead);
        assert_eq!(
            x_death(&h, since),
            [death(1, "maxlen", "dl.maxlen.src", "", &["dl.maxlen.src"])]
        );
        let src = ["maxlen", "dl.maxlen.src", ""];
        assert_eq!(first_and_last(&h), expected_first_and_last(src, src));
    }
    for body in [b"m3", b"m4"] {
        assert_eq!(get(&ch, "dl.maxlen.src").await.unwrap().data, body);
    }
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Second deaths and cycles
// ---------------------------------------------------------------------------------------

/// A retry loop: rejected from `src` into `wait`, which lets it expire back into `src`.
/// The rejection in between makes the loop legitimate; each death at a queue for the
/// same reason counts up that entry and moves it to the front.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_death_at_the_same_queue_counts_up_its_x_death_entry() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "a_second_death_at_the_same_queue_counts_up_its_x_death_entry",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut wait_args = dead_letter_to("dl.retry.src");
    wait_args.push(("x-message-ttl", AMQPValue::LongInt(20)));
    declare(&ch, "dl.retry.wait", lapin_table(&wait_args)).await;
    declare(
        &ch,
        "dl.retry.src",
        lapin_table(&dead_letter_to("dl.retry.wait")),
    )
    .await;
    let mut src = lapin_consume(&ch, "dl.retry.src", false).await;
    let since = now_secs();
    publish(
        &ch,
        "",
        "dl.retry.src",
        b"retry me",
        BasicProperties::default(),
    )
    .await;

    let first = next_lapin(&mut src).await;
    assert_eq!(first.properties.headers(), &None);
    reject(&first, false).await;

    let second = next_lapin(&mut src).await;
    assert_eq!(second.data, b"retry me");
    // A dead-lettered message is a new message to src, not a redelivery.
    assert!(!second.redelivered);
    let h = headers(&second);
    assert_eq!(
        x_death(&h, since),
        [
            death(1, "expired", "dl.retry.wait", "", &["dl.retry.wait"]),
            death(1, "rejected", "dl.retry.src", "", &["dl.retry.src"]),
        ]
    );
    assert_eq!(
        first_and_last(&h),
        expected_first_and_last(
            ["rejected", "dl.retry.src", ""],
            ["expired", "dl.retry.wait", ""]
        )
    );
    reject(&second, false).await;

    let third = next_lapin(&mut src).await;
    let h = headers(&third);
    assert_eq!(
        x_death(&h, since),
        [
            death(2, "expired", "dl.retry.wait", "", &["dl.retry.wait"]),
            death(2, "rejected", "dl.retry.src", "", &["dl.retry.src"]),
        ]
    );
    // The first death stays the first.
    assert_eq!(
        first_and_last(&h),
        expected_first_and_last(
            ["rejected", "dl.retry.src", ""],
            ["expired", "dl.retry.wait", ""]
        )
    );
    third.acker.ack(BasicAckOptions::default()).await.unwrap();
    assert_eq!(lapin_counts(&ch, "dl.retry.wait").await, (0, 0));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

/// A message that expires back into the queue it expired from, with no rejection on
/// the way, would circle forever: that queue is left out, other targets still get it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_expiry_cycle_is_dropped() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(&broker.uri(), "an_automatic_expiry_cycle_is_dropped")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    exchange(&ch, "dl.cycle.fan", ExchangeKind::Fanout).await;
    declare(&ch, "dl.cycle.seen", FieldTable::default()).await;
    // Long enough that a copy put back into the queue is still there when counted.
    declare(
        &ch,
        "dl.cycle.q",
        lapin_table(&[
            ("x-message-ttl", AMQPValue::LongInt(500)),
            ("x-dead-letter-exchange", lapin_text("dl.cycle.fan")),
        ]),
    )
    .await;
    bind(&ch, "dl.cycle.q", "dl.cycle.fan", "").await;
    bind(&ch, "dl.cycle.seen", "dl.cycle.fan", "").await;
    let mut seen = lapin_consume(&ch, "dl.cycle.seen", true).await;
    let since = now_secs();
    publish(&ch, "", "dl.cycle.q", b"loop", BasicProperties::default()).await;

    let copy = next_lapin(&mut seen).await;
    assert_eq!(
        x_death(&headers(&copy), since),
        [death(1, "expired", "dl.cycle.q", "", &["dl.cycle.q"])]
    );
    // The fanout exchange routes to both queues; the source queue was left out.
    assert_eq!(lapin_counts(&ch, "dl.cycle.q").await, (0, 0));
    assert!(get(&ch, "dl.cycle.q").await.is_none());
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dead_letter_exchange_drops_the_message() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "a_missing_dead_letter_exchange_drops_the_message",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(
        &ch,
        "dl.missing.src",
        lapin_table(&[("x-dead-letter-exchange", lapin_text("dl.missing.nowhere"))]),
    )
    .await;
    publish(
        &ch,
        "",
        "dl.missing.src",
        b"lost",
        BasicProperties::default(),
    )
    .await;
    let taken = get(&ch, "dl.missing.src").await.expect("the message");
    reject(&taken, false).await;
    assert_eq!(lapin_counts(&ch, "dl.missing.src").await, (0, 0));
    assert!(get(&ch, "dl.missing.src").await.is_none());
    // The queue and the connection carry on.
    publish(
        &ch,
        "",
        "dl.missing.src",
        b"next",
        BasicProperties::default(),
    )
    .await;
    let next = get(&ch, "dl.missing.src").await.expect("the next message");
    assert_eq!(next.data, b"next");
    assert!(!next.redelivered);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// x-delivery-limit
// ---------------------------------------------------------------------------------------

fn x_delivery_count(delivery: &Delivery) -> Option<i64> {
    let h = headers(delivery);
    h.inner().get("x-delivery-count").map(|v| match v {
        AMQPValue::LongLongInt(n) => *n,
        other => panic!("x-delivery-count must be a signed 64-bit integer, got {other:?}"),
    })
}

// RabbitMQ 3.10 honours `x-delivery-limit` only on quorum queues; these tests pass
// there with `x-queue-type: quorum` (durable), with one difference: a quorum queue puts
// `x-delivery-count: 0` on the first delivery by basic.get (not on the first by a
// consumer), where warren puts none.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_limit_dead_letters_after_n_plus_one_failed_deliveries() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "delivery_limit_dead_letters_after_n_plus_one_failed_deliveries",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "dl.limit.dlq", FieldTable::default()).await;
    let mut arguments = dead_letter_to("dl.limit.dlq");
    arguments.push(("x-delivery-limit", AMQPValue::LongInt(2)));
    declare(&ch, "dl.limit.src", lapin_table(&arguments)).await;
    let mut dlq = lapin_consume(&ch, "dl.limit.dlq", true).await;
    let since = now_secs();
    publish(
        &ch,
        "",
        "dl.limit.src",
        b"poison",
        BasicProperties::default(),
    )
    .await;
    let mut src = lapin_consume(&ch, "dl.limit.src", false).await;

    // Three failed deliveries: two returns are allowed, the third dead-letters.
    let mut seen = Vec::new();
    for round in 0..3 {
        let delivery = next_lapin(&mut src).await;
        seen.push((delivery.redelivered, x_delivery_count(&delivery)));
        if round == 1 {
            reject(&delivery, true).await;
        } else {
            nack(&delivery, true).await;
        }
    }
    assert_eq!(seen, [(false, None), (true, Some(1)), (true, Some(2))]);

    let dead = next_lapin(&mut dlq).await;
    assert_eq!(dead.data, b"poison");
    let h = headers(&dead);
    assert_eq!(
        x_death(&h, since),
        [death(
            1,
            "delivery_limit",
            "dl.limit.src",
            "",
            &["dl.limit.src"]
        )]
    );
    let src_death = ["delivery_limit", "dl.limit.src", ""];
    assert_eq!(
        first_and_last(&h),
        expected_first_and_last(src_death, src_death)
    );
    assert_eq!(lapin_counts(&ch, "dl.limit.src").await, (0, 1));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_channel_closing_counts_against_the_delivery_limit() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "a_consumer_channel_closing_counts_against_the_delivery_limit",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "dl.closed.dlq", FieldTable::default()).await;
    let mut arguments = dead_letter_to("dl.closed.dlq");
    arguments.push(("x-delivery-limit", AMQPValue::LongInt(1)));
    declare(&ch, "dl.closed.src", lapin_table(&arguments)).await;
    let mut dlq = lapin_consume(&ch, "dl.closed.dlq", true).await;
    let since = now_secs();
    publish(
        &ch,
        "",
        "dl.closed.src",
        b"held",
        BasicProperties::default(),
    )
    .await;

    let mut seen = Vec::new();
    for _ in 0..2 {
        let consumer_channel = conn.create_channel().await.unwrap();
        let mut consumer = lapin_consume(&consumer_channel, "dl.closed.src", false).await;
        let delivery = next_lapin(&mut consumer).await;
        seen.push((delivery.redelivered, x_delivery_count(&delivery)));
        // Closing with the message unacked returns it.
        consumer_channel.close(200, "bye".into()).await.unwrap();
    }
    assert_eq!(seen, [(false, None), (true, Some(1))]);

    let dead = next_lapin(&mut dlq).await;
    assert_eq!(dead.data, b"held");
    assert_eq!(
        x_death(&headers(&dead), since),
        [death(
            1,
            "delivery_limit",
            "dl.closed.src",
            "",
            &["dl.closed.src"]
        )]
    );
    assert_eq!(lapin_counts(&ch, "dl.closed.src").await, (0, 0));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_limit_without_a_dead_letter_exchange_drops_the_message() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "delivery_limit_without_a_dead_letter_exchange_drops_the_message",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    // Confirmed publishes: the message is in the queue before the first basic.get.
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(
        &ch,
        "dl.drop.src",
        lapin_table(&[("x-delivery-limit", AMQPValue::LongInt(1))]),
    )
    .await;
    publish(
        &ch,
        "",
        "dl.drop.src",
        b"doomed",
        BasicProperties::default(),
    )
    .await;
    let first = get(&ch, "dl.drop.src").await.expect("the first delivery");
    assert_eq!(x_delivery_count(&first), None);
    nack(&first, true).await;
    let second = get(&ch, "dl.drop.src").await.expect("the second delivery");
    assert_eq!(
        (second.redelivered, x_delivery_count(&second)),
        (true, Some(1))
    );
    nack(&second, true).await;
    assert!(get(&ch, "dl.drop.src").await.is_none());
    assert_eq!(lapin_counts(&ch, "dl.drop.src").await, (0, 0));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}
