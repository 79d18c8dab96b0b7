//! warren's message store: an append-only log of checksummed records in segment files,
//! written by one thread with group commit, read once at start to rebuild the queues.
//!
//! The broker appends records (a message stored once for all its durable queues, the
//! messages that left a queue, the ones given back, definitions) without waiting; the
//! writer thread writes and syncs them in batches and publishes how far the log is
//! durable ([`Progress`]), which is when a publisher's confirm may go out.
//!
//! ```
//! # fn main() -> Result<(), warren_store::StoreError> {
//! let dir = tempfile::tempdir().map_err(|e| warren_store::StoreError::io("tempdir", e))?;
//! let (store, recovered) = warren_store::Store::open(warren_store::Options::new(dir.path()))?;
//! assert!(recovered.queues.is_empty());
//! let id = store.publish(&[1], 0, None, &[b"hello"]);
//! store.remove(1, &[id]);
//! store.close();
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod accounting;
mod reader;
mod record;
mod recovery;
mod segment;
mod writer;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use nix::fcntl::{Flock, FlockArg};
use tokio::sync::watch;

pub use recovery::{Recovered, StoredMessage};
pub use writer::Progress;
use writer::{Shared, Writer};

/// How to open a store.
#[derive(Debug, Clone)]
pub struct Options {
    /// The directory the store owns.
    pub dir: PathBuf,
    /// A segment file is closed and a new one started past this size.
    pub segment_size: u64,
    /// Sync every batch to disk before reporting it durable. Off, a batch counts as
    /// durable once written to the operating system: it survives the broker being
    /// killed, not a power cut.
    pub fsync: bool,
}

impl Options {
    /// The defaults: 64 MiB segments, fsync on.
    pub fn new(dir: impl Into<PathBuf>) -> Options {
        Options {
            dir: dir.into(),
            segment_size: 64 << 20,
            fsync: true,
        }
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the directory.
    #[error("data directory {0} is in use by another warren process")]
    Locked(PathBuf),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
}

impl StoreError {
    /// An I/O error on `path`.
    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_string(),
            source,
        }
    }
}

/// An open store. Appends are cheap and never block on disk; see [`Store::progress`]
/// for when they are durable.
pub struct Store {
    shared: Arc<Shared>,
    readers: reader::Segments,
    writer: Mutex<Option<JoinHandle<()>>>,
    dir: PathBuf,
    /// Held until the store closes: one broker per directory.
    lock: Mutex<Option<Flock<File>>>,
}

