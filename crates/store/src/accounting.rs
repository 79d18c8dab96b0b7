//! Which segments still hold live messages, so that dead ones can be deleted.
//!
//! Counts, not sets: per segment, how many messages each queue still holds there. A
//! segment is deleted only when it and every older segment are dead: its Remove
//! records may be what keeps a message of an older segment from coming back at
//! recovery, so it must outlive every segment older than it.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::record::Record;

#[derive(Debug, Default)]
pub(crate) struct Segments {
    /// By start position.
    segments: BTreeMap<u64, Segment>,
    /// Queues deleted: a publish to one that raced its deletion counts for nothing.
    deleted: HashSet<u32>,
}

#[derive(Debug)]
struct Segment {
    /// Position after its last record.
    end: u64,
    /// Live messages per queue.
    live: HashMap<u32, u64>,
    total: u64,
}

impl Segments {
    /// Tracks a segment covering `start..end`.
    pub(crate) fn open(&mut self, start: u64, end: u64) {
        self.segments.insert(
            start,
            Segment {
                end,
                live: HashMap::new(),
                total: 0,
            },
        );
    }

    /// Records that the segment starting at `start` now ends at `end`.
    pub(crate) fn extend(&mut self, start: u64, end: u64) {
        if let Some(s) = self.segments.get_mut(&start) {
            s.end = end;
        }
    }

    fn holding(&mut self, id: u64) -> Option<&mut Segment> {
        let (_, segment) = self.segments.range_mut(..=id).next_back()?;
        (id < segment.end).then_some(segment)
    }

    /// Counts message `id` as live in `queue`.
    pub(crate) fn count(&mut self, id: u64, queue: u32) {
        if self.deleted.contains(&queue) {
            return;
        }
        if let Some(s) = self.holding(id) {
            *s.live.entry(queue).or_default() += 1;
            s.total += 1;
        }
    }

    fn uncount(&mut self, id: u64, queue: u32) {
        if let Some(s) = self.holding(id)
            && let Some(n) = s.live.get_mut(&queue)
        {
            *n -= 1;
            s.total -= 1;
            if *n == 0 {
                s.live.remove(&queue);
            }
        }
    }

    /// Applies a record just written.
    pub(crate) fn apply(&mut self, record: &Record) {
        match record {
            Record::Publish { id, queues, .. } => {
                for q in queues {
                    self.count(*id, *q);
                }
            }
            Record::Remove { queue, ids } => {
                for id in ids {
                    self.uncount(*id, *queue);
                }
            }
            Record::QueueDeleted { queue } => {
                self.deleted.insert(*queue);
                for s in self.segments.values_mut() {
                    s.total -= s.live.remove(queue).unwrap_or(0);
                }
            }
            // Carried records were counted where they were first written.
            Record::Return { .. }
            | Record::CarriedRemove { .. }
            | Record::CarriedReturn { .. }
            | Record::Clean
            | Record::Open
            | Record::DefPut { .. }
            | Record::DefDelete { .. } => {}
        }
    }

    /// Segments that can be deleted now: the dead ones before the first live one or
    /// `current` (the segment being written), oldest first.
    pub(crate) fn reclaimable(&self, current: Option<u64>) -> Vec<u64> {
        self.segments
            .iter()
            .take_while(|(start, s)| s.total == 0 && Some(**start) != current)
            .map(|(start, _)| *start)
            .collect()
    }

    /// Dead segments that [`Segments::reclaimable`] cannot delete because an older
    /// segment still holds a live message (and not `current`), oldest first.
    pub(crate) fn stranded(&self, current: Option<u64>) -> Vec<u64> {
        self.segments
            .iter()
            .skip_while(|(_, s)| s.total == 0)
            .filter(|(start, s)| s.total == 0 && Some(**start) != current)
            .map(|(start, _)| *start)
            .collect()
    }

    /// Whether `id` lies in a segment still tracked (older than `before`).
    pub(crate) fn holds_before(&self, id: u64, before: u64) -> bool {
        id < before
            && self
                .segments
                .range(..=id)
                .next_back()
                .is_some_and(|(_, s)| id < s.end)
    }

    /// Stops tracking a deleted segment.
    pub(crate) fn forget(&mut self, start: u64) {
        self.segments.remove(&start);
    }

    /// Whether no segment holds a live message.
    pub(crate) fn all_dead(&self) -> bool {
        self.segments.values().all(|s| s.total == 0)
    }

    /// Live messages in the segment starting at `start`.
    #[cfg(test)]
    pub(crate) fn live(&self, start: u64) -> u64 {
        self.segments.get(&start).map_or(0, |s| s.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_dies_with_its_last_message_and_only_after_older_ones() {
        let mut s = Segments::default();
        s.open(0, 100);
        s.open(100, 200);
        s.count(10, 1);
        s.count(150, 1);
        s.count(150, 2);
        s.apply(&Record::Remove {
            queue: 1,
            ids: vec![150],
        });
        assert_eq!(s.live(100), 1);
        s.apply(&Record::QueueDeleted { queue: 2 });
        assert_eq!(s.live(100), 0);
        // The older segment still holds a message: the newer one must stay.
        assert_eq!(s.reclaimable(None), Vec::<u64>::new());
        s.apply(&Record::Remove {
            queue: 1,
            ids: vec![10],
        });
        assert_eq!(s.reclaimable(None), vec![0, 100]);
        assert_eq!(s.reclaimable(Some(100)), vec![0]);
    }

    #[test]
    fn dead_segments_behind_a_live_one_are_stranded() {
        let mut s = Segments::default();
        s.open(0, 100);
        s.open(100, 200);
        s.open(200, 300);
        s.open(300, 400);
        s.count(150, 1);
        assert_eq!(s.stranded(None), vec![200, 300]);
        assert_eq!(s.stranded(Some(300)), vec![200]);
        assert!(s.holds_before(150, 200));
        assert!(!s.holds_before(150, 100));
        assert!(!s.holds_before(450, 500));
    }

    #[test]
    fn ids_outside_every_segment_and_deleted_queues_count_for_nothing() {
        let mut s = Segments::default();
        s.open(0, 100);
        s.count(100, 1); // a gap left by a failed write
        s.apply(&Record::QueueDeleted { queue: 2 });
        s.count(50, 2);
        assert!(s.all_dead());
        s.apply(&Record::Remove {
            queue: 1,
            ids: vec![50],
        });
        assert!(s.all_dead());
    }
}
