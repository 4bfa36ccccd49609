//! `cbm-hub bench`: run the load generator and print its table.
use std::time::Duration;

use clap::Args;

use crate::bench::{self, setup::BenchHub};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Seconds per measured round.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Stored events for the replay measurement.
    #[arg(long, default_value_t = 100_000)]
    pub replay_events: u64,
    /// A short smoke run (CI): 1 s rounds, 2,000 replay events.
    #[arg(long)]
    pub quick: bool,
}

pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    let (seconds, events) = if a.quick {
        (1, 2_000)
    } else {
        (a.seconds, a.replay_events)
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "cbm-hub bench: {cores} cores, {seconds} s rounds, client and server in one process over mTLS on 127.0.0.1"
    );
    let hub = BenchHub::start().await?;
    println!();
    println!(
        "durable publish (1-4 KiB, mixed kinds) vs no-op RPC baseline (WhoAmI), same 4 connections"
    );
    println!(
        "{:>9}  {:>10}  {:>10}  {:>6}  {:>8}  {:>8}  {:>9}  {:>8}",
        "in flight", "no-op/s", "publish/s", "ratio", "p50 ms", "p99 ms", "p99.9 ms", "no-op p50"
    );
    for (n, noop, publish) in
        bench::publish(&hub, &[1, 16, 64, 256], Duration::from_secs(seconds)).await?
    {
        println!(
            "{n:>9}  {:>10.0}  {:>10.0}  {:>6.2}  {:>8.2}  {:>8.2}  {:>9.2}  {:>8.2}{}",
            noop.per_second,
            publish.per_second,
            publish.per_second / noop.per_second.max(1.0),
            publish.p50_us as f64 / 1000.0,
            publish.p99_us as f64 / 1000.0,
            publish.p999_us as f64 / 1000.0,
            noop.p50_us as f64 / 1000.0,
            if publish.errors + noop.errors > 0 {
                format!("  ({} errors)", publish.errors + noop.errors)
            } else {
                String::new()
            },
        );
    }
    let stored = hub.hub.store.head();
    if stored < events {
        bench::fill(&hub, events - stored).await?;
    }
    let rss_before = bench::rss_kib();
    let (scanned, delivered, secs) = bench::replay(&hub).await?;
    println!();
    println!("replay from sequence 0, TLP filtering on (the reader may see half of the feed)");
    println!(
        "{scanned} events in {secs:.2} s: {:.0} events/s examined, {:.0} delivered/s ({delivered} delivered); RSS {} -> {} MiB",
        scanned as f64 / secs,
        delivered as f64 / secs,
        rss_before / 1024,
        bench::rss_kib() / 1024
    );
    hub.stop().await;
    Ok(())
}
