//! Codec properties: every method, content header and nested table survives an encode and
//! decode; the same frames come out however the input is split; every strict prefix of a
//! frame is incomplete (`Ok(None)`); and no input, random or mutated, panics the decoder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod strategy;

use std::collections::BTreeSet;

use bytes::{BufMut, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use tokio_util::codec::Decoder;
use warren_codec::*;

use strategy::*;

const FRAME_MAX: u32 = 131_072;

fn encoded(frame: &Frame) -> BytesMut {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf);
    buf
}

/// Decodes frames until the input runs out or fails, checking that every frame returned
/// consumed bytes and that `Ok(None)` consumed none.
fn decode_until_stuck(bytes: &[u8], frame_max: u32) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::from(bytes);
    loop {
        let before = buf.len();
        match decode_frame(&mut buf, frame_max) {
            Ok(Some(_)) => prop_assert!(buf.len() < before, "a frame consumed nothing"),
            Ok(None) => {
                prop_assert_eq!(buf.len(), before, "Ok(None) consumed input");
                return Ok(());
            }
            Err(_) => return Ok(()),
        }
    }
}

#[test]
fn the_strategies_cover_every_method() {
    let mut runner = TestRunner::deterministic();
    let mut ids = BTreeSet::new();
    for strategy in method_strategies() {
        let method = strategy.new_tree(&mut runner).unwrap().current();
        assert_every_variant_listed(&method);
        ids.insert((method.class_id(), method.method_id()));
    }
    // 0-9-1's 64 methods (RabbitMQ's extensions included) and access.request/-ok.
    assert_eq!(METHOD_COUNT, 66);
    assert_eq!(
        ids.len(),
        METHOD_COUNT,
        "distinct (class_id, method_id) pairs: {ids:?}"
    );
}

#[test]
fn the_value_strategy_produces_every_type_letter() {
    fn letters(value: &FieldValue, seen: &mut BTreeSet<u8>) {
        seen.insert(value.type_letter());
        match value {
            FieldValue::Array(values) => values.iter().for_each(|v| letters(v, seen)),
            FieldValue::Table(table) => table.iter().for_each(|(_, v)| letters(v, seen)),
            _ => {}
        }
    }
    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    let strategy = field_value();
    for _ in 0..2000 {
        letters(
            &strategy.new_tree(&mut runner).unwrap().current(),
            &mut seen,
        );
    }
    assert_eq!(seen.len(), 17, "type letters seen: {:?}", seen);
}

