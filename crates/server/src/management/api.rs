//! The JSON endpoints, shaped like RabbitMQ's management API for the fields monitoring
//! tools read (queue depth, consumers, `message_stats` with rates).

use serde_json::{Map, Value, json};

use super::effective::effective;
use super::rates::{self, QUEUE_STATS, UNROUTABLE_STATS};
use super::{Listed, Listing, json};
use warren_routing::{Binding, Destination, ExchangeSpec};

use crate::broker::Broker;
use crate::policy::PolicyDefinition;

/// `GET /api/overview`: totals over every vhost. `message_stats` sums the queues'
/// counters (a message routed to two queues counts twice; a deleted queue's counts
/// leave the totals) and adds the broker's unroutable counts; `channels` is how many
/// channels the open connections have.
pub(super) fn overview(broker: &Broker, listing: &Listing, channels: usize) -> Value {
    let (mut ready, mut unacked, mut consumers) = (0u64, 0u64, 0u64);
    for stats in listing.queues.iter().map(|l| &l.stats) {
        ready += u64::from(stats.ready);
        unacked += u64::from(stats.unacked);
        consumers += u64::from(stats.consumers);
    }
    let exchanges: usize = broker
        .vhosts()
        .values()
        .map(|v| v.snapshot().topology.exchanges().count() + 1)
        .sum();
    let counts = rates::sum(
        listing
            .queues
            .iter()
            .map(|l| rates::queue_counts(&l.stats.counters)),
    );
    let mut totals = message_stats(&QUEUE_STATS, &counts, &listing.rates.totals);
    totals.extend(message_stats(
        &UNROUTABLE_STATS,
        &rates::unroutable_counts(&broker.monitoring.unroutable()),
        &listing.rates.unroutable,
    ));
    json!({
        "product_name": "warren",
        "product_version": env!("CARGO_PKG_VERSION"),
        "management_version": env!("CARGO_PKG_VERSION"),
        "message_stats": totals,
        "queue_totals": {
            "messages": ready + unacked,
            "messages_ready": ready,
            "messages_unacknowledged": unacked,
        },
        "object_totals": {
            "connections": broker.connection_count(),
            "channels": channels,
            "consumers": consumers,
            "exchanges": exchanges,
            "queues": listing.queues.len(),
        },
    })
}

/// RabbitMQ's `message_stats` fields: each count, and its rate in messages per second
/// as `{name}_details: {"rate": r}`.
fn message_stats(names: &[&str], counts: &[u64], rates: &[f64]) -> Map<String, Value> {
    let mut out = Map::new();
    for ((name, count), rate) in names.iter().zip(counts).zip(rates) {
        out.insert((*name).to_owned(), json!(count));
        out.insert(format!("{name}_details"), json!({ "rate": rate }));
    }
    out
}

/// Seconds since `enqueued_at` (ms since the Unix epoch) at `now_ms`, to the
/// millisecond; 0 for a queue with no ready message.
pub(super) fn age_seconds(enqueued_at: Option<u64>, now_ms: u64) -> f64 {
    enqueued_at.map_or(0.0, |at| now_ms.saturating_sub(at) as f64 / 1000.0)
}

/// A queue's JSON with warren's monitoring fields added: RabbitMQ's `message_stats`
/// (counts since the queue's task started, rates over the last sampling interval)
/// and `oldest_message_age_seconds`, how long the oldest ready message has waited
/// since the broker enqueued it (RabbitMQ only has the producer's
/// `head_message_timestamp`).
fn queue_with_stats(
    listed: &Listed,
    listing: &Listing,
    now_ms: u64,
    samples: SamplesWanted,
) -> Value {
    let mut queue = queue_json(listed);
    if let Value::Object(fields) = &mut queue {
        if let SamplesWanted::Within(age_ms) = samples {
            let recent: Vec<Value> = listing
                .rates
                .ready_samples(&listed.queue.info)
                .iter()
                .take_while(|(at, _)| now_ms.saturating_sub(*at) <= age_ms)
                .map(|(at, ready)| json!({"sample": ready, "timestamp": at}))
                .collect();
            fields.insert(
                "messages_ready_details".into(),
                json!({ "rate": ready_rate(&recent), "samples": recent }),
            );
        }
        let stats = &listed.stats;
        let counts = rates::queue_counts(&stats.counters);
        let rates = listing.rates.queue(&listed.queue.info);
        fields.insert(
            "message_stats".into(),
            Value::Object(message_stats(&QUEUE_STATS, &counts, &rates)),
        );
        fields.insert(
            "oldest_message_age_seconds".into(),
            json!(age_seconds(stats.oldest_ready_at, now_ms)),
        );
    }
    queue
}

