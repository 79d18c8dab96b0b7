//! Golden bytes: real traffic between RabbitMQ 3.10 and three clients (pika, amqplib, lapin),
//! captured by `tests/golden/capture.py`, plus hand-made vectors from the spec.
//!
//! Every captured frame must decode, the sequence must be the one the capture scripts
//! drive (checked by hand against `capture_pika.py` and `capture_amqplib.js`), chosen
//! fields must hold the values those scripts sent, and every frame must re-encode to
//! exactly the bytes it came from.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{Bytes, BytesMut};
use warren_codec::*;

/// A frame and the exact bytes it was decoded from.
struct Captured {
    frame: Frame,
    wire: Bytes,
}

/// Decodes a whole capture; client captures start with the protocol header.
fn load(name: &str) -> Vec<Captured> {
    let path = format!("{}/tests/golden/{name}.bin", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let data = if name.ends_with(".client") {
        assert_eq!(
            data[..8],
            PROTOCOL_HEADER,
            "{name} starts with the protocol header"
        );
        &data[8..]
    } else {
        &data[..]
    };
    let mut buf = BytesMut::from(data);
    let mut frames = Vec::new();
    let mut offset = 0;
    while !buf.is_empty() {
        let before = buf.len();
        let frame = match decode_frame(&mut buf, 131_072) {
            Ok(Some(frame)) => frame,
            other => panic!("{name}: at byte {offset}: {other:?}"),
        };
        let len = before - buf.len();
        frames.push(Captured {
            frame,
            wire: Bytes::copy_from_slice(&data[offset..offset + len]),
        });
        offset += len;
    }
    frames
}

/// `channel:name` for a method, `channel:H(body-size)`, `channel:B(len)`, `HB`.
fn describe(frame: &Frame) -> String {
    match frame {
        Frame::Method { channel, method } => format!("{channel}:{}", method.name()),
        Frame::Header { channel, header } => format!("{channel}:H({})", header.body_size),
        Frame::Body { channel, body } => format!("{channel}:B({})", body.len()),
        Frame::Heartbeat => "HB".to_string(),
    }
}

fn assert_sequence(frames: &[Captured], expected: &str) {
    let got: Vec<String> = frames.iter().map(|c| describe(&c.frame)).collect();
    let expected: Vec<&str> = expected.split_whitespace().collect();
    assert_eq!(got, expected);
}

/// Every frame re-encodes to its original bytes; a content header also does when encoded
/// from its decoded properties rather than the raw bytes it kept.
fn assert_reencodes_exactly(frames: &[Captured]) {
    for (i, Captured { frame, wire }) in frames.iter().enumerate() {
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        assert_eq!(out, wire, "frame {i}: {}", describe(frame));
        if let Frame::Header { channel, header } = frame {
            let mut fresh = ContentHeader::new(header.body_size, header.properties().clone());
            fresh.class_id = header.class_id;
            let mut out = BytesMut::new();
            Frame::Header {
                channel: *channel,
                header: fresh,
            }
            .encode(&mut out);
            assert_eq!(
                out, wire,
                "frame {i}: header re-encoded from its properties"
            );
        }
    }
}

fn methods(frames: &[Captured]) -> Vec<&Method> {
    frames
        .iter()
        .filter_map(|c| match &c.frame {
            Frame::Method { method, .. } => Some(method),
            _ => None,
        })
        .collect()
}

fn headers(frames: &[Captured]) -> Vec<&ContentHeader> {
    frames
        .iter()
        .filter_map(|c| match &c.frame {
            Frame::Header { header, .. } => Some(header),
            _ => None,
        })
        .collect()
}

/// The body of the message whose header is the `n`th (from 0), reassembled.
fn body(frames: &[Captured], n: usize) -> Vec<u8> {
    let start = frames
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.frame, Frame::Header { .. }))
        .nth(n)
        .map(|(i, _)| i + 1)
        .unwrap();
    let mut out = Vec::new();
    for c in &frames[start..] {
        match &c.frame {
            Frame::Body { body, .. } => out.extend_from_slice(body),
            _ => break,
        }
    }
    out
}

