//! `cbm-hub bench`: run the load generator and print its tables.
use std::time::Duration;

use clap::Args;

use crate::bench::{
    self, fanout,
    fanout::{Fanout, Rate},
    handshake, idle,
    setup::BenchHub,
};

/// Sections of the benchmark, in the order they run.
const SECTIONS: &[&str] = &[
    "floor",
    "publish",
    "signed",
    "fanout",
    "handshake",
    "replay",
    "idle",
    "large",
    "restart",
    "disk",
    "memory",
];

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Seconds per measured round.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Stored events for the replay measurement.
    #[arg(long, default_value_t = 100_000)]
    pub replay_events: u64,
    /// Items of the largest accepted size for the memory measurement under a reader of large
    /// items (and as many small items for its baseline).
    #[arg(long, default_value_t = 64)]
    pub large_items: u64,
    /// A short smoke run (CI, a few seconds): tiny rounds, subscriber counts and event counts.
    #[arg(long)]
    pub quick: bool,
    /// Stored events for the restart, disk and memory sections: one data directory per size
    /// (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [100_000u64, 1_000_000])]
    pub events: Vec<u64>,
    /// Run only these sections (comma-separated): floor, publish, signed, fanout, handshake,
    /// replay, idle, large, restart, disk, memory.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// sled page cache of the benchmark hubs, in MiB (the hub's default: 128). A small cache
    /// leaves the buffers' share of memory visible in the `large` section.
    #[arg(long, default_value_t = bench::setup::CACHE_MB)]
    pub cache_mb: u64,
    /// Internal: serve a benchmark hub for a parent `cbm-hub bench` (idle-memory measurement).
    #[arg(long, hide = true)]
    pub serve_child: bool,
}

/// Sizes of one run.
struct Plan {
    round: Duration,
    levels: Vec<usize>,
    replay_events: u64,
    /// (subscribers, connections, fixed publish rate per second)
    fanout: Vec<(usize, usize, u64)>,
    idle_shared: (usize, usize),
    idle_own: usize,
    handshake_clients: usize,
    large_items: u64,
    /// Data directory sizes of the restart, disk and memory sections.
    events: Vec<u64>,
    /// Publishes between the start and the SIGKILL of the restart section.
    killed_tail: u64,
}

impl Plan {
    fn of(a: &BenchArgs) -> Plan {
        if a.quick {
            Plan {
                round: Duration::from_millis(400),
                levels: vec![1, 16],
                replay_events: 500,
                fanout: vec![(10, 10, 200)],
                idle_shared: (200, 4),
                idle_own: 20,
                handshake_clients: 4,
                large_items: 3,
                events: vec![2_000],
                killed_tail: 50,
            }
        } else {
            Plan {
                round: Duration::from_secs(a.seconds),
                levels: vec![1, 16, 64, 256],
                replay_events: a.replay_events,
                // 100,000 deliveries/s at the fixed rate in both cases; 100 subscribers on their
                // own connections, 1,000 on 100 connections (10 streams each).
                fanout: vec![(100, 100, 1_000), (1_000, 100, 100)],
                idle_shared: (10_000, 16),
                idle_own: 1_000,
                handshake_clients: 8,
                large_items: a.large_items,
                events: a.events.clone(),
                killed_tail: 1_000,
            }
        }
    }
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    if a.serve_child {
        return bench::setup::serve_child(a.cache_mb).await;
    }
    for s in &a.only {
        if !SECTIONS.contains(&s.as_str()) {
            anyhow::bail!("--only: unknown section {s:?}; the sections are {SECTIONS:?}");
        }
    }
    let wanted = |s: &str| a.only.is_empty() || a.only.iter().any(|o| o == s);
    let plan = Plan::of(&a);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    println!("command: {command}");
    println!(
        "machine: {cores} cores; client and server share them, over mTLS on 127.0.0.1; rounds of {:.1} s",
        plan.round.as_secs_f64()
    );
    if wanted("floor") {
        floor_section(&plan, a.cache_mb).await?;
    }
    if ["publish", "signed", "fanout", "handshake", "replay"]
        .iter()
        .any(|s| wanted(s))
    {
        in_process(&a, &plan, &wanted).await?;
    }
    if wanted("idle") {
        println!();
        println!(
            "idle subscriptions: server RSS (hub in a child process), from /proc/<pid>/status"
        );
        println!(
            "{:>8}  {:>11}  {:>11}  {:>11}  {:>12}",
            "streams", "connections", "RSS before", "RSS after", "KiB/stream"
        );
        let (n, c) = plan.idle_shared;
        for r in [
            idle::shared(n, c, a.quick).await?,
            idle::own(plan.idle_own, a.quick).await?,
        ] {
            println!(
                "{:>8}  {:>11}  {:>8} MiB  {:>8} MiB  {:>12.1}",
                r.streams,
                r.connections,
                r.rss_before_kib / 1024,
                r.rss_after_kib / 1024,
                r.per_stream_kib()
            );
        }
    }
    if wanted("large") {
        large_section(&plan, a.cache_mb, a.quick).await?;
    }
    if ["restart", "disk", "memory"].iter().any(|s| wanted(s)) {
        bench::restart::sections(&plan.events, plan.killed_tail, a.cache_mb, wanted).await?;
    }
    Ok(())
}

