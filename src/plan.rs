//! `warren plan` and `warren apply`: what applying a broker.toml would change on the
//! running broker (to add, to change, to remove), like a terraform plan, and applying
//! it, removals included.
//!
//! The running broker's side comes from its management API: `/api/definitions` (users,
//! vhosts, permissions, policies, and the live topology, each exchange, queue and
//! binding marked `from_config` when its current broker.toml declares it) and
//! `/api/queues` (how many messages each queue holds). Only what the current file
//! declared is removed when the new file drops it: topology that clients declared
//! stays. A queue that holds messages is removed only with `--force`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde_json::{Value, json};
use warren_server::config::{BindingDestination, Config};
use warren_server::field_table_json;
use warren_server::policy::glob_to_regex;

use crate::api_client::{ApiClient, segment};

/// What applying a file would do.
#[derive(Debug, Default)]
pub struct Plan {
    /// New things the file declares.
    pub add: Vec<String>,
    /// Things whose settings change on reload (users, permissions, policies).
    pub change: Vec<String>,
    /// Declared topology that differs from the file: the broker keeps the live one.
    pub differ: Vec<String>,
    /// What the file no longer declares.
    pub remove: Vec<Removal>,
}

/// One thing to remove.
#[derive(Debug)]
pub struct Removal {
    /// What it is, for people.
    pub what: String,
    /// How to remove it.
    pub how: Remove,
    /// Messages it holds (a queue): removing it loses them, so it needs `--force`.
    pub messages: u64,
}

/// How a removal is carried out.
#[derive(Debug)]
pub enum Remove {
    /// Through the management API: `DELETE` this path, with this body.
    Delete(String, Option<Value>),
    /// By the reload itself (users, permissions, policies, vhosts).
    Reload,
}

impl Plan {
    /// Whether the broker already matches the file.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.change.is_empty() && self.remove.is_empty()
    }

    /// Removals that lose messages.
    pub fn needs_force(&self) -> Vec<&Removal> {
        self.remove.iter().filter(|r| r.messages > 0).collect()
    }

    /// The plan for people, terraform style.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.is_empty() && self.differ.is_empty() {
            return "the broker matches the file: nothing to do\n".into();
        }
        for add in &self.add {
            let _ = writeln!(out, "+ {add}");
        }
        for change in &self.change {
            let _ = writeln!(out, "~ {change}");
        }
        for r in &self.remove {
            let _ = write!(out, "- {}", r.what);
            if r.messages > 0 {
                let _ = write!(out, " (holds {} messages: needs --force)", r.messages);
            }
            out.push('\n');
        }
        for differ in &self.differ {
            let _ = writeln!(out, "! {differ}");
        }
        let _ = writeln!(
            out,
            "\n{} to add, {} to change, {} to remove{}",
            self.add.len(),
            self.change.len(),
            self.remove.len(),
            if self.differ.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} declared differently (kept as they are: delete them to \
                     re-create them from the file)",
                    self.differ.len()
                )
            }
        );
        out
    }
}

/// Reads the running broker's state.
pub async fn live(api: &ApiClient) -> Result<(Value, BTreeMap<(String, String), u64>), String> {
    let definitions = api.get("/api/definitions").await?;
    let queues = api.get("/api/queues").await?;
    let depths = queues
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| {
            let key = (str_of(&q["vhost"]), str_of(&q["name"]));
            (key, q["messages"].as_u64().unwrap_or(0))
        })
        .collect();
    Ok((definitions, depths))
}

/// Compares the file with the running broker.
pub fn plan(desired: &Config, live: &Value, depths: &BTreeMap<(String, String), u64>) -> Plan {
    let mut plan = Plan::default();
    vhosts(desired, live, &mut plan);
    users(desired, live, &mut plan);
    permissions(desired, live, &mut plan);
    policies(desired, live, &mut plan);
    exchanges(desired, live, &mut plan);
    queues(desired, live, depths, &mut plan);
    bindings(desired, live, &mut plan);
    plan
}

fn vhosts(desired: &Config, live: &Value, plan: &mut Plan) {
    let wanted: BTreeSet<&str> = desired.vhosts.iter().map(|v| v.name.as_str()).collect();
    let running: BTreeSet<String> = items(live, "vhosts").map(|v| str_of(&v["name"])).collect();
    for name in &wanted {
        if !running.contains(*name) {
            plan.add.push(format!("vhost '{name}'"));
        }
    }
    for name in running.iter().filter(|n| !wanted.contains(n.as_str())) {
        plan.remove.push(Removal {
            what: format!(
                "vhost '{name}' (refuses new connections; what it holds stays until a restart)"
            ),
            how: Remove::Reload,
            messages: 0,
        });
    }
}

