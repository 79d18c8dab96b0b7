//! A small load tool: one producer, one queue, one consumer, through lapin.
//!
//! ```text
//! cargo run --release --example throughput -- --uri amqp://guest:guest@127.0.0.1:5672/%2f \
//!     --messages 200000 --size 16 [--confirm 1000] [--manual-ack] [--prefetch 1000] [--broker-pid PID]
//! ```
//! Prints one line of JSON: messages, seconds, msg/s, and with `--broker-pid` the
//! broker's CPU time per message (utime + stime from /proc, in microseconds).
//!
//! `--topic-bindings N` publishes through a topic exchange with N bindings instead of
//! the default exchange: the consumer's queue matches every message through one
//! `bench.*.hit` binding, and N - 1 other patterns (exact, `*` and `#` mixed, bound to
//! 100 idle queues) match none. Keys vary per message. The setup time of the
//! bindings is reported too.
//!
//! `--backlog` publishes with no consumer and reports the broker's resident memory
//! per queued message (VmRSS growth over the run, divided by the messages), then
//! deletes the queue (`--keep` leaves it, to measure recovery after a restart).
//!
//! `--client warren` drives the same scenario through warren-client instead of lapin.
//!
//! `--persistent` declares the queue durable and publishes persistent messages
//! (delivery-mode 2): the durable path, where a confirm waits for the disk.

use std::collections::VecDeque;
use std::time::Instant;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

