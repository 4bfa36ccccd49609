//! The tamper-evident audit log: how entries are hashed and chained, the Merkle frontier,
//! checkpoint signing, and the verifier (used by the hub and, offline, by `cbm-hub audit
//! verify`). Writing entries is the store writer's job (in the same transaction as the change
//! they record); this module is pure.
pub mod bound;
pub mod consistency;
pub mod merkle;
pub mod noise;
pub mod signing;
pub mod verify;

use prost::Message;
use sha2::{Digest, Sha256};

use crate::pb::AuditEntry;
use merkle::{Frontier, Hash, leaf_hash};
pub use verify::{Coverage, Verifier, check_served, verify_export};

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
