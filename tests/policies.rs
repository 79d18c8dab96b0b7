//! Policies and the topology the configuration declares: applied at start to queues
//! clients declare, merged key by key, weighed against the queues' own arguments as
//! RabbitMQ does, and changed on live queues by a reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use warren_codec::FieldTable as Arguments;
use warren_routing::ExchangeKind;
use warren_server::config::{
    BindingConfig, BindingDestination, Config, ExchangeConfig, QueueConfig, UserConfig,
};
use warren_server::policy::{Overflow, Policy, PolicyDefinition};

use common::{TestBroker, connect_lapin, lapin_counts, within};

fn policy(name: &str, pattern: &str, priority: i32, definition: PolicyDefinition) -> Policy {
    Policy {
        vhost: "/".into(),
        name: name.into(),
        pattern: glob::Pattern::new(pattern).unwrap(),
        priority,
        definition,
    }
}

fn with_policies(policies: Vec<Policy>) -> Config {
    let mut config = TestBroker::config();
    config.policies = policies;
    config
}

/// A channel in confirm mode.
async fn confirming(broker: &TestBroker, name: &str) -> (lapin::Connection, lapin::Channel) {
    let conn = connect_lapin(&broker.uri(), name).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    (conn, ch)
}

async fn declare(ch: &lapin::Channel, queue: &str, arguments: FieldTable) {
    within(
        "queue.declare",
        ch.queue_declare(queue.into(), QueueDeclareOptions::default(), arguments),
    )
    .await
    .unwrap();
}

/// Publishes `n` messages to `queue` and returns, in order, whether each was acked.
async fn acks(ch: &lapin::Channel, queue: &str, n: usize) -> Vec<bool> {
    let mut out = Vec::new();
    for i in 0..n {
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                lapin::BasicProperties::default(),
            )
            .await
            .unwrap();
        out.push(within("a confirm", confirm).await.unwrap().is_ack());
    }
    out
}

fn limit(max_length: u64, overflow: Overflow) -> PolicyDefinition {
    PolicyDefinition {
        max_length: Some(max_length),
        overflow: Some(overflow),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_policy_limits_the_queues_its_pattern_matches_and_no_others() {
    let broker = TestBroker::start_with(with_policies(vec![policy(
        "orders-limit",
        "orders.*",
        0,
        limit(2, Overflow::RejectPublish),
    )]))
    .await;
    let (_conn, ch) = confirming(&broker, "policy_limits").await;
    declare(&ch, "orders.new", FieldTable::default()).await;
    declare(&ch, "payments", FieldTable::default()).await;
    assert_eq!(acks(&ch, "orders.new", 3).await, [true, true, false]);
    assert_eq!(acks(&ch, "payments", 3).await, [true, true, true]);
    assert_eq!(lapin_counts(&ch, "orders.new").await.0, 2);
}

#[tokio::test]
async fn matching_policies_merge_key_by_key() {
    // RabbitMQ would apply only the higher-priority policy and never dead-letter.
    let broker = TestBroker::start_with(with_policies(vec![
        policy("limit", "orders.*", 5, limit(1, Overflow::DropHead)),
        policy(
            "dead-letters",
            "*",
            0,
            PolicyDefinition {
                dead_letter_exchange: Some(String::new()),
                dead_letter_routing_key: Some("dead".into()),
                max_length: Some(100),
                ..Default::default()
            },
        ),
    ]))
    .await;
    let (_conn, ch) = confirming(&broker, "policy_merge").await;
    declare(&ch, "dead", FieldTable::default()).await;
    declare(&ch, "orders.q", FieldTable::default()).await;
    assert_eq!(acks(&ch, "orders.q", 2).await, [true, true]);
    // The first was dropped by the length limit of one policy, into the dead-letter
    // queue of the other.
    assert_eq!(lapin_counts(&ch, "orders.q").await.0, 1);
    let dead = within("basic.get", ch.basic_get("dead".into(), Default::default()))
        .await
        .unwrap()
        .expect("a dead letter");
    assert_eq!(dead.delivery.data, b"m0");
}

#[tokio::test]
async fn the_lower_limit_wins_and_other_arguments_win_over_policies() {
    let broker = TestBroker::start_with(with_policies(vec![policy(
        "all",
        "*",
        0,
        limit(2, Overflow::RejectPublish),
    )]))
    .await;
    let (_conn, ch) = confirming(&broker, "policy_precedence").await;
    // x-max-length 5 against the policy's 2: 2. x-overflow drop-head wins over the
    // policy's reject-publish: nothing refused, the oldest dropped.
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(5));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("drop-head".into()),
    );
    declare(&ch, "own", arguments).await;
    assert_eq!(acks(&ch, "own", 3).await, [true, true, true]);
    assert_eq!(lapin_counts(&ch, "own").await.0, 2);
    // x-max-length 1 is lower than the policy's: 1, still reject-publish.
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(1));
    declare(&ch, "tight", arguments).await;
    assert_eq!(acks(&ch, "tight", 2).await, [true, false]);
}

