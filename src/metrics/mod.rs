//! Operational metrics in the Prometheus text format, served on an opt-in address.
//!
//! One [`Metrics`] per running hub (not a process global, so that several hubs in one test
//! process count separately). Each concern is instrumented in one place:
//! - RPC latency, responses by code and refusals: the tower layer in [`rpc`], around every
//!   gRPC service, plus the TLS accept loop's refusal sink (wired in `service::start`);
//! - publishes: `service::hub` (the only place changes enter the writer);
//! - deliveries, live and lagging subscribers: [`FeedMetrics`], carried by each subscription;
//! - audit entries, feed head, storage size and health: read from the store at scrape time.
//!
//! Every label takes values from a fixed set, so the number of series is bounded.
pub mod http;
mod integrity;
pub mod reason;
pub mod rpc;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::{domain::kind::Kind, store::Store};

/// What a publish-type request asked for.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Operation {
    Publish,
    Revise,
    Withdraw,
}

impl Operation {
    fn label(self) -> &'static str {
        match self {
            Operation::Publish => "publish",
            Operation::Revise => "revise",
            Operation::Withdraw => "withdraw",
        }
    }
}

/// How a publish-type request ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum PublishOutcome {
    /// A new change was committed and acknowledged.
    Accepted,
    /// The answer repeated an earlier change with the same idempotency key.
    Replayed,
    /// Refused: authentication, role, validation, ownership or revision conflict.
    Refused,
    /// Not acknowledged because storage failed or the hub is stopping (retry).
    Failed,
}

