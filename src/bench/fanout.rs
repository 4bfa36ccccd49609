//! Fan-out: publish-to-delivery latency and deliveries per second to many subscribers, at a
//! fixed publish rate and at the most the publishers can push, for the hub and for the
//! baseline server of pre-encoded messages ([`super::baseline`]) over the same kind of
//! connections.
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use prost::Message;
use tokio::{task::JoinHandle, time::Instant};

use super::{
    baseline::{self, Baseline},
    percentile, raw,
    setup::{BenchHub, PUBLISHER, READER},
};
use crate::{
    feed::wire::{Event, FeedEventFields},
    pb::{self, hub_client::HubClient},
};

/// How fast messages are published.
#[derive(Debug, Clone, Copy)]
pub enum Rate {
    PerSecond(u64),
    Max,
}

/// One fan-out round.
#[derive(Debug, Clone, Default)]
pub struct Fanout {
    /// Messages published (or sent by the baseline) in the round.
    pub messages: u64,
    /// Deliveries received by all subscribers, and how many were expected.
    pub deliveries: u64,
    pub expected: u64,
    pub per_second: f64,
    pub p50_us: u32,
    pub p99_us: u32,
    /// The hub only: latency of the publish call itself (until its durable acknowledgement),
    /// the part of the publish-to-delivery latency spent before the feed has the message.
    pub ack_p50_us: u32,
    pub ack_p99_us: u32,
    /// CPU of the process (hub or baseline server, publishers and subscribers) while messages
    /// were sent, per delivery.
    pub cpu: super::cpu::Used,
}

/// Sequence -> send time (microseconds since the round's epoch).
type Sent = Vec<(u64, u32)>;
/// What one subscriber received: (sequence, arrival time).
type Received = Vec<(u64, u32)>;

fn micros(epoch: Instant) -> u32 {
    epoch.elapsed().as_micros().min(u32::MAX as u128) as u32
}

/// CLEAR submissions only: every subscriber receives every message.
fn clear_payloads() -> anyhow::Result<Vec<pb::SubmissionContent>> {
    Ok(super::payloads()?
        .into_iter()
        .filter(|c| c.tlp == "TLP:CLEAR")
        .collect())
}

/// Opens `n` raw subscriptions spread over `connections` new connections to `addr`, each
/// recording what it receives until it has seen a sequence beyond `stop_at` or `deadline`.
async fn subscribers(
    hub: &BenchHub,
    addr: std::net::SocketAddr,
    n: usize,
    connections: usize,
    epoch: Instant,
    stop_at: Arc<AtomicU64>,
    deadline: Instant,
) -> anyhow::Result<Vec<JoinHandle<Received>>> {
    let mut channels = Vec::new();
    for _ in 0..connections.max(1) {
        channels.push(hub.target.channel_to(addr, READER).await?);
    }
    let request = pb::SubscribeRequest {
        from_now: true,
        heartbeat_seconds: 300,
        ..Default::default()
    };
    let mut tasks = Vec::new();
    for i in 0..n {
        let mut stream =
            raw::subscribe(channels[i % channels.len()].clone(), request.clone()).await?;
        let stop_at = stop_at.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Ok(Ok(Some(msg))) = tokio::time::timeout_at(deadline, stream.message()).await
            {
                if let Some((seq, true)) = raw::sequence_of(&msg) {
                    got.push((seq, micros(epoch)));
                    if seq > stop_at.load(Ordering::Acquire) {
                        break;
                    }
                }
            }
            got
        }));
    }
    Ok(tasks)
}

/// Joins what was sent with what was received.
async fn tally(sent: Sent, tasks: Vec<JoinHandle<Received>>, subscribers: u64) -> Fanout {
    let first_sent = sent.iter().map(|s| s.1).min().unwrap_or(0);
    let at: HashMap<u64, u32> = sent.iter().copied().collect();
    let mut latencies = Vec::new();
    let mut last = first_sent;
    for task in tasks {
        if let Ok(got) = task.await {
            for (seq, t) in got {
                if let Some(t0) = at.get(&seq) {
                    latencies.push(t.saturating_sub(*t0));
                    last = last.max(t);
                }
            }
        }
    }
    latencies.sort_unstable();
    let seconds = f64::from(last.saturating_sub(first_sent)).max(1.0) / 1e6;
    Fanout {
        messages: sent.len() as u64,
        deliveries: latencies.len() as u64,
        expected: sent.len() as u64 * subscribers,
        per_second: latencies.len() as f64 / seconds,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        ..Fanout::default()
    }
}

