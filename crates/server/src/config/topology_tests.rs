//! `[[exchanges]]`, `[[queues]]`, `[[bindings]]` and `[[policies]]`: what a full file
//! turns into, and one test per kind of refusal, each asserting the whole
//! `file:line:col: key` prefix as `config_error`'s tests do.

#![allow(clippy::unwrap_used, clippy::panic)]

use warren_codec::{FieldTable, FieldValue};
use warren_routing::ExchangeKind;

use super::*;
use crate::policy::{Overflow, PolicyDefinition};

/// Vhosts `/` and `v` (lines 1 to 4), so entries start on line 5.
const VHOSTS: &str = "[[vhosts]]\nname = \"/\"\n[[vhosts]]\nname = \"v\"\n";

fn parse(rest: &str) -> Result<Config, String> {
    Config::parse(&format!("{VHOSTS}{rest}"), "broker.toml").map_err(|e| e.to_string())
}

fn assert_error(rest: &str, prefix: &str, more: &str) {
    let message = parse(rest).err().unwrap_or_default();
    assert!(
        message.starts_with(prefix),
        "{message:?} should start with {prefix:?}"
    );
    assert!(
        message.contains(more),
        "{message:?} should contain {more:?}"
    );
}

fn table(pairs: &[(&str, FieldValue)]) -> FieldTable {
    pairs.iter().cloned().map(|(k, v)| (k.into(), v)).collect()
}

const FULL: &str = r#"
[[exchanges]]
name = "orders"
type = "topic"
arguments = { "alternate-exchange" = "unrouted", "x-weights" = [1, 2.5, true], "x-meta" = { team = "shop" } }

[[exchanges]]
vhost = "v"
name = "dlx"
type = "fanout"
durable = false
auto_delete = true
internal = true

[[queues]]
name = "orders.created"
arguments = { "x-max-length" = 10000, "x-dead-letter-exchange" = "dlx", "x-custom" = "kept" }

[[queues]]
vhost = "v"
name = "orders.created"
durable = false
auto_delete = true

[[bindings]]
source = "orders"
destination = "orders.created"
routing_key = "order.created"

[[bindings]]
vhost = "v"
source = "amq.match"
destination = "dlx"
destination_type = "exchange"
arguments = { "x-match" = "any", kind = "dead" }

[[policies]]
name = "orders-limits"
pattern = "orders.*"
max_length = 1000
overflow = "reject-publish"
dead_letter_exchange = "dlx"

[[policies]]
vhost = "v"
name = "everything"
pattern = "*"
priority = -3
apply_to = "queues"
message_ttl = 0
expires = 1
max_length_bytes = 1048576
dead_letter_exchange = ""
dead_letter_routing_key = "dead"
delivery_limit = 5
max_priority = 255
"#;

