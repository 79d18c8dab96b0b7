//! The open connections, as the management API lists them.
//!
//! What a connection's channels are doing belongs to its task: the registry holds a
//! small mailbox to ask it ([`Summary::channels`]), which the task answers even while
//! its socket is backed up.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use crate::channel::ChannelInfo;
use crate::connection::events::ConnectionId;

/// Questions a connection's query mailbox holds before askers wait.
pub(crate) const QUERIES: usize = 4;

/// A request for a connection's channels, answered on the sender.
pub(crate) type ChannelsQuery = oneshot::Sender<Vec<ChannelInfo>>;

/// What is known of an open connection from its handshake.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub(crate) peer: SocketAddr,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) user: String,
    pub(crate) vhost: String,
    pub(crate) product: String,
    /// The client's `connection_name` property.
    pub(crate) client_name: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub(crate) connected_at: u64,
    /// The connection's id, as queues know its consumers.
    pub(crate) id: ConnectionId,
    /// The connection task's mailbox for [`Summary::channels`].
    pub(crate) queries: mpsc::Sender<ChannelsQuery>,
}

impl Summary {
    /// RabbitMQ's connection name: `peer -> local`.
    pub(crate) fn name(&self) -> String {
        match self.local {
            Some(local) => format!("{} -> {local}", self.peer),
            None => self.peer.to_string(),
        }
    }

    /// Asks the connection task for its channels, in channel-number order; None when
    /// the connection has ended.
    pub(crate) async fn channels(&self) -> Option<Vec<ChannelInfo>> {
        let (reply, answer) = oneshot::channel();
        self.queries.send(reply).await.ok()?;
        answer.await.ok()
    }
}

/// Every open connection, in the order they opened.
///
/// A std mutex around a map: each connection inserts once and removes once, and a
/// listing copies the map out; never held across `.await`.
#[derive(Default)]
pub(crate) struct Connections {
    open: Mutex<BTreeMap<u64, Summary>>,
    next: AtomicU64,
}

/// A connection's place in [`Connections`], given up when dropped.
pub(crate) struct Registration {
    registry: Arc<Connections>,
    serial: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.serial);
    }
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Summary>> {
        // Single map operations: a panic elsewhere cannot leave it half changed.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn register(self: &Arc<Self>, summary: Summary) -> Registration {
        let serial = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(serial, summary);
        Registration {
            registry: self.clone(),
            serial,
        }
    }

    /// The open connections, oldest first.
    pub(crate) fn list(&self) -> Vec<Summary> {
        self.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_listed_until_its_registration_drops() {
        let registry = Arc::new(Connections::default());
        let summary = |user: &str| Summary {
            peer: "127.0.0.1:50000"
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([0; 4], 0))),
            local: Some(SocketAddr::from(([127, 0, 0, 1], 5672))),
            user: user.into(),
            vhost: "/".into(),
            product: "test".into(),
            client_name: None,
            connected_at: 0,
            id: 1,
            queries: mpsc::channel(1).0,
        };
        let a = registry.register(summary("a"));
        let b = registry.register(summary("b"));
        let users = |r: &Connections| r.list().into_iter().map(|s| s.user).collect::<Vec<_>>();
        assert_eq!(users(&registry), ["a", "b"]);
        assert_eq!(
            registry.list()[0].name(),
            "127.0.0.1:50000 -> 127.0.0.1:5672"
        );
        drop(a);
        assert_eq!(users(&registry), ["b"]);
        drop(b);
        assert!(registry.list().is_empty());
    }
}
