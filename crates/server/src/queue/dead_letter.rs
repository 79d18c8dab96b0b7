//! Rewriting a message for its dead-letter exchange, as RabbitMQ 3.10's
//! `rabbit_dead_letter` does, so consumers of dead-letter queues read the same headers.
//!
//! - `x-death` is an array of tables, newest first: `count`, `reason`, `queue`, `time`
//!   (a timestamp in seconds), `exchange` (where the message was published) and
//!   `routing-keys` (its routing key and `CC` keys), plus `original-expiration` when
//!   the message had an `expiration`, which is removed. A death at a queue for a reason
//!   that already has an entry increments that entry's count (keeping its other fields)
//!   and moves it to the front.
//! - The first death also sets `x-first-death-reason`, `-queue` and `-exchange`; every
//!   death sets `x-last-death-*` (as RabbitMQ 3.13 and later do).
//! - The message goes to the dead-letter exchange with the dead-letter routing key if
//!   the queue has one (the `CC` header is then dropped), else with its own keys.
//! - Headers end up sorted by key, as RabbitMQ's table updates leave them.

use bytes::{Bytes, BytesMut};
use warren_codec::{DecodeError, FieldTable, FieldValue, ShortStr};

use crate::message::Message;

/// Why a message is dead-lettered (the `x-death` reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Rejected or nacked without requeue.
    Rejected,
    /// Its TTL ran out.
    Expired,
    /// Dropped or refused by a length limit.
    Maxlen,
    /// Returned more often than the queue's delivery limit.
    DeliveryLimit,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::Maxlen => "maxlen",
            Reason::DeliveryLimit => "delivery_limit",
        }
    }
}

/// Where a queue sends its dead letters.
pub(crate) struct Target<'a> {
    /// The dead-letter exchange ("" is the default exchange).
    pub(crate) exchange: &'a str,
    /// The dead-letter routing key, replacing the message's own keys.
    pub(crate) routing_key: Option<&'a str>,
}

/// A message rewritten for its dead-letter exchange.
pub(crate) struct DeadLettered {
    pub(crate) message: Message,
    /// The keys to route it with.
    pub(crate) routing_keys: Vec<String>,
    /// `x-death` (queue, reason) pairs, newest first, for the cycle check.
    deaths: Vec<(Bytes, Bytes)>,
}

