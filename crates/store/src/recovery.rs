//! Reading the store back at start: definitions, then every segment once, in order.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tracing::{info, warn};

use crate::accounting::Segments;
use crate::record::{self, Record};
use crate::segment;

/// The definitions file's name in the store directory.
pub(crate) const DEFINITIONS: &str = "definitions.log";

/// A message as recovered for one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its id in the store (what [`Store::remove`](crate::Store::remove) takes).
    pub id: u64,
    /// When it was published, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Its own TTL in milliseconds, as published; [`StoredMessage::expiration`] reads it.
    /// A plain `u64` (`u64::MAX` for none) keeps recovery of millions of messages at
    /// 32 bytes each.
    pub ttl: u64,
    /// How often a consumer gave it back before (its delivery count).
    pub returns: u32,
}

impl StoredMessage {
    /// Its own TTL in milliseconds, if it had one.
    pub fn expiration(&self) -> Option<u64> {
        (self.ttl != u64::MAX).then_some(self.ttl)
    }
}

/// What the store held when it was opened.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Definitions by key.
    pub definitions: BTreeMap<Bytes, Bytes>,
    /// Each queue's live messages, in id (publish) order.
    pub queues: HashMap<u32, Vec<StoredMessage>>,
    /// Whether the broker shut down cleanly last time. After a crash, the messages a
    /// consumer held when it happened are among the recovered ones, undistinguished.
    pub clean: bool,
    /// The highest queue id any record names.
    pub max_queue_id: u32,
}

/// The replay of records into queues: what recovery computes, kept apart from the
/// files so the property tests can check it against a model.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub(crate) queues: HashMap<u32, Held>,
    pub(crate) clean: bool,
    pub(crate) max_queue_id: u32,
}

impl Replay {
    /// Applies one record. Payloads stay on disk: [`Store::read`](crate::Store::read)
    /// fetches those a queue wants in memory.
    pub(crate) fn apply(&mut self, record: Record) {
        self.clean = record == Record::Clean;
        match record {
            Record::Publish {
                id,
                timestamp,
                expiration,
                queues,
                payload: _,
            } => {
                for q in queues {
                    self.max_queue_id = self.max_queue_id.max(q);
                    self.queues.entry(q).or_default().insert(StoredMessage {
                        id,
                        timestamp,
                        ttl: expiration,
                        returns: 0,
                    });
                }
            }
            Record::Remove { queue, ids } | Record::CarriedRemove { queue, ids } => {
                if let Some(messages) = self.queues.get_mut(&queue) {
                    for id in ids {
                        messages.remove(id);
                    }
                }
            }
            Record::Return { queue, ids } | Record::CarriedReturn { queue, ids } => {
                if let Some(messages) = self.queues.get_mut(&queue) {
                    for id in ids {
                        if let Some(m) = messages.get_mut(id) {
                            m.returns = (m.returns + 1).min(REMOVED - 1);
                        }
                    }
                }
            }
            Record::QueueDeleted { queue } => {
                self.max_queue_id = self.max_queue_id.max(queue);
                self.queues.remove(&queue);
            }
            Record::Clean | Record::Open | Record::DefPut { .. } | Record::DefDelete { .. } => {}
        }
    }
}

/// `returns` of a message removed from a [`Held`].
const REMOVED: u32 = u32::MAX;

/// One queue's messages during replay, in id order: a vector, not a map, since
/// publishes come in id order; removals mark a message and are swept out in bulk.
#[derive(Debug, Default)]
pub(crate) struct Held {
    messages: Vec<StoredMessage>,
    removed: usize,
}