fn table(entries: Vec<(&str, FieldValue)>) -> FieldTable {
    entries
        .into_iter()
        .map(|(k, v)| (ShortStr::from(k), v))
        .collect()
}

fn long(s: &str) -> FieldValue {
    FieldValue::string(s)
}

fn big_body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The properties of the three "rich" messages, with the headers the client library
/// encoded (pika and amqplib pick different integer types for the same numbers).
fn rich_properties(i: u32, headers: FieldTable, cluster_id: Option<&str>) -> BasicProperties {
    BasicProperties {
        content_type: Some("application/json".into()),
        content_encoding: Some("utf-8".into()),
        headers: Some(headers),
        delivery_mode: Some(2),
        priority: Some(5),
        correlation_id: Some(format!("corr-{i}").into()),
        reply_to: Some("golden.replies".into()),
        expiration: Some("60000".into()),
        message_id: Some(format!("msg-{i}").into()),
        timestamp: Some(1_700_000_000),
        kind: Some("golden.test".into()),
        user_id: Some("guest".into()),
        app_id: Some("warren-golden".into()),
        cluster_id: cluster_id.map(ShortStr::from),
    }
}

fn pika_headers() -> FieldTable {
    use FieldValue::*;
    table(vec![
        ("int", I32(42)),
        ("neg", I32(-7)),
        ("long", I64(1 << 40)),
        ("str", long("hello wörld")),
        ("bool", Bool(true)),
        (
            "nested",
            Table(table(vec![
                ("a", I32(1)),
                ("b", long("two")),
                ("c", Table(table(vec![("deep", Bool(false))]))),
            ])),
        ),
        (
            "array",
            Array(vec![
                I32(1),
                long("x"),
                Bool(true),
                Table(table(vec![("k", long("v"))])),
                Array(vec![I32(2), I32(3)]),
            ]),
        ),
        (
            "decimal",
            Decimal {
                scale: 2,
                value: 314,
            },
        ),
        ("ts", Timestamp(1_700_000_000)),
        (
            "bytes",
            FieldValue::Bytes(bytes::Bytes::from_static(&[0, 1, 255])),
        ),
        ("void", Void),
    ])
}

fn amqplib_headers() -> FieldTable {
    use FieldValue::*;
    table(vec![
        ("byte", I8(7)),
        ("short", I16(1000)),
        ("int", I32(100_000)),
        ("long", I64(1 << 40)),
        ("neg", I8(-5)),
        ("double", F64(2.5)),
        ("float", F32(1.5)),
        (
            "decimal",
            Decimal {
                scale: 2,
                value: 314,
            },
        ),
        ("ts", Timestamp(1_700_000_000)),
        ("bool", Bool(false)),
        ("str", long("hello wörld")),
        (
            "nested",
            Table(table(vec![
                ("a", I8(1)),
                ("b", long("two")),
                ("c", Table(table(vec![("deep", Bool(true))]))),
            ])),
        ),
        (
            "array",
            Array(vec![
                I8(1),
                long("x"),
                Bool(true),
                Table(table(vec![("k", long("v"))])),
                Array(vec![I8(2), I8(3)]),
            ]),
        ),
        (
            "bytes",
            FieldValue::Bytes(bytes::Bytes::from_static(&[0, 1, 255])),
        ),
        ("void", Void),
    ])
}

