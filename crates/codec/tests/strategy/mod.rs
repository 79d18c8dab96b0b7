//! proptest strategies for every codec value: field values and tables, short strings,
//! basic properties, content headers, every method, and whole frames.
//!
//! The method strategies are generated from a field list that mirrors the `methods!`
//! declarations in `src/method/*.rs`: a missing or mistyped field is a compile error, and
//! [`assert_every_variant_listed`] fails to compile when a `Method` variant is missing.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::Union;
use warren_codec::*;

/// A short string of up to 255 bytes: mostly ASCII (the common case, and long enough to
/// hit the limit), sometimes any Unicode cut to 255 bytes on a character boundary.
pub fn short_str() -> impl Strategy<Value = ShortStr> {
    prop_oneof![
        3 => vec(prop::char::range(' ', '~'), 0..=255),
        1 => vec(any::<char>(), 0..=128),
    ]
    .prop_map(|chars| ShortStr::from(chars.into_iter().collect::<String>()))
}

/// Arbitrary bytes for a long string or byte array.
pub fn long_str(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// NaN never equals itself, so a NaN bit pattern becomes a fixed finite value; every
/// other pattern (infinities, subnormals, -0.0) is kept.
fn f32_not_nan(bits: u32) -> f32 {
    let v = f32::from_bits(bits);
    if v.is_nan() { 1.5 } else { v }
}

fn f64_not_nan(bits: u64) -> f64 {
    let v = f64::from_bits(bits);
    if v.is_nan() { -2.25 } else { v }
}

/// A field value of any of the 17 types, arrays and tables nested a few levels deep.
pub fn field_value() -> impl Strategy<Value = FieldValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        any::<u32>().prop_map(|b| FieldValue::F32(f32_not_nan(b))),
        any::<u64>().prop_map(|b| FieldValue::F64(f64_not_nan(b))),
        (any::<u8>(), any::<u32>()).prop_map(|(scale, value)| FieldValue::Decimal { scale, value }),
        long_str(64).prop_map(FieldValue::LongStr),
        long_str(64).prop_map(FieldValue::Bytes),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(FieldValue::Array),
            vec((short_str(), inner), 0..6)
                .prop_map(|entries| FieldValue::Table(entries.into_iter().collect())),
        ]
    })
}

/// A field table. Keys may repeat: the codec keeps entries in order, duplicates included.
pub fn field_table() -> impl Strategy<Value = FieldTable> {
    vec((short_str(), field_value()), 0..8).prop_map(|entries| entries.into_iter().collect())
}

/// Basic properties with each of the 14 independently present or absent.
pub fn properties() -> impl Strategy<Value = BasicProperties> {
    let s = || option::of(short_str());
    (
        (
            s(),
            s(),
            option::of(field_table()),
            option::of(any::<u8>()),
            option::of(any::<u8>()),
            s(),
            s(),
        ),
        (s(), s(), option::of(any::<u64>()), s(), s(), s(), s()),
    )
        .prop_map(
            |(
                (
                    content_type,
                    content_encoding,
                    headers,
                    delivery_mode,
                    priority,
                    correlation_id,
                    reply_to,
                ),
                (expiration, message_id, timestamp, kind, user_id, app_id, cluster_id),
            )| BasicProperties {
                content_type,
                content_encoding,
                headers,
                delivery_mode,
                priority,
                correlation_id,
                reply_to,
                expiration,
                message_id,
                timestamp,
                kind,
                user_id,
                app_id,
                cluster_id,
            },
        )
}

/// A content header, usually of class basic (60) but the codec accepts any class id.
pub fn content_header() -> impl Strategy<Value = ContentHeader> {
    (
        prop_oneof![3 => Just(BASIC_CLASS_ID), 1 => any::<u16>()],
        any::<u64>(),
        properties(),
    )
        .prop_map(|(class_id, body_size, properties)| {
            let mut header = ContentHeader::new(body_size, properties);
            header.class_id = class_id;
            header
        })
}

macro_rules! field {
    (octet) => {
        any::<u8>()
    };
    (short) => {
        any::<u16>()
    };
    (long) => {
        any::<u32>()
    };
    (longlong) => {
        any::<u64>()
    };
    (bit) => {
        any::<bool>()
    };
    (shortstr) => {
        short_str()
    };
    (longstr) => {
        long_str(300)
    };
    (table) => {
        field_table()
    };
}

macro_rules! method_strategy {
    ($name:ident {}) => {
        Just(Method::from($name {})).boxed()
    };
    ($name:ident { $($field:ident: $kind:ident),+ }) => {
        ($(field!($kind),)+)
            .prop_map(|($($field,)+)| Method::from($name { $($field),+ }))
            .boxed()
    };
}

macro_rules! methods {
    ($($name:ident { $($field:ident: $kind:ident),* $(,)? })*) => {
        /// How many methods the list has.
        pub const METHOD_COUNT: usize = [$(stringify!($name)),*].len();

        /// One strategy per method, in declaration order.
        pub fn method_strategies() -> Vec<BoxedStrategy<Method>> {
            vec![$(method_strategy!($name { $($field: $kind),* }),)*]
        }

        /// Does not compile when `Method` gains a variant this list lacks.
        pub fn assert_every_variant_listed(method: &Method) {
            match method {
                $(Method::$name(_) => {})*
            }
        }
    };
}

