//! The verifier of the audit log: the hub's own store, and exports offline.
//!
//! Every entry must continue the hash chain and carry the next sequence number; every
//! checkpoint must be signed by the pinned key and match the Merkle root of the entries it
//! covers. For an export, the last entry must be covered by such a checkpoint: otherwise an
//! editor could strip the checkpoints after an entry, change it and recompute the chain. The
//! report says which entries no checkpoint covers. A checkpoint saved earlier (`since`) must
//! be a prefix of the log: it shows that the log was neither truncated nor rewritten since.
//!
//! The verifier streams: it keeps the checkpoints, not the entries. A checkpoint must arrive
//! before, or right after, the last entry it covers (an export places each one right after
//! that entry); one arriving later cannot be checked and is reported.
use std::collections::BTreeMap;

use super::{
    LogState,
    signing::{key_id, verify_checkpoint},
};
use crate::pb::{AuditEntry, Checkpoint, VerifyReport};

/// What a verification demands beyond a consistent chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// The last entry must be covered by a signed checkpoint (exports).
    Required,
    /// Entries after the last checkpoint are normal (the hub's own store between checkpoints).
    Optional,
}

/// Cloned to keep a store's verification and continue it later with the entries written since
/// (`Store::verify_audit_recent`).
#[derive(Clone)]
pub struct Verifier {
    public_key: Vec<u8>,
    /// Key id of the pinned key: checkpoints naming another are refused at once.
    key_id: String,
    /// Checkpoints not yet reached by the entries, by size.
    pending: BTreeMap<u64, Checkpoint>,
    /// The largest size whose checkpoint matched the entries, and when it was signed.
    covered: (u64, String),
    /// Checkpoints seen, valid ones only.
    checkpoints: u64,
    /// Entries that passed, before the first problem.
    checked: u64,
    /// A checkpoint saved earlier that this log must extend.
    since: Option<Checkpoint>,
    coverage: Coverage,
    state: LogState,
    problem: Option<(String, u64)>,
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

impl Verifier {
    pub fn new(public_key: Vec<u8>, coverage: Coverage) -> Verifier {
        Verifier {
            key_id: key_id(&public_key),
            public_key,
            pending: BTreeMap::new(),
            covered: (0, String::new()),
            checkpoints: 0,
            checked: 0,
            since: None,
            coverage,
            state: LogState::default(),
            problem: None,
        }
    }

    /// A verifier that continues from `state`, the state after entries verified before (by an
    /// earlier check): only the entries and checkpoints after it are fed.
    pub fn resume(public_key: Vec<u8>, coverage: Coverage, state: LogState) -> Verifier {
        Verifier {
            state,
            ..Verifier::new(public_key, coverage)
        }
    }

    /// The state after the entries fed so far.
    pub fn state(&self) -> &LogState {
        &self.state
    }

    fn fail(&mut self, why: String, entry: u64) {
        if self.problem.is_none() {
            self.problem = Some((why, entry));
        }
    }

    /// Entries fed so far.
    fn size(&self) -> u64 {
        self.state.frontier.size()
    }

    /// Checks a checkpoint's key and signature; names it in the failure.
    fn signed(&mut self, c: &Checkpoint, what: &str) -> bool {
        if c.key_id != self.key_id {
            self.fail(
                format!(
                    "{what} at size {} names signing key {}…, not the pinned key {}…",
                    c.tree_size,
                    short(&c.key_id),
                    short(&self.key_id)
                ),
                0,
            );
            return false;
        }
        if !verify_checkpoint(&self.public_key, c) {
            self.fail(
                format!(
                    "{what} at size {} (made at {}) has an invalid signature: its size, root or time was altered, or it was forged",
                    c.tree_size, c.at
                ),
                0,
            );
            return false;
        }
        true
    }

    /// Feeds a checkpoint, before or right after the last entry it covers.
    pub fn checkpoint(&mut self, c: Checkpoint) {
        if !self.signed(&c, "checkpoint") {
            return;
        }
        self.checkpoints += 1;
        if c.tree_size < self.size() {
            self.fail(
                format!(
                    "checkpoint at size {} comes after entry {}: checkpoints were moved",
                    c.tree_size,
                    self.size()
                ),
                0,
            );
        } else if c.tree_size == self.size() {
            self.check_root(&c, "signed checkpoint");
        } else if let Some(other) = self.pending.get(&c.tree_size) {
            if other.root_hash != c.root_hash {
                // Both validly signed: the hub itself signed two different logs.
                self.fail(
                    format!(
                        "two signed checkpoints at size {} disagree: the log was forked",
                        c.tree_size
                    ),
                    0,
                );
            }
        } else {
            self.pending.insert(c.tree_size, c);
        }
    }

