//! Segment files: `<start position, 20 digits>.seg` in the store directory. A record's
//! position is the segment's start plus its offset in the file; positions grow across
//! segments and never repeat (a failed write leaves a gap, never reuses one).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::record::{self, Next, Record};

/// A segment's file name.
pub(crate) fn file_name(start: u64) -> String {
    format!("{start:020}.seg")
}

/// The path of the segment starting at `start`.
pub(crate) fn path(dir: &Path, start: u64) -> PathBuf {
    dir.join(file_name(start))
}

/// The segments in `dir`, oldest first.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut starts = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(start) = name
            .strip_suffix(".seg")
            .filter(|s| s.len() == 20)
            .and_then(|s| s.parse::<u64>().ok())
        {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    Ok(starts)
}

/// How far a buffer of records is whole.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// Bytes up to the end of the last valid record.
    pub(crate) valid: usize,
    /// Why reading stopped before the end, if it did.
    pub(crate) torn: Option<&'static str>,
}

/// Calls `visit(offset, record)` for every valid record of `buf`, in order, and stops
/// at the first invalid one.
pub(crate) fn scan(buf: &[u8], mut visit: impl FnMut(usize, Record)) -> Scanned {
    let mut at = 0;
    loop {
        match record::next(buf, at) {
            Next::Record(r, after) => {
                visit(at, r);
                at = after;
            }
            Next::End => {
                return Scanned {
                    valid: at,
                    torn: None,
                };
            }
            Next::Torn(why) => {
                return Scanned {
                    valid: at,
                    torn: Some(why),
                };
            }
        }
    }
}

/// Makes a directory entry (a new or renamed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
