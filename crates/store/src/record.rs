//! Record framing: `[u32 length][u32 CRC32C][body]`, little-endian, where the body is a
//! type byte and its fields. The checksum covers the body, so a torn write at the tail
//! (a short length, a partial body, zeros from a lost page) is detected and cut, never
//! read as a record.

use std::ops::Range;

use bytes::{BufMut, BytesMut};

/// Bytes before a record's body.
pub(crate) const HEADER: usize = 8;
/// No record is longer: a length above it is a torn or corrupt header.
pub(crate) const MAX_BODY: usize = 1 << 30;

const PUBLISH: u8 = 1;
const REMOVE: u8 = 2;
const RETURN: u8 = 3;
const QUEUE_DELETED: u8 = 4;
const CLEAN: u8 = 5;
const DEF_PUT: u8 = 6;
const DEF_DELETE: u8 = 7;
const OPEN: u8 = 8;
const CARRIED_REMOVE: u8 = 9;
const CARRIED_RETURN: u8 = 10;

/// One decoded record. Byte fields are ranges into the buffer it was read from, so
/// reading a segment copies nothing until the caller keeps a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// A message stored once for every queue in `queues`.
    Publish {
        id: u64,
        /// Milliseconds since the Unix epoch when it was published.
        timestamp: u64,
        /// Its own TTL in milliseconds (`u64::MAX`: none).
        expiration: u64,
        queues: Vec<u32>,
        payload: Range<usize>,
    },
    /// Messages that left a queue: acked, expired, dead-lettered, purged, dropped.
    Remove { queue: u32, ids: Vec<u64> },
    /// Messages a consumer gave back: each counts one more delivery attempt.
    Return { queue: u32, ids: Vec<u64> },
    /// A queue and everything in it are gone.
    QueueDeleted { queue: u32 },
    /// The broker shut down cleanly after everything before this.
    Clean,
    /// The store was opened: whatever follows, a clean mark before this is stale.
    Open,
    /// A [`Record::Remove`] moved out of a segment being deleted: the same for
    /// recovery; already counted by the writer's accounting.
    CarriedRemove { queue: u32, ids: Vec<u64> },
    /// A [`Record::Return`] moved out of a segment being deleted.
    CarriedReturn { queue: u32, ids: Vec<u64> },
    /// A definition (key, value) was set.
    DefPut {
        key: Range<usize>,
        value: Range<usize>,
    },
    /// A definition was removed.
    DefDelete { key: Range<usize> },
}

