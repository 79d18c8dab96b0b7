//! Rewriting a message for its dead-letter exchange exactly as RabbitMQ 3.10.8's
//! `rabbit_dead_letter:make_msg/5` does, and its cycle rule (`detect_cycles/3`), so
//! consumers of dead-letter queues read the same headers. Checked against the 3.10.8
//! beams and a running 3.10.8 broker.
//!
//! - `x-death` is an array of tables. A death puts `count` (1), `reason`, `queue`,
//!   `time` (a timestamp in seconds), `exchange` (where the message was published),
//!   `routing-keys` (its routing key, then its `CC` keys) and `original-expiration`
//!   (when it had an `expiration`, which is removed) at the front: in that order on the
//!   first death, sorted by key afterwards. A death at a queue for a reason that already
//!   has an entry instead counts that entry up, keeping its other fields (first time,
//!   exchange, keys, expiration), sorts it and moves it to the front.
//! - Before matching, RabbitMQ merges entries with the same queue and reason (written by
//!   brokers before 3.5) and, doing so, reverses the other entries whenever there are two
//!   or more: only the front entry is reliably the newest. Reproduced, because the cycle
//!   rule reads that order; see [`group_by_queue_and_reason`].
//! - The first death (no `x-death` yet) also sets `x-first-death-reason`, `-queue` and
//!   `-exchange`.
//! - Deviation: every death also sets `x-last-death-reason`, `-queue` and `-exchange`,
//!   which 3.10 does not write and RabbitMQ 3.13 added: the newest death then need not
//!   be read from `x-death`, whose order 3.10 scrambles (above).
//! - The whole header table ends up sorted by key (`rabbit_misc:set_table_value` sorts).
//! - The message goes to the dead-letter exchange with the queue's dead-letter routing
//!   key if it has one (the `CC` header is then removed; `x-death` still records the old
//!   keys), else with its own routing key and `CC` keys.
//! - Deviation: RabbitMQ also routes a dead letter by its `BCC` keys, which its message
//!   record keeps after publishing strips the header. A [`Message`] does not keep them.
//! - `x-delivery-count` is left alone: quorum queues add it to the copy they deliver,
//!   never to the stored message they dead-letter. A queue must dead-letter its stored
//!   message, not [`with_delivery_count`]'s copy.

use bytes::{Bytes, BytesMut};
use warren_codec::{BasicProperties, DecodeError, FieldTable, FieldValue, ShortStr};

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
    /// The name RabbitMQ writes (`atom_to_binary` of its reason atom).
    fn name(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::Maxlen => "maxlen",
            Reason::DeliveryLimit => "delivery_limit",
        }
    }
}

/// A queue's dead-letter settings.
pub(crate) struct Target<'a> {
    /// The dead-letter exchange ("" is the default exchange).
    pub(crate) exchange: &'a str,
    /// The dead-letter routing key, replacing the message's own keys.
    pub(crate) routing_key: Option<&'a str>,
}

/// A message rewritten for its dead-letter exchange.
pub(crate) struct DeadLettered {
    /// The message to deliver: exchange the DLX, routing key the first routing key.
    pub(crate) message: Message,
    /// Why it died here: a rejection never closes a cycle.
    reason: Reason,
    /// Its `x-death` entries, in array order, as the cycle rule reads them.
    deaths: Vec<Death>,
}

/// An `x-death` element as the cycle rule reads it.
struct Death {
    /// `queue`, when it is a long string.
    queue: Option<Bytes>,
    /// False for a `rejected` entry, and for an element that is not a table (a client
    /// put it there, so the loop was not fully automatic).
    automatic: bool,
}

/// A `(queue, reason)` pair of an `x-death` entry, compared as RabbitMQ does to match
/// entries (by value; RabbitMQ ignores the type tag, which only differs in entries a
/// client forged).
type EventKey<'a> = (Option<&'a FieldValue>, Option<&'a FieldValue>);

