//! A producer: one channel publishing as fast as allowed (by `--rate`, the confirm
//! window and the connection's backpressure) until its stop condition.
//!
//! Per message it reads the clock once, writes the body into a shared buffer (see
//! [`BodyWriter`]) and publishes; the routing key is a borrowed `&str` from a list
//! built once. With confirms, the outstanding confirms wait in a ring buffer; settled
//! ones are counted when the producer next looks (every [`SETTLE_EVERY`] publishes),
//! and a full window waits for the oldest, which the broker settles first.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use warren_client::{BasicProperties, Channel, Confirmation, PublishOptions, PublisherConfirm};

use crate::error::Error;
use crate::latency::{BodyWriter, stamp};
use crate::options::Stop;
use crate::rate::RateLimiter;
use crate::shared::Shared;

/// Publishes between two looks at which confirms have arrived: often enough for the
/// progress line, rarely enough that polling costs nothing per message.
const SETTLE_EVERY: u64 = 64;

/// What one producer does.
#[derive(Debug, Clone)]
pub struct ProducerPlan {
    /// Its number, which also picks its first routing key.
    pub index: usize,
    /// The exchange published to.
    pub exchange: Arc<str>,
    /// The routing keys it cycles through (not empty).
    pub keys: Arc<[String]>,
    /// Body size, at least 8.
    pub size: usize,
    /// delivery-mode 2.
    pub persistent: bool,
    /// Most unconfirmed publishes (0: the channel is not in confirm mode).
    pub window: usize,
    /// Messages per second (0: no limit).
    pub rate: u64,
    /// When it stops.
    pub stop: Stop,
}

/// What one producer did.
#[derive(Debug, Clone, Copy)]
pub struct ProducerReport {
    /// Messages published.
    pub published: u64,
    /// When its last publish was handed to the connection.
    pub last_publish: Instant,
    /// When its last confirm arrived (= `last_publish` without confirms).
    pub last_confirm: Instant,
}

/// Publishes on `channel` (already in confirm mode if the plan has a window) from
/// `start` on. Fails with the channel's close reason if the broker closes it; the
/// run is told through [`Shared::fail`].
pub async fn produce(
    channel: Channel,
    plan: ProducerPlan,
    shared: Arc<Shared>,
    start: Instant,
) -> Result<ProducerReport, Error> {
    let outcome = publish_all(&channel, &plan, &shared, start).await;
    if outcome.is_err() {
        shared.fail();
    }
    outcome
}

async fn publish_all(
    channel: &Channel,
    plan: &ProducerPlan,
    shared: &Shared,
    start: Instant,
) -> Result<ProducerReport, Error> {
    let properties = BasicProperties {
        delivery_mode: Some(if plan.persistent { 2 } else { 1 }),
        ..Default::default()
    };
    let (limit, deadline) = match plan.stop {
        Stop::Messages(n) => (n, None),
        Stop::After(duration) => (u64::MAX, Some(start + duration)),
    };
    let mut limiter = (plan.rate > 0).then(|| RateLimiter::new(plan.rate, start));
    let mut bodies = BodyWriter::new(plan.size);
    let mut window: VecDeque<PublisherConfirm> = VecDeque::with_capacity(plan.window);
    let keys = &plan.keys[..];
    let mut key = plan.index % keys.len().max(1);
    let mut sent = 0u64;
    while sent < limit && !shared.has_failed() {
        if let Some(limiter) = &mut limiter {
            let now = Instant::now();
            if let Some(due) = limiter.next_due(now)
                && due > now
            {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        if plan.window > 0 {
            if sent.is_multiple_of(SETTLE_EVERY) {
                settle_ready(&mut window, shared)?;
            }
            if window.len() >= plan.window
                && let Some(oldest) = window.pop_front()
            {
                settle(oldest.await?, shared);
            }
        }
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            break;
        }
        let Some(routing_key) = keys.get(key) else {
            return Err(Error::Options("no routing key to publish with".into()));
        };
        let confirm = channel
            .basic_publish(
                &plan.exchange,
                routing_key,
                bodies.body(stamp(shared.epoch, now)),
                properties.clone(),
                PublishOptions::default(),
            )
            .await?;
        shared.published.incr();
        if plan.window > 0 {
            window.push_back(confirm);
        }
        key += 1;
        if key == keys.len() {
            key = 0;
        }
        sent += 1;
    }
    let last_publish = Instant::now();
    while let Some(confirm) = window.pop_front() {
        settle(confirm.await?, shared);
    }
    Ok(ProducerReport {
        published: sent,
        last_publish,
        last_confirm: if plan.window > 0 {
            Instant::now()
        } else {
            last_publish
        },
    })
}

/// Counts the confirms at the front of the window that have already arrived.
fn settle_ready(window: &mut VecDeque<PublisherConfirm>, shared: &Shared) -> Result<(), Error> {
    while let Some(front) = window.front_mut() {
        match front.now_or_never() {
            Some(outcome) => {
                window.pop_front();
                settle(outcome?, shared);
            }
            None => break,
        }
    }
    Ok(())
}

fn settle(outcome: Confirmation, shared: &Shared) {
    match outcome {
        Confirmation::Nack => shared.nacked.incr(),
        Confirmation::Ack | Confirmation::Returned(_) | Confirmation::NotRequested => {
            shared.confirmed.incr()
        }
    };
}
