//! Queue limits end to end with lapin: message TTLs (`x-message-ttl` and the
//! `expiration` property), `x-expires`, `x-max-length` and `x-max-length-bytes` with each
//! `x-overflow` mode, and the checks queue.declare makes on these arguments.
//!
//! Checked against RabbitMQ 3.10.8; where 3.10 differs from what warren does, the test
//! says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation};

use common::{
    TestBroker, connect_lapin, lapin_consume, lapin_counts, lapin_table, lapin_text, next_lapin,
    within,
};

/// How often a test looks again at a state it has to poll (a queue deleted by
/// `x-expires`): well below the expiry times used here.
const POLL: Duration = Duration::from_millis(20);

/// Dead-letter arguments: through the default exchange straight to `queue`.
fn dead_letter_to(queue: &str) -> [(&'static str, AMQPValue); 2] {
    [
        ("x-dead-letter-exchange", lapin_text("")),
        ("x-dead-letter-routing-key", lapin_text(queue)),
    ]
}

async fn declare(channel: &Channel, queue: &str, arguments: FieldTable) -> lapin::Result<()> {
    within(
        "queue.declare",
        channel.queue_declare(queue.into(), QueueDeclareOptions::default(), arguments),
    )
    .await
    .map(|_| ())
}

/// Publishes one message through the default exchange and returns lapin's confirmation
/// (NotRequested outside confirm mode).
async fn publish(
    channel: &Channel,
    queue: &str,
    body: &[u8],
    properties: BasicProperties,
) -> Confirmation {
    let confirm = within(
        "basic.publish",
        channel.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        ),
    )
    .await
    .unwrap();
    within("a publisher confirm", confirm).await.unwrap()
}

/// Publishes `body`, which must be confirmed with an ack in confirm mode.
async fn publish_ok(channel: &Channel, queue: &str, body: &[u8]) {
    let outcome = publish(channel, queue, body, BasicProperties::default()).await;
    assert!(
        matches!(
            outcome,
            Confirmation::Ack(None) | Confirmation::NotRequested
        ),
        "{outcome:?}"
    );
}

fn expiring(ms: &str) -> BasicProperties {
    BasicProperties::default().with_expiration(ms.into())
}

/// Takes every ready message of `queue` with basic.get (auto-ack), in order.
async fn drain(channel: &Channel, queue: &str) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    while let Some(message) = within(
        "basic.get",
        channel.basic_get(queue.into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .unwrap()
    {
        bodies.push(message.delivery.data);
    }
    bodies
}

fn header(delivery: &Delivery, name: &str) -> Option<AMQPValue> {
    delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(name).cloned())
}

/// The reply code and text of the close a failed lapin call reports.
fn closed_by(error: &lapin::Error) -> (u16, String) {
    match error.kind() {
        lapin::ErrorKind::ProtocolError(e) => (e.get_id(), e.get_message().as_str().to_owned()),
        _ => panic!("not a close from the broker: {error:?}"),
    }
}

/// A channel in confirm mode for [`exists`]: it probes queues without using them.
async fn prober(conn: &lapin::Connection) -> Channel {
    let channel = conn.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    channel
}

/// Whether `queue` exists, found by a mandatory publish to it through the default
/// exchange (returned when there is no queue). Unlike a passive queue.declare, which in
/// RabbitMQ renews the `x-expires` lease, a message arriving does not count as use.
async fn exists(prober: &Channel, queue: &str) -> bool {
    let confirm = within(
        "a mandatory basic.publish",
        prober.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"probe",
            BasicProperties::default(),
        ),
    )
    .await
    .unwrap();
    match within("a publisher confirm", confirm).await.unwrap() {
        Confirmation::Ack(None) => true,
        Confirmation::Ack(Some(returned)) => {
            assert_eq!(returned.reply_code, 312, "{returned:?}");
            false
        }
        other => panic!("a probe of '{queue}' was not acked: {other:?}"),
    }
}

