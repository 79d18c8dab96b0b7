//! Topic matching: binding keys compiled into a trie of words.
//!
//! Keys are words split on `.`; in a binding key `*` matches exactly one word and `#`
//! zero or more. Empty words are words (`a..b` has three), and the empty key has none,
//! as in RabbitMQ. Matching walks the trie along the routing key's words; a `#` node
//! tries every split point, and a visited set of (node, position) keeps patterns like
//! `#.#.#` linear in nodes × words instead of exponential. The cost per message depends
//! on the key's length and what matches, not on how many bindings there are.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Default)]
struct Node {
    words: HashMap<Box<str>, usize>,
    star: Option<usize>,
    hash: Option<usize>,
    /// Indexes of the bindings whose key ends here.
    bindings: Vec<usize>,
}

/// The binding keys of one topic exchange.
#[derive(Debug, Clone)]
pub(crate) struct TopicTrie {
    nodes: Vec<Node>,
}

impl Default for TopicTrie {
    fn default() -> Self {
        TopicTrie {
            nodes: vec![Node::default()],
        }
    }
}

/// A key's words, RabbitMQ style: the empty key has no words.
pub(crate) fn words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

impl TopicTrie {
    /// Adds binding `index` under `pattern`.
    pub(crate) fn insert(&mut self, pattern: &str, index: usize) {
        let mut at = 0;
        for word in words(pattern) {
            let next = self.nodes.len();
            let node = &mut self.nodes[at];
            let slot = match word {
                "*" => node.star.get_or_insert(next),
                "#" => node.hash.get_or_insert(next),
                _ => node.words.entry(word.into()).or_insert(next),
            };
            let child = *slot;
            if child == next {
                self.nodes.push(Node::default());
            }
            at = child;
        }
        self.nodes[at].bindings.push(index);
    }

    /// Calls `found` with the index of every binding whose key matches `routing_key`
    /// (a binding can be reported more than once; callers deduplicate destinations).
    pub(crate) fn matches(&self, routing_key: &str, found: &mut impl FnMut(usize)) {
        let words = words(routing_key);
        let mut visited = HashSet::new();
        self.walk(0, &words, 0, &mut visited, found);
    }

    fn walk(
        &self,
        at: usize,
        words: &[&str],
        pos: usize,
        visited: &mut HashSet<(usize, usize)>,
        found: &mut impl FnMut(usize),
    ) {
        if !visited.insert((at, pos)) {
            return;
        }
        let Some(node) = self.nodes.get(at) else {
            return;
        };
        if pos == words.len() {
            node.bindings.iter().for_each(|&i| found(i));
        }
        if let Some(hash) = node.hash {
            for next in pos..=words.len() {
                self.walk(hash, words, next, visited, found);
            }
        }
        if let Some(word) = words.get(pos) {
            if let Some(&child) = node.words.get(*word) {
                self.walk(child, words, pos + 1, visited, found);
            }
            if let Some(star) = node.star {
                self.walk(star, words, pos + 1, visited, found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: a direct recursive reading of the rules.
    fn naive(pattern: &[&str], key: &[&str]) -> bool {
        match (pattern.first(), key.first()) {
            (None, None) => true,
            (Some(&"#"), _) => (0..=key.len()).any(|skip| naive(&pattern[1..], &key[skip..])),
            (Some(&"*"), Some(_)) => naive(&pattern[1..], &key[1..]),
            (Some(p), Some(k)) => p == k && naive(&pattern[1..], &key[1..]),
            _ => false,
        }
    }

    fn trie_matches(pattern: &str, key: &str) -> bool {
        let mut trie = TopicTrie::default();
        trie.insert(pattern, 0);
        let mut hit = false;
        trie.matches(key, &mut |_| hit = true);
        hit
    }

    #[test]
    fn rules_from_the_spec_and_rabbitmq() {
        let cases = [
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a.c", false),
            ("a.#.c", "a.c", true),
            ("a.#.c", "a.b.b.c", true),
            ("#", "", true),
            ("#", "a.b", true),
            ("*", "", false),
            ("", "", true),
            ("", "a", false),
            ("a..b", "a..b", true),
            ("a.*.b", "a..b", true),
            ("#.#.#.a", "a", true),
            ("#.#.#.a", "b.a.c", false),
            ("*.*", "a.b.c", false),
            ("orders.#", "orders", true),
        ];
        for (pattern, key, expected) in cases {
            assert_eq!(trie_matches(pattern, key), expected, "{pattern} vs {key}");
        }
    }

    #[test]
    fn many_bindings_report_only_matches() {
        let mut trie = TopicTrie::default();
        for (i, p) in ["a.b", "a.*", "#", "b.#", "*.b.#"].iter().enumerate() {
            trie.insert(p, i);
        }
        let mut hits = Vec::new();
        trie.matches("a.b", &mut |i| hits.push(i));
        hits.sort_unstable();
        hits.dedup();
        assert_eq!(hits, [0, 1, 2, 4]);
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just(String::new())
        ]
    }

    fn pattern_word() -> impl Strategy<Value = String> {
        prop_oneof![word(), Just("*".to_owned()), Just("#".to_owned())]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn trie_agrees_with_the_naive_matcher(
            pattern in proptest::collection::vec(pattern_word(), 0..7),
            key in proptest::collection::vec(word(), 0..8),
        ) {
            let pattern = pattern.join(".");
            let key = key.join(".");
            let expected = naive(&words(&pattern), &words(&key));
            prop_assert_eq!(trie_matches(&pattern, &key), expected, "{} vs {}", pattern, key);
        }
    }
}
