//! Staging of submission changes: what the rules (`domain::rules`) allow, against the stored
//! state plus the changes earlier in the same group, becomes the records each change writes.
use prost::Message;
use sha2::{Digest, Sha256};

use super::{
    StoreError, codec,
    group::Group,
    keyspace::Rec,
    records::{self, AudienceRecord, IdempotencyRecord, StoredEvent, SubmissionHead},
    writer::Writer,
};
use crate::{
    domain::{
        clock,
        kind::Kind,
        member::Member,
        rules::{self, View, changes::may_change},
    },
    pb::{PublishResponse, Submission, SubmissionContent},
};

/// A submission change as a publisher asks for it, content already validated.
#[derive(Debug, Clone)]
pub struct Change {
    pub op: ChangeOp,
    /// Client key making retries return the first result.
    pub idempotency_key: Option<String>,
    /// What identifies the request for idempotency, set when a key is given: the change itself.
    pub fingerprint: Option<Vec<u8>>,
    /// SHA-256 (hex) of the encoded content; empty for a withdrawal.
    pub content_hash: String,
    /// Bytes of the encoded content: its share of the writer queue's byte budget.
    pub content_bytes: usize,
    /// The author signature, checked by the caller (`crate::provenance`), kept with the
    /// revision the change produces; empty when unsigned.
    pub signature: Vec<u8>,
    /// The caller will give a receipt for this change: the group that applies it signs a
    /// checkpoint covering it in the same flush (see `Committer::commit`), so the receipt
    /// costs no flush of its own.
    pub receipt: bool,
}

impl Change {
    /// Builds a change, hashing its content here, on the requesting task, so that the hashing
    /// runs on every worker in parallel instead of on the single writer thread.
    pub fn new(op: ChangeOp, idempotency_key: Option<String>) -> Change {
        let encoded = match &op {
            ChangeOp::Publish { content, .. } | ChangeOp::Revise { content, .. } => {
                Some(content.encode_to_vec())
            }
            ChangeOp::Withdraw { .. } => None,
        };
        let content_hash = encoded
            .as_deref()
            .map(|bytes| hex::encode(Sha256::digest(bytes)))
            .unwrap_or_default();
        let fingerprint = idempotency_key
            .as_ref()
            .map(|_| request_hash(&op, encoded.as_deref().unwrap_or_default()));
        Change {
            op,
            idempotency_key,
            fingerprint,
            content_hash,
            content_bytes: encoded.as_ref().map_or(0, Vec::len),
            signature: Vec::new(),
            receipt: false,
        }
    }

    /// The change, to be answered with a receipt when `wanted`.
    pub fn with_receipt(mut self, wanted: bool) -> Change {
        self.receipt = wanted;
        self
    }

    /// The change with its author signature (already checked).
    pub fn signed(mut self, signature: Vec<u8>) -> Change {
        self.content_bytes += signature.len();
        self.signature = signature;
        self
    }
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

impl ChangeOp {
    /// The audit action name.
    pub fn action(&self) -> &'static str {
        match self {
            ChangeOp::Publish { .. } => "submission.publish",
            ChangeOp::Revise { .. } => "submission.revise",
            ChangeOp::Withdraw { .. } => "submission.withdraw",
        }
    }

    /// The submission concerned, if it exists yet.
    pub fn object_id(&self) -> &str {
        match self {
            ChangeOp::Publish { .. } => "",
            ChangeOp::Revise { id, .. } | ChangeOp::Withdraw { id, .. } => id,
        }
    }
}

/// The answer to an accepted change.
pub type Outcome = PublishResponse;

