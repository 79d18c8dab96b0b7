//! The listener: accepts TCP connections and spawns a task for each, until shutdown.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::alarm;
use crate::broker::{Broker, Reloaded};
use crate::config::Config;
use crate::connection;
use crate::management;

/// A bound broker, ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    /// The management API's listener, unless it is turned off.
    management: Option<TcpListener>,
    broker: Arc<Broker>,
}

/// Stops a running server: every client gets connection.close 320, then `run` returns.
#[derive(Clone)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    /// Starts the shutdown. Idempotent.
    pub fn shutdown(&self) {
        self.0.cancel();
    }
}

/// Puts a new configuration in force in a running server (SIGHUP, `warren reload`).
#[derive(Clone)]
pub struct ReloadHandle(Arc<Broker>);

impl ReloadHandle {
    /// Applies `config`, already validated: users, permissions, new vhosts, limits,
    /// the memory watermark and policies take effect at once (policies on live queues
    /// too), and the topology it declares is added where missing. Settings only a
    /// restart can change keep their running values ([`Reloaded::needs_restart`]).
    pub async fn reload(&self, config: Config) -> Reloaded {
        self.0.reload(config).await
    }
}

impl Server {
    /// Binds the listener on `config.listen` (port 0 picks a free port).
    /// Opens the message store in `config.data_dir` first and recovers what it holds.
    pub async fn bind(config: Config) -> io::Result<Server> {
        let listener = TcpListener::bind(config.listen).await?;
        let management = match config.management {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                io::Error::new(e.kind(), format!("management listener on {addr}: {e}"))
            })?),
            None => None,
        };
        let broker = Broker::open(config).map_err(io::Error::other)?;
        Ok(Server {
            listener,
            management,
            broker: Arc::new(broker),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has an address; fall back to the configured one.
        self.listener
            .local_addr()
            .unwrap_or(self.broker.config().listen)
    }

    /// The address the management API actually bound, when it is on.
    pub fn management_addr(&self) -> Option<SocketAddr> {
        self.management.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// A handle that reloads the configuration.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle(self.broker.clone())
    }

    /// A handle that stops the server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.broker.shutdown.clone())
    }

    /// Accepts connections until shut down, then waits for every connection to close.
    pub async fn run(mut self) -> io::Result<()> {
        let tracker = TaskTracker::new();
        let shutdown = self.broker.shutdown.clone();
        if let Some(listener) = self.management.take() {
            if let Ok(addr) = listener.local_addr() {
                info!(address = %addr, "management API and metrics on HTTP");
            }
            tracker.spawn(management::serve(
                listener,
                self.broker.clone(),
                shutdown.clone(),
            ));
        }
        tracker.spawn(alarm::watch_disk(
            self.broker.config().data_dir.clone(),
            self.broker.config().limits.disk_free_limit,
            self.broker.alarm.clone(),
            shutdown.clone(),
        ));
        info!(address = %self.local_addr(), "listening for AMQP 0-9-1 connections");
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    tracker.spawn(connection::serve(stream, peer, self.broker.clone()));
                }
                // Out of file descriptors and the like: keep serving existing clients.
                Err(e) => warn!(error = %e, "accept failed"),
            }
        }
        drop(self.listener);
        tracker.close();
        tracker.wait().await;
        self.broker.close_store().await;
        info!("all connections closed; broker stopped");
        Ok(())
    }
}
