//! Request/reply on RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`), which warren
//! supports too: replies come straight back to this client's channel, with no reply
//! queue to declare or delete.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warren_codec::{BasicProperties, ShortStr};

use crate::channel::Channel;
use crate::connection::Connection;
use crate::consumer::ConsumeOptions;
use crate::delivery::Delivery;
use crate::error::Error;
use crate::publish::PublishOptions;

/// The pseudo-queue replies are consumed from and named in `reply-to`.
const REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Calls waiting for their reply, by correlation id.
///
/// A std mutex: `call` inserts before publishing and the reply task removes, each a
/// single map operation never held across `.await`; an actor would add a message
/// round trip to every call.
#[derive(Default)]
struct Waiting {
    calls: Mutex<HashMap<ShortStr, oneshot::Sender<Delivery>>>,
    /// Why replies stopped coming (the channel or connection closed).
    ended: Mutex<Option<Error>>,
}

impl Waiting {
    fn calls(&self) -> MutexGuard<'_, HashMap<ShortStr, oneshot::Sender<Delivery>>> {
        // Single map operations: a panic elsewhere cannot leave the map half changed.
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An RPC client: publishes requests with a correlation id and `reply-to` set, and
/// matches replies to calls. Many calls may be in flight at once.
///
/// ```no_run
/// # async fn run() -> Result<(), warren_client::Error> {
/// use std::time::Duration;
/// use warren_client::{BasicProperties, Connection, RpcClient};
///
/// let connection = Connection::connect("amqp://guest:guest@localhost:5672/%2f").await?;
/// let rpc = RpcClient::new(&connection).await?;
/// let reply = rpc
///     .call("", "rpc.prices", "EUR/USD", BasicProperties::default(), Duration::from_secs(5))
///     .await?;
/// println!("price: {:?}", reply.body);
/// # Ok(())
/// # }
/// ```
///
/// A responder consumes the request queue and publishes its answer to the default
/// exchange with the request's `reply-to` as routing key and its `correlation-id`
/// copied. Replies are at-most-once, as in RabbitMQ: one sent after the caller gave up
/// (or disconnected) is dropped.
pub struct RpcClient {
    channel: Channel,
    waiting: Arc<Waiting>,
    next: AtomicU64,
    replies: JoinHandle<()>,
}

impl RpcClient {
    /// Opens a channel on `connection` and starts consuming replies on it.
    pub async fn new(connection: &Connection) -> Result<RpcClient, Error> {
        let channel = connection.open_channel().await?;
        let options = ConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        let mut consumer = channel.basic_consume(REPLY_TO, options).await?;
        let waiting = Arc::new(Waiting::default());
        let replies = {
            let waiting = waiting.clone();
            tokio::spawn(async move {
                let ended = loop {
                    match consumer.next().await {
                        Some(Ok(reply)) => {
                            let caller = reply
                                .properties
                                .correlation_id
                                .as_ref()
                                .and_then(|id| waiting.calls().remove(id));
                            // A reply nobody waits for (the call timed out) is dropped.
                            if let Some(caller) = caller {
                                let _ = caller.send(reply);
                            }
                        }
                        Some(Err(e)) => break e,
                        None => break Error::ChannelNotOpen,
                    }
                };
                *waiting.ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(ended);
                // Wakes every waiting call, which then reports why.
                waiting.calls().clear();
            })
        };
        Ok(RpcClient {
            channel,
            waiting,
            next: AtomicU64::new(1),
            replies,
        })
    }

    /// Publishes a request to `exchange` with `routing_key` and waits up to `timeout`
    /// for its reply. `properties` may carry anything but `reply-to` and
    /// `correlation-id`, which the client sets.
    pub async fn call(
        &self,
        exchange: &str,
        routing_key: &str,
        body: impl Into<Bytes>,
        mut properties: BasicProperties,
        timeout: Duration,
    ) -> Result<Delivery, Error> {
        let id = ShortStr::from(self.next.fetch_add(1, Ordering::Relaxed).to_string());
        let (tx, rx) = oneshot::channel();
        self.waiting.calls().insert(id.clone(), tx);
        properties.reply_to = Some(REPLY_TO.into());
        properties.correlation_id = Some(id.clone());
        let published = self
            .channel
            .basic_publish(
                exchange,
                routing_key,
                body,
                properties,
                PublishOptions::default(),
            )
            .await;
        if let Err(e) = published {
            self.waiting.calls().remove(&id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(self.ended()),
            Err(_) => {
                self.waiting.calls().remove(&id);
                Err(Error::Timeout(timeout))
            }
        }
    }

    fn ended(&self) -> Error {
        self.waiting
            .ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or(Error::ChannelNotOpen)
    }

    /// The channel requests go out on.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }
}

impl Drop for RpcClient {
    fn drop(&mut self) {
        self.replies.abort();
    }
}
