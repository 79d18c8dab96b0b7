//! Policies: operator settings applied to every queue whose name matches a pattern,
//! existing and future, without touching application code.
//!
//! Unlike RabbitMQ, where only the highest-priority matching policy applies (so
//! operators copy settings between policies, rabbitmq-server #7465), every matching
//! policy contributes: key by key, the highest priority that sets a key wins (equal
//! priorities: the policy defined first). [`Policies::resolve`] also says which policy
//! each key came from.
//!
//! Against a queue's own declare arguments, RabbitMQ's rules hold: for the numeric
//! limits (message TTL, expires, max length and bytes, delivery limit) the lower value
//! applies; for the rest (dead-letter exchange and routing key, overflow, max priority)
//! the argument wins.

/// What a full queue does with one more message (`x-overflow`, policy `overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop (or dead-letter) the oldest messages (`drop-head`).
    #[default]
    DropHead,
    /// Refuse the new message, nacked under confirms (`reject-publish`).
    RejectPublish,
    /// Refuse the new message and dead-letter it (`reject-publish-dlx`).
    RejectPublishDlx,
}

impl Overflow {
    /// From RabbitMQ's name (`drop-head`, `reject-publish`, `reject-publish-dlx`).
    pub fn parse(name: &str) -> Option<Overflow> {
        match name {
            "drop-head" => Some(Overflow::DropHead),
            "reject-publish" => Some(Overflow::RejectPublish),
            "reject-publish-dlx" => Some(Overflow::RejectPublishDlx),
            _ => None,
        }
    }

    /// RabbitMQ's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Overflow::DropHead => "drop-head",
            Overflow::RejectPublish => "reject-publish",
            Overflow::RejectPublishDlx => "reject-publish-dlx",
        }
    }
}

/// What a policy sets on the queues it matches; `None` leaves a key to other policies
/// and the queue's arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyDefinition {
    /// Milliseconds a message may wait in the queue (`x-message-ttl`).
    pub message_ttl: Option<u64>,
    /// Milliseconds unused before the queue deletes itself (`x-expires`, at least 1).
    pub expires: Option<u64>,
    /// Ready messages at most (`x-max-length`).
    pub max_length: Option<u64>,
    /// Body bytes of ready messages at most (`x-max-length-bytes`).
    pub max_length_bytes: Option<u64>,
    /// What a full queue does (`x-overflow`).
    pub overflow: Option<Overflow>,
    /// Where dead letters go (`x-dead-letter-exchange`; "" is the default exchange).
    pub dead_letter_exchange: Option<String>,
    /// The routing key dead letters get (`x-dead-letter-routing-key`).
    pub dead_letter_routing_key: Option<String>,
    /// Returns of a message before it is dead-lettered (`x-delivery-limit`).
    pub delivery_limit: Option<u64>,
    /// Highest message priority honoured (`x-max-priority`); takes effect on queues
    /// created while the policy applies, as a queue's priority levels are fixed.
    pub max_priority: Option<u8>,
}

impl PolicyDefinition {
    /// The keys set, under RabbitMQ's policy key names (`max-length`), as its
    /// management API shows a policy's definition.
    pub fn to_rabbitmq(&self) -> serde_json::Value {
        use serde_json::Value;
        let d = self;
        let mut out = serde_json::Map::new();
        let mut put = |key: PolicyKey, value: Option<Value>| {
            if let Some(value) = value {
                out.insert(key.rabbitmq_name().to_owned(), value);
            }
        };
        put(PolicyKey::MessageTtl, d.message_ttl.map(Value::from));
        put(PolicyKey::Expires, d.expires.map(Value::from));
        put(PolicyKey::MaxLength, d.max_length.map(Value::from));
        put(
            PolicyKey::MaxLengthBytes,
            d.max_length_bytes.map(Value::from),
        );
        put(
            PolicyKey::Overflow,
            d.overflow.map(|o| Value::from(o.as_str())),
        );
        put(
            PolicyKey::DeadLetterExchange,
            d.dead_letter_exchange.clone().map(Value::from),
        );
        put(
            PolicyKey::DeadLetterRoutingKey,
            d.dead_letter_routing_key.clone().map(Value::from),
        );
        put(PolicyKey::DeliveryLimit, d.delivery_limit.map(Value::from));
        put(PolicyKey::MaxPriority, d.max_priority.map(Value::from));
        Value::Object(out)
    }
}

