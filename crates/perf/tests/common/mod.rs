//! The harness: a warren broker in-process on `127.0.0.1:0` for each test, with a
//! temporary data directory, shut down when the test ends.
//!
//! Waits are bounded by [`WAIT`] and wait for the event itself; reaching the bound is a
//! failure, never a way to let time pass.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinHandle;
use warren_perf::Options;
use warren_server::config::Config;
use warren_server::{Server, ShutdownHandle};

/// The longest a test waits for a run against the in-process broker.
pub const WAIT: Duration = Duration::from_secs(60);

/// A broker running in-process for one test; shut down on drop.
pub struct Broker {
    addr: SocketAddr,
    shutdown: ShutdownHandle,
    run: Option<JoinHandle<std::io::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

impl Broker {
    /// Starts the broker with its built-in configuration (guest/guest, vhost "/").
    pub async fn start() -> Broker {
        let data_dir = tempfile::tempdir().expect("a temporary data dir");
        let mut config = Config::embedded_default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.management = None;
        config.data_dir = data_dir.path().to_owned();
        let server = Server::bind(config).await.expect("bind the broker");
        let addr = server.local_addr();
        let shutdown = server.shutdown_handle();
        let run = tokio::spawn(server.run());
        Broker {
            addr,
            shutdown,
            run: Some(run),
            _data_dir: data_dir,
        }
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`.
    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Options for a quiet run against this broker; the test sets the scenario.
    pub fn options(&self) -> Options {
        Options {
            uri: self.uri(),
            quiet: true,
            ..Options::default()
        }
    }

    /// Shuts down and checks that the broker's `run()` ends cleanly: it returns only
    /// once every connection task has ended, so a connection the tool left open
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
        .expect("timed out waiting for the run")
}
