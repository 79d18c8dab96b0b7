//! The JSON endpoints, shaped like RabbitMQ's management API for the fields monitoring
//! tools read (queue depth, consumers).

use serde_json::{Value, json};

use super::{Listing, json};
use crate::broker::Broker;
use crate::queue::{QueueHandle, QueueStats};

/// `GET /api/overview`: totals over every vhost.
pub(super) fn overview(broker: &Broker, listing: &Listing) -> Value {
    let (mut ready, mut unacked, mut consumers) = (0u64, 0u64, 0u64);
    for (_, _, stats) in &listing.queues {
        ready += u64::from(stats.ready);
        unacked += u64::from(stats.unacked);
        consumers += u64::from(stats.consumers);
    }
    let exchanges: usize = broker
        .vhosts
        .values()
        .map(|v| v.snapshot().topology.exchanges().count() + 1)
        .sum();
    json!({
        "product_name": "warren",
        "product_version": env!("CARGO_PKG_VERSION"),
        "management_version": env!("CARGO_PKG_VERSION"),
        "queue_totals": {
            "messages": ready + unacked,
            "messages_ready": ready,
            "messages_unacknowledged": unacked,
        },
        "object_totals": {
            "connections": broker.connection_count(),
            "consumers": consumers,
            "exchanges": exchanges,
            "queues": listing.queues.len(),
        },
    })
}

/// `GET /api/queues[/{vhost}]`.
pub(super) fn queues(_broker: &Broker, listing: &Listing, vhost: Option<&str>) -> Value {
    Value::Array(
        listing
            .queues
            .iter()
            .filter(|(v, _, _)| vhost.is_none_or(|wanted| v == wanted))
            .map(|(v, queue, stats)| queue_json(v, queue, stats))
            .collect(),
    )
}

/// `GET /api/queues/{vhost}/{name}`.
pub(super) fn queue(_broker: &Broker, listing: &Listing, vhost: &str, name: &str) -> Option<Value> {
    listing
        .queues
        .iter()
        .find(|(v, q, _)| v == vhost && q.info.name.as_str() == name)
        .map(|(v, queue, stats)| queue_json(v, queue, stats))
}

fn queue_json(vhost: &str, queue: &QueueHandle, stats: &QueueStats) -> Value {
    let info = &queue.info;
    json!({
        "name": info.name.as_str(),
        "vhost": vhost,
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
