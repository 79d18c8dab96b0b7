//! The CLI's read-only views of a running broker: `warren list`, `warren policies`,
//! `warren peek`, as tables through the management API.

use serde_json::{Value, json};

use crate::api_client::{ApiClient, segment};
use crate::table::Table;

/// What `warren list` lists.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Listing {
    /// Queues with depth, consumers, rates and the oldest message's age.
    Queues,
    /// Exchanges with their type and flags.
    Exchanges,
    /// Bindings: source, destination, routing key.
    Bindings,
    /// Client connections.
    Connections,
    /// Channels of the client connections.
    Channels,
    /// Consumers and the queues they read.
    Consumers,
}

/// The listing as a table; `vhost` narrows it to one vhost.
pub async fn list(api: &ApiClient, what: Listing, vhost: Option<&str>) -> Result<String, String> {
    let (path, header): (&str, &[&'static str]) = match what {
        Listing::Queues => (
            "/api/queues",
            &[
                "vhost",
                "name",
                "ready",
                "unacked",
                "consumers",
                "publish/s",
                "deliver/s",
                "ack/s",
                "oldest (s)",
                "policy",
            ],
        ),
        Listing::Exchanges => (
            "/api/exchanges",
            &[
                "vhost",
                "name",
                "type",
                "durable",
                "auto_delete",
                "internal",
            ],
        ),
        Listing::Bindings => (
            "/api/bindings",
            &[
                "vhost",
                "source",
                "destination",
                "type",
                "routing_key",
                "arguments",
            ],
        ),
        Listing::Connections => (
            "/api/connections",
            &["name", "user", "vhost", "peer", "client", "channels"],
        ),
        Listing::Channels => (
            "/api/channels",
            &[
                "name",
                "user",
                "vhost",
                "consumers",
                "unacked",
                "prefetch",
                "mode",
            ],
        ),
        Listing::Consumers => (
            "/api/consumers",
            &[
                "vhost",
                "queue",
                "tag",
                "channel",
                "ack",
                "prefetch",
                "exclusive",
            ],
        ),
    };
    let rows = api.get(path).await?;
    let mut table = Table::new(header);
    for row in rows.as_array().into_iter().flatten() {
        if vhost.is_some_and(|v| text(row, "vhost") != v && text(&row["queue"], "vhost") != v) {
            continue;
        }
        table.row(match what {
            Listing::Queues => queue_row(row),
            Listing::Exchanges => vec![
                text(row, "vhost"),
                match text(row, "name") {
                    name if name.is_empty() => "(default)".into(),
                    name => name,
                },
                text(row, "type"),
                text(row, "durable"),
                text(row, "auto_delete"),
                text(row, "internal"),
            ],
            Listing::Bindings => vec![
                text(row, "vhost"),
                match text(row, "source") {
                    source if source.is_empty() => "(default)".into(),
                    source => source,
                },
                text(row, "destination"),
                text(row, "destination_type"),
                text(row, "routing_key"),
                match &row["arguments"] {
                    Value::Object(map) if map.is_empty() => String::new(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                },
            ],
            Listing::Connections => vec![
                match text(row, "user_provided_name") {
                    named if named.is_empty() => text(row, "name"),
                    named => named,
                },
                text(row, "user"),
                text(row, "vhost"),
                format!("{}:{}", text(row, "peer_host"), text(row, "peer_port")),
                text(&row["client_properties"], "product"),
                number(&row["channels"]),
            ],
            Listing::Channels => vec![
                text(row, "name"),
                text(row, "user"),
                text(row, "vhost"),
                number(&row["consumer_count"]),
                number(&row["messages_unacknowledged"]),
                number(&row["prefetch_count"]),
                if row["transactional"] == json!(true) {
                    "tx".into()
                } else if row["confirm"] == json!(true) {
                    "confirm".into()
                } else {
                    String::new()
                },
            ],
            Listing::Consumers => vec![
                text(&row["queue"], "vhost"),
                text(&row["queue"], "name"),
                text(row, "consumer_tag"),
                text(&row["channel_details"], "name"),
                if row["ack_required"] == json!(false) {
                    "auto".into()
                } else {
                    "manual".into()
                },
                number(&row["prefetch_count"]),
                text(row, "exclusive"),
            ],
        });
    }
    Ok(table.render())
}

fn queue_row(q: &Value) -> Vec<String> {
    let stats = &q["message_stats"];
    let rate = |key: &str| match stats[key]["rate"].as_f64() {
        Some(rate) => format!("{rate:.1}"),
        None => "-".into(),
    };
    vec![
        text(q, "vhost"),
        text(q, "name"),
        number(&q["messages_ready"]),
        number(&q["messages_unacknowledged"]),
        number(&q["consumers"]),
        rate("publish_details"),
        rate("deliver_get_details"),
        rate("ack_details"),
        match q["oldest_message_age_seconds"].as_f64() {
            Some(age) => format!("{age:.0}"),
            None => "-".into(),
        },
        match &q["policies"] {
            Value::Array(names) if !names.is_empty() => names
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        },
    ]
}

/// `warren policies QUEUE`: the settings in force on a queue and where each came
/// from (a policy, or the queue's own arguments).
pub async fn policies(api: &ApiClient, vhost: &str, queue: &str) -> Result<String, String> {
    let path = format!("/api/queues/{}/{}", segment(vhost), segment(queue));
    let q = api.get(&path).await?;
    let mut out = format!("queue '{queue}' in vhost '{vhost}'\n");
    let mut table = Table::new(&["setting", "value", "from"]);
    let effective = q["effective_settings"].as_object();
    let sources = &q["settings_sources"];
    for (key, value) in effective.into_iter().flatten() {
        table.row(vec![key.clone(), plain(value), text(sources, key)]);
    }
    if effective.is_none_or(|e| e.is_empty()) {
        out.push_str("no settings from arguments or policies\n");
    } else {
        out.push_str(&table.render());
    }
    match &q["policies"] {
        Value::Array(names) if !names.is_empty() => {
            let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
            out.push_str(&format!(
                "matching policies, highest priority first: {}\n",
                names.join(", ")
            ));
        }
        _ => out.push_str("no policy matches this queue\n"),
    }
    Ok(out)
}

/// `warren peek QUEUE [N]`: the first ready messages, left in place and not marked
/// redelivered.
pub async fn peek(
    api: &ApiClient,
    vhost: &str,
    queue: &str,
    count: usize,
) -> Result<String, String> {
    let path = format!("/api/queues/{}/{}/get", segment(vhost), segment(queue));
    let request = json!({"count": count, "ackmode": "ack_requeue_true", "encoding": "auto"});
    let messages = api.post(&path, &request).await?;
    let messages = messages.as_array().cloned().unwrap_or_default();
    if messages.is_empty() {
        return Ok(format!("queue '{queue}' has no ready messages\n"));
    }
    let mut out = String::new();
    for (i, m) in messages.iter().enumerate() {
        let exchange = match text(m, "exchange") {
            e if e.is_empty() => "(default)".into(),
            e => e,
        };
        out.push_str(&format!(
            "#{}  exchange {exchange}  routing key {}  {} bytes{}\n",
            i + 1,
            text(m, "routing_key"),
            number(&m["payload_bytes"]),
            if m["redelivered"] == json!(true) {
                "  redelivered"
            } else {
                ""
            }
        ));
        if let Some(properties) = m["properties"].as_object().filter(|p| !p.is_empty()) {
            out.push_str(&format!(
                "    properties {}\n",
                Value::Object(properties.clone())
            ));
        }
        let payload = text(m, "payload");
        if text(m, "payload_encoding") == "base64" {
            out.push_str(&format!("    payload (base64) {payload}\n"));
        } else {
            out.push_str(&format!("    payload {payload}\n"));
        }
    }
    Ok(out)
}

/// A JSON field as text: strings bare, null and absent empty.
fn text(value: &Value, key: &str) -> String {
    plain(&value[key])
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A count, or a dash when absent.
fn number(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        other => plain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_row_reads_rabbitmq_shaped_json() {
        let q = json!({
            "vhost": "/", "name": "orders", "messages_ready": 3,
            "messages_unacknowledged": 1, "consumers": 2,
            "message_stats": {"publish_details": {"rate": 12.34}},
            "oldest_message_age_seconds": 4.6, "policies": ["limits", "dlx"],
        });
        assert_eq!(
            queue_row(&q),
            [
                "/",
                "orders",
                "3",
                "1",
                "2",
                "12.3",
                "-",
                "-",
                "5",
                "limits,dlx"
            ]
        );
    }
}
