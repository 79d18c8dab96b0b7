//! Hashing for integer keys: channel numbers, connection ids, a queue's message ids.
//!
//! std's SipHash guards keys an attacker picks freely (strings) against crafted
//! collisions, at tens of nanoseconds a lookup. These keys are integers the broker
//! assigns, or bounds (a channel number is at most `channel_max`), and are looked up
//! per message; one multiply spreads them well enough.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by an integer.
pub(crate) type NumberMap<K, V> = HashMap<K, V, BuildHasherDefault<NumberHasher>>;

/// A set of integers.
pub(crate) type NumberSet<K> = HashSet<K, BuildHasherDefault<NumberHasher>>;

/// Fibonacci hashing: the multiplier is 2^64 over the golden ratio, so consecutive
/// keys land far apart in both the low bits (the bucket) and the high bits (the
/// table's tag byte).
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// The hasher behind [`NumberMap`] and [`NumberSet`].
#[derive(Default, Clone, Copy)]
pub(crate) struct NumberHasher(u64);

impl Hasher for NumberHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(MULTIPLIER);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_keys_spread_over_buckets_and_tags() {
        let hash = |n: u64| {
            let mut h = NumberHasher::default();
            h.write_u64(n);
            h.finish()
        };
        let buckets: HashSet<u64> = (0..1024).map(|n| hash(n) & 1023).collect();
        let tags: HashSet<u64> = (0..1024).map(|n| hash(n) >> 57).collect();
        assert_eq!(
            buckets.len(),
            1024,
            "the low bits of 1,024 keys should all differ"
        );
        assert_eq!(
            tags.len(),
            128,
            "the top seven bits should take every value"
        );
    }

    #[test]
    fn maps_keyed_by_numbers_behave_as_maps() {
        let mut map: NumberMap<u16, u32> = NumberMap::default();
        for n in 0..2048u16 {
            map.insert(n, u32::from(n) * 2);
        }
        assert_eq!(map.len(), 2048);
        assert!((0..2048u16).all(|n| map.get(&n) == Some(&(u32::from(n) * 2))));
        assert_eq!(map.remove(&7), Some(14));
        assert!(!map.contains_key(&7));
    }
}
