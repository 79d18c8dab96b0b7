//! The topology broker.toml declares (`[[exchanges]]`, `[[queues]]`, `[[bindings]]`),
//! put in place at start and on reload by adding what is missing, as if an
//! administrator had declared it.
//!
//! What exists already and differs from the file is reported, not changed: AMQP gives
//! an exchange or queue its arguments for life, and the way to change a live queue's
//! limits is a policy. Nothing is removed here: topology that clients declared stays.

use std::collections::HashMap;
use std::sync::Arc;

use tracing::{info, warn};
use warren_codec::ShortStr;
use warren_routing::ExchangeSpec;

use crate::config::{BindingDestination, Config};
use crate::connection::events::OPERATOR;
use crate::queue::Settings;
use crate::vhost::{QueueDeclare, Vhost};

/// What applying the file's topology changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Exchanges, queues and bindings created (`queue 'q' in vhost '/'`).
    pub added: Vec<String>,
    /// Ones that exist with other properties, and why they were left as they are.
    pub differing: Vec<String>,
}

/// Declares what `config` describes in `vhosts`.
pub(crate) fn apply(config: &Config, vhosts: &HashMap<String, Arc<Vhost>>) -> Applied {
    let mut applied = Applied::default();
    for e in &config.exchanges {
        let Some(vhost) = vhosts.get(&e.vhost) else {
            continue;
        };
        let existed = vhost.snapshot().topology.exchange(&e.name).is_some();
        let spec = ExchangeSpec {
            name: e.name.as_str().into(),
            kind: e.kind,
            durable: e.durable,
            auto_delete: e.auto_delete,
            internal: e.internal,
            arguments: e.arguments.clone(),
        };
        let what = format!("exchange '{}' in vhost '{}'", e.name, e.vhost);
        match vhost.declare_exchange(spec) {
            Ok(()) if !existed => applied.added.push(what),
            Ok(()) => {}
            Err(err) => applied.differing.push(format!("{what}: {}", err.0.text())),
        }
    }
    for q in &config.queues {
        let Some(vhost) = vhosts.get(&q.vhost) else {
            continue;
        };
        let what = format!("queue '{}' in vhost '{}'", q.name, q.vhost);
        // The file was validated: the name fits and the arguments parse.
        let (Ok(name), Ok(settings)) =
            (ShortStr::new(q.name.clone()), Settings::parse(&q.arguments))
        else {
            continue;
        };
        let declare = QueueDeclare {
            name,
            durable: q.durable,
            exclusive: false,
            auto_delete: q.auto_delete,
            arguments: q.arguments.clone(),
            settings,
        };
        match vhost.declare_queue(declare, OPERATOR) {
            Ok((_, true)) => applied.added.push(what),
            Ok((_, false)) => {}
            Err(err) => applied.differing.push(format!("{what}: {}", err.0.text())),
        }
    }
    for b in &config.bindings {
        let Some(vhost) = vhosts.get(&b.vhost) else {
            continue;
        };
        let what = format!(
            "binding '{}' -> '{}' with key '{}' in vhost '{}'",
            b.source, b.destination, b.routing_key, b.vhost
        );
        let bound = match b.destination_kind {
            BindingDestination::Queue => vhost.bind_queue(
                &b.destination,
                &b.source,
                &b.routing_key,
                b.arguments.clone(),
            ),
            BindingDestination::Exchange => vhost.bind_exchange(
                &b.destination,
                &b.source,
                &b.routing_key,
                b.arguments.clone(),
            ),
        };
        match bound {
            Ok(true) => applied.added.push(what),
            Ok(false) => {}
            Err(err) => applied.differing.push(format!("{what}: {}", err.0.text())),
        }
    }
    for line in &applied.added {
        info!("broker.toml: declared {line}");
    }
    for line in &applied.differing {
        warn!("broker.toml: {line}; left as it is");
    }
    applied
}
