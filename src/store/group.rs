//! One group of commands as the writer stages it: the staged records, the audit entries sealed
//! into it, the answers held until it is durable, and the reads that see it ([`GroupView`]).
use std::{collections::HashMap, sync::Arc};

use tokio::sync::oneshot;

use super::{
    QueuedBytes, StoreError, codec,
    keyspace::{Rec, Trees},
    staged::{Staged, StagedMark},
};
use crate::{
    audit::{LogState, bound},
    domain::{
        budget::Budget,
        catalogue::Catalogue,
        clock,
        kind::Kind,
        member::Registry,
        records::{IdempotencyRecord, StoredEvent, SubmissionHead},
        rules::View,
    },
    pb::{self, AuditEntry, Checkpoint},
};

/// An answer held back until its group is durable: sends the value, or the group's error.
pub(super) type Pending = Box<dyn FnOnce(Option<&StoreError>) + Send>;

pub(super) fn pending<V: Send + 'static>(
    tx: oneshot::Sender<Result<V, StoreError>>,
    value: V,
) -> Pending {
    Box::new(move |error| {
        let _ = tx.send(match error {
            None => Ok(value),
            Some(e) => Err(e.clone()),
        });
    })
}

/// The changes of one group, and the state they produce, before commit.
pub(super) struct Group {
    /// Every record the group writes, committed as one batch.
    pub staged: Staged,
    /// The heads this group moved (for the live feed once it is durable).
    pub moved: HashMap<String, SubmissionHead>,
    /// The registry with this group's changes, if any.
    pub registry: Option<Registry>,
    /// The catalogue with this group's additions, if any.
    pub catalogue: Option<Catalogue>,
    /// The audit log state after this group's entries.
    pub audit: LogState,
    /// Events of this group with their encoded sizes, published live once it is durable.
    pub events: Vec<(Arc<StoredEvent>, usize)>,
    pub pending: Vec<Pending>,
    /// Whether the group changes data (and so is flushed before answering).
    pub durable: bool,
    pub next_seq: u64,
    pub checkpoints: Vec<oneshot::Sender<Result<Checkpoint, StoreError>>>,
    /// A change of the group will be answered with a receipt: a checkpoint covering the group
    /// is signed in its flush.
    pub receipt: bool,
    /// Answered as soon as the group is applied (readable), before its flush.
    pub settled: Vec<oneshot::Sender<Result<(), StoreError>>>,
    pub stop: Option<oneshot::Sender<()>>,
    /// The queue budget the group's commands hold, given back when the group is dropped.
    pub held: Vec<QueuedBytes>,
}

impl Group {
    pub fn new(audit: LogState, next_seq: u64) -> Group {
        Group {
            staged: Staged::default(),
            moved: HashMap::new(),
            registry: None,
            catalogue: None,
            audit,
            events: Vec::new(),
            pending: Vec::new(),
            durable: false,
            next_seq,
            checkpoints: Vec::new(),
            receipt: false,
            settled: Vec::new(),
            stop: None,
            held: Vec::new(),
        }
    }

    /// Stages a record.
    pub fn put(&mut self, rec: Rec, key: &[u8], value: Vec<u8>) {
        self.staged.put(rec, key, value);
    }

    /// Seals an audit entry built by the writer into this group, its fields bounded.
    pub fn audit(&mut self, entry: AuditEntry) {
        for part in bound::entry(entry) {
            self.seal(part);
        }
    }

    /// Seals an entry whose fields were bounded where it was built ([`super::Store::audit`]);
    /// the size limit is enforced here, where every entry passes.
    pub fn append(&mut self, entry: AuditEntry) {
        for part in bound::split(entry) {
            self.seal(part);
        }
    }

    fn seal(&mut self, mut entry: AuditEntry) {
        entry.at = clock::now_rfc3339();
        let sealed = self.audit.seal(entry);
        self.staged.put(
            Rec::Audit,
            &sealed.sequence.to_be_bytes(),
            codec::frame(&sealed),
        );
    }

    /// Refuses a record larger than the budget allows, before anything of it is staged: every
    /// record must fit every exit (see `domain::budget`).
    pub fn fits(
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

    /// Where the group stands, to undo what follows (a campaign refused half-way).
    pub fn mark(&self) -> GroupMark {
        GroupMark {
            staged: self.staged.mark(),
            events: self.events.len(),
            next_seq: self.next_seq,
            audit: self.audit.clone(),
        }
    }

    /// Undoes what was staged since `mark`; `created` are the submissions published since.
    pub fn rollback(&mut self, mark: GroupMark, created: &[String]) {
        self.staged.rollback(mark.staged);
        self.events.truncate(mark.events);
        self.next_seq = mark.next_seq;
        self.audit = mark.audit;
        for id in created {
            self.moved.remove(id);
        }
    }
}

/// See [`Group::mark`].
pub(super) struct GroupMark {
    staged: StagedMark,
    events: usize,
    next_seq: u64,
    audit: LogState,
}

/// The state as the rules see it inside a group: stored records with the group's over them.
pub(super) struct GroupView<'a> {
    pub trees: &'a Trees,
    pub staged: &'a Staged,
}