impl Held {
    fn insert(&mut self, message: StoredMessage) {
        match self.messages.last() {
            Some(last) if last.id >= message.id => {
                // Out of order (not written today, but cheap to allow).
                let at = self.messages.partition_point(|m| m.id < message.id);
                if self.messages.get(at).is_some_and(|m| m.id == message.id) {
                    self.messages[at] = message;
                } else {
                    self.messages.insert(at, message);
                }
            }
            _ => self.messages.push(message),
        }
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut StoredMessage> {
        let at = self.messages.binary_search_by_key(&id, |m| m.id).ok()?;
        Some(&mut self.messages[at]).filter(|m| m.returns != REMOVED)
    }

    fn remove(&mut self, id: u64) {
        if let Some(m) = self.get_mut(id) {
            m.returns = REMOVED;
            self.removed += 1;
            if self.removed > 1024 && self.removed * 2 > self.messages.len() {
                self.sweep();
            }
        }
    }

    fn sweep(&mut self) {
        self.messages.retain(|m| m.returns != REMOVED);
        self.removed = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.messages.len() - self.removed
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.messages
            .iter()
            .filter(|m| m.returns != REMOVED)
            .map(|m| m.id)
    }

    fn into_messages(mut self) -> Vec<StoredMessage> {
        self.sweep();
        self.messages.shrink_to_fit();
        self.messages
    }
}

/// Reads the definitions file into a map and rewrites it compactly. Returns the map and
/// the compacted file's size.
pub(crate) fn definitions(dir: &Path) -> io::Result<(BTreeMap<Bytes, Bytes>, u64)> {
    let path = dir.join(DEFINITIONS);
    let mut map = BTreeMap::new();
    match fs::read(&path) {
        Ok(buf) => {
            let scanned = segment::scan(&buf, |_, r| apply_definition(&mut map, &buf, r));
            if let Some(why) = scanned.torn {
                warn!(file = %path.display(), offset = scanned.valid, reason = why,
                    "definitions file ends in a damaged record; it was cut there");
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let size = rewrite_definitions(dir, &map)?;
    Ok((map, size))
}

pub(crate) fn apply_definition(map: &mut BTreeMap<Bytes, Bytes>, buf: &[u8], record: Record) {
    match record {
        Record::DefPut { key, value } => {
            map.insert(
                Bytes::copy_from_slice(&buf[key]),
                Bytes::copy_from_slice(&buf[value]),
            );
        }
        Record::DefDelete { key } => {
            map.remove(&buf[key]);
        }
        _ => {}
    }
}

/// Writes `map` as a fresh definitions file, atomically (temporary file, fsync,
/// rename). Returns its size.
pub(crate) fn rewrite_definitions(dir: &Path, map: &BTreeMap<Bytes, Bytes>) -> io::Result<u64> {
    let mut buf = BytesMut::new();
    for (key, value) in map {
        record::def_put(&mut buf, key, value);
    }
    let tmp = dir.join(format!("{DEFINITIONS}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(&buf)?;
    file.sync_data()?;
    fs::rename(&tmp, dir.join(DEFINITIONS))?;
    segment::sync_dir(dir)?;
    Ok(buf.len() as u64)
}

/// Everything recovery learns from the segments.
pub(crate) struct Log {
    pub(crate) replay: Replay,
    pub(crate) segments: Segments,
    /// Where the next record goes.
    pub(crate) next: u64,
}

/// Reads every segment once, oldest first, cutting a torn tail, and drops segments
/// that hold nothing live.
pub(crate) fn log(dir: &Path) -> io::Result<Log> {
    let started = Instant::now();
    let mut replay = Replay::default();
    let mut ends = Vec::new();
    let mut bytes = 0u64;
    for start in segment::list(dir)? {
        let path = segment::path(dir, start);
        let buf = fs::read(&path)?;
        bytes += buf.len() as u64;
        let scanned = segment::scan(&buf, |_, r| replay.apply(r));
        if let Some(why) = scanned.torn {
            warn!(file = %path.display(), offset = scanned.valid, reason = why,
                "segment ends in a damaged record (a write the crash cut short); cut there");
            let file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(scanned.valid as u64)?;
            file.sync_all()?;
        }
        ends.push((start, start + scanned.valid as u64));
    }
    let mut segments = Segments::default();
    let mut next = 1;
    for (start, end) in &ends {
        segments.open(*start, *end);
        next = next.max(*end);
    }
    let mut messages = 0usize;
    for (queue, held) in &replay.queues {
        messages += held.len();
        for id in held.ids() {
            segments.count(id, *queue);
        }
    }
    for start in segments.reclaimable(None) {
        fs::remove_file(segment::path(dir, start))?;
        segments.forget(start);
    }
    info!(
        segments = ends.len(),
        bytes,
        messages,
        clean = replay.clean,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "message store recovered"
    );
    Ok(Log {
        replay,
        segments,
        next,
    })
}

impl Replay {
    /// The recovered queues, each in id order.
    pub(crate) fn into_queues(self) -> HashMap<u32, Vec<StoredMessage>> {
        self.queues
            .into_iter()
            .map(|(q, held)| (q, held.into_messages()))
            .collect()
    }
}
