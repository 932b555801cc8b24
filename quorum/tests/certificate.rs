//! Shutdown certificates (PROTOCOL.md section 17) on real material: a seeded
//! 3-of-5 ceremony, FROST shares from the `signing` module, tokens signed
//! by the group and verified by a broker, and a sealed registry whose agents
//! sign their own presentations. Every kind round-trips and checks; every
//! rejection path produces its own error. A certificate about an agent
//! holds only with that agent's presentations: another agent's, an
//! unregistered key's, one of another token, a forged signature, other
//! params, or one presentation sent twice certify nobody.

use std::collections::BTreeMap;

use frost_ed25519::keys::PublicKeyPackage;
use frost_ed25519::round2::SignatureShare;
use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use senatus_genesis::ceremony::{Ceremony, CeremonyParams, NodeAddrs};
use senatus_genesis::codec::{DecodeError, Encoder};
use senatus_genesis::registry::{Identity, Registry, Role};
use senatus_genesis::seal::{Seal, SignedSeal};
use senatus_genesis::{
    Digest, Epoch, Key32, LedgerIndex, NodeId, PolicyLayer, Sig64, Validator, sha3,
};
use senatus_quorum::Outcome;
use senatus_quorum::amend::{Equivocation, ProposalId, SignedVote, Verdict, Vote};
use senatus_quorum::auth::AuthError;
use senatus_quorum::broker::Broker;
use senatus_quorum::certificate::{
    AttestedBatch, AttestedShare, BreachKind, CERTIFICATE_BYTES_MAX, CERTIFICATE_OBJECT,
    CERTIFICATE_VERSION, Certificate, CertificateError, CheckContext, DriftLocation,
    EVIDENCE_BYTES_MAX, Evidence, SignedCertificate, Subject,
};
use senatus_quorum::params::params_digest;
use senatus_quorum::presentation::{Presentation, PresentationError, token_wire_digest};
use senatus_quorum::signing::{
    CommitmentBook, NoncePool, SignRequest, SignedShare, Signer, aggregate, public_key_package,
};
use senatus_quorum::token::{Token, TokenBatch, TokenPayload, decision_id, derive_nonce};
use serde_json::{Value, json};

const NOW_MS: u64 = 1_767_225_600_000;
const HEAD_INDEX: u64 = 40;
/// When agents hand their tokens over (presentations carry no freshness
/// rule inside a certificate: the validator judged it on receipt).
const PRESENTED_AT_MS: u64 = NOW_MS + 1_000;

fn node(n: u64) -> NodeId {
    NodeId::new(n).expect("node id")
}

fn seed(b: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[b; 32])
}

fn public(b: u8) -> Key32 {
    Key32(seed(b).verifying_key().to_bytes())
}

/// The agents' seeds: agent-7, agent-8 and agent-9 of tenant acme sign with
/// 32 bytes of 0x07, 0x08, 0x09; broker-1 (payments) with 0xb1. Seed 0x42
/// is registered nowhere.
const AGENT_7: u8 = 0x07;
const AGENT_8: u8 = 0x08;
const AGENT_9: u8 = 0x09;
const BROKER_1: u8 = 0xb1;
const OUTSIDER: u8 = 0x42;

fn registry() -> Registry {
    let agent = |name: &str, b: u8| Identity {
        name: name.into(),
        role: Role::Agent,
        key: public(b),
        tenant: Some("acme".into()),
        actors: vec![name.into()],
        surfaces: Vec::new(),
    };
    Registry::new(vec![
        agent("agent-7", AGENT_7),
        agent("agent-8", AGENT_8),
        agent("agent-9", AGENT_9),
        Identity {
            name: "broker-1".into(),
            role: Role::Broker,
            key: public(BROKER_1),
            tenant: None,
            actors: Vec::new(),
            surfaces: vec!["payments".into()],
        },
    ])
    .expect("registry")
}

fn ceremony(seed: u64) -> Ceremony {
    let params = CeremonyParams {
        chain_id: "senatus-certificate-test".into(),
        threshold: 3,
        nodes: (1..=5)
            .map(|i| NodeAddrs {
                peer: format!("127.0.0.{i}:7000"),
                api: format!("127.0.0.{i}:7001"),
                metrics: format!("127.0.0.{i}:7002"),
            })
            .collect(),
        policy: PolicyLayer::example(),
        created_at_ms: 1_700_000_000_000,
    };
    Ceremony::run(params, &mut ChaCha20Rng::seed_from_u64(seed)).expect("ceremony")
}

struct Fixture {
    c: Ceremony,
    membership: Vec<Validator>,
    pubkeys: PublicKeyPackage,
    broker: Broker,
    registry: Registry,
}

fn fixture() -> Fixture {
    let c = ceremony(61);
    let seal0 = Seal::genesis(&c.genesis);
    let pubkeys = public_key_package(&seal0).expect("key package");
    let broker = Broker::new(
        &c.genesis,
        &[SignedSeal {
            seal: seal0,
            signature: None,
            attested: None,
        }],
    )
    .expect("broker");
    Fixture {
        membership: c.genesis.body.validators.clone(),
        c,
        pubkeys,
        broker,
        registry: registry(),
    }
}

impl Fixture {
    fn ctx(&self) -> CheckContext<'_> {
        CheckContext {
            membership: &self.membership,
            pubkeys: &self.pubkeys,
            broker: &self.broker,
            registry: &self.registry,
        }
    }

    fn key(&self, n: u64) -> &ed25519_dalek::SigningKey {
        self.c.nodes[n as usize - 1].identity.signing_key()
    }

    /// Signers `ids` answer one request for `msg` through the `signing`
    /// module (preprocessed nonces, the coordinator's book and plan).
    fn frost_round(
        &self,
        ids: &[u64],
        msg: &[u8],
        seed: u64,
    ) -> (SignRequest, BTreeMap<NodeId, SignedShare>) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut book = CommitmentBook::default();
        let mut signers = BTreeMap::new();
        for &i in ids {
            let kp = self.c.nodes[i as usize - 1].frost.key_package.clone();
            let mut s = Signer::new(kp, NoncePool::new(node(i), 7)).expect("signer");
            for cm in s.replenish(1, &mut rng) {
                book.insert(cm).expect("filed");
            }
            signers.insert(node(i), s);
        }
        let set: Vec<NodeId> = ids.iter().map(|&i| node(i)).collect();
        let plan = book.take_for(&set).expect("plan");
        let req = plan.request(msg);
        let shares = signers
            .iter_mut()
            .map(|(n, s)| (*n, s.sign(&req, msg).expect("share")))
            .collect();
        (req, shares)
    }

    fn payload(&self, actor: &str, params: &Value) -> TokenPayload {
        let g = &self.c.genesis;
        let entry_hash = sha3(b"ledger entry 9");
        TokenPayload {
            genesis_digest: g.digest(),
            decision_id: decision_id(LedgerIndex(9), &entry_hash, 0),
            ledger_index: LedgerIndex(9),
            entry_hash,
            position: 0,
            outcome: Outcome::Permit,
            surface: "payments".into(),
            action: "transfer".into(),
            tenant: "acme".into(),
            actor: actor.into(),
            params_digest: params_digest(params).expect("params"),
            policy_version: g.body.policy_version,
            seal_digest: Seal::genesis(g).digest(),
            epoch: Epoch(0),
            nonce: derive_nonce(&entry_hash, 0),
            issued_at_ms: NOW_MS,
            expires_at_ms: NOW_MS + 60_000,
        }
    }

    /// A token the group really signed (validators 1, 2, 3).
    fn genuine_token(&self, payload: TokenPayload) -> Token {
        self.signed_by(payload, &[1, 2, 3], 5)
    }

    /// A token the group really signed, by signers `ids` with nonces from
    /// `seed`: FROST signatures are randomized, so the same payload signed
    /// twice is two genuine tokens with two signatures (a reissue).
    fn signed_by(&self, payload: TokenPayload, ids: &[u64], seed: u64) -> Token {
        let batch = TokenBatch::new(vec![payload]).expect("batch");
        let msg = batch.message(&self.c.genesis.body.group_key);
        let (req, shares) = self.frost_round(ids, &msg, seed);
        let shares = shares.into_iter().map(|(n, s)| (n, s.share)).collect();
        let sig = aggregate(&req.package(), &shares, &self.pubkeys).expect("aggregate");
        batch.tokens(sig).remove(0)
    }

    /// The same payload "signed" by a key outside the cluster.
    fn forged_token(&self, payload: TokenPayload) -> Token {
        use ed25519_dalek::Signer as _;
        let batch = TokenBatch::new(vec![payload]).expect("batch");
        let msg = batch.message(&self.c.genesis.body.group_key);
        batch.tokens(seed(OUTSIDER).sign(&msg).to_bytes()).remove(0)
    }

    /// Validator 3's share for a request of validators 1, 2, 3, with its
    /// scalar changed (when `tamper`), attested with validator 3's key.
    fn attested_share(&self, tamper: bool) -> AttestedShare {
        let (req, shares) = self.frost_round(&[1, 2, 3], b"a token batch message", 9);
        let mut share = shares[&node(3)];
        if tamper {
            let mut raw: [u8; 32] = share.share.serialize().try_into().expect("32 bytes");
            raw[0] ^= 1;
            share.share = SignatureShare::deserialize(&raw).expect("still a scalar");
        }
        AttestedShare::sign(req, share, self.key(3))
    }

    fn vote(&self, voter: u64, verdict: Verdict) -> SignedVote {
        Vote {
            proposal: ProposalId(sha3(b"a proposal")),
            voter: node(voter),
            verdict,
        }
        .sign(self.key(voter))
        .expect("vote")
    }

    fn cert(&self, subject: Subject, evidence: Evidence, issuer: u64) -> SignedCertificate {
        Certificate {
            subject,
            evidence,
            head_index: HEAD_INDEX,
            head_hash: sha3(b"ledger entry 40"),
            issuer: node(issuer),
            issued_at_ms: NOW_MS,
        }
        .sign(self.key(issuer))
    }

    fn check(&self, c: &SignedCertificate) -> Result<(), CertificateError> {
        c.check(&self.ctx())
    }
}