methods! {
    ConnectionStart { version_major: octet, version_minor: octet, server_properties: table, mechanisms: longstr, locales: longstr }
    ConnectionStartOk { client_properties: table, mechanism: shortstr, response: longstr, locale: shortstr }
    ConnectionSecure { challenge: longstr }
    ConnectionSecureOk { response: longstr }
    ConnectionTune { channel_max: short, frame_max: long, heartbeat: short }
    ConnectionTuneOk { channel_max: short, frame_max: long, heartbeat: short }
    ConnectionOpen { virtual_host: shortstr, reserved_1: shortstr, reserved_2: bit }
    ConnectionOpenOk { reserved_1: shortstr }
    ConnectionClose { reply_code: short, reply_text: shortstr, class_id: short, method_id: short }
    ConnectionCloseOk {}
    ConnectionBlocked { reason: shortstr }
    ConnectionUnblocked {}
    ConnectionUpdateSecret { new_secret: longstr, reason: shortstr }
    ConnectionUpdateSecretOk {}
    AccessRequest { realm: shortstr, exclusive: bit, passive: bit, active: bit, write: bit, read: bit }
    AccessRequestOk { ticket: short }
    ChannelOpen { reserved_1: shortstr }
    ChannelOpenOk { reserved_1: longstr }
    ChannelFlow { active: bit }
    ChannelFlowOk { active: bit }
    ChannelClose { reply_code: short, reply_text: shortstr, class_id: short, method_id: short }
    ChannelCloseOk {}
    ExchangeDeclare { ticket: short, exchange: shortstr, kind: shortstr, passive: bit, durable: bit, auto_delete: bit, internal: bit, no_wait: bit, arguments: table }
    ExchangeDeclareOk {}
    ExchangeDelete { ticket: short, exchange: shortstr, if_unused: bit, no_wait: bit }
    ExchangeDeleteOk {}
    ExchangeBind { ticket: short, destination: shortstr, source: shortstr, routing_key: shortstr, no_wait: bit, arguments: table }
    ExchangeBindOk {}
    ExchangeUnbind { ticket: short, destination: shortstr, source: shortstr, routing_key: shortstr, no_wait: bit, arguments: table }
    ExchangeUnbindOk {}
    QueueDeclare { ticket: short, queue: shortstr, passive: bit, durable: bit, exclusive: bit, auto_delete: bit, no_wait: bit, arguments: table }
    QueueDeclareOk { queue: shortstr, message_count: long, consumer_count: long }
    QueueBind { ticket: short, queue: shortstr, exchange: shortstr, routing_key: shortstr, no_wait: bit, arguments: table }
    QueueBindOk {}
    QueueUnbind { ticket: short, queue: shortstr, exchange: shortstr, routing_key: shortstr, arguments: table }
    QueueUnbindOk {}
    QueuePurge { ticket: short, queue: shortstr, no_wait: bit }
    QueuePurgeOk { message_count: long }
    QueueDelete { ticket: short, queue: shortstr, if_unused: bit, if_empty: bit, no_wait: bit }
    QueueDeleteOk { message_count: long }
    BasicQos { prefetch_size: long, prefetch_count: short, global: bit }
    BasicQosOk {}
    BasicConsume { ticket: short, queue: shortstr, consumer_tag: shortstr, no_local: bit, no_ack: bit, exclusive: bit, no_wait: bit, arguments: table }
    BasicConsumeOk { consumer_tag: shortstr }
    BasicCancel { consumer_tag: shortstr, no_wait: bit }
    BasicCancelOk { consumer_tag: shortstr }
    BasicPublish { ticket: short, exchange: shortstr, routing_key: shortstr, mandatory: bit, immediate: bit }
    BasicReturn { reply_code: short, reply_text: shortstr, exchange: shortstr, routing_key: shortstr }
    BasicDeliver { consumer_tag: shortstr, delivery_tag: longlong, redelivered: bit, exchange: shortstr, routing_key: shortstr }
    BasicGet { ticket: short, queue: shortstr, no_ack: bit }
    BasicGetOk { delivery_tag: longlong, redelivered: bit, exchange: shortstr, routing_key: shortstr, message_count: long }
    BasicGetEmpty { reserved_1: shortstr }
    BasicAck { delivery_tag: longlong, multiple: bit }
    BasicReject { delivery_tag: longlong, requeue: bit }
    BasicRecoverAsync { requeue: bit }
    BasicRecover { requeue: bit }
    BasicRecoverOk {}
    BasicNack { delivery_tag: longlong, multiple: bit, requeue: bit }
    TxSelect {}
    TxSelectOk {}
    TxCommit {}
    TxCommitOk {}
    TxRollback {}
    TxRollbackOk {}
    ConfirmSelect { nowait: bit }
    ConfirmSelectOk {}
}

/// Any method, each equally likely.
pub fn method() -> impl Strategy<Value = Method> {
    Union::new(method_strategies())
}

/// Any frame: a method, a content header, a body or a heartbeat, on any channel.
pub fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        4 => (any::<u16>(), method()).prop_map(|(channel, method)| Frame::Method { channel, method }),
        2 => (any::<u16>(), content_header()).prop_map(|(channel, header)| Frame::Header { channel, header }),
        2 => (any::<u16>(), long_str(2048)).prop_map(|(channel, body)| Frame::Body { channel, body }),
        1 => Just(Frame::Heartbeat),
    ]
}

/// The frame with a content header's received property bytes dropped, so that a decoded
/// frame compares equal to the one it was encoded from (`ContentHeader`'s `PartialEq`
/// also compares whether raw bytes are kept).
pub fn normalized(frame: &Frame) -> Frame {
    match frame {
        Frame::Header { channel, header } => {
            let mut fresh = ContentHeader::new(header.body_size, header.properties().clone());
            fresh.class_id = header.class_id;
            Frame::Header {
                channel: *channel,
                header: fresh,
            }
        }
        other => other.clone(),
    }
}