/// A glob pattern as the anchored regular expression RabbitMQ's policies use: `*` is
/// `.*`, `?` is `.`, a set `[...]` stays a set (`[!...]` becomes `[^...]`), anything
/// else is matched literally.
pub fn glob_to_regex(glob: &str) -> String {
    let mut out = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => {
                out.push('[');
                if chars.peek() == Some(&'!') {
                    chars.next();
                    out.push('^');
                }
                // A `]` first in a set is literal, as in glob.
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
                for c in chars.by_ref() {
                    match c {
                        ']' => break,
                        '\\' | '[' | '^' => {
                            out.push('\\');
                            out.push(c);
                        }
                        c => out.push(c),
                    }
                }
                out.push(']');
            }
            c if "\\.+()|{}^$[]".contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('$');
    out
}

/// One `[[policies]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The vhost whose queues it applies to.
    pub vhost: String,
    /// Its name, unique in the vhost.
    pub name: String,
    /// A glob over queue names: `*` any run of characters, `?` one, `[abc]` a set.
    pub pattern: glob::Pattern,
    /// Higher wins, key by key.
    pub priority: i32,
    /// The settings.
    pub definition: PolicyDefinition,
}

/// A key a policy can set, for reporting where an effective setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PolicyKey {
    /// `message_ttl`
    MessageTtl,
    /// `expires`
    Expires,
    /// `max_length`
    MaxLength,
    /// `max_length_bytes`
    MaxLengthBytes,
    /// `overflow`
    Overflow,
    /// `dead_letter_exchange`
    DeadLetterExchange,
    /// `dead_letter_routing_key`
    DeadLetterRoutingKey,
    /// `delivery_limit`
    DeliveryLimit,
    /// `max_priority`
    MaxPriority,
}

impl PolicyKey {
    /// Every key, in the order they are reported.
    pub const ALL: [PolicyKey; 9] = [
        PolicyKey::MessageTtl,
        PolicyKey::Expires,
        PolicyKey::MaxLength,
        PolicyKey::MaxLengthBytes,
        PolicyKey::Overflow,
        PolicyKey::DeadLetterExchange,
        PolicyKey::DeadLetterRoutingKey,
        PolicyKey::DeliveryLimit,
        PolicyKey::MaxPriority,
    ];

