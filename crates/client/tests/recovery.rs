//! Automatic recovery against an in-process warren: connections cut by a proxy (a
//! network failure) and a broker restarted (connection.close 320).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::proxy::Proxy;
use common::{Broker, within};
use futures_util::StreamExt;
use warren_client::{
    BasicProperties, Channel, Confirmation, ConnectOptions, Connection, ConsumeOptions, Consumer,
    Delivery, Error, ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind, FieldTable,
    PublishOptions, QueueDeclareOptions, QueueDeleteOptions, Recovery,
};

/// Recovery that retries quickly, so the tests wait on the broker and not on backoff.
fn quick(max_attempts: Option<u32>) -> Recovery {
    Recovery {
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        max_attempts,
    }
}

async fn recovering(uri: &str, test: &str, recovery: Recovery) -> Connection {
    let options = ConnectOptions::from_uri(uri)
        .unwrap()
        .connection_name(test)
        .recovery(recovery);
    within(Connection::connect_with(options)).await.unwrap()
}

async fn publish(channel: &Channel, exchange: &str, key: &str, body: &'static str) {
    within(channel.basic_publish(
        exchange,
        key,
        body,
        BasicProperties::default(),
        PublishOptions::default(),
    ))
    .await
    .unwrap();
}

async fn next(consumer: &mut Consumer) -> Delivery {
    within(consumer.next())
        .await
        .expect("the consumer's stream ended")
        .expect("the consumer failed")
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn consumers_resume_and_declared_topology_returns_after_a_network_failure() {
    let broker = Broker::start().await;
    let proxy = Proxy::start(broker.addr()).await;
    let connection = recovering(&proxy.uri(), "topology", quick(None)).await;
    let ch = within(connection.open_channel()).await.unwrap();
    ch.exchange_declare(
        "events",
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
    )
    .await
    .unwrap();
    let private = ch
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ch.queue_bind(&private.name, "events", "", FieldTable::new())
        .await
        .unwrap();
    ch.queue_declare("work", durable()).await.unwrap();
    ch.basic_qos(5, false).await.unwrap();
    let mut events = ch
        .basic_consume(&private.name, ConsumeOptions::default())
        .await
        .unwrap();
    let mut work = ch
        .basic_consume("work", ConsumeOptions::default())
        .await
        .unwrap();

    let admin = broker.connect("admin").await;
    let admin = within(admin.open_channel()).await.unwrap();
    publish(&admin, "events", "", "before").await;
    assert_eq!(&next(&mut events).await.body[..], b"before");

    // The network fails; while the client cannot get back, an operator deletes the
    // exchange and the queue it declared.
    proxy.refuse(true);
    proxy.cut();
    admin
        .exchange_delete("events", ExchangeDeleteOptions::default())
        .await
        .unwrap();
    admin
        .queue_delete("work", QueueDeleteOptions::default())
        .await
        .unwrap();
    proxy.refuse(false);
    within(connection.wait_recoveries(1)).await.unwrap();
    assert!(connection.is_open() && ch.is_open());

    // The exchange, the server-named queue (under a new name), its binding and both
    // consumers are back.
    publish(&admin, "events", "", "after").await;
    let after = next(&mut events).await;
    assert_eq!(&after.body[..], b"after");
    assert!(!after.redelivered);
    publish(&admin, "", "work", "job").await;
    let job = next(&mut work).await;
    assert_eq!(&job.body[..], b"job");
    job.ack().await.unwrap();
    let work_queue = admin.queue_declare("work", durable()).await.unwrap();
    assert_eq!(work_queue.consumer_count, 1);
    // The prefetch came back with the consumers: 5 unacknowledged at most.
    for _ in 0..6 {
        publish(&admin, "", "work", "more").await;
    }
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(next(&mut work).await);
    }
    let ready = admin
        .queue_declare(
            "work",
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ready.message_count, 1, "prefetch 5 holds back the sixth");
    assert_eq!(held.len(), 5);
}

