//! The integrity figures: how the start was checked and what the background check found,
//! read from the store's integrity status at scrape time.
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::store::Integrity;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StartLabels {
    /// `sealed`, `checked` or `full` (see `store::seal`).
    start: &'static str,
}

/// Gauges of [`Integrity`].
#[derive(Debug, Clone, Default)]
pub struct IntegrityMetrics {
    start: Family<StartLabels, Gauge>,
    start_events: Gauge,
    start_audit: Gauge,
    running: Gauge,
    passes: Gauge,
    problems: Gauge,
    checked_events: Gauge,
    checked_audit: Gauge,
}

impl IntegrityMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "start_check",
            "1 for how the start was checked: sealed (after a clean stop: only what followed its seal), checked (no seal: the tail after the checked mark), full",
            self.start.clone(),
        );
        r.register(
            "start_check_events",
            "Events the start check read",
            self.start_events.clone(),
        );
        r.register(
            "start_check_audit_entries",
            "Audit entries the start check read",
            self.start_audit.clone(),
        );
        r.register(
            "integrity_check_running",
            "1 while the full background integrity check runs",
            self.running.clone(),
        );
        r.register(
            "integrity_check_passes",
            "Full background integrity checks completed without damage since the hub started",
            self.passes.clone(),
        );
        r.register(
            "integrity_problems",
            "Damage found in the stored data (0 while none); the log names each, health `integrity` is NOT_SERVING",
            self.problems.clone(),
        );
        r.register(
            "integrity_checked_events",
            "Events up to this sequence are checked or sealed (a start after a crash checks from here)",
            self.checked_events.clone(),
        );
        r.register(
            "integrity_checked_audit_entries",
            "Audit entries up to this number are checked or sealed",
            self.checked_audit.clone(),
        );
    }

    pub fn read(&self, i: &Integrity) {
        if !i.start.is_empty() {
            self.start
                .get_or_create(&StartLabels { start: i.start })
                .set(1);
        }
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.start_events.set(clamp(i.start_events));
        self.start_audit.set(clamp(i.start_audit_entries));
        self.running.set(i64::from(i.running));
        self.passes.set(clamp(i.passes));
        self.problems.set(clamp(i.problems.len() as u64));
        self.checked_events.set(clamp(i.checked_events));
        self.checked_audit.set(clamp(i.checked_audit));
    }
}
