//! `[[policies]]`: settings for every queue of a vhost whose name matches a glob. How
//! matching policies combine with each other and with a queue's own arguments is
//! `policy.rs`'s business; here each setting is range-checked as the queue argument
//! with the same meaning is (`queue::Settings::parse`), so that a policy cannot set
//! what a queue.declare could not.

use std::collections::HashMap;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Problem, Validator};
use crate::policy::{Overflow, Policy, PolicyDefinition};

/// RabbitMQ's longest timer in milliseconds (`?MAX_EXPIRY_TIMER`, about 8 years): the
/// most `x-message-ttl` and `x-expires` accept, and so the most their policy keys do.
const MAX_EXPIRY: i64 = 4_294_967_295 * 60;

/// Integers are read as i64 (TOML's integer type) so range errors can say what is allowed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    vhost: Option<Spanned<String>>,
    name: Spanned<String>,
    pattern: Spanned<String>,
    priority: Option<Spanned<i64>>,
    apply_to: Option<Spanned<String>>,
    message_ttl: Option<Spanned<i64>>,
    expires: Option<Spanned<i64>>,
    max_length: Option<Spanned<i64>>,
    max_length_bytes: Option<Spanned<i64>>,
    overflow: Option<Spanned<String>>,
    dead_letter_exchange: Option<Spanned<String>>,
    dead_letter_routing_key: Option<Spanned<String>>,
    delivery_limit: Option<Spanned<i64>>,
    max_priority: Option<Spanned<i64>>,
}

impl Validator<'_> {
    pub(super) fn policies(
        &self,
        raw: Vec<Spanned<RawPolicy>>,
        vhosts: &[&str],
    ) -> Result<Vec<Policy>, ConfigError> {
        let mut seen = HashMap::new();
        let mut policies = Vec::with_capacity(raw.len());
        for (i, entry) in raw.into_iter().enumerate() {
            let at = entry.span().start;
            let p = entry.into_inner();
            let key = |name: &str| format!("policies[{i}].{name}");
            let vhost = self.entry_vhost(p.vhost, at, key("vhost"), vhosts)?;
            let name = self.unique_in_vhost(p.name, &vhost, key("name"), "policy", &mut seen)?;
            let pattern = match glob::Pattern::new(p.pattern.get_ref()) {
                Ok(pattern) => pattern,
                Err(e) => {
                    let problem = Problem::InvalidPattern(e.to_string());
                    return self.error(p.pattern.span().start, key("pattern"), problem);
                }
            };
            if let Some(apply_to) = p.apply_to.filter(|a| a.get_ref() != "queues") {
                let at = apply_to.span().start;
                return self.error(
                    at,
                    key("apply_to"),
                    Problem::OnlyQueues(apply_to.into_inner()),
                );
            }
            let (min, max) = (i64::from(i32::MIN), i64::from(i32::MAX));
            let priority = self.ranged(p.priority.as_ref(), || key("priority"), min, max)?;
            let limit = |value: &Option<Spanned<i64>>, name: &str, min: i64, max: i64| {
                self.ranged(value.as_ref(), || key(name), min, max)
            };
            let definition = PolicyDefinition {
                message_ttl: limit(&p.message_ttl, "message_ttl", 0, MAX_EXPIRY)?,
                expires: limit(&p.expires, "expires", 1, MAX_EXPIRY)?,
                max_length: limit(&p.max_length, "max_length", 0, i64::MAX)?,
                max_length_bytes: limit(&p.max_length_bytes, "max_length_bytes", 0, i64::MAX)?,
                overflow: self.overflow(p.overflow, key("overflow"))?,
                dead_letter_exchange: self
                    .short_text(p.dead_letter_exchange, key("dead_letter_exchange"))?,
                dead_letter_routing_key: self
                    .short_text(p.dead_letter_routing_key, key("dead_letter_routing_key"))?,
                delivery_limit: limit(&p.delivery_limit, "delivery_limit", 0, i64::MAX)?,
                max_priority: self.ranged(
                    p.max_priority.as_ref(),
                    || key("max_priority"),
                    0,
                    255,
                )?,
            };
            if definition == PolicyDefinition::default() {
                return self.error(at, format!("policies[{i}]"), Problem::NoSettings);
            }
            policies.push(Policy {
                vhost,
                name,
                pattern,
                priority: priority.unwrap_or(0),
                definition,
            });
        }
        Ok(policies)
    }

    /// `overflow`: drop-head, reject-publish or reject-publish-dlx.
    fn overflow(
        &self,
        raw: Option<Spanned<String>>,
        key: String,
    ) -> Result<Option<Overflow>, ConfigError> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        match Overflow::parse(raw.get_ref()) {
            Some(overflow) => Ok(Some(overflow)),
            None => {
                let problem = Problem::UnknownKind {
                    got: raw.get_ref().clone(),
                    expected: "one of `drop-head`, `reject-publish`, `reject-publish-dlx`",
                };
                self.error(raw.span().start, key, problem)
            }
        }
    }

    /// An optional exchange name or routing key: at most 255 bytes, as AMQP carries it.
    fn short_text(
        &self,
        raw: Option<Spanned<String>>,
        key: String,
    ) -> Result<Option<String>, ConfigError> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        self.short_str(raw.get_ref(), &key, raw.span().start)?;
        Ok(Some(raw.into_inner()))
    }
}
