//! One-round FROST signing with preprocessed nonces, 3 of 5: signatures
//! verify as plain Ed25519, nonces are never used twice (also across
//! restarts), a signer refuses an outcome it did not reach, bad shares are
//! attributed, and the wire encodings refuse garbage.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use frost_ed25519::keys::{KeyPackage, PublicKeyPackage};
use frost_ed25519::round2::SignatureShare;
use rand::{RngCore as _, SeedableRng as _};
use rand_chacha::ChaCha20Rng;
use senatus_genesis::NodeId;
use senatus_genesis::ceremony::trusted_dealer;
use senatus_quorum::signing::{
    AggregateError, BookError, COMMITMENT_BYTES, CommitmentBook, CommitmentId, NoncePool,
    PublishedCommitment, SHARE_BYTES, SIGN_MESSAGE_BYTES_MAX, SIGN_REQUEST_BYTES_MAX, SealKeyError,
    SignRequest, SignedShare, Signer, SigningError, WireError, aggregate, next_signer_set,
    public_key_package,
};

const MSG: &[u8] = b"senatus/token-batch/v1\0 merkle root of a committed batch";

fn node(n: u64) -> NodeId {
    NodeId::new(n).expect("valid node id")
}

fn nodes(ns: &[u64]) -> Vec<NodeId> {
    ns.iter().map(|&n| node(n)).collect()
}

/// A 3-of-5 validator set with signers, a coordinator's book stocked with
/// `stock` commitments per signer, and the public material.
struct Net {
    keys: BTreeMap<NodeId, KeyPackage>,
    signers: BTreeMap<NodeId, Signer>,
    book: CommitmentBook,
    public: PublicKeyPackage,
    group: ed25519_dalek::VerifyingKey,
    rng: ChaCha20Rng,
}

impl Net {
    fn new(seed: u64, stock: usize) -> Net {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let ids = nodes(&[1, 2, 3, 4, 5]);
        let dealt = trusted_dealer(&ids, 3, &mut rng).expect("dealer");
        let first = dealt.shares.values().next().expect("a share");
        let public = PublicKeyPackage::new(
            dealt
                .shares
                .iter()
                .map(|(n, kp)| (n.frost_identifier(), *kp.verifying_share()))
                .collect(),
            *first.verifying_key(),
            Some(3),
        );
        let group = ed25519_dalek::VerifyingKey::from_bytes(&dealt.group_key.0).expect("group key");
        let mut net = Net {
            keys: dealt.shares.clone(),
            signers: BTreeMap::new(),
            book: CommitmentBook::default(),
            public,
            group,
            rng,
        };
        for id in ids {
            net.start(id, stock);
        }
        net
    }

    /// (Re)starts signer `id` with a fresh random generation and publishes
    /// `stock` commitments to the book.
    fn start(&mut self, id: NodeId, stock: usize) -> u64 {
        let generation = self.rng.next_u64();
        let signer =
            Signer::new(self.keys[&id].clone(), NoncePool::new(id, generation)).expect("own key");
        self.signers.insert(id, signer);
        self.publish(id, stock);
        generation
    }

    /// Signer `id` preprocesses `count` nonces; the commitments travel as
    /// bytes into the coordinator's book.
    fn publish(&mut self, id: NodeId, count: usize) {
        let signer = self.signers.get_mut(&id).expect("signer");
        for c in signer.replenish(count, &mut self.rng) {
            let wire = c.to_bytes();
            assert_eq!(wire.len(), COMMITMENT_BYTES);
            let back = PublishedCommitment::from_bytes(&wire).expect("decodes");
            assert_eq!(back, c);
            self.book.insert(back).expect("filed");
        }
    }

    /// One signing round through the wire encodings: plan, request, each
    /// signer checks and signs, the coordinator checks replies and
    /// aggregates.
    fn sign(&mut self, signer_ids: &[u64], msg: &[u8]) -> Result<[u8; 64], AggregateError> {
        let plan = self.book.take_for(&nodes(signer_ids)).expect("commitments");
        let wire = plan.request(msg).to_bytes();
        let mut shares = BTreeMap::new();
        for id in plan.signers() {
            let req = SignRequest::from_bytes(&wire).expect("request decodes");
            let reply = self
                .signers
                .get_mut(&id)
                .expect("signer")
                .sign(&req, msg)
                .expect("signs");
            let reply = SignedShare::from_bytes(&reply.to_bytes()).expect("share decodes");
            shares.insert(id, plan.accept(id, &reply).expect("matches plan"));
        }
        aggregate(&plan.package(msg), &shares, &self.public)
    }