/// The hub: `n` subscribers (as READER) over `connections` connections; the publisher
/// publishes CLEAR submissions at `rate` for `duration`.
pub async fn hub(
    hub: &BenchHub,
    n: usize,
    connections: usize,
    rate: Rate,
    duration: Duration,
) -> anyhow::Result<Fanout> {
    let payloads = clear_payloads()?;
    let epoch = Instant::now();
    let stop_at = Arc::new(AtomicU64::new(u64::MAX));
    let deadline = epoch + duration * 3 + Duration::from_secs(30);
    let tasks = subscribers(
        hub,
        hub.hub.addr,
        n,
        connections,
        epoch,
        stop_at.clone(),
        deadline,
    )
    .await?;
    let mut publishers = Vec::new();
    for _ in 0..4 {
        publishers.push(HubClient::new(hub.channel(PUBLISHER).await?));
    }
    let publish = move |mut client: HubClient<_>, content: pb::SubmissionContent| async move {
        let t0 = micros(epoch);
        let r = client
            .publish(pb::PublishRequest {
                content: Some(content),
                idempotency_key: String::new(),
                ..Default::default()
            })
            .await
            .ok()?;
        Some((r.into_inner().sequence, t0, micros(epoch) - t0))
    };
    let start = Instant::now();
    let cpu_before = super::cpu::snapshot();
    // (sequence, send time, time to the acknowledgement)
    let mut sent: Vec<(u64, u32, u32)> = Vec::new();
    match rate {
        Rate::PerSecond(r) => {
            let total = (r as f64 * duration.as_secs_f64()) as u64;
            let mut handles = Vec::new();
            for i in 0..total {
                tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / r as f64))
                    .await;
                let client = publishers[i as usize % publishers.len()].clone();
                let content = payloads[i as usize % payloads.len()].clone();
                handles.push(tokio::spawn(publish(client, content)));
            }
            for h in handles {
                if let Ok(Some(s)) = h.await {
                    sent.push(s);
                }
            }
        }
        Rate::Max => {
            let end = start + duration;
            let mut handles = Vec::new();
            for w in 0..64usize {
                let client = publishers[w % publishers.len()].clone();
                let payloads = payloads.clone();
                handles.push(tokio::spawn(async move {
                    let mut out = Vec::new();
                    let mut i = w;
                    while Instant::now() < end {
                        let content = payloads[i % payloads.len()].clone();
                        if let Some(s) = publish(client.clone(), content).await {
                            out.push(s);
                        }
                        i += 64;
                    }
                    out
                }));
            }
            for h in handles {
                sent.extend(h.await.unwrap_or_default());
            }
        }
    }
    let cpu_after = super::cpu::snapshot();
    // A last message after the stop mark ends every subscriber.
    let last = sent.iter().map(|s| s.0).max().unwrap_or(0);
    stop_at.store(last, Ordering::Release);
    publish(publishers[0].clone(), payloads[0].clone()).await;
    let mut acks: Vec<u32> = sent.iter().map(|s| s.2).collect();
    acks.sort_unstable();
    let sent = sent.into_iter().map(|(seq, t0, _)| (seq, t0)).collect();
    let counted = tally(sent, tasks, n as u64).await;
    Ok(Fanout {
        ack_p50_us: percentile(&acks, 0.50),
        ack_p99_us: percentile(&acks, 0.99),
        cpu: cpu_before.until(&cpu_after, counted.deliveries),
        ..counted
    })
}

/// The baseline: the same subscribers and message sizes on the baseline server, whose
/// "publish" is putting a pre-encoded message into the broadcast channel.
pub async fn baseline(
    hub: &BenchHub,
    n: usize,
    connections: usize,
    rate: Rate,
    duration: Duration,
) -> anyhow::Result<Fanout> {
    // Encoded `FeedChange` fields of the same submissions the hub publishes.
    let changes: Vec<Vec<u8>> = clear_payloads()?
        .into_iter()
        .map(|content| {
            let submission = pb::Submission {
                id: uuid::Uuid::new_v4().to_string(),
                revision: 1,
                publisher: PUBLISHER.into(),
                state: "EE".into(),
                status: "active".into(),
                content: Some(content),
                ..Default::default()
            };
            FeedEventFields {
                sequence: 0,
                event: Some(Event::Change(Box::new(pb::FeedChange {
                    action: "published".into(),
                    submission: Some(submission),
                    ..Default::default()
                }))),
            }
            .encode_to_vec()
        })
        .collect();
    // A fresh server per round: subscriptions of an earlier round would count as receivers.
    let server = Baseline::start(&hub.dir).await?;
    let epoch = Instant::now();
    let stop_at = Arc::new(AtomicU64::new(u64::MAX));
    let deadline = epoch + duration * 3 + Duration::from_secs(30);
    let tasks = subscribers(
        hub,
        server.addr,
        n,
        connections,
        epoch,
        stop_at.clone(),
        deadline,
    )
    .await?;
    // Every subscriber has its receiver once its task runs; wait for that.
    while server.tx.receiver_count() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    let cpu_before = super::cpu::snapshot();
    let mut sent = Vec::new();
    let mut seq = 1u64;
    match rate {
        Rate::PerSecond(r) => {
            let total = (r as f64 * duration.as_secs_f64()) as u64;
            for i in 0..total {
                tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / r as f64))
                    .await;
                sent.push((seq, micros(epoch)));
                server.send(seq, &changes[i as usize % changes.len()]);
                seq += 1;
            }
        }
        Rate::Max => {
            let end = start + duration;
            while Instant::now() < end {
                // Stay within half the buffer of the slowest subscriber, as a publisher
                // waiting for its acknowledgement would.
                while server.tx.len() >= baseline::BUFFER / 2 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                for _ in 0..64 {
                    sent.push((seq, micros(epoch)));
                    server.send(seq, &changes[seq as usize % changes.len()]);
                    seq += 1;
                }
                tokio::task::yield_now().await;
            }
        }
    }
    let cpu_after = super::cpu::snapshot();
    stop_at.store(seq - 1, Ordering::Release);
    server.send(seq, &changes[0]);
    let mut result = tally(sent, tasks, n as u64).await;
    result.cpu = cpu_before.until(&cpu_after, result.deliveries);
    server.stop();
    Ok(result)
}
