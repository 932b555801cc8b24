//! Governance tokens end to end: a real 3-of-5 FROST key set signs a batch
//! root, the broker verifies offline, and every rejection path produces its
//! own error. Also pins `docs/vectors/token-v1.json`; regenerate deliberately
//! with `SENATUS_WRITE_VECTORS=1 cargo test -p senatus-quorum --test token`,
//! then update docs/PROTOCOL.md ("Governance tokens") and review the diff.

mod common;

use std::collections::BTreeMap;

use common::vectors_dir;

use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use senatus_genesis::ceremony::{Ceremony, CeremonyParams, NodeAddrs};
use senatus_genesis::seal::{Seal, SealError, SignedSeal};
use senatus_genesis::{
    Digest, Epoch, Genesis, Key32, LedgerIndex, PolicyLayer, PolicyVersion, Sig64,
};
use senatus_quorum::Outcome;
use senatus_quorum::broker::{Broker, BrokerError, Expectation, VerifyError};
use senatus_quorum::merkle::MerkleError;
use senatus_quorum::params::{canonical_params, params_digest};
use senatus_quorum::token::{
    DecodeError, Token, TokenBatch, TokenPayload, batch_message, decision_id, derive_nonce,
};
use serde_json::{Value, json};

const NOW_MS: u64 = 1_767_225_600_000;
const TTL_MS: u64 = 60_000;

fn ceremony_params(chain_id: &str, ip_prefix: &str, created_at_ms: u64) -> CeremonyParams {
    CeremonyParams {
        chain_id: chain_id.into(),
        threshold: 3,
        nodes: (1..=5)
            .map(|i| NodeAddrs {
                peer: format!("{ip_prefix}{i}:7000"),
                api: format!("{ip_prefix}{i}:7001"),
                metrics: format!("{ip_prefix}{i}:7002"),
            })
            .collect(),
        policy: PolicyLayer::example(),
        created_at_ms,
    }
}

fn ceremony(seed: u64) -> Ceremony {
    Ceremony::run(
        ceremony_params("senatus-token-test", "127.0.0.", 1_700_000_000_000),
        &mut ChaCha20Rng::seed_from_u64(seed),
    )
    .expect("ceremony runs")
}

fn public_key_package(
    threshold: u16,
    group_key: &Key32,
    members: &[senatus_genesis::Validator],
) -> frost_ed25519::keys::PublicKeyPackage {
    let shares = members
        .iter()
        .map(|v| {
            (
                v.id.frost_identifier(),
                frost_ed25519::keys::VerifyingShare::deserialize(&v.verifying_share.0)
                    .expect("share"),
            )
        })
        .collect();
    let key = frost_ed25519::VerifyingKey::deserialize(&group_key.0).expect("group key");
    frost_ed25519::keys::PublicKeyPackage::new(shares, key, Some(threshold))
}

/// FROST round 1, round 2 and aggregation by `signers` of `c` over `msg`.
fn frost_sign(c: &Ceremony, signers: &[u64], msg: &[u8], rng: &mut ChaCha20Rng) -> [u8; 64] {
    let packages: BTreeMap<_, _> = c
        .nodes
        .iter()
        .filter(|n| signers.contains(&n.id.get()))
        .map(|n| (n.id.frost_identifier(), &n.frost.key_package))
        .collect();
    assert_eq!(packages.len(), signers.len());
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for (id, kp) in &packages {
        let (n, cm) = frost_ed25519::round1::commit(kp.signing_share(), rng);
        nonces.insert(*id, n);
        commitments.insert(*id, cm);
    }
    let package = frost_ed25519::SigningPackage::new(commitments, msg);
    let mut shares = BTreeMap::new();
    for (id, kp) in &packages {
        shares.insert(
            *id,
            frost_ed25519::round2::sign(&package, &nonces[id], kp).expect("share"),
        );
    }
    let b = &c.genesis.body;
    let public = public_key_package(b.threshold, &b.group_key, &b.validators);
    let sig = frost_ed25519::aggregate(&package, &shares, &public).expect("aggregate");
    sig.serialize()
        .expect("serialize")
        .try_into()
        .expect("64 bytes")
}

fn seal0(g: &Genesis) -> SignedSeal {
    SignedSeal {
        seal: Seal::genesis(g),
        signature: None,
        attested: None,
    }
}

fn transfer_params() -> Value {
    json!({"amount": 1200, "currency": "EUR", "to": "acct-42"})
}