    fn verifies(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        self.group
            .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
            .is_ok()
    }
}

#[test]
fn one_round_signing_makes_a_plain_ed25519_signature() {
    let mut net = Net::new(1, 4);
    let sig = net.sign(&[1, 2, 3], MSG).expect("3 of 5 sign");
    assert_eq!(sig.len(), 64);
    assert!(net.verifies(MSG, &sig), "verify_strict under the group key");
    assert!(!net.verifies(b"another message", &sig));
    let mut flipped = sig;
    flipped[10] ^= 1;
    assert!(!net.verifies(MSG, &flipped));
}

#[test]
fn every_three_of_five_and_all_five_sign() {
    let mut net = Net::new(2, 8);
    let mut sets = Vec::new();
    for a in 1..=5u64 {
        for b in a + 1..=5 {
            for c in b + 1..=5 {
                sets.push(vec![a, b, c]);
            }
        }
    }
    assert_eq!(sets.len(), 10);
    sets.push(vec![1, 2, 3, 4]);
    sets.push(vec![1, 2, 3, 4, 5]);
    for set in sets {
        let msg = format!("decision signed by {set:?}");
        let sig = net.sign(&set, msg.as_bytes()).expect("signs");
        assert!(net.verifies(msg.as_bytes(), &sig), "{set:?}");
    }
}

#[test]
fn two_signers_cannot_produce_a_valid_signature() {
    let mut net = Net::new(3, 4);
    // Signers refuse a two-party request outright, consuming nothing.
    let plan = net
        .book
        .take_for(&nodes(&[1, 2]))
        .expect("book does not know t");
    let req = plan.request(MSG);
    for id in nodes(&[1, 2]) {
        let before = net.signers[&id].pool().len();
        let err = net
            .signers
            .get_mut(&id)
            .expect("s")
            .sign(&req, MSG)
            .expect_err("2 < t");
        assert_eq!(err, SigningError::TooFewSigners { got: 2, need: 3 });
        assert_eq!(net.signers[&id].pool().len(), before);
    }

    // Shares made honestly for a three-party package: any two of them do not
    // aggregate, neither with the real threshold nor with a public key
    // package that lies about it.
    let plan = net.book.take_for(&nodes(&[1, 2, 3])).expect("plan");
    let req = plan.request(MSG);
    let mut shares = BTreeMap::new();
    for id in nodes(&[1, 2, 3]) {
        let s = net
            .signers
            .get_mut(&id)
            .expect("s")
            .sign(&req, MSG)
            .expect("signs");
        shares.insert(id, s.share);
    }
    let two: BTreeMap<NodeId, SignatureShare> = shares
        .iter()
        .filter(|(n, _)| n.get() <= 2)
        .map(|(n, s)| (*n, *s))
        .collect();
    assert_eq!(
        aggregate(&plan.package(MSG), &two, &net.public),
        Err(AggregateError::TooFewShares { got: 2, need: 3 })
    );
    let lying = PublicKeyPackage::new(
        net.public.verifying_shares().clone(),
        *net.public.verifying_key(),
        Some(2),
    );
    assert_eq!(
        aggregate(&plan.package(MSG), &two, &lying),
        Err(AggregateError::SignerSetMismatch {
            missing: nodes(&[3]),
            unexpected: vec![],
        })
    );
    let two_party = SignRequest {
        message: MSG.to_vec(),
        commitments: req.commitments[..2].to_vec(),
    };
    let err = aggregate(&two_party.package(), &two, &lying).expect_err("2 shares never verify");
    assert!(matches!(err, AggregateError::InvalidShares { .. }), "{err}");

    // The three shares do aggregate (the test above could fail).
    let sig = aggregate(&plan.package(MSG), &shares, &net.public).expect("3 shares");
    assert!(net.verifies(MSG, &sig));
}

