//! `warren-perf`: a load tool for AMQP 0-9-1 brokers in the spirit of RabbitMQ's
//! PerfTest, built on `warren-client`.
//!
//! Producers publish bodies that carry their send time in the first 8 bytes;
//! consumers record the end-to-end latency in an HDR histogram. A run reports
//! publish, confirm and consume rates, latency percentiles, and with the broker's
//! process id its CPU time per message and resident memory (per queued message in
//! backlog mode, per connection with idle connections).
//!
//! The binary is a thin wrapper: parse [`Options`], [`run`] them, print the
//! [`Summary`]. Tests drive [`run`] directly:
//!
//! ```no_run
//! # async fn demo() -> Result<(), warren_perf::Error> {
//! let options = warren_perf::Options {
//!     uri: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
//!     messages: Some(10_000),
//!     confirm: 1000,
//!     quiet: true,
//!     ..Default::default()
//! };
//! let summary = warren_perf::run(options).await?;
//! assert_eq!(summary.consumed, 10_000);
//! # Ok(())
//! # }
//! ```
//!
//! The tool must not be what limits a run: per message a producer reads the clock
//! once, writes 8 bytes and the padding into a shared buffer, and publishes; a consumer
//! reads the clock, records one histogram value and bumps one counter. Every producer
//! and consumer has its own connection. The summary reports the tool's own CPU time
//! beside the broker's, to show which of the two was the limit.
#![deny(missing_docs)]

mod consumer;
mod error;
mod latency;
pub mod null_broker;
mod options;
mod procfs;
mod producer;
mod progress;
mod rate;
mod run;
mod shared;
mod summary;
mod topology;

pub use error::Error;
pub use latency::Latency;
pub use options::{DEFAULT_URI, ExchangeType, MIN_BODY, Options, Stop};
pub use rate::RateLimiter;
pub use run::{DRAIN_IDLE, run};
pub use summary::{Backlog, IdleConnections, Scenario, Summary, Usage};
