//! Topic routing: subscribers choose messages by routing-key patterns.
//!
//! Services publish their log lines to a topic exchange with `service.severity` routing
//! keys (`auth.info`, `payments.error`, ...). Each subscriber binds its queue with
//! patterns, where `*` stands for exactly one word and `#` for zero or more:
//!
//! - `errors` binds `*.error`: every service's errors;
//! - `payments` binds `payments.#`: everything from the payments service;
//! - `archive` binds `#`: every line;
//! - `payments-oncall` binds both `payments.#` and `*.error`. A `payments.error` line
//!   matches both bindings but reaches the queue once: the exchange routes a message to
//!   a queue, not to a binding.
//!
//! The program publishes a fixed set of log lines, checks that each subscriber received
//! exactly the lines listed for it (none missing, none extra, none twice), and exits
//! non-zero otherwise.
//!
//! Run it against a running broker (`AMQP_URL` chooses which, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`):
//!
//! ```text
//! cargo run --example topic_logs
//! AMQP_URL=amqp://guest:guest@127.0.0.1:5701/%2f cargo run --example topic_logs
//! ```

use std::error::Error;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::try_join_all;
use tokio::time::timeout;
use warren_client::{
    BasicProperties, Channel, Confirmation, Connection, ConsumeOptions, Consumer,
    ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind, FieldTable, PublishOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const EXCHANGE: &str = "example.topic_logs.logs";
/// The log lines, by routing key. Each key is used once, so a key names its line.
const LOGS: [(&str, &str); 7] = [
    ("auth.info", "alice signed in"),
    ("auth.error", "token signature invalid"),
    ("payments.info", "charge 1042 captured"),
    ("payments.warn", "card processor slow: 2.3 s"),
    ("payments.error", "card declined for order 1043"),
    ("shipping.warn", "carrier API rate-limited"),
    ("shipping.error", "label printer offline"),
];
/// The longest to wait for a confirm or a log line; locally they take milliseconds.
const WAIT: Duration = Duration::from_secs(2);

/// A subscriber: its binding patterns, and the lines it must get, written out by hand
/// (sorted) rather than computed, so the broker's matching is checked against the rules.
struct Subscriber {
    name: &'static str,
    patterns: &'static [&'static str],
    expected: &'static [&'static str],
}

const SUBSCRIBERS: [Subscriber; 4] = [
    Subscriber {
        name: "errors",
        patterns: &["*.error"],
        expected: &["auth.error", "payments.error", "shipping.error"],
    },
    Subscriber {
        name: "payments",
        patterns: &["payments.#"],
        expected: &["payments.error", "payments.info", "payments.warn"],
    },
    Subscriber {
        name: "archive",
        patterns: &["#"],
        expected: &[
            "auth.error",
            "auth.info",
            "payments.error",
            "payments.info",
            "payments.warn",
            "shipping.error",
            "shipping.warn",
        ],
    },
    Subscriber {
        name: "payments-oncall",
        patterns: &["payments.#", "*.error"],
        expected: &[
            "auth.error",
            "payments.error",
            "payments.info",
            "payments.warn",
            "shipping.error",
        ],
    },
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let connection = Connection::connect(&url).await?;
    let outcome = run(&connection).await;
    // Clean up even after a failure, on a fresh channel: the failure may have closed the others.
    let cleaned = async {
        let channel = connection.open_channel().await?;
        for subscriber in &SUBSCRIBERS {
            channel
                .queue_delete(&queue_name(subscriber), QueueDeleteOptions::default())
                .await?;
        }
        channel
            .exchange_delete(EXCHANGE, ExchangeDeleteOptions::default())
            .await
    }
    .await;
    connection.close().await?;
    outcome?;
    cleaned?;
    Ok(())
}