/// Rewrites `message`, which leaves `queue` for `reason`, for `target` (RabbitMQ's
/// `make_msg`). Fails only when the stored properties do not decode.
pub(crate) fn dead_letter(
    message: &Message,
    queue: &str,
    reason: Reason,
    target: &Target<'_>,
    now_secs: u64,
) -> Result<DeadLettered, DecodeError> {
    let mut properties = message.decoded_properties()?;
    let mut headers = properties.headers.take().unwrap_or_default();
    let exchange = message.exchange();
    // `[hd(RoutingKeys) | header_routes(Headers)]`: the published key, then the keys in
    // `CC` (and `BCC`, though publishing removed it).
    let keys: Vec<Bytes> = std::iter::once(message.routing_key().as_bytes().clone())
        .chain(header_routes(&headers))
        .collect();
    let mut info: Vec<(ShortStr, FieldValue)> = vec![
        ("reason".into(), FieldValue::string(reason.name())),
        ("queue".into(), FieldValue::string(queue)),
        ("time".into(), FieldValue::Timestamp(now_secs)),
        (
            "exchange".into(),
            FieldValue::LongStr(exchange.as_bytes().clone()),
        ),
        (
            "routing-keys".into(),
            FieldValue::Array(keys.iter().cloned().map(FieldValue::LongStr).collect()),
        ),
    ];
    if let Some(expiration) = properties.expiration.take() {
        info.push((
            "original-expiration".into(),
            FieldValue::LongStr(expiration.as_bytes().clone()),
        ));
    }
    update_x_death(
        &mut headers,
        info.into_iter().collect(),
        queue,
        reason,
        &exchange,
    );
    let delivered_key = match target.routing_key {
        Some(key) => {
            headers.remove("CC");
            // A key over 255 bytes cannot be a routing key (a short string): the
            // message carries it cut.
            ShortStr::from(key)
        }
        None => message.routing_key(),
    };
    let deaths = cycle_view(&headers);
    properties.headers = Some(headers);
    Ok(DeadLettered {
        message: message.rewritten(
            &ShortStr::from(target.exchange),
            &delivered_key,
            &encoded(&properties),
        ),
        reason,
        deaths,
    })
}

impl DeadLettered {
    /// RabbitMQ's cycle rule: would delivering to `queue` close a fully automatic cycle?
    /// It would if `queue` has an `x-death` entry and neither that entry nor any before
    /// it in the array is a rejection (a consumer's decision breaks a loop), unless this
    /// death itself is a rejection. Such targets are skipped.
    pub(crate) fn cycles_through(&self, queue: &str) -> bool {
        if self.reason == Reason::Rejected {
            return false;
        }
        let Some(at) = self
            .deaths
            .iter()
            .position(|d| d.queue.as_deref() == Some(queue.as_bytes()))
        else {
            return false;
        };
        self.deaths[..=at].iter().all(|d| d.automatic)
    }
}

/// The message with an `x-delivery-count` header (a long) set to `count`, as RabbitMQ's
/// quorum queues deliver a message (`rabbit_basic:add_header`, which also sorts the
/// headers by key). Fails only when the stored properties do not decode.
pub(crate) fn with_delivery_count(message: &Message, count: u64) -> Result<Message, DecodeError> {
    let mut properties = message.decoded_properties()?;
    let mut headers = properties.headers.take().unwrap_or_default();
    headers.insert(
        "x-delivery-count",
        FieldValue::I64(i64::try_from(count).unwrap_or(i64::MAX)),
    );
    properties.headers = Some(sorted(headers));
    Ok(message.rewritten(
        &message.exchange(),
        &message.routing_key(),
        &encoded(&properties),
    ))
}

/// The queue a dead-lettered message last died in, where a redrive sends it back:
/// `x-last-death-queue` (written by warren and RabbitMQ 3.13+), else the front
/// `x-death` entry's queue (3.10 keeps only the front reliably the newest). None for a
/// message that never died, or whose properties do not decode.
pub(crate) fn origin(message: &Message) -> Option<String> {
    let headers = message.decoded_properties().ok()?.headers?;
    if let Some(queue) = headers
        .get("x-last-death-queue")
        .and_then(FieldValue::as_str)
    {
        return Some(queue.to_owned());
    }
    match headers.get("x-death") {
        Some(FieldValue::Array(entries)) => match entries.first() {
            Some(FieldValue::Table(entry)) => entry
                .get("queue")
                .and_then(FieldValue::as_str)
                .map(str::to_owned),
            _ => None,
        },
        _ => None,
    }
}

