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
                .map(|v| Term::Tuple(vec![Term::Atom(v.type_name()), term(v)]))
                .collect(),
        ),
        FieldValue::Table(t) => Term::List(
            t.iter()
                .map(|(k, v)| {
                    Term::Tuple(vec![
                        Term::Binary(k.as_bytes().to_vec()),
                        Term::Atom(v.type_name()),
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
        .map(|(k, v)| (k.as_bytes().to_vec(), v.type_name(), term(v)))
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
