//! Pins `docs/vectors/certificate-v2.json` (PROTOCOL.md section 17): eight
//! shutdown certificates on the cluster of `genesis-v1.json` — a
//! policy-drift, a vote-equivocation, an invalid-share (with its attested
//! share, from a real FROST round of the `signing` module), the three
//! kinds about an agent, each carrying the agent's own presentations
//! (PROTOCOL.md 10.3) by the example layer's published agent keys
//! (token-modified of a token the group really signed, token-replayed of
//! it and of a reissue of it — the same payload signed again — and
//! token-forged of one it did not), a batch-lifetime and a ledger-fork —
//! each with its fields, evidence bytes, signing bytes, id, issuer
//! signature, wire bytes and the issuer's identity key. Every certificate
//! checks under the example layer's registry.
//! `scripts/verify-vectors.py` rebuilds every byte string from the JSON
//! fields alone and verifies every Ed25519 signature (FROST share validity
//! is checked here, not there). Regenerate deliberately with
//! `SENATUS_WRITE_VECTORS=1 cargo test -p senatus-quorum --test certificate_vectors`,
//! then update docs/PROTOCOL.md and review the diff.

mod common;

use std::collections::BTreeMap;

use frost_ed25519::round2::SignatureShare;
use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use senatus_genesis::ceremony::Ceremony;
use senatus_genesis::seal::{Seal, SignedSeal};
use senatus_genesis::{Digest, Epoch, LedgerIndex, NodeId, PolicyLayer, sha3};
use senatus_quorum::Outcome;
use senatus_quorum::amend::{Equivocation, ProposalId, SignedVote, Verdict, Vote};
use senatus_quorum::broker::Broker;
use senatus_quorum::certificate::{
    AttestedBatch, AttestedShare, Certificate, CheckContext, DriftLocation, Evidence,
    SignedCertificate, Subject,
};
use senatus_quorum::params::params_digest;
use senatus_quorum::presentation::{Presentation, presentation_signing_bytes};
use senatus_quorum::signing::{
    CommitmentBook, NoncePool, SignRequest, SignedShare, Signer, aggregate, public_key_package,
};
use senatus_quorum::token::{Token, TokenBatch, TokenPayload, decision_id, derive_nonce};
use serde_json::{Value, json};

use common::{seeded_ceremony, vectors_dir};

/// Issue time of the certificates (fixed, so the vector is stable).
const ISSUED_AT_MS: u64 = 1_767_398_400_000;
const HEAD_INDEX: u64 = 57;

fn read_vector(name: &str) -> Value {
    let path = vectors_dir().join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("missing vector {}: {e}", path.display())),
    )
    .expect("json")
}

fn node(n: u64) -> NodeId {
    NodeId::new(n).expect("node id")
}

fn key(c: &Ceremony, n: u64) -> &ed25519_dalek::SigningKey {
    c.nodes[n as usize - 1].identity.signing_key()
}

/// The head every issuer reports: made-up but fixed (the vector is about
/// the certificate bytes, not about a particular ledger).
fn head_hash() -> Digest {
    sha3(b"senatus certificate vector: ledger entry 57")
}

fn certificate(
    c: &Ceremony,
    subject: Subject,
    evidence: Evidence,
    issuer: u64,
) -> SignedCertificate {
    Certificate {
        subject,
        evidence,
        head_index: HEAD_INDEX,
        head_hash: head_hash(),
        issuer: node(issuer),
        issued_at_ms: ISSUED_AT_MS,
    }
    .sign(key(c, issuer))
}

/// The published seed of an example-layer agent (`identities.toml`): 32
/// bytes of `b`.
fn agent_key(b: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[b; 32])
}