/// The vhosts to list, by name.
pub(super) fn vhosts(
    broker: &Broker,
    only: Option<&str>,
) -> Vec<(String, std::sync::Arc<crate::vhost::Vhost>)> {
    let mut vhosts: Vec<_> = broker
        .vhosts()
        .iter()
        .filter(|(name, _)| only.is_none_or(|wanted| name.as_str() == wanted))
        .map(|(name, vhost)| (name.clone(), vhost.clone()))
        .collect();
    vhosts.sort_by(|a, b| a.0.cmp(&b.0));
    vhosts
}

/// `GET /api/exchanges[/{vhost}]`: the default exchange (`""`) included, as RabbitMQ
/// lists it.
pub(super) fn exchanges(broker: &Broker, vhost: Option<&str>) -> Value {
    let mut out = Vec::new();
    for (name, v) in vhosts(broker, vhost) {
        out.push(json!({
            "name": "", "vhost": name, "type": "direct", "durable": true,
            "auto_delete": false, "internal": false, "arguments": {},
        }));
        let snapshot = v.snapshot();
        let mut exchanges: Vec<_> = snapshot.topology.exchanges().collect();
        exchanges.sort_by(|a, b| a.spec().name.cmp(&b.spec().name));
        for x in exchanges {
            out.push(exchange_json(&name, x.spec()));
        }
    }
    Value::Array(out)
}

/// An exchange as RabbitMQ's API and definitions show it.
pub(super) fn exchange_json(vhost: &str, spec: &ExchangeSpec) -> Value {
    json!({
        "name": &*spec.name,
        "vhost": vhost,
        "type": spec.kind.name(),
        "durable": spec.durable,
        "auto_delete": spec.auto_delete,
        "internal": spec.internal,
        "arguments": json::table(&spec.arguments),
    })
}

/// A binding from `source` as RabbitMQ's API and definitions show it.
pub(super) fn binding_json(vhost: &str, source: &str, b: &Binding) -> Value {
    let (destination, kind) = match &b.destination {
        Destination::Queue(q) => (q.to_string(), "queue"),
        Destination::Exchange(e) => (e.to_string(), "exchange"),
    };
    json!({
        "source": source,
        "vhost": vhost,
        "destination": destination,
        "destination_type": kind,
        "routing_key": &*b.routing_key,
        "arguments": json::table(&b.arguments),
    })
}

/// `GET /api/bindings[/{vhost}]`: the default exchange's implicit binding to each
/// queue first, as RabbitMQ lists them.
pub(super) fn bindings(broker: &Broker, vhost: Option<&str>) -> Value {
    let mut out = Vec::new();
    for (name, v) in vhosts(broker, vhost) {
        let snapshot = v.snapshot();
        let mut queues: Vec<&str> = snapshot.queues.keys().map(|q| &**q).collect();
        queues.sort_unstable();
        for queue in queues {
            out.push(json!({
                "source": "", "vhost": name, "destination": queue,
                "destination_type": "queue", "routing_key": queue, "arguments": {},
            }));
        }
        let mut listed = Vec::new();
        for x in snapshot.topology.exchanges() {
            for b in x.bindings() {
                listed.push(binding_json(&name, &x.spec().name, &b));
            }
        }
        listed.sort_by_key(|b| b.to_string());
        out.extend(listed);
    }
    Value::Array(out)
}

/// `GET /api/connections` and `/api/vhosts/{vhost}/connections`.
pub(super) fn connections(broker: &Broker, vhost: Option<&str>) -> Value {
    Value::Array(
        broker
            .open_connections
            .list()
            .into_iter()
            .filter(|c| vhost.is_none_or(|wanted| c.vhost == wanted))
            .map(|c| {
                json!({
                    "name": c.name(),
                    "vhost": c.vhost,
                    "user": c.user,
                    "state": "running",
                    "protocol": "AMQP 0-9-1",
                    "peer_host": c.peer.ip().to_string(),
                    "peer_port": c.peer.port(),
                    "host": c.local.map(|l| l.ip().to_string()),
                    "port": c.local.map(|l| l.port()),
                    "connected_at": c.connected_at,
                    "user_provided_name": c.client_name,
                    "client_properties": {
                        "product": c.product,
                        "connection_name": c.client_name,
                    },
                })
            })
            .collect(),
    )
}

