//! The Merkle tree over a batch of token payloads (RFC 6962 shape, SHA3-256).
//!
//! One threshold signature covers a whole batch of decisions: the validators
//! sign the root, and each token carries the audit path from its own leaf to
//! that root (`docs/PROTOCOL.md`, "Governance tokens").
//!
//! * leaf hash  = SHA3-256(`0x00` || leaf bytes)
//! * inner hash = SHA3-256(`0x01` || left || right)
//! * a list of n > 1 leaves splits at k, the largest power of two below n:
//!   the left subtree holds leaves `[0, k)`, the right `[k, n)`.
//!
//! The `0x00`/`0x01` prefixes keep a leaf from ever being read as an inner
//! node (second-preimage resistance). A batch of one leaf has root = its leaf
//! hash and an empty proof, so a lone decision pays no proof bytes.

use senatus_genesis::Digest;
use sha3::{Digest as _, Sha3_256};

/// Most leaves (decisions) in one signed batch.
pub const BATCH_LEAVES_MAX: u32 = 4096;

/// Longest audit path: the depth of a tree of [`BATCH_LEAVES_MAX`] leaves.
pub const PROOF_DIGESTS_MAX: usize = 12;

const _: () = assert!(1u32 << PROOF_DIGESTS_MAX == BATCH_LEAVES_MAX);

/// Why a tree cannot be built or a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// A batch has at least one leaf.
    #[error("a Merkle batch needs at least one leaf")]
    Empty,
    /// More than [`BATCH_LEAVES_MAX`] leaves.
    #[error("{count} leaves in one batch, over the limit of {BATCH_LEAVES_MAX}")]
    TooManyLeaves {
        /// The count given.
        count: u64,
    },
    /// The leaf index is not below the leaf count.
    #[error("leaf index {index} is out of range for a batch of {count}")]
    IndexOutOfRange {
        /// The index.
        index: u32,
        /// The leaf count.
        count: u32,
    },
    /// The proof has more or fewer digests than the path from this index in
    /// a tree of this size.
    #[error("proof has {found} digests; leaf {index} of {count} needs {expected}")]
    ProofLength {
        /// The index.
        index: u32,
        /// The leaf count.
        count: u32,
        /// Digests the path has.
        expected: usize,
        /// Digests the proof has.
        found: usize,
    },
    /// The path hashes to a different root.
    #[error("inclusion proof leads to root {computed}, expected {expected}")]
    RootMismatch {
        /// The root the token claims was signed.
        expected: Digest,
        /// The root the leaf and proof produce.
        computed: Digest,
    },
}

/// SHA3-256(`0x00` || `leaf`).
pub fn leaf_hash(leaf: &[u8]) -> Digest {
    let mut h = Sha3_256::new();
    h.update([0x00]);
    h.update(leaf);
    Digest(h.finalize().into())
}

/// SHA3-256(`0x01` || `left` || `right`).
pub fn inner_hash(left: &Digest, right: &Digest) -> Digest {
    let mut h = Sha3_256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Digest(h.finalize().into())
}

fn check_count(count: usize) -> Result<u32, MerkleError> {
    if count == 0 {
        return Err(MerkleError::Empty);
    }
    match u32::try_from(count) {
        Ok(n) if n <= BATCH_LEAVES_MAX => Ok(n),
        _ => Err(MerkleError::TooManyLeaves {
            count: count as u64,
        }),
    }
}

/// A built tree: every level, leaf hashes first.
///
/// Built bottom-up, pairing nodes left to right and carrying an unpaired
/// last node up unchanged. That yields exactly the RFC 6962 split-at-the-
/// largest-power-of-two tree (the tests compare against a literal recursive
/// rendering of the rule), while computing every proof in O(log n).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<Digest>>,
}

impl MerkleTree {
    /// Builds the tree over already-hashed leaves.
    pub fn from_leaf_hashes(leaf_hashes: Vec<Digest>) -> Result<Self, MerkleError> {
        check_count(leaf_hashes.len())?;
        let mut levels = vec![leaf_hashes];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("levels is never empty");
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => inner_hash(l, r),
                    [carried] => *carried,
                    _ => unreachable!("chunks(2) yields one or two items"),
                })
                .collect();
            levels.push(above);
        }
        debug_assert!(levels.len() <= PROOF_DIGESTS_MAX + 1);
        Ok(MerkleTree { levels })
    }

    /// Builds the tree over raw leaves (hashing each with [`leaf_hash`]).
    pub fn from_leaves<L: AsRef<[u8]>>(leaves: &[L]) -> Result<Self, MerkleError> {
        check_count(leaves.len())?;
        Self::from_leaf_hashes(leaves.iter().map(|l| leaf_hash(l.as_ref())).collect())
    }

    /// Number of leaves (1..=[`BATCH_LEAVES_MAX`]).
    pub fn leaf_count(&self) -> u32 {
        u32::try_from(self.levels[0].len()).expect("leaf count was bounded on construction")
    }

    /// The leaf hashes, in order.
    pub fn leaf_hashes(&self) -> &[Digest] {
        &self.levels[0]
    }

    /// The root.
    pub fn root(&self) -> Digest {
        self.levels.last().expect("levels is never empty")[0]
    }

    /// The audit path of leaf `index`, from the leaf's sibling upwards.
    pub fn proof(&self, index: u32) -> Result<Vec<Digest>, MerkleError> {
        let count = self.leaf_count();
        if index >= count {
            return Err(MerkleError::IndexOutOfRange { index, count });
        }
        let mut i = index as usize;
        let mut path = Vec::with_capacity(self.levels.len() - 1);
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = i ^ 1;
            if sibling < level.len() {
                path.push(level[sibling]);
            }
            i >>= 1;
        }
        debug_assert_eq!(path.len(), proof_len(index, count));
        Ok(path)
    }
}

