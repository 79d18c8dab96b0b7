//! warren's codec against amq-protocol (the codec lapin uses), side by side on identical
//! bytes: a basic.publish message (method + content header + body frame) with a 16-byte
//! and a 4 KiB body, decoded and encoded; and a 20-entry field table, decoded and encoded.
//!
//! Setup checks that both libraries produce the same bytes and decode the same values, so
//! each pair does the same work: both parse every frame in full (properties and headers
//! table included) and both hand back the body bytes (warren as a slice of the read
//! buffer, amq-protocol as a copy). Decoded values are dropped inside the timed routine,
//! so freeing them is counted for both; the input buffer outlives the routine for both,
//! as a connection's read buffer outlives the messages in it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties as AmqpProperties, basic as amqp_basic};
use amq_protocol::types::generation::gen_field_table;
use amq_protocol::types::parsing::parse_field_table;
use amq_protocol::types::{AMQPValue, DecimalValue, FieldTable as AmqpTable, ShortString};
use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use warren_codec::{
    BasicProperties, BasicPublish, ContentHeader, FieldTable, FieldValue, Frame, Method, ShortStr,
    decode_frame, encode_content,
};

const FRAME_MAX: u32 = 131_072;
const EXCHANGE: &str = "orders";
const ROUTING_KEY: &str = "order.created.eu";
const MESSAGE_ID: &str = "4f9c2b1e-8d7a-4e3b-9c1f-2a6b5d8e7f01";
const TIMESTAMP: u64 = 1_700_000_000;

/// The same message in both libraries' types.
struct Message {
    method: Method,
    header: ContentHeader,
    body: Vec<u8>,
    amqp: [AMQPFrame; 3],
}

fn message(body_len: usize) -> Message {
    let body: Vec<u8> = (0..body_len).map(|i| (i % 251) as u8).collect();

    // Keys in sorted order: amq-protocol keeps tables in a BTreeMap.
    let mut headers = FieldTable::new();
    headers.insert("source", FieldValue::string("checkout"));
    headers.insert("traced", FieldValue::Bool(true));
    headers.insert("x-retries", FieldValue::I32(3));
    let properties = BasicProperties {
        content_type: Some("application/json".into()),
        headers: Some(headers),
        delivery_mode: Some(2),
        message_id: Some(MESSAGE_ID.into()),
        timestamp: Some(TIMESTAMP),
        ..Default::default()
    };
    let method = Method::from(BasicPublish {
        exchange: EXCHANGE.into(),
        routing_key: ROUTING_KEY.into(),
        ..Default::default()
    });
    let header = ContentHeader::new(body.len() as u64, properties);

    let mut amqp_headers = AmqpTable::default();
    amqp_headers.insert("source".into(), AMQPValue::LongString("checkout".into()));
    amqp_headers.insert("traced".into(), AMQPValue::Boolean(true));
    amqp_headers.insert("x-retries".into(), AMQPValue::LongInt(3));
    let amqp_properties = AmqpProperties::default()
        .with_content_type("application/json".into())
        .with_headers(amqp_headers)
        .with_delivery_mode(2)
        .with_message_id(MESSAGE_ID.into())
        .with_timestamp(TIMESTAMP);
    let amqp = [
        AMQPFrame::Method(
            1,
            AMQPClass::Basic(amqp_basic::AMQPMethod::Publish(amqp_basic::Publish {
                exchange: EXCHANGE.into(),
                routing_key: ROUTING_KEY.into(),
                mandatory: false,
                immediate: false,
            })),
        ),
        AMQPFrame::Header(
            1,
            AMQPContentHeader {
                class_id: 60,
                body_size: body.len() as u64,
                properties: amqp_properties,
            },
        ),
        AMQPFrame::Body(1, body.clone()),
    ];
    Message {
        method,
        header,
        body,
        amqp,
    }
}

fn warren_encode(m: &Message, buf: &mut BytesMut) {
    buf.clear();
    encode_content(buf, 1, &m.method, &m.header, &m.body, FRAME_MAX);
}

fn amqp_encode(frames: &[AMQPFrame], mut buf: Vec<u8>) -> Vec<u8> {
    buf.clear();
    let mut ctx = WriteContext::from(buf);
    for frame in frames {
        ctx = gen_frame(frame)(ctx).unwrap();
    }
    ctx.into_inner().0
}

