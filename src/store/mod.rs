//! Durable storage in sled.
//!
//! Layout (version 2): one sled tree, `records` ([`keyspace::TREE`]), holding every record
//! kind under a one-byte key prefix ([`keyspace::Rec`]; the byte is part of the format):
//! - `e` events: feed sequence (u64 big-endian) -> [`records::StoredEvent`]. Gapless from 1.
//! - `h` heads: submission id -> [`records::SubmissionHead`] (where its revisions are, and
//!   each revision's audience: what the audience decision reads).
//! - `c` by_created: sequence of revision 1 (u64 BE) -> submission id; the stable list order.
//! - `k` by_kind: kind code, publisher, NUL, sequence of revision 1 -> submission id; finds
//!   the points of contact, a sender's severity schemas and the reporting kinds of the matrix.
//! - `i` idempotency: member id, NUL, client key -> [`records::IdempotencyRecord`].
//! - `m` members: member id -> `pb::Member`.
//! - `a` audit: audit sequence (u64 BE) -> `pb::AuditEntry`, chained and Merkle-hashed.
//! - `p` checkpoints: audit tree size (u64 BE) -> signed `pb::Checkpoint`.
//! - `n` acks: notice id, NUL, member id, NUL, contact id -> `pb::Acknowledgement`.
//! - `g` campaigns: campaign id -> `pb::PingCampaign` (targets with the notice each member
//!   got, deadline). A campaign stored before per-member notices has its one notice's id as
//!   its id and no notice ids in its targets (read as that id).
//! - `q` campaign_notices: ping notice id -> the id of the campaign that sent it.
//! - `v` verified: point-of-contact submission id -> [`records::Verified`].
//! - `f` catalogue: framework id -> `pb::Framework` added by an administrator.
//! - `r` revised: submission id -> nothing, for each submission with more than one revision;
//!   held in memory, so that replay reads the head of these only and decides the others from
//!   their one event.
//! - `0` meta: `format` -> layout version; `audit_state` -> chain hash and Merkle frontier;
//!   `by_kind`, `head_audiences`, `revised` -> present once those upgrades of older stores
//!   have run; `seal` -> the seal of the last clean stop and `checked` -> how far everything
//!   is checked (both see [`seal`]).
//!
//! Every value is framed with a checksum ([`codec`]). Only the writer thread ([`writer`])
//! changes the keyspace: it assigns sequence numbers and applies each group of changes as one
//! `sled::Batch` (atomic on the one tree); the commit thread ([`commit`]) then makes it durable
//! with one flush and the fsyncs of [`durable`] (sled's blob files and its data file) before
//! any of it is acknowledged, while the writer goes on with the next group. Whether a change
//! is allowed is decided by `domain::rules` over [`group::GroupView`], the stored records with
//! the open group's staged ones over them.
//!
//! Layout version 1 kept one tree per kind (the names in [`keyspace::Rec::layout1_tree`]);
//! such a directory is refused at open and converted by `cbm-hub migrate` ([`migrate`]).
mod acks;
mod audit_log;
mod audit_proof;
pub mod background_check;
mod campaign_start;
mod campaigns;
mod catalogue;
mod changes;
mod check;
pub mod codec;
mod commit;
mod disk;
mod durable;
mod group;
mod indexes;
pub mod keyspace;
mod live;
mod members;
pub mod migrate;
mod queue;
mod receipts;
pub use crate::domain::records;
mod release;
mod seal;
mod shared;
mod staged;
mod stats;
#[cfg(test)]
mod tests;

/// Unit tests' store: a fresh temporary directory, no fsync, no check at start; and helpers
/// that write to it as nothing else may.
#[cfg(test)]
pub(crate) mod scratch {
    use super::{Store, StoreOptions, codec};
    use crate::{audit::Origin, pb::AuditEntry};

    pub fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            fsync: false,
            check_on_start: false,
            ..Default::default()
        };
        let store = Store::open(dir.path(), options).unwrap();
        (dir, store)
    }

    /// `n` entries of the hub's own.
    pub fn entries(n: u64) -> Vec<AuditEntry> {
        (0..n).map(|_| Origin::hub().entry("test.entry")).collect()
    }

    /// Rewrites stored audit entry `seq` in place (its chain hash left as it was), as someone
    /// with the disk could.
    pub fn rewrite_entry(store: &Store, seq: u64) {
        let mut e = store.audit_after(seq - 1).next().unwrap().unwrap();
        e.detail = "rewritten".into();
        store
            .inner
            .trees
            .audit
            .insert(seq.to_be_bytes(), codec::frame(&e))
            .unwrap();
    }
}
mod writer;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
};