#[test]
fn full_topology_and_policies_are_read_with_defaults() {
    let config = parse(FULL).unwrap();
    assert_eq!(
        config.exchanges,
        [
            ExchangeConfig {
                vhost: "/".into(),
                name: "orders".into(),
                kind: ExchangeKind::Topic,
                durable: true,
                auto_delete: false,
                internal: false,
                // Sorted by key: the TOML parser hands tables over that way.
                arguments: table(&[
                    ("alternate-exchange", FieldValue::string("unrouted")),
                    (
                        "x-meta",
                        FieldValue::Table(table(&[("team", FieldValue::string("shop"))]))
                    ),
                    (
                        "x-weights",
                        FieldValue::Array(vec![
                            FieldValue::I64(1),
                            FieldValue::F64(2.5),
                            FieldValue::Bool(true),
                        ])
                    ),
                ]),
            },
            ExchangeConfig {
                vhost: "v".into(),
                name: "dlx".into(),
                kind: ExchangeKind::Fanout,
                durable: false,
                auto_delete: true,
                internal: true,
                arguments: FieldTable::new(),
            },
        ]
    );
    assert_eq!(
        config.queues,
        [
            QueueConfig {
                vhost: "/".into(),
                name: "orders.created".into(),
                durable: true,
                auto_delete: false,
                arguments: table(&[
                    ("x-custom", FieldValue::string("kept")),
                    ("x-dead-letter-exchange", FieldValue::string("dlx")),
                    ("x-max-length", FieldValue::I64(10000)),
                ]),
            },
            QueueConfig {
                vhost: "v".into(),
                name: "orders.created".into(),
                durable: false,
                auto_delete: true,
                arguments: FieldTable::new(),
            },
        ]
    );
    assert_eq!(
        config.bindings,
        [
            BindingConfig {
                vhost: "/".into(),
                source: "orders".into(),
                destination: "orders.created".into(),
                destination_kind: BindingDestination::Queue,
                routing_key: "order.created".into(),
                arguments: FieldTable::new(),
            },
            BindingConfig {
                vhost: "v".into(),
                source: "amq.match".into(),
                destination: "dlx".into(),
                destination_kind: BindingDestination::Exchange,
                routing_key: String::new(),
                arguments: table(&[
                    ("kind", FieldValue::string("dead")),
                    ("x-match", FieldValue::string("any")),
                ]),
            },
        ]
    );
    let [limits, everything] = &config.policies[..] else {
        panic!("two policies expected: {:?}", config.policies);
    };
    assert_eq!(
        (limits.vhost.as_str(), limits.name.as_str()),
        ("/", "orders-limits")
    );
    assert_eq!(limits.pattern.as_str(), "orders.*");
    assert!(limits.pattern.matches("orders.created") && !limits.pattern.matches("orders"));
    assert_eq!(limits.priority, 0);
    assert_eq!(
        limits.definition,
        PolicyDefinition {
            max_length: Some(1000),
            overflow: Some(Overflow::RejectPublish),
            dead_letter_exchange: Some("dlx".into()),
            ..Default::default()
        }
    );
    assert_eq!(everything.vhost, "v");
    assert_eq!(everything.priority, -3);
    assert_eq!(
        everything.definition,
        PolicyDefinition {
            message_ttl: Some(0),
            expires: Some(1),
            max_length: None,
            max_length_bytes: Some(1_048_576),
            overflow: None,
            dead_letter_exchange: Some(String::new()),
            dead_letter_routing_key: Some("dead".into()),
            delivery_limit: Some(5),
            max_priority: Some(255),
        }
    );
}

#[test]
fn the_same_name_may_be_used_in_another_vhost_and_by_an_exchange_and_a_queue() {
    let config = parse(
        "[[exchanges]]\nname = \"a\"\ntype = \"direct\"\n\
         [[exchanges]]\nvhost = \"v\"\nname = \"a\"\ntype = \"direct\"\n\
         [[queues]]\nname = \"a\"\n\
         [[policies]]\nname = \"a\"\npattern = \"*\"\nmax_length = 1\n\
         [[policies]]\nvhost = \"v\"\nname = \"a\"\npattern = \"*\"\nmax_length = 1\n",
    )
    .unwrap();
    assert_eq!(config.exchanges.len(), 2);
    assert_eq!(config.policies.len(), 2);
}

#[test]
fn unknown_queue_arguments_pass_as_in_a_declare() {
    let config = parse("[[queues]]\nname = \"q\"\narguments = { \"x-queue-mode\" = \"lazy\" }\n");
    let queue = &config.unwrap().queues[0];
    assert_eq!(
        queue.arguments.get("x-queue-mode"),
        Some(&FieldValue::string("lazy"))
    );
}

#[test]
fn entry_vhost_must_be_defined() {
    assert_error(
        "[[exchanges]]\nvhost = \"w\"\nname = \"x\"\ntype = \"direct\"\n",
        "broker.toml:6:9: exchanges[0].vhost: no vhost `w` is defined; defined: /, v",
        "",
    );
    assert_error(
        "[[queues]]\nvhost = \"w\"\nname = \"q\"\n",
        "broker.toml:6:9: queues[0].vhost: no vhost `w` is defined",
        "",
    );
    assert_error(
        "[[bindings]]\nvhost = \"w\"\nsource = \"amq.topic\"\ndestination = \"q\"\n",
        "broker.toml:6:9: bindings[0].vhost: no vhost `w` is defined",
        "",
    );
    assert_error(
        "[[policies]]\nvhost = \"w\"\nname = \"p\"\npattern = \"*\"\nmax_length = 1\n",
        "broker.toml:6:9: policies[0].vhost: no vhost `w` is defined",
        "",
    );
}