/// RabbitMQ 3.10.8's connection.start, the same in both captures.
fn assert_rabbitmq_start(method: &Method) {
    let Method::ConnectionStart(start) = method else {
        panic!("expected connection.start, got {method:?}");
    };
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    let props = &start.server_properties;
    assert_eq!(
        props.get("product").and_then(FieldValue::as_str),
        Some("RabbitMQ")
    );
    assert_eq!(
        props.get("version").and_then(FieldValue::as_str),
        Some("3.10.8")
    );
    assert_eq!(
        props.get("platform").and_then(FieldValue::as_str),
        Some("Erlang/OTP 25.2.3")
    );
    let Some(FieldValue::Table(caps)) = props.get("capabilities") else {
        panic!("no capabilities table in {props:?}");
    };
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        assert_eq!(
            caps.get(cap),
            Some(&FieldValue::Bool(true)),
            "capability {cap}"
        );
    }
    assert_eq!(caps.len(), 9);
    assert_eq!(&start.mechanisms[..], b"AMQPLAIN PLAIN");
    assert_eq!(&start.locales[..], b"en_US");
}

const PIKA_CLIENT: &str = "
    0:connection.start-ok 0:connection.tune-ok 0:connection.open
    1:channel.open 1:exchange.declare 1:queue.declare 1:queue.bind 1:confirm.select
    1:basic.publish 1:H(7) 1:B(7)
    1:basic.publish 1:H(7) 1:B(7)
    1:basic.publish 1:H(7) 1:B(7)
    1:basic.publish 1:H(0)
    1:basic.publish 1:H(200000) 1:B(65528) 1:B(65528) 1:B(65528) 1:B(3416)
    1:basic.qos 1:basic.consume 1:basic.ack 1:basic.ack 1:basic.cancel 1:basic.ack
    1:basic.publish 1:H(13) 1:B(13)
    1:basic.get 1:basic.ack 1:basic.get
    1:queue.unbind 1:queue.delete 1:exchange.delete 1:channel.close 0:connection.close";

const PIKA_SERVER: &str = "
    0:connection.start 0:connection.tune 0:connection.open-ok
    1:channel.open-ok 1:exchange.declare-ok 1:queue.declare-ok 1:queue.bind-ok
    1:confirm.select-ok
    1:basic.ack 1:basic.ack 1:basic.ack 1:basic.ack 1:basic.ack
    1:basic.qos-ok 1:basic.consume-ok
    1:basic.deliver 1:H(7) 1:B(7)
    1:basic.deliver 1:H(7) 1:B(7)
    1:basic.deliver 1:H(7) 1:B(7)
    1:basic.deliver 1:H(0)
    1:basic.deliver 1:H(200000) 1:B(65528) 1:B(65528) 1:B(65528) 1:B(3416)
    1:basic.cancel-ok 1:basic.ack
    1:basic.get-ok 1:H(13) 1:B(13) 1:basic.get-empty
    1:queue.unbind-ok 1:queue.delete-ok 1:exchange.delete-ok 1:channel.close-ok
    0:connection.close-ok";

const AMQPLIB_CLIENT: &str = "
    0:connection.start-ok 0:connection.tune-ok 0:connection.open
    1:channel.open 1:confirm.select 1:exchange.declare 1:queue.declare 1:queue.bind
    1:basic.publish 1:H(7) 1:B(7)
    1:basic.publish 1:H(7) 1:B(7)
    1:basic.publish 1:H(7) 1:B(7)
    1:basic.publish 1:H(0)
    1:basic.publish 1:H(20000) 1:B(4088) 1:B(4088) 1:B(4088) 1:B(4088) 1:B(3648)
    1:basic.qos 1:basic.consume 1:basic.ack 1:basic.ack 1:basic.cancel 1:basic.ack
    1:basic.publish 1:H(13) 1:B(13)
    1:basic.get 1:basic.ack 1:basic.get
    1:queue.unbind 1:queue.delete 1:exchange.delete 1:channel.close 0:connection.close";

