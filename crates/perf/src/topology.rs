//! The exchange, queues and bindings of a run: planned from the options (pure, so the
//! routing rules are tested without a broker), then declared and later deleted.
//!
//! Routing: a producer cycles through the routing keys, and key `k` reaches exactly
//! one queue, `k % queues` (direct: bound with the key itself; topic: key `perf.K.qI`
//! matches only the pattern `perf.*.qI`), so the queues share the messages evenly.
//! Fanout delivers every message to every queue. The topic scenario's extra bindings
//! are patterns that no key matches (their first word is never `perf`, or their second
//! is `us` where keys have a number), bound to idle queues.

use futures_util::{StreamExt, TryStreamExt, stream};
use warren_client::{
    Channel, ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind, FieldTable,
    QueueDeclareOptions, QueueDeleteOptions,
};

use crate::error::Error;
use crate::options::{ExchangeType, Options};

/// Most idle queues that hold the topic scenario's non-matching bindings.
pub const MAX_IDLE_QUEUES: usize = 100;
/// Declarations and bindings in flight at once during setup (they pipeline on one
/// channel, so setting up 1,000 bindings costs a few round trips, not 1,000).
const SETUP_IN_FLIGHT: usize = 256;

/// What a run declares and how producers address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The exchange published to ("" is the default exchange).
    pub exchange: String,
    /// Its type.
    pub kind: ExchangeType,
    /// Whether the run declares (and deletes) the exchange: not "" or `amq.*`.
    pub declare_exchange: bool,
    /// The queues consumed, in order.
    pub queues: Vec<String>,
    /// Queues that only hold non-matching topic bindings.
    pub idle_queues: Vec<String>,
    /// (queue, binding key) pairs.
    pub bindings: Vec<(String, String)>,
    /// The routing keys producers cycle through.
    pub routing_keys: Vec<String>,
    /// Queues each message reaches.
    pub copies: u64,
    /// Durable exchange and queues.
    pub durable: bool,
}

impl Topology {
    /// The topology the options describe (which must have passed validation).
    pub fn plan(options: &Options) -> Topology {
        let exchange = options.exchange_name();
        let n = options.queues;
        if n == 0 {
            // Only an idle-connections run has no queue; it publishes nothing.
            return Topology {
                declare_exchange: false,
                exchange,
                kind: options.exchange_type,
                queues: Vec::new(),
                idle_queues: Vec::new(),
                bindings: Vec::new(),
                routing_keys: Vec::new(),
                copies: 0,
                durable: options.persistent,
            };
        }
        let queues: Vec<String> = (0..n)
            .map(|i| format!("{}{i}", options.queue_prefix))
            .collect();
        let key_count = options.routing_keys.max(n);
        let mut bindings = Vec::new();
        let mut idle_queues = Vec::new();
        let (routing_keys, copies) = match options.exchange_type {
            ExchangeType::Fanout => {
                bindings.extend(queues.iter().map(|q| (q.clone(), String::new())));
                (vec![String::new()], n as u64)
            }
            ExchangeType::Direct => {
                let keys: Vec<String> = if options.routing_keys == 0 {
                    queues.clone()
                } else {
                    (0..key_count).map(|k| format!("perf-key-{k}")).collect()
                };
                if !exchange.is_empty() {
                    bindings.extend(
                        keys.iter()
                            .enumerate()
                            .map(|(k, key)| (queues[k % n].clone(), key.clone())),
                    );
                }
                (keys, 1)
            }
            ExchangeType::Topic => {
                let keys = (0..key_count)
                    .map(|k| format!("perf.{k}.q{}", k % n))
                    .collect();
                bindings.extend(
                    queues
                        .iter()
                        .enumerate()
                        .map(|(i, q)| (q.clone(), format!("perf.*.q{i}"))),
                );
                let extra = options.topic_bindings.saturating_sub(n);
                let idle = extra.min(MAX_IDLE_QUEUES);
                idle_queues = (0..idle)
                    .map(|j| format!("{}idle-{j}", options.queue_prefix))
                    .collect();
                bindings.extend((0..extra).map(|j| {
                    let pattern = match j % 4 {
                        0 => format!("svc{j}.eu.error"),
                        1 => format!("svc{j}.*.info"),
                        2 => format!("svc{j}.#"),
                        _ => format!("*.us.level{j}"),
                    };
                    (idle_queues[j % idle].clone(), pattern)
                }));
                (keys, 1)
            }
        };
        Topology {
            declare_exchange: !exchange.is_empty() && !exchange.starts_with("amq."),
            exchange,
            kind: options.exchange_type,
            queues,
            idle_queues,
            bindings,
            routing_keys,
            copies,
            durable: options.persistent,
        }
    }