    /// The key as written in broker.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKey::MessageTtl => "message_ttl",
            PolicyKey::Expires => "expires",
            PolicyKey::MaxLength => "max_length",
            PolicyKey::MaxLengthBytes => "max_length_bytes",
            PolicyKey::Overflow => "overflow",
            PolicyKey::DeadLetterExchange => "dead_letter_exchange",
            PolicyKey::DeadLetterRoutingKey => "dead_letter_routing_key",
            PolicyKey::DeliveryLimit => "delivery_limit",
            PolicyKey::MaxPriority => "max_priority",
        }
    }

    /// RabbitMQ's policy key (`max-length`).
    pub fn rabbitmq_name(self) -> &'static str {
        self.argument().trim_start_matches("x-")
    }

    /// The queue argument with the same meaning.
    pub fn argument(self) -> &'static str {
        match self {
            PolicyKey::MessageTtl => "x-message-ttl",
            PolicyKey::Expires => "x-expires",
            PolicyKey::MaxLength => "x-max-length",
            PolicyKey::MaxLengthBytes => "x-max-length-bytes",
            PolicyKey::Overflow => "x-overflow",
            PolicyKey::DeadLetterExchange => "x-dead-letter-exchange",
            PolicyKey::DeadLetterRoutingKey => "x-dead-letter-routing-key",
            PolicyKey::DeliveryLimit => "x-delivery-limit",
            PolicyKey::MaxPriority => "x-max-priority",
        }
    }

    /// Whether, when a queue argument and a policy both set this key, the lower value
    /// applies (RabbitMQ's rule for the numeric limits); otherwise the argument wins.
    pub fn lower_wins(self) -> bool {
        matches!(
            self,
            PolicyKey::MessageTtl
                | PolicyKey::Expires
                | PolicyKey::MaxLength
                | PolicyKey::MaxLengthBytes
                | PolicyKey::DeliveryLimit
        )
    }

    fn is_set_in(self, d: &PolicyDefinition) -> bool {
        match self {
            PolicyKey::MessageTtl => d.message_ttl.is_some(),
            PolicyKey::Expires => d.expires.is_some(),
            PolicyKey::MaxLength => d.max_length.is_some(),
            PolicyKey::MaxLengthBytes => d.max_length_bytes.is_some(),
            PolicyKey::Overflow => d.overflow.is_some(),
            PolicyKey::DeadLetterExchange => d.dead_letter_exchange.is_some(),
            PolicyKey::DeadLetterRoutingKey => d.dead_letter_routing_key.is_some(),
            PolicyKey::DeliveryLimit => d.delivery_limit.is_some(),
            PolicyKey::MaxPriority => d.max_priority.is_some(),
        }
    }

    /// Copies this key's value from `from` into `into`.
    fn copy(self, from: &PolicyDefinition, into: &mut PolicyDefinition) {
        match self {
            PolicyKey::MessageTtl => into.message_ttl = from.message_ttl,
            PolicyKey::Expires => into.expires = from.expires,
            PolicyKey::MaxLength => into.max_length = from.max_length,
            PolicyKey::MaxLengthBytes => into.max_length_bytes = from.max_length_bytes,
            PolicyKey::Overflow => into.overflow = from.overflow,
            PolicyKey::DeadLetterExchange => {
                into.dead_letter_exchange = from.dead_letter_exchange.clone();
            }
            PolicyKey::DeadLetterRoutingKey => {
                into.dead_letter_routing_key = from.dead_letter_routing_key.clone();
            }
            PolicyKey::DeliveryLimit => into.delivery_limit = from.delivery_limit,
            PolicyKey::MaxPriority => into.max_priority = from.max_priority,
        }
    }
}

/// The policies of one vhost, highest priority first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    ordered: Vec<Policy>,
}

/// The merged settings the policies give one queue, and which policy set each key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The merged settings.
    pub definition: PolicyDefinition,
    /// For each key set, the name of the policy it came from.
    pub sources: Vec<(PolicyKey, String)>,
    /// The policies that set something, highest priority first.
    pub policies: Vec<String>,
}

impl Policies {
    /// The policies of `vhost` among `all`.
    pub fn for_vhost(all: &[Policy], vhost: &str) -> Policies {
        let mut ordered: Vec<Policy> = all.iter().filter(|p| p.vhost == vhost).cloned().collect();
        // Stable: equal priorities keep the order they were defined in.
        ordered.sort_by_key(|p| std::cmp::Reverse(p.priority));
        Policies { ordered }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.ordered.is_empty()
    }

