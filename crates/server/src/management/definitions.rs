//! `GET /api/definitions`: the broker's definitions in the shape of RabbitMQ's export
//! (users, vhosts, permissions, policies, exchanges, queues, bindings), so tools that
//! read RabbitMQ definitions read warren's, and `warren export` turns them into
//! broker.toml.
//!
//! Users, vhosts, permissions and policies are the configuration in force; exchanges,
//! queues and bindings are the live topology, whoever declared them, without what
//! every vhost has anyway (the default and `amq.*` exchanges) and without exclusive
//! queues, which die with their connection. Policy patterns are globs in warren and
//! regular expressions in RabbitMQ: they are exported as the equivalent anchored
//! regular expression. warren adds `from_config` to each exchange, queue and binding:
//! whether broker.toml declares it (what `warren plan` may remove when the file no
//! longer does), as opposed to a client.

use serde_json::{Value, json};
use warren_routing::Destination;

use super::{api, json};
use crate::broker::Broker;
use crate::config::BindingDestination;
use crate::names;
use crate::policy::glob_to_regex;

/// RabbitMQ's name of the password hash scheme warren uses.
const HASHING: &str = "rabbit_password_hashing_sha256";

/// `value` (a JSON object) with warren's `from_config` mark.
fn marked(mut value: Value, from_config: bool) -> Value {
    if let Value::Object(fields) = &mut value {
        fields.insert("from_config".into(), Value::Bool(from_config));
    }
    value
}

pub(super) fn definitions(broker: &Broker) -> Value {
    let config = broker.config();
    let users: Vec<Value> = config
        .users
        .iter()
        .map(|u| {
            json!({
                "name": u.name,
                "password_hash": u.password_hash.encode(),
                "hashing_algorithm": HASHING,
                "tags": [],
                // warren's own: RabbitMQ keeps this in `loopback_users`.
                "loopback_only": u.loopback_only,
            })
        })
        .collect();
    let vhosts: Vec<Value> = config
        .vhosts
        .iter()
        .map(|v| json!({ "name": v.name }))
        .collect();
    let permissions: Vec<Value> = config
        .permissions
        .iter()
        .map(|p| {
            json!({
                "user": p.user,
                "vhost": p.vhost,
                "configure": p.permissions.configure.as_str(),
                "write": p.permissions.write.as_str(),
                "read": p.permissions.read.as_str(),
            })
        })
        .collect();
    let policies: Vec<Value> = config
        .policies
        .iter()
        .map(|p| {
            json!({
                "vhost": p.vhost,
                "name": p.name,
                "pattern": glob_to_regex(p.pattern.as_str()),
                "apply-to": "queues",
                "priority": p.priority,
                "definition": api::policy_json(&p.definition),
            })
        })
        .collect();
    let configured_exchange = |vhost: &str, name: &str| {
        config
            .exchanges
            .iter()
            .any(|x| x.vhost == vhost && x.name == name)
    };
    let configured_queue = |vhost: &str, name: &str| {
        config
            .queues
            .iter()
            .any(|q| q.vhost == vhost && q.name == name)
    };
    let configured_binding = |vhost: &str, source: &str, destination: &Destination, key: &str| {
        config.bindings.iter().any(|b| {
            let to_queue = b.destination_kind == BindingDestination::Queue;
            b.vhost == vhost
                && b.source == source
                && b.routing_key == key
                && match destination {
                    Destination::Queue(q) => to_queue && b.destination == **q,
                    Destination::Exchange(e) => !to_queue && b.destination == **e,
                }
        })
    };
    let (mut exchanges, mut queues, mut bindings) = (Vec::new(), Vec::new(), Vec::new());
    for (vhost, v) in api::vhosts(broker, None) {
        let snapshot = v.snapshot();
        let mut declared: Vec<_> = snapshot
            .topology
            .exchanges()
            .filter(|x| !names::is_reserved(&x.spec().name))
            .collect();
        declared.sort_by(|a, b| a.spec().name.cmp(&b.spec().name));
        for x in &declared {
            let spec = x.spec();
            let from_config = configured_exchange(&vhost, &spec.name);
            exchanges.push(marked(api::exchange_json(&vhost, spec), from_config));
        }
        let mut held: Vec<_> = snapshot
            .queues
            .values()
            .filter(|q| q.info.exclusive_owner.is_none())
            .collect();
        held.sort_by(|a, b| a.info.name.as_str().cmp(b.info.name.as_str()));
        for q in &held {
            queues.push(json!({
                "name": q.info.name.as_str(),
                "vhost": vhost,
                "durable": q.info.durable,
                "auto_delete": q.info.auto_delete,
                "arguments": json::table(&q.info.arguments),
                "from_config": configured_queue(&vhost, q.info.name.as_str()),
            }));
        }
        let exclusive = |d: &Destination| match d {
            Destination::Queue(q) => snapshot
                .queues
                .get(&**q)
                .is_some_and(|q| q.info.exclusive_owner.is_some()),
            Destination::Exchange(_) => false,
        };
        let mut listed = Vec::new();
        for x in snapshot.topology.exchanges() {
            let source = &x.spec().name;
            for b in x.bindings().filter(|b| !exclusive(&b.destination)) {
                let from_config =
                    configured_binding(&vhost, source, &b.destination, &b.routing_key);
                listed.push(marked(api::binding_json(&vhost, source, &b), from_config));
            }
        }
        listed.sort_by_key(|b| b.to_string());
        bindings.extend(listed);
    }
    json!({
        "rabbit_version": "3.13.0",
        "warren_version": env!("CARGO_PKG_VERSION"),
        "users": users,
        "vhosts": vhosts,
        "permissions": permissions,
        "policies": policies,
        "queues": queues,
        "exchanges": exchanges,
        "bindings": bindings,
    })
}
