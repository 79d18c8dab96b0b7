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

use warren_codec::bytes::Bytes;
use warren_codec::{FieldTable, FieldValue, ShortStr};

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
                text.push_str(type_name(other));
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

// RabbitMQ's refusal texts print the offending value with `~p`, as the Erlang term its
// parser made of it. What follows writes that term as OTP 25 does, checked against it on
// random values, with one deviation: `~p` lays a term that overflows its 80-column line
// over several lines (a nested array or table, or an unprintable binary of a few dozen
// bytes), where this writes one line. Printable strings stay on one line in OTP too, so
// the likely case, a mistyped x-match string, comes out byte for byte.

/// The type atom RabbitMQ's parser tags a value with.
fn type_name(value: &FieldValue) -> &'static str {
    match value {
        FieldValue::Bool(_) => "bool",
        FieldValue::I8(_) => "byte",
        FieldValue::U8(_) => "unsignedbyte",
        FieldValue::I16(_) => "short",
        FieldValue::U16(_) => "unsignedshort",
        FieldValue::I32(_) => "signedint",
        FieldValue::U32(_) => "unsignedint",
        FieldValue::I64(_) => "long",
        FieldValue::F32(_) => "float",
        FieldValue::F64(_) => "double",
        FieldValue::Decimal { .. } => "decimal",
        FieldValue::LongStr(_) => "longstr",
        FieldValue::Bytes(_) => "binary",
        FieldValue::Array(_) => "array",
        FieldValue::Timestamp(_) => "timestamp",
        FieldValue::Table(_) => "table",
        FieldValue::Void => "void",
    }
}

/// Writes the untyped Erlang term of `value`.
fn write_term(out: &mut String, value: &FieldValue) {
    match value {
        FieldValue::I8(v) => out.push_str(&v.to_string()),
        FieldValue::U8(v) => out.push_str(&v.to_string()),
        FieldValue::I16(v) => out.push_str(&v.to_string()),
        FieldValue::U16(v) => out.push_str(&v.to_string()),
        FieldValue::I32(v) => out.push_str(&v.to_string()),
        FieldValue::U32(v) => out.push_str(&v.to_string()),
        FieldValue::I64(v) => out.push_str(&v.to_string()),
        FieldValue::Timestamp(v) => out.push_str(&v.to_string()),
        FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        FieldValue::F32(f) => write_float(out, f64::from(*f)),
        FieldValue::F64(f) => write_float(out, *f),
        FieldValue::Decimal { scale, value } => out.push_str(&format!("{{{scale},{value}}}")),
        FieldValue::LongStr(b) | FieldValue::Bytes(b) => write_binary(out, b),
        FieldValue::Array(values) => {
            out.push('[');
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('{');
                out.push_str(type_name(v));
                out.push(',');
                write_term(out, v);
                out.push('}');
            }
            out.push(']');
        }
        FieldValue::Table(table) => {
            out.push('[');
            for (i, (k, v)) in table.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('{');
                write_binary(out, k.as_bytes());
                out.push(',');
                out.push_str(type_name(v));
                out.push(',');
                write_term(out, v);
                out.push('}');
            }
            out.push(']');
        }
        FieldValue::Void => out.push_str("undefined"),
    }
}

/// A binary as `~p` prints it: `<<"text">>` when every byte is printable Latin-1, else
/// `<<1,2,3>>`. RabbitMQ sends the printed Latin-1 characters as bytes, which gives
/// back the original bytes, so printable UTF-8 is written as itself. Printable bytes that
/// are not UTF-8 (a lone `0xE9`) cannot go in a `String`; those print as numbers.
fn write_binary(out: &mut String, bytes: &[u8]) {
    let printable = |b: &u8| matches!(b, 32..=126 | 160..=255 | 8..=13 | 27);
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.is_empty() && bytes.iter().all(printable) => {
            out.push_str("<<\"");
            for c in text.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{0B}' => out.push_str("\\v"),
                    '\u{08}' => out.push_str("\\b"),
                    '\u{0C}' => out.push_str("\\f"),
                    '\u{1B}' => out.push_str("\\e"),
                    c => out.push(c),
                }
            }
            out.push_str("\">>");
        }
        _ => {
            out.push_str("<<");
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&b.to_string());
            }
            out.push_str(">>");
        }
    }
}