/// Decodes the three frames of a message from the front of `buf`.
fn warren_decode(buf: &mut BytesMut) -> [Frame; 3] {
    let mut next = || decode_frame(buf, FRAME_MAX).unwrap().unwrap();
    [next(), next(), next()]
}

/// `wire` in a read buffer as a connection has one: it outlives the message (as
/// amq-protocol's input slice does), and frames decoded from it earlier have already made
/// its storage shared (bytes allocates the refcount once per buffer, when the first frame
/// is split off).
fn read_buffer(wire: &[u8]) -> BytesMut {
    let mut buf = BytesMut::from(wire);
    drop(buf.split_to(0));
    buf
}

fn amqp_decode(wire: &[u8]) -> [AMQPFrame; 3] {
    let (rest, method) = parse_frame(wire).unwrap();
    let (rest, header) = parse_frame(rest).unwrap();
    let (_, body) = parse_frame(rest).unwrap();
    [method, header, body]
}

/// Both encoders write the same bytes, and both decoders read back the same values.
fn check_message_equivalence(m: &Message) -> Bytes {
    let mut warren = BytesMut::new();
    warren_encode(m, &mut warren);
    let amqp = amqp_encode(&m.amqp, Vec::new());
    assert_eq!(&warren[..], &amqp[..], "encoders disagree");

    let [method, header, body] = warren_decode(&mut read_buffer(&warren));
    let Frame::Method {
        method: Method::BasicPublish(publish),
        ..
    } = method
    else {
        panic!("{method:?}");
    };
    let Frame::Header { header, .. } = header else {
        panic!("{header:?}");
    };
    let Frame::Body { body, .. } = body else {
        panic!("{body:?}");
    };
    let [amqp_method, amqp_header, amqp_body] = amqp_decode(&warren);
    assert_eq!(amqp_method, m.amqp[0]);
    assert_eq!(amqp_header, m.amqp[1]);
    assert_eq!(amqp_body, m.amqp[2]);
    assert_eq!(publish.routing_key, ROUTING_KEY);
    assert_eq!(header.properties(), m.header.properties());
    assert_eq!(&body[..], &m.body[..]);
    warren.freeze()
}

