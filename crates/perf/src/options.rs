//! The command line: what to run, and the checks that reject a scenario that cannot
//! mean anything before a connection is opened.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;

use crate::error::Error;

/// The broker `--uri` defaults to: a local RabbitMQ-compatible broker, vhost `/`.
pub const DEFAULT_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The prefix of the queue names (`perf-q-0`, `perf-q-1`, ...).
pub const DEFAULT_QUEUE_PREFIX: &str = "perf-q-";
/// How long a run publishes when neither `--duration` nor `--messages` is given.
pub const DEFAULT_DURATION_SECS: f64 = 10.0;
/// The smallest body: the send timestamp takes the first 8 bytes.
pub const MIN_BODY: usize = 8;
/// Confirm window used by `--backlog` when `--confirm` is 0: the backlog is measured
/// only once the broker has confirmed holding every message.
pub const BACKLOG_CONFIRM_WINDOW: usize = 1000;

/// The exchange producers publish to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeType {
    /// Each message goes to the one queue bound with its routing key (without
    /// `--exchange` or `--routing-keys`: the default exchange, key = queue name).
    Direct,
    /// Each message goes to every queue.
    Fanout,
    /// Keys `perf.K.qI` match the pattern `perf.*.qI` of exactly one queue.
    Topic,
}

impl ExchangeType {
    /// The name sent in exchange.declare.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeType::Direct => "direct",
            ExchangeType::Fanout => "fanout",
            ExchangeType::Topic => "topic",
        }
    }
}

/// How long the producers publish.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// For this long.
    After(Duration),
    /// This many messages per producer.
    Messages(u64),
}

/// A load scenario: the command-line options of `warren-perf`.
///
/// Every producer and every consumer gets a connection of its own. Consumer `i`
/// consumes queue `i % queues`; a producer cycles through the routing keys, so the
/// queues share its messages evenly (fanout: every queue gets every message).
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(
    name = "warren-perf",
    version,
    about = "Load an AMQP 0-9-1 broker: publish, confirm, consume, and report rates, \
             latency percentiles and the broker's CPU and memory per message.",
    after_help = "Progress goes to stderr every second, then a human summary; the JSON \
                  summary goes to stdout (or --json PATH). Worker threads: the tokio \
                  default (one per core), or TOKIO_WORKER_THREADS."
)]
pub struct Options {
    /// The broker: amqp://user:pass@host:port/vhost (vhost `/` is written %2f).
    #[arg(long, default_value = DEFAULT_URI)]
    pub uri: String,

    /// Publishing connections, each with one channel.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,

    /// Consuming connections, each with one channel and one consumer; consumer i
    /// consumes queue i % queues. With any consumer, every queue needs one.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,

    /// Queues declared, named PREFIX0, PREFIX1, ... (purged before the run, deleted
    /// after it unless --keep).
    #[arg(long, default_value_t = 1)]
    pub queues: usize,

    /// The prefix of the queue names.
    #[arg(long, default_value = DEFAULT_QUEUE_PREFIX)]
    pub queue_prefix: String,

    /// The type of the exchange producers publish to.
    #[arg(long, value_enum, default_value_t = ExchangeType::Direct)]
    pub exchange_type: ExchangeType,

    /// The exchange's name. Default: the default exchange ("") for direct without
    /// --routing-keys, else perf-direct, perf-fanout or perf-topic. Declared (durable
    /// with --persistent) and deleted after the run, except "" and amq.* exchanges.
    #[arg(long)]
    pub exchange: Option<String>,

    /// Distinct routing keys producers cycle through (0: one per queue). Each key
    /// routes to one queue, key k to queue k % queues, so it must be 0 or at least
    /// --queues. Ignored for fanout.
    #[arg(long, default_value_t = 0)]
    pub routing_keys: usize,

    /// Topic only: the total number of bindings on the exchange. Beyond each queue's
    /// own pattern, the rest are patterns no message matches, bound to idle queues
    /// (PREFIXidle-J, at most 100), so routing has that many bindings to consider.
    #[arg(long, default_value_t = 0)]
    pub topic_bindings: usize,

    /// Body size in bytes. The first 8 bytes carry the send timestamp, so a smaller
    /// size is padded to 8.
    #[arg(long, default_value_t = 16)]
    pub size: usize,

    /// Durable queues (and exchange) and persistent messages (delivery-mode 2).
    #[arg(long)]
    pub persistent: bool,

    /// Publisher confirms with at most WINDOW unconfirmed messages per producer
    /// (0: no confirms).
    #[arg(long, value_name = "WINDOW", default_value_t = 0)]
    pub confirm: usize,

    /// Consume with no_ack (the broker forgets a message once sent). Without it,
    /// consumers acknowledge with basic.ack multiple every --multi-ack-every.
    #[arg(long)]
    pub auto_ack: bool,

