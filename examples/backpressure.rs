//! Backpressure: a bounded queue pushes back, and the producer slows down instead of
//! losing orders.
//!
//! `example.backpressure.orders` holds at most 5 ready orders (`x-max-length` with
//! `x-overflow = reject-publish`): once full, the broker nacks further publishes. The
//! producer publishes 40 orders with publisher confirms; on a nack it backs off
//! (doubling its pause, up to a cap) and publishes the same order again, and while the
//! broker blocks the connection (`connection.blocked`, a memory or disk alarm) it
//! waits. A slower consumer on its own connection (so a blocked publisher cannot hold
//! up its acks) drains the queue. Every order arrives, exactly once.
//!
//! ```text
//! cargo run --example backpressure
//! AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run --example backpressure
//! ```
//!
//! `AMQP_URL` chooses the broker (default `amqp://guest:guest@127.0.0.1:5672/%2f`). Exits
//! non-zero if an order is lost or delivered twice, or if the queue never pushed back.

use std::collections::BTreeMap;
use std::error::Error;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::{sleep, timeout};
use warren_client::{
    BasicProperties, Channel, Confirmation, Connection, ConsumeOptions, Delivery, Overflow,
    PublishOptions, QueueDeclareOptions, QueueDeleteOptions,
};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const QUEUE: &str = "example.backpressure.orders";
const CAPACITY: u32 = 5;
const ORDERS: usize = 40;
/// How long the consumer takes over an order: slower than the producer can publish.
const HANDLING: Duration = Duration::from_millis(10);
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(100);
/// Publishes of one order before the producer gives up on it.
const MAX_ATTEMPTS: u32 = 100;
const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct ProducerStats {
    /// Publishes the full queue refused.
    nacks: u32,
    /// The most publishes one order needed.
    most_attempts: u32,
    /// Pauses while the broker blocked the connection.
    blocked_waits: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let producer = Connection::connect(&url).await?;
    let consumer = Connection::connect(&url).await?;
    // A failed earlier run may have left its queue behind.
    delete_queue(&producer).await?;
    let outcome = run(&producer, &consumer).await;
    let cleanup = delete_queue(&producer).await;
    consumer.close().await?;
    producer.close().await?;
    outcome?;
    cleanup?;
    Ok(())
}

async fn run(producer: &Connection, consumer: &Connection) -> Result<(), Box<dyn Error>> {
    let channel = producer.open_channel().await?;
    let bounded = QueueDeclareOptions {
        max_length: Some(CAPACITY),
        overflow: Some(Overflow::RejectPublish),
        ..Default::default()
    };
    channel.queue_declare(QUEUE, bounded).await?;
    println!("{QUEUE} holds at most {CAPACITY} orders; publishing {ORDERS} orders");

    let consumer_channel = consumer.open_channel().await?;
    let (stats, received) = tokio::try_join!(
        produce(producer, channel.clone()),
        consume(consumer_channel)
    )?;

    println!(
        "producer: {} publishes nacked and retried (at most {} publishes for one order), {} pauses while blocked",
        stats.nacks, stats.most_attempts, stats.blocked_waits
    );
    let missing: Vec<usize> = (1..=ORDERS).filter(|n| !received.contains_key(n)).collect();
    let repeated: Vec<(usize, u32)> = received
        .iter()
        .map(|(&n, &c)| (n, c))
        .filter(|&(_, c)| c > 1)
        .collect();
    let left = channel
        .queue_declare(
            QUEUE,
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
        )
        .await?
        .message_count;
    if !missing.is_empty() || !repeated.is_empty() || left != 0 {
        return Err(format!(
            "orders missing: {missing:?}; delivered more than once (order, times): {repeated:?}; left in the queue: {left}"
        )
        .into());
    }
    if stats.nacks == 0 {
        return Err(format!(
            "the queue never pushed back: no nacks with {CAPACITY} places for {ORDERS} orders"
        )
        .into());
    }
    println!("consumer: received all {ORDERS} orders, each exactly once; {QUEUE} is empty");
    Ok(())
}

