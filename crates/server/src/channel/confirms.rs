//! Publisher confirms for one channel: sequence numbers, and acks batched with
//! `multiple` where a run of confirmed numbers is contiguous.

use std::collections::VecDeque;

use warren_store::Progress;

/// Tracks confirm-mode publishes until every queue they were routed to took them and,
/// for a stored message, the store synced it.
#[derive(Debug, Default)]
pub(crate) struct Confirms {
    last_seq: u64,
    pending: Pending,
    /// How many pending publishes wait for the store.
    awaiting_store: usize,
    acked: Vec<u64>,
    nacked: Vec<u64>,
}

/// What a pending publish still waits for.
#[derive(Debug)]
struct Waiting {
    queues: u32,
    /// The store position that must be durable.
    store: Option<u64>,
}

/// Publishes still waiting, by sequence number: a window from the oldest one on.
/// Numbers are handed out in order and mostly settled in order, so a deque indexed
/// from the oldest beats a tree; numbers confirmed at once leave empty slots, which
/// go once nothing older waits.
#[derive(Debug, Default)]
struct Pending {
    /// The number of `slots[0]`.
    first: u64,
    slots: VecDeque<Option<Waiting>>,
}

impl Pending {
    /// Adds `seq`, higher than any added before.
    fn insert(&mut self, seq: u64, waiting: Waiting) {
        if self.slots.is_empty() {
            self.first = seq;
        }
        let at = usize::try_from(seq - self.first).unwrap_or(usize::MAX);
        if at >= self.slots.len() {
            self.slots.resize_with(at, || None);
            self.slots.push_back(Some(waiting));
        }
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut Waiting> {
        let at = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.slots.get_mut(at)?.as_mut()
    }

    fn remove(&mut self, seq: u64) -> Option<Waiting> {
        let at = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        let waiting = self.slots.get_mut(at)?.take();
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.first += 1;
        }
        waiting
    }

    /// The oldest number still waiting.
    fn first(&self) -> Option<u64> {
        self.slots.front().map(|_| self.first)
    }

    /// The waiting publishes, oldest first.
    fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut Waiting)> {
        let first = self.first;
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(move |(i, w)| Some((first + i as u64, w.as_mut()?)))
    }
}

/// One basic.ack or basic.nack to send.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) seq: u64,
    pub(crate) multiple: bool,
    pub(crate) ack: bool,
}

impl Confirms {
    /// Numbers the next publish, which must be confirmed by `queues` queues (0:
    /// confirmed at once, as for an unroutable message) and, when it was stored, by
    /// the store syncing position `store`.
    pub(crate) fn publish(&mut self, queues: u32, store: Option<u64>) -> u64 {
        self.last_seq += 1;
        let seq = self.last_seq;
        if queues == 0 && store.is_none() {
            self.acked.push(seq);
        } else {
            self.awaiting_store += usize::from(store.is_some());
            self.pending.insert(seq, Waiting { queues, store });
        }
        seq
    }

    /// Numbers the next publish and nacks it at once: the broker refused it before
    /// any queue saw it.
    pub(crate) fn publish_refused(&mut self) -> u64 {
        self.last_seq += 1;
        self.nacked.push(self.last_seq);
        self.last_seq
    }

    /// A queue took (or refused) publish `seq`. A refusal nacks it at once.
    pub(crate) fn on_queue_result(&mut self, seq: u64, ack: bool) {
        let Some(waiting) = self.pending.get_mut(seq) else {
            return;
        };
        if ack {
            waiting.queues = waiting.queues.saturating_sub(1);
            if waiting.queues > 0 || waiting.store.is_some() {
                return;
            }
        }
        self.settle(seq, ack);
    }

    /// Whether some publish waits for the store.
    pub(crate) fn awaits_store(&self) -> bool {
        self.awaiting_store > 0
    }

    /// The store made progress: publishes it synced are confirmed once their queues
    /// took them; those it failed to write are nacked.
    pub(crate) fn on_store(&mut self, progress: &Progress) {
        if self.awaiting_store == 0 {
            return;
        }
        let mut done = Vec::new();
        for (seq, waiting) in self.pending.iter_mut() {
            let Some(position) = waiting.store else {
                continue;
            };
            match progress.outcome(position) {
                // A channel's publishes are stored in sequence order and the store
                // writes in position order: nothing after this one is settled either.
                None => break,
                Some(false) => done.push((seq, false)),
                Some(true) => {
                    waiting.store = None;
                    self.awaiting_store -= 1;
                    if waiting.queues == 0 {
                        done.push((seq, true));
                    }
                }
            }
        }
        for (seq, ack) in done {
            self.settle(seq, ack);
        }
    }

    fn settle(&mut self, seq: u64, ack: bool) {
        if let Some(waiting) = self.pending.remove(seq) {
            self.awaiting_store -= usize::from(waiting.store.is_some());
            if ack {
                self.acked.push(seq);
            } else {
                self.nacked.push(seq);
            }
        }
    }

