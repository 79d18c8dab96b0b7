//! A queue's behaviour settings from its declare arguments: TTLs, length limits,
//! overflow, dead-lettering, the delivery limit, priorities, single active consumer. Names, types and checks are
//! RabbitMQ's, and so is the text of a refusal (`{value_negative,-1}` and the like), so
//! that existing declarations and habits carry over.

use std::sync::Arc;

use warren_codec::{FieldTable, FieldValue};

pub(crate) use crate::policy::Overflow;
use crate::policy::PolicyDefinition;

/// The settings that change how a queue treats its messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    /// `x-message-ttl`: milliseconds a message may wait in the queue.
    pub(crate) message_ttl: Option<u64>,
    /// `x-expires`: milliseconds unused before the queue deletes itself.
    pub(crate) expires: Option<u64>,
    /// `x-max-length`: ready messages at most.
    pub(crate) max_length: Option<u64>,
    /// `x-max-length-bytes`: body bytes of ready messages at most.
    pub(crate) max_length_bytes: Option<u64>,
    /// `x-overflow`.
    pub(crate) overflow: Overflow,
    /// `x-dead-letter-exchange` ("" is the default exchange).
    pub(crate) dead_letter_exchange: Option<Arc<str>>,
    /// `x-dead-letter-routing-key`.
    pub(crate) dead_letter_routing_key: Option<Arc<str>>,
    /// `x-delivery-limit`: returns of a message before it is dead-lettered.
    pub(crate) delivery_limit: Option<u64>,
    /// `x-single-active-consumer`: one consumer receives at a time.
    pub(crate) single_active_consumer: bool,
    /// `x-max-priority`: message priorities 0 to this are honoured.
    pub(crate) max_priority: Option<u8>,
}

/// RabbitMQ's longest timer, about 8 years (`?MAX_EXPIRY_TIMER`).
const MAX_EXPIRY: i64 = 4_294_967_295 * 60;

/// A refused argument: its name and RabbitMQ's reason.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub(crate) argument: &'static str,
    pub(crate) reason: Reason,
}

/// Why an argument was refused; RabbitMQ words the two differently.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// A bad value, as RabbitMQ's reason term (`{value_negative,-1}`).
    Value(String),
    /// A string or boolean argument of another type (the type's name).
    Type(&'static str),
}

impl Invalid {
    /// RabbitMQ's refusal text for queue `queue` in vhost `vhost`.
    pub(crate) fn text(&self, queue: &str, vhost: &str) -> String {
        let argument = self.argument;
        match &self.reason {
            Reason::Value(term) => {
                format!("invalid arg '{argument}' for queue '{queue}' in vhost '{vhost}': {term}")
            }
            Reason::Type(type_name) => format!(
                "invalid type '{type_name}' for arg '{argument}' in queue '{queue}' in vhost '{vhost}'"
            ),
        }
    }
}

/// RabbitMQ's reason for an integer argument of another type.
pub(crate) fn expected_integer(value: &FieldValue) -> String {
    format!("\"expected integer, got {}\"", value.type_name())
}

impl Settings {
    /// These settings (from `arguments`) with a policy's: RabbitMQ's precedence. For
    /// the numeric limits the lower value applies; otherwise an argument the queue was
    /// declared with wins over the policy.
    pub(crate) fn with_policy(
        &self,
        arguments: &FieldTable,
        policy: &PolicyDefinition,
    ) -> Settings {
        let lower = |argument: Option<u64>, policy: Option<u64>| match (argument, policy) {
            (Some(a), Some(p)) => Some(a.min(p)),
            (a, p) => a.or(p),
        };
        let text = |value: &Option<String>| value.as_deref().map(Arc::from);
        Settings {
            message_ttl: lower(self.message_ttl, policy.message_ttl),
            expires: lower(self.expires, policy.expires),
            max_length: lower(self.max_length, policy.max_length),
            max_length_bytes: lower(self.max_length_bytes, policy.max_length_bytes),
            overflow: match (arguments.get("x-overflow"), policy.overflow) {
                (None, Some(overflow)) => overflow,
                _ => self.overflow,
            },
            dead_letter_exchange: self
                .dead_letter_exchange
                .clone()
                .or_else(|| text(&policy.dead_letter_exchange)),
            dead_letter_routing_key: self
                .dead_letter_routing_key
                .clone()
                .or_else(|| text(&policy.dead_letter_routing_key)),
            delivery_limit: lower(self.delivery_limit, policy.delivery_limit),
            single_active_consumer: self.single_active_consumer,
            max_priority: self.max_priority.or(policy.max_priority),
        }
    }