const AMQPLIB_SERVER: &str = "
    0:connection.start 0:connection.tune 0:connection.open-ok
    1:channel.open-ok 1:confirm.select-ok 1:exchange.declare-ok 1:queue.declare-ok
    1:queue.bind-ok
    1:basic.ack 1:basic.ack 1:basic.ack 1:basic.ack 1:basic.ack
    1:basic.qos-ok 1:basic.consume-ok
    1:basic.deliver 1:H(7) 1:B(7)
    1:basic.deliver 1:H(7) 1:B(7)
    1:basic.deliver 1:H(7) 1:B(7)
    1:basic.deliver 1:H(0)
    1:basic.deliver 1:H(20000) 1:B(4088) 1:B(4088) 1:B(4088) 1:B(4088) 1:B(3648)
    1:basic.cancel-ok 1:basic.ack
    1:basic.get-ok 1:H(13) 1:B(13) 1:basic.get-empty
    1:queue.unbind-ok 1:queue.delete-ok 1:exchange.delete-ok 1:channel.close-ok
    0:connection.close-ok";

#[test]
fn pika_client_capture_decodes_and_reencodes_exactly() {
    let frames = load("pika.client");
    assert_sequence(&frames, PIKA_CLIENT);
    assert_reencodes_exactly(&frames);
    let methods = methods(&frames);

    let Method::ConnectionStartOk(start_ok) = methods[0] else {
        panic!("{:?}", methods[0]);
    };
    let props = &start_ok.client_properties;
    assert_eq!(
        props.get("product").and_then(FieldValue::as_str),
        Some("Pika Python Client Library")
    );
    assert_eq!(
        props.get("connection_name").and_then(FieldValue::as_str),
        Some("warren-golden-pika")
    );
    assert_eq!(start_ok.mechanism, "PLAIN");
    assert_eq!(&start_ok.response[..], b"\0guest\0guest");
    assert_eq!(start_ok.locale, "en_US");
    assert_eq!(
        methods[1],
        &Method::from(ConnectionTuneOk {
            channel_max: 2047,
            frame_max: 65536,
            heartbeat: 60
        })
    );
    let Method::ConnectionOpen(open) = methods[2] else {
        panic!("{:?}", methods[2]);
    };
    assert_eq!(open.virtual_host, "/");
    assert_eq!(
        methods[5],
        &Method::from(QueueDeclare {
            queue: "warren.golden.q".into(),
            durable: true,
            arguments: table(vec![
                ("x-message-ttl", FieldValue::I32(60000)),
                ("x-dead-letter-exchange", long("warren.golden.dlx")),
                ("x-max-length", FieldValue::I32(100)),
            ]),
            ..Default::default()
        })
    );
    assert_eq!(
        methods[8],
        &Method::from(BasicPublish {
            exchange: "warren.golden.x".into(),
            routing_key: "golden.rich.1".into(),
            ..Default::default()
        })
    );

    let headers = headers(&frames);
    for (i, header) in headers.iter().take(3).enumerate() {
        let n = i as u32 + 1;
        assert_eq!(
            header.properties(),
            &rich_properties(n, pika_headers(), Some(""))
        );
        assert_eq!(body(&frames, i), format!("{{\"n\":{n}}}").as_bytes());
    }
    assert_eq!(
        headers[3].properties().content_type.as_deref(),
        Some("text/plain")
    );
    assert_eq!(headers[4].properties().delivery_mode, Some(1));
    assert_eq!(headers[4].properties().message_id.as_deref(), Some("big"));
    assert_eq!(body(&frames, 4), big_body(200_000));
    assert_eq!(body(&frames, 5), b"for basic.get");
    assert!(methods.contains(&&Method::from(BasicAck {
        delivery_tag: 3,
        multiple: true
    })));
    let Some(Method::ConnectionClose(close)) = methods.last() else {
        panic!("{:?}", methods.last());
    };
    assert_eq!(
        (close.reply_code, close.reply_text.as_str()),
        (200, "Normal shutdown")
    );
}

