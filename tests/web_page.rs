//! The management web page in a real headless browser (Chromium): it logs in, lists
//! a queue the test created with its depth, and the open connection; without
//! credentials it asks for them.
//!
//! Chromium comes from `WARREN_CHROMIUM` or the PATH. Without one the test says so and
//! passes, except under CI (`CI` set), where a missing browser is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use warren_client::QueueDeclareOptions;

use common::{TestBroker, connect_client, publish_all};

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WARREN_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| {
            ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name))
        })
        .find(|candidate| candidate.is_file())
}

/// The page's DOM after its scripts ran (virtual time: timers fire without waiting).
async fn rendered(browser: &PathBuf, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=5000", "--dump-dom", url])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("chromium finished within 90 s")
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_page_lists_queues_with_their_depth_and_connections() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs Chromium for the web page test (set WARREN_CHROMIUM or install chromium)"
        );
        eprintln!("skipped: no Chromium here (set WARREN_CHROMIUM to run the web page test)");
        return;
    };
    let broker = TestBroker::start().await;
    let connection = connect_client(&broker.uri(), "web page test").await;
    let channel = connection.open_channel().await.unwrap();
    channel.confirm_select().await.unwrap();
    channel
        .queue_declare("web.orders", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&channel, "", "web.orders", [&b"1"[..], b"2", b"3"]).await;

    let page = format!("http://{}/", broker.management_addr());
    let dom = rendered(&browser, &format!("{page}#guest:guest")).await;
    assert!(
        dom.contains(r#"<tr data-queue="web.orders" data-vhost="/" data-ready="3">"#),
        "no row for web.orders with 3 ready in:\n{dom}"
    );
    assert!(
        dom.contains(r#"<polyline points=""#),
        "no depth chart in:\n{dom}"
    );
    assert!(
        dom.contains("data-connection=") && dom.contains("web page test"),
        "no row for the connection in:\n{dom}"
    );

    let anonymous = rendered(&browser, &page).await;
    assert!(
        anonymous.contains(r#"id="login" style="display: block;""#),
        "no login form without credentials:\n{anonymous}"
    );
    assert!(!anonymous.contains("data-queue="), "{anonymous}");
}
