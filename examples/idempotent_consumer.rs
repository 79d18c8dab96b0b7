//! An idempotent consumer: at-least-once delivery without charging a customer twice.
//!
//! Payments arrive on `example.idempotent.payments`, each with its payment id as the
//! message id. Delivery is at least once, so the same payment can arrive twice: the
//! producer published two of them again (a retry after a lost confirm), and a first
//! worker charges two payments and crashes before acknowledging them, so the broker
//! redelivers those. The consumers record every payment id they charge in a shared
//! ledger before acknowledging, and skip an id already in it: each payment is charged
//! exactly once.
//!
//! ```text
//! cargo run --example idempotent_consumer
//! AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run --example idempotent_consumer
//! ```
//!
//! `AMQP_URL` chooses the broker (default `amqp://guest:guest@127.0.0.1:5672/%2f`). Exits
//! non-zero if a payment is charged twice or never, or if no redelivered or duplicate
//! message was seen and skipped.

use std::collections::{BTreeSet, HashSet};
use std::error::Error;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::try_join_all;
use tokio::time::timeout;
use warren_client::{
    BasicProperties, Confirmation, Connection, ConsumeOptions, Consumer, Delivery, PublishOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const QUEUE: &str = "example.idempotent.payments";
/// Payment id and what it charges. `pay-1002` and `pay-1004` were published twice.
const PAYMENTS: [(&str, &str); 7] = [
    ("pay-1001", "alice 25.00 EUR"),
    ("pay-1002", "bob 12.50 EUR"),
    ("pay-1003", "carol 99.90 EUR"),
    ("pay-1002", "bob 12.50 EUR"),
    ("pay-1004", "dave 5.00 EUR"),
    ("pay-1005", "erin 42.00 EUR"),
    ("pay-1004", "dave 5.00 EUR"),
];
/// How many payments the first worker charges before it crashes.
const CHARGED_BEFORE_CRASH: u16 = 2;
const WAIT: Duration = Duration::from_secs(5);

/// What the workers share, standing in for a database: the ids already charged (in
/// production a unique key, written in the same transaction as the charge) and the
/// charges the payment provider actually made.
#[derive(Default)]
struct Ledger {
    charged: HashSet<String>,
    provider_charges: Vec<String>,
}

impl Ledger {
    /// Charges a payment unless its id was charged before; false when it skips it.
    fn charge_once(&mut self, id: &str) -> bool {
        if !self.charged.insert(id.to_owned()) {
            return false;
        }
        self.provider_charges.push(id.to_owned());
        true
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let connection = Connection::connect(&url).await?;
    // A failed earlier run may have left its queue behind.
    delete_queue(&connection).await?;
    let outcome = run(&connection).await;
    let cleanup = delete_queue(&connection).await;
    connection.close().await?;
    outcome?;
    cleanup?;
    Ok(())
}

async fn run(connection: &Connection) -> Result<(), Box<dyn Error>> {
    let producer = connection.open_channel().await?;
    producer
        .queue_declare(QUEUE, QueueDeclareOptions::default())
        .await?;
    producer.confirm_select().await?;
    let mut confirms = Vec::new();
    for (id, charge) in PAYMENTS {
        let properties = BasicProperties {
            message_id: Some(id.into()),
            ..Default::default()
        };
        confirms.push(
            producer
                .basic_publish("", QUEUE, charge, properties, PublishOptions::default())
                .await?,
        );
    }
    let confirmations = timeout(WAIT, try_join_all(confirms))
        .await
        .map_err(|_| "timed out waiting for publisher confirms")??;
    if !confirmations.iter().all(|c| *c == Confirmation::Ack) {
        return Err(format!("the broker did not take every payment: {confirmations:?}").into());
    }
    let distinct: BTreeSet<&str> = PAYMENTS.iter().map(|(id, _)| *id).collect();
    println!(
        "published {} payments ({} distinct ids) to {QUEUE}",
        PAYMENTS.len(),
        distinct.len()
    );

    let mut ledger = Ledger::default();

    // The prefetch window keeps the crashing worker to the payments it charges.
    let crashing = connection.open_channel().await?;
    crashing.basic_qos(CHARGED_BEFORE_CRASH, false).await?;
    let mut consumer = crashing
        .basic_consume(QUEUE, ConsumeOptions::default())
        .await?;
    let mut unacked = Vec::new();
    for _ in 0..CHARGED_BEFORE_CRASH {
        let delivery = next(&mut consumer).await?;
        let id = payment_id(&delivery)?.to_owned();
        ledger.charge_once(&id);
        unacked.push(id);
    }
    // Closing the channel with the deliveries unacknowledged is what a crash looks like
    // to the broker: it requeues them for the next consumer.
    crashing.close().await?;
    println!("worker 1 charged {unacked:?} and crashed before acknowledging them");

    let worker = connection.open_channel().await?;
    worker.basic_qos(10, false).await?;
    let mut consumer = worker
        .basic_consume(QUEUE, ConsumeOptions::default())
        .await?;
    let (mut redelivered_skips, mut duplicate_skips) = (0, 0);
    // Every publish comes to this worker once: the crashed worker's two are back.
    for _ in 0..PAYMENTS.len() {
        let delivery = next(&mut consumer).await?;
        let id = payment_id(&delivery)?;
        if ledger.charge_once(id) {
            println!(
                "worker 2 charged {id}: {}",
                String::from_utf8_lossy(&delivery.body)
            );
        } else if delivery.redelivered {
            redelivered_skips += 1;
            println!("worker 2 skipped {id}: redelivered, already charged");
        } else {
            duplicate_skips += 1;
            println!("worker 2 skipped {id}: duplicate publish, already charged");
        }
        // Acknowledge only once the ledger has the id: a crash before this line means a
        // redelivery, which the ledger turns into a skip.
        delivery.ack().await?;
    }

    let charges = &ledger.provider_charges;
    let charged: BTreeSet<&str> = charges.iter().map(String::as_str).collect();
    if charges.len() != distinct.len() || charged != distinct {
        return Err(format!(
            "expected one charge for each of {distinct:?}, the provider made {charges:?}"
        )
        .into());
    }
    if redelivered_skips == 0 || duplicate_skips == 0 {
        return Err(format!(
            "expected to skip a redelivery and a duplicate, skipped {redelivered_skips} redelivered and {duplicate_skips} duplicate messages"
        )
        .into());
    }
    println!(
        "{} deliveries, {} charges for {} payment ids; skipped {redelivered_skips} redelivered and {duplicate_skips} duplicate messages",
        PAYMENTS.len() + usize::from(CHARGED_BEFORE_CRASH),
        charges.len(),
        distinct.len()
    );
    Ok(())
}

async fn next(consumer: &mut Consumer) -> Result<Delivery, Box<dyn Error>> {
    let delivery = timeout(WAIT, consumer.next())
        .await
        .map_err(|_| "timed out waiting for a payment")?
        .ok_or("the consumer ended")??;
    Ok(delivery)
}

fn payment_id(delivery: &Delivery) -> Result<&str, Box<dyn Error>> {
    let id = delivery.properties.message_id.as_deref();
    Ok(id.ok_or("a payment without a message id")?)
}

async fn delete_queue(connection: &Connection) -> Result<(), warren_client::Error> {
    let channel = connection.open_channel().await?;
    channel
        .queue_delete(QUEUE, QueueDeleteOptions::default())
        .await?;
    channel.close().await
}
