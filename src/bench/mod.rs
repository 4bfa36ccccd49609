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

#[derive(Clone)]
enum Call {
    NoOp,
    /// Publishes of these requests, in turn.
    Publish(std::sync::Arc<Vec<pb::PublishRequest>>),
}

async fn round(channels: &[Channel], in_flight: usize, duration: Duration, call: &Call) -> Round {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let cpu_before = cpu::snapshot();
    let mut tasks = Vec::new();
    for t in 0..in_flight {
        let mut client = HubClient::new(channels[t % channels.len()].clone())
            .max_decoding_message_size(MESSAGE_CEILING);
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut i = t;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let ok = match &call {
                    Call::NoOp => client.who_am_i(pb::WhoAmIRequest {}).await.is_ok(),
                    Call::Publish(requests) => {
                        let req = requests[i % requests.len()].clone();
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
    let plain = Call::Publish(std::sync::Arc::new(plain_requests()?));
    let channels = publisher_channels(hub).await?;
    let mut out = Vec::new();
    for &n in levels {
        let conns = &channels[..n.min(channels.len())];
        let noop = round(conns, n, duration, &Call::NoOp).await;
        let publish = round(conns, n, duration, &plain).await;
        out.push((n, noop, publish));
    }
    Ok(out)
}

/// Four connections as the publisher (HTTP/2 multiplexes the calls in flight over them).
async fn publisher_channels(hub: &BenchHub) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(hub.channel(PUBLISHER).await?);
    }
    Ok(channels)
}

/// Unsigned publications of [`payloads`], no receipt asked.
fn plain_requests() -> anyhow::Result<Vec<pb::PublishRequest>> {
    Ok(payloads()?
        .into_iter()
        .map(|c| pb::PublishRequest {
            content: Some(c),
            ..Default::default()
        })
        .collect())
}

/// One level of the provenance comparison: the same payloads published plain, with a receipt
/// asked (`want_receipt`), and signed by the publisher's mTLS key (COSE_Sign1, ES256, which
/// the hub checks at the door and answers with a receipt).
pub struct SignedRounds {
    pub in_flight: usize,
    pub plain: Round,
    pub receipt: Round,
    pub signed: Round,
}

/// Publishing with provenance against plain publishing, in the same run on the same
/// connections. Signatures are made before the rounds (signing is the client's cost, not the
/// hub's); a publication's claim (`publish 1`) names no id, so one signature per payload
/// serves every round.
pub async fn signed(
    hub: &BenchHub,
    levels: &[usize],
    duration: Duration,
) -> anyhow::Result<Vec<SignedRounds>> {
    let key = publisher_signing_key(hub)?;
    let plain = plain_requests()?;
    let receipt: Vec<_> = plain
        .iter()
        .map(|r| pb::PublishRequest {
            want_receipt: true,
            ..r.clone()
        })
        .collect();
    let claim = crate::provenance::statement::change_claim("", 1);
    let mut signed = Vec::new();
    for r in &plain {
        let bytes = prost::Message::encode_to_vec(r.content.as_ref().expect("content"));
        let signature = key
            .sign_change(&bytes, Some(&claim))
            .map_err(anyhow::Error::msg)?;
        signed.push(pb::PublishRequest {
            signature: signature.into(),
            ..r.clone()
        });
    }
    let (plain, receipt, signed) = (
        Call::Publish(std::sync::Arc::new(plain)),
        Call::Publish(std::sync::Arc::new(receipt)),
        Call::Publish(std::sync::Arc::new(signed)),
    );
    let channels = publisher_channels(hub).await?;
    let mut out = Vec::new();
    for &n in levels {
        let conns = &channels[..n.min(channels.len())];
        out.push(SignedRounds {
            in_flight: n,
            plain: round(conns, n, duration, &plain).await,
            receipt: round(conns, n, duration, &receipt).await,
            signed: round(conns, n, duration, &signed).await,
        });
    }
    Ok(out)
}

/// The publisher's mTLS key and certificate as a COSE signing key (bound to it by its
/// certificate hash, as any member's own key is).
fn publisher_signing_key(hub: &BenchHub) -> anyhow::Result<crate::provenance::cose::SigningKey> {
    use rustls_pki_types::pem::PemObject;
    let (_, cert_pem, key_pem) = hub
        .target
        .certs
        .iter()
        .find(|(id, _, _)| id == PUBLISHER)
        .ok_or_else(|| anyhow::anyhow!("no publisher certificate"))?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let chain = rustls_pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()?;
    crate::provenance::cose::SigningKey::new(&key, chain).map_err(anyhow::Error::msg)
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
