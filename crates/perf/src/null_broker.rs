//! The null broker: an AMQP 0-9-1 server that does almost nothing, to measure how
//! fast warren-perf itself can go (its ceiling) and so how close a real broker gets.
//!
//! It is a measuring instrument, not a broker. It accepts any PLAIN or AMQPLAIN
//! credentials and any vhost, answers every declaration, binding, qos, purge and
//! delete with its -ok (queue.declare-ok with the queue's name and zero counts), keeps
//! no queue and stores nothing. What it does do is move messages:
//!
//! - A publish to a **fanout** exchange (declared with type `fanout`, or `amq.fanout`)
//!   goes to every consumer on the broker, whatever queue it consumes; any other
//!   publish (default exchange, direct, topic, unknown) goes to one consumer, round
//!   robin over all consumers of any queue. warren-perf's scenarios give every queue
//!   its own consumers, so this delivers what a real broker would: N copies per
//!   publish to a fanout over N queues, one otherwise. A publish with no consumer
//!   anywhere is dropped. Bindings and routing keys are not looked at.
//! - On a channel in confirm mode every publish is acknowledged, with one basic.ack
//!   (`multiple`) per channel per read batch, once its deliveries are handed on.
//! - Deliveries carry the publish's exchange, routing key, property bytes and body
//!   unchanged, with a delivery tag counted per channel. Acks, nacks and rejects from
//!   consumers are ignored; the prefetch is not enforced; a message is never
//!   redelivered.
//! - Heartbeats: it proposes none and ignores the client's.
//!
//! Each connection is two tasks: a reader (frames in, replies and routing) and a
//! writer that owns the socket's write half and drains a bounded mailbox. Deliveries
//! go from a publisher's reader straight into the consumer's writer mailbox, so a
//! full mailbox stops the publisher reading its socket: a slow consumer slows the
//! publishers, and memory stays bounded. Writers never wait on another mailbox, so
//! there is no cycle to deadlock on.
//!
//! Cheapness comes from batching: the reader handles every frame a socket read
//! brought, then sends that batch's replies and confirms to its writer in one piece;
//! the writer drains its mailbox and writes once per batch, with large bodies passed
//! to the socket by reference (vectored write) instead of copied.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5680").await?;
//! warren_perf::null_broker::serve(listener).await
//! # }
//! ```

mod connection;
mod content;
mod error;
mod frames;
mod handshake;
mod outbound;
mod registry;
mod router;
mod write_buf;

use std::io::ErrorKind;
use std::sync::Arc;

use tokio::net::TcpListener;

use registry::Registry;

/// Accepts connections on `listener` and serves each until it closes, forever.
///
/// Fails only when accepting fails for a reason other than one connection going
/// wrong before it was accepted (for instance too many open files). A connection
/// that breaks the protocol is closed with connection.close (503 COMMAND_INVALID,
/// 504 CHANNEL_ERROR, 505 UNEXPECTED_FRAME or the codec's code for a bad frame);
/// the other connections go on.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let registry = Arc::new(Registry::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            // The peer gave up between SYN and accept: nothing to serve.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            // The client sees why in the close frame; there is nobody else to tell.
            let _ = connection::serve(stream, registry).await;
        });
    }
}
