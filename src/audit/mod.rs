//! The tamper-evident audit log: how entries are hashed and chained, the Merkle frontier,
//! checkpoint signing, and the verifier (used by the hub and, offline, by `cbm-hub audit
//! verify`). Writing entries is the store writer's job (in the same transaction as the change
//! they record); this module is pure.
pub mod merkle;
pub mod signing;

use std::collections::BTreeMap;

use prost::Message;
use sha2::{Digest, Sha256};

use crate::pb::{AuditEntry, Checkpoint, VerifyReport};
use merkle::{Frontier, Hash, leaf_hash};

pub const ALLOWED: &str = "allowed";
pub const REFUSED: &str = "refused";

/// Who made a request, as far as the connection tells: recorded in every entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// Member id, once the certificate resolved to one.
    pub member: String,
    pub cert_sha256: String,
    pub peer: String,
}

impl Origin {
    /// The origin of entries the hub makes on its own (a deadline passing), not for a request.
    pub fn hub() -> Origin {
        Origin {
            member: String::new(),
            cert_sha256: String::new(),
            peer: "hub".into(),
        }
    }

    /// A new entry for `action` by this origin (sequence, time and hashes are set when written).
    pub fn entry(&self, action: &str) -> AuditEntry {
        AuditEntry {
            member: self.member.clone(),
            cert_sha256: self.cert_sha256.clone(),
            peer: self.peer.clone(),
            action: action.to_string(),
            outcome: ALLOWED.to_string(),
            ..Default::default()
        }
    }
}

/// The leaf hash of an entry: over its encoding without the chain hash.
pub fn leaf_of(entry: &AuditEntry) -> Hash {
    let mut e = entry.clone();
    e.chain_hash = Default::default();
    leaf_hash(&e.encode_to_vec())
}

/// The chain hash following `previous` for a leaf.
pub fn chain_next(previous: &Hash, leaf: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(leaf);
    h.finalize().into()
}

/// The running state of the log: what the next entry continues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogState {
    pub chain: Hash,
    pub frontier: Frontier,
}

impl LogState {
    /// Next entry sequence.
    pub fn next_sequence(&self) -> u64 {
        self.frontier.size() + 1
    }

    /// Seals `entry` as the next one: sequence, chain hash; advances the state.
    pub fn seal(&mut self, mut entry: AuditEntry) -> AuditEntry {
        entry.sequence = self.next_sequence();
        entry.chain_hash = Default::default();
        let leaf = leaf_of(&entry);
        self.chain = chain_next(&self.chain, &leaf);
        entry.chain_hash = self.chain.to_vec().into();
        self.frontier.push(leaf);
        entry
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.chain.to_vec();
        out.extend(self.frontier.to_bytes());
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<LogState> {
        Some(LogState {
            chain: b.get(..32)?.try_into().ok()?,
            frontier: Frontier::from_bytes(&b[32..])?,
        })
    }
}

/// Verifies a log: checkpoints first (any order), then entries in order.
///
/// Detects an edited entry (its chain hash no longer matches), a deleted, inserted or reordered
/// entry (sequence out of place, or chain mismatch), a truncated log (a checkpoint covers more
/// entries than present), and a re-chained log (a checkpoint's signed root differs).
pub struct Verifier {
    public_key: Vec<u8>,
    checkpoints: BTreeMap<u64, Checkpoint>,
    state: LogState,
    checked: u64,
    problem: Option<(String, u64)>,
}

impl Verifier {
    pub fn new(public_key: Vec<u8>) -> Verifier {
        Verifier {
            public_key,
            checkpoints: BTreeMap::new(),
            state: LogState::default(),
            checked: 0,
            problem: None,
        }
    }

    fn fail(&mut self, why: String, entry: u64) {
        if self.problem.is_none() {
            self.problem = Some((why, entry));
        }
    }

    pub fn checkpoint(&mut self, c: Checkpoint) {
        if !signing::verify_checkpoint(&self.public_key, &c) {
            self.fail(
                format!(
                    "checkpoint at size {} has an invalid signature",
                    c.tree_size
                ),
                0,
            );
        }
        if let Some(other) = self.checkpoints.get(&c.tree_size)
            && other.root_hash != c.root_hash
        {
            self.fail(
                format!("two checkpoints at size {} disagree", c.tree_size),
                0,
            );
        }
        self.checkpoints.insert(c.tree_size, c);
    }

    /// Feeds the next entry. Returns false once a problem is found (further entries are moot).
    pub fn entry(&mut self, e: &AuditEntry) -> bool {
        if self.problem.is_some() {
            return false;
        }
        let expected = self.state.next_sequence();
        if e.sequence != expected {
            self.fail(
                format!("entry {expected} expected, entry {} found: entries were deleted, inserted or reordered", e.sequence),
                expected,
            );
            return false;
        }
        let stored_chain = e.chain_hash.clone();
        let sealed = self.state.seal(e.clone());
        if sealed.chain_hash != stored_chain {
            self.fail(format!("entry {expected} does not match its chain hash: it was edited, or an entry before it was"), expected);
            return false;
        }
        if let Some(c) = self.checkpoints.get(&self.state.frontier.size())
            && c.root_hash != hex::encode(self.state.frontier.root())
        {
            let why = format!(
                "the log up to entry {expected} does not match the signed checkpoint at that size: entries were altered and re-chained"
            );
            self.fail(why, expected);
            return false;
        }
        self.checked += 1;
        true
    }

    pub fn finish(mut self) -> VerifyReport {
        let entries = self.state.frontier.size();
        if let Some((&size, _)) = self.checkpoints.iter().next_back()
            && size > entries
        {
            self.fail(format!("truncated: a signed checkpoint covers {size} entries, only {entries} are present"), entries + 1);
        }
        let (problem, first_bad_entry) = self.problem.unwrap_or_default();
        VerifyReport {
            ok: problem.is_empty(),
            entries: self.checked,
            checkpoints: self.checkpoints.len() as u64,
            problem,
            first_bad_entry,
        }
    }
}

/// Verifies an export (JSON lines of `ExportItem`, as `cbm-hub audit export` writes them),
/// offline. With `pinned`, the export's own public key must be that key.
pub fn verify_export(
    lines: impl Iterator<Item = std::io::Result<String>>,
    pinned: Option<Vec<u8>>,
) -> Result<VerifyReport, String> {
    use crate::pb::{ExportItem, export_item::Item};
    let mut key = None;
    let mut checkpoints = Vec::new();
    let mut entries = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let item: ExportItem =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))?;
        match item.item {
            Some(Item::PublicKey(k)) => key = Some(k.to_vec()),
            Some(Item::Checkpoint(c)) => checkpoints.push(c),
            Some(Item::Entry(e)) => entries.push(e),
            None => {}
        }
    }
    let key = match (pinned, key) {
        (Some(p), Some(k)) if p != k => {
            return Ok(VerifyReport {
                ok: false,
                problem: "the export's public key is not the pinned key".into(),
                ..Default::default()
            });
        }
        (Some(p), _) => p,
        (None, Some(k)) => k,
        (None, None) => return Err("the export holds no public key".into()),
    };
    let mut verifier = Verifier::new(key);
    for c in checkpoints {
        verifier.checkpoint(c);
    }
    for e in &entries {
        if !verifier.entry(e) {
            break;
        }
    }
    Ok(verifier.finish())
}
