//! Automatic recovery settings: how a connection that lost its broker reconnects.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

/// Opt-in automatic recovery, set with [`ConnectOptions::recovery`](crate::ConnectOptions::recovery).
///
/// When the connection is lost (the socket fails, heartbeats stop, or the broker closes
/// it with 320 CONNECTION_FORCED or 541 INTERNAL_ERROR, as on a broker restart), the
/// connection reconnects with exponential backoff, re-declares the exchanges, queues and
/// bindings it declared, reopens its channels (with their prefetch and confirm mode)
/// and restarts their consumers. The [`Connection`](crate::Connection),
/// [`Channel`](crate::Channel) and [`Consumer`](crate::Consumer) handles stay valid
/// throughout: consumers' streams simply resume.
///
/// What the loss cannot preserve is reported, never dropped silently:
/// - publishes awaiting a confirm fail (their [`PublisherConfirm`](crate::PublisherConfirm)
///   resolves to the loss reason): republish them if they must arrive;
/// - calls awaiting the broker's answer fail with the loss reason;
/// - deliveries received before the loss can no longer be acknowledged (the broker
///   requeues them and delivers them again with `redelivered` set); acknowledging one
///   succeeds and does nothing, so a consumer need not know a recovery happened;
/// - a channel in transaction mode is not reopened, as its uncommitted work is gone: it
///   closes with the loss reason.
///
/// Calls made while the connection is recovering wait for it (bound them with a
/// timeout if that matters), then run on the new connection. A server-named queue comes
/// back under a new name; its bindings and consumers follow it. After
/// [`Recovery::max_attempts`] failed attempts the connection closes for good with the
/// last attempt's error.
///
/// ```no_run
/// use warren_client::{ConnectOptions, Connection, Recovery};
///
/// # async fn run() -> Result<(), warren_client::Error> {
/// let options = ConnectOptions::from_uri("amqp://guest:guest@localhost:5672/%2f")?
///     .recovery(Recovery {
///         max_attempts: Some(30),
///         ..Recovery::default()
///     });
/// let connection = Connection::connect_with(options).await?;
/// // ... declare, consume; after a broker restart the consumers resume.
/// connection.wait_recoveries(1).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The wait before the first reconnection attempt.
    pub initial_delay: Duration,
    /// The longest wait between attempts: the wait doubles from `initial_delay` up to it.
    pub max_delay: Duration,
    /// Give up after this many failed attempts in a row; `None` never gives up.
    pub max_attempts: Option<u32>,
}

impl Default for Recovery {
    /// First attempt after 100 ms, doubling to at most 10 s between attempts, for ever.
    fn default() -> Self {
        Recovery {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_attempts: None,
        }
    }
}

impl Recovery {
    /// The wait before attempt `attempt` (1-based): exponential, capped, with up to 25%
    /// jitter taken off so that many clients of a restarted broker do not reconnect in
    /// lockstep.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let base = self
            .initial_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay);
        // A random quarter, from the process's random hash keys: no rand crate for this.
        let random = RandomState::new().hash_one(attempt);
        let jitter = base.mul_f64((random % 1000) as f64 / 4000.0);
        base - jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_bounded_jitter() {
        let recovery = Recovery {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_attempts: None,
        };
        let bounds = [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ];
        for (attempt, base_ms) in bounds {
            let delay = recovery.delay(attempt);
            let base = Duration::from_millis(base_ms);
            assert!(delay <= base, "attempt {attempt}: {delay:?} > {base:?}");
            assert!(
                delay >= base.mul_f64(0.75),
                "attempt {attempt}: {delay:?} < 75% of {base:?}"
            );
        }
    }
}
