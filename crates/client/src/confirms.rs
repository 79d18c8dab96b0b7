//! Publisher confirms: which publishes a basic.ack or basic.nack settles, and which
//! publish a basic.return belongs to.
//!
//! Once confirm.select is sent, the server numbers the channel's publishes 1, 2, 3, ...
//! in the order it reads them, which is the order the connection task writes them, so
//! the tracker assigns the same numbers as it writes. An ack or nack settles one
//! sequence number, or with `multiple` every outstanding one up to and including it
//! (tag 0 with `multiple` settles everything, as for consumer acks).
//!
//! basic.return carries no sequence number. RabbitMQ (and warren) send the return of an
//! unroutable mandatory message before the ack that confirms it, so a return is
//! attached to the earliest outstanding mandatory publish with the same exchange and
//! routing key that has no return yet, and the publish resolves as `Returned` when its
//! ack arrives. Two in-flight mandatory publishes to the same exchange and key route
//! alike unless the bindings change between them, so the match is exact in practice; a
//! return matching no outstanding publish (sent before confirm.select) goes to the
//! channel's returns stream instead.

use std::collections::BTreeMap;
use std::collections::btree_map;

use warren_codec::ShortStr;

use crate::publish::ReturnedMessage;

/// A publish awaiting its ack or nack.
pub(crate) struct Outstanding<W> {
    /// Whoever is told the outcome.
    pub(crate) waiter: W,
    /// Exchange and routing key, kept for mandatory publishes only (for matching returns).
    route: Option<(ShortStr, ShortStr)>,
    /// The return that came back for this publish, if any.
    pub(crate) returned: Option<Box<ReturnedMessage>>,
}

/// The confirm state of one channel in confirm mode.
pub(crate) struct ConfirmTracker<W> {
    next_seq: u64,
    /// Ordered by sequence number, so `multiple` acks split it in one step.
    pending: BTreeMap<u64, Outstanding<W>>,
}

impl<W> Default for ConfirmTracker<W> {
    fn default() -> Self {
        ConfirmTracker {
            next_seq: 1,
            pending: BTreeMap::new(),
        }
    }
}

impl<W> ConfirmTracker<W> {
    /// Records a publish about to be written; returns its sequence number.
    /// `mandatory_route` is the exchange and routing key of a mandatory publish.
    pub(crate) fn register(
        &mut self,
        waiter: W,
        mandatory_route: Option<(ShortStr, ShortStr)>,
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.pending.insert(
            seq,
            Outstanding {
                waiter,
                route: mandatory_route,
                returned: None,
            },
        );
        seq
    }

    /// Attaches a returned message to the publish it belongs to, or gives it back when
    /// no outstanding mandatory publish matches.
    pub(crate) fn attach_return(
        &mut self,
        message: Box<ReturnedMessage>,
    ) -> Result<(), Box<ReturnedMessage>> {
        // Linear, but only over returns, which are rare; publishes pay nothing for it.
        let owner = self.pending.values_mut().find(|o| {
            o.returned.is_none()
                && o.route.as_ref().is_some_and(|(exchange, key)| {
                    *exchange == message.exchange && *key == message.routing_key
                })
        });
        match owner {
            Some(owner) => {
                owner.returned = Some(message);
                Ok(())
            }
            None => Err(message),
        }
    }

    /// Removes and returns the publishes an ack or nack with this tag settles.
    /// Unknown tags settle nothing.
    pub(crate) fn settle(&mut self, tag: u64, multiple: bool) -> Settled<W> {
        if !multiple {
            return Settled::One(self.pending.remove(&tag));
        }
        let rest = match tag.checked_add(1) {
            Some(after) if tag != 0 => self.pending.split_off(&after),
            _ => BTreeMap::new(),
        };
        Settled::Many(std::mem::replace(&mut self.pending, rest).into_values())
    }

    /// Removes every outstanding publish (the channel closed).
    pub(crate) fn drain(&mut self) -> Settled<W> {
        Settled::Many(std::mem::take(&mut self.pending).into_values())
    }

