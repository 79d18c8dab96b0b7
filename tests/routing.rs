//! Routing end to end with lapin: headers exchanges, exchange-to-exchange bindings,
//! alternate exchanges, internal exchanges, sender-selected distribution (CC / BCC),
//! auto-delete exchanges, binding identity, and warren's `x-unroutable` extension.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeBindOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeUnbindOptions, QueueBindOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, ExchangeKind};

use common::{
    RawClient, TestBroker, connect_lapin, lapin_counts, lapin_reply_code, publish_to, within,
};

/// Header or argument pairs with string values (`None` is a void value).
type Pairs<'a> = &'a [(&'a str, Option<&'a str>)];

/// A lapin field table of string values (`None` is a void value).
fn table(pairs: Pairs<'_>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        let value = match v {
            Some(v) => AMQPValue::LongString(LongString::from(*v)),
            None => AMQPValue::Void,
        };
        t.insert(ShortString::from(*k), value);
    }
    t
}

fn strings(items: &[&str]) -> AMQPValue {
    AMQPValue::FieldArray(FieldArray::from(
        items
            .iter()
            .map(|s| AMQPValue::LongString(LongString::from(*s)))
            .collect::<Vec<_>>(),
    ))
}

async fn exchange(channel: &Channel, name: &str, kind: ExchangeKind, arguments: FieldTable) {
    exchange_with(
        channel,
        name,
        kind,
        ExchangeDeclareOptions::default(),
        arguments,
    )
    .await;
}

async fn exchange_with(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
    options: ExchangeDeclareOptions,
    arguments: FieldTable,
) {
    within(
        "exchange.declare",
        channel.exchange_declare(name.into(), kind, options, arguments),
    )
    .await
    .unwrap_or_else(|e| panic!("declare exchange '{name}': {e}"));
}

/// Declares `queue` and binds it to `exchange` with `key` and `arguments`.
async fn queue_bound(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
    arguments: FieldTable,
) {
    within(
        "queue.declare",
        channel.queue_declare(queue.into(), Default::default(), FieldTable::default()),
    )
    .await
    .unwrap();
    within(
        "queue.bind",
        channel.queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            arguments,
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("bind '{queue}' to '{exchange}': {e}"));
}