/// A float as OTP prints it (`float_to_list(F, [short])`): the shortest digits that read
/// back to the same value, in fixed notation (`0.0001`, `120.0`) unless scientific
/// (`1.0e3`, `1.23e-4`) is shorter, and always scientific from 2^53 up, where OTP no longer
/// prints floats as integers (`9007199254740991.0` but `9.007199254740992e15`).
fn write_float(out: &mut String, f: f64) {
    if !f.is_finite() {
        // Erlang has no NaN or infinity; RabbitMQ could not have parsed one.
        out.push_str(&format!("{f:?}"));
        return;
    }
    if f.is_sign_negative() {
        out.push('-');
    }
    let (digits, exponent) = shortest_digits(f.abs());
    let (first, rest) = digits.split_at_checked(1).unwrap_or(("0", ""));
    let rest = if rest.is_empty() { "0" } else { rest };
    let scientific = format!("{first}.{rest}e{exponent}");
    // Where the decimal point falls within (or beyond) the digits.
    let point = i64::from(exponent) + 1;
    let count = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let zeros = |n: i64| "0".repeat(usize::try_from(n).unwrap_or(0));
    let fixed = if point <= 0 {
        format!("0.{}{digits}", zeros(-point))
    } else if point >= count {
        format!("{digits}{}.0", zeros(point - count))
    } else {
        let at = usize::try_from(point).unwrap_or(0);
        let (whole, fraction) = digits.split_at_checked(at).unwrap_or((&digits, ""));
        format!("{whole}.{fraction}")
    };
    let below_2_53 = f.abs() < 9_007_199_254_740_992.0;
    out.push_str(if below_2_53 && fixed.len() <= scientific.len() {
        &fixed
    } else {
        &scientific
    });
}

/// The shortest digits that read back as `f` (finite, not negative) and the decimal
/// exponent of the first one, as OTP's Ryu picks them. Rust's `{:e}` picks the same
/// digits ("1.23e-4", "1e3", "0e0") except on an exact tie between two shortest
/// candidates, which it rounds up where Ryu takes the even one.
fn shortest_digits(f: f64) -> (String, i32) {
    let (digits, exponent) = split_scientific(&format!("{f:e}"));
    match even_tie(f, &digits, exponent) {
        Some(even) => (even, exponent),
        None => (digits, exponent),
    }
}

/// The even candidate when `digits` is odd and `f` lies exactly halfway below it.
fn even_tie(f: f64, digits: &str, exponent: i32) -> Option<String> {
    let (head, last) = digits.split_at_checked(digits.len().checked_sub(1)?)?;
    let last = last.parse::<u8>().ok()?;
    if last % 2 == 0 {
        return None;
    }
    let lower = format!("{head}{}", last - 1);
    // Every f64's exact decimal expansion fits in 1,100 significant digits.
    let (exact, exact_exponent) = split_scientific(&format!("{f:.1100e}"));
    let (exact_head, tail) = exact.split_at_checked(lower.len())?;
    let mut tail = tail.bytes();
    let halfway = exact_exponent == exponent
        && exact_head == lower
        && tail.next() == Some(b'5')
        && tail.all(|b| b == b'0');
    // Just above a power of two the gap below is half the gap above, so the lower
    // candidate may read back as another float.
    let (first, rest) = lower.split_at_checked(1)?;
    let reads_back = format!("{first}.{rest}0e{exponent}").parse::<f64>().ok() == Some(f);
    (halfway && reads_back).then_some(lower)
}

