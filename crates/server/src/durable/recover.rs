//! Rebuilding the durable topology and queues from the store at start.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tracing::{info, warn};
use warren_store::Recovered;

use crate::durable::Durable;
use crate::durable::definitions::{self, Definition};
use crate::vhost::Vhost;

/// Declares the stored exchanges, then the queues with their messages, then the
/// bindings, in every configured vhost. Definitions of a vhost no longer configured
/// stay in the store untouched; messages of queues without a definition are dropped.
pub(crate) fn recover(
    durable: &Durable,
    vhosts: &HashMap<String, Arc<Vhost>>,
    mut recovered: Recovered,
) {
    let mut exchanges = Vec::new();
    let mut queues = Vec::new();
    let mut bindings = Vec::new();
    for (key, value) in &recovered.definitions {
        match definitions::decode(key, value) {
            Some(Definition::Exchange(vhost, spec)) => exchanges.push((vhost, spec)),
            Some(Definition::Queue(q)) => {
                durable.in_use(q.id);
                queues.push(q);
            }
            Some(Definition::Binding(b)) => bindings.push(b),
            None => warn!("unreadable definition in the store; ignored"),
        }
    }
    let mut missing = HashSet::new();
    let mut vhost = |name: &str| {
        let found = vhosts.get(name);
        if found.is_none() && missing.insert(name.to_owned()) {
            warn!(
                vhost = name,
                "stored definitions for a vhost not in the configuration; \
                left in the store, not loaded"
            );
        }
        found.cloned()
    };
    for (name, spec) in exchanges {
        if let Some(v) = vhost(&name) {
            v.restore_exchange(spec);
        }
    }
    let mut messages = 0;
    let mut restored = 0;
    for q in queues {
        let held = recovered.queues.remove(&q.id).unwrap_or_default();
        if let Some(v) = vhost(&q.vhost) {
            messages += held.len();
            restored += 1;
            v.restore_queue(q, held, recovered.clean);
        }
    }
    for b in bindings {
        if let Some(v) = vhost(&b.vhost) {
            v.restore_binding(b);
        }
    }
    // Messages of queues deleted before a crash recorded it: gone for good.
    for id in recovered.queues.keys() {
        durable.store.queue_deleted(*id);
    }
    info!(
        queues = restored,
        messages,
        clean = recovered.clean,
        "durable state recovered"
    );
}
