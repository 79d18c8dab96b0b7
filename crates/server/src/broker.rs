//! State shared by every connection: configuration, users, and the shutdown signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio_util::sync::CancellationToken;

use std::collections::HashMap;

use warren_store::{Options, Store, StoreError};

use crate::alarm::Alarm;
use crate::auth::Users;
use crate::config::Config;
use crate::connection::registry::Connections;
use crate::direct_reply::DirectReplies;
use crate::durable::{self, Durable};
use crate::queue::Command;
use crate::vhost::Vhost;

/// What every connection task reads. Immutable after start apart from counters.
pub(crate) struct Broker {
    pub(crate) config: Config,
    pub(crate) users: Users,
    pub(crate) vhosts: HashMap<String, Arc<Vhost>>,
    pub(crate) shutdown: CancellationToken,
    /// What queues hold, and the alarm publishers follow.
    pub(crate) alarm: Arc<Alarm>,
    /// The message store and durable definitions.
    pub(crate) durable: Arc<Durable>,
    /// The open connections, for the management API.
    pub(crate) open_connections: Arc<Connections>,
    /// Direct reply-to consumers, by reply address.
    pub(crate) direct_replies: Arc<DirectReplies>,
    connections: AtomicU32,
}

impl Broker {
    /// Opens the store in the data directory and brings back what it holds. Must run
    /// inside the runtime: recovered queues start their tasks.
    pub(crate) fn open(config: Config) -> Result<Self, StoreError> {
        let alarm = Arc::new(Alarm::for_watermark(config.limits.memory_high_watermark));
        let mut options = Options::new(config.data_dir.join("store"));
        options.fsync = config.fsync;
        let (store, recovered) = Store::open(options)?;
        let durable = Arc::new(Durable::new(store, &recovered));
        let vhosts: HashMap<String, Arc<Vhost>> = config
            .vhosts
            .iter()
            .map(|v| {
                let vhost = Vhost::new(&v.name, alarm.clone(), durable.clone());
                (v.name.clone(), vhost)
            })
            .collect();
        durable::recover(&durable, &vhosts, recovered);
        Ok(Broker {
            users: Users::new(&config),
            vhosts,
            alarm,
            durable,
            direct_replies: Arc::default(),
            open_connections: Arc::default(),
            config,
            shutdown: CancellationToken::new(),
            connections: AtomicU32::new(0),
        })
    }

    /// After the last connection closed: lets every queue record what the closing
    /// connections gave back, then closes the store with its clean-shutdown mark.
    pub(crate) async fn close_store(&self) {
        for vhost in self.vhosts.values() {
            let queues: Vec<_> = vhost.snapshot().queues.values().cloned().collect();
            for queue in queues {
                queue.ask(|reply| Command::Flush { reply }).await;
                queue.send(Command::Shutdown).await;
            }
        }
        let durable = self.durable.clone();
        let _ = tokio::task::spawn_blocking(move || durable.store.close()).await;
    }

    /// Open client connections.
    pub(crate) fn connection_count(&self) -> u32 {
        self.connections.load(Ordering::Acquire)
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
