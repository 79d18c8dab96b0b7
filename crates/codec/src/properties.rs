//! The content header: body size and the basic class's 14 properties.
//!
//! The header keeps the property bytes exactly as they arrived beside the decoded view,
//! so a broker forwards them to consumers without re-encoding; changing a property
//! through [`ContentHeader::properties_mut`] drops the raw bytes.

use bytes::{Bytes, BytesMut};

use crate::error::DecodeError;
use crate::short_str::ShortStr;
use crate::table::FieldTable;
use crate::wire::{Reader, Writer};

/// How a property is laid out on the wire, to skip or check it without decoding.
#[derive(Clone, Copy)]
pub(crate) enum Width {
    ShortStr,
    Table,
    Octet,
    LongLong,
}

/// The class id of `basic`, the only class with content in 0-9-1.
pub const BASIC_CLASS_ID: u16 = 60;

/// The properties of a basic message. `None` means absent (its flag bit clear).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BasicProperties {
    /// MIME content type.
    pub content_type: Option<ShortStr>,
    /// MIME content encoding.
    pub content_encoding: Option<ShortStr>,
    /// Application headers.
    pub headers: Option<FieldTable>,
    /// 1 = transient, 2 = persistent.
    pub delivery_mode: Option<u8>,
    /// Priority, 0 to 9 (RabbitMQ accepts up to 255).
    pub priority: Option<u8>,
    /// Application correlation identifier.
    pub correlation_id: Option<ShortStr>,
    /// Address to reply to.
    pub reply_to: Option<ShortStr>,
    /// Per-message TTL in milliseconds, as a decimal string.
    pub expiration: Option<ShortStr>,
    /// Application message identifier.
    pub message_id: Option<ShortStr>,
    /// Message timestamp, seconds since the epoch.
    pub timestamp: Option<u64>,
    /// Message type name.
    pub kind: Option<ShortStr>,
    /// Creating user id; a broker checks it against the authenticated user.
    pub user_id: Option<ShortStr>,
    /// Creating application id.
    pub app_id: Option<ShortStr>,
    /// Reserved; must be absent in 0-9-1 but some clients send it.
    pub cluster_id: Option<ShortStr>,
}

// Property flag bits: the first property is the most significant bit.
const CONTENT_TYPE: u16 = 1 << 15;
const CONTENT_ENCODING: u16 = 1 << 14;
const HEADERS: u16 = 1 << 13;
const DELIVERY_MODE: u16 = 1 << 12;
const PRIORITY: u16 = 1 << 11;
const CORRELATION_ID: u16 = 1 << 10;
const REPLY_TO: u16 = 1 << 9;
const EXPIRATION: u16 = 1 << 8;
const MESSAGE_ID: u16 = 1 << 7;
const TIMESTAMP: u16 = 1 << 6;
const TYPE: u16 = 1 << 5;
const USER_ID: u16 = 1 << 4;
const APP_ID: u16 = 1 << 3;
const CLUSTER_ID: u16 = 1 << 2;
/// Bit 1 is unused and bit 0 announces another flags word, which basic never needs.
pub(crate) const INVALID_BITS: u16 = 0b11;

/// Every property's flag bit and layout, in wire order.
pub(crate) const LAYOUT: [(u16, Width); 14] = [
    (CONTENT_TYPE, Width::ShortStr),
    (CONTENT_ENCODING, Width::ShortStr),
    (HEADERS, Width::Table),
    (DELIVERY_MODE, Width::Octet),
    (PRIORITY, Width::Octet),
    (CORRELATION_ID, Width::ShortStr),
    (REPLY_TO, Width::ShortStr),
    (EXPIRATION, Width::ShortStr),
    (MESSAGE_ID, Width::ShortStr),
    (TIMESTAMP, Width::LongLong),
    (TYPE, Width::ShortStr),
    (USER_ID, Width::ShortStr),
    (APP_ID, Width::ShortStr),
    (CLUSTER_ID, Width::ShortStr),
];

impl BasicProperties {
    /// True when the message asks to be persisted (delivery-mode 2).
    pub fn is_persistent(&self) -> bool {
        self.delivery_mode == Some(2)
    }

