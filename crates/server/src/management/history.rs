//! Each queue's ready count over the last minutes, as the rate sampler reads it: what
//! the web page charts at once when it opens, and what RabbitMQ's API returns for
//! `?lengths_age=300&lengths_incr=5` (`messages_ready_details.samples`).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Samples kept per queue: five minutes at one per 5 s.
pub(super) const KEEP: usize = 60;

/// One reading: when (ms since the Unix epoch) and how many messages were ready.
pub(crate) type Sample = (u64, u32);

/// The recent ready counts of every queue, oldest first. Owned by the sampler task.
#[derive(Debug)]
pub(super) struct DepthHistory<K> {
    queues: HashMap<K, VecDeque<Sample>>,
}

impl<K> Default for DepthHistory<K> {
    fn default() -> Self {
        DepthHistory {
            queues: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone> DepthHistory<K> {
    /// Records a reading of every queue taken at `at_ms`; queues missing from it are
    /// gone and forgotten.
    pub(super) fn record(&mut self, at_ms: u64, ready: &HashMap<K, u32>) {
        self.queues.retain(|key, _| ready.contains_key(key));
        for (key, count) in ready {
            let samples = self.queues.entry(key.clone()).or_default();
            if samples.len() == KEEP {
                samples.pop_front();
            }
            samples.push_back((at_ms, *count));
        }
    }

    /// Every queue's samples, newest first (RabbitMQ's order), to publish.
    pub(super) fn snapshot(&self) -> HashMap<K, Vec<Sample>> {
        self.queues
            .iter()
            .map(|(key, samples)| (key.clone(), samples.iter().rev().copied().collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_five_minutes_newest_first_and_forgets_gone_queues() {
        let mut history = DepthHistory::default();
        for i in 0..(KEEP as u64 + 3) {
            let mut ready = HashMap::from([("orders", i as u32)]);
            if i < 2 {
                ready.insert("gone", 7);
            }
            history.record(i * 5000, &ready);
        }
        let snapshot = history.snapshot();
        assert!(!snapshot.contains_key("gone"));
        let orders = &snapshot["orders"];
        assert_eq!(orders.len(), KEEP);
        assert_eq!(orders[0], ((KEEP as u64 + 2) * 5000, KEEP as u32 + 2));
        assert_eq!(orders[KEEP - 1], (3 * 5000, 3));
    }
}
