//! Retry, then dead-letter: a poison message must not stall the queue.
//!
//! A worker reads orders from `example.retry.work`. One of them, `order-poison`, fails
//! every time: the worker nacks it with requeue, and after its third failed attempt
//! the queue's `x-delivery-limit` makes the broker dead-letter it, with reason
//! `delivery_limit`, through the fanout exchange `example.retry.dlx` into
//! `example.retry.dlq`, where it carries its `x-death` history for a human to inspect.
//! Meanwhile the good orders published before and after it are all processed.
//!
//! ```text
//! cargo run --example retry_dead_letter
//! AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run --example retry_dead_letter
//! ```
//!
//! `AMQP_URL` chooses the broker (default `amqp://guest:guest@127.0.0.1:5672/%2f`). Exits
//! non-zero if a good order is not processed, or the poison message does not reach the
//! dead-letter queue after its retries with an `x-death` entry naming the work queue
//! and the reason.

use std::collections::BTreeSet;
use std::error::Error;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::try_join_all;
use tokio::time::{Instant, timeout, timeout_at};
use warren_client::{
    BasicProperties, Confirmation, Connection, ConsumeOptions, Delivery, ExchangeDeclareOptions,
    ExchangeDeleteOptions, ExchangeKind, FieldTable, FieldValue, PublishOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const WORK_QUEUE: &str = "example.retry.work";
const DLX: &str = "example.retry.dlx";
const DLQ: &str = "example.retry.dlq";
/// Deliveries of a failing message before it is given up on.
const MAX_ATTEMPTS: u32 = 3;
/// RabbitMQ's `x-delivery-limit` counts returns, not deliveries: a message is
/// dead-lettered when it comes back more than this many times.
const DELIVERY_LIMIT: u32 = MAX_ATTEMPTS - 1;
const POISON: &str = "order-poison";
/// Good orders on both sides of the poison one: the queue must keep flowing past it.
const ORDERS: [&str; 7] = [
    "order-1", "order-2", "order-3", POISON, "order-4", "order-5", "order-6",
];
const WAIT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let connection = Connection::connect(&url).await?;
    // A failed earlier run may have left its topology behind.
    delete_topology(&connection).await?;
    let outcome = run(&connection).await;
    let cleanup = delete_topology(&connection).await;
    connection.close().await?;
    outcome?;
    cleanup?;
    Ok(())
}