    /// Reads the settings from declare arguments; other arguments are ignored here.
    pub(crate) fn parse(arguments: &FieldTable) -> Result<Settings, Invalid> {
        let get = |name| arguments.get(name);
        let dead_letter_exchange = string(get("x-dead-letter-exchange"), "x-dead-letter-exchange")?;
        let dead_letter_routing_key = string(
            get("x-dead-letter-routing-key"),
            "x-dead-letter-routing-key",
        )?;
        if dead_letter_routing_key.is_some() && dead_letter_exchange.is_none() {
            return Err(Invalid {
                argument: "x-dead-letter-routing-key",
                reason: Reason::Value("routing_key_but_no_dlx_defined".into()),
            });
        }
        let overflow = match get("x-overflow") {
            None => Overflow::DropHead,
            Some(value) => match value.as_str().map(Overflow::parse) {
                Some(Some(overflow)) => overflow,
                Some(None) => {
                    return Err(Invalid {
                        argument: "x-overflow",
                        reason: Reason::Value("invalid_overflow".into()),
                    });
                }
                None => return Err(unacceptable("x-overflow", value)),
            },
        };
        Ok(Settings {
            message_ttl: expiry(get("x-message-ttl"), "x-message-ttl", true)?,
            expires: expiry(get("x-expires"), "x-expires", false)?,
            max_length: non_negative(get("x-max-length"), "x-max-length")?,
            max_length_bytes: non_negative(get("x-max-length-bytes"), "x-max-length-bytes")?,
            overflow,
            dead_letter_exchange,
            dead_letter_routing_key,
            delivery_limit: non_negative(get("x-delivery-limit"), "x-delivery-limit")?,
            single_active_consumer: match get("x-single-active-consumer") {
                None => false,
                Some(FieldValue::Bool(b)) => *b,
                Some(other) => return Err(unacceptable("x-single-active-consumer", other)),
            },
            max_priority: match non_negative(get("x-max-priority"), "x-max-priority")? {
                None => None,
                Some(n) => Some(u8::try_from(n).map_err(|_| Invalid {
                    argument: "x-max-priority",
                    reason: Reason::Value(format!("{{max_value_exceeded,{n}}}")),
                })?),
            },
        })
    }
}

fn unacceptable(argument: &'static str, value: &FieldValue) -> Invalid {
    Invalid {
        argument,
        reason: Reason::Type(value.type_name()),
    }
}

fn integer(value: &FieldValue, argument: &'static str) -> Result<i64, Invalid> {
    value.as_i64().ok_or_else(|| Invalid {
        argument,
        reason: Reason::Value(expected_integer(value)),
    })
}

fn non_negative(
    value: Option<&FieldValue>,
    argument: &'static str,
) -> Result<Option<u64>, Invalid> {
    let Some(value) = value else { return Ok(None) };
    let n = integer(value, argument)?;
    u64::try_from(n).map(Some).map_err(|_| Invalid {
        argument,
        reason: Reason::Value(format!("{{value_negative,{n}}}")),
    })
}

/// A TTL in milliseconds; `x-expires` may not be 0, `x-message-ttl` may.
fn expiry(
    value: Option<&FieldValue>,
    argument: &'static str,
    zero_ok: bool,
) -> Result<Option<u64>, Invalid> {
    let Some(value) = value else { return Ok(None) };
    let n = integer(value, argument)?;
    let reason = if n == 0 && !zero_ok {
        format!("{{value_zero,{n}}}")
    } else if n < 0 {
        format!("{{value_negative,{n}}}")
    } else if n > MAX_EXPIRY {
        format!("{{value_too_large,{n}}}")
    } else {
        return Ok(u64::try_from(n).ok());
    };
    Err(Invalid {
        argument,
        reason: Reason::Value(reason),
    })
}