impl GroupView<'_> {
    fn record<M: prost::Message + Default>(
        &self,
        rec: Rec,
        key: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<Option<M>, StoreError> {
        match self.staged.get(self.trees, rec, key)? {
            None => Ok(None),
            Some(v) => codec::unframe(&v, what).map(Some),
        }
    }

    pub fn head(&self, id: &str) -> Result<Option<SubmissionHead>, StoreError> {
        self.record(Rec::Heads, id.as_bytes(), || {
            format!("index of submission {id}")
        })
    }

    pub fn campaign(&self, id: &str) -> Result<Option<pb::PingCampaign>, StoreError> {
        Ok(self
            .record(Rec::Campaigns, id.as_bytes(), || {
                format!("ping campaign {id}")
            })?
            .map(super::campaigns::normalised))
    }

    /// Every acknowledgement of `notice` (all members), this group's included.
    pub fn acks_of(&self, notice: &str) -> Result<Vec<pb::Acknowledgement>, StoreError> {
        self.acks_with_prefix(&super::acks::ack_prefix(notice))
    }

    fn acks_with_prefix(&self, prefix: &[u8]) -> Result<Vec<pb::Acknowledgement>, StoreError> {
        self.staged
            .scan_prefix(self.trees, Rec::Acks, prefix)?
            .into_iter()
            .map(|(_, v)| codec::unframe(&v, || "acknowledgement".into()))
            .collect()
    }
}

impl View for GroupView<'_> {
    type Error = StoreError;

    fn latest(&self, id: &str) -> Result<Option<(SubmissionHead, StoredEvent)>, StoreError> {
        let Some(head) = self.head(id)? else {
            return Ok(None);
        };
        let seq = head.latest_seq();
        let event = self
            .record(Rec::Events, &seq.to_be_bytes(), || format!("event {seq}"))?
            .ok_or_else(|| StoreError::Corrupt(format!("event {seq} is indexed but missing")))?;
        Ok(Some((head, event)))
    }

    fn idempotency(
        &self,
        member: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.record(Rec::Idempotency, &idempotency_key(member, key), || {
            "idempotency record".into()
        })
    }

    fn ack(
        &self,
        notice: &str,
        member: &str,
        contact: &str,
    ) -> Result<Option<pb::Acknowledgement>, StoreError> {
        self.record(
            Rec::Acks,
            &super::acks::ack_key(notice, member, contact),
            || "acknowledgement".into(),
        )
    }

    fn acks_by(&self, notice: &str, member: &str) -> Result<Vec<pb::Acknowledgement>, StoreError> {
        let mut prefix = super::acks::ack_prefix(notice);
        prefix.extend_from_slice(member.as_bytes());
        prefix.push(0);
        self.acks_with_prefix(&prefix)
    }

    fn campaign_of_notice(&self, notice: &str) -> Result<Option<pb::PingCampaign>, StoreError> {
        let indexed =
            match self
                .staged
                .get(self.trees, Rec::CampaignNotices, notice.as_bytes())?
            {
                None => None,
                Some(v) => Some(String::from_utf8(v.to_vec()).map_err(|_| {
                    StoreError::Corrupt(format!("campaign of ping notice {notice}"))
                })?),
            };
        super::campaigns::of_notice(notice, indexed, |id| self.campaign(id))
    }

    fn ids_of_kind(&self, kind: Kind, publisher: &str) -> Result<Vec<String>, StoreError> {
        let prefix = super::indexes::by_kind_prefix(kind, Some(publisher));
        self.staged
            .scan_prefix(self.trees, Rec::ByKind, &prefix)?
            .into_iter()
            .map(|(_, v)| {
                String::from_utf8(v.to_vec())
                    .map_err(|_| StoreError::Corrupt("by_kind: an id is not UTF-8".into()))
            })
            .collect()
    }
}

/// Key of an idempotency record: member id, NUL, client key.
pub(super) fn idempotency_key(member: &str, key: &str) -> Vec<u8> {
    let mut full = member.as_bytes().to_vec();
    full.push(0);
    full.extend_from_slice(key.as_bytes());
    full
}
