//! Idle subscribers: the server's resident memory per open subscription that receives nothing.
//! The hub runs in a child process so that /proc/<pid>/status shows its memory alone.
use std::time::Duration;

use futures_util::future::try_join_all;

use super::{
    raw,
    setup::{ChildHub, READER},
};
use crate::pb::{self, hub_client::HubClient};

/// One idle-subscription measurement.
#[derive(Debug, Clone, Default)]
pub struct Idle {
    pub streams: usize,
    pub connections: usize,
    /// Server RSS with the connections open but no subscription (shared case), or with one
    /// warm connection (own-connection case), and with every subscription open.
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
}

impl Idle {
    pub fn per_stream_kib(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / self.streams.max(1) as f64
    }
}

fn request() -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        from_now: true,
        // Idle: nothing to deliver, and no heartbeat within the measurement.
        heartbeat_seconds: 300,
        ..Default::default()
    }
}

/// Lets the server finish what the last requests started before its memory is read.
async fn settle(quick: bool) {
    tokio::time::sleep(Duration::from_millis(if quick { 200 } else { 1500 })).await;
}

/// `streams` subscriptions over `connections` shared connections. The connections are opened
/// (and used once) before the first reading, so the difference is the subscriptions alone.
pub async fn shared(streams: usize, connections: usize, quick: bool) -> anyhow::Result<Idle> {
    let child = ChildHub::start().await?;
    let mut channels = Vec::new();
    for _ in 0..connections {
        let channel = child.target.channel(READER).await?;
        HubClient::new(channel.clone())
            .who_am_i(pb::WhoAmIRequest {})
            .await?;
        channels.push(channel);
    }
    settle(quick).await;
    let rss_before_kib = child.rss_kib();
    let mut open = Vec::with_capacity(streams);
    for chunk in (0..streams).collect::<Vec<_>>().chunks(200) {
        let opened = try_join_all(
            chunk
                .iter()
                .map(|i| raw::subscribe(channels[i % channels.len()].clone(), request())),
        )
        .await?;
        open.extend(opened);
    }
    settle(quick).await;
    let rss_after_kib = child.rss_kib();
    drop(open);
    drop(channels);
    child.stop().await?;
    Ok(Idle {
        streams,
        connections,
        rss_before_kib,
        rss_after_kib,
    })
}

/// `streams` subscriptions, each on its own new connection (handshake, HTTP/2 session and
/// the stream all count).
pub async fn own(streams: usize, quick: bool) -> anyhow::Result<Idle> {
    let child = ChildHub::start().await?;
    // One connection used once first, so the server's one-time allocations are not counted.
    let warm = child.target.channel(READER).await?;
    drop(raw::subscribe(warm.clone(), request()).await?);
    settle(quick).await;
    let rss_before_kib = child.rss_kib();
    let mut open = Vec::with_capacity(streams);
    for chunk in (0..streams).collect::<Vec<_>>().chunks(50) {
        let opened = try_join_all(chunk.iter().map(|_| async {
            let channel = child.target.channel(READER).await?;
            raw::subscribe(channel, request()).await
        }))
        .await?;
        open.extend(opened);
    }
    settle(quick).await;
    let rss_after_kib = child.rss_kib();
    drop(open);
    drop(warm);
    child.stop().await?;
    Ok(Idle {
        streams,
        connections: streams,
        rss_before_kib,
        rss_after_kib,
    })
}