/// A presentation's fields, as the script rebuilds it (10.3).
fn presentation_json(agent: &str, token: &Token, params_json: &str, p: &Presentation) -> Value {
    json!({
        "agent": agent,
        "key": p.key.to_string(),
        "token_digest": p.token_digest.to_hex(),
        "broker": p.broker,
        "params_json": params_json,
        "params_hash": p.params_hash.to_hex(),
        "presented_at_ms": p.presented_at_ms,
        "signing_bytes": hex::encode(presentation_signing_bytes(
            &token.payload.genesis_digest,
            &p.token_digest,
            &p.broker,
            &p.params_hash,
            p.presented_at_ms,
        )),
        "signature": hex::encode(p.signature),
        "presentation": hex::encode(p.encode()),
    })
}

fn subject_json(s: &Subject) -> Value {
    match s {
        Subject::Validator(n) => json!({"kind": 1, "node": n.get(), "tenant": "", "actor": ""}),
        Subject::Agent { tenant, actor } => {
            json!({"kind": 2, "node": 0, "tenant": tenant, "actor": actor})
        }
    }
}

fn entry(c: &Ceremony, name: &str, signed: &SignedCertificate, evidence_fields: Value) -> Value {
    let cert = &signed.certificate;
    let issuer_key = c.genesis.body.validators[cert.issuer.get() as usize - 1].identity_key;
    json!({
        "name": name,
        "subject": subject_json(&cert.subject),
        "breach_kind": cert.kind().code(),
        "breach": cert.kind().name(),
        "evidence_fields": evidence_fields,
        "evidence": hex::encode(cert.evidence.encode()),
        "head_index": cert.head_index,
        "head_hash": cert.head_hash.to_hex(),
        "issuer": cert.issuer.get(),
        "issuer_identity_key": issuer_key.to_string(),
        "issued_at_ms": cert.issued_at_ms,
        "signing_bytes": hex::encode(cert.signing_bytes()),
        "certificate_id": signed.id().to_string(),
        "signature": hex::encode(signed.signature.0),
        "certificate": hex::encode(signed.encode()),
    })
}

/// Validators 1, 2, 3 answer one request for `msg` with the `signing`
/// module, seeded.
fn frost_round(
    c: &Ceremony,
    msg: &[u8],
    seed: u64,
) -> (SignRequest, BTreeMap<NodeId, SignedShare>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut book = CommitmentBook::default();
    let mut signers = BTreeMap::new();
    for i in [1u64, 2, 3] {
        let kp = c.nodes[i as usize - 1].frost.key_package.clone();
        let mut s = Signer::new(kp, NoncePool::new(node(i), 0x5e4a_7005)).expect("signer");
        for cm in s.replenish(1, &mut rng) {
            book.insert(cm).expect("filed");
        }
        signers.insert(node(i), s);
    }
    let plan = book.take_for(&[node(1), node(2), node(3)]).expect("plan");
    let req = plan.request(msg);
    let shares = signers
        .iter_mut()
        .map(|(n, s)| (*n, s.sign(&req, msg).expect("share")))
        .collect();
    (req, shares)
}

fn payload(c: &Ceremony, actor: &str) -> TokenPayload {
    let g = &c.genesis;
    let entry_hash = sha3(b"senatus certificate vector: ledger entry 41");
    TokenPayload {
        genesis_digest: g.digest(),
        decision_id: decision_id(LedgerIndex(41), &entry_hash, 0),
        ledger_index: LedgerIndex(41),
        entry_hash,
        position: 0,
        outcome: Outcome::Permit,
        surface: "payments".into(),
        action: "transfer".into(),
        tenant: "acme".into(),
        actor: actor.into(),
        params_digest: params_digest(
            &json!({"amount": 1200, "currency": "EUR", "to_account": "acct-42"}),
        )
        .expect("params"),
        policy_version: g.body.policy_version,
        seal_digest: Seal::genesis(g).digest(),
        epoch: Epoch(0),
        nonce: derive_nonce(&entry_hash, 0),
        issued_at_ms: 1_767_398_340_000,
        expires_at_ms: 1_767_398_400_000,
    }
}

