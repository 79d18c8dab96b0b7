//! The `warren` CLI against the real running binary, through its management API:
//! list, policies, peek, redrive, purge and delete print what they saw and did, and
//! a refused login is a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;

use warren_client::QueueDeclareOptions;

use common::binary::Binary;
use common::{connect_client, counts, publish_all, until_ready};

/// Runs `warren ARGS --management-listen API`: whether it succeeded, and stdout then
/// stderr.
async fn warren(api: SocketAddr, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(args)
        .arg("--management-listen")
        .arg(api.to_string())
        .env_remove("WARREN_USER")
        .env_remove("WARREN_PASSWORD")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn ok(api: SocketAddr, args: &[&str]) -> String {
    let (success, text) = warren(api, args).await;
    assert!(success, "warren {args:?} failed:\n{text}");
    text
}

/// The line of `table` whose second column is `name`.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.get(1) == Some(&name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{table}"))
}

#[tokio::test]
async fn the_cli_inspects_and_operates_a_running_broker() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    let policy = r#"
[[policies]]
name = "orders-limits"
pattern = "orders"
priority = 1
max_length = 100
dead_letter_exchange = ""
dead_letter_routing_key = "orders.dlq"
"#;
    let base = include_str!("../broker.toml");
    std::fs::write(&config, format!("{base}\n{policy}")).unwrap();
    let broker = Binary::start(&config, dir.path()).await;
    let api = broker.management_addr();

    let connection = connect_client(&broker.uri(), "cli test").await;
    let ch = connection.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    ch.queue_declare("orders.dlq", QueueDeclareOptions::default())
        .await
        .unwrap();
    let orders = QueueDeclareOptions {
        max_length: Some(50),
        ..Default::default()
    };
    ch.queue_declare("orders", orders).await.unwrap();
    publish_all(&ch, "", "orders", [&b"o1"[..], b"o2", b"o3"]).await;
    let first = ch.basic_get("orders", false).await.unwrap().unwrap();
    ch.basic_reject(first.delivery_tag, false).await.unwrap();
    until_ready(&ch, "orders.dlq", 1).await;

    let queues = ok(api, &["list", "queues"]).await;
    let orders_row = row(&queues, "orders");
    assert_eq!(orders_row[..5], ["/", "orders", "2", "0", "0"], "{queues}");
    assert_eq!(orders_row.last(), Some(&"orders-limits"), "{queues}");
    assert_eq!(row(&queues, "orders.dlq")[2], "1", "{queues}");

    let policies = ok(api, &["policies", "orders"]).await;
    // The lower limit wins: the queue's own 50 over the policy's 100.
    assert_eq!(
        row_with(&policies, "max-length"),
        ["max-length", "50", "argument", "x-max-length"],
        "{policies}"
    );
    assert_eq!(
        row_with(&policies, "dead-letter-routing-key"),
        [
            "dead-letter-routing-key",
            "orders.dlq",
            "policy",
            "orders-limits"
        ],
        "{policies}"
    );

    let peeked = ok(api, &["peek", "orders", "1"]).await;
    assert!(peeked.contains("payload o2"), "{peeked}");
    assert!(!peeked.contains("o3"), "{peeked}");
    assert_eq!(counts(&ch, "orders").await.0, 2);

    let redriven = ok(api, &["redrive", "orders.dlq"]).await;
    assert_eq!(redriven.trim(), "moved 1 message (1 to 'orders')");
    until_ready(&ch, "orders", 3).await;

    let purged = ok(api, &["purge", "orders"]).await;
    assert_eq!(purged.trim(), "purged 3 messages from queue 'orders'");
    let deleted = ok(api, &["delete", "queue", "orders.dlq"]).await;
    assert_eq!(deleted.trim(), "deleted queue 'orders.dlq' (0 messages)");
    let queues = ok(api, &["list", "queues"]).await;
    assert!(!queues.contains("orders.dlq"), "{queues}");

    let connections = ok(api, &["list", "connections"]).await;
    assert!(connections.contains("cli test"), "{connections}");
    let exchanges = ok(api, &["list", "exchanges"]).await;
    assert!(exchanges.contains("amq.topic"), "{exchanges}");
    let bindings = ok(api, &["list", "bindings"]).await;
    assert!(
        row(&bindings, "(default)").contains(&"orders"),
        "{bindings}"
    );

    let (success, text) = warren(api, &["list", "queues", "--password", "wrong"]).await;
    assert!(!success);
    assert!(text.contains("refused the login"), "{text}");
    let (success, text) = warren(api, &["purge", "nowhere"]).await;
    assert!(!success);
    assert!(text.contains("404") && text.contains("nowhere"), "{text}");
}

