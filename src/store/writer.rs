//! The single writer: assigns the gapless feed sequence, seals audit entries, and commits
//! changes in groups.
//!
//! One thread owns every write. It takes a command, then whatever else is already queued (up
//! to [`MAX_GROUP`]), checks each against the stored state plus the changes earlier in the same
//! group, and commits the whole group in one sled transaction across trees: records, indexes,
//! feed events, and the audit entries of the changes (allowed or refused). A group holding a
//! change is then flushed and fsynced once (sled's blob files and its data file, see
//! [`super::durable`]) before any of its callers is answered and its events are published
//! live. A group of audit entries alone (reads, refusals, deliveries) is applied without a
//! flush of its own: it is made durable by the next group commit or by sled's periodic flush,
//! so reads never pay for a flush.
//!
//! If the transaction or the flush fails, the callers get an error saying the outcome is
//! unknown (retry with the idempotency key), and the writer stops touching storage: sled 0.34
//! cannot go on after an I/O error in the same process. The hub then stops itself; a restart,
//! once the cause (a full disk, say) is fixed, recovers every acknowledged change.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock, atomic::AtomicU64},
};

use sled::Transactional;
use tokio::sync::{broadcast, mpsc, oneshot};

pub use super::changes::{Change, ChangeOp, Outcome};
use super::{
    QueuedBytes, StoreError, Trees,
    acks::AckRequest,
    codec,
    members::{self, MemberOp},
    records::{IdempotencyRecord, StoredEvent, SubmissionHead},
};
use crate::{
    audit::{LogState, Origin, REFUSED, bound, signing::Signer},
    domain::{
        budget::Budget,
        catalogue::Catalogue,
        clock,
        member::{Member, Registry},
    },
    pb::{self, AuditEntry, Checkpoint},
};

/// Most commands committed in one group.
const MAX_GROUP: usize = 1024;
/// Key of the audit log state (chain hash and Merkle frontier) in `meta`.
pub(super) const AUDIT_STATE_KEY: &[u8] = b"audit_state";

pub(crate) enum Command {
    Change {
        actor: Arc<Member>,
        origin: Origin,
        // Boxed: content is large next to the other commands.
        change: Box<Change>,
        /// The content's share of the queue's byte budget, held until the group is committed.
        bytes: QueuedBytes,
        reply: oneshot::Sender<Result<Outcome, StoreError>>,
    },
    Member {
        op: MemberOp,
        origin: Origin,
        reply: oneshot::Sender<Result<Member, StoreError>>,
    },
    Acknowledge {
        actor: Arc<Member>,
        origin: Origin,
        request: AckRequest,
        reply: oneshot::Sender<Result<pb::Acknowledgement, StoreError>>,
    },
    /// Starts a ping campaign: its notices, one per tested member, all or none.
    StartCampaign {
        actor: Arc<Member>,
        origin: Origin,
        start: Box<super::campaign_start::CampaignStart>,
        reply: oneshot::Sender<Result<Outcome, StoreError>>,
    },
    /// Records that a ping campaign's deadline has passed.
    CloseCampaign {
        id: String,
        reply: oneshot::Sender<Result<pb::PingCampaign, StoreError>>,
    },
    AddFramework {
        framework: Box<pb::Framework>,
        origin: Origin,
        reply: oneshot::Sender<Result<pb::Framework, StoreError>>,
    },
    /// Entries about requests decided outside the writer (reads, refusals, deliveries), with
    /// their share of the queue's byte budget.
    Audit(Vec<AuditEntry>, QueuedBytes),
    /// Make everything durable and sign a checkpoint of the audit log.
    Checkpoint {
        reply: oneshot::Sender<Result<Checkpoint, StoreError>>,
    },
    Stop {
        reply: oneshot::Sender<()>,
    },
    /// Holds the writer until released or the sender drops (tests: a queue that stays full).
    #[cfg(test)]
    Pause(std::sync::mpsc::Receiver<()>),
}

/// An answer held back until its group is durable: sends the value, or the group's error.
type Pending = Box<dyn FnOnce(Option<&StoreError>) + Send>;

