//! Known vectors (the RFC 6962 test data used by Certificate Transparency implementations), a
//! naive recursive reference over slices, and corrupted proofs that must all fail.
use sha2::{Digest, Sha256};

use super::*;
use crate::audit::merkle::{Frontier, leaf_hash};

fn h(hex: &str) -> Hash {
    hex::decode(hex).unwrap().try_into().unwrap()
}

/// The eight leaves of the CT test tree, as raw leaf data.
fn ct_leaves() -> Vec<Hash> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|d| leaf_hash(&hex::decode(d).unwrap()))
    .collect()
}

/// MTH by the recursive definition of RFC 6962 section 2.1.
fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

/// PROOF(m, D[n]) written directly from RFC 6962 section 2.1.2 over slices.
fn reference_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    fn sub(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![reference_root(d)] };
        }
        let k = split(n as u64) as usize;
        if m <= k {
            let mut p = sub(m, &d[..k], b);
            p.push(reference_root(&d[k..]));
            p
        } else {
            let mut p = sub(m - k, &d[k..], false);
            p.push(reference_root(&d[..k]));
            p
        }
    }
    sub(m, leaves, true)
}

fn proof_over(m: u64, leaves: &[Hash]) -> Vec<Hash> {
    let mut mth = |a: u64, b: u64| Ok::<_, ()>(reference_root(&leaves[a as usize..b as usize]));
    prove(m, leaves.len() as u64, &mut mth).unwrap()
}

#[test]
fn ct_roots_and_proofs_match_the_published_vectors() {
    let leaves = ct_leaves();
    let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let mut frontier = Frontier::default();
    for (i, leaf) in leaves.iter().enumerate() {
        frontier.push(*leaf);
        assert_eq!(frontier.root(), h(roots[i]), "root of size {}", i + 1);
    }
    let vectors: &[(u64, u64, &[&str])] = &[
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (m, n, expected) in vectors {
        let expected: Vec<Hash> = expected.iter().map(|x| h(x)).collect();
        let got = proof_over(*m, &leaves[..*n as usize]);
        assert_eq!(got, expected, "proof {m} -> {n}");
        let (rm, rn) = (h(roots[*m as usize - 1]), h(roots[*n as usize - 1]));
        assert_eq!(
            verify(*m, *n, &rm, &rn, &expected),
            Ok(()),
            "verify {m} -> {n}"
        );
    }
}

/// Ways a good proof can be damaged (after transparency-dev's corruption probes).
fn corruptions(
    m: u64,
    n: u64,
    rm: Hash,
    rn: Hash,
    proof: &[Hash],
) -> Vec<(String, u64, u64, Hash, Hash, Vec<Hash>)> {
    let other = leaf_hash(b"something else");
    let mut out = vec![
        ("m - 1".to_string(), m - 1, n, rm, rn, proof.to_vec()),
        ("m + 1".into(), m + 1, n, rm, rn, proof.to_vec()),
        ("m ^ 2".into(), m ^ 2, n, rm, rn, proof.to_vec()),
        ("n * 2".into(), m, n * 2, rm, rn, proof.to_vec()),
        ("n / 2".into(), m, n / 2, rm, rn, proof.to_vec()),
        ("wrong earlier root".into(), m, n, other, rn, proof.to_vec()),
        ("wrong later root".into(), m, n, rm, other, proof.to_vec()),
        ("swapped roots".into(), m, n, rn, rm, proof.to_vec()),
        ("empty proof".into(), m, n, rm, rn, vec![]),
    ];
    for extra in [rm, rn, other] {
        let mut longer = proof.to_vec();
        longer.push(extra);
        out.push(("trailing hash".into(), m, n, rm, rn, longer));
        let mut longer = vec![extra];
        longer.extend_from_slice(proof);
        out.push(("preceding hash".into(), m, n, rm, rn, longer));
    }
    out.push((
        "truncated".into(),
        m,
        n,
        rm,
        rn,
        proof[..proof.len() - 1].to_vec(),
    ));
    for i in 0..proof.len() {
        let mut flipped = proof.to_vec();
        flipped[i][0] ^= 16;
        out.push((format!("proof[{i}] bit flipped"), m, n, rm, rn, flipped));
    }
    // Some probes land on sizes where the same proof is legitimately valid (e.g. m ^ 2 == m
    // when bit 1 is clear is not a change): keep only the ones that differ from the original.
    out.retain(|(_, mm, nn, a, b, p)| (*mm, *nn, *a, *b, p.as_slice()) != (m, n, rm, rn, proof));
    out
}

#[test]
fn every_pair_of_sizes_matches_the_reference_and_every_corruption_fails() {
    let leaves: Vec<Hash> = (0..40u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    let roots: Vec<Hash> = (0..=leaves.len())
        .map(|k| reference_root(&leaves[..k]))
        .collect();
    for n in 1..=leaves.len() {
        let rn = roots[n];
        for m in 1..=n {
            let rm = roots[m];
            let proof = proof_over(m as u64, &leaves[..n]);
            assert_eq!(proof, reference_proof(m, &leaves[..n]), "proof {m} -> {n}");
            assert_eq!(
                verify(m as u64, n as u64, &rm, &rn, &proof),
                Ok(()),
                "{m} -> {n}"
            );
            if proof.is_empty() {
                continue;
            }
            for (what, mm, nn, a, b, p) in corruptions(m as u64, n as u64, rm, rn, &proof) {
                // A probe that changed only the sizes may by chance describe another true
                // statement about this log: accept it only if it is true.
                let true_statement = mm >= 1
                    && nn as usize <= leaves.len()
                    && mm <= nn
                    && a == roots[mm as usize]
                    && b == roots[nn as usize]
                    && p == proof_over(mm, &leaves[..nn as usize]);
                assert!(
                    true_statement || verify(mm, nn, &a, &b, &p).is_err(),
                    "{m} -> {n}: {what} verified"
                );
            }
        }
    }
}

#[test]
fn trivial_sizes_and_a_shrinking_log() {
    let a = leaf_hash(b"a");
    let b = leaf_hash(b"b");
    assert_eq!(verify(0, 0, &a, &a, &[]), Ok(()));
    assert_eq!(
        verify(0, 0, &a, &b, &[]),
        Err(Inconsistent::SameSizeDifferentRoots(0))
    );
    // The empty log is a prefix of anything, whatever root the later one has.
    assert_eq!(verify(0, 5, &a, &b, &[]), Ok(()));
    assert_eq!(verify(0, 5, &a, &b, &[a]), Err(Inconsistent::NotEmpty(1)));
    assert_eq!(verify(3, 3, &a, &a, &[]), Ok(()));
    assert_eq!(
        verify(3, 3, &a, &b, &[]),
        Err(Inconsistent::SameSizeDifferentRoots(3))
    );
    assert_eq!(
        verify(4, 3, &a, &b, &[a]),
        Err(Inconsistent::Shrunk {
            earlier: 4,
            later: 3
        })
    );
    assert_eq!(verify(2, 3, &a, &b, &[]), Err(Inconsistent::Empty));
}

#[test]
fn split_is_the_largest_power_of_two_below() {
    for (n, k) in [
        (2, 1),
        (3, 2),
        (4, 2),
        (5, 4),
        (8, 4),
        (9, 8),
        (1 << 40, 1 << 39),
    ] {
        assert_eq!(split(n), k, "{n}");
    }
}