fn users(desired: &Config, live: &Value, plan: &mut Plan) {
    let running: BTreeMap<String, &Value> = items(live, "users")
        .map(|u| (str_of(&u["name"]), u))
        .collect();
    for user in &desired.users {
        match running.get(&user.name) {
            None => plan.add.push(format!("user '{}'", user.name)),
            Some(u) => {
                let mut changed = Vec::new();
                if str_of(&u["password_hash"]) != user.password_hash.encode() {
                    changed.push("password");
                }
                if u["loopback_only"].as_bool() != Some(user.loopback_only) {
                    changed.push("loopback_only");
                }
                if !changed.is_empty() {
                    plan.change
                        .push(format!("user '{}': {}", user.name, changed.join(", ")));
                }
            }
        }
    }
    for name in running.keys() {
        if !desired.users.iter().any(|u| &u.name == name) {
            plan.remove.push(Removal {
                what: format!("user '{name}'"),
                how: Remove::Reload,
                messages: 0,
            });
        }
    }
}

fn permissions(desired: &Config, live: &Value, plan: &mut Plan) {
    let running: BTreeMap<(String, String), [String; 3]> = items(live, "permissions")
        .map(|p| {
            let key = (str_of(&p["user"]), str_of(&p["vhost"]));
            let value = [
                str_of(&p["configure"]),
                str_of(&p["write"]),
                str_of(&p["read"]),
            ];
            (key, value)
        })
        .collect();
    let mut wanted = BTreeSet::new();
    for p in &desired.permissions {
        let key = (p.user.clone(), p.vhost.clone());
        let value = [
            p.permissions.configure.as_str().to_owned(),
            p.permissions.write.as_str().to_owned(),
            p.permissions.read.as_str().to_owned(),
        ];
        let what = format!("permissions of '{}' in vhost '{}'", p.user, p.vhost);
        match running.get(&key) {
            None => plan.add.push(what),
            Some(v) if *v != value => plan.change.push(format!(
                "{what}: configure {:?} write {:?} read {:?}",
                value[0], value[1], value[2]
            )),
            Some(_) => {}
        }
        wanted.insert(key);
    }
    for (user, vhost) in running.keys().filter(|k| !wanted.contains(*k)) {
        plan.remove.push(Removal {
            what: format!("permissions of '{user}' in vhost '{vhost}'"),
            how: Remove::Reload,
            messages: 0,
        });
    }
}

fn policies(desired: &Config, live: &Value, plan: &mut Plan) {
    let running: BTreeMap<(String, String), &Value> = items(live, "policies")
        .map(|p| ((str_of(&p["vhost"]), str_of(&p["name"])), p))
        .collect();
    let mut wanted = BTreeSet::new();
    for p in &desired.policies {
        let key = (p.vhost.clone(), p.name.clone());
        let what = format!("policy '{}' in vhost '{}'", p.name, p.vhost);
        match running.get(&key) {
            None => plan.add.push(what),
            Some(live) => {
                let mut changed = Vec::new();
                if str_of(&live["pattern"]) != glob_to_regex(p.pattern.as_str()) {
                    changed.push(format!("pattern {:?}", p.pattern.as_str()));
                }
                if live["priority"].as_i64() != Some(i64::from(p.priority)) {
                    changed.push(format!("priority {}", p.priority));
                }
                let definition = p.definition.to_rabbitmq();
                if live["definition"] != definition {
                    changed.push(format!("definition {definition}"));
                }
                if !changed.is_empty() {
                    plan.change.push(format!("{what}: {}", changed.join(", ")));
                }
            }
        }
        wanted.insert(key);
    }
    for (vhost, name) in running.keys().filter(|k| !wanted.contains(*k)) {
        plan.remove.push(Removal {
            what: format!("policy '{name}' in vhost '{vhost}'"),
            how: Remove::Reload,
            messages: 0,
        });
    }
}

fn exchanges(desired: &Config, live: &Value, plan: &mut Plan) {
    let running: BTreeMap<(String, String), &Value> = items(live, "exchanges")
        .map(|x| ((str_of(&x["vhost"]), str_of(&x["name"])), x))
        .collect();
    for x in &desired.exchanges {
        let what = format!("exchange '{}' in vhost '{}'", x.name, x.vhost);
        let wanted = json!({
            "type": x.kind.name(), "durable": x.durable, "auto_delete": x.auto_delete,
            "internal": x.internal, "arguments": field_table_json(&x.arguments),
        });
        match running.get(&(x.vhost.clone(), x.name.clone())) {
            None => plan.add.push(what),
            Some(live) => {
                if let Some(d) = differences(live, &wanted) {
                    plan.differ.push(format!("{what}: {d}"));
                }
            }
        }
    }
    for ((vhost, name), x) in &running {
        let declared = desired
            .exchanges
            .iter()
            .any(|d| &d.vhost == vhost && &d.name == name);
        if x["from_config"] == true && !declared {
            plan.remove.push(Removal {
                what: format!("exchange '{name}' in vhost '{vhost}'"),
                how: Remove::Delete(
                    format!("/api/exchanges/{}/{}", segment(vhost), segment(name)),
                    None,
                ),
                messages: 0,
            });
        }
    }
}

