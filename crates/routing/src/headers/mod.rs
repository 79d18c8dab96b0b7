//! Headers exchanges: binding arguments compiled into conditions on message headers.
//!
//! The reference is RabbitMQ 3.10's `rabbit_exchange_type_headers` (the broker warren is
//! measured against; read from the installed 3.10.8 beam's debug info), and its rules are:
//!
//! - `x-match` says how conditions combine: `all` (the default when absent), `any`,
//!   `all-with-x`, `any-with-x`. Any other value is refused at bind time (406).
//! - Every other argument is a condition, except that `all` and `any` ignore keys starting
//!   with `x-`. `all` without conditions matches every message, headers or not; `any`
//!   without conditions matches none.
//! - A condition of type void (`V`) asks only that the header be present.
//! - Otherwise values compare as Erlang's `==` compares the untyped values the parser
//!   makes: integers of every width and timestamps are plain integers and compare by
//!   value, an integer equals a float of exactly that value, a long string equals a byte
//!   array with the same bytes, a 32-bit float is widened to 64 bits first, and a decimal
//!   is a `{scale, value}` pair, equal only to the same pair. Arrays and tables keep their
//!   element types (`[{signedint, 1}]`), so below the top level equality is exact, in
//!   order. One oddity follows: an empty array and an empty table are both `[]`, so at the
//!   top level either matches the other.
//! - Duplicate keys: RabbitMQ key-sorts both tables (stably) and walks them like a merge,
//!   so the n-th condition on a key is checked against the n-th header with that key, in
//!   arrival order; a condition without such a header is missing. With unique keys this is
//!   plain lookup.
//!
//! RabbitMQ 3.13 and later route on a map of headers instead (`mc:routing_headers`): there
//! the last duplicate header wins, values compare with `=:=` (so `1` no longer equals
//! `1.0`), and header timestamps are scaled to milliseconds while binding timestamps are
//! not. warren keeps 3.10's behaviour.
//!
//! Cost: conditions are compiled at bind time; a message's headers are hashed by name once
//! ([`MessageHeaders`]), after which each condition is a short scan (or, for many headers,
//! a binary search) on integers and one value comparison, with no allocation, however
//! many bindings are checked.
//!
//! Layout: this file is the matcher. The refusal texts print the offending `x-match`
//! value as RabbitMQ does, as an Erlang term; that printer is `erlang_term.rs`. The tests,
//! with the transcription of RabbitMQ's algorithm they check the matcher against, are in
//! `tests.rs`.

mod erlang_term;
#[cfg(test)]
mod tests;

use warren_codec::bytes::Bytes;
use warren_codec::{FieldTable, FieldValue, ShortStr};

use erlang_term::{write_binary, write_term};

/// How a headers binding combines its conditions (binding argument `x-match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Every condition must hold (the default); `x-` keys are not conditions.
    All,
    /// At least one condition must hold; `x-` keys are not conditions.
    Any,
    /// Every condition must hold, `x-` keys (but `x-match`) included.
    AllWithX,
    /// At least one condition must hold, `x-` keys (but `x-match`) included.
    AnyWithX,
}

impl Mode {
    /// The mode an `x-match` argument asks for, or RabbitMQ's refusal text (406).
    fn parse(x_match: Option<&FieldValue>) -> Result<Mode, String> {
        match x_match {
            None => Ok(Mode::All),
            Some(FieldValue::LongStr(value)) => match value.as_ref() {
                b"all" => Ok(Mode::All),
                b"any" => Ok(Mode::Any),
                b"all-with-x" => Ok(Mode::AllWithX),
                b"any-with-x" => Ok(Mode::AnyWithX),
                other => {
                    let mut text = String::from("Invalid x-match field value ");
                    write_binary(&mut text, other);
                    text.push_str("; expected all, any, all-with-x, or any-with-x");
                    Err(text)
                }
            },
            Some(other) => {
                let mut text = String::from("Invalid x-match field type ");
                text.push_str(other.type_name());
                text.push_str(" (value ");
                write_term(&mut text, other);
                text.push_str("); expected longstr");
                Err(text)
            }
        }
    }

    /// Whether `x-` keys (but `x-match`) are conditions.
    fn with_x(self) -> bool {
        matches!(self, Mode::AllWithX | Mode::AnyWithX)
    }
}

/// A headers binding's arguments compiled for matching.
#[derive(Debug, Clone)]
pub(crate) struct HeadersBinding {
    mode: Mode,
    /// Every argument but `x-match`, and but `x-` keys unless the mode takes them.
    conditions: Box<[Condition]>,
}

