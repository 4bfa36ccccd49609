//! What a receipt needs from the store: the audit entry of a change and the hub's signature.
//! (Inclusion proofs are in `audit_proof`, beside the consistency proofs they share hashes
//! with.)
use super::{
    Store, StoreError, codec,
    records::{StoredEvent, SubmissionHead},
};
use crate::{audit::merkle::Hash, pb::AuditEntry};

/// A stored event read for its audit entry's number alone (the other fields are skipped).
#[derive(Clone, PartialEq, prost::Message)]
struct AuditNumber {
    /// As `StoredEvent::audit_sequence`.
    #[prost(uint64, tag = "6")]
    audit_sequence: u64,
}

/// The audit actions of the changes receipts are given for.
const CHANGE_ACTIONS: [&str; 3] = [
    "submission.publish",
    "submission.revise",
    "submission.withdraw",
];

impl Store {
    /// The hub's id in receipts: the key id of its signing key.
    pub fn hub_id(&self) -> String {
        self.inner.shared.signer.key_id()
    }

    /// Signs a receipt's text with the hub's key (see `provenance::receipt`).
    pub fn sign_receipt(&self, text: &str) -> Vec<u8> {
        self.inner.shared.signer.sign(text.as_bytes())
    }

    /// The sequence of the audit entry that recorded `event` (a change of the submission of
    /// `head`). Events stored before the writer noted it are found in the log: a publication
    /// from the head, a later change by scanning from the publication's entry.
    pub fn audit_sequence_of(
        &self,
        event: &StoredEvent,
        head: &SubmissionHead,
    ) -> Result<u64, StoreError> {
        if event.audit_sequence != 0 {
            return Ok(event.audit_sequence);
        }
        if event.sequence == head.created_seq && head.created_audit_seq != 0 {
            return Ok(head.created_audit_seq);
        }
        let from = head.created_audit_seq.saturating_sub(1);
        for entry in self.audit_after(from) {
            let entry = entry?;
            if entry.feed_sequence == event.sequence
                && entry.outcome == crate::audit::ALLOWED
                && CHANGE_ACTIONS.contains(&entry.action.as_str())
            {
                return Ok(entry.sequence);
            }
        }
        Err(StoreError::Refused(
            crate::domain::rules::Refusal::not_found(format!(
                "no audit entry records feed sequence {}",
                event.sequence
            )),
        ))
    }

    /// How many audit entries a checkpoint must hold to cover the feed event at `seq` (at most
    /// the head): up to the entry that recorded it. An event stored before entries were
    /// numbered on events demands the log as it was when the store was opened: a fixed size,
    /// so that asking about one cannot make the hub sign again and again (each ask adds an
    /// entry, so "everything now" would never be covered).
    pub fn audit_entries_covering(&self, seq: u64) -> Result<u64, StoreError> {
        // Every subscriber asks about its last event as it receives: only the number is
        // decoded, not content of up to the message limit.
        let frame = self
            .inner
            .trees
            .events
            .get(seq.to_be_bytes())?
            .ok_or_else(|| StoreError::Corrupt(format!("event {seq} is missing")))?;
        let number: AuditNumber = codec::unframe(&frame, || format!("event {seq}"))?;
        Ok(match number.audit_sequence {
            0 => self.inner.opened.1,
            n => n,
        })
    }

    /// The audit entry `seq` and its leaf hash.
    pub fn audit_leaf(&self, seq: u64) -> Result<(AuditEntry, Hash), StoreError> {
        let entry = self
            .audit_after(seq.saturating_sub(1))
            .next()
            .transpose()?
            .filter(|e| e.sequence == seq)
            .ok_or_else(|| StoreError::Corrupt(format!("audit entry {seq} is missing")))?;
        let leaf = crate::audit::leaf_of(&entry);
        Ok((entry, leaf))
    }
}
