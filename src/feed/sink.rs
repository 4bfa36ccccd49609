//! The channel between a subscription's task and its gRPC stream, bounded in bytes as well as in
//! messages: a subscriber that stops reading holds little in it whatever the size of the items it
//! follows. A message larger than [`UNCOUNTED_BYTES`] takes its encoded size from a budget of
//! [`SUBSCRIBER_BUFFER_BYTES`] before it is queued (one larger than the budget takes all of it)
//! and gives it back when the gRPC stream takes it out; smaller ones are bounded by the count
//! alone, which keeps the common case free of the budget's cost (a semaphore's lock per message,
//! measured at about a tenth of the CPU of a delivery). So the channel holds at most
//! `messages` x [`UNCOUNTED_BYTES`] plus [`SUBSCRIBER_BUFFER_BYTES`] (or one message).
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tonic::Status;

use super::wire::FeedEvent;

/// Bytes of large messages queued for one subscriber at most (beyond one message).
pub const SUBSCRIBER_BUFFER_BYTES: usize = 1024 * 1024;
/// Messages up to this size are bounded by the channel's count alone.
pub const UNCOUNTED_BYTES: usize = 32 * 1024;

type Item = (Result<FeedEvent, Status>, Option<OwnedSemaphorePermit>);

/// The sending side, held by the subscription's task.
#[derive(Debug, Clone)]
pub struct Sink {
    tx: mpsc::Sender<Item>,
    bytes: Arc<Semaphore>,
    total: usize,
}

/// The receiving side, the gRPC response stream.
#[derive(Debug)]
pub struct SinkStream {
    rx: mpsc::Receiver<Item>,
}

/// The stream's receiver is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the subscriber is gone")]
pub struct Gone;

/// A channel of at most `messages` messages and `bytes` bytes (or one message, if larger).
pub fn channel(messages: usize, bytes: usize) -> (Sink, SinkStream) {
    let total = bytes.clamp(1, u32::MAX as usize);
    let (tx, rx) = mpsc::channel(messages.max(1));
    (
        Sink {
            tx,
            bytes: Arc::new(Semaphore::new(total)),
            total,
        },
        SinkStream { rx },
    )
}

/// Room for one message, taken before it is sent: the caller can decide the message once the
/// wait for a slow reader is over.
pub struct Room<'a> {
    slot: mpsc::Permit<'a, Item>,
    bytes: Option<OwnedSemaphorePermit>,
    size: usize,
}

impl Room<'_> {
    /// Whether a message of `size` bytes fits the room (its byte share was taken for the size
    /// reserved, or none was needed).
    pub fn fits(&self, size: usize) -> bool {
        size <= UNCOUNTED_BYTES || size <= self.size
    }

    /// Queues `item` in the room (it must fit).
    pub fn send(self, item: Result<FeedEvent, Status>) {
        self.slot.send((item, self.bytes));
    }
}

impl Sink {
    /// Queues `item`, waiting for room in messages and in bytes.
    pub async fn send(&self, item: Result<FeedEvent, Status>) -> Result<(), Gone> {
        let size = match &item {
            Ok(FeedEvent::Encoded(b)) => b.len(),
            Ok(FeedEvent::Decoded(f)) => f.encoded_len(),
            Err(_) => 0,
        };
        self.reserve(size).await?.send(item);
        Ok(())
    }

    /// Waits for room for one message of `size` bytes, in messages and in bytes.
    pub async fn reserve(&self, size: usize) -> Result<Room<'_>, Gone> {
        let bytes = match size {
            0..=UNCOUNTED_BYTES => None,
            n => Some(
                self.bytes
                    .clone()
                    .acquire_many_owned(n.min(self.total) as u32)
                    .await
                    .map_err(|_| Gone)?,
            ),
        };
        let slot = self.tx.reserve().await.map_err(|_| Gone)?;
        Ok(Room { slot, bytes, size })
    }

    /// Resolves when the stream's receiver is gone.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

impl tokio_stream::Stream for SinkStream {
    type Item = Result<FeedEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // The message's bytes are given back as the stream takes it.
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|(message, _bytes)| message))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio_stream::StreamExt;

    use super::*;

    fn message(n: usize) -> Result<FeedEvent, Status> {
        Ok(FeedEvent::Encoded(Bytes::from(vec![0u8; n])))
    }

    const BIG: usize = UNCOUNTED_BYTES + 1;

    #[tokio::test]
    async fn a_sender_of_large_messages_waits_for_bytes_as_well_as_messages() {
        let (sink, mut stream) = channel(32, 3 * BIG);
        sink.send(message(2 * BIG)).await.unwrap();
        sink.send(message(BIG)).await.unwrap();
        // Full in bytes, not in messages: the next waits until the stream takes one.
        let s = sink.clone();
        let waiting = tokio::spawn(async move { s.send(message(BIG)).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // Small messages are bounded by the count only.
        sink.send(message(UNCOUNTED_BYTES)).await.unwrap();
        stream.next().await.unwrap().unwrap();
        waiting.await.unwrap().unwrap();
        for _ in 0..3 {
            stream.next().await.unwrap().unwrap();
        }
        // A message larger than the whole budget goes alone.
        sink.send(message(10 * BIG)).await.unwrap();
        assert!(matches!(
            stream.next().await,
            Some(Ok(FeedEvent::Encoded(b))) if b.len() == 10 * BIG
        ));
        // Errors take no bytes; a gone receiver fails the send.
        sink.send(Err(Status::unavailable("bye"))).await.unwrap();
        drop(stream);
        assert_eq!(sink.send(message(1)).await, Err(Gone));
    }
}