async fn bind_exchange(
    channel: &Channel,
    destination: &str,
    source: &str,
    key: &str,
) -> lapin::Result<()> {
    within(
        "exchange.bind",
        channel.exchange_bind(
            destination.into(),
            source.into(),
            key.into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
}

/// Publishes one message and returns lapin's confirmation (NotRequested without
/// confirm mode).
async fn publish(
    channel: &Channel,
    exchange: &str,
    key: &str,
    mandatory: bool,
    headers: FieldTable,
) -> lapin::Result<Confirmation> {
    let confirm = within(
        "basic.publish",
        channel.basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions {
                mandatory,
                ..Default::default()
            },
            b"m",
            BasicProperties::default().with_headers(headers),
        ),
    )
    .await?;
    within("a confirm", confirm).await
}

/// Publishes one message on a fresh confirm-mode channel and returns the reply code
/// of the channel close it must cause: the pending confirm fails with it, whichever
/// of lapin's calls would otherwise race the close.
async fn refused_publish(
    conn: &lapin::Connection,
    exchange: &str,
    key: &str,
    headers: FieldTable,
) -> u16 {
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let error = publish(&ch, exchange, key, false, headers)
        .await
        .expect_err("the broker closes the channel");
    lapin_reply_code(&error).unwrap_or_else(|| panic!("not a close: {error:?}"))
}

/// Ready messages in each queue, in order.
async fn depths(channel: &Channel, queues: &[&str]) -> Vec<u32> {
    let mut out = Vec::new();
    for q in queues {
        out.push(lapin_counts(channel, q).await.0);
    }
    out
}

/// The headers of the next message in `queue` (taken with basic.get, auto-ack).
async fn next_headers(channel: &Channel, queue: &str) -> FieldTable {
    let message = within(
        "basic.get",
        channel.basic_get(queue.into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .unwrap()
    .unwrap_or_else(|| panic!("queue '{queue}' is empty"));
    message
        .delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_default()
}

async fn exchange_exists(conn: &lapin::Connection, name: &str) -> bool {
    let channel = conn.create_channel().await.unwrap();
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    match within(
        "a passive exchange.declare",
        channel.exchange_declare(
            name.into(),
            ExchangeKind::Direct,
            passive,
            FieldTable::default(),
        ),
    )
    .await
    {
        Ok(()) => true,
        Err(e) => {
            assert_eq!(lapin_reply_code(&e), Some(404), "{e:?}");
            false
        }
    }
}

// ---------------------------------------------------------------------------------------
// Headers exchanges
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_exchange_matches_all_any_with_x_and_presence() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "headers_exchange_matches_all_any_with_x_and_presence",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    exchange(&ch, "hx", ExchangeKind::Headers, FieldTable::default()).await;
    let bindings: [(&str, Pairs<'_>); 6] = [
        (
            "all",
            &[
                ("x-match", Some("all")),
                ("format", Some("pdf")),
                ("type", Some("report")),
            ],
        ),
        (
            "any",
            &[
                ("x-match", Some("any")),
                ("format", Some("pdf")),
                ("type", Some("log")),
            ],
        ),
        ("default-all", &[("format", Some("pdf"))]),
        ("present", &[("urgent", None)]),
        (
            "with-x",
            &[("x-match", Some("all-with-x")), ("x-tenant", Some("acme"))],
        ),
        // In plain "all" mode x- keys are not conditions: this matches everything.
        (
            "x-ignored",
            &[("x-match", Some("all")), ("x-tenant", Some("acme"))],
        ),
    ];
    for (queue, args) in bindings {
        queue_bound(&ch, queue, "hx", "ignored", table(args)).await;
    }
    let messages: [Pairs<'_>; 5] = [
        &[("format", Some("pdf")), ("type", Some("report"))],
        &[("type", Some("log"))],
        &[("format", Some("zip")), ("urgent", Some("yes"))],
        &[("x-tenant", Some("acme"))],
        &[],
    ];
    for headers in messages {
        publish(&ch, "hx", "any-key", false, table(headers))
            .await
            .unwrap();
    }
    let queues = [
        "all",
        "any",
        "default-all",
        "present",
        "with-x",
        "x-ignored",
    ];
    assert_eq!(depths(&ch, &queues).await, [1, 2, 1, 1, 1, 5]);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_values_compare_by_value_across_integer_widths() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "headers_values_compare_by_value_across_integer_widths",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("level".into(), AMQPValue::LongInt(3));
    // amq.headers and amq.match are predeclared headers exchanges.
    queue_bound(&ch, "level3", "amq.headers", "", args.clone()).await;
    queue_bound(&ch, "level3-match", "amq.match", "", args).await;
    for value in [
        AMQPValue::LongLongInt(3),
        AMQPValue::ShortShortUInt(3),
        AMQPValue::LongInt(4),
    ] {
        let mut headers = FieldTable::default();
        headers.insert("level".into(), value);
        publish(&ch, "amq.headers", "", false, headers.clone())
            .await
            .unwrap();
        publish(&ch, "amq.match", "", false, headers).await.unwrap();
    }
    assert_eq!(depths(&ch, &["level3", "level3-match"]).await, [2, 2]);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_x_match_is_refused_with_406() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(&broker.uri(), "an_invalid_x_match_is_refused_with_406")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    within(
        "queue.declare",
        ch.queue_declare("q".into(), Default::default(), FieldTable::default()),
    )
    .await
    .unwrap();
    let error = within(
        "queue.bind",
        ch.queue_bind(
            "q".into(),
            "amq.headers".into(),
            "".into(),
            QueueBindOptions::default(),
            table(&[("x-match", Some("some"))]),
        ),
    )
    .await
    .expect_err("x-match 'some' is not a mode");
    assert_eq!(lapin_reply_code(&error), Some(406), "{error:?}");
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Exchange types and deletion
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_exchange_type_closes_the_channel_with_406() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "an_unknown_exchange_type_closes_the_channel_with_406",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let error = within(
        "exchange.declare",
        ch.exchange_declare(
            "odd".into(),
            ExchangeKind::Custom("no-such-type".into()),
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("an unknown type is refused");
    assert_eq!(lapin_reply_code(&error), Some(406), "{error:?}");
    // Only the channel closed.
    assert!(conn.status().connected());
    assert!(!exchange_exists(&conn, "odd").await);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Exchange-to-exchange bindings
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_bindings_chain_and_cycles_deliver_each_queue_once() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "exchange_bindings_chain_and_cycles_deliver_each_queue_once",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    exchange(&ch, "edge", ExchangeKind::Fanout, FieldTable::default()).await;
    exchange(&ch, "mid", ExchangeKind::Topic, FieldTable::default()).await;
    exchange(&ch, "leaf", ExchangeKind::Direct, FieldTable::default()).await;
    bind_exchange(&ch, "mid", "edge", "").await.unwrap();
    bind_exchange(&ch, "leaf", "mid", "orders.*").await.unwrap();
    // A cycle back to the start, and a second path to the same queue.
    bind_exchange(&ch, "edge", "leaf", "orders.new")
        .await
        .unwrap();
    queue_bound(&ch, "orders", "leaf", "orders.new", FieldTable::default()).await;
    queue_bound(&ch, "orders", "mid", "#", FieldTable::default()).await;
    queue_bound(&ch, "audit", "edge", "", FieldTable::default()).await;

    publish(&ch, "edge", "orders.new", false, FieldTable::default())
        .await
        .unwrap();
    publish(&ch, "edge", "billing", false, FieldTable::default())
        .await
        .unwrap();
    assert_eq!(depths(&ch, &["orders", "audit"]).await, [2, 2]);

    // Unbinding the middle link cuts both paths through it.
    within(
        "exchange.unbind",
        ch.exchange_unbind(
            "mid".into(),
            "edge".into(),
            "".into(),
            ExchangeUnbindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    publish(&ch, "edge", "orders.new", false, FieldTable::default())
        .await
        .unwrap();
    assert_eq!(depths(&ch, &["orders", "audit"]).await, [2, 3]);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_bind_refuses_missing_and_default_exchanges() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "exchange_bind_refuses_missing_and_default_exchanges",
    )
    .await
    .unwrap();
    for (destination, source, code) in [
        ("nowhere", "amq.fanout", 404),
        ("amq.fanout", "nowhere", 404),
        ("", "amq.fanout", 403),
        ("amq.fanout", "", 403),
    ] {
        let ch = conn.create_channel().await.unwrap();
        let error = bind_exchange(&ch, destination, source, "")
            .await
            .expect_err("refused");
        assert_eq!(
            lapin_reply_code(&error),
            Some(code),
            "{destination} <- {source}: {error:?}"
        );
    }
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_with_exchange_bindings_is_in_use_and_deleting_a_destination_drops_them() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "an_exchange_with_exchange_bindings_is_in_use_and_deleting_a_destination_drops_them",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    exchange(&ch, "src", ExchangeKind::Fanout, FieldTable::default()).await;
    exchange(&ch, "dst", ExchangeKind::Fanout, FieldTable::default()).await;
    bind_exchange(&ch, "dst", "src", "").await.unwrap();
    let error = within(
        "exchange.delete",
        ch.exchange_delete(
            "src".into(),
            ExchangeDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        ),
    )
    .await
    .expect_err("src has a binding");
    assert_eq!(lapin_reply_code(&error), Some(406), "{error:?}");
    let ch = conn.create_channel().await.unwrap();
    within(
        "exchange.delete",
        ch.exchange_delete("dst".into(), Default::default()),
    )
    .await
    .unwrap();
    // With its only binding gone, src is unused now.
    within(
        "exchange.delete",
        ch.exchange_delete(
            "src".into(),
            ExchangeDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        ),
    )
    .await
    .unwrap();
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Alternate exchanges and unroutable messages
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternate_exchange_takes_unmatched_messages_and_mandatory_returns_only_when_nothing_does()
{
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "alternate_exchange_takes_unmatched_messages_and_mandatory_returns_only_when_nothing_does",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    exchange(&ch, "unrouted", ExchangeKind::Fanout, FieldTable::default()).await;
    exchange(
        &ch,
        "second",
        ExchangeKind::Direct,
        table(&[("alternate-exchange", Some("unrouted"))]),
    )
    .await;
    exchange(
        &ch,
        "main",
        ExchangeKind::Direct,
        table(&[("alternate-exchange", Some("second"))]),
    )
    .await;
    exchange(
        &ch,
        "lonely",
        ExchangeKind::Direct,
        table(&[("alternate-exchange", Some("missing"))]),
    )
    .await;
    queue_bound(&ch, "orders", "main", "order", FieldTable::default()).await;
    queue_bound(
        &ch,
        "second-hand",
        "second",
        "resale",
        FieldTable::default(),
    )
    .await;
    queue_bound(&ch, "lost-and-found", "unrouted", "", FieldTable::default()).await;

    // Matched by main itself; by its alternate; by the alternate's alternate.
    for key in ["order", "resale", "anything"] {
        let confirmation = publish(&ch, "main", key, true, FieldTable::default())
            .await
            .unwrap();
        assert!(
            matches!(confirmation, Confirmation::Ack(None)),
            "{key}: {confirmation:?}"
        );
    }
    assert_eq!(
        depths(&ch, &["orders", "second-hand", "lost-and-found"]).await,
        [1, 1, 1]
    );

    // An alternate that does not exist routes nowhere: the mandatory message returns.
    let confirmation = publish(&ch, "lonely", "k", true, FieldTable::default())
        .await
        .unwrap();
    match confirmation {
        Confirmation::Ack(Some(returned)) => assert_eq!(returned.reply_code, 312),
        other => panic!("expected a return: {other:?}"),
    }
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_unroutable_reject_nacks_under_confirms_and_closes_the_channel_without() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "x_unroutable_reject_nacks_under_confirms_and_closes_the_channel_without",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    exchange(
        &ch,
        "strict",
        ExchangeKind::Direct,
        table(&[("x-unroutable", Some("reject"))]),
    )
    .await;
    queue_bound(&ch, "known", "strict", "known", FieldTable::default()).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let routed = publish(&ch, "strict", "known", false, FieldTable::default())
        .await
        .unwrap();
    assert!(matches!(routed, Confirmation::Ack(None)), "{routed:?}");
    let refused = publish(&ch, "strict", "unknown", false, FieldTable::default())
        .await
        .unwrap();
    assert!(matches!(refused, Confirmation::Nack(None)), "{refused:?}");
    // A mandatory one is returned and nacked.
    let returned = publish(&ch, "strict", "unknown", true, FieldTable::default())
        .await
        .unwrap();
    assert!(
        matches!(returned, Confirmation::Nack(Some(_))),
        "{returned:?}"
    );
    assert_eq!(depths(&ch, &["known"]).await, [1]);

    // Without confirms and without mandatory, the publisher hears of it as a 312.
    let plain = conn.create_channel().await.unwrap();
    let mandatory = publish(&plain, "strict", "unknown", true, FieldTable::default())
        .await
        .unwrap();
    assert!(
        matches!(mandatory, Confirmation::NotRequested),
        "{mandatory:?}"
    );
    // Raw frames, so that nothing races the close: lapin may see the channel closed
    // before it sends its next call.
    let mut raw = RawClient::connect(broker.addr(), "x_unroutable_without_confirms").await;
    raw.open_channel(1).await;
    raw.publish(
        1,
        publish_to("strict", "unknown"),
        warren_codec::BasicProperties::default(),
        b"m",
        0,
    )
    .await;
    let (code, text, class_id, method_id) = raw.expect_channel_close(1).await;
    assert_eq!((code, class_id, method_id), (312, 60, 40), "{text}");
    raw.close().await;

    // A bad value is refused at declare.
    let ch = conn.create_channel().await.unwrap();
    let error = within(
        "exchange.declare",
        ch.exchange_declare(
            "odd".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            table(&[("x-unroutable", Some("bounce"))]),
        ),
    )
    .await
    .expect_err("not drop or reject");
    assert_eq!(lapin_reply_code(&error), Some(406), "{error:?}");
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Internal exchanges
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_exchange_refuses_publishes_with_403_but_routes_bound_traffic() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "an_internal_exchange_refuses_publishes_with_403_but_routes_bound_traffic",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let internal = ExchangeDeclareOptions {
        internal: true,
        ..Default::default()
    };
    exchange_with(
        &ch,
        "inner",
        ExchangeKind::Fanout,
        internal,
        FieldTable::default(),
    )
    .await;
    bind_exchange(&ch, "inner", "amq.direct", "k")
        .await
        .unwrap();
    queue_bound(&ch, "behind", "inner", "", FieldTable::default()).await;
    publish(&ch, "amq.direct", "k", false, FieldTable::default())
        .await
        .unwrap();
    assert_eq!(depths(&ch, &["behind"]).await, [1]);
    assert_eq!(
        refused_publish(&conn, "inner", "k", FieldTable::default()).await,
        403
    );
    let ch = conn.create_channel().await.unwrap();
    assert_eq!(depths(&ch, &["behind"]).await, [1]);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Sender-selected distribution
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cc_and_bcc_add_routing_keys_and_bcc_is_not_delivered() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "cc_and_bcc_add_routing_keys_and_bcc_is_not_delivered",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    for q in ["to", "cc", "bcc", "other"] {
        queue_bound(&ch, q, "amq.direct", q, FieldTable::default()).await;
    }
    let mut headers = FieldTable::default();
    headers.insert("CC".into(), strings(&["cc", "to"]));
    headers.insert("BCC".into(), strings(&["bcc"]));
    headers.insert("app".into(), AMQPValue::LongString("kept".into()));
    publish(&ch, "amq.direct", "to", false, headers)
        .await
        .unwrap();
    assert_eq!(
        depths(&ch, &["to", "cc", "bcc", "other"]).await,
        [1, 1, 1, 0]
    );
    for q in ["to", "cc", "bcc"] {
        let delivered = next_headers(&ch, q).await;
        assert!(!delivered.contains_key("BCC"), "{q}: {delivered:?}");
        assert!(delivered.contains_key("CC"), "{q}: {delivered:?}");
        assert!(delivered.contains_key("app"), "{q}: {delivered:?}");
    }

    // CC must be an array.
    let mut bad = FieldTable::default();
    bad.insert("CC".into(), AMQPValue::LongString("cc".into()));
    assert_eq!(refused_publish(&conn, "amq.direct", "to", bad).await, 406);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Auto-delete exchanges and binding identity
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_delete_exchanges_go_with_their_last_binding() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "auto_delete_exchanges_go_with_their_last_binding",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let auto_delete = ExchangeDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    // Unbinding the last queue.
    exchange_with(
        &ch,
        "ad-unbind",
        ExchangeKind::Direct,
        auto_delete,
        FieldTable::default(),
    )
    .await;
    queue_bound(&ch, "q1", "ad-unbind", "k", FieldTable::default()).await;
    // A fresh auto-delete exchange with no bindings yet stays.
    assert!(exchange_exists(&conn, "ad-unbind").await);
    within(
        "queue.unbind",
        ch.queue_unbind(
            "q1".into(),
            "ad-unbind".into(),
            "k".into(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    assert!(!exchange_exists(&conn, "ad-unbind").await);

    // Deleting the last bound queue, down a chain of auto-delete exchanges.
    exchange_with(
        &ch,
        "ad-outer",
        ExchangeKind::Fanout,
        auto_delete,
        FieldTable::default(),
    )
    .await;
    exchange_with(
        &ch,
        "ad-inner",
        ExchangeKind::Fanout,
        auto_delete,
        FieldTable::default(),
    )
    .await;
    bind_exchange(&ch, "ad-inner", "ad-outer", "")
        .await
        .unwrap();
    queue_bound(&ch, "q2", "ad-inner", "", FieldTable::default()).await;
    within(
        "queue.delete",
        ch.queue_delete("q2".into(), QueueDeleteOptions::default()),
    )
    .await
    .unwrap();
    assert!(!exchange_exists(&conn, "ad-inner").await);
    assert!(!exchange_exists(&conn, "ad-outer").await);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_is_identified_by_its_key_and_arguments() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "a_binding_is_identified_by_its_key_and_arguments",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let args = table(&[("a", Some("1")), ("b", Some("2"))]);
    let reordered = table(&[("b", Some("2")), ("a", Some("1"))]);
    queue_bound(&ch, "q", "amq.direct", "k", args).await;
    let unbind = |key: &'static str, arguments: FieldTable| {
        ch.queue_unbind("q".into(), "amq.direct".into(), key.into(), arguments)
    };
    // Other arguments or another key: not this binding (and not an error).
    within("queue.unbind", unbind("k", table(&[("a", Some("1"))])))
        .await
        .unwrap();
    within("queue.unbind", unbind("j", reordered.clone()))
        .await
        .unwrap();
    publish(&ch, "amq.direct", "k", false, FieldTable::default())
        .await
        .unwrap();
    assert_eq!(depths(&ch, &["q"]).await, [1]);
    // The same arguments (lapin sends tables sorted; the routing crate's unit tests
    // cover another order) are the same binding.
    within("queue.unbind", unbind("k", reordered))
        .await
        .unwrap();
    publish(&ch, "amq.direct", "k", false, FieldTable::default())
        .await
        .unwrap();
    assert_eq!(depths(&ch, &["q"]).await, [1]);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_changes_while_publishing_lose_nothing_from_stable_bindings() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "binding_changes_while_publishing_lose_nothing_from_stable_bindings",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    exchange(&ch, "busy", ExchangeKind::Topic, FieldTable::default()).await;
    queue_bound(&ch, "stable", "busy", "orders.#", FieldTable::default()).await;
    within(
        "queue.declare",
        ch.queue_declare("churn".into(), Default::default(), FieldTable::default()),
    )
    .await
    .unwrap();

    const MESSAGES: u32 = 2_000;
    let publisher = conn.create_channel().await.unwrap();
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let publishing = tokio::spawn(async move {
        for i in 0..MESSAGES {
            let key = format!("orders.{i}");
            let outcome = publish(&publisher, "busy", &key, false, FieldTable::default())
                .await
                .unwrap();
            assert!(matches!(outcome, Confirmation::Ack(None)), "{outcome:?}");
        }
    });
    // Bind and unbind other patterns (each change publishes a new topology snapshot)
    // for as long as the publisher runs.
    let mut changes = 0u32;
    while !publishing.is_finished() {
        let pattern = format!("orders.{}", changes % 50);
        within(
            "queue.bind",
            ch.queue_bind(
                "churn".into(),
                "busy".into(),
                pattern.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
        .unwrap();
        within(
            "queue.unbind",
            ch.queue_unbind(
                "churn".into(),
                "busy".into(),
                pattern.as_str().into(),
                FieldTable::default(),
            ),
        )
        .await
        .unwrap();
        changes += 1;
    }
    within("the publisher", publishing).await.unwrap();
    assert!(changes > 0);
    assert_eq!(depths(&ch, &["stable"]).await, [MESSAGES]);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}