/// Publishes every order, one confirm at a time, retrying it until the broker takes it.
async fn produce(
    connection: &Connection,
    channel: Channel,
) -> Result<ProducerStats, Box<dyn Error>> {
    channel.confirm_select().await?;
    let mut stats = ProducerStats::default();
    for n in 1..=ORDERS {
        let order = format!("order-{n}");
        let mut backoff = MIN_BACKOFF;
        let mut attempts = 0;
        loop {
            if attempts == MAX_ATTEMPTS {
                return Err(format!("{order} still refused after {MAX_ATTEMPTS} publishes").into());
            }
            wait_while_blocked(connection, &mut stats).await?;
            attempts += 1;
            let confirm = channel
                .basic_publish(
                    "",
                    QUEUE,
                    order.clone(),
                    BasicProperties::default(),
                    PublishOptions::default(),
                )
                .await?;
            match timeout(WAIT, confirm)
                .await
                .map_err(|_| format!("timed out waiting for the confirm of {order}"))??
            {
                Confirmation::Ack => break,
                // The queue was full and the message was not enqueued: publishing it
                // again cannot duplicate it.
                Confirmation::Nack => {
                    if stats.nacks == 0 {
                        println!("producer: {order} nacked, the queue is full; backing off");
                    }
                    stats.nacks += 1;
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                other => {
                    return Err(format!("unexpected confirmation for {order}: {other:?}").into());
                }
            }
        }
        stats.most_attempts = stats.most_attempts.max(attempts);
    }
    Ok(stats)
}

/// Pauses while the broker blocks the connection (connection.blocked), until it says
/// connection.unblocked.
async fn wait_while_blocked(
    connection: &Connection,
    stats: &mut ProducerStats,
) -> Result<(), Box<dyn Error>> {
    let Some(reason) = connection.blocked() else {
        return Ok(());
    };
    if stats.blocked_waits == 0 {
        println!("producer: the broker blocks publishers ({reason}); waiting");
    }
    stats.blocked_waits += 1;
    timeout(WAIT, connection.unblocked())
        .await
        .map_err(|_| format!("the broker blocked publishers for over {WAIT:?}: {reason}"))??;
    Ok(())
}

/// Handles orders slowly until it has seen every one; returns how often each arrived.
async fn consume(channel: Channel) -> Result<BTreeMap<usize, u32>, Box<dyn Error>> {
    // One order at a time: the rest wait in the bounded queue, not in this client.
    channel.basic_qos(1, false).await?;
    let mut consumer = channel
        .basic_consume(QUEUE, ConsumeOptions::default())
        .await?;
    let mut received = BTreeMap::new();
    while received.len() < ORDERS {
        let delivery = timeout(WAIT, consumer.next())
            .await
            .map_err(|_| format!("timed out with {} orders received", received.len()))?
            .ok_or("the consumer ended")??;
        *received.entry(order_number(&delivery)?).or_insert(0) += 1;
        sleep(HANDLING).await;
        delivery.ack().await?;
    }
    // Anything still on its way is a duplicate, and counts: after the cancel the stream
    // yields what the broker sent before it, then ends.
    consumer.cancel().await?;
    while let Some(delivery) = timeout(WAIT, consumer.next())
        .await
        .map_err(|_| "timed out waiting for the consumer to end")?
    {
        let delivery = delivery?;
        *received.entry(order_number(&delivery)?).or_insert(0) += 1;
        delivery.ack().await?;
    }
    Ok(received)
}

fn order_number(delivery: &Delivery) -> Result<usize, Box<dyn Error>> {
    let order = std::str::from_utf8(&delivery.body)?;
    let n = order.strip_prefix("order-").and_then(|n| n.parse().ok());
    Ok(n.ok_or_else(|| format!("not an order: {order:?}"))?)
}

async fn delete_queue(connection: &Connection) -> Result<(), warren_client::Error> {
    let channel = connection.open_channel().await?;
    channel
        .queue_delete(QUEUE, QueueDeleteOptions::default())
        .await?;
    channel.close().await
}
