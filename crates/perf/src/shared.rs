//! What a run's tasks share: counters, the latency histogram, and the signal that
//! the consumers have received everything.
//!
//! Each counter has a cache line of its own, so producers counting publishes do not
//! slow consumers counting deliveries by bouncing one line between cores.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hdrhistogram::Histogram;
use tokio::sync::Notify;

/// A counter alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one; returns the new value.
    pub fn incr(&self) -> u64 {
        // SeqCst pairs with the load of `Shared::target` (see `Shared::delivered`).
        self.0.fetch_add(1, Ordering::SeqCst).wrapping_add(1)
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// State shared by the producers, the consumers, the progress line and the run.
#[derive(Debug)]
pub struct Shared {
    /// Send times in bodies are nanoseconds since this.
    pub epoch: Instant,
    /// Messages published.
    pub published: Counter,
    /// Publishes the broker acked.
    pub confirmed: Counter,
    /// Publishes the broker nacked.
    pub nacked: Counter,
    /// Deliveries received.
    pub consumed: Counter,
    /// Latency in microseconds, merged from the consumers now and then.
    pub latency: Arc<Mutex<Histogram<u64>>>,
    /// Deliveries after which the consumers have everything (`u64::MAX` until the
    /// producers are done and the number is known).
    target: AtomicU64,
    /// Woken when `consumed` reaches `target` or a task fails.
    wake: Notify,
    /// A producer or consumer failed: stop the run.
    failed: AtomicBool,
}

impl Shared {
    /// Fresh state around an empty histogram.
    pub fn new(latency: Histogram<u64>) -> Self {
        Shared {
            epoch: Instant::now(),
            published: Counter::default(),
            confirmed: Counter::default(),
            nacked: Counter::default(),
            consumed: Counter::default(),
            latency: Arc::new(Mutex::new(latency)),
            target: AtomicU64::new(u64::MAX),
            wake: Notify::new(),
            failed: AtomicBool::new(false),
        }
    }

    /// Counts one delivery, waking the run if it was the last one expected.
    pub fn delivered(&self) {
        // Both sides use SeqCst (increment then load here, store then load in
        // `all_delivered`), so at least one of them sees the other's write: either
        // this wakes the run, or the run sees the count itself.
        if self.consumed.incr() >= self.target.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// Records that a task failed and wakes the run.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Whether a task failed.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Sets how many deliveries make the run complete.
    pub fn expect(&self, deliveries: u64) {
        self.target.store(deliveries, Ordering::SeqCst);
    }

    /// Waits until `consumed` reaches the target set by [`Shared::expect`]; gives up
    /// (returning false) when a task fails or nothing arrives for `idle`.
    pub async fn all_delivered(&self, idle: std::time::Duration) -> bool {
        let target = self.target.load(Ordering::SeqCst);
        let mut seen = self.consumed.get();
        loop {
            // A wake sent before we wait is kept as a permit by `notify_one`.
            let woken = self.wake.notified();
            let consumed = self.consumed.get();
            if consumed >= target {
                return true;
            }
            if self.has_failed() {
                return false;
            }
            if tokio::time::timeout(idle, woken).await.is_err() {
                let now = self.consumed.get();
                if now == seen {
                    return false;
                }
                seen = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::latency::histogram;

    #[tokio::test]
    async fn the_last_delivery_wakes_the_run() {
        let shared = Arc::new(Shared::new(histogram().unwrap()));
        shared.expect(3);
        let consumer = {
            let shared = shared.clone();
            tokio::spawn(async move {
                for _ in 0..3 {
                    shared.delivered();
                    tokio::task::yield_now().await;
                }
            })
        };
        assert!(shared.all_delivered(Duration::from_secs(10)).await);
        consumer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_run_gives_up_after_the_idle_time() {
        let shared = Shared::new(histogram().unwrap());
        shared.expect(1);
        assert!(!shared.all_delivered(Duration::from_secs(10)).await);
    }

    #[tokio::test]
    async fn a_failure_ends_the_wait() {
        let shared = Shared::new(histogram().unwrap());
        shared.expect(1);
        shared.fail();
        assert!(!shared.all_delivered(Duration::from_secs(10)).await);
    }
}
