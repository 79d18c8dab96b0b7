//! Publish/subscribe: a fanout exchange gives every subscriber its own copy of each event.
//!
//! The image service announces each upload as a `photo-uploaded` event on a fanout
//! exchange, and neither knows nor cares who listens. The thumbnail, notification and
//! analytics services each bind a queue of their own to that exchange, so each gets
//! every event and works through it at its own pace. Later a moderation service joins:
//! it binds a new queue and from then on receives every upload, without any change to
//! the image service. It does not see the uploads from before it joined: an exchange
//! keeps nothing, it copies each message into the queues bound at that moment.
//!
//! The program checks that each service received exactly the events published while it
//! was subscribed (none missing, none extra) and exits non-zero otherwise.
//!
//! Run it against a running broker (`AMQP_URL` chooses which, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`):
//!
//! ```text
//! cargo run --example pubsub_photo_uploaded
//! AMQP_URL=amqp://guest:guest@127.0.0.1:5701/%2f cargo run --example pubsub_photo_uploaded
//! ```

use std::error::Error;
use std::ops::RangeInclusive;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::try_join_all;
use tokio::time::timeout;
use warren_client::{
    BasicProperties, Channel, Confirmation, Connection, ConsumeOptions, Consumer, Delivery,
    ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind, FieldTable, PublishOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const EXCHANGE: &str = "example.pubsub_photo_uploaded.photo-uploaded";
const SERVICES: [&str; 4] = ["thumbnails", "notifications", "analytics", "moderation"];
/// Photos uploaded before the moderation service joins, and after.
const EARLY: RangeInclusive<u32> = 1..=5;
const LATE: RangeInclusive<u32> = 6..=8;
/// The longest to wait for a confirm or an event; locally they take milliseconds.
const WAIT: Duration = Duration::from_secs(2);

/// A subscribing service and the photos it should hear about.
struct Service {
    name: &'static str,
    queue: String,
    channel: Channel,
    events: Consumer,
    expected: Vec<u32>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let connection = Connection::connect(&url).await?;
    let outcome = run(&connection).await;
    // Clean up even after a failure, on a fresh channel: the failure may have closed the others.
    let cleaned = async {
        let channel = connection.open_channel().await?;
        for name in SERVICES {
            channel
                .queue_delete(&queue_name(name), QueueDeleteOptions::default())
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
    let images = connection.open_channel().await?;
    images
        .exchange_declare(
            EXCHANGE,
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
        )
        .await?;
    images.confirm_select().await?;

    let mut services = Vec::new();
    for name in ["thumbnails", "notifications", "analytics"] {
        services.push(subscribe(connection, name, EARLY.chain(LATE).collect()).await?);
    }
    println!("thumbnails, notifications and analytics subscribe to photo-uploaded");
    announce_uploads(&images, EARLY).await?;
    println!(
        "image service: photos {} to {} uploaded",
        EARLY.start(),
        EARLY.end()
    );

    services.push(subscribe(connection, "moderation", LATE.collect()).await?);
    println!("moderation joins later with a queue of its own");
    announce_uploads(&images, LATE).await?;
    println!(
        "image service, unchanged: photos {} to {} uploaded",
        LATE.start(),
        LATE.end()
    );

    let mut wrong = Vec::new();
    for service in &mut services {
        let photos = heard(service).await?;
        println!("{:>13} got events for photos {photos:?}", service.name);
        if photos != service.expected {
            wrong.push(format!(
                "{} got {photos:?} instead of {:?}",
                service.name, service.expected
            ));
        }
    }
    if !wrong.is_empty() {
        return Err(format!("wrong events: {}", wrong.join("; ")).into());
    }
    println!("every service got each event published while it was subscribed, exactly once");
    Ok(())
}

fn queue_name(service: &str) -> String {
    format!("example.pubsub_photo_uploaded.{service}")
}

/// Starts a service: its own queue, bound to the exchange, and a consumer on it.
async fn subscribe(
    connection: &Connection,
    name: &'static str,
    expected: Vec<u32>,
) -> Result<Service, warren_client::Error> {
    let channel = connection.open_channel().await?;
    let queue = queue_name(name);
    // Exclusive: the broker drops the queue with the connection, so even an
    // interrupted run leaves nothing behind to skew the next one.
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    channel.queue_declare(&queue, exclusive).await?;
    // A fanout exchange ignores routing keys: the binding alone brings every event.
    channel
        .queue_bind(&queue, EXCHANGE, "", FieldTable::default())
        .await?;
    let events = channel
        .basic_consume(&queue, ConsumeOptions::default())
        .await?;
    Ok(Service {
        name,
        queue,
        channel,
        events,
        expected,
    })
}

/// The image service's side, the same before and after moderation joins: announce
/// each upload, and wait until the broker has taken every announcement.
async fn announce_uploads(
    images: &Channel,
    photos: RangeInclusive<u32>,
) -> Result<(), Box<dyn Error>> {
    let mut confirms = Vec::new();
    for photo in photos {
        let properties = BasicProperties {
            content_type: Some("application/json".into()),
            kind: Some("photo-uploaded".into()),
            message_id: Some(photo.to_string().into()),
            ..Default::default()
        };
        let event = format!(r#"{{"photo_id":{photo},"url":"/photos/{photo}.jpg"}}"#);
        confirms.push(
            images
                .basic_publish(EXCHANGE, "", event, properties, PublishOptions::default())
                .await?,
        );
    }
    // Confirmed means routed: every queue bound right now holds its copy.
    let confirmations = timeout(WAIT, try_join_all(confirms))
        .await
        .map_err(|_| "the broker did not confirm the uploads in time")??;
    if !confirmations.iter().all(Confirmation::is_ack) {
        return Err("the broker refused an upload event".into());
    }
    Ok(())
}

/// The photos a service heard about, sorted. Reads until it has as many events as
/// expected (or none comes for `WAIT`), then cancels the consumer, keeps the events
/// still in flight, and checks none are left in the queue: an extra event shows as
/// surely as a missing one.
async fn heard(service: &mut Service) -> Result<Vec<u32>, Box<dyn Error>> {
    let mut photos = Vec::new();
    while photos.len() < service.expected.len() {
        match timeout(WAIT, service.events.next()).await {
            Ok(Some(event)) => photos.push(handle(event?).await?),
            Ok(None) | Err(_) => break, // the check in `run` names what is missing
        }
    }
    service.events.cancel().await?;
    // After cancel-ok the stream yields the deliveries already sent, then ends.
    while let Some(event) = timeout(WAIT, service.events.next())
        .await
        .map_err(|_| format!("{}'s consumer did not end when cancelled", service.name))?
    {
        photos.push(handle(event?).await?);
    }
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let left = service
        .channel
        .queue_declare(&service.queue, passive)
        .await?
        .message_count;
    if left > 0 {
        return Err(format!(
            "{} has {left} unexpected events left in its queue",
            service.name
        )
        .into());
    }
    photos.sort_unstable();
    Ok(photos)
}

/// What every service does with an event here: note the photo, acknowledge the event.
async fn handle(event: Delivery) -> Result<u32, Box<dyn Error>> {
    event.ack().await?;
    let photo = event
        .properties
        .message_id
        .as_deref()
        .and_then(|id| id.parse().ok())
        .ok_or("an event without a photo id")?;
    Ok(photo)
}
