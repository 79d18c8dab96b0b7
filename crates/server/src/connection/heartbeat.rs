//! Heartbeats, both ways. The timer ticks at half the negotiated interval; a tick with
//! nothing written sends a heartbeat, and four ticks (two intervals) with nothing read
//! mean the peer is gone. Activity is recorded as flags, not timestamps, so the data
//! path costs no clock reads.

use std::time::Duration;

use tokio::time::{Interval, MissedTickBehavior, interval_at};

/// Ticks without reads after which the peer counts as dead: two heartbeat intervals.
const DEAD_AFTER_TICKS: u32 = 4;

/// What a tick asks the connection to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Nothing to do.
    Idle,
    /// Send a heartbeat frame.
    Send,
    /// The peer has been silent too long: close the socket.
    PeerDead,
}

pub(crate) struct Heartbeat {
    timer: Option<Interval>,
    read_since_tick: bool,
    wrote_since_tick: bool,
    silent_ticks: u32,
}

impl Heartbeat {
    /// A monitor for `seconds` (0 disables heartbeats).
    pub(crate) fn new(seconds: u16) -> Self {
        let timer = (seconds > 0).then(|| {
            let half = Duration::from_millis(u64::from(seconds) * 500);
            let mut timer = interval_at(tokio::time::Instant::now() + half, half);
            timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
            timer
        });
        Heartbeat {
            timer,
            read_since_tick: false,
            wrote_since_tick: false,
            silent_ticks: 0,
        }
    }

    pub(crate) fn read(&mut self) {
        self.read_since_tick = true;
    }

    pub(crate) fn wrote(&mut self) {
        self.wrote_since_tick = true;
    }

    /// Waits for the next tick; never resolves when heartbeats are off.
    pub(crate) async fn tick(&mut self) -> Beat {
        match &mut self.timer {
            Some(timer) => {
                timer.tick().await;
            }
            None => std::future::pending::<()>().await,
        }
        self.on_tick()
    }

    fn on_tick(&mut self) -> Beat {
        if std::mem::take(&mut self.read_since_tick) {
            self.silent_ticks = 0;
        } else {
            self.silent_ticks += 1;
        }
        if self.silent_ticks >= DEAD_AFTER_TICKS {
            return Beat::PeerDead;
        }
        if std::mem::take(&mut self.wrote_since_tick) {
            Beat::Idle
        } else {
            Beat::Send
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silent_peer_is_dead_after_two_intervals() {
        let mut hb = Heartbeat::new(2);
        let start = tokio::time::Instant::now();
        let mut beats = Vec::new();
        loop {
            let beat = hb.tick().await;
            hb.wrote();
            if beat == Beat::PeerDead {
                break;
            }
            beats.push(beat);
        }
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        assert_eq!(beats.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn sends_when_nothing_was_written_and_reads_keep_it_alive() {
        let mut hb = Heartbeat::new(1);
        for _ in 0..10 {
            hb.read();
            assert_eq!(hb.tick().await, Beat::Send);
        }
        hb.read();
        hb.wrote();
        assert_eq!(hb.tick().await, Beat::Idle);
    }
}
