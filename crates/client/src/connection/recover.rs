//! Reconnecting after a lost connection: a new socket, the handshake, and the recorded
//! topology declared again, before the connection task gives the socket to its
//! channels (which reopen themselves and their consumers, see `ChannelState::reopen`).
//!
//! The topology is replayed one declaration at a time on a channel of its own, before
//! any consumer exists, so nothing but the answers can arrive meanwhile. A declaration
//! the broker refuses (a queue since redeclared with other arguments, a binding to an
//! exchange someone deleted) is logged and skipped: the rest still comes back.

use std::collections::HashMap;

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tracing::warn;
use warren_codec::{
    ChannelClose, ChannelCloseOk, ChannelOpen, CodecError, ConnectionCloseOk, Frame, Method,
    ShortStr,
};

use super::dial;
use super::handshake::{Reader, Tuning, Writer};
use super::recorded::{Record, Topology};
use crate::error::Error;
use crate::recovery::Recovery;
use crate::uri::ConnectOptions;

/// The channel the topology is replayed on; closed again before the channels reopen.
const REPLAY_CHANNEL: u16 = 1;

/// What a connection with recovery on keeps: how to dial again and what to re-declare.
pub(crate) struct Recoverable {
    pub(crate) options: ConnectOptions,
    pub(crate) topology: Topology,
}

impl Recoverable {
    pub(crate) fn new(options: ConnectOptions) -> Self {
        Recoverable {
            options,
            topology: Topology::default(),
        }
    }

    /// The recovery settings (present: only options that ask for recovery get here).
    pub(crate) fn settings(&self) -> Recovery {
        self.options.recovery.clone().unwrap_or_default()
    }

    pub(crate) fn record(&mut self, record: Record) {
        self.topology.record(record);
    }
}

/// A new connection with the topology back in place.
pub(crate) struct Restored {
    pub(crate) reader: Reader,
    pub(crate) writer: Writer,
    pub(crate) tuning: Tuning,
    /// Server-named queues' old names and new.
    pub(crate) renames: HashMap<ShortStr, ShortStr>,
    /// connection.blocked arrived during the replay, and was not lifted.
    pub(crate) blocked: Option<String>,
}

/// Dials the broker again and re-declares `topology`, within the connection timeout.
pub(crate) async fn reconnect(
    options: &ConnectOptions,
    topology: &Topology,
) -> Result<Restored, Error> {
    let timeout = options.connection_timeout;
    let restoring = async {
        let (reader, writer, negotiated) = dial(options).await?;
        let mut session = Session {
            reader,
            writer,
            blocked: None,
        };
        let renames = session.replay(topology).await?;
        Ok(Restored {
            reader: session.reader,
            writer: session.writer,
            tuning: negotiated.tuning,
            renames,
            blocked: session.blocked,
        })
    };
    tokio::time::timeout(timeout, restoring)
        .await
        .map_err(|_| Error::Timeout(timeout))?
}

/// Why a replayed call failed.
enum Failure {
    /// The broker refused it and closed the replay channel.
    Channel(Error),
    /// The connection failed: this attempt is over.
    Connection(Error),
}

/// One call at a time on a fresh connection.
struct Session {
    reader: Reader,
    writer: Writer,
    blocked: Option<String>,
}

impl Session {
    async fn replay(&mut self, topology: &Topology) -> Result<HashMap<ShortStr, ShortStr>, Error> {
        let mut renames = HashMap::new();
        if topology.is_empty() {
            return Ok(renames);
        }
        self.open().await?;
        for declare in topology.exchanges() {
            self.step(declare.clone().into()).await?;
        }
        for (name, declare) in topology.queues() {
            if let Some(Method::QueueDeclareOk(ok)) = self.step(declare.clone().into()).await?
                && ok.queue != *name
            {
                renames.insert(name.clone(), ok.queue);
            }
        }
        for bind in topology.queue_bindings() {
            let mut bind = bind.clone();
            if let Some(new) = renames.get(&bind.queue) {
                bind.queue = new.clone();
            }
            self.step(bind.into()).await?;
        }
        for bind in topology.exchange_bindings() {
            self.step(bind.clone().into()).await?;
        }
        let close = ChannelClose {
            reply_code: 200,
            reply_text: "topology recovered".into(),
            class_id: 0,
            method_id: 0,
        };
        self.call(close.into()).await.map_err(Failure::into_error)?;
        Ok(renames)
    }

    async fn open(&mut self) -> Result<(), Error> {
        self.call(ChannelOpen::default().into())
            .await
            .map_err(Failure::into_error)?;
        Ok(())
    }

    /// Replays one declaration: its answer, or `None` when the broker refused it
    /// (logged; the channel is reopened for the rest).
    async fn step(&mut self, method: Method) -> Result<Option<Method>, Error> {
        let name = method.name();
        let detail = format!("{method:?}");
        match self.call(method).await {
            Ok(answer) => Ok(Some(answer)),
            Err(Failure::Channel(e)) => {
                warn!(method = name, %detail, error = %e, "recovery could not re-declare this; going on without it");
                self.open().await?;
                Ok(None)
            }
            Err(Failure::Connection(e)) => Err(e),
        }
    }

    /// Sends a synchronous method on the replay channel and reads up to its answer.
    async fn call(&mut self, method: Method) -> Result<Method, Failure> {
        self.send(REPLAY_CHANNEL, method)
            .await
            .map_err(Failure::Connection)?;
        loop {
            let frame = match self.reader.next().await {
                Some(Ok(frame)) => frame,
                Some(Err(CodecError::Io(e))) => return Err(Failure::Connection(e.into())),
                Some(Err(CodecError::Frame(e))) => {
                    return Err(Failure::Connection(Error::Protocol(format!(
                        "bad frame from the server: {e}"
                    ))));
                }
                None => {
                    return Err(Failure::Connection(
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the server closed the socket",
                        )
                        .into(),
                    ));
                }
            };
            let Frame::Method { channel, method } = frame else {
                continue;
            };
            match (channel, method) {
                (0, Method::ConnectionClose(close)) => {
                    // Best effort: the attempt has failed either way.
                    let _ = self.send(0, ConnectionCloseOk {}.into()).await;
                    return Err(Failure::Connection(Error::ConnectionClosed {
                        code: close.reply_code,
                        text: close.reply_text.to_string(),
                        class_id: close.class_id,
                        method_id: close.method_id,
                    }));
                }
                (0, Method::ConnectionBlocked(blocked)) => {
                    self.blocked = Some(blocked.reason.to_string());
                }
                (0, Method::ConnectionUnblocked(_)) => self.blocked = None,
                (REPLAY_CHANNEL, Method::ChannelClose(close)) => {
                    self.send(REPLAY_CHANNEL, ChannelCloseOk {}.into())
                        .await
                        .map_err(Failure::Connection)?;
                    return Err(Failure::Channel(Error::ChannelClosed {
                        code: close.reply_code,
                        text: close.reply_text.to_string(),
                        class_id: close.class_id,
                        method_id: close.method_id,
                    }));
                }
                (REPLAY_CHANNEL, answer) => return Ok(answer),
                _ => {}
            }
        }
    }

    async fn send(&mut self, channel: u16, method: Method) -> Result<(), Error> {
        let mut buf = BytesMut::new();
        Frame::method(channel, method).encode(&mut buf);
        self.writer.write_all(&buf).await?;
        self.writer.flush().await?;
        Ok(())
    }
}

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Failure::Channel(e) | Failure::Connection(e) => e,
        }
    }
}
