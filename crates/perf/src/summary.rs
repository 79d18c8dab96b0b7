//! What a run measured: the JSON summary and its human rendering.

use std::fmt;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::error::Error;
use crate::latency::Latency;
use crate::options::{ExchangeType, Options, Stop};

/// The scenario as run (the options that shape the load).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// Publishing connections.
    pub producers: usize,
    /// Consuming connections.
    pub consumers: usize,
    /// Queues consumed.
    pub queues: usize,
    /// The exchange's type.
    pub exchange_type: ExchangeType,
    /// The exchange's name ("" is the default exchange).
    pub exchange: String,
    /// Routing keys producers cycled through.
    pub routing_keys: usize,
    /// Bindings on the exchange.
    pub bindings: usize,
    /// Body size in bytes (after padding to 8).
    pub size: usize,
    /// Durable queues and persistent messages.
    pub persistent: bool,
    /// Confirm window per producer (0: no confirms).
    pub confirm: usize,
    /// Consumers used no_ack.
    pub auto_ack: bool,
    /// basic.qos prefetch count.
    pub prefetch: u16,
    /// Messages per second per producer (0: unlimited).
    pub rate: u64,
    /// Publishing time asked for, seconds (with no --messages).
    pub duration_s: Option<f64>,
    /// Messages per producer asked for.
    pub messages: Option<u64>,
    /// Backlog mode.
    pub backlog: bool,
    /// Idle connections opened.
    pub connections_idle: usize,
}

impl Scenario {
    /// The scenario of these options, with the routing figures of their topology.
    pub fn new(options: &Options, routing_keys: usize, bindings: usize) -> Self {
        let (duration_s, messages) = match options.stop() {
            Stop::After(duration) => (Some(duration.as_secs_f64()), None),
            Stop::Messages(n) => (None, Some(n)),
        };
        Scenario {
            producers: options.producers,
            consumers: options.consumers,
            queues: options.queues,
            exchange_type: options.exchange_type,
            exchange: options.exchange_name(),
            routing_keys,
            bindings,
            size: options.body_size(),
            persistent: options.persistent,
            confirm: options.confirm_window(),
            auto_ack: options.auto_ack,
            prefetch: options.prefetch,
            rate: options.rate,
            duration_s,
            messages,
            backlog: options.backlog,
            connections_idle: options.connections_idle,
        }
    }
}

/// CPU time and memory of a process over the measured run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Usage {
    /// The process id (`None`: the load tool itself).
    pub pid: Option<u32>,
    /// utime + stime over the run, seconds.
    pub cpu_s: Option<f64>,
    /// CPU over the run as a share of one core, percent.
    pub cpu_percent: Option<f64>,
    /// CPU microseconds per message delivered (per message published when nothing
    /// was consumed).
    pub cpu_us_per_msg: Option<f64>,
    /// VmRSS when the measured run started, bytes.
    pub rss_start_bytes: Option<u64>,
    /// VmRSS when it ended, bytes.
    pub rss_end_bytes: Option<u64>,
}

/// The backlog scenario: memory per queued message, then the drain.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Backlog {
    /// Message copies queued (published and confirmed, times queues reached).
    pub messages: u64,
    /// Time to publish and confirm them, seconds.
    pub publish_s: f64,
    /// Broker VmRSS before publishing, bytes.
    pub rss_before_bytes: Option<u64>,
    /// Broker VmRSS with the backlog queued, bytes.
    pub rss_after_bytes: Option<u64>,
    /// RSS growth per queued message, bytes.
    pub rss_bytes_per_msg: Option<f64>,
    /// Time for the consumers to receive the backlog, seconds (`None` without
    /// consumers).
    pub drain_s: Option<f64>,
    /// Deliveries per second during the drain.
    pub drain_rate: Option<f64>,
}

/// The idle-connections scenario: memory per connection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IdleConnections {
    /// Connections opened, each with one channel.
    pub count: usize,
    /// Time to open them all, seconds.
    pub open_s: f64,
    /// Broker VmRSS before, bytes.
    pub rss_before_bytes: Option<u64>,
    /// Broker VmRSS with them open, bytes.
    pub rss_after_bytes: Option<u64>,
    /// RSS growth per connection, bytes.
    pub rss_bytes_per_connection: Option<f64>,
}

