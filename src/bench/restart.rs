//! Restart, memory and disk: the real `cbm-hub serve` started on a data directory of many
//! events ([`super::stored`]), timed from spawning the process to a SERVING health check over
//! mTLS, after a clean stop (sealed), after a SIGKILL, and with the full check at start that
//! every start ran before seals (the checked mark forgotten); its resident memory at serving
//! and once the background check has read everything; the directory's size on disk.
use std::time::Duration;

use super::{
    setup::PUBLISHER,
    stored::{self, Served, Stored},
};
use crate::{
    pb::{self, hub_client::HubClient},
    store::{Store, StoreOptions},
};

/// One start of `serve` on a stored directory.
#[derive(Debug, Clone)]
pub struct Start {
    /// What preceded it.
    pub after: String,
    /// How the start was checked (`sealed`, `checked`, `full`), events and audit entries read.
    pub check: (&'static str, u64, u64),
    /// From spawning the process to SERVING.
    pub secs: f64,
    pub rss_kib: u64,
    /// Seconds from serving until the background check had read everything, and the RSS then
    /// (measured for the clean start only).
    pub background: Option<(f64, u64)>,
}

/// Publishes `n` generated items over mTLS at 64 in flight.
async fn publish(served: &Served, n: u64) -> anyhow::Result<()> {
    let channel = served.target.channel(PUBLISHER).await?;
    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let mut client = HubClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < n {
                let content = stored::content(10_000_000_000 + i)?;
                client
                    .publish(pb::PublishRequest {
                        content: Some(content),
                        idempotency_key: String::new(),
                        ..Default::default()
                    })
                    .await?;
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

/// Starts `serve` on `stored`: after its clean stop (twice), after a SIGKILL that followed
/// `killed_tail` publishes, and with every mark forgotten (the full check at start). With
/// `background`, the clean start also waits for the background check and reads the RSS then.
pub async fn starts(
    stored: &Stored,
    killed_tail: u64,
    background: bool,
) -> anyhow::Result<Vec<Start>> {
    let mut out = Vec::new();
    let served = Served::start(stored).await?;
    let mut clean = Start {
        after: "clean stop".into(),
        check: served.start_check().await?,
        secs: served.secs,
        rss_kib: served.rss_kib(),
        background: None,
    };
    if background {
        let secs = served.background_checked().await?;
        clean.background = Some((secs, served.rss_kib()));
    }
    out.push(clean);
    // The first start after the generation also recovers what sled wrote since its last
    // snapshot; a second clean stop and start shows the start without that.
    served.stop().await?;
    let served = Served::start(stored).await?;
    out.push(Start {
        after: "clean stop, again".into(),
        check: served.start_check().await?,
        secs: served.secs,
        rss_kib: served.rss_kib(),
        background: None,
    });
    publish(&served, killed_tail).await?;
    served.kill().await?;

    let served = Served::start(stored).await?;
    out.push(Start {
        after: format!("SIGKILL, {killed_tail} new"),
        check: served.start_check().await?,
        secs: served.secs,
        rss_kib: served.rss_kib(),
        background: None,
    });
    served.stop().await?;

    // As every start was before seals: no seal, no checked mark.
    let data = stored.data.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let options = StoreOptions {
            check_on_start: false,
            min_free_bytes: 0,
            cache_capacity: 16 * 1024 * 1024,
            ..StoreOptions::default()
        };
        let store = Store::open(&data, options)?;
        store.forget_marks()?;
        store.close_and_release()?;
        Ok(())
    })
    .await??;
    let served = Served::start(stored).await?;
    out.push(Start {
        after: "no seal or mark (before)".into(),
        check: served.start_check().await?,
        secs: served.secs,
        rss_kib: served.rss_kib(),
        background: None,
    });
    served.stop().await?;
    Ok(out)
}

/// The directory's size after a clean stop: (allocated bytes, apparent bytes).
pub fn disk(stored: &Stored) -> anyhow::Result<(u64, u64)> {
    stored::du(&stored.data)
}

/// Gives the machine a moment between measurements (the stop's writes settle).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// The `restart`, `disk` and `memory` sections over data directories of each size in
/// `sizes`: generates each, measures, prints, removes it.
pub async fn sections(
    sizes: &[u64],
    killed_tail: u64,
    cache_mb: u64,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut disks = Vec::new();
    let mut memory = Vec::new();
    for &n in sizes {
        let stored = stored::generate(n, cache_mb).await?;
        println!();
        println!(
            "generated {n} events of {}-byte content in {:.1} s ({:.0}/s) through the store's writer with fsync off: a bulk path used only by the benchmark to create the data directory, closed cleanly",
            stored::CONTENT_BYTES,
            stored.generate_secs,
            n as f64 / stored.generate_secs.max(1e-9)
        );
        if wanted("disk") {
            disks.push((n, disk(&stored)?));
        }
        if !(wanted("restart") || wanted("memory")) {
            continue;
        }
        settle().await;
        let starts = starts(&stored, killed_tail, wanted("memory")).await?;
        if wanted("restart") {
            println!(
                "restart with {n} stored: `cbm-hub serve` in a child process, from spawning it to a SERVING health check over mTLS (sled cache {cache_mb} MiB)"
            );
            println!(
                "{:>26}  {:>7}  {:>11}  {:>10}  {:>10}  {:>14}",
                "after", "check", "events read", "audit read", "to serving", "RSS at serving"
            );
            for s in &starts {
                println!(
                    "{:>26}  {:>7}  {:>11}  {:>10}  {:>8.3} s  {:>10.1} MiB",
                    s.after,
                    s.check.0,
                    s.check.1,
                    s.check.2,
                    s.secs,
                    mib(s.rss_kib)
                );
            }
        }
        if let Some((secs, rss)) = starts[0].background {
            memory.push((n, starts[0].rss_kib, secs, rss));
        }
    }
    if wanted("memory") && !memory.is_empty() {
        println!();
        println!(
            "memory: RSS of `cbm-hub serve` after a clean-stop start, at serving and once the background check (default pace, store.background_check_mb_per_s = 32) has read everything; sled cache {cache_mb} MiB (store.cache_mb)"
        );
        println!(
            "{:>9}  {:>14}  {:>18}  {:>20}",
            "events", "RSS at serving", "background check s", "RSS after the check"
        );
        for (n, at_start, secs, after) in memory {
            println!(
                "{n:>9}  {:>10.1} MiB  {secs:>18.1}  {:>16.1} MiB",
                mib(at_start),
                mib(after)
            );
        }
    }
    if wanted("disk") && !disks.is_empty() {
        println!();
        println!(
            "disk: the data directory after a clean stop (du: allocated blocks; apparent: file lengths), per event against its {}-byte content",
            stored::CONTENT_BYTES
        );
        println!(
            "{:>9}  {:>12}  {:>12}  {:>14}  {:>18}  {:>6}",
            "events", "du MiB", "apparent MiB", "du bytes/event", "apparent bytes/ev", "ratio"
        );
        for (n, (allocated, apparent)) in disks {
            let per = allocated as f64 / n.max(1) as f64;
            println!(
                "{n:>9}  {:>12.1}  {:>12.1}  {per:>14.0}  {:>18.0}  {:>6.2}",
                allocated as f64 / 1048576.0,
                apparent as f64 / 1048576.0,
                apparent as f64 / n.max(1) as f64,
                per / stored::CONTENT_BYTES as f64
            );
        }
    }
    Ok(())
}
