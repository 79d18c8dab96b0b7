//! A connection's writer: the one task that writes to its socket, fed by a bounded
//! mailbox from its own reader (replies, confirms, consumer bookkeeping) and from
//! every publishing reader (deliveries).
//!
//! It takes what the mailbox holds (up to [`BATCH`] at a time), encodes it into one
//! [`WriteBuf`] and writes once. It owns the delivery tags (counted per channel) and
//! the list of live consumers: a delivery for a consumer that has been cancelled, or
//! whose channel has closed, is dropped here, because a publisher may still hold a
//! registry snapshot from before the cancel. The reader sends `ConsumerStarted`
//! after the consume-ok frames and before registering the consumer, so no delivery
//! overtakes its consume-ok; and `ConsumerEnded` after removing it from the registry,
//! so none follows its cancel-ok.

use bytes::{BufMut, Bytes};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use warren_codec::{
    BASIC_CLASS_ID, BasicDeliver, FRAME_END, FRAME_OVERHEAD, Frame, Method, ShortStr,
    encode_content_raw,
};

use super::content::Message;
use super::write_buf::{SHARE_AT, WriteBuf};

/// Messages taken from the mailbox per write.
const BATCH: usize = 256;
/// Frame types the codec keeps private; the writer frames large content itself.
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;

/// What a writer is asked to do.
#[derive(Debug)]
pub(super) enum Outbound {
    /// Frames its reader encoded: replies and confirms.
    Frames(Bytes),
    /// A message for one of its consumers.
    Deliver(Delivery),
    /// A consumer on this connection now takes deliveries.
    ConsumerStarted {
        /// Its id in the registry.
        id: u64,
        /// Its channel.
        channel: u16,
    },
    /// A consumer was cancelled: drop what still comes for it.
    ConsumerEnded {
        /// Its id in the registry.
        id: u64,
    },
    /// A channel closed: its consumers are gone and its delivery tags start over.
    ChannelClosed {
        /// The channel number.
        channel: u16,
    },
    /// Write what is left, shut the socket down and stop.
    Close,
}

/// A message on its way to one consumer.
#[derive(Debug)]
pub(super) struct Delivery {
    /// The consumer's registry id.
    pub(super) consumer: u64,
    /// Its channel.
    pub(super) channel: u16,
    /// Its tag.
    pub(super) consumer_tag: ShortStr,
    /// The message.
    pub(super) message: Message,
}

/// The writer's state between batches.
struct Writer {
    buf: WriteBuf,
    frame_max: u32,
    /// (consumer id, channel) of the live consumers; a handful per connection, so a
    /// list scan beats hashing.
    consumers: Vec<(u64, u16)>,
    /// The last delivery tag per channel number.
    tags: Vec<u64>,
}

/// Runs a connection's writer until `Close`, or until the socket fails.
pub(super) async fn write(
    mut socket: OwnedWriteHalf,
    mut mailbox: mpsc::Receiver<Outbound>,
    frame_max: u32,
) -> std::io::Result<()> {
    let mut writer = Writer {
        buf: WriteBuf::default(),
        frame_max,
        consumers: Vec::new(),
        tags: Vec::new(),
    };
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if mailbox.recv_many(&mut batch, BATCH).await == 0 {
            // Every sender is gone, so the reader is too.
            return Ok(());
        }
        let mut close = false;
        for outbound in batch.drain(..) {
            close |= writer.take(outbound);
        }
        writer.buf.write_to(&mut socket).await?;
        if close {
            // The client may have closed its side first; nothing is left to say.
            let _ = socket.shutdown().await;
            return Ok(());
        }
    }
}

impl Writer {
    /// Encodes one mailbox entry; true for `Close`.
    fn take(&mut self, outbound: Outbound) -> bool {
        match outbound {
            Outbound::Frames(frames) => self.buf.append(frames),
            Outbound::Deliver(delivery) => self.deliver(delivery),
            Outbound::ConsumerStarted { id, channel } => self.consumers.push((id, channel)),
            Outbound::ConsumerEnded { id } => self.consumers.retain(|&(c, _)| c != id),
            Outbound::ChannelClosed { channel } => {
                self.consumers.retain(|&(_, c)| c != channel);
                if let Some(tag) = self.tags.get_mut(usize::from(channel)) {
                    *tag = 0;
                }
            }
            Outbound::Close => return true,
        }
        false
    }

