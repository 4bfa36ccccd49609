//! Audit.ConsistencyProof: an RFC 6962 consistency proof between two sizes of the audit log,
//! with the signed checkpoint of the later one, so that an auditor holding an earlier
//! checkpoint checks that the log was only appended to since.
use tonic::Status;

use crate::{
    domain::Invalid,
    pb::{self, ConsistencyProofRequest, ConsistencyProofResponse},
    store::Store,
};

/// How long a signed checkpoint counts as the current one for a request of the whole log.
const FRESH_FOR: time::Duration = time::Duration::seconds(5);

/// The checkpoint of "the whole log now": the latest signed one when it covers every entry or
/// is younger than [`FRESH_FOR`], and covers the first `needed` entries, else one signed now.
/// Any member may ask (every subscriber does at each connection and as it receives), and
/// signing flushes the store: signing per request would let any member make the hub sign and
/// flush as fast as it can call; `needed` makes it sign at most once per entries appended
/// since the latest. A stored checkpoint was durable when signed, so a proof to it never
/// covers entries a crash could take back.
async fn current_checkpoint(store: &Store, needed: u64) -> Result<pb::Checkpoint, Status> {
    let latest = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.latest_checkpoint())
            .await
            .map_err(|e| Status::internal(e.to_string()))??
    };
    let now = time::OffsetDateTime::now_utc();
    if let Some(c) = latest
        && c.tree_size >= needed
        && (c.tree_size >= store.audit_len() || is_recent(&c.at, now))
    {
        return Ok(c);
    }
    Ok(store.checkpoint().await?)
}

/// How many audit entries a checkpoint must hold to cover the feed event at `seq`
/// (`Store::audit_entries_covering`). Nothing of the event is told, whoever asks: only a size.
async fn audit_entries_up_to(store: &Store, seq: u64) -> Result<u64, Status> {
    let head = store.head();
    if seq > head {
        return Err(Invalid::one(
            "cover_sequence",
            format!(
                "{seq} is beyond the feed's head {head}: the feed was truncated or replaced since that sequence was received"
            ),
        )
        .into());
    }
    let store = store.clone();
    tokio::task::spawn_blocking(move || Ok(store.audit_entries_covering(seq)?))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
}

/// Was a checkpoint signed at `at` (RFC 3339) less than [`FRESH_FOR`] before `now`? One from
/// the future (a clock set back) is not recent: a new one is signed.
fn is_recent(at: &str, now: time::OffsetDateTime) -> bool {
    crate::domain::clock::parse_instant(at).is_ok_and(|t| t <= now && now - t < FRESH_FOR)
}

/// Answers a request from an authenticated member.
pub async fn prove(
    store: &Store,
    r: ConsistencyProofRequest,
) -> Result<ConsistencyProofResponse, Status> {
    let (to, checkpoint) = if r.to_size == 0 {
        let needed = match r.cover_sequence {
            0 => 0,
            seq => audit_entries_up_to(store, seq).await?,
        };
        let c = current_checkpoint(store, needed).await?;
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
            public_key: store.audit_public_key().into(),
            covered_sequence: if r.to_size == 0 { r.cover_sequence } else { 0 },
        })
    })
    .await
    .map_err(|e| Status::internal(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::is_recent;

    #[test]
    fn a_checkpoint_is_recent_for_a_few_seconds_and_never_from_the_future() {
        let now = datetime!(2026-12-01 12:00:10 UTC);
        assert!(is_recent("2026-12-01T12:00:06Z", now));
        assert!(is_recent("2026-12-01T12:00:10Z", now));
        assert!(!is_recent("2026-12-01T12:00:05Z", now));
        assert!(!is_recent("2026-12-01T12:00:11Z", now));
        assert!(!is_recent("not a time", now));
    }
}