#[test]
fn the_default_vhost_must_be_defined_too() {
    let error = |entry: &str| {
        Config::parse(&format!("[[vhosts]]\nname = \"v\"\n{entry}"), "broker.toml")
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error("[[queues]]\nname = \"q\"\n"),
        "broker.toml:3:1: queues[0].vhost: no vhost `/` is defined; defined: v"
    );
    assert!(
        error("\n[[exchanges]]\nname = \"x\"\ntype = \"direct\"\n")
            .starts_with("broker.toml:4:1: exchanges[0].vhost: no vhost `/` is defined")
    );
    assert!(
        error("[[bindings]]\nsource = \"amq.topic\"\ndestination = \"q\"\n")
            .starts_with("broker.toml:3:1: bindings[0].vhost: no vhost `/` is defined")
    );
    assert!(
        error("[[policies]]\nname = \"p\"\npattern = \"*\"\nmax_length = 1\n")
            .starts_with("broker.toml:3:1: policies[0].vhost: no vhost `/` is defined")
    );
}

#[test]
fn exchange_and_queue_names_must_not_be_empty() {
    assert_error(
        "[[exchanges]]\nname = \"\"\ntype = \"direct\"\n",
        "broker.toml:6:8: exchanges[0].name: must not be empty",
        "",
    );
    assert_error(
        "[[queues]]\nname = \"\"\n",
        "broker.toml:6:8: queues[0].name: must not be empty",
        "",
    );
    assert_error(
        "[[policies]]\nname = \"\"\npattern = \"*\"\nmax_length = 1\n",
        "broker.toml:6:8: policies[0].name: must not be empty",
        "",
    );
}

#[test]
fn exchange_and_queue_names_are_short_strings() {
    let long = "n".repeat(256);
    assert_error(
        &format!("[[exchanges]]\nname = \"{long}\"\ntype = \"direct\"\n"),
        "broker.toml:6:8: exchanges[0].name: must be at most 255 bytes long (got 256 bytes)",
        "",
    );
    assert_error(
        &format!("[[queues]]\nname = \"{long}\"\n"),
        "broker.toml:6:8: queues[0].name: must be at most 255 bytes long (got 256 bytes)",
        "",
    );
    assert!(parse(&format!("[[queues]]\nname = \"{}\"\n", "n".repeat(255))).is_ok());
}

#[test]
fn amq_prefixed_names_are_reserved() {
    assert_error(
        "[[exchanges]]\nname = \"amq.orders\"\ntype = \"direct\"\n",
        "broker.toml:6:8: exchanges[0].name: exchange names starting with `amq.` are reserved \
         for the broker",
        "choose another name",
    );
    assert_error(
        "[[queues]]\nname = \"amq.q\"\n",
        "broker.toml:6:8: queues[0].name: queue names starting with `amq.` are reserved",
        "403 ACCESS_REFUSED",
    );
}

#[test]
fn names_are_unique_per_vhost() {
    let exchange = "[[exchanges]]\nname = \"x\"\ntype = \"direct\"\n";
    assert_error(
        &format!("{exchange}{exchange}"),
        "broker.toml:9:8: exchanges[1].name: duplicate exchange `x` (first defined at line 6, \
         column 8)",
        "",
    );
    assert_error(
        "[[queues]]\nname = \"q\"\n[[queues]]\nvhost = \"/\"\nname = \"q\"\n",
        "broker.toml:9:8: queues[1].name: duplicate queue `q` (first defined at line 6, column 8)",
        "",
    );
    let policy = "[[policies]]\nname = \"p\"\npattern = \"*\"\nmax_length = 1\n";
    assert_error(
        &format!("{policy}{policy}"),
        "broker.toml:10:8: policies[1].name: duplicate policy `p` (first defined at line 6, \
         column 8)",
        "",
    );
}

#[test]
fn exchange_type_must_be_known() {
    assert_error(
        "[[exchanges]]\nname = \"x\"\ntype = \"topics\"\n",
        "broker.toml:7:8: exchanges[0].type: unknown value `topics`; expected one of `direct`, \
         `fanout`, `topic`, `headers`",
        "",
    );
    assert_error(
        "[[exchanges]]\nname = \"x\"\n",
        "broker.toml:5:1: exchanges[0]: missing key `type`",
        "",
    );
}