    fn deliver(&mut self, delivery: Delivery) {
        let Delivery {
            consumer,
            channel,
            consumer_tag,
            message,
        } = delivery;
        if !self.consumers.iter().any(|&(id, _)| id == consumer) {
            return;
        }
        let slot = usize::from(channel);
        if self.tags.len() <= slot {
            self.tags.resize(slot + 1, 0);
        }
        self.tags[slot] += 1;
        let Message {
            exchange,
            routing_key,
            properties,
            body,
        } = message;
        let method = Method::BasicDeliver(BasicDeliver {
            consumer_tag,
            delivery_tag: self.tags[slot],
            redelivered: false,
            exchange,
            routing_key,
        });
        if body.len() < SHARE_AT {
            encode_content_raw(
                self.buf.tail(),
                channel,
                &method,
                &properties,
                &body,
                self.frame_max,
            );
            return;
        }
        // A large body goes out by reference: the frames around it are written here.
        Frame::Method { channel, method }.encode(self.buf.tail());
        let tail = self.buf.tail();
        let header_size = 12 + properties.len();
        tail.put_u8(FRAME_HEADER);
        tail.put_u16(channel);
        tail.put_u32(u32::try_from(header_size).unwrap_or(u32::MAX));
        tail.put_u16(BASIC_CLASS_ID);
        tail.put_u16(0); // weight
        tail.put_u64(body.len() as u64);
        tail.put_slice(&properties);
        tail.put_u8(FRAME_END);
        let piece = match self.frame_max {
            0 => body.len(),
            max => (max as usize).saturating_sub(FRAME_OVERHEAD).max(1),
        };
        let mut at = 0;
        while at < body.len() {
            let end = body.len().min(at + piece);
            let tail = self.buf.tail();
            tail.put_u8(FRAME_BODY);
            tail.put_u16(channel);
            tail.put_u32(u32::try_from(end - at).unwrap_or(u32::MAX));
            self.buf.append(body.slice(at..end));
            self.buf.tail().put_u8(FRAME_END);
            at = end;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use bytes::BytesMut;
    use warren_codec::{BasicProperties, ContentHeader, decode_frame};

    use super::*;

    fn writer(frame_max: u32) -> Writer {
        Writer {
            buf: WriteBuf::default(),
            frame_max,
            consumers: vec![(1, 5)],
            tags: Vec::new(),
        }
    }

    fn delivery(consumer: u64, body: Bytes) -> Outbound {
        let mut properties = BytesMut::new();
        BasicProperties {
            delivery_mode: Some(2),
            ..Default::default()
        }
        .encode(&mut properties);
        Outbound::Deliver(Delivery {
            consumer,
            channel: 5,
            consumer_tag: "ctag".into(),
            message: Message {
                exchange: "x".into(),
                routing_key: "k".into(),
                properties: properties.freeze(),
                body,
            },
        })
    }

    /// The frames the writer would send, decoded.
    async fn written(writer: &mut Writer) -> Vec<Frame> {
        let mut out = Vec::new();
        writer.buf.write_to(&mut out).await.unwrap();
        let mut bytes = BytesMut::from(&out[..]);
        let mut frames = Vec::new();
        while let Some(frame) = decode_frame(&mut bytes, 0).unwrap() {
            frames.push(frame);
        }
        assert!(bytes.is_empty());
        frames
    }

    fn deliver_tag(frame: &Frame) -> u64 {
        match frame {
            Frame::Method {
                method: Method::BasicDeliver(m),
                ..
            } => m.delivery_tag,
            other => panic!("expected basic.deliver, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn deliveries_count_tags_per_channel_and_carry_the_content() {
        let mut writer = writer(4096);
        writer.take(delivery(1, Bytes::from_static(b"hello")));
        writer.take(delivery(1, Bytes::from_static(b"again")));
        let frames = written(&mut writer).await;
        assert_eq!(frames.len(), 6);
        assert_eq!(deliver_tag(&frames[0]), 1);
        assert_eq!(deliver_tag(&frames[3]), 2);
        let Frame::Header { header, .. } = &frames[1] else {
            panic!("expected a header");
        };
        assert_eq!(header.properties().delivery_mode, Some(2));
        assert_eq!(
            frames[2],
            Frame::Body {
                channel: 5,
                body: Bytes::from_static(b"hello")
            }
        );
    }

    #[tokio::test]
    async fn a_large_body_is_split_at_frame_max() {
        let mut writer = writer(4096);
        let body: Bytes = (0..10_000u32).map(|i| i as u8).collect();
        writer.take(delivery(1, body.clone()));
        let frames = written(&mut writer).await;
        let Frame::Header { header, .. } = &frames[1] else {
            panic!("expected a header");
        };
        let expected = ContentHeader::new(10_000, header.properties().clone());
        assert_eq!(header, &expected);
        let mut joined = Vec::new();
        for frame in &frames[2..] {
            let Frame::Body { body, .. } = frame else {
                panic!("expected a body frame");
            };
            assert!(body.len() + FRAME_OVERHEAD <= 4096);
            joined.extend_from_slice(body);
        }
        assert_eq!(joined, body);
    }

    #[tokio::test]
    async fn nothing_is_delivered_to_an_ended_consumer_or_closed_channel() {
        let mut writer = writer(0);
        writer.take(delivery(2, Bytes::from_static(b"unknown consumer")));
        writer.take(Outbound::ConsumerEnded { id: 1 });
        writer.take(delivery(1, Bytes::from_static(b"cancelled")));
        assert!(written(&mut writer).await.is_empty());

        writer.take(Outbound::ConsumerStarted { id: 3, channel: 5 });
        writer.take(delivery(3, Bytes::from_static(b"one")));
        writer.take(Outbound::ChannelClosed { channel: 5 });
        writer.take(delivery(3, Bytes::from_static(b"closed")));
        writer.take(Outbound::ConsumerStarted { id: 4, channel: 5 });
        writer.take(delivery(4, Bytes::from_static(b"reopened")));
        let frames = written(&mut writer).await;
        assert_eq!(frames.len(), 6);
        assert_eq!(
            deliver_tag(&frames[3]),
            1,
            "tags start over on a new channel"
        );
        assert!(writer.take(Outbound::Close));
    }
}
