//! Routing cost against the number of bindings.
//!
//! - topic: exchanges with 1k, 10k and 100k bindings of realistic patterns (exact keys,
//!   `*` and `#` mixed), routing a stream of 1M distinct keys, some matching and most
//!   not, as a busy event bus sees them.
//! - headers: an exchange with 1k bindings (all / any, one to three conditions), routing
//!   messages with four headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use warren_codec::{FieldTable, FieldValue};
use warren_routing::{Envelope, ExchangeKind, ExchangeSpec, Topology};

const SERVICES: usize = 1_000;
const REGIONS: [&str; 4] = ["eu", "us", "ap", "sa"];
const LEVELS: [&str; 4] = ["error", "warn", "info", "debug"];

/// `n` bindings of `service.region.level`-style patterns over `n / 4` services.
fn topic(n: usize) -> Topology {
    let mut t = Topology::new();
    t.declare(ExchangeSpec::new("x", ExchangeKind::Topic))
        .unwrap();
    for i in 0..n {
        let svc = i / 4;
        let region = REGIONS[i % 4];
        let pattern = match i % 8 {
            0..=2 => format!("svc{svc}.{region}.{}", LEVELS[i % 3]),
            3 => format!("svc{svc}.*.error"),
            4 => format!("svc{svc}.{region}.#"),
            5 => format!("*.{region}.level{svc}"),
            6 => format!("svc{svc}.#.audit"),
            _ => format!("svc{svc}.{region}.*"),
        };
        t.bind_queue("x", &format!("q{}", i % 5_000), &pattern, FieldTable::new())
            .unwrap();
    }
    t.bind_queue("x", "all-errors", "#.error", FieldTable::new())
        .unwrap();
    t
}

/// 1M keys: services spread over ten times as many as any exchange binds, so most keys
/// match only the `#.error` catch-all or nothing.
fn keys() -> Vec<String> {
    (0..1_000_000usize)
        .map(|i| {
            let svc = (i * 7919) % (SERVICES * 250);
            format!("svc{svc}.{}.{}", REGIONS[i % 4], LEVELS[(i / 4) % 4])
        })
        .collect()
}

fn topic_bench(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("topic route");
    group.throughput(Throughput::Elements(1));
    for n in [1_000, 10_000, 100_000] {
        let t = topic(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &t, |b, t| {
            let mut next = keys.iter().cycle();
            b.iter(|| {
                let key = next.next().map_or("", String::as_str);
                route_count(t, "x", &Envelope::new(key, None).unwrap())
            });
        });
    }
    group.finish();
}

/// Routes as the broker does, counting the destinations.
fn route_count(t: &Topology, exchange: &str, envelope: &Envelope<'_>) -> usize {
    let mut n = 0;
    t.route_each(exchange, envelope, |_| n += 1).unwrap();
    n
}

fn headers_bench(c: &mut Criterion) {
    let mut t = Topology::new();
    t.declare(ExchangeSpec::new("h", ExchangeKind::Headers))
        .unwrap();
    for i in 0..1_000 {
        let mut args = FieldTable::new();
        args.insert("x-match", if i % 2 == 0 { "all" } else { "any" });
        args.insert("tenant", format!("t{}", i % 100).as_str());
        if i % 3 != 0 {
            args.insert("kind", FieldValue::string(["order", "invoice"][i % 2]));
        }
        if i % 5 == 0 {
            args.insert("priority", FieldValue::I32((i % 4) as i32));
        }
        t.bind_queue("h", &format!("q{i}"), "", args).unwrap();
    }
    let messages: Vec<FieldTable> = (0..1_000)
        .map(|i| {
            let mut h = FieldTable::new();
            h.insert("tenant", format!("t{}", i % 120).as_str());
            h.insert("kind", ["order", "invoice", "refund"][i % 3]);
            h.insert("priority", FieldValue::I64((i % 4) as i64));
            h.insert("trace-id", format!("{i:016x}").as_str());
            h
        })
        .collect();
    let mut group = c.benchmark_group("headers route");
    group.throughput(Throughput::Elements(1));
    group.bench_function("1000", |b| {
        let mut next = messages.iter().cycle();
        b.iter(|| {
            let headers = next.next();
            route_count(&t, "h", &Envelope::new("", headers).unwrap())
        });
    });
    group.finish();
}

criterion_group!(benches, topic_bench, headers_bench);
criterion_main!(benches);
