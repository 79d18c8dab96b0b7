//! A write buffer that copies small pieces and keeps large ones by reference.
//!
//! Frames are encoded into `tail`; a large body is appended as its own `Bytes` (a
//! slice of the publisher's read buffer), and the whole lot goes to the socket in
//! vectored writes. A 64 KiB body is then never copied on its way out, while a
//! batch of small messages is still one contiguous write.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Pieces at least this long are kept by reference: below it, a copy costs less
/// than an iovec entry and the reference count.
pub(super) const SHARE_AT: usize = 4096;
/// iovec entries per write (Linux takes up to 1024).
const MAX_IOV: usize = 64;

/// Bytes waiting to be written, in order: `sealed` pieces, then `tail`.
#[derive(Debug, Default)]
pub(super) struct WriteBuf {
    sealed: VecDeque<Bytes>,
    tail: BytesMut,
}

impl WriteBuf {
    /// The buffer to encode small frames into, after everything already added.
    pub(super) fn tail(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// Appends `bytes`: copied when small, kept by reference from [`SHARE_AT`] on.
    pub(super) fn append(&mut self, bytes: Bytes) {
        if bytes.len() < SHARE_AT {
            self.tail.extend_from_slice(&bytes);
        } else {
            self.seal();
            self.sealed.push_back(bytes);
        }
    }

    fn seal(&mut self) {
        if !self.tail.is_empty() {
            self.sealed.push_back(self.tail.split().freeze());
        }
    }

    /// Writes everything and leaves the buffer empty.
    pub(super) async fn write_to<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        if self.sealed.is_empty() {
            // The usual case, small messages only: one plain write, and the tail
            // keeps its allocation for the next batch.
            writer.write_all(&self.tail).await?;
            self.tail.clear();
            return Ok(());
        }
        self.seal();
        while !self.sealed.is_empty() {
            let written = {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let count = self
                    .sealed
                    .iter()
                    .zip(slices.iter_mut())
                    .map(|(piece, slice)| *slice = IoSlice::new(piece))
                    .count();
                writer.write_vectored(&slices[..count]).await?
            };
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.consume(written);
        }
        Ok(())
    }

    /// Drops the first `n` bytes of the sealed pieces.
    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.sealed.front_mut() else {
                return;
            };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.sealed.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// A writer that takes at most 5 bytes per call, to exercise partial writes.
    #[derive(Default)]
    struct Trickle(Vec<u8>);

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(5);
            self.0.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn shared_and_copied_pieces_come_out_in_order() {
        let big: Bytes = (0..SHARE_AT + 3).map(|i| i as u8).collect();
        let mut buf = WriteBuf::default();
        buf.tail().extend_from_slice(b"head");
        buf.append(big.clone());
        buf.append(Bytes::from_static(b"small"));
        buf.tail().extend_from_slice(b"end");
        let mut out = Trickle::default();
        buf.write_to(&mut out).await.unwrap();
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&big);
        expected.extend_from_slice(b"smallend");
        assert_eq!(out.0, expected);
        assert!(buf.sealed.is_empty() && buf.tail.is_empty());
        buf.tail().extend_from_slice(b"again");
        buf.write_to(&mut out).await.unwrap();
        assert!(out.0.ends_with(b"endagain"));
    }
}
