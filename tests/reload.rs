//! The real binary reloading its configuration file: `warren reload` checks the file
//! and signals the broker, which applies a new policy to a live queue; a bad file is
//! refused whole, by `warren reload` and by the broker on a bare SIGHUP alike.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

use common::binary::Binary;
use common::{connect_lapin, lapin_counts, within};

/// The repository's broker.toml (guest, vhost "/"), plus `extra`.
fn write_config(path: &Path, extra: &str) {
    let base = include_str!("../broker.toml");
    std::fs::write(path, format!("{base}\n{extra}")).unwrap();
}

/// Runs `warren reload --config FILE --data-dir DIR`; its exit status and what it
/// printed.
async fn warren_reload(config: &Path, data_dir: &Path) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("reload")
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
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

async fn publish(ch: &lapin::Channel, queue: &str, n: usize) {
    for _ in 0..n {
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                b"order",
                lapin::BasicProperties::default(),
            )
            .await
            .unwrap();
        assert!(within("a confirm", confirm).await.unwrap().is_ack());
    }
}

const LIMIT: &str = r#"
[[policies]]
name = "orders-limit"
pattern = "orders.*"
max_length = 2
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warren_reload_puts_a_new_policy_on_a_live_queue_and_refuses_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    write_config(&config, "");
    let mut broker = Binary::start(&config, dir.path()).await;

    let conn = connect_lapin(&broker.uri(), "reload").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.queue_declare(
        "orders.live".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, "orders.live", 5).await;

    write_config(&config, LIMIT);
    let (ok, said) = warren_reload(&config, dir.path()).await;
    assert!(ok, "{said}");
    assert!(said.contains("reloading"), "{said}");
    broker.wait_for_log("configuration reloaded").await;
    assert_eq!(lapin_counts(&ch, "orders.live").await.0, 2);

    // A typo: `warren reload` says where and signals nothing.
    write_config(&config, &format!("{LIMIT}max_lenght = 3\n"));
    let (ok, said) = warren_reload(&config, dir.path()).await;
    assert!(!ok);
    assert!(said.contains("broker.toml:"), "{said}");
    assert!(said.contains("unknown key `max_lenght`"), "{said}");
    // A bare SIGHUP with the bad file: the broker refuses it and keeps the policy.
    nix::sys::signal::kill(broker.pid(), nix::sys::signal::Signal::SIGHUP).unwrap();
    broker
        .wait_for_log("configuration not reloaded, the running one stays")
        .await;
    publish(&ch, "orders.live", 1).await;
    assert_eq!(lapin_counts(&ch, "orders.live").await.0, 2);
}