/// A decision at `position` of ledger entry 9 of `g`.
fn payload(g: &Genesis, position: u32, outcome: Outcome, params: &Value) -> TokenPayload {
    let entry_hash = senatus_genesis::sha3(format!("entry 9 of {}", g.digest()).as_bytes());
    TokenPayload {
        genesis_digest: g.digest(),
        decision_id: decision_id(LedgerIndex(9), &entry_hash, position),
        ledger_index: LedgerIndex(9),
        entry_hash,
        position,
        outcome,
        surface: "payments".into(),
        action: "transfer".into(),
        tenant: "acme".into(),
        actor: format!("agent-{position}"),
        params_digest: params_digest(params).expect("params"),
        policy_version: g.body.policy_version,
        seal_digest: Seal::genesis(g).digest(),
        epoch: Epoch(0),
        nonce: derive_nonce(&entry_hash, position),
        issued_at_ms: NOW_MS,
        expires_at_ms: NOW_MS + TTL_MS,
    }
}

/// Signs `payloads` as one batch with signers 1, 2, 3 of `signer`.
fn sign_batch(signer: &Ceremony, payloads: Vec<TokenPayload>, seed: u64) -> Vec<Token> {
    let batch = TokenBatch::new(payloads).expect("batch");
    let msg = batch.message(&signer.genesis.body.group_key);
    let sig = frost_sign(
        signer,
        &[1, 2, 3],
        &msg,
        &mut ChaCha20Rng::seed_from_u64(seed),
    );
    batch.tokens(sig)
}

struct Fixture {
    c: Ceremony,
    broker: Broker,
    params: Value,
}

fn fixture() -> Fixture {
    let c = ceremony(11);
    let broker = Broker::new(&c.genesis, &[seal0(&c.genesis)]).expect("broker");
    Fixture {
        c,
        broker,
        params: transfer_params(),
    }
}

impl Fixture {
    fn permit(&self) -> Token {
        let p = payload(&self.c.genesis, 0, Outcome::Permit, &self.params);
        sign_batch(&self.c, vec![p], 1).remove(0)
    }

    fn expect(&self) -> Expectation<'_> {
        Expectation {
            surface: "payments",
            action: "transfer",
            tenant: "acme",
            params: &self.params,
        }
    }

    fn verify(&self, t: &Token) -> Result<senatus_quorum::broker::VerifiedToken, VerifyError> {
        self.broker
            .verify(&t.to_bytes(), &self.expect(), NOW_MS + 1)
    }
}

// ---- what must pass ----

#[test]
fn a_batch_of_one_verifies_in_the_broker_and_as_plain_ed25519() {
    let f = fixture();
    let t = f.permit();
    assert!(t.proof.is_empty(), "a batch of one has an empty proof");
    assert_eq!(t.leaf_count, 1);
    assert_eq!(t.root, t.payload.leaf_hash());

    let v = f.verify(&t).expect("verifies");
    assert_eq!(v.token, t);
    assert_eq!(v.digest, t.digest());
    assert_eq!(v.nonce(), t.payload.nonce);

    // The FROST aggregate is a standard Ed25519 signature over the batch
    // message under the genesis group key.
    let g = &f.c.genesis.body;
    let msg = batch_message(&f.c.genesis.digest(), Epoch(0), &g.group_key, &t.root, 1);
    let key = ed25519_dalek::VerifyingKey::from_bytes(&g.group_key.0).expect("key");
    key.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&t.signature))
        .expect("plain Ed25519 verify_strict");

    // The text form round-trips and verifies the same way.
    let back = Token::from_text(&t.to_text()).expect("text");
    f.broker
        .verify_token(back, &f.expect(), NOW_MS)
        .expect("text token verifies");
}

#[test]
fn every_token_of_a_batch_of_seven_verifies_and_no_proof_is_interchangeable() {
    let f = fixture();
    let payloads: Vec<_> = (0..7)
        .map(|i| payload(&f.c.genesis, i, Outcome::Permit, &f.params))
        .collect();
    let tokens = sign_batch(&f.c, payloads, 2);
    assert_eq!(tokens.len(), 7);
    let proof_lens: Vec<usize> = tokens.iter().map(|t| t.proof.len()).collect();
    // 7 = 4 + (2 + 1): leaf 6 is carried one level.
    assert_eq!(proof_lens, vec![3, 3, 3, 3, 3, 3, 2]);
    let mut nonces = std::collections::BTreeSet::new();
    for t in &tokens {
        assert_eq!(t.signature, tokens[0].signature, "one signature per batch");
        let v = f.verify(t).expect("every leaf verifies");
        assert!(nonces.insert(v.nonce()), "nonces are distinct");
    }
    // Leaf 2's payload with leaf 3's position and proof is refused.
    let mut swapped = tokens[2].clone();
    swapped.leaf_index = tokens[3].leaf_index;
    swapped.proof = tokens[3].proof.clone();
    assert!(matches!(
        f.verify(&swapped),
        Err(VerifyError::BadInclusionProof {
            reason: MerkleError::RootMismatch { .. },
            ..
        })
    ));
}

