//! `/metrics` in the Prometheus text format.

use std::fmt::Write;

use super::Listing;
use crate::broker::Broker;
use crate::queue::QueueStats;

/// A per-queue gauge: name, help, and how to read it.
type QueueGauge = (&'static str, &'static str, fn(&QueueStats) -> u32);

pub(super) fn render(broker: &Broker, listing: &Listing) -> String {
    let mut out = String::new();
    let per_queue: [QueueGauge; 3] = [
        (
            "warren_queue_messages_ready",
            "Messages ready for delivery.",
            |s| s.ready,
        ),
        (
            "warren_queue_messages_unacked",
            "Messages delivered and not yet acknowledged.",
            |s| s.unacked,
        ),
        ("warren_queue_consumers", "Consumers of the queue.", |s| {
            s.consumers
        }),
    ];
    for (name, help, value) in per_queue {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for listed in &listing.queues {
            let _ = writeln!(
                out,
                "{name}{{vhost=\"{}\",queue=\"{}\"}} {}",
                label(&listed.vhost),
                label(&listed.queue.info.name),
                value(&listed.stats)
            );
        }
    }
    let gauges = [
        (
            "warren_connections",
            "Open client connections.",
            u64::from(broker.connection_count()),
        ),
        (
            "warren_queued_bytes",
            "Memory the queues hold (what the memory alarm counts).",
            broker.alarm.held(),
        ),
        (
            "warren_resource_alarm",
            "1 while a memory or disk alarm blocks publishers.",
            u64::from(broker.alarm.is_on()),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    out
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
    fn label_values_are_escaped() {
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(label("x\ny"), "x\\ny");
    }
}
