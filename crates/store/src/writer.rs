//! The writer thread: takes whatever records were appended since its last write, writes
//! them with one `write` per file, makes them durable with one `fdatasync`, and then
//! tells waiters how far the log is durable. Appenders never wait for it: while it
//! syncs, the next batch gathers (group commit), so confirm throughput is one sync per
//! batch, not per message.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;
use tracing::{error, info};

use crate::accounting::Segments;
use crate::record::{self, Record};
use crate::recovery::{self, DEFINITIONS};
use crate::segment;

/// How durable the log is: what publishers waiting for a confirm watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every record below this position has been written (and synced, unless fsync is
    /// off), except those in `failed`.
    pub synced: u64,
    /// Every record below this position has been handed to the operating system (or
    /// failed): synced or not.
    pub written: u64,
    /// Positions whose write or sync failed: those records may be lost.
    failed: Vec<Range<u64>>,
}

impl Progress {
    /// Whether the record at `position` is durable: `Some(true)` when it is,
    /// `Some(false)` when writing it failed, `None` while it is still pending.
    pub fn outcome(&self, position: u64) -> Option<bool> {
        if self.failed.iter().any(|r| r.contains(&position)) {
            Some(false)
        } else if position < self.synced {
            Some(true)
        } else {
            None
        }
    }

    fn fail(&mut self, range: Range<u64>) {
        // Consecutive failed batches are adjacent: they merge, so the list stays short.
        match self.failed.last_mut() {
            Some(last) if last.end == range.start => last.end = range.end,
            _ => self.failed.push(range),
        }
    }
}

/// Records waiting for the writer.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(crate) log: BytesMut,
    pub(crate) definitions: BytesMut,
    /// The position of `log`'s first byte.
    pub(crate) next: u64,
    /// Stop once everything pending is written.
    pub(crate) closing: bool,
    /// The writer is asleep: an append must wake it.
    idle: bool,
    /// Something appended waits to be durable (a message, a definition). Removes and
    /// returns alone are written without a sync: losing them only brings a message
    /// back, which at-least-once allows, and the next sync covers them anyway.
    pub(crate) needs_sync: bool,
}

/// What appenders and the writer share. The mutex guards a buffer append: held for a
/// memcpy, never across I/O.
pub(crate) struct Shared {
    pub(crate) pending: Mutex<Pending>,
    wake: Condvar,
    pub(crate) progress: watch::Sender<Progress>,
}

