//! Merkle tree hashes over stored audit entries, for consistency proofs.
//!
//! A proof needs the hashes of O(log n) subtrees. Subtrees of [`CHUNK`] leaves or more are
//! built from the roots of aligned blocks of `CHUNK` leaves, cached in memory as they are
//! first needed (entries never change once written, and the cache is only ever extended);
//! smaller ones are hashed from the entries themselves. A first proof after a start reads
//! the log once; later ones read at most a few blocks' worth of entries.
use std::sync::Mutex;

use super::{Store, StoreError};
use crate::audit::{
    consistency::{self, split},
    leaf_of,
    merkle::{Frontier, Hash, node_hash},
};

/// Leaves per cached block (a power of two).
const CHUNK: u64 = 256;

/// Roots of the complete blocks of `CHUNK` leaves, in order.
#[derive(Default)]
pub(super) struct BlockRoots(Mutex<Vec<Hash>>);

/// A consistency proof with the roots it connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub from_root: Hash,
    pub to_root: Hash,
    pub hashes: Vec<Hash>,
}

impl Store {
    /// The consistency proof from `from` to `to` entries of the stored log. The caller makes
    /// sure `from <= to` and that `to` entries are durable (a signed checkpoint covers them).
    pub fn audit_consistency(&self, from: u64, to: u64) -> Result<Proof, StoreError> {
        let mut blocks = self
            .inner
            .audit_blocks
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut mth = |a: u64, b: u64| self.range_hash(&mut blocks, a, b);
        Ok(Proof {
            from_root: self.prefix_root(&mut mth, from)?,
            to_root: self.prefix_root(&mut mth, to)?,
            hashes: consistency::prove(from, to, &mut mth)?,
        })
    }

    /// The RFC 6962 inclusion proof of leaf `index` (0-based) in the tree of the first `size`
    /// entries. The caller makes sure `index < size` and that `size` entries are durable.
    pub fn audit_inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        let mut blocks = self
            .inner
            .audit_blocks
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut mth = |a: u64, b: u64| self.range_hash(&mut blocks, a, b);
        crate::provenance::receipt::prove(index, size, &mut mth)
    }

    fn prefix_root(
        &self,
        mth: &mut impl FnMut(u64, u64) -> Result<Hash, StoreError>,
        size: u64,
    ) -> Result<Hash, StoreError> {
        if size == 0 {
            return Ok(Frontier::default().root());
        }
        mth(0, size)
    }

    /// The Merkle tree hash of leaves `a..b` (0-based), as RFC 6962 splits them.
    fn range_hash(&self, blocks: &mut Vec<Hash>, a: u64, b: u64) -> Result<Hash, StoreError> {
        let n = b - a;
        if n <= CHUNK || a % CHUNK != 0 {
            // Small, or (never in RFC 6962 splits of a prefix) unaligned: hash the leaves.
            return self.leaves_root(a, b);
        }
        if n.is_power_of_two() && a % n == 0 {
            // An aligned perfect subtree of whole blocks.
            self.fill_blocks(blocks, b / CHUNK)?;
            return Ok(perfect_root(
                &blocks[(a / CHUNK) as usize..(b / CHUNK) as usize],
            ));
        }
        let k = split(n);
        Ok(node_hash(
            &self.range_hash(blocks, a, a + k)?,
            &self.range_hash(blocks, a + k, b)?,
        ))
    }

    /// Reads leaves `a..b` from the log and returns their tree hash.
    fn leaves_root(&self, a: u64, b: u64) -> Result<Hash, StoreError> {
        let mut f = Frontier::default();
        for (i, entry) in self.audit_after(a).take((b - a) as usize).enumerate() {
            let entry = entry?;
            if entry.sequence != a + i as u64 + 1 {
                return Err(StoreError::Corrupt(format!(
                    "audit entry {} is stored under sequence {}",
                    a + i as u64 + 1,
                    entry.sequence
                )));
            }
            f.push(leaf_of(&entry));
        }
        if f.size() != b - a {
            return Err(StoreError::Corrupt(format!(
                "the audit log ends before entry {b}"
            )));
        }
        Ok(f.root())
    }

    /// Extends the cached block roots to at least `count` blocks.
    fn fill_blocks(&self, blocks: &mut Vec<Hash>, count: u64) -> Result<(), StoreError> {
        while (blocks.len() as u64) < count {
            let a = blocks.len() as u64 * CHUNK;
            blocks.push(self.leaves_root(a, a + CHUNK)?);
        }
        Ok(())
    }
}

/// Root of a perfect tree over `nodes` (a power-of-two count of equal-height subtree roots).
fn perfect_root(nodes: &[Hash]) -> Hash {
    let mut level = nodes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        audit::{Origin, consistency::verify},
        store::StoreOptions,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn proofs_over_stored_entries_verify_across_block_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                fsync: false,
                check_on_start: false,
                ..Default::default()
            },
        )
        .unwrap();
        let n = 3 * CHUNK + 37;
        let entries = (0..n).map(|_| Origin::hub().entry("test.entry")).collect();
        store.audit(entries).await;
        assert_eq!(store.checkpoint().await.unwrap().tree_size, n);
        // Roots of every prefix, independently of the block cache.
        let mut f = Frontier::default();
        let mut roots = vec![f.root()];
        for e in store.audit_after(0) {
            f.push(leaf_of(&e.unwrap()));
            roots.push(f.root());
        }
        let sizes = [
            0,
            1,
            2,
            7,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK,
            2 * CHUNK + 5,
            n - 1,
            n,
        ];
        for &to in &sizes {
            for &from in sizes.iter().filter(|&&m| m <= to) {
                let p = store.audit_consistency(from, to).unwrap();
                assert_eq!(
                    (p.from_root, p.to_root),
                    (roots[from as usize], roots[to as usize])
                );
                assert_eq!(
                    verify(from, to, &p.from_root, &p.to_root, &p.hashes),
                    Ok(()),
                    "{from} -> {to}"
                );
            }
        }
        store.close();
    }
}