impl PublishOutcome {
    fn label(self) -> &'static str {
        match self {
            PublishOutcome::Accepted => "accepted",
            PublishOutcome::Replayed => "replayed",
            PublishOutcome::Refused => "refused",
            PublishOutcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PublishLabels {
    operation: &'static str,
    /// A submission kind, or "unknown" when the request did not get far enough to tell.
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RefusalLabels {
    /// The gRPC code, in snake case ("permission_denied").
    pub code: &'static str,
    /// A short reason from a fixed list (see [`reason`]).
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MethodLabels {
    /// "cbm.v1.Hub/Publish"; requests for unknown paths count as "other".
    pub method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResponseLabels {
    pub method: &'static str,
    pub code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Where a delivered feed event was read from.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Source {
    /// Storage: the replay after a cursor, or a catch-up after lagging.
    Replay,
    /// The live channel.
    Live,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

/// The metrics of one hub. Cheap to clone (every metric is shared).
#[derive(Clone, Debug)]
pub struct Metrics {
    publishes: Family<PublishLabels, Counter>,
    pub(crate) refusals: Family<RefusalLabels, Counter>,
    pub(crate) responses: Family<ResponseLabels, Counter>,
    pub(crate) latency: Family<MethodLabels, Histogram, fn() -> Histogram>,
    pub feed: FeedMetrics,
    audit_appended: Counter,
    audit_entries: Gauge,
    feed_head: Gauge,
    storage_bytes: Gauge,
    storage_healthy: Gauge,
    /// TLS reloads by outcome (`applied`, `refused`), read from the TLS state at scrape.
    tls_reloads: Family<OutcomeLabels, Counter>,
    /// 1 while the TLS files in force are the ones on disk and no CRL in force is stale.
    tls_healthy: Gauge,
    /// Earliest nextUpdate of the CRLs in force, Unix seconds (0: no CRLs).
    crl_next_update: Gauge,
    tls: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<crate::tls::reload::TlsState>>>,
    storage_free: Gauge,
    storage_writable: Gauge,
    noise_events: Counter,
    /// How the start was checked and what the background check found.
    integrity: integrity::IntegrityMetrics,
    /// Audit log length when the hub started: appended = current length - this.
    audit_at_start: std::sync::Arc<std::sync::OnceLock<u64>>,
    registry: std::sync::Arc<Registry>,
}

/// What the feed counts: handed to each subscription.
#[derive(Clone, Debug)]
pub struct FeedMetrics {
    deliveries: Family<SourceLabels, Counter>,
    /// The two series of `deliveries`, looked up once: every delivery counts, and a family
    /// lookup (a lock and a hash) per delivery is measurable at fan-out rates.
    live: Counter,
    replay: Counter,
    subscribers: Gauge,
    lagged: Counter,
    lagging: Gauge,
}

/// Holds a gauge up by one while alive.
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for FeedMetrics {
    fn default() -> FeedMetrics {
        let deliveries = Family::<SourceLabels, Counter>::default();
        let series = |source| deliveries.get_or_create(&SourceLabels { source }).clone();
        let (live, replay) = (series("live"), series("replay"));
        FeedMetrics {
            deliveries,
            live,
            replay,
            subscribers: Gauge::default(),
            lagged: Counter::default(),
            lagging: Gauge::default(),
        }
    }
}

impl FeedMetrics {
    /// One feed event (not a heartbeat) sent to a subscriber.
    pub fn delivered(&self, source: Source) {
        match source {
            Source::Replay => self.replay.inc(),
            Source::Live => self.live.inc(),
        };
    }

    /// An open subscription, counted until the guard drops.
    pub fn subscriber(&self) -> GaugeGuard {
        self.subscribers.inc();
        GaugeGuard(self.subscribers.clone())
    }

    /// A subscriber fell behind the live channel and reads storage until the guard drops.
    pub fn lagging(&self) -> GaugeGuard {
        self.lagged.inc();
        self.lagging.inc();
        GaugeGuard(self.lagging.clone())
    }
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~33 s: a whoami answers in well under a millisecond, a durable publish waits
    // for an fsync, a large list may take seconds.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 17,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cbm_hub");
        let m = Metrics {
            publishes: Family::default(),
            refusals: Family::default(),
            responses: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            feed: FeedMetrics::default(),
            audit_appended: Counter::default(),
            audit_entries: Gauge::default(),
            feed_head: Gauge::default(),
            storage_bytes: Gauge::default(),
            storage_healthy: Gauge::default(),
            tls_reloads: Family::default(),
            tls_healthy: Gauge::default(),
            crl_next_update: Gauge::default(),
            tls: Default::default(),
            storage_free: Gauge::default(),
            storage_writable: Gauge::default(),
            noise_events: Counter::default(),
            integrity: Default::default(),
            audit_at_start: Default::default(),
            registry: Default::default(),
        };
        let r = &mut registry;
        r.register(
            "publishes",
            "Publish, revise and withdraw requests by operation, submission kind and outcome",
            m.publishes.clone(),
        );
        r.register(
            "refusals",
            "Requests and TLS handshakes refused, by gRPC code and short reason",
            m.refusals.clone(),
        );
        r.register(
            "rpc_responses",
            "gRPC responses by method and final status code",
            m.responses.clone(),
        );
        r.register(
            "rpc_duration_seconds",
            "Time from request to response headers, by gRPC method (for streams: until the stream is open)",
            m.latency.clone(),
        );
        r.register(
            "deliveries",
            "Feed events sent to subscribers, by where they were read from",
            m.feed.deliveries.clone(),
        );
        r.register(
            "subscribers",
            "Feed subscriptions open now",
            m.feed.subscribers.clone(),
        );
        r.register(
            "subscriber_lags",
            "Times a subscriber fell behind the live channel and went back to storage",
            m.feed.lagged.clone(),
        );
        r.register(
            "lagging_subscribers",
            "Subscribers reading storage now to catch up after falling behind the live channel",
            m.feed.lagging.clone(),
        );
        r.register(
            "audit_entries_appended",
            "Audit log entries appended since the hub started",
            m.audit_appended.clone(),
        );
        r.register(
            "audit_log_entries",
            "Entries in the audit log",
            m.audit_entries.clone(),
        );
        r.register(
            "feed_head_sequence",
            "Highest durable feed sequence number",
            m.feed_head.clone(),
        );
        r.register(
            "storage_size_bytes",
            "Size of the data directory on disk (sled size_on_disk, measured at scrape)",
            m.storage_bytes.clone(),
        );
        r.register(
            "storage_healthy",
            "1 while storage works; 0 once it failed (the hub then stops)",
            m.storage_healthy.clone(),
        );
        r.register(
            "tls_reloads",
            "Reloads of the TLS files (CA bundle, CRLs, server certificate) by outcome: applied, or refused (the previous files stay in force)",
            m.tls_reloads.clone(),
        );
        r.register(
            "tls_healthy",
            "1 while the TLS files in force are those on disk and no CRL in force is past its nextUpdate; 0 otherwise",
            m.tls_healthy.clone(),
        );
        r.register(
            "crl_next_update_timestamp_seconds",
            "Earliest nextUpdate of the CRLs in force, as Unix time (0 when no CRLs are configured)",
            m.crl_next_update.clone(),
        );
        r.register(
            "storage_free_bytes",
            "Free bytes on the disk holding the data directory, measured at scrape",
            m.storage_free.clone(),
        );
        r.register(
            "storage_writable",
            "1 while changes are accepted; 0 while the disk is below store.min_free_mb or storage failed",
            m.storage_writable.clone(),
        );
        r.register(
            "audit_noise_events",
            "Unauthenticated refusals (failed handshakes, unbound certificates) counted into aggregate audit entries",
            m.noise_events.clone(),
        );
        m.integrity.register(r);
        Metrics {
            registry: std::sync::Arc::new(registry),
            ..m
        }
    }

    /// Counts a publish-type request.
    pub fn publish(&self, operation: Operation, kind: Option<&str>, outcome: PublishOutcome) {
        // Only known kind names become label values: the label stays bounded.
        let kind = kind
            .and_then(|k| Kind::ALL.into_iter().find(|known| known.as_str() == k))
            .map_or("unknown", Kind::as_str);
        self.publishes
            .get_or_create(&PublishLabels {
                operation: operation.label(),
                kind,
                outcome: outcome.label(),
            })
            .inc();
    }

    /// Counts a refusal made outside the gRPC services (the TLS handshake).
    pub fn refused(&self, code: &'static str, reason: &'static str) {
        self.refusals
            .get_or_create(&RefusalLabels { code, reason })
            .inc();
    }

    /// Notes the state of the store the hub opened, before it serves.
    pub fn started(&self, store: &Store) {
        let _ = self.audit_at_start.set(store.audit_len());
    }

    /// Reports the TLS state of `tls` from now on (at scrape time).
    pub fn watch_tls(&self, tls: std::sync::Arc<crate::tls::reload::TlsState>) {
        let _ = self.tls.set(tls);
    }

    fn read_tls(&self) {
        let Some(tls) = self.tls.get() else {
            return;
        };
        let status = tls.status(crate::tls::crl::now());
        for (outcome, total) in [
            ("applied", status.reloads_applied),
            ("refused", status.reloads_refused),
        ] {
            // A counter only goes up: add what happened since the last scrape.
            let counter = self.tls_reloads.get_or_create(&OutcomeLabels { outcome });
            let seen = counter.get();
            if total > seen {
                counter.inc_by(total - seen);
            }
        }
        self.tls_healthy.set(i64::from(status.is_healthy()));
        self.crl_next_update
            .set(status.crl_next_update.unwrap_or_default());
    }

    /// Reads the store's figures, then encodes everything. Blocking: sled walks its files.
    pub fn render(&self, store: &Store) -> String {
        let len = store.audit_len();
        let start = *self.audit_at_start.get_or_init(|| len);
        let appended = len.saturating_sub(start);
        // A counter only goes up: add what was appended since the last scrape.
        let seen = self.audit_appended.get();
        if appended > seen {
            self.audit_appended.inc_by(appended - seen);
        }
        self.audit_entries.set(clamp(len));
        self.feed_head.set(clamp(store.head()));
        self.storage_bytes
            .set(clamp(store.size_on_disk().unwrap_or_default()));
        self.storage_healthy
            .set(i64::from(store.failure().is_none()));
        self.read_tls();
        let (low, free) = store.disk_low();
        if free != u64::MAX {
            self.storage_free.set(clamp(free));
        }
        self.storage_writable
            .set(i64::from(store.failure().is_none() && !low));
        self.integrity.read(&store.integrity_now());
        let noted = store.noise().noted();
        let seen = self.noise_events.get();
        if noted > seen {
            self.noise_events.inc_by(noted - seen);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