#[test]
fn a_nonce_is_never_handed_out_twice() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let ids = nodes(&[1, 2, 3, 4, 5]);
    let dealt = trusted_dealer(&ids, 3, &mut rng).expect("dealer");
    let mut pool = NoncePool::new(node(1), 0xfeed);
    let published = pool.replenish(&dealt.shares[&node(1)], 3, &mut rng);
    let seqs: Vec<u64> = published.iter().map(|c| c.id.seq).collect();
    assert_eq!(seqs, [0, 1, 2]);
    let id = published[1].id;
    let nonces = pool.take(id).expect("first take");
    assert_eq!(*nonces.commitments(), published[1].commitments);
    assert_eq!(
        pool.take(id).expect_err("second take"),
        SigningError::AlreadyUsed {
            signer: node(1),
            id
        }
    );
    let unissued = CommitmentId {
        generation: 0xfeed,
        seq: 3,
    };
    assert_eq!(
        pool.take(unissued).expect_err("never issued"),
        SigningError::NeverIssued {
            signer: node(1),
            id: unissued,
            next_seq: 3
        }
    );
    assert_eq!(pool.len(), 2);

    // Over the protocol: replaying a request after a successful signing.
    let mut net = Net::new(5, 2);
    let plan = net.book.take_for(&nodes(&[1, 2, 3])).expect("plan");
    let req = plan.request(MSG);
    let s1 = net
        .signers
        .get_mut(&node(1))
        .expect("s")
        .sign(&req, MSG)
        .expect("first");
    let err = net
        .signers
        .get_mut(&node(1))
        .expect("s")
        .sign(&req, MSG)
        .expect_err("replay");
    assert_eq!(
        err,
        SigningError::AlreadyUsed {
            signer: node(1),
            id: s1.id
        }
    );
    // The book never hands the same commitment out twice either.
    let next = net.book.take_for(&nodes(&[1, 2, 3])).expect("second plan");
    for id in nodes(&[1, 2, 3]) {
        assert_ne!(next.commitment_id(id), plan.commitment_id(id));
    }
    assert_eq!(
        net.book.take_for(&nodes(&[1, 2, 3])),
        Err(BookError::NoCommitment {
            signers: nodes(&[1, 2, 3])
        })
    );
}

#[test]
fn a_restarted_signer_refuses_commitments_of_its_previous_generation() {
    let mut net = Net::new(6, 3);
    let old_plan = net.book.take_for(&nodes(&[1, 2, 3])).expect("plan");
    let old_req = old_plan.request(MSG);
    let old_gen = old_plan.commitment_id(node(2)).expect("planned").generation;

    // Node 2 restarts: fresh pool, fresh generation, new commitments.
    let new_gen = net.start(node(2), 0);
    assert_ne!(new_gen, old_gen);
    let err = net
        .signers
        .get_mut(&node(2))
        .expect("s")
        .sign(&old_req, MSG)
        .expect_err("stale");
    assert_eq!(
        err,
        SigningError::StaleGeneration {
            signer: node(2),
            id: old_plan.commitment_id(node(2)).expect("planned"),
            current: new_gen,
        }
    );
    // Even an id that the new pool has issued is refused under the old
    // generation.
    let fresh = net
        .signers
        .get_mut(&node(2))
        .expect("s")
        .replenish(3, &mut net.rng);
    let reused_seq = CommitmentId {
        generation: old_gen,
        seq: fresh[0].id.seq,
    };
    assert!(matches!(
        NoncePool::new(node(2), new_gen).take(reused_seq),
        Err(SigningError::StaleGeneration { .. })
    ));

    // The coordinator learns the new generation from the first new
    // commitment and drops the old ones (2 left of the old stock).
    assert_eq!(net.book.available(node(2)), 2);
    assert_eq!(net.book.insert(fresh[0]), Ok(2));
    for c in &fresh[1..] {
        assert_eq!(net.book.insert(*c), Ok(0));
    }
    assert_eq!(net.book.available(node(2)), 3);
    assert_eq!(net.book.forget_generation(node(2), old_gen), 0);
    let sig = net.sign(&[1, 2, 3], MSG).expect("signs after restart");
    assert!(net.verifies(MSG, &sig));
    assert_eq!(net.book.forget_generation(node(2), new_gen), 2);
    assert_eq!(net.book.available(node(2)), 0);
    assert_eq!(net.book.forget_signer(node(1)), 1);
}

