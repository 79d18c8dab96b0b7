//! Work queue: competing consumers share the messages of one queue.
//!
//! The restaurant's ticket line. The waiter puts 30 orders on a durable queue as
//! persistent messages and waits for the broker to confirm each one: once confirmed, an
//! order survives even a broker restart. Three cooks take tickets from that one queue,
//! each on a channel of their own with a prefetch of 1, so a cook holds at most one
//! unacknowledged order and the broker hands the next ticket to whoever is free: the
//! fastest cook ends up with the most orders, and a slow one never sits on a pile. A cook
//! acknowledges an order only once it is cooked, so had a cook walked out mid-order, the
//! broker would have given that ticket to another.
//!
//! The program checks that every order was cooked exactly once (none lost, none twice),
//! reports how the work was shared, and exits non-zero if an order went missing or was
//! cooked twice.
//!
//! Run it against a running broker (`AMQP_URL` chooses which, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`):
//!
//! ```text
//! cargo run --example work_queue
//! AMQP_URL=amqp://guest:guest@127.0.0.1:5701/%2f cargo run --example work_queue
//! ```

use std::collections::BTreeMap;
use std::error::Error;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::try_join_all;
use tokio::sync::mpsc;
use tokio::time::timeout;
use warren_client::{
    BasicProperties, Confirmation, Connection, ConsumeOptions, Consumer, PublishOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const QUEUE: &str = "example.work_queue.orders";
const ORDERS: u32 = 30;
const DISHES: [&str; 5] = ["ramen", "pad thai", "risotto", "tacos", "pho"];
/// Each cook and the time a dish takes them; different paces make fair dispatch visible.
const COOKS: [(&str, Duration); 3] = [
    ("Ana", Duration::from_millis(5)),
    ("Bo", Duration::from_millis(10)),
    ("Cy", Duration::from_millis(20)),
];
/// The longest the broker may take to confirm the orders, and the kitchen to cook them.
const DEADLINE: Duration = Duration::from_secs(5);

/// A cooked order as a cook reports it: who cooked it, and the order number on the ticket.
type Cooked = (&'static str, Option<u32>);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let connection = Connection::connect(&url).await?;
    let outcome = run(&connection).await;
    // Clean up even after a failure, on a fresh channel: the failure may have closed the others.
    let cleaned = async {
        let channel = connection.open_channel().await?;
        channel
            .queue_delete(QUEUE, QueueDeleteOptions::default())
            .await
    }
    .await;
    connection.close().await?;
    outcome?;
    cleaned?;
    Ok(())
}

async fn run(connection: &Connection) -> Result<(), Box<dyn Error>> {
    let waiter = connection.open_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    waiter.queue_declare(QUEUE, durable).await?;
    // An interrupted earlier run may have left tickets on the line; they are not ours.
    waiter.queue_purge(QUEUE).await?;

    // The cooks are at their stations before the first ticket arrives.
    let (report, mut reports) = mpsc::channel(ORDERS as usize);
    let mut kitchen = Vec::new();
    for (name, pace) in COOKS {
        let channel = connection.open_channel().await?;
        // One unacknowledged ticket per cook: the next goes to whoever is free.
        channel.basic_qos(1, false).await?;
        let tickets = channel
            .basic_consume(QUEUE, ConsumeOptions::default())
            .await?;
        let tag = tickets.tag().to_owned();
        let station = tokio::spawn(cook(name, pace, tickets, report.clone()));
        kitchen.push((channel, tag, station));
    }
    drop(report);

    waiter.confirm_select().await?;
    let mut confirms = Vec::new();
    for order in 1..=ORDERS {
        let dish = DISHES[order as usize % DISHES.len()];
        let properties = BasicProperties {
            message_id: Some(order.to_string().into()),
            delivery_mode: Some(2), // persistent
            ..Default::default()
        };
        let ticket = format!("order {order}: {dish}");
        confirms.push(
            waiter
                .basic_publish("", QUEUE, ticket, properties, PublishOptions::default())
                .await?,
        );
    }
    let confirmations = timeout(DEADLINE, try_join_all(confirms))
        .await
        .map_err(|_| "the broker did not confirm the orders in time")??;
    if !confirmations.iter().all(Confirmation::is_ack) {
        return Err("the broker refused an order".into());
    }
    println!("waiter: {ORDERS} orders on the line, every one confirmed by the broker");

    let mut cooked: Vec<Cooked> = Vec::new();
    // Past the deadline, whatever is missing is reported below.
    let _ = timeout(DEADLINE, async {
        while cooked.len() < ORDERS as usize {
            match reports.recv().await {
                Some(report) => cooked.push(report),
                None => break, // every cook has stopped
            }
        }
    })
    .await;

    // Closing time: cancelling ends each cook's stream of tickets, and so their loop.
    for (channel, tag, station) in kitchen {
        channel.basic_cancel(&tag).await?;
        timeout(DEADLINE, station)
            .await
            .map_err(|_| "a cook kept cooking after closing time")???;
    }
    // Every cook has stopped: what they reported after the last order counts too.
    while let Ok(report) = reports.try_recv() {
        cooked.push(report);
    }
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let left = waiter.queue_declare(QUEUE, passive).await?.message_count;

    let mut cooks_of: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for (name, order) in cooked {
        let order = order.ok_or_else(|| format!("{name} got a ticket with no order number"))?;
        cooks_of.entry(order).or_default().push(name);
    }
    for (name, pace) in COOKS {
        let count = cooks_of.values().flatten().filter(|&&n| n == name).count();
        println!(
            "{name} ({} ms a dish) cooked {count} orders",
            pace.as_millis()
        );
    }

    let mut problems = Vec::new();
    if left > 0 {
        problems.push(format!("{left} tickets still on the line"));
    }
    let missing: Vec<String> = (1..=ORDERS)
        .filter(|order| !cooks_of.contains_key(order))
        .map(|order| order.to_string())
        .collect();
    if !missing.is_empty() {
        problems.push(format!("orders never cooked: {}", missing.join(", ")));
    }
    for (order, cooks) in &cooks_of {
        if !(1..=ORDERS).contains(order) {
            problems.push(format!("order {order} is not from this waiter"));
        } else if cooks.len() > 1 {
            problems.push(format!("order {order} cooked by {}", cooks.join(" and ")));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; ").into());
    }
    let busy = COOKS
        .iter()
        .filter(|(name, _)| cooks_of.values().flatten().any(|n| n == name))
        .count();
    println!("every order was cooked exactly once, shared by {busy} cooks");
    Ok(())
}

/// One cook's station: cooks each ticket, acknowledges it, and reports it, until the
/// consumer is cancelled.
async fn cook(
    name: &'static str,
    pace: Duration,
    mut tickets: Consumer,
    report: mpsc::Sender<Cooked>,
) -> Result<(), warren_client::Error> {
    while let Some(ticket) = tickets.next().await {
        let ticket = ticket?;
        // Stands in for the cooking itself; nothing is being waited for.
        tokio::time::sleep(pace).await;
        // Only a cooked order is acknowledged: one left half-done goes back on the line.
        ticket.ack().await?;
        let order = ticket
            .properties
            .message_id
            .as_deref()
            .and_then(|id| id.parse().ok());
        if report.send((name, order)).await.is_err() {
            break;
        }
    }
    Ok(())
}