#[test]
fn replay_rebuilds_byte_identical_payloads_and_roots() {
    let f = fixture();
    let build = || {
        TokenBatch::new(
            (0..5)
                .map(|i| payload(&f.c.genesis, i, Outcome::Permit, &f.params))
                .collect(),
        )
        .expect("batch")
    };
    let (a, b) = (build(), build());
    assert_eq!(a.root(), b.root());
    for (x, y) in a.payloads().iter().zip(b.payloads()) {
        assert_eq!(x.encode(), y.encode());
    }
    // Two FROST runs give different signatures over the same root; the
    // token digest (what a redemption records) does not change.
    let ta = a.tokens(frost_sign(
        &f.c,
        &[1, 2, 3],
        &a.message(&f.c.genesis.body.group_key),
        &mut ChaCha20Rng::seed_from_u64(3),
    ));
    let tb = b.tokens(frost_sign(
        &f.c,
        &[2, 4, 5],
        &b.message(&f.c.genesis.body.group_key),
        &mut ChaCha20Rng::seed_from_u64(4),
    ));
    assert_ne!(ta[0].signature, tb[0].signature);
    assert_eq!(ta[0].digest(), tb[0].digest());
    f.verify(&tb[4]).expect("any 3 of 5 sign");
}

#[test]
fn a_token_of_a_later_epoch_verifies_under_the_handover_key() {
    let c0 = ceremony(21);
    let c1 = ceremony(22); // the fresh key set of epoch 1
    let g = &c0.genesis;
    let s0 = Seal::genesis(g);
    let s1 = Seal {
        version: s0.version,
        policy_digest: s0.policy_digest,
        prev_seal: s0.digest(),
        epoch: Epoch(1),
        threshold: 3,
        group_key: c1.genesis.body.group_key,
        membership: c1.genesis.body.validators.clone(),
    };
    // The outgoing group (epoch 0) threshold-signs the handover seal.
    let sig = frost_sign(
        &c0,
        &[1, 3, 5],
        &s1.signing_bytes(),
        &mut ChaCha20Rng::seed_from_u64(5),
    );
    let chain = vec![
        seal0(g),
        SignedSeal {
            attested: Some(c0.attest_seal(&s1, &[1, 2, 3, 4], 9, Digest([9; 32]))),
            seal: s1.clone(),
            signature: Some(Sig64(sig)),
        },
    ];
    let broker = Broker::new(g, &chain).expect("broker follows the chain");
    let params = transfer_params();
    let expect = Expectation {
        surface: "payments",
        action: "transfer",
        tenant: "acme",
        params: &params,
    };

    let mut p = payload(g, 0, Outcome::Permit, &params);
    p.epoch = Epoch(1);
    p.seal_digest = s1.digest();
    let t = sign_batch(&c1, vec![p.clone()], 6).remove(0);
    broker
        .verify(&t.to_bytes(), &expect, NOW_MS)
        .expect("epoch 1 token");

    // The same payload signed by the retired epoch-0 group is refused.
    let old = sign_batch(&c0, vec![p.clone()], 7).remove(0);
    assert_eq!(
        broker.verify(&old.to_bytes(), &expect, NOW_MS),
        Err(VerifyError::BadSignature {
            epoch: Epoch(1),
            group_key: c1.genesis.body.group_key
        })
    );

    // An epoch-1 token naming the epoch-0 seal is inconsistent.
    p.seal_digest = s0.digest();
    let t = sign_batch(&c1, vec![p], 8).remove(0);
    assert_eq!(
        broker.verify(&t.to_bytes(), &expect, NOW_MS),
        Err(VerifyError::SealEpochMismatch {
            seal_digest: s0.digest(),
            seal_epoch: Epoch(0),
            token_epoch: Epoch(1)
        })
    );

    // A chain whose handover signature was tampered builds no broker.
    let mut bad = chain;
    bad[1].signature = Some(Sig64([0u8; 64]));
    assert!(matches!(
        Broker::new(g, &bad),
        Err(BrokerError::Seal(SealError::BadSignature {
            position: 1,
            ..
        }))
    ));
}

// ---- each rejection, with its own error ----

