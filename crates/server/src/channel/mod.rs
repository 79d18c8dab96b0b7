//! A channel's state, owned by its connection task.

use warren_codec::{ChannelFlowOk, Frame, Method};

use crate::connection::outbound::Outbound;
use crate::error::{ConnectionError, Error};

#[derive(Debug, PartialEq, Eq)]
enum State {
    Open,
    /// We sent channel.close; waiting for close-ok, ignoring everything else.
    Closing,
}

/// One open channel.
pub(crate) struct Channel {
    id: u16,
    state: State,
    /// False while the client has paused deliveries with channel.flow.
    flow_active: bool,
}

impl Channel {
    pub(crate) fn new(id: u16) -> Self {
        Channel {
            id,
            state: State::Open,
            flow_active: true,
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.state == State::Closing
    }

    /// Enters the closing state after the connection sent channel.close.
    pub(crate) fn start_closing(&mut self) {
        self.state = State::Closing;
    }

    /// Handles a frame for this open channel (not channel.open / channel.close).
    pub(crate) fn on_frame(&mut self, frame: Frame, out: &mut Outbound) -> Result<(), Error> {
        match frame {
            Frame::Method { method, .. } => {
                let (class_id, method_id) = (method.class_id(), method.method_id());
                self.on_method(method, out)
                    .map_err(|e| e.in_method(class_id, method_id))
            }
            _ => Err(ConnectionError::unexpected_frame(format!(
                "content frame on channel {} without a publish",
                self.id
            ))
            .into()),
        }
    }

    fn on_method(&mut self, method: Method, out: &mut Outbound) -> Result<(), Error> {
        match method {
            Method::ChannelOpen(_) => Err(ConnectionError::channel_error(format!(
                "second 'channel.open' seen on channel {}",
                self.id
            ))
            .into()),
            Method::ChannelFlow(flow) => {
                self.flow_active = flow.active;
                out.method(
                    self.id,
                    ChannelFlowOk {
                        active: flow.active,
                    },
                );
                Ok(())
            }
            other => Err(ConnectionError::not_implemented(format!(
                "'{}' is not implemented yet",
                other.name()
            ))
            .into()),
        }
    }
}