struct Args {
    uri: String,
    messages: u64,
    size: usize,
    confirm: usize,
    manual_ack: bool,
    prefetch: u16,
    broker_pid: Option<u32>,
    backlog: bool,
    topic_bindings: usize,
    /// Durable queue and persistent (delivery-mode 2) messages.
    persistent: bool,
    /// Backlog mode: leave the queue and its messages in place.
    keep: bool,
    /// Drive the broker with warren-client instead of lapin.
    warren_client: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        uri: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
        messages: 100_000,
        size: 16,
        confirm: 0,
        manual_ack: false,
        prefetch: 1000,
        broker_pid: None,
        backlog: false,
        topic_bindings: 0,
        persistent: false,
        keep: false,
        warren_client: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--uri" => args.uri = value()?,
            "--messages" => args.messages = number(value()?)?,
            "--size" => args.size = number(value()?)? as usize,
            "--confirm" => args.confirm = number(value()?)? as usize,
            "--manual-ack" => args.manual_ack = true,
            "--prefetch" => args.prefetch = number(value()?)? as u16,
            "--broker-pid" => args.broker_pid = Some(number(value()?)? as u32),
            "--backlog" => args.backlog = true,
            "--topic-bindings" => args.topic_bindings = number(value()?)? as usize,
            "--persistent" => args.persistent = true,
            "--keep" => args.keep = true,
            "--client" => match value()?.as_str() {
                "lapin" => args.warren_client = false,
                "warren" => args.warren_client = true,
                other => return Err(format!("--client: lapin or warren, not {other}")),
            },
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// utime + stime of a process, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of a process, in bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Publishes `--messages` into a queue nobody consumes and reports memory per message.
/// What one run of the default scenario measured.
struct Run {
    client: &'static str,
    received: u64,
    published: std::time::Duration,
    elapsed: std::time::Duration,
    /// Broker CPU over the run, in clock ticks (1/100 s), with `--broker-pid`.
    cpu_ticks: Option<u64>,
}

impl Run {
    /// The JSON summary, without its closing brace (callers add their own fields).
    fn json(&self, args: &Args) -> String {
        let cpu_us = self.cpu_ticks.map_or("null".into(), |t| {
            format!("{:.2}", t as f64 * 10_000.0 / self.received as f64)
        });
        format!(
            "{{\"client\": \"{}\", \"messages\": {}, \"size\": {}, \"confirm\": {}, \
             \"manual_ack\": {}, \"persistent\": {}, \"publish_seconds\": {:.3}, \
             \"seconds\": {:.3}, \"msg_per_s\": {:.0}, \"broker_cpu_us_per_msg\": {cpu_us}",
            self.client,
            self.received,
            args.size,
            args.confirm,
            args.manual_ack,
            args.persistent,
            self.published.as_secs_f64(),
            self.elapsed.as_secs_f64(),
            self.received as f64 / self.elapsed.as_secs_f64(),
        )
    }
}

/// The default scenario (one producer, one queue, one consumer) through warren-client:
/// the same publishes, window, acks and output as with lapin.
async fn with_warren_client(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    use warren_client as wc;
    if args.topic_bindings > 0 {
        return Err("--client warren runs the default-exchange scenario only".into());
    }
    let queue = format!("throughput-{}", std::process::id());
    let producer = wc::Connection::connect(&args.uri).await?;
    let consumer_conn = wc::Connection::connect(&args.uri).await?;
    let pub_ch = producer.open_channel().await?;
    let sub_ch = consumer_conn.open_channel().await?;
    let options = wc::QueueDeclareOptions {
        durable: args.persistent,
        ..Default::default()
    };
    pub_ch.queue_declare(&queue, options).await?;
    sub_ch.basic_qos(args.prefetch, false).await?;
    let consume = wc::ConsumeOptions {
        no_ack: !args.manual_ack,
        ..Default::default()
    };
    let mut consumer = sub_ch.basic_consume(&queue, consume).await?;
    if args.confirm > 0 {
        pub_ch.confirm_select().await?;
    }
    let total = args.messages;
    let manual_ack = args.manual_ack;
    let ack_every = u64::from(args.prefetch / 2).max(1);
    let consuming = tokio::spawn(async move {
        let mut received = 0u64;
        while let Some(delivery) = consumer.next().await {
            let delivery = delivery?;
            received += 1;
            if manual_ack && (received.is_multiple_of(ack_every) || received == total) {
                delivery.ack_multiple().await?;
            }
            if received == total {
                break;
            }
        }
        Ok::<u64, wc::Error>(received)
    });
    let body = bytes::Bytes::from(vec![b'x'; args.size]);
    let properties = wc::BasicProperties {
        delivery_mode: Some(if args.persistent { 2 } else { 1 }),
        ..Default::default()
    };
    let cpu_before = args.broker_pid.and_then(cpu_ticks);
    let start = Instant::now();
    let mut window = VecDeque::new();
    for _ in 0..total {
        let confirm = pub_ch
            .basic_publish(
                "",
                &queue,
                body.clone(),
                properties.clone(),
                wc::PublishOptions::default(),
            )
            .await?;
        if args.confirm > 0 {
            window.push_back(confirm);
            if window.len() >= args.confirm
                && let Some(oldest) = window.pop_front()
            {
                oldest.await?;
            }
        }
    }
    for confirm in window {
        confirm.await?;
    }
    let published = start.elapsed();
    let received = consuming.await??;
    let elapsed = start.elapsed();
    let cpu_after = args.broker_pid.and_then(cpu_ticks);
    let run = Run {
        client: "warren",
        received,
        published,
        elapsed,
        cpu_ticks: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
    };
    println!("{}}}", run.json(args));
    pub_ch
        .queue_delete(&queue, wc::QueueDeleteOptions::default())
        .await?;
    producer.close().await?;
    consumer_conn.close().await?;
    Ok(())
}

fn properties(args: &Args) -> BasicProperties {
    BasicProperties::default().with_delivery_mode(if args.persistent { 2 } else { 1 })
}

async fn backlog(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let pid = args.broker_pid.ok_or("--backlog needs --broker-pid")?;
    let queue = format!("backlog-{}", std::process::id());
    let connection = Connection::connect(&args.uri, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: args.persistent,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let before = rss_bytes(pid).ok_or("cannot read the broker's VmRSS")?;
    let body = vec![b'x'; args.size];
    let start = Instant::now();
    let mut window = VecDeque::new();
    for _ in 0..args.messages {
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties(args),
            )
            .await?;
        window.push_back(confirm);
        if window.len() >= 1000
            && let Some(oldest) = window.pop_front()
        {
            oldest.await?;
        }
    }
    for confirm in window {
        confirm.await?;
    }
    let elapsed = start.elapsed();
    let after = rss_bytes(pid).ok_or("cannot read the broker's VmRSS")?;
    println!(
        "{{\"backlog\": {}, \"size\": {}, \"seconds\": {:.3}, \"rss_before_mb\": {:.1}, \"rss_after_mb\": {:.1}, \"bytes_per_msg\": {:.0}}}",
        args.messages,
        args.size,
        elapsed.as_secs_f64(),
        before as f64 / 1e6,
        after as f64 / 1e6,
        after.saturating_sub(before) as f64 / args.messages as f64
    );
    if !args.keep {
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await?;
    }
    connection.close(200, "done".into()).await?;
    Ok(())
}

/// Queues that hold the bindings no message matches.
const IDLE_QUEUES: usize = 100;

/// Declares the topic exchange and its `n` bindings (see the module header).
async fn bind_topic(
    channel: &Channel,
    exchange: &str,
    queue: &str,
    n: usize,
) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let bind = |queue: String, pattern: String| async move {
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.into(),
                pattern.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
    };
    bind(queue.to_owned(), "bench.*.hit".into()).await?;
    for i in 0..IDLE_QUEUES {
        channel
            .queue_declare(
                format!("{queue}-idle{i}").as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    for i in 1..n {
        let pattern = match i % 4 {
            0 => format!("svc{i}.eu.error"),
            1 => format!("svc{i}.*.info"),
            2 => format!("svc{i}.#"),
            _ => format!("*.us.level{i}"),
        };
        bind(format!("{queue}-idle{}", i % IDLE_QUEUES), pattern).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    if args.backlog {
        return backlog(&args).await;
    }
    if args.warren_client {
        return with_warren_client(&args).await;
    }
    let queue = format!("throughput-{}", std::process::id());
    let producer = Connection::connect(&args.uri, ConnectionProperties::default()).await?;
    let consumer_conn = Connection::connect(&args.uri, ConnectionProperties::default()).await?;
    let pub_ch = producer.create_channel().await?;
    let sub_ch = consumer_conn.create_channel().await?;
    pub_ch
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: args.persistent,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    sub_ch
        .basic_qos(args.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = sub_ch
        .basic_consume(
            queue.as_str().into(),
            "throughput".into(),
            BasicConsumeOptions {
                no_ack: !args.manual_ack,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    if args.confirm > 0 {
        pub_ch
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
    }
    let exchange = format!("throughput-topic-{}", std::process::id());
    let setup = Instant::now();
    if args.topic_bindings > 0 {
        bind_topic(&pub_ch, &exchange, &queue, args.topic_bindings).await?;
    }
    let setup_seconds = setup.elapsed().as_secs_f64();

    let total = args.messages;
    let manual_ack = args.manual_ack;
    let ack_every = u64::from(args.prefetch / 2).max(1);
    let consuming = tokio::spawn(async move {
        let mut received = 0u64;
        while let Some(delivery) = consumer.next().await {
            let delivery = delivery?;
            received += 1;
            if manual_ack && (received.is_multiple_of(ack_every) || received == total) {
                delivery.ack(BasicAckOptions { multiple: true }).await?;
            }
            if received == total {
                break;
            }
        }
        Ok::<u64, lapin::Error>(received)
    });

    let body = vec![b'x'; args.size];
    let cpu_before = args.broker_pid.and_then(cpu_ticks);
    let start = Instant::now();
    let mut window = VecDeque::new();
    for i in 0..total {
        let (exchange, key) = if args.topic_bindings > 0 {
            (exchange.as_str(), format!("bench.{}.hit", i % 1000))
        } else {
            ("", queue.clone())
        };
        let confirm = pub_ch
            .basic_publish(
                exchange.into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties(&args),
            )
            .await?;
        if args.confirm > 0 {
            window.push_back(confirm);
            if window.len() >= args.confirm
                && let Some(oldest) = window.pop_front()
            {
                oldest.await?;
            }
        }
    }
    for confirm in window {
        confirm.await?;
    }
    let published = start.elapsed();
    let received = consuming.await??;
    let elapsed = start.elapsed();
    let cpu_after = args.broker_pid.and_then(cpu_ticks);
    let run = Run {
        client: "lapin",
        received,
        published,
        elapsed,
        cpu_ticks: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
    };
    println!(
        "{}, \"topic_bindings\": {}, \"binding_setup_seconds\": {setup_seconds:.3}}}",
        run.json(&args),
        args.topic_bindings,
    );
    pub_ch
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    if args.topic_bindings > 0 {
        for i in 0..IDLE_QUEUES {
            pub_ch
                .queue_delete(
                    format!("{queue}-idle{i}").as_str().into(),
                    QueueDeleteOptions::default(),
                )
                .await?;
        }
        pub_ch
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
    }
    producer.close(200, "done".into()).await?;
    consumer_conn.close(200, "done".into()).await?;
    Ok(())
}
