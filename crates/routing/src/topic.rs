//! Topic matching: binding keys compiled into a trie of words.
//!
//! Keys are words split on `.`; in a binding key `*` matches exactly one word and `#`
//! zero or more. Empty words are words (`a..b` has three), and the empty key has none,
//! as in RabbitMQ. Matching walks the trie along the routing key's words; a `#` node
//! tries every split point, and a visited set of (node, position) keeps patterns like
//! `#.#.#` linear in nodes × words instead of exponential. The cost per message depends
//! on the key's length and what matches, not on how many bindings there are.
//!
//! The trie is persistent: nodes are shared between copies, and an insert or removal
//! copies only the nodes on its path. A topology change copies the exchange (publishers
//! may still be routing against the old one), so this keeps a bind O(key length)
//! instead of O(bindings).

use std::collections::HashSet;
use std::sync::Arc;

use imbl::HashMap;

#[derive(Debug, Clone, Default)]
struct Node {
    words: HashMap<Arc<str>, Arc<Node>>,
    star: Option<Arc<Node>>,
    hash: Option<Arc<Node>>,
    /// The binding key that ends here.
    pattern: Option<Arc<str>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.pattern.is_none()
            && self.star.is_none()
            && self.hash.is_none()
            && self.words.is_empty()
    }
}

/// The binding keys of one topic exchange.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopicTrie {
    root: Arc<Node>,
}

/// A key's words, RabbitMQ style: the empty key has no words.
pub(crate) fn words(key: &str) -> impl Iterator<Item = &str> {
    let mut split = key.split('.');
    if key.is_empty() {
        split.next();
    }
    split
}

impl TopicTrie {
    /// Adds binding key `pattern` (once; adding it again changes nothing).
    pub(crate) fn insert(&mut self, pattern: &Arc<str>) {
        let mut node = Arc::make_mut(&mut self.root);
        for word in words(pattern) {
            let child = match word {
                "*" => node.star.get_or_insert_with(Arc::default),
                "#" => node.hash.get_or_insert_with(Arc::default),
                _ => {
                    if !node.words.contains_key(word) {
                        node.words.insert(word.into(), Arc::default());
                    }
                    match node.words.get_mut(word) {
                        Some(child) => child,
                        None => return,
                    }
                }
            };
            node = Arc::make_mut(child);
        }
        node.pattern = Some(pattern.clone());
    }

    /// Removes binding key `pattern`, and the nodes that only led to it.
    pub(crate) fn remove(&mut self, pattern: &str) {
        let words: Vec<&str> = words(pattern).collect();
        remove(&mut self.root, &words);
    }

    /// Calls `found` with every binding key that matches `routing_key` (a key can be
    /// reported more than once; callers deduplicate destinations).
    pub(crate) fn matches<'t>(&'t self, routing_key: &str, found: &mut impl FnMut(&'t Arc<str>)) {
        let words: Vec<&str> = words(routing_key).collect();
        walk(&self.root, &words, 0, false, &mut HashSet::new(), found);
    }
}

/// Reports the patterns below `node` that match `words[pos..]`. `visited` holds the
/// (node, position) pairs already walked; only a path through `#` can reach one twice,
/// so only those are recorded (and a key that meets no `#` allocates nothing).
fn walk<'t>(
    node: &'t Node,
    words: &[&str],
    pos: usize,
    through_hash: bool,
    visited: &mut HashSet<(usize, usize)>,
    found: &mut impl FnMut(&'t Arc<str>),
) {
    if through_hash && !visited.insert((std::ptr::from_ref(node) as usize, pos)) {
        return;
    }
    if pos == words.len()
        && let Some(pattern) = &node.pattern
    {
        found(pattern);
    }
    if let Some(hash) = &node.hash {
        for next in pos..=words.len() {
            walk(hash, words, next, true, visited, found);
        }
    }
    if let Some(&word) = words.get(pos) {
        if let Some(child) = node.words.get(word) {
            walk(child, words, pos + 1, through_hash, visited, found);
        }
        if let Some(star) = &node.star {
            walk(star, words, pos + 1, through_hash, visited, found);
        }
    }
}