    /// basic.qos prefetch count per consumer (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub prefetch: u16,

    /// Manual ack: acknowledge every N deliveries with `multiple` (0: half the
    /// prefetch, or every delivery without a prefetch).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub multi_ack_every: usize,

    /// Messages per second per producer (0: as fast as the broker takes them).
    #[arg(long, value_name = "MSG_PER_S", default_value_t = 0)]
    pub rate: u64,

    /// Publish for this many seconds (default 10 unless --messages).
    #[arg(long, value_name = "SECS", conflicts_with = "messages")]
    pub duration: Option<f64>,

    /// Publish this many messages per producer.
    #[arg(long, value_name = "N")]
    pub messages: Option<u64>,

    /// Open N idle connections, each with one channel, before the load, and report
    /// the broker's RSS per connection (needs --broker-pid for the memory figure).
    /// With --producers 0 --consumers 0 that is the whole run.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub connections_idle: usize,

    /// Publish with no consumer running (with confirms: --confirm, or a window of
    /// 1000), report the broker's RSS per queued message, then start the consumers
    /// and time the drain.
    #[arg(long)]
    pub backlog: bool,

    /// The broker's process id: report its CPU time per message delivered (utime +
    /// stime from /proc/PID/stat over the run) and its VmRSS (/proc/PID/status).
    #[arg(long, value_name = "PID")]
    pub broker_pid: Option<u32>,

    /// Where the JSON summary goes: a file, or - for stdout.
    #[arg(long, value_name = "PATH", default_value = "-")]
    pub json: PathBuf,

    /// No progress lines and no human summary on stderr.
    #[arg(long)]
    pub quiet: bool,

    /// Leave the queues, exchange and bindings in place after the run.
    #[arg(long)]
    pub keep: bool,
}

impl Default for Options {
    /// The options of `warren-perf` with no arguments.
    fn default() -> Self {
        Options {
            uri: DEFAULT_URI.to_owned(),
            producers: 1,
            consumers: 1,
            queues: 1,
            queue_prefix: DEFAULT_QUEUE_PREFIX.to_owned(),
            exchange_type: ExchangeType::Direct,
            exchange: None,
            routing_keys: 0,
            topic_bindings: 0,
            size: 16,
            persistent: false,
            confirm: 0,
            auto_ack: false,
            prefetch: 0,
            multi_ack_every: 0,
            rate: 0,
            duration: None,
            messages: None,
            connections_idle: 0,
            backlog: false,
            broker_pid: None,
            json: PathBuf::from("-"),
            quiet: false,
            keep: false,
        }
    }
}

