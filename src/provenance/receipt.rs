//! The hub's receipts: the text it signs for an accepted change, and RFC 6962 inclusion proofs
//! of the change's audit entry in the audit log's Merkle tree.
//!
//! The receipt is signed with the hub's audit checkpoint key: a reader pins one public key
//! (`audit-signing-key.pub`) for receipts and the checkpoints they prove against, and the
//! texts' distinct first lines keep a receipt from being read as a checkpoint or the reverse.
use ring::signature::{ED25519, UnparsedPublicKey};

use crate::{
    audit::{
        consistency::split,
        merkle::{Hash, node_hash},
    },
    pb::Receipt,
};

/// The exact text the hub signs for a receipt: every field but the signature, proof and
/// checkpoint, one per line. Ids, hashes and times hold no line breaks.
pub fn signed_text(r: &Receipt) -> String {
    format!(
        "cbm-hub receipt v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        r.hub_id,
        r.submission_id,
        r.revision,
        r.content_hash,
        r.publisher,
        r.sequence,
        r.accepted_at,
        r.leaf_index,
        r.leaf_hash,
        r.action,
        r.signature_sha256,
        r.signer_cert_sha256
    )
}

/// Whether `public_key` (raw Ed25519) signed the receipt.
pub fn verify_signature(public_key: &[u8], r: &Receipt) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(signed_text(r).as_bytes(), &r.hub_signature)
        .is_ok()
}

/// RFC 6962 `PATH(index, D[size])`: the audit path of leaf `index` (0-based) in the tree of
/// `size` leaves, with `mth(a, b)` the Merkle tree hash of leaves `a..b`. The caller makes sure
/// `index < size`.
pub fn prove<E>(
    index: u64,
    size: u64,
    mth: &mut impl FnMut(u64, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    let mut out = Vec::new();
    path(index, 0, size, mth, &mut out)?;
    Ok(out)
}

fn path<E>(
    m: u64,
    start: u64,
    end: u64,
    mth: &mut impl FnMut(u64, u64) -> Result<Hash, E>,
    out: &mut Vec<Hash>,
) -> Result<(), E> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(m, start, start + k, mth, out)?;
        out.push(mth(start + k, end)?);
    } else {
        path(m - k, start + k, end, mth, out)?;
        out.push(mth(start, start + k)?);
    }
    Ok(())
}

/// Checks an inclusion proof (RFC 9162 section 2.1.3.2): that `leaf` is leaf `index` of the
/// tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// A 32-byte hash from lowercase hex.
pub fn hash_from_hex(h: &str) -> Option<Hash> {
    hex::decode(h).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::merkle::{Frontier, leaf_hash};

    #[test]
    fn every_leaf_of_every_size_proves_and_a_changed_proof_does_not() {
        let leaves: Vec<Hash> = (0..40u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut mth = |a: u64, b: u64| -> Result<Hash, ()> {
            let mut f = Frontier::default();
            for l in &leaves[a as usize..b as usize] {
                f.push(*l);
            }
            Ok(f.root())
        };
        for size in 1..=leaves.len() as u64 {
            let root = mth(0, size).unwrap();
            for index in 0..size {
                let proof = prove(index, size, &mut mth).unwrap();
                let leaf = &leaves[index as usize];
                assert!(
                    verify_inclusion(index, size, leaf, &proof, &root),
                    "{index}/{size}"
                );
                assert!(!verify_inclusion(
                    index,
                    size,
                    &leaves[0].map(|b| !b),
                    &proof,
                    &root
                ));
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = first.map(|b| b ^ 1);
                    assert!(!verify_inclusion(index, size, leaf, &bad, &root));
                }
                // Not a proof against another size's root.
                if size < leaves.len() as u64 {
                    let later = mth(0, size + 1).unwrap();
                    assert!(!verify_inclusion(index, size + 1, leaf, &proof, &later));
                }
            }
        }
    }
}
