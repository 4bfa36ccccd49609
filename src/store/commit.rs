//! The second half of a group commit, on a thread of its own: make applied groups durable
//! (sled's flush and the fsyncs of [`super::durable`]), then answer their callers, move the
//! durable head and publish their events live, in the order the writer applied them.
//!
//! The writer applies group N+1 while group N is being made durable: the CPU of staging and
//! applying overlaps the wait for the disk, instead of adding to it. Every group is answered
//! only after a flush that started after it was applied (the flush covers every write made
//! before it starts, see `durable`), so nothing is acknowledged before it is durable. Groups
//! applied while a flush runs share the next one.
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::Ordering,
        mpsc::{Receiver, SyncSender},
    },
};

use tokio::sync::oneshot;

use super::{
    QueuedBytes, StoreError, codec,
    group::Pending,
    keyspace::Trees,
    records::{StoredEvent, SubmissionHead},
    shared::Shared,
};
use crate::{audit::LogState, domain::clock, pb::Checkpoint};

/// Applied groups waiting for their flush, at most: beyond, the writer waits (the disk sets
/// the pace).
pub(super) const IN_FLIGHT: usize = 4;

/// What the writer hands over after applying a group.
pub(super) enum Step {
    Applied(Applied),
    /// Sign and store a checkpoint of the audit log as `audit` leaves it, once everything
    /// before is durable.
    Checkpoint {
        audit: LogState,
        /// Everyone who asked for it in one group (none for the final one at a stop).
        replies: Vec<oneshot::Sender<Result<Checkpoint, StoreError>>>,
    },
    /// Nothing more comes; answered once everything before is done.
    Stop(oneshot::Sender<()>),
}

/// One applied group.
pub(super) struct Applied {
    /// Answers held until the group is durable (or, for a group that changed no data, until
    /// the groups before it are).
    pub pending: Vec<Pending>,
    /// Whether the group changed data (and needs a flush).
    pub durable: bool,
    /// The heads the group moved.
    pub moved: HashMap<String, SubmissionHead>,
    /// Its events, with their encoded sizes, to publish live.
    pub events: Vec<(Arc<StoredEvent>, usize)>,
    /// The highest feed sequence applied with it.
    pub last_seq: u64,
    /// The queue budget its commands hold, given back once it is answered.
    pub held: Vec<QueuedBytes>,
    /// The audit log state after the group, when a change of it is answered with a receipt:
    /// a checkpoint of it is signed and stored before the flush that makes the group durable,
    /// so the receipt finds it covering its entry without another flush.
    pub checkpoint: Option<LogState>,
    /// Entries in the audit log once the group is applied.
    pub audit_len: u64,
}

pub(super) struct Committer {
    shared: Arc<Shared>,
    db: sled::Db,
    trees: Trees,
    rx: Receiver<Step>,
    /// fsyncs sled's blob files and data file after each flush; None when fsync is off.
    sync: Option<super::durable::Syncer>,
    /// The heads that live events share, kept current (see [`super::live`]).
    live_heads: super::live::LiveHeads,
    /// Events encoded larger than this go to the live channel as markers (see `IN_STORAGE`).
    live_threshold: usize,
}