fn queues(
    desired: &Config,
    live: &Value,
    depths: &BTreeMap<(String, String), u64>,
    plan: &mut Plan,
) {
    let running: BTreeMap<(String, String), &Value> = items(live, "queues")
        .map(|q| ((str_of(&q["vhost"]), str_of(&q["name"])), q))
        .collect();
    for q in &desired.queues {
        let what = format!("queue '{}' in vhost '{}'", q.name, q.vhost);
        let wanted = json!({
            "durable": q.durable, "auto_delete": q.auto_delete,
            "arguments": field_table_json(&q.arguments),
        });
        match running.get(&(q.vhost.clone(), q.name.clone())) {
            None => plan.add.push(what),
            Some(live) => {
                if let Some(d) = differences(live, &wanted) {
                    plan.differ.push(format!("{what}: {d}"));
                }
            }
        }
    }
    for (key, q) in &running {
        let (vhost, name) = key;
        let declared = desired
            .queues
            .iter()
            .any(|d| &d.vhost == vhost && &d.name == name);
        if q["from_config"] == true && !declared {
            plan.remove.push(Removal {
                what: format!("queue '{name}' in vhost '{vhost}'"),
                how: Remove::Delete(
                    format!("/api/queues/{}/{}", segment(vhost), segment(name)),
                    None,
                ),
                messages: depths.get(key).copied().unwrap_or(0),
            });
        }
    }
}

fn bindings(desired: &Config, live: &Value, plan: &mut Plan) {
    let wanted: BTreeSet<(String, String, bool, String, String, String)> = desired
        .bindings
        .iter()
        .map(|b| {
            (
                b.vhost.clone(),
                b.source.clone(),
                b.destination_kind == BindingDestination::Queue,
                b.destination.clone(),
                b.routing_key.clone(),
                field_table_json(&b.arguments).to_string(),
            )
        })
        .collect();
    let mut running = BTreeSet::new();
    for b in items(live, "bindings") {
        let to_queue = b["destination_type"] != "exchange";
        let key = (
            str_of(&b["vhost"]),
            str_of(&b["source"]),
            to_queue,
            str_of(&b["destination"]),
            str_of(&b["routing_key"]),
            b["arguments"].to_string(),
        );
        if b["from_config"] == true && !wanted.contains(&key) {
            let (vhost, source, _, destination, key_text, _) = &key;
            let props = if key_text.is_empty() {
                "~".to_owned()
            } else {
                segment(key_text)
            };
            plan.remove.push(Removal {
                what: binding_text(&key),
                how: Remove::Delete(
                    format!(
                        "/api/bindings/{}/e/{}/{}/{}/{props}",
                        segment(vhost),
                        segment(source),
                        if to_queue { "q" } else { "e" },
                        segment(destination),
                    ),
                    Some(json!({ "arguments": b["arguments"] })),
                ),
                messages: 0,
            });
        }
        running.insert(key);
    }
    for key in wanted.iter().filter(|k| !running.contains(*k)) {
        plan.add.push(binding_text(key));
    }
}

fn binding_text(key: &(String, String, bool, String, String, String)) -> String {
    let (vhost, source, to_queue, destination, routing_key, arguments) = key;
    let kind = if *to_queue { "queue" } else { "exchange" };
    let mut text = format!(
        "binding '{source}' -> {kind} '{destination}' key '{routing_key}' in vhost '{vhost}'"
    );
    if arguments != "{}" {
        let _ = write!(text, " arguments {arguments}");
    }
    text
}

/// The fields of `wanted` whose live value differs, as text.
fn differences(live: &Value, wanted: &Value) -> Option<String> {
    let differing: Vec<String> = wanted
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, value)| live.get(key.as_str()) != Some(value))
        .map(|(key, value)| format!("{key} is {} live, {value} in the file", live[key.as_str()]))
        .collect();
    (!differing.is_empty()).then(|| differing.join(", "))
}

fn items<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value[key].as_array().into_iter().flatten()
}

