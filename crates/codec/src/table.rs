//! Field tables and arrays, with the value types RabbitMQ and real clients use
//! (which differ from the 0-9-1 spec's letters; see `shared/spec/README.md`).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::short_str::ShortStr;
use crate::wire::{Reader, Writer, long_len};

/// Tables nested deeper than this are refused: a frame of a few KiB could otherwise
/// nest thousands of levels and exhaust the decoder's stack.
const MAX_DEPTH: usize = 64;

/// Capacity to start a table's or array's vector with, guessed from its byte length and
/// a typical encoded size per item (a short key, a type letter and a small value). Growing
/// from empty reallocates and copies several times for a table of a dozen entries; the
/// cap bounds what a large frame can make us reserve before any item has been read.
fn capacity_hint(bytes: usize, typical_item: usize) -> usize {
    (bytes / typical_item).min(64)
}

/// One value in a field table or array, tagged on the wire by a type letter.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `t`: boolean.
    Bool(bool),
    /// `b`: signed 8-bit.
    I8(i8),
    /// `B`: unsigned 8-bit.
    U8(u8),
    /// `s`: signed 16-bit.
    I16(i16),
    /// `u`: unsigned 16-bit.
    U16(u16),
    /// `I`: signed 32-bit.
    I32(i32),
    /// `i`: unsigned 32-bit.
    U32(u32),
    /// `l`: signed 64-bit.
    I64(i64),
    /// `f`: 32-bit float.
    F32(f32),
    /// `d`: 64-bit float.
    F64(f64),
    /// `D`: decimal, `value / 10^scale`.
    Decimal {
        /// Number of decimal digits after the point.
        scale: u8,
        /// The unscaled value.
        value: u32,
    },
    /// `S`: long string (bytes; usually but not necessarily UTF-8).
    LongStr(Bytes),
    /// `x`: byte array.
    Bytes(Bytes),
    /// `A`: array of values.
    Array(Vec<FieldValue>),
    /// `T`: timestamp, seconds since the epoch.
    Timestamp(u64),
    /// `F`: nested table.
    Table(FieldTable),
    /// `V`: no value.
    Void,
}

impl FieldValue {
    /// The wire type letter.
    pub fn type_letter(&self) -> u8 {
        match self {
            FieldValue::Bool(_) => b't',
            FieldValue::I8(_) => b'b',
            FieldValue::U8(_) => b'B',
            FieldValue::I16(_) => b's',
            FieldValue::U16(_) => b'u',
            FieldValue::I32(_) => b'I',
            FieldValue::U32(_) => b'i',
            FieldValue::I64(_) => b'l',
            FieldValue::F32(_) => b'f',
            FieldValue::F64(_) => b'd',
            FieldValue::Decimal { .. } => b'D',
            FieldValue::LongStr(_) => b'S',
            FieldValue::Bytes(_) => b'x',
            FieldValue::Array(_) => b'A',
            FieldValue::Timestamp(_) => b'T',
            FieldValue::Table(_) => b'F',
            FieldValue::Void => b'V',
        }
    }

