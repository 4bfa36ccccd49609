//! The single writer: assigns the gapless feed sequence and commits changes in groups.
//!
//! One thread owns every write. It takes a command, then whatever else is already queued (up
//! to [`MAX_GROUP`]), checks each against the stored state plus the changes earlier in the same
//! group, and commits the whole group in one sled transaction across trees followed by one flush
//! and one fdatasync. Only then are the callers answered and the events published live. If the
//! commit fails, every caller of the group gets the error and the sequence counter is not
//! advanced, so numbers are never skipped or reused.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock, atomic::AtomicU64},
};

use prost::Message;
use sha2::{Digest, Sha256};
use sled::Transactional;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{
    StoreError, Trees, codec,
    members::{self, MemberOp},
    read_event, read_head,
    records::{self, AudienceRecord, IdempotencyRecord, StoredEvent, SubmissionHead},
};
use crate::{
    domain::{
        Invalid, clock,
        kind::Kind,
        member::{Member, Registry},
        tlp::{self, Audience},
    },
    pb::{PublishResponse, Submission, SubmissionContent},
};

/// Most commands committed in one group.
const MAX_GROUP: usize = 1024;

/// A submission change as a publisher asks for it, content already validated.
#[derive(Debug, Clone)]
pub struct Change {
    pub op: ChangeOp,
    /// Client key making retries return the first result.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ChangeOp {
    Publish {
        content: SubmissionContent,
        kind: Kind,
    },
    Revise {
        id: String,
        content: SubmissionContent,
        kind: Kind,
        expected_revision: u32,
    },
    Withdraw {
        id: String,
        reason: String,
        expected_revision: u32,
    },
}

/// The answer to an accepted change.
pub type Outcome = PublishResponse;

pub(crate) enum Command {
    Change {
        actor: Arc<Member>,
        // Boxed: content is large next to the other commands.
        change: Box<Change>,
        reply: oneshot::Sender<Result<Outcome, StoreError>>,
    },
    Member {
        op: MemberOp,
        reply: oneshot::Sender<Result<Member, StoreError>>,
    },
    Stop {
        reply: oneshot::Sender<()>,
    },
}

/// An answer held back until its group is durable.
enum Pending {
    Change(oneshot::Sender<Result<Outcome, StoreError>>, Outcome),
    Member(oneshot::Sender<Result<Member, StoreError>>, Member),
}

/// Trees a group writes to, by position in the transaction.
#[derive(Clone, Copy)]
enum T {
    Events = 0,
    Heads = 1,
    ByCreated = 2,
    Idempotency = 3,
    Members = 4,
}

/// The changes of one group, and the state they produce, before commit.
struct Group {
    writes: Vec<(T, Vec<u8>, Vec<u8>)>,
    /// Submission index entries and latest events changed in this group.
    heads: HashMap<String, (SubmissionHead, StoredEvent)>,
    /// Idempotency records written in this group.
    idempotency: HashMap<Vec<u8>, IdempotencyRecord>,
    /// The registry with this group's changes, if any.
    registry: Option<Registry>,
    events: Vec<StoredEvent>,
    pending: Vec<Pending>,
    next_seq: u64,
    stop: Option<oneshot::Sender<()>>,
}

pub(crate) struct Writer {
    pub db: sled::Db,
    pub trees: Trees,
    /// The sled data file, fdatasynced after each flush; None when fsync is off.
    pub datafile: Option<std::fs::File>,
    /// Next feed sequence number to assign.
    pub next_seq: u64,
    /// The committed registry (authoritative copy).
    pub registry: Registry,
    pub registry_shared: Arc<RwLock<Arc<Registry>>>,
    pub head: Arc<AtomicU64>,
    pub registry_generation: Arc<AtomicU64>,
    pub live: broadcast::Sender<Arc<super::Committed>>,
    pub rx: mpsc::Receiver<Command>,
    /// Changes applied but not yet durable (their flush failed): held back from the durable head
    /// and from subscribers until a flush succeeds.
    pub undurable: Vec<StoredEvent>,
}