/// The long-string keys of the `CC` and `BCC` arrays (`rabbit_basic:header_routes`).
/// Other types make RabbitMQ fail; publishing refuses them (406), so none are stored.
fn header_routes(headers: &FieldTable) -> impl Iterator<Item = Bytes> + '_ {
    ["CC", "BCC"]
        .into_iter()
        .filter_map(|name| match headers.get(name) {
            Some(FieldValue::Array(keys)) => Some(keys),
            _ => None,
        })
        .flatten()
        .filter_map(|key| match key {
            FieldValue::LongStr(key) => Some(key.clone()),
            _ => None,
        })
}

/// Records a death described by `info` in `headers` (`update_x_death_header`, plus the
/// `x-last-death-*` headers), then sorts the headers.
fn update_x_death(
    headers: &mut FieldTable,
    info: FieldTable,
    queue: &str,
    reason: Reason,
    exchange: &ShortStr,
) {
    let deaths = match headers.get("x-death") {
        None => {
            headers.insert("x-first-death-reason", FieldValue::string(reason.name()));
            headers.insert("x-first-death-queue", FieldValue::string(queue));
            headers.insert(
                "x-first-death-exchange",
                FieldValue::LongStr(exchange.as_bytes().clone()),
            );
            // RabbitMQ leaves the first entry in write order, count first.
            vec![FieldValue::Table(with_count(1, &info))]
        }
        Some(FieldValue::Array(entries)) => {
            let (queue, reason) = (FieldValue::string(queue), FieldValue::string(reason.name()));
            let this: EventKey<'_> = (Some(&queue), Some(&reason));
            let (matches, others): (Vec<FieldValue>, Vec<FieldValue>) =
                group_by_queue_and_reason(entries)
                    .into_iter()
                    .partition(|entry| event_key(entry) == Some(this));
            let entry = match matches.into_iter().next() {
                Some(FieldValue::Table(entry)) => counted_up(entry),
                _ => with_count(1, &info),
            };
            std::iter::once(FieldValue::Table(sorted(entry)))
                .chain(others)
                .collect()
        }
        // A client that republished the message turned the array into something else:
        // RabbitMQ logs a warning and starts again, without first-death headers.
        Some(_) => vec![FieldValue::Table(with_count(1, &info))],
    };
    headers.insert("x-death", FieldValue::Array(deaths));
    // Not in 3.10 (see the module header).
    headers.insert("x-last-death-reason", FieldValue::string(reason.name()));
    headers.insert("x-last-death-queue", FieldValue::string(queue));
    headers.insert(
        "x-last-death-exchange",
        FieldValue::LongStr(exchange.as_bytes().clone()),
    );
    *headers = sorted(std::mem::take(headers));
}

/// RabbitMQ's `group_by_queue_and_reason`: with two or more entries, keeps the first
/// entry of each (queue, reason), giving it a `count` of how many there were when it
/// has none. RabbitMQ folds by prepending and never reverses the result, so the entries
/// come out in reverse order; reproduced because the cycle rule reads that order.
fn group_by_queue_and_reason(entries: &[FieldValue]) -> Vec<FieldValue> {
    if entries.len() < 2 {
        return entries.to_vec();
    }
    let mut seen: Vec<EventKey<'_>> = Vec::new();
    let mut grouped = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some(key) = event_key(entry) else {
            // RabbitMQ cannot dead-letter a message with such an element (it fails on
            // it); keeping the element loses less.
            grouped.push(entry.clone());
            continue;
        };
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let n = entries.iter().filter(|e| event_key(e) == Some(key)).count();
        if let FieldValue::Table(table) = entry
            && table.get("count").is_none()
        {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            grouped.push(FieldValue::Table(with_count(n, table)));
        } else {
            grouped.push(entry.clone());
        }
    }
    grouped.reverse();
    grouped
}

/// An `x-death` entry's (queue, reason); `None` for an element that is not a table.
fn event_key(entry: &FieldValue) -> Option<EventKey<'_>> {
    match entry {
        FieldValue::Table(t) => Some((t.get("queue"), t.get("reason"))),
        _ => None,
    }
}

