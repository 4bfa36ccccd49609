//! Staging of submission changes: checks against the stored state (plus the changes earlier
//! in the same group) and the writes each change makes.
use prost::Message;
use sha2::{Digest, Sha256};

use super::{
    StoreError, codec,
    records::{self, AudienceRecord, IdempotencyRecord, StoredEvent, SubmissionHead},
    writer::{Group, T, Writer},
};
use crate::{
    domain::{Invalid, clock, kind::Kind, member::Member},
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
        }
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
    /// Checks a change against the stored state and this group, and stages its writes.
    /// Returns the answer and the TLP label of the revision it produced.
    pub(super) fn prepare_change(
        &self,
        actor: &Member,
        change: Change,
        group: &mut Group,
    ) -> Result<(Outcome, String), StoreError> {
        let idem_key = change.idempotency_key.as_ref().map(|k| {
            let mut key = actor.id.as_bytes().to_vec();
            key.push(0);
            key.extend_from_slice(k.as_bytes());
            key
        });
        // Only a request with a key is ever compared; its hash was computed with the change.
        let request_hash = match idem_key {
            Some(_) => change.fingerprint.clone().unwrap_or_default(),
            None => Vec::new(),
        };
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
            return Ok((response, String::new()));
        }

        match &change.op {
            ChangeOp::Publish { content, .. } | ChangeOp::Revise { content, .. } => {
                self.check_notice(actor, content, group)?
            }
            ChangeOp::Withdraw { .. } => {}
        }
        let seq = group.next_seq;
        let now = clock::now_rfc3339();
        let staged = group.writes.len();
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
                    content_hash: change.content_hash,
                    sequence: seq,
                    content: Some(content),
                    withdrawal_reason: String::new(),
                };
                let head = SubmissionHead {
                    created_seq: seq,
                    publisher: actor.id.clone(),
                    kind: kind.as_str().into(),
                    revision_seqs: vec![seq],
                    audiences: vec![AudienceRecord::of(&submission)],
                    latest_at: submission.updated_at.clone(),
                    withdrawn: false,
                    // The publish entry is sealed right after this, with the next number.
                    created_audit_seq: group.audit.next_sequence(),
                };
                group.writes.push((
                    T::ByCreated,
                    seq.to_be_bytes().to_vec(),
                    id.clone().into_bytes(),
                ));
                group.writes.push((
                    T::ByKind,
                    super::indexes::by_kind_key(kind, &actor.id, seq),
                    id.into_bytes(),
                ));
                let event = StoredEvent {
                    sequence: seq,
                    action: records::PUBLISHED.into(),
                    submission: Some(submission),
                    acknowledgement: None,
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
                    content_hash: change.content_hash,
                    sequence: seq,
                    content: Some(content),
                    ..previous
                };
                head.revision_seqs.push(seq);
                head.audiences.push(AudienceRecord::of(&submission));
                head.latest_at = submission.updated_at.clone();
                let event = StoredEvent {
                    sequence: seq,
                    action: records::REVISED.into(),
                    submission: Some(submission),
                    acknowledgement: None,
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
                    ..previous
                };
                head.revision_seqs.push(seq);
                head.audiences.push(AudienceRecord::of(&submission));
                head.latest_at = submission.updated_at.clone();
                head.withdrawn = true;
                let event = StoredEvent {
                    sequence: seq,
                    action: records::WITHDRAWN.into(),
                    submission: Some(submission),
                    acknowledgement: None,
                };
                (event, head)
            }
        };
        let Some(sub) = event.submission.as_ref() else {
            return Err(StoreError::Io("internal: event without submission".into()));
        };
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
        };
        let id = sub.id.clone();
        let framed = codec::frame(&event);
        let framed_head = codec::frame(&head);
        // The head keeps every revision's audience, so it grows with each revision: a
        // submission revised so often that its head would outgrow the budget takes no more.
        let fits = group
            .fits(&self.budget, &framed, || "content".into())
            .and_then(|()| {
                group.fits(&self.budget, &framed_head, || {
                    format!(
                        "id: the index of submission {id}, which keeps the audience of each of its {} revisions,",
                        head.revision_seqs.len()
                    )
                })
            });
        if let Err(e) = fits {
            // Nothing of the change stays staged (a publication staged its indexes above).
            group.writes.truncate(staged);
            return Err(e);
        }
        let encoded = framed.len() - codec::HEADER;
        group
            .writes
            .push((T::Events, seq.to_be_bytes().to_vec(), framed));
        group
            .writes
            .push((T::Heads, id.as_bytes().to_vec(), framed_head));
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
        let event = std::sync::Arc::new(event);
        group.events.push((event.clone(), encoded));
        group.heads.insert(id, (head, event));
        group.next_seq += 1;
        Ok((outcome, label))
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
        let (head, latest) = self.latest_in(id, group)?.ok_or_else(not_found)?;
        if head.publisher != actor.id {
            // Reveal that the submission exists only to members who may see it.
            let visible = crate::domain::audience::sees(actor, &head.standing());
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
        // A ping's deadline and recipients are its campaign's: changing the notice would leave
        // the campaign reporting on something else.
        if self.campaign_of_notice_in(id, group)?.is_some() {
            return Err(StoreError::FailedPrecondition(format!(
                "submission {id} is the ping of a campaign and cannot change"
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

    pub(super) fn idempotency_record(
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
