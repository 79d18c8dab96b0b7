//! The progress line: once a second on stderr, the rates over the last second and the
//! p99 latency so far.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use crate::shared::Shared;

/// Prints a progress line every second from `start` until aborted.
pub async fn report(shared: Arc<Shared>, start: Instant) {
    let second = Duration::from_secs(1);
    let mut ticker = tokio::time::interval_at((start + second).into(), second);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (start, 0u64, 0u64, 0u64);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let counts = (
            shared.published.get(),
            shared.confirmed.get() + shared.nacked.get(),
            shared.consumed.get(),
        );
        let secs = now
            .saturating_duration_since(last.0)
            .as_secs_f64()
            .max(1e-9);
        let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / secs;
        let p99 = {
            // Held to read one quantile, never across an await.
            let latency = shared
                .latency
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (!latency.is_empty()).then(|| latency.value_at_quantile(0.99) as f64 / 1_000.0)
        };
        eprintln!(
            "{:>7.1} s  published {:>9.0} msg/s  confirmed {:>9.0} msg/s  consumed {:>9.0} msg/s  p99 {}",
            now.saturating_duration_since(start).as_secs_f64(),
            rate(counts.0, last.1),
            rate(counts.1, last.2),
            rate(counts.2, last.3),
            p99.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.3} ms")),
        );
        last = (now, counts.0, counts.1, counts.2);
    }
}
