//! The full integrity check, run in the background after a start, at a bounded rate.
//!
//! A start checks only the tail after the seal or the checked mark ([`super::seal`]); this
//! task then reads everything once more, paced to `store.background_check_mb_per_s` so that
//! serving keeps the cores and the disk, and after that, every `store.background_check_interval_s`,
//! the tail written since its last pass. Each clean pass advances the checked mark, so that a
//! start after a crash checks only what was written since. Every part reads durable state
//! only (events up to the durable head, audit entries up to the latest signed checkpoint), so
//! it runs beside the writer.
//!
//! Damage is reported loudly: an error in the log for each problem, the health name
//! `integrity` NOT_SERVING, and the metrics `cbm_hub_integrity_problems`. The hub keeps serving
//! what is intact (a damaged value is never served: every read checks its checksum and answers
//! DATA_LOSS), and the next start checks everything and refuses to serve until the data is
//! restored. A problem is reported once two passes in a row find it, so that a value read
//! while the writer replaced it cannot raise a false alarm.
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    Store, StoreError,
    check::{Pace, Problems},
};
use crate::audit::LogState;

/// Passes of one part at most before its problems are reported (two must agree).
const MAX_PASSES: usize = 3;
/// Longest single wait of the pacer, so that a stop is noticed at once.
const MAX_NAP: Duration = Duration::from_millis(50);

/// The integrity status of an open store: how its start was checked and what the background
/// check has found. Watched by health and read by metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Integrity {
    /// How the start was checked: `sealed` (a clean stop: only what followed its seal),
    /// `checked` (no seal: the tail after the checked mark), `full`; empty when not checked.
    pub start: &'static str,
    /// Events the start check read.
    pub start_events: u64,
    /// Audit entries the start check read.
    pub start_audit_entries: u64,
    /// Whether the full background pass is running now.
    pub running: bool,
    /// Full background passes completed without damage.
    pub passes: u64,
    /// Damage found (by the start check, the background check or `check`); empty while none.
    pub problems: Vec<String>,
    /// The checked mark: events up to this sequence are checked (or sealed).
    pub checked_events: u64,
    /// The checked mark: audit entries up to this number are checked (or sealed).
    pub checked_audit: u64,
}

/// The pace and period of the background check.
#[derive(Debug, Clone, Copy)]
pub struct BackgroundCheck {
    /// Bytes read per second at most; 0: no bound.
    pub bytes_per_second: u64,
    /// Time between the passes over the tail written since the last one.
    pub interval: Duration,
}

impl Store {
    /// The integrity status, notified on every change.
    pub fn integrity(&self) -> tokio::sync::watch::Receiver<Integrity> {
        self.inner.start.integrity.subscribe()
    }

    /// The integrity status now.
    pub fn integrity_now(&self) -> Integrity {
        self.inner.start.integrity.borrow().clone()
    }
}

/// Starts the background check: a full pass, then a pass over the new tail every
/// `options.interval`, until `shutdown` (which also ends a pass under way at once).
pub fn spawn(
    store: Store,
    options: BackgroundCheck,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let full = blocking(&store, options, &shutdown, |store, pace| {
            let upto = store.latest_checkpoint()?.map_or(0, |c| c.tree_size);
            let mut problems = Problems::default();
            let covered = store.check_all(upto, &mut problems, pace)?;
            Ok((problems, (covered.events, covered.audit)))
        });
        store
            .inner
            .start
            .integrity
            .send_modify(|i| i.running = true);
        let started = Instant::now();
        let outcome = full.await;
        store
            .inner
            .start
            .integrity
            .send_modify(|i| i.running = false);
        match outcome {
            Some(true) => {
                store.inner.start.integrity.send_modify(|i| i.passes += 1);
                tracing::info!(
                    seconds = started.elapsed().as_secs_f64(),
                    "background integrity check: everything intact"
                );
            }
            // Damage (reported) or a stop: nothing more to do.
            _ => return,
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(options.interval) => {}
            }
            let tail = blocking(&store, options, &shutdown, |store, pace| {
                let (after, audit) = store.checked_mark().unwrap_or_default();
                let head = store.head();
                let upto = store.latest_checkpoint()?.map_or(0, |c| c.tree_size);
                let upto = upto.max(audit.frontier.size());
                let mut problems = Problems::default();
                store.check_events(after, head, &mut problems, pace)?;
                let audit = store.check_audit(audit, upto, &mut problems, pace)?;
                Ok((problems, (head.max(after), audit)))
            });
            if tail.await != Some(true) {
                return;
            }
        }
    })
}

/// Runs `pass` on a blocking thread, paced, until its problems are confirmed or it passes
/// clean (then the checked mark advances to what it covered). Some(true): intact;
/// Some(false): damage, reported; None: stopped or failed.
async fn blocking(
    store: &Store,
    options: BackgroundCheck,
    shutdown: &CancellationToken,
    pass: impl Fn(&Store, Pace) -> Result<(Problems, (u64, LogState)), StoreError>
    + Send
    + Sync
    + 'static,
) -> Option<bool> {
    let store = store.clone();
    let shutdown = shutdown.clone();
    let run = tokio::task::spawn_blocking(move || {
        let mut previous: Option<Vec<String>> = None;
        for _ in 0..MAX_PASSES {
            let mut pacer = Pacer::new(options.bytes_per_second, &shutdown, &store);
            let (problems, (events, audit)) = pass(&store, &mut |n| pacer.pace(n))?;
            if problems.is_empty() {
                store.mark_checked(events, &audit)?;
                return Ok(true);
            }
            let confirmed: Vec<String> = match &previous {
                Some(p) => problems
                    .0
                    .iter()
                    .filter(|x| p.contains(x))
                    .cloned()
                    .collect(),
                None => Vec::new(),
            };
            if !confirmed.is_empty() {
                store.damage_found(&confirmed);
                return Ok(false);
            }
            previous = Some(problems.0);
        }
        // Problems in every pass, never the same twice: report the last ones.
        store.damage_found(&previous.unwrap_or_default());
        Ok(false)
    });
    match run.await {
        Ok(Ok(intact)) => Some(intact),
        Ok(Err(StoreError::Closed)) => None,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "background integrity check failed");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "background integrity check panicked");
            None
        }
    }
}

/// Bounds the bytes read per second; ends the pass when the hub stops or storage fails.
struct Pacer<'a> {
    rate: u64,
    started: Instant,
    bytes: u64,
    shutdown: &'a CancellationToken,
    store: &'a Store,
}

impl<'a> Pacer<'a> {
    fn new(rate: u64, shutdown: &'a CancellationToken, store: &'a Store) -> Pacer<'a> {
        Pacer {
            rate,
            started: Instant::now(),
            bytes: 0,
            shutdown,
            store,
        }
    }

    fn pace(&mut self, n: usize) -> Result<(), StoreError> {
        loop {
            if self.shutdown.is_cancelled() || self.store.failure().is_some() {
                return Err(StoreError::Closed);
            }
            if self.rate == 0 {
                return Ok(());
            }
            let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
            let ahead = due.saturating_sub(self.started.elapsed());
            if ahead.is_zero() {
                self.bytes += n as u64;
                return Ok(());
            }
            std::thread::sleep(ahead.min(MAX_NAP));
        }
    }
}
