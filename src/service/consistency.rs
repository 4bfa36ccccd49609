//! Audit.ConsistencyProof: an RFC 6962 consistency proof between two sizes of the audit log,
//! with the signed checkpoint of the later one, so that an auditor holding an earlier
//! checkpoint checks that the log was only appended to since.
use tonic::Status;

use crate::{
    domain::Invalid,
    pb::{ConsistencyProofRequest, ConsistencyProofResponse},
    store::Store,
};

/// Answers a request from an authenticated auditor or admin.
pub async fn prove(
    store: &Store,
    r: ConsistencyProofRequest,
) -> Result<ConsistencyProofResponse, Status> {
    let (to, checkpoint) = if r.to_size == 0 {
        // The whole log now: signing makes it durable, so the proof never covers entries a
        // crash could still take back.
        let c = store.checkpoint().await?;
        (c.tree_size, Some(c))
    } else {
        let store = store.clone();
        let to = r.to_size;
        let latest = tokio::task::spawn_blocking(move || store.latest_checkpoint())
            .await
            .map_err(|e| Status::internal(e.to_string()))??
            .map_or(0, |c| c.tree_size);
        if to > latest {
            return Err(Invalid::one(
                "to_size",
                format!(
                    "{to} is beyond the latest signed checkpoint ({latest} entries); ask with to_size 0 for a fresh one"
                ),
            )
            .into());
        }
        (to, None)
    };
    if r.from_size > to {
        return Err(Invalid::one(
            "from_size",
            format!("{} is beyond the later size, {to} entries", r.from_size),
        )
        .into());
    }
    let from = r.from_size;
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let checkpoint = match checkpoint {
            Some(c) => Some(c),
            None => store.checkpoint_at(to)?,
        };
        let proof = store.audit_consistency(from, to)?;
        let to_root = hex::encode(proof.to_root);
        if let Some(c) = &checkpoint
            && c.root_hash != to_root
        {
            // What is stored no longer matches what the hub signed: never prove from it.
            return Err(Status::data_loss(format!(
                "the stored audit log does not match its signed checkpoint at size {to}; run `cbm-hub audit verify --remote`"
            )));
        }
        Ok(ConsistencyProofResponse {
            from_size: from,
            to_size: to,
            from_root: hex::encode(proof.from_root),
            to_root,
            proof: proof.hashes.iter().map(hex::encode).collect(),
            checkpoint,
        })
    })
    .await
    .map_err(|e| Status::internal(e.to_string()))?
}
