//! Routing cost against the number of bindings: a topic exchange with 10, 1,000 and
//! 100,000 bindings, routing keys that match a handful of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use warren_codec::FieldTable;
use warren_routing::{ExchangeKind, ExchangeSpec, Topology};

fn topic(bindings: usize) -> Topology {
    let mut t = Topology::new();
    t.declare(ExchangeSpec::new("x", ExchangeKind::Topic))
        .unwrap();
    for i in 0..bindings {
        // Service / region / level patterns; a few wildcards among them.
        let pattern = match i % 4 {
            0 => format!("svc{}.eu.error", i),
            1 => format!("svc{}.*.info", i),
            2 => format!("svc{}.#", i),
            _ => format!("*.us.level{}", i),
        };
        t.bind_queue("x", &format!("q{i}"), &pattern, FieldTable::new())
            .unwrap();
    }
    t.bind_queue("x", "audit", "#.error", FieldTable::new())
        .unwrap();
    t
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("topic route");
    for n in [10, 1_000, 100_000] {
        let t = topic(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &t, |b, t| {
            b.iter(|| t.route("x", "svc4.eu.error").unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