#[test]
fn pika_server_capture_decodes_and_reencodes_exactly() {
    let frames = load("pika.server");
    assert_sequence(&frames, PIKA_SERVER);
    assert_reencodes_exactly(&frames);
    let methods = methods(&frames);
    assert_rabbitmq_start(methods[0]);
    assert_eq!(
        methods[1],
        &Method::from(ConnectionTune {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60
        })
    );
    let delivers: Vec<&BasicDeliver> = methods
        .iter()
        .filter_map(|m| match m {
            Method::BasicDeliver(d) => Some(d),
            _ => None,
        })
        .collect();
    let keys = [
        "golden.rich.1",
        "golden.rich.2",
        "golden.rich.3",
        "golden.empty",
        "golden.big",
    ];
    for (i, (deliver, key)) in delivers.iter().zip(keys).enumerate() {
        assert_eq!(deliver.consumer_tag, "golden-ctag");
        assert_eq!(deliver.delivery_tag, i as u64 + 1);
        assert!(!deliver.redelivered);
        assert_eq!(deliver.exchange, "warren.golden.x");
        assert_eq!(deliver.routing_key, key);
    }
    let headers = headers(&frames);
    assert_eq!(
        headers[0].properties(),
        &rich_properties(1, pika_headers(), Some(""))
    );
    assert_eq!(body(&frames, 4), big_body(200_000));
    assert!(methods.contains(&&Method::from(BasicGetOk {
        delivery_tag: 6,
        exchange: "warren.golden.x".into(),
        routing_key: "golden.get".into(),
        ..Default::default()
    })));
}

#[test]
fn amqplib_client_capture_decodes_and_reencodes_exactly() {
    let frames = load("amqplib.client");
    assert_sequence(&frames, AMQPLIB_CLIENT);
    assert_reencodes_exactly(&frames);
    let methods = methods(&frames);
    let Method::ConnectionStartOk(start_ok) = methods[0] else {
        panic!("{:?}", methods[0]);
    };
    assert_eq!(
        start_ok
            .client_properties
            .get("product")
            .and_then(FieldValue::as_str),
        Some("amqplib")
    );
    assert_eq!(&start_ok.response[..], b"\0guest\0guest");
    assert_eq!(
        methods[1],
        &Method::from(ConnectionTuneOk {
            channel_max: 2047,
            frame_max: 4096,
            heartbeat: 0
        })
    );
    let Method::QueueDeclare(declare) = methods[6] else {
        panic!("{:?}", methods[6]);
    };
    // amqplib sends 100 as a signed byte where pika sends a 32-bit int.
    assert_eq!(
        declare.arguments.get("x-max-length"),
        Some(&FieldValue::I8(100))
    );

    let headers = headers(&frames);
    for (i, header) in headers.iter().take(3).enumerate() {
        let n = i as u32 + 1;
        assert_eq!(
            header.properties(),
            &rich_properties(n, amqplib_headers(), None)
        );
    }
    // amqplib always sends a headers table, empty when the caller gave none.
    assert_eq!(headers[3].properties().headers, Some(FieldTable::new()));
    assert_eq!(body(&frames, 4), big_body(20_000));
    let Some(Method::ConnectionClose(close)) = methods.last() else {
        panic!("{:?}", methods.last());
    };
    assert_eq!(
        (close.reply_code, close.reply_text.as_str()),
        (200, "Cheers, thanks")
    );
}

#[test]
fn amqplib_server_capture_decodes_and_reencodes_exactly() {
    let frames = load("amqplib.server");
    assert_sequence(&frames, AMQPLIB_SERVER);
    assert_reencodes_exactly(&frames);
    let methods = methods(&frames);
    assert_rabbitmq_start(methods[0]);
    let headers = headers(&frames);
    for (i, header) in headers.iter().take(3).enumerate() {
        let n = i as u32 + 1;
        assert_eq!(
            header.properties(),
            &rich_properties(n, amqplib_headers(), None)
        );
    }
    assert_eq!(body(&frames, 4), big_body(20_000));
    assert_eq!(
        methods[methods.len() - 7],
        &Method::from(BasicGetOk {
            delivery_tag: 6,
            exchange: "warren.golden.ax".into(),
            routing_key: "golden.get".into(),
            ..Default::default()
        })
    );
}