async fn run(connection: &Connection) -> Result<(), Box<dyn Error>> {
    let channel = connection.open_channel().await?;
    channel
        .exchange_declare(DLX, ExchangeKind::Fanout, ExchangeDeclareOptions::default())
        .await?;
    channel
        .queue_declare(DLQ, QueueDeclareOptions::default())
        .await?;
    channel.queue_bind(DLQ, DLX, "", FieldTable::new()).await?;
    let work_queue = QueueDeclareOptions {
        delivery_limit: Some(DELIVERY_LIMIT),
        dead_letter_exchange: Some(DLX.to_owned()),
        ..Default::default()
    };
    channel.queue_declare(WORK_QUEUE, work_queue).await?;

    channel.confirm_select().await?;
    let mut confirms = Vec::new();
    for order in ORDERS {
        let properties = BasicProperties::default();
        let options = PublishOptions::default();
        confirms.push(
            channel
                .basic_publish("", WORK_QUEUE, order, properties, options)
                .await?,
        );
    }
    let confirmations = timeout(WAIT, try_join_all(confirms))
        .await
        .map_err(|_| "timed out waiting for publisher confirms")??;
    if !confirmations.iter().all(|c| *c == Confirmation::Ack) {
        return Err(format!("the broker did not take every order: {confirmations:?}").into());
    }
    println!(
        "published {} orders to {WORK_QUEUE}, {POISON} among them",
        ORDERS.len()
    );

    channel.basic_qos(10, false).await?;
    let options = ConsumeOptions::default();
    let work = channel.basic_consume(WORK_QUEUE, options.clone()).await?;
    let dead = channel.basic_consume(DLQ, options).await?;
    let mut events =
        futures_util::stream::select(work.map(|d| (WORK_QUEUE, d)), dead.map(|d| (DLQ, d)));

    let good: BTreeSet<&str> = ORDERS.into_iter().filter(|o| *o != POISON).collect();
    let mut processed = BTreeSet::new();
    let mut poison_attempts = 0;
    let mut dead_letter = None;
    let deadline = Instant::now() + WAIT;
    while processed.len() < good.len() || dead_letter.is_none() {
        let (queue, delivery) = timeout_at(deadline, events.next())
            .await
            .map_err(|_| {
                format!(
                    "timed out: processed {processed:?}, poison dead-lettered: {}",
                    dead_letter.is_some()
                )
            })?
            .ok_or("the consumers ended")?;
        let delivery = delivery?;
        let order = std::str::from_utf8(&delivery.body)?.to_owned();
        if queue == DLQ {
            delivery.ack().await?;
            dead_letter = Some(delivery);
        } else if order == POISON {
            poison_attempts += 1;
            // The broker counts returns in this header from the first redelivery on.
            let count = header_i64(&delivery, "x-delivery-count").unwrap_or(0);
            println!(
                "  {order}: attempt {poison_attempts} of {MAX_ATTEMPTS} failed (x-delivery-count {count}), nacked with requeue"
            );
            delivery.nack(true).await?;
        } else {
            delivery.ack().await?;
            processed.insert(order);
        }
    }

    let dead_letter = dead_letter.ok_or("no dead letter")?;
    if dead_letter.body != POISON {
        return Err(format!("unexpected message in {DLQ}: {:?}", dead_letter.body).into());
    }
    if poison_attempts != MAX_ATTEMPTS {
        return Err(
            format!("{POISON} was tried {poison_attempts} times, expected {MAX_ATTEMPTS}").into(),
        );
    }
    println!("processed {} good orders: {processed:?}", processed.len());
    println!(
        "{POISON} reached {DLQ} after {poison_attempts} attempts: {}",
        check_death(&dead_letter)?
    );
    Ok(())
}

/// Checks the newest `x-death` entry names the work queue and the delivery limit, and
/// describes it.
fn check_death(delivery: &Delivery) -> Result<String, Box<dyn Error>> {
    let headers = delivery
        .properties
        .headers
        .as_ref()
        .ok_or("the dead letter has no headers")?;
    let Some(FieldValue::Array(deaths)) = headers.get("x-death") else {
        return Err(format!("the dead letter has no x-death array: {headers:?}").into());
    };
    let Some(FieldValue::Table(death)) = deaths.first() else {
        return Err(format!("x-death holds no table: {deaths:?}").into());
    };
    let text = |key| death.get(key).and_then(FieldValue::as_str);
    let (queue, reason) = (text("queue"), text("reason"));
    if queue != Some(WORK_QUEUE) || reason != Some("delivery_limit") {
        return Err(format!(
            "x-death names queue {queue:?} and reason {reason:?}, expected {WORK_QUEUE} and delivery_limit"
        )
        .into());
    }
    let count = death.get("count").and_then(FieldValue::as_i64);
    let keys: Vec<&str> = match death.get("routing-keys") {
        Some(FieldValue::Array(keys)) => keys.iter().filter_map(FieldValue::as_str).collect(),
        _ => Vec::new(),
    };
    Ok(format!(
        "x-death queue={WORK_QUEUE} reason=delivery_limit count={} exchange={:?} routing-keys={keys:?}",
        count.unwrap_or(0),
        text("exchange").unwrap_or_default(),
    ))
}

fn header_i64(delivery: &Delivery, key: &str) -> Option<i64> {
    delivery.properties.headers.as_ref()?.get(key)?.as_i64()
}

async fn delete_topology(connection: &Connection) -> Result<(), warren_client::Error> {
    let channel = connection.open_channel().await?;
    for queue in [WORK_QUEUE, DLQ] {
        channel
            .queue_delete(queue, QueueDeleteOptions::default())
            .await?;
    }
    channel
        .exchange_delete(DLX, ExchangeDeleteOptions::default())
        .await?;
    channel.close().await
}