#[test]
fn one_changed_params_byte_is_params_mismatch() {
    let f = fixture();
    let t = f.permit();
    let other = json!({"amount": 1201, "currency": "EUR", "to": "acct-42"});
    assert_eq!(
        canonical_params(&other).expect("jcs").len(),
        canonical_params(&f.params).expect("jcs").len()
    );
    let expect = Expectation {
        params: &other,
        ..f.expect()
    };
    assert_eq!(
        f.broker.verify(&t.to_bytes(), &expect, NOW_MS),
        Err(VerifyError::ParamsMismatch {
            token: t.payload.params_digest,
            actual: params_digest(&other).expect("digest"),
        })
    );
    // Key order is not a change (JCS).
    let reordered: Value =
        serde_json::from_str(r#"{"to":"acct-42","currency":"EUR","amount":1200}"#).expect("json");
    let expect = Expectation {
        params: &reordered,
        ..f.expect()
    };
    f.broker
        .verify(&t.to_bytes(), &expect, NOW_MS)
        .expect("same params, other key order");
    // Params that cannot be digested fail closed with their own error.
    let array = json!([1]);
    let expect = Expectation {
        params: &array,
        ..f.expect()
    };
    assert!(matches!(
        f.broker.verify(&t.to_bytes(), &expect, NOW_MS),
        Err(VerifyError::Params(_))
    ));
}

#[test]
fn a_token_for_another_surface_is_wrong_surface() {
    let f = fixture();
    let t = f.permit().to_bytes();
    let e = Expectation {
        surface: "exports",
        ..f.expect()
    };
    assert_eq!(
        f.broker.verify(&t, &e, NOW_MS),
        Err(VerifyError::WrongSurface {
            expected: "exports".into(),
            found: "payments".into()
        })
    );
}

#[test]
fn a_token_for_another_action_is_wrong_action() {
    let f = fixture();
    let t = f.permit().to_bytes();
    let e = Expectation {
        action: "refund",
        ..f.expect()
    };
    assert_eq!(
        f.broker.verify(&t, &e, NOW_MS),
        Err(VerifyError::WrongAction {
            expected: "refund".into(),
            found: "transfer".into()
        })
    );
}

#[test]
fn a_token_for_another_tenant_is_wrong_tenant() {
    let f = fixture();
    let t = f.permit().to_bytes();
    let e = Expectation {
        tenant: "globex",
        ..f.expect()
    };
    assert_eq!(
        f.broker.verify(&t, &e, NOW_MS),
        Err(VerifyError::WrongTenant {
            expected: "globex".into(),
            found: "acme".into()
        })
    );
}

#[test]
fn expiry_and_future_issue_are_refused_at_their_bounds() {
    let f = fixture();
    let t = f.permit().to_bytes();
    let exp = NOW_MS + TTL_MS;
    f.broker
        .verify(&t, &f.expect(), exp - 1)
        .expect("valid until the last millisecond");
    assert_eq!(
        f.broker.verify(&t, &f.expect(), exp),
        Err(VerifyError::Expired {
            expires_at_ms: exp,
            now_ms: exp
        })
    );
    let skew = senatus_quorum::broker::CLOCK_SKEW_MS_MAX;
    f.broker
        .verify(&t, &f.expect(), NOW_MS - skew)
        .expect("within clock skew");
    assert_eq!(
        f.broker.verify(&t, &f.expect(), NOW_MS - skew - 1),
        Err(VerifyError::NotYetValid {
            issued_at_ms: NOW_MS,
            now_ms: NOW_MS - skew - 1
        })
    );
}

#[test]
fn a_token_living_longer_than_any_constitution_allows_is_refused() {
    let f = fixture();
    let max = senatus_genesis::policy::TOKEN_LIFETIME_MS_HARD_MAX;
    let signed = |lifetime: u64| {
        let mut p = payload(&f.c.genesis, 0, Outcome::Permit, &f.params);
        p.expires_at_ms = p.issued_at_ms + lifetime;
        sign_batch(&f.c, vec![p], 7).remove(0)
    };
    f.verify(&signed(max))
        .expect("an hour is the most, and allowed");
    // A day, signed by the real group key (as a lying leader with two
    // careless signers could make): still refused.
    assert_eq!(
        f.verify(&signed(86_400_000)),
        Err(VerifyError::LifetimeTooLong {
            issued_at_ms: NOW_MS,
            expires_at_ms: NOW_MS + 86_400_000,
            lifetime_ms: 86_400_000,
        })
    );
    assert!(matches!(
        f.verify(&signed(max + 1)),
        Err(VerifyError::LifetimeTooLong { lifetime_ms, .. }) if lifetime_ms == max + 1
    ));
}

#[test]
fn truncated_garbage_trailing_and_future_versions_are_malformed() {
    let f = fixture();
    let t = f.permit().to_bytes();
    for cut in [0, 1, 10, 30, t.len() / 2, t.len() - 64, t.len() - 1] {
        assert!(
            matches!(
                f.broker.verify(&t[..cut], &f.expect(), NOW_MS),
                Err(VerifyError::Malformed(DecodeError::Truncated { .. }))
            ),
            "cut at {cut}"
        );
    }
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for len in [0usize, 1, 64, 300, 5000] {
        let mut garbage = vec![0u8; len];
        rand::RngCore::fill_bytes(&mut rng, &mut garbage);
        assert!(matches!(
            f.broker.verify(&garbage, &f.expect(), NOW_MS),
            Err(VerifyError::Malformed(_))
        ));
    }
    let mut trailing = t.clone();
    trailing.extend_from_slice(b"x");
    assert_eq!(
        f.broker.verify(&trailing, &f.expect(), NOW_MS),
        Err(VerifyError::Malformed(DecodeError::TrailingBytes(1)))
    );
    let mut v2 = t.clone();
    let at = b"senatus/token-wire/v".len();
    v2[at] = b'2';
    assert!(matches!(
        f.broker.verify(&v2, &f.expect(), NOW_MS),
        Err(VerifyError::Malformed(DecodeError::UnknownVersion { .. }))
    ));
}

#[test]
fn a_token_of_an_unsealed_epoch_is_unknown_epoch() {
    let f = fixture();
    let mut p = payload(&f.c.genesis, 0, Outcome::Permit, &f.params);
    p.epoch = Epoch(4);
    let t = sign_batch(&f.c, vec![p], 10).remove(0);
    assert_eq!(f.verify(&t), Err(VerifyError::UnknownEpoch(Epoch(4))));
}

#[test]
fn a_signature_by_another_key_set_is_bad_signature() {
    let f = fixture();
    let other = ceremony(12);
    // The honest payload, signed by a foreign 3-of-5 group.
    let p = payload(&f.c.genesis, 0, Outcome::Permit, &f.params);
    let t = sign_batch(&other, vec![p], 11).remove(0);
    assert_eq!(
        f.verify(&t),
        Err(VerifyError::BadSignature {
            epoch: Epoch(0),
            group_key: f.c.genesis.body.group_key
        })
    );
    // A valid signature over another root, grafted on: also refused.
    let mut grafted = f.permit();
    let q = payload(&f.c.genesis, 1, Outcome::Permit, &f.params);
    let honest_other = sign_batch(&f.c, vec![q], 12).remove(0);
    grafted.signature = honest_other.signature;
    assert!(matches!(
        f.verify(&grafted),
        Err(VerifyError::BadSignature { .. })
    ));
    // Every token of a foreign cluster is a chain mismatch before anything.
    let foreign = payload(&other.genesis, 0, Outcome::Permit, &f.params);
    let t = sign_batch(&other, vec![foreign], 13).remove(0);
    assert_eq!(
        f.verify(&t),
        Err(VerifyError::ChainMismatch {
            expected: f.c.genesis.digest(),
            found: other.genesis.digest()
        })
    );
}

#[test]
fn a_tampered_proof_is_bad_inclusion_proof() {
    let f = fixture();
    let payloads: Vec<_> = (0..7)
        .map(|i| payload(&f.c.genesis, i, Outcome::Permit, &f.params))
        .collect();
    let tokens = sign_batch(&f.c, payloads, 14);
    let mut t = tokens[5].clone();
    t.proof[0].0[0] ^= 0x80;
    assert!(matches!(
        f.verify(&t),
        Err(VerifyError::BadInclusionProof {
            leaf_index: 5,
            leaf_count: 7,
            reason: MerkleError::RootMismatch { .. }
        })
    ));
    let mut t = tokens[5].clone();
    t.proof.pop();
    assert!(matches!(
        f.verify(&t),
        Err(VerifyError::BadInclusionProof {
            reason: MerkleError::ProofLength { .. },
            ..
        })
    ));
    // A payload edited after signing no longer hashes into the root.
    let mut t = tokens[5].clone();
    t.payload.tenant = "globex".into();
    assert!(matches!(
        f.verify(&t),
        Err(VerifyError::BadInclusionProof { .. })
    ));
    // A changed leaf count is caught by the proof shape or the signature.
    let mut t = tokens[5].clone();
    t.leaf_count = 8;
    assert!(matches!(
        f.verify(&t),
        Err(VerifyError::BadInclusionProof { .. } | VerifyError::BadSignature { .. })
    ));
}

#[test]
fn deny_and_silence_are_receipts_never_permits() {
    let f = fixture();
    for (i, outcome) in [(0u32, Outcome::Deny), (1, Outcome::Silence)] {
        let p = payload(&f.c.genesis, i, outcome, &f.params);
        let t = sign_batch(&f.c, vec![p], 15 + u64::from(i)).remove(0);
        assert_eq!(f.verify(&t), Err(VerifyError::NotPermit(outcome)));
        let r = f
            .broker
            .verify_receipt(&t.to_bytes())
            .expect("authentic receipt");
        assert_eq!(r.token.payload.outcome, outcome);
    }
    // A receipt check still refuses a forged receipt.
    let p = payload(&f.c.genesis, 2, Outcome::Deny, &f.params);
    let t = sign_batch(&ceremony(13), vec![p], 17).remove(0);
    assert!(matches!(
        f.broker.verify_receipt(&t.to_bytes()),
        Err(VerifyError::BadSignature { .. })
    ));
}

#[test]
fn an_unsealed_policy_version_or_seal_is_unknown_policy_version() {
    let f = fixture();
    let mut p = payload(&f.c.genesis, 0, Outcome::Permit, &f.params);
    p.policy_version = PolicyVersion(p.policy_version.0 + 1);
    let t = sign_batch(&f.c, vec![p.clone()], 18).remove(0);
    assert_eq!(
        f.verify(&t),
        Err(VerifyError::UnknownPolicyVersion {
            version: p.policy_version,
            seal_digest: p.seal_digest
        })
    );
    let mut p = payload(&f.c.genesis, 0, Outcome::Permit, &f.params);
    p.seal_digest = Digest([0x5a; 32]);
    let t = sign_batch(&f.c, vec![p.clone()], 19).remove(0);
    assert_eq!(
        f.verify(&t),
        Err(VerifyError::UnknownPolicyVersion {
            version: p.policy_version,
            seal_digest: Digest([0x5a; 32])
        })
    );
}

#[test]
fn the_signature_cache_never_vouches_for_another_message() {
    let f = fixture();
    let payloads: Vec<_> = (0..4)
        .map(|i| payload(&f.c.genesis, i, Outcome::Permit, &f.params))
        .collect();
    let tokens = sign_batch(&f.c, payloads, 20);
    // Token 0 verifies, so (message, signature) of the batch is cached.
    f.verify(&tokens[0]).expect("first token");
    // An edited sibling still fails its proof before the cache is asked.
    let mut t = tokens[1].clone();
    t.payload.action = "refund".into();
    assert!(matches!(
        f.verify(&t),
        Err(VerifyError::BadInclusionProof { .. })
    ));
    // A different signed count is a different message: no cache hit.
    let mut t = tokens[3].clone();
    t.leaf_count = 5;
    t.proof = vec![t.proof[0], t.proof[1], t.proof[0]];
    let err = f.verify(&t).expect_err("count changed");
    assert!(
        matches!(
            err,
            VerifyError::BadInclusionProof { .. } | VerifyError::BadSignature { .. }
        ),
        "{err}"
    );
    // The cached signature with one flipped bit is not a cache hit.
    let mut t = tokens[2].clone();
    t.signature[63] ^= 0x01;
    assert!(matches!(
        f.verify(&t),
        Err(VerifyError::BadSignature { .. })
    ));
    f.verify(&tokens[2]).expect("the genuine sibling");
}

#[test]
fn a_chain_that_changes_the_key_inside_an_epoch_is_refused() {
    let c0 = ceremony(31);
    let c1 = ceremony(32);
    let g = &c0.genesis;
    let s0 = Seal::genesis(g);
    // An amendment (version + 1, same epoch) that also swaps the group key:
    // the seal chain rules accept it, the broker refuses to guess a key.
    let s1 = Seal {
        version: PolicyVersion(s0.version.0 + 1),
        prev_seal: s0.digest(),
        group_key: c1.genesis.body.group_key,
        membership: c1.genesis.body.validators.clone(),
        ..s0.clone()
    };
    let sig = frost_sign(
        &c0,
        &[2, 3, 4],
        &s1.signing_bytes(),
        &mut ChaCha20Rng::seed_from_u64(33),
    );
    let chain = [
        seal0(g),
        SignedSeal {
            attested: Some(c0.attest_seal(&s1, &[2, 3, 4, 5], 9, Digest([9; 32]))),
            seal: s1,
            signature: Some(Sig64(sig)),
        },
    ];
    match Broker::new(g, &chain) {
        Err(BrokerError::EpochKeyChanged {
            epoch,
            first,
            second,
        }) => {
            assert_eq!(epoch, Epoch(0));
            assert_eq!(first, g.body.group_key);
            assert_eq!(second, c1.genesis.body.group_key);
        }
        other => panic!("wrong result: {other:?}"),
    }
}

#[test]
fn a_broker_needs_a_verified_genesis_and_chain() {
    let f = fixture();
    assert!(matches!(
        Broker::new(&f.c.genesis, &[]),
        Err(BrokerError::Seal(SealError::Empty))
    ));
    let mut g = f.c.genesis.clone();
    g.body.epoch_length_decisions += 1;
    assert!(matches!(
        Broker::new(&g, &[seal0(&g)]),
        Err(BrokerError::Genesis(_))
    ));
}

/// Throughput of the hot path; prints figures, asserts nothing about time.
/// `cargo test --release -p senatus-quorum --test token -- --ignored --nocapture throughput`
#[test]
#[ignore = "benchmark: run explicitly with --release --ignored --nocapture"]
fn throughput() {
    let f = fixture();
    let laps = 50u32;
    // 200 batches of one: every token has its own signature.
    let singles: Vec<Vec<u8>> = (0..200)
        .map(|i| {
            let p = payload(&f.c.genesis, i, Outcome::Permit, &f.params);
            sign_batch(&f.c, vec![p], 100 + u64::from(i))
                .remove(0)
                .to_bytes()
        })
        .collect();
    // One batch of 1024: one signature, 10-digest proofs.
    let batch: Vec<Vec<u8>> = sign_batch(
        &f.c,
        (0..1024)
            .map(|i| payload(&f.c.genesis, i, Outcome::Permit, &f.params))
            .collect(),
        99,
    )
    .iter()
    .map(Token::to_bytes)
    .collect();
    for (label, tokens, fresh_broker_per_lap) in [
        (
            "batches of 1, uncached (Ed25519 verify_strict every time)",
            &singles,
            true,
        ),
        (
            "one batch of 1024, signature cached after the first",
            &batch,
            false,
        ),
    ] {
        let mut broker = Broker::new(&f.c.genesis, &[seal0(&f.c.genesis)]).expect("broker");
        let mut spent = std::time::Duration::ZERO;
        let mut count = 0u32;
        for _ in 0..laps {
            if fresh_broker_per_lap {
                // Building the broker is outside the timed section.
                broker = Broker::new(&f.c.genesis, &[seal0(&f.c.genesis)]).expect("broker");
            }
            let start = std::time::Instant::now();
            for b in tokens.iter() {
                let v = broker.verify(b, &f.expect(), NOW_MS);
                std::hint::black_box(v.expect("verifies"));
            }
            spent += start.elapsed();
            count += tokens.len() as u32;
        }
        println!(
            "{label}: {count} verifications in {:.3} s = {:.0} verifications/s",
            spent.as_secs_f64(),
            f64::from(count) / spent.as_secs_f64()
        );
    }
    // Where the time goes, per token.
    let t = Token::from_bytes(&batch[1000]).expect("token");
    let g = &f.c.genesis.body;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&g.group_key.0).expect("key");
    let msg = t.batch_message(&g.group_key);
    let sig = ed25519_dalek::Signature::from_bytes(&t.signature);
    let reps = 20_000u32;
    let time = |label: &str, work: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..reps {
            work();
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(reps);
        println!("  {label}: {us:.2} us");
    };
    time("decode wire bytes", &mut || {
        std::hint::black_box(Token::from_bytes(&batch[1000]).expect("decode"));
    });
    time("encode payload + leaf hash", &mut || {
        std::hint::black_box(t.payload.leaf_hash());
    });
    time("Merkle path (10 digests)", &mut || {
        std::hint::black_box(senatus_quorum::merkle::root_from_proof(
            &t.root,
            t.leaf_index,
            t.leaf_count,
            &t.proof,
        ))
        .ok();
    });
    time("params digest (JCS + SHA3)", &mut || {
        std::hint::black_box(params_digest(&f.params).expect("digest"));
    });
    time("ed25519 verify_strict", &mut || {
        key.verify_strict(&msg, &sig).expect("verifies");
    });
}