#[test]
fn an_announced_size_is_not_reserved_up_front_without_frame_max() {
    // A body frame claiming 4 GiB: 7 bytes must not make the decoder allocate it.
    let mut buf = BytesMut::from(&[3u8, 0, 1, 0xFF, 0xFF, 0xFF, 0xF7][..]);
    assert_eq!(decode_frame(&mut buf, 0), Ok(None));
    assert!(
        buf.capacity() <= 1 << 20,
        "reserved {} bytes",
        buf.capacity()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_method_round_trips(channel in any::<u16>(), method in method()) {
        let frame = Frame::Method { channel, method };
        let mut buf = encoded(&frame);
        prop_assert_eq!(decode_frame(&mut buf, 0), Ok(Some(frame)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn every_content_header_round_trips(channel in any::<u16>(), header in content_header()) {
        let mut buf = encoded(&Frame::Header { channel, header: header.clone() });
        let wire = buf.clone().freeze();
        let decoded = decode_frame(&mut buf, 0);
        prop_assert!(buf.is_empty());
        let Ok(Some(Frame::Header { channel: got_channel, header: got })) = decoded else {
            return Err(TestCaseError::fail(format!("not a header: {decoded:?}")));
        };
        prop_assert_eq!(got_channel, channel);
        prop_assert_eq!(got.class_id, header.class_id);
        prop_assert_eq!(got.body_size, header.body_size);
        prop_assert_eq!(got.properties(), header.properties());
        // Re-encoding reuses the received property bytes; re-encoding from the decoded
        // view must give the same bytes too.
        prop_assert_eq!(encoded(&Frame::Header { channel, header: got.clone() }), wire.clone());
        let mut fresh = ContentHeader::new(got.body_size, got.properties().clone());
        fresh.class_id = got.class_id;
        prop_assert_eq!(encoded(&Frame::Header { channel, header: fresh }), wire);
    }

    #[test]
    fn a_borrowed_deliver_encodes_as_the_owned_method(
        channel in any::<u16>(),
        (consumer_tag, exchange, routing_key) in (short_str(), short_str(), short_str()),
        (delivery_tag, redelivered) in (any::<u64>(), any::<bool>()),
        header in content_header(),
        body in vec(any::<u8>(), 0..300),
        frame_max in prop_oneof![Just(0u32), 9u32..200],
    ) {
        let owned = Method::from(BasicDeliver {
            consumer_tag: consumer_tag.clone(),
            delivery_tag,
            redelivered,
            exchange: exchange.clone(),
            routing_key: routing_key.clone(),
        });
        let properties = header.raw_properties();
        let mut want = BytesMut::new();
        encode_content_raw(&mut want, channel, &owned, &properties, &body, frame_max);
        let borrowed = DeliverRef {
            consumer_tag: &consumer_tag,
            delivery_tag,
            redelivered,
            exchange: &exchange,
            routing_key: &routing_key,
        };
        let mut got = BytesMut::new();
        encode_deliver_raw(&mut got, channel, &borrowed, &properties, &body, frame_max);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn a_publish_view_agrees_with_decoding_frame_by_frame(
        channel in any::<u16>(),
        (exchange, routing_key) in (short_str(), short_str()),
        (mandatory, immediate) in (any::<bool>(), any::<bool>()),
        header in content_header(),
        body in vec(any::<u8>(), 0..300),
        frame_max in prop_oneof![Just(0u32), 9u32..400],
        damage in proptest::option::of((any::<Index>(), any::<u8>(), any::<bool>())),
    ) {
        let publish = BasicPublish { exchange, routing_key, mandatory, immediate, ..Default::default() };
        let method = Method::from(publish);
        let header = ContentHeader::new(body.len() as u64, header.properties().clone());
        let mut buf = BytesMut::new();
        encode_content(&mut buf, channel, &method, &header, &body, frame_max);
        // Sometimes cut short or with one byte changed.
        if let Some((at, byte, cut)) = damage {
            let at = at.index(buf.len());
            if cut { buf.truncate(at) } else { buf[at] = byte }
        }
        let view = PublishView::peek(&buf, frame_max);
        let mut rest = buf.clone();
        let mut frames = Vec::new();
        while frames.len() < 3 {
            match decode_frame(&mut rest, frame_max) {
                Ok(Some(frame)) => frames.push(frame),
                _ => break,
            }
        }
        let consumed = buf.len() - rest.len();
        let p = header.properties();
        let inspected = p.headers.is_some() || p.reply_to.is_some() || p.expiration.is_some() || p.user_id.is_some();
        match (&frames[..], view) {
            (
                [Frame::Method { channel: c1, method: Method::BasicPublish(m) }, Frame::Header { channel: c2, header: h }, tail @ ..],
                Some(v),
            ) => {
                let decoded_body: Vec<u8> = tail.iter().take_while(|f| matches!(f, Frame::Body { channel, .. } if *channel == v.channel)).flat_map(|f| match f { Frame::Body { body, .. } => body.to_vec(), _ => Vec::new() }).collect();
                prop_assert_eq!((*c1, *c2), (v.channel, v.channel));
                prop_assert_eq!((m.exchange.as_str(), m.routing_key.as_str()), (v.exchange, v.routing_key));
                prop_assert_eq!((m.mandatory, m.immediate), (v.mandatory, v.immediate));
                prop_assert_eq!(&h.raw_properties()[..], v.properties);
                prop_assert_eq!(h.body_size, v.body.len() as u64);
                prop_assert_eq!(&decoded_body[..], v.body);
                let frames_taken = 2 + usize::from(!v.body.is_empty());
                let mut again = buf.clone();
                for _ in 0..frames_taken {
                    prop_assert!(matches!(decode_frame(&mut again, frame_max), Ok(Some(_))));
                }
                prop_assert_eq!(buf.len() - again.len(), v.len);
                prop_assert!(consumed >= v.len);
            }
            (_, Some(v)) => prop_assert!(false, "the view saw a publish the decoder did not: {v:?}"),
            (_, None) => {
                // The plain case must not be missed: undamaged, nothing inspected, the
                // body in at most one frame.
                let one_body = match frames.get(2) {
                    Some(Frame::Body { body: part, .. }) => part.len() == body.len(),
                    _ => body.is_empty(),
                };
                let whole = damage.is_none() && frames.len() >= 2 && one_body;
                prop_assert!(!whole || inspected, "a plain publish was missed");
            }
        }
    }

    #[test]
    fn nested_tables_round_trip_inside_a_method(table in field_table()) {
        let frame = Frame::method(1, QueueDeclare { arguments: table, ..Default::default() });
        let mut buf = encoded(&frame);
        prop_assert_eq!(decode_frame(&mut buf, 0), Ok(Some(frame)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn frames_split_anywhere_decode_the_same(
        frames in vec(frame(), 1..12),
        cuts in vec(any::<Index>(), 0..16),
    ) {
        let mut wire = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut wire);
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        points.extend([0, wire.len()]);
        points.sort_unstable();
        points.dedup();

        let mut codec = FrameCodec::new(FRAME_MAX);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for span in points.windows(2) {
            buf.extend_from_slice(&wire[span[0]..span[1]]);
            while let Some(frame) = codec.decode(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))? {
                out.push(normalized(&frame));
            }
        }
        prop_assert!(buf.is_empty(), "{} bytes left over", buf.len());
        let expected: Vec<Frame> = frames.iter().map(normalized).collect();
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn every_strict_prefix_is_incomplete(frame in frame(), frame_max in prop_oneof![Just(0), Just(FRAME_MAX)]) {
        let full = encoded(&frame);
        let mut part = BytesMut::with_capacity(full.len());
        for &byte in &full[..] {
            prop_assert_eq!(decode_frame(&mut part, frame_max), Ok(None), "prefix of {} bytes", part.len());
            part.put_u8(byte);
        }
        let decoded = decode_frame(&mut part, frame_max).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded.as_ref().map(normalized), Some(normalized(&frame)));
        prop_assert!(part.is_empty());
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
        decode_until_stuck(&bytes, FRAME_MAX)?;
        decode_until_stuck(&bytes, 0)?;
    }

    /// Random payloads inside a well-formed envelope, so the method, header and table
    /// decoders (not just the frame header check) see garbage.
    #[test]
    fn random_payloads_never_panic(
        kind in prop_oneof![Just(1u8), Just(2), Just(3), Just(8), any::<u8>()],
        channel in any::<u16>(),
        method in method(),
        payload in vec(any::<u8>(), 0..512),
    ) {
        let mut frame = BytesMut::new();
        frame.put_u8(kind);
        frame.put_u16(channel);
        // Known class and method ids half the time, so argument decoders run.
        let ids_len = if payload.first().is_some_and(|b| b & 1 == 0) { 4 } else { 0 };
        frame.put_u32((ids_len + payload.len()) as u32);
        if ids_len == 4 {
            frame.put_u16(method.class_id());
            frame.put_u16(method.method_id());
        }
        frame.put_slice(&payload);
        frame.put_u8(FRAME_END);
        decode_until_stuck(&frame, FRAME_MAX)?;
        decode_until_stuck(&frame, 0)?;
    }

    #[test]
    fn mutated_frames_never_panic(
        frames in vec(frame(), 1..4),
        edits in vec((any::<Index>(), any::<u8>(), 0..3u8), 1..8),
        cut in any::<Index>(),
    ) {
        let mut bytes = Vec::new();
        for frame in &frames {
            bytes.extend_from_slice(&encoded(frame));
        }
        for (at, byte, op) in edits {
            let at = at.index(bytes.len() + 1);
            match op {
                0 if at < bytes.len() => bytes[at] = byte,
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, byte),
            }
        }
        let len = cut.index(bytes.len() + 1);
        decode_until_stuck(&bytes, FRAME_MAX)?;
        decode_until_stuck(&bytes, 0)?;
        decode_until_stuck(&bytes[..len], FRAME_MAX)?;
    }
}