    /// The name RabbitMQ's table parser gives the type (`signedint`, `longstr`, ...),
    /// which its error texts print.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldValue::Bool(_) => "bool",
            FieldValue::I8(_) => "byte",
            FieldValue::U8(_) => "unsignedbyte",
            FieldValue::I16(_) => "short",
            FieldValue::U16(_) => "unsignedshort",
            FieldValue::I32(_) => "signedint",
            FieldValue::U32(_) => "unsignedint",
            FieldValue::I64(_) => "long",
            FieldValue::F32(_) => "float",
            FieldValue::F64(_) => "double",
            FieldValue::Decimal { .. } => "decimal",
            FieldValue::LongStr(_) => "longstr",
            FieldValue::Bytes(_) => "binary",
            FieldValue::Array(_) => "array",
            FieldValue::Timestamp(_) => "timestamp",
            FieldValue::Table(_) => "table",
            FieldValue::Void => "void",
        }
    }

    /// The value as a signed integer, for any integer type.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            FieldValue::I8(v) => Some(i64::from(v)),
            FieldValue::U8(v) => Some(i64::from(v)),
            FieldValue::I16(v) => Some(i64::from(v)),
            FieldValue::U16(v) => Some(i64::from(v)),
            FieldValue::I32(v) => Some(i64::from(v)),
            FieldValue::U32(v) => Some(i64::from(v)),
            FieldValue::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The value as text, for a long string that is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::LongStr(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// A long string value from text.
    pub fn string(s: impl Into<String>) -> Self {
        FieldValue::LongStr(Bytes::from(s.into()))
    }

    fn decode(r: &mut Reader<'_>, depth: usize) -> Result<FieldValue, DecodeError> {
        let letter = r.u8()?;
        Ok(match letter {
            b't' => FieldValue::Bool(r.u8()? != 0),
            b'b' => FieldValue::I8(r.u8()? as i8),
            b'B' => FieldValue::U8(r.u8()?),
            b's' => FieldValue::I16(r.u16()? as i16),
            b'u' => FieldValue::U16(r.u16()?),
            b'I' => FieldValue::I32(r.u32()? as i32),
            b'i' => FieldValue::U32(r.u32()?),
            b'l' => FieldValue::I64(r.u64()? as i64),
            b'f' => FieldValue::F32(f32::from_bits(r.u32()?)),
            b'd' => FieldValue::F64(f64::from_bits(r.u64()?)),
            b'D' => FieldValue::Decimal {
                scale: r.u8()?,
                value: r.u32()?,
            },
            b'S' => FieldValue::LongStr(r.long_str()?),
            b'x' => FieldValue::Bytes(r.long_str()?),
            b'A' => FieldValue::Array(decode_array(r.nested("field array")?, depth + 1)?),
            b'T' => FieldValue::Timestamp(r.u64()?),
            b'F' => FieldValue::Table(FieldTable::decode_body(
                r.nested("field table")?,
                depth + 1,
            )?),
            b'V' => FieldValue::Void,
            other => return Err(DecodeError::UnknownFieldType(char::from(other))),
        })
    }

    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(self.type_letter());
        match self {
            FieldValue::Bool(v) => buf.put_u8(u8::from(*v)),
            FieldValue::I8(v) => buf.put_i8(*v),
            FieldValue::U8(v) => buf.put_u8(*v),
            FieldValue::I16(v) => buf.put_i16(*v),
            FieldValue::U16(v) => buf.put_u16(*v),
            FieldValue::I32(v) => buf.put_i32(*v),
            FieldValue::U32(v) => buf.put_u32(*v),
            FieldValue::I64(v) => buf.put_i64(*v),
            FieldValue::F32(v) => buf.put_f32(*v),
            FieldValue::F64(v) => buf.put_f64(*v),
            FieldValue::Decimal { scale, value } => {
                buf.put_u8(*scale);
                buf.put_u32(*value);
            }
            FieldValue::LongStr(b) | FieldValue::Bytes(b) => Writer::new(buf).long_str(b),
            FieldValue::Array(values) => {
                let start = begin_length(buf);
                for v in values {
                    v.encode(buf);
                }
                end_length(buf, start);
            }
            FieldValue::Timestamp(v) => buf.put_u64(*v),
            FieldValue::Table(t) => t.encode(buf),
            FieldValue::Void => {}
        }
    }
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> Self {
        FieldValue::LongStr(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        FieldValue::Bool(v)
    }
}

impl From<i32> for FieldValue {
    fn from(v: i32) -> Self {
        FieldValue::I32(v)
    }
}

impl From<i64> for FieldValue {
    fn from(v: i64) -> Self {
        FieldValue::I64(v)
    }
}

impl From<FieldTable> for FieldValue {
    fn from(v: FieldTable) -> Self {
        FieldValue::Table(v)
    }
}

fn decode_array(mut r: Reader<'_>, depth: usize) -> Result<Vec<FieldValue>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let mut values = Vec::with_capacity(capacity_hint(r.remaining(), 5));
    while r.remaining() > 0 {
        values.push(FieldValue::decode(&mut r, depth)?);
    }
    Ok(values)
}

/// Reserves a u32 length and returns where the counted bytes start.
fn begin_length(buf: &mut BytesMut) -> usize {
    buf.put_u32(0);
    buf.len()
}

/// Writes the length of everything after `start` into the u32 before it.
fn end_length(buf: &mut BytesMut, start: usize) {
    let len = long_len(buf.len() - start).to_be_bytes();
    buf[start - 4..start].copy_from_slice(&len);
}

/// A field table: named values, kept in the order they arrived.
///
/// Order is kept (not a map) so a table passes through the broker byte for byte, and
/// lookups are linear because real tables hold a handful of entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldTable(Vec<(ShortStr, FieldValue)>);

impl FieldTable {
    /// An empty table.
    pub fn new() -> Self {
        FieldTable(Vec::new())
    }

    /// Sorts the entries by key, bytewise, keeping the order of repeated keys: the order
    /// RabbitMQ keeps tables in, and a canonical form for comparing them.
    pub fn sort_keys(&mut self) {
        self.0
            .sort_by(|a, b| a.0.as_bytes().as_ref().cmp(b.0.as_bytes().as_ref()));
    }

