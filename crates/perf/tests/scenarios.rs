//! Short load scenarios through `warren_perf::run` against an in-process warren.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Broker, within};
use warren_perf::{ExchangeType, Options, Summary};

async fn run(options: Options) -> Summary {
    within(warren_perf::run(options)).await.expect("the run")
}

fn assert_latency_ordered(summary: &Summary) {
    let l = summary.latency_ms.expect("latency figures");
    assert_eq!(l.count, summary.consumed);
    assert!(l.p50 > 0.0, "{l:?}");
    assert!(
        l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max,
        "{l:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_message_is_confirmed_and_consumed() {
    let broker = Broker::start().await;
    let summary = run(Options {
        messages: Some(3_000),
        confirm: 100,
        prefetch: 200,
        ..broker.options()
    })
    .await;
    assert_eq!(summary.published, 3_000);
    assert_eq!(summary.confirmed, 3_000);
    assert_eq!(summary.nacked, 0);
    assert_eq!(summary.expected, 3_000);
    assert_eq!(summary.consumed, 3_000);
    assert!(summary.publish_rate > 0.0 && summary.confirm_rate > 0.0);
    assert!(summary.consume_rate > 0.0);
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    assert_latency_ordered(&summary);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_ack_without_confirms_delivers_everything() {
    let broker = Broker::start().await;
    let summary = run(Options {
        messages: Some(5_000),
        auto_ack: true,
        ..broker.options()
    })
    .await;
    assert_eq!(summary.published, 5_000);
    assert_eq!(summary.confirmed, 0);
    assert_eq!(summary.consumed, 5_000);
    assert_latency_ordered(&summary);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_to_three_queues_delivers_three_copies() {
    let broker = Broker::start().await;
    let summary = run(Options {
        exchange_type: ExchangeType::Fanout,
        queues: 3,
        consumers: 3,
        messages: Some(500),
        confirm: 50,
        ..broker.options()
    })
    .await;
    assert_eq!(summary.published, 500);
    assert_eq!(summary.expected, 1_500);
    assert_eq!(summary.consumed, 1_500);
    assert_eq!(summary.scenario.exchange, "perf-fanout");
    assert_latency_ordered(&summary);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_with_many_bindings_routes_each_message_once() {
    let broker = Broker::start().await;
    let summary = run(Options {
        exchange_type: ExchangeType::Topic,
        queues: 2,
        consumers: 2,
        routing_keys: 50,
        topic_bindings: 300,
        messages: Some(1_000),
        confirm: 100,
        ..broker.options()
    })
    .await;
    assert_eq!(summary.scenario.bindings, 300);
    assert_eq!(summary.consumed, 1_000);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_and_consumers_share_a_queue() {
    let broker = Broker::start().await;
    let summary = run(Options {
        producers: 2,
        consumers: 2,
        messages: Some(1_000),
        prefetch: 100,
        multi_ack_every: 10,
        size: 4,
        ..broker.options()
    })
    .await;
    assert_eq!(summary.published, 2_000);
    assert_eq!(summary.consumed, 2_000);
    assert_eq!(summary.scenario.size, 8);
    assert_eq!(summary.warnings.len(), 1, "the padding is reported");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_messages_to_a_durable_queue_are_confirmed() {
    let broker = Broker::start().await;
    let summary = run(Options {
        persistent: true,
        messages: Some(1_000),
        confirm: 100,
        prefetch: 100,
        size: 1024,
        ..broker.options()
    })
    .await;
    assert_eq!(summary.confirmed, 1_000);
    assert_eq!(summary.consumed, 1_000);
    assert!(summary.consume_mb_s > 0.0);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_paces_the_producer() {
    let broker = Broker::start().await;
    let summary = run(Options {
        messages: Some(200),
        rate: 2_000,
        ..broker.options()
    })
    .await;
    assert_eq!(summary.consumed, 200);
    // Message 199 is due 99.5 ms after the first: the run cannot be faster.
    assert!(summary.publish_rate <= 2_011.0, "{}", summary.publish_rate);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_is_measured_then_drained() {
    let broker = Broker::start().await;
    let summary = run(Options {
        backlog: true,
        messages: Some(2_000),
        // The broker runs in this process, so its RSS is ours.
        broker_pid: Some(std::process::id()),
        ..broker.options()
    })
    .await;
    let backlog = summary.backlog.expect("backlog figures");
    assert_eq!(backlog.messages, 2_000);
    assert!(backlog.rss_bytes_per_msg.is_some());
    assert!(backlog.drain_s.is_some_and(|s| s > 0.0));
    assert_eq!(summary.confirmed, 2_000, "backlog runs confirm");
    assert_eq!(summary.consumed, 2_000);
    let broker_usage = summary.broker.expect("broker figures");
    assert!(broker_usage.cpu_us_per_msg.is_some());
    assert!(broker_usage.rss_end_bytes.is_some());
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_opened_and_measured() {
    let broker = Broker::start().await;
    let summary = run(Options {
        producers: 0,
        consumers: 0,
        connections_idle: 20,
        broker_pid: Some(std::process::id()),
        ..broker.options()
    })
    .await;
    let idle = summary.idle_connections.expect("idle figures");
    assert_eq!(idle.count, 20);
    assert!(idle.rss_bytes_per_connection.is_some());
    assert_eq!(summary.published, 0);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_for_a_duration_stops_and_drains() {
    let broker = Broker::start().await;
    let summary = run(Options {
        duration: Some(0.3),
        rate: 1_000,
        confirm: 10,
        ..broker.options()
    })
    .await;
    assert!(summary.published > 0);
    assert_eq!(summary.consumed, summary.published);
    assert!(summary.elapsed_s >= 0.3, "{}", summary.elapsed_s);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_is_written_as_json() {
    let broker = Broker::start().await;
    let summary = run(Options {
        messages: Some(100),
        ..broker.options()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    summary.write_json(&path).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["consumed"], 100);
    assert_eq!(json["scenario"]["exchange_type"], "direct");
    assert!(json["latency_ms"]["p99"].is_number());
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_declared_otherwise_fails_the_run_cleanly() {
    let broker = Broker::start().await;
    // perf-q-0 exists as a transient queue; the persistent run wants it durable.
    let keep = run(Options {
        messages: Some(1),
        keep: true,
        ..broker.options()
    })
    .await;
    assert_eq!(keep.consumed, 1);
    let failed = within(warren_perf::run(Options {
        persistent: true,
        messages: Some(1),
        ..broker.options()
    }))
    .await;
    assert!(
        matches!(failed, Err(warren_perf::Error::Client(_))),
        "{failed:?}"
    );
    broker.stop().await;
}