/// The mantissa digits and the exponent of Rust's `{:e}` text.
fn split_scientific(text: &str) -> (String, i32) {
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    let digits = mantissa.chars().filter(|c| *c != '.').collect();
    (digits, exponent.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    fn table(entries: &[(&str, FieldValue)]) -> FieldTable {
        entries
            .iter()
            .map(|(k, v)| (ShortStr::from(*k), v.clone()))
            .collect()
    }

    fn s(text: &str) -> FieldValue {
        FieldValue::string(text)
    }

    fn matches(binding: &[(&str, FieldValue)], headers: &[(&str, FieldValue)]) -> bool {
        let headers = table(headers);
        HeadersBinding::parse(&table(binding))
            .unwrap()
            .matches(&MessageHeaders::new(Some(&headers)))
    }

    fn refusal(x_match: FieldValue) -> String {
        HeadersBinding::parse(&table(&[("x-match", x_match)])).unwrap_err()
    }

    #[test]
    fn x_match_defaults_to_all() {
        let binding = [("a", s("1")), ("b", s("2"))];
        assert!(matches(&binding, &[("a", s("1")), ("b", s("2"))]));
        assert!(!matches(&binding, &[("a", s("1"))]));
    }

    #[test]
    fn all_needs_every_condition_and_any_needs_one() {
        let headers = [("a", s("1")), ("b", s("other"))];
        let all = [("x-match", s("all")), ("a", s("1")), ("b", s("2"))];
        let any = [("x-match", s("any")), ("a", s("1")), ("b", s("2"))];
        assert!(!matches(&all, &headers));
        assert!(matches(&any, &headers));
        assert!(!matches(&any, &[("b", s("other"))]));
        assert!(!matches(&any, &[]));
    }

    #[test]
    fn all_without_conditions_matches_everything_and_any_nothing() {
        let all = HeadersBinding::parse(&table(&[("x-match", s("all")), ("x-y", s("1"))])).unwrap();
        let any = HeadersBinding::parse(&table(&[("x-match", s("any"))])).unwrap();
        let some = table(&[("a", s("1"))]);
        for headers in [None, Some(&some)] {
            let headers = MessageHeaders::new(headers);
            assert!(all.matches(&headers));
            assert!(!any.matches(&headers));
        }
        let empty = HeadersBinding::parse(&FieldTable::new()).unwrap();
        assert!(empty.matches(&MessageHeaders::new(None)));
    }

    #[test]
    fn x_keys_are_conditions_only_with_x() {
        let headers = [("x-tenant", s("a")), ("kind", s("k"))];
        for mode in ["all", "any"] {
            let binding = [("x-match", s(mode)), ("x-tenant", s("b")), ("kind", s("k"))];
            assert!(matches(&binding, &headers), "{mode}");
        }
        // With its only argument ignored, `all` has no condition and matches, `any` not.
        assert!(matches(
            &[("x-match", s("all")), ("x-tenant", s("a"))],
            &headers
        ));
        assert!(!matches(
            &[("x-match", s("any")), ("x-tenant", s("a"))],
            &headers
        ));
        let all_x = [
            ("x-match", s("all-with-x")),
            ("x-tenant", s("b")),
            ("kind", s("k")),
        ];
        assert!(!matches(&all_x, &headers));
        let all_x = [
            ("x-match", s("all-with-x")),
            ("x-tenant", s("a")),
            ("kind", s("k")),
        ];
        assert!(matches(&all_x, &headers));
        let any_x = [("x-match", s("any-with-x")), ("x-tenant", s("a"))];
        assert!(matches(&any_x, &headers));
        assert!(!matches(&any_x, &[("kind", s("k"))]));
        // "x-" alone is an x- key too.
        assert!(matches(&[("x-", s("v"))], &[]));
    }

    #[test]
    fn x_match_is_never_a_condition() {
        for mode in ["all-with-x", "any-with-x"] {
            let binding = [("x-match", s(mode)), ("a", s("1"))];
            assert!(matches(&binding, &[("a", s("1"))]), "{mode}");
        }
        // any-with-x whose only argument is x-match has no condition: nothing matches,
        // not even a message carrying an x-match header.
        assert!(!matches(
            &[("x-match", s("any-with-x"))],
            &[("x-match", s("any-with-x"))]
        ));
        assert!(matches(&[("x-match", s("all-with-x"))], &[]));
    }

    #[test]
    fn void_means_present_with_any_value() {
        let binding = [("a", FieldValue::Void)];
        assert!(matches(&binding, &[("a", s("anything"))]));
        assert!(matches(&binding, &[("a", FieldValue::Void)]));
        assert!(matches(
            &binding,
            &[("a", FieldValue::Table(FieldTable::new()))]
        ));
        assert!(!matches(&binding, &[("b", s("x"))]));
        // A void header only satisfies a void condition.
        assert!(!matches(&[("a", s(""))], &[("a", FieldValue::Void)]));
        let any = [
            ("x-match", s("any")),
            ("a", FieldValue::Void),
            ("b", s("no")),
        ];
        assert!(matches(&any, &[("a", FieldValue::I8(0))]));
    }

    #[test]
    fn integers_of_every_width_and_timestamps_compare_by_value() {
        let ones = [
            FieldValue::I8(1),
            FieldValue::U8(1),
            FieldValue::I16(1),
            FieldValue::U16(1),
            FieldValue::I32(1),
            FieldValue::U32(1),
            FieldValue::I64(1),
            FieldValue::Timestamp(1),
        ];
        for a in &ones {
            for b in &ones {
                assert!(
                    matches(&[("n", a.clone())], &[("n", b.clone())]),
                    "{a:?} {b:?}"
                );
            }
        }
        assert!(!matches(
            &[("n", FieldValue::I8(-1))],
            &[("n", FieldValue::U8(255))]
        ));
        assert!(!matches(
            &[("n", FieldValue::I64(-1))],
            &[("n", FieldValue::Timestamp(u64::MAX))]
        ));
        assert!(matches(
            &[("n", FieldValue::Timestamp(i64::MAX as u64))],
            &[("n", FieldValue::I64(i64::MAX))]
        ));
    }

    #[test]
    fn an_integer_equals_a_float_of_exactly_its_value() {
        assert!(matches(
            &[("n", FieldValue::I32(2))],
            &[("n", FieldValue::F64(2.0))]
        ));
        assert!(matches(
            &[("n", FieldValue::F32(2.0))],
            &[("n", FieldValue::U8(2))]
        ));
        assert!(matches(
            &[("n", FieldValue::F64(0.0))],
            &[("n", FieldValue::I8(0))]
        ));
        assert!(matches(
            &[("n", FieldValue::F64(-0.0))],
            &[("n", FieldValue::I8(0))]
        ));
        assert!(!matches(
            &[("n", FieldValue::I32(2))],
            &[("n", FieldValue::F64(2.5))]
        ));
        // 2^53 + 1 is not the float 2^53 (Erlang compares exactly, not via a rounded cast).
        let big = (1i64 << 53) + 1;
        assert!(!matches(
            &[("n", FieldValue::I64(big))],
            &[("n", FieldValue::F64(big as f64))]
        ));
        assert!(matches(
            &[("n", FieldValue::Timestamp(1 << 60))],
            &[("n", FieldValue::F64((1u64 << 60) as f64))]
        ));
        assert!(!matches(
            &[("n", FieldValue::I32(0))],
            &[("n", FieldValue::F64(f64::NAN))]
        ));
    }

    #[test]
    fn floats_compare_after_widening() {
        assert!(matches(
            &[("f", FieldValue::F32(0.5))],
            &[("f", FieldValue::F64(0.5))]
        ));
        // 0.1f32 is not 0.1f64: RabbitMQ widens the 32-bit value, it does not round.
        assert!(!matches(
            &[("f", FieldValue::F32(0.1))],
            &[("f", FieldValue::F64(0.1))]
        ));
        assert!(matches(
            &[("f", FieldValue::F64(0.0))],
            &[("f", FieldValue::F32(-0.0))]
        ));
        assert!(!matches(
            &[("f", FieldValue::F64(f64::NAN))],
            &[("f", FieldValue::F64(f64::NAN))]
        ));
    }

    #[test]
    fn long_strings_and_byte_arrays_with_the_same_bytes_are_equal() {
        let bytes = FieldValue::Bytes(Bytes::from_static(b"abc"));
        assert!(matches(&[("k", s("abc"))], &[("k", bytes.clone())]));
        assert!(matches(&[("k", bytes.clone())], &[("k", s("abc"))]));
        assert!(!matches(&[("k", bytes)], &[("k", s("abd"))]));
        assert!(!matches(&[("k", s("1"))], &[("k", FieldValue::I32(1))]));
        assert!(!matches(
            &[("k", s(""))],
            &[("k", FieldValue::Array(Vec::new()))]
        ));
    }

    #[test]
    fn bools_and_decimals_compare_by_value() {
        let t = FieldValue::Bool(true);
        assert!(matches(
            &[("b", t.clone())],
            &[("b", FieldValue::Bool(true))]
        ));
        assert!(!matches(
            &[("b", t.clone())],
            &[("b", FieldValue::Bool(false))]
        ));
        assert!(!matches(&[("b", t)], &[("b", FieldValue::U8(1))]));
        let d = |scale, value| FieldValue::Decimal { scale, value };
        assert!(matches(&[("d", d(2, 150))], &[("d", d(2, 150))]));
        // {1,15} and {2,150} are the same number but not the same tuple.
        assert!(!matches(&[("d", d(1, 15))], &[("d", d(2, 150))]));
        assert!(!matches(&[("d", d(0, 5))], &[("d", FieldValue::I32(5))]));
    }

    #[test]
    fn nested_values_compare_with_their_types() {
        let array = |v: Vec<FieldValue>| FieldValue::Array(v);
        assert!(matches(
            &[("a", array(vec![FieldValue::I32(1), s("x")]))],
            &[("a", array(vec![FieldValue::I32(1), s("x")]))]
        ));
        assert!(!matches(
            &[("a", array(vec![FieldValue::I32(1)]))],
            &[("a", array(vec![FieldValue::I64(1)]))]
        ));
        assert!(!matches(
            &[("a", array(vec![s("x")]))],
            &[(
                "a",
                array(vec![FieldValue::Bytes(Bytes::from_static(b"x"))])
            )]
        ));
        let inner = table(&[("p", FieldValue::I32(1)), ("q", s("v"))]);
        let reordered = table(&[("q", s("v")), ("p", FieldValue::I32(1))]);
        let t = |t: &FieldTable| FieldValue::Table(t.clone());
        assert!(matches(&[("t", t(&inner))], &[("t", t(&inner))]));
        // Nested tables are not sorted: order matters below the top level.
        assert!(!matches(&[("t", t(&inner))], &[("t", t(&reordered))]));
        assert!(!matches(&[("t", t(&inner))], &[("t", array(vec![]))]));
    }

    #[test]
    fn an_empty_array_equals_an_empty_table_at_the_top_level() {
        let empty_array = FieldValue::Array(Vec::new());
        let empty_table = FieldValue::Table(FieldTable::new());
        assert!(matches(
            &[("e", empty_array.clone())],
            &[("e", empty_table.clone())]
        ));
        assert!(matches(
            &[("e", empty_table.clone())],
            &[("e", empty_array.clone())]
        ));
        // ...but not nested, where the type tags differ.
        assert!(!matches(
            &[("e", FieldValue::Array(vec![empty_array]))],
            &[("e", FieldValue::Array(vec![empty_table]))]
        ));
    }

    #[test]
    fn duplicate_keys_pair_up_in_arrival_order() {
        // The first header with the key is the one a single condition sees.
        assert!(matches(&[("a", s("1"))], &[("a", s("1")), ("a", s("2"))]));
        assert!(!matches(&[("a", s("2"))], &[("a", s("1")), ("a", s("2"))]));
        // Two conditions on a key need two headers with it.
        assert!(!matches(&[("a", s("1")), ("a", s("1"))], &[("a", s("1"))]));
        assert!(matches(
            &[("a", s("1")), ("a", s("2"))],
            &[("b", s("0")), ("a", s("1")), ("a", s("2"))]
        ));
        assert!(!matches(
            &[("a", s("2")), ("a", s("1"))],
            &[("a", s("1")), ("a", s("2"))]
        ));
        let any = [("x-match", s("any")), ("a", s("9")), ("a", s("2"))];
        assert!(matches(&any, &[("a", s("1")), ("a", s("2"))]));
    }

    #[test]
    fn many_headers_are_searched_with_the_same_rules() {
        let mut headers: Vec<(String, FieldValue)> = (0..40)
            .map(|i| (format!("h{i}"), FieldValue::I32(i)))
            .collect();
        headers.insert(7, ("a".into(), s("1")));
        headers.insert(30, ("a".into(), s("2")));
        let headers: Vec<(&str, FieldValue)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        assert!(headers.len() > SCAN_MAX);
        assert!(matches(
            &[("h39", FieldValue::U8(39)), ("a", s("1"))],
            &headers
        ));
        assert!(matches(&[("a", s("1")), ("a", s("2"))], &headers));
        assert!(!matches(&[("a", s("2"))], &headers));
        assert!(!matches(
            &[("a", s("1")), ("a", s("2")), ("a", s("3"))],
            &headers
        ));
        assert!(!matches(&[("h40", FieldValue::Void)], &headers));
    }

    #[test]
    fn headers_are_found_whatever_their_order() {
        let binding = [("m", s("3")), ("c", s("1")), ("z", s("2"))];
        let headers = [
            ("z", s("2")),
            ("y", s("0")),
            ("c", s("1")),
            ("a", s("0")),
            ("m", s("3")),
        ];
        assert!(matches(&binding, &headers));
    }

    #[test]
    fn bad_x_match_values_are_refused_with_rabbitmq_text() {
        assert_eq!(
            refusal(s("foo")),
            "Invalid x-match field value <<\"foo\">>; expected all, any, all-with-x, or any-with-x"
        );
        assert_eq!(
            refusal(s("ALL")),
            "Invalid x-match field value <<\"ALL\">>; expected all, any, all-with-x, or any-with-x"
        );
        assert_eq!(
            refusal(s("")),
            "Invalid x-match field value <<>>; expected all, any, all-with-x, or any-with-x"
        );
        assert_eq!(
            refusal(FieldValue::I32(1)),
            "Invalid x-match field type signedint (value 1); expected longstr"
        );
        assert_eq!(
            refusal(FieldValue::Bytes(Bytes::from_static(b"all"))),
            "Invalid x-match field type binary (value <<\"all\">>); expected longstr"
        );
        assert_eq!(
            refusal(FieldValue::Void),
            "Invalid x-match field type void (value undefined); expected longstr"
        );
        assert_eq!(
            refusal(FieldValue::Array(vec![s("all"), FieldValue::Bool(true)])),
            "Invalid x-match field type array (value [{longstr,<<\"all\">>},{bool,true}]); \
             expected longstr"
        );
        assert_eq!(
            refusal(FieldValue::Table(table(&[(
                "k",
                FieldValue::Decimal {
                    scale: 2,
                    value: 100
                }
            )]))),
            "Invalid x-match field type table (value [{<<\"k\">>,decimal,{2,100}}]); \
             expected longstr"
        );
        assert_eq!(
            refusal(FieldValue::F32(1.5)),
            "Invalid x-match field type float (value 1.5); expected longstr"
        );
    }

    #[test]
    fn the_first_x_match_decides() {
        let args = table(&[
            ("x-match", s("any")),
            ("x-match", s("bogus")),
            ("a", s("1")),
        ]);
        let binding = HeadersBinding::parse(&args).unwrap();
        assert_eq!(binding.mode, Mode::Any);
    }

    /// Golden texts from OTP 25's `io_lib:format("~p", [Term])`.
    #[test]
    fn terms_print_as_erlang_does() {
        let binary = |b: &[u8]| {
            let mut out = String::new();
            write_binary(&mut out, b);
            out
        };
        assert_eq!(binary(b"a\"b\\c"), r#"<<"a\"b\\c">>"#);
        assert_eq!(binary(b"tab\there\nnl"), r#"<<"tab\there\nnl">>"#);
        assert_eq!(binary(b"x\x08\x0c\x0b\r\x1b"), r#"<<"x\b\f\v\r\e">>"#);
        assert_eq!(binary("é".as_bytes()), "<<\"é\">>");
        assert_eq!(binary(b"abc\0"), "<<97,98,99,0>>");
        assert_eq!(binary(b"\x7f"), "<<127>>");
        assert_eq!(binary(b"\x07"), "<<7>>");
        assert_eq!(binary("€".as_bytes()), "<<226,130,172>>");
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (120.0, "120.0"),
            (1000.0, "1.0e3"),
            (1200.0, "1.2e3"),
            (12345.0, "12345.0"),
            (123456789.0, "123456789.0"),
            (1.0e15, "1.0e15"),
            (2.5e15, "2.5e15"),
            (1.0e20, "1.0e20"),
            (12345678901234567890.0, "1.2345678901234567e19"),
            (9007199254740991.0, "9007199254740991.0"),
            (9007199254740993.0, "9.007199254740992e15"),
            (1234567890123456.0, "1234567890123456.0"),
            (99999999999999.0, "99999999999999.0"),
            (1.1e14, "1.1e14"),
            (12345678901234568.0, "1.2345678901234568e16"),
            (0.0001, "0.0001"),
            (0.001, "0.001"),
            (0.00123, "0.00123"),
            (0.000123, "1.23e-4"),
            (1.0e-5, "1.0e-5"),
            (1.5e-7, "1.5e-7"),
            (0.30000000000000004, "0.30000000000000004"),
            (123.456, "123.456"),
            (5.0e-324, "5.0e-324"),
            (1.7976931348623157e308, "1.7976931348623157e308"),
            (3.4028234663852886e38, "3.4028234663852886e38"),
            // Exact ties between two shortest candidates go to the even one.
            (f64::from_bits(0x408da72120000000), "948.8911743164062"),
            (f64::from_bits(0x4317b965f48d13c5), "1669443002516721.2"),
        ];
        for (f, text) in cases {
            let mut out = String::new();
            write_float(&mut out, f);
            assert_eq!(out, text, "{f:e}");
        }
    }

    // The reference: RabbitMQ 3.10's algorithm transcribed as directly as possible, on a
    // model of the Erlang terms its parser builds, with Erlang's `==`.

    #[derive(Debug, Clone)]
    enum Term {
        Int(i128),
        Float(f64),
        Binary(Vec<u8>),
        Atom(&'static str),
        Tuple(Vec<Term>),
        List(Vec<Term>),
    }

    /// The value rabbit_binary_parser makes of a field value.
    fn term(value: &FieldValue) -> Term {
        match value {
            FieldValue::Bool(b) => Term::Atom(if *b { "true" } else { "false" }),
            FieldValue::I8(v) => Term::Int((*v).into()),
            FieldValue::U8(v) => Term::Int((*v).into()),
            FieldValue::I16(v) => Term::Int((*v).into()),
            FieldValue::U16(v) => Term::Int((*v).into()),
            FieldValue::I32(v) => Term::Int((*v).into()),
            FieldValue::U32(v) => Term::Int((*v).into()),
            FieldValue::I64(v) => Term::Int((*v).into()),
            FieldValue::Timestamp(v) => Term::Int((*v).into()),
            FieldValue::F32(v) => Term::Float((*v).into()),
            FieldValue::F64(v) => Term::Float(*v),
            FieldValue::Decimal { scale, value } => {
                Term::Tuple(vec![Term::Int((*scale).into()), Term::Int((*value).into())])
            }
            FieldValue::LongStr(b) | FieldValue::Bytes(b) => Term::Binary(b.to_vec()),
            FieldValue::Array(values) => Term::List(
                values
                    .iter()
                    .map(|v| Term::Tuple(vec![Term::Atom(type_name(v)), term(v)]))
                    .collect(),
            ),
            FieldValue::Table(t) => Term::List(
                t.iter()
                    .map(|(k, v)| {
                        Term::Tuple(vec![
                            Term::Binary(k.as_bytes().to_vec()),
                            Term::Atom(type_name(v)),
                            term(v),
                        ])
                    })
                    .collect(),
            ),
            FieldValue::Void => Term::Atom("undefined"),
        }
    }

    /// Erlang's `==`. Mixed integer and float follow the documented rule: the integer
    /// becomes a float while the float is below 2^53 in magnitude, else the other way.
    fn erlang_eq(a: &Term, b: &Term) -> bool {
        match (a, b) {
            (Term::Int(x), Term::Int(y)) => x == y,
            (Term::Float(x), Term::Float(y)) => x == y,
            (Term::Int(i), Term::Float(f)) | (Term::Float(f), Term::Int(i)) => {
                if f.abs() < 9007199254740992.0 {
                    *i as f64 == *f
                } else {
                    *f as i128 == *i
                }
            }
            (Term::Binary(x), Term::Binary(y)) => x == y,
            (Term::Atom(x), Term::Atom(y)) => x == y,
            (Term::Tuple(x), Term::Tuple(y)) | (Term::List(x), Term::List(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| erlang_eq(a, b))
            }
            _ => false,
        }
    }

    type Entry = (Vec<u8>, &'static str, Term);

    /// `rabbit_misc:sort_field_table`: lists:keysort, which is stable.
    fn sorted(table: &FieldTable) -> Vec<Entry> {
        let mut entries: Vec<Entry> = table
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), type_name(v), term(v)))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        All,
        Any,
        AllWithX,
        AnyWithX,
    }

    /// `headers_match/5`, clause by clause.
    fn reference(
        pattern: &[Entry],
        data: &[Entry],
        all_match: bool,
        any_match: bool,
        kind: Kind,
    ) -> bool {
        let wants_all = matches!(kind, Kind::All | Kind::AllWithX);
        if wants_all && !all_match {
            return false;
        }
        if !wants_all && any_match {
            return true;
        }
        let Some(((pk, pt, pv), p_rest)) = pattern.split_first() else {
            return if wants_all { all_match } else { any_match };
        };
        if pk == b"x-match" {
            return reference(p_rest, data, all_match, any_match, kind);
        }
        if pk.starts_with(b"x-") && !matches!(kind, Kind::AllWithX | Kind::AnyWithX) {
            return reference(p_rest, data, all_match, any_match, kind);
        }
        let Some(((dk, _, dv), d_rest)) = data.split_first() else {
            return reference(&[], &[], false, any_match, kind);
        };
        if pk > dk {
            reference(pattern, d_rest, all_match, any_match, kind)
        } else if pk < dk {
            reference(p_rest, data, false, any_match, kind)
        } else if *pt == "void" || erlang_eq(pv, dv) {
            reference(p_rest, d_rest, all_match, true, kind)
        } else {
            reference(p_rest, d_rest, false, any_match, kind)
        }
    }

    /// `validate_binding` then `headers_match/2`; None when the binding is refused.
    fn rabbit(binding: &FieldTable, headers: Option<&FieldTable>) -> Option<bool> {
        let pattern = sorted(binding);
        let kind = match pattern.iter().find(|e| e.0 == b"x-match") {
            None => Kind::All,
            Some((_, "longstr", Term::Binary(v))) => match v.as_slice() {
                b"all" => Kind::All,
                b"any" => Kind::Any,
                b"all-with-x" => Kind::AllWithX,
                b"any-with-x" => Kind::AnyWithX,
                _ => return None,
            },
            Some(_) => return None,
        };
        let data = headers.map(sorted).unwrap_or_default();
        Some(reference(&pattern, &data, true, false, kind))
    }

    fn key() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["a", "b", "c", "x-a", "x-", "x-match"])
    }

    fn scalar() -> impl Strategy<Value = FieldValue> {
        let string = prop::sample::select(vec!["", "a", "all", "any", "1"]);
        let big = [1u64 << 53, (1 << 53) + 1, u64::MAX, i64::MAX as u64];
        prop_oneof![
            any::<bool>().prop_map(FieldValue::Bool),
            (-2i8..=2).prop_map(FieldValue::I8),
            (0u8..=2).prop_map(FieldValue::U8),
            (-2i16..=2).prop_map(FieldValue::I16),
            (0u16..=2).prop_map(FieldValue::U16),
            (-2i32..=2).prop_map(FieldValue::I32),
            (0u32..=2).prop_map(FieldValue::U32),
            (-2i64..=2).prop_map(FieldValue::I64),
            (0u64..=2).prop_map(FieldValue::Timestamp),
            prop::sample::select(big.to_vec()).prop_map(FieldValue::Timestamp),
            prop::sample::select(big.to_vec()).prop_map(|v| FieldValue::F64(v as f64)),
            prop::sample::select(vec![-1.0f32, -0.0, 0.0, 0.5, 1.0, 2.0, 0.1])
                .prop_map(FieldValue::F32),
            prop::sample::select(vec![-1.0f64, -0.0, 0.0, 0.5, 1.0, 2.0, 0.1])
                .prop_map(FieldValue::F64),
            (0u8..=1, 0u32..=2).prop_map(|(scale, value)| FieldValue::Decimal { scale, value }),
            string.clone().prop_map(FieldValue::string),
            string.prop_map(|v| FieldValue::Bytes(Bytes::from_static(v.as_bytes()))),
            Just(FieldValue::Void),
        ]
    }

    /// Any value, but most often one of a few, so that conditions often hold.
    fn value() -> impl Strategy<Value = FieldValue> {
        let common = prop::sample::select(vec![
            s("1"),
            FieldValue::I8(1),
            FieldValue::F64(1.0),
            FieldValue::Void,
        ]);
        let any = scalar().prop_recursive(2, 8, 2, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..=2).prop_map(FieldValue::Array),
                prop::collection::vec((key(), inner), 0..=2).prop_map(|entries| {
                    FieldValue::Table(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
                }),
            ]
        });
        prop_oneof![1 => common, 1 => any]
    }

    fn field_table() -> impl Strategy<Value = FieldTable> {
        prop::collection::vec((key(), value()), 0..5)
            .prop_map(|entries| entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn x_match() -> impl Strategy<Value = Option<FieldValue>> {
        prop_oneof![
            Just(None),
            prop::sample::select(vec!["all", "any", "all-with-x", "any-with-x"])
                .prop_map(|m| Some(FieldValue::string(m))),
            value().prop_map(Some),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        #[test]
        fn agrees_with_rabbitmq_headers_match(
            x_match in x_match(),
            arguments in field_table(),
            headers in prop::option::of(field_table()),
            x_match_first in any::<bool>(),
            padding in prop::sample::select(vec![0usize, 0, SCAN_MAX, 40]),
        ) {
            // Enough unrelated headers switch lookups from a scan to a binary search.
            let headers = headers.map(|h| {
                let pad = (0..padding).map(|i| (ShortStr::from(format!("pad-{i}")), s("p")));
                let (front, back) = pad.partition::<Vec<_>, _>(|(k, _)| k.len() % 2 == 0);
                let middle = h.iter().map(|(k, v)| (k.clone(), v.clone()));
                front.into_iter().chain(middle).chain(back).collect::<FieldTable>()
            });
            let mut binding: Vec<(ShortStr, FieldValue)> =
                arguments.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            if let Some(m) = x_match {
                let at = if x_match_first { 0 } else { binding.len() };
                binding.insert(at, ("x-match".into(), m));
            }
            let binding: FieldTable = binding.into_iter().collect();
            let ours = HeadersBinding::parse(&binding)
                .ok()
                .map(|b| b.matches(&MessageHeaders::new(headers.as_ref())));
            prop_assert_eq!(ours, rabbit(&binding, headers.as_ref()));
        }
    }
}