fn str_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// Carries out the removals the reload does not: bindings first, then queues, then
/// exchanges (what the file declared and no longer does). What failed is reported,
/// the rest goes on.
pub async fn remove(api: &ApiClient, plan: &Plan) -> Vec<String> {
    let mut failed = Vec::new();
    let order = |r: &&Removal| match &r.how {
        Remove::Delete(path, _) if path.starts_with("/api/bindings") => 0,
        Remove::Delete(path, _) if path.starts_with("/api/queues") => 1,
        _ => 2,
    };
    let mut removals: Vec<&Removal> = plan.remove.iter().collect();
    removals.sort_by_key(order);
    for r in removals {
        if let Remove::Delete(path, body) = &r.how {
            let done = match body {
                None => api.delete(path).await,
                Some(body) => api.delete_with(path, body).await,
            };
            if let Err(e) = done {
                failed.push(format!("{}: {e}", r.what));
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn config(extra: &str) -> Config {
        let base = r#"
[[users]]
name = "guest"
password_hash = "+uafAfKKNueZ4disMzpO7UZaIiG1JgGb4kcJTHCm7W/vjtWK"
loopback_only = true
[[vhosts]]
name = "/"
[[permissions]]
user = "guest"
vhost = "/"
configure = ".*"
write = ".*"
read = ".*"
"#;
        Config::parse(&format!("{base}{extra}"), "test.toml").unwrap()
    }

    fn live() -> Value {
        json!({
            "users": [{"name": "guest", "password_hash": "+uafAfKKNueZ4disMzpO7UZaIiG1JgGb4kcJTHCm7W/vjtWK", "loopback_only": true}],
            "vhosts": [{"name": "/"}],
            "permissions": [{"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
            "policies": [{"vhost": "/", "name": "old", "pattern": "^x$", "priority": 0, "definition": {"max-length": 1}}],
            "exchanges": [
                {"name": "gone", "vhost": "/", "type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": {}, "from_config": true},
                {"name": "theirs", "vhost": "/", "type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": {}, "from_config": false}
            ],
            "queues": [
                {"name": "kept", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {}, "from_config": true},
                {"name": "full", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {}, "from_config": true},
                {"name": "app", "vhost": "/", "durable": false, "auto_delete": false, "arguments": {}, "from_config": false}
            ],
            "bindings": [
                {"source": "gone", "vhost": "/", "destination": "kept", "destination_type": "queue", "routing_key": "", "arguments": {}, "from_config": true}
            ]
        })
    }

    #[test]
    fn the_plan_adds_changes_and_removes_only_what_the_file_declared() {
        let desired = config(
            r#"
[[queues]]
name = "kept"
arguments = { "x-max-length" = 5 }
[[queues]]
name = "new"
[[policies]]
name = "limits"
pattern = "orders.*"
max_length = 10
"#,
        );
        let depths = BTreeMap::from([(("/".to_owned(), "full".to_owned()), 7)]);
        let plan = plan(&desired, &live(), &depths);
        assert_eq!(
            plan.add,
            ["policy 'limits' in vhost '/'", "queue 'new' in vhost '/'"]
        );
        assert!(plan.change.is_empty(), "{:?}", plan.change);
        assert_eq!(plan.differ.len(), 1, "{:?}", plan.differ);
        assert!(
            plan.differ[0].starts_with("queue 'kept'"),
            "{:?}",
            plan.differ
        );
        let removed: Vec<&str> = plan.remove.iter().map(|r| r.what.as_str()).collect();
        assert_eq!(
            removed,
            [
                "policy 'old' in vhost '/'",
                "exchange 'gone' in vhost '/'",
                "queue 'full' in vhost '/'",
                "binding 'gone' -> queue 'kept' key '' in vhost '/'",
            ]
        );
        let forced: Vec<&str> = plan.needs_force().iter().map(|r| r.what.as_str()).collect();
        assert_eq!(forced, ["queue 'full' in vhost '/'"]);
        let Remove::Delete(path, body) = &plan.remove[3].how else {
            panic!("a binding is deleted through the API");
        };
        assert_eq!(path, "/api/bindings/%2F/e/gone/q/kept/~");
        assert_eq!(body, &Some(json!({"arguments": {}})));
        let text = plan.render();
        assert!(text.contains("- queue 'full' in vhost '/' (holds 7 messages: needs --force)"));
        assert!(
            text.contains("2 to add, 0 to change, 4 to remove"),
            "{text}"
        );
    }

    #[test]
    fn a_matching_broker_needs_nothing() {
        let desired = config(
            r#"
[[policies]]
name = "old"
pattern = "x"
max_length = 1
"#,
        );
        let mut live = live();
        live["exchanges"] = json!([]);
        live["queues"] = json!([]);
        live["bindings"] = json!([]);
        let plan = plan(&desired, &live, &BTreeMap::new());
        assert!(plan.is_empty(), "{plan:?}");
        assert_eq!(
            plan.render(),
            "the broker matches the file: nothing to do\n"
        );
    }
}