    /// A checkpoint saved earlier (by `audit checkpoint` or `audit export --checkpoint-out`):
    /// the log must extend it.
    pub fn since(&mut self, c: Checkpoint) {
        if self.signed(&c, "the earlier checkpoint") {
            if c.tree_size == 0 {
                return;
            }
            self.since = Some(c);
        }
    }

    /// Compares the root of the entries so far with `c`, which covers exactly them.
    fn check_root(&mut self, c: &Checkpoint, what: &str) -> bool {
        let root = hex::encode(self.state.frontier.root());
        if c.root_hash != root {
            let n = c.tree_size;
            let why = if what == "signed checkpoint" {
                format!(
                    "entries 1..={n} do not match the signed checkpoint at size {n}: entries were altered and re-chained"
                )
            } else {
                format!(
                    "entries 1..={n} do not match the earlier checkpoint at size {n}: the log was rewritten since (a fork)"
                )
            };
            self.fail(why, n);
            return false;
        }
        if what == "signed checkpoint" && c.tree_size > self.covered.0 {
            self.covered = (c.tree_size, c.at.clone());
        }
        true
    }

    /// Feeds the next entry. Returns false once a problem is found (further entries are moot).
    pub fn entry(&mut self, e: &AuditEntry) -> bool {
        if self.problem.is_some() {
            return false;
        }
        let expected = self.state.next_sequence();
        if e.sequence != expected {
            self.fail(
                format!(
                    "entry {expected} expected, entry {} found: entries were deleted, inserted or reordered",
                    e.sequence
                ),
                expected,
            );
            return false;
        }
        let stored_chain = e.chain_hash.clone();
        let sealed = self.state.seal(e.clone());
        if sealed.chain_hash != stored_chain {
            self.fail(
                format!(
                    "entry {expected} does not match its chain hash: it was edited, or an entry before it was"
                ),
                expected,
            );
            return false;
        }
        if let Some(c) = self.pending.remove(&expected) {
            self.check_root(&c, "signed checkpoint");
        }
        if let Some(c) = self.since.clone().filter(|c| c.tree_size == expected) {
            self.check_root(&c, "earlier checkpoint");
        }
        if self.problem.is_none() {
            self.checked += 1;
        }
        self.problem.is_none()
    }