/// Rewrites `message`, which leaves `queue` for `reason`, for `target`.
pub(crate) fn dead_letter(
    message: &Message,
    queue: &str,
    reason: Reason,
    target: &Target<'_>,
    now_secs: u64,
) -> Result<DeadLettered, DecodeError> {
    let mut properties = message.decoded_properties()?;
    let mut headers = properties.headers.take().unwrap_or_default();
    let routing_key = message.routing_key();
    let cc_keys: Vec<FieldValue> = match headers.get("CC") {
        Some(FieldValue::Array(keys)) => keys
            .iter()
            .filter(|k| matches!(k, FieldValue::LongStr(_)))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let exchange = message.exchange();
    let mut info = vec![
        ("reason", FieldValue::string(reason.name())),
        ("queue", FieldValue::string(queue)),
        ("time", FieldValue::Timestamp(now_secs)),
        ("exchange", FieldValue::string(exchange.as_str())),
        (
            "routing-keys",
            FieldValue::Array(
                std::iter::once(FieldValue::string(routing_key.as_str()))
                    .chain(cc_keys.iter().cloned())
                    .collect(),
            ),
        ),
    ];
    if let Some(expiration) = properties.expiration.take() {
        info.push((
            "original-expiration",
            FieldValue::string(expiration.as_str()),
        ));
    }
    record_death(&mut headers, queue, reason, exchange.as_str(), info);
    for (header, value) in [
        ("x-last-death-reason", reason.name()),
        ("x-last-death-queue", queue),
        ("x-last-death-exchange", exchange.as_str()),
    ] {
        headers.insert(header, value);
    }
    let routing_keys: Vec<String> = match target.routing_key {
        Some(key) => {
            headers.remove("CC");
            vec![key.to_owned()]
        }
        None => std::iter::once(routing_key.to_string())
            .chain(cc_keys.iter().filter_map(|k| k.as_str().map(str::to_owned)))
            .collect(),
    };
    let deaths = deaths(&headers);
    properties.headers = Some(sorted(headers));
    let mut raw = BytesMut::new();
    properties.encode(&mut raw);
    let delivered_key = routing_keys
        .first()
        .map_or_else(ShortStr::default, |k| ShortStr::from(k.as_str()));
    Ok(DeadLettered {
        message: message.rewritten(&ShortStr::from(target.exchange), &delivered_key, &raw),
        routing_keys,
        deaths,
    })
}

/// Adds this death to `x-death`, and the `x-first-death-*` headers on the first.
fn record_death(
    headers: &mut FieldTable,
    queue: &str,
    reason: Reason,
    exchange: &str,
    info: Vec<(&str, FieldValue)>,
) {
    let fresh = |info: Vec<(&str, FieldValue)>| -> FieldTable {
        std::iter::once(("count".into(), FieldValue::I64(1)))
            .chain(info.into_iter().map(|(k, v)| (k.into(), v)))
            .collect()
    };
    let Some(FieldValue::Array(tables)) = headers.get("x-death") else {
        // First death (or an x-death a client turned into something else, which
        // RabbitMQ resets too).
        let first = headers.get("x-death").is_none();
        headers.insert("x-death", FieldValue::Array(vec![fresh(info).into()]));
        if first {
            headers.insert("x-first-death-reason", reason.name());
            headers.insert("x-first-death-queue", queue);
            headers.insert("x-first-death-exchange", exchange);
        }
        return;
    };
    let is_this = |v: &FieldValue| match v {
        FieldValue::Table(t) => {
            t.get("queue").and_then(FieldValue::as_str) == Some(queue)
                && t.get("reason").and_then(FieldValue::as_str) == Some(reason.name())
        }
        _ => false,
    };
    let (matching, others): (Vec<FieldValue>, Vec<FieldValue>) =
        tables.iter().cloned().partition(|v| is_this(v));
    let entry = match matching.into_iter().next() {
        Some(FieldValue::Table(mut t)) => {
            let count = t.get("count").and_then(FieldValue::as_i64).unwrap_or(0);
            t.insert("count", FieldValue::I64(count + 1));
            t
        }
        _ => fresh(info),
    };
    let deaths = std::iter::once(sorted(entry).into())
        .chain(others)
        .collect();
    headers.insert("x-death", FieldValue::Array(deaths));
}

/// The (queue, reason) of each `x-death` entry, newest first.
fn deaths(headers: &FieldTable) -> Vec<(Bytes, Bytes)> {
    let Some(FieldValue::Array(tables)) = headers.get("x-death") else {
        return Vec::new();
    };
    let text = |t: &FieldTable, key| match t.get(key) {
        Some(FieldValue::LongStr(b)) => b.clone(),
        _ => Bytes::new(),
    };
    tables
        .iter()
        .filter_map(|v| match v {
            FieldValue::Table(t) => Some((text(t, "queue"), text(t, "reason"))),
            _ => None,
        })
        .collect()
}

impl DeadLettered {
    /// RabbitMQ's cycle rule: delivering to `queue` would close a cycle if `queue` is
    /// in the message's `x-death` and no death from the newest up to that one was a
    /// rejection (a consumer's decision breaks an automatic loop). Such a target is
    /// skipped.
    pub(crate) fn cycles_through(&self, queue: &str) -> bool {
        let Some(at) = self
            .deaths
            .iter()
            .position(|(q, _)| q.as_ref() == queue.as_bytes())
        else {
            return false;
        };
        self.deaths[..=at]
            .iter()
            .all(|(_, reason)| reason.as_ref() != b"rejected")
    }
}

/// The message with an `x-delivery-count` header of `count`, as RabbitMQ's quorum
/// queues deliver a message that came back before.
pub(crate) fn with_delivery_count(message: &Message, count: u64) -> Result<Message, DecodeError> {
    let mut properties = message.decoded_properties()?;
    let mut headers = properties.headers.take().unwrap_or_default();
    headers.insert(
        "x-delivery-count",
        FieldValue::I64(i64::try_from(count).unwrap_or(i64::MAX)),
    );
    properties.headers = Some(headers);
    let mut raw = BytesMut::new();
    properties.encode(&mut raw);
    Ok(message.rewritten(&message.exchange(), &message.routing_key(), &raw))
}

/// A table with its entries in key order (stable for repeated keys).
fn sorted(table: FieldTable) -> FieldTable {
    let mut entries: Vec<(ShortStr, FieldValue)> =
        table.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    entries.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use warren_codec::BasicProperties;

    fn message(exchange: &str, key: &str, properties: BasicProperties) -> Message {
        let mut raw = BytesMut::new();
        properties.encode(&mut raw);
        Message::new(
            &exchange.into(),
            &key.into(),
            &raw,
            Bytes::from_static(b"body"),
        )
    }

    fn headers(m: &Message) -> FieldTable {
        m.decoded_properties().unwrap().headers.unwrap_or_default()
    }

    fn text<'a>(t: &'a FieldTable, key: &str) -> &'a str {
        t.get(key).and_then(FieldValue::as_str).unwrap_or("")
    }

    fn death_tables(h: &FieldTable) -> Vec<FieldTable> {
        match h.get("x-death") {
            Some(FieldValue::Array(a)) => a
                .iter()
                .map(|v| match v {
                    FieldValue::Table(t) => t.clone(),
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    const DLX: Target<'static> = Target {
        exchange: "dlx",
        routing_key: None,
    };

    #[test]
    fn the_first_death_writes_x_death_and_first_and_last_headers() {
        let mut cc = FieldTable::new();
        cc.insert("CC", FieldValue::Array(vec![FieldValue::string("b")]));
        let original = message(
            "orders",
            "a",
            BasicProperties {
                headers: Some(cc),
                expiration: Some("60000".into()),
                ..Default::default()
            },
        );
        let dead = dead_letter(&original, "q1", Reason::Expired, &DLX, 1_700_000_000).unwrap();
        assert_eq!(dead.routing_keys, ["a", "b"]);
        assert_eq!(dead.message.exchange(), "dlx");
        assert_eq!(dead.message.routing_key(), "a");
        assert_eq!(dead.message.body(), b"body");
        let properties = dead.message.decoded_properties().unwrap();
        assert_eq!(properties.expiration, None);
        let h = properties.headers.unwrap_or_default();
        let deaths = death_tables(&h);
        assert_eq!(deaths.len(), 1);
        let d = &deaths[0];
        assert_eq!(d.get("count"), Some(&FieldValue::I64(1)));
        assert_eq!(text(d, "reason"), "expired");
        assert_eq!(text(d, "queue"), "q1");
        assert_eq!(d.get("time"), Some(&FieldValue::Timestamp(1_700_000_000)));
        assert_eq!(text(d, "exchange"), "orders");
        assert_eq!(
            d.get("routing-keys"),
            Some(&FieldValue::Array(vec![
                FieldValue::string("a"),
                FieldValue::string("b")
            ]))
        );
        assert_eq!(text(d, "original-expiration"), "60000");
        for (key, value) in [
            ("x-first-death-reason", "expired"),
            ("x-first-death-queue", "q1"),
            ("x-first-death-exchange", "orders"),
            ("x-last-death-reason", "expired"),
            ("x-last-death-queue", "q1"),
            ("x-last-death-exchange", "orders"),
        ] {
            assert_eq!(text(&h, key), value, "{key}");
        }
        let keys: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
        let mut in_order = keys.clone();
        in_order.sort_unstable();
        assert_eq!(keys, in_order);
    }

    #[test]
    fn a_second_death_for_the_same_queue_and_reason_counts_up_and_moves_first() {
        let m = message("ex", "k", BasicProperties::default());
        let once = dead_letter(&m, "q1", Reason::Rejected, &DLX, 1).unwrap();
        let other = dead_letter(&once.message, "q2", Reason::Expired, &DLX, 2).unwrap();
        let twice = dead_letter(&other.message, "q1", Reason::Rejected, &DLX, 3).unwrap();
        let h = headers(&twice.message);
        let deaths = death_tables(&h);
        let summary: Vec<(&str, &str, Option<i64>)> = deaths
            .iter()
            .map(|d| {
                (
                    text(d, "queue"),
                    text(d, "reason"),
                    d.get("count").and_then(FieldValue::as_i64),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [("q1", "rejected", Some(2)), ("q2", "expired", Some(1))]
        );
        // The counted-up entry keeps its first time; the first-death headers stay.
        assert_eq!(deaths[0].get("time"), Some(&FieldValue::Timestamp(1)));
        assert_eq!(text(&h, "x-first-death-queue"), "q1");
        assert_eq!(text(&h, "x-last-death-queue"), "q1");
        assert_eq!(text(&h, "x-last-death-reason"), "rejected");
        // The exchange recorded is where the message was published, not the DLX.
        assert_eq!(text(&deaths[1], "exchange"), "dlx");
        // Another reason at the same queue is another entry.
        let third = dead_letter(&twice.message, "q1", Reason::Maxlen, &DLX, 4).unwrap();
        assert_eq!(death_tables(&headers(&third.message)).len(), 3);
    }

    #[test]
    fn a_dead_letter_routing_key_replaces_the_keys_and_drops_cc() {
        let mut cc = FieldTable::new();
        cc.insert("CC", FieldValue::Array(vec![FieldValue::string("b")]));
        let m = message(
            "ex",
            "a",
            BasicProperties {
                headers: Some(cc),
                ..Default::default()
            },
        );
        let target = Target {
            exchange: "",
            routing_key: Some("dlq"),
        };
        let dead = dead_letter(&m, "q", Reason::Maxlen, &target, 0).unwrap();
        assert_eq!(dead.routing_keys, ["dlq"]);
        assert_eq!(dead.message.routing_key(), "dlq");
        assert_eq!(dead.message.exchange(), "");
        let h = headers(&dead.message);
        assert!(h.get("CC").is_none());
        // x-death still records the keys the message had.
        assert_eq!(
            death_tables(&h)[0].get("routing-keys"),
            Some(&FieldValue::Array(vec![
                FieldValue::string("a"),
                FieldValue::string("b")
            ]))
        );
    }

    #[test]
    fn automatic_cycles_are_detected_and_a_rejection_breaks_them() {
        let m = message("", "q1", BasicProperties::default());
        let expired = dead_letter(&m, "q1", Reason::Expired, &DLX, 0).unwrap();
        assert!(expired.cycles_through("q1"));
        assert!(!expired.cycles_through("q2"));
        // q1 rejected it, q2 let it expire: back to q2 is a cycle, to q1 is not.
        let rejected = dead_letter(&m, "q1", Reason::Rejected, &DLX, 0).unwrap();
        let then = dead_letter(&rejected.message, "q2", Reason::Expired, &DLX, 0).unwrap();
        assert!(then.cycles_through("q2"));
        assert!(!then.cycles_through("q1"));
    }

    #[test]
    fn delivery_count_is_set_and_replaced() {
        let m = message("ex", "k", BasicProperties::default());
        let once = with_delivery_count(&m, 1).unwrap();
        let twice = with_delivery_count(&once, 2).unwrap();
        let h = headers(&twice);
        assert_eq!(h.get("x-delivery-count"), Some(&FieldValue::I64(2)));
        assert_eq!(h.len(), 1);
        assert_eq!(
            (twice.exchange().as_str(), twice.body()),
            ("ex", &b"body"[..])
        );
    }
}
