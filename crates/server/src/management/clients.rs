//! Channels and consumers, asked of the tasks that own them: each connection task
//! describes its channels (through the query mailbox the connection registry holds),
//! each queue task its consumers (`Command::Consumers`). Nothing is shared or locked
//! for this; a listing is a round of questions, like the queue listing.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::broker::Broker;
use crate::channel::ChannelInfo;
use crate::connection::events::ConnectionId;
use crate::connection::registry::Summary;
use crate::queue::{Command, ConsumerInfo, QueueHandle};

/// How long a connection has to describe its channels. One busy for longer (waiting
/// for room in a full queue mailbox, say) is left out of that listing.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// An open connection and its channels.
pub(super) struct Described {
    pub(super) connection: Summary,
    pub(super) channels: Vec<ChannelInfo>,
}

/// Every open connection that answered in time, oldest first, with its channels.
/// The connections are asked all at once.
pub(super) async fn describe(broker: &Broker) -> Vec<Described> {
    let asked = broker
        .open_connections
        .list()
        .into_iter()
        .map(|connection| async move {
            let channels = tokio::time::timeout(ASK_TIMEOUT, connection.channels())
                .await
                .ok()
                .flatten()?;
            Some(Described {
                connection,
                channels,
            })
        });
    join_all(asked).await.into_iter().flatten().collect()
}

/// RabbitMQ's channel name: the connection's, then the channel number.
fn channel_name(connection: &Summary, number: u16) -> String {
    format!("{} ({number})", connection.name())
}

/// `GET /api/channels` and `/api/vhosts/{vhost}/channels`.
pub(super) fn channels(described: &[Described], vhost: Option<&str>) -> Value {
    let mut out = Vec::new();
    for Described {
        connection: c,
        channels,
    } in described
        .iter()
        .filter(|d| vhost.is_none_or(|wanted| d.connection.vhost == wanted))
    {
        for ch in channels {
            out.push(json!({
                "name": channel_name(c, ch.number),
                "number": ch.number,
                "connection_details": {
                    "name": c.name(),
                    "peer_host": c.peer.ip().to_string(),
                    "peer_port": c.peer.port(),
                },
                "vhost": c.vhost,
                "user": c.user,
                "state": if ch.closing { "closing" } else { "running" },
                "consumer_count": ch.consumers,
                "messages_unacknowledged": ch.unacked,
                "prefetch_count": ch.prefetch,
                "global_prefetch_count": ch.global_prefetch,
                "confirm": ch.confirm,
                "transactional": ch.transactional,
            }));
        }
    }
    Value::Array(out)
}

/// `GET /api/consumers` and `/api/consumers/{vhost}`: by vhost, then queue name, then
/// in the queue's delivery order. Direct reply-to consumers have no queue and are not
/// listed (RabbitMQ does not list them either).
pub(super) async fn consumers(broker: &Broker, vhost: Option<&str>) -> Value {
    let connections: HashMap<ConnectionId, Summary> = broker
        .open_connections
        .list()
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let mut out = Vec::new();
    for (name, v) in super::api::vhosts(broker, vhost) {
        let mut queues: Vec<QueueHandle> = v.snapshot().queues.values().cloned().collect();
        queues.sort_by(|a, b| a.info.name.as_str().cmp(b.info.name.as_str()));
        for queue in queues {
            // A queue that stopped meanwhile is left out.
            let Some(consumers) = queue.ask(|reply| Command::Consumers { reply }).await else {
                continue;
            };
            for c in &consumers {
                out.push(consumer_json(
                    &name,
                    &queue,
                    c,
                    connections.get(&c.connection),
                ));
            }
        }
    }
    Value::Array(out)
}

/// One consumer as RabbitMQ shows it. Its connection may have closed since the
/// listing of connections: its details are then null.
fn consumer_json(
    vhost: &str,
    queue: &QueueHandle,
    c: &ConsumerInfo,
    connection: Option<&Summary>,
) -> Value {
    let mut arguments = serde_json::Map::new();
    if c.priority != 0 {
        arguments.insert("x-priority".into(), json!(c.priority));
    }
    json!({
        "consumer_tag": c.tag.as_str(),
        "queue": { "name": queue.info.name.as_str(), "vhost": vhost },
        "channel_details": {
            "name": connection.map(|s| channel_name(s, c.channel)),
            "number": c.channel,
            "connection_name": connection.map(Summary::name),
            "peer_host": connection.map(|s| s.peer.ip().to_string()),
            "peer_port": connection.map(|s| s.peer.port()),
            "user": connection.map(|s| s.user.as_str()),
        },
        "ack_required": !c.no_ack,
        "prefetch_count": c.prefetch,
        "exclusive": c.exclusive,
        "active": c.active,
        "activity_status": if c.active { "up" } else { "waiting" },
        "arguments": arguments,
        "messages_unacknowledged": c.unacked,
    })
}
