//! RabbitMQ definitions (the JSON of `rabbitmqctl export_definitions` or
//! `GET /api/definitions`) as broker.toml: `warren import-definitions` reads a
//! RabbitMQ export, `warren export` reads warren's own `/api/definitions`.
//!
//! What has no meaning in warren is left out with a warning, never silently: users
//! hashed with another scheme than SHA-256, exchange types other than direct, fanout,
//! topic and headers, policies for exchanges only, policy keys warren does not know,
//! and policy patterns (regular expressions in RabbitMQ, globs in warren) with no glob
//! equivalent.

use std::fmt::Write;

use serde_json::{Map, Value};
use warren_server::policy::PolicyKey;

/// The broker.toml text, and what was left out.
pub struct Converted {
    /// broker.toml sections: users, vhosts, permissions, exchanges, queues, bindings,
    /// policies.
    pub toml: String,
    /// One line per thing left out, saying why.
    pub warnings: Vec<String>,
}

/// Converts RabbitMQ definitions to broker.toml; `source` names them in the header.
pub fn to_broker_toml(definitions: &Value, source: &str) -> Result<Converted, String> {
    let Value::Object(all) = definitions else {
        return Err("definitions must be a JSON object".into());
    };
    let mut out = Converted {
        toml: format!(
            "# broker.toml from {source}.\n# Listeners, limits and the data directory are \
             not in definitions: the [server], [management] and [limits] defaults apply\n\
             # unless you add those sections (see the repository's broker.toml).\n"
        ),
        warnings: Vec::new(),
    };
    for user in items(all, "users") {
        out.user(user);
    }
    for vhost in items(all, "vhosts") {
        out.section("vhosts", &[("name", text(vhost, "name"))]);
    }
    for p in items(all, "permissions") {
        out.section(
            "permissions",
            &[
                ("user", text(p, "user")),
                ("vhost", text(p, "vhost")),
                ("configure", text(p, "configure")),
                ("write", text(p, "write")),
                ("read", text(p, "read")),
            ],
        );
    }
    for x in items(all, "exchanges") {
        out.exchange(x);
    }
    for q in items(all, "queues") {
        let mut fields = vec![("name", text(q, "name"))];
        fields.extend(vhost(q));
        fields.push(("durable", flag(q, "durable", true)));
        if q["auto_delete"] == Value::Bool(true) {
            fields.push(("auto_delete", "true".into()));
        }
        fields.extend(arguments(q));
        out.section("queues", &fields);
    }
    for b in items(all, "bindings") {
        let mut fields = vec![("source", text(b, "source"))];
        fields.extend(vhost(b));
        fields.push(("destination", text(b, "destination")));
        if b["destination_type"] == "exchange" {
            fields.push(("destination_type", quoted("exchange")));
        }
        fields.push(("routing_key", text(b, "routing_key")));
        fields.extend(arguments(b));
        out.section("bindings", &fields);
    }
    for p in items(all, "policies") {
        out.policy(p);
    }
    Ok(out)
}

impl Converted {
    fn section(&mut self, name: &str, fields: &[(&str, String)]) {
        let _ = writeln!(self.toml, "\n[[{name}]]");
        for (key, value) in fields {
            let _ = writeln!(self.toml, "{key} = {value}");
        }
    }

    fn user(&mut self, user: &Value) {
        let name = plain(&user["name"]);
        let algorithm = user["hashing_algorithm"]
            .as_str()
            .unwrap_or("rabbit_password_hashing_sha256");
        if algorithm != "rabbit_password_hashing_sha256" {
            self.warnings.push(format!(
                "user '{name}' left out: its password is hashed with {algorithm}; warren \
                 reads rabbit_password_hashing_sha256 hashes (set a new one with \
                 `warren hash-password`)"
            ));
            return;
        }
        // RabbitMQ keeps loopback-only users in `loopback_users`, by default guest.
        let loopback = user["loopback_only"].as_bool().unwrap_or(name == "guest");
        self.section(
            "users",
            &[
                ("name", quoted(&name)),
                ("password_hash", text(user, "password_hash")),
                ("loopback_only", loopback.to_string()),
            ],
        );
    }

    fn exchange(&mut self, x: &Value) {
        let name = plain(&x["name"]);
        let kind = plain(&x["type"]);
        if !matches!(kind.as_str(), "direct" | "fanout" | "topic" | "headers") {
            self.warnings.push(format!(
                "exchange '{name}' left out: type '{kind}' (a plugin's) is not supported"
            ));
            return;
        }
        let mut fields = vec![("name", quoted(&name))];
        fields.extend(vhost(x));
        fields.push(("type", quoted(&kind)));
        fields.push(("durable", flag(x, "durable", true)));
        for key in ["auto_delete", "internal"] {
            if x[key] == Value::Bool(true) {
                fields.push((key, "true".into()));
            }
        }
        fields.extend(arguments(x));
        self.section("exchanges", &fields);
    }

