//! State shared by every connection: configuration, users, and the shutdown signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio_util::sync::CancellationToken;

use std::collections::HashMap;

use warren_store::{Options, Store, StoreError};

use arc_swap::{ArcSwap, Guard};

use crate::alarm::Alarm;
use crate::auth::Users;
use crate::config::Config;
use crate::connection::registry::Connections;
use crate::declared;
use crate::direct_reply::DirectReplies;
use crate::durable::{self, Durable};
use crate::management::Monitoring;
use crate::policy::Policies;
use crate::queue::Command;
use crate::vhost::Vhost;

/// What every connection task reads. The configuration, users and vhosts are
/// replaced whole by a reload ([`Broker::reload`]); readers load the current ones.
pub(crate) struct Broker {
    config: ArcSwap<Config>,
    users: ArcSwap<Users>,
    vhosts: ArcSwap<HashMap<String, Arc<Vhost>>>,
    /// Serialises reloads.
    reloading: tokio::sync::Mutex<()>,
    pub(crate) shutdown: CancellationToken,
    /// What queues hold, and the alarm publishers follow.
    pub(crate) alarm: Arc<Alarm>,
    /// The message store and durable definitions.
    pub(crate) durable: Arc<Durable>,
    /// The open connections, for the management API.
    pub(crate) open_connections: Arc<Connections>,
    /// Direct reply-to consumers, by reply address.
    pub(crate) direct_replies: Arc<DirectReplies>,
    /// Unroutable and blocked counts and message rates, for the management API.
    pub(crate) monitoring: Monitoring,
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
                let policies = Policies::for_vhost(&config.policies, &v.name);
                let vhost = Vhost::new(&v.name, alarm.clone(), durable.clone(), policies);
                (v.name.clone(), vhost)
            })
            .collect();
        durable::recover(&durable, &vhosts, recovered);
        declared::apply(&config, &vhosts);
        Ok(Broker {
            users: ArcSwap::from_pointee(Users::new(&config)),
            vhosts: ArcSwap::from_pointee(vhosts),
            reloading: tokio::sync::Mutex::new(()),
            alarm,
            durable,
            direct_replies: Arc::default(),
            monitoring: Monitoring::default(),
            open_connections: Arc::default(),
            config: ArcSwap::from_pointee(config),
            shutdown: CancellationToken::new(),
            connections: AtomicU32::new(0),
        })
    }

    /// After the last connection closed: lets every queue record what the closing
    /// connections gave back, then closes the store with its clean-shutdown mark.
    pub(crate) async fn close_store(&self) {
        for vhost in self.vhosts().values() {
            let queues: Vec<_> = vhost.snapshot().queues.values().cloned().collect();
            for queue in queues {
                queue.ask(|reply| Command::Flush { reply }).await;
                queue.send(Command::Shutdown).await;
            }
        }
        let durable = self.durable.clone();
        let _ = tokio::task::spawn_blocking(move || durable.store.close()).await;
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> Guard<Arc<Config>> {
        self.config.load()
    }

    /// The users, vhosts and permissions in force.
    pub(crate) fn users(&self) -> Guard<Arc<Users>> {
        self.users.load()
    }

    /// The running vhosts.
    pub(crate) fn vhosts(&self) -> Guard<Arc<HashMap<String, Arc<Vhost>>>> {
        self.vhosts.load()
    }

    /// The vhost named `name`, if it runs.
    pub(crate) fn vhost(&self, name: &str) -> Option<Arc<Vhost>> {
        self.vhosts.load().get(name).cloned()
    }

    /// Puts a new configuration in force without a restart: users and permissions
    /// (checked by new connections and new channels' operations from then on), new
    /// vhosts, the limits new connections and messages see, the memory watermark, the
    /// policies (applied to live queues at once), and the topology the file declares
    /// (added where missing). What needs a restart (listen addresses, data directory,
    /// fsync, the disk limit) is reported and keeps its running value; a vhost the file no longer has
    /// keeps running for the connections it has, and refuses new ones.
    pub(crate) async fn reload(&self, mut config: Config) -> Reloaded {
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.config.load_full();
        let mut reloaded = Reloaded::default();
        if config.listen != old.listen
            || config.data_dir != old.data_dir
            || config.fsync != old.fsync
            || config.management != old.management
            || config.limits.disk_free_limit != old.limits.disk_free_limit
        {
            reloaded.needs_restart = true;
            config.listen = old.listen;
            config.data_dir = old.data_dir.clone();
            config.fsync = old.fsync;
            config.management = old.management;
            config.limits.disk_free_limit = old.limits.disk_free_limit;
        }
        let mut vhosts = HashMap::clone(&self.vhosts.load());
        for v in &config.vhosts {
            if !vhosts.contains_key(&v.name) {
                let policies = Policies::for_vhost(&config.policies, &v.name);
                let vhost = Vhost::new(&v.name, self.alarm.clone(), self.durable.clone(), policies);
                vhosts.insert(v.name.clone(), vhost);
                reloaded.vhosts_added.push(v.name.clone());
            }
        }
        self.vhosts.store(Arc::new(vhosts));
        self.users.store(Arc::new(Users::new(&config)));
        self.alarm
            .set_watermark(config.limits.memory_high_watermark);
        for (name, vhost) in self.vhosts().iter() {
            let policies = Policies::for_vhost(&config.policies, name);
            if **vhost.policies() != policies {
                vhost.set_policies(policies).await;
                reloaded.policies_changed.push(name.clone());
            }
        }
        reloaded.topology = declared::apply(&config, &self.vhosts());
        self.config.store(Arc::new(config));
        reloaded
    }

    /// Open client connections.
    pub(crate) fn connection_count(&self) -> u32 {
        self.connections.load(Ordering::Acquire)
    }

    /// Counts a new connection, or refuses it when `max_connections` is reached.
    pub(crate) fn try_admit(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let max = self.config().limits.max_connections;
        let admitted = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (max == 0 || n < max).then_some(n + 1)
            })
            .is_ok();
        admitted.then(|| ConnectionSlot(self.clone()))
    }
}

/// What a reload changed.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// Vhosts created.
    pub vhosts_added: Vec<String>,
    /// Vhosts whose policies changed (and were applied to their queues).
    pub policies_changed: Vec<String>,
    /// Topology added, and topology that differs from the file.
    pub topology: declared::Applied,
    /// The file changed settings that only a restart applies (listen addresses, data
    /// directory, fsync, the disk limit); they keep their running values.
    pub needs_restart: bool,
}

/// Holds one place in the connection count until dropped.
pub(crate) struct ConnectionSlot(Arc<Broker>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}