/// Everything a run measured.
///
/// Rates are over the time from the first publish to the producers' last publish
/// (`publish_rate`), last confirm (`confirm_rate`), and the consumers' last delivery
/// (`consume_rate`; in backlog mode from the start of the drain).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The options that shaped the load.
    pub scenario: Scenario,
    /// Declaring the topology and opening connections, seconds (not measured).
    pub setup_s: f64,
    /// The measured run, from the first publish until the consumers had everything.
    pub elapsed_s: f64,
    /// Messages published.
    pub published: u64,
    /// Publishes acked by the broker.
    pub confirmed: u64,
    /// Publishes nacked by the broker.
    pub nacked: u64,
    /// Deliveries received.
    pub consumed: u64,
    /// Deliveries expected (published and not nacked, times queues reached).
    pub expected: u64,
    /// Messages published per second.
    pub publish_rate: f64,
    /// Confirms per second (0 without confirms).
    pub confirm_rate: f64,
    /// Deliveries per second.
    pub consume_rate: f64,
    /// Body megabytes (10^6) published per second.
    pub publish_mb_s: f64,
    /// Body megabytes (10^6) received per second.
    pub consume_mb_s: f64,
    /// End-to-end latency in milliseconds (`None` when nothing was consumed).
    pub latency_ms: Option<Latency>,
    /// The broker's CPU and memory (with `--broker-pid`).
    pub broker: Option<Usage>,
    /// The load tool's own CPU and memory: when it nears 100% of a core per worker
    /// thread, the tool, not the broker, was the limit.
    pub tool: Usage,
    /// The backlog scenario's figures (with `--backlog`).
    pub backlog: Option<Backlog>,
    /// The idle-connections figures (with `--connections-idle`).
    pub idle_connections: Option<IdleConnections>,
    /// Anything that makes the figures less than they seem (padded bodies, an
    /// incomplete drain).
    pub warnings: Vec<String>,
}

impl Summary {
    /// Writes the summary as JSON to `path`, or to stdout when it is `-`.
    pub fn write_json(&self, path: &Path) -> Result<(), Error> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        if path == Path::new("-") {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{text}")?;
            stdout.flush()?;
        } else {
            std::fs::write(path, format!("{text}\n"))?;
        }
        Ok(())
    }
}

/// `12.3` or `-` for a missing figure.
struct Opt<T>(Option<T>);

impl fmt::Display for Opt<f64> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => write!(f, "{:.*}", f.precision().unwrap_or(1), value),
            None => f.write_str("-"),
        }
    }
}

fn mib(bytes: Option<u64>) -> Opt<f64> {
    Opt(bytes.map(|b| b as f64 / (1024.0 * 1024.0)))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.scenario;
        writeln!(
            f,
            "warren-perf: {} producer(s), {} consumer(s), {} queue(s) via {} exchange '{}', \
             {} B bodies{}{}{}",
            s.producers,
            s.consumers,
            s.queues,
            s.exchange_type.as_str(),
            s.exchange,
            s.size,
            if s.persistent { ", persistent" } else { "" },
            if s.confirm > 0 {
                format!(", confirms (window {})", s.confirm)
            } else {
                String::new()
            },
            if s.auto_ack {
                ", auto-ack"
            } else {
                ", manual ack"
            },
        )?;
        writeln!(
            f,
            "  run        {:.2} s (setup {:.2} s)",
            self.elapsed_s, self.setup_s
        )?;
        writeln!(
            f,
            "  published  {:>12} msgs  {:>12.0} msg/s  {:>8.2} MB/s",
            self.published, self.publish_rate, self.publish_mb_s
        )?;
        if s.confirm > 0 {
            writeln!(
                f,
                "  confirmed  {:>12} msgs  {:>12.0} msg/s  ({} nacked)",
                self.confirmed, self.confirm_rate, self.nacked
            )?;
        }
        if s.consumers > 0 {
            writeln!(
                f,
                "  consumed   {:>12} msgs  {:>12.0} msg/s  {:>8.2} MB/s  (expected {})",
                self.consumed, self.consume_rate, self.consume_mb_s, self.expected
            )?;
        }
        if let Some(l) = &self.latency_ms {
            writeln!(
                f,
                "  latency    p50 {:.3} ms  p95 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
                l.p50, l.p95, l.p99, l.p999, l.max
            )?;
        }
        if let Some(b) = &self.broker {
            writeln!(
                f,
                "  broker     cpu {:.2} s ({:.0}% of a core), {:.2} µs/msg; rss {:.1} -> {:.1} MiB",
                Opt(b.cpu_s),
                Opt(b.cpu_percent),
                Opt(b.cpu_us_per_msg),
                mib(b.rss_start_bytes),
                mib(b.rss_end_bytes),
            )?;
        }
        let t = &self.tool;
        writeln!(
            f,
            "  tool       cpu {:.2} s ({:.0}% of a core), {:.2} µs/msg; rss {:.1} MiB",
            Opt(t.cpu_s),
            Opt(t.cpu_percent),
            Opt(t.cpu_us_per_msg),
            mib(t.rss_end_bytes),
        )?;
        if let Some(b) = &self.backlog {
            writeln!(
                f,
                "  backlog    {} msgs in {:.2} s; broker rss {:.1} -> {:.1} MiB = {:.0} B/msg; \
                 drain {:.2} s at {:.0} msg/s",
                b.messages,
                b.publish_s,
                mib(b.rss_before_bytes),
                mib(b.rss_after_bytes),
                Opt(b.rss_bytes_per_msg),
                Opt(b.drain_s),
                Opt(b.drain_rate),
            )?;
        }
        if let Some(c) = &self.idle_connections {
            writeln!(
                f,
                "  idle conns {} opened in {:.2} s; broker rss {:.1} -> {:.1} MiB = {:.0} B/connection",
                c.count,
                c.open_s,
                mib(c.rss_before_bytes),
                mib(c.rss_after_bytes),
                Opt(c.rss_bytes_per_connection),
            )?;
        }
        for warning in &self.warnings {
            writeln!(f, "  warning: {warning}")?;
        }
        Ok(())
    }
}