    /// Declares everything and purges the consumed queues (a run counts only its own
    /// messages). The broker's refusals surface as [`Error::Client`]: 406
    /// PRECONDITION_FAILED when a queue or exchange exists with other properties.
    pub async fn declare(&self, channel: &Channel) -> Result<(), Error> {
        if self.declare_exchange {
            let kind = match self.kind {
                ExchangeType::Direct => ExchangeKind::Direct,
                ExchangeType::Fanout => ExchangeKind::Fanout,
                ExchangeType::Topic => ExchangeKind::Topic,
            };
            let options = ExchangeDeclareOptions {
                durable: self.durable,
                ..Default::default()
            };
            channel
                .exchange_declare(&self.exchange, kind, options)
                .await?;
        }
        let queue_options = QueueDeclareOptions {
            durable: self.durable,
            ..Default::default()
        };
        let all_queues = self.queues.iter().chain(&self.idle_queues);
        pipelined(all_queues.map(|q| channel.queue_declare(q, queue_options.clone()))).await?;
        pipelined(self.queues.iter().map(|q| channel.queue_purge(q))).await?;
        let bindings = self.bindings.iter();
        pipelined(bindings.map(|(queue, key)| {
            channel.queue_bind(queue, &self.exchange, key, FieldTable::default())
        }))
        .await?;
        Ok(())
    }

    /// Deletes the queues (their bindings go with them) and the exchange.
    pub async fn delete(&self, channel: &Channel) -> Result<(), Error> {
        let all_queues = self.queues.iter().chain(&self.idle_queues);
        pipelined(all_queues.map(|q| channel.queue_delete(q, QueueDeleteOptions::default())))
            .await?;
        if self.declare_exchange {
            channel
                .exchange_delete(&self.exchange, ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

/// Runs the calls with up to [`SETUP_IN_FLIGHT`] in flight; fails on the first error.
async fn pipelined<F, T>(calls: impl Iterator<Item = F>) -> Result<(), Error>
where
    F: Future<Output = Result<T, warren_client::Error>>,
{
    stream::iter(calls)
        .buffer_unordered(SETUP_IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn options(queues: usize, kind: ExchangeType) -> Options {
        Options {
            queues,
            consumers: queues,
            exchange_type: kind,
            ..Options::default()
        }
    }

    #[test]
    fn default_direct_uses_the_default_exchange_and_queue_names() {
        let plan = Topology::plan(&options(2, ExchangeType::Direct));
        assert_eq!(plan.exchange, "");
        assert!(!plan.declare_exchange);
        assert_eq!(plan.queues, ["perf-q-0", "perf-q-1"]);
        assert_eq!(plan.routing_keys, plan.queues);
        assert!(plan.bindings.is_empty());
        assert_eq!(plan.copies, 1);
    }

    #[test]
    fn direct_keys_spread_over_the_queues() {
        let plan = Topology::plan(&Options {
            routing_keys: 4,
            ..options(2, ExchangeType::Direct)
        });
        assert_eq!(plan.exchange, "perf-direct");
        assert_eq!(plan.routing_keys.len(), 4);
        let to_q1 = plan
            .bindings
            .iter()
            .filter(|(q, _)| q == "perf-q-1")
            .count();
        assert_eq!(to_q1, 2);
    }

    #[test]
    fn fanout_reaches_every_queue() {
        let plan = Topology::plan(&options(3, ExchangeType::Fanout));
        assert_eq!(plan.copies, 3);
        assert_eq!(plan.bindings.len(), 3);
        assert_eq!(plan.routing_keys, [""]);
    }

    #[test]
    fn topic_has_the_requested_number_of_bindings() {
        let plan = Topology::plan(&Options {
            routing_keys: 1000,
            topic_bindings: 1000,
            ..options(2, ExchangeType::Topic)
        });
        assert_eq!(plan.bindings.len(), 1000);
        assert_eq!(plan.idle_queues.len(), MAX_IDLE_QUEUES);
        assert_eq!(plan.routing_keys.len(), 1000);
    }

    /// AMQP topic matching, naively: `*` one word, `#` zero or more.
    fn matches(pattern: &[&str], key: &[&str]) -> bool {
        match (pattern.first(), key.first()) {
            (None, None) => true,
            (Some(&"#"), _) => {
                matches(&pattern[1..], key) || (!key.is_empty() && matches(pattern, &key[1..]))
            }
            (Some(&"*"), Some(_)) => matches(&pattern[1..], &key[1..]),
            (Some(p), Some(k)) if p == k => matches(&pattern[1..], &key[1..]),
            _ => false,
        }
    }

    #[test]
    fn each_topic_key_matches_exactly_one_binding_of_its_queue() {
        let plan = Topology::plan(&Options {
            routing_keys: 50,
            topic_bindings: 300,
            ..options(3, ExchangeType::Topic)
        });
        for (k, key) in plan.routing_keys.iter().enumerate() {
            let key: Vec<&str> = key.split('.').collect();
            let hits: Vec<&String> = plan
                .bindings
                .iter()
                .filter(|(_, pattern)| matches(&pattern.split('.').collect::<Vec<_>>(), &key))
                .map(|(queue, _)| queue)
                .collect();
            assert_eq!(hits, [&plan.queues[k % 3]], "key {key:?}");
        }
    }

    #[test]
    fn amq_exchanges_are_used_but_never_declared() {
        let plan = Topology::plan(&Options {
            exchange: Some("amq.topic".into()),
            ..options(1, ExchangeType::Topic)
        });
        assert!(!plan.declare_exchange);
    }
}
