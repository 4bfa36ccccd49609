//! The writer queue's byte budget: a command takes the bytes it carries before it is queued and
//! gives them back when the writer has committed it, so the content waiting for the single
//! writer is bounded in bytes, not only in commands.
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::StoreError;

/// Bytes the writer queue may hold, shared by every sender.
#[derive(Debug, Clone)]
pub(crate) struct ByteQueue {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// Bytes of the writer queue's budget held by one command until the writer is done with it.
#[derive(Debug)]
pub(crate) struct QueuedBytes {
    _permit: OwnedSemaphorePermit,
}

impl ByteQueue {
    pub fn new(total: usize) -> ByteQueue {
        // A semaphore counts at most u32::MAX permits per acquisition.
        let total = total.clamp(1, u32::MAX as usize);
        ByteQueue {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// What a command of `bytes` takes: a command larger than the whole budget takes all of it,
    /// and so still goes through, alone.
    fn share(&self, bytes: usize) -> u32 {
        bytes.clamp(1, self.total) as u32
    }

    /// Takes `bytes`, waiting while the budget is spent.
    pub async fn reserve(&self, bytes: usize) -> Result<QueuedBytes, StoreError> {
        self.bytes
            .clone()
            .acquire_many_owned(self.share(bytes))
            .await
            .map(|p| QueuedBytes { _permit: p })
            .map_err(|_| StoreError::Closed)
    }

    /// Takes `bytes` if they are free now.
    #[cfg(test)]
    pub fn try_reserve(&self, bytes: usize) -> Option<QueuedBytes> {
        self.bytes
            .clone()
            .try_acquire_many_owned(self.share(bytes))
            .ok()
            .map(|p| QueuedBytes { _permit: p })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn senders_wait_while_the_bytes_are_held_and_go_on_when_they_are_given_back() {
        let q = ByteQueue::new(100);
        let first = q.reserve(60).await.unwrap();
        let second = q.try_reserve(40).unwrap();
        assert!(q.try_reserve(1).is_none());
        // A waiting sender goes on once the writer is done with an earlier command.
        let q2 = q.clone();
        let waiting = tokio::spawn(async move { q2.reserve(50).await.map(drop) });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap().unwrap();
        drop(second);
        // More than the whole budget takes all of it, and still goes through.
        let all = q.reserve(1000).await.unwrap();
        assert!(q.try_reserve(1).is_none());
        drop(all);
        assert!(q.try_reserve(100).is_some());
    }
}