#[test]
fn a_message_mismatch_is_refused_and_the_nonce_stays_consumed() {
    let mut net = Net::new(7, 2);
    let plan = net.book.take_for(&nodes(&[1, 2, 3])).expect("plan");
    let leader_says = plan.request(b"PERMIT decision 42");
    let i_evaluated = b"DENY decision 42";
    let signer = net.signers.get_mut(&node(3)).expect("s");
    let before = signer.pool().len();
    let err = signer
        .sign(&leader_says, i_evaluated)
        .expect_err("mismatch");
    assert_eq!(
        err,
        SigningError::MessageMismatch {
            requested: senatus_genesis::sha3(b"PERMIT decision 42"),
            expected: senatus_genesis::sha3(i_evaluated),
        }
    );
    assert_eq!(
        signer.pool().len(),
        before - 1,
        "nonce consumed by the refusal"
    );
    let err = signer
        .sign(&leader_says, b"PERMIT decision 42")
        .expect_err("nonce is gone");
    assert!(matches!(err, SigningError::AlreadyUsed { .. }), "{err}");
}

#[test]
fn malformed_requests_are_refused_with_their_reason() {
    let mut net = Net::new(8, 4);
    let plan = net.book.take_for(&nodes(&[1, 2, 3])).expect("plan");
    let req = plan.request(MSG);

    // Not addressed to node 4: nothing consumed.
    let s4 = net.signers.get_mut(&node(4)).expect("s");
    assert_eq!(
        s4.sign(&req, MSG),
        Err(SigningError::MissingOwnCommitment { signer: node(4) })
    );
    assert_eq!(s4.pool().len(), 4);

    // A duplicate signer: nothing consumed.
    let mut dup = req.clone();
    dup.commitments.push(req.commitments[0]);
    assert_eq!(
        net.signers.get_mut(&node(1)).expect("s").sign(&dup, MSG),
        Err(SigningError::DuplicateSigner { signer: node(1) })
    );
    assert_eq!(net.signers[&node(1)].pool().len(), 4);

    // Oversized message: nothing consumed.
    let big = SignRequest {
        message: vec![0; SIGN_MESSAGE_BYTES_MAX + 1],
        commitments: req.commitments.clone(),
    };
    assert_eq!(
        net.signers
            .get_mut(&node(1))
            .expect("s")
            .sign(&big, &big.message),
        Err(SigningError::MessageTooLarge {
            bytes: SIGN_MESSAGE_BYTES_MAX + 1
        })
    );

    // The coordinator swaps in other commitments under node 1's id: refused
    // and the nonce is burnt.
    let mut forged = req.clone();
    forged.commitments[0].commitments = req.commitments[1].commitments;
    let id = req.commitments[0].id;
    let s1 = net.signers.get_mut(&node(1)).expect("s");
    assert_eq!(
        s1.sign(&forged, MSG),
        Err(SigningError::CommitmentMismatch {
            signer: node(1),
            id
        })
    );
    assert_eq!(s1.pool().len(), 3);
    assert!(matches!(
        s1.sign(&req, MSG),
        Err(SigningError::AlreadyUsed { .. })
    ));

    // A commitment id this generation never issued.
    let mut unissued = req.clone();
    unissued.commitments[1].id.seq = 1_000;
    assert!(matches!(
        net.signers
            .get_mut(&node(2))
            .expect("s")
            .sign(&unissued, MSG),
        Err(SigningError::NeverIssued { next_seq: 4, .. })
    ));

    // Another node's key package is refused for a pool.
    let k2 = net.keys[&node(2)].clone();
    assert_eq!(
        Signer::new(k2, NoncePool::new(node(1), 1)).expect_err("wrong key"),
        SigningError::KeyMismatch { node: node(1) }
    );

    // Book refusals.
    assert_eq!(net.book.take_for(&[]), Err(BookError::NoSigners));
    assert_eq!(
        net.book.take_for(&nodes(&[1, 1, 2])),
        Err(BookError::DuplicateSigner { signer: node(1) })
    );
}

