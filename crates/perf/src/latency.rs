//! End-to-end latency: producers write the send time into the first 8 bytes of each
//! body, consumers read it on receipt and record the difference in a histogram.
//!
//! Times are nanoseconds since an `Instant` shared by the run's producers and consumers
//! (monotonic, so a clock step cannot make a latency negative), big-endian. A consumer
//! records into a histogram of its own and merges it into the shared one every
//! [`MERGE_EVERY`], so the progress line can show a p99 without a lock per message.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::Error;
use crate::options::MIN_BODY;

/// The longest latency the histogram tells apart; longer ones count as this.
const MAX_LATENCY_MICROS: u64 = 3_600 * 1_000_000;
/// How often a consumer merges its histogram into the shared one.
pub const MERGE_EVERY: Duration = Duration::from_millis(100);
/// Bodies are cut from buffers of at least this size, so allocation is per batch.
const ARENA: usize = 256 * 1024;

/// An empty latency histogram in microseconds, 3 significant digits, up to an hour.
pub fn histogram() -> Result<Histogram<u64>, Error> {
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3)
        .map_err(|e| Error::Task(format!("cannot make a latency histogram: {e}")))
}

/// Nanoseconds from `epoch` to `now` (0 if `now` is earlier).
pub fn stamp(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// The send time written in a body, if it is long enough to hold one.
pub fn read_stamp(body: &[u8]) -> Option<u64> {
    let first: [u8; 8] = body.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(first))
}

/// Makes message bodies: a timestamp, then constant padding to the body size.
///
/// Bodies are carved out of one large buffer with `split`, so they share its
/// allocation (one per [`ARENA`] bytes, not one per message); the buffer is freed once
/// every body cut from it has been written out and dropped.
#[derive(Debug)]
pub struct BodyWriter {
    arena: BytesMut,
    padding: Vec<u8>,
    size: usize,
}

impl BodyWriter {
    /// Bodies of `size` bytes (at least [`MIN_BODY`]).
    pub fn new(size: usize) -> Self {
        let size = size.max(MIN_BODY);
        BodyWriter {
            arena: BytesMut::new(),
            padding: vec![b'x'; size - MIN_BODY],
            size,
        }
    }

    /// The next body, carrying `stamp`.
    pub fn body(&mut self, stamp: u64) -> Bytes {
        if self.arena.capacity() < self.size {
            self.arena = BytesMut::with_capacity(self.size.max(ARENA));
        }
        self.arena.put_u64(stamp);
        self.arena.extend_from_slice(&self.padding);
        self.arena.split().freeze()
    }
}

/// A consumer's side of the latency histogram.
#[derive(Debug)]
pub struct Recorder {
    epoch: Instant,
    local: Histogram<u64>,
    shared: Arc<Mutex<Histogram<u64>>>,
    last_merge: Instant,
}

impl Recorder {
    /// Records against `epoch` and merges into `shared`.
    pub fn new(epoch: Instant, shared: Arc<Mutex<Histogram<u64>>>) -> Self {
        // Same bounds as the shared histogram, so merging never fails.
        let local = Histogram::new_from(&shared.lock().unwrap_or_else(PoisonError::into_inner));
        Recorder {
            epoch,
            local,
            shared,
            last_merge: Instant::now(),
        }
    }

    /// Records the latency of a body received at `now`.
    pub fn record(&mut self, body: &[u8], now: Instant) {
        let Some(sent) = read_stamp(body) else {
            return;
        };
        let micros = stamp(self.epoch, now).saturating_sub(sent) / 1_000;
        self.local.saturating_record(micros.max(1));
        if now.saturating_duration_since(self.last_merge) >= MERGE_EVERY {
            self.merge();
            self.last_merge = now;
        }
    }

    /// Moves what was recorded locally into the shared histogram.
    pub fn merge(&mut self) {
        if self.local.is_empty() {
            return;
        }
        // Held for one histogram addition, never across an await; a poisoned lock only
        // means another consumer panicked mid-add, and the counts are still usable.
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        // Same bounds on both sides, so the addition cannot fail.
        let _ = shared.add(&self.local);
        drop(shared);
        self.local.reset();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.merge();
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Messages measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// The longest.
    pub max: f64,
    /// The mean.
    pub mean: f64,
}

impl Latency {
    /// The percentiles of a histogram in microseconds; `None` when it is empty.
    pub fn of(histogram: &Histogram<u64>) -> Option<Latency> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1_000.0;
        Some(Latency {
            count: histogram.len(),
            p50: ms(histogram.value_at_quantile(0.50)),
            p95: ms(histogram.value_at_quantile(0.95)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1_000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn bodies_carry_their_stamp_and_size() {
        let mut writer = BodyWriter::new(16);
        let a = writer.body(42);
        let b = writer.body(7);
        assert_eq!(a.len(), 16);
        assert_eq!(read_stamp(&a), Some(42));
        assert_eq!(read_stamp(&b), Some(7));
        assert_eq!(&a[8..], b"xxxxxxxx");
    }

    #[test]
    fn tiny_bodies_are_padded_to_the_stamp() {
        let mut writer = BodyWriter::new(1);
        assert_eq!(writer.body(1).len(), 8);
    }

    #[test]
    fn bodies_larger_than_the_arena_still_fit() {
        let mut writer = BodyWriter::new(ARENA * 2);
        for i in 0..3 {
            let body = writer.body(i);
            assert_eq!(body.len(), ARENA * 2);
            assert_eq!(read_stamp(&body), Some(i));
        }
    }

    #[test]
    fn short_bodies_have_no_stamp() {
        assert_eq!(read_stamp(b"1234567"), None);
    }

    #[test]
    fn recorder_merges_into_the_shared_histogram() {
        let epoch = Instant::now();
        let shared = Arc::new(Mutex::new(histogram().unwrap()));
        let mut recorder = Recorder::new(epoch, shared.clone());
        let sent = stamp(epoch, epoch);
        let body = sent.to_be_bytes();
        recorder.record(&body, epoch + Duration::from_millis(2));
        recorder.record(&body, epoch + Duration::from_millis(4));
        drop(recorder);
        let latency = Latency::of(&shared.lock().unwrap()).unwrap();
        assert_eq!(latency.count, 2);
        assert!((latency.p50 - 2.0).abs() < 0.01, "{latency:?}");
        assert!((latency.max - 4.0).abs() < 0.01, "{latency:?}");
    }

    #[test]
    fn an_empty_histogram_has_no_percentiles() {
        assert_eq!(Latency::of(&histogram().unwrap()), None);
    }
}
