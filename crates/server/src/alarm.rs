//! Resource alarms: memory held by queues above the high watermark, or free disk below
//! its limit. Either one sets the alarm that connections follow: while it is on, a
//! connection that publishes stops reading its socket (TCP then slows the publisher)
//! and tells a client that supports it with `connection.blocked`. Consumers keep
//! draining.
//!
//! Memory is what queues report holding (each message's buffers plus its queue slot,
//! counted once per queue that holds it), as deltas into one atomic counter: the
//! allocator's view does not shrink when a queue drains. Free disk is polled on the
//! data directory's file system.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Watermark;

/// The memory limit a watermark sets on this machine.
fn memory_limit(watermark: Watermark) -> u64 {
    match watermark {
        Watermark::Bytes(bytes) => bytes,
        Watermark::PerMille(share) => match total_ram() {
            Some(total) => total / 1000 * u64::from(share),
            None => {
                warn!("cannot read MemTotal from /proc/meminfo; no memory alarm");
                u64::MAX
            }
        },
    }
}

/// How often free disk space is checked.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(5);

/// What sets the alarm, and the alarm connections follow.
#[derive(Debug)]
pub(crate) struct Alarm {
    held: AtomicI64,
    /// Changed by a reload.
    memory_limit: AtomicU64,
    disk_low: AtomicBool,
    /// Free disk at the last check, for monitoring; `u64::MAX` until read.
    disk_free: AtomicU64,
    /// The alarm's state for cheap reads (set under the watch's lock, with `on`).
    set: AtomicBool,
    /// Wakes connections when the state changes.
    on: watch::Sender<bool>,
}

impl Alarm {
    /// An alarm that goes off when queues hold more than `memory_limit` bytes.
    pub(crate) fn new(memory_limit: u64) -> Self {
        Alarm {
            held: AtomicI64::new(0),
            memory_limit: AtomicU64::new(memory_limit),
            disk_low: AtomicBool::new(false),
            disk_free: AtomicU64::new(u64::MAX),
            set: AtomicBool::new(false),
            on: watch::Sender::new(false),
        }
    }

    /// The memory limit a watermark sets on this machine.
    pub(crate) fn for_watermark(watermark: Watermark) -> Self {
        Alarm::new(memory_limit(watermark))
    }

    /// Takes a new watermark (a reload), setting or clearing the alarm by it at once.
    pub(crate) fn set_watermark(&self, watermark: Watermark) {
        self.memory_limit
            .store(memory_limit(watermark), Ordering::Release);
        self.update();
    }

    /// A queue now holds `delta` bytes more (or fewer, when negative).
    pub(crate) fn add(&self, delta: i64) {
        self.held.fetch_add(delta, Ordering::AcqRel);
        self.update();
    }

    /// Bytes the queues hold now.
    pub(crate) fn held(&self) -> u64 {
        u64::try_from(self.held.load(Ordering::Acquire)).unwrap_or(0)
    }

    /// Free disk space on the data directory's file system at the last check, if it
    /// could be read.
    pub(crate) fn disk_free(&self) -> Option<u64> {
        Some(self.disk_free.load(Ordering::Relaxed)).filter(|free| *free != u64::MAX)
    }

    /// Free disk space went below (or back above) its limit.
    pub(crate) fn set_disk_low(&self, low: bool) {
        if self.disk_low.swap(low, Ordering::AcqRel) != low {
            info!(
                "free disk space {}",
                if low {
                    "below its limit"
                } else {
                    "back above its limit"
                }
            );
            self.update();
        }
    }

    /// Why the alarm is on, as RabbitMQ words it in `connection.blocked`.
    pub(crate) fn reason(&self) -> &'static str {
        if self.disk_low.load(Ordering::Acquire) {
            "low on disk"
        } else {
            "low on memory"
        }
    }

    /// Follows the alarm (true while set).
    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.on.subscribe()
    }

    /// Whether the alarm is on: one atomic load, for the connection loop.
    pub(crate) fn is_on(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    fn should_be_on(&self) -> bool {
        let held = self.held.load(Ordering::Acquire);
        u64::try_from(held).is_ok_and(|held| held > self.memory_limit.load(Ordering::Acquire))
            || self.disk_low.load(Ordering::Acquire)
    }

    /// Flips the alarm if its inputs say so. Queues call this on every wake-up, so the
    /// common case (no change) is two atomic loads; only a change takes the watch's
    /// lock, and recomputes under it so that racing updates end in the right state.
    fn update(&self) {
        if self.should_be_on() == self.is_on() {
            return;
        }
        self.on.send_if_modified(|on| {
            let set = self.should_be_on();
            self.set.store(set, Ordering::Release);
            if *on == set {
                return false;
            }
            *on = set;
            info!(
                held = self.held.load(Ordering::Acquire),
                memory_limit = self.memory_limit.load(Ordering::Acquire),
                "resource alarm {}",
                if set {
                    "set: blocking publishers"
                } else {
                    "cleared"
                }
            );
            true
        });
    }
}

/// Checks free space on `data_dir`'s file system until shutdown.
pub(crate) async fn watch_disk(
    data_dir: PathBuf,
    limit: u64,
    alarm: std::sync::Arc<Alarm>,
    shutdown: CancellationToken,
) {
    loop {
        match free_disk(&data_dir) {
            Some(free) => {
                alarm.disk_free.store(free, Ordering::Relaxed);
                alarm.set_disk_low(free < limit);
            }
            None => warn!(path = %data_dir.display(), "cannot read free disk space"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(DISK_CHECK_EVERY) => {}
        }
    }
}

/// Bytes available to the broker on the file system of `dir`, or of its nearest
/// existing ancestor (the data directory may not exist yet).
fn free_disk(dir: &Path) -> Option<u64> {
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("."));
    let stat = nix::sys::statvfs::statvfs(existing).ok()?;
    Some(stat.blocks_available() as u64 * stat.fragment_size() as u64)
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
    fn a_new_watermark_sets_or_clears_the_alarm_at_once() {
        let alarm = Alarm::new(100);
        alarm.add(150);
        assert!(alarm.is_on());
        alarm.set_watermark(Watermark::Bytes(1000));
        assert!(!alarm.is_on());
        alarm.set_watermark(Watermark::Bytes(10));
        assert!(alarm.is_on());
    }

    #[test]
    fn memory_sets_and_clears_the_alarm() {
        let alarm = Alarm::new(100);
        let on = alarm.subscribe();
        alarm.add(60);
        assert!(!*on.borrow() && !alarm.is_on());
        alarm.add(41);
        assert!(*on.borrow() && alarm.is_on());
        alarm.add(-1);
        assert!(!*on.borrow() && !alarm.is_on());
    }

    #[test]
    fn low_disk_holds_the_alarm_whatever_memory_does() {
        let alarm = Alarm::new(100);
        let on = alarm.subscribe();
        alarm.set_disk_low(true);
        assert!(*on.borrow());
        alarm.add(200);
        alarm.add(-200);
        assert!(*on.borrow());
        alarm.set_disk_low(false);
        assert!(!*on.borrow());
    }

    #[test]
    fn free_disk_is_read_for_a_path_that_does_not_exist_yet() {
        let free = free_disk(Path::new("/tmp/warren-no-such-dir/below"));
        assert!(free.is_some_and(|f| f > 0));
    }

    #[test]
    fn a_share_of_ram_is_a_positive_limit() {
        assert!(
            Alarm::for_watermark(Watermark::PerMille(400))
                .memory_limit
                .load(Ordering::Acquire)
                > 0
        );
    }
}