impl Writer {
    /// Asks the rules about a change against the stored state and this group, and stages its
    /// records. Returns the answer and the TLP label of the revision it produced.
    pub(super) fn prepare_change(
        &self,
        actor: &Member,
        change: Change,
        group: &mut Group,
    ) -> Result<(Outcome, String), StoreError> {
        let view = self.view(group);
        // Only a request with a key is ever compared; its hash was computed with the change.
        let request_hash = change.fingerprint.clone().unwrap_or_default();
        if let Some(key) = &change.idempotency_key {
            let record = view.idempotency(&actor.id, key)?;
            if let Some(response) = rules::idempotent_replay(record, &request_hash)? {
                return Ok((response, String::new()));
            }
        }
        match &change.op {
            ChangeOp::Publish { content, .. } | ChangeOp::Revise { content, .. } => {
                rules::notices::check_notice(&view, actor, content)?
            }
            ChangeOp::Withdraw { .. } => {}
        }
        let current = match &change.op {
            ChangeOp::Publish { .. } => None,
            ChangeOp::Revise {
                id,
                kind,
                expected_revision,
                ..
            } => {
                let (head, latest) = may_change(&view, actor, id, *expected_revision)?;
                rules::changes::same_kind(&head, *kind)?;
                Some((head, latest))
            }
            ChangeOp::Withdraw {
                id,
                expected_revision,
                ..
            } => Some(may_change(&view, actor, id, *expected_revision)?),
        };
        let seq = group.next_seq;
        let now = clock::now_rfc3339();
        let signature = change.signature;
        let (mut event, head) = staged_revision(
            actor,
            change.op,
            current,
            &change.content_hash,
            (seq, now),
            group,
        )?;
        // The change's audit entry is sealed right after this, with the next number: the leaf
        // its receipt proves.
        event.audit_sequence = group.audit.next_sequence();
        let Some(sub) = event.submission.as_mut() else {
            return Err(StoreError::Io("internal: event without submission".into()));
        };
        // Set on every change: a revision copies the envelope of the one before, not its
        // signature.
        sub.signature = signature.into();
        let sub = &*sub;
        let label = sub
            .content
            .as_ref()
            .map(|c| c.tlp.clone())
            .unwrap_or_default();
        let outcome = PublishResponse {
            id: sub.id.clone(),
            revision: sub.revision,
            sequence: seq,
            content_hash: sub.content_hash.clone(),
            accepted_at: sub.updated_at.clone(),
            replayed: false,
            audit_sequence: event.audit_sequence,
            receipt: None,
        };
        let id = sub.id.clone();
        let framed = codec::frame(&event);
        let framed_head = codec::frame(&head);
        // The head keeps every revision's audience, so it grows with each revision: a
        // submission revised so often that its head would outgrow the budget takes no more.
        group.fits(self.budget(), &framed, || "content".into())?;
        group.fits(self.budget(), &framed_head, || {
            format!(
                "id: the index of submission {id}, which keeps the audience of each of its {} revisions,",
                head.revision_seqs.len()
            )
        })?;
        if head.revision_seqs.len() == 1 {
            let kind: Kind = head
                .kind
                .parse()
                .map_err(|e| StoreError::Io(format!("internal: {e}")))?;
            group.put(Rec::ByCreated, &seq.to_be_bytes(), id.clone().into_bytes());
            group.put(
                Rec::ByKind,
                &super::indexes::by_kind_key(kind, &actor.id, seq),
                id.clone().into_bytes(),
            );
        }
        if head.revision_seqs.len() == 2 {
            // From now on its head says more than its first event (see `Rec::Revised`).
            group.put(Rec::Revised, id.as_bytes(), codec::frame(&()));
        }
        let encoded = framed.len() - codec::HEADER;
        group.put(Rec::Events, &seq.to_be_bytes(), framed);
        group.put(Rec::Heads, id.as_bytes(), framed_head);
        if let Some(key) = &change.idempotency_key {
            let record = IdempotencyRecord {
                request_hash,
                response: Some(outcome.clone()),
            };
            group.put(
                Rec::Idempotency,
                &super::group::idempotency_key(&actor.id, key),
                codec::frame(&record),
            );
        }
        group.events.push((std::sync::Arc::new(event), encoded));
        group.moved.insert(id, head);
        group.next_seq += 1;
        Ok((outcome, label))
    }
}

/// The event and head of the revision `op` makes at sequence `seq` (`current`: the head and
/// latest event of the submission it changes, as the rules allowed it).
fn staged_revision(
    actor: &Member,
    op: ChangeOp,
    current: Option<(SubmissionHead, StoredEvent)>,
    content_hash: &str,
    (seq, now): (u64, String),
    group: &Group,
) -> Result<(StoredEvent, SubmissionHead), StoreError> {
    let (submission, action, head) = match (op, current) {
        (ChangeOp::Revise { .. } | ChangeOp::Withdraw { .. }, None) => {
            return Err(StoreError::Io(
                "internal: a change of a submission staged without it".into(),
            ));
        }
        (ChangeOp::Publish { content, kind }, _) => {
            let submission = Submission {
                id: uuid::Uuid::new_v4().to_string(),
                revision: 1,
                publisher: actor.id.clone(),
                state: actor.state.clone(),
                kind: kind.as_str().into(),
                status: "active".into(),
                created_at: now.clone(),
                updated_at: now,
                content_hash: content_hash.to_string(),
                sequence: seq,
                content: Some(content),
                withdrawal_reason: String::new(),
                signature: Default::default(),
            };
            let head = SubmissionHead {
                created_seq: seq,
                publisher: actor.id.clone(),
                kind: kind.as_str().into(),
                revision_seqs: Vec::new(),
                audiences: Vec::new(),
                latest_at: String::new(),
                withdrawn: false,
                // The publish entry is sealed right after this, with the next number.
                created_audit_seq: group.audit.next_sequence(),
            };
            (submission, records::PUBLISHED, head)
        }
        (ChangeOp::Revise { content, .. }, Some((head, latest))) => {
            let previous = latest.submission.unwrap_or_default();
            let submission = Submission {
                revision: head.latest_revision() + 1,
                updated_at: now,
                content_hash: content_hash.to_string(),
                sequence: seq,
                content: Some(content),
                ..previous
            };
            (submission, records::REVISED, head)
        }
        (ChangeOp::Withdraw { reason, .. }, Some((mut head, latest))) => {
            let previous = latest.submission.unwrap_or_default();
            let submission = Submission {
                revision: head.latest_revision() + 1,
                status: "withdrawn".into(),
                updated_at: now,
                sequence: seq,
                withdrawal_reason: reason,
                ..previous
            };
            head.withdrawn = true;
            (submission, records::WITHDRAWN, head)
        }
    };
    let mut head = head;
    head.revision_seqs.push(seq);
    head.audiences.push(AudienceRecord::of(&submission));
    head.latest_at = submission.updated_at.clone();
    let event = StoredEvent {
        sequence: seq,
        action: action.into(),
        submission: Some(submission),
        acknowledgement: None,
        audit_sequence: 0,
    };
    Ok((event, head))
}

/// Lowercase hex SHA-256 of the canonical (prost) encoding of the content.
/// Identifies a request for idempotency: the same key with another request is refused.
/// `content` is the encoded content of a publication or revision.
fn request_hash(op: &ChangeOp, content: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    match op {
        ChangeOp::Publish { .. } => {
            h.update(b"publish\0");
            h.update(content);
        }
        ChangeOp::Revise {
            id,
            expected_revision,
            ..
        } => {
            h.update(b"revise\0");
            h.update(id.as_bytes());
            h.update(expected_revision.to_be_bytes());
            h.update(content);
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
