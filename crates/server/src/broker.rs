//! State shared by every connection: configuration, users, and the shutdown signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio_util::sync::CancellationToken;

use std::collections::HashMap;

use crate::alarm::Alarm;
use crate::auth::Users;
use crate::config::Config;
use crate::vhost::Vhost;

/// What every connection task reads. Immutable after start apart from counters.
pub(crate) struct Broker {
    pub(crate) config: Config,
    pub(crate) users: Users,
    pub(crate) vhosts: HashMap<String, Arc<Vhost>>,
    pub(crate) shutdown: CancellationToken,
    /// What queues hold, and the alarm publishers follow.
    pub(crate) alarm: Arc<Alarm>,
    connections: AtomicU32,
}

impl Broker {
    pub(crate) fn new(config: Config) -> Self {
        let alarm = Arc::new(Alarm::for_watermark(config.limits.memory_high_watermark));
        Broker {
            users: Users::new(&config),
            vhosts: config
                .vhosts
                .iter()
                .map(|v| (v.name.clone(), Vhost::new(&v.name, alarm.clone())))
                .collect(),
            alarm,
            config,
            shutdown: CancellationToken::new(),
            connections: AtomicU32::new(0),
        }
    }

    /// Counts a new connection, or refuses it when `max_connections` is reached.
    pub(crate) fn try_admit(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let max = self.config.limits.max_connections;
        let admitted = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (max == 0 || n < max).then_some(n + 1)
            })
            .is_ok();
        admitted.then(|| ConnectionSlot(self.clone()))
    }
}

/// Holds one place in the connection count until dropped.
pub(crate) struct ConnectionSlot(Arc<Broker>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}
