//! Policy amendments end to end in the pure core: admission, independent
//! review (each rejection path with its specific reason), signed votes, the
//! tally (pass, reject, expire, equivocation, competing proposals) and the
//! next seal, threshold-signed with the FROST code of `signing` and accepted
//! by seal-chain verification (DESIGN.md flow 4; PROTOCOL.md section 16).

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use senatus_genesis::ceremony::{Ceremony, CeremonyParams, NodeAddrs};
use senatus_genesis::codec::DecodeError;
use senatus_genesis::policy::clause_digest;
use senatus_genesis::seal::{SealError, SignedSeal, verify_chain, verify_successor};
use senatus_genesis::{
    Encoder, Key32, LedgerIndex, NodeId, PolicyLayer, PolicyVersion, Seal, Sig64, sha3,
};
use senatus_quorum::amend::{
    AdmissionError, AdmittedProposal, Equivocation, EvidenceError, JUSTIFICATION_BYTES_MAX,
    NextSealError, PROPOSALS_MAX, Proposal, ProposalDecodeError, ProposalId, ProposerRole,
    REASONS_MAX, RejectReason, Review, SIGNED_VOTE_BYTES_MAX, SignedProposal, SignedVote, Status,
    Tally, TallyError, TallyEvent, Verdict, Vote, VoteDecodeError, VoteError, admit, review,
};
use senatus_quorum::broker::Broker;
use senatus_quorum::signing::{
    AggregateError, CommitmentBook, NoncePool, Signer, SigningError, aggregate, public_key_package,
};

type Files = BTreeMap<String, Vec<u8>>;

const CREATED_MS: u64 = 1_767_225_600_000;

fn node(n: u64) -> NodeId {
    NodeId::new(n).expect("node id")
}

fn nodes(ns: &[u64]) -> Vec<NodeId> {
    ns.iter().map(|&n| node(n)).collect()
}

fn at(i: u64) -> LedgerIndex {
    LedgerIndex(i)
}

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

fn example_files() -> Files {
    PolicyLayer::example().files().clone()
}

/// `policy_layer_bytes` (PROTOCOL.md section 2) of any file set, valid or
/// not, written here rather than taken from `PolicyLayer` so that invalid
/// layers can be proposed.
fn encode_layer(files: &Files) -> Vec<u8> {
    let mut e = Encoder::new("policy-layer", 1);
    e.count(files.len());
    for (path, content) in files {
        e.str(path).bytes(content);
    }
    e.finish()
}

fn text(files: &Files, path: &str) -> String {
    String::from_utf8(files[path].clone()).expect("utf-8")
}

/// Replaces exactly one occurrence of `from` in file `path`.
fn edit(files: &mut Files, path: &str, from: &str, to: &str) {
    let old = text(files, path);
    assert_eq!(old.matches(from).count(), 1, "{from:?} in {path}");
    files.insert(path.to_string(), old.replacen(from, to, 1).into_bytes());
}

fn constitution(files: &mut Files, from: &str, to: &str) {
    edit(files, "constitution.toml", from, to);
}

/// The example with its constitution at `version`.
fn at_version(mut files: Files, version: u64) -> Files {
    constitution(
        &mut files,
        "\nversion = 1\n",
        &format!("\nversion = {version}\n"),
    );
    files
}

/// A good amendment of the example: version 2, a new comment in a clause
/// that is not immutable.
fn good_files() -> Files {
    let mut f = at_version(example_files(), 2);
    edit(
        &mut f,
        "policies/payments.transfer-within-limit.cedar",
        "// A transfer",
        "// Amended: reviewed by the risk team.\n// A transfer",
    );
    f
}

fn layer(files: Files) -> PolicyLayer {
    PolicyLayer::from_files(files).expect("valid layer")
}

// ---------------------------------------------------------------------------
// A cluster
// ---------------------------------------------------------------------------

/// A seeded 3-of-5 ceremony over `policy`, its seal 0, and the keys.
struct Cluster {
    c: Ceremony,
    seal0: Seal,
}

impl Cluster {
    fn new(policy: PolicyLayer, threshold: u16, seed: u64) -> Cluster {
        let params = CeremonyParams {
            chain_id: "senatus-amend-test".into(),
            threshold,
            nodes: (1..=5)
                .map(|i| NodeAddrs {
                    peer: format!("127.0.0.{i}:7000"),
                    api: format!("127.0.0.{i}:7001"),
                    metrics: format!("127.0.0.{i}:7002"),
                })
                .collect(),
            policy,
            created_at_ms: CREATED_MS,
        };
        let c = Ceremony::run(params, &mut ChaCha20Rng::seed_from_u64(seed)).expect("ceremony");
        let seal0 = Seal::genesis(&c.genesis);
        Cluster { c, seal0 }
    }

    fn example() -> Cluster {
        Cluster::new(PolicyLayer::example(), 3, 7)
    }

    fn authority(&self) -> &SigningKey {
        self.c.authority.signing_key()
    }

    fn identity(&self, id: u64) -> &SigningKey {
        self.c.nodes[(id - 1) as usize].identity.signing_key()
    }

    fn authority_key(&self) -> Key32 {
        self.c.genesis.body.authority_key
    }

    /// An unsigned proposal of `files` on seal 0.
    fn proposal(&self, files: &Files, proposer: &SigningKey) -> Proposal {
        Proposal {
            base_version: self.seal0.version,
            base_seal_digest: self.seal0.digest(),
            layer: encode_layer(files),
            justification: "Clarify the transfer clause \u{2014} no behaviour change.".into(),
            proposer: Key32(proposer.verifying_key().to_bytes()),
            created_at_ms: CREATED_MS + 1,
        }
    }

    fn signed(&self, files: &Files, proposer: &SigningKey) -> SignedProposal {
        self.proposal(files, proposer)
            .sign(proposer)
            .expect("own key")
    }

    fn admit(&self, signed: SignedProposal) -> Result<AdmittedProposal, AdmissionError> {
        admit(signed, &self.authority_key(), &self.c.policy, &self.seal0)
    }

    fn admitted(&self, files: &Files) -> AdmittedProposal {
        self.admit(self.signed(files, self.authority()))
            .expect("admitted")
    }

    fn review(&self, files: &Files) -> Review {
        review(
            &self.c.policy,
            &self.seal0,
            &self.proposal(files, self.authority()),
        )
    }

    fn vote(&self, proposal: ProposalId, voter: u64, verdict: Verdict) -> SignedVote {
        Vote {
            proposal,
            voter: node(voter),
            verdict,
        }
        .sign(self.identity(voter))
        .expect("valid vote")
    }

