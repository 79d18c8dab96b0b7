//! Message rates as RabbitMQ shows them (`"publish_details": {"rate": 1.6}`): messages
//! per second over the last sampling interval.
//!
//! One task ([`sample`]) reads every queue's counters every [`SAMPLE_EVERY`] (RabbitMQ's
//! default `collect_statistics_interval`), keeps the previous reading, which is the
//! only state rates need and belongs to that task alone, and publishes the rates as an
//! immutable [`RateTable`] that requests load without locking (as a vhost publishes
//! its topology). A request shows live counters beside rates up to one interval old,
//! as RabbitMQ does; rates do not depend on how often anyone asks.
//!
//! A queue is known by its `QueueInfo`, not its name: a queue deleted and declared
//! again is another queue, and its counters starting over never read as a drop.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::history::{DepthHistory, Sample};
use super::monitoring::UnroutableCounts;
use crate::broker::Broker;
use crate::queue::{Command, Counters, QueueHandle, QueueInfo};

/// How often counters are read.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The queue counters shown with a rate, by their `message_stats` names; see
/// [`queue_counts`].
pub(super) const QUEUE_STATS: [&str; 8] = [
    "publish",
    "deliver_get",
    "deliver",
    "deliver_no_ack",
    "get",
    "get_no_ack",
    "ack",
    "redeliver",
];

/// A queue's counters in [`QUEUE_STATS`] order.
pub(super) fn queue_counts(c: &Counters) -> [u64; 8] {
    [
        c.published,
        c.deliver_get(),
        c.delivered,
        c.delivered_no_ack,
        c.got,
        c.got_no_ack,
        c.acked,
        c.redelivered,
    ]
}

/// The broker's unroutable counters by their `message_stats` names (RabbitMQ has the
/// first two; `reject_unroutable` is warren's `x-unroutable = "reject"`).
pub(super) const UNROUTABLE_STATS: [&str; 3] =
    ["return_unroutable", "drop_unroutable", "reject_unroutable"];

/// Unroutable counts in [`UNROUTABLE_STATS`] order.
pub(super) fn unroutable_counts(c: &UnroutableCounts) -> [u64; 3] {
    [c.returned, c.dropped, c.rejected]
}

/// Per-second rates of a queue's counters, in [`QUEUE_STATS`] order.
pub(crate) type QueueRates = [f64; 8];

/// A queue as the sampler knows it: by identity, not by name.
#[derive(Debug, Clone)]
struct QueueKey(Arc<QueueInfo>);

impl PartialEq for QueueKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for QueueKey {}

impl Hash for QueueKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0), state);
    }
}

/// The rates of the last sampling interval.
#[derive(Debug, Default)]
pub(crate) struct RateTable {
    queues: HashMap<QueueKey, QueueRates>,
    /// Summed over the queues.
    pub(super) totals: QueueRates,
    /// In [`UNROUTABLE_STATS`] order.
    pub(super) unroutable: [f64; 3],
    /// Each queue's recent ready counts, newest first.
    ready_samples: HashMap<QueueKey, Vec<Sample>>,
}

impl RateTable {
    /// A queue's recent ready counts, newest first; empty for a queue not sampled yet.
    pub(super) fn ready_samples(&self, info: &Arc<QueueInfo>) -> &[Sample] {
        self.ready_samples
            .get(&QueueKey(info.clone()))
            .map_or(&[], Vec::as_slice)
    }

    /// A queue's rates; zeros for a queue not sampled twice yet.
    pub(super) fn queue(&self, info: &Arc<QueueInfo>) -> QueueRates {
        self.queues
            .get(&QueueKey(info.clone()))
            .copied()
            .unwrap_or_default()
    }
}

/// The previous reading of some counters, and when it was taken.
#[derive(Debug)]
struct Sampler<K, const N: usize> {
    previous: HashMap<K, [u64; N]>,
    at: Option<Instant>,
}

impl<K, const N: usize> Default for Sampler<K, N> {
    fn default() -> Self {
        Sampler {
            previous: HashMap::new(),
            at: None,
        }
    }
}

impl<K: Eq + Hash + Clone, const N: usize> Sampler<K, N> {
    /// Takes the reading `current` at `now` and returns each series' rates since the
    /// previous reading: zeros at the first reading and for a series new since then.
    /// Series missing from `current` are forgotten.
    fn observe(&mut self, now: Instant, current: HashMap<K, [u64; N]>) -> HashMap<K, [f64; N]> {
        let elapsed = self
            .at
            .map(|at| now.saturating_duration_since(at).as_secs_f64())
            .filter(|secs| *secs > 0.0);
        let rates = current
            .iter()
            .map(|(key, after)| {
                let rates = match (elapsed, self.previous.get(key)) {
                    (Some(secs), Some(before)) => per_second(before, after, secs),
                    _ => [0.0; N],
                };
                (key.clone(), rates)
            })
            .collect();
        self.previous = current;
        self.at = Some(now);
        rates
    }
}

/// How fast each counter grew from `before` to `after` over `secs` seconds; a counter
/// that went back (it cannot, while its queue lives) reads as 0.
fn per_second<const N: usize>(before: &[u64; N], after: &[u64; N], secs: f64) -> [f64; N] {
    std::array::from_fn(|i| after[i].saturating_sub(before[i]) as f64 / secs)
}