#[test]
fn a_corrupted_share_is_attributed_and_the_retry_without_it_succeeds() {
    let mut net = Net::new(9, 4);
    let all = nodes(&[1, 2, 3, 4, 5]);
    let first = nodes(&[2, 4, 5]);
    let plan = net.book.take_for(&first).expect("plan");
    let req = plan.request(MSG);
    let mut shares = BTreeMap::new();
    for id in &first {
        let s = net
            .signers
            .get_mut(id)
            .expect("s")
            .sign(&req, MSG)
            .expect("signs");
        shares.insert(*id, s.share);
    }
    // Signer 4's share is corrupted (in transit or by a faulty signer).
    let mut bytes = shares[&node(4)].serialize();
    bytes[0] ^= 0x01;
    shares.insert(
        node(4),
        SignatureShare::deserialize(&bytes).expect("still a scalar"),
    );
    let err = aggregate(&plan.package(MSG), &shares, &net.public).expect_err("bad share");
    assert_eq!(
        err,
        AggregateError::InvalidShares {
            culprits: nodes(&[4])
        }
    );
    let AggregateError::InvalidShares { culprits } = err else {
        unreachable!()
    };

    let retry = next_signer_set(&all, &culprits, 3).expect("3 honest remain");
    assert_eq!(retry, nodes(&[1, 2, 3]));
    let retry_ids: Vec<u64> = retry.iter().map(|n| n.get()).collect();
    let sig = net.sign(&retry_ids, MSG).expect("retry signs");
    assert!(net.verifies(MSG, &sig));

    // Two bad shares: both are named.
    let plan = net.book.take_for(&nodes(&[1, 3, 5])).expect("plan");
    let req = plan.request(MSG);
    let mut shares = BTreeMap::new();
    for id in nodes(&[1, 3, 5]) {
        let s = net
            .signers
            .get_mut(&id)
            .expect("s")
            .sign(&req, MSG)
            .expect("signs");
        shares.insert(id, s.share);
    }
    // Perturbations that do not cancel in the sum (+-1 and +-256): swapping
    // two valid shares, say, would not change the sum and still verify.
    for (id, byte) in [(1, 0), (5, 1)] {
        let mut bytes = shares[&node(id)].serialize();
        bytes[byte] ^= 0x01;
        shares.insert(
            node(id),
            SignatureShare::deserialize(&bytes).expect("scalar"),
        );
    }
    assert_eq!(
        aggregate(&plan.package(MSG), &shares, &net.public),
        Err(AggregateError::InvalidShares {
            culprits: nodes(&[1, 5])
        })
    );
    assert_eq!(next_signer_set(&all, &nodes(&[1, 4, 5]), 3), None);
}

#[test]
fn replies_that_do_not_match_the_plan_are_refused() {
    let mut net = Net::new(10, 2);
    let plan = net.book.take_for(&nodes(&[1, 2, 3])).expect("plan");
    let req = plan.request(MSG);
    let r1 = net
        .signers
        .get_mut(&node(1))
        .expect("s")
        .sign(&req, MSG)
        .expect("s1");
    assert!(plan.accept(node(1), &r1).is_ok());
    // Received from peer 2 but labelled as node 1's.
    let err = plan.accept(node(2), &r1).expect_err("wrong peer");
    assert!(
        matches!(
            err,
            WireError::Invalid {
                field: "signer",
                ..
            }
        ),
        "{err}"
    );
    // From a peer outside the plan.
    assert!(plan.accept(node(4), &r1).is_err());
    // Labelled with another commitment.
    let mut other = r1;
    other.id.seq += 1;
    let err = plan.accept(node(1), &other).expect_err("wrong commitment");
    assert!(
        matches!(err, WireError::Invalid { field: "seq", .. }),
        "{err}"
    );
}

