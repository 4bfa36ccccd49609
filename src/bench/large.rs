//! Memory under a reader of large items. The hub runs in a child process (its RSS is its own);
//! it stores items of the largest size it accepts, then one reader replays them from sequence
//! 0, another lists them page by page, and a third opens a replay and stops reading, while the
//! hub's resident memory is sampled. The same with as many small items, in the same run, is the
//! baseline: what the reader's share of memory would be if items were small.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use prost::Message;
use sha2::{Digest, Sha256};

use super::{
    raw,
    setup::{ChildHub, PUBLISHER, READER},
};
use crate::{
    domain::budget::{Budget, MESSAGE_CEILING},
    pb::{self, hub_client::HubClient, submission_content::Body},
};

/// One round: items of one size, published, then read three ways.
#[derive(Debug, Clone, Default)]
pub struct Large {
    pub items: u64,
    /// Encoded content of each item.
    pub item_bytes: usize,
    /// Hub RSS once everything is stored and the hub has settled.
    pub rss_stored_kib: u64,
    /// Peak hub RSS while a reader replays everything from 0 (reading as fast as it can).
    pub rss_replay_kib: u64,
    /// Peak hub RSS while a reader lists everything, page by page.
    pub rss_list_kib: u64,
    /// Peak hub RSS while a reader that opened a replay from 0 reads nothing.
    pub rss_stalled_kib: u64,
    /// Pages the listing took.
    pub pages: u64,
    pub replay_secs: f64,
}

/// Content of exactly `bytes` encoded, as a publisher would send a large item: attachments (up
/// to the 2 MiB they may hold) and a terminology list carrying the rest in its definitions.
pub fn content(bytes: usize, seed: usize) -> pb::SubmissionContent {
    let attachment = |n: usize, fill: usize| {
        let data: Vec<u8> = (0..n).map(|i| ((i + fill) % 251) as u8).collect();
        pb::Attachment {
            name: format!("annex-{fill}.bin"),
            media_type: "application/octet-stream".into(),
            sha256: hex::encode(Sha256::digest(&data)),
            content: data.into(),
        }
    };
    let attached = bytes.saturating_sub(64 * 1024).min(2 * 1024 * 1024) / 2;
    let mut c = pb::SubmissionContent {
        title: format!("Item {seed}"),
        language: "en".into(),
        tlp: "TLP:CLEAR".into(),
        cbm_refs: vec!["OSCE-CBM-9".into()],
        attachments: if attached > 0 {
            vec![attachment(attached, seed), attachment(attached, seed + 1)]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    // Enough terms that no definition exceeds the 4,000 characters allowed.
    let terms = (bytes / 2048).clamp(1, 2000);
    let mut pad = 0usize;
    // Length prefixes grow with what they count: correct the padding until it lands.
    for _ in 0..16 {
        let body = (0..terms)
            .map(|i| pb::Term {
                term: format!("term {i}"),
                definition: "d".repeat(1 + pad / terms + usize::from(i < pad % terms)),
                ..Default::default()
            })
            .collect();
        c.body = Some(Body::TerminologyList(pb::TerminologyList { terms: body }));
        let len = c.encoded_len();
        if len == bytes || (len > bytes && pad == 0) {
            break;
        }
        if len > bytes {
            pad -= (len - bytes).min(pad);
        } else {
            pad += bytes - len;
        }
    }
    c
}

/// Samples the child's RSS until told to stop; returns the peak seen.
fn sampler(child: &ChildHub) -> (Arc<AtomicBool>, tokio::task::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(child.rss_kib()));
    let status = child.status_path();
    let (s, p) = (stop.clone(), peak.clone());
    let task = tokio::spawn(async move {
        while !s.load(Ordering::Relaxed) {
            p.fetch_max(super::setup::rss_kib_of(&status), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        p.fetch_max(super::setup::rss_kib_of(&status), Ordering::Relaxed);
        p.load(Ordering::Relaxed)
    });
    (stop, task)
}

async fn peak_while<T>(
    child: &ChildHub,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(u64, T)> {
    let (stop, task) = sampler(child);
    let out = work.await;
    stop.store(true, Ordering::Relaxed);
    let peak = task.await?;
    Ok((peak, out?))
}

/// Publishes `items` items of `bytes` each into a fresh child hub whose sled page cache is
/// `cache_mb` MiB, then measures.
pub async fn round(items: u64, bytes: usize, cache_mb: u64, quick: bool) -> anyhow::Result<Large> {
    let child = ChildHub::start_with(cache_mb).await?;
    let channel = child.target.channel(PUBLISHER).await?;
    let mut publisher = HubClient::new(channel).max_decoding_message_size(MESSAGE_CEILING);
    for i in 0..items {
        publisher
            .publish(pb::PublishRequest {
                content: Some(content(bytes, i as usize)),
                idempotency_key: String::new(),
                ..Default::default()
            })
            .await?;
    }
    let settle = Duration::from_millis(if quick { 200 } else { 1500 });
    tokio::time::sleep(settle).await;
    let rss_stored_kib = child.rss_kib();

    let started = Instant::now();
    let (rss_replay_kib, ()) = peak_while(&child, async {
        let channel = child.target.channel(READER).await?;
        let req = pb::SubscribeRequest {
            after_sequence: 0,
            heartbeat_seconds: 300,
            ..Default::default()
        };
        let mut stream = raw::subscribe(channel, req).await?;
        while let Some(msg) = stream.message().await? {
            if raw::sequence_of(&msg).is_some_and(|(seq, _)| seq >= items) {
                break;
            }
        }
        Ok(())
    })
    .await?;
    let replay_secs = started.elapsed().as_secs_f64();

    let (rss_list_kib, pages) = peak_while(&child, async {
        let channel = child.target.channel(READER).await?;
        let mut reader = HubClient::new(channel).max_decoding_message_size(MESSAGE_CEILING);
        let mut req = pb::ListRequest {
            page_size: 500,
            ..Default::default()
        };
        let mut pages = 0u64;
        loop {
            let page = reader.list(req.clone()).await?.into_inner();
            pages += 1;
            if page.next_page_token.is_empty() {
                return Ok(pages);
            }
            req.page_token = page.next_page_token;
        }
    })
    .await?;

    // A reader that opens a replay from 0 and reads nothing: what the hub holds for it is
    // what its buffers hold.
    let (rss_stalled_kib, ()) = peak_while(&child, async {
        let channel = child.target.channel(READER).await?;
        let req = pb::SubscribeRequest {
            after_sequence: 0,
            heartbeat_seconds: 300,
            ..Default::default()
        };
        let stream = raw::subscribe(channel, req).await?;
        tokio::time::sleep(settle * 2).await;
        drop(stream);
        Ok(())
    })
    .await?;
    child.stop().await?;
    Ok(Large {
        items,
        item_bytes: bytes,
        rss_stored_kib,
        rss_replay_kib,
        rss_list_kib,
        rss_stalled_kib,
        pages,
        replay_secs,
    })
}

/// The largest content the benchmark hub accepts (its default message limit).
pub fn largest() -> usize {
    Budget::default().content()
}
