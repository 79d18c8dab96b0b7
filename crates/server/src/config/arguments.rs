//! `arguments` tables of exchanges, queues and bindings: TOML values as AMQP field
//! values, the way a client would have sent them.
//!
//! TOML has fewer types than a field table, so each maps to the widest AMQP one: a
//! string is a long string, an integer a signed 64-bit (`l`), a float a double (`d`), an
//! array an array and a table a nested table. Dates and times have no AMQP counterpart
//! and are refused.
//!
//! The entries come out sorted by key: the TOML parser (without its `preserve_order`
//! feature) hands tables over in key order, not in file order. That is also the order
//! RabbitMQ keeps tables in, and the order does not change what an argument means.

use std::collections::BTreeMap;

use toml::Spanned;
use warren_codec::{FieldTable, FieldValue, ShortStr};

use super::{ConfigError, Problem, Validator};

/// An `arguments` table as read, each value with its place in the file.
pub(super) type RawArguments = BTreeMap<String, Spanned<toml::Value>>;

impl Validator<'_> {
    /// The field table for `raw`; `key` is the table's path (`queues[0].arguments`).
    pub(super) fn arguments(
        &self,
        raw: &RawArguments,
        key: &str,
    ) -> Result<FieldTable, ConfigError> {
        let mut table = FieldTable::new();
        for (name, value) in raw {
            let at = value.span().start;
            let key = format!("{key}.{name}");
            let name = self.short_str(name, &key, at)?;
            table.insert(name, self.field_value(value.get_ref(), &key, at)?);
        }
        Ok(table)
    }

    /// One value; errors in nested values are reported at the enclosing argument's
    /// value, `at`, as the parser keeps no places inside a value.
    fn field_value(
        &self,
        value: &toml::Value,
        key: &str,
        at: usize,
    ) -> Result<FieldValue, ConfigError> {
        Ok(match value {
            toml::Value::String(s) => FieldValue::string(s.as_str()),
            toml::Value::Integer(n) => FieldValue::I64(*n),
            toml::Value::Float(f) => FieldValue::F64(*f),
            toml::Value::Boolean(b) => FieldValue::Bool(*b),
            toml::Value::Array(items) => FieldValue::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.field_value(item, &format!("{key}[{i}]"), at))
                    .collect::<Result<_, _>>()?,
            ),
            toml::Value::Table(entries) => {
                let mut table = FieldTable::new();
                for (name, item) in entries {
                    let key = format!("{key}.{name}");
                    let name = self.short_str(name, &key, at)?;
                    table.insert(name, self.field_value(item, &key, at)?);
                }
                FieldValue::Table(table)
            }
            toml::Value::Datetime(_) => {
                return self.error(at, key.to_owned(), Problem::DatetimeArgument);
            }
        })
    }

    /// A field table key, or a name that travels as one: at most 255 bytes.
    pub(super) fn short_str(
        &self,
        text: &str,
        key: &str,
        at: usize,
    ) -> Result<ShortStr, ConfigError> {
        ShortStr::new(text).or_else(|_| {
            let problem = Problem::TooLong {
                max: ShortStr::MAX_LEN,
                got: text.len(),
            };
            self.error(at, key.to_owned(), problem)
        })
    }
}

/// What a queue argument accepts, for the error when a `[[queues]]` entry's is refused;
/// the words follow `queue::Settings::parse`.
pub(super) fn queue_argument_expects(argument: &str) -> Option<&'static str> {
    Some(match argument {
        // RabbitMQ's longest timer, 4294967295 * 60 ms (about 8 years).
        "x-message-ttl" => "an integer number of milliseconds from 0 to 257698037700",
        "x-expires" => "an integer number of milliseconds from 1 to 257698037700",
        "x-max-length" | "x-max-length-bytes" | "x-delivery-limit" => "an integer of at least 0",
        "x-overflow" => "one of the strings `drop-head`, `reject-publish`, `reject-publish-dlx`",
        "x-dead-letter-exchange" => "a string: an exchange name (\"\" is the default exchange)",
        "x-dead-letter-routing-key" => "a string, and only together with `x-dead-letter-exchange`",
        "x-single-active-consumer" => "a boolean",
        "x-max-priority" => "an integer from 0 to 255",
        _ => return None,
    })
}

/// What an exchange argument accepts, for the error when an `[[exchanges]]` entry's is
/// refused; the words follow `warren_routing::Exchange::new`.
pub(super) fn exchange_argument_expects(argument: &str) -> Option<&'static str> {
    match argument {
        "alternate-exchange" => Some("a string: the name of an exchange"),
        "x-unroutable" => Some("the string `drop` or `reject`"),
        _ => None,
    }
}