    fn approve(&self, proposal: ProposalId, voter: u64) -> SignedVote {
        self.vote(proposal, voter, Verdict::Approve)
    }

    fn reject(&self, proposal: ProposalId, voter: u64) -> SignedVote {
        self.vote(
            proposal,
            voter,
            Verdict::Reject(vec!["immutable-clause-changed:payments.blocklist".into()]),
        )
    }

    fn tally(&self) -> Tally {
        Tally::new(&self.c.policy, &self.seal0).expect("tally")
    }
}

fn rejected(r: Review) -> Vec<RejectReason> {
    match r {
        Review::Reject(reasons) => reasons,
        Review::Approve => panic!("approved"),
    }
}

fn invalid_text(r: Review) -> String {
    match rejected(r).as_slice() {
        [RejectReason::LayerInvalid { error }] => error.clone(),
        other => panic!("want exactly LayerInvalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Proposals: encoding and admission
// ---------------------------------------------------------------------------

#[test]
fn a_good_amendment_is_admitted_reviewed_approved_and_round_trips() {
    let k = Cluster::example();
    let files = good_files();
    let signed = k.signed(&files, k.authority());
    let wire = signed.encode();
    let limit = k.c.policy.constitution().limits.layer_bytes_max;
    let back = SignedProposal::decode(&wire, limit).expect("decodes");
    assert_eq!(back, signed);
    assert_eq!(back.encode(), wire);
    assert_eq!(
        back.id(),
        ProposalId(sha3(&signed.proposal.signing_bytes()))
    );
    assert_eq!(
        wire.len(),
        signed.proposal.signing_bytes().len() + 64,
        "signed form is signing bytes || signature"
    );

    let admitted = k.admit(back).expect("admitted");
    assert_eq!(admitted.role(), ProposerRole::Authority);
    assert_eq!(admitted.id(), signed.id());
    assert_eq!(k.review(&files), Review::Approve);
    assert_eq!(
        signed.proposal.layer_digest(),
        layer(files).digest(),
        "the sealed digest is the digest of the layer the bytes decode to"
    );
}

#[test]
fn proposal_decoding_is_strict() {
    let k = Cluster::example();
    let signed = k.signed(&good_files(), k.authority());
    let wire = signed.encode();
    let limit = k.c.policy.constitution().limits.layer_bytes_max;

    let mut trailing = wire.clone();
    trailing.push(0);
    assert_eq!(
        SignedProposal::decode(&trailing, limit),
        Err(ProposalDecodeError::Encoding(DecodeError::Trailing {
            count: 1
        }))
    );
    assert!(matches!(
        SignedProposal::decode(&wire[..wire.len() - 1], limit),
        Err(ProposalDecodeError::Encoding(DecodeError::Truncated {
            field: "signature",
            ..
        }))
    ));
    let mut tag = wire.clone();
    tag[28] = b'2'; // "senatus/amendment-proposal/v2"
    assert!(matches!(
        SignedProposal::decode(&tag, limit),
        Err(ProposalDecodeError::Encoding(DecodeError::Tag { .. }))
    ));
    // The layer bound is the caller's (the active limits.layer_bytes_max).
    let layer_len = signed.proposal.layer.len();
    assert_eq!(
        SignedProposal::decode(&wire, (layer_len - 1) as u32),
        Err(ProposalDecodeError::LayerTooLarge {
            bytes: layer_len,
            max: layer_len - 1
        })
    );
    assert!(matches!(
        SignedProposal::decode(&wire, 16),
        Err(ProposalDecodeError::TooLarge { .. })
    ));
    let mut long = k.proposal(&good_files(), k.authority());
    long.justification = "x".repeat(JUSTIFICATION_BYTES_MAX + 1);
    let long = SignedProposal {
        proposal: long,
        signature: signed.signature,
    };
    assert_eq!(
        SignedProposal::decode(&long.encode(), limit),
        Err(ProposalDecodeError::JustificationTooLong {
            bytes: JUSTIFICATION_BYTES_MAX + 1
        })
    );
    assert_eq!(
        k.admit(long),
        Err(AdmissionError::JustificationTooLong {
            bytes: JUSTIFICATION_BYTES_MAX + 1
        })
    );
}

#[test]
fn validators_and_listed_keys_may_propose_anyone_else_may_not() {
    let k = Cluster::example();
    let files = good_files();
    let by_validator = k.admit(k.signed(&files, k.identity(4))).expect("validator");
    assert_eq!(by_validator.role(), ProposerRole::Validator(node(4)));

    let outsider = SigningKey::from_bytes(&[42u8; 32]);
    let outsider_key = Key32(outsider.verifying_key().to_bytes());
    assert_eq!(
        k.admit(k.signed(&files, &outsider)),
        Err(AdmissionError::Unauthorized {
            proposer: outsider_key
        })
    );
    let msg = AdmissionError::Unauthorized {
        proposer: outsider_key,
    }
    .to_string();
    assert!(msg.contains(&outsider_key.to_string()), "{msg}");

    // The same key, listed in the active constitution's amendment.proposers.
    let mut listed = example_files();
    constitution(
        &mut listed,
        "deadline_entries = 1000\n",
        &format!("deadline_entries = 1000\nproposers = [\"{outsider_key}\"]\n"),
    );
    let k2 = Cluster::new(layer(listed.clone()), 3, 8);
    let mut next = at_version(listed, 2);
    edit(
        &mut next,
        "policies/infra.mutate-sre-window.cedar",
        "// Infrastructure",
        "// Amended.\n// Infrastructure",
    );
    let admitted = k2.admit(k2.signed(&next, &outsider)).expect("listed");
    assert_eq!(admitted.role(), ProposerRole::Listed);
    assert_eq!(
        review(&k2.c.policy, &k2.seal0, admitted.proposal()),
        Review::Approve
    );
}

#[test]
fn a_forged_or_misattributed_signature_is_refused() {
    let k = Cluster::example();
    let files = good_files();
    let mut forged = k.signed(&files, k.authority());
    forged.signature.0[5] ^= 1;
    let id = forged.id();
    assert_eq!(
        k.admit(forged),
        Err(AdmissionError::BadSignature {
            proposal: id,
            proposer: k.authority_key()
        })
    );

    // Validator 2 signs a proposal that names the authority as proposer.
    let claimed = k.proposal(&files, k.authority());
    let sig = ed25519_dalek::Signer::sign(k.identity(2), &claimed.signing_bytes());
    let id = claimed.id();
    let misattributed = SignedProposal {
        proposal: claimed.clone(),
        signature: Sig64(sig.to_bytes()),
    };
    assert_eq!(
        k.admit(misattributed),
        Err(AdmissionError::BadSignature {
            proposal: id,
            proposer: k.authority_key()
        })
    );
    // Signing with a key other than the proposer's is refused up front.
    assert_eq!(
        claimed.sign(k.identity(2)),
        Err(AdmissionError::SigningKeyMismatch {
            proposer: k.authority_key(),
            signing_key: Key32(k.identity(2).verifying_key().to_bytes()),
        })
    );
}

// ---------------------------------------------------------------------------
// Review: every rejection path, with its specific reason
// ---------------------------------------------------------------------------

#[test]
fn editing_an_immutable_clause_is_rejected_naming_the_clause_and_digests() {
    let k = Cluster::example();
    let path = "policies/payments.blocklist.cedar";
    let mut files = at_version(example_files(), 2);
    let expected = clause_digest("payments.blocklist", &files[path]);
    edit(
        &mut files,
        path,
        "whatever any permit says",
        "unless a permit says so",
    );
    let found = clause_digest("payments.blocklist", &files[path]);
    // Without re-pinning its digest the layer itself is invalid.
    let err = invalid_text(k.review(&files));
    assert!(
        err.contains("immutable clause `payments.blocklist` changed"),
        "{err}"
    );
    // Re-pinned in the new constitution, the layer is valid: the review
    // still compares against the ACTIVE constitution's digest.
    constitution(&mut files, &expected.to_hex(), &found.to_hex());
    layer(files.clone());
    assert_eq!(
        rejected(k.review(&files)),
        vec![RejectReason::ImmutableClauseChanged {
            id: "payments.blocklist".into(),
            expected,
            found,
        }]
    );
    let msg = rejected(k.review(&files))[0].to_string();
    assert!(
        msg.contains(&expected.to_hex()) && msg.contains(&found.to_hex()),
        "{msg}"
    );
}

#[test]
fn removing_or_unlisting_an_immutable_clause_is_rejected() {
    let k = Cluster::example();
    let sealed = "[[immutable_clauses]]\nid = \"safety.no-secrets\"\nsha3 = \"e1cd85b2b0590b38aecb9563c497060e0c311875333c5b193157977326ca3f02\"\n";
    // File and list entry both gone: a valid layer, two reasons.
    let mut gone = at_version(example_files(), 2);
    gone.remove("policies/safety.no-secrets.cedar");
    constitution(&mut gone, sealed, "");
    layer(gone.clone());
    assert_eq!(
        rejected(k.review(&gone)),
        vec![
            RejectReason::ImmutableClauseRemoved {
                id: "safety.no-secrets".into()
            },
            RejectReason::ImmutableClauseUnlisted {
                id: "safety.no-secrets".into()
            },
        ]
    );
    // The text kept, but no longer immutable: a later amendment could edit it.
    let mut unlisted = at_version(example_files(), 2);
    constitution(&mut unlisted, sealed, "");
    assert_eq!(
        rejected(k.review(&unlisted)),
        vec![RejectReason::ImmutableClauseUnlisted {
            id: "safety.no-secrets".into()
        }]
    );
    // The file removed, the list kept: the layer fails its own validation.
    let mut missing = at_version(example_files(), 2);
    missing.remove("policies/safety.no-secrets.cedar");
    let err = invalid_text(k.review(&missing));
    assert!(
        err.contains("immutable clause `safety.no-secrets` is missing"),
        "{err}"
    );
}

#[test]
fn lowering_the_threshold_or_the_floor_is_rejected() {
    // On the example (t = 3 of 5) a lower t breaks the layer's own rule
    // 2t > n, which review reports with the constitution's message.
    let k = Cluster::example();
    let mut lower = at_version(example_files(), 2);
    constitution(&mut lower, "\nthreshold = 3\n", "\nthreshold = 2\n");
    constitution(&mut lower, "threshold_floor = 3\n", "threshold_floor = 2\n");
    let err = invalid_text(k.review(&lower));
    assert!(
        err.contains("2 * amendment.threshold > amendment.validators"),
        "{err}"
    );

    // The floor alone lowered.
    let mut floor = at_version(example_files(), 2);
    constitution(&mut floor, "threshold_floor = 3\n", "threshold_floor = 2\n");
    assert_eq!(
        rejected(k.review(&floor)),
        vec![RejectReason::FloorLowered {
            active: 3,
            found: 2
        }]
    );

    // An active layer at t = 4, floor 4: t = 3 is a valid layer but below
    // the active floor.
    let mut four = example_files();
    constitution(&mut four, "\nthreshold = 3\n", "\nthreshold = 4\n");
    constitution(&mut four, "threshold_floor = 3\n", "threshold_floor = 4\n");
    let k4 = Cluster::new(layer(four.clone()), 4, 9);
    let mut three = at_version(four, 2);
    constitution(&mut three, "\nthreshold = 4\n", "\nthreshold = 3\n");
    constitution(&mut three, "threshold_floor = 4\n", "threshold_floor = 3\n");
    layer(three.clone());
    assert_eq!(
        rejected(k4.review(&three)),
        vec![
            RejectReason::ThresholdBelowFloor {
                threshold: 3,
                floor: 4
            },
            RejectReason::FloorLowered {
                active: 4,
                found: 3
            },
        ]
    );
    // Raising t above the floor is allowed.
    let mut raised = at_version(example_files(), 2);
    constitution(&mut raised, "\nthreshold = 3\n", "\nthreshold = 4\n");
    assert_eq!(k.review(&raised), Review::Approve);
}

#[test]
fn changing_the_validator_count_is_rejected() {
    let k = Cluster::example();
    let mut four = at_version(example_files(), 2);
    constitution(&mut four, "validators = 5\n", "validators = 4\n");
    assert_eq!(
        rejected(k.review(&four)),
        vec![RejectReason::ValidatorsChanged {
            membership: 5,
            found: 4
        }]
    );
}

#[test]
fn a_layer_failing_schema_validation_is_rejected_with_the_policy_error() {
    let k = Cluster::example();
    let mut files = at_version(example_files(), 2);
    edit(
        &mut files,
        "policies/data.export-internal.cedar",
        "context.params.rows",
        "context.params.row_count",
    );
    let err = invalid_text(k.review(&files));
    assert!(
        err.contains("fail strict schema validation") && err.contains("data.export-internal"),
        "{err}"
    );
    // Bytes that are not a layer at all.
    let mut p = k.proposal(&files, k.authority());
    p.layer = b"senatus/policy-layer/v1\0\xff".to_vec();
    let reasons = rejected(review(&k.c.policy, &k.seal0, &p));
    assert!(
        matches!(reasons.as_slice(), [RejectReason::LayerInvalid { error }] if error.contains("canonical policy layer malformed")),
        "{reasons:?}"
    );
}

#[test]
fn a_wrong_version_is_rejected() {
    let k = Cluster::example();
    assert_eq!(
        rejected(k.review(&at_version(example_files(), 3))),
        vec![RejectReason::WrongVersion {
            expected: 2,
            found: 3
        }]
    );
    // Unchanged version (a replay of the active constitution).
    let mut same = example_files();
    edit(
        &mut same,
        "policies/data.export-internal.cedar",
        "// An export",
        "// Amended.\n// An export",
    );
    assert_eq!(
        rejected(k.review(&same)),
        vec![RejectReason::WrongVersion {
            expected: 2,
            found: 1
        }]
    );
}

#[test]
fn a_stale_base_is_rejected_and_not_tallied() {
    let k = Cluster::example();
    let mut p = k.proposal(&good_files(), k.authority());
    p.base_version = PolicyVersion(0);
    p.base_seal_digest = sha3(b"some older seal");
    assert_eq!(
        rejected(review(&k.c.policy, &k.seal0, &p)),
        vec![
            RejectReason::StaleBaseVersion {
                active: PolicyVersion(1),
                found: PolicyVersion(0)
            },
            RejectReason::StaleBaseSeal {
                active: k.seal0.digest(),
                found: sha3(b"some older seal")
            },
        ]
    );
    let admitted = k
        .admit(p.clone().sign(k.authority()).expect("sign"))
        .expect("admission does not judge the base");
    assert_eq!(
        k.tally().open(admitted, at(5)),
        Err(TallyError::StaleBase {
            proposal: p.id(),
            version: PolicyVersion(1),
            seal: k.seal0.digest(),
            found_version: PolicyVersion(0),
            found_seal: sha3(b"some older seal"),
        })
    );
}

#[test]
fn an_oversized_layer_is_rejected_against_the_active_limit() {
    // An active layer whose limit is just above its own size.
    let mut small = example_files();
    let own = encode_layer(&small).len() as u64;
    let limit = own + 200;
    constitution(
        &mut small,
        "policy_bytes_max = 16384\n",
        "policy_bytes_max = 4096\n",
    );
    constitution(
        &mut small,
        "layer_bytes_max = 1048576\n",
        &format!("layer_bytes_max = {limit}\n"),
    );
    let k = Cluster::new(layer(small.clone()), 3, 10);
    let mut big = at_version(small, 2);
    constitution(
        &mut big,
        &format!("layer_bytes_max = {limit}\n"),
        "layer_bytes_max = 1048576\n",
    );
    edit(
        &mut big,
        "policies/data.export-internal.cedar",
        "// An export",
        &format!("// {}\n// An export", "padding ".repeat(40)),
    );
    let bytes = encode_layer(&big).len() as u64;
    assert!(bytes > limit);
    assert_eq!(
        rejected(k.review(&big)),
        vec![RejectReason::LayerTooLarge { bytes, max: limit }]
    );
    // The wire decoder refuses it with the same bound, before parsing.
    let wire = k.signed(&big, k.authority()).encode();
    assert_eq!(
        SignedProposal::decode(&wire, limit as u32),
        Err(ProposalDecodeError::LayerTooLarge {
            bytes: bytes as usize,
            max: limit as usize
        })
    );
}

#[test]
fn every_applicable_reason_is_reported_at_once() {
    let k = Cluster::example();
    let mut files = at_version(example_files(), 3);
    constitution(&mut files, "validators = 5\n", "validators = 4\n");
    constitution(&mut files, "threshold_floor = 3\n", "threshold_floor = 2\n");
    files.remove("policies/payments.blocklist.cedar");
    constitution(
        &mut files,
        "[[immutable_clauses]]\nid = \"payments.blocklist\"\nsha3 = \"182a3b3cbcf674522a5c53933a4c3c9a46b5c6e2ddc2bb21d11562d37b97999f\"\n",
        "",
    );
    let mut p = k.proposal(&files, k.authority());
    p.base_version = PolicyVersion(7);
    let reasons = rejected(review(&k.c.policy, &k.seal0, &p));
    let codes: Vec<String> = reasons.iter().map(RejectReason::code).collect();
    assert_eq!(
        codes,
        vec![
            "stale-base-version",
            "wrong-version",
            "immutable-clause-removed:payments.blocklist",
            "immutable-clause-unlisted:payments.blocklist",
            "floor-lowered",
            "validators-changed",
        ]
    );
    // The vote carries the codes sorted and unique.
    let vote = Vote::from_review(p.id(), node(1), &Review::Reject(reasons));
    let Verdict::Reject(carried) = &vote.verdict else {
        panic!("reject");
    };
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(carried, &sorted);
    vote.validate().expect("valid");
}

// ---------------------------------------------------------------------------
// Votes
// ---------------------------------------------------------------------------

#[test]
fn votes_round_trip_and_verify_against_the_membership() {
    let k = Cluster::example();
    let id = k.admitted(&good_files()).id();
    for verdict in [
        Verdict::Approve,
        Verdict::Recuse,
        Verdict::Reject(vec!["floor-lowered".into(), "wrong-version".into()]),
    ] {
        let v = k.vote(id, 2, verdict);
        let back = SignedVote::decode(&v.encode()).expect("decodes");
        assert_eq!(back, v);
        back.verify(&k.seal0.membership).expect("verifies");
    }
    let v = k.approve(id, 2);
    let mut forged = v.clone();
    forged.signature.0[0] ^= 1;
    assert_eq!(
        forged.verify(&k.seal0.membership),
        Err(VoteError::BadSignature {
            voter: node(2),
            proposal: id,
            identity_key: k.seal0.membership[1].identity_key,
        })
    );
    // Node 3's key signing a vote in node 2's name.
    let impostor = Vote {
        proposal: id,
        voter: node(2),
        verdict: Verdict::Approve,
    }
    .sign(k.identity(3))
    .expect("sign");
    assert!(matches!(
        impostor.verify(&k.seal0.membership),
        Err(VoteError::BadSignature { voter, .. }) if voter == node(2)
    ));
    let stranger = Vote {
        proposal: id,
        voter: node(9),
        verdict: Verdict::Approve,
    }
    .sign(&SigningKey::from_bytes(&[9u8; 32]))
    .expect("sign");
    assert_eq!(
        stranger.verify(&k.seal0.membership),
        Err(VoteError::NotMember { voter: node(9) })
    );
}

#[test]
fn vote_decoding_and_signing_refuse_malformed_votes() {
    let k = Cluster::example();
    let id = ProposalId(sha3(b"p"));
    let key = k.identity(1);
    let sign = |verdict| {
        Vote {
            proposal: id,
            voter: node(1),
            verdict,
        }
        .sign(key)
    };
    assert_eq!(sign(Verdict::Reject(vec![])), Err(VoteError::NoReasons));
    assert_eq!(
        sign(Verdict::Reject(vec!["b".into(), "a".into()])),
        Err(VoteError::ReasonsNotSorted {
            previous: "b".into(),
            found: "a".into()
        })
    );
    assert_eq!(
        sign(Verdict::Reject(vec!["a".into(), "a".into()])),
        Err(VoteError::ReasonsNotSorted {
            previous: "a".into(),
            found: "a".into()
        })
    );
    assert_eq!(
        sign(Verdict::Reject(vec!["Bad Reason".into()])),
        Err(VoteError::BadReason {
            reason: "Bad Reason".into()
        })
    );
    let many: Vec<String> = (0..=REASONS_MAX).map(|i| format!("r{i:03}")).collect();
    assert_eq!(
        sign(Verdict::Reject(many)),
        Err(VoteError::TooManyReasons {
            count: REASONS_MAX + 1
        })
    );

    let good = sign(Verdict::Approve).expect("approve").encode();
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        SignedVote::decode(&trailing),
        Err(VoteDecodeError::Encoding(DecodeError::Trailing {
            count: 1
        }))
    );
    let tag = "senatus/amendment-vote/v1\0".len();
    let verdict_at = tag + 32 + 8;
    let mut unknown = good.clone();
    unknown[verdict_at] = 4;
    assert_eq!(
        SignedVote::decode(&unknown),
        Err(VoteDecodeError::UnknownVerdict(4))
    );
    let mut zero_voter = good.clone();
    zero_voter[tag + 32..tag + 40].copy_from_slice(&[0u8; 8]);
    assert_eq!(
        SignedVote::decode(&zero_voter),
        Err(VoteDecodeError::Voter(0))
    );
    // An approve that carries a reason.
    let mut e = Encoder::new("amendment-vote", 1);
    e.digest(&id.0).u64(1).u8(1).count(1).str("x");
    let mut with_reason = e.finish();
    with_reason.extend_from_slice(&[0u8; 64]);
    assert_eq!(
        SignedVote::decode(&with_reason),
        Err(VoteDecodeError::UnexpectedReasons {
            verdict: 1,
            count: 1
        })
    );
    // Unsorted reasons on the wire.
    let mut e = Encoder::new("amendment-vote", 1);
    e.digest(&id.0).u64(1).u8(2).count(2).str("b").str("a");
    let mut unsorted = e.finish();
    unsorted.extend_from_slice(&[0u8; 64]);
    assert!(matches!(
        SignedVote::decode(&unsorted),
        Err(VoteDecodeError::Invalid(VoteError::ReasonsNotSorted { .. }))
    ));
    assert_eq!(
        SignedVote::decode(&[0u8; SIGNED_VOTE_BYTES_MAX + 1]),
        Err(VoteDecodeError::TooLarge {
            bytes: SIGNED_VOTE_BYTES_MAX + 1
        })
    );
}

// ---------------------------------------------------------------------------
// Tally
// ---------------------------------------------------------------------------

fn counted(p: ProposalId, voter: u64, verdict: &'static str) -> TallyEvent {
    TallyEvent::Counted {
        proposal: p,
        voter: node(voter),
        verdict,
    }
}

#[test]
fn passes_at_exactly_three_approvals_with_those_three_as_approvers() {
    let k = Cluster::example();
    let mut t = k.tally();
    assert_eq!((t.threshold(), t.members()), (3, 5));
    let p = k.admitted(&good_files());
    let id = p.id();
    assert_eq!(
        t.open(p.clone(), at(10)),
        Ok(vec![TallyEvent::Opened {
            proposal: id,
            deadline: at(1010)
        }])
    );
    assert_eq!(
        t.vote(&k.approve(id, 1), at(11)),
        Ok(vec![counted(id, 1, "approve")])
    );
    assert_eq!(
        t.vote(&k.reject(id, 2), at(12)),
        Ok(vec![counted(id, 2, "reject")])
    );
    assert_eq!(
        t.vote(&k.approve(id, 3), at(13)),
        Ok(vec![counted(id, 3, "approve")])
    );
    assert_eq!(t.status(&id), Some(&Status::Open));
    assert!(t.passed().is_none());
    assert_eq!(
        t.vote(&k.approve(id, 5), at(14)),
        Ok(vec![
            counted(id, 5, "approve"),
            TallyEvent::Passed {
                proposal: id,
                approvers: nodes(&[1, 3, 5])
            },
        ])
    );
    assert_eq!(t.status(&id), Some(&Status::Passed { at: at(14) }));
    let passed = t.passed().expect("passed");
    assert_eq!(passed.approvers(), nodes(&[1, 3, 5]).as_slice());
    assert_eq!(passed.passed_at(), at(14));
    assert_eq!(passed.proposal(), &p);
    // Later votes change nothing.
    assert_eq!(
        t.vote(&k.reject(id, 4), at(15)),
        Ok(vec![TallyEvent::Late {
            proposal: id,
            voter: node(4)
        }])
    );
    assert_eq!(t.status(&id), Some(&Status::Passed { at: at(14) }));
    assert_eq!(
        t.passed().expect("passed").approvers(),
        nodes(&[1, 3, 5]).as_slice()
    );
}

#[test]
fn five_approvals_pass_at_the_third_and_name_exactly_the_first_three() {
    let k = Cluster::example();
    let mut t = k.tally();
    let id = k.admitted(&good_files()).id();
    t.open(k.admitted(&good_files()), at(1)).expect("open");
    let mut events = Vec::new();
    for (i, voter) in [5u64, 2, 4, 1, 3].into_iter().enumerate() {
        events.extend(
            t.vote(&k.approve(id, voter), at(2 + i as u64))
                .expect("vote"),
        );
    }
    assert_eq!(
        events,
        vec![
            counted(id, 5, "approve"),
            counted(id, 2, "approve"),
            counted(id, 4, "approve"),
            TallyEvent::Passed {
                proposal: id,
                approvers: nodes(&[5, 2, 4])
            },
            TallyEvent::Late {
                proposal: id,
                voter: node(1)
            },
            TallyEvent::Late {
                proposal: id,
                voter: node(3)
            },
        ]
    );
    assert_eq!(
        t.passed().expect("passed").approvers(),
        nodes(&[5, 2, 4]).as_slice()
    );
}

#[test]
fn two_approvals_and_three_rejections_reject() {
    let k = Cluster::example();
    let mut t = k.tally();
    let id = k.admitted(&good_files()).id();
    t.open(k.admitted(&good_files()), at(1)).expect("open");
    for (i, v) in [
        k.approve(id, 1),
        k.approve(id, 2),
        k.reject(id, 3),
        k.reject(id, 4),
    ]
    .iter()
    .enumerate()
    {
        t.vote(v, at(2 + i as u64)).expect("vote");
        assert_eq!(t.status(&id), Some(&Status::Open));
    }
    assert_eq!(
        t.vote(&k.reject(id, 5), at(6)),
        Ok(vec![
            counted(id, 5, "reject"),
            TallyEvent::Rejected {
                proposal: id,
                rejecters: nodes(&[3, 4, 5]),
                recusers: vec![],
            },
        ])
    );
    assert_eq!(t.status(&id), Some(&Status::Rejected { at: at(6) }));
    assert!(t.passed().is_none());
}

#[test]
fn recusals_count_against_reaching_the_threshold() {
    let k = Cluster::example();
    let mut t = k.tally();
    let id = k.admitted(&good_files()).id();
    t.open(k.admitted(&good_files()), at(1)).expect("open");
    t.vote(&k.reject(id, 1), at(2)).expect("vote");
    t.vote(&k.vote(id, 2, Verdict::Recuse), at(3))
        .expect("vote");
    assert_eq!(t.status(&id), Some(&Status::Open));
    assert_eq!(
        t.vote(&k.vote(id, 3, Verdict::Recuse), at(4)),
        Ok(vec![
            counted(id, 3, "recuse"),
            TallyEvent::Rejected {
                proposal: id,
                rejecters: nodes(&[1]),
                recusers: nodes(&[2, 3]),
            },
        ])
    );
}

#[test]
fn a_proposal_expires_once_the_index_passes_its_deadline() {
    let k = Cluster::example();
    let id = k.admitted(&good_files()).id();
    let deadline = 10 + k.c.policy.constitution().amendment.deadline_entries;

    // A vote at the deadline still counts; advancing past it expires.
    let mut t = k.tally();
    t.open(k.admitted(&good_files()), at(10)).expect("open");
    t.vote(&k.approve(id, 1), at(11)).expect("vote");
    assert_eq!(t.advance(at(deadline - 1)), Ok(vec![]));
    assert_eq!(
        t.vote(&k.approve(id, 2), at(deadline)),
        Ok(vec![counted(id, 2, "approve")])
    );
    assert_eq!(t.advance(at(deadline)), Ok(vec![]));
    assert_eq!(
        t.advance(at(deadline + 1)),
        Ok(vec![TallyEvent::Expired { proposal: id }])
    );
    assert_eq!(
        t.status(&id),
        Some(&Status::Expired {
            at: at(deadline + 1)
        })
    );
    assert_eq!(
        t.vote(&k.approve(id, 3), at(deadline + 2)),
        Ok(vec![TallyEvent::Late {
            proposal: id,
            voter: node(3)
        }])
    );
    assert!(t.passed().is_none());

    // A would-be third approval just past the deadline: the expiry comes
    // first, and the vote counts for nothing.
    let mut t = k.tally();
    t.open(k.admitted(&good_files()), at(10)).expect("open");
    t.vote(&k.approve(id, 1), at(11)).expect("vote");
    t.vote(&k.approve(id, 2), at(12)).expect("vote");
    assert_eq!(
        t.vote(&k.approve(id, 3), at(deadline + 1)),
        Ok(vec![
            TallyEvent::Expired { proposal: id },
            TallyEvent::Late {
                proposal: id,
                voter: node(3)
            },
        ])
    );
    assert!(t.passed().is_none());
}

#[test]
fn equivocation_is_detected_attributable_and_changes_nothing() {
    let k = Cluster::example();
    let mut t = k.tally();
    let id = k.admitted(&good_files()).id();
    t.open(k.admitted(&good_files()), at(1)).expect("open");
    let first = k.approve(id, 2);
    let second = k.reject(id, 2);
    t.vote(&first, at(2)).expect("vote");
    // The identical vote again is a no-op.
    assert_eq!(
        t.vote(&first, at(3)),
        Ok(vec![TallyEvent::Repeated {
            proposal: id,
            voter: node(2)
        }])
    );
    let evidence = Equivocation {
        first: first.clone(),
        second: second.clone(),
    };
    assert_eq!(
        t.vote(&second, at(4)),
        Ok(vec![TallyEvent::Equivocation(Box::new(evidence.clone()))])
    );
    // Anyone with the membership re-verifies it and gets the culprit.
    assert_eq!(evidence.verify(&k.seal0.membership), Ok(node(2)));
    assert_eq!((evidence.voter(), evidence.proposal()), (node(2), id));
    // The first vote stands: two more approvals pass it, with 2 counted.
    t.vote(&k.approve(id, 1), at(5)).expect("vote");
    let events = t.vote(&k.approve(id, 4), at(6)).expect("vote");
    assert_eq!(
        events.last(),
        Some(&TallyEvent::Passed {
            proposal: id,
            approvers: nodes(&[2, 1, 4])
        })
    );
    // Still detected after the decision.
    let third = k.vote(id, 2, Verdict::Recuse);
    assert_eq!(
        t.vote(&third, at(7)),
        Ok(vec![TallyEvent::Equivocation(Box::new(Equivocation {
            first: first.clone(),
            second: third,
        }))])
    );

    // Evidence that does not hold up says why.
    let m = &k.seal0.membership;
    let same = Equivocation {
        first: first.clone(),
        second: first.clone(),
    };
    assert_eq!(
        same.verify(m),
        Err(EvidenceError::SameContent { voter: node(2) })
    );
    let two_voters = Equivocation {
        first: first.clone(),
        second: k.reject(id, 3),
    };
    assert_eq!(
        two_voters.verify(m),
        Err(EvidenceError::DifferentVoters {
            first: node(2),
            second: node(3)
        })
    );
    let other = ProposalId(sha3(b"another proposal"));
    let two_proposals = Equivocation {
        first: first.clone(),
        second: k.reject(other, 2),
    };
    assert_eq!(
        two_proposals.verify(m),
        Err(EvidenceError::DifferentProposals {
            first: id,
            second: other
        })
    );
    let mut fake = second;
    fake.signature.0[1] ^= 1;
    let forged = Equivocation {
        first,
        second: fake,
    };
    assert!(matches!(
        forged.verify(m),
        Err(EvidenceError::Vote {
            which: "second",
            error: VoteError::BadSignature { .. }
        })
    ));
}

#[test]
fn refused_votes_change_nothing() {
    let k = Cluster::example();
    let mut t = k.tally();
    let id = k.admitted(&good_files()).id();
    t.open(k.admitted(&good_files()), at(5)).expect("open");
    t.vote(&k.approve(id, 1), at(6)).expect("vote");
    t.vote(&k.approve(id, 2), at(7)).expect("vote");

    let stranger = Vote {
        proposal: id,
        voter: node(9),
        verdict: Verdict::Approve,
    }
    .sign(&SigningKey::from_bytes(&[9u8; 32]))
    .expect("sign");
    assert_eq!(
        t.vote(&stranger, at(8)),
        Err(TallyError::Vote(VoteError::NotMember { voter: node(9) }))
    );
    let mut forged = k.approve(id, 3);
    forged.signature.0[3] ^= 1;
    assert!(matches!(
        t.vote(&forged, at(8)),
        Err(TallyError::Vote(VoteError::BadSignature { voter, .. })) if voter == node(3)
    ));
    let unknown = ProposalId(sha3(b"never proposed"));
    assert_eq!(
        t.vote(&k.approve(unknown, 3), at(8)),
        Err(TallyError::UnknownProposal {
            proposal: unknown,
            voter: node(3)
        })
    );
    assert_eq!(
        t.vote(&k.approve(id, 3), at(4)),
        Err(TallyError::OutOfOrder {
            last: at(7),
            found: at(4)
        })
    );
    assert_eq!(
        t.open(k.admitted(&good_files()), at(8)),
        Err(TallyError::DuplicateProposal { proposal: id })
    );
    // None of that counted: node 3 is the third approval.
    assert_eq!(
        t.vote(&k.approve(id, 3), at(8)),
        Ok(vec![
            counted(id, 3, "approve"),
            TallyEvent::Passed {
                proposal: id,
                approvers: nodes(&[1, 2, 3])
            },
        ])
    );
}

#[test]
fn of_competing_proposals_exactly_one_passes() {
    let k = Cluster::example();
    let mut t = k.tally();
    let a = k.admitted(&good_files());
    let mut other = at_version(example_files(), 2);
    edit(
        &mut other,
        "policies/infra.mutate-sre-window.cedar",
        "// Infrastructure",
        "// Competing amendment.\n// Infrastructure",
    );
    let b = k.admitted(&other);
    let (ia, ib) = (a.id(), b.id());
    assert_ne!(ia, ib);
    t.open(a, at(1)).expect("open a");
    t.open(b, at(2)).expect("open b");
    // Approvals for both interleave; b reaches t first.
    t.vote(&k.approve(ia, 1), at(3)).expect("vote");
    t.vote(&k.approve(ib, 1), at(4)).expect("vote");
    t.vote(&k.approve(ia, 2), at(5)).expect("vote");
    t.vote(&k.approve(ib, 3), at(6)).expect("vote");
    assert_eq!(
        t.vote(&k.approve(ib, 4), at(7)),
        Ok(vec![
            counted(ib, 4, "approve"),
            TallyEvent::Passed {
                proposal: ib,
                approvers: nodes(&[1, 3, 4])
            },
            TallyEvent::Superseded {
                proposal: ia,
                by: ib
            },
        ])
    );
    assert_eq!(
        t.status(&ia),
        Some(&Status::Superseded { by: ib, at: at(7) })
    );
    // a's would-be third approval counts for nothing.
    assert_eq!(
        t.vote(&k.approve(ia, 5), at(8)),
        Ok(vec![TallyEvent::Late {
            proposal: ia,
            voter: node(5)
        }])
    );
    assert_eq!(t.passed().expect("one passed").proposal().id(), ib);
    // No further proposal opens on this base.
    let mut third = good_files();
    edit(
        &mut third,
        "policies/data.export-internal.cedar",
        "// An export",
        "// Third.\n// An export",
    );
    assert_eq!(
        t.open(k.admitted(&third), at(9)),
        Err(TallyError::BaseClosed { passed: ib })
    );
}

#[test]
fn open_proposals_are_bounded_and_the_constitution_must_match_the_seal() {
    let k = Cluster::example();
    let mut t = k.tally();
    let files = good_files();
    let numbered = |i: u64| {
        let mut p = k.proposal(&files, k.authority());
        p.created_at_ms = CREATED_MS + i;
        k.admit(p.sign(k.authority()).expect("sign"))
            .expect("admitted")
    };
    for i in 0..PROPOSALS_MAX as u64 {
        t.open(numbered(i), at(1)).expect("room");
    }
    assert_eq!(
        t.open(numbered(1000), at(2)),
        Err(TallyError::TooManyProposals {
            open: PROPOSALS_MAX
        })
    );
    assert_eq!(t.open_count(), PROPOSALS_MAX);
    // Once they expire there is room again; the refused open expired none.
    let past = 2 + k.c.policy.constitution().amendment.deadline_entries;
    let events = t.open(numbered(1001), at(past)).expect("room after expiry");
    assert_eq!(events.len(), PROPOSALS_MAX + 1);
    assert_eq!(t.open_count(), 1);

    // A layer that says 4 validators does not tally for a 5-member seal.
    let mut four = example_files();
    constitution(&mut four, "validators = 5\n", "validators = 4\n");
    assert!(matches!(
        Tally::new(&layer(four), &k.seal0),
        Err(TallyError::Config { rule, .. }) if rule.contains("amendment.validators")
    ));
}

// ---------------------------------------------------------------------------
// The next seal, threshold-signed by the approvers
// ---------------------------------------------------------------------------

/// Passes `files` with approvals from `approvers` (in that order).
fn pass(k: &Cluster, files: &Files, approvers: &[u64]) -> senatus_quorum::amend::PassedAmendment {
    let mut t = k.tally();
    let p = k.admitted(files);
    let id = p.id();
    t.open(p, at(1)).expect("open");
    for (i, &v) in approvers.iter().enumerate() {
        t.vote(&k.approve(id, v), at(2 + i as u64)).expect("vote");
    }
    t.passed().expect("passed").clone()
}

/// One-round FROST by `signers` over `msg` with the `signing` module: each
/// signer publishes a commitment, gets the request and signs only if the
/// message is `expected` (its own computation).
fn frost_sign(
    k: &Cluster,
    signers: &[NodeId],
    msg: &[u8],
    expected: &[u8],
    seed: u64,
) -> Result<[u8; 64], String> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut book = CommitmentBook::default();
    let mut pool: BTreeMap<NodeId, Signer> = BTreeMap::new();
    for &id in signers {
        let kp = k.c.nodes[(id.get() - 1) as usize].frost.key_package.clone();
        let mut s = Signer::new(kp, NoncePool::new(id, id.get())).expect("own key");
        for c in s.replenish(1, &mut rng) {
            book.insert(c).expect("filed");
        }
        pool.insert(id, s);
    }
    let plan = book.take_for(signers).expect("commitments");
    let req = plan.request(msg);
    let mut shares = BTreeMap::new();
    for id in plan.signers() {
        let share = pool
            .get_mut(&id)
            .expect("signer")
            .sign(&req, expected)
            .map_err(|e: SigningError| e.to_string())?;
        shares.insert(id, plan.accept(id, &share).expect("planned"));
    }
    let public = public_key_package(&k.seal0).expect("public key package");
    aggregate(&plan.package(msg), &shares, &public).map_err(|e: AggregateError| e.to_string())
}

#[test]
fn three_approvers_sign_the_next_seal_and_the_chain_verifies() {
    let k = Cluster::example();
    let files = good_files();
    let passed = pass(&k, &files, &[4, 2, 5, 1]);
    assert_eq!(passed.approvers(), nodes(&[4, 2, 5]).as_slice());
    let seal1 = passed.next_seal(&k.seal0).expect("next seal");
    assert_eq!(
        seal1,
        Seal {
            version: PolicyVersion(2),
            policy_digest: layer(files).digest(),
            prev_seal: k.seal0.digest(),
            ..k.seal0.clone()
        }
    );
    let signers = passed.signers(&k.seal0).expect("signers");
    assert_eq!(signers, nodes(&[4, 2, 5]).as_slice());
    let msg = seal1.signing_bytes();
    let sig = frost_sign(&k, signers, &msg, &msg, 1).expect("3 approvers sign");
    let signed1 = SignedSeal {
        seal: seal1.clone(),
        signature: Some(Sig64(sig)),
        attested: Some(k.c.attest_seal(&seal1, &[1, 2, 4, 5], 5, sha3(b"head"))),
    };
    verify_successor(&k.seal0, &signed1, 1).expect("successor");
    let chain = [
        SignedSeal {
            seal: k.seal0.clone(),
            signature: None,
            attested: None,
        },
        signed1.clone(),
    ];
    assert_eq!(verify_chain(&k.c.genesis, &chain), Ok(&seal1));
    // A broker holding only genesis follows the chain to version 2.
    Broker::new(&k.c.genesis, &chain).expect("broker accepts the chain");

    // An approver refuses to sign a seal it did not compute itself.
    let mut other = seal1.clone();
    other.policy_digest = sha3(b"a layer nobody approved");
    let err =
        frost_sign(&k, signers, &other.signing_bytes(), &msg, 2).expect_err("approvers refuse");
    assert!(err.contains("refusing to sign"), "{err}");
    // A seal signed by one identity key instead of the group fails.
    let single = ed25519_dalek::Signer::sign(k.identity(1), &msg);
    let fake = SignedSeal {
        seal: seal1,
        signature: Some(Sig64(single.to_bytes())),
        attested: None,
    };
    assert_eq!(
        verify_successor(&k.seal0, &fake, 1),
        Err(SealError::BadSignature {
            position: 1,
            group_key: k.seal0.group_key
        })
    );
}

#[test]
fn two_approvers_cannot_sign_the_next_seal() {
    let k = Cluster::example();
    let passed = pass(&k, &good_files(), &[1, 2, 3]);
    let seal1 = passed.next_seal(&k.seal0).expect("next seal");
    let msg = seal1.signing_bytes();
    // The signers refuse a two-party request.
    let err = frost_sign(&k, &nodes(&[1, 2]), &msg, &msg, 3).expect_err("2 < t");
    assert_eq!(
        err,
        SigningError::TooFewSigners { got: 2, need: 3 }.to_string()
    );
    // Two honest shares of a three-party signing do not aggregate.
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let ids = nodes(&[1, 2, 3]);
    let mut book = CommitmentBook::default();
    let mut pool = BTreeMap::new();
    for &id in &ids {
        let kp = k.c.nodes[(id.get() - 1) as usize].frost.key_package.clone();
        let mut s = Signer::new(kp, NoncePool::new(id, 77)).expect("own key");
        for c in s.replenish(1, &mut rng) {
            book.insert(c).expect("filed");
        }
        pool.insert(id, s);
    }
    let plan = book.take_for(&ids).expect("plan");
    let req = plan.request(&msg);
    let mut two = BTreeMap::new();
    for id in nodes(&[1, 2]) {
        let share = pool
            .get_mut(&id)
            .expect("s")
            .sign(&req, &msg)
            .expect("signs");
        two.insert(id, share.share);
    }
    let public = public_key_package(&k.seal0).expect("public");
    assert_eq!(
        aggregate(&plan.package(&msg), &two, &public),
        Err(AggregateError::TooFewShares { got: 2, need: 3 })
    );
    // A seal with no (or a garbage) signature does not extend the chain.
    let unsigned = SignedSeal {
        seal: seal1.clone(),
        signature: None,
        attested: None,
    };
    assert!(matches!(
        verify_successor(&k.seal0, &unsigned, 1),
        Err(SealError::SignaturePresence { position: 1, .. })
    ));
    let garbage = SignedSeal {
        seal: seal1,
        signature: Some(Sig64([7u8; 64])),
        attested: None,
    };
    assert!(matches!(
        verify_successor(&k.seal0, &garbage, 1),
        Err(SealError::BadSignature { position: 1, .. })
    ));
}

#[test]
fn the_next_seal_is_refused_on_another_base() {
    let k = Cluster::example();
    let passed = pass(&k, &good_files(), &[1, 2, 3]);
    let seal1 = passed.next_seal(&k.seal0).expect("next");
    assert_eq!(
        passed.next_seal(&seal1),
        Err(NextSealError::BaseSeal {
            active: seal1.digest(),
            found: k.seal0.digest()
        })
    );
    let mut fewer = k.seal0.clone();
    fewer.threshold = 4;
    assert!(matches!(
        passed.signers(&fewer),
        Err(NextSealError::TooFewApprovers {
            approvers: 3,
            threshold: 4
        })
    ));
}