impl Committer {
    /// Starts the committer thread; the writer sends it [`Step`]s.
    pub fn start(
        shared: Arc<Shared>,
        db: sled::Db,
        trees: Trees,
        sync: Option<super::durable::Syncer>,
        live_threshold: usize,
    ) -> Result<(SyncSender<Step>, std::thread::JoinHandle<()>), StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(IN_FLIGHT);
        let committer = Committer {
            shared,
            db,
            trees,
            rx,
            sync,
            live_heads: Default::default(),
            live_threshold,
        };
        let handle = std::thread::Builder::new()
            .name("cbm-commit".into())
            .spawn(move || committer.run())
            .map_err(|e| StoreError::Io(format!("starting the commit thread: {e}")))?;
        Ok((tx, handle))
    }

    fn run(mut self) {
        let mut next = None;
        loop {
            let step = match next.take() {
                Some(step) => step,
                None => match self.rx.recv() {
                    Ok(step) => step,
                    Err(_) => return,
                },
            };
            match step {
                Step::Applied(first) => {
                    // Every group applied by now shares this flush.
                    let mut batch = vec![first];
                    while let Ok(step) = self.rx.try_recv() {
                        match step {
                            Step::Applied(a) => batch.push(a),
                            other => {
                                next = Some(other);
                                break;
                            }
                        }
                    }
                    self.commit(batch);
                }
                Step::Checkpoint { audit, replies } => {
                    // None asked: the final one at a stop, which flushes whatever happens.
                    let signed = self.checkpoint(&audit, replies.is_empty());
                    if replies.is_empty()
                        && let Err(e) = &signed
                    {
                        tracing::error!(error = %e, "final audit checkpoint failed");
                    }
                    for reply in replies {
                        let _ = reply.send(signed.clone());
                    }
                }
                Step::Stop(reply) => {
                    let _ = reply.send(());
                    return;
                }
            }
        }
    }

    fn commit(&mut self, batch: Vec<Applied>) {
        let failed = match self.shared.failure.get() {
            Some(reason) => Some(StoreError::Io(reason.clone())),
            None if batch.iter().any(|a| a.durable) => {
                // The latest state a group asked a checkpoint of covers every group before it;
                // stored before the flush, it is durable with them (sled recovers a prefix of
                // its writes, so never without the entries it covers).
                let covering = batch.iter().rev().find_map(|a| a.checkpoint.as_ref());
                let signed = covering.map_or(Ok(()), |audit| self.sign_and_store(audit).map(drop));
                let flushed = signed.and_then(|()| self.flush());
                if flushed.is_ok() {
                    let len = batch.iter().map(|a| a.audit_len).max().unwrap_or(0);
                    self.shared.audit_durable.fetch_max(len, Ordering::AcqRel);
                }
                flushed.err().inspect(|e| self.fail(e))
            }
            None => None,
        };
        if let Some(e) = failed {
            let e = unknown_outcome(&e);
            for applied in batch {
                for p in applied.pending {
                    p(Some(&e));
                }
            }
            return;
        }
        for mut applied in batch {
            // The queue's budget is given back with the answers.
            applied.held.clear();
            if applied.durable {
                // Durable: live events still buffered are decided against the new heads from
                // now on, before anyone (the reader who just lost access, say) can be told of
                // the change by a reply or a read.
                let changed = self.refresh_live_heads(&applied);
                // The head moves before the events go out live: a subscriber that takes one as
                // a gap (or a marker) reads storage up to the head, which must then include it.
                self.shared.head.store(applied.last_seq, Ordering::Release);
                // After the head, before the replies: a replay batch decided at this generation
                // read the new heads, and one decided before it is decided again before it is
                // sent (feed::stream), so no reader gets content the change took away once the
                // publisher has been told of it.
                if applied.moved.values().any(|h| h.revision_seqs.len() > 1) {
                    self.shared
                        .audience_generation
                        .fetch_add(1, Ordering::AcqRel);
                }
                for p in applied.pending.drain(..) {
                    p(None);
                }
                self.publish_live(&mut applied, changed);
            } else {
                for p in applied.pending.drain(..) {
                    p(None);
                }
            }
        }
    }

    /// Storage failed: sled cannot continue in this process after an I/O error (its next flush
    /// waits forever), so the store stops writing and the hub stops itself (see `serve`);
    /// a restart once the cause is fixed recovers everything acknowledged.
    fn fail(&self, e: &StoreError) {
        let reason =
            format!("storage failed ({e}); the hub must be restarted once the cause is fixed");
        tracing::error!(%reason, "stopping all writes");
        let _ = self.shared.failure.set(reason);
    }

    /// Gives the live events still out the new heads of the submissions this durable group
    /// changed, before anyone is told of the change; returns those heads for the group's own
    /// events (None: nobody to publish to).
    fn refresh_live_heads(
        &mut self,
        applied: &Applied,
    ) -> Option<HashMap<String, Arc<SubmissionHead>>> {
        let receivers = self.shared.live.receiver_count() > 0;
        // With nobody subscribed and no event out, there is nothing to build.
        if !receivers && self.live_heads.is_empty() {
            return None;
        }
        let changed: HashMap<String, Arc<SubmissionHead>> = applied
            .moved
            .iter()
            .map(|(id, head)| (id.clone(), Arc::new(head.clone())))
            .collect();
        for (id, head) in &changed {
            self.live_heads.update(id, head);
        }
        receivers.then_some(changed)
    }

    /// Publishes a durable group's events to live subscribers, each with its submission's
    /// current head (`changed`, from [`Committer::refresh_live_heads`]).
    fn publish_live(
        &mut self,
        applied: &mut Applied,
        changed: Option<HashMap<String, Arc<SubmissionHead>>>,
    ) {
        let Some(changed) = changed else {
            applied.events.clear();
            return;
        };
        for (ev, size) in applied.events.drain(..) {
            // An event too large for the live buffer's share goes as a marker: subscribers read
            // it from storage, and the buffer's bytes stay bounded.
            if size > self.live_threshold {
                let _ = self
                    .shared
                    .live
                    .send(Arc::new(super::Committed::marker(ev.sequence)));
                continue;
            }
            let Some(id) = ev.submission.as_ref().map(|s| s.id.as_str()) else {
                continue;
            };
            // An acknowledgement leaves its notice's head as stored (the durable part: a later
            // group may have moved it already).
            let durable = self.shared.head.load(Ordering::Acquire);
            let head = || match changed.get(id) {
                Some(head) => Some(head.clone()),
                None => super::read_head(&self.trees.heads, id)
                    .ok()
                    .flatten()
                    .and_then(|h| super::durable_part(h, durable))
                    .map(Arc::new),
            };
            let Some(cell) = self.live_heads.cell(id, head) else {
                tracing::error!(
                    id,
                    "a committed event's submission has no head; not published live"
                );
                continue;
            };
            // A receiver may have gone since the count: not an error.
            let _ = self
                .shared
                .live
                .send(Arc::new(super::Committed::new(ev, cell)));
        }
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        match &mut self.sync {
            Some(sync) => sync.flush(&self.db),
            None => Ok(self.db.flush().map(drop)?),
        }
    }

    /// Flushes (so the entries it covers are durable), then signs and stores a checkpoint of the
    /// audit log at `audit`'s size, unless the latest checkpoint already covers it; writes
    /// nothing when that one is durable, unless `final_flush` (a stop) asks for the flush.
    fn checkpoint(
        &mut self,
        audit: &LogState,
        final_flush: bool,
    ) -> Result<Checkpoint, StoreError> {
        if let Some(reason) = self.shared.failure.get() {
            return Err(StoreError::Io(reason.clone()));
        }
        let size = audit.frontier.size();
        // The log has not grown since a checkpoint that is durable: nothing to write.
        if !final_flush
            && self.shared.audit_durable.load(Ordering::Acquire) >= size
            && let Some(cp) = self.stored_at(size)?
        {
            return Ok(cp);
        }
        self.flush().inspect_err(|e| self.fail(e))?;
        let cp = self.sign_and_store(audit)?;
        self.flush().inspect_err(|e| self.fail(e))?;
        self.shared.audit_durable.fetch_max(size, Ordering::AcqRel);
        Ok(cp)
    }

    /// The latest stored checkpoint, if it is of `size` entries.
    fn stored_at(&self, size: u64) -> Result<Option<Checkpoint>, StoreError> {
        match self.trees.checkpoints.last()? {
            Some((k, v)) if super::key_u64(&k) == size => {
                codec::unframe(&v, || format!("checkpoint {size}")).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Signs and stores (not yet durably) a checkpoint of the audit log at `audit`'s size,
    /// unless the latest checkpoint is of that size already.
    fn sign_and_store(&mut self, audit: &LogState) -> Result<Checkpoint, StoreError> {
        let size = audit.frontier.size();
        if let Some(cp) = self.stored_at(size)? {
            return Ok(cp);
        }
        let cp = self
            .shared
            .signer
            .checkpoint(size, &audit.frontier.root(), clock::now_rfc3339());
        self.trees
            .checkpoints
            .insert(size.to_be_bytes(), codec::frame(&cp))?;
        Ok(cp)
    }
}

/// The error for the callers of a group whose commit failed half-way.
pub(super) fn unknown_outcome(e: &StoreError) -> StoreError {
    StoreError::Io(format!(
        "{e}; the change is not acknowledged and may or may not be kept: retry with the same idempotency_key after the hub restarts"
    ))
}