/// One condition: the header `key` must be present and, unless `expected` is
/// [`Expected::Present`], equal to it.
#[derive(Debug, Clone)]
struct Condition {
    /// `key_hash(key)`.
    hash: u64,
    key: ShortStr,
    /// How many conditions on `key` come before this one: it is checked against the
    /// header with `key` at that position (see the module header on duplicates).
    occurrence: usize,
    expected: Expected,
}

/// A condition's value, in the form Erlang's `==` sees it.
#[derive(Debug, Clone)]
enum Expected {
    /// Void: the header must be present.
    Present,
    /// Any integer type or a timestamp.
    Integer(i128),
    /// A 32- or 64-bit float, widened.
    Float(f64),
    /// A long string or byte array: both are binaries to Erlang.
    Binary(Bytes),
    /// A boolean: the atoms `true` and `false` to Erlang.
    Bool(bool),
    /// A decimal: the tuple `{scale, value}` to Erlang.
    Decimal {
        /// Digits after the point.
        scale: u8,
        /// The unscaled value.
        value: u32,
    },
    /// An empty array or table: both are `[]` to Erlang.
    EmptyList,
    /// A non-empty array: equal only to the same elements with the same types.
    Array(Vec<FieldValue>),
    /// A non-empty table: equal only to the same entries, same order and types.
    Table(FieldTable),
}

impl HeadersBinding {
    /// Compiles binding arguments. An `x-match` that is present but not one of the long
    /// strings `all`, `any`, `all-with-x`, `any-with-x` is an error carrying RabbitMQ's
    /// text, to be sent as 406 PRECONDITION_FAILED.
    pub(crate) fn parse(arguments: &FieldTable) -> Result<HeadersBinding, String> {
        let mode = Mode::parse(arguments.get("x-match"))?;
        let mut conditions: Vec<Condition> = Vec::new();
        for (key, value) in arguments.iter() {
            if key == "x-match" || (key.starts_with("x-") && !mode.with_x()) {
                continue;
            }
            let occurrence = conditions.iter().filter(|c| c.key == *key).count();
            conditions.push(Condition {
                hash: key_hash(key),
                key: key.clone(),
                occurrence,
                expected: Expected::new(value),
            });
        }
        Ok(HeadersBinding {
            mode,
            conditions: conditions.into_boxed_slice(),
        })
    }

    /// Whether a message with these headers matches.
    pub(crate) fn matches(&self, headers: &MessageHeaders<'_>) -> bool {
        let holds = |c: &Condition| {
            headers
                .get(c.hash, &c.key, c.occurrence)
                .is_some_and(|actual| c.expected.matches(actual))
        };
        match self.mode {
            Mode::All | Mode::AllWithX => self.conditions.iter().all(holds),
            Mode::Any | Mode::AnyWithX => self.conditions.iter().any(holds),
        }
    }
}

impl Expected {
    /// A binding argument's value as a condition.
    fn new(value: &FieldValue) -> Expected {
        match value {
            FieldValue::Void => Expected::Present,
            FieldValue::I8(v) => Expected::Integer((*v).into()),
            FieldValue::U8(v) => Expected::Integer((*v).into()),
            FieldValue::I16(v) => Expected::Integer((*v).into()),
            FieldValue::U16(v) => Expected::Integer((*v).into()),
            FieldValue::I32(v) => Expected::Integer((*v).into()),
            FieldValue::U32(v) => Expected::Integer((*v).into()),
            FieldValue::I64(v) => Expected::Integer((*v).into()),
            FieldValue::Timestamp(v) => Expected::Integer((*v).into()),
            FieldValue::F32(f) => Expected::Float(f64::from(*f)),
            FieldValue::F64(f) => Expected::Float(*f),
            FieldValue::LongStr(b) | FieldValue::Bytes(b) => Expected::Binary(b.clone()),
            FieldValue::Bool(b) => Expected::Bool(*b),
            FieldValue::Decimal { scale, value } => Expected::Decimal {
                scale: *scale,
                value: *value,
            },
            FieldValue::Array(a) if a.is_empty() => Expected::EmptyList,
            FieldValue::Table(t) if t.is_empty() => Expected::EmptyList,
            FieldValue::Array(a) => Expected::Array(a.clone()),
            FieldValue::Table(t) => Expected::Table(t.clone()),
        }
    }

