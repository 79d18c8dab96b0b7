//! Unroutable messages are never silent: counted per exchange and logged.
//!
//! RabbitMQ drops a message that routes nowhere without a trace unless the publisher
//! set `mandatory`. warren counts such messages per exchange and warns about the first
//! one of each exchange, then at most once a minute with the count since, so a
//! misrouted publisher shows up in the log without flooding it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one exchange's unroutable messages are logged at most.
const LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Tally {
    total: u64,
    /// Counted since the last log line.
    unlogged: u64,
    last_log: Instant,
}

/// Unroutable message counts of one vhost's exchanges.
#[derive(Debug, Default)]
pub(crate) struct Unroutable {
    /// Touched only when a message routes nowhere, never on the routed path.
    tallies: Mutex<HashMap<String, Tally>>,
}

/// What to log about an unroutable message, if anything.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Report {
    /// The exchange's first unroutable message.
    First,
    /// `count` more since the last report, `total` in all.
    Since { count: u64, total: u64 },
    /// Reported recently.
    Quiet,
}

impl Unroutable {
    /// Counts one unroutable message published to `exchange` ("" for the default
    /// exchange) and logs it when due, with what became of it (`outcome`).
    pub(crate) fn record(&self, vhost: &str, exchange: &str, routing_key: &str, outcome: &str) {
        let name = if exchange.is_empty() {
            "(AMQP default)"
        } else {
            exchange
        };
        match self.count(exchange, Instant::now()) {
            Report::First => tracing::warn!(
                vhost,
                exchange = name,
                routing_key,
                outcome,
                "message routed to no queue; this exchange's next ones are reported once a \
                 minute (mandatory, an alternate-exchange or x-unroutable = \"reject\" \
                 keep them from being dropped silently)"
            ),
            Report::Since { count, total } => tracing::warn!(
                vhost,
                exchange = name,
                unroutable = count,
                total,
                "messages routed to no queue since the last report"
            ),
            Report::Quiet => {}
        }
    }

    fn count(&self, exchange: &str, now: Instant) -> Report {
        let mut tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tally) = tallies.get_mut(exchange) else {
            tallies.insert(
                exchange.to_owned(),
                Tally {
                    total: 1,
                    unlogged: 0,
                    last_log: now,
                },
            );
            return Report::First;
        };
        tally.total += 1;
        tally.unlogged += 1;
        if now.duration_since(tally.last_log) < LOG_EVERY {
            return Report::Quiet;
        }
        tally.last_log = now;
        Report::Since {
            count: std::mem::take(&mut tally.unlogged),
            total: tally.total,
        }
    }

    #[cfg(test)]
    fn total(&self, exchange: &str) -> u64 {
        let tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        tallies.get(exchange).map_or(0, |t| t.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_exchange_and_reports_first_then_once_a_minute() {
        let u = Unroutable::default();
        let start = Instant::now();
        assert_eq!(u.count("x", start), Report::First);
        assert_eq!(u.count("x", start + Duration::from_secs(1)), Report::Quiet);
        assert_eq!(u.count("y", start), Report::First);
        assert_eq!(u.count("x", start + Duration::from_secs(30)), Report::Quiet);
        assert_eq!(
            u.count("x", start + Duration::from_secs(61)),
            Report::Since { count: 3, total: 4 }
        );
        assert_eq!(u.count("x", start + Duration::from_secs(62)), Report::Quiet);
        assert_eq!(u.total("x"), 5);
        assert_eq!(u.total("y"), 1);
        assert_eq!(u.total("z"), 0);
    }
}
