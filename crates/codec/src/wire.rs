//! Primitive AMQP types on the wire: a reader over a complete payload and a writer.
//!
//! The reader works on a whole frame payload (the frame decoder has already waited for
//! all of it), so running out of bytes here is a syntax error, not "need more".
//! Strings and byte fields are returned as slices of the payload's `Bytes`: no copies.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::short_str::ShortStr;
use crate::table::FieldTable;

/// Reads fields from one payload, or from a length-delimited part of it (a field table
/// or array inside it). Consecutive bits share an octet, low bit first.
///
/// Invariant: `pos <= end <= buf.len()`. A nested table is read by a reader bounded to
/// its bytes rather than over a `Bytes` slice of them: slicing costs a reference-count
/// increment and decrement, on the hot path of every content header.
pub(crate) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
    /// The octet holding pending bits and the index of the next bit in it (8 = none left).
    bits: u8,
    bit_index: u8,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; `what` names the payload in error messages.
    pub(crate) fn new(buf: &'a Bytes, what: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
            bits: 0,
            bit_index: 8,
            what,
        }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    /// The next `len` bytes as a range of `buf`, consumed.
    fn range(&mut self, len: usize) -> Result<(usize, usize), DecodeError> {
        self.bit_index = 8;
        let start = self.pos;
        let end = start
            .checked_add(len)
            .filter(|end| *end <= self.end)
            .ok_or(DecodeError::Truncated(self.what))?;
        self.pos = end;
        Ok((start, end))
    }

    /// The next `N` bytes, consumed. Plain slicing rather than nom: the reader runs for
    /// every field of every frame, and this compiles to a bounds check and a load.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.bit_index = 8;
        let bytes = self
            .buf
            .get(self.pos..self.end)
            .and_then(<[u8]>::first_chunk::<N>)
            .ok_or(DecodeError::Truncated(self.what))?;
        self.pos += N;
        Ok(*bytes)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    pub(crate) fn bit(&mut self) -> Result<bool, DecodeError> {
        if self.bit_index >= 8 {
            self.bits = self.u8()?;
            self.bit_index = 0;
        }
        let bit = self.bits & (1 << self.bit_index) != 0;
        self.bit_index += 1;
        Ok(bit)
    }

    /// `len` bytes as a shared slice.
    pub(crate) fn bytes(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        let (start, end) = self.range(len)?;
        Ok(self.buf.slice(start..end))
    }

    pub(crate) fn short_str(&mut self) -> Result<ShortStr, DecodeError> {
        let len = self.u8()?;
        let (start, end) = self.range(usize::from(len))?;
        ShortStr::from_bytes(self.buf.slice(start..end))
    }

    fn long_len(&mut self) -> Result<usize, DecodeError> {
        let len = self.u32()?;
        usize::try_from(len).map_err(|_| DecodeError::Truncated(self.what))
    }

    pub(crate) fn long_str(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.long_len()?;
        self.bytes(len)
    }

    /// A reader over the next long-string-delimited part (a table or an array), consumed;
    /// `what` names that part in its errors.
    pub(crate) fn nested(&mut self, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        let len = self.long_len()?;
        let (start, end) = self.range(len)?;
        Ok(Reader {
            buf: self.buf,
            pos: start,
            end,
            bits: 0,
            bit_index: 8,
            what,
        })
    }

    pub(crate) fn table(&mut self) -> Result<FieldTable, DecodeError> {
        FieldTable::decode_body(self.nested("field table")?, 0)
    }

    /// Fails when bytes are left over after the last field.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.what))
        }
    }
}

/// Writes fields into a buffer, packing consecutive bits into one octet.
pub(crate) struct Writer<'a> {
    buf: &'a mut BytesMut,
    /// Position of the octet collecting bits, and the next bit index in it (8 = none open).
    bit_pos: usize,
    bit_index: u8,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut BytesMut) -> Self {
        Writer {
            buf,
            bit_pos: 0,
            bit_index: 8,
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.bit_index = 8;
        self.buf.put_u8(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.bit_index = 8;
        self.buf.put_u16(v);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bit_index = 8;
        self.buf.put_u32(v);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.bit_index = 8;
        self.buf.put_u64(v);
    }

    pub(crate) fn bit(&mut self, v: bool) {
        if self.bit_index >= 8 {
            self.bit_pos = self.buf.len();
            self.buf.put_u8(0);
            self.bit_index = 0;
        }
        if v {
            self.buf[self.bit_pos] |= 1 << self.bit_index;
        }
        self.bit_index += 1;
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.bit_index = 8;
        self.buf.put_slice(bytes);
    }

    pub(crate) fn short_str(&mut self, s: &ShortStr) {
        // ShortStr guarantees at most 255 bytes.
        self.u8(s.len() as u8);
        self.raw(s.as_bytes());
    }

    pub(crate) fn long_str(&mut self, bytes: &[u8]) {
        self.u32(long_len(bytes.len()));
        self.raw(bytes);
    }

    pub(crate) fn table(&mut self, table: &FieldTable) {
        self.bit_index = 8;
        table.encode(self.buf);
    }

    pub(crate) fn buf(&mut self) -> &mut BytesMut {
        self.bit_index = 8;
        self.buf
    }
}

/// A length as the u32 the wire carries. Frames are limited far below 4 GiB by
/// frame-max, so a longer value can only come from a caller bug; saturate rather than wrap.
pub(crate) fn long_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_bits_share_an_octet_low_bit_first() {
        let mut buf = BytesMut::new();
        let mut w = Writer::new(&mut buf);
        w.bit(true);
        w.bit(false);
        w.bit(true);
        w.u8(7);
        w.bit(true);
        assert_eq!(&buf[..], &[0b101, 7, 1]);

        let bytes = buf.freeze();
        let mut r = Reader::new(&bytes, "test");
        assert!(r.bit().unwrap_or_default());
        assert!(!r.bit().unwrap_or(true));
        assert!(r.bit().unwrap_or_default());
        assert_eq!(r.u8(), Ok(7));
        assert!(r.bit().unwrap_or_default());
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn reading_past_the_end_is_truncated() {
        let bytes = Bytes::from_static(&[0, 5, b'a']);
        let mut r = Reader::new(&bytes, "test");
        assert_eq!(r.u16(), Ok(5));
        assert_eq!(r.u16(), Err(DecodeError::Truncated("test")));
        let bytes = Bytes::from_static(&[0, 0, 0, 9, b'a']);
        let mut r = Reader::new(&bytes, "test");
        assert_eq!(r.long_str(), Err(DecodeError::Truncated("test")));
    }
}
