//! State a channel shares with the queues that deliver to it: flow and the channel-wide
//! prefetch window (basic.qos with global = true).
//!
//! RabbitMQ 3.x applies two limits together: each consumer's own prefetch (kept by its
//! queue) and the channel's, which spans every queue the channel consumes from. The
//! channel's count lives here as atomics so a queue can take a slot without a round
//! trip; when a full window gets room, the channel tells its queues to resume.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Shared between a channel and its consumers' queues.
#[derive(Debug)]
pub(crate) struct ChannelGate {
    /// False while the client has paused deliveries with channel.flow.
    flow: AtomicBool,
    /// Channel-wide prefetch count; 0 = no limit.
    limit: AtomicU32,
    /// Deliveries needing an ack, counted against `limit`.
    unacked: AtomicU32,
}

impl ChannelGate {
    pub(crate) fn new() -> Self {
        ChannelGate {
            flow: AtomicBool::new(true),
            limit: AtomicU32::new(0),
            unacked: AtomicU32::new(0),
        }
    }

    /// Takes one slot of the window for an acked delivery; false when flow is paused
    /// or the window is full.
    pub(crate) fn try_acquire(&self) -> bool {
        if !self.flow.load(Ordering::Acquire) {
            return false;
        }
        let limit = self.limit.load(Ordering::Acquire);
        self.unacked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (limit == 0 || n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Whether deliveries without acks may flow (they take no window slot).
    pub(crate) fn is_flowing(&self) -> bool {
        self.flow.load(Ordering::Acquire)
    }

    /// Gives back `n` slots; true when the window was full before, so queues that
    /// parked consumers on it should try again.
    pub(crate) fn release(&self, n: u32) -> bool {
        if n == 0 {
            return false;
        }
        let before = self
            .unacked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_sub(n))
            })
            .unwrap_or(0);
        let limit = self.limit.load(Ordering::Acquire);
        limit != 0 && before >= limit
    }

    /// Sets the channel-wide window; true when it grew (queues should try again).
    pub(crate) fn set_limit(&self, limit: u32) -> bool {
        let old = self.limit.swap(limit, Ordering::AcqRel);
        old != 0 && (limit == 0 || limit > old)
    }

    /// The channel-wide prefetch count; 0 = no limit.
    pub(crate) fn limit(&self) -> u32 {
        self.limit.load(Ordering::Acquire)
    }

    /// Pauses or resumes deliveries; true when resumed.
    pub(crate) fn set_flow(&self, active: bool) -> bool {
        let was = self.flow.swap(active, Ordering::AcqRel);
        active && !was
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_holds_at_most_the_limit() {
        let gate = ChannelGate::new();
        assert!(!gate.set_limit(2));
        assert!(gate.try_acquire());
        assert!(gate.try_acquire());
        assert!(!gate.try_acquire());
        assert!(
            gate.release(1),
            "a full window that gets room asks queues to resume"
        );
        assert!(gate.try_acquire());
        assert!(!gate.try_acquire());
    }

    #[test]
    fn no_limit_always_admits_and_paused_flow_admits_nothing() {
        let gate = ChannelGate::new();
        for _ in 0..1000 {
            assert!(gate.try_acquire());
        }
        assert!(!gate.set_flow(false));
        assert!(!gate.try_acquire());
        assert!(!gate.is_flowing());
        assert!(gate.set_flow(true));
        assert!(gate.try_acquire());
    }

    #[test]
    fn raising_the_limit_resumes() {
        let gate = ChannelGate::new();
        gate.set_limit(1);
        assert!(gate.try_acquire());
        assert!(gate.set_limit(5));
        assert!(gate.try_acquire());
    }
}
