//! The harness: a warren broker in-process on `127.0.0.1:0` for each test.
//!
//! Waits are bounded by [`WAIT`] and wait for the event itself; reaching the bound is a
//! failure, never a way to let time pass.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fake;
pub mod proxy;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinHandle;
use warren_client::{ConnectOptions, Connection};
use warren_server::config::Config;
use warren_server::{Server, ShutdownHandle};

/// The longest a test waits for something the broker should do promptly.
pub const WAIT: Duration = Duration::from_secs(10);

/// A broker running in-process for one test; shut down on drop.
pub struct Broker {
    addr: SocketAddr,
    shutdown: ShutdownHandle,
    run: Option<JoinHandle<std::io::Result<()>>>,
    /// The broker's data directory when it owns one, deleted when the broker goes.
    _data_dir: Option<tempfile::TempDir>,
}

impl Broker {
    /// Starts the broker with its built-in configuration (guest/guest, vhost "/").
    pub async fn start() -> Broker {
        let data_dir = tempfile::tempdir().expect("a temporary data dir");
        let mut broker = Broker::start_in("127.0.0.1:0".parse().unwrap(), data_dir.path()).await;
        broker._data_dir = Some(data_dir);
        broker
    }

    /// Starts the broker on `addr` with its data in `dir` (which outlives it, so that a
    /// broker started again on the same address and directory is a restart).
    pub async fn start_in(addr: SocketAddr, dir: &std::path::Path) -> Broker {
        let mut config = Config::embedded_default();
        config.listen = addr;
        config.management = None;
        config.data_dir = dir.to_owned();
        let server = Server::bind(config).await.expect("bind the broker");
        let addr = server.local_addr();
        let shutdown = server.shutdown_handle();
        let run = tokio::spawn(server.run());
        Broker {
            addr,
            shutdown,
            run: Some(run),
            _data_dir: None,
        }
    }

    /// The address the broker listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`.
    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Connects, naming the connection after the test.
    pub async fn connect(&self, test: &str) -> Connection {
        let options = ConnectOptions::from_uri(&self.uri())
            .unwrap()
            .connection_name(test);
        within(Connection::connect_with(options))
            .await
            .expect("connect")
    }

    /// Starts the broker's graceful shutdown (connection.close 320 to every client).
    pub fn shutdown(&self) {
        self.shutdown.shutdown();
    }

    /// Shuts down and checks the teardown invariant: the broker's `run()` returns only
    /// once every connection task has ended, so a connection the client left hanging
    /// fails the test.
    pub async fn stop(mut self) {
        self.shutdown.shutdown();
        let run = self.run.take().expect("stop runs once");
        match within(run).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the broker's run() failed: {e}"),
            Err(e) => panic!("the broker's run task panicked: {e}"),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// Awaits `future`, failing the test if it takes longer than [`WAIT`].
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("timed out waiting for the broker")
}

/// An RPC responder: answers every request on `queue` (which must exist) with its body
/// in upper case, to the request's `reply-to`, with its correlation id.
pub async fn upper_case_responder(channel: warren_client::Channel, queue: &str) {
    use futures_util::StreamExt;
    let mut requests = channel
        .basic_consume(queue, warren_client::ConsumeOptions::default())
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Some(Ok(request)) = requests.next().await {
            let properties = warren_client::BasicProperties {
                correlation_id: request.properties.correlation_id.clone(),
                ..Default::default()
            };
            let reply_to = request.properties.reply_to.clone().unwrap_or_default();
            let answer = String::from_utf8_lossy(&request.body).to_uppercase();
            let _ = channel
                .basic_publish("", &reply_to, answer, properties, Default::default())
                .await;
            let _ = request.ack().await;
        }
    });
}