#[test]
fn exchange_arguments_are_checked_as_a_declare_would() {
    assert_error(
        "[[exchanges]]\nname = \"x\"\ntype = \"direct\"\narguments = { \"alternate-exchange\" = 1 }\n",
        "broker.toml:8:38: exchanges[0].arguments.alternate-exchange: invalid arg \
         'alternate-exchange' for exchange 'x': type 'l' is not a string; expected a string: \
         the name of an exchange",
        "",
    );
    assert_error(
        "[[exchanges]]\nname = \"x\"\ntype = \"direct\"\narguments.x-unroutable = \"bounce\"\n",
        "broker.toml:8:26: exchanges[0].arguments.x-unroutable: invalid arg 'x-unroutable'",
        "`drop` or `reject`",
    );
}

#[test]
fn queue_arguments_are_checked_as_a_declare_would() {
    let queue =
        |arguments: &str| format!("[[queues]]\nname = \"q\"\narguments = {{ {arguments} }}\n");
    assert_error(
        &queue("\"x-max-length\" = -1"),
        "broker.toml:7:32: queues[0].arguments.x-max-length: invalid arg 'x-max-length' for \
         queue 'q' in vhost '/': {value_negative,-1}; expected an integer of at least 0",
        "",
    );
    assert_error(
        &queue("\"x-message-ttl\" = \"1s\""),
        "broker.toml:7:33: queues[0].arguments.x-message-ttl: invalid arg 'x-message-ttl' for \
         queue 'q' in vhost '/': \"expected integer, got longstr\"; expected an integer number \
         of milliseconds from 0 to 257698037700",
        "",
    );
    assert_error(
        &queue("\"x-overflow\" = \"drop-tail\""),
        "broker.toml:7:30: queues[0].arguments.x-overflow: invalid arg 'x-overflow' for queue \
         'q' in vhost '/': invalid_overflow; expected one of the strings `drop-head`",
        "",
    );
    assert_error(
        &queue("\"x-dead-letter-routing-key\" = \"dead\""),
        "broker.toml:7:45: queues[0].arguments.x-dead-letter-routing-key: invalid arg \
         'x-dead-letter-routing-key' for queue 'q' in vhost '/': routing_key_but_no_dlx_defined",
        "only together with `x-dead-letter-exchange`",
    );
    assert_error(
        &queue("\"x-max-priority\" = 256"),
        "broker.toml:7:34: queues[0].arguments.x-max-priority: invalid arg 'x-max-priority' \
         for queue 'q' in vhost '/': {max_value_exceeded,256}; expected an integer from 0 to 255",
        "",
    );
}

#[test]
fn dates_are_not_argument_values() {
    assert_error(
        "[[queues]]\nname = \"q\"\narguments = { \"x-since\" = 2024-01-01 }\n",
        "broker.toml:7:27: queues[0].arguments.x-since: a date or time cannot be an argument \
         value",
        "as a string or as an integer timestamp",
    );
    // Inside a value, the error is at the argument's value and the key goes all the way.
    assert_error(
        "[[bindings]]\nsource = \"amq.headers\"\ndestination = \"q\"\n\
         arguments = { h = [1, { at = 07:30:00 }] }\n[[queues]]\nname = \"q\"\n",
        "broker.toml:8:19: bindings[0].arguments.h[1].at: a date or time cannot be",
        "",
    );
}

#[test]
fn argument_names_are_short_strings() {
    let long = "k".repeat(256);
    assert_error(
        &format!("[[queues]]\nname = \"q\"\narguments = {{ {long} = 1 }}\n"),
        &format!(
            "broker.toml:7:{}: queues[0].arguments.{long}: must be at most 255 bytes",
            14 + 256 + 4
        ),
        "",
    );
}

/// Exchanges `x` (topic) and `hx` (headers) and queue `q` in `/`, queue `q2` in `v`
/// (lines 5 to 16); the binding's keys start on line 17.
fn bound(binding: &str) -> String {
    format!(
        "[[exchanges]]\nname = \"x\"\ntype = \"topic\"\n\
         [[exchanges]]\nname = \"hx\"\ntype = \"headers\"\n\
         [[queues]]\nname = \"q\"\n\
         [[queues]]\nvhost = \"v\"\nname = \"q2\"\n\
         [[bindings]]\n{binding}"
    )
}