#[test]
fn garbage_and_truncated_wire_bytes_are_typed_errors() {
    let mut net = Net::new(11, 2);
    let plan = net.book.take_for(&nodes(&[1, 2, 3])).expect("plan");
    let req = plan.request(MSG);
    let share = net
        .signers
        .get_mut(&node(1))
        .expect("s")
        .sign(&req, MSG)
        .expect("s");
    let commitment = req.commitments[0];

    let c_wire = commitment.to_bytes();
    let r_wire = req.to_bytes();
    let s_wire = share.to_bytes();
    assert_eq!(s_wire.len(), SHARE_BYTES);
    assert_eq!(SignRequest::from_bytes(&r_wire), Ok(req.clone()));
    assert_eq!(SignedShare::from_bytes(&s_wire), Ok(share));

    // Every truncation of every object is a typed error, never a panic.
    for (name, wire) in [("c", &c_wire), ("r", &r_wire), ("s", &s_wire)] {
        for len in 0..wire.len() {
            let cut = &wire[..len];
            let err = match name {
                "c" => PublishedCommitment::from_bytes(cut).map(|_| ()),
                "r" => SignRequest::from_bytes(cut).map(|_| ()),
                _ => SignedShare::from_bytes(cut).map(|_| ()),
            }
            .expect_err("truncated");
            assert!(
                matches!(err, WireError::Tag { .. } | WireError::Truncated { .. }),
                "{name} cut at {len}: {err}"
            );
        }
    }
    // Named fields.
    assert_eq!(
        PublishedCommitment::from_bytes(&c_wire[..c_wire.len() - 1]),
        Err(WireError::Truncated {
            object: "frost-commitment",
            field: "binding"
        })
    );
    assert_eq!(
        SignedShare::from_bytes(&s_wire[..35]),
        Err(WireError::Truncated {
            object: "frost-share",
            field: "generation"
        })
    );

    // Garbage, a wrong tag, another object's bytes, a future version.
    assert_eq!(
        PublishedCommitment::from_bytes(b"\x00\xffgarbage"),
        Err(WireError::Tag {
            object: "frost-commitment"
        })
    );
    assert_eq!(
        SignedShare::from_bytes(&c_wire[..SHARE_BYTES]),
        Err(WireError::Tag {
            object: "frost-share"
        })
    );
    let mut v2 = s_wire.clone();
    let v_pos = "senatus/frost-share/v".len();
    v2[v_pos] = b'2';
    assert_eq!(
        SignedShare::from_bytes(&v2),
        Err(WireError::Tag {
            object: "frost-share"
        })
    );

    // Trailing bytes.
    let mut long = c_wire.clone();
    long.push(0);
    assert!(matches!(
        PublishedCommitment::from_bytes(&long),
        Err(WireError::TooLarge { .. })
    ));
    let mut long = r_wire.clone();
    long.extend_from_slice(b"xy");
    assert_eq!(
        SignRequest::from_bytes(&long),
        Err(WireError::Trailing {
            object: "frost-sign-request",
            count: 2
        })
    );

    // Field values: node id 0, an invalid point, a non-canonical scalar.
    let tag_len = "senatus/frost-commitment/v1\0".len();
    let mut zero_id = c_wire.clone();
    zero_id[tag_len..tag_len + 8].copy_from_slice(&0u64.to_be_bytes());
    assert!(matches!(
        PublishedCommitment::from_bytes(&zero_id),
        Err(WireError::Invalid {
            field: "signer",
            ..
        })
    ));
    let mut identity = c_wire.clone();
    let hiding = tag_len + 24;
    identity[hiding..hiding + 32].copy_from_slice(&{
        let mut p = [0u8; 32];
        p[0] = 1; // the identity point
        p
    });
    assert!(matches!(
        PublishedCommitment::from_bytes(&identity),
        Err(WireError::Invalid {
            field: "hiding",
            ..
        })
    ));
    let mut not_a_point = c_wire.clone();
    not_a_point[hiding + 32..].copy_from_slice(&[0xff; 32]);
    assert!(matches!(
        PublishedCommitment::from_bytes(&not_a_point),
        Err(WireError::Invalid {
            field: "binding",
            ..
        })
    ));
    let mut big_scalar = s_wire.clone();
    let n = big_scalar.len();
    big_scalar[n - 32..].copy_from_slice(&[0xff; 32]);
    assert!(matches!(
        SignedShare::from_bytes(&big_scalar),
        Err(WireError::Invalid { field: "share", .. })
    ));

    // Request structure: count 0, unsorted signers, an oversized message.
    let count_pos = "senatus/frost-sign-request/v1\0".len() + 4 + MSG.len();
    let mut zero = r_wire[..count_pos].to_vec();
    zero.extend_from_slice(&0u32.to_be_bytes());
    assert!(matches!(
        SignRequest::from_bytes(&zero),
        Err(WireError::Invalid { field: "count", .. })
    ));
    let mut unsorted = r_wire[..count_pos + 4].to_vec();
    let entries = &r_wire[count_pos + 4..];
    let entry = entries.len() / 3;
    unsorted.extend_from_slice(&entries[entry..2 * entry]);
    unsorted.extend_from_slice(&entries[..entry]);
    unsorted.extend_from_slice(&entries[2 * entry..]);
    assert!(matches!(
        SignRequest::from_bytes(&unsorted),
        Err(WireError::Invalid {
            field: "signer",
            ..
        })
    ));
    let mut dup = r_wire[..count_pos + 4].to_vec();
    dup.extend_from_slice(&entries[..entry]);
    dup.extend_from_slice(&entries[..entry]);
    dup.extend_from_slice(&entries[2 * entry..]);
    assert!(matches!(
        SignRequest::from_bytes(&dup),
        Err(WireError::Invalid {
            field: "signer",
            ..
        })
    ));
    let mut huge_len = r_wire.clone();
    let len_pos = "senatus/frost-sign-request/v1\0".len();
    huge_len[len_pos..len_pos + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        SignRequest::from_bytes(&huge_len),
        Err(WireError::Invalid {
            field: "message",
            ..
        })
    ));
    assert!(matches!(
        SignRequest::from_bytes(&vec![0u8; SIGN_REQUEST_BYTES_MAX + 1]),
        Err(WireError::TooLarge { .. })
    ));
}

