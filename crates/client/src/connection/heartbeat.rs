//! Heartbeats: send one when nothing was written for half the negotiated interval;
//! declare the server dead when nothing was read for two intervals.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at};

/// What a heartbeat tick calls for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Nothing to do.
    Idle,
    /// Write a heartbeat frame.
    Send,
    /// The server has been silent too long: the connection is dead.
    Dead(Duration),
}

/// Heartbeat timing for a connection with a non-zero negotiated interval.
pub(crate) struct Heartbeat {
    ticker: Interval,
    send_after: Duration,
    dead_after: Duration,
    last_read: Instant,
    last_write: Instant,
}

impl Heartbeat {
    /// Timing for `seconds`; `None` when heartbeats are off (0).
    pub(crate) fn new(seconds: u16) -> Option<Heartbeat> {
        if seconds == 0 {
            return None;
        }
        let interval = Duration::from_secs(u64::from(seconds));
        let send_after = interval / 2;
        let now = Instant::now();
        let mut ticker = interval_at(now + send_after, send_after);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Some(Heartbeat {
            ticker,
            send_after,
            dead_after: interval * 2,
            last_read: now,
            last_write: now,
        })
    }

    /// Something arrived from the server (any frame counts).
    pub(crate) fn read(&mut self) {
        self.last_read = Instant::now();
    }

    /// Something was written to the server.
    pub(crate) fn wrote(&mut self) {
        self.last_write = Instant::now();
    }

    /// Waits for the next tick; never resolves without heartbeats.
    pub(crate) async fn tick(heartbeat: &mut Option<Heartbeat>) {
        match heartbeat {
            Some(h) => {
                h.ticker.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Decides what a tick calls for. While `reading` is false (the connection paused
    /// reading for a full consumer), silence from the server proves nothing.
    pub(crate) fn check(&mut self, reading: bool) -> Beat {
        let now = Instant::now();
        if !reading {
            self.last_read = now;
        }
        let silent = now.saturating_duration_since(self.last_read);
        if silent >= self.dead_after {
            return Beat::Dead(silent);
        }
        if now.saturating_duration_since(self.last_write) >= self.send_after {
            return Beat::Send;
        }
        Beat::Idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_heartbeats() {
        assert!(Heartbeat::new(0).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_writer_sends_and_silent_server_dies() {
        let mut hb = Heartbeat::new(10);
        let Some(h) = hb.as_mut() else {
            unreachable!("10 s heartbeats are on")
        };
        assert_eq!(h.check(true), Beat::Idle);
        Heartbeat::tick(&mut hb).await; // 5 s: half the interval without a write
        let Some(h) = hb.as_mut() else { unreachable!() };
        assert_eq!(h.check(true), Beat::Send);
        h.wrote();
        h.read();
        assert_eq!(h.check(true), Beat::Idle);
        for _ in 0..4 {
            Heartbeat::tick(&mut hb).await;
        }
        // 20 s since the last read: two intervals.
        let Some(h) = hb.as_mut() else { unreachable!() };
        assert!(matches!(h.check(true), Beat::Dead(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_while_not_reading_is_not_death() {
        let mut hb = Heartbeat::new(1);
        for _ in 0..10 {
            Heartbeat::tick(&mut hb).await;
        }
        let Some(h) = hb.as_mut() else { unreachable!() };
        assert_eq!(h.check(false), Beat::Send);
    }
}