#[test]
fn certificate_vector() {
    let c = seeded_ceremony();
    let gv = read_vector("genesis-v1.json");
    assert_eq!(
        c.genesis.digest().to_hex(),
        gv["genesis_digest"].as_str().expect("genesis_digest"),
        "the ceremony must be the one of genesis-v1.json"
    );
    let seal0 = Seal::genesis(&c.genesis);
    let pubkeys = public_key_package(&seal0).expect("key package");
    let broker = Broker::new(
        &c.genesis,
        &[SignedSeal {
            seal: seal0.clone(),
            signature: None,
            attested: None,
        }],
    )
    .expect("broker");
    let membership = c.genesis.body.validators.clone();
    let layer = PolicyLayer::example();
    assert_eq!(layer.digest(), c.genesis.body.policy_digest);
    let ctx = CheckContext {
        membership: &membership,
        pubkeys: &pubkeys,
        broker: &broker,
        registry: layer.registry(),
    };
    let mut entries = Vec::new();

    // 1. Validator 2 finds its sealed layer on disk changed.
    let sealed = c.genesis.body.policy_digest;
    let observed = sha3(b"senatus certificate vector: a tampered policy layer");
    let drift = certificate(
        &c,
        Subject::Validator(node(2)),
        Evidence::PolicyDrift {
            location: DriftLocation::Disk,
            policy_version: c.genesis.body.policy_version.0,
            sealed_digest: sealed,
            observed_digest: observed,
        },
        2,
    );
    entries.push(entry(
        &c,
        "policy-drift",
        &drift,
        json!({
            "location": DriftLocation::Disk.code(),
            "policy_version": c.genesis.body.policy_version.0,
            "sealed_digest": sealed.to_hex(),
            "observed_digest": observed.to_hex(),
        }),
    ));

    // 2. Validator 2 approves and rejects the proposal of amendment-v1.json;
    //    validator 1 certifies it.
    let av = read_vector("amendment-v1.json");
    let proposal = ProposalId(
        Digest::from_hex(av["proposal"]["proposal_id"].as_str().expect("proposal id"))
            .expect("hex"),
    );
    let vote = |verdict| -> SignedVote {
        Vote {
            proposal,
            voter: node(2),
            verdict,
        }
        .sign(key(&c, 2))
        .expect("vote")
    };
    let first = vote(Verdict::Approve);
    let second = vote(Verdict::Reject(vec!["floor-lowered".into()]));
    let equivocation = certificate(
        &c,
        Subject::Validator(node(2)),
        Evidence::VoteEquivocation(Equivocation {
            first: first.clone(),
            second: second.clone(),
        }),
        1,
    );
    entries.push(entry(
        &c,
        "vote-equivocation",
        &equivocation,
        json!({
            "proposal_id": proposal.to_string(),
            "voter": 2,
            "first_signed_vote": hex::encode(first.encode()),
            "second_signed_vote": hex::encode(second.encode()),
        }),
    ));

    // 3. Validator 3 answers coordinator 1 with a share it altered, and
    //    attests it with its identity key.
    let batch = TokenBatch::new(vec![payload(&c, "agent-7")]).expect("batch");
    let msg = batch.message(&c.genesis.body.group_key);
    let (request, shares) = frost_round(&c, &msg, 2028);
    let mut share = shares[&node(3)];
    let mut raw: [u8; 32] = share.share.serialize().try_into().expect("32 bytes");
    raw[0] ^= 1;
    share.share = SignatureShare::deserialize(&raw).expect("still a scalar");
    let attested = AttestedShare::sign(request.clone(), share, key(&c, 3));
    assert!(shares[&node(3)] != share);
    let invalid = certificate(
        &c,
        Subject::Validator(node(3)),
        Evidence::InvalidShare(attested.clone()),
        1,
    );
    entries.push(entry(
        &c,
        "invalid-share",
        &invalid,
        json!({
            "signer": 3,
            "request": hex::encode(request.to_bytes()),
            "request_digest": sha3(&request.to_bytes()).to_hex(),
            "share": hex::encode(share.to_bytes()),
            "attestation_signing_bytes": hex::encode(AttestedShare::signing_bytes(&request, &share)),
            "attestation_signature": hex::encode(attested.signature.0),
            "attested_share": hex::encode(attested.encode()),
        }),
    ));

    // A token the group really signed: validators 1, 2, 3 over a batch of
    // one decision for acme/agent-7; and the same batch signed again (a
    // reissue: FROST signatures are randomized, so the same payload under
    // another signature).
    let signed = |seed: u64| -> Token {
        let batch = TokenBatch::new(vec![payload(&c, "agent-7")]).expect("batch");
        let msg = batch.message(&c.genesis.body.group_key);
        let (request, shares) = frost_round(&c, &msg, seed);
        let shares = shares.into_iter().map(|(n, s)| (n, s.share)).collect();
        let sig = aggregate(&request.package(), &shares, &pubkeys).expect("aggregate");
        batch.tokens(sig).remove(0)
    };
    let genuine = signed(2029);
    let reissued = signed(2030);
    assert_eq!(reissued.payload, genuine.payload);
    assert_ne!(reissued.signature, genuine.signature);
    for t in [&genuine, &reissued] {
        broker
            .verify_receipt_token(t.clone())
            .expect("the genuine token verifies");
    }
    let agent_7 = Subject::Agent {
        tenant: "acme".into(),
        actor: "agent-7".into(),
    };
    let issued = genuine.payload.issued_at_ms;

    // 4. Agent acme/agent-7 hands the genuine token to broker-1 with params
    //    other than those decided on; validator 5 certifies it.
    let other_params = r#"{"amount": 999999, "currency": "EUR", "to_account": "acct-42"}"#;
    let presented = Presentation::sign(
        &agent_key(0x07),
        &genuine,
        "broker-1",
        other_params,
        issued + 5_000,
    );
    let modification = certificate(
        &c,
        agent_7.clone(),
        Evidence::TokenModified {
            token: genuine.to_bytes(),
            params_json: other_params.into(),
            presentation: presented.clone(),
        },
        5,
    );
    entries.push(entry(
        &c,
        "token-modified",
        &modification,
        json!({
            "tenant": "acme",
            "actor": "agent-7",
            "token": hex::encode(genuine.to_bytes()),
            "payload_digest": genuine.digest().to_hex(),
            "params_json": other_params,
            "presentation": presentation_json("agent-7", &genuine, other_params, &presented),
        }),
    ));

    // 5. Agent acme/agent-9 hands broker-1 a token signed by a key of its
    //    own; validator 4 certifies it.
    let forged: Token = {
        use ed25519_dalek::Signer as _;
        let batch = TokenBatch::new(vec![payload(&c, "agent-9")]).expect("batch");
        let msg = batch.message(&c.genesis.body.group_key);
        let outsider = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
        batch.tokens(outsider.sign(&msg).to_bytes()).remove(0)
    };
    let transfer = r#"{"amount":1200,"currency":"EUR","to_account":"acct-42"}"#;
    let forged_presented = Presentation::sign(
        &agent_key(0x09),
        &forged,
        "broker-1",
        transfer,
        issued + 7_000,
    );
    let forgery = certificate(
        &c,
        Subject::Agent {
            tenant: "acme".into(),
            actor: "agent-9".into(),
        },
        Evidence::TokenForged {
            token: forged.to_bytes(),
            presentation: forged_presented.clone(),
        },
        4,
    );
    entries.push(entry(
        &c,
        "token-forged",
        &forgery,
        json!({
            "tenant": "acme",
            "actor": "agent-9",
            "token": hex::encode(forged.to_bytes()),
            "payload_digest": forged.digest().to_hex(),
            "presentation": presentation_json("agent-9", &forged, transfer, &forged_presented),
        }),
    ));

    // 6. Agent acme/agent-7 hands the genuine token to broker-1, which
    //    redeems it at ledger index 50, then hands a reissue of it (the
    //    same payload, so the same nonce, under another signature) to
    //    broker-2; validator 3 certifies it with both tokens and both
    //    presentations, each of its own token.
    let first = Presentation::sign(
        &agent_key(0x07),
        &genuine,
        "broker-1",
        transfer,
        issued + 10_000,
    );
    let again = Presentation::sign(
        &agent_key(0x07),
        &reissued,
        "broker-2",
        transfer,
        issued + 20_000,
    );
    let replay = certificate(
        &c,
        agent_7,
        Evidence::TokenReplayed {
            token: reissued.to_bytes(),
            first_index: 50,
            first_token: genuine.to_bytes(),
            first: first.clone(),
            second: again.clone(),
        },
        3,
    );
    entries.push(entry(
        &c,
        "token-replayed",
        &replay,
        json!({
            "tenant": "acme",
            "actor": "agent-7",
            "token": hex::encode(reissued.to_bytes()),
            "payload_digest": reissued.digest().to_hex(),
            "first_index": 50,
            "first_token": hex::encode(genuine.to_bytes()),
            "first_presentation": presentation_json("agent-7", &genuine, transfer, &first),
            "second_presentation": presentation_json("agent-7", &reissued, transfer, &again),
        }),
    ));

    // 7. Leader 5 asks for shares over a batch whose tokens would live a
    //    day, attesting its times; signer 1 certifies it.
    let entry_hash = sha3(b"senatus certificate vector: decision entry 56");
    let (issued, expires) = (1_767_398_390_000u64, 1_767_398_390_000u64 + 86_400_000);
    let att_bytes = AttestedBatch::signing_bytes(node(5), 56, &entry_hash, issued, expires);
    let attested_batch = AttestedBatch {
        leader: node(5),
        ledger_index: 56,
        entry_hash,
        issued_at_ms: issued,
        expires_at_ms: expires,
        signature: {
            use ed25519_dalek::Signer as _;
            senatus_genesis::Sig64(key(&c, 5).sign(&att_bytes).to_bytes())
        },
    };
    let lifetime = certificate(
        &c,
        Subject::Validator(node(5)),
        Evidence::BatchLifetime(attested_batch.clone()),
        1,
    );
    entries.push(entry(
        &c,
        "batch-lifetime",
        &lifetime,
        json!({
            "leader": 5,
            "ledger_index": 56,
            "entry_hash": entry_hash.to_hex(),
            "issued_at_ms": issued,
            "expires_at_ms": expires,
            "attestation_signing_bytes": hex::encode(&att_bytes),
            "attestation_signature": hex::encode(attested_batch.signature.0),
        }),
    ));

    // 8. Leader 5 attests, for ledger entry 55, a hash validator 2 did not
    //    commit there (a forked head); validator 2 certifies it. Whether the
    //    hash is the committed one is each receiver's own ledger fact.
    let forked_hash = sha3(b"senatus certificate vector: a forked entry 55");
    let (issued, expires) = (1_767_398_380_000u64, 1_767_398_440_000u64);
    let fork_bytes = AttestedBatch::signing_bytes(node(5), 55, &forked_hash, issued, expires);
    let forked = AttestedBatch {
        leader: node(5),
        ledger_index: 55,
        entry_hash: forked_hash,
        issued_at_ms: issued,
        expires_at_ms: expires,
        signature: {
            use ed25519_dalek::Signer as _;
            senatus_genesis::Sig64(key(&c, 5).sign(&fork_bytes).to_bytes())
        },
    };
    let fork = certificate(
        &c,
        Subject::Validator(node(5)),
        Evidence::LedgerFork(forked.clone()),
        2,
    );
    entries.push(entry(
        &c,
        "ledger-fork",
        &fork,
        json!({
            "leader": 5,
            "ledger_index": 55,
            "entry_hash": forked_hash.to_hex(),
            "issued_at_ms": issued,
            "expires_at_ms": expires,
            "attestation_signing_bytes": hex::encode(&fork_bytes),
            "attestation_signature": hex::encode(forked.signature.0),
        }),
    ));

    for cert in [
        &drift,
        &equivocation,
        &invalid,
        &modification,
        &forgery,
        &replay,
        &lifetime,
        &fork,
    ] {
        let back = SignedCertificate::decode(&cert.encode()).expect("decodes");
        assert_eq!(&back, cert);
        back.check(&ctx)
            .unwrap_or_else(|e| panic!("{} vector must check: {e}", cert.certificate.kind()));
    }

    let value = json!({
        "description": "Shutdown certificates, version 2, on the genesis-v1 cluster (PROTOCOL.md section 17): policy drift reported by validator 2 about itself; vote equivocation by validator 2 on the proposal of amendment-v1.json, certified by validator 1; an invalid FROST share of validator 3 (a real round of validators 1, 2, 3 over a token batch message, with validator 3's share scalar altered), attested with validator 3's identity key and certified by coordinator 1; a token the group signed (validators 1, 2, 3) that agent acme/agent-7 presented to broker-1 with other params, certified by validator 5; a token signed by a key outside the cluster that agent acme/agent-9 presented to broker-1, certified by validator 4; the genuine token of token-modified presented by agent acme/agent-7 to broker-1 and redeemed at ledger index 50 (first_token), then a reissue of it (the same payload, so the same nonce, signed again by validators 1, 2, 3 with other nonces) presented by agent-7 to broker-2 (token), certified by validator 3; leader 5 attesting a decision batch whose tokens would live a day, certified by signer 1; leader 5 attesting for ledger entry 55 a hash validator 2 did not commit there, certified by validator 2 (that the hash differs from the committed one is each receiver's own ledger fact, not checkable from this file). Rebuild each evidence and certificate_signing_bytes from the fields, hash for the id, and verify the signature under the issuer's identity key from genesis-v1.json; for the invalid share and the batch lifetime also rebuild attestation_signing_bytes and verify the attestation under the signer's (the leader's) identity key. For each presentation (PROTOCOL.md 10.3) rebuild token_digest as SHA3-256 of the wire bytes of the token it presents (for token-replayed, first_presentation presents first_token and second_presentation token, whose payloads are equal; payload_digest is SHA3-256 of the payload bytes), params_hash from params_json, presentation_signing_bytes (with the token's genesis digest) and the presentation bytes, and verify its signature under the key the example layer's registry (policy-layer-v1.json) gives the token's tenant and actor: the agents are the published test keys agent-7 (seed 07 x 32) and agent-9 (seed 09 x 32). Share invalidity is checked by cargo test (quorum/tests/certificate_vectors.rs).",
        "genesis_digest": c.genesis.digest().to_hex(),
        "certificates": entries,
    });
    common::pin("certificate-v2.json", &value);
}