use keyspace::{Part, Trees};
use shared::Shared;

use tokio::sync::{broadcast, mpsc, oneshot};

pub use crate::domain::rules::registry::MemberOp;
use crate::{
    audit::Origin,
    domain::{
        Invalid,
        budget::{self, Budget},
        catalogue::Catalogue,
        member::Registry,
        rules::Refusal,
    },
    pb::{AuditEntry, Checkpoint},
};
pub use acks::AckRequest;
pub use audit_proof::Proof;
pub use background_check::{BackgroundCheck, Integrity};
pub use campaign_start::CampaignStart;
pub use campaigns::{CLOSED as CAMPAIGN_CLOSED, OPEN as CAMPAIGN_OPEN};
pub use durable::SyncObserver;
pub use live::{Committed, HeadCell, IN_STORAGE};
pub(crate) use queue::{ByteQueue, QueuedBytes};
use records::{StoredEvent, SubmissionHead};
pub use release::RELEASE_WAIT;
pub use writer::{Change, ChangeOp, Outcome};

/// zstd level of a new store unless configured (`store.compression_level`; 0: uncompressed).
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 0;

/// Version of the on-disk layout this build reads and writes.
const LAYOUT_VERSION: &[u8] = b"2";
/// Commands queued for the writer; publishers wait (backpressure) beyond this. The content
/// they carry is bounded in bytes as well ([`budget::WRITER_QUEUE_BYTES`]).
const WRITER_QUEUE: usize = 8192;

/// A stored event whose checksum has been verified, still encoded.
pub struct RawEvent {
    frame: sled::IVec,
}

impl RawEvent {
    /// The encoded [`StoredEvent`].
    pub fn payload(&self) -> &[u8] {
        &self.frame[codec::HEADER..]
    }
}

/// Errors of the storage layer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The domain's rules refused the change.
    #[error("{0}")]
    Refused(Refusal),
    #[error("{0}")]
    Invalid(Invalid),
    /// A record over the byte budget: it could not be delivered on every exit.
    #[error("{0}")]
    TooLarge(String),
    /// A stored value failed its checksum or could not be decoded; never served.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The storage engine or the file system failed; nothing of the failed group was
    /// acknowledged.
    #[error("storage failure: {0}")]
    Io(String),
    /// The store is closing.
    #[error("the hub is shutting down")]
    Closed,
    /// The disk holding the data is below its reserve: changes are refused before it is full.
    #[error("{0}")]
    DiskLow(String),
    /// The data directory is of a layout this build does not read (the message says what
    /// converts it).
    #[error("{0}")]
    Layout(String),
}

impl StoreError {
    /// A short name of the kind of error, for audit entries.
    pub fn code_name(&self) -> &'static str {
        match self {
            StoreError::Refused(r) => r.code.name(),
            StoreError::Invalid(_) => "invalid_argument",
            StoreError::TooLarge(_) => "resource_exhausted",
            StoreError::Corrupt(_) => "data_loss",
            StoreError::Io(_) | StoreError::Closed => "unavailable",
            StoreError::DiskLow(_) => "resource_exhausted",
            StoreError::Layout(_) => "failed_precondition",
        }
    }
}

impl From<Refusal> for StoreError {
    fn from(r: Refusal) -> Self {
        StoreError::Refused(r)
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Corruption { .. } => StoreError::Corrupt(e.to_string()),
            other => StoreError::Io(other.to_string()),
        }
    }
}