    fn policy(&mut self, p: &Value) {
        let name = plain(&p["name"]);
        let apply_to = p["apply-to"].as_str().unwrap_or("all");
        if apply_to == "exchanges" {
            self.warnings.push(format!(
                "policy '{name}' left out: it applies to exchanges only"
            ));
            return;
        }
        let regex = plain(&p["pattern"]);
        let Some(glob) = regex_to_glob(&regex) else {
            self.warnings.push(format!(
                "policy '{name}' left out: its pattern {regex:?} has no glob equivalent; \
                 write one by hand"
            ));
            return;
        };
        let mut fields = vec![("name", quoted(&name))];
        fields.extend(vhost(p));
        fields.push(("pattern", quoted(&glob)));
        if let Some(priority) = p["priority"].as_i64().filter(|p| *p != 0) {
            fields.push(("priority", priority.to_string()));
        }
        let mut set = 0;
        for (key, value) in p["definition"].as_object().into_iter().flatten() {
            let known = PolicyKey::ALL
                .into_iter()
                .find(|k| k.rabbitmq_name() == key);
            let (Some(known), Ok(value)) = (known, toml::Value::try_from(value)) else {
                self.warnings.push(format!(
                    "policy '{name}': key '{key}' left out: warren does not support it"
                ));
                continue;
            };
            set += 1;
            fields.push((known.as_str(), value.to_string()));
        }
        if set == 0 {
            self.warnings.push(format!(
                "policy '{name}' left out: none of its keys applies in warren"
            ));
            return;
        }
        self.section("policies", &fields);
    }
}

/// A RabbitMQ policy pattern (a regular expression, unanchored unless it says `^` and
/// `$`) as a glob matching the same names, when there is one: literal characters,
/// `.*`, `.`, and character sets.
pub fn regex_to_glob(regex: &str) -> Option<String> {
    let mut chars: Vec<char> = regex.chars().collect();
    let anchored_start = chars.first() == Some(&'^');
    if anchored_start {
        chars.remove(0);
    }
    let anchored_end = chars.last() == Some(&'$') && !ends_escaped(&chars);
    if anchored_end {
        chars.pop();
    }
    let mut glob = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' if chars.get(i + 1) == Some(&'*') => {
                glob.push('*');
                i += 2;
                continue;
            }
            '.' => glob.push('?'),
            '\\' => {
                let c = *chars.get(i + 1)?;
                if c.is_ascii_alphanumeric() {
                    // \d, \w, \b and friends.
                    return None;
                }
                push_literal(&mut glob, c);
                i += 2;
                continue;
            }
            '[' => {
                let end = chars[i + 1..].iter().position(|c| *c == ']')? + i + 1;
                let set: String = chars[i + 1..end].iter().collect();
                if set.is_empty() || set.contains('\\') || set.contains('[') {
                    return None;
                }
                glob.push('[');
                glob.push_str(&set.replacen('^', "!", usize::from(set.starts_with('^'))));
                glob.push(']');
                i = end + 1;
                continue;
            }
            '*' | '+' | '?' | '(' | ')' | '|' | '{' | '}' | '^' | '$' | ']' => return None,
            c => push_literal(&mut glob, c),
        }
        i += 1;
    }
    // Unanchored, a regex matches anywhere in the name.
    if !anchored_start && !glob.starts_with('*') {
        glob.insert(0, '*');
    }
    if !anchored_end && !glob.ends_with('*') {
        glob.push('*');
    }
    Some(glob)
}

/// Whether the last character is escaped by a backslash.
fn ends_escaped(chars: &[char]) -> bool {
    chars
        .iter()
        .rev()
        .skip(1)
        .take_while(|c| **c == '\\')
        .count()
        % 2
        == 1
}

/// A literal character in a glob: the glob's own special characters in a set.
fn push_literal(glob: &mut String, c: char) {
    if matches!(c, '*' | '?' | '[' | ']') {
        glob.push('[');
        glob.push(c);
        glob.push(']');
    } else {
        glob.push(c);
    }
}

fn items<'a>(all: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a Value> {
    all.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// A string field as a TOML string.
