//! Field values printed as Erlang terms, for refusal texts identical to RabbitMQ's.
//!
//! RabbitMQ's refusal texts print the offending value with `~p`, as the Erlang term its
//! parser made of it. What follows writes that term as OTP 25 does, checked against it on
//! random values, with one deviation: `~p` lays a term that overflows its 80-column line
//! over several lines (a nested array or table, or an unprintable binary of a few dozen
//! bytes), where this writes one line. Printable strings stay on one line in OTP too, so
//! the likely case, a mistyped x-match string, comes out byte for byte.
//!
//! Only the headers exchange uses it today: an `x-match` of the wrong type or value is
//! refused (406) with the value printed here.

use warren_codec::FieldValue;

/// Writes the untyped Erlang term of `value`.
pub(super) fn write_term(out: &mut String, value: &FieldValue) {
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
                out.push_str(v.type_name());
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
                out.push_str(v.type_name());
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
pub(super) fn write_binary(out: &mut String, bytes: &[u8]) {
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
    use super::*;

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
}