#[test]
fn pool_and_book_capacities_are_enforced() {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let ids = nodes(&[1, 2, 3, 4, 5]);
    let dealt = trusted_dealer(&ids, 3, &mut rng).expect("dealer");
    let key = &dealt.shares[&node(1)];
    let mut pool = NoncePool::with_capacity(node(1), 7, 4);
    assert_eq!(pool.replenish(key, 10, &mut rng).len(), 4);
    assert_eq!(pool.len(), 4);
    assert_eq!(pool.room(), 0);
    assert!(
        pool.replenish(key, 1, &mut rng).is_empty(),
        "full pool issues nothing"
    );
    pool.take(CommitmentId {
        generation: 7,
        seq: 0,
    })
    .expect("take");
    let more = pool.replenish(key, 5, &mut rng);
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].id.seq, 4, "sequence numbers are never reissued");
    assert_eq!(pool.len(), 4);
    // Retiring abandoned nonces frees room and burns them.
    assert_eq!(pool.retire_through(2), 2);
    assert!(matches!(
        pool.take(CommitmentId {
            generation: 7,
            seq: 2
        }),
        Err(SigningError::AlreadyUsed { .. })
    ));
    assert_eq!(pool.room(), 2);

    let mut book = CommitmentBook::new(2);
    let cs = NoncePool::new(node(1), 9).replenish(key, 3, &mut rng);
    assert_eq!(book.insert(cs[0]), Ok(0));
    assert_eq!(book.insert(cs[0]), Ok(0), "re-filing is idempotent");
    assert_eq!(book.insert(cs[1]), Ok(0));
    assert_eq!(
        book.insert(cs[2]),
        Err(BookError::Full {
            signer: node(1),
            max: 2
        })
    );
    let mut conflicting = cs[2];
    conflicting.id = cs[0].id;
    assert_eq!(
        book.insert(conflicting),
        Err(BookError::Conflicting {
            signer: node(1),
            id: cs[0].id
        })
    );
    assert_eq!(book.available(node(1)), 2);
    assert_eq!(book.ready_signers(), nodes(&[1]));
}

