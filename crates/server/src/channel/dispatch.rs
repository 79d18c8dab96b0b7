//! Routes a channel's frames to their handlers.

use warren_codec::{ChannelFlowOk, Frame, Method};

use crate::connection::Connection;
use crate::error::{ConnectionError, Error};

/// Whether a frame belongs to publishing: basic.publish, content headers and bodies.
pub(crate) fn is_publish_path(frame: &Frame) -> bool {
    matches!(
        frame,
        Frame::Header { .. }
            | Frame::Body { .. }
            | Frame::Method {
                method: Method::BasicPublish(_),
                ..
            }
    )
}

impl Connection {
    /// Handles a frame for an open channel (not channel.open / channel.close); the
    /// publish path goes to [`Connection::dispatch_content`].
    pub(crate) async fn dispatch(&mut self, ch: u16, frame: Frame) -> Result<(), Error> {
        match frame {
            Frame::Method { method, .. } if !matches!(method, Method::BasicPublish(_)) => {
                let (class_id, method_id) = (method.class_id(), method.method_id());
                self.check_no_content_pending(ch, class_id, method_id)?;
                self.on_method(ch, method)
                    .await
                    .map_err(|e| e.in_method(class_id, method_id))
            }
            publishing => self.dispatch_content(ch, publishing),
        }
    }

    /// Handles a frame of the publish path: basic.publish, a content header or body.
    /// Synchronous, as most frames are these: nothing here waits (the routed message
    /// goes to its queues with the next batch), so no future is built per frame.
    pub(crate) fn dispatch_content(&mut self, ch: u16, frame: Frame) -> Result<(), Error> {
        let publication = match frame {
            Frame::Method {
                method: Method::BasicPublish(m),
                ..
            } => {
                self.check_no_content_pending(ch, 60, 40)?;
                return self
                    .handle_basic_publish(ch, m)
                    .map_err(|e| e.in_method(60, 40));
            }
            Frame::Header { header, .. } => {
                let max_size = self.broker.config().limits.max_message_size;
                self.channel(ch)?.assembler.header(header, max_size)?
            }
            Frame::Body { body, .. } => self.channel(ch)?.assembler.body(body)?,
            Frame::Method { .. } | Frame::Heartbeat => None,
        };
        match publication {
            Some(publication) => self.publish(ch, publication),
            None => Ok(()),
        }
    }

    /// No method may come between a basic.publish and the end of its content.
    fn check_no_content_pending(
        &mut self,
        ch: u16,
        class_id: u16,
        method_id: u16,
    ) -> Result<(), Error> {
        if self.channel(ch)?.assembler.is_idle() {
            return Ok(());
        }
        Err(ConnectionError::unexpected_frame(
            "expected content header for class 60, got non content header frame instead",
        )
        .in_method(class_id, method_id)
        .into())
    }

    async fn on_method(&mut self, ch: u16, method: Method) -> Result<(), Error> {
        match method {
            Method::ChannelOpen(_) => Err(ConnectionError::channel_error(format!(
                "second 'channel.open' seen on channel {ch}"
            ))
            .into()),
            Method::ChannelFlow(flow) => {
                let channel = self.channel(ch)?;
                let resumed = channel.gate.set_flow(flow.active);
                if resumed {
                    channel.resume_queues().await;
                }
                self.out.method(
                    ch,
                    ChannelFlowOk {
                        active: flow.active,
                    },
                );
                Ok(())
            }
            Method::ExchangeDeclare(m) => self.handle_exchange_declare(ch, m),
            Method::ExchangeDelete(m) => self.handle_exchange_delete(ch, m),
            Method::ExchangeBind(m) => self.handle_exchange_bind(ch, m),
            Method::ExchangeUnbind(m) => self.handle_exchange_unbind(ch, m),
            Method::QueueDeclare(m) => self.handle_queue_declare(ch, m).await,
            Method::QueueBind(m) => self.handle_queue_bind(ch, m),
            Method::QueueUnbind(m) => self.handle_queue_unbind(ch, m),
            Method::QueuePurge(m) => self.handle_queue_purge(ch, m).await,
            Method::QueueDelete(m) => self.handle_queue_delete(ch, m).await,
            Method::BasicQos(m) => self.handle_basic_qos(ch, m).await,
            Method::BasicConsume(m) => self.handle_basic_consume(ch, m).await,
            Method::BasicCancel(m) => self.handle_basic_cancel(ch, m).await,
            Method::BasicGet(m) => self.handle_basic_get(ch, m).await,
            Method::BasicAck(m) => self.handle_basic_ack(ch, m).await,
            Method::BasicNack(m) => self.handle_basic_nack(ch, m).await,
            Method::BasicReject(m) => self.handle_basic_reject(ch, m).await,
            Method::BasicRecover(m) => self.handle_basic_recover(ch, m.requeue, true).await,
            Method::BasicRecoverAsync(m) => self.handle_basic_recover(ch, m.requeue, false).await,
            Method::TxSelect(_) => self.handle_tx_select(ch),
            Method::TxCommit(_) => self.handle_tx_commit(ch).await,
            Method::TxRollback(_) => self.handle_tx_rollback(ch),
            Method::ConfirmSelect(m) => self.handle_confirm_select(ch, m),
            other => Err(ConnectionError::command_invalid(format!(
                "unexpected method '{}' from a client",
                other.name()
            ))
            .into()),
        }
    }
}