/// RabbitMQ forwards a content header's payload unchanged, and so must warren: each header
/// a client published reaches the consumer byte for byte (what keeping the raw property
/// bytes is for).
/// lapin 4 (the `throughput` example's `--backlog` mode through `capture.py lapin`):
/// declare, confirm mode, three 16-byte publishes confirmed by one multiple ack, delete.
#[test]
fn lapin_capture_decodes_and_reencodes_exactly() {
    let client = load("lapin.client");
    assert_sequence(
        &client,
        "0:connection.start-ok 0:connection.tune-ok 0:connection.open 1:channel.open \
         1:queue.declare 1:confirm.select \
         1:basic.publish 1:H(16) 1:B(16) 1:basic.publish 1:H(16) 1:B(16) \
         1:basic.publish 1:H(16) 1:B(16) 1:queue.delete 0:connection.close",
    );
    assert_reencodes_exactly(&client);
    let publishes: Vec<&BasicPublish> = methods(&client)
        .into_iter()
        .filter_map(|m| match m {
            Method::BasicPublish(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(publishes.len(), 3);
    assert!(
        publishes
            .iter()
            .all(|p| p.exchange.is_empty() && p.routing_key.starts_with("backlog-"))
    );
    assert_eq!(body(&client, 0), vec![b'x'; 16]);

    let server = load("lapin.server");
    assert_reencodes_exactly(&server);
    assert!(matches!(methods(&server)[0], Method::ConnectionStart(_)));
    let acks: Vec<&BasicAck> = methods(&server)
        .into_iter()
        .filter_map(|m| match m {
            Method::BasicAck(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 1);
    assert_eq!((acks[0].delivery_tag, acks[0].multiple), (3, true));
}

#[test]
fn content_headers_pass_through_rabbitmq_byte_for_byte() {
    for client in ["pika", "amqplib"] {
        let payloads = |name: &str| -> Vec<Bytes> {
            load(name)
                .into_iter()
                .filter(|c| matches!(c.frame, Frame::Header { .. }))
                .map(|c| c.wire.slice(7..c.wire.len() - 1))
                .collect()
        };
        let sent = payloads(&format!("{client}.client"));
        let received = payloads(&format!("{client}.server"));
        assert_eq!(sent.len(), 6);
        assert_eq!(sent, received, "{client}");
    }
}

/// Hand-made vectors: each decodes to the frame and the frame encodes to the bytes.
fn assert_vector(bytes: &[u8], frame: Frame) {
    let mut buf = BytesMut::from(bytes);
    assert_eq!(decode_frame(&mut buf, 4096), Ok(Some(frame.clone())));
    assert!(buf.is_empty());
    let mut out = BytesMut::new();
    frame.encode(&mut out);
    assert_eq!(&out[..], bytes);
}

#[test]
fn heartbeat_vector() {
    assert_vector(&[8, 0, 0, 0, 0, 0, 0, 0xCE], Frame::Heartbeat);
}

#[test]
fn connection_tune_vector() {
    #[rustfmt::skip]
    let bytes = [
        1, 0, 0, 0, 0, 0, 12,   // method frame, channel 0, size 12
        0, 10, 0, 30,           // connection.tune
        0x07, 0xFF,             // channel-max 2047
        0, 2, 0, 0,             // frame-max 131072
        0, 60,                  // heartbeat 60
        0xCE,
    ];
    let tune = ConnectionTune {
        channel_max: 2047,
        frame_max: 131_072,
        heartbeat: 60,
    };
    assert_vector(&bytes, Frame::method(0, tune));
}

#[test]
fn basic_publish_header_and_body_vectors() {
    #[rustfmt::skip]
    let publish = [
        1, 0, 1, 0, 0, 0, 13,   // method frame, channel 1, size 13
        0, 60, 0, 40,           // basic.publish
        0, 0,                   // ticket
        3, b'a', b'm', b'q',    // exchange "amq"
        1, b'q',                // routing key "q"
        0b01,                   // mandatory, not immediate
        0xCE,
    ];
    let method = BasicPublish {
        exchange: "amq".into(),
        routing_key: "q".into(),
        mandatory: true,
        ..Default::default()
    };
    assert_vector(&publish, Frame::method(1, method));

    #[rustfmt::skip]
    let header = [
        2, 0, 1, 0, 0, 0, 17,   // header frame, channel 1, size 17
        0, 60, 0, 0,            // class basic, weight 0
        0, 0, 0, 0, 0, 0, 0, 5, // body size 5
        0x90, 0x00,             // content-type and delivery-mode present
        1, b't',                // content-type "t"
        2,                      // delivery-mode 2
        0xCE,
    ];
    let mut buf = BytesMut::from(&header[..]);
    let Ok(Some(Frame::Header {
        channel: 1,
        header: decoded,
    })) = decode_frame(&mut buf, 4096)
    else {
        panic!("header vector did not decode");
    };
    let properties = BasicProperties {
        content_type: Some("t".into()),
        delivery_mode: Some(2),
        ..Default::default()
    };
    assert_eq!((decoded.class_id, decoded.body_size), (60, 5));
    assert_eq!(decoded.properties(), &properties);
    let mut out = BytesMut::new();
    Frame::Header {
        channel: 1,
        header: ContentHeader::new(5, properties),
    }
    .encode(&mut out);
    assert_eq!(&out[..], &header[..]);

    let body = [3, 0, 1, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o', 0xCE];
    let frame = Frame::Body {
        channel: 1,
        body: Bytes::from_static(b"hello"),
    };
    assert_vector(&body, frame);
}

#[test]
fn queue_declare_bits_and_table_vector() {
    #[rustfmt::skip]
    let bytes = [
        1, 0, 2, 0, 0, 0, 29,            // method frame, channel 2, size 29
        0, 50, 0, 10,                    // queue.declare
        0, 0,                            // ticket
        1, b'q',                         // queue "q"
        0b01010,                         // durable, auto-delete
        0, 0, 0, 16,                     // arguments, 16 bytes
        5, b'x', b'-', b'm', b'a', b'x', // "x-max"
        b'I', 0, 0, 0, 10,               // signed 32-bit 10
        1, b'n', b's', 0xFF, 0xFE,       // "n": signed 16-bit -2 (RabbitMQ's 's')
        0xCE,
    ];
    let declare = QueueDeclare {
        queue: "q".into(),
        durable: true,
        auto_delete: true,
        arguments: table(vec![
            ("x-max", FieldValue::I32(10)),
            ("n", FieldValue::I16(-2)),
        ]),
        ..Default::default()
    };
    assert_vector(&bytes, Frame::method(2, declare));
}

#[test]
fn basic_deliver_bit_between_fields_vector() {
    #[rustfmt::skip]
    let bytes = [
        1, 0, 1, 0, 0, 0, 19,            // method frame, channel 1, size 19
        0, 60, 0, 60,                    // basic.deliver
        1, b'c',                         // consumer tag "c"
        0, 0, 0, 0, 0, 0, 0, 7,          // delivery tag 7
        1,                               // redelivered
        0,                               // exchange ""
        2, b'k', b'1',                   // routing key "k1"
        0xCE,
    ];
    let deliver = BasicDeliver {
        consumer_tag: "c".into(),
        delivery_tag: 7,
        redelivered: true,
        exchange: "".into(),
        routing_key: "k1".into(),
    };
    assert_vector(&bytes, Frame::method(1, deliver));
}