/// The cells of the line that starts with `key`.
fn row_with<'a>(table: &'a str, key: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&key))
        .unwrap_or_default()
}

#[tokio::test]
async fn plan_apply_and_export_converge_the_broker_on_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = include_str!("../broker.toml");
    let v1 = dir.path().join("v1.toml");
    std::fs::write(
        &v1,
        format!(
            r#"{base}
[[exchanges]]
name = "events"
type = "fanout"
[[queues]]
name = "jobs"
[[queues]]
name = "old.jobs"
[[bindings]]
source = "events"
destination = "jobs"
[[policies]]
name = "limits"
pattern = "*jobs"
max_length = 100
"#
        ),
    )
    .unwrap();
    let broker = Binary::start(&v1, dir.path()).await;
    let api = broker.management_addr();
    let connection = connect_client(&broker.uri(), "plan test").await;
    let ch = connection.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    ch.queue_declare("app.own", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&ch, "", "old.jobs", [&b"1"[..], b"2"]).await;

    // The operator edits the file the broker runs with.
    let v2 = &v1;
    std::fs::write(
        v2,
        format!(
            r#"{base}
[[exchanges]]
name = "events"
type = "fanout"
[[queues]]
name = "jobs"
[[queues]]
name = "fresh"
[[policies]]
name = "limits"
pattern = "*jobs"
max_length = 50
"#
        ),
    )
    .unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let v2_path = v2.to_str().unwrap();
    let with_v2 = |command: &'static [&'static str]| {
        let mut args: Vec<&str> = command.to_vec();
        args.extend(["--config", v2_path, "--data-dir", data_dir]);
        args
    };
    let planned = ok(api, &with_v2(&["plan"])).await;
    for line in [
        "+ queue 'fresh' in vhost '/'",
        "~ policy 'limits' in vhost '/': definition {\"max-length\":50}",
        "- queue 'old.jobs' in vhost '/' (holds 2 messages: needs --force)",
        "- binding 'events' -> queue 'jobs' key '' in vhost '/'",
        "1 to add, 1 to change, 2 to remove",
    ] {
        assert!(planned.contains(line), "no {line:?} in:\n{planned}");
    }
    assert!(
        !planned.contains("app.own"),
        "a client's queue is not the file's:\n{planned}"
    );

    let (success, refused) = warren(api, &with_v2(&["apply"])).await;
    assert!(!success, "{refused}");
    assert!(refused.contains("nothing applied"), "{refused}");
    assert_eq!(counts(&ch, "old.jobs").await.0, 2);

    let applied = ok(api, &with_v2(&["apply", "--force"])).await;
    assert!(applied.contains("applied"), "{applied}");
    let queues = ok(api, &["list", "queues"]).await;
    for kept in ["app.own", "fresh", "jobs"] {
        row(&queues, kept);
    }
    assert!(!queues.contains("old.jobs"), "{queues}");
    let bindings = ok(api, &["list", "bindings"]).await;
    assert!(!bindings.contains("events"), "{bindings}");
    let again = ok(api, &with_v2(&["plan"])).await;
    assert_eq!(again, "the broker matches the file: nothing to do\n");

    // Export, and the same definitions through import: one broker.toml that loads.
    let exported_path = dir.path().join("exported.toml");
    let exported_arg = exported_path.to_str().unwrap();
    ok(api, &["export", "--output", exported_arg]).await;
    let exported = std::fs::read_to_string(&exported_path).unwrap();
    assert!(exported.contains("name = \"fresh\""), "{exported}");
    assert!(exported.contains("pattern = \"*jobs\""), "{exported}");
    assert!(exported.contains("max_length = 50"), "{exported}");
    let checked = ok(api, &["check", exported_arg]).await;
    assert!(checked.contains("ok"), "{checked}");
    let (status, definitions) =
        common::http_get(api, "/api/definitions", Some("guest:guest")).await;
    assert_eq!(status, 200);
    let definitions_path = dir.path().join("definitions.json");
    std::fs::write(&definitions_path, definitions).unwrap();
    let imported = ok(
        api,
        &["import-definitions", definitions_path.to_str().unwrap()],
    )
    .await;
    let body = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(body(&imported), body(&exported));
}