/// Whether a request asks for recent ready counts, as RabbitMQ's
/// `?lengths_age=SECONDS&lengths_incr=SECONDS` does (warren samples every 5 s, whatever
/// the increment asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SamplesWanted {
    No,
    /// Samples at most this many milliseconds old.
    Within(u64),
}

impl SamplesWanted {
    pub(super) fn from_query(query: &str) -> SamplesWanted {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("lengths_age="))
            .and_then(|age| age.parse::<u64>().ok())
            .map_or(SamplesWanted::No, |secs| {
                SamplesWanted::Within(secs.saturating_mul(1000))
            })
    }
}

/// The change per second between the two newest samples (newest first).
fn ready_rate(samples: &[Value]) -> f64 {
    let point = |v: &Value| (v["timestamp"].as_f64(), v["sample"].as_f64());
    match samples {
        [newest, previous, ..] => match (point(newest), point(previous)) {
            ((Some(t1), Some(n1)), (Some(t0), Some(n0))) if t1 > t0 => {
                (n1 - n0) * 1000.0 / (t1 - t0)
            }
            _ => 0.0,
        },
        _ => 0.0,
    }
}

/// `GET /api/queues[/{vhost}]`.
pub(super) fn queues(listing: &Listing, vhost: Option<&str>, samples: SamplesWanted) -> Value {
    let now_ms = crate::durable::now_ms();
    Value::Array(
        listing
            .queues
            .iter()
            .filter(|l| vhost.is_none_or(|wanted| l.vhost == wanted))
            .map(|l| queue_with_stats(l, listing, now_ms, samples))
            .collect(),
    )
}

/// `GET /api/queues/{vhost}/{name}`.
pub(super) fn queue(
    listing: &Listing,
    vhost: &str,
    name: &str,
    samples: SamplesWanted,
) -> Option<Value> {
    listing
        .queues
        .iter()
        .find(|l| l.vhost == vhost && l.queue.info.name.as_str() == name)
        .map(|l| queue_with_stats(l, listing, crate::durable::now_ms(), samples))
}

/// A queue as RabbitMQ shows it, with its policies: `policy` names the
/// highest-priority matching one (RabbitMQ applies only that one), `policies` every one
/// that contributes, `effective_policy_definition` the merged settings under RabbitMQ's
/// key names, and `policy_sources` which policy set each key.
fn queue_json(listed: &Listed) -> Value {
    let Listed {
        vhost,
        queue,
        stats,
        policy,
    } = listed;
    let info = &queue.info;
    let definition = policy_json(&policy.definition);
    let (settings, settings_sources) = effective(&info.arguments, policy, &definition);
    let sources: serde_json::Map<String, Value> = policy
        .sources
        .iter()
        .map(|(key, name)| (key.rabbitmq_name().to_owned(), json!(name)))
        .collect();
    json!({
        "name": info.name.as_str(),
        "vhost": vhost,
        "policy": policy.policies.first(),
        "policies": policy.policies,
        "effective_policy_definition": definition,
        "policy_sources": sources,
        "effective_settings": settings,
        "settings_sources": settings_sources,
        "durable": info.durable,
        "auto_delete": info.auto_delete,
        "exclusive": info.exclusive_owner.is_some(),
        "arguments": json::table(&info.arguments),
        "type": "classic",
        "state": "running",
        "messages": u64::from(stats.ready) + u64::from(stats.unacked),
        "messages_ready": stats.ready,
        "messages_unacknowledged": stats.unacked,
        "consumers": stats.consumers,
    })
}

/// A merged policy definition under RabbitMQ's key names.
pub(super) fn policy_json(d: &PolicyDefinition) -> Value {
    d.to_rabbitmq()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_age_asks_for_samples() {
        assert_eq!(
            SamplesWanted::from_query("lengths_age=300&lengths_incr=5"),
            SamplesWanted::Within(300_000)
        );
        assert_eq!(SamplesWanted::from_query(""), SamplesWanted::No);
        assert_eq!(
            SamplesWanted::from_query("lengths_age=x"),
            SamplesWanted::No
        );
    }

    #[test]
    fn the_ready_rate_is_the_change_between_the_newest_samples() {
        let samples = [
            json!({"sample": 30, "timestamp": 10_000}),
            json!({"sample": 10, "timestamp": 5_000}),
            json!({"sample": 0, "timestamp": 0}),
        ];
        assert_eq!(ready_rate(&samples), 4.0);
        assert_eq!(ready_rate(&samples[..1]), 0.0);
    }
}