    /// Publishes awaiting a confirm.
    #[cfg(test)]
    pub(crate) fn outstanding(&self) -> usize {
        self.pending.len()
    }
}

/// The publishes one ack or nack settled, in sequence order.
pub(crate) enum Settled<W> {
    One(Option<Outstanding<W>>),
    Many(btree_map::IntoValues<u64, Outstanding<W>>),
}

impl<W> Iterator for Settled<W> {
    type Item = Outstanding<W>;

    fn next(&mut self) -> Option<Outstanding<W>> {
        match self {
            Settled::One(one) => one.take(),
            Settled::Many(many) => many.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use warren_codec::BasicProperties;

    use super::*;

    fn tracker(n: u64) -> ConfirmTracker<u64> {
        let mut t = ConfirmTracker::default();
        for i in 1..=n {
            assert_eq!(t.register(i, None), i);
        }
        t
    }

    fn waiters(settled: Settled<u64>) -> Vec<u64> {
        settled.map(|o| o.waiter).collect()
    }

    fn returned(exchange: &str, key: &str) -> Box<ReturnedMessage> {
        Box::new(ReturnedMessage {
            reply_code: 312,
            reply_text: "NO_ROUTE".into(),
            exchange: exchange.into(),
            routing_key: key.into(),
            properties: BasicProperties::default(),
            body: Bytes::from_static(b"x"),
        })
    }

    #[test]
    fn sequence_numbers_start_at_one() {
        let mut t = ConfirmTracker::default();
        assert_eq!(t.register((), None), 1);
        assert_eq!(t.register((), None), 2);
    }

    #[test]
    fn single_ack_settles_only_its_tag() {
        let mut t = tracker(3);
        assert_eq!(waiters(t.settle(2, false)), [2]);
        assert_eq!(waiters(t.settle(2, false)), Vec::<u64>::new());
        assert_eq!(t.outstanding(), 2);
    }

    #[test]
    fn multiple_ack_settles_every_tag_up_to_it() {
        let mut t = tracker(5);
        assert_eq!(waiters(t.settle(2, false)), [2]);
        assert_eq!(waiters(t.settle(4, true)), [1, 3, 4]);
        assert_eq!(waiters(t.settle(9, true)), [5]);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn multiple_with_tag_zero_settles_everything() {
        let mut t = tracker(3);
        assert_eq!(waiters(t.settle(0, true)), [1, 2, 3]);
    }

    #[test]
    fn multiple_with_the_largest_tag_does_not_overflow() {
        let mut t = tracker(2);
        assert_eq!(waiters(t.settle(u64::MAX, true)), [1, 2]);
    }

    #[test]
    fn drain_empties_the_tracker() {
        let mut t = tracker(3);
        assert_eq!(waiters(t.drain()), [1, 2, 3]);
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.register(4, None), 4);
    }

    #[test]
    fn a_return_attaches_to_the_earliest_matching_mandatory_publish() {
        let mut t = ConfirmTracker::default();
        t.register(1, None);
        t.register(2, Some(("ex".into(), "a".into())));
        t.register(3, Some(("ex".into(), "b".into())));
        t.register(4, Some(("ex".into(), "b".into())));
        assert!(t.attach_return(returned("ex", "b")).is_ok());
        assert!(t.attach_return(returned("ex", "b")).is_ok());
        let settled: Vec<(u64, bool)> = t
            .settle(4, true)
            .map(|o| (o.waiter, o.returned.is_some()))
            .collect();
        assert_eq!(settled, [(1, false), (2, false), (3, true), (4, true)]);
    }

    #[test]
    fn a_return_matching_nothing_is_given_back() {
        let mut t = ConfirmTracker::default();
        t.register(1, None);
        t.register(2, Some(("ex".into(), "a".into())));
        assert!(t.attach_return(returned("ex", "other")).is_err());
        assert!(t.attach_return(returned("ex", "a")).is_ok());
        // One return per publish: a second one for the same route has no owner.
        assert!(t.attach_return(returned("ex", "a")).is_err());
    }
}