#[tokio::test]
async fn publishes_and_calls_in_flight_fail_and_later_ones_succeed() {
    let broker = Broker::start().await;
    let proxy = Proxy::start(broker.addr()).await;
    let connection = recovering(&proxy.uri(), "in_flight", quick(None)).await;
    let ch = within(connection.open_channel()).await.unwrap();
    ch.queue_declare("orders", durable()).await.unwrap();
    ch.confirm_select().await.unwrap();

    // The broker gets the publish and the declare, but its answers never arrive.
    proxy.hold_replies(true);
    let confirm = ch
        .basic_publish(
            "",
            "orders",
            "in flight",
            BasicProperties::default(),
            PublishOptions::default(),
        )
        .await
        .unwrap();
    let call = tokio::spawn({
        let ch = ch.clone();
        async move { ch.queue_declare("other", durable()).await }
    });
    proxy.cut();
    proxy.hold_replies(false);
    let lost = within(confirm).await;
    assert!(matches!(lost, Err(Error::Io(_))), "{lost:?}");
    let lost = within(call).await.unwrap();
    assert!(matches!(lost, Err(Error::Io(_))), "{lost:?}");

    within(connection.wait_recoveries(1)).await.unwrap();
    assert!(ch.is_confirm_mode());
    let confirm = ch
        .basic_publish(
            "",
            "orders",
            "after",
            BasicProperties::default(),
            PublishOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(within(confirm).await.unwrap(), Confirmation::Ack);
}

#[tokio::test]
async fn deliveries_from_before_the_loss_are_redelivered_and_their_acks_dropped() {
    let broker = Broker::start().await;
    let proxy = Proxy::start(broker.addr()).await;
    let connection = recovering(&proxy.uri(), "stale_acks", quick(None)).await;
    let ch = within(connection.open_channel()).await.unwrap();
    ch.queue_declare("payments", durable()).await.unwrap();
    publish(&ch, "", "payments", "charge-1").await;
    let mut consumer = ch
        .basic_consume("payments", ConsumeOptions::default())
        .await
        .unwrap();
    let first = next(&mut consumer).await;
    assert!(!first.redelivered);

    proxy.cut();
    within(connection.wait_recoveries(1)).await.unwrap();
    // Acknowledging a delivery the old connection carried is a no-op: the broker
    // requeued it, and here it is again.
    first.ack().await.unwrap();
    let again = next(&mut consumer).await;
    assert_eq!(&again.body[..], b"charge-1");
    assert!(again.redelivered);
    assert!(again.delivery_tag > first.delivery_tag);
    again.ack().await.unwrap();
    // Had the stale ack gone out as the new delivery's tag, this second ack would be
    // of an unknown tag and the broker would have closed the channel with 406.
    let check = ch
        .queue_declare(
            "payments",
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(check.unwrap().message_count, 0);
    ch.close().await.unwrap();
    let admin = broker.connect("admin").await;
    let admin = within(admin.open_channel()).await.unwrap();
    assert!(admin.basic_get("payments", false).await.unwrap().is_none());
}

#[tokio::test]
async fn recovery_gives_up_after_its_attempts_and_ends_consumers() {
    let broker = Broker::start().await;
    let proxy = Proxy::start(broker.addr()).await;
    let connection = recovering(&proxy.uri(), "gives_up", quick(Some(3))).await;
    let ch = within(connection.open_channel()).await.unwrap();
    ch.queue_declare("q", durable()).await.unwrap();
    let mut consumer = ch
        .basic_consume("q", ConsumeOptions::default())
        .await
        .unwrap();
    proxy.refuse(true);
    proxy.cut();
    let reason = within(connection.closed()).await;
    assert!(matches!(reason, Error::Io(_)), "{reason:?}");
    assert!(!connection.is_recovering());
    let end = within(consumer.next()).await;
    assert!(matches!(end, Some(Err(Error::Io(_)))), "{end:?}");
    let call = ch.queue_declare("q", durable()).await;
    assert!(matches!(call, Err(Error::Io(_))), "{call:?}");
    assert!(matches!(
        connection.wait_recoveries(1).await,
        Err(Error::Io(_))
    ));
}

#[tokio::test]
async fn closing_while_recovering_closes_at_once() {
    let broker = Broker::start().await;
    let proxy = Proxy::start(broker.addr()).await;
    let connection = recovering(&proxy.uri(), "close_recovering", quick(None)).await;
    let ch = within(connection.open_channel()).await.unwrap();
    proxy.refuse(true);
    proxy.cut();
    within(connection.close()).await.unwrap();
    assert!(!connection.is_open());
    assert_eq!(
        connection.close_reason().and_then(|e| e.reply_code()),
        Some(200)
    );
    assert!(within(ch.queue_declare("q", durable())).await.is_err());
}

#[tokio::test]
async fn calls_made_while_recovering_wait_and_then_run() {
    let broker = Broker::start().await;
    let proxy = Proxy::start(broker.addr()).await;
    let connection = recovering(&proxy.uri(), "waiting_calls", quick(None)).await;
    let ch = within(connection.open_channel()).await.unwrap();
    proxy.refuse(true);
    proxy.cut();
    // Calls made from here on wait for the new connection rather than fail.
    within(async {
        while !connection.is_recovering() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let declare = tokio::spawn({
        let ch = ch.clone();
        async move { ch.queue_declare("later", durable()).await }
    });
    let opened = tokio::spawn({
        let connection = connection.clone();
        async move { connection.open_channel().await }
    });
    proxy.refuse(false);
    let info = within(declare).await.unwrap().unwrap();
    assert_eq!(info.name.as_str(), "later");
    let second = within(opened).await.unwrap().unwrap();
    assert!(second.is_open());
    assert_eq!(connection.recoveries(), 1);
}

#[tokio::test]
async fn a_transactional_channel_closes_with_the_loss() {
    let broker = Broker::start().await;
    let proxy = Proxy::start(broker.addr()).await;
    let connection = recovering(&proxy.uri(), "tx", quick(None)).await;
    let tx = within(connection.open_channel()).await.unwrap();
    tx.tx_select().await.unwrap();
    let plain = within(connection.open_channel()).await.unwrap();
    proxy.cut();
    within(connection.wait_recoveries(1)).await.unwrap();
    assert!(!tx.is_open());
    assert!(matches!(tx.close_reason(), Some(Error::Io(_))));
    assert!(plain.is_open());
    plain.queue_declare("q", durable()).await.unwrap();
}

#[tokio::test]
async fn a_restarted_broker_is_rejoined_with_durable_messages_intact() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in("127.0.0.1:0".parse().unwrap(), dir.path()).await;
    let addr = broker.addr();
    let uri = format!("amqp://guest:guest@{addr}/%2f");
    let connection = recovering(&uri, "restart", quick(None)).await;
    let ch = within(connection.open_channel()).await.unwrap();
    ch.queue_declare("jobs", durable()).await.unwrap();
    ch.confirm_select().await.unwrap();
    let persistent = BasicProperties {
        delivery_mode: Some(2),
        ..Default::default()
    };
    let confirm = ch
        .basic_publish(
            "",
            "jobs",
            "kept",
            persistent.clone(),
            PublishOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(within(confirm).await.unwrap(), Confirmation::Ack);

    // A graceful stop closes the connection with 320 CONNECTION_FORCED.
    broker.stop().await;
    let _broker = Broker::start_in(addr, dir.path()).await;
    within(connection.wait_recoveries(1)).await.unwrap();

    let mut consumer = ch
        .basic_consume("jobs", ConsumeOptions::default())
        .await
        .unwrap();
    assert_eq!(&next(&mut consumer).await.body[..], b"kept");
    let confirm = ch
        .basic_publish("", "jobs", "new", persistent, PublishOptions::default())
        .await
        .unwrap();
    assert_eq!(within(confirm).await.unwrap(), Confirmation::Ack);
    assert_eq!(&next(&mut consumer).await.body[..], b"new");
}