/// The holder of `by` hands `token` to broker-1 with `params_json`,
/// `after_ms` after [`PRESENTED_AT_MS`].
fn present(by: u8, token: &Token, params_json: &str, after_ms: u64) -> Presentation {
    Presentation::sign(
        &seed(by),
        token,
        "broker-1",
        params_json,
        PRESENTED_AT_MS + after_ms,
    )
}

/// The canonical text of [`transfer`]: what an honest agent hands over.
const TRANSFER_JSON: &str = r#"{"amount":1200,"currency":"EUR","to_account":"acct-42"}"#;

fn forged_by(token: &Token, by: u8) -> Evidence {
    Evidence::TokenForged {
        token: token.to_bytes(),
        presentation: present(by, token, TRANSFER_JSON, 0),
    }
}

fn modified_by(token: &Token, params_json: &str, by: u8) -> Evidence {
    Evidence::TokenModified {
        token: token.to_bytes(),
        params_json: params_json.into(),
        presentation: present(by, token, params_json, 0),
    }
}

/// Two distinct presentations of `token` by `first` and `second`, a
/// second apart; the token redeemed first is the same bytes.
fn replayed_by(token: &Token, first_index: u64, first: u8, second: u8) -> Evidence {
    Evidence::TokenReplayed {
        token: token.to_bytes(),
        first_index,
        first_token: token.to_bytes(),
        first: present(first, token, TRANSFER_JSON, 0),
        second: present(second, token, TRANSFER_JSON, 1_000),
    }
}

/// agent-7's presentations of `first_token` (redeemed at index 31) and,
/// a second later, of `token`.
fn replayed_of(first_token: &Token, token: &Token) -> Evidence {
    Evidence::TokenReplayed {
        token: token.to_bytes(),
        first_index: 31,
        first_token: first_token.to_bytes(),
        first: present(AGENT_7, first_token, TRANSFER_JSON, 0),
        second: present(AGENT_7, token, TRANSFER_JSON, 1_000),
    }
}

fn acme(actor: &str) -> Subject {
    Subject::Agent {
        tenant: "acme".into(),
        actor: actor.into(),
    }
}

fn transfer() -> Value {
    json!({"amount": 1200, "currency": "EUR", "to_account": "acct-42"})
}

fn drift(sealed: Digest, observed: Digest) -> Evidence {
    Evidence::PolicyDrift {
        location: DriftLocation::Disk,
        policy_version: 1,
        sealed_digest: sealed,
        observed_digest: observed,
    }
}

/// One valid certificate of every kind, each with its issuer.
fn one_of_each(f: &Fixture) -> Vec<SignedCertificate> {
    let genuine = f.genuine_token(f.payload("agent-7", &transfer()));
    let forged = f.forged_token(f.payload("agent-8", &transfer()));
    vec![
        f.cert(
            Subject::Validator(node(2)),
            drift(sha3(b"sealed"), sha3(b"observed")),
            2,
        ),
        f.cert(
            Subject::Validator(node(4)),
            Evidence::LedgerBreak {
                index: 12,
                expected: sha3(b"expected"),
                found: sha3(b"found"),
            },
            4,
        ),
        f.cert(
            Subject::Validator(node(3)),
            Evidence::InvalidShare(f.attested_share(true)),
            1,
        ),
        f.cert(
            Subject::Validator(node(2)),
            Evidence::VoteEquivocation(Equivocation {
                first: f.vote(2, Verdict::Approve),
                second: f.vote(2, Verdict::Reject(vec!["floor-lowered".into()])),
            }),
            1,
        ),
        f.cert(
            acme("agent-7"),
            modified_by(
                &genuine,
                r#"{"amount": 999999, "currency": "EUR", "to_account": "acct-42"}"#,
                AGENT_7,
            ),
            5,
        ),
        f.cert(acme("agent-8"), forged_by(&forged, AGENT_8), 4),
        f.cert(
            acme("agent-7"),
            replayed_by(&genuine, 31, AGENT_7, AGENT_7),
            3,
        ),
        f.cert(
            Subject::Validator(node(2)),
            head_equivocation(f, 2, sha3(b"one head"), 2, sha3(b"another head")),
            5,
        ),
        f.cert(
            Subject::Validator(node(4)),
            Evidence::BatchLifetime(attested_batch(f, 4, 4, 86_400_000)),
            2,
        ),
        f.cert(
            Subject::Validator(node(4)),
            Evidence::LedgerFork(attested_batch(f, 4, 4, 60_000)),
            3,
        ),
    ]
}

/// Validator `a` and validator `b` each sign a drift certificate about
/// themselves at head index 40, with head hashes `ha` and `hb`.
fn head_equivocation(f: &Fixture, a: u64, ha: Digest, b: u64, hb: Digest) -> Evidence {
    let stmt = |n: u64, h: Digest, observed: &[u8]| {
        Box::new(
            Certificate {
                subject: Subject::Validator(node(n)),
                evidence: drift(sha3(b"sealed"), sha3(observed)),
                head_index: HEAD_INDEX,
                head_hash: h,
                issuer: node(n),
                issued_at_ms: NOW_MS,
            }
            .sign(f.key(n)),
        )
    };
    Evidence::HeadEquivocation {
        first: stmt(a, ha, b"first"),
        second: stmt(b, hb, b"second"),
    }
}

