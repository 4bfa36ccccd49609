//! RFC 6962 consistency proofs: that a Merkle tree of `m` leaves is a prefix of one of `n`.
//!
//! Generation follows RFC 6962 section 2.1.2 (`PROOF`/`SUBPROOF`) over an oracle that gives the
//! Merkle tree hash of any range of leaves, so the caller decides where hashes come from (the
//! store reads entries and caches subtree roots). Verification follows RFC 9162 section
//! 2.1.4.2, which needs only the two sizes, the two roots and the proof.
use super::merkle::{Hash, node_hash};

/// Why a consistency proof does not prove what it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inconsistent {
    #[error("the later size {later} is smaller than the earlier size {earlier}")]
    Shrunk { earlier: u64, later: u64 },
    #[error("equal sizes ({0}) with different roots: the log was rewritten")]
    SameSizeDifferentRoots(u64),
    #[error("the proof has {0} hashes where none are expected")]
    NotEmpty(usize),
    #[error("the proof is empty")]
    Empty,
    #[error("the proof has more hashes than the sizes allow")]
    TooLong,
    #[error("the proof is too short for the sizes")]
    TooShort,
    #[error("the proof does not lead to the earlier root: the earlier log is not a prefix")]
    EarlierRoot,
    #[error("the proof does not lead to the later root: the later log does not extend the earlier")]
    LaterRoot,
}

/// The largest power of two smaller than `n` (n >= 2): where RFC 6962 splits a tree of `n`.
pub fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The consistency proof from size `m` to size `n` (RFC 6962 `PROOF(m, D[n])`), with `mth(a, b)`
/// giving the Merkle tree hash of leaves `a..b` (0-based, end exclusive). Empty when `m` is 0
/// or `m >= n` (nothing to prove; callers refuse `m > n` before asking).
pub fn prove<E>(
    m: u64,
    n: u64,
    mth: &mut impl FnMut(u64, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    let mut out = Vec::new();
    if m > 0 && m < n {
        subproof(m, 0, n, true, mth, &mut out)?;
    }
    Ok(out)
}

/// RFC 6962 `SUBPROOF(m, D[start:end], complete)`, `m` relative to `start`.
fn subproof<E>(
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    mth: &mut impl FnMut(u64, u64) -> Result<Hash, E>,
    out: &mut Vec<Hash>,
) -> Result<(), E> {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(mth(start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, start + k, complete, mth, out)?;
        out.push(mth(start + k, end)?);
    } else {
        subproof(m - k, start + k, end, false, mth, out)?;
        out.push(mth(start, start + k)?);
    }
    Ok(())
}

/// Checks that `proof` shows the tree of `m` leaves with root `root_m` is a prefix of the tree
/// of `n` leaves with root `root_n` (RFC 9162 section 2.1.4.2). Size 0 is a prefix of anything.
pub fn verify(
    m: u64,
    n: u64,
    root_m: &Hash,
    root_n: &Hash,
    proof: &[Hash],
) -> Result<(), Inconsistent> {
    if m > n {
        return Err(Inconsistent::Shrunk {
            earlier: m,
            later: n,
        });
    }
    if m == 0 || m == n {
        if !proof.is_empty() {
            return Err(Inconsistent::NotEmpty(proof.len()));
        }
        if m == n && root_m != root_n {
            return Err(Inconsistent::SameSizeDifferentRoots(m));
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(Inconsistent::Empty);
    }
    // A power-of-two earlier tree is itself a node of the later one: its root starts the path.
    let mut path = Vec::with_capacity(proof.len() + 1);
    if m.is_power_of_two() {
        path.push(*root_m);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (m - 1, n - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(Inconsistent::TooLong);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(Inconsistent::TooShort);
    }
    if fr != *root_m {
        return Err(Inconsistent::EarlierRoot);
    }
    if sr != *root_n {
        return Err(Inconsistent::LaterRoot);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