// ---- the pinned vector ----

#[test]
fn token_vector() {
    // The genesis vector's ceremony (genesis/tests/vectors.rs): the token
    // vector chains to docs/vectors/genesis-v1.json.
    let c = Ceremony::run(
        ceremony_params("senatus-vectors", "10.0.0.", 1_767_225_600_000),
        &mut ChaCha20Rng::seed_from_u64(2026),
    )
    .expect("ceremony");
    let g = &c.genesis;
    let seal = Seal::genesis(g);
    let entry_hash = senatus_genesis::sha3(b"senatus token vector ledger entry");
    let cases: [(Outcome, &str, &str, &str, Value); 5] = [
        (
            Outcome::Permit,
            "payments",
            "transfer",
            "acme",
            json!({"amount": 1200, "currency": "EUR", "to": "acct-42"}),
        ),
        (
            Outcome::Deny,
            "payments",
            "transfer",
            "acme",
            json!({"amount": 990000, "currency": "EUR", "to": "acct-666"}),
        ),
        (
            Outcome::Permit,
            "exports",
            "run",
            "globex",
            json!({"dataset": "orders", "filters": {"region": "eu", "year": 2025}, "rows": [1, 2, 3]}),
        ),
        (Outcome::Silence, "infra", "scale", "acme", json!({})),
        (
            Outcome::Permit,
            "infra",
            "restart",
            "initech",
            json!({"service": "api", "zone": "a", "dry_run": false, "note": null}),
        ),
    ];
    let payloads: Vec<TokenPayload> = cases
        .iter()
        .enumerate()
        .map(|(i, (outcome, surface, action, tenant, params))| {
            let position = i as u32;
            TokenPayload {
                genesis_digest: g.digest(),
                decision_id: decision_id(LedgerIndex(42), &entry_hash, position),
                ledger_index: LedgerIndex(42),
                entry_hash,
                position,
                outcome: *outcome,
                surface: (*surface).into(),
                action: (*action).into(),
                tenant: (*tenant).into(),
                actor: format!("agent-{}", i + 1),
                params_digest: params_digest(params).expect("digest"),
                policy_version: seal.version,
                seal_digest: seal.digest(),
                epoch: Epoch(0),
                nonce: derive_nonce(&entry_hash, position),
                issued_at_ms: 1_767_225_660_000,
                expires_at_ms: 1_767_225_720_000,
            }
        })
        .collect();
    let batch = TokenBatch::new(payloads).expect("batch");
    let message = batch.message(&g.body.group_key);
    let signature = frost_sign(
        &c,
        &[1, 3, 5],
        &message,
        &mut ChaCha20Rng::seed_from_u64(2027),
    );
    let tokens = batch.tokens(signature);
    let broker = Broker::new(g, &[seal0(g)]).expect("broker");
    for t in &tokens {
        broker
            .verify_receipt(&t.to_bytes())
            .expect("vector tokens verify");
    }
    let value = json!({
        "description": "One batch of five decisions from ledger entry 42 of the genesis-v1 chain, threshold-signed (FROST, signers 1, 3, 5) under the genesis group key (PROTOCOL.md, Governance tokens). Params use only ASCII strings, integers, booleans and null, so json.dumps(sort_keys=True, separators=(',', ':')) equals RFC 8785 for them. Rebuild params digests, decision ids, nonces, payload bytes, leaf hashes, the root, every proof and the batch message from the fields; verify the signature under group_key; rebuild each token's wire bytes.",
        "genesis_digest": g.digest().to_hex(),
        "group_key": g.body.group_key.to_string(),
        "seal_digest": seal.digest().to_hex(),
        "epoch": 0,
        "ledger_index": 42,
        "entry_hash": entry_hash.to_hex(),
        "leaf_count": batch.leaf_count(),
        "leaves": tokens.iter().zip(&cases).map(|(t, case)| {
            let p = &t.payload;
            json!({
                "params": case.4,
                "params_jcs": String::from_utf8(canonical_params(&case.4).expect("jcs")).expect("utf-8"),
                "params_digest": p.params_digest.to_hex(),
                "position": p.position,
                "decision_id": p.decision_id.to_hex(),
                "nonce": p.nonce.to_hex(),
                "outcome": p.outcome.code(),
                "surface": p.surface,
                "action": p.action,
                "tenant": p.tenant,
                "actor": p.actor,
                "policy_version": p.policy_version.0,
                "issued_at_ms": p.issued_at_ms,
                "expires_at_ms": p.expires_at_ms,
                "payload_bytes": hex::encode(p.encode()),
                "leaf_hash": p.leaf_hash().to_hex(),
                "leaf_index": t.leaf_index,
                "proof": t.proof.iter().map(|d| d.to_hex()).collect::<Vec<_>>(),
                "token_digest": t.digest().to_hex(),
                "token_wire": hex::encode(t.to_bytes()),
            })
        }).collect::<Vec<_>>(),
        "root": batch.root().to_hex(),
        "batch_message": hex::encode(&message),
        "signature": hex::encode(signature),
    });
    common::pin("token-v1.json", &value);
    // The signature in the pinned file verifies, independent of FROST.
    let key = ed25519_dalek::VerifyingKey::from_bytes(&g.body.group_key.0).expect("key");
    key.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .expect("plain Ed25519");
    // Sanity: the vector's genesis is the genesis vector's.
    let gv: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors_dir().join("genesis-v1.json")).expect("genesis vector"),
    )
    .expect("json");
    assert_eq!(gv["genesis_digest"], json!(g.digest().to_hex()));
}