#[test]
fn head_equivocation_needs_two_heads_of_one_validator_at_one_index() {
    let f = fixture();
    let same = f.cert(
        Subject::Validator(node(2)),
        head_equivocation(&f, 2, sha3(b"h"), 2, sha3(b"h")),
        1,
    );
    let err = f.check(&same).expect_err("one head twice is no breach");
    assert!(
        matches!(
            &err,
            CertificateError::NoBreach {
                kind: BreachKind::HeadEquivocation,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("both certificates name the same head"),
        "{err}"
    );
    let two = f.cert(
        Subject::Validator(node(2)),
        head_equivocation(&f, 2, sha3(b"h"), 3, sha3(b"g")),
        1,
    );
    let err = f.check(&two).expect_err("two issuers");
    assert!(err.to_string().contains("two issuers, 2 and 3"), "{err}");
    let framed = f.cert(
        Subject::Validator(node(3)),
        head_equivocation(&f, 2, sha3(b"h"), 2, sha3(b"g")),
        1,
    );
    assert!(matches!(
        f.check(&framed),
        Err(CertificateError::SubjectMismatch { .. })
    ));
    // A nested head-equivocation certificate is refused in decoding.
    let nested = Evidence::HeadEquivocation {
        first: Box::new(two.clone()),
        second: Box::new(two),
    };
    let err = Evidence::decode(BreachKind::HeadEquivocation, &nested.encode()).expect_err("nested");
    assert!(
        err.to_string().contains("is itself a head-equivocation"),
        "{err}"
    );
}

// ---- what must pass ----

#[test]
fn every_kind_round_trips_and_checks() {
    let f = fixture();
    let certs = one_of_each(&f);
    let kinds: Vec<BreachKind> = certs.iter().map(|c| c.certificate.kind()).collect();
    assert_eq!(kinds, BreachKind::ALL.to_vec());
    for c in &certs {
        let wire = c.encode();
        assert!(wire.len() <= CERTIFICATE_BYTES_MAX);
        let back = SignedCertificate::decode(&wire).expect("decodes");
        assert_eq!(&back, c, "{}", c.certificate.kind());
        assert_eq!(back.id(), c.id());
        assert_eq!(c.id().0, sha3(&c.certificate.signing_bytes()));
        assert_eq!(&wire[..wire.len() - 64], c.certificate.signing_bytes());
        let kind = c.certificate.kind();
        assert_eq!(
            Evidence::decode(kind, &c.certificate.evidence.encode()).as_ref(),
            Ok(&c.certificate.evidence)
        );
        f.check(&back)
            .unwrap_or_else(|e| panic!("{kind} certificate must check: {e}"));
    }
}

#[test]
fn an_attested_share_round_trips_verifies_and_names_its_signer() {
    let f = fixture();
    let honest = f.attested_share(false);
    assert_eq!(AttestedShare::decode(&honest.encode()), Ok(honest.clone()));
    assert_eq!(honest.verify(&f.membership), Ok(node(3)));
    assert!(honest.share_is_valid(&f.pubkeys));
    let bad = f.attested_share(true);
    assert_eq!(bad.verify(&f.membership), Ok(node(3)));
    assert!(!bad.share_is_valid(&f.pubkeys));
    assert_eq!(bad.share_verdict(&f.pubkeys), Ok(false));
}

#[test]
fn a_replayed_token_exposes_its_nonce_and_first_index() {
    let f = fixture();
    let t = f.genuine_token(f.payload("agent-7", &transfer()));
    let e = replayed_by(&t, 31, AGENT_7, AGENT_7);
    assert_eq!(e.replayed_nonce(), Some((t.payload.nonce, 31)));
    assert_eq!(e.token_bytes(), Some(&t.to_bytes()[..]));
    assert_eq!(drift(Digest::ZERO, Digest::ZERO).replayed_nonce(), None);
}

// ---- signature and membership ----

#[test]
fn a_bad_certificate_signature_is_refused() {
    let f = fixture();
    let mut c = f.cert(
        Subject::Validator(node(2)),
        drift(sha3(b"s"), sha3(b"o")),
        2,
    );
    c.signature.0[5] ^= 0x40;
    let want = CertificateError::BadSignature {
        issuer: node(2),
        identity_key: f.membership[1].identity_key,
        id: c.id(),
    };
    assert_eq!(f.check(&c), Err(want.clone()));
    assert_eq!(c.verify_signature(&f.membership), Err(want));
    // Signed by another member's key: just as bad.
    let mut other = c.clone();
    other.signature = c.certificate.clone().sign(f.key(3)).signature;
    assert!(matches!(
        f.check(&other),
        Err(CertificateError::BadSignature { issuer, .. }) if issuer == node(2)
    ));
}

#[test]
fn an_issuer_outside_the_membership_is_refused() {
    let f = fixture();
    let c = f.cert(
        Subject::Validator(node(2)),
        drift(sha3(b"s"), sha3(b"o")),
        2,
    );
    let without: Vec<Validator> = f
        .membership
        .iter()
        .filter(|v| v.id != node(2))
        .cloned()
        .collect();
    assert_eq!(
        c.verify_signature(&without),
        Err(CertificateError::UnknownIssuer(node(2)))
    );
    let ctx = CheckContext {
        membership: &without,
        ..f.ctx()
    };
    assert_eq!(c.check(&ctx), Err(CertificateError::UnknownIssuer(node(2))));
}

// ---- decoding ----

#[test]
fn decoding_refuses_trailing_bytes_unknown_codes_and_size() {
    let f = fixture();
    let c = f.cert(
        Subject::Validator(node(2)),
        drift(sha3(b"s"), sha3(b"o")),
        2,
    );
    let wire = c.encode();

    let mut long = wire.clone();
    long.push(0);
    assert_eq!(
        SignedCertificate::decode(&long),
        Err(CertificateError::Decode {
            object: CERTIFICATE_OBJECT,
            error: DecodeError::Trailing { count: 1 },
        })
    );
    assert!(matches!(
        SignedCertificate::decode(&wire[..wire.len() - 1]),
        Err(CertificateError::Decode {
            error: DecodeError::Truncated {
                field: "signature",
                ..
            },
            ..
        })
    ));

    // Tag (32) + subject kind (1) + node (8) + two empty strings (8).
    let at = 32 + 1 + 8 + 4 + 4;
    assert_eq!(wire[at], BreachKind::PolicyDrift.code());
    for bad in [0u8, 11, 255] {
        let mut w = wire.clone();
        w[at] = bad;
        assert_eq!(
            SignedCertificate::decode(&w),
            Err(CertificateError::UnknownBreachKind(bad))
        );
    }
    let mut w = wire.clone();
    w[32] = 3;
    assert_eq!(
        SignedCertificate::decode(&w),
        Err(CertificateError::UnknownSubjectKind(3))
    );
    // The drift location is the first evidence byte.
    let mut w = wire.clone();
    w[at + 1 + 4] = 9;
    assert_eq!(
        SignedCertificate::decode(&w),
        Err(CertificateError::UnknownDriftLocation(9))
    );

    let mut w = wire.clone();
    w[..8].copy_from_slice(b"SENATUS/");
    assert!(matches!(
        SignedCertificate::decode(&w),
        Err(CertificateError::Decode {
            error: DecodeError::Tag { .. },
            ..
        })
    ));
    let huge = vec![0u8; CERTIFICATE_BYTES_MAX + 1];
    assert_eq!(
        SignedCertificate::decode(&huge),
        Err(CertificateError::TooLarge {
            object: CERTIFICATE_OBJECT,
            bytes: CERTIFICATE_BYTES_MAX + 1,
            max: CERTIFICATE_BYTES_MAX,
        })
    );
}

#[test]
fn subjects_must_fit_their_kind() {
    let f = fixture();
    let v = f.cert(
        Subject::Validator(node(2)),
        drift(sha3(b"s"), sha3(b"o")),
        2,
    );
    // A validator subject with node id 0.
    let mut w = v.encode();
    w[33..41].copy_from_slice(&0u64.to_be_bytes());
    assert_eq!(
        SignedCertificate::decode(&w),
        Err(CertificateError::BadNodeId {
            field: "subject_node",
            value: 0,
        })
    );
    // An agent subject that also names a node.
    let t = f.forged_token(f.payload("agent-8", &transfer()));
    let a = f.cert(acme("agent-8"), forged_by(&t, AGENT_8), 4);
    let mut w = a.encode();
    w[33..41].copy_from_slice(&2u64.to_be_bytes());
    assert!(matches!(
        SignedCertificate::decode(&w),
        Err(CertificateError::BadSubject { why }) if why.contains("subject_node 2")
    ));
    // An agent subject with an empty actor does not check.
    let empty = f.cert(acme(""), forged_by(&t, AGENT_8), 4);
    assert!(matches!(
        f.check(&empty),
        Err(CertificateError::BadSubject { why }) if why.contains("actor is 0 bytes")
    ));
    assert!(matches!(
        SignedCertificate::decode(&empty.encode()),
        Err(CertificateError::BadSubject { .. })
    ));
}

#[test]
fn oversized_evidence_is_refused_in_decode_and_check() {
    let f = fixture();
    let t = f.forged_token(f.payload("agent-8", &transfer()));
    let presentation = present(AGENT_8, &t, TRANSFER_JSON, 0);
    let presentation_bytes = presentation.encode().len();
    let c = f.cert(
        acme("agent-8"),
        Evidence::TokenForged {
            token: vec![0u8; EVIDENCE_BYTES_MAX],
            presentation,
        },
        4,
    );
    let want = CertificateError::EvidenceTooLarge {
        kind: BreachKind::TokenForged,
        bytes: 4 + EVIDENCE_BYTES_MAX + 4 + presentation_bytes,
    };
    assert_eq!(SignedCertificate::decode(&c.encode()), Err(want.clone()));
    assert_eq!(f.check(&c), Err(want.clone()));
    assert_eq!(
        Evidence::decode(BreachKind::TokenForged, &c.certificate.evidence.encode()),
        Err(want)
    );
}

#[test]
fn evidence_must_decode_for_its_kind() {
    let f = fixture();
    // Token bytes that are not a token.
    let t = f.forged_token(f.payload("agent-8", &transfer()));
    let c = f.cert(
        acme("agent-8"),
        Evidence::TokenForged {
            token: b"not a token".to_vec(),
            presentation: present(AGENT_8, &t, TRANSFER_JSON, 0),
        },
        4,
    );
    assert!(matches!(
        SignedCertificate::decode(&c.encode()),
        Err(CertificateError::Evidence { kind: BreachKind::TokenForged, why }) if why.starts_with("token:")
    ));
    // Drift evidence with a byte missing.
    let e = drift(sha3(b"s"), sha3(b"o")).encode();
    assert!(matches!(
        Evidence::decode(BreachKind::PolicyDrift, &e[..e.len() - 1]),
        Err(CertificateError::EvidenceDecode {
            kind: BreachKind::PolicyDrift,
            error: DecodeError::Truncated {
                field: "observed_digest",
                ..
            },
        })
    ));
    // Ledger-break bytes read as drift: their first byte (0, the top of
    // the index) is no drift location.
    let lb = Evidence::LedgerBreak {
        index: 1,
        expected: sha3(b"e"),
        found: sha3(b"f"),
    }
    .encode();
    assert_eq!(
        Evidence::decode(BreachKind::PolicyDrift, &lb),
        Err(CertificateError::UnknownDriftLocation(0))
    );
}

// ---- kind by kind ----

#[test]
fn drift_must_be_about_the_issuer_and_show_a_difference() {
    let f = fixture();
    let c = f.cert(
        Subject::Validator(node(3)),
        drift(sha3(b"s"), sha3(b"o")),
        2,
    );
    assert_eq!(
        f.check(&c),
        Err(CertificateError::SubjectMismatch {
            kind: BreachKind::PolicyDrift,
            subject: Subject::Validator(node(3)),
            expected: Subject::Validator(node(2)),
        })
    );
    let same = f.cert(
        Subject::Validator(node(2)),
        drift(sha3(b"s"), sha3(b"s")),
        2,
    );
    assert!(matches!(
        f.check(&same),
        Err(CertificateError::NoBreach { kind: BreachKind::PolicyDrift, why })
            if why.contains(&sha3(b"s").to_hex())
    ));
}

#[test]
fn a_ledger_break_needs_an_index_in_the_ledger_and_different_hashes() {
    let f = fixture();
    let lb = |index, expected, found| {
        f.cert(
            Subject::Validator(node(4)),
            Evidence::LedgerBreak {
                index,
                expected,
                found,
            },
            4,
        )
    };
    assert!(matches!(
        f.check(&lb(12, sha3(b"h"), sha3(b"h"))),
        Err(CertificateError::NoBreach {
            kind: BreachKind::LedgerBreak,
            ..
        })
    ));
    for index in [0, HEAD_INDEX + 1] {
        assert!(matches!(
            f.check(&lb(index, sha3(b"e"), sha3(b"f"))),
            Err(CertificateError::Evidence { kind: BreachKind::LedgerBreak, why })
                if why.contains(&format!("index {index} "))
        ));
    }
    f.check(&lb(HEAD_INDEX, sha3(b"e"), sha3(b"f")))
        .expect("the head itself may be broken");
    assert!(matches!(
        f.check(&f.cert(
            Subject::Validator(node(1)),
            Evidence::LedgerBreak {
                index: 3,
                expected: sha3(b"e"),
                found: sha3(b"f")
            },
            4,
        )),
        Err(CertificateError::SubjectMismatch { .. })
    ));
}

#[test]
fn a_share_that_verifies_is_no_breach() {
    let f = fixture();
    let c = f.cert(
        Subject::Validator(node(3)),
        Evidence::InvalidShare(f.attested_share(false)),
        1,
    );
    assert!(matches!(
        f.check(&c),
        Err(CertificateError::NoBreach { kind: BreachKind::InvalidShare, why })
            if why.contains("signer 3 verifies")
    ));
}

#[test]
fn an_invalid_share_needs_the_signers_own_attestation() {
    let f = fixture();
    let honest = f.attested_share(true);
    // The coordinator (1) signs the attestation itself: forged.
    let forged = AttestedShare::sign(honest.request.clone(), honest.share, f.key(1));
    let c = f.cert(
        Subject::Validator(node(3)),
        Evidence::InvalidShare(forged.clone()),
        1,
    );
    let want = CertificateError::BadAttestation {
        signer: node(3),
        identity_key: f.membership[2].identity_key,
    };
    assert_eq!(f.check(&c), Err(want.clone()));
    assert_eq!(forged.verify(&f.membership), Err(want));
    // A genuine attestation with a changed request no longer verifies.
    let mut moved = honest.clone();
    moved.request.message.push(b'!');
    assert!(matches!(
        moved.verify(&f.membership),
        Err(CertificateError::BadAttestation { .. })
    ));
    // The subject must be the share's signer.
    let c = f.cert(
        Subject::Validator(node(2)),
        Evidence::InvalidShare(honest.clone()),
        1,
    );
    assert_eq!(
        f.check(&c),
        Err(CertificateError::SubjectMismatch {
            kind: BreachKind::InvalidShare,
            subject: Subject::Validator(node(2)),
            expected: Subject::Validator(node(3)),
        })
    );
    // A signer outside the membership.
    let without: Vec<Validator> = f
        .membership
        .iter()
        .filter(|v| v.id != node(3))
        .cloned()
        .collect();
    assert_eq!(
        honest.verify(&without),
        Err(CertificateError::UnknownSigner(node(3)))
    );
}

#[test]
fn an_invalid_share_must_be_judgeable_against_its_request() {
    let f = fixture();
    let honest = f.attested_share(true);
    // The share claims another commitment than the request gives signer 3.
    let mut share = honest.share;
    share.id.seq += 1;
    let relabelled = AttestedShare::sign(honest.request.clone(), share, f.key(3));
    let c = f.cert(
        Subject::Validator(node(3)),
        Evidence::InvalidShare(relabelled),
        1,
    );
    assert!(matches!(
        f.check(&c),
        Err(CertificateError::Evidence { kind: BreachKind::InvalidShare, why })
            if why.contains("labelled with commitment")
    ));
    // A request below the threshold: an honest signer never answers it.
    let mut short = honest.request.clone();
    short.commitments.retain(|c| c.signer != node(1));
    let short = AttestedShare::sign(short, honest.share, f.key(3));
    assert!(matches!(
        short.share_verdict(&f.pubkeys),
        Err(why) if why.contains("fewer than the threshold 3")
    ));
    assert!(!short.share_is_valid(&f.pubkeys));
    // Malformed attested-share bytes.
    let mut bytes = honest.encode();
    bytes.push(0);
    assert!(matches!(
        AttestedShare::decode(&bytes),
        Err(CertificateError::EvidenceDecode {
            kind: BreachKind::InvalidShare,
            error: DecodeError::Trailing { count: 1 },
        })
    ));
    let mut bytes = honest.encode();
    bytes[4] ^= 0xff;
    assert!(matches!(
        AttestedShare::decode(&bytes),
        Err(CertificateError::Wire(_))
    ));
}

#[test]
fn vote_equivocation_needs_two_different_votes_of_one_voter() {
    let f = fixture();
    let approve = f.vote(2, Verdict::Approve);
    let same = f.cert(
        Subject::Validator(node(2)),
        Evidence::VoteEquivocation(Equivocation {
            first: approve.clone(),
            second: approve.clone(),
        }),
        1,
    );
    assert!(matches!(
        f.check(&same),
        Err(CertificateError::NoBreach { kind: BreachKind::VoteEquivocation, why })
            if why.contains("identical")
    ));
    let two_voters = f.cert(
        Subject::Validator(node(2)),
        Evidence::VoteEquivocation(Equivocation {
            first: approve.clone(),
            second: f.vote(4, Verdict::Recuse),
        }),
        1,
    );
    assert!(matches!(
        f.check(&two_voters),
        Err(CertificateError::NoBreach { kind: BreachKind::VoteEquivocation, why })
            if why.contains("two voters, 2 and 4")
    ));
    // A vote whose signature is not the voter's.
    let mut forged = f.vote(2, Verdict::Recuse);
    forged.signature = Sig64([1u8; 64]);
    let c = f.cert(
        Subject::Validator(node(2)),
        Evidence::VoteEquivocation(Equivocation {
            first: approve.clone(),
            second: forged,
        }),
        1,
    );
    assert!(matches!(
        f.check(&c),
        Err(CertificateError::Evidence { kind: BreachKind::VoteEquivocation, why })
            if why.starts_with("second vote")
    ));
    // The subject must be the voter.
    let c = f.cert(
        Subject::Validator(node(1)),
        Evidence::VoteEquivocation(Equivocation {
            first: approve,
            second: f.vote(2, Verdict::Recuse),
        }),
        1,
    );
    assert!(matches!(
        f.check(&c),
        Err(CertificateError::SubjectMismatch { expected: Subject::Validator(n), .. }) if n == node(2)
    ));
}

#[test]
fn a_token_that_verifies_is_not_forged() {
    let f = fixture();
    let t = f.genuine_token(f.payload("agent-7", &transfer()));
    let c = f.cert(acme("agent-7"), forged_by(&t, AGENT_7), 4);
    assert_eq!(
        f.check(&c),
        Err(CertificateError::NoBreach {
            kind: BreachKind::TokenForged,
            why: "the token verifies".into(),
        })
    );
}

#[test]
fn a_token_of_an_unknown_epoch_is_not_proof_of_forgery() {
    let f = fixture();
    let mut p = f.payload("agent-7", &transfer());
    p.epoch = Epoch(9);
    let c = f.cert(acme("agent-7"), forged_by(&f.forged_token(p), AGENT_7), 4);
    assert!(matches!(
        f.check(&c),
        Err(CertificateError::Evidence { kind: BreachKind::TokenForged, why })
            if why.contains("epoch 9")
    ));
}

#[test]
fn token_modified_needs_params_that_differ() {
    let f = fixture();
    let t = f.genuine_token(f.payload("agent-7", &transfer()));
    let modified =
        |params_json: &str| f.cert(acme("agent-7"), modified_by(&t, params_json, AGENT_7), 5);
    // The same params, in another key order and spacing: canonical JSON
    // gives the same digest.
    for same in [
        r#"{"amount":1200,"currency":"EUR","to_account":"acct-42"}"#,
        r#"{ "to_account": "acct-42", "currency": "EUR", "amount": 1200 }"#,
    ] {
        assert!(matches!(
            f.check(&modified(same)),
            Err(CertificateError::NoBreach {
                kind: BreachKind::TokenModified,
                ..
            })
        ));
    }
    // Not JSON, or not an object: cannot be what was decided.
    f.check(&modified("{\"amount\": 1200,"))
        .expect("unparseable is modified");
    f.check(&modified("[1200]"))
        .expect("not an object is modified");
    // A forged token is not a modified one.
    let forged = f.forged_token(f.payload("agent-7", &transfer()));
    let c = f.cert(acme("agent-7"), modified_by(&forged, "{}", AGENT_7), 5);
    assert!(matches!(
        f.check(&c),
        Err(CertificateError::Evidence { kind: BreachKind::TokenModified, why })
            if why.contains("does not verify")
    ));
}

#[test]
fn a_token_certificate_must_name_the_tokens_agent() {
    let f = fixture();
    let t = f.forged_token(f.payload("agent-8", &transfer()));
    for (subject, evidence) in [
        (acme("agent-7"), forged_by(&t, AGENT_8)),
        (
            Subject::Agent {
                tenant: "globex".into(),
                actor: "agent-8".into(),
            },
            forged_by(&t, AGENT_8),
        ),
        (Subject::Validator(node(4)), forged_by(&t, AGENT_8)),
    ] {
        let c = f.cert(subject.clone(), evidence, 4);
        assert_eq!(
            f.check(&c),
            Err(CertificateError::SubjectMismatch {
                kind: BreachKind::TokenForged,
                subject,
                expected: acme("agent-8"),
            })
        );
    }
}

#[test]
fn a_replay_needs_a_genuine_token_and_a_first_index_in_the_ledger() {
    let f = fixture();
    let genuine = f.genuine_token(f.payload("agent-7", &transfer()));
    for first_index in [0, HEAD_INDEX + 1] {
        let c = f.cert(
            acme("agent-7"),
            replayed_by(&genuine, first_index, AGENT_7, AGENT_7),
            3,
        );
        assert!(matches!(
            f.check(&c),
            Err(CertificateError::Evidence { kind: BreachKind::TokenReplayed, why })
                if why.contains(&format!("first_index {first_index} "))
        ));
    }
    let forged = f.forged_token(f.payload("agent-7", &transfer()));
    let c = f.cert(
        acme("agent-7"),
        replayed_by(&forged, 3, AGENT_7, AGENT_7),
        3,
    );
    assert!(matches!(
        f.check(&c),
        Err(CertificateError::Evidence { kind: BreachKind::TokenReplayed, why })
            if why.contains("does not verify")
    ));
}

#[test]
fn errors_print_the_bad_values() {
    let e = CertificateError::SubjectMismatch {
        kind: BreachKind::PolicyDrift,
        subject: Subject::Validator(node(3)),
        expected: Subject::Validator(node(2)),
    };
    assert_eq!(
        e.to_string(),
        "policy-drift certificate names validator 3, but its evidence names validator 2"
    );
    let e = CertificateError::UnknownBreachKind(9);
    assert!(e.to_string().contains('9'), "{e}");
    let e = CertificateError::EvidenceTooLarge {
        kind: BreachKind::TokenForged,
        bytes: 70_000,
    };
    assert!(
        e.to_string().contains("70000") && e.to_string().contains("65536"),
        "{e}"
    );
}

/// Leader `leader`'s attestation of a batch at ledger index 39 whose tokens
/// live `lifetime_ms`, signed with `signer`'s identity key.
fn attested_batch(f: &Fixture, leader: u64, signer: u64, lifetime_ms: u64) -> AttestedBatch {
    attested_at(f, leader, signer, 39, lifetime_ms)
}

fn attested_at(
    f: &Fixture,
    leader: u64,
    signer: u64,
    index: u64,
    lifetime_ms: u64,
) -> AttestedBatch {
    use ed25519_dalek::Signer as _;
    AttestedBatch::new(
        node(leader),
        index,
        sha3(b"a decision entry"),
        (NOW_MS, NOW_MS + lifetime_ms),
        |bytes| f.key(signer).sign(bytes).to_bytes(),
    )
}

#[test]
fn a_leader_attesting_a_lifetime_no_constitution_allows_is_convicted_by_its_own_signature() {
    let f = fixture();
    let max = senatus_genesis::policy::TOKEN_LIFETIME_MS_HARD_MAX;
    let day = attested_batch(&f, 5, 5, 86_400_000);
    let c = f.cert(
        Subject::Validator(node(5)),
        Evidence::BatchLifetime(day.clone()),
        1,
    );
    assert_eq!(f.check(&c), Ok(()));
    let back = SignedCertificate::decode(&c.encode()).expect("decodes");
    assert_eq!(back, c);

    // Within what some constitution may allow: no breach to anyone else.
    let hour = attested_batch(&f, 5, 5, max);
    let c = f.cert(
        Subject::Validator(node(5)),
        Evidence::BatchLifetime(hour),
        1,
    );
    assert!(
        matches!(
            f.check(&c),
            Err(CertificateError::NoBreach {
                kind: BreachKind::BatchLifetime,
                ..
            })
        ),
        "{:?}",
        f.check(&c)
    );
    // An attestation the leader did not sign frames nobody.
    let framed = attested_batch(&f, 5, 1, 86_400_000);
    let c = f.cert(
        Subject::Validator(node(5)),
        Evidence::BatchLifetime(framed),
        1,
    );
    assert!(
        matches!(f.check(&c), Err(CertificateError::BadAttestation { .. })),
        "{:?}",
        f.check(&c)
    );
    // The subject must be the attesting leader.
    let c = f.cert(
        Subject::Validator(node(4)),
        Evidence::BatchLifetime(day.clone()),
        1,
    );
    assert!(matches!(
        f.check(&c),
        Err(CertificateError::SubjectMismatch { .. })
    ));
    // Malformed evidence: short, long, leader 0.
    let bytes = day.encode();
    assert_eq!(
        bytes.len(),
        senatus_quorum::certificate::ATTESTED_BATCH_BYTES
    );
    for bad in [
        &bytes[..bytes.len() - 1],
        &[bytes.as_slice(), &[0]].concat()[..],
    ] {
        assert!(Evidence::decode(BreachKind::BatchLifetime, bad).is_err());
    }
    let mut zero = bytes.clone();
    zero[..8].fill(0);
    assert!(matches!(
        Evidence::decode(BreachKind::BatchLifetime, &zero),
        Err(CertificateError::Evidence {
            kind: BreachKind::BatchLifetime,
            ..
        })
    ));
}

#[test]
fn a_forked_head_needs_the_leaders_signature_and_an_index_the_issuer_holds() {
    let f = fixture();
    let head = attested_batch(&f, 5, 5, 60_000);
    let c = f.cert(
        Subject::Validator(node(5)),
        Evidence::LedgerFork(head.clone()),
        2,
    );
    // The public checks pass; the hash is judged against each receiver's
    // own ledger (replica local facts, node/tests/byzantine.rs).
    assert_eq!(f.check(&c), Ok(()));
    let framed = attested_batch(&f, 5, 2, 60_000);
    let c = f.cert(Subject::Validator(node(5)), Evidence::LedgerFork(framed), 2);
    assert!(matches!(
        f.check(&c),
        Err(CertificateError::BadAttestation { .. })
    ));
    let ahead = attested_at(&f, 5, 5, HEAD_INDEX + 1, 60_000);
    let c = f.cert(Subject::Validator(node(5)), Evidence::LedgerFork(ahead), 2);
    assert!(
        matches!(
            f.check(&c),
            Err(CertificateError::Evidence {
                kind: BreachKind::LedgerFork,
                ..
            })
        ),
        "{:?}",
        f.check(&c)
    );
}

// ---- an agent is certified by its own presentations only ----

/// The reason an evidence refusal of `kind` gives, or a panic naming what
/// came instead.
fn invalid_why(f: &Fixture, c: &SignedCertificate, kind: BreachKind) -> String {
    match f.check(c) {
        Err(CertificateError::Evidence { kind: k, why }) if k == kind => why,
        other => panic!("expected invalid {kind} evidence, got {other:?}"),
    }
}

/// Every way a presentation of `t` with `params_json` is not agent-7's own
/// hand-off of that token, with the error `verify_for` gives it.
fn not_agent_7s(
    f: &Fixture,
    t: &Token,
    params_json: &str,
) -> Vec<(&'static str, Presentation, PresentationError)> {
    let elsewhere = f.forged_token(f.payload("agent-7", &json!({"amount": 1})));
    let mut forged_signature = present(AGENT_7, t, params_json, 0);
    forged_signature.signature[7] ^= 0x10;
    vec![
        (
            "by another registered agent",
            present(AGENT_9, t, params_json, 0),
            PresentationError::OtherAgent {
                key: public(AGENT_9),
                tenant: "acme".into(),
                actor: "agent-7".into(),
                agent: Some("agent-7".into()),
            },
        ),
        (
            "by an unregistered key",
            present(OUTSIDER, t, params_json, 0),
            PresentationError::Auth(AuthError::UnknownKey {
                key: public(OUTSIDER),
            }),
        ),
        (
            "by a broker",
            present(BROKER_1, t, params_json, 0),
            PresentationError::Auth(AuthError::WrongRole {
                key: public(BROKER_1),
                name: "broker-1".into(),
                role: Role::Broker,
                needs: "agent".into(),
            }),
        ),
        (
            "of another token",
            present(AGENT_7, &elsewhere, params_json, 0),
            PresentationError::OtherToken {
                presented: token_wire_digest(&elsewhere),
                token: token_wire_digest(t),
            },
        ),
        (
            "with a signature that does not verify",
            forged_signature,
            PresentationError::Auth(AuthError::BadSignature {
                key: public(AGENT_7),
            }),
        ),
    ]
}

#[test]
fn a_token_certificate_needs_the_presentation_of_the_agent_the_token_names() {
    let f = fixture();
    let genuine = f.genuine_token(f.payload("agent-7", &transfer()));
    let forged = f.forged_token(f.payload("agent-7", &transfer()));
    let other_params = r#"{"amount":999999,"currency":"EUR","to_account":"acct-42"}"#;
    // With agent-7's own presentations each of them holds.
    for evidence in [
        modified_by(&genuine, other_params, AGENT_7),
        forged_by(&forged, AGENT_7),
        replayed_by(&genuine, 31, AGENT_7, AGENT_7),
    ] {
        let kind = evidence.kind();
        f.check(&f.cert(acme("agent-7"), evidence, 2))
            .unwrap_or_else(|e| panic!("{kind} with agent-7's presentations: {e}"));
    }
    for (case, bad, want) in not_agent_7s(&f, &genuine, other_params) {
        let c = f.cert(
            acme("agent-7"),
            Evidence::TokenModified {
                token: genuine.to_bytes(),
                params_json: other_params.into(),
                presentation: bad,
            },
            2,
        );
        assert_eq!(
            invalid_why(&f, &c, BreachKind::TokenModified),
            format!("presentation: {want}"),
            "token-modified, presentation {case}"
        );
    }
    for (case, bad, want) in not_agent_7s(&f, &forged, TRANSFER_JSON) {
        let c = f.cert(
            acme("agent-7"),
            Evidence::TokenForged {
                token: forged.to_bytes(),
                presentation: bad,
            },
            2,
        );
        assert_eq!(
            invalid_why(&f, &c, BreachKind::TokenForged),
            format!("presentation: {want}"),
            "token-forged, presentation {case}"
        );
    }
    let honest = present(AGENT_7, &genuine, TRANSFER_JSON, 5_000);
    for (case, bad, want) in not_agent_7s(&f, &genuine, TRANSFER_JSON) {
        for (first, second, which) in [
            (bad.clone(), honest.clone(), "first"),
            (honest.clone(), bad.clone(), "second"),
        ] {
            let c = f.cert(
                acme("agent-7"),
                Evidence::TokenReplayed {
                    token: genuine.to_bytes(),
                    first_index: 31,
                    first_token: genuine.to_bytes(),
                    first,
                    second,
                },
                2,
            );
            assert_eq!(
                invalid_why(&f, &c, BreachKind::TokenReplayed),
                format!("{which} presentation: presentation: {want}"),
                "token-replayed, {which} presentation {case}"
            );
        }
    }
}

#[test]
fn a_receiver_whose_registry_lacks_the_agent_certifies_nobody() {
    // The agent was removed (or re-keyed) by amendment: its presentations
    // no longer verify under the receiver's sealed registry.
    let f = fixture();
    let genuine = f.genuine_token(f.payload("agent-7", &transfer()));
    let c = f.cert(
        acme("agent-7"),
        replayed_by(&genuine, 31, AGENT_7, AGENT_7),
        2,
    );
    let without = Registry::new(
        f.registry
            .identities()
            .iter()
            .filter(|i| i.name != "agent-7")
            .cloned()
            .collect(),
    )
    .expect("registry");
    let ctx = CheckContext {
        registry: &without,
        ..f.ctx()
    };
    assert_eq!(
        c.check(&ctx),
        Err(CertificateError::Evidence {
            kind: BreachKind::TokenReplayed,
            why: format!(
                "first presentation: presentation: {}",
                PresentationError::Auth(AuthError::UnknownKey {
                    key: public(AGENT_7)
                })
            ),
        })
    );
    assert_eq!(f.check(&c), Ok(()));
}

#[test]
fn token_modified_needs_the_params_text_the_agent_presented() {
    let f = fixture();
    let genuine = f.genuine_token(f.payload("agent-7", &transfer()));
    let other_params = r#"{"amount":999999,"currency":"EUR","to_account":"acct-42"}"#;
    // The agent presented the decided params; the issuer claims others.
    // And the agent presented other params; the issuer quotes them in
    // another spelling (the same canonical params, not the same text).
    for (presented, given) in [
        (TRANSFER_JSON, other_params),
        (
            other_params,
            r#"{"to_account":"acct-42","currency":"EUR","amount":999999}"#,
        ),
    ] {
        let c = f.cert(
            acme("agent-7"),
            Evidence::TokenModified {
                token: genuine.to_bytes(),
                params_json: given.into(),
                presentation: present(AGENT_7, &genuine, presented, 0),
            },
            5,
        );
        assert_eq!(
            invalid_why(&f, &c, BreachKind::TokenModified),
            format!(
                "the params given hash to {}, the agent presented params hashing to {}",
                sha3(given.as_bytes()),
                sha3(presented.as_bytes())
            ),
            "presented {presented}, given {given}"
        );
    }
}

#[test]
fn one_presentation_sent_twice_is_a_retry_not_a_replay() {
    let f = fixture();
    let genuine = f.genuine_token(f.payload("agent-7", &transfer()));
    let once = present(AGENT_7, &genuine, TRANSFER_JSON, 0);
    let twice = |first: Presentation, second: Presentation| {
        f.cert(
            acme("agent-7"),
            Evidence::TokenReplayed {
                token: genuine.to_bytes(),
                first_index: 31,
                first_token: genuine.to_bytes(),
                first,
                second,
            },
            3,
        )
    };
    assert_eq!(
        f.check(&twice(once.clone(), once.clone())),
        Err(CertificateError::NoBreach {
            kind: BreachKind::TokenReplayed,
            why: "one presentation, sent twice: a broker's retry or replay, not the agent's".into(),
        })
    );
    // Another agent's presentation sent twice is refused for whose it is,
    // before it could pass as a retry.
    let stolen = present(AGENT_9, &genuine, TRANSFER_JSON, 0);
    let why = invalid_why(
        &f,
        &twice(stolen.clone(), stolen),
        BreachKind::TokenReplayed,
    );
    assert!(
        why.starts_with("first presentation: presentation: key"),
        "{why}"
    );
    // Two hand-offs differing in one field each are two presentations:
    // the agent presented the token twice.
    let later = present(AGENT_7, &genuine, TRANSFER_JSON, 1);
    let elsewhere = Presentation::sign(
        &seed(AGENT_7),
        &genuine,
        "broker-2",
        TRANSFER_JSON,
        PRESENTED_AT_MS,
    );
    let spaced = present(
        AGENT_7,
        &genuine,
        r#"{"amount": 1200, "currency": "EUR", "to_account": "acct-42"}"#,
        0,
    );
    for second in [later, elsewhere, spaced] {
        assert_ne!(second.digest(), once.digest());
        assert_eq!(f.check(&twice(once.clone(), second)), Ok(()));
    }
}

/// `c`'s certificate with `evidence` in place of its own, as wire bytes
/// (signed again by its issuer, so only decoding can refuse it).
fn wire_with_evidence(f: &Fixture, c: &SignedCertificate, evidence: &[u8]) -> Vec<u8> {
    use ed25519_dalek::Signer as _;
    let cert = &c.certificate;
    let Subject::Agent { tenant, actor } = &cert.subject else {
        panic!("an agent certificate");
    };
    let mut e = Encoder::new(CERTIFICATE_OBJECT, CERTIFICATE_VERSION);
    e.u8(2)
        .u64(0)
        .str(tenant)
        .str(actor)
        .u8(cert.kind().code())
        .bytes(evidence)
        .u64(cert.head_index)
        .digest(&cert.head_hash)
        .u64(cert.issuer.get())
        .u64(cert.issued_at_ms);
    let signing = e.finish();
    let signature = f.key(cert.issuer.get()).sign(&signing).to_bytes();
    [signing, signature.to_vec()].concat()
}

/// The reason of an evidence refusal of `kind` that starts with `starts`,
/// or a panic naming what came instead.
fn malformed(e: CertificateError, kind: BreachKind, starts: &str) -> String {
    match e {
        CertificateError::Evidence { kind: k, why } if k == kind && why.starts_with(starts) => why,
        other => panic!("expected {kind} evidence starting {starts:?}, got {other:?}"),
    }
}

/// Tagless evidence fields (17.3): each `Ok` is a `bytes` field, each
/// `Err` a raw `u64`.
fn evidence_fields(fields: &[Result<&[u8], u64>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        match f {
            Ok(b) => {
                out.extend_from_slice(&(b.len() as u32).to_be_bytes());
                out.extend_from_slice(b);
            }
            Err(v) => out.extend_from_slice(&v.to_be_bytes()),
        }
    }
    out
}

#[test]
fn a_presentation_that_does_not_decode_is_refused_at_decode() {
    let f = fixture();
    let genuine = f.genuine_token(f.payload("agent-7", &transfer()));
    let forged = f.forged_token(f.payload("agent-7", &transfer()));
    let tf = forged.to_bytes();
    let tg = genuine.to_bytes();
    let p = present(AGENT_7, &forged, TRANSFER_JSON, 0).encode();
    let q = present(AGENT_7, &genuine, TRANSFER_JSON, 0).encode();
    let q2 = present(AGENT_7, &genuine, TRANSFER_JSON, 1).encode();
    let short = &p[..p.len() - 1];
    let long = [p.as_slice(), &[0]].concat();

    let forgery = f.cert(acme("agent-7"), forged_by(&forged, AGENT_7), 4);
    let replay = f.cert(
        acme("agent-7"),
        replayed_by(&genuine, 31, AGENT_7, AGENT_7),
        4,
    );
    let modified = f.cert(acme("agent-7"), modified_by(&genuine, "{}", AGENT_7), 4);
    // The hand-built layout is the real one.
    for c in [&forgery, &replay, &modified] {
        assert_eq!(
            wire_with_evidence(&f, c, &c.certificate.evidence.encode()),
            c.encode()
        );
        assert_eq!(SignedCertificate::decode(&c.encode()).as_ref(), Ok(c));
    }

    let refused = |c: &SignedCertificate, evidence: Vec<u8>| {
        SignedCertificate::decode(&wire_with_evidence(&f, c, &evidence))
            .expect_err("refused at decode")
    };
    // Truncated inside the presentation: its signature is a byte short.
    let why = malformed(
        refused(&forgery, evidence_fields(&[Ok(&tf), Ok(short)])),
        BreachKind::TokenForged,
        "presentation: presentation does not decode: truncated",
    );
    assert!(why.contains("reading signature"), "{why}");
    // A byte after the presentation, inside its length.
    let why = malformed(
        refused(&forgery, evidence_fields(&[Ok(&tf), Ok(&long)])),
        BreachKind::TokenForged,
        "presentation: presentation does not decode:",
    );
    assert!(why.contains("1 trailing bytes"), "{why}");
    // The same for each presentation of the other kinds.
    malformed(
        refused(
            &modified,
            evidence_fields(&[Ok(&tg), Ok(b"{}"), Ok(&q[..q.len() - 1])]),
        ),
        BreachKind::TokenModified,
        "presentation: presentation does not decode: truncated",
    );
    malformed(
        refused(
            &replay,
            evidence_fields(&[Ok(&tg), Err(31), Ok(&tg), Ok(&q[..q.len() - 1]), Ok(&q2)]),
        ),
        BreachKind::TokenReplayed,
        "first_presentation: presentation does not decode: truncated",
    );
    malformed(
        refused(
            &replay,
            evidence_fields(&[
                Ok(&tg),
                Err(31),
                Ok(&tg),
                Ok(&q),
                Ok(&[q2.as_slice(), &[0]].concat()),
            ]),
        ),
        BreachKind::TokenReplayed,
        "second_presentation: presentation does not decode:",
    );
    // A first token a byte short, or with a byte after it inside its
    // length: not a token.
    for first_token in [&tg[..tg.len() - 1], &[tg.as_slice(), &[0]].concat()[..]] {
        malformed(
            refused(
                &replay,
                evidence_fields(&[Ok(&tg), Err(31), Ok(first_token), Ok(&q), Ok(&q2)]),
            ),
            BreachKind::TokenReplayed,
            "first_token: ",
        );
    }
    // A byte after the last evidence field.
    let mut trailing = evidence_fields(&[Ok(&tf), Ok(&p)]);
    trailing.push(0);
    assert_eq!(
        refused(&forgery, trailing),
        CertificateError::EvidenceDecode {
            kind: BreachKind::TokenForged,
            error: DecodeError::Trailing { count: 1 },
        }
    );
    // Version 1 evidence, without presentations, is refused: no field.
    for (c, kind, evidence, field) in [
        (
            &forgery,
            BreachKind::TokenForged,
            evidence_fields(&[Ok(&tf)]),
            "presentation",
        ),
        (
            &replay,
            BreachKind::TokenReplayed,
            evidence_fields(&[Ok(&tg), Err(31)]),
            "first_token",
        ),
    ] {
        assert!(
            matches!(
                refused(c, evidence),
                CertificateError::EvidenceDecode {
                    kind: k,
                    error: DecodeError::Truncated { field: f, .. },
                } if k == kind && f == field
            ),
            "{kind}"
        );
    }
    // Token-replayed evidence without the first token (the two
    // presentations right after first_index): the first presentation is
    // read as the first token, and is not one.
    malformed(
        refused(
            &replay,
            evidence_fields(&[Ok(&tg), Err(31), Ok(&q), Ok(&q2)]),
        ),
        BreachKind::TokenReplayed,
        "first_token: ",
    );
    // And a version 1 certificate is refused by its tag.
    let mut v1 = forgery.encode();
    v1[..32].copy_from_slice(b"senatus/shutdown-certificate/v1\0");
    assert!(matches!(
        SignedCertificate::decode(&v1),
        Err(CertificateError::Decode {
            error: DecodeError::Tag { .. },
            ..
        })
    ));
}

/// A presentation binds the token's wire bytes (PROTOCOL 10.3): whoever
/// holds a genuine token together with the agent's presentation of it (the
/// broker it was handed to, anyone reading the Redemption entry) and alters
/// the token's signature or proof holds no presentation of the altered
/// token. A leader refuses it at admission (`other-token`, nobody
/// certified), and a `token-forged` certificate built on it is invalid.
#[test]
fn a_genuine_token_with_an_altered_signature_frames_nobody() {
    let f = fixture();
    let genuine = f.genuine_token(f.payload("agent-7", &transfer()));
    // agent-7 hands its genuine token to broker-1, honestly.
    let handed = present(AGENT_7, &genuine, TRANSFER_JSON, 0);
    assert!(
        handed
            .admit(
                &f.registry,
                &genuine,
                "broker-1",
                TRANSFER_JSON,
                PRESENTED_AT_MS,
                120_000
            )
            .is_ok()
    );
    // Whoever holds both alters the token's signature or its proof.
    let mut bad_signature = genuine.clone();
    bad_signature.signature[40] ^= 1;
    let mut bad_proof = genuine.clone();
    bad_proof.root = sha3(b"another root");
    for (case, altered) in [("signature", bad_signature), ("proof", bad_proof)] {
        // The same payload, and a forgery: the token-forged check would
        // hold for it with a presentation of it.
        assert_eq!(altered.digest(), genuine.digest(), "{case}");
        assert!(
            f.broker.verify_receipt_token(altered.clone()).is_err(),
            "{case}"
        );
        let want = PresentationError::OtherToken {
            presented: token_wire_digest(&genuine),
            token: token_wire_digest(&altered),
        };
        // At admission: not a presentation of the altered token.
        assert_eq!(
            handed.admit(
                &f.registry,
                &altered,
                "broker-1",
                TRANSFER_JSON,
                PRESENTED_AT_MS,
                120_000
            ),
            Err(want.clone()),
            "{case}"
        );
        // In a certificate: invalid evidence, nobody certified.
        let c = f.cert(
            acme("agent-7"),
            Evidence::TokenForged {
                token: altered.to_bytes(),
                presentation: handed.clone(),
            },
            4,
        );
        assert_eq!(
            f.check(&c),
            Err(CertificateError::Evidence {
                kind: BreachKind::TokenForged,
                why: format!("presentation: {want}"),
            }),
            "agent-7 is certified for a forgery it never presented ({case})"
        );
    }
}

// ---- token-replayed: the first token as redeemed ----

/// A reissued token (the same payload under another genuine signature:
/// FROST signatures are randomized) is the same decision and the same
/// nonce: an agent that presents the reissue after the first was redeemed
/// presented that nonce twice. Each presentation is checked against its
/// own token.
#[test]
fn a_replay_of_a_reissued_token_holds_with_the_first_token_as_redeemed() {
    let f = fixture();
    let payload = f.payload("agent-7", &transfer());
    let genuine = f.genuine_token(payload.clone());
    let reissued = f.signed_by(payload, &[1, 2, 4], 17);
    assert_eq!(reissued.payload, genuine.payload);
    assert_ne!(reissued.signature, genuine.signature);
    assert_ne!(token_wire_digest(&reissued), token_wire_digest(&genuine));
    for t in [&genuine, &reissued] {
        f.broker
            .verify_receipt_token(t.clone())
            .expect("both are genuine");
    }
    // A presentation of one is not a presentation of the other.
    assert_eq!(
        present(AGENT_7, &genuine, TRANSFER_JSON, 0)
            .verify_for(&f.registry, &reissued)
            .map_err(|e| e.code()),
        Err("other-token")
    );
    // Either one redeemed first, the other presented after it.
    for (first, second) in [(&genuine, &reissued), (&reissued, &genuine)] {
        let evidence = replayed_of(first, second);
        assert_eq!(evidence.replayed_nonce(), Some((genuine.payload.nonce, 31)));
        let c = f.cert(acme("agent-7"), evidence, 3);
        assert_eq!(SignedCertificate::decode(&c.encode()).as_ref(), Ok(&c));
        assert_eq!(f.check(&c), Ok(()));
    }
}

#[test]
fn a_first_token_of_another_decision_is_refused() {
    let f = fixture();
    let genuine = f.genuine_token(f.payload("agent-7", &transfer()));
    // Another decision of the same agent, genuinely signed: other params,
    // and one at another position (so another nonce).
    let other_params = f.genuine_token(f.payload("agent-7", &json!({"amount": 1})));
    let mut at_1 = f.payload("agent-7", &transfer());
    at_1.position = 1;
    at_1.decision_id = decision_id(LedgerIndex(9), &at_1.entry_hash, 1);
    at_1.nonce = derive_nonce(&at_1.entry_hash, 1);
    let other_nonce = f.genuine_token(at_1);
    for (case, first) in [
        ("other params", other_params),
        ("another nonce", other_nonce),
    ] {
        assert_ne!(first.payload, genuine.payload, "{case}");
        f.broker
            .verify_receipt_token(first.clone())
            .expect("genuine");
        let c = f.cert(acme("agent-7"), replayed_of(&first, &genuine), 3);
        assert_eq!(
            f.check(&c),
            Err(CertificateError::Evidence {
                kind: BreachKind::TokenReplayed,
                why: "the first token is not the same decision (its payload differs)".into(),
            }),
            "{case}"
        );
    }
}

#[test]
fn a_first_token_that_does_not_verify_is_refused() {
    let f = fixture();
    let payload = f.payload("agent-7", &transfer());
    let genuine = f.genuine_token(payload.clone());
    // The same payload under a signature the group did not make, and the
    // genuine token with its signature spoiled; agent-7's own
    // presentations of each, so that only the first token's verification
    // fails.
    let forged = f.forged_token(payload);
    let mut spoiled = genuine.clone();
    spoiled.signature[3] ^= 1;
    for (case, first) in [("forged", forged), ("spoiled", spoiled)] {
        let c = f.cert(acme("agent-7"), replayed_of(&first, &genuine), 3);
        let why = invalid_why(&f, &c, BreachKind::TokenReplayed);
        assert!(
            why.starts_with("the first token does not verify: ") && why.contains("signature"),
            "{case}: {why}"
        );
    }
    // The second token must verify too.
    let forged = f.forged_token(f.payload("agent-7", &transfer()));
    let c = f.cert(acme("agent-7"), replayed_of(&genuine, &forged), 3);
    let why = invalid_why(&f, &c, BreachKind::TokenReplayed);
    assert!(
        why.starts_with("the token does not verify: "),
        "second token forged: {why}"
    );
}

/// When the two tokens differ (a reissue), each presentation is checked
/// against its own: the first against `first_token`, the second against
/// `token`.
#[test]
fn each_presentation_must_present_its_own_token() {
    let f = fixture();
    let payload = f.payload("agent-7", &transfer());
    let genuine = f.genuine_token(payload.clone());
    let reissued = f.signed_by(payload, &[2, 3, 5], 23);
    let of_genuine = present(AGENT_7, &genuine, TRANSFER_JSON, 0);
    let of_genuine_later = present(AGENT_7, &genuine, TRANSFER_JSON, 1_000);
    let of_reissued = present(AGENT_7, &reissued, TRANSFER_JSON, 1_000);
    let other_token = |presented: &Token, token: &Token| PresentationError::OtherToken {
        presented: token_wire_digest(presented),
        token: token_wire_digest(token),
    };
    let cases = [
        (
            // `first` presents `token`, not `first_token` (the reissue).
            "first presents token",
            of_genuine.clone(),
            of_genuine_later.clone(),
            format!(
                "first presentation: presentation: {}",
                other_token(&genuine, &reissued)
            ),
        ),
        (
            // `second` presents `first_token`, not `token`.
            "second presents first_token",
            of_reissued.clone(),
            present(AGENT_7, &reissued, TRANSFER_JSON, 2_000),
            format!(
                "second presentation: presentation: {}",
                other_token(&reissued, &genuine)
            ),
        ),
    ];
    for (case, first, second, want) in cases {
        let c = f.cert(
            acme("agent-7"),
            Evidence::TokenReplayed {
                token: genuine.to_bytes(),
                first_index: 31,
                first_token: reissued.to_bytes(),
                first,
                second,
            },
            3,
        );
        assert_eq!(
            invalid_why(&f, &c, BreachKind::TokenReplayed),
            want,
            "{case}"
        );
    }
    // Each against its own: it holds.
    let c = f.cert(
        acme("agent-7"),
        Evidence::TokenReplayed {
            token: genuine.to_bytes(),
            first_index: 31,
            first_token: reissued.to_bytes(),
            first: of_reissued,
            second: of_genuine,
        },
        3,
    );
    assert_eq!(f.check(&c), Ok(()));
}
