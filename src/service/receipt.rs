//! Author signatures at the edge and the hub's receipts: checks a change's signature before
//! the change is queued, and builds the receipt of a stored revision (for the change's reply
//! and for `Hub.GetReceipt`).
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tonic::Status;

use crate::{
    domain::member::Member,
    pb,
    provenance::{ProvenanceError, cose::Signature, receipt, signer},
    store::{
        Store,
        records::{StoredEvent, SubmissionHead},
    },
    tls::reload::TlsState,
};

/// Checks the author signature of a change by `actor` over `payload`, or that none is needed.
/// Returns the signature to keep (empty when unsigned).
pub fn check_signature(
    tls: &TlsState,
    store: &Store,
    actor: &Member,
    payload: &[u8],
    signature: &[u8],
) -> Result<Vec<u8>, Status> {
    if signature.is_empty() {
        if actor.require_signed {
            return Err(ProvenanceError::Required(actor.id.clone()).into());
        }
        return Ok(Vec::new());
    }
    signer::check(
        &tls.verifier(),
        &store.registry(),
        &actor.id,
        payload,
        signature,
        rustls_pki_types::UnixTime::now(),
    )?;
    Ok(signature.to_vec())
}

/// The receipt of the revision stored at feed sequence `seq` of the submission of `head`,
/// proved against a signed checkpoint that covers its audit entry (one is signed now if the
/// latest does not: signing makes the log durable up to it).
pub async fn build(store: &Store, head: SubmissionHead, seq: u64) -> Result<pb::Receipt, Status> {
    // One trip to the blocking pool in the common case: the change's own group signed a
    // checkpoint covering it (see `Change::with_receipt`), or a later one did.
    let prepared = {
        let store = store.clone();
        blocking(move || {
            let event = store.event(seq)?;
            let audit_seq = store.audit_sequence_of(&event, &head)?;
            let covering = store
                .latest_checkpoint()?
                .filter(|c| c.tree_size >= audit_seq);
            match covering {
                Some(checkpoint) => complete(&store, event, audit_seq, seq, checkpoint).map(Ok),
                None => Ok(Err((event, audit_seq))),
            }
        })
        .await?
    };
    match prepared {
        Ok(receipt) => Ok(receipt),
        Err((event, audit_seq)) => {
            let checkpoint = store.checkpoint().await?;
            let store = store.clone();
            blocking(move || complete(&store, event, audit_seq, seq, checkpoint)).await
        }
    }
}

/// The receipt of `event` (feed sequence `seq`, recorded by audit entry `audit_seq`), proved
/// against `checkpoint`, which covers that entry.
fn complete(
    store: &Store,
    event: StoredEvent,
    audit_seq: u64,
    seq: u64,
    checkpoint: pb::Checkpoint,
) -> Result<pb::Receipt, Status> {
    let submission = event.submission.unwrap_or_default();
    let (entry, leaf) = store.audit_leaf(audit_seq)?;
    if entry.feed_sequence != seq || entry.object_id != submission.id {
        return Err(Status::data_loss(format!(
            "audit entry {audit_seq} does not record feed sequence {seq}"
        )));
    }
    let proof = store.audit_inclusion(audit_seq - 1, checkpoint.tree_size)?;
    let (signature_sha256, signer_cert_sha256) = if submission.signature.is_empty() {
        (String::new(), String::new())
    } else {
        // The hub checked this signature and its signer's binding when it accepted it.
        let signer = Signature::parse(&submission.signature)
            .map(|s| hex::encode(Sha256::digest(s.signer().as_ref())))
            .map_err(|e| Status::data_loss(format!("stored signature: {e}")))?;
        (hex::encode(Sha256::digest(&submission.signature)), signer)
    };
    let mut r = pb::Receipt {
        hub_id: store.hub_id(),
        submission_id: submission.id.clone(),
        revision: submission.revision,
        content_hash: submission.content_hash.clone(),
        publisher: submission.publisher.clone(),
        sequence: submission.sequence,
        accepted_at: submission.updated_at.clone(),
        leaf_index: audit_seq - 1,
        leaf_hash: hex::encode(leaf),
        action: event.action.clone(),
        signature_sha256,
        signer_cert_sha256,
        hub_signature: Default::default(),
        inclusion_proof: proof.iter().map(hex::encode).collect(),
        checkpoint: Some(checkpoint),
    };
    r.hub_signature = store.sign_receipt(&receipt::signed_text(&r)).into();
    Ok(r)
}

/// Runs store reads off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("receipt task failed: {e}")))?
}

/// The receipt `reader` asks for: revision `revision` (0: latest) of submission `id`, only
/// if the reader may read that revision (as `Get` decides); NOT_FOUND otherwise, the same
/// answer as for a submission that does not exist.
pub async fn for_reader(
    store: &Store,
    reader: Arc<Member>,
    id: String,
    revision: u32,
) -> Result<pb::Receipt, Status> {
    let (head, seq) = {
        let store = store.clone();
        let reader = reader.clone();
        blocking(move || {
            let not_found =
                || Status::not_found(format!("no submission {id} visible to {}", reader.id));
            let (head, latest) = store.latest_seen_by(&reader, &id)?.ok_or_else(not_found)?;
            let latest = latest.submission.unwrap_or_default();
            let wanted_seq = match revision {
                0 => head.latest_seq(),
                n if n <= head.latest_revision() => head.revision_seqs[n as usize - 1],
                _ => return Err(not_found()),
            };
            let wanted = if wanted_seq == head.latest_seq() {
                latest.clone()
            } else {
                store.event(wanted_seq)?.submission.unwrap_or_default()
            };
            // A reader who sees only the withdrawal gets the receipt of the withdrawal, not of
            // the content it no longer may read.
            let seen = crate::domain::visibility::view(&reader, &head.standing(), &latest, &wanted)
                .filter(|v| v.revision == wanted.revision)
                .ok_or_else(not_found)?;
            Ok((head, seen.sequence))
        })
        .await?
    };
    build(store, head, seq).await
}