/// The root of `leaves`.
pub fn root<L: AsRef<[u8]>>(leaves: &[L]) -> Result<Digest, MerkleError> {
    Ok(MerkleTree::from_leaves(leaves)?.root())
}

/// The audit path of leaf `index` in `leaves`.
pub fn proof<L: AsRef<[u8]>>(leaves: &[L], index: u32) -> Result<Vec<Digest>, MerkleError> {
    MerkleTree::from_leaves(leaves)?.proof(index)
}

/// How many digests the audit path of leaf `index` in a tree of `count`
/// leaves has (0 for a batch of one). `index < count` is the caller's duty.
pub fn proof_len(index: u32, count: u32) -> usize {
    // Walk the RFC 6962 split down to the leaf; each split adds one sibling.
    let (mut index, mut count, mut len) = (index, count, 0usize);
    while count > 1 {
        let k = largest_power_of_two_below(count);
        if index < k {
            count = k;
        } else {
            index -= k;
            count -= k;
        }
        len += 1;
    }
    len
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn largest_power_of_two_below(n: u32) -> u32 {
    debug_assert!(n >= 2);
    1 << (31 - (n - 1).leading_zeros())
}

/// The root that `leaf_hash` at `index` of `count` and `proof` lead to.
///
/// Fails if the index or count is out of range or the proof has the wrong
/// length for that position; it does not compare against any root.
pub fn root_from_proof(
    leaf_hash: &Digest,
    index: u32,
    count: u32,
    proof: &[Digest],
) -> Result<Digest, MerkleError> {
    if count == 0 {
        return Err(MerkleError::Empty);
    }
    if count > BATCH_LEAVES_MAX {
        return Err(MerkleError::TooManyLeaves {
            count: u64::from(count),
        });
    }
    if index >= count {
        return Err(MerkleError::IndexOutOfRange { index, count });
    }
    let expected = proof_len(index, count);
    if proof.len() != expected {
        return Err(MerkleError::ProofLength {
            index,
            count,
            expected,
            found: proof.len(),
        });
    }
    // Bottom-up walk (RFC 9162 §2.1.3.2): `i` is the node's position in its
    // level and `last` the last position in that level. A right child, or a
    // left child that is the last (unpaired, carried) node, takes its
    // sibling from the left; a carried node skips levels until it pairs.
    let (mut i, mut last) = (index, count - 1);
    let mut node = *leaf_hash;
    for sibling in proof {
        if i & 1 == 1 || i == last {
            node = inner_hash(sibling, &node);
            while i & 1 == 0 && i != 0 {
                i >>= 1;
                last >>= 1;
            }
        } else {
            node = inner_hash(&node, sibling);
        }
        i >>= 1;
        last >>= 1;
    }
    // The length check above guarantees the walk reached the root.
    debug_assert_eq!(last, 0);
    Ok(node)
}

/// Checks that `leaf_hash` is leaf `index` of a `count`-leaf tree with `root`.
pub fn verify(
    leaf_hash: &Digest,
    index: u32,
    count: u32,
    proof: &[Digest],
    root: &Digest,
) -> Result<(), MerkleError> {
    let computed = root_from_proof(leaf_hash, index, count, proof)?;
    if computed != *root {
        return Err(MerkleError::RootMismatch {
            expected: *root,
            computed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962 §2.1 MTH, written literally as the recursive definition.
    fn reference_root(leaves: &[Vec<u8>]) -> Digest {
        match leaves.len() {
            0 => unreachable!("no empty trees in senatus"),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = largest_power_of_two_below(n as u32) as usize;
                inner_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    /// RFC 6962 §2.1.1 PATH, literally.
    fn reference_path(m: usize, leaves: &[Vec<u8>]) -> Vec<Digest> {
        let n = leaves.len();
        if n == 1 {
            return Vec::new();
        }
        let k = largest_power_of_two_below(n as u32) as usize;
        if m < k {
            let mut p = reference_path(m, &leaves[..k]);
            p.push(reference_root(&leaves[k..]));
            p
        } else {
            let mut p = reference_path(m - k, &leaves[k..]);
            p.push(reference_root(&leaves[..k]));
            p
        }
    }

    fn leaves(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("leaf {i}").into_bytes()).collect()
    }

    #[test]
    fn split_point_is_the_largest_power_of_two_below() {
        let got: Vec<u32> = [2, 3, 4, 5, 8, 9, 4096]
            .into_iter()
            .map(largest_power_of_two_below)
            .collect();
        assert_eq!(got, vec![1, 2, 2, 4, 4, 8, 2048]);
    }

    #[test]
    fn a_batch_of_one_is_its_leaf_hash_with_an_empty_proof() {
        let l = leaves(1);
        let r = root(&l).expect("root");
        assert_eq!(r, leaf_hash(&l[0]));
        assert_eq!(proof(&l, 0).expect("proof"), Vec::<Digest>::new());
        verify(&leaf_hash(&l[0]), 0, 1, &[], &r).expect("verifies");
        // The leaf hash is domain-separated from the raw bytes' SHA3.
        assert_ne!(r, senatus_genesis::sha3(&l[0]));
    }

    #[test]
    fn every_index_of_sizes_1_to_33_matches_rfc6962_and_verifies() {
        for n in 1..=33usize {
            let l = leaves(n);
            let tree = MerkleTree::from_leaves(&l).expect("tree");
            let r = tree.root();
            assert_eq!(r, reference_root(&l), "root, n={n}");
            let count = n as u32;
            for m in 0..n {
                let index = m as u32;
                let p = tree.proof(index).expect("proof");
                assert_eq!(p, reference_path(m, &l), "path n={n} m={m}");
                assert_eq!(p.len(), proof_len(index, count));
                assert!(p.len() <= PROOF_DIGESTS_MAX);
                let lh = leaf_hash(&l[m]);
                verify(&lh, index, count, &p, &r).expect("verifies");

                // A different leaf at this position fails.
                let other = leaf_hash(b"not a leaf");
                assert!(matches!(
                    verify(&other, index, count, &p, &r),
                    Err(MerkleError::RootMismatch { .. })
                ));
                // Any flipped bit in any proof digest fails.
                for j in 0..p.len() {
                    let mut bad = p.clone();
                    bad[j].0[j % 32] ^= 0x01;
                    assert!(
                        matches!(
                            verify(&lh, index, count, &bad, &r),
                            Err(MerkleError::RootMismatch { .. })
                        ),
                        "tampered proof n={n} m={m} j={j}"
                    );
                }
                // The right proof at another index fails, whatever the error.
                for other_index in 0..count {
                    if other_index != index {
                        assert!(
                            verify(&lh, other_index, count, &p, &r).is_err(),
                            "n={n} m={m} claimed index {other_index}"
                        );
                    }
                }
                // Under another count the proof fails, except where the
                // path has the same shape (e.g. leaf 0 of 3 and of 4). The
                // proof alone does not bind the count; that is why the
                // count is part of the signed batch message.
                for other_count in 1..=34u32 {
                    if other_count == count {
                        continue;
                    }
                    let res = verify(&lh, index, other_count, &p, &r);
                    if index >= other_count || proof_len(index, other_count) != p.len() {
                        assert!(res.is_err(), "n={n} m={m} claimed count {other_count}");
                    }
                }
                // Dropping or adding a digest is a length error.
                if !p.is_empty() {
                    let short = &p[..p.len() - 1];
                    assert!(matches!(
                        verify(&lh, index, count, short, &r),
                        Err(MerkleError::ProofLength { .. })
                    ));
                }
                let mut long = p.clone();
                long.push(r);
                assert!(matches!(
                    verify(&lh, index, count, &long, &r),
                    Err(MerkleError::ProofLength { .. })
                ));
            }
        }
    }

    #[test]
    fn limits_are_enforced() {
        assert_eq!(root::<Vec<u8>>(&[]), Err(MerkleError::Empty));
        let too_many = vec![Digest::ZERO; BATCH_LEAVES_MAX as usize + 1];
        assert_eq!(
            MerkleTree::from_leaf_hashes(too_many),
            Err(MerkleError::TooManyLeaves {
                count: u64::from(BATCH_LEAVES_MAX) + 1
            })
        );
        let full: Vec<Digest> = (0..BATCH_LEAVES_MAX)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let tree = MerkleTree::from_leaf_hashes(full.clone()).expect("exactly at the limit");
        let last = BATCH_LEAVES_MAX - 1;
        let p = tree.proof(last).expect("proof");
        assert_eq!(p.len(), PROOF_DIGESTS_MAX);
        verify(
            &full[last as usize],
            last,
            BATCH_LEAVES_MAX,
            &p,
            &tree.root(),
        )
        .expect("ok");
        assert_eq!(
            tree.proof(BATCH_LEAVES_MAX),
            Err(MerkleError::IndexOutOfRange {
                index: BATCH_LEAVES_MAX,
                count: BATCH_LEAVES_MAX
            })
        );
        assert_eq!(
            verify(&full[0], 0, 0, &[], &tree.root()),
            Err(MerkleError::Empty)
        );
        assert!(matches!(
            verify(&full[0], 0, BATCH_LEAVES_MAX + 1, &p, &tree.root()),
            Err(MerkleError::TooManyLeaves { .. })
        ));
    }
}