fn string(value: Option<&FieldValue>, argument: &'static str) -> Result<Option<Arc<str>>, Invalid> {
    match value {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(|s| Some(Arc::from(s)))
            .ok_or_else(|| unacceptable(argument, v)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::*;

    fn args(pairs: &[(&str, FieldValue)]) -> FieldTable {
        pairs.iter().cloned().map(|(k, v)| (k.into(), v)).collect()
    }

    fn refused(pairs: &[(&str, FieldValue)]) -> (&'static str, String) {
        match Settings::parse(&args(pairs)) {
            Err(invalid) => (invalid.argument, invalid.text("q", "/")),
            Ok(s) => panic!("accepted: {s:?}"),
        }
    }

    fn value(argument: &str, term: &str) -> String {
        format!("invalid arg '{argument}' for queue 'q' in vhost '/': {term}")
    }

    #[test]
    fn reads_every_setting() {
        let s = Settings::parse(&args(&[
            ("x-message-ttl", FieldValue::I32(0)),
            ("x-expires", FieldValue::I64(1000)),
            ("x-max-length", FieldValue::U8(5)),
            ("x-max-length-bytes", FieldValue::I16(100)),
            ("x-overflow", FieldValue::string("reject-publish-dlx")),
            ("x-dead-letter-exchange", FieldValue::string("")),
            ("x-dead-letter-routing-key", FieldValue::string("dlq")),
            ("x-delivery-limit", FieldValue::I32(3)),
            ("x-single-active-consumer", FieldValue::Bool(true)),
            ("x-max-priority", FieldValue::U8(10)),
            ("x-other", FieldValue::Bool(true)),
        ]));
        let expected = Settings {
            message_ttl: Some(0),
            expires: Some(1000),
            max_length: Some(5),
            max_length_bytes: Some(100),
            overflow: Overflow::RejectPublishDlx,
            dead_letter_exchange: Some("".into()),
            dead_letter_routing_key: Some("dlq".into()),
            delivery_limit: Some(3),
            single_active_consumer: true,
            max_priority: Some(10),
        };
        assert_eq!(s, Ok(expected));
        assert_eq!(Settings::parse(&FieldTable::new()), Ok(Settings::default()));
    }

    #[test]
    fn policies_lower_the_limits_and_fill_in_what_the_arguments_leave() {
        let arguments = args(&[
            ("x-max-length", FieldValue::I32(100)),
            ("x-message-ttl", FieldValue::I32(1000)),
            ("x-overflow", FieldValue::string("drop-head")),
            ("x-dead-letter-exchange", FieldValue::string("mine")),
        ]);
        let own = Settings::parse(&arguments).unwrap_or_default();
        let policy = PolicyDefinition {
            max_length: Some(10),
            message_ttl: Some(60_000),
            expires: Some(5000),
            overflow: Some(Overflow::RejectPublish),
            dead_letter_exchange: Some("policy".into()),
            dead_letter_routing_key: Some("dead".into()),
            delivery_limit: Some(3),
            max_priority: Some(5),
            ..Default::default()
        };
        let merged = own.with_policy(&arguments, &policy);
        assert_eq!(
            merged,
            Settings {
                max_length: Some(10),
                message_ttl: Some(1000),
                expires: Some(5000),
                overflow: Overflow::DropHead,
                dead_letter_exchange: Some("mine".into()),
                dead_letter_routing_key: Some("dead".into()),
                delivery_limit: Some(3),
                max_priority: Some(5),
                ..Default::default()
            }
        );
        let bare = Settings::default().with_policy(&FieldTable::new(), &policy);
        assert_eq!(bare.overflow, Overflow::RejectPublish);
        assert_eq!(bare.dead_letter_exchange.as_deref(), Some("policy"));
        assert_eq!(
            Settings::default().with_policy(&FieldTable::new(), &PolicyDefinition::default()),
            Settings::default()
        );
    }

    #[test]
    fn refusals_say_why_as_rabbitmq_does() {
        assert_eq!(
            refused(&[("x-message-ttl", FieldValue::I32(-1))]),
            (
                "x-message-ttl",
                value("x-message-ttl", "{value_negative,-1}")
            )
        );
        assert_eq!(
            refused(&[("x-expires", FieldValue::I32(0))]),
            ("x-expires", value("x-expires", "{value_zero,0}"))
        );
        assert_eq!(
            refused(&[("x-max-length", FieldValue::string("10"))]),
            (
                "x-max-length",
                value("x-max-length", "\"expected integer, got longstr\"")
            )
        );
        assert_eq!(
            refused(&[("x-overflow", FieldValue::string("drop-tail"))]),
            ("x-overflow", value("x-overflow", "invalid_overflow"))
        );
        assert_eq!(
            refused(&[("x-dead-letter-exchange", FieldValue::I32(1))]),
            (
                "x-dead-letter-exchange",
                "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' \
                 in vhost '/'"
                    .into()
            )
        );
        assert_eq!(
            refused(&[("x-dead-letter-routing-key", FieldValue::string("k"))]),
            (
                "x-dead-letter-routing-key",
                value(
                    "x-dead-letter-routing-key",
                    "routing_key_but_no_dlx_defined"
                )
            )
        );
        assert_eq!(
            refused(&[("x-max-priority", FieldValue::I32(256))]),
            (
                "x-max-priority",
                value("x-max-priority", "{max_value_exceeded,256}")
            )
        );
        assert_eq!(
            refused(&[("x-single-active-consumer", FieldValue::string("yes"))]),
            (
                "x-single-active-consumer",
                "invalid type 'longstr' for arg 'x-single-active-consumer' in queue 'q' \
                 in vhost '/'"
                    .into()
            )
        );
        assert_eq!(
            refused(&[("x-message-ttl", FieldValue::I64(MAX_EXPIRY + 1))]).1,
            value(
                "x-message-ttl",
                &format!("{{value_too_large,{}}}", MAX_EXPIRY + 1)
            )
        );
    }
}