    /// The replies for everything settled since the last call: nacks one by one, then
    /// one `multiple` ack for the confirmed run below the oldest pending publish, then
    /// single acks for the rest.
    pub(crate) fn drain(&mut self) -> Vec<Reply> {
        let mut replies: Vec<Reply> = self
            .nacked
            .drain(..)
            .map(|seq| Reply {
                seq,
                multiple: false,
                ack: false,
            })
            .collect();
        if self.acked.is_empty() {
            return replies;
        }
        self.acked.sort_unstable();
        // A multiple ack must not cover a publish still pending, nor one nacked in
        // this batch (RabbitMQ cuts off at both too).
        let horizon = self
            .pending
            .first()
            .unwrap_or(u64::MAX)
            .min(replies.iter().map(|r| r.seq).min().unwrap_or(u64::MAX));
        let below = self.acked.partition_point(|&seq| seq < horizon);
        if below > 1 {
            replies.push(Reply {
                seq: self.acked[below - 1],
                multiple: true,
                ack: true,
            });
        } else if below == 1 {
            replies.push(Reply {
                seq: self.acked[0],
                multiple: false,
                ack: true,
            });
        }
        replies.extend(self.acked[below..].iter().map(|&seq| Reply {
            seq,
            multiple: false,
            ack: true,
        }));
        self.acked.clear();
        replies
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(seq: u64, multiple: bool) -> Reply {
        Reply {
            seq,
            multiple,
            ack: true,
        }
    }

    #[test]
    fn contiguous_run_is_one_multiple_ack() {
        let mut c = Confirms::default();
        for _ in 0..5 {
            c.publish(1, None);
        }
        for seq in 1..=5 {
            c.on_queue_result(seq, true);
        }
        assert_eq!(c.drain(), [ack(5, true)]);
        assert_eq!(c.drain(), []);
    }

    #[test]
    fn confirms_past_a_pending_publish_go_one_by_one() {
        let mut c = Confirms::default();
        for _ in 0..4 {
            c.publish(1, None);
        }
        c.on_queue_result(1, true);
        c.on_queue_result(3, true);
        c.on_queue_result(4, true);
        assert_eq!(c.drain(), [ack(1, false), ack(3, false), ack(4, false)]);
        c.on_queue_result(2, true);
        assert_eq!(c.drain(), [ack(2, false)]);
    }

    #[test]
    fn fan_out_waits_for_every_queue_and_unroutable_confirms_at_once() {
        let mut c = Confirms::default();
        assert_eq!(c.publish(2, None), 1);
        assert_eq!(c.publish(0, None), 2);
        assert_eq!(c.drain(), [ack(2, false)]);
        c.on_queue_result(1, true);
        assert_eq!(c.drain(), []);
        c.on_queue_result(1, true);
        assert_eq!(c.drain(), [ack(1, false)]);
    }

    #[test]
    fn a_stored_publish_waits_for_its_queues_and_the_store() {
        let (tx, rx) = tokio::sync::watch::channel(Progress::default());
        let mut c = Confirms::default();
        assert_eq!(c.publish(1, Some(100)), 1);
        assert_eq!(c.publish(1, Some(200)), 2);
        c.on_queue_result(1, true);
        assert_eq!(c.drain(), []);
        tx.send_modify(|p| p.synced = 150);
        c.on_store(&rx.borrow());
        assert_eq!(c.drain(), [ack(1, false)]);
        tx.send_modify(|p| p.synced = 250);
        c.on_store(&rx.borrow());
        assert!(!c.awaits_store());
        assert_eq!(c.drain(), []);
        c.on_queue_result(2, true);
        assert_eq!(c.drain(), [ack(2, false)]);
    }

    #[test]
    fn refusal_nacks() {
        let mut c = Confirms::default();
        c.publish(2, None);
        c.on_queue_result(1, false);
        c.on_queue_result(1, true);
        assert_eq!(
            c.drain(),
            [Reply {
                seq: 1,
                multiple: false,
                ack: false
            }]
        );
    }

    #[test]
    fn a_refused_publish_is_nacked_in_sequence() {
        let mut c = Confirms::default();
        assert_eq!(c.publish(0, None), 1);
        assert_eq!(c.publish_refused(), 2);
        assert_eq!(c.publish(0, None), 3);
        assert_eq!(
            c.drain(),
            [
                Reply {
                    seq: 2,
                    multiple: false,
                    ack: false
                },
                ack(1, false),
                ack(3, false)
            ]
        );
    }

    proptest::proptest! {
        /// The window keeps what a sorted map would: publishes added in order, some
        /// settled at once (gaps), the rest removed in any order.
        #[test]
        fn pending_window_matches_a_sorted_map(
            steps in proptest::collection::vec((proptest::bool::ANY, 0u64..40), 1..200)
        ) {
            let mut window = Pending::default();
            let mut model = std::collections::BTreeMap::new();
            let mut seq = 0;
            for (add, pick) in steps {
                if add {
                    seq += 1 + pick % 3;
                    window.insert(seq, Waiting { queues: 1, store: None });
                    model.insert(seq, ());
                } else {
                    let target = model.keys().nth(pick as usize % model.len().max(1)).copied();
                    if let Some(target) = target {
                        proptest::prop_assert!(window.remove(target).is_some());
                        model.remove(&target);
                    }
                    proptest::prop_assert!(window.remove(seq + 1).is_none());
                }
                proptest::prop_assert_eq!(window.first(), model.keys().next().copied());
                let seqs: Vec<u64> = window.iter_mut().map(|(s, _)| s).collect();
                proptest::prop_assert_eq!(seqs, model.keys().copied().collect::<Vec<_>>());
            }
        }
    }
}
