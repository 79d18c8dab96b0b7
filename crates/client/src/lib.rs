//! An async AMQP 0-9-1 client for warren, RabbitMQ and any other 0-9-1 broker,
//! built on tokio and [`warren_codec`].
//!
//! One task per connection owns the socket, the heartbeats and every channel's
//! state; [`Connection`], [`Channel`], [`Consumer`] and the acknowledgement handles are
//! cheap cloneable handles that send it commands through a bounded mailbox. Writes are
//! batched: a burst of publishes leaves in a few large socket writes. Synchronous
//! methods pipeline (a channel's calls are answered in order), and publisher confirms
//! are tracked per publish, so thousands can be in flight at once.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use warren_client::{
//!     BasicProperties, Confirmation, ConsumeOptions, Connection, PublishOptions,
//!     QueueDeclareOptions,
//! };
//!
//! # async fn run() -> Result<(), warren_client::Error> {
//! let connection = Connection::connect("amqp://guest:guest@localhost:5672/%2f").await?;
//! let channel = connection.open_channel().await?;
//! let queue = channel
//!     .queue_declare("tasks", QueueDeclareOptions { durable: true, ..Default::default() })
//!     .await?;
//!
//! // Publish with confirms: start many publishes, then await their confirmations.
//! channel.confirm_select().await?;
//! let mut confirms = Vec::new();
//! for i in 0..100 {
//!     let properties = BasicProperties { delivery_mode: Some(2), ..Default::default() };
//!     let body = format!("task {i}");
//!     confirms.push(
//!         channel
//!             .basic_publish("", &queue.name, body, properties, PublishOptions::default())
//!             .await?,
//!     );
//! }
//! for confirm in confirms {
//!     assert_eq!(confirm.await?, Confirmation::Ack);
//! }
//!
//! // Consume with a prefetch window, acknowledging each delivery.
//! channel.basic_qos(10, false).await?;
//! let mut consumer = channel.basic_consume("tasks", ConsumeOptions::default()).await?;
//! while let Some(delivery) = consumer.next().await {
//!     let delivery = delivery?;
//!     println!("got {:?}", delivery.body);
//!     delivery.ack().await?;
//! }
//! connection.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! With [`ConnectOptions::recovery`], a lost connection comes back by itself: see
//! [`Recovery`] for what is restored and what is reported failed.
//!
//! Errors are one type, [`Error`]. When the broker closes a channel (404 NOT_FOUND,
//! 406 PRECONDITION_FAILED, ...), the call that caused it and every later call on the
//! channel return [`Error::ChannelClosed`] with the broker's code and text.
#![deny(missing_docs)]

mod channel;
mod confirms;
mod connection;
mod consumer;
mod delivery;
mod error;
mod exchange;
mod outbound;
mod publish;
mod queue;
mod recovery;
mod rpc;
mod status;
mod uri;
mod violation;

pub use channel::Channel;
pub use connection::Connection;
pub use consumer::{CONSUMER_BUFFER, ConsumeOptions, Consumer};
pub use delivery::{Acker, Delivery};
pub use error::Error;
pub use exchange::{ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind};
pub use publish::{
    Confirmation, PublishOptions, PublisherConfirm, RETURNS_BUFFER, ReturnedMessage, Returns,
};
pub use queue::{Overflow, QueueDeclareOptions, QueueDeleteOptions, QueueInfo};
pub use recovery::Recovery;
pub use rpc::RpcClient;
pub use uri::{ConnectOptions, DEFAULT_CONNECTION_TIMEOUT, DEFAULT_PORT};

pub use bytes::Bytes;
pub use warren_codec::{BasicProperties, FieldTable, FieldValue, ShortStr};