/// Appends one framed record whose body `write` produces.
fn frame(buf: &mut BytesMut, write: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    buf.put_bytes(0, HEADER);
    write(buf);
    let body = &buf[start + HEADER..];
    // Bodies are bounded by the broker's max message size, far below 4 GiB.
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let crc = crc32c::crc32c(body);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

pub(crate) fn publish(
    buf: &mut BytesMut,
    id: u64,
    (timestamp, expiration): (u64, u64),
    queues: &[u32],
    parts: &[&[u8]],
) {
    frame(buf, |b| {
        b.put_u8(PUBLISH);
        b.put_u64_le(id);
        b.put_u64_le(timestamp);
        b.put_u64_le(expiration);
        b.put_u16_le(u16::try_from(queues.len()).unwrap_or(u16::MAX));
        for q in queues.iter().take(usize::from(u16::MAX)) {
            b.put_u32_le(*q);
        }
        for part in parts {
            b.put_slice(part);
        }
    });
}

fn ids_record(buf: &mut BytesMut, kind: u8, queue: u32, ids: &[u64]) {
    // A record holds at most 2^20 ids; more are split over several records.
    for chunk in ids.chunks(1 << 20) {
        frame(buf, |b| {
            b.put_u8(kind);
            b.put_u32_le(queue);
            for id in chunk {
                b.put_u64_le(*id);
            }
        });
    }
}

pub(crate) fn remove(buf: &mut BytesMut, queue: u32, ids: &[u64]) {
    ids_record(buf, REMOVE, queue, ids);
}

pub(crate) fn returned(buf: &mut BytesMut, queue: u32, ids: &[u64]) {
    ids_record(buf, RETURN, queue, ids);
}

/// Writes `record` again, to move it out of a segment about to be deleted. Only
/// removes, returns and queue deletions are ever carried.
pub(crate) fn carry(buf: &mut BytesMut, record: &Record) {
    match record {
        Record::Remove { queue, ids } | Record::CarriedRemove { queue, ids } => {
            ids_record(buf, CARRIED_REMOVE, *queue, ids);
        }
        Record::Return { queue, ids } | Record::CarriedReturn { queue, ids } => {
            ids_record(buf, CARRIED_RETURN, *queue, ids);
        }
        Record::QueueDeleted { queue } => queue_deleted(buf, *queue),
        _ => {}
    }
}

pub(crate) fn queue_deleted(buf: &mut BytesMut, queue: u32) {
    frame(buf, |b| {
        b.put_u8(QUEUE_DELETED);
        b.put_u32_le(queue);
    });
}

pub(crate) fn clean(buf: &mut BytesMut) {
    frame(buf, |b| b.put_u8(CLEAN));
}

pub(crate) fn open(buf: &mut BytesMut) {
    frame(buf, |b| b.put_u8(OPEN));
}

pub(crate) fn def_put(buf: &mut BytesMut, key: &[u8], value: &[u8]) {
    frame(buf, |b| {
        b.put_u8(DEF_PUT);
        b.put_u32_le(u32::try_from(key.len()).unwrap_or(u32::MAX));
        b.put_slice(key);
        b.put_slice(value);
    });
}

pub(crate) fn def_delete(buf: &mut BytesMut, key: &[u8]) {
    frame(buf, |b| {
        b.put_u8(DEF_DELETE);
        b.put_slice(key);
    });
}

/// What lies at an offset of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// A whole, valid record and the offset after it.
    Record(Record, usize),
    /// The buffer ends exactly here.
    End,
    /// Not a valid record: a torn write, or damage. Nothing from here on is read.
    Torn(&'static str),
}

/// Reads the record at `at`.
pub(crate) fn next(buf: &[u8], at: usize) -> Next {
    let rest = buf.get(at..).unwrap_or_default();
    if rest.is_empty() {
        return Next::End;
    }
    let Some(header) = rest.get(..HEADER) else {
        return Next::Torn("partial record header");
    };
    let len = le_u32(&header[..4]) as usize;
    let crc = le_u32(&header[4..]);
    if len == 0 || len > MAX_BODY {
        return Next::Torn("invalid record length");
    }
    let Some(body) = rest.get(HEADER..HEADER + len) else {
        return Next::Torn("partial record body");
    };
    if crc32c::crc32c(body) != crc {
        return Next::Torn("checksum mismatch");
    }
    let start = at + HEADER;
    match decode(body, start) {
        Some(record) => Next::Record(record, start + len),
        None => Next::Torn("malformed record"),
    }
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Bounds-checked little-endian reads over a record body.
struct Cursor<'a> {
    body: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let bytes = self.body.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(bytes)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(le_u32)
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }
    fn ids(&mut self) -> Option<Vec<u64>> {
        let rest = self.body.len() - self.at;
        if !rest.is_multiple_of(8) {
            return None;
        }
        (0..rest / 8).map(|_| self.u64()).collect()
    }
}