/// What sled 0.34.7 and the disk allow, without the hub: the ceilings under its figures.
async fn floor_section(plan: &Plan, cache_mb: u64) -> anyhow::Result<()> {
    let (round, events) = (plan.round, plan.replay_events);
    let f = tokio::task::spawn_blocking(move || bench::floor::measure(round, events, cache_mb))
        .await??;
    bench::floor::print(&f, cache_mb);
    Ok(())
}

/// Memory under a reader of large items, next to the same with small items.
async fn large_section(plan: &Plan, cache_mb: u64, quick: bool) -> anyhow::Result<()> {
    use bench::large;
    println!();
    println!(
        "memory under a reader of large items: server RSS (hub in a child process, sled cache {cache_mb} MiB), peak while one reader replays everything from 0, one lists it page by page, one opens a replay and stops reading; baseline: as many small items"
    );
    println!(
        "{:>6}  {:>10}  {:>11}  {:>17}  {:>17}  {:>17}  {:>5}  {:>8}",
        "items",
        "item bytes",
        "RSS stored",
        "replay peak",
        "list peak",
        "stalled peak",
        "pages",
        "replay s"
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    for bytes in [4096, large::largest()] {
        let r = large::round(plan.large_items, bytes, cache_mb, quick).await?;
        let peak = |kib: u64| {
            format!(
                "{:.0} (+{:.0}) MiB",
                mib(kib),
                mib(kib.saturating_sub(r.rss_stored_kib))
            )
        };
        println!(
            "{:>6}  {:>10}  {:>7.0} MiB  {:>17}  {:>17}  {:>17}  {:>5}  {:>8.2}",
            r.items,
            r.item_bytes,
            mib(r.rss_stored_kib),
            peak(r.rss_replay_kib),
            peak(r.rss_list_kib),
            peak(r.rss_stalled_kib),
            r.pages,
            r.replay_secs
        );
    }
    println!(
        "(+N: above the RSS with everything stored; the hub's message limit is 4 MiB, so the large items are the largest content it accepts)"
    );
    Ok(())
}

/// What provenance costs a publish: plain, with a receipt, signed (which carries a receipt).
async fn signed(hub: &BenchHub, plan: &Plan) -> anyhow::Result<()> {
    println!();
    println!(
        "publish with provenance vs plain publish (same payloads, same 4 connections, same run): receipt = want_receipt (inclusion proof against a signed checkpoint); signed = COSE_Sign1 ES256 by the publisher's mTLS key, checked at the door, answered with a receipt"
    );
    println!(
        "{:>9}  {:>8}  {:>10}  {:>10}  {:>10}  {:>7}  {:>7}  {:>9}  {:>9}  {:>9}  {:>9}  cpu/op plain, rcpt, signed",
        "in flight",
        "",
        "plain/s",
        "receipt/s",
        "signed/s",
        "rcpt x",
        "sign x",
        "plain p50",
        "rcpt p50",
        "sign p50",
        "sign p99",
    );
    // One caller, and the level where publishing peaks (64; 16 in a quick run).
    let levels = [plan.levels[0], plan.levels[plan.levels.len().min(3) - 1]];
    for r in bench::signed(hub, &levels, plan.round).await? {
        let errors = r.plain.errors + r.receipt.errors + r.signed.errors;
        println!(
            "{:>9}  {:>8}  {:>10.0}  {:>10.0}  {:>10.0}  {:>7.2}  {:>7.2}  {:>9.2}  {:>9.2}  {:>9.2}  {:>9.2}  {:.0}, {:.0}, {:.0} us",
            r.in_flight,
            if errors == 0 {
                String::new()
            } else {
                format!("{errors} err")
            },
            r.plain.per_second,
            r.receipt.per_second,
            r.signed.per_second,
            r.receipt.per_second / r.plain.per_second.max(1.0),
            r.signed.per_second / r.plain.per_second.max(1.0),
            ms(r.plain.p50_us),
            ms(r.receipt.p50_us),
            ms(r.signed.p50_us),
            ms(r.signed.p99_us),
            r.plain.cpu.us_per_call,
            r.receipt.cpu.us_per_call,
            r.signed.cpu.us_per_call,
        );
    }
    println!(
        "(x: per second / plain per second; latencies in ms; cpu on both sides of the shared cores)"
    );
    Ok(())
}

async fn publish(hub: &BenchHub, plan: &Plan) -> anyhow::Result<()> {
    println!();
    println!(
        "durable publish (1-4 KiB, mixed kinds) vs no-op RPC baseline (WhoAmI), same 4 connections"
    );
    println!(
        "{:>9}  {:>10}  {:>10}  {:>6}  {:>8}  {:>8}  {:>9}  {:>9}  {:>12}  {:>13}  {:>7}",
        "in flight",
        "no-op/s",
        "publish/s",
        "ratio",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "no-op p50",
        "no-op cpu/op",
        "publish cpu/op",
        "writer"
    );
    for (n, noop, publish) in bench::publish(hub, &plan.levels, plan.round).await? {
        println!(
            "{n:>9}  {:>10.0}  {:>10.0}  {:>6.2}  {:>8.2}  {:>8.2}  {:>9.2}  {:>9.2}  {:>9.0} us  {:>10.0} us  {:>6.0}%{}",
            noop.per_second,
            publish.per_second,
            publish.per_second / noop.per_second.max(1.0),
            ms(publish.p50_us),
            ms(publish.p99_us),
            ms(publish.p999_us),
            ms(noop.p50_us),
            noop.cpu.us_per_call,
            publish.cpu.us_per_call,
            100.0 * publish.cpu.writer_busy,
            if publish.errors + noop.errors > 0 {
                format!("  ({} errors)", publish.errors + noop.errors)
            } else {
                String::new()
            },
        );
    }
    println!(
        "(cpu/op: CPU of the whole process, client and server, per completed call; writer: share of the round the store's writer thread was on a core)"
    );
    Ok(())
}

async fn fanout_section(hub: &BenchHub, plan: &Plan) -> anyhow::Result<()> {
    println!();
    println!(
        "fan-out: publish-to-delivery latency and deliveries/s (CLEAR 1-4 KiB; every subscriber gets every message); baseline: a server of the same TLS/HTTP/2 stack streaming pre-encoded messages"
    );
    println!(
        "{:>5}  {:>5}  {:>12}  {:>8}  {:>12}  {:>9}  {:>8}  {:>8}  {:>6}  {:>15}  {:>5}  {:>10}",
        "subs",
        "conns",
        "publish rate",
        "server",
        "deliveries/s",
        "delivered",
        "p50 ms",
        "p99 ms",
        "ratio",
        "ack p50/p99 ms",
        "cores",
        "cpu/deliv"
    );
    let row = |n: usize, c: usize, rate: &str, who: &str, f: &Fanout, ratio: Option<f64>| {
        println!(
            "{n:>5}  {c:>5}  {rate:>12}  {who:>8}  {:>12.0}  {:>8.1}%  {:>8.2}  {:>8.2}  {:>6}  {:>15}  {:>5.2}  {:>7.1} us",
            f.per_second,
            100.0 * f.deliveries as f64 / f.expected.max(1) as f64,
            ms(f.p50_us),
            ms(f.p99_us),
            ratio.map(|r| format!("{r:.2}")).unwrap_or_default(),
            ratio
                .map(|_| format!("{:.2} / {:.2}", ms(f.ack_p50_us), ms(f.ack_p99_us)))
                .unwrap_or_default(),
            f.cpu.cores,
            f.cpu.us_per_call
        );
    };
    for &(n, c, fixed) in &plan.fanout {
        for (rate, label) in [
            (Rate::PerSecond(fixed), format!("{fixed}/s")),
            (Rate::Max, "max".to_string()),
        ] {
            let base = fanout::baseline(hub, n, c, rate, plan.round).await?;
            let measured = fanout::hub(hub, n, c, rate, plan.round).await?;
            row(n, c, &label, "baseline", &base, None);
            row(
                n,
                c,
                &label,
                "hub",
                &measured,
                Some(measured.per_second / base.per_second.max(1.0)),
            );
        }
    }
    Ok(())
}

async fn replay(hub: &BenchHub, plan: &Plan) -> anyhow::Result<()> {
    let stored = hub.hub.store.head();
    if stored < plan.replay_events {
        bench::fill(hub, plan.replay_events - stored).await?;
    }
    let (scanned_raw, raw_secs) = bench::scan_baseline(hub).await?;
    let rss_before = bench::rss_kib();
    let (scanned, delivered, secs) = bench::replay(hub).await?;
    println!();
    println!(
        "replay from sequence 0, TLP filtering on (the reader may see half of the feed); baseline: a raw scan of the same sled tree (checksums checked, nothing decoded)"
    );
    println!(
        "{:>9}  {:>10}  {:>11}  {:>11}  {:>7}  {:>6}  {:>13}",
        "events", "seconds", "examined/s", "delivered/s", "scan/s", "ratio", "RSS MiB"
    );
    let examined = scanned as f64 / secs;
    let raw = scanned_raw as f64 / raw_secs;
    println!(
        "{scanned:>9}  {secs:>10.2}  {examined:>11.0}  {:>11.0}  {raw:>7.0}  {:>6.2}  {:>6} -> {:<5}",
        delivered as f64 / secs,
        examined / raw.max(1.0),
        rss_before / 1024,
        bench::rss_kib() / 1024
    );
    Ok(())
}

/// The sections that measure an in-process hub.
async fn in_process(
    a: &BenchArgs,
    plan: &Plan,
    wanted: &impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let hub = BenchHub::start_with(a.cache_mb).await?;
    if wanted("publish") {
        publish(&hub, plan).await?;
    }
    if wanted("signed") {
        signed(&hub, plan).await?;
    }
    if wanted("fanout") {
        fanout_section(&hub, plan).await?;
    }
    if wanted("handshake") {
        println!();
        println!(
            "connections: new TCP + full mTLS handshake (no resumption) + HTTP/2 + WhoAmI (registry lookup), {} clients; baseline: bare mTLS handshake + 1-byte echo, same server TLS config",
            plan.handshake_clients
        );
        let base = handshake::bare(&hub, plan.handshake_clients, plan.round).await?;
        let full = handshake::hub(&hub, plan.handshake_clients, plan.round).await;
        println!("{:>22}  {:>12}  {:>6}", "", "per second", "errors");
        println!(
            "{:>22}  {:>12.0}  {:>6}",
            "baseline (bare TLS)", base.per_second, base.errors
        );
        println!(
            "{:>22}  {:>12.0}  {:>6}",
            "hub (conn + WhoAmI)", full.per_second, full.errors
        );
        println!(
            "{:>22}  {:>12.2}",
            "ratio",
            full.per_second / base.per_second.max(1.0)
        );
    }
    if wanted("replay") {
        replay(&hub, plan).await?;
    }
    hub.stop().await;
    Ok(())
}