fn text(value: &Value, key: &str) -> String {
    quoted(&plain(&value[key]))
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn flag(value: &Value, key: &str, default: bool) -> String {
    value[key].as_bool().unwrap_or(default).to_string()
}

/// `vhost = ...` unless it is the default "/".
fn vhost(value: &Value) -> Option<(&'static str, String)> {
    match value["vhost"].as_str() {
        None | Some("/") => None,
        Some(vhost) => Some(("vhost", quoted(vhost))),
    }
}

/// `arguments = { ... }` unless there are none.
fn arguments(value: &Value) -> Option<(&'static str, String)> {
    match &value["arguments"] {
        Value::Object(map) if !map.is_empty() => toml::Value::try_from(map)
            .ok()
            .map(|t| ("arguments", t.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use warren_server::policy::glob_to_regex;

    #[test]
    fn simple_regexes_become_globs() {
        assert_eq!(regex_to_glob("^orders\\.").as_deref(), Some("orders.*"));
        assert_eq!(regex_to_glob("^orders$").as_deref(), Some("orders"));
        assert_eq!(regex_to_glob(".*").as_deref(), Some("*"));
        assert_eq!(regex_to_glob("").as_deref(), Some("*"));
        assert_eq!(regex_to_glob("dlq").as_deref(), Some("*dlq*"));
        assert_eq!(regex_to_glob("^q[0-9].$").as_deref(), Some("q[0-9]?"));
        assert_eq!(regex_to_glob("^a[^b]$").as_deref(), Some("a[!b]"));
        assert_eq!(regex_to_glob("^a\\*$").as_deref(), Some("a[*]"));
        assert_eq!(regex_to_glob("^.*.*$").as_deref(), Some("**"));
        assert_eq!(regex_to_glob(".*x").as_deref(), Some("*x*"));
        for none in ["^(a|b)$", "^a+$", "^\\d$", "^a{2}$", "^a?$"] {
            assert_eq!(regex_to_glob(none), None, "{none}");
        }
    }

    proptest! {
        /// What warren exports (a glob as a regex) comes back as the same glob.
        #[test]
        fn exported_patterns_round_trip(glob in "([a-z.*?_-]|\\[!?[a-c.]\\]){0,8}") {
            prop_assume!(glob::Pattern::new(&glob).is_ok());
            prop_assert_eq!(regex_to_glob(&glob_to_regex(&glob)), Some(glob));
        }
    }

    #[test]
    fn a_rabbitmq_export_becomes_broker_toml_that_loads() {
        let definitions = json!({
            "rabbit_version": "3.12.1",
            "users": [
                {"name": "guest", "password_hash": "+uafAfKKNueZ4disMzpO7UZaIiG1JgGb4kcJTHCm7W/vjtWK",
                 "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]},
                {"name": "old", "password_hash": "abc", "hashing_algorithm": "rabbit_password_hashing_md5"}
            ],
            "vhosts": [{"name": "/"}, {"name": "shop"}],
            "permissions": [{"user": "guest", "vhost": "shop", "configure": ".*", "write": ".*", "read": "^orders"}],
            "policies": [
                {"vhost": "shop", "name": "limits", "pattern": "^orders\\.", "apply-to": "queues",
                 "priority": 5, "definition": {"max-length": 1000, "overflow": "reject-publish", "ha-mode": "all"}},
                {"vhost": "shop", "name": "fancy", "pattern": "^(a|b)$", "apply-to": "all", "definition": {"message-ttl": 5}},
                {"vhost": "shop", "name": "ae", "pattern": ".*", "apply-to": "exchanges", "definition": {"alternate-exchange": "x"}}
            ],
            "queues": [
                {"name": "orders.new", "vhost": "shop", "durable": true, "auto_delete": false,
                 "arguments": {"x-queue-type": "classic", "x-max-length": 10}}
            ],
            "exchanges": [
                {"name": "orders", "vhost": "shop", "type": "topic", "durable": true, "auto_delete": false, "internal": false, "arguments": {}},
                {"name": "later", "vhost": "shop", "type": "x-delayed-message", "durable": true, "arguments": {}}
            ],
            "bindings": [
                {"source": "orders", "vhost": "shop", "destination": "orders.new", "destination_type": "queue",
                 "routing_key": "order.*", "arguments": {}}
            ]
        });
        let converted = to_broker_toml(&definitions, "a test").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.toml");
        std::fs::write(&path, &converted.toml).unwrap();
        let config = warren_server::config::Config::load(&path)
            .unwrap_or_else(|e| panic!("{e}\n{}", converted.toml));
        assert_eq!(config.users.len(), 1);
        assert!(config.users[0].loopback_only);
        assert_eq!(config.vhosts.len(), 2);
        assert_eq!(config.queues[0].name, "orders.new");
        assert_eq!(config.exchanges.len(), 1);
        assert_eq!(config.bindings[0].routing_key, "order.*");
        assert_eq!(config.policies.len(), 1);
        assert_eq!(config.policies[0].pattern.as_str(), "orders.*");
        assert_eq!(config.policies[0].priority, 5);
        assert_eq!(config.policies[0].definition.max_length, Some(1000));
        let warnings = converted.warnings.join("\n");
        for left_out in ["user 'old'", "'fancy'", "'ae'", "ha-mode", "'later'"] {
            assert!(
                warnings.contains(left_out),
                "{left_out} not in:\n{warnings}"
            );
        }
    }
}
