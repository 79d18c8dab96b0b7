//! `/metrics` in the Prometheus text format: per-queue gauges and counters labelled
//! by vhost and queue, broker-wide gauges, and the unroutable counter. Counters end in
//! `_total` and count from the queue's (or the broker's) start.

use std::fmt::Write;

use super::Listing;
use super::api::age_seconds;
use crate::broker::Broker;
use crate::queue::QueueStats;

/// A per-queue series: name, help, and how to read it.
type PerQueue = (&'static str, &'static str, fn(&QueueStats) -> u64);

/// Renders every series. `channels` is how many channels the open connections have.
pub(super) fn render(broker: &Broker, listing: &Listing, channels: usize) -> String {
    let mut out = String::new();
    let gauges: [PerQueue; 3] = [
        (
            "warren_queue_messages_ready",
            "Messages ready for delivery.",
            |s| u64::from(s.ready),
        ),
        (
            "warren_queue_messages_unacked",
            "Messages delivered and not yet acknowledged.",
            |s| u64::from(s.unacked),
        ),
        ("warren_queue_consumers", "Consumers of the queue.", |s| {
            u64::from(s.consumers)
        }),
    ];
    let counters: [PerQueue; 4] = [
        (
            "warren_queue_messages_published_total",
            "Messages enqueued (published or dead-lettered to the queue).",
            |s| s.counters.published,
        ),
        (
            "warren_queue_messages_delivered_total",
            "Messages delivered to consumers or taken by basic.get, with or without acks.",
            |s| s.counters.deliver_get(),
        ),
        (
            "warren_queue_messages_acked_total",
            "Deliveries acknowledged.",
            |s| s.counters.acked,
        ),
        (
            "warren_queue_messages_redelivered_total",
            "Deliveries of messages that may have been delivered before.",
            |s| s.counters.redelivered,
        ),
    ];
    for (kind, series) in [("gauge", &gauges[..]), ("counter", &counters[..])] {
        for (name, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for listed in &listing.queues {
                let _ = writeln!(out, "{name}{{{}}} {}", labels(listed), value(&listed.stats));
            }
        }
    }
    let name = "warren_queue_messages_dead_lettered_total";
    let _ = writeln!(
        out,
        "# HELP {name} Messages sent to the queue's dead-letter exchange, by reason.\n\
         # TYPE {name} counter"
    );
    for listed in &listing.queues {
        let d = &listed.stats.counters.dead_lettered;
        for (reason, n) in [
            ("rejected", d.rejected),
            ("expired", d.expired),
            ("maxlen", d.maxlen),
            ("delivery_limit", d.delivery_limit),
        ] {
            let _ = writeln!(out, "{name}{{{},reason=\"{reason}\"}} {n}", labels(listed));
        }
    }
    let name = "warren_queue_oldest_message_age_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} How long the oldest ready message has waited since it was \
         enqueued; 0 when none is ready.\n# TYPE {name} gauge"
    );
    let now = crate::durable::now_ms();
    for listed in &listing.queues {
        let age = age_seconds(listed.stats.oldest_ready_at, now);
        let _ = writeln!(out, "{name}{{{}}} {age}", labels(listed));
    }
    let name = "warren_unroutable_messages_total";
    let _ = writeln!(
        out,
        "# HELP {name} Messages that routed to no queue, by what became of them.\n\
         # TYPE {name} counter"
    );
    let unroutable = broker.monitoring.unroutable();
    for (outcome, n) in [
        ("returned", unroutable.returned),
        ("dropped", unroutable.dropped),
        ("rejected", unroutable.rejected),
    ] {
        let _ = writeln!(out, "{name}{{outcome=\"{outcome}\"}} {n}");
    }
    let gauges = [
        (
            "warren_connections",
            "Open client connections.",
            Some(u64::from(broker.connection_count())),
        ),
        (
            "warren_channels",
            "Open channels of the client connections.",
            Some(channels as u64),
        ),
        (
            "warren_blocked_connections",
            "Publishing connections held back by the resource alarm (told with \
             connection.blocked when they support it).",
            Some(u64::from(broker.monitoring.blocked_connections())),
        ),
        (
            "warren_queued_bytes",
            "Memory the queues hold (what the memory alarm counts).",
            Some(broker.alarm.held()),
        ),
        (
            "warren_process_resident_memory_bytes",
            "Resident memory of the broker process (VmRSS).",
            resident_memory(),
        ),
        (
            "warren_disk_free_bytes",
            "Free disk on the data directory's file system at the disk alarm's last check.",
            broker.alarm.disk_free(),
        ),
        (
            "warren_resource_alarm",
            "1 while a memory or disk alarm blocks publishers.",
            Some(u64::from(broker.alarm.is_on())),
        ),
    ];
    // A value that cannot be read (no /proc, no disk check yet) is left out.
    for (name, help, value) in gauges {
        if let Some(value) = value {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
    }
    out
}

/// A queue's labels.
fn labels(listed: &super::Listed) -> String {
    format!(
        "vhost=\"{}\",queue=\"{}\"",
        label(&listed.vhost),
        label(&listed.queue.info.name)
    )
}

/// The process's resident memory in bytes, from /proc/self/status (Linux).
fn resident_memory() -> Option<u64> {
    vm_rss(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// The `VmRSS` line of a /proc status file, in bytes.
fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line.split_whitespace().skip(1);
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib * 1024)
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_the_vmrss_line() {
        let status = "Name:\twarren\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t4\n";
        assert_eq!(vm_rss(status), Some(1234 * 1024));
        assert_eq!(vm_rss("Name:\twarren\n"), None);
        assert_eq!(vm_rss("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn resident_memory_is_readable_here() {
        assert!(resident_memory().is_some_and(|bytes| bytes > 0));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(label("x\ny"), "x\\ny");
    }
}
