//! Reading stored messages back by id, for queues that keep only part of their
//! messages in memory. Ids are log positions, so a message is found without an index:
//! the segment whose start is the greatest at or below the id, at offset id - start.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::record::{self, HEADER, Next, Record};

/// Messages this close together are read with one `pread`.
const SPAN: u64 = 4 << 20;

/// Open segment files by start position; the writer adds and removes them.
#[derive(Debug, Default, Clone)]
pub(crate) struct Segments(Arc<Mutex<BTreeMap<u64, Arc<File>>>>);

impl Segments {
    pub(crate) fn add(&self, start: u64, file: File) {
        self.lock().insert(start, Arc::new(file));
    }

    pub(crate) fn remove(&self, start: u64) {
        self.lock().remove(&start);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<File>>> {
        // The map is replaced whole or not at all by each call: a panic elsewhere
        // cannot leave it half changed.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored bytes of each message in `ids`, in order. Neighbouring ids in one
    /// segment are read together.
    pub(crate) fn read(&self, ids: &[u64]) -> io::Result<Vec<Bytes>> {
        let files = self.lock().clone();
        let missing =
            |id| io::Error::new(io::ErrorKind::NotFound, format!("no stored message {id}"));
        let mut out = Vec::with_capacity(ids.len());
        let mut i = 0;
        while i < ids.len() {
            let first = ids[i];
            let (start, file) = files
                .range(..=first)
                .next_back()
                .ok_or_else(|| missing(first))?;
            let segment_end = files
                .range(first + 1..)
                .next()
                .map_or(u64::MAX, |(next, _)| *next);
            let mut j = i + 1;
            while j < ids.len()
                && ids[j] > ids[j - 1]
                && ids[j] - first <= SPAN
                && ids[j] < segment_end
            {
                j += 1;
            }
            let last = ids[j - 1];
            let mut header = [0u8; HEADER];
            file.read_exact_at(&mut header, last - start)?;
            let len = u64::from(u32::from_le_bytes([
                header[0], header[1], header[2], header[3],
            ]));
            let mut buf = vec![
                0u8;
                usize::try_from(last + HEADER as u64 + len - first)
                    .map_err(io::Error::other)?
            ];
            file.read_exact_at(&mut buf, first - start)?;
            for id in &ids[i..j] {
                let at = usize::try_from(id - first).map_err(io::Error::other)?;
                match record::next(&buf, at) {
                    Next::Record(Record::Publish { payload, .. }, _) => {
                        out.push(Bytes::copy_from_slice(&buf[payload]));
                    }
                    _ => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("stored message {id} is not a valid record"),
                        ));
                    }
                }
            }
            i = j;
        }
        Ok(out)
    }
}