/// Sums rates (or counts) element by element.
pub(super) fn sum<T, const N: usize>(all: impl IntoIterator<Item = [T; N]>) -> [T; N]
where
    T: Copy + Default + std::ops::AddAssign,
{
    let mut total = [T::default(); N];
    for one in all {
        for (t, v) in total.iter_mut().zip(one) {
            *t += v;
        }
    }
    total
}

/// Every running queue's counters and ready count. Unlike a listing for a request, no
/// policies are resolved and nothing is sorted.
async fn read_counters(broker: &Broker) -> (HashMap<QueueKey, [u64; 8]>, HashMap<QueueKey, u32>) {
    let queues: Vec<QueueHandle> = broker
        .vhosts()
        .values()
        .flat_map(|v| v.snapshot().queues.values().cloned().collect::<Vec<_>>())
        .collect();
    let mut counters = HashMap::with_capacity(queues.len());
    let mut ready = HashMap::with_capacity(queues.len());
    for queue in queues {
        // A queue that stopped meanwhile is left out.
        if let Some(stats) = queue.ask(|reply| Command::Stats { reply }).await {
            let key = QueueKey(queue.info);
            ready.insert(key.clone(), stats.ready);
            counters.insert(key, queue_counts(&stats.counters));
        }
    }
    (counters, ready)
}

/// Samples every queue's counters and the broker's unroutable counters every
/// [`SAMPLE_EVERY`] until shutdown, and publishes their rates.
pub(super) async fn sample(broker: Arc<Broker>, shutdown: CancellationToken) {
    let mut queue_sampler = Sampler::default();
    let mut history = DepthHistory::default();
    let mut unroutable_sampler = Sampler::default();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (current, ready) = read_counters(&broker).await;
        let now = Instant::now();
        history.record(crate::durable::now_ms(), &ready);
        let queues = queue_sampler.observe(now, current);
        let broker_counts = unroutable_counts(&broker.monitoring.unroutable());
        let unroutable = unroutable_sampler
            .observe(now, HashMap::from([((), broker_counts)]))
            .remove(&())
            .unwrap_or_default();
        broker.monitoring.publish_rates(RateTable {
            totals: sum(queues.values().copied()),
            queues,
            unroutable,
            ready_samples: history.snapshot(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(pairs: &[(&'static str, [u64; 2])]) -> HashMap<&'static str, [u64; 2]> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn rates_are_per_second_over_the_interval_between_readings() {
        let mut sampler = Sampler::default();
        let t0 = Instant::now();
        let first = sampler.observe(t0, reading(&[("q", [10, 0])]));
        assert_eq!(first["q"], [0.0, 0.0], "one reading gives no rate");
        let second = sampler.observe(t0 + SAMPLE_EVERY, reading(&[("q", [60, 5])]));
        assert_eq!(second["q"], [10.0, 1.0]);
        let third = sampler.observe(
            t0 + SAMPLE_EVERY + Duration::from_millis(2500),
            reading(&[("q", [60, 10])]),
        );
        assert_eq!(third["q"], [0.0, 2.0]);
    }

    #[test]
    fn a_new_series_starts_at_zero_and_a_gone_one_is_forgotten() {
        let mut sampler = Sampler::default();
        let t0 = Instant::now();
        sampler.observe(t0, reading(&[("a", [1, 1])]));
        let rates = sampler.observe(t0 + SAMPLE_EVERY, reading(&[("b", [100, 100])]));
        assert_eq!(rates.len(), 1);
        assert_eq!(rates["b"], [0.0, 0.0]);
        // "a" comes back as a new series: no rate against its old reading.
        let rates = sampler.observe(t0 + 2 * SAMPLE_EVERY, reading(&[("a", [50, 50])]));
        assert_eq!(rates["a"], [0.0, 0.0]);
    }

    #[test]
    fn counters_that_went_back_or_no_time_passing_give_zero_not_nonsense() {
        let mut sampler = Sampler::default();
        let t0 = Instant::now();
        sampler.observe(t0, reading(&[("q", [10, 10])]));
        let same_instant = sampler.observe(t0, reading(&[("q", [20, 20])]));
        assert_eq!(same_instant["q"], [0.0, 0.0]);
        let back = sampler.observe(t0 + SAMPLE_EVERY, reading(&[("q", [5, 25])]));
        assert_eq!(back["q"], [0.0, 1.0]);
    }

    #[test]
    fn a_queue_declared_again_under_its_name_is_another_queue() {
        let old = Arc::new(QueueInfo::named("q"));
        let new = Arc::new(QueueInfo::named("q"));
        let mut sampler = Sampler::default();
        let t0 = Instant::now();
        sampler.observe(t0, HashMap::from([(QueueKey(old.clone()), [100; 8])]));
        let rates = sampler.observe(
            t0 + SAMPLE_EVERY,
            HashMap::from([(QueueKey(new.clone()), [5; 8])]),
        );
        let table = RateTable {
            queues: rates,
            ..RateTable::default()
        };
        assert_eq!(table.queues.len(), 1);
        assert!(table.queues.contains_key(&QueueKey(new.clone())));
        assert_eq!(table.queue(&new), [0.0; 8]);
        assert_eq!(table.queue(&old), [0.0; 8]);
    }

    #[test]
    fn sums_add_element_by_element() {
        assert_eq!(sum([[1.0, 2.0], [0.5, 0.5]]), [1.5, 2.5]);
        assert_eq!(sum::<u64, 3>([]), [0, 0, 0]);
    }
}