    pub fn finish(mut self) -> VerifyReport {
        let entries = self.size();
        if let Some((&size, _)) = self.pending.iter().next_back() {
            self.fail(
                format!(
                    "truncated: a signed checkpoint covers {size} entries, only {entries} are present"
                ),
                entries + 1,
            );
        }
        if let Some(c) = &self.since
            && c.tree_size > entries
        {
            let why = format!(
                "the log holds {entries} entries, fewer than the {} the earlier checkpoint covers: it was truncated or replaced",
                c.tree_size
            );
            self.fail(why, entries + 1);
        }
        let (covered, covered_at) = self.covered.clone();
        if self.coverage == Coverage::Required {
            if self.checkpoints == 0 {
                self.fail(
                    format!(
                        "no checkpoint signed by the pinned key: none of the {entries} entries is covered (checkpoints were stripped)"
                    ),
                    1.min(entries),
                );
            } else if covered < entries {
                let why = format!(
                    "entries {}..={entries} are covered by no checkpoint signed by the pinned key (the last covers 1..={covered}): they may have been altered after checkpoints were stripped",
                    covered + 1
                );
                self.fail(why, covered + 1);
            }
        }
        let ok = self.problem.is_none();
        let (problem, first_bad_entry) = self.problem.unwrap_or_default();
        VerifyReport {
            ok,
            entries: self.checked,
            checkpoints: self.checkpoints,
            problem,
            first_bad_entry,
            covered,
            covered_at,
        }
    }
}

/// Verifies an export (JSON lines of `ExportItem`, as `cbm-hub audit export` writes them)
/// offline, against the pinned public key, and optionally that it extends `since`.
pub fn verify_export(
    lines: impl Iterator<Item = std::io::Result<String>>,
    pinned: &[u8],
    since: Option<Checkpoint>,
) -> Result<VerifyReport, String> {
    use crate::pb::{ExportItem, export_item::Item};
    let mut verifier = Verifier::new(pinned.to_vec(), Coverage::Required);
    if let Some(c) = since {
        verifier.since(c);
    }
    for (n, line) in lines.enumerate() {
        if verifier.problem.is_some() {
            break;
        }
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        // Through the schema-aware reader: exports written before the canonical JSON mapping
        // (`{"item": {"entry": ...}}`) still verify.
        let item: ExportItem = serde_json::from_str(&line)
            .map_err(|e| e.to_string())
            .and_then(|v| crate::jsonmap::from_value(v).map(|r| r.message))
            .map_err(|e| format!("line {}: {e}", n + 1))?;
        match item.item {
            Some(Item::PublicKey(k)) if k.as_ref() != pinned => {
                verifier.fail(
                    format!(
                        "the export's public key (key id {}…) is not the pinned key (key id {}…)",
                        short(&key_id(&k)),
                        short(&key_id(pinned))
                    ),
                    0,
                );
            }
            Some(Item::PublicKey(_)) | None => {}
            Some(Item::Checkpoint(c)) => verifier.checkpoint(c),
            Some(Item::Entry(e)) => {
                verifier.entry(&e);
            }
        }
    }
    Ok(verifier.finish())
}

/// Checks a consistency proof the hub served (Audit.ConsistencyProof) from a checkpoint saved
/// earlier: both checkpoints signed by the pinned key, the proof valid between the earlier
/// checkpoint's own root and the new signed root. Without an earlier checkpoint, only the new
/// one is checked. Returns the new checkpoint, to save for the next check.
pub fn check_served(
    pinned: &[u8],
    earlier: Option<&Checkpoint>,
    served: &crate::pb::ConsistencyProofResponse,
) -> Result<Checkpoint, String> {
    let signed = |c: &Checkpoint, what: &str| -> Result<(), String> {
        if c.key_id != key_id(pinned) {
            return Err(format!(
                "{what} at size {} names signing key {}…, not the pinned key {}…",
                c.tree_size,
                short(&c.key_id),
                short(&key_id(pinned))
            ));
        }
        if !verify_checkpoint(pinned, c) {
            return Err(format!(
                "{what} at size {} (made at {}) has an invalid signature",
                c.tree_size, c.at
            ));
        }
        Ok(())
    };
    let later = served
        .checkpoint
        .clone()
        .ok_or("the hub sent no signed checkpoint with the proof")?;
    signed(&later, "the hub's checkpoint")?;
    let Some(earlier) = earlier else {
        return Ok(later);
    };
    signed(earlier, "the earlier checkpoint")?;
    if (served.from_size, served.to_size) != (earlier.tree_size, later.tree_size) {
        return Err(format!(
            "the proof is from size {} to {}, not from {} to {}",
            served.from_size, served.to_size, earlier.tree_size, later.tree_size
        ));
    }
    if earlier.tree_size <= later.tree_size && served.from_root != earlier.root_hash {
        return Err(format!(
            "the hub's log at size {} has root {}…, the earlier checkpoint {}…: the log was rewritten since (a fork)",
            earlier.tree_size,
            short(&served.from_root),
            short(&earlier.root_hash)
        ));
    }
    let hash = |h: &str, what: &str| -> Result<super::merkle::Hash, String> {
        hex::decode(h)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{what} is not a 32-byte hex hash"))
    };
    let proof = served
        .proof
        .iter()
        .enumerate()
        .map(|(i, h)| hash(h, &format!("proof hash {i}")))
        .collect::<Result<Vec<_>, _>>()?;
    super::consistency::verify(
        earlier.tree_size,
        later.tree_size,
        &hash(&earlier.root_hash, "the earlier checkpoint's root")?,
        &hash(&later.root_hash, "the hub's checkpoint root")?,
        &proof,
    )
    .map_err(|e| {
        format!(
            "the log of {} entries does not provably extend the earlier one of {}: {e}",
            later.tree_size, earlier.tree_size
        )
    })?;
    Ok(later)
}