async fn run(connection: &Connection) -> Result<(), Box<dyn Error>> {
    let logger = connection.open_channel().await?;
    logger
        .exchange_declare(
            EXCHANGE,
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
        )
        .await?;

    let mut subscriptions = Vec::new();
    for subscriber in &SUBSCRIBERS {
        subscriptions.push((subscriber, subscribe(connection, subscriber).await?));
    }

    logger.confirm_select().await?;
    let mut confirms = Vec::new();
    for (key, line) in LOGS {
        let properties = BasicProperties {
            content_type: Some("text/plain".into()),
            ..Default::default()
        };
        confirms.push(
            logger
                .basic_publish(EXCHANGE, key, line, properties, PublishOptions::default())
                .await?,
        );
    }
    // Confirmed means routed: every matching queue holds its copy.
    let confirmations = timeout(WAIT, try_join_all(confirms))
        .await
        .map_err(|_| "the broker did not confirm the log lines in time")??;
    if !confirmations.iter().all(Confirmation::is_ack) {
        return Err("the broker refused a log line".into());
    }
    println!("published {} log lines to {EXCHANGE}", LOGS.len());

    let mut wrong = Vec::new();
    for (subscriber, (channel, mut consumer)) in subscriptions {
        let keys = received(subscriber, &channel, &mut consumer).await?;
        println!(
            "{:>15} ({}) got {}",
            subscriber.name,
            subscriber.patterns.join(" + "),
            keys.join(", ")
        );
        if keys != subscriber.expected {
            wrong.push(format!(
                "{} got [{}] instead of [{}]",
                subscriber.name,
                keys.join(", "),
                subscriber.expected.join(", ")
            ));
        }
    }
    if !wrong.is_empty() {
        return Err(format!("wrong lines: {}", wrong.join("; ")).into());
    }
    println!("every subscriber got exactly the lines its patterns match");
    Ok(())
}

fn queue_name(subscriber: &Subscriber) -> String {
    format!("example.topic_logs.{}", subscriber.name)
}

/// Declares the subscriber's queue, binds each of its patterns, and starts consuming.
async fn subscribe(
    connection: &Connection,
    subscriber: &Subscriber,
) -> Result<(Channel, Consumer), warren_client::Error> {
    let channel = connection.open_channel().await?;
    let queue = queue_name(subscriber);
    // Exclusive: the broker drops the queue with the connection, so even an
    // interrupted run leaves nothing behind to skew the next one.
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    channel.queue_declare(&queue, exclusive).await?;
    for pattern in subscriber.patterns {
        channel
            .queue_bind(&queue, EXCHANGE, pattern, FieldTable::default())
            .await?;
    }
    // Log lines are cheap to lose: no acknowledgements.
    let no_ack = ConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let consumer = channel.basic_consume(&queue, no_ack).await?;
    Ok((channel, consumer))
}

/// The routing keys of the lines a subscriber received, sorted. Reads until it has as
/// many lines as expected (or none comes for `WAIT`), then cancels the consumer, keeps
/// the lines still in flight, and checks none are left in the queue: an extra line shows
/// as surely as a missing one.
async fn received(
    subscriber: &Subscriber,
    channel: &Channel,
    consumer: &mut Consumer,
) -> Result<Vec<String>, Box<dyn Error>> {
    let mut keys = Vec::new();
    while keys.len() < subscriber.expected.len() {
        match timeout(WAIT, consumer.next()).await {
            Ok(Some(line)) => keys.push(line?.routing_key.to_string()),
            Ok(None) | Err(_) => break, // the check in `run` names what is missing
        }
    }
    consumer.cancel().await?;
    // After cancel-ok the stream yields the deliveries already sent, then ends.
    while let Some(line) = timeout(WAIT, consumer.next())
        .await
        .map_err(|_| format!("{}'s consumer did not end when cancelled", subscriber.name))?
    {
        keys.push(line?.routing_key.to_string());
    }
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let left = channel
        .queue_declare(&queue_name(subscriber), passive)
        .await?
        .message_count;
    if left > 0 {
        return Err(format!(
            "{} has {left} unexpected lines left in its queue",
            subscriber.name
        )
        .into());
    }
    keys.sort_unstable();
    Ok(keys)
}
