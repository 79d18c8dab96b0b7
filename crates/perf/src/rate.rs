//! Pacing a producer at a fixed rate.
//!
//! Message `n` is due at `start + n / rate`, computed from `n` rather than by adding
//! an interval each time, so rounding never accumulates and the average rate is exact.
//! A producer woken late by the timer (tokio's resolution is a millisecond) sends the
//! messages that fell due meanwhile back to back and so catches up. If it falls further
//! behind than [`MAX_LAG`] (the broker pushed back), the schedule restarts from now
//! instead of bursting to make up for the lost time.

use std::time::{Duration, Instant};

/// How far behind schedule a producer may catch up with a burst.
pub const MAX_LAG: Duration = Duration::from_secs(1);

/// When each message of a rate-limited producer may go.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    /// Messages per second; 0 is no limit.
    rate: u64,
    /// When message 0 of the current schedule was due.
    start: Instant,
    /// The next message's number in the current schedule.
    next: u64,
}

impl RateLimiter {
    /// A limiter of `rate` messages per second whose first message is due at `start`;
    /// a rate of 0 sets no limit.
    pub fn new(rate: u64, start: Instant) -> Self {
        RateLimiter {
            rate,
            start,
            next: 0,
        }
    }

    /// When the next message may be sent (`None`: at once, there is no limit), given
    /// the time now; counts the message as sent.
    pub fn next_due(&mut self, now: Instant) -> Option<Instant> {
        if self.rate == 0 {
            return None;
        }
        let mut due = self.due(self.next);
        if now.saturating_duration_since(due) > MAX_LAG {
            self.start = now;
            self.next = 0;
            due = now;
        }
        self.next = self.next.saturating_add(1);
        Some(due)
    }

    /// When message `n` of the current schedule is due.
    fn due(&self, n: u64) -> Instant {
        let nanos = u128::from(n) * 1_000_000_000 / u128::from(self.rate);
        let offset = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        self.start.checked_add(offset).unwrap_or(self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rate_means_no_waiting() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(0, start);
        for _ in 0..10 {
            assert_eq!(limiter.next_due(start), None);
        }
    }

    #[test]
    fn messages_are_spaced_by_the_rate() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1000, start);
        let dues: Vec<_> = (0..1001).map(|_| limiter.next_due(start)).collect();
        assert_eq!(dues[0], Some(start));
        assert_eq!(dues[1], Some(start + Duration::from_millis(1)));
        assert_eq!(dues[1000], Some(start + Duration::from_secs(1)));
    }

    #[test]
    fn rounding_does_not_accumulate() {
        // 3 per second is 333.33.. ms apart; message 3000 is due at exactly 1000 s.
        let start = Instant::now();
        let mut limiter = RateLimiter::new(3, start);
        let mut last = None;
        for _ in 0..=3000 {
            last = limiter.next_due(start);
        }
        assert_eq!(last, Some(start + Duration::from_secs(1000)));
    }

    #[test]
    fn a_late_producer_catches_up_with_a_burst() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1000, start);
        let late = start + Duration::from_millis(500);
        // Every message due before `late` is already due: no waiting for them.
        for _ in 0..500 {
            assert!(limiter.next_due(late).is_some_and(|due| due <= late));
        }
        assert_eq!(limiter.next_due(late), Some(late));
        assert!(limiter.next_due(late).is_some_and(|due| due > late));
    }

    #[test]
    fn a_producer_far_behind_restarts_the_schedule() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1000, start);
        assert_eq!(limiter.next_due(start), Some(start));
        let stalled = start + MAX_LAG + Duration::from_secs(5);
        assert_eq!(limiter.next_due(stalled), Some(stalled));
        assert_eq!(
            limiter.next_due(stalled),
            Some(stalled + Duration::from_millis(1))
        );
    }
}