    /// The policies matching `queue`, highest priority first.
    pub fn matching<'a>(&'a self, queue: &'a str) -> impl Iterator<Item = &'a Policy> + 'a {
        self.ordered
            .iter()
            .filter(move |p| p.pattern.matches(queue))
    }

    /// Merges the policies matching `queue`, key by key.
    pub fn resolve(&self, queue: &str) -> Resolved {
        let mut resolved = Resolved::default();
        for policy in self.matching(queue) {
            let mut contributed = false;
            for key in PolicyKey::ALL {
                let taken = resolved.sources.iter().any(|(k, _)| *k == key);
                if !taken && key.is_set_in(&policy.definition) {
                    key.copy(&policy.definition, &mut resolved.definition);
                    resolved.sources.push((key, policy.name.clone()));
                    contributed = true;
                }
            }
            if contributed {
                resolved.policies.push(policy.name.clone());
            }
        }
        resolved.sources.sort();
        resolved
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn globs_become_anchored_regexes() {
        assert_eq!(glob_to_regex("orders.*"), "^orders\\..*$");
        assert_eq!(glob_to_regex("q?[!ab]"), "^q.[^ab]$");
        assert_eq!(glob_to_regex("*"), "^.*$");
        assert_eq!(glob_to_regex("a+(b)|$"), "^a\\+\\(b\\)\\|\\$$");
    }

    proptest! {
        /// The regex matches exactly the names the glob matches.
        #[test]
        fn a_glob_and_its_regex_match_the_same_names(
            glob in "([a.*?+(]|\\[!?[ab.]\\]){0,6}",
            names in proptest::collection::vec("[ab.+(]{0,6}", 1..20),
        ) {
            let Ok(pattern) = glob::Pattern::new(&glob) else { return Ok(()) };
            let regex = regex::Regex::new(&glob_to_regex(&glob)).unwrap();
            for name in names {
                prop_assert_eq!(pattern.matches(&name), regex.is_match(&name), "{} {}", glob, name);
            }
        }
    }

    fn policy(name: &str, pattern: &str, priority: i32, definition: PolicyDefinition) -> Policy {
        Policy {
            vhost: "/".into(),
            name: name.into(),
            pattern: glob::Pattern::new(pattern).unwrap_or_default(),
            priority,
            definition,
        }
    }

    #[test]
    fn matching_policies_merge_key_by_key_with_the_higher_priority_winning() {
        let all = [
            policy(
                "limits",
                "orders.*",
                1,
                PolicyDefinition {
                    max_length: Some(1000),
                    overflow: Some(Overflow::RejectPublish),
                    ..Default::default()
                },
            ),
            policy(
                "dlx",
                "*",
                0,
                PolicyDefinition {
                    dead_letter_exchange: Some("dlx".into()),
                    max_length: Some(5),
                    ..Default::default()
                },
            ),
            policy(
                "other-vhost",
                "*",
                9,
                PolicyDefinition {
                    message_ttl: Some(1),
                    ..Default::default()
                },
            ),
        ];
        let mut all = all.to_vec();
        all[2].vhost = "v".into();
        let policies = Policies::for_vhost(&all, "/");
        let resolved = policies.resolve("orders.created");
        assert_eq!(
            resolved.definition,
            PolicyDefinition {
                max_length: Some(1000),
                overflow: Some(Overflow::RejectPublish),
                dead_letter_exchange: Some("dlx".into()),
                ..Default::default()
            }
        );
        assert_eq!(
            resolved.sources,
            [
                (PolicyKey::MaxLength, "limits".to_owned()),
                (PolicyKey::Overflow, "limits".to_owned()),
                (PolicyKey::DeadLetterExchange, "dlx".to_owned()),
            ]
        );
        assert_eq!(resolved.policies, ["limits", "dlx"]);
        let other = policies.resolve("payments");
        assert_eq!(other.definition.max_length, Some(5));
        assert_eq!(other.definition.overflow, None);
    }

    #[test]
    fn equal_priorities_go_to_the_policy_defined_first() {
        let first = PolicyDefinition {
            message_ttl: Some(1),
            ..Default::default()
        };
        let second = PolicyDefinition {
            message_ttl: Some(2),
            ..Default::default()
        };
        let all = [policy("a", "*", 0, first), policy("b", "*", 0, second)];
        let resolved = Policies::for_vhost(&all, "/").resolve("q");
        assert_eq!(resolved.definition.message_ttl, Some(1));
        assert_eq!(resolved.sources, [(PolicyKey::MessageTtl, "a".to_owned())]);
    }

    #[test]
    fn globs_match_whole_names() {
        let all = [policy("p", "orders.*", 0, PolicyDefinition::default())];
        let policies = Policies::for_vhost(&all, "/");
        assert_eq!(policies.matching("orders.x").count(), 1);
        assert_eq!(policies.matching("orders.").count(), 1);
        assert_eq!(policies.matching("orders").count(), 0);
        assert_eq!(policies.matching("my.orders.x").count(), 0);
    }

    #[test]
    fn overflow_names_round_trip() {
        for o in [
            Overflow::DropHead,
            Overflow::RejectPublish,
            Overflow::RejectPublishDlx,
        ] {
            assert_eq!(Overflow::parse(o.as_str()), Some(o));
        }
        assert_eq!(Overflow::parse("drop-tail"), None);
    }
}