#[tokio::test]
async fn a_reload_applies_changed_policies_to_live_queues() {
    let broker = TestBroker::start().await;
    let (_conn, ch) = confirming(&broker, "policy_reload").await;
    declare(&ch, "orders.live", FieldTable::default()).await;
    assert_eq!(acks(&ch, "orders.live", 5).await, [true; 5]);

    let reloaded = broker
        .reload(with_policies(vec![policy(
            "orders-limit",
            "orders.*",
            0,
            limit(2, Overflow::DropHead),
        )]))
        .await;
    assert_eq!(reloaded.policies_changed, ["/"]);
    assert!(!reloaded.needs_restart);
    // The queue dropped its oldest three at once.
    assert_eq!(lapin_counts(&ch, "orders.live").await.0, 2);
    assert_eq!(acks(&ch, "orders.live", 1).await, [true]);
    assert_eq!(lapin_counts(&ch, "orders.live").await.0, 2);

    // The policy goes: the queue grows again.
    let reloaded = broker.reload(TestBroker::config()).await;
    assert_eq!(reloaded.policies_changed, ["/"]);
    assert_eq!(acks(&ch, "orders.live", 2).await, [true, true]);
    assert_eq!(lapin_counts(&ch, "orders.live").await.0, 4);
}

fn declared_topology(mut config: Config) -> Config {
    let mut arguments = Arguments::new();
    arguments.insert("x-max-length", 10i64);
    config.exchanges = vec![ExchangeConfig {
        vhost: "/".into(),
        name: "orders".into(),
        kind: ExchangeKind::Topic,
        durable: true,
        auto_delete: false,
        internal: false,
        arguments: Arguments::new(),
    }];
    config.queues = vec![QueueConfig {
        vhost: "/".into(),
        name: "orders.created".into(),
        durable: true,
        auto_delete: false,
        arguments,
    }];
    config.bindings = vec![BindingConfig {
        vhost: "/".into(),
        source: "orders".into(),
        destination: "orders.created".into(),
        destination_kind: BindingDestination::Queue,
        routing_key: "order.created.#".into(),
        arguments: Arguments::new(),
    }];
    config
}

#[tokio::test]
async fn declared_topology_is_in_place_at_start_and_a_reload_adds_users_and_queues() {
    let broker = TestBroker::start_with(declared_topology(TestBroker::config())).await;
    let (_conn, ch) = confirming(&broker, "declared_topology").await;
    let confirm = ch
        .basic_publish(
            "orders".into(),
            "order.created.eu".into(),
            BasicPublishOptions::default(),
            b"o-1",
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap();
    assert!(within("a confirm", confirm).await.unwrap().is_ack());
    assert_eq!(lapin_counts(&ch, "orders.created").await.0, 1);
    // A client declaring it as the file does is fine; otherwise 406 as usual.
    let mut same = FieldTable::default();
    same.insert("x-max-length".into(), AMQPValue::LongLongInt(10));
    ch.queue_declare(
        "orders.created".into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        same,
    )
    .await
    .unwrap();

    assert!(
        connect_lapin(&broker.uri_for("ops", "secret", "%2f"), "ops before")
            .await
            .is_err()
    );
    let mut config = declared_topology(TestBroker::config());
    config.queues.push(QueueConfig {
        vhost: "/".into(),
        name: "audit".into(),
        durable: true,
        auto_delete: false,
        arguments: Arguments::new(),
    });
    config.users.push(UserConfig {
        name: "ops".into(),
        password_hash: warren_server::auth::PasswordHash::compute([1, 2, 3, 4], b"secret"),
        loopback_only: false,
    });
    config
        .permissions
        .push(warren_server::config::PermissionConfig {
            user: "ops".into(),
            vhost: "/".into(),
            permissions: warren_server::auth::Permissions::full(),
        });
    let reloaded = broker.reload(config).await;
    assert_eq!(reloaded.topology.added, ["queue 'audit' in vhost '/'"]);
    assert!(reloaded.topology.differing.is_empty());
    let ops = connect_lapin(&broker.uri_for("ops", "secret", "%2f"), "ops after")
        .await
        .unwrap();
    let ops = ops.create_channel().await.unwrap();
    assert_eq!(lapin_counts(&ops, "audit").await.0, 0);
}

#[tokio::test]
async fn a_byte_limit_counts_messages_paged_out_to_disk() {
    const MIB: usize = 1 << 20;
    let broker = TestBroker::start().await;
    let (_conn, ch) = confirming(&broker, "policy_bytes").await;
    within(
        "queue.declare",
        ch.queue_declare(
            "big.durable".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    // Twelve 1 MiB persistent messages: past the 8 MiB a durable queue keeps in memory,
    // so the later ones live only on disk.
    for i in 0..12u8 {
        let confirm = ch
            .basic_publish(
                "".into(),
                "big.durable".into(),
                BasicPublishOptions::default(),
                &vec![i; MIB],
                lapin::BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap();
        assert!(within("a confirm", confirm).await.unwrap().is_ack());
    }
    broker
        .reload(with_policies(vec![policy(
            "bytes",
            "big.*",
            0,
            PolicyDefinition {
                max_length_bytes: Some(4 * MIB as u64),
                ..Default::default()
            },
        )]))
        .await;
    // Every byte counted, paged out or not: exactly the newest four stay.
    assert_eq!(lapin_counts(&ch, "big.durable").await.0, 4);
    for expected in 8..12u8 {
        let got = within(
            "basic.get",
            ch.basic_get("big.durable".into(), Default::default()),
        )
        .await
        .unwrap()
        .expect("a message");
        assert_eq!(got.delivery.data.len(), MIB);
        assert!(got.delivery.data.iter().all(|b| *b == expected));
    }
}