/// Polls until `queue` is gone, calling `between` before each look.
async fn until_deleted<F: AsyncFnMut()>(prober: &Channel, queue: &str, mut between: F) {
    within(&format!("x-expires deleting '{queue}'"), async {
        loop {
            between().await;
            if !exists(prober, queue).await {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Message TTL
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_ttl_expires_messages_nobody_consumes() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(&broker.uri(), "queue_ttl_expires_messages_nobody_consumes")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "lim.ttl.dlq", FieldTable::default())
        .await
        .unwrap();
    let mut arguments = dead_letter_to("lim.ttl.dlq").to_vec();
    arguments.push(("x-message-ttl", AMQPValue::LongInt(50)));
    declare(&ch, "lim.ttl.src", lapin_table(&arguments))
        .await
        .unwrap();
    let mut dlq = lapin_consume(&ch, "lim.ttl.dlq", true).await;
    for body in [b"a", b"b", b"c"] {
        publish_ok(&ch, "lim.ttl.src", body).await;
    }
    // Nothing consumes the source queue: the messages expire there, oldest first.
    for body in [b"a", b"b", b"c"] {
        let dead = next_lapin(&mut dlq).await;
        assert_eq!(dead.data, body);
        assert_eq!(
            header(&dead, "x-first-death-reason"),
            Some(lapin_text("expired"))
        );
    }
    assert_eq!(lapin_counts(&ch, "lim.ttl.src").await, (0, 0));
    assert!(drain(&ch, "lim.ttl.src").await.is_empty());
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

/// A consumer with no room leaves a message waiting; it expires while it waits and is
/// never delivered, even once the consumer has room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_expires_while_waiting_is_never_delivered() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "a_message_that_expires_while_waiting_is_never_delivered",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "lim.held.dlq", FieldTable::default())
        .await
        .unwrap();
    let mut arguments = dead_letter_to("lim.held.dlq").to_vec();
    arguments.push(("x-message-ttl", AMQPValue::LongInt(200)));
    declare(&ch, "lim.held.src", lapin_table(&arguments))
        .await
        .unwrap();
    let mut dlq = lapin_consume(&ch, "lim.held.dlq", true).await;
    let worker = conn.create_channel().await.unwrap();
    worker
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = lapin_consume(&worker, "lim.held.src", false).await;

    publish_ok(&ch, "lim.held.src", b"first").await;
    let first = next_lapin(&mut consumer).await;
    assert_eq!(first.data, b"first");
    publish_ok(&ch, "lim.held.src", b"waits").await;
    let dead = next_lapin(&mut dlq).await;
    assert_eq!(dead.data, b"waits");
    assert_eq!(
        header(&dead, "x-first-death-reason"),
        Some(lapin_text("expired"))
    );

    // The held message does not expire: TTL applies to messages waiting in the queue.
    first.acker.ack(BasicAckOptions::default()).await.unwrap();
    publish_ok(&ch, "lim.held.src", b"fresh").await;
    let next = next_lapin(&mut consumer).await;
    assert_eq!((&next.data[..], next.redelivered), (&b"fresh"[..], false));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smaller_of_message_and_queue_ttl_applies() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "the_smaller_of_message_and_queue_ttl_applies",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "lim.smaller.dlq", FieldTable::default())
        .await
        .unwrap();
    for (queue, ttl) in [("lim.smaller.short", 50), ("lim.smaller.long", 600_000)] {
        let mut arguments = dead_letter_to("lim.smaller.dlq").to_vec();
        arguments.push(("x-message-ttl", AMQPValue::LongInt(ttl)));
        declare(&ch, queue, lapin_table(&arguments)).await.unwrap();
    }
    let mut dlq = lapin_consume(&ch, "lim.smaller.dlq", true).await;
    // Either TTL alone would keep the message for ten minutes, far beyond the wait.
    // (A RabbitMQ 3.10 classic queue expires a message by its own TTL only at the head
    // of the queue; each message here is alone in its queue.)
    for (queue, expiration) in [("lim.smaller.short", "600000"), ("lim.smaller.long", "50")] {
        let outcome = publish(&ch, queue, queue.as_bytes(), expiring(expiration)).await;
        assert!(matches!(outcome, Confirmation::NotRequested), "{outcome:?}");
        let dead = next_lapin(&mut dlq).await;
        assert_eq!(dead.data, queue.as_bytes());
        assert_eq!(
            header(&dead, "x-first-death-queue"),
            Some(lapin_text(queue))
        );
        assert_eq!(
            header(&dead, "x-first-death-reason"),
            Some(lapin_text("expired"))
        );
    }
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_expiration_closes_the_channel_with_406() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "an_invalid_expiration_closes_the_channel_with_406",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "lim.expiration", FieldTable::default())
        .await
        .unwrap();
    for (expiration, refusal) in [
        (
            "abc",
            "PRECONDITION_FAILED - invalid expiration 'abc': no_integer",
        ),
        (
            "-1",
            "PRECONDITION_FAILED - invalid expiration '-1': {value_negative,-1}",
        ),
    ] {
        let publisher = conn.create_channel().await.unwrap();
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let confirm = within(
            "basic.publish",
            publisher.basic_publish(
                "".into(),
                "lim.expiration".into(),
                BasicPublishOptions::default(),
                b"bad",
                expiring(expiration),
            ),
        )
        .await
        .unwrap();
        let error = within("the channel closing", confirm)
            .await
            .expect_err("an invalid expiration is refused");
        assert_eq!(closed_by(&error), (406, refusal.to_owned()));
    }
    // Nothing was enqueued, and the connection carries on.
    assert_eq!(lapin_counts(&ch, "lim.expiration").await, (0, 0));
    publish_ok(&ch, "lim.expiration", b"fine").await;
    assert_eq!(drain(&ch, "lim.expiration").await, [b"fine"]);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// x-expires
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_expires_deletes_an_idle_queue() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(&broker.uri(), "x_expires_deletes_an_idle_queue")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(
        &ch,
        "lim.idle",
        lapin_table(&[("x-expires", AMQPValue::LongInt(100))]),
    )
    .await
    .unwrap();
    let prober = prober(&conn).await;
    // Messages in it do not keep it: only consumers, basic.get and redeclares do.
    assert!(exists(&prober, "lim.idle").await);
    until_deleted(&prober, "lim.idle", async || {}).await;
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

/// Two queues with the same `x-expires`: the one declared last and left idle is the
/// clock; when it is gone, the one in use would have been too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_expires_spares_a_queue_while_it_has_consumers() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "x_expires_spares_a_queue_while_it_has_consumers",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let expires = lapin_table(&[("x-expires", AMQPValue::LongInt(300))]);
    declare(&ch, "lim.busy", expires.clone()).await.unwrap();
    let consumer = lapin_consume(&ch, "lim.busy", true).await;
    declare(&ch, "lim.busy.clock", expires).await.unwrap();
    let prober = prober(&conn).await;
    until_deleted(&prober, "lim.busy.clock", async || {}).await;
    assert!(exists(&prober, "lim.busy").await);
    // Unused from the moment its last consumer goes.
    within(
        "basic.cancel",
        ch.basic_cancel(consumer.tag(), BasicCancelOptions::default()),
    )
    .await
    .unwrap();
    until_deleted(&prober, "lim.busy", async || {}).await;
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_get_and_redeclare_renew_the_x_expires_lease() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "basic_get_and_redeclare_renew_the_x_expires_lease",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let expires = lapin_table(&[("x-expires", AMQPValue::LongInt(300))]);
    for queue in ["lim.renew.get", "lim.renew.declare", "lim.renew.clock"] {
        declare(&ch, queue, expires.clone()).await.unwrap();
    }
    let prober = prober(&conn).await;
    until_deleted(&prober, "lim.renew.clock", async || {
        drain(&ch, "lim.renew.get").await;
        declare(&ch, "lim.renew.declare", expires.clone())
            .await
            .unwrap();
    })
    .await;
    assert!(exists(&prober, "lim.renew.get").await);
    assert!(exists(&prober, "lim.renew.declare").await);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

/// RabbitMQ 3.10 answers a passive queue.declare with the same `stat` call as a
/// redeclare, and that call restarts the expiry timer: a queue only ever checked with
/// passive declares stays (observed: 300 ms `x-expires`, a passive declare every 50 ms,
/// the queue still there after 1.5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passive_declare_renews_the_x_expires_lease() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "a_passive_declare_renews_the_x_expires_lease",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let expires = lapin_table(&[("x-expires", AMQPValue::LongInt(300))]);
    for queue in ["lim.passive.checked", "lim.passive.clock"] {
        declare(&ch, queue, expires.clone()).await.unwrap();
    }
    let prober = prober(&conn).await;
    until_deleted(&prober, "lim.passive.clock", async || {
        lapin_counts(&ch, "lim.passive.checked").await;
    })
    .await;
    assert!(exists(&prober, "lim.passive.checked").await);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Length limits and overflow
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_head_discards_the_oldest_messages_over_max_length() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "drop_head_discards_the_oldest_messages_over_max_length",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let limit = || ("x-max-length", AMQPValue::LongInt(2));
    declare(&ch, "lim.head.default", lapin_table(&[limit()]))
        .await
        .unwrap();
    declare(
        &ch,
        "lim.head.explicit",
        lapin_table(&[limit(), ("x-overflow", lapin_text("drop-head"))]),
    )
    .await
    .unwrap();
    for queue in ["lim.head.default", "lim.head.explicit"] {
        // Dropping the head is no refusal: every publish is acked.
        for body in [b"m1", b"m2", b"m3", b"m4"] {
            publish_ok(&ch, queue, body).await;
        }
        assert_eq!(drain(&ch, queue).await, [b"m3", b"m4"], "{queue}");
    }
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_length_bytes_counts_body_bytes_and_drops_the_oldest() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "max_length_bytes_counts_body_bytes_and_drops_the_oldest",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    // Confirmed, so the count below sees every publish: RabbitMQ answers a passive
    // declare ahead of deliveries still in the queue's mailbox.
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(
        &ch,
        "lim.bytes",
        lapin_table(&[("x-max-length-bytes", AMQPValue::LongInt(10))]),
    )
    .await
    .unwrap();
    // 12 bytes drop aaaa; cccc dd is exactly 10 bytes and stays; one more drops bbbb.
    for body in [&b"aaaa"[..], b"bbbb", b"cccc", b"dd", b"e"] {
        publish_ok(&ch, "lim.bytes", body).await;
    }
    assert_eq!(lapin_counts(&ch, "lim.bytes").await, (3, 0));
    assert_eq!(
        drain(&ch, "lim.bytes").await,
        [&b"cccc"[..], &b"dd"[..], &b"e"[..]]
    );
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_nacks_messages_over_the_limit() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "reject_publish_nacks_messages_over_the_limit",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&ch, "lim.reject.dlq", FieldTable::default())
        .await
        .unwrap();
    let mut arguments = dead_letter_to("lim.reject.dlq").to_vec();
    arguments.push(("x-max-length", AMQPValue::LongInt(2)));
    arguments.push(("x-overflow", lapin_text("reject-publish")));
    declare(&ch, "lim.reject.src", lapin_table(&arguments))
        .await
        .unwrap();
    let mut outcomes = Vec::new();
    for body in [b"m1", b"m2", b"m3", b"m4"] {
        let outcome = publish(&ch, "lim.reject.src", body, BasicProperties::default()).await;
        outcomes.push(outcome.is_ack());
    }
    assert_eq!(outcomes, [true, true, false, false]);
    // Taking one makes room for one.
    let taken = within(
        "basic.get",
        ch.basic_get("lim.reject.src".into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .unwrap()
    .expect("m1");
    assert_eq!(taken.delivery.data, b"m1");
    publish_ok(&ch, "lim.reject.src", b"m5").await;
    assert!(
        !publish(&ch, "lim.reject.src", b"m6", BasicProperties::default())
            .await
            .is_ack()
    );
    assert_eq!(drain(&ch, "lim.reject.src").await, [b"m2", b"m5"]);
    // reject-publish refuses without dead-lettering, dead-letter exchange or not.
    assert_eq!(lapin_counts(&ch, "lim.reject.dlq").await, (0, 0));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_dlx_nacks_and_dead_letters_messages_over_the_limit() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "reject_publish_dlx_nacks_and_dead_letters_messages_over_the_limit",
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&ch, "lim.rdlx.dlq", FieldTable::default())
        .await
        .unwrap();
    let mut arguments = dead_letter_to("lim.rdlx.dlq").to_vec();
    arguments.push(("x-max-length", AMQPValue::LongInt(1)));
    arguments.push(("x-overflow", lapin_text("reject-publish-dlx")));
    declare(&ch, "lim.rdlx.src", lapin_table(&arguments))
        .await
        .unwrap();
    let mut dlq = lapin_consume(&ch, "lim.rdlx.dlq", true).await;
    let mut outcomes = Vec::new();
    for body in [b"m1", b"m2", b"m3"] {
        let outcome = publish(&ch, "lim.rdlx.src", body, BasicProperties::default()).await;
        outcomes.push(outcome.is_ack());
    }
    assert_eq!(outcomes, [true, false, false]);
    for body in [b"m2", b"m3"] {
        let dead = next_lapin(&mut dlq).await;
        assert_eq!(dead.data, body);
        assert_eq!(
            header(&dead, "x-first-death-reason"),
            Some(lapin_text("maxlen"))
        );
        assert_eq!(
            header(&dead, "x-first-death-queue"),
            Some(lapin_text("lim.rdlx.src"))
        );
    }
    assert_eq!(drain(&ch, "lim.rdlx.src").await, [b"m1"]);
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Argument checks
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_queue_arguments_are_refused_with_406() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "invalid_queue_arguments_are_refused_with_406",
    )
    .await
    .unwrap();
    // (queue, argument, value, RabbitMQ's reason)
    let invalid_values = [
        (
            "lim.bad.ttl",
            "x-message-ttl",
            AMQPValue::LongInt(-1),
            "{value_negative,-1}",
        ),
        (
            "lim.bad.expires",
            "x-expires",
            AMQPValue::LongInt(0),
            "{value_zero,0}",
        ),
        (
            "lim.bad.max-length",
            "x-max-length",
            AMQPValue::LongInt(-1),
            "{value_negative,-1}",
        ),
        (
            "lim.bad.max-length-bytes",
            "x-max-length-bytes",
            AMQPValue::LongInt(-5),
            "{value_negative,-5}",
        ),
        (
            "lim.bad.overflow",
            "x-overflow",
            lapin_text("drop-tail"),
            "invalid_overflow",
        ),
        (
            "lim.bad.dlrk",
            "x-dead-letter-routing-key",
            lapin_text("dlq"),
            "routing_key_but_no_dlx_defined",
        ),
    ];
    let mut cases: Vec<(&str, &str, AMQPValue, String)> = invalid_values
        .into_iter()
        .map(|(queue, argument, value, reason)| {
            let refusal = format!(
                "PRECONDITION_FAILED - invalid arg '{argument}' for queue '{queue}' \
                 in vhost '/': {reason}"
            );
            (queue, argument, value, refusal)
        })
        .collect();
    // Values of the wrong type; RabbitMQ 3.10 words these two differently.
    let queue = "lim.bad.ttl-type";
    cases.push((
        queue,
        "x-message-ttl",
        lapin_text("100"),
        format!(
            "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue '{queue}' \
             in vhost '/': \"expected integer, got longstr\""
        ),
    ));
    let queue = "lim.bad.dlx";
    cases.push((
        queue,
        "x-dead-letter-exchange",
        AMQPValue::LongInt(1),
        format!(
            "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' \
             in queue '{queue}' in vhost '/'"
        ),
    ));
    let prober = prober(&conn).await;
    for (queue, argument, value, refusal) in cases {
        let ch = conn.create_channel().await.unwrap();
        let error = declare(&ch, queue, lapin_table(&[(argument, value)]))
            .await
            .expect_err("the broker must refuse this");
        assert_eq!(closed_by(&error), (406, refusal), "{queue}");
        // Refused means not created.
        assert!(!exists(&prober, queue).await, "{queue} was created");
    }
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}