impl Writer {
    pub fn run(mut self) {
        while let Some(first) = self.rx.blocking_recv() {
            let mut group = Group {
                writes: Vec::new(),
                heads: HashMap::new(),
                idempotency: HashMap::new(),
                registry: None,
                events: Vec::new(),
                pending: Vec::new(),
                next_seq: self.next_seq,
                stop: None,
            };
            if let Command::Stop { reply } = first {
                if let Err(e) = self.make_durable() {
                    tracing::error!(error = %e, "changes still not durable at stop");
                }
                let _ = reply.send(());
                break;
            }
            // After a failed flush, nothing new is accepted until storage works again.
            if let Err(e) = self.make_durable() {
                refuse(first, e);
                continue;
            }
            self.prepare(first, &mut group);
            while group.pending.len() < MAX_GROUP && group.stop.is_none() {
                match self.rx.try_recv() {
                    Ok(cmd) => self.prepare(cmd, &mut group),
                    Err(_) => break,
                }
            }
            self.commit(&mut group);
            if let Some(stop) = group.stop {
                let _ = stop.send(());
                break;
            }
        }
        if let Err(e) = self.db.flush() {
            tracing::error!(error = %e, "flush at writer stop failed");
        }
    }

    fn prepare(&mut self, cmd: Command, group: &mut Group) {
        match cmd {
            Command::Change {
                actor,
                change,
                reply,
            } => match self.prepare_change(&actor, *change, group) {
                Ok(outcome) => group.pending.push(Pending::Change(reply, outcome)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Member { op, reply } => {
                let mut registry = group
                    .registry
                    .take()
                    .unwrap_or_else(|| self.registry.clone());
                match members::apply(&mut registry, op, &clock::now_rfc3339()) {
                    Ok(member) => {
                        group.writes.push((
                            T::Members,
                            member.id.as_bytes().to_vec(),
                            members::encode(&member),
                        ));
                        group.pending.push(Pending::Member(reply, member));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
                group.registry = Some(registry);
            }
            Command::Stop { reply } => group.stop = Some(reply),
        }
    }

    fn prepare_change(
        &self,
        actor: &Member,
        change: Change,
        group: &mut Group,
    ) -> Result<Outcome, StoreError> {
        let request_hash = request_hash(&change.op);
        let idem_key = change.idempotency_key.as_ref().map(|k| {
            let mut key = actor.id.as_bytes().to_vec();
            key.push(0);
            key.extend_from_slice(k.as_bytes());
            key
        });
        if let Some(key) = &idem_key
            && let Some(record) = self.idempotency_record(key, group)?
        {
            if record.request_hash != request_hash {
                return Err(StoreError::AlreadyExists(
                    "idempotency_key: already used for a different request".into(),
                ));
            }
            let mut response = record.response.unwrap_or_default();
            response.replayed = true;
            return Ok(response);
        }

        let seq = group.next_seq;
        let now = clock::now_rfc3339();
        let (event, head) = match change.op {
            ChangeOp::Publish { content, kind } => {
                let id = uuid::Uuid::new_v4().to_string();
                let submission = Submission {
                    id: id.clone(),
                    revision: 1,
                    publisher: actor.id.clone(),
                    state: actor.state.clone(),
                    kind: kind.as_str().into(),
                    status: "active".into(),
                    created_at: now.clone(),
                    updated_at: now,
                    content_hash: content_hash(&content),
                    sequence: seq,
                    content: Some(content),
                    withdrawal_reason: String::new(),
                };
                let head = SubmissionHead {
                    created_seq: seq,
                    publisher: actor.id.clone(),
                    kind: kind.as_str().into(),
                    revision_seqs: vec![seq],
                    withdrawn: false,
                };
                group
                    .writes
                    .push((T::ByCreated, seq.to_be_bytes().to_vec(), id.into_bytes()));
                let event = StoredEvent {
                    sequence: seq,
                    action: records::PUBLISHED.into(),
                    submission: Some(submission),
                    previous_audience: None,
                };
                (event, head)
            }
            ChangeOp::Revise {
                id,
                content,
                kind,
                expected_revision,
            } => {
                let (mut head, latest) = self.current(&id, actor, expected_revision, group)?;
                if head.kind != kind.as_str() {
                    return Err(StoreError::Invalid(Invalid::one(
                        "content.body",
                        format!(
                            "a revision keeps the kind; this submission is a {}",
                            head.kind
                        ),
                    )));
                }
                let previous = latest.submission.unwrap_or_default();
                let submission = Submission {
                    revision: head.latest_revision() + 1,
                    updated_at: now,
                    content_hash: content_hash(&content),
                    sequence: seq,
                    content: Some(content),
                    ..previous.clone()
                };
                head.revision_seqs.push(seq);
                let event = StoredEvent {
                    sequence: seq,
                    action: records::REVISED.into(),
                    submission: Some(submission),
                    previous_audience: Some(audience_of(&previous)),
                };
                (event, head)
            }
            ChangeOp::Withdraw {
                id,
                reason,
                expected_revision,
            } => {
                let (mut head, latest) = self.current(&id, actor, expected_revision, group)?;
                let previous = latest.submission.unwrap_or_default();
                let submission = Submission {
                    revision: head.latest_revision() + 1,
                    status: "withdrawn".into(),
                    updated_at: now,
                    sequence: seq,
                    withdrawal_reason: reason,
                    ..previous.clone()
                };
                head.revision_seqs.push(seq);
                head.withdrawn = true;
                let event = StoredEvent {
                    sequence: seq,
                    action: records::WITHDRAWN.into(),
                    submission: Some(submission),
                    previous_audience: Some(audience_of(&previous)),
                };
                (event, head)
            }
        };
        let sub = event.submission.as_ref().expect("set above");
        let outcome = PublishResponse {
            id: sub.id.clone(),
            revision: sub.revision,
            sequence: seq,
            content_hash: sub.content_hash.clone(),
            accepted_at: sub.updated_at.clone(),
            replayed: false,
        };
        let id = sub.id.clone();
        group
            .writes
            .push((T::Events, seq.to_be_bytes().to_vec(), codec::frame(&event)));
        group
            .writes
            .push((T::Heads, id.as_bytes().to_vec(), codec::frame(&head)));
        if let Some(key) = idem_key {
            let record = IdempotencyRecord {
                request_hash,
                response: Some(outcome.clone()),
            };
            group
                .writes
                .push((T::Idempotency, key.clone(), codec::frame(&record)));
            group.idempotency.insert(key, record);
        }
        group.events.push(event.clone());
        group.heads.insert(id, (head, event));
        group.next_seq += 1;
        Ok(outcome)
    }

    /// The submission as it stands (this group's changes included), checked for a change by
    /// `actor`: it exists and is visible to it, it is the actor's, it is not withdrawn, and it
    /// is at the expected revision.
    fn current(
        &self,
        id: &str,
        actor: &Member,
        expected_revision: u32,
        group: &Group,
    ) -> Result<(SubmissionHead, StoredEvent), StoreError> {
        let not_found = || StoreError::NotFound(format!("no submission {id}"));
        let (head, latest) = match group.heads.get(id) {
            Some((h, e)) => (h.clone(), e.clone()),
            None => {
                let head = read_head(&self.trees.heads, id)?.ok_or_else(not_found)?;
                let latest = read_event(&self.trees.events, head.latest_seq())?;
                (head, latest)
            }
        };
        if head.publisher != actor.id {
            // Reveal that the submission exists only to members who may see it.
            let sub = latest.submission.as_ref().ok_or_else(not_found)?;
            let visible = sub.content.as_ref().is_some_and(|c| {
                c.tlp.parse().is_ok_and(|t| {
                    tlp::may_read(
                        actor,
                        &Audience {
                            publisher: &sub.publisher,
                            tlp: t,
                            recipients: &c.recipients,
                            community: &c.community,
                        },
                    )
                })
            });
            return Err(if visible {
                StoreError::PermissionDenied(format!(
                    "only its publisher {} may change submission {id}",
                    head.publisher
                ))
            } else {
                not_found()
            });
        }
        if head.withdrawn {
            return Err(StoreError::FailedPrecondition(format!(
                "submission {id} is withdrawn and cannot change"
            )));
        }
        if expected_revision != 0 && expected_revision != head.latest_revision() {
            return Err(StoreError::FailedPrecondition(format!(
                "expected_revision: submission {id} is at revision {}, not {expected_revision}",
                head.latest_revision()
            )));
        }
        Ok((head, latest))
    }

    fn idempotency_record(
        &self,
        key: &[u8],
        group: &Group,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        if let Some(r) = group.idempotency.get(key) {
            return Ok(Some(r.clone()));
        }
        match self.trees.idempotency.get(key)? {
            None => Ok(None),
            Some(v) => codec::unframe(&v, || "idempotency record".into()).map(Some),
        }
    }

    /// Makes the group durable, then answers its callers and publishes its events.
    fn commit(&mut self, group: &mut Group) {
        let pending = std::mem::take(&mut group.pending);
        if group.writes.is_empty() {
            // Only replays of idempotent requests, already durable.
            answer(pending, None);
            return;
        }
        if let Err(e) = self.apply(&group.writes) {
            // The transaction did not apply: nothing changed, no number was used.
            tracing::error!(error = %e, changes = pending.len(), "group commit failed; nothing of it applied");
            answer(pending, Some(e));
            return;
        }
        // Applied in memory: these numbers are used from now on, whatever the flush says, so
        // they are never given to other changes.
        self.next_seq = group.next_seq;
        if let Some(registry) = group.registry.take() {
            *self
                .registry_shared
                .write()
                .unwrap_or_else(|p| p.into_inner()) = Arc::new(registry.clone());
            self.registry = registry;
            self.registry_generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        self.undurable.append(&mut group.events);
        match self.make_durable() {
            Ok(()) => answer(pending, None),
            Err(e) => {
                tracing::error!(error = %e, changes = pending.len(), "flush failed; changes not acknowledged");
                answer(
                    pending,
                    Some(StoreError::Io(format!(
                        "{e}; the change may or may not be kept: retry with the same idempotency_key"
                    ))),
                );
            }
        }
    }

    /// Flushes and fsyncs; on success advances the durable head over every applied change and
    /// publishes them live. While this fails, the writer refuses new changes (see `run`).
    fn make_durable(&mut self) -> Result<(), StoreError> {
        if self.undurable.is_empty() {
            return Ok(());
        }
        self.db.flush()?;
        if let Some(f) = &self.datafile {
            f.sync_data()
                .map_err(|e| StoreError::Io(format!("fdatasync of the data file: {e}")))?;
        }
        self.head
            .store(self.next_seq - 1, std::sync::atomic::Ordering::Release);
        for ev in self.undurable.drain(..) {
            // No receiver is not an error: nobody is subscribed.
            let _ = self.live.send(Arc::new(super::Committed::new(ev)));
        }
        Ok(())
    }

    fn apply(&self, writes: &[(T, Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        let t = &self.trees;
        let trees = [
            &t.events,
            &t.heads,
            &t.by_created,
            &t.idempotency,
            &t.members,
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
            })?;
        Ok(())
    }
}

/// Answers a command that cannot be attempted.
fn refuse(cmd: Command, e: StoreError) {
    let e = StoreError::Io(format!(
        "storage is failing ({e}); nothing was changed, retry later"
    ));
    match cmd {
        Command::Change { reply, .. } => drop(reply.send(Err(e))),
        Command::Member { reply, .. } => drop(reply.send(Err(e))),
        Command::Stop { reply } => drop(reply.send(())),
    }
}

fn answer(pending: Vec<Pending>, error: Option<StoreError>) {
    for p in pending {
        match (p, &error) {
            (Pending::Change(tx, out), None) => drop(tx.send(Ok(out))),
            (Pending::Change(tx, _), Some(e)) => drop(tx.send(Err(e.clone()))),
            (Pending::Member(tx, m), None) => drop(tx.send(Ok(m))),
            (Pending::Member(tx, _), Some(e)) => drop(tx.send(Err(e.clone()))),
        }
    }
}

fn audience_of(s: &Submission) -> AudienceRecord {
    let c = s.content.as_ref();
    AudienceRecord {
        tlp: c.map(|c| c.tlp.clone()).unwrap_or_default(),
        recipients: c.map(|c| c.recipients.clone()).unwrap_or_default(),
        community: c.map(|c| c.community.clone()).unwrap_or_default(),
    }
}

/// Lowercase hex SHA-256 of the canonical (prost) encoding of the content.
pub fn content_hash(content: &SubmissionContent) -> String {
    hex::encode(Sha256::digest(content.encode_to_vec()))
}

/// Identifies a request for idempotency: same key with another request is refused.
fn request_hash(op: &ChangeOp) -> Vec<u8> {
    let mut h = Sha256::new();
    match op {
        ChangeOp::Publish { content, .. } => {
            h.update(b"publish\0");
            h.update(content.encode_to_vec());
        }
        ChangeOp::Revise {
            id,
            content,
            expected_revision,
            ..
        } => {
            h.update(b"revise\0");
            h.update(id.as_bytes());
            h.update(expected_revision.to_be_bytes());
            h.update(content.encode_to_vec());
        }
        ChangeOp::Withdraw {
            id,
            reason,
            expected_revision,
        } => {
            h.update(b"withdraw\0");
            h.update(id.as_bytes());
            h.update(expected_revision.to_be_bytes());
            h.update(reason.as_bytes());
        }
    }
    h.finalize().to_vec()
}