/// `info` with a `count` entry put first.
fn with_count(count: i64, info: &FieldTable) -> FieldTable {
    std::iter::once(("count".into(), FieldValue::I64(count)))
        .chain(info.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect()
}

/// The entry with its count one higher, in place (`increment_xdeath_event_count`); an
/// entry without a count gets 1, first.
fn counted_up(mut entry: FieldTable) -> FieldTable {
    match entry.get("count") {
        None => with_count(1, &entry),
        Some(count) => {
            // A count that is no integer makes RabbitMQ fail; start again at 1.
            let count = count.as_i64().unwrap_or(0).saturating_add(1);
            entry.insert("count", FieldValue::I64(count));
            entry
        }
    }
}

/// The table with its entries sorted by key, bytewise and stable for repeated keys
/// (`lists:keysort`).
fn sorted(mut table: FieldTable) -> FieldTable {
    table.sort_keys();
    table
}

/// The `x-death` array as the cycle rule reads it.
fn cycle_view(headers: &FieldTable) -> Vec<Death> {
    let Some(FieldValue::Array(entries)) = headers.get("x-death") else {
        return Vec::new();
    };
    let rejected = FieldValue::string(Reason::Rejected.name());
    entries
        .iter()
        .map(|entry| match entry {
            FieldValue::Table(t) => Death {
                queue: match t.get("queue") {
                    Some(FieldValue::LongStr(q)) => Some(q.clone()),
                    _ => None,
                },
                automatic: t.get("reason") != Some(&rejected),
            },
            _ => Death {
                queue: None,
                automatic: false,
            },
        })
        .collect()
}

/// The properties in content-header form.
fn encoded(properties: &BasicProperties) -> BytesMut {
    let mut raw = BytesMut::new();
    properties.encode(&mut raw);
    raw
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const DLX: Target<'static> = Target {
        exchange: "dlx",
        routing_key: None,
    };

    fn message(exchange: &str, key: &str, properties: BasicProperties) -> Message {
        Message::new(
            &exchange.into(),
            &key.into(),
            &encoded(&properties),
            Bytes::from_static(b"body"),
        )
    }

    fn with_headers(entries: &[(&str, FieldValue)]) -> BasicProperties {
        BasicProperties {
            headers: Some(
                entries
                    .iter()
                    .map(|(k, v)| (ShortStr::from(*k), v.clone()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn strings(values: &[&str]) -> FieldValue {
        FieldValue::Array(values.iter().map(|v| FieldValue::string(*v)).collect())
    }

    fn headers(m: &Message) -> FieldTable {
        m.decoded_properties().unwrap().headers.unwrap()
    }

    fn keys(t: &FieldTable) -> Vec<&str> {
        t.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn text<'a>(t: &'a FieldTable, key: &str) -> &'a str {
        t.get(key).and_then(FieldValue::as_str).unwrap_or("")
    }

    fn deaths(h: &FieldTable) -> Vec<FieldTable> {
        let Some(FieldValue::Array(entries)) = h.get("x-death") else {
            panic!("no x-death in {h:?}");
        };
        entries
            .iter()
            .map(|e| match e {
                FieldValue::Table(t) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// (queue, reason, count) of each x-death entry, in array order.
    fn summary(m: &Message) -> Vec<(String, String, i64)> {
        deaths(&headers(m))
            .iter()
            .map(|d| {
                let count = d.get("count").and_then(FieldValue::as_i64).unwrap();
                (text(d, "queue").into(), text(d, "reason").into(), count)
            })
            .collect()
    }

    fn die(m: &Message, queue: &str, reason: Reason, now: u64) -> Message {
        dead_letter(m, queue, reason, &DLX, now).unwrap().message
    }

    #[test]
    fn the_first_death_writes_an_entry_in_write_order_and_first_death_headers() {
        let mut properties = with_headers(&[
            ("zz", FieldValue::I32(1)),
            ("CC", strings(&["b"])),
            ("aa", "x".into()),
        ]);
        properties.expiration = Some("60000".into());
        properties.priority = Some(3);
        let original = message("orders", "a", properties);
        let dead = dead_letter(&original, "q1", Reason::Expired, &DLX, 1_700_000_000).unwrap();
        assert_eq!(dead.message.exchange(), "dlx");
        assert_eq!(dead.message.routing_key(), "a");
        assert_eq!(dead.message.body(), b"body");
        let properties = dead.message.decoded_properties().unwrap();
        assert_eq!(properties.expiration, None);
        assert_eq!(properties.priority, Some(3));
        let h = properties.headers.unwrap();
        // The whole table sorted bytewise (upper case first).
        assert_eq!(
            keys(&h),
            [
                "CC",
                "aa",
                "x-death",
                "x-first-death-exchange",
                "x-first-death-queue",
                "x-first-death-reason",
                "x-last-death-exchange",
                "x-last-death-queue",
                "x-last-death-reason",
                "zz"
            ]
        );
        for which in ["first", "last"] {
            let header = |field| format!("x-{which}-death-{field}");
            assert_eq!(text(&h, &header("exchange")), "orders");
            assert_eq!(text(&h, &header("queue")), "q1");
            assert_eq!(text(&h, &header("reason")), "expired");
        }
        let entries = deaths(&h);
        assert_eq!(entries.len(), 1);
        let d = &entries[0];
        assert_eq!(
            keys(d),
            [
                "count",
                "reason",
                "queue",
                "time",
                "exchange",
                "routing-keys",
                "original-expiration"
            ]
        );
        assert_eq!(d.get("count"), Some(&FieldValue::I64(1)));
        assert_eq!(text(d, "reason"), "expired");
        assert_eq!(text(d, "queue"), "q1");
        assert_eq!(d.get("time"), Some(&FieldValue::Timestamp(1_700_000_000)));
        assert_eq!(text(d, "exchange"), "orders");
        assert_eq!(d.get("routing-keys"), Some(&strings(&["a", "b"])));
        assert_eq!(text(d, "original-expiration"), "60000");
    }

    #[test]
    fn a_second_death_at_the_same_queue_for_the_same_reason_counts_up_and_moves_first() {
        let m = message("ex", "k", BasicProperties::default());
        let once = die(&m, "q1", Reason::Rejected, 1);
        let other = die(&once, "q2", Reason::Expired, 2);
        let twice = die(&other, "q1", Reason::Rejected, 3);
        assert_eq!(
            summary(&twice),
            [
                ("q1".into(), "rejected".into(), 2),
                ("q2".into(), "expired".into(), 1)
            ]
        );
        let h = headers(&twice);
        let entries = deaths(&h);
        // The counted-up entry keeps its other fields, sorted by key.
        assert_eq!(entries[0].get("time"), Some(&FieldValue::Timestamp(1)));
        assert_eq!(text(&entries[0], "exchange"), "ex");
        assert_eq!(
            keys(&entries[0]),
            [
                "count",
                "exchange",
                "queue",
                "reason",
                "routing-keys",
                "time"
            ]
        );
        // The second death saw the message published to the DLX.
        assert_eq!(text(&entries[1], "exchange"), "dlx");
        assert_eq!(text(&h, "x-first-death-queue"), "q1");
        assert_eq!(text(&h, "x-first-death-exchange"), "ex");
        assert_eq!(text(&h, "x-first-death-reason"), "rejected");
        assert_eq!(text(&h, "x-last-death-queue"), "q1");
        assert_eq!(text(&h, "x-last-death-exchange"), "dlx");
        assert_eq!(text(&h, "x-last-death-reason"), "rejected");
        let middle = headers(&other);
        assert_eq!(text(&middle, "x-first-death-queue"), "q1");
        assert_eq!(text(&middle, "x-last-death-queue"), "q2");
        assert_eq!(text(&middle, "x-last-death-reason"), "expired");
    }

    #[test]
    fn another_reason_at_the_same_queue_adds_an_entry() {
        let m = message("ex", "k", BasicProperties::default());
        let rejected = die(&m, "q1", Reason::Rejected, 1);
        let expired = die(&rejected, "q1", Reason::Maxlen, 2);
        assert_eq!(
            summary(&expired),
            [
                ("q1".into(), "maxlen".into(), 1),
                ("q1".into(), "rejected".into(), 1)
            ]
        );
        let h = headers(&expired);
        assert_eq!(text(&h, "x-first-death-reason"), "rejected");
        assert_eq!(text(&h, "x-last-death-reason"), "maxlen");
        assert_eq!(
            keys(&deaths(&h)[0]),
            [
                "count",
                "exchange",
                "queue",
                "reason",
                "routing-keys",
                "time"
            ]
        );
    }

    #[test]
    fn original_expiration_is_recorded_once_and_kept_when_counted_up() {
        let m = message(
            "ex",
            "k",
            BasicProperties {
                expiration: Some("5000".into()),
                ..Default::default()
            },
        );
        let first = die(&m, "q1", Reason::Expired, 1);
        assert_eq!(first.decoded_properties().unwrap().expiration, None);
        let back = die(&first, "q2", Reason::Rejected, 2);
        assert!(
            deaths(&headers(&back))[0]
                .get("original-expiration")
                .is_none()
        );
        let again = die(&back, "q1", Reason::Expired, 3);
        let entries = deaths(&headers(&again));
        assert_eq!(text(&entries[0], "queue"), "q1");
        assert_eq!(text(&entries[0], "original-expiration"), "5000");
    }

    #[test]
    fn a_dead_letter_routing_key_replaces_the_keys_and_removes_cc() {
        let m = message("ex", "a", with_headers(&[("CC", strings(&["b"]))]));
        let target = Target {
            exchange: "",
            routing_key: Some("dlq"),
        };
        let dead = dead_letter(&m, "q", Reason::Maxlen, &target, 0).unwrap();
        assert_eq!(dead.message.routing_key(), "dlq");
        assert_eq!(dead.message.exchange(), "");
        let h = headers(&dead.message);
        assert!(h.get("CC").is_none());
        // x-death still records the keys the message had.
        assert_eq!(
            deaths(&h)[0].get("routing-keys"),
            Some(&strings(&["a", "b"]))
        );
    }

    #[test]
    fn entries_come_out_in_rabbitmq_3_10_order() {
        // Expiring through c0 -> c1 -> c2 -> c3 on RabbitMQ 3.10.8 leaves this order:
        // each death after the second reverses the entries behind the newest.
        let mut m = message("", "c0", BasicProperties::default());
        for (i, queue) in ["c0", "c1", "c2", "c3"].into_iter().enumerate() {
            m = die(&m, queue, Reason::Expired, i as u64);
        }
        let queues: Vec<String> = summary(&m).into_iter().map(|(q, _, _)| q).collect();
        assert_eq!(queues, ["c3", "c1", "c0", "c2"]);
        // The first entry was never rewritten, so it is still in write order.
        assert_eq!(
            keys(&deaths(&headers(&m))[2])[..3],
            ["count", "reason", "queue"]
        );
    }

    #[test]
    fn legacy_duplicate_entries_are_merged_with_their_number_as_count() {
        let entry = |queue: &str| -> FieldValue {
            let mut t = FieldTable::new();
            t.insert("queue", queue);
            t.insert("reason", "expired");
            FieldValue::Table(t)
        };
        let m = message(
            "ex",
            "k",
            with_headers(&[(
                "x-death",
                FieldValue::Array(vec![entry("q1"), entry("q1"), entry("q2")]),
            )]),
        );
        let dead = die(&m, "q3", Reason::Maxlen, 0);
        assert_eq!(
            summary(&dead),
            [
                ("q3".into(), "maxlen".into(), 1),
                ("q2".into(), "expired".into(), 1),
                ("q1".into(), "expired".into(), 2)
            ]
        );
        // Not a first death: no first-death headers.
        assert!(headers(&dead).get("x-first-death-queue").is_none());
        assert_eq!(text(&headers(&dead), "x-last-death-queue"), "q3");
    }

    #[test]
    fn an_x_death_that_is_not_an_array_starts_again() {
        let m = message("ex", "k", with_headers(&[("x-death", "mangled".into())]));
        let dead = die(&m, "q", Reason::Rejected, 0);
        assert_eq!(summary(&dead), [("q".into(), "rejected".into(), 1)]);
        assert!(headers(&dead).get("x-first-death-queue").is_none());
        assert_eq!(text(&headers(&dead), "x-last-death-queue"), "q");
    }

    #[test]
    fn expiring_back_into_the_same_queue_is_a_cycle() {
        let m = message("", "q1", BasicProperties::default());
        let dead = dead_letter(&m, "q1", Reason::Expired, &DLX, 0).unwrap();
        assert!(dead.cycles_through("q1"));
        assert!(!dead.cycles_through("q2"));
    }

    #[test]
    fn a_rejection_in_the_loop_breaks_the_cycle() {
        let m = message("", "q1", BasicProperties::default());
        let rejected = die(&m, "q1", Reason::Rejected, 0);
        let dead = dead_letter(&rejected, "q2", Reason::Expired, &DLX, 0).unwrap();
        // x-death is [q2 expired, q1 rejected].
        assert!(dead.cycles_through("q2"));
        assert!(!dead.cycles_through("q1"));
        assert!(!dead.cycles_through("q3"));
    }

    #[test]
    fn a_rejection_never_closes_a_cycle() {
        let m = message("", "q1", BasicProperties::default());
        let expired = die(&m, "q1", Reason::Expired, 0);
        let dead = dead_letter(&expired, "q2", Reason::Rejected, &DLX, 0).unwrap();
        assert!(!dead.cycles_through("q1"));
        assert!(!dead.cycles_through("q2"));
    }

    #[test]
    fn an_x_death_element_a_client_put_there_breaks_the_cycle() {
        let m = message(
            "",
            "q1",
            with_headers(&[("x-death", FieldValue::Array(vec![FieldValue::I32(7)]))]),
        );
        // (RabbitMQ fails to dead-letter this message at all; see group_by_queue_and_reason.)
        // [q1 expired, 7]: q1 is found before the foreign element.
        let dead = dead_letter(&m, "q1", Reason::Expired, &DLX, 0).unwrap();
        assert!(dead.cycles_through("q1"));
        let further = dead_letter(&dead.message, "q2", Reason::Expired, &DLX, 0).unwrap();
        // Grouping reversed [q1, 7]: now [q2, 7, q1], and 7 stands before q1.
        assert!(further.cycles_through("q2"));
        assert!(!further.cycles_through("q1"));
    }

    #[test]
    fn delivery_count_is_added_sorted_and_replaced() {
        let m = message(
            "ex",
            "k",
            with_headers(&[("zz", FieldValue::I32(1)), ("a", FieldValue::I32(2))]),
        );
        let once = with_delivery_count(&m, 1).unwrap();
        assert_eq!(keys(&headers(&once)), ["a", "x-delivery-count", "zz"]);
        let twice = with_delivery_count(&once, 2).unwrap();
        let h = headers(&twice);
        assert_eq!(h.get("x-delivery-count"), Some(&FieldValue::I64(2)));
        assert_eq!(h.len(), 3);
        assert_eq!(
            (twice.exchange(), twice.routing_key()),
            ("ex".into(), "k".into())
        );
        assert_eq!(twice.body(), b"body");
        let bare = with_delivery_count(&message("ex", "k", BasicProperties::default()), 0);
        assert_eq!(keys(&headers(&bare.unwrap())), ["x-delivery-count"]);
    }

    #[test]
    fn dead_lettering_leaves_x_delivery_count_alone() {
        let m = message(
            "ex",
            "k",
            with_headers(&[("x-delivery-count", "mine".into())]),
        );
        let dead = die(&m, "q", Reason::Rejected, 0);
        assert_eq!(text(&headers(&dead), "x-delivery-count"), "mine");
    }

    #[test]
    fn origin_is_the_queue_of_the_last_death() {
        let fresh = message("ex", "k", BasicProperties::default());
        assert_eq!(origin(&fresh), None);
        let once = die(&fresh, "orders", Reason::Rejected, 0);
        assert_eq!(origin(&once).as_deref(), Some("orders"));
        let twice = die(&once, "retry", Reason::Expired, 0);
        assert_eq!(origin(&twice).as_deref(), Some("retry"));
        // From a 3.10 broker: no x-last-death-queue, the front x-death entry counts.
        let entry: FieldTable = [(ShortStr::from("queue"), FieldValue::string("legacy"))]
            .into_iter()
            .collect();
        let legacy = message(
            "ex",
            "k",
            with_headers(&[("x-death", FieldValue::Array(vec![FieldValue::Table(entry)]))]),
        );
        assert_eq!(origin(&legacy).as_deref(), Some("legacy"));
    }

    #[test]
    fn a_large_body_is_shared_not_copied() {
        let body = Bytes::from(vec![1u8; crate::message::INLINE_BODY + 1]);
        let m = Message::new(&"ex".into(), &"k".into(), &[0, 0], body.clone());
        let dead = dead_letter(&m, "q", Reason::Expired, &DLX, 0).unwrap();
        assert_eq!(dead.message.body().as_ptr(), body.as_ptr());
    }
}
