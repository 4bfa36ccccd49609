//! Reading the audit log and its checkpoints, and verifying them; loading the log's state.
use super::{Store, StoreError, Trees, codec, key_after, key_u64, writer};
use crate::{
    audit::{LogState, Verifier},
    pb::{AuditEntry, Checkpoint, VerifyReport},
};

impl Store {
    /// The audit checkpoint signing public key (raw Ed25519).
    pub fn audit_public_key(&self) -> Vec<u8> {
        self.inner.signer.public_key().to_vec()
    }

    /// Audit entries after `after`, in order, checksum verified.
    pub fn audit_after(
        &self,
        after: u64,
    ) -> impl Iterator<Item = Result<AuditEntry, StoreError>> + use<> {
        self.inner
            .trees
            .audit
            .range(key_after(after)..)
            .map(|item| {
                let (k, v) = item?;
                codec::unframe(&v, || format!("audit entry {}", key_u64(&k)))
            })
    }

    /// Every stored checkpoint, by tree size.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.inner
            .trees
            .checkpoints
            .iter()
            .map(|item| {
                let (k, v) = item?;
                codec::unframe(&v, || format!("checkpoint {}", key_u64(&k)))
            })
            .collect()
    }

    /// Verifies the stored audit log against its chain and signed checkpoints.
    pub fn verify_audit(&self) -> Result<VerifyReport, StoreError> {
        let mut verifier = Verifier::new(self.audit_public_key());
        for c in self.checkpoints()? {
            verifier.checkpoint(c);
        }
        for entry in self.audit_after(0) {
            match entry {
                Ok(e) => {
                    if !verifier.entry(&e) {
                        break;
                    }
                }
                Err(StoreError::Corrupt(m)) => {
                    return Ok(VerifyReport {
                        ok: false,
                        problem: format!("stored entry damaged: {m}"),
                        ..Default::default()
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(verifier.finish())
    }
}

/// The audit log state, as the last commit left it.
pub(super) fn load_audit_state(trees: &Trees) -> Result<LogState, StoreError> {
    let state = match trees.meta.get(writer::AUDIT_STATE_KEY)? {
        None => LogState::default(),
        Some(v) => {
            LogState::from_bytes(&v).ok_or_else(|| StoreError::Corrupt("audit log state".into()))?
        }
    };
    let last = trees.audit.last()?.map_or(0, |(k, _)| key_u64(&k));
    if last != state.frontier.size() {
        return Err(StoreError::Corrupt(format!(
            "the audit log holds {last} entries but its state says {}",
            state.frontier.size()
        )));
    }
    Ok(state)
}