#[test]
fn bindings_may_use_file_and_predeclared_exchanges() {
    let config = parse(&bound(
        "source = \"amq.topic\"\ndestination = \"q\"\nrouting_key = \"#\"\n\
         [[bindings]]\nsource = \"x\"\ndestination = \"hx\"\ndestination_type = \"exchange\"\n\
         [[bindings]]\nsource = \"x\"\ndestination = \"x\"\ndestination_type = \"exchange\"\n",
    ))
    .unwrap();
    assert_eq!(config.bindings.len(), 3);
    assert_eq!(config.bindings[0].routing_key, "#");
}

#[test]
fn binding_source_must_be_a_defined_exchange_in_the_vhost() {
    assert_error(
        &bound("source = \"nope\"\ndestination = \"q\"\n"),
        "broker.toml:17:10: bindings[0].source: no exchange `nope` is defined in vhost `/`; \
         defined: x, hx, amq.direct, amq.fanout, amq.topic, amq.headers, amq.match",
        "",
    );
    assert_error(
        &bound("vhost = \"v\"\nsource = \"x\"\ndestination = \"q2\"\n"),
        "broker.toml:18:10: bindings[0].source: no exchange `x` is defined in vhost `v`; \
         defined: amq.direct,",
        "",
    );
}

#[test]
fn the_default_exchange_cannot_be_bound() {
    assert_error(
        &bound("source = \"\"\ndestination = \"q\"\n"),
        "broker.toml:17:10: bindings[0].source: the default exchange (\"\") cannot be bound",
        "bind from or to another exchange",
    );
    assert_error(
        &bound("source = \"x\"\ndestination = \"\"\ndestination_type = \"exchange\"\n"),
        "broker.toml:18:15: bindings[0].destination: the default exchange (\"\") cannot be bound",
        "",
    );
}

#[test]
fn binding_destination_must_be_defined_in_the_vhost() {
    assert_error(
        &bound("source = \"x\"\ndestination = \"q2\"\n"),
        "broker.toml:18:15: bindings[0].destination: no queue `q2` is defined in vhost `/`; \
         defined: q",
        "",
    );
    assert_error(
        &bound("source = \"x\"\ndestination = \"q\"\ndestination_type = \"exchange\"\n"),
        "broker.toml:18:15: bindings[0].destination: no exchange `q` is defined in vhost `/`",
        "defined: x, hx, amq.direct",
    );
    assert_error(
        &bound("source = \"x\"\ndestination = \"q\"\ndestination_type = \"stream\"\n"),
        "broker.toml:19:20: bindings[0].destination_type: unknown value `stream`; expected \
         `queue` or `exchange`",
        "",
    );
}

#[test]
fn binding_arguments_are_checked_as_a_bind_would() {
    assert_error(
        &bound("source = \"hx\"\ndestination = \"q\"\narguments = { \"x-match\" = \"some\" }\n"),
        "broker.toml:19:27: bindings[0].arguments.x-match: Invalid x-match field value",
        "expected all, any, all-with-x, or any-with-x",
    );
    // Other exchange types ignore x-match, as in RabbitMQ.
    assert!(
        parse(&bound(
            "source = \"x\"\ndestination = \"q\"\narguments.x-match = 1\n"
        ))
        .is_ok()
    );
}

#[test]
fn routing_keys_are_short_strings() {
    let long = "k".repeat(256);
    assert_error(
        &bound(&format!(
            "source = \"x\"\ndestination = \"q\"\nrouting_key = \"{long}\"\n"
        )),
        "broker.toml:19:15: bindings[0].routing_key: must be at most 255 bytes long",
        "",
    );
}

/// A policy `p` for every queue, setting what `settings` says; its settings start on
/// line 8.
fn policy(settings: &str) -> String {
    format!("[[policies]]\nname = \"p\"\npattern = \"*\"\n{settings}")
}

#[test]
fn policy_pattern_must_be_a_glob() {
    assert_error(
        "[[policies]]\nname = \"p\"\npattern = \"orders.[\"\nmax_length = 1\n",
        "broker.toml:7:11: policies[0].pattern: invalid glob pattern: Pattern syntax error near \
         position 7: invalid range pattern; `*` matches any run of characters",
        "",
    );
}