    fn flags(&self) -> u16 {
        let mut flags = 0;
        let mut set = |present: bool, bit: u16| {
            if present {
                flags |= bit;
            }
        };
        set(self.content_type.is_some(), CONTENT_TYPE);
        set(self.content_encoding.is_some(), CONTENT_ENCODING);
        set(self.headers.is_some(), HEADERS);
        set(self.delivery_mode.is_some(), DELIVERY_MODE);
        set(self.priority.is_some(), PRIORITY);
        set(self.correlation_id.is_some(), CORRELATION_ID);
        set(self.reply_to.is_some(), REPLY_TO);
        set(self.expiration.is_some(), EXPIRATION);
        set(self.message_id.is_some(), MESSAGE_ID);
        set(self.timestamp.is_some(), TIMESTAMP);
        set(self.kind.is_some(), TYPE);
        set(self.user_id.is_some(), USER_ID);
        set(self.app_id.is_some(), APP_ID);
        set(self.cluster_id.is_some(), CLUSTER_ID);
        flags
    }

    /// Decodes the flags word and property values as [`ContentHeader::raw_properties`]
    /// returns them (and [`BasicProperties::encode`] writes them). Values are shared
    /// slices of `raw`. Errors: truncated or trailing bytes, invalid flags or tables.
    pub fn decode(raw: &Bytes) -> Result<BasicProperties, DecodeError> {
        let mut r = Reader::new(raw, "basic properties");
        let mut properties = BasicProperties::default();
        BasicProperties::decode_into(&mut r, &mut properties)?;
        r.finish()?;
        Ok(properties)
    }

    /// The `priority` property read straight from encoded properties (as
    /// [`ContentHeader::raw_properties`] returns them), skipping the four properties
    /// before it without decoding anything: for a priority queue sorting every message.
    /// `None` when absent or when the bytes are too short.
    pub fn raw_priority(raw: &[u8]) -> Option<u8> {
        raw_octet(raw, PRIORITY)
    }

    /// The `delivery-mode` property (2 = persistent) read from encoded properties the
    /// same way as [`BasicProperties::raw_priority`]: for the store deciding what to keep.
    pub fn raw_delivery_mode(raw: &[u8]) -> Option<u8> {
        raw_octet(raw, DELIVERY_MODE)
    }

    /// Decodes into `p` (all absent on entry), in place: see `ContentHeader::properties`.
    fn decode_into(r: &mut Reader<'_>, p: &mut BasicProperties) -> Result<(), DecodeError> {
        let flags = r.u16()?;
        if flags & INVALID_BITS != 0 {
            return Err(DecodeError::InvalidPropertyFlags(flags));
        }
        let has = |bit: u16| flags & bit != 0;
        if has(CONTENT_TYPE) {
            p.content_type = Some(r.short_str()?);
        }
        if has(CONTENT_ENCODING) {
            p.content_encoding = Some(r.short_str()?);
        }
        if has(HEADERS) {
            p.headers = Some(r.table()?);
        }
        if has(DELIVERY_MODE) {
            p.delivery_mode = Some(r.u8()?);
        }
        if has(PRIORITY) {
            p.priority = Some(r.u8()?);
        }
        if has(CORRELATION_ID) {
            p.correlation_id = Some(r.short_str()?);
        }
        if has(REPLY_TO) {
            p.reply_to = Some(r.short_str()?);
        }
        if has(EXPIRATION) {
            p.expiration = Some(r.short_str()?);
        }
        if has(MESSAGE_ID) {
            p.message_id = Some(r.short_str()?);
        }
        if has(TIMESTAMP) {
            p.timestamp = Some(r.u64()?);
        }
        if has(TYPE) {
            p.kind = Some(r.short_str()?);
        }
        if has(USER_ID) {
            p.user_id = Some(r.short_str()?);
        }
        if has(APP_ID) {
            p.app_id = Some(r.short_str()?);
        }
        if has(CLUSTER_ID) {
            p.cluster_id = Some(r.short_str()?);
        }
        Ok(())
    }

    /// Encodes the flags word and the present properties.
    pub fn encode(&self, buf: &mut BytesMut) {
        let mut w = Writer::new(buf);
        w.u16(self.flags());
        let strs = |w: &mut Writer<'_>, s: &Option<ShortStr>| {
            if let Some(s) = s {
                w.short_str(s);
            }
        };
        strs(&mut w, &self.content_type);
        strs(&mut w, &self.content_encoding);
        if let Some(h) = &self.headers {
            w.table(h);
        }
        if let Some(v) = self.delivery_mode {
            w.u8(v);
        }
        if let Some(v) = self.priority {
            w.u8(v);
        }
        strs(&mut w, &self.correlation_id);
        strs(&mut w, &self.reply_to);
        strs(&mut w, &self.expiration);
        strs(&mut w, &self.message_id);
        if let Some(v) = self.timestamp {
            w.u64(v);
        }
        strs(&mut w, &self.kind);
        strs(&mut w, &self.user_id);
        strs(&mut w, &self.app_id);
        strs(&mut w, &self.cluster_id);
    }
}