/// Decodes a body that starts at `base` in its buffer.
fn decode(body: &[u8], base: usize) -> Option<Record> {
    let mut c = Cursor { body, at: 0 };
    let end = base + body.len();
    let record = match c.u8()? {
        PUBLISH => {
            let id = c.u64()?;
            let timestamp = c.u64()?;
            let expiration = c.u64()?;
            let n = c.u16()?;
            let queues = (0..n).map(|_| c.u32()).collect::<Option<Vec<_>>>()?;
            Record::Publish {
                id,
                timestamp,
                expiration,
                queues,
                payload: base + c.at..end,
            }
        }
        REMOVE => Record::Remove {
            queue: c.u32()?,
            ids: c.ids()?,
        },
        RETURN => Record::Return {
            queue: c.u32()?,
            ids: c.ids()?,
        },
        CARRIED_REMOVE => Record::CarriedRemove {
            queue: c.u32()?,
            ids: c.ids()?,
        },
        CARRIED_RETURN => Record::CarriedReturn {
            queue: c.u32()?,
            ids: c.ids()?,
        },
        QUEUE_DELETED => {
            let queue = c.u32()?;
            (c.at == body.len()).then_some(Record::QueueDeleted { queue })?
        }
        CLEAN => (body.len() == 1).then_some(Record::Clean)?,
        OPEN => (body.len() == 1).then_some(Record::Open)?,
        DEF_PUT => {
            let len = c.u32()? as usize;
            let key_start = base + c.at;
            c.take(len)?;
            Record::DefPut {
                key: key_start..key_start + len,
                value: base + c.at..end,
            }
        }
        DEF_DELETE => Record::DefDelete {
            key: base + c.at..end,
        },
        _ => return None,
    };
    Some(record)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::*;

    fn all(buf: &[u8]) -> (Vec<Record>, Next) {
        let mut at = 0;
        let mut records = Vec::new();
        loop {
            match next(buf, at) {
                Next::Record(r, after) => {
                    records.push(r);
                    at = after;
                }
                other => return (records, other),
            }
        }
    }

    #[test]
    fn records_read_back() {
        let mut buf = BytesMut::new();
        publish(&mut buf, 7, (99, 5), &[1, 2], &[b"he", b"llo"]);
        remove(&mut buf, 1, &[7, 8]);
        returned(&mut buf, 2, &[7]);
        queue_deleted(&mut buf, 3);
        def_put(&mut buf, b"k", b"value");
        def_delete(&mut buf, b"k");
        clean(&mut buf);
        let (records, end) = all(&buf);
        assert_eq!(end, Next::End);
        let Record::Publish {
            id,
            timestamp,
            expiration,
            queues,
            payload,
        } = &records[0]
        else {
            panic!("expected a publish, got {:?}", records[0]);
        };
        assert_eq!((*id, *timestamp, *expiration), (7, 99, 5));
        assert_eq!(queues.as_slice(), &[1, 2][..]);
        assert_eq!(&buf[payload.clone()], b"hello");
        assert_eq!(
            records[1],
            Record::Remove {
                queue: 1,
                ids: vec![7, 8]
            }
        );
        assert_eq!(
            records[2],
            Record::Return {
                queue: 2,
                ids: vec![7]
            }
        );
        assert_eq!(records[3], Record::QueueDeleted { queue: 3 });
        let Record::DefPut { key, value } = &records[4] else {
            panic!("expected a definition, got {:?}", records[4]);
        };
        assert_eq!(
            (&buf[key.clone()], &buf[value.clone()]),
            (&b"k"[..], &b"value"[..])
        );
        assert!(matches!(&records[5], Record::DefDelete { key } if &buf[key.clone()] == b"k"));
        assert_eq!(records[6], Record::Clean);
    }

    #[test]
    fn every_truncation_is_torn_never_misread() {
        let mut buf = BytesMut::new();
        publish(&mut buf, 1, (0, 0), &[1], &[b"payload"]);
        let whole = buf.len();
        remove(&mut buf, 1, &[1]);
        for cut in whole + 1..buf.len() {
            let (records, end) = all(&buf[..cut]);
            assert_eq!(records.len(), 1, "cut at {cut}");
            assert!(matches!(end, Next::Torn(_)), "cut at {cut}: {end:?}");
        }
    }

    #[test]
    fn a_flipped_bit_or_zeros_are_torn() {
        let mut buf = BytesMut::new();
        publish(&mut buf, 1, (0, 0), &[1], &[b"payload"]);
        let mut flipped = buf.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(next(&flipped, 0), Next::Torn("checksum mismatch")));
        assert!(matches!(next(&[0u8; 64], 0), Next::Torn(_)));
    }
}