fn pending<V: Send + 'static>(tx: oneshot::Sender<Result<V, StoreError>>, value: V) -> Pending {
    Box::new(move |error| {
        let _ = tx.send(match error {
            None => Ok(value),
            Some(e) => Err(e.clone()),
        });
    })
}

/// Trees a group writes to, by position in the transaction.
#[derive(Clone, Copy)]
pub(super) enum T {
    Events = 0,
    Heads = 1,
    ByCreated = 2,
    Idempotency = 3,
    Members = 4,
    Audit = 5,
    Meta = 6,
    ByKind = 7,
    Acks = 8,
    Campaigns = 9,
    Verified = 10,
    Catalogue = 11,
    CampaignNotices = 12,
}

/// The changes of one group, and the state they produce, before commit.
pub(super) struct Group {
    pub writes: Vec<(T, Vec<u8>, Vec<u8>)>,
    /// Submission index entries and latest events changed in this group.
    pub heads: HashMap<String, (SubmissionHead, Arc<StoredEvent>)>,
    /// Idempotency records written in this group.
    pub idempotency: HashMap<Vec<u8>, IdempotencyRecord>,
    /// The registry with this group's changes, if any.
    registry: Option<Registry>,
    /// The catalogue with this group's additions, if any.
    catalogue: Option<Catalogue>,
    /// Acknowledgements and campaigns written in this group, by key.
    pub acks: HashMap<Vec<u8>, pb::Acknowledgement>,
    pub campaigns: HashMap<String, pb::PingCampaign>,
    /// Ping notice id -> campaign id, for the campaigns started in this group.
    pub campaign_notices: HashMap<String, String>,
    /// The audit log state after this group's entries.
    pub audit: LogState,
    /// Events of this group with their encoded sizes, published live once it is durable
    /// (shared with `heads`).
    pub events: Vec<(Arc<StoredEvent>, usize)>,
    pending: Vec<Pending>,
    /// Whether the group changes data (and so is flushed before answering).
    durable: bool,
    pub next_seq: u64,
    checkpoints: Vec<oneshot::Sender<Result<Checkpoint, StoreError>>>,
    stop: Option<oneshot::Sender<()>>,
    /// The queue budget the group's commands hold, given back when the group is dropped.
    held: Vec<QueuedBytes>,
}

impl Group {
    /// The registry as this group leaves it (`committed` if the group does not change it).
    pub(super) fn registry_or<'a>(&'a self, committed: &'a Registry) -> &'a Registry {
        self.registry.as_ref().unwrap_or(committed)
    }

    /// Seals an audit entry built by the writer into this group, its fields bounded.
    pub(super) fn audit(&mut self, entry: AuditEntry) {
        for part in bound::entry(entry) {
            self.seal(part);
        }
    }

    /// Seals an entry whose fields were bounded where it was built ([`super::Store::audit`]);
    /// the size limit is enforced here, where every entry passes.
    fn append(&mut self, entry: AuditEntry) {
        for part in bound::split(entry) {
            self.seal(part);
        }
    }

    fn seal(&mut self, mut entry: AuditEntry) {
        entry.at = clock::now_rfc3339();
        let sealed = self.audit.seal(entry);
        self.writes.push((
            T::Audit,
            sealed.sequence.to_be_bytes().to_vec(),
            codec::frame(&sealed),
        ));
    }

