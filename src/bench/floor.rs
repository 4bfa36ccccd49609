//! The `floor` section: what sled 0.34.7 itself and this disk allow, measured in the same run
//! as the hub's sections, with no gRPC and none of the hub's code between the loop and sled.
//! Only the sled configuration is the hub's ([`keyspace::sled_config`], its cache, the
//! background flush), and the durability is the hub's group commit: sled's flush, then an
//! fdatasync of sled's data file `db` (`store::durable`; the hub's extra stat of `blobs/` is
//! left out). Each publish writes the records the hub writes: the event, the submission's head,
//! two index records and the audit entry, of the sizes the eighth measurement of BENCHMARKS.md
//! found, under keys of the hub's shapes (sequential, except the head's random id).
//!
//! Why a sled batch costs more than an insert: `apply_batch` takes its batch manifest through
//! `pin_log` (sled `src/pagecache/mod.rs`), which rolls the IO buffer before reserving the
//! manifest and seals it right after, so one batch writes at least two IO buffers where an
//! insert shares one; every IO-buffer write is handed to sled's thread pool, whose `send` wakes
//! all 7 of its waiting IO threads (`notify_all` in `src/threadpool.rs`) on 2 cores; and each
//! such write waits for its own `sync_file_range` (write and wait, `src/pagecache/iobuf.rs`)
//! before the flush can return.
//!
//! The disk is shared with the other sessions, and a step's latency moves with their traffic
//! (a plain-file append's p50 measured 0.2 ms in one run and 4 ms in another): the rounds are
//! cut in slices taken in turn, so that the ratios compare steps under the same traffic.
use std::{
    fs::File,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use super::{percentile, stored};
use crate::store::{
    DEFAULT_COMPRESSION_LEVEL,
    keyspace::{self, Rec},
};

/// Bytes of the stored event of the bench's 1,229-byte content.
pub const EVENT_BYTES: usize = 1469;
/// Its submission's head and its audit entry.
const HEAD_BYTES: usize = 119;
const AUDIT_BYTES: usize = 168;
/// An index record's value: the submission id.
const ID_BYTES: usize = 36;
/// Value bytes one publish writes.
pub const PUBLISH_BYTES: usize = EVENT_BYTES + HEAD_BYTES + AUDIT_BYTES + 2 * ID_BYTES;
/// What the disk floor appends per write.
const APPEND_BYTES: usize = 2048;
/// Size of the preallocated file the in-place rewrites cycle through.
const REWRITE_FILE_BYTES: u64 = 8 << 20;
/// Publishes in flight that the group commit ceiling puts in one group.
pub const GROUP: usize = 64;
/// Slices of each round, taken in turn with the other steps'.
const SLICES: u32 = 3;
/// Bound on the samples of a latency round, whatever its duration.
const MAX_OPS: u64 = 2_000_000;

/// Latency and rate of one measured round.
#[derive(Debug, Clone, Default)]
pub struct Timed {
    pub ops: u64,
    pub per_second: f64,
    pub p50_us: u32,
    pub p99_us: u32,
}

/// Everything the section measures.
#[derive(Debug, Clone, Default)]
pub struct Floor {
    /// 2 KiB appended to a plain file + fdatasync.
    pub append: Timed,
    /// 2 KiB rewritten in place in a file whose blocks are allocated and synced + fdatasync:
    /// a durable write that changes no metadata.
    pub rewrite: Timed,
    /// One event-sized insert + flush + fdatasync.
    pub insert: Timed,
    /// One publish's five records in one batch + flush + fdatasync.
    pub batch: Timed,
    /// Groups of [`GROUP`] publishes, one thread (ops: groups; the rate in events/s).
    pub group: Timed,
    /// Two threads, each committing groups of half as many: one group applies while the other
    /// flushes, as the hub's writer and commit thread overlap (still [`GROUP`] in flight).
    pub group_pipelined: Timed,
    /// The scan's data written as groups of [`GROUP`] (events, seconds).
    pub fill: (u64, f64),
    /// sled's iterator over the stored events (records, seconds).
    pub scan: (u64, f64),
    /// The directory after the fill and a clean close: (allocated, apparent) bytes.
    pub disk: (u64, u64),
}

/// A sled database opened with the hub's configuration, and its data file for fdatasync.
struct Durable {
    db: sled::Db,
    tree: sled::Tree,
    datafile: File,
}

impl Durable {
    fn open(dir: &Path, cache_mb: u64) -> anyhow::Result<Durable> {
        let db = keyspace::sled_config(dir, DEFAULT_COMPRESSION_LEVEL)
            .cache_capacity(cache_mb * 1024 * 1024)
            .flush_every_ms(Some(1000))
            .open()?;
        let tree = db.open_tree(keyspace::TREE)?;
        let datafile = File::open(dir.join("db"))?;
        Ok(Durable { db, tree, datafile })
    }

    /// The hub's group commit: sled's flush, then the data file to the disk.
    fn commit(&self) -> anyhow::Result<()> {
        self.db.flush()?;
        self.datafile.sync_data()?;
        Ok(())
    }
}

/// The values of one publish's records (their contents do not matter: compression is off).
struct Values {
    event: Vec<u8>,
    head: Vec<u8>,
    audit: Vec<u8>,
}

impl Values {
    fn new() -> Values {
        let fill = |n: usize, seed: u8| -> Vec<u8> {
            (0..n)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
                .collect()
        };
        Values {
            event: fill(EVENT_BYTES, 1),
            head: fill(HEAD_BYTES, 2),
            audit: fill(AUDIT_BYTES, 3),
        }
    }

    /// Adds publish number `seq`'s five records to `batch`, keyed as the hub keys them.
    fn publish(&self, batch: &mut sled::Batch, seq: u64) {
        let id = uuid::Uuid::new_v4().to_string();
        let seq_be = seq.to_be_bytes();
        let mut by_kind = b"Pbench-publisher\0".to_vec();
        by_kind.extend_from_slice(&seq_be);
        batch.insert(Rec::Events.key(&seq_be), self.event.as_slice());
        batch.insert(Rec::Heads.key(id.as_bytes()), self.head.as_slice());
        batch.insert(Rec::ByCreated.key(&seq_be), id.as_bytes());
        batch.insert(Rec::ByKind.key(&by_kind), id.as_bytes());
        batch.insert(Rec::Audit.key(&seq_be), self.audit.as_slice());
    }
}

/// Latencies of one step gathered over several slices of a round.
#[derive(Default)]
struct Samples {
    lat: Vec<u32>,
    secs: f64,
    /// Events one timed call commits.
    per_op: u64,
}

impl Samples {
    fn new(per_op: u64) -> Samples {
        Samples {
            per_op,
            ..Samples::default()
        }
    }

    /// Runs `op` for `duration` (at least once; at most [`MAX_OPS`] calls in all), timing
    /// each call.
    fn run(
        &mut self,
        duration: Duration,
        mut op: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut first = true;
        while first || (started.elapsed() < duration && (self.lat.len() as u64) < MAX_OPS) {
            first = false;
            let t0 = Instant::now();
            op()?;
            self.lat
                .push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
        self.secs += started.elapsed().as_secs_f64();
        Ok(())
    }

    fn timed(mut self) -> Timed {
        self.lat.sort_unstable();
        Timed {
            ops: self.lat.len() as u64,
            per_second: (self.lat.len() as u64 * self.per_op) as f64 / self.secs.max(1e-9),
            p50_us: percentile(&self.lat, 0.50),
            p99_us: percentile(&self.lat, 0.99),
        }
    }
}

/// `threads` threads each committing groups of `group` publishes for `duration`, into
/// `samples` (the latency of one group's commit; the rate in publishes per second).
fn groups(
    d: &Durable,
    values: &Values,
    seq: &AtomicU64,
    threads: usize,
    group: usize,
    duration: Duration,
    samples: &mut Samples,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let per_thread = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Samples::new(group as u64);
                    mine.run(duration, || {
                        let mut batch = sled::Batch::default();
                        for _ in 0..group {
                            values.publish(&mut batch, seq.fetch_add(1, Ordering::Relaxed));
                        }
                        d.tree.apply_batch(batch)?;
                        d.commit()
                    })?;
                    anyhow::Ok(mine.lat)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a group commit thread panicked"))?
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    samples.secs += started.elapsed().as_secs_f64();
    for lat in per_thread {
        samples.lat.extend(lat);
    }
    Ok(())
}

/// Waits (at most 10 s) until nothing holds sled's lock on its data file `db`.
fn released(db: &Path) -> anyhow::Result<()> {
    use fs2::FileExt;
    let file = File::open(db)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while file.try_lock_exclusive().is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "sled did not release {} within 10 s",
            db.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Measures the floor with rounds of `round` and `events` stored events for the scan and the
/// disk; sled's cache is `cache_mb` MiB, as the bench's hubs have. Blocking.
pub fn measure(round: Duration, events: u64, cache_mb: u64) -> anyhow::Result<Floor> {
    let root =
        TempDir(std::env::temp_dir().join(format!("cbm-hub-bench-floor-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&root.0)?;
    let values = Values::new();
    let mut floor = Floor::default();

    // 1-3, each round in slices taken in turn, so that a burst of the other sessions' disk
    // traffic falls on every step alike: the disk appending to a plain file, each write
    // durable before the next; one caller on sled; groups on sled.
    let file = File::create_new(root.0.join("append"))?;
    let block = vec![7u8; APPEND_BYTES];
    let mut offset = 0u64;
    let rewritten = File::create_new(root.0.join("rewrite"))?;
    rewritten.write_all_at(&vec![0u8; REWRITE_FILE_BYTES as usize], 0)?;
    rewritten.sync_all()?;
    let mut at = 0u64;
    let d = Durable::open(&root.0.join("latency"), cache_mb)?;
    let seq = AtomicU64::new(1);
    let slice = round / SLICES;
    let mut rewrite = Samples::new(1);
    let (mut append, mut insert, mut batch) = (Samples::new(1), Samples::new(1), Samples::new(1));
    for _ in 0..SLICES {
        append.run(slice, || {
            file.write_all_at(&block, offset)?;
            file.sync_data()?;
            offset += APPEND_BYTES as u64;
            Ok(())
        })?;
        rewrite.run(slice, || {
            rewritten.write_all_at(&block, at)?;
            rewritten.sync_data()?;
            at = (at + APPEND_BYTES as u64) % REWRITE_FILE_BYTES;
            Ok(())
        })?;
        insert.run(slice, || {
            let s = seq.fetch_add(1, Ordering::Relaxed);
            d.tree.insert(s.to_be_bytes(), values.event.as_slice())?;
            d.commit()
        })?;
        batch.run(slice, || {
            let mut batch = sled::Batch::default();
            values.publish(&mut batch, seq.fetch_add(1, Ordering::Relaxed));
            d.tree.apply_batch(batch)?;
            d.commit()
        })?;
    }
    let (mut group, mut pipelined) = (Samples::new(GROUP as u64), Samples::new(GROUP as u64 / 2));
    for _ in 0..SLICES {
        groups(&d, &values, &seq, 1, GROUP, slice, &mut group)?;
        groups(&d, &values, &seq, 2, GROUP / 2, slice, &mut pipelined)?;
    }
    (floor.append, floor.rewrite) = (append.timed(), rewrite.timed());
    (floor.insert, floor.batch) = (insert.timed(), batch.timed());
    (floor.group, floor.group_pipelined) = (group.timed(), pipelined.timed());
    drop((file, rewritten, d));

    // 4 and 5. A fresh database of `events` publishes written as the hub writes them at 64 in
    // flight, scanned, closed, measured.
    let dir = root.0.join("stored");
    let d = Durable::open(&dir, cache_mb)?;
    let started = Instant::now();
    let mut next = 1u64;
    while next <= events {
        let mut batch = sled::Batch::default();
        let end = (next + GROUP as u64).min(events + 1);
        for s in next..end {
            values.publish(&mut batch, s);
        }
        d.tree.apply_batch(batch)?;
        d.commit()?;
        next = end;
    }
    floor.fill = (events, started.elapsed().as_secs_f64());
    let started = Instant::now();
    let mut scanned = 0u64;
    let mut bytes = 0usize;
    for item in d.tree.scan_prefix([Rec::Events as u8]) {
        let (_, value) = item?;
        scanned += 1;
        bytes += value.len();
    }
    floor.scan = (scanned, started.elapsed().as_secs_f64());
    anyhow::ensure!(
        scanned == events && bytes == events as usize * EVENT_BYTES,
        "the scan read {scanned} events of {bytes} bytes, not the {events} written"
    );
    // A clean close, as the `disk` section measures after a clean stop: sled's threads close
    // its files some time after the last handle goes, and release their lock then.
    d.commit()?;
    drop(d);
    released(&dir.join("db"))?;
    floor.disk = stored::du(&dir)?;
    Ok(floor)
}

/// Prints the section's table; `cache_mb` is the sled cache it was measured with.
pub fn print(f: &Floor, cache_mb: u64) {
    let ms = |us: u32| f64::from(us) / 1000.0;
    println!();
    println!(
        "floor: what sled 0.34.7 and this disk allow, no gRPC and none of the hub's code; the hub's sled configuration (cache {cache_mb} MiB, compression off) and durability (sled flush + fdatasync of its data file); a publish = the hub's 5 records ({} B event, head, 2 index records, audit entry: {} B of values)",
        EVENT_BYTES, PUBLISH_BYTES
    );
    println!(
        "{:<9}  {:<58}  {:>8}  {:>10}  {:<8}  {:>7}  {:>7}  {:>6}  baseline",
        "step", "what", "ops", "per second", "of", "p50 ms", "p99 ms", "ratio"
    );
    let row = |step: &str, what: &str, t: &Timed, of: &str, ratio: f64, base: &str| {
        println!(
            "{step:<9}  {what:<58}  {:>8}  {:>10.0}  {of:<8}  {:>7.3}  {:>7.3}  {ratio:>6.2}  {base}",
            t.ops,
            t.per_second,
            ms(t.p50_us),
            ms(t.p99_us),
        );
    };
    let p50 = |t: &Timed| f64::from(t.p50_us.max(1));
    row(
        "append",
        "2 KiB appended to a plain file + fdatasync",
        &f.append,
        "ops",
        1.0,
        "",
    );
    row(
        "rewrite",
        "2 KiB rewritten in place (blocks allocated) + fdatasync",
        &f.rewrite,
        "ops",
        p50(&f.rewrite) / p50(&f.append),
        "p50 / append p50",
    );
    row(
        "insert",
        "1 event-sized insert + flush + fdatasync",
        &f.insert,
        "ops",
        p50(&f.insert) / p50(&f.append),
        "p50 / append p50",
    );
    row(
        "batch",
        "1 publish: apply_batch of its 5 records + flush + fdatasync",
        &f.batch,
        "ops",
        p50(&f.batch) / p50(&f.insert),
        "p50 / insert p50",
    );
    row(
        "group",
        &format!("{GROUP} publishes in 1 apply_batch + flush + fdatasync"),
        &f.group,
        "events",
        f.group.per_second / f.batch.per_second.max(1e-9),
        "events/s / batch ops/s",
    );
    row(
        "pipelined",
        &format!("2 threads, {} publishes per group each", GROUP / 2),
        &f.group_pipelined,
        "events",
        f.group_pipelined.per_second / f.group.per_second.max(1e-9),
        "events/s / group events/s",
    );
    let (filled, fill_secs) = f.fill;
    let fill_rate = filled as f64 / fill_secs.max(1e-9);
    println!(
        "{:<9}  {:<58}  {filled:>8}  {fill_rate:>10.0}  {:<8}  {:>7}  {:>7}  {:>6.2}  events/s / group events/s",
        "fill",
        format!("{filled} publishes written as groups of {GROUP} (durable)"),
        "events",
        "",
        "",
        fill_rate / f.group.per_second.max(1e-9)
    );
    let (scanned, scan_secs) = f.scan;
    println!(
        "{:<9}  {:<58}  {scanned:>8}  {:>10.0}  {:<8}",
        "scan",
        "sled's iterator over the stored events (nothing decoded)",
        scanned as f64 / scan_secs.max(1e-9),
        "records",
    );
    let (allocated, apparent) = f.disk;
    let per_event = allocated as f64 / filled.max(1) as f64;
    println!(
        "{:<9}  {:<58}  {:>8.1} MiB ({:.1} apparent): {per_event:.0} B per event, {:.2}x the values written, {:.2}x the {}-byte content",
        "disk",
        "the fill's directory after a clean close (du)",
        allocated as f64 / 1048576.0,
        apparent as f64 / 1048576.0,
        per_event / PUBLISH_BYTES as f64,
        per_event / stored::CONTENT_BYTES as f64,
        stored::CONTENT_BYTES,
    );
}