    /// Erlang's `==` between this and the header's untyped value. NaN, which RabbitMQ
    /// cannot even parse (Erlang has no NaN), equals nothing, nested or not.
    fn matches(&self, actual: &FieldValue) -> bool {
        match self {
            Expected::Present => true,
            Expected::Integer(n) => match (integer(actual), float(actual)) {
                (Some(m), _) => m == *n,
                (None, Some(f)) => integer_equals_float(*n, f),
                (None, None) => false,
            },
            Expected::Float(f) => match (integer(actual), float(actual)) {
                (Some(m), _) => integer_equals_float(m, *f),
                (None, Some(g)) => g == *f,
                (None, None) => false,
            },
            Expected::Binary(b) => match actual {
                FieldValue::LongStr(a) | FieldValue::Bytes(a) => a == b,
                _ => false,
            },
            Expected::Bool(b) => matches!(actual, FieldValue::Bool(a) if a == b),
            Expected::Decimal { scale, value } => matches!(
                actual,
                FieldValue::Decimal { scale: s, value: v } if s == scale && v == value
            ),
            Expected::EmptyList => match actual {
                FieldValue::Array(a) => a.is_empty(),
                FieldValue::Table(t) => t.is_empty(),
                _ => false,
            },
            Expected::Array(expected) => matches!(actual, FieldValue::Array(a) if a == expected),
            Expected::Table(expected) => matches!(actual, FieldValue::Table(t) if t == expected),
        }
    }
}

/// The value of an integer type or a timestamp; i128 holds both u64 and i64.
fn integer(value: &FieldValue) -> Option<i128> {
    match *value {
        FieldValue::Timestamp(t) => Some(i128::from(t)),
        FieldValue::U32(v) => Some(i128::from(v)),
        _ => value.as_i64().map(i128::from),
    }
}

/// The value of a 32- or 64-bit float, widened as Erlang's parser does.
fn float(value: &FieldValue) -> Option<f64> {
    match *value {
        FieldValue::F32(f) => Some(f64::from(f)),
        FieldValue::F64(f) => Some(f),
        _ => None,
    }
}

/// Erlang's `1 == 1.0`: exact, so `2^53 + 1` does not equal the float `2^53`.
fn integer_equals_float(n: i128, f: f64) -> bool {
    // Integral floats below 2^127 convert to i128 exactly; larger ones saturate to a
    // value no header integer reaches.
    f.is_finite() && f.trunc() == f && f as i128 == n
}

/// FNV-1a of a header name, computed once per condition and once per message header so
/// that lookups compare integers first. A collision (a peer can craft one) costs a string
/// comparison, never a wrong answer: names are compared whenever hashes agree.
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Up to this many headers a lookup scans them all, beyond it binary-searches them.
/// Measured with 1,000 bindings of three conditions: for 8 headers a scan costs 11-19 µs a
/// message against 21-23 µs, for 28 headers 23 against 30, for 48 headers 47 against 31.
const SCAN_MAX: usize = 24;

/// A message's headers prepared once per routed message, so that each condition of each
/// binding is a few integer comparisons.
#[derive(Debug)]
pub(crate) struct MessageHeaders<'a> {
    /// (name hash, name, value). In arrival order up to [`SCAN_MAX`] entries; beyond,
    /// sorted by hash then name, stably, so headers sharing a name stay in arrival order.
    entries: Vec<(u64, &'a str, &'a FieldValue)>,
}

impl<'a> MessageHeaders<'a> {
    /// Prepares a message's headers (none is the same as an empty table).
    pub(crate) fn new(headers: Option<&'a FieldTable>) -> Self {
        let mut entries: Vec<(u64, &'a str, &'a FieldValue)> = headers
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (key_hash(k), k.as_str(), v))
                    .collect()
            })
            .unwrap_or_default();
        if entries.len() > SCAN_MAX {
            entries.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        }
        MessageHeaders { entries }
    }

    /// The `occurrence`-th header (from 0, in arrival order) named `key`, whose hash is
    /// `hash`.
    fn get(&self, hash: u64, key: &str, occurrence: usize) -> Option<&'a FieldValue> {
        let named = |e: &&(u64, &'a str, &'a FieldValue)| e.0 == hash && e.1 == key;
        if self.entries.len() <= SCAN_MAX {
            return self
                .entries
                .iter()
                .filter(named)
                .nth(occurrence)
                .map(|e| e.2);
        }
        let first = self.entries.partition_point(|e| (e.0, e.1) < (hash, key));
        self.entries
            .get(first.checked_add(occurrence)?)
            .filter(named)
            .map(|e| e.2)
    }
}