struct Inner {
    db: sled::Db,
    trees: Trees,
    /// What the writer publishes: registry, catalogue, head, live channel, failure ...
    shared: Arc<Shared>,
    commands: mpsc::Sender<writer::Command>,
    writer_thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
    /// Cached roots of blocks of audit entries, for consistency proofs.
    audit_blocks: audit_proof::BlockRoots,
    /// The feed head and audit log size when the store was opened: a check covering an event
    /// stored before its audit entry was numbered demands this fixed size
    /// (`Store::audit_entries_covering`).
    opened: (u64, u64),
    /// The last verification of the whole audit log that passed, to continue from.
    audit_verified: std::sync::Mutex<Option<audit_log::Verified>>,
    /// Unauthenticated refusals, counted until they are written as aggregate entries.
    noise: crate::audit::noise::Noise,
    /// Bytes of content and audit entries queued for the writer or in its current group.
    queued_bytes: ByteQueue,
    /// Told of every fsync (see [`Store::observe_syncs`]).
    sync_observer: durable::ObserverSlot,
    /// Where the start check begins, and the integrity status (see [`seal`]).
    start: seal::StartState,
    /// Disconnected when this value is dropped, after sled's handles in it (see `_dropped`).
    dropped_rx: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    /// Last field, so dropped last: its receiver learns that the fields above, sled's handles
    /// among them, are gone. Never sent to.
    _dropped: std::sync::mpsc::Sender<()>,
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// Tuning of the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled page cache size in bytes.
    pub cache_capacity: u64,
    /// Also fsync the data file and the new blob files in each group commit (sled's own flush
    /// only orders the data file's writes with sync_file_range, which survives a process crash
    /// but not a power loss, and never syncs blob files; see [`durable`]).
    pub fsync: bool,
    /// Live events buffered for subscribers that are behind; those further behind read
    /// storage until they catch up.
    pub live_buffer: usize,
    /// Check the store when the hub starts (the tail since the last clean stop or check; see
    /// [`seal`]) and refuse to serve damaged data; then check everything in the background.
    pub check_on_start: bool,
    /// The pace and period of the background check.
    pub background_check: BackgroundCheck,
    /// Free bytes the disk holding the data must keep: below, changes are refused
    /// (RESOURCE_EXHAUSTED) before the disk is full. 0 turns the watch off.
    pub min_free_bytes: u64,
    /// Audit entries a minute at most for unauthenticated refusals (aggregated per source).
    pub noise_entries_per_minute: u32,
    /// zstd level (1..=22) of sled's compression, which a new data directory is created with;
    /// 0 creates it uncompressed (see `keyspace::sled_config`).
    pub compression_level: i32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            // Resident memory after a start that read everything (the full check) is this plus
            // sled's bookkeeping, which grows with the data (README, "Bytes on disk and memory").
            cache_capacity: 128 * 1024 * 1024,
            fsync: true,
            live_buffer: 4096,
            check_on_start: true,
            background_check: BackgroundCheck {
                bytes_per_second: 32 * 1024 * 1024,
                interval: std::time::Duration::from_secs(60),
            },
            min_free_bytes: 256 * 1024 * 1024,
            noise_entries_per_minute: 60,
            compression_level: DEFAULT_COMPRESSION_LEVEL,
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `dir` with the budgets of the default message limit.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        Store::open_with_budget(dir, options, Budget::default())
    }

    /// Opens (or creates) the store in `dir` and starts its writer thread. The writer refuses a
    /// record larger than `budget` allows, whatever let it through.
    pub fn open_with_budget(
        dir: &Path,
        options: StoreOptions,
        budget: Budget,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        let config = keyspace::sled_config(dir, options.compression_level)
            .cache_capacity(options.cache_capacity)
            // Durability comes from the group commit; the background flush only bounds how much
            // unflushed read-audit data a crash can lose.
            .flush_every_ms(Some(1000));
        let db = release::open_locked(&config, dir)?;
        let trees = open_layout(&db, dir)?;
        // Before the writer takes any command: a crash from now on leaves no valid seal.
        let base = seal::take(&db, &trees, dir)?;
        indexes::build_if_missing(&trees)?;
        indexes::add_audiences_if_missing(&trees)?;
        indexes::build_revised_if_missing(&trees)?;
        let revised = indexes::load_revised(&trees)?;
        let catalogue = catalogue::load(&trees.catalogue)?;
        let audit = audit_log::load_audit_state(&trees)?;
        let signer = crate::audit::signing::Signer::load_or_create(dir).map_err(StoreError::Io)?;
        let registry = members::load_registry(&trees.members)?;
        let head = last_sequence(&trees.events)?;
        let opened = (head, audit.frontier.size());
        let (live, _) = broadcast::channel(options.live_buffer.max(1));
        let shared = Arc::new(Shared {
            registry: RwLock::new(Arc::new(registry)),
            catalogue: RwLock::new(Arc::new(catalogue)),
            head: AtomicU64::new(head),
            audience_generation: AtomicU64::new(0),
            registry_generation: tokio::sync::watch::Sender::new(0),
            audit_len: AtomicU64::new(audit.frontier.size()),
            audit_durable: AtomicU64::new(audit.frontier.size()),
            live,
            failure: Arc::new(std::sync::OnceLock::new()),
            signer,
            disk: disk::DiskWatch::new(dir.to_path_buf(), options.min_free_bytes),
            budget,
            revised: RwLock::new(revised),
        });
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let sync_observer = durable::ObserverSlot::default();
        let sync = match options.fsync {
            true => Some(durable::Syncer::open(dir, sync_observer.clone())?),
            false => None,
        };
        let w = writer::Writer::new(
            shared.clone(),
            db.clone(),
            trees.clone(),
            rx,
            sync,
            audit,
            Budget::live_event(options.live_buffer),
        )?;
        let handle = std::thread::Builder::new()
            .name("cbm-writer".into())
            .spawn(move || w.run())
            .map_err(|e| StoreError::Io(format!("starting the writer thread: {e}")))?;
        let (dropped, dropped_rx) = std::sync::mpsc::channel();
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                trees,
                shared,
                commands: tx,
                writer_thread: std::sync::Mutex::new(Some(handle)),
                path: dir.to_path_buf(),
                audit_blocks: Default::default(),
                opened,
                audit_verified: Default::default(),
                noise: crate::audit::noise::Noise::new(options.noise_entries_per_minute),
                queued_bytes: ByteQueue::new(budget::WRITER_QUEUE_BYTES),
                sync_observer,
                start: seal::StartState::new(base),
                dropped_rx: std::sync::Mutex::new(Some(dropped_rx)),
                _dropped: dropped,
            }),
        })
    }

    /// The byte budgets the store was opened with.
    pub fn budget(&self) -> Budget {
        self.inner.shared.budget
    }

    /// Why storage failed, if it has: the hub must then be restarted.
    pub fn failure(&self) -> Option<String> {
        self.inner.shared.failure.get().cloned()
    }

    /// The failure cell itself, to read after the store is closed.
    pub fn failure_cell(&self) -> Arc<std::sync::OnceLock<String>> {
        self.inner.shared.failure.clone()
    }

    /// How many handles to this store exist (this one included).
    pub fn handles(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The current registry snapshot.
    pub fn registry(&self) -> Arc<Registry> {
        self.inner.shared.registry()
    }

    /// The current CBM catalogue snapshot.
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.inner.shared.catalogue()
    }

    /// Highest committed feed sequence (0 when empty).
    pub fn head(&self) -> u64 {
        self.inner.shared.head.load(Ordering::Acquire)
    }

    /// Changes whenever the registry changes.
    pub fn registry_generation(&self) -> u64 {
        *self.inner.shared.registry_generation.borrow()
    }

    /// Changes whenever a committed change revises or withdraws a submission (moves a head that
    /// replayed events may already have been decided against).
    pub fn audience_generation(&self) -> u64 {
        self.inner
            .shared
            .audience_generation
            .load(Ordering::Acquire)
    }

    /// Notified after every registry change.
    pub fn registry_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.shared.registry_generation.subscribe()
    }

    /// Receives every event committed from now on, in order. A receiver that falls more than
    /// the live buffer behind gets `Lagged` and must read the rest from storage.
    pub fn live(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.inner.shared.live.subscribe()
    }

    /// Applies a submission change; resolves once it is durable.
    pub async fn change(
        &self,
        actor: Arc<crate::domain::member::Member>,
        origin: Origin,
        change: Change,
    ) -> Result<Outcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        let bytes = self
            .inner
            .queued_bytes
            .reserve(change.content_bytes)
            .await?;
        self.send(writer::Command::Change {
            actor,
            origin,
            change: Box::new(change),
            bytes,
            reply,
        })
        .await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a writer command built around `reply` and waits for its answer.
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> writer::Command,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(command(reply)).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Applies a registry change; resolves once it is durable.
    pub async fn member(
        &self,
        op: MemberOp,
        origin: Origin,
    ) -> Result<crate::domain::member::Member, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(writer::Command::Member { op, origin, reply })
            .await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Records audit entries about requests decided outside the writer. Durable with the next
    /// group commit or sled's periodic flush (within about a second); no flush of its own.
    /// Every field a request can influence is bounded here, before the entry is queued.
    pub async fn audit(&self, entries: Vec<AuditEntry>) {
        use prost::Message;
        let entries: Vec<AuditEntry> = entries
            .into_iter()
            .map(crate::audit::bound::fields)
            .collect();
        let size = entries.iter().map(Message::encoded_len).sum();
        let sent = match self.inner.queued_bytes.reserve(size).await {
            Ok(bytes) => self.send(writer::Command::Audit(entries, bytes)).await,
            Err(e) => Err(e),
        };
        if sent.is_err() {
            tracing::warn!("audit entries after the store closed were not recorded");
        }
    }

    /// Waits until every command queued before this call (audit entries of earlier requests
    /// included) is applied and readable; not for any flush.
    pub async fn settled(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(writer::Command::Settled { reply }).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Makes everything durable and returns a signed checkpoint of the audit log's current size.
    pub async fn checkpoint(&self) -> Result<Checkpoint, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(writer::Command::Checkpoint { reply }).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn send(&self, cmd: writer::Command) -> Result<(), StoreError> {
        self.inner
            .commands
            .send(cmd)
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// The index entry of a submission, as far as it is durable: revisions applied but not yet
    /// flushed (in the instant between a group's transaction and its flush) are left out, so
    /// readers never see a change before it is acknowledged.
    pub fn head_of(&self, id: &str) -> Result<Option<SubmissionHead>, StoreError> {
        let durable = self.head();
        Ok(read_head(&self.inner.trees.heads, id)?.and_then(|h| durable_part(h, durable)))
    }

    /// The event with sequence `seq`, checksum verified.
    pub fn event(&self, seq: u64) -> Result<StoredEvent, StoreError> {
        read_event(&self.inner.trees.events, seq)
    }

    /// Whether submission `id` has more than one revision, as far as applied (its head then
    /// says more than its first event; see `keyspace::Rec::Revised`).
    pub fn is_revised(&self, id: &str) -> bool {
        self.inner
            .shared
            .revised
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    /// Events after `after`, in order, checksum verified but not decoded (replay decides on
    /// the stored form, see `feed::encoded`).
    pub fn raw_events_after(
        &self,
        after: u64,
    ) -> impl Iterator<Item = Result<RawEvent, StoreError>> + use<> {
        self.inner
            .trees
            .events
            .range_from(key_after(after))
            .map(|item| {
                let (k, frame) = item?;
                codec::checked(&frame, || format!("event {}", key_u64(&k)))?;
                Ok(RawEvent { frame })
            })
    }

    /// Reads every stored event and checks its checksum, decoding nothing: the floor under any
    /// replay, measured by `cbm-hub bench` as the replay's baseline. Returns how many were read.
    pub fn scan_events(&self) -> Result<u64, StoreError> {
        self.raw_events_after(0)
            .try_fold(0, |n, event| event.map(|_| n + 1))
    }

    /// Submissions in order of first publication, starting after `after_created`:
    /// (created sequence, id).
    pub fn submissions_after(
        &self,
        after_created: u64,
    ) -> impl Iterator<Item = Result<(u64, String), StoreError>> + use<> {
        self.inner
            .trees
            .by_created
            .range_from(key_after(after_created))
            .map(|item| {
                let (k, v) = item?;
                let id = String::from_utf8(v.to_vec()).map_err(|_| {
                    StoreError::Corrupt(format!("submission id at {}", key_u64(&k)))
                })?;
                Ok((key_u64(&k), id))
            })
    }

    /// Stops the writer after the commands already queued, and flushes. Blocking.
    pub fn close(&self) {
        let handle = self
            .inner
            .writer_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle {
            let (reply, _rx) = oneshot::channel();
            // Waits for room in a full queue (the writer keeps draining it): a `try_send` would
            // fail then, and the join below wait forever. An error means the writer has gone.
            // Sent from a thread of its own: `blocking_send` panics on a thread that drives a
            // tokio runtime, and `close` is also called from async code.
            let commands = self.inner.commands.clone();
            let _ = std::thread::spawn(move || {
                commands
                    .blocking_send(writer::Command::Stop { reply })
                    .is_ok()
            })
            .join();
            let _ = handle.join();
            // Nothing writes any more: a clean stop is sealed.
            if self.inner.shared.failure.get().is_none()
                && let Err(e) = self.seal()
            {
                tracing::error!(error = %e, "sealing the store at stop failed");
            }
        }
        if self.inner.shared.failure.get().is_none()
            && let Err(e) = self.inner.db.flush()
        {
            tracing::error!(error = %e, "final flush failed");
        }
    }

    /// Calls `observer` with the path of every file and directory fsynced from now on, after
    /// the fsync and before the group it makes durable is acknowledged (for tests and
    /// diagnostics; nothing is fsynced with `store.fsync` off). `None` removes it (an observer
    /// holding a handle to this store keeps it open).
    pub fn observe_syncs(&self, observer: Option<SyncObserver>) {
        *self
            .inner
            .sync_observer
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = observer;
    }
}

/// The first key after `after` in a tree keyed by u64 big-endian; past every such key when
/// `after` is the largest (a page token or cursor from a client can be anything).
pub(crate) fn key_after(after: u64) -> Vec<u8> {
    match after.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        // Nine bytes sort after every eight-byte key.
        None => vec![u8::MAX; 9],
    }
}

/// A head as far as sequence `durable`: revisions after it (applied, not yet flushed) are left
/// out, with their audiences and a withdrawal among them. None if nothing of it is durable.
fn durable_part(mut h: SubmissionHead, durable: u64) -> Option<SubmissionHead> {
    let kept = h
        .revision_seqs
        .iter()
        .take_while(|seq| **seq <= durable)
        .count();
    if kept < h.revision_seqs.len() {
        h.revision_seqs.truncate(kept);
        h.audiences.truncate(kept);
        h.withdrawn = false;
        // The time of the revision now latest is not kept in the head: unknown.
        h.latest_at.clear();
    }
    (kept > 0).then_some(h)
}

pub(crate) fn key_u64(k: &[u8]) -> u64 {
    k.try_into().map(u64::from_be_bytes).unwrap_or(u64::MAX)
}

fn last_sequence(events: &Part) -> Result<u64, StoreError> {
    match events.last()? {
        None => Ok(0),
        Some((k, v)) => {
            let seq = key_u64(&k);
            let ev: StoredEvent = codec::unframe(&v, || format!("event {seq}"))?;
            let first = events.first()?.map(|(k, _)| key_u64(&k));
            if ev.sequence != seq || first != Some(1) {
                return Err(StoreError::Corrupt(format!(
                    "the feed does not run from 1: first key {first:?}, last key {seq}, whose event says {}",
                    ev.sequence
                )));
            }
            Ok(seq)
        }
    }
}

pub(crate) fn read_head(heads: &Part, id: &str) -> Result<Option<SubmissionHead>, StoreError> {
    match heads.get(id.as_bytes())? {
        None => Ok(None),
        Some(v) => codec::unframe(&v, || format!("index of submission {id}")).map(Some),
    }
}

pub(crate) fn read_event(events: &Part, seq: u64) -> Result<StoredEvent, StoreError> {
    let v = events
        .get(seq.to_be_bytes())?
        .ok_or_else(|| StoreError::Corrupt(format!("event {seq} is indexed but missing")))?;
    codec::unframe(&v, || format!("event {seq}"))
}

/// The keyspace of a store in layout version 2 (a new store gets it). A store of another
/// layout is refused, naming what converts it: layout 1 (a tree per record kind) is migrated
/// by `cbm-hub migrate`, which keeps a backup; it is not done here, at start, because it
/// writes a second copy of the data, which the operator should choose to make room for.
fn open_layout(db: &sled::Db, dir: &Path) -> Result<Trees, StoreError> {
    if migrate::is_layout1(db)? {
        return Err(StoreError::Layout(format!(
            "{} holds layout version 1 (a tree per record kind); this build reads version {}: \
             stop the hub and run `cbm-hub migrate --data {}` (it keeps a backup of the old \
             directory beside it)",
            dir.display(),
            String::from_utf8_lossy(LAYOUT_VERSION),
            dir.display()
        )));
    }
    let trees = Trees::new(db.open_tree(keyspace::TREE)?);
    match trees.meta.get("format")? {
        None => trees.meta.insert("format", LAYOUT_VERSION)?,
        Some(v) if v.as_ref() == LAYOUT_VERSION => {}
        Some(v) => {
            return Err(StoreError::Layout(format!(
                "{} holds layout version {:?}; this build reads version {:?}",
                dir.display(),
                String::from_utf8_lossy(&v),
                String::from_utf8_lossy(LAYOUT_VERSION)
            )));
        }
    }
    Ok(trees)
}