    /// Refuses a record larger than the budget allows, before anything of it is staged: every
    /// record must fit every exit (see `domain::budget`).
    pub(super) fn fits(
        &self,
        budget: &Budget,
        framed: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<(), StoreError> {
        if framed.len() <= budget.record() {
            return Ok(());
        }
        Err(StoreError::TooLarge(format!(
            "{}: too large: the record would be {} bytes; at most {} are stored (the message limit)",
            what(),
            framed.len(),
            budget.record()
        )))
    }
}

pub(crate) struct Writer {
    pub db: sled::Db,
    pub trees: Trees,
    /// fsyncs sled's blob files and data file after each flush; None when fsync is off.
    pub sync: Option<super::durable::Syncer>,
    /// Next feed sequence number to assign.
    pub next_seq: u64,
    /// The committed registry (authoritative copy).
    pub registry: Registry,
    pub registry_shared: Arc<RwLock<Arc<Registry>>>,
    /// The committed catalogue (authoritative copy).
    pub catalogue: Catalogue,
    pub catalogue_shared: Arc<RwLock<Arc<Catalogue>>>,
    pub head: Arc<AtomicU64>,
    /// Bumped when a durable group revised or withdrew something (see
    /// [`super::Store::audience_generation`]).
    pub audience_generation: Arc<AtomicU64>,
    pub registry_generation: Arc<tokio::sync::watch::Sender<u64>>,
    pub live: broadcast::Sender<Arc<super::Committed>>,
    pub rx: mpsc::Receiver<Command>,
    /// Set once storage fails; from then on nothing is written (see [`Writer::fail`]).
    pub failure: Arc<std::sync::OnceLock<String>>,
    /// The committed audit log state.
    pub audit: LogState,
    /// Its length, shared with readers (metrics).
    pub audit_len: Arc<AtomicU64>,
    pub signer: Arc<Signer>,
    /// The heads that live events share, kept current (see [`super::live`]).
    pub live_heads: super::live::LiveHeads,
    /// Changes are refused while the disk is below its reserve.
    pub disk: Arc<super::disk::DiskWatch>,
    /// The byte budgets: no record over them is stored.
    pub budget: Budget,
    /// Events encoded larger than this go to the live channel as markers (see `IN_STORAGE`).
    pub live_threshold: usize,
}

impl Writer {
    pub fn run(mut self) {
        while let Some(first) = self.rx.blocking_recv() {
            if let Command::Stop { reply } = first {
                self.stop(reply);
                return;
            }
            // After a storage failure sled is not touched again (its flush would wait forever):
            // every command is refused until the hub is restarted.
            if let Some(reason) = self.failure.get() {
                refuse(first, StoreError::Io(reason.clone()));
                continue;
            }
            let mut group = Group {
                writes: Vec::new(),
                heads: HashMap::new(),
                idempotency: HashMap::new(),
                registry: None,
                catalogue: None,
                acks: HashMap::new(),
                campaigns: HashMap::new(),
                campaign_notices: HashMap::new(),
                audit: self.audit.clone(),
                events: Vec::new(),
                pending: Vec::new(),
                durable: false,
                next_seq: self.next_seq,
                checkpoints: Vec::new(),
                stop: None,
                held: Vec::new(),
            };
            self.prepare(first, &mut group);
            while group.pending.len() < MAX_GROUP && group.stop.is_none() {
                match self.rx.try_recv() {
                    Ok(cmd) => self.prepare(cmd, &mut group),
                    Err(_) => break,
                }
            }
            self.commit(&mut group);
            for reply in group.checkpoints.drain(..) {
                let _ = reply.send(self.checkpoint());
            }
            if let Some(stop) = group.stop.take() {
                self.stop(stop);
                return;
            }
        }
        if self.failure.get().is_none()
            && let Err(e) = self.db.flush()
        {
            tracing::error!(error = %e, "flush at writer stop failed");
        }
    }

    /// Final flush and checkpoint, so verification after a restart covers everything.
    fn stop(&mut self, reply: oneshot::Sender<()>) {
        if self.failure.get().is_none()
            && let Err(e) = self.checkpoint()
        {
            tracing::error!(error = %e, "final audit checkpoint failed");
        }
        let _ = reply.send(());
    }

    /// Storage failed: sled cannot continue in this process after an I/O error (its next flush
    /// waits forever), so the store stops writing and the hub stops itself (see `serve`);
    /// a restart once the cause is fixed recovers everything acknowledged.
    fn fail(&mut self, e: &StoreError) {
        let reason =
            format!("storage failed ({e}); the hub must be restarted once the cause is fixed");
        tracing::error!(%reason, "stopping all writes");
        let _ = self.failure.set(reason);
    }

