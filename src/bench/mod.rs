//! The load generator behind `cbm-hub bench`: a real hub over mTLS on loopback, measured against
//! a baseline taken in the same run on the same connections, because the machines are shared
//! and noisy and only ratios compare across runs.
pub mod baseline;
pub mod cpu;
pub mod fanout;
pub mod floor;
pub mod handshake;
pub mod idle;
pub mod large;
pub mod raw;
pub mod restart;
pub mod setup;
pub mod stored;

use std::time::{Duration, Instant};

use tonic::transport::Channel;

use crate::domain::budget::MESSAGE_CEILING;
use crate::pb::{self, hub_client::HubClient};
use setup::{BenchHub, PUBLISHER, READER};

/// The example submissions of every kind, as realistic payloads.
const EXAMPLES: &[&str] = &[
    include_str!("../../examples/policy_document.yaml"),
    include_str!("../../examples/terminology_list.yaml"),
    include_str!("../../examples/critical_infrastructure_approach.yaml"),
    include_str!("../../examples/point_of_contact.yaml"),
    include_str!("../../examples/incident_severity_schema.yaml"),
];

/// Submissions of 1 to 4 KiB of every kind; half TLP:CLEAR, half TLP:AMBER addressed to the
/// publisher only (so a reader's replay filters half of the feed out).
pub fn payloads() -> anyhow::Result<Vec<pb::SubmissionContent>> {
    let mut out = Vec::new();
    for (i, text) in EXAMPLES.iter().cycle().take(8).enumerate() {
        let mut c: crate::pb::SubmissionContent =
            crate::cli::content_from_yaml(text).map_err(anyhow::Error::msg)?;
        c.community.clear();
        c.recipients.clear();
        if i % 2 == 0 {
            c.tlp = "TLP:CLEAR".into();
        } else {
            c.tlp = "TLP:AMBER".into();
            c.recipients = vec![PUBLISHER.into()];
        }
        let size = 1024 * (1 + i % 4);
        let current = prost::Message::encoded_len(&c);
        if current < size {
            c.summary = "s".repeat((size - current).min(3900));
        }
        out.push(c);
    }
    Ok(out)
}

/// Latency percentiles of a sorted sample, in microseconds.
pub(crate) fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// One measured round of unary calls.
#[derive(Debug, Clone, Default)]
pub struct Round {
    pub calls: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_us: u32,
    pub p99_us: u32,
    pub p999_us: u32,
    /// CPU the round used (client and server: they share the process).
    pub cpu: cpu::Used,
}

#[derive(Clone, Copy)]
enum Call {
    NoOp,
    Publish,
}

async fn round(
    channels: &[Channel],
    in_flight: usize,
    duration: Duration,
    call: Call,
    payloads: &[pb::SubmissionContent],
) -> Round {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let cpu_before = cpu::snapshot();
    let mut tasks = Vec::new();
    for t in 0..in_flight {
        let mut client = HubClient::new(channels[t % channels.len()].clone())
            .max_decoding_message_size(MESSAGE_CEILING);
        let payloads = payloads.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut i = t;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let ok = match call {
                    Call::NoOp => client.who_am_i(pb::WhoAmIRequest {}).await.is_ok(),
                    Call::Publish => {
                        let req = pb::PublishRequest {
                            content: Some(payloads[i % payloads.len()].clone()),
                            idempotency_key: String::new(),
                            ..Default::default()
                        };
                        client.publish(req).await.is_ok()
                    }
                };
                i += in_flight;
                if ok {
                    lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((lat, e)) = task.await {
            all.extend(lat);
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_before.until(&cpu::snapshot(), all.len() as u64);
    all.sort_unstable();
    Round {
        calls: all.len() as u64,
        errors,
        per_second: all.len() as f64 / elapsed,
        p50_us: percentile(&all, 0.50),
        p99_us: percentile(&all, 0.99),
        p999_us: percentile(&all, 0.999),
        cpu,
    }
}

/// Durable publish against the no-op baseline (WhoAmI: authentication only, no storage), over
/// the same 4 connections, at each number of requests in flight.
pub async fn publish(
    hub: &BenchHub,
    levels: &[usize],
    duration: Duration,
) -> anyhow::Result<Vec<(usize, Round, Round)>> {
    let payloads = payloads()?;
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(hub.channel(PUBLISHER).await?);
    }
    let mut out = Vec::new();
    for &n in levels {
        let conns = &channels[..n.min(channels.len())];
        let noop = round(conns, n, duration, Call::NoOp, &payloads).await;
        let publish = round(conns, n, duration, Call::Publish, &payloads).await;
        out.push((n, noop, publish));
    }
    Ok(out)
}

/// Replay: a reader resuming from sequence 0 over everything stored, with half of the feed
/// outside its audience. Returns (events scanned, events delivered, seconds).
pub async fn replay(hub: &BenchHub) -> anyhow::Result<(u64, u64, f64)> {
    // A last change the reader sees, so that the end of the replay is a delivery, not a wait
    // for the next heartbeat.
    let mut sentinel = payloads()?.remove(0);
    sentinel.tlp = "TLP:CLEAR".into();
    sentinel.recipients.clear();
    HubClient::new(hub.channel(PUBLISHER).await?)
        .publish(pb::PublishRequest {
            content: Some(sentinel),
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await?;
    let channel = hub.channel(READER).await?;
    let head = hub.hub.store.head();
    let started = Instant::now();
    let req = pb::SubscribeRequest {
        after_sequence: 0,
        heartbeat_seconds: 1,
        ..Default::default()
    };
    // Raw bytes: the client reads each message's sequence, not the whole message, so that the
    // shared cores go to the hub (a real client's decoding is its own cost).
    let mut stream = raw::subscribe(channel, req).await?;
    let mut delivered = 0u64;
    while let Some(msg) = stream.message().await? {
        let Some((seq, change)) = raw::sequence_of(&msg) else {
            anyhow::bail!("a feed message without a sequence");
        };
        delivered += u64::from(change);
        if seq >= head {
            break;
        }
    }
    Ok((head, delivered, started.elapsed().as_secs_f64()))
}

/// The replay's baseline: a raw scan of the events tree (checksums checked, nothing decoded).
/// Returns (events read, seconds).
pub async fn scan_baseline(hub: &BenchHub) -> anyhow::Result<(u64, f64)> {
    let store = hub.hub.store.clone();
    let started = Instant::now();
    let n = tokio::task::spawn_blocking(move || store.scan_events()).await??;
    Ok((n, started.elapsed().as_secs_f64()))
}

/// Fills the store with `n` publications at 64 in flight.
pub async fn fill(hub: &BenchHub, n: u64) -> anyhow::Result<()> {
    let payloads = payloads()?;
    let channel = hub.channel(PUBLISHER).await?;
    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let mut client = HubClient::new(channel.clone());
        let payloads = payloads.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < n {
                let req = pb::PublishRequest {
                    content: Some(payloads[i as usize % payloads.len()].clone()),
                    idempotency_key: String::new(),
                    ..Default::default()
                };
                client.publish(req).await?;
                i += 64;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Resident memory of this process, in KiB.
pub fn rss_kib() -> u64 {
    setup::rss_kib_of("/proc/self/status")
}
