//! Merkle tree hashes over stored audit entries, for consistency proofs.
//!
//! A proof needs the hashes of O(log n) subtrees. Subtrees of [`CHUNK`] leaves or more are
//! built from the roots of aligned blocks of `CHUNK` leaves, cached in memory as they are
//! first needed (entries never change once written, and the cache is only ever extended);
//! smaller ones are hashed from the leaf hashes of their block, kept for the few blocks last
//! used (a receipt's proof is nearly always of the newest entries, and re-reading and decoding
//! up to a block of entries per receipt under the cache's lock serialised every signed
//! publish). A first proof after a start reads the log once; later ones read only entries
//! written since.
use std::{collections::VecDeque, sync::Mutex};

use super::{Store, StoreError};
use crate::audit::{
    consistency::{self, split},
    leaf_of,
    merkle::{Frontier, Hash, node_hash},
};

/// Leaves per cached block (a power of two).
const CHUNK: u64 = 256;

/// Blocks whose leaf hashes are kept.
const RECENT_BLOCKS: usize = 8;

#[derive(Default)]
pub(super) struct BlockRoots(Mutex<Blocks>);

#[derive(Default)]
pub(super) struct Blocks {
    /// Roots of the complete blocks of `CHUNK` leaves, in order.
    roots: Vec<Hash>,
    /// (block, the tree over its first entries, as many as read so far), most recently used
    /// last.
    recent: VecDeque<(u64, BlockTree)>,
}

/// The hashes of every complete aligned subtree of one block's leaves read so far:
/// `levels[h][i]` is the root of the 2^h leaves from `i * 2^h` (level 0: the leaf hashes).
/// Any range's tree hash is then O(log CHUNK) node hashes.
#[derive(Default)]
struct BlockTree {
    levels: Vec<Vec<Hash>>,
}

impl BlockTree {
    fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut h = 0;
        loop {
            if self.levels.len() == h {
                self.levels.push(Vec::new());
            }
            self.levels[h].push(node);
            let n = self.levels[h].len();
            if n % 2 == 1 {
                return;
            }
            node = node_hash(&self.levels[h][n - 2], &self.levels[h][n - 1]);
            h += 1;
        }
    }

    /// The RFC 6962 tree hash of leaves `a..b` (block-relative, `a < b <= len`).
    fn root(&self, a: u64, b: u64) -> Hash {
        let n = b - a;
        if n.is_power_of_two() && a % n == 0 {
            return self.levels[n.trailing_zeros() as usize][(a / n) as usize];
        }
        let k = split(n);
        node_hash(&self.root(a, a + k), &self.root(a + k, b))
    }
}

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
    fn range_hash(&self, blocks: &mut Blocks, a: u64, b: u64) -> Result<Hash, StoreError> {
        let n = b - a;
        if n <= CHUNK && a / CHUNK == (b - 1) / CHUNK {
            // Within one block (every RFC 6962 split of a prefix of CHUNK leaves or fewer is).
            return self.block_leaves_root(blocks, a, b);
        }
        if n <= CHUNK || a % CHUNK != 0 {
            // Never in RFC 6962 splits of a prefix: hash the leaves.
            return self.leaves_root(a, b);
        }
        if n.is_power_of_two() && a % n == 0 {
            // An aligned perfect subtree of whole blocks.
            self.fill_blocks(&mut blocks.roots, b / CHUNK)?;
            return Ok(perfect_root(
                &blocks.roots[(a / CHUNK) as usize..(b / CHUNK) as usize],
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
        for leaf in self.read_leaves(a, b)? {
            f.push(leaf);
        }
        Ok(f.root())
    }

    /// The tree hash of leaves `a..b` of one block, from its kept leaf hashes (read from the
    /// log as far as needed).
    fn block_leaves_root(&self, blocks: &mut Blocks, a: u64, b: u64) -> Result<Hash, StoreError> {
        let block = a / CHUNK;
        let at = match blocks.recent.iter().position(|(n, _)| *n == block) {
            Some(at) => at,
            None => {
                if blocks.recent.len() == RECENT_BLOCKS {
                    blocks.recent.pop_front();
                }
                blocks.recent.push_back((block, BlockTree::default()));
                blocks.recent.len() - 1
            }
        };
        let (_, tree) = &mut blocks.recent[at];
        let start = block * CHUNK;
        let have = start + tree.len();
        if have < b {
            for leaf in self.read_leaves(have, b)? {
                tree.push(leaf);
            }
        }
        let root = tree.root(a - start, b - start);
        // Most recently used last.
        let used = blocks.recent.remove(at).expect("just found");
        blocks.recent.push_back(used);
        Ok(root)
    }

    /// The leaf hashes of entries `a..b` (0-based) of the log.
    fn read_leaves(&self, a: u64, b: u64) -> Result<Vec<Hash>, StoreError> {
        let mut out = Vec::with_capacity((b - a) as usize);
        for (i, entry) in self.audit_after(a).take((b - a) as usize).enumerate() {
            let entry = entry?;
            if entry.sequence != a + i as u64 + 1 {
                return Err(StoreError::Corrupt(format!(
                    "audit entry {} is stored under sequence {}",
                    a + i as u64 + 1,
                    entry.sequence
                )));
            }
            out.push(leaf_of(&entry));
        }
        if (out.len() as u64) != b - a {
            return Err(StoreError::Corrupt(format!(
                "the audit log ends before entry {b}"
            )));
        }
        Ok(out)
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
    use crate::audit::consistency::verify;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn proofs_over_stored_entries_verify_across_block_boundaries() {
        let (_dir, store) = crate::store::scratch::store();
        let n = 3 * CHUNK + 37;
        store.audit(crate::store::scratch::entries(n)).await;
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

    /// Inclusion proofs from the kept block trees, while the log grows (a block kept partial,
    /// then extended) and across more blocks than are kept, against roots computed from the
    /// stored entries alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inclusion_proofs_verify_while_the_log_grows_and_blocks_are_evicted() {
        use crate::provenance::receipt::verify_inclusion;
        let (_dir, store) = crate::store::scratch::store();
        let entries = crate::store::scratch::entries;
        let check = |size: u64| {
            let leaves: Vec<Hash> = store
                .audit_after(0)
                .take(size as usize)
                .map(|e| leaf_of(&e.unwrap()))
                .collect();
            let mut f = Frontier::default();
            leaves.iter().for_each(|l| f.push(*l));
            let root = f.root();
            let step = (size / 97).max(1);
            let mut indexes: Vec<u64> = (0..size).step_by(step as usize).collect();
            indexes.extend([size - 1, size.saturating_sub(2)]);
            for i in indexes {
                let proof = store.audit_inclusion(i, size).unwrap();
                assert!(
                    verify_inclusion(i, size, &leaves[i as usize], &proof, &root),
                    "leaf {i} of {size}"
                );
            }
        };
        let first = 2 * CHUNK + 10;
        store.audit(entries(first)).await;
        store.checkpoint().await.unwrap();
        check(first);
        check(first - 3);
        let n = (RECENT_BLOCKS as u64 + 3) * CHUNK + 37;
        store.audit(entries(n - first)).await;
        store.checkpoint().await.unwrap();
        for size in [first + 1, first + CHUNK, n - CHUNK - 1, n, 5, 1] {
            check(size);
        }
        store.close();
    }
}
