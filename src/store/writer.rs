//! The single writer: assigns the gapless feed sequence, seals audit entries, and commits
//! changes in groups.
//!
//! One thread owns every write. It takes a command, then whatever else is already queued (up
//! to [`MAX_GROUP`]), asks the domain's rules (`domain::rules`) about each against the stored
//! state plus the changes earlier in the same group ([`GroupView`]), stages the records of what
//! they allow, and commits the whole group as one `sled::Batch` on the one keyspace tree
//! (`keyspace`): records, indexes, feed events, and the audit entries of the changes (allowed
//! or refused). The writer is mechanism only: sequencing, staging, commit, flush. A group holding a
//! change is then flushed and fsynced once (sled's blob files and its data file, see
//! [`super::durable`]) before any of its callers is answered and its events are published
//! live. A group of audit entries alone (reads, refusals, deliveries) is applied without a
//! flush of its own: it is made durable by the next group commit or by sled's periodic flush,
//! so reads never pay for a flush.
//!
//! If the batch or the flush fails, the callers get an error saying the outcome is
//! unknown (retry with the idempotency key), and the writer stops touching storage: sled 0.34
//! cannot go on after an I/O error in the same process. The hub then stops itself; a restart,
//! once the cause (a full disk, say) is fixed, recovers every acknowledged change.
use std::{
    collections::HashMap,
    sync::{Arc, atomic::Ordering},
};

use tokio::sync::{mpsc, oneshot};