#[test]
fn policy_must_set_something() {
    assert_error(
        &policy("priority = 1\napply_to = \"queues\"\n"),
        "broker.toml:5:1: policies[0]: a policy must set at least one of `message_ttl`, \
         `expires`, `max_length`, `max_length_bytes`, `overflow`, `dead_letter_exchange`, \
         `dead_letter_routing_key`, `delivery_limit`, `max_priority`",
        "",
    );
}

#[test]
fn policy_applies_to_queues_only() {
    assert_error(
        &policy("max_length = 1\napply_to = \"exchanges\"\n"),
        "broker.toml:9:12: policies[0].apply_to: `exchanges` is not supported; only `queues` is \
         supported",
        "",
    );
}

#[test]
fn policy_settings_are_range_checked() {
    let cases = [
        (
            "message_ttl = -1",
            "message_ttl: must be at least 0 (got -1)",
        ),
        (
            "message_ttl = 257698037701",
            "message_ttl: must be at most 257698037700 (got 257698037701)",
        ),
        ("expires = 0", "expires: must be at least 1 (got 0)"),
        ("max_length = -5", "max_length: must be at least 0 (got -5)"),
        (
            "max_length_bytes = -1",
            "max_length_bytes: must be at least 0",
        ),
        ("delivery_limit = -1", "delivery_limit: must be at least 0"),
        (
            "max_priority = 256",
            "max_priority: must be at most 255 (got 256)",
        ),
        (
            "max_priority = -1",
            "max_priority: must be at least 0 (got -1)",
        ),
    ];
    for (setting, problem) in cases {
        let column = setting.find('=').unwrap() + 3;
        assert_error(
            &policy(&format!("{setting}\n")),
            &format!("broker.toml:8:{column}: policies[0].{problem}"),
            "",
        );
    }
    assert_error(
        &policy("max_length = 1\npriority = 2147483648\n"),
        "broker.toml:9:12: policies[0].priority: must be at most 2147483647 (got 2147483648)",
        "",
    );
}

#[test]
fn policy_overflow_must_be_known() {
    assert_error(
        &policy("overflow = \"drop-tail\"\n"),
        "broker.toml:8:12: policies[0].overflow: unknown value `drop-tail`; expected one of \
         `drop-head`, `reject-publish`, `reject-publish-dlx`",
        "",
    );
}

#[test]
fn policy_dead_letter_names_are_short_strings() {
    let long = "d".repeat(256);
    assert_error(
        &policy(&format!("dead_letter_exchange = \"{long}\"\n")),
        "broker.toml:8:24: policies[0].dead_letter_exchange: must be at most 255 bytes long",
        "",
    );
}

#[test]
fn unknown_keys_in_topology_entries_are_errors() {
    assert_error(
        "[[exchanges]]\nname = \"x\"\ntype = \"direct\"\nexclusive = true\n",
        "broker.toml:8:1: unknown key `exclusive` in exchanges[0]; expected one of `vhost`, \
         `name`, `type`, `durable`",
        "`arguments`",
    );
    assert_error(
        "[[queues]]\nname = \"q\"\nexclusive = true\n",
        "broker.toml:7:1: unknown key `exclusive` in queues[0]",
        "`auto_delete`",
    );
    assert_error(
        &bound("source = \"x\"\ndestination = \"q\"\nkey = \"k\"\n"),
        "broker.toml:19:1: unknown key `key` in bindings[0]",
        "`routing_key`",
    );
    assert_error(
        &policy("ttl = 5\n"),
        "broker.toml:8:1: unknown key `ttl` in policies[0]",
        "`message_ttl`",
    );
}

#[test]
fn wrong_types_in_topology_entries_name_the_key() {
    assert_error(
        "[[exchanges]]\nname = \"x\"\ntype = \"direct\"\ndurable = \"yes\"\n",
        "broker.toml:8:11: exchanges[0].durable: invalid type: string \"yes\"",
        "expected a boolean",
    );
    assert_error(
        &policy("max_length = \"10\"\n"),
        "broker.toml:8:14: policies[0].max_length: invalid type: string \"10\"",
        "expected an integer",
    );
    assert_error(
        "[[queues]]\ndurable = true\n",
        "broker.toml:5:1: queues[0]: missing key `name`",
        "",
    );
}