/// A content header frame's payload.
///
/// Equality compares class, body size and properties, not how the properties were
/// encoded: a decoded header equals one built from the same values.
#[derive(Debug, Clone)]
pub struct ContentHeader {
    /// The class of the method this content belongs to (60, basic).
    pub class_id: u16,
    /// Total size of the body frames that follow.
    pub body_size: u64,
    /// Boxed: the properties take ~370 bytes inline, which every move of a header (and
    /// of every `Frame`, header or not) would copy; one allocation costs less.
    properties: Box<BasicProperties>,
    /// Flags and property bytes as received, reused when encoding.
    raw_properties: Option<Bytes>,
}

impl PartialEq for ContentHeader {
    fn eq(&self, other: &Self) -> bool {
        self.class_id == other.class_id
            && self.body_size == other.body_size
            && self.properties == other.properties
    }
}

impl ContentHeader {
    /// A header for a basic message.
    pub fn new(body_size: u64, properties: BasicProperties) -> Self {
        ContentHeader {
            class_id: BASIC_CLASS_ID,
            body_size,
            properties: Box::new(properties),
            raw_properties: None,
        }
    }

    /// The decoded properties.
    pub fn properties(&self) -> &BasicProperties {
        &self.properties
    }

    /// The properties for changing; the header is re-encoded from them afterwards.
    pub fn properties_mut(&mut self) -> &mut BasicProperties {
        self.raw_properties = None;
        &mut self.properties
    }

    /// Bytes this header takes on the wire as a frame payload.
    pub fn encoded_len_hint(&self) -> usize {
        12 + self.raw_properties.as_ref().map_or(64, Bytes::len)
    }

    /// The flags word and property bytes: as received, or encoded from the properties.
    /// A broker keeps only these for a stored message (a few dozen bytes instead of the
    /// decoded struct) and writes them back with [`encode_content_raw`](crate::encode_content_raw).
    pub fn raw_properties(&self) -> Bytes {
        match &self.raw_properties {
            Some(raw) => raw.clone(),
            None => {
                let mut buf = BytesMut::new();
                self.properties.encode(&mut buf);
                buf.freeze()
            }
        }
    }

    /// Decodes a header frame's payload.
    pub fn decode(payload: &Bytes) -> Result<ContentHeader, DecodeError> {
        let mut r = Reader::new(payload, "content header");
        let class_id = r.u16()?;
        let _weight = r.u16()?;
        let body_size = r.u64()?;
        let start = r.position();
        let mut properties = Box::<BasicProperties>::default();
        BasicProperties::decode_into(&mut r, &mut properties)?;
        r.finish()?;
        Ok(ContentHeader {
            class_id,
            body_size,
            properties,
            raw_properties: Some(payload.slice(start..)),
        })
    }

    /// Encodes the payload, reusing the received property bytes when unchanged.
    pub fn encode(&self, buf: &mut BytesMut) {
        let mut w = Writer::new(buf);
        w.u16(self.class_id);
        w.u16(0);
        w.u64(self.body_size);
        match &self.raw_properties {
            Some(raw) => w.raw(raw),
            None => self.properties.encode(w.buf()),
        }
    }
}

