//! warren-perf against its own null broker, in-process on `127.0.0.1:0`: every
//! scenario must run to completion with the counts a real broker would give.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use warren_perf::{ExchangeType, Options, Summary};

/// The longest a test waits for a run; reaching it is a failure.
const WAIT: Duration = Duration::from_secs(60);

/// A null broker serving in this process until dropped.
struct NullBroker {
    uri: String,
    serve: JoinHandle<std::io::Result<()>>,
}

impl NullBroker {
    async fn start() -> NullBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        NullBroker {
            uri: format!("amqp://guest:guest@{addr}/%2f"),
            serve: tokio::spawn(warren_perf::null_broker::serve(listener)),
        }
    }

    /// Options for a quiet run against this broker; the test sets the scenario.
    fn options(&self) -> Options {
        Options {
            uri: self.uri.clone(),
            quiet: true,
            ..Options::default()
        }
    }

    /// Runs the scenario, failing the test if it fails or takes longer than [`WAIT`].
    async fn run(&self, options: Options) -> Summary {
        let summary = tokio::time::timeout(WAIT, warren_perf::run(options))
            .await
            .expect("the run finishes in time")
            .expect("the run succeeds");
        assert!(!self.serve.is_finished(), "the null broker stopped serving");
        assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
        summary
    }
}

impl Drop for NullBroker {
    fn drop(&mut self) {
        self.serve.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirmed_publish_is_consumed() {
    let broker = NullBroker::start().await;
    let summary = broker
        .run(Options {
            messages: Some(5_000),
            confirm: 100,
            prefetch: 200,
            ..broker.options()
        })
        .await;
    assert_eq!(summary.published, 5_000);
    assert_eq!(summary.confirmed, 5_000);
    assert_eq!(summary.nacked, 0);
    assert_eq!(summary.expected, 5_000);
    assert_eq!(summary.consumed, 5_000);
    assert_eq!(summary.latency_ms.map(|l| l.count), Some(5_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fanout_delivers_a_copy_to_every_consumer() {
    let broker = NullBroker::start().await;
    let summary = broker
        .run(Options {
            exchange_type: ExchangeType::Fanout,
            queues: 3,
            consumers: 3,
            messages: Some(1_000),
            confirm: 100,
            ..broker.options()
        })
        .await;
    assert_eq!(summary.published, 1_000);
    assert_eq!(summary.confirmed, 1_000);
    assert_eq!(summary.expected, 3_000);
    assert_eq!(summary.consumed, 3_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_exchange_delivers_each_message_once() {
    let broker = NullBroker::start().await;
    let summary = broker
        .run(Options {
            exchange_type: ExchangeType::Topic,
            queues: 2,
            consumers: 2,
            routing_keys: 10,
            messages: Some(1_000),
            auto_ack: true,
            ..broker.options()
        })
        .await;
    assert_eq!(summary.expected, 1_000);
    assert_eq!(summary.consumed, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_beyond_frame_max_arrive_whole() {
    let broker = NullBroker::start().await;
    // 200 KB: several body frames each way at the 128 KiB frame-max.
    let summary = broker
        .run(Options {
            producers: 2,
            consumers: 2,
            messages: Some(50),
            size: 200_000,
            confirm: 10,
            ..broker.options()
        })
        .await;
    assert_eq!(summary.confirmed, 100);
    assert_eq!(summary.consumed, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_one_after_another_share_the_broker() {
    let broker = NullBroker::start().await;
    for _ in 0..2 {
        let summary = broker
            .run(Options {
                messages: Some(500),
                auto_ack: true,
                ..broker.options()
            })
            .await;
        assert_eq!(summary.consumed, 500);
    }
}
