//! The warren broker: accepts AMQP 0-9-1 connections and serves them.
//!
//! Data flows one way: socket bytes → frames ([`warren_codec`]) → connection task →
//! channel state → exchange routing → queue task → consumer's connection → socket.
//! See `docs/architecture.md` for the ownership rules.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let config = warren_server::config::Config::embedded_default();
//! let server = warren_server::Server::bind(config).await?;
//! println!("listening on {}", server.local_addr());
//! server.run().await
//! # }
//! ```
#![deny(missing_docs)]

mod alarm;
pub mod auth;
mod broker;
mod channel;
pub mod config;
pub mod config_error;
mod connection;
mod declared;
mod direct_reply;
mod durable;
pub mod error;
mod management;
mod message;
mod names;
mod number_hash;
pub mod policy;
mod queue;
mod server;
mod unroutable;
mod vhost;

pub use broker::Reloaded;
pub use declared::Applied;
pub use management::field_table_json;
pub use server::{ReloadHandle, Server, ShutdownHandle};