pub use super::changes::{Change, ChangeOp, Outcome};
use super::{
    MemberOp, QueuedBytes, StoreError,
    acks::AckRequest,
    commit::{Applied, Committer, Step, unknown_outcome},
    group::{Group, GroupView, Pending, pending},
    keyspace::{Rec, Trees},
    members::{self},
    shared::Shared,
};
use crate::{
    audit::{LogState, Origin, REFUSED},
    domain::{
        budget::Budget,
        catalogue::Catalogue,
        clock,
        member::{Member, Registry},
        rules,
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
    /// Answered by the writer once everything queued before it is applied (readable), without
    /// waiting for a flush: reads that must see the entries their caller's earlier requests
    /// queued.
    Settled {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Stop {
        reply: oneshot::Sender<()>,
    },
    /// Holds the writer until released or the sender drops (tests: a queue that stays full).
    #[cfg(test)]
    Pause(std::sync::mpsc::Receiver<()>),
}

pub(crate) struct Writer {
    /// What readers see of the writer's work (registry, head, live channel, failure ...).
    shared: Arc<Shared>,
    trees: Trees,
    rx: mpsc::Receiver<Command>,
    /// Next feed sequence number to assign.
    next_seq: u64,
    /// The applied audit log state.
    audit: LogState,
    /// Applied groups go here to be made durable and answered ([`super::commit`]).
    commit: std::sync::mpsc::SyncSender<Step>,
    /// The commit thread, joined when the writer stops.
    committer: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub fn new(
        shared: Arc<Shared>,
        db: sled::Db,
        trees: Trees,
        rx: mpsc::Receiver<Command>,
        sync: Option<super::durable::Syncer>,
        audit: LogState,
        live_threshold: usize,
    ) -> Result<Writer, StoreError> {
        let next_seq = shared.head.load(Ordering::Acquire) + 1;
        let (commit, committer) =
            Committer::start(shared.clone(), db, trees.clone(), sync, live_threshold)?;
        Ok(Writer {
            shared,
            trees,
            rx,
            next_seq,
            audit,
            commit,
            committer: Some(committer),
        })
    }

    /// The rules' view of the state: stored records with `group`'s over them.
    pub(super) fn view<'a>(&'a self, group: &'a Group) -> GroupView<'a> {
        GroupView {
            trees: &self.trees,
            staged: &group.staged,
        }
    }

    /// The committed registry.
    pub(super) fn shared_registry(&self) -> Arc<Registry> {
        self.shared.registry()
    }

    pub(super) fn budget(&self) -> &Budget {
        &self.shared.budget
    }

    pub fn run(mut self) {
        while let Some(first) = self.rx.blocking_recv() {
            if let Command::Stop { reply } = first {
                self.stop(reply);
                return;
            }
            // After a storage failure sled is not touched again (its flush would wait forever):
            // every command is refused until the hub is restarted.
            if let Some(reason) = self.shared.failure.get() {
                refuse(first, StoreError::Io(reason.clone()));
                continue;
            }
            let mut group = Group::new(self.audit.clone(), self.next_seq);
            self.prepare(first, &mut group);
            while group.pending.len() < MAX_GROUP && group.stop.is_none() {
                match self.rx.try_recv() {
                    Ok(cmd) => self.prepare(cmd, &mut group),
                    Err(_) => break,
                }
            }
            self.commit(&mut group);
            // Applied is readable: no need to wait for the flush (nor to hang on one).
            let applied = match self.shared.failure.get() {
                Some(reason) => Err(StoreError::Io(reason.clone())),
                None => Ok(()),
            };
            for reply in group.settled.drain(..) {
                let _ = reply.send(applied.clone());
            }
            if !group.checkpoints.is_empty() {
                self.step(Step::Checkpoint {
                    audit: self.audit.clone(),
                    replies: std::mem::take(&mut group.checkpoints),
                });
            }
            if let Some(stop) = group.stop.take() {
                self.stop(stop);
                return;
            }
        }
        let (reply, _) = oneshot::channel();
        self.stop(reply);
    }

    /// Final flush and checkpoint, so verification after a restart covers everything; answers
    /// once the commit thread has done everything handed to it.
    fn stop(&mut self, reply: oneshot::Sender<()>) {
        self.step(Step::Checkpoint {
            audit: self.audit.clone(),
            replies: Vec::new(),
        });
        self.step(Step::Stop(reply));
        if let Some(committer) = self.committer.take() {
            let _ = committer.join();
        }
    }

    /// Hands a step to the commit thread (which only goes away after `Stop`, or by a panic:
    /// then the step's callers learn that the store is closed).
    fn step(&self, step: Step) {
        if let Err(std::sync::mpsc::SendError(step)) = self.commit.send(step) {
            tracing::error!("the commit thread has gone");
            match step {
                Step::Applied(a) => answer(a.pending, Some(StoreError::Closed)),
                Step::Checkpoint { replies, .. } => {
                    for reply in replies {
                        let _ = reply.send(Err(StoreError::Closed));
                    }
                }
                Step::Stop(reply) => drop(reply.send(())),
            }
        }
    }

    /// Storage failed: sled cannot continue in this process after an I/O error (its next flush
    /// waits forever), so the store stops writing and the hub stops itself (see `serve`);
    /// a restart once the cause is fixed recovers everything acknowledged.
    fn fail(&mut self, e: &StoreError) {
        let reason =
            format!("storage failed ({e}); the hub must be restarted once the cause is fixed");
        tracing::error!(%reason, "stopping all writes");
        let _ = self.shared.failure.set(reason);
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
                let receipt = change.receipt;
                let action = change.op.action();
                let mut entry = origin.entry(action);
                entry.object_id = change.op.object_id().to_string();
                // A withdrawal brings no content and retracts what should not be shared: the
                // disk reserve does not hold it back.
                let admitted = match change.op {
                    ChangeOp::Withdraw { .. } => Ok(()),
                    _ => self.shared.disk.admit(),
                };
                let prepared = admitted.and_then(|()| self.prepare_change(&actor, *change, group));
                match prepared {
                    Ok((outcome, label)) => {
                        // Only an accepted change is answered with a receipt.
                        group.receipt |= receipt;
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
                    .unwrap_or_else(|| Registry::clone(&self.shared.registry()));
                // Registry changes are not held back by the disk reserve: they are small, and
                // locking a member out must always be possible.
                match rules::registry::apply(&mut registry, op, &clock::now_rfc3339())
                    .map_err(StoreError::from)
                {
                    Ok(member) => {
                        group.put(Rec::Members, member.id.as_bytes(), members::encode(&member));
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
                    .shared
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
                    .unwrap_or_else(|| Catalogue::clone(&self.shared.catalogue()));
                let added = self
                    .shared
                    .disk
                    .admit()
                    .and_then(|()| super::catalogue::add(&mut catalogue, *framework));
                match added {
                    Ok((key, value, added)) => {
                        group.put(Rec::Catalogue, &key, value);
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
            Command::Settled { reply } => group.settled.push(reply),
            Command::Stop { reply } => group.stop = Some(reply),
            #[cfg(test)]
            Command::Pause(release) => drop(release.recv()),
        }
    }

    /// Applies the group as one batch, then hands it to the commit thread, which makes it
    /// durable (if it changes data), answers its callers and publishes its events.
    fn commit(&mut self, group: &mut Group) {
        let pending = std::mem::take(&mut group.pending);
        if group.staged.is_empty() {
            // Answered in order with the groups before it.
            self.step(Step::Applied(Applied {
                pending,
                durable: false,
                moved: HashMap::new(),
                events: Vec::new(),
                last_seq: self.next_seq - 1,
                held: std::mem::take(&mut group.held),
                checkpoint: None,
                audit_len: self.audit.frontier.size(),
            }));
            return;
        }
        if group.audit != self.audit {
            group.put(Rec::Meta, AUDIT_STATE_KEY, group.audit.to_bytes());
        }
        // One batch, applied atomically to the one tree: after a crash either all of the
        // group's records are there or none.
        if let Err(e) = self.trees.all.apply_batch(group.staged.take_batch()) {
            // Whether sled kept any of it in memory is unknown after an I/O error: no further
            // write is attempted, and no number of this group is given to another change.
            let e = StoreError::from(e);
            self.fail(&e);
            answer(pending, Some(unknown_outcome(&e)));
            return;
        }
        // Before the group is durable, so that no reader decides one of its submissions from
        // a first event alone once its later revision is readable.
        let revised: Vec<&String> = group
            .moved
            .iter()
            .filter(|(_, h)| h.revision_seqs.len() > 1)
            .map(|(id, _)| id)
            .collect();
        if !revised.is_empty() {
            let mut set = self
                .shared
                .revised
                .write()
                .unwrap_or_else(|p| p.into_inner());
            set.extend(revised.into_iter().map(|id| Box::from(id.as_str())));
        }
        // Applied: these numbers are used from now on, whatever the flush says, so they are
        // never given to other changes or entries.
        self.next_seq = group.next_seq;
        self.audit = group.audit.clone();
        self.shared
            .audit_len
            .store(self.audit.frontier.size(), Ordering::Release);
        if let Some(registry) = group.registry.take() {
            *self
                .shared
                .registry
                .write()
                .unwrap_or_else(|p| p.into_inner()) = Arc::new(registry);
            // Wakes open streams at once (they re-check their member).
            self.shared.registry_generation.send_modify(|g| *g += 1);
        }
        if let Some(catalogue) = group.catalogue.take() {
            *self
                .shared
                .catalogue
                .write()
                .unwrap_or_else(|p| p.into_inner()) = Arc::new(catalogue);
        }
        self.step(Step::Applied(Applied {
            pending,
            durable: group.durable,
            moved: std::mem::take(&mut group.moved),
            events: std::mem::take(&mut group.events),
            last_seq: self.next_seq - 1,
            held: std::mem::take(&mut group.held),
            checkpoint: group.receipt.then(|| self.audit.clone()),
            audit_len: self.audit.frontier.size(),
        }));
    }
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
        Command::Settled { reply } => drop(reply.send(Err(e))),
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