    /// The value under `key`, if any (the first, should a peer send a key twice).
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` to `value`, replacing an existing entry in place or appending.
    pub fn insert(&mut self, key: impl Into<ShortStr>, value: impl Into<FieldValue>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<FieldValue> {
        let index = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(index).1)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&ShortStr, &FieldValue)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Decodes a table's entries (without the leading length).
    pub fn decode_entries(bytes: &Bytes) -> Result<FieldTable, DecodeError> {
        FieldTable::decode_body(Reader::new(bytes, "field table"), 0)
    }

    /// Decodes the entries `r` is bounded to.
    pub(crate) fn decode_body(mut r: Reader<'_>, depth: usize) -> Result<FieldTable, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let mut entries = Vec::with_capacity(capacity_hint(r.remaining(), 8));
        while r.remaining() > 0 {
            let key = r.short_str()?;
            let value = FieldValue::decode(&mut r, depth)?;
            entries.push((key, value));
        }
        Ok(FieldTable(entries))
    }

    /// Encodes the table with its leading u32 length.
    pub fn encode(&self, buf: &mut BytesMut) {
        let start = begin_length(buf);
        self.encode_entries(buf);
        end_length(buf, start);
    }

    /// Encodes the entries without the leading length (as AMQPLAIN responses are sent).
    pub fn encode_entries(&self, buf: &mut BytesMut) {
        for (key, value) in &self.0 {
            Writer::new(buf).short_str(key);
            value.encode(buf);
        }
    }
}

impl FromIterator<(ShortStr, FieldValue)> for FieldTable {
    fn from_iter<I: IntoIterator<Item = (ShortStr, FieldValue)>>(iter: I) -> Self {
        FieldTable(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a FieldTable {
    type Item = &'a (ShortStr, FieldValue);
    type IntoIter = std::slice::Iter<'a, (ShortStr, FieldValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(table: &FieldTable) -> Result<FieldTable, DecodeError> {
        let mut buf = BytesMut::new();
        table.encode(&mut buf);
        let bytes = buf.freeze();
        let mut r = Reader::new(&bytes, "test");
        let decoded = r.table()?;
        r.finish()?;
        Ok(decoded)
    }

    #[test]
    fn every_value_type_round_trips() {
        let mut nested = FieldTable::new();
        nested.insert("inner", FieldValue::Void);
        let mut t = FieldTable::new();
        let values = [
            FieldValue::Bool(true),
            FieldValue::I8(-3),
            FieldValue::U8(250),
            FieldValue::I16(-300),
            FieldValue::U16(60000),
            FieldValue::I32(-70000),
            FieldValue::U32(4_000_000_000),
            FieldValue::I64(-5_000_000_000),
            FieldValue::F32(1.5),
            FieldValue::F64(-2.25),
            FieldValue::Decimal {
                scale: 2,
                value: 314,
            },
            FieldValue::string("text"),
            FieldValue::Bytes(Bytes::from_static(&[0, 1, 2])),
            FieldValue::Array(vec![FieldValue::I32(1), FieldValue::string("a")]),
            FieldValue::Timestamp(1_700_000_000),
            FieldValue::Table(nested),
            FieldValue::Void,
        ];
        for (i, v) in values.into_iter().enumerate() {
            t.insert(format!("k{i}"), v);
        }
        assert_eq!(round_trip(&t), Ok(t));
    }

    #[test]
    fn signed_16_bit_is_s_not_a_short_string() {
        let mut t = FieldTable::new();
        t.insert("n", FieldValue::I16(-2));
        let mut buf = BytesMut::new();
        t.encode(&mut buf);
        assert_eq!(&buf[..], &[0, 0, 0, 5, 1, b'n', b's', 0xff, 0xfe]);
    }

    #[test]
    fn order_is_kept_and_insert_replaces_in_place() {
        let mut t = FieldTable::new();
        t.insert("b", 1);
        t.insert("a", 2);
        t.insert("b", 3);
        let keys: Vec<&str> = t.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(t.get("b"), Some(&FieldValue::I32(3)));
        let mut unsorted: FieldTable = [("b", 1), ("a", 2), ("b", 3)]
            .into_iter()
            .map(|(k, v)| (ShortStr::from(k), FieldValue::I32(v)))
            .collect();
        unsorted.sort_keys();
        let order: Vec<(&str, i32)> = unsorted
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_i64().unwrap_or(0) as i32))
            .collect();
        assert_eq!(order, [("a", 2), ("b", 1), ("b", 3)]);
        assert_eq!(t.remove("b"), Some(FieldValue::I32(3)));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn unknown_type_letter_is_an_error() {
        let bytes = Bytes::from_static(&[1, b'k', b'Z']);
        assert_eq!(
            FieldTable::decode_entries(&bytes),
            Err(DecodeError::UnknownFieldType('Z'))
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut t = FieldTable::new();
        for _ in 0..200 {
            let mut outer = FieldTable::new();
            outer.insert("t", t);
            t = outer;
        }
        assert_eq!(round_trip(&t), Err(DecodeError::TooDeep));
    }
}
