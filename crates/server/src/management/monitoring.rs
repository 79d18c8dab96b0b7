//! What the broker counts for monitoring beyond what each queue task counts itself:
//! unroutable messages, connections held back by the resource alarm, and the latest
//! message rates the sampler published.
//!
//! These are broker-wide atomics touched only off the hot path (a message that routes
//! nowhere, a connection that becomes blocked or unblocked), so no publisher contends
//! on them for routed messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use arc_swap::ArcSwap;

use super::rates::RateTable;

/// What became of a message that routed to no queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnroutableOutcome {
    /// Sent back with basic.return (the publisher set `mandatory`).
    Returned,
    /// Dropped without a trace for the publisher, as RabbitMQ does.
    Dropped,
    /// Refused (nacked, or the channel closed) by an exchange with
    /// `x-unroutable = "reject"`.
    Rejected,
}

impl UnroutableOutcome {
    /// How the log and the metrics name it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            UnroutableOutcome::Returned => "returned",
            UnroutableOutcome::Dropped => "dropped",
            UnroutableOutcome::Rejected => "rejected",
        }
    }
}

/// Unroutable messages since the broker started, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UnroutableCounts {
    pub(crate) returned: u64,
    pub(crate) dropped: u64,
    pub(crate) rejected: u64,
}

/// The broker's monitoring state (one per broker, in [`crate::broker::Broker`]).
#[derive(Debug, Default)]
pub(crate) struct Monitoring {
    returned: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    /// Connections held back by the alarm now; shared with their [`BlockedMark`]s.
    blocked: Arc<AtomicU32>,
    /// Written by the rate sampler alone; requests load it.
    rates: ArcSwap<RateTable>,
}

impl Monitoring {
    /// Counts a message that routed to no queue.
    pub(crate) fn count_unroutable(&self, outcome: UnroutableOutcome) {
        let counter = match outcome {
            UnroutableOutcome::Returned => &self.returned,
            UnroutableOutcome::Dropped => &self.dropped,
            UnroutableOutcome::Rejected => &self.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Unroutable messages so far.
    pub(crate) fn unroutable(&self) -> UnroutableCounts {
        UnroutableCounts {
            returned: self.returned.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    /// Counts a connection as blocked until the mark is dropped.
    pub(crate) fn mark_blocked(&self) -> BlockedMark {
        self.blocked.fetch_add(1, Ordering::Relaxed);
        BlockedMark(self.blocked.clone())
    }

    /// Connections held back by the resource alarm now.
    pub(crate) fn blocked_connections(&self) -> u32 {
        self.blocked.load(Ordering::Relaxed)
    }

    /// The rates of the last sampling interval.
    pub(crate) fn rates(&self) -> Arc<RateTable> {
        self.rates.load_full()
    }

    /// Puts newly computed rates in place (the sampler only).
    pub(super) fn publish_rates(&self, rates: RateTable) {
        self.rates.store(Arc::new(rates));
    }
}

/// One blocked connection in [`Monitoring`]'s count, for as long as it lives: dropping
/// it (unblocked, or the connection ended) takes the connection off the count.
#[derive(Debug)]
pub(crate) struct BlockedMark(Arc<AtomicU32>);

impl Drop for BlockedMark {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_connections_are_counted_while_marked() {
        let monitoring = Monitoring::default();
        let a = monitoring.mark_blocked();
        let b = monitoring.mark_blocked();
        assert_eq!(monitoring.blocked_connections(), 2);
        drop(a);
        assert_eq!(monitoring.blocked_connections(), 1);
        drop(b);
        assert_eq!(monitoring.blocked_connections(), 0);
    }

    #[test]
    fn unroutable_messages_are_counted_by_outcome() {
        let monitoring = Monitoring::default();
        monitoring.count_unroutable(UnroutableOutcome::Returned);
        monitoring.count_unroutable(UnroutableOutcome::Dropped);
        monitoring.count_unroutable(UnroutableOutcome::Dropped);
        assert_eq!(
            monitoring.unroutable(),
            UnroutableCounts {
                returned: 1,
                dropped: 2,
                rejected: 0
            }
        );
    }
}