impl Shared {
    pub(crate) fn new(next: u64) -> Self {
        Shared {
            pending: Mutex::new(Pending {
                next,
                ..Pending::default()
            }),
            wake: Condvar::new(),
            progress: watch::Sender::new(Progress {
                synced: next,
                written: next,
                failed: Vec::new(),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while appending leaves at worst a partial record at the buffer's
        // end, which recovery cuts like a torn write; the buffer stays usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the writer if it sleeps. Called with the lock held.
    pub(crate) fn nudge(&self, pending: &mut Pending) {
        if pending.idle {
            pending.idle = false;
            self.wake.notify_one();
        }
    }
}

/// The segment being appended to.
struct Current {
    start: u64,
    end: u64,
    file: File,
}

/// The definitions file and the map it describes.
struct Definitions {
    file: Option<File>,
    map: BTreeMap<Bytes, Bytes>,
    size: u64,
    compacted: u64,
}

pub(crate) struct Writer {
    readers: crate::reader::Segments,
    pub(crate) dir: PathBuf,
    pub(crate) fsync: bool,
    pub(crate) segment_size: u64,
    current: Option<Current>,
    segments: Segments,
    definitions: Definitions,
    /// Records moved out of dead segments, to append, by segment.
    carries: Vec<(u64, BytesMut)>,
    /// Segments to delete once the log is durable past a position (their carried
    /// records are then safe); 0 when nothing had to move.
    doomed: Vec<(u64, u64)>,
}

/// How long a batch under load may gather before its sync, and below what size.
const GATHER: std::time::Duration = std::time::Duration::from_micros(500);
const GATHER_BELOW: usize = 1 << 20;

/// A segment with nothing live left is replaced by a fresh one past this size, so a
/// drained store shrinks to nearly nothing without waiting for the segment to fill.
const ROLL_WHEN_DEAD: u64 = 1 << 20;

impl Writer {
    pub(crate) fn new(
        readers: crate::reader::Segments,
        dir: PathBuf,
        fsync: bool,
        segment_size: u64,
        segments: Segments,
        definitions: BTreeMap<Bytes, Bytes>,
        definitions_size: u64,
    ) -> io::Result<Writer> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join(DEFINITIONS))?;
        Ok(Writer {
            readers,
            dir,
            fsync,
            segment_size,
            current: None,
            carries: Vec::new(),
            doomed: Vec::new(),
            segments,
            definitions: Definitions {
                file: Some(file),
                map: definitions,
                size: definitions_size,
                compacted: definitions_size,
            },
        })
    }

    /// Writes batches until the store closes.
    pub(crate) fn run(mut self, shared: &Shared) {
        let mut spare_log = BytesMut::new();
        let mut spare_definitions = BytesMut::new();
        loop {
            let (log, definitions, base, closing, sync) = {
                let mut p = shared.lock();
                let busy = !p.log.is_empty();
                while p.log.is_empty() && p.definitions.is_empty() && !p.closing {
                    p.idle = true;
                    p = shared.wake.wait(p).unwrap_or_else(|e| e.into_inner());
                }
                // Under load (records arrived while the last batch synced), let the
                // batch gather a moment: fewer syncs for the same confirms. An idle
                // store syncs at once, for latency.
                if busy && self.fsync && p.needs_sync && p.log.len() < GATHER_BELOW {
                    drop(p);
                    std::thread::sleep(GATHER);
                    p = shared.lock();
                }
                let log = std::mem::replace(&mut p.log, std::mem::take(&mut spare_log));
                let definitions =
                    std::mem::replace(&mut p.definitions, std::mem::take(&mut spare_definitions));
                let base = p.next;
                p.next += log.len() as u64;
                let sync = std::mem::take(&mut p.needs_sync) || p.closing;
                (log, definitions, base, p.closing, sync)
            };
            let end = base + log.len() as u64;
            let result = self.write(base, &log, &definitions, sync && self.fsync);
            // Before the progress is told: whoever sees it sees the carries pending.
            let durable = result.is_ok() && (sync || !self.fsync);
            self.settle_carries(shared, durable.then_some(end));
            shared.progress.send_modify(|progress| {
                if let Err(e) = &result {
                    error!(error = %e, directory = %self.dir.display(),
                        "message store write failed; the publishes in it are nacked");
                    progress.fail(base..end);
                }
                progress.written = end;
                // Unsynced writes move nothing: the next synced batch covers them.
                if sync || result.is_err() || !self.fsync {
                    progress.synced = end;
                }
            });
            spare_log = log;
            spare_log.clear();
            spare_definitions = definitions;
            spare_definitions.clear();
            let p = shared.lock();
            if closing && p.log.is_empty() && p.definitions.is_empty() {
                break;
            }
        }
        info!("message store closed");
    }

    fn write(&mut self, base: u64, log: &[u8], definitions: &[u8], sync: bool) -> io::Result<()> {
        if !definitions.is_empty() {
            self.write_definitions(definitions, sync)?;
        }
        if !log.is_empty() {
            let result = self.append(base, log, sync);
            if result.is_err() {
                // What follows goes to a new segment: positions stay true to offsets.
                self.current = None;
            }
            result?;
            segment::scan(log, |_, record| self.segments.apply(&record));
        }
        // The batch is written: failing to free space fails nothing in it.
        if let Err(e) = self.reclaim() {
            error!(error = %e, directory = %self.dir.display(), "cannot reclaim dead segments");
        }
        Ok(())
    }

    fn append(&mut self, base: u64, log: &[u8], sync: bool) -> io::Result<()> {
        let current = match &mut self.current {
            Some(c) if c.end == base => c,
            _ => {
                let file = OpenOptions::new()
                    .create_new(true)
                    .append(true)
                    .open(segment::path(&self.dir, base))?;
                segment::sync_dir(&self.dir)?;
                self.readers
                    .add(base, File::open(segment::path(&self.dir, base))?);
                self.segments.open(base, base);
                self.current.insert(Current {
                    start: base,
                    end: base,
                    file,
                })
            }
        };
        current.file.write_all(log)?;
        if sync {
            current.file.sync_data()?;
        }
        current.end += log.len() as u64;
        self.segments.extend(current.start, current.end);
        if current.end - current.start >= self.segment_size {
            self.current = None;
        }
        Ok(())
    }

    fn write_definitions(&mut self, records: &[u8], sync: bool) -> io::Result<()> {
        let d = &mut self.definitions;
        segment::scan(records, |_, r| {
            recovery::apply_definition(&mut d.map, records, r)
        });
        // A failed write may have left a partial record; a rewrite from the map mends it.
        let appended = match &mut d.file {
            Some(file) => file
                .write_all(records)
                .and_then(|()| if sync { file.sync_data() } else { Ok(()) }),
            None => Err(io::Error::other("definitions file needs a rewrite")),
        };
        d.size += records.len() as u64;
        if appended.is_err() || d.size > 2 * d.compacted + ROLL_WHEN_DEAD {
            d.file = None;
            let size = recovery::rewrite_definitions(&self.dir, &d.map)?;
            d.file = Some(
                OpenOptions::new()
                    .append(true)
                    .open(self.dir.join(DEFINITIONS))?,
            );
            d.size = size;
            d.compacted = size;
        }
        Ok(())
    }

    /// Appends the records carried out of dead segments (the next batch writes and
    /// syncs them), and deletes the segments whose carried records are durable.
    fn settle_carries(&mut self, shared: &Shared, durable: Option<u64>) {
        if !self.carries.is_empty() {
            let mut p = shared.lock();
            for (start, records) in self.carries.drain(..) {
                if records.is_empty() {
                    // Nothing to move: it can go now.
                    self.doomed.push((start, 0));
                    continue;
                }
                p.log.extend_from_slice(&records);
                let after = p.next + p.log.len() as u64;
                self.doomed.push((start, after));
                p.needs_sync = true;
            }
        }
        let durable = durable.unwrap_or(0);
        let (due, later): (Vec<_>, Vec<_>) = self
            .doomed
            .drain(..)
            .partition(|(_, after)| *after <= durable);
        self.doomed = later;
        for (start, _) in &due {
            self.readers.remove(*start);
            if let Err(e) = fs::remove_file(segment::path(&self.dir, *start)) {
                error!(error = %e, segment = start, "cannot delete a dead segment");
            }
        }
        if !due.is_empty()
            && let Err(e) = segment::sync_dir(&self.dir)
        {
            error!(error = %e, "cannot sync the store directory");
        }
    }

    /// Moves what a dead segment behind a live one still says about older segments
    /// (removes, returns, queue deletions) to the end of the log, so that the segment
    /// can go without bringing anything back at recovery.
    fn carry(&mut self, start: u64) -> io::Result<()> {
        let buf = fs::read(segment::path(&self.dir, start))?;
        let mut carried = BytesMut::new();
        let segments = &self.segments;
        segment::scan(&buf, |_, record| {
            let keep = |ids: &[u64]| -> Vec<u64> {
                ids.iter()
                    .copied()
                    .filter(|id| segments.holds_before(*id, start))
                    .collect()
            };
            let kept = match record {
                Record::Remove { queue, ids } | Record::CarriedRemove { queue, ids } => {
                    Record::CarriedRemove {
                        queue,
                        ids: keep(&ids),
                    }
                }
                Record::Return { queue, ids } | Record::CarriedReturn { queue, ids } => {
                    Record::CarriedReturn {
                        queue,
                        ids: keep(&ids),
                    }
                }
                record @ Record::QueueDeleted { .. } => record,
                _ => return,
            };
            let empty = matches!(
                &kept,
                Record::CarriedRemove { ids, .. } | Record::CarriedReturn { ids, .. } if ids.is_empty()
            );
            if !empty {
                record::carry(&mut carried, &kept);
            }
        });
        self.segments.forget(start);
        self.carries.push((start, carried));
        Ok(())
    }

    /// Deletes the segments nothing live needs any more, and moves the ones stranded
    /// behind a live segment out of the way.
    fn reclaim(&mut self) -> io::Result<()> {
        if let Some(c) = &self.current
            && c.end - c.start >= ROLL_WHEN_DEAD.min(self.segment_size)
            && self.segments.all_dead()
        {
            self.current = None;
        }
        let current = self.current.as_ref().map(|c| c.start);
        for start in self.segments.stranded(current) {
            self.carry(start)?;
        }
        let reclaimable = self.segments.reclaimable(current);
        if reclaimable.is_empty() {
            return Ok(());
        }
        for start in reclaimable {
            self.readers.remove(start);
            fs::remove_file(segment::path(&self.dir, start))?;
            self.segments.forget(start);
        }
        segment::sync_dir(&self.dir)
    }
}