    fn prepare(&mut self, cmd: Command, group: &mut Group) {
        match cmd {
            Command::Change {
                actor,
                origin,
                change,
                bytes,
                reply,
            } => {
                group.held.push(bytes);
                let action = change.op.action();
                let mut entry = origin.entry(action);
                entry.object_id = change.op.object_id().to_string();
                // A withdrawal brings no content and retracts what should not be shared: the
                // disk reserve does not hold it back.
                let admitted = match change.op {
                    ChangeOp::Withdraw { .. } => Ok(()),
                    _ => self.disk.admit(),
                };
                let prepared = admitted.and_then(|()| self.prepare_change(&actor, *change, group));
                match prepared {
                    Ok((outcome, label)) => {
                        entry.object_id = outcome.id.clone();
                        entry.revision = outcome.revision;
                        entry.label = label;
                        entry.feed_sequence = if outcome.replayed {
                            0
                        } else {
                            outcome.sequence
                        };
                        if outcome.replayed {
                            entry.detail =
                                format!("idempotent replay of sequence {}", outcome.sequence);
                        }
                        group.audit(entry);
                        group.durable = true;
                        group.pending.push(pending(reply, outcome));
                    }
                    Err(e) => {
                        group.audit(refused(entry, &e));
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Member { op, origin, reply } => {
                let mut entry = origin.entry(op.action());
                entry.object_id = op.member_id().to_string();
                entry.detail = op.detail().to_string();
                let mut registry = group
                    .registry
                    .take()
                    .unwrap_or_else(|| self.registry.clone());
                // Registry changes are not held back by the disk reserve: they are small, and
                // locking a member out must always be possible.
                match members::apply(&mut registry, op, &clock::now_rfc3339()) {
                    Ok(member) => {
                        group.writes.push((
                            T::Members,
                            member.id.as_bytes().to_vec(),
                            members::encode(&member),
                        ));
                        group.audit(entry);
                        group.durable = true;
                        group.pending.push(pending(reply, member));
                    }
                    Err(e) => {
                        group.audit(refused(entry, &e));
                        let _ = reply.send(Err(e));
                    }
                }
                group.registry = Some(registry);
            }
            Command::Acknowledge {
                actor,
                origin,
                request,
                reply,
            } => {
                let mut entry = origin.entry("notice.acknowledge");
                entry.object_id = request.notice_id.clone();
                let prepared = self
                    .disk
                    .admit()
                    .and_then(|()| self.prepare_ack(&actor, request, group));
                match prepared {
                    Ok(ack) => {
                        entry.revision = ack.notice_revision;
                        entry.feed_sequence = if ack.replayed { 0 } else { ack.sequence };
                        entry.detail = if ack.replayed {
                            format!("repeat of the acknowledgement at sequence {}", ack.sequence)
                        } else if ack.on_time {
                            "on time".into()
                        } else {
                            format!("late: the deadline was {}", ack.deadline)
                        };
                        group.audit(entry);
                        group.durable = true;
                        group.pending.push(pending(reply, ack));
                    }
                    Err(e) => {
                        group.audit(refused(entry, &e));
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::StartCampaign {
                actor,
                origin,
                start,
                reply,
            } => match self.prepare_campaign(&actor, &origin, *start, group) {
                Ok(outcome) => {
                    group.durable = true;
                    group.pending.push(pending(reply, outcome));
                }
                Err(e) => {
                    group.audit(refused(origin.entry(super::campaign_start::START), &e));
                    let _ = reply.send(Err(e));
                }
            },
            Command::CloseCampaign { id, reply } => match self.prepare_close(&id, group) {
                Ok((campaign, entry)) => {
                    if let Some(entry) = entry {
                        group.audit(entry);
                        group.durable = true;
                    }
                    group.pending.push(pending(reply, campaign));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::AddFramework {
                framework,
                origin,
                reply,
            } => {
                let mut entry = origin.entry("catalogue.add_framework");
                entry.object_id = framework.id.clone();
                let mut catalogue = group
                    .catalogue
                    .take()
                    .unwrap_or_else(|| self.catalogue.clone());
                let added = self
                    .disk
                    .admit()
                    .and_then(|()| super::catalogue::add(&mut catalogue, *framework));
                match added {
                    Ok((key, value, added)) => {
                        group.writes.push((T::Catalogue, key, value));
                        group.audit(entry);
                        group.durable = true;
                        group.pending.push(pending(reply, added));
                    }
                    Err(e) => {
                        group.audit(refused(entry, &e));
                        let _ = reply.send(Err(e));
                    }
                }
                group.catalogue = Some(catalogue);
            }
            Command::Audit(entries, bytes) => {
                group.held.push(bytes);
                for e in entries {
                    group.append(e);
                }
            }
            Command::Checkpoint { reply } => group.checkpoints.push(reply),
            Command::Stop { reply } => group.stop = Some(reply),
            #[cfg(test)]
            Command::Pause(release) => drop(release.recv()),
        }
    }

    /// Applies the group, makes it durable if it changes data, then answers its callers and
    /// publishes its events.
    fn commit(&mut self, group: &mut Group) {
        let pending = std::mem::take(&mut group.pending);
        if group.writes.is_empty() {
            answer(pending, None);
            return;
        }
        if group.audit != self.audit {
            group
                .writes
                .push((T::Meta, AUDIT_STATE_KEY.to_vec(), group.audit.to_bytes()));
        }
        if let Err(e) = self.apply(&group.writes) {
            // Whether sled kept any of it in memory is unknown after an I/O error: no further
            // write is attempted, and no number of this group is given to another change.
            self.fail(&e);
            answer(pending, Some(unknown_outcome(&e)));
            return;
        }
        // Applied: these numbers are used from now on, whatever the flush says, so they are
        // never given to other changes or entries.
        self.next_seq = group.next_seq;
        self.audit = group.audit.clone();
        self.audit_len.store(
            self.audit.frontier.size(),
            std::sync::atomic::Ordering::Release,
        );
        if let Some(registry) = group.registry.take() {
            *self
                .registry_shared
                .write()
                .unwrap_or_else(|p| p.into_inner()) = Arc::new(registry.clone());
            self.registry = registry;
            // Wakes open streams at once (they re-check their member).
            self.registry_generation.send_modify(|g| *g += 1);
        }
        if let Some(catalogue) = group.catalogue.take() {
            *self
                .catalogue_shared
                .write()
                .unwrap_or_else(|p| p.into_inner()) = Arc::new(catalogue.clone());
            self.catalogue = catalogue;
        }
        if !group.durable {
            answer(pending, None);
            return;
        }
        match self.flush() {
            Ok(()) => {
                // Durable: live events still buffered are decided against the new heads from
                // now on, before anyone (the reader who just lost access, say) can be told of
                // the change by a reply or a read.
                if group.heads.values().any(|(h, _)| h.revision_seqs.len() > 1) {
                    self.audience_generation
                        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                }
                let changed = self.refresh_live_heads(group);
                // The head moves before the events go out live: a subscriber that takes one as a
                // gap (or a marker) reads storage up to the head, which must then include it.
                self.head
                    .store(self.next_seq - 1, std::sync::atomic::Ordering::Release);
                answer(pending, None);
                self.publish_live(group, changed);
            }
            Err(e) => {
                self.fail(&e);
                answer(pending, Some(unknown_outcome(&e)));
            }
        }
    }

    /// Gives the live events still out the new heads of the submissions this durable group
    /// changed, before anyone is told of the change; returns those heads for the group's own
    /// events (None: nobody to publish to).
    fn refresh_live_heads(
        &mut self,
        group: &Group,
    ) -> Option<HashMap<String, Arc<SubmissionHead>>> {
        let receivers = self.live.receiver_count() > 0;
        // With nobody subscribed and no event out, there is nothing to build.
        if !receivers && self.live_heads.is_empty() {
            return None;
        }
        let changed: HashMap<String, Arc<SubmissionHead>> = group
            .heads
            .iter()
            .map(|(id, (head, _))| (id.clone(), Arc::new(head.clone())))
            .collect();
        for (id, head) in &changed {
            self.live_heads.update(id, head);
        }
        receivers.then_some(changed)
    }

    /// Publishes a durable group's events to live subscribers, each with its submission's
    /// current head (`changed`, from [`Writer::refresh_live_heads`]).
    fn publish_live(
        &mut self,
        group: &mut Group,
        changed: Option<HashMap<String, Arc<SubmissionHead>>>,
    ) {
        let Some(changed) = changed else {
            group.events.clear();
            return;
        };
        for (ev, size) in group.events.drain(..) {
            // An event too large for the live buffer's share goes as a marker: subscribers read
            // it from storage, and the buffer's bytes stay bounded.
            if size > self.live_threshold {
                let _ = self
                    .live
                    .send(Arc::new(super::Committed::marker(ev.sequence)));
                continue;
            }
            let Some(id) = ev.submission.as_ref().map(|s| s.id.as_str()) else {
                continue;
            };
            // An acknowledgement leaves its notice's head as stored.
            let head = || match changed.get(id) {
                Some(head) => Some(head.clone()),
                None => super::read_head(&self.trees.heads, id)
                    .ok()
                    .flatten()
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
            let _ = self.live.send(Arc::new(super::Committed::new(ev, cell)));
        }
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        match &mut self.sync {
            Some(sync) => sync.flush(&self.db),
            None => Ok(self.db.flush().map(drop)?),
        }
    }

    /// Flushes (so the entries it covers are durable), then signs and stores a checkpoint of the
    /// audit log at its current size, unless the latest checkpoint already covers it.
    fn checkpoint(&mut self) -> Result<Checkpoint, StoreError> {
        if let Some(reason) = self.failure.get() {
            return Err(StoreError::Io(reason.clone()));
        }
        self.flush()?;
        let size = self.audit.frontier.size();
        if let Some((k, v)) = self.trees.checkpoints.last()?
            && super::key_u64(&k) == size
        {
            return codec::unframe(&v, || format!("checkpoint {size}"));
        }
        let cp = self
            .signer
            .checkpoint(size, &self.audit.frontier.root(), clock::now_rfc3339());
        self.trees
            .checkpoints
            .insert(size.to_be_bytes(), codec::frame(&cp))?;
        self.flush()?;
        Ok(cp)
    }

    fn apply(&self, writes: &[(T, Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        let t = &self.trees;
        let trees = [
            &t.events,
            &t.heads,
            &t.by_created,
            &t.idempotency,
            &t.members,
            &t.audit,
            &t.meta,
            &t.by_kind,
            &t.acks,
            &t.campaigns,
            &t.verified,
            &t.catalogue,
            &t.campaign_notices,
        ];
        trees[..]
            .transaction(|tx| {
                for (tree, key, value) in writes {
                    tx[*tree as usize].insert(key.as_slice(), value.as_slice())?;
                }
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::from(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Io("transaction aborted".into())
                }
            })
    }
}

/// The error for the callers of a group whose commit failed half-way.
fn unknown_outcome(e: &StoreError) -> StoreError {
    StoreError::Io(format!(
        "{e}; the change is not acknowledged and may or may not be kept: retry with the same idempotency_key after the hub restarts"
    ))
}

/// The entry for a refused request: the reason in fixed words, never the error's message
/// (which may quote the request).
fn refused(mut entry: AuditEntry, e: &StoreError) -> AuditEntry {
    entry.outcome = REFUSED.to_string();
    entry.reason = e.audit_reason();
    entry
}

/// Answers a command that cannot be attempted.
fn refuse(cmd: Command, e: StoreError) {
    let e = StoreError::Io(format!(
        "storage is failing ({e}); nothing was changed, retry later"
    ));
    match cmd {
        Command::Change { reply, .. } => drop(reply.send(Err(e))),
        Command::Member { reply, .. } => drop(reply.send(Err(e))),
        Command::Acknowledge { reply, .. } => drop(reply.send(Err(e))),
        Command::StartCampaign { reply, .. } => drop(reply.send(Err(e))),
        Command::CloseCampaign { reply, .. } => drop(reply.send(Err(e))),
        Command::AddFramework { reply, .. } => drop(reply.send(Err(e))),
        Command::Checkpoint { reply } => drop(reply.send(Err(e))),
        // The writer cannot write them while storage fails: they go to the log instead.
        Command::Audit(entries, _) => {
            tracing::error!(entries = entries.len(), error = %e, "audit entries not written")
        }
        Command::Stop { reply } => drop(reply.send(())),
        #[cfg(test)]
        Command::Pause(_) => {}
    }
}

fn answer(pending: Vec<Pending>, error: Option<StoreError>) {
    for p in pending {
        p(error.as_ref());
    }
}