fn bench_message(c: &mut Criterion, label: &str, body_len: usize) {
    let m = message(body_len);
    let wire = check_message_equivalence(&m);

    let mut group = c.benchmark_group(format!("decode publish {label}"));
    group.bench_function("warren", |b| {
        b.iter_batched(
            || read_buffer(&wire),
            |mut buf| {
                drop(black_box(warren_decode(&mut buf)));
                buf
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("amq-protocol", |b| {
        b.iter_batched(
            || &wire[..],
            |wire| {
                drop(black_box(amqp_decode(wire)));
                wire
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group(format!("encode publish {label}"));
    let mut buf = BytesMut::with_capacity(wire.len());
    group.bench_function("warren", |b| {
        b.iter(|| {
            warren_encode(black_box(&m), &mut buf);
            black_box(&buf);
        })
    });
    let mut vec = Some(Vec::with_capacity(wire.len()));
    group.bench_function("amq-protocol", |b| {
        b.iter(|| {
            let out = amqp_encode(black_box(&m.amqp), vec.take().unwrap());
            vec = Some(black_box(out));
        })
    });
    group.finish();
}

fn bench_publish(c: &mut Criterion) {
    bench_message(c, "16 B", 16);
    bench_message(c, "4 KiB", 4096);
}

/// 20 entries of mixed types, keys sorted (amq-protocol's BTreeMap order), built in both
/// libraries' types.
fn tables() -> (FieldTable, AmqpTable) {
    use FieldValue as W;
    let mut inner = FieldTable::new();
    inner.insert("x-match", W::string("all"));
    inner.insert("zone", W::I32(7));
    let mut amqp_inner = AmqpTable::default();
    amqp_inner.insert("x-match".into(), AMQPValue::LongString("all".into()));
    amqp_inner.insert("zone".into(), AMQPValue::LongInt(7));

    let entries: Vec<(&str, W, AMQPValue)> = vec![
        ("a-bool", W::Bool(true), AMQPValue::Boolean(true)),
        ("b-i8", W::I8(-5), AMQPValue::ShortShortInt(-5)),
        ("c-u8", W::U8(200), AMQPValue::ShortShortUInt(200)),
        ("d-i16", W::I16(-1000), AMQPValue::ShortInt(-1000)),
        ("e-u16", W::U16(60000), AMQPValue::ShortUInt(60000)),
        ("f-i32", W::I32(-100_000), AMQPValue::LongInt(-100_000)),
        (
            "g-u32",
            W::U32(4_000_000_000),
            AMQPValue::LongUInt(4_000_000_000),
        ),
        ("h-i64", W::I64(1 << 40), AMQPValue::LongLongInt(1 << 40)),
        ("i-f32", W::F32(1.5), AMQPValue::Float(1.5)),
        ("j-f64", W::F64(-2.25), AMQPValue::Double(-2.25)),
        (
            "k-decimal",
            W::Decimal {
                scale: 2,
                value: 314,
            },
            AMQPValue::DecimalValue(DecimalValue {
                scale: 2,
                value: 314,
            }),
        ),
        (
            "l-string",
            W::string("application/vnd.warren+json"),
            AMQPValue::LongString("application/vnd.warren+json".into()),
        ),
        (
            "m-bytes",
            W::Bytes(Bytes::from_static(&[0, 1, 2, 254, 255])),
            AMQPValue::ByteArray(vec![0u8, 1, 2, 254, 255].into()),
        ),
        (
            "n-timestamp",
            W::Timestamp(TIMESTAMP),
            AMQPValue::Timestamp(TIMESTAMP),
        ),
        ("o-void", W::Void, AMQPValue::Void),
        (
            "p-array",
            W::Array(vec![W::I32(1), W::string("two"), W::Bool(false)]),
            AMQPValue::FieldArray(
                vec![
                    AMQPValue::LongInt(1),
                    AMQPValue::LongString("two".into()),
                    AMQPValue::Boolean(false),
                ]
                .into(),
            ),
        ),
        (
            "q-table",
            W::Table(inner),
            AMQPValue::FieldTable(amqp_inner),
        ),
        (
            "r-dead-letter-exchange",
            W::string("dlx"),
            AMQPValue::LongString("dlx".into()),
        ),
        ("s-ttl", W::I32(60_000), AMQPValue::LongInt(60_000)),
        (
            "x-trace-id",
            W::string("0af7651916cd43dd8448eb211c80319c"),
            AMQPValue::LongString("0af7651916cd43dd8448eb211c80319c".into()),
        ),
    ];
    assert_eq!(entries.len(), 20);
    let mut warren = FieldTable::new();
    let mut amqp = AmqpTable::default();
    for (key, w, a) in entries {
        warren.insert(ShortStr::from(key), w);
        amqp.insert(ShortString::from(key), a);
    }
    (warren, amqp)
}

fn amqp_encode_table(table: &AmqpTable, mut buf: Vec<u8>) -> Vec<u8> {
    buf.clear();
    gen_field_table(table)(WriteContext::from(buf))
        .unwrap()
        .into_inner()
        .0
}

fn bench_table(c: &mut Criterion) {
    let (table, amqp_table) = tables();
    let mut buf = BytesMut::new();
    table.encode(&mut buf);
    let wire = buf.freeze();
    assert_eq!(&wire[..], &amqp_encode_table(&amqp_table, Vec::new())[..]);
    // warren decodes the entries after the u32 length; amq-protocol reads the length too.
    let entries = wire.slice(4..);
    assert_eq!(FieldTable::decode_entries(&entries).as_ref(), Ok(&table));
    assert_eq!(parse_field_table(&wire[..]).unwrap().1, amqp_table);

    let mut group = c.benchmark_group("decode table 20 entries");
    group.bench_function("warren", |b| {
        b.iter(|| FieldTable::decode_entries(black_box(&entries)).unwrap())
    });
    group.bench_function("amq-protocol", |b| {
        b.iter(|| parse_field_table(black_box(&wire[..])).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("encode table 20 entries");
    let mut out = BytesMut::with_capacity(wire.len());
    group.bench_function("warren", |b| {
        b.iter(|| {
            out.clear();
            black_box(&table).encode(&mut out);
            black_box(&out);
        })
    });
    let mut vec = Some(Vec::with_capacity(wire.len()));
    group.bench_function("amq-protocol", |b| {
        b.iter(|| {
            let out = amqp_encode_table(black_box(&amqp_table), vec.take().unwrap());
            vec = Some(black_box(out));
        })
    });
    group.finish();
}

criterion_group!(benches, bench_publish, bench_table);
criterion_main!(benches);