impl Options {
    /// Checks that the options describe a scenario that can run.
    ///
    /// Fails with [`Error::Options`] saying which option is wrong.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |text: &str| Err(Error::Options(text.to_owned()));
        let load = self.producers > 0 || self.consumers > 0;
        if !load && self.connections_idle == 0 {
            return fail("nothing to do: no producer, no consumer, no --connections-idle");
        }
        if load && self.queues == 0 {
            return fail("--queues must be at least 1");
        }
        if self.consumers > 0 && self.consumers < self.queues {
            return fail("every queue needs a consumer: give --consumers >= --queues (or 0)");
        }
        if self.routing_keys > 0 && self.routing_keys < self.queues {
            return fail(
                "--routing-keys must be 0 or at least --queues (key k goes to queue k % queues)",
            );
        }
        if self.topic_bindings > 0 && self.exchange_type != ExchangeType::Topic {
            return fail("--topic-bindings needs --exchange-type topic");
        }
        if self.exchange.as_deref() == Some("")
            && (self.exchange_type != ExchangeType::Direct || self.routing_keys > 0)
        {
            return fail(
                "the default exchange (\"\") is direct and routes by queue name only: \
                 name an exchange for fanout, topic or --routing-keys",
            );
        }
        if let Some(duration) = self.duration
            && !(duration.is_finite() && duration > 0.0)
        {
            return fail("--duration must be a positive number of seconds");
        }
        if self.messages == Some(0) {
            return fail("--messages must be at least 1");
        }
        if self.backlog && self.producers == 0 {
            return fail("--backlog needs at least one producer");
        }
        Ok(())
    }

    /// The body size actually sent: `--size`, at least [`MIN_BODY`].
    pub fn body_size(&self) -> usize {
        self.size.max(MIN_BODY)
    }

    /// When producers stop.
    pub fn stop(&self) -> Stop {
        match (self.messages, self.duration) {
            (Some(messages), _) => Stop::Messages(messages),
            (None, Some(secs)) => Stop::After(Duration::from_secs_f64(secs)),
            (None, None) => Stop::After(Duration::from_secs_f64(DEFAULT_DURATION_SECS)),
        }
    }

    /// The confirm window producers keep (0: no confirms).
    pub fn confirm_window(&self) -> usize {
        if self.backlog && self.confirm == 0 {
            BACKLOG_CONFIRM_WINDOW
        } else {
            self.confirm
        }
    }

    /// Deliveries a manual-ack consumer takes before one basic.ack with `multiple`.
    pub fn ack_every(&self) -> usize {
        match (self.multi_ack_every, self.prefetch) {
            (0, 0) => 1,
            (0, prefetch) => usize::from(prefetch / 2).max(1),
            (every, _) => every,
        }
    }

    /// The exchange published to (see `--exchange`).
    pub fn exchange_name(&self) -> String {
        if let Some(name) = &self.exchange {
            return name.clone();
        }
        match self.exchange_type {
            ExchangeType::Direct if self.routing_keys == 0 => String::new(),
            kind => format!("perf-{}", kind.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("warren-perf").chain(args.iter().copied()))
    }

    fn rejected(args: &[&str]) -> String {
        match parse(args).unwrap().validate() {
            Err(Error::Options(text)) => text,
            other => panic!("{args:?} should be rejected, got {other:?}"),
        }
    }

    #[test]
    fn no_arguments_parse_to_the_default() {
        let options = parse(&[]).unwrap();
        assert_eq!(options, Options::default());
        options.validate().unwrap();
        assert_eq!(options.stop(), Stop::After(Duration::from_secs(10)));
    }

    #[test]
    fn small_bodies_are_padded_to_hold_the_timestamp() {
        assert_eq!(parse(&["--size", "1"]).unwrap().body_size(), 8);
        assert_eq!(parse(&["--size", "16"]).unwrap().body_size(), 16);
    }

    #[test]
    fn duration_and_messages_exclude_each_other() {
        assert!(parse(&["--duration", "1", "--messages", "5"]).is_err());
        assert_eq!(
            parse(&["--messages", "5"]).unwrap().stop(),
            Stop::Messages(5)
        );
        assert_eq!(
            parse(&["--duration", "0.5"]).unwrap().stop(),
            Stop::After(Duration::from_millis(500))
        );
    }

    #[test]
    fn every_queue_needs_a_consumer() {
        rejected(&["--queues", "3", "--consumers", "2"]);
        parse(&["--queues", "3", "--consumers", "0"])
            .unwrap()
            .validate()
            .unwrap();
    }

    #[test]
    fn nonsense_is_rejected() {
        rejected(&["--producers", "0", "--consumers", "0"]);
        rejected(&["--queues", "0"]);
        rejected(&["--queues", "4", "--consumers", "4", "--routing-keys", "2"]);
        rejected(&["--topic-bindings", "10"]);
        rejected(&["--exchange", "", "--exchange-type", "fanout"]);
        rejected(&["--duration", "0"]);
        rejected(&["--duration", "NaN"]);
        rejected(&["--messages", "0"]);
        rejected(&["--backlog", "--producers", "0"]);
        assert!(parse(&["--exchange-type", "headers"]).is_err());
    }

    #[test]
    fn idle_connections_alone_are_a_scenario() {
        let options = parse(&[
            "--producers",
            "0",
            "--consumers",
            "0",
            "--connections-idle",
            "5",
        ])
        .unwrap();
        options.validate().unwrap();
    }

    #[test]
    fn exchange_defaults_follow_the_type() {
        assert_eq!(parse(&[]).unwrap().exchange_name(), "");
        assert_eq!(
            parse(&["--routing-keys", "4"]).unwrap().exchange_name(),
            "perf-direct"
        );
        assert_eq!(
            parse(&["--exchange-type", "fanout"])
                .unwrap()
                .exchange_name(),
            "perf-fanout"
        );
        assert_eq!(
            parse(&["--exchange-type", "topic", "--exchange", "t"])
                .unwrap()
                .exchange_name(),
            "t"
        );
    }

    #[test]
    fn ack_batch_follows_the_prefetch() {
        assert_eq!(parse(&[]).unwrap().ack_every(), 1);
        assert_eq!(parse(&["--prefetch", "1000"]).unwrap().ack_every(), 500);
        assert_eq!(parse(&["--prefetch", "1"]).unwrap().ack_every(), 1);
        assert_eq!(
            parse(&["--prefetch", "1000", "--multi-ack-every", "10"])
                .unwrap()
                .ack_every(),
            10
        );
    }

    #[test]
    fn backlog_always_confirms() {
        assert_eq!(parse(&["--backlog"]).unwrap().confirm_window(), 1000);
        assert_eq!(
            parse(&["--backlog", "--confirm", "50"])
                .unwrap()
                .confirm_window(),
            50
        );
        assert_eq!(parse(&[]).unwrap().confirm_window(), 0);
    }
}