/// The octet property `target` (delivery mode or priority) of encoded properties,
/// skipping the properties before it without decoding them.
fn raw_octet(raw: &[u8], target: u16) -> Option<u8> {
    let flags = u16::from_be_bytes(*raw.first_chunk::<2>()?);
    if flags & target == 0 {
        return None;
    }
    let mut at = 2;
    for (bit, width) in LAYOUT {
        if bit == target {
            break;
        }
        if flags & bit != 0 {
            at += match width {
                Width::ShortStr => 1 + usize::from(*raw.get(at)?),
                Width::Table => {
                    let len = raw
                        .get(at..at + 4)?
                        .try_into()
                        .ok()
                        .map(u32::from_be_bytes)?;
                    4 + usize::try_from(len).ok()?
                }
                Width::Octet => 1,
                Width::LongLong => 8,
            };
        }
    }
    raw.get(at).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::FieldValue;

    #[test]
    fn raw_priority_is_read_past_the_properties_before_it() {
        let priority = |p: &BasicProperties| {
            let mut raw = BytesMut::new();
            p.encode(&mut raw);
            BasicProperties::raw_priority(&raw)
        };
        assert_eq!(priority(&BasicProperties::default()), None);
        assert_eq!(
            priority(&BasicProperties {
                priority: Some(7),
                ..Default::default()
            }),
            Some(7)
        );
        // full() has content type, encoding, headers and delivery mode before it.
        assert_eq!(priority(&full()), Some(5));
        assert_eq!(BasicProperties::raw_priority(&[0x08]), None);
        assert_eq!(BasicProperties::raw_priority(&[0x88, 0, 9]), None);
    }

    #[test]
    fn raw_delivery_mode_is_read_past_the_headers() {
        let mut raw = BytesMut::new();
        full().encode(&mut raw);
        assert_eq!(
            BasicProperties::raw_delivery_mode(&raw),
            full().delivery_mode
        );
        let mut raw = BytesMut::new();
        BasicProperties::default().encode(&mut raw);
        assert_eq!(BasicProperties::raw_delivery_mode(&raw), None);
    }

    #[test]
    fn raw_properties_decode_back() {
        let mut raw = BytesMut::new();
        full().encode(&mut raw);
        assert_eq!(BasicProperties::decode(&raw.freeze()), Ok(full()));
        let mut payload = BytesMut::new();
        ContentHeader::new(3, full()).encode(&mut payload);
        let raw = ContentHeader::decode(&payload.freeze()).map(|h| h.raw_properties());
        assert_eq!(
            raw.and_then(|raw| BasicProperties::decode(&raw)),
            Ok(full())
        );
        let none = Bytes::from_static(&[0, 0]);
        assert_eq!(
            BasicProperties::decode(&none),
            Ok(BasicProperties::default())
        );
        assert!(BasicProperties::decode(&Bytes::from_static(&[0, 0, 1])).is_err());
        assert!(BasicProperties::decode(&Bytes::from_static(&[0x80, 0, 5])).is_err());
    }

    fn full() -> BasicProperties {
        let mut headers = FieldTable::new();
        headers.insert("x-retries", FieldValue::I32(3));
        BasicProperties {
            content_type: Some("application/json".into()),
            content_encoding: Some("gzip".into()),
            headers: Some(headers),
            delivery_mode: Some(2),
            priority: Some(5),
            correlation_id: Some("c1".into()),
            reply_to: Some("amq.rabbitmq.reply-to".into()),
            expiration: Some("60000".into()),
            message_id: Some("m1".into()),
            timestamp: Some(1_700_000_000),
            kind: Some("order.created".into()),
            user_id: Some("guest".into()),
            app_id: Some("shop".into()),
            cluster_id: Some("c".into()),
        }
    }

    #[test]
    fn all_properties_round_trip() {
        let header = ContentHeader::new(42, full());
        let mut buf = BytesMut::new();
        header.encode(&mut buf);
        let decoded = ContentHeader::decode(&buf.freeze());
        assert_eq!(decoded.as_ref().map(|h| h.properties()), Ok(&full()));
        assert_eq!(decoded.map(|h| h.body_size), Ok(42));
    }

    #[test]
    fn flags_put_the_first_property_in_the_top_bit() {
        let p = BasicProperties {
            content_type: Some("t".into()),
            delivery_mode: Some(2),
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        p.encode(&mut buf);
        assert_eq!(&buf[..], &[0x90, 0x00, 1, b't', 2]);
    }

    #[test]
    fn raw_bytes_are_reused_until_properties_change() {
        // A header whose properties use a non-canonical (but valid) encoding would not
        // survive re-encoding; the raw bytes must be echoed as they came.
        let mut buf = BytesMut::new();
        ContentHeader::new(1, full()).encode(&mut buf);
        let bytes = buf.freeze();
        let mut header = ContentHeader::decode(&bytes)
            .unwrap_or_else(|_| ContentHeader::new(0, BasicProperties::default()));
        let mut out = BytesMut::new();
        header.encode(&mut out);
        assert_eq!(out, bytes);

        header.properties_mut().priority = Some(1);
        let mut out = BytesMut::new();
        header.encode(&mut out);
        let reread = ContentHeader::decode(&out.freeze());
        assert_eq!(reread.map(|h| h.properties().priority), Ok(Some(1)));
    }

    #[test]
    fn continuation_flag_is_refused() {
        let payload = Bytes::from_static(&[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01]);
        assert_eq!(
            ContentHeader::decode(&payload),
            Err(DecodeError::InvalidPropertyFlags(1))
        );
    }
}