impl Store {
    /// Opens (creating if needed) the store in `options.dir` and reads back what it
    /// holds. A torn record at a segment's end is cut and logged.
    pub fn open(options: Options) -> Result<(Store, Recovered), StoreError> {
        let dir = options.dir;
        let io = |e| StoreError::io(dir.display(), e);
        fs::create_dir_all(&dir).map_err(io)?;
        let lock_file = File::create(dir.join("LOCK")).map_err(io)?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| StoreError::Locked(dir.clone()))?;
        let (definitions, definitions_size) = recovery::definitions(&dir).map_err(io)?;
        let log = recovery::log(&dir).map_err(io)?;
        let readers = reader::Segments::default();
        for start in segment::list(&dir).map_err(io)? {
            let path = segment::path(&dir, start);
            readers.add(
                start,
                File::open(&path).map_err(|e| StoreError::io(path.display(), e))?,
            );
        }
        let writer = Writer::new(
            readers.clone(),
            dir.clone(),
            options.fsync,
            options.segment_size.max(1),
            log.segments,
            definitions.clone(),
            definitions_size,
        )
        .map_err(io)?;
        let shared = Arc::new(Shared::new(log.next));
        {
            // Deliveries are not recorded: from now on, a crash must not look clean.
            let mut p = shared.lock();
            record::open(&mut p.log);
        }
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("warren-store".into())
                .spawn(move || writer.run(&shared))
                .map_err(io)?
        };
        let recovered = Recovered {
            definitions,
            clean: log.replay.clean,
            max_queue_id: log.replay.max_queue_id,
            queues: log.replay.into_queues(),
        };
        Ok((
            Store {
                shared,
                readers,
                writer: Mutex::new(Some(thread)),
                dir,
                lock: Mutex::new(Some(lock)),
            },
            recovered,
        ))
    }

    /// Stores a message for `queues`, its bytes the concatenation of `parts`. Returns
    /// its id, which is also its log position: it is durable once
    /// [`Progress::outcome`] says so.
    /// `expiration` is the message's own TTL in milliseconds, kept so that it still
    /// expires in time after a restart without its bytes being read.
    pub fn publish(
        &self,
        queues: &[u32],
        timestamp: u64,
        expiration: Option<u64>,
        parts: &[&[u8]],
    ) -> u64 {
        let mut p = self.shared.lock();
        let id = p.next + p.log.len() as u64;
        let meta = (timestamp, expiration.unwrap_or(u64::MAX));
        record::publish(&mut p.log, id, meta, queues, parts);
        p.needs_sync = true;
        self.shared.nudge(&mut p);
        id
    }

    /// Records that messages left `queue` (acked, expired, dead-lettered, dropped).
    pub fn remove(&self, queue: u32, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        let mut p = self.shared.lock();
        record::remove(&mut p.log, queue, ids);
        self.shared.nudge(&mut p);
    }

    /// Records that a consumer gave messages back to `queue` undone.
    pub fn returned(&self, queue: u32, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        let mut p = self.shared.lock();
        record::returned(&mut p.log, queue, ids);
        self.shared.nudge(&mut p);
    }

    /// Records that `queue` was deleted with everything in it.
    pub fn queue_deleted(&self, queue: u32) {
        let mut p = self.shared.lock();
        record::queue_deleted(&mut p.log, queue);
        self.shared.nudge(&mut p);
    }

    /// Sets a definition. It is durable no later than any message appended after it.
    pub fn put_definition(&self, key: &[u8], value: &[u8]) {
        let mut p = self.shared.lock();
        record::def_put(&mut p.definitions, key, value);
        p.needs_sync = true;
        self.shared.nudge(&mut p);
    }

    /// Removes a definition.
    pub fn delete_definition(&self, key: &[u8]) {
        let mut p = self.shared.lock();
        record::def_delete(&mut p.definitions, key);
        p.needs_sync = true;
        self.shared.nudge(&mut p);
    }

    /// The position the next record will take: once [`Progress::synced`] passes it,
    /// everything appended before this call is durable.
    pub fn position(&self) -> u64 {
        let p = self.shared.lock();
        p.next + p.log.len() as u64
    }

    /// The stored bytes of messages, in the order of `ids`. Only ids below
    /// [`Store::written`] can be read.
    pub fn read(&self, ids: &[u64]) -> std::io::Result<Vec<Bytes>> {
        self.readers.read(ids)
    }

    /// Every record below this position is in the files (synced or not).
    pub fn written(&self) -> u64 {
        self.shared.progress.borrow().written
    }

    /// Watches how far the log is durable.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.shared.progress.subscribe()
    }

    /// Bytes of segment files on disk.
    pub fn disk_usage(&self) -> u64 {
        segment::list(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|start| fs::metadata(segment::path(&self.dir, start)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Marks a clean shutdown, writes and syncs everything pending, and stops the
    /// writer. Nothing appended after this is written.
    pub fn close(&self) {
        self.stop(true);
    }

    fn stop(&self, clean: bool) {
        let Some(thread) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        {
            let mut p = self.shared.lock();
            if clean {
                record::clean(&mut p.log);
            }
            p.closing = true;
            self.shared.nudge(&mut p);
        }
        let _ = thread.join();
        // The directory is free for the next broker.
        self.lock.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Store {
    /// Writes what is pending, without the clean-shutdown mark.
    fn drop(&mut self) {
        self.stop(false);
    }
}

#[cfg(test)]
mod tests;