#[test]
fn the_active_seal_gives_the_public_key_package() {
    use senatus_genesis::ceremony::{Ceremony, CeremonyParams, NodeAddrs};
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    let params = CeremonyParams {
        chain_id: "senatus-test".into(),
        threshold: 3,
        nodes: (0..5)
            .map(|i| NodeAddrs {
                peer: format!("127.0.0.1:{}", 7000 + 10 * i),
                api: format!("127.0.0.1:{}", 7001 + 10 * i),
                metrics: format!("127.0.0.1:{}", 7002 + 10 * i),
            })
            .collect(),
        policy: senatus_genesis::PolicyLayer::example(),
        created_at_ms: 1_700_000_000_000,
    };
    let c = Ceremony::run(params, &mut rng).expect("ceremony");
    let seal = senatus_genesis::Seal::genesis(&c.genesis);
    let public = public_key_package(&seal).expect("seal 0 keys");

    let mut signers: BTreeMap<NodeId, Signer> = c
        .nodes
        .iter()
        .map(|n| {
            let pool = NoncePool::new(n.id, rng.next_u64());
            let s = Signer::new(n.frost.key_package.clone(), pool).expect("signer");
            (n.id, s)
        })
        .collect();
    let mut book = CommitmentBook::default();
    for s in signers.values_mut() {
        for c in s.replenish(1, &mut rng) {
            book.insert(c).expect("filed");
        }
    }
    let plan = book.take_for(&nodes(&[1, 3, 5])).expect("plan");
    let msg = seal.signing_bytes();
    let req = plan.request(&msg);
    let mut shares = BTreeMap::new();
    for id in plan.signers() {
        let reply = signers
            .get_mut(&id)
            .expect("s")
            .sign(&req, &msg)
            .expect("signs");
        shares.insert(id, plan.accept(id, &reply).expect("planned"));
    }
    let sig = aggregate(&plan.package(&msg), &shares, &public).expect("aggregates");
    let group = ed25519_dalek::VerifyingKey::from_bytes(&seal.group_key.0).expect("key");
    group
        .verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .expect("verifies under the seal's group key");

    let mut bad = seal.clone();
    bad.threshold = 6;
    assert_eq!(
        public_key_package(&bad).expect_err("t > n"),
        SealKeyError::Threshold {
            threshold: 6,
            members: 5
        }
    );
    let mut bad = seal.clone();
    bad.membership[1].verifying_share.0 = [0xff; 32];
    assert_eq!(
        public_key_package(&bad).expect_err("bad share"),
        SealKeyError::VerifyingShare { node: node(2) }
    );
    let mut bad = seal;
    bad.group_key.0 = [0; 32];
    assert_eq!(
        public_key_package(&bad).expect_err("bad group key"),
        SealKeyError::GroupKey
    );
}

/// Costs of one-round signing with 3 signers. Prints figures; asserts
/// nothing about time. Run with
/// `cargo test --release -p senatus-quorum --test signing measure -- --nocapture`.
#[test]
fn measure_one_round_signing_costs() {
    const ROUNDS: usize = 200;
    let mut net = Net::new(13, ROUNDS);
    let (mut commit, mut sign, mut agg) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut verify = Duration::ZERO;

    let start = Instant::now();
    let mut extra = Signer::new(
        net.keys[&node(1)].clone(),
        NoncePool::with_capacity(node(1), 1, ROUNDS),
    )
    .expect("signer");
    let _ = extra.replenish(ROUNDS, &mut net.rng);
    commit += start.elapsed();

    for i in 0..ROUNDS {
        let msg = format!("batch root {i}");
        let plan = net.book.take_for(&nodes(&[1, 2, 3])).expect("plan");
        let req = plan.request(msg.as_bytes());
        let mut shares = BTreeMap::new();
        for id in nodes(&[1, 2, 3]) {
            let t = Instant::now();
            let s = net
                .signers
                .get_mut(&id)
                .expect("s")
                .sign(&req, msg.as_bytes())
                .expect("s");
            sign += t.elapsed();
            shares.insert(id, s.share);
        }
        let t = Instant::now();
        let sig = aggregate(&plan.package(msg.as_bytes()), &shares, &net.public).expect("agg");
        agg += t.elapsed();
        let t = Instant::now();
        assert!(net.verifies(msg.as_bytes(), &sig));
        verify += t.elapsed();
    }
    let per = |d: Duration, n: usize| d.as_secs_f64() * 1e3 / n as f64;
    println!(
        "one-round FROST, 3 of 5, {ROUNDS} signatures: preprocess {:.3} ms/nonce, \
         sign {:.3} ms/share, aggregate (incl. strict verify) {:.3} ms/signature, \
         plain verify_strict {:.3} ms",
        per(commit, ROUNDS),
        per(sign, 3 * ROUNDS),
        per(agg, ROUNDS),
        per(verify, ROUNDS),
    );
}
