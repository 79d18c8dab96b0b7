//! The memory alarm: what the broker's queues hold, against the high watermark.
//!
//! Queues report the bytes they hold (each message's buffers plus its queue slot,
//! counted once per queue that holds it) as deltas into one atomic counter. Crossing the
//! watermark either way flips a watch channel that connections follow: while it is on, a
//! connection that publishes stops reading its socket (TCP then slows the publisher) and
//! tells a client that supports it with `connection.blocked`. Consumers keep draining.
//! This counts what the broker holds, not the allocator's view, which does not shrink
//! when a queue drains.

use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Watermark;

/// Bytes held by queues, and the alarm.
#[derive(Debug)]
pub(crate) struct Memory {
    held: AtomicI64,
    limit: u64,
    alarm: watch::Sender<bool>,
}

impl Memory {
    /// An alarm that goes off above `limit` bytes.
    pub(crate) fn new(limit: u64) -> Self {
        Memory {
            held: AtomicI64::new(0),
            limit,
            alarm: watch::Sender::new(false),
        }
    }

    /// The limit a watermark sets on this machine.
    pub(crate) fn for_watermark(watermark: Watermark) -> Self {
        let limit = match watermark {
            Watermark::Bytes(bytes) => bytes,
            Watermark::PerMille(share) => match total_ram() {
                Some(total) => total / 1000 * u64::from(share),
                None => {
                    warn!("cannot read MemTotal from /proc/meminfo; no memory alarm");
                    u64::MAX
                }
            },
        };
        Memory::new(limit)
    }

    /// A queue now holds `delta` bytes more (or fewer, when negative).
    pub(crate) fn add(&self, delta: i64) {
        let held = self.held.fetch_add(delta, Ordering::AcqRel) + delta;
        let over = u64::try_from(held).is_ok_and(|held| held > self.limit);
        self.alarm.send_if_modified(|on| {
            if *on == over {
                return false;
            }
            *on = over;
            info!(
                held,
                limit = self.limit,
                "memory alarm {}",
                if over {
                    "set: blocking publishers"
                } else {
                    "cleared"
                }
            );
            true
        });
    }

    /// Follows the alarm (true while set).
    pub(crate) fn alarm(&self) -> watch::Receiver<bool> {
        self.alarm.subscribe()
    }
}

/// The machine's RAM in bytes, from /proc/meminfo.
fn total_ram() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alarm_follows_the_watermark_both_ways() {
        let memory = Memory::new(100);
        let alarm = memory.alarm();
        memory.add(60);
        assert!(!*alarm.borrow());
        memory.add(41);
        assert!(*alarm.borrow());
        memory.add(-1);
        assert!(!*alarm.borrow());
    }

    #[test]
    fn a_share_of_ram_is_a_positive_limit() {
        let memory = Memory::for_watermark(Watermark::PerMille(400));
        assert!(memory.limit > 0);
    }
}