/// Removes the rest of a pattern below `node`; true when `node` is left empty.
fn remove(node: &mut Arc<Node>, words: &[&str]) -> bool {
    let n = Arc::make_mut(node);
    match words.split_first() {
        None => n.pattern = None,
        Some((&word, rest)) => {
            let slot = match word {
                "*" => n.star.as_mut(),
                "#" => n.hash.as_mut(),
                _ => n.words.get_mut(word),
            };
            if let Some(child) = slot
                && remove(child, rest)
            {
                match word {
                    "*" => n.star = None,
                    "#" => n.hash = None,
                    _ => {
                        n.words.remove(word);
                    }
                }
            }
        }
    }
    n.is_empty()
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

    fn words_of(key: &str) -> Vec<&str> {
        words(key).collect()
    }

    fn trie_matches(pattern: &str, key: &str) -> bool {
        let mut trie = TopicTrie::default();
        trie.insert(&pattern.into());
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

    fn hits(trie: &TopicTrie, key: &str) -> Vec<String> {
        let mut hits = Vec::new();
        trie.matches(key, &mut |p| hits.push(p.to_string()));
        hits.sort_unstable();
        hits.dedup();
        hits
    }

    #[test]
    fn many_bindings_report_only_matches() {
        let mut trie = TopicTrie::default();
        for p in ["a.b", "a.*", "#", "b.#", "*.b.#"] {
            trie.insert(&p.into());
        }
        assert_eq!(hits(&trie, "a.b"), ["#", "*.b.#", "a.*", "a.b"]);
    }

    #[test]
    fn removal_prunes_and_leaves_the_rest_and_older_copies_alone() {
        let mut trie = TopicTrie::default();
        for p in ["a.b.c", "a.b", "a.#", "x.*"] {
            trie.insert(&p.into());
        }
        let before = trie.clone();
        trie.remove("a.b.c");
        trie.remove("x.*");
        assert_eq!(hits(&trie, "a.b.c"), ["a.#"]);
        assert_eq!(hits(&trie, "a.b"), ["a.#", "a.b"]);
        assert_eq!(hits(&trie, "x.y"), Vec::<String>::new());
        assert!(trie.root.star.is_none() && !trie.root.words.contains_key("x"));
        // A copy taken before (a published snapshot) is unchanged.
        assert_eq!(hits(&before, "a.b.c"), ["a.#", "a.b.c"]);
        trie.remove("a.b");
        trie.remove("a.#");
        assert!(trie.root.is_empty());
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
            let expected = naive(&words_of(&pattern), &words_of(&key));
            prop_assert_eq!(trie_matches(&pattern, &key), expected, "{} vs {}", pattern, key);
        }

        #[test]
        fn removals_leave_exactly_the_remaining_patterns(
            patterns in proptest::collection::vec(
                proptest::collection::vec(pattern_word(), 0..5), 1..8),
            removed in proptest::collection::vec(any::<bool>(), 8),
            key in proptest::collection::vec(word(), 0..6),
        ) {
            let patterns: Vec<String> = patterns.iter().map(|p| p.join(".")).collect();
            let mut trie = TopicTrie::default();
            for p in &patterns {
                trie.insert(&p.as_str().into());
            }
            let mut kept: Vec<&String> = Vec::new();
            for (p, gone) in patterns.iter().zip(&removed) {
                if *gone {
                    trie.remove(p);
                } else {
                    kept.push(p);
                }
            }
            // A pattern listed twice and removed once is gone: the trie holds keys,
            // the exchange counts bindings.
            kept.retain(|p| !patterns.iter().zip(&removed).any(|(q, gone)| *gone && q == *p));
            let key = key.join(".");
            let mut expected: Vec<String> = kept
                .iter()
                .filter(|p| naive(&words_of(p), &words_of(&key)))
                .map(|p| p.to_string())
                .collect();
            expected.sort_unstable();
            expected.dedup();
            prop_assert_eq!(hits(&trie, &key), expected);
        }
    }
}
