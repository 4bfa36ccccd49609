//! Helpers to subscribe and read the feed in tests.
use std::time::Duration;

use cbm_hub::{
    feed::wire::{Event, FeedEvent},
    pb::{self, feed_client::FeedClient},
};
use tonic::Streaming;

use super::TestHub;

/// One change as a subscriber saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub sequence: u64,
    pub action: String,
    pub reason: String,
    pub id: String,
    pub revision: u32,
    pub has_content: bool,
    /// The envelope's content hash (empty in a narrowing tombstone).
    pub content_hash: String,
    /// Who acknowledged and their reply, for an "acknowledged" change.
    pub acknowledged_by: Option<(String, String)>,
}

pub fn request(after: u64) -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        after_sequence: after,
        heartbeat_seconds: 1,
        ..Default::default()
    }
}

pub async fn subscribe(
    t: &TestHub,
    member: &str,
    req: pb::SubscribeRequest,
) -> Streaming<FeedEvent> {
    let mut client = FeedClient::new(t.channel(member).await);
    client.subscribe(req).await.unwrap().into_inner()
}

/// Reads until the subscriber has been served up to `target` (a change or heartbeat at or past
/// it), returning the changes seen. Fails after `limit`.
pub async fn read_until(
    stream: &mut Streaming<FeedEvent>,
    target: u64,
    limit: Duration,
) -> Vec<Seen> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let msg = tokio::time::timeout_at(deadline, stream.message())
            .await
            .unwrap_or_else(|_| panic!("not served up to {target} in {limit:?}; saw {seen:?}"))
            .expect("stream error")
            .expect("stream ended");
        let fields = msg.into_fields().unwrap();
        if let Some(Event::Change(c)) = &fields.event {
            let s = c.submission.clone().unwrap_or_default();
            seen.push(Seen {
                sequence: fields.sequence,
                action: c.action.clone(),
                reason: c.reason.clone(),
                id: s.id,
                revision: s.revision,
                has_content: s.content.is_some(),
                content_hash: s.content_hash,
                acknowledged_by: c
                    .acknowledgement
                    .as_ref()
                    .map(|a| (a.member.clone(), a.reply.clone())),
            });
        }
        if fields.sequence >= target {
            return seen;
        }
    }
}

pub fn sequences(seen: &[Seen]) -> Vec<u64> {
    seen.iter().map(|s| s.sequence).collect()
}