/// The byte layouts written out by hand (not with `Encoder`), so a change on
/// either side shows up here even before the JSON vector is consulted.
#[test]
fn certificate_layouts_are_pinned() {
    assert_eq!(senatus_quorum::certificate::CERTIFICATE_BYTES_MAX, 66_222);
    let cert = Certificate {
        subject: Subject::Agent {
            tenant: "t".into(),
            actor: "ab".into(),
        },
        evidence: Evidence::LedgerBreak {
            index: 5,
            expected: Digest([0xaa; 32]),
            found: Digest([0xbb; 32]),
        },
        head_index: 0x0102,
        head_hash: Digest([0xcc; 32]),
        issuer: node(3),
        issued_at_ms: 0x0a0b,
    };
    let mut evidence = 5u64.to_be_bytes().to_vec();
    evidence.extend_from_slice(&[0xaa; 32]);
    evidence.extend_from_slice(&[0xbb; 32]);
    assert_eq!(cert.evidence.encode(), evidence);
    let mut want = b"senatus/shutdown-certificate/v2\0".to_vec();
    want.push(2);
    want.extend_from_slice(&0u64.to_be_bytes());
    want.extend_from_slice(&[0, 0, 0, 1, b't', 0, 0, 0, 2, b'a', b'b']);
    want.push(2);
    want.extend_from_slice(&(evidence.len() as u32).to_be_bytes());
    want.extend_from_slice(&evidence);
    want.extend_from_slice(&0x0102u64.to_be_bytes());
    want.extend_from_slice(&[0xcc; 32]);
    want.extend_from_slice(&3u64.to_be_bytes());
    want.extend_from_slice(&0x0a0bu64.to_be_bytes());
    assert_eq!(cert.signing_bytes(), want);
    assert_eq!(cert.id().0, sha3(&want));

    let drift = Evidence::PolicyDrift {
        location: DriftLocation::Memory,
        policy_version: 7,
        sealed_digest: Digest([1; 32]),
        observed_digest: Digest([2; 32]),
    };
    let mut want = vec![1u8];
    want.extend_from_slice(&7u64.to_be_bytes());
    want.extend_from_slice(&[1; 32]);
    want.extend_from_slice(&[2; 32]);
    assert_eq!(drift.encode(), want);

    // Presentations (10.3), each field a repeated byte, and their bytes by
    // hand: tag, token digest, broker, params hash, time, key, signature.
    let presentation = |b: u8| Presentation {
        token_digest: Digest([b; 32]),
        broker: "b1".into(),
        params_hash: Digest([b + 1; 32]),
        presented_at_ms: u64::from(b),
        key: senatus_genesis::Key32([b + 2; 32]),
        signature: [b + 3; 64],
    };
    let presentation_bytes = |b: u8| {
        let mut out = b"senatus/presentation/v1\0".to_vec();
        out.extend_from_slice(&[b; 32]);
        out.extend_from_slice(&[0, 0, 0, 2, b'b', b'1']);
        out.extend_from_slice(&[b + 1; 32]);
        out.extend_from_slice(&u64::from(b).to_be_bytes());
        out.extend_from_slice(&[b + 2; 32]);
        out.extend_from_slice(&[b + 3; 64]);
        out
    };
    let field = |bytes: &[u8]| [&(bytes.len() as u32).to_be_bytes()[..], bytes].concat();
    assert_eq!(presentation(0x10).encode(), presentation_bytes(0x10));
    assert_eq!(
        presentation_bytes(0x10).len(),
        24 + 32 + 6 + 32 + 8 + 32 + 64
    );

    let replay = Evidence::TokenReplayed {
        token: b"tok".to_vec(),
        first_index: 9,
        first_token: b"first".to_vec(),
        first: presentation(0x10),
        second: presentation(0x20),
    };
    let mut want = vec![0, 0, 0, 3, b't', b'o', b'k'];
    want.extend_from_slice(&9u64.to_be_bytes());
    want.extend_from_slice(&[0, 0, 0, 5, b'f', b'i', b'r', b's', b't']);
    want.extend_from_slice(&field(&presentation_bytes(0x10)));
    want.extend_from_slice(&field(&presentation_bytes(0x20)));
    assert_eq!(replay.encode(), want);
    let modified = Evidence::TokenModified {
        token: b"tok".to_vec(),
        params_json: "{}".into(),
        presentation: presentation(0x30),
    };
    let mut want = vec![0, 0, 0, 3, b't', b'o', b'k', 0, 0, 0, 2, b'{', b'}'];
    want.extend_from_slice(&field(&presentation_bytes(0x30)));
    assert_eq!(modified.encode(), want);
    let mut want = vec![0, 0, 0, 3, b't', b'o', b'k'];
    want.extend_from_slice(&field(&presentation_bytes(0x40)));
    assert_eq!(
        Evidence::TokenForged {
            token: b"tok".to_vec(),
            presentation: presentation(0x40),
        }
        .encode(),
        want
    );
}
