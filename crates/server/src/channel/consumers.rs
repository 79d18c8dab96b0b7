//! A channel's consumers as the connection knows them: by tag for the client's
//! methods, by id for the queues' deliveries.
//!
//! Deliveries name their consumer by a broker-wide id rather than by tag, so a queue
//! touches no reference count per delivery and a late delivery for a cancelled
//! consumer can never reach a new one that reused its tag.
//!
//! A cancelled consumer's tag is free at once, but its id stays known until its queue
//! says it sent the last delivery for it ([`ChannelConsumers::forget`]): a delivery
//! still in flight then finds the queue to go back to.

use std::collections::HashMap;

use warren_codec::ShortStr;

use crate::number_hash::NumberMap;
use crate::queue::ConsumerId;

/// A consumer on this channel.
#[derive(Debug)]
pub(crate) struct ChannelConsumer {
    pub(crate) tag: ShortStr,
    /// Its queue, as an index into the channel's touched queues.
    pub(crate) queue: u32,
    /// Cancelled by the client: what still arrives for it goes back to the queue.
    pub(crate) cancelled: bool,
}

#[derive(Debug, Default)]
pub(crate) struct ChannelConsumers {
    by_tag: HashMap<ShortStr, ConsumerId>,
    by_id: NumberMap<ConsumerId, ChannelConsumer>,
}

impl ChannelConsumers {
    /// Consumers not cancelled (a cancelled one has already given up its tag).
    pub(crate) fn len(&self) -> usize {
        self.by_tag.len()
    }

    pub(crate) fn contains_tag(&self, tag: &str) -> bool {
        self.by_tag.contains_key(tag)
    }

    /// Registers a consumer; the caller has checked its tag is free.
    pub(crate) fn add(&mut self, id: ConsumerId, tag: ShortStr, queue: u32) {
        self.by_tag.insert(tag.clone(), id);
        let cancelled = false;
        self.by_id.insert(
            id,
            ChannelConsumer {
                tag,
                queue,
                cancelled,
            },
        );
    }

    pub(crate) fn get(&self, id: ConsumerId) -> Option<&ChannelConsumer> {
        self.by_id.get(&id)
    }

    /// The id and queue index of the consumer with this tag.
    pub(crate) fn by_tag(&self, tag: &str) -> Option<(ConsumerId, u32)> {
        let id = *self.by_tag.get(tag)?;
        Some((id, self.by_id.get(&id)?.queue))
    }

    /// Frees the tag of a consumer being cancelled; its id stays known, marked
    /// cancelled, until [`ChannelConsumers::forget`].
    pub(crate) fn cancel(&mut self, tag: &str) -> Option<(ConsumerId, u32)> {
        let id = self.by_tag.remove(tag)?;
        let consumer = self.by_id.get_mut(&id)?;
        consumer.cancelled = true;
        Some((id, consumer.queue))
    }

    /// Forgets a consumer its queue will send nothing more for.
    pub(crate) fn forget(&mut self, id: ConsumerId) {
        if let Some(consumer) = self.by_id.remove(&id)
            && self.by_tag.get(&consumer.tag) == Some(&id)
        {
            self.by_tag.remove(&consumer.tag);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.by_tag.clear();
        self.by_id.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_is_found_by_tag_and_by_id_until_forgotten() {
        let mut consumers = ChannelConsumers::default();
        consumers.add(7, ShortStr::from_static("a"), 2);
        consumers.add(9, ShortStr::from_static("b"), 0);
        assert_eq!(consumers.by_tag("a"), Some((7, 2)));
        assert_eq!(consumers.get(9).map(|c| c.tag.as_str()), Some("b"));
        consumers.forget(7);
        assert!(consumers.get(7).is_none() && !consumers.contains_tag("a"));
        assert_eq!(consumers.len(), 1);
    }

    #[test]
    fn a_cancelled_consumer_frees_its_tag_but_is_known_until_forgotten() {
        let mut consumers = ChannelConsumers::default();
        consumers.add(1, ShortStr::from_static("t"), 3);
        assert_eq!(consumers.cancel("t"), Some((1, 3)));
        assert!(!consumers.contains_tag("t"));
        assert!(consumers.get(1).is_some_and(|c| c.cancelled));
        assert_eq!(consumers.len(), 0);
        // The tag may be reused at once; forgetting the old id leaves the new one.
        consumers.add(2, ShortStr::from_static("t"), 0);
        consumers.forget(1);
        assert!(consumers.get(1).is_none());
        assert_eq!(consumers.by_tag("t"), Some((2, 0)));
    }
}
