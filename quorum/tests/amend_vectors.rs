//! Pins `docs/vectors/amendment-v1.json` (PROTOCOL.md section 16): an
//! amendment proposal on seal 0 of the genesis vector (signing bytes, id,
//! authority signature, wire form), five votes on it (signing bytes,
//! identity-key signatures, wire forms), and seal 1, which the first three
//! approvers threshold-signed with the `signing` module.
//! `scripts/verify-vectors.py` rebuilds every byte string from the JSON
//! fields alone and verifies every signature. Regenerate deliberately with
//! `SENATUS_WRITE_VECTORS=1 cargo test -p senatus-quorum --test amend_vectors`,
//! then update docs/PROTOCOL.md and review the diff.

mod common;

use std::collections::BTreeMap;

use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use senatus_genesis::seal::{SignedSeal, verify_chain};
use senatus_genesis::{Key32, LedgerIndex, NodeId, PolicyLayer, Seal, Sig64};
use senatus_quorum::amend::{
    Proposal, Review, SignedProposal, SignedVote, Tally, TallyEvent, Verdict, Vote, admit, review,
};
use senatus_quorum::signing::{CommitmentBook, NoncePool, Signer, aggregate, public_key_package};
use serde_json::{Value, json};

use common::{seeded_ceremony, vectors_dir};

/// The example layer at version 2 with one amended, non-immutable clause.
fn amended_layer() -> PolicyLayer {
    let mut files = PolicyLayer::example().files().clone();
    let edit = |files: &mut BTreeMap<String, Vec<u8>>, path: &str, from: &str, to: &str| {
        let old = String::from_utf8(files[path].clone()).expect("utf-8");
        assert_eq!(old.matches(from).count(), 1, "{from:?}");
        files.insert(path.to_string(), old.replacen(from, to, 1).into_bytes());
    };
    edit(
        &mut files,
        "constitution.toml",
        "\nversion = 1\n",
        "\nversion = 2\n",
    );
    edit(
        &mut files,
        "policies/infra.mutate-sre-window.cedar",
        "when { context.facts.in_change_window };",
        "when { context.facts.in_change_window && context.facts.external_endpoints == 0 };",
    );
    PolicyLayer::from_files(files).expect("amended layer is valid")
}

fn node(n: u64) -> NodeId {
    NodeId::new(n).expect("node id")
}

#[test]
fn amendment_vector() {
    let c = seeded_ceremony();
    let gv: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors_dir().join("genesis-v1.json")).expect("genesis vector"),
    )
    .expect("json");
    assert_eq!(
        c.genesis.digest().to_hex(),
        gv["genesis_digest"].as_str().expect("genesis_digest"),
        "the ceremony must be the one of genesis-v1.json"
    );
    let seal0 = Seal::genesis(&c.genesis);
    let layer = amended_layer();

    let proposal = Proposal {
        base_version: seal0.version,
        base_seal_digest: seal0.digest(),
        layer: layer.canonical_bytes(),
        justification: "Infra changes inside the window may not reach external endpoints \u{2014} incident 2026-014."
            .into(),
        proposer: c.genesis.body.authority_key,
        created_at_ms: 1_767_312_000_000,
    };
    let signed = proposal
        .clone()
        .sign(c.authority.signing_key())
        .expect("authority signs");
    let admitted = admit(
        signed.clone(),
        &c.genesis.body.authority_key,
        &c.policy,
        &seal0,
    )
    .expect("admitted");
    assert_eq!(review(&c.policy, &seal0, &proposal), Review::Approve);
    let id = signed.id();

    // Votes in ledger order: 1 approves, 2 rejects, 3 recuses, 4 and 5
    // approve; the proposal passes at 5's vote with approvers 1, 4, 5.
    let verdicts = [
        (1, Verdict::Approve),
        (
            2,
            Verdict::Reject(vec![
                "floor-lowered".into(),
                "immutable-clause-changed:payments.blocklist".into(),
            ]),
        ),
        (3, Verdict::Recuse),
        (4, Verdict::Approve),
        (5, Verdict::Approve),
    ];
    let mut tally = Tally::new(&c.policy, &seal0).expect("tally");
    tally.open(admitted, LedgerIndex(1)).expect("open");
    let mut votes = Vec::new();
    let mut votes_wire = Vec::new();
    let mut events = Vec::new();
    for (i, (voter, verdict)) in verdicts.into_iter().enumerate() {
        let key = c.nodes[voter as usize - 1].identity.signing_key();
        let v = Vote {
            proposal: id,
            voter: node(voter),
            verdict,
        }
        .sign(key)
        .expect("vote");
        assert_eq!(SignedVote::decode(&v.encode()).as_ref(), Ok(&v));
        votes_wire.push(v.encode());
        events.extend(tally.vote(&v, LedgerIndex(2 + i as u64)).expect("counted"));
        let reasons = match &v.vote.verdict {
            Verdict::Reject(r) => r.clone(),
            _ => Vec::new(),
        };
        votes.push(json!({
            "voter": voter,
            "verdict": v.vote.verdict.code(),
            "reasons": reasons,
            "signing_bytes": hex::encode(v.vote.signing_bytes()),
            "signature": hex::encode(v.signature.0),
            "signed_vote": hex::encode(v.encode()),
        }));
    }
    let approvers = vec![node(1), node(4), node(5)];
    assert_eq!(
        events.last(),
        Some(&TallyEvent::Passed {
            proposal: id,
            approvers: approvers.clone()
        })
    );
    let passed = tally.passed().expect("passed");
    let seal1 = passed.next_seal(&seal0).expect("seal 1");
    let msg = seal1.signing_bytes();

    // FROST with the `signing` module, seeded so the vector is stable.
    let mut rng = ChaCha20Rng::seed_from_u64(2027);
    let mut book = CommitmentBook::default();
    let mut signers = BTreeMap::new();
    for &n in passed.signers(&seal0).expect("signers") {
        let kp = c.nodes[n.get() as usize - 1].frost.key_package.clone();
        let mut s = Signer::new(kp, NoncePool::new(n, 1)).expect("signer");
        for cm in s.replenish(1, &mut rng) {
            book.insert(cm).expect("filed");
        }
        signers.insert(n, s);
    }
    let plan = book.take_for(&approvers).expect("plan");
    let req = plan.request(&msg);
    let mut shares = BTreeMap::new();
    for n in plan.signers() {
        let share = signers
            .get_mut(&n)
            .expect("signer")
            .sign(&req, &msg)
            .expect("share");
        shares.insert(n, plan.accept(n, &share).expect("planned"));
    }
    let public = public_key_package(&seal0).expect("public");
    let sig = aggregate(&plan.package(&msg), &shares, &public).expect("signature");

    // The ledger these entries make (PROTOCOL.md 6): the proposal at index
    // 1, the votes at 2..=6; the amendment passes at index 6, the head every
    // validator attests for seal 1 (4.1) -- the rejecter and the recuser
    // too: an attestation says what the ledger holds, not how one voted.
    let mut prev = c.genesis.digest();
    let mut ledger = Vec::new();
    let payloads =
        std::iter::once((4u8, signed.encode())).chain(votes_wire.iter().map(|v| (5u8, v.clone())));
    for (i, (kind, payload)) in payloads.enumerate() {
        let index = i as u64 + 1;
        let mut e = senatus_genesis::Encoder::new("ledger-entry", 1);
        e.u64(index).u8(kind).bytes(&payload).digest(&prev);
        prev = e.digest_of();
        ledger.push(json!({"index": index, "kind": kind, "entry_hash": prev.to_hex()}));
    }
    let (head_index, head_hash) = (6, prev);
    let attested = c.attest_seal(&seal1, &[1, 2, 3, 4, 5], head_index, head_hash);
    let chain = [
        SignedSeal {
            seal: seal0.clone(),
            signature: None,
            attested: None,
        },
        SignedSeal {
            seal: seal1.clone(),
            signature: Some(Sig64(sig)),
            attested: Some(attested.clone()),
        },
    ];
    assert_eq!(verify_chain(&c.genesis, &chain), Ok(&seal1));

    let files: serde_json::Map<String, Value> = layer
        .files()
        .iter()
        .map(|(p, b)| {
            (
                p.clone(),
                Value::String(String::from_utf8(b.clone()).expect("utf-8")),
            )
        })
        .collect();
    let limit = c.policy.constitution().limits.layer_bytes_max;
    assert_eq!(
        SignedProposal::decode(&signed.encode(), limit).as_ref(),
        Ok(&signed)
    );
    let value = json!({
        "description": "An amendment of the genesis-v1 cluster (PROTOCOL.md section 16): a proposal on seal 0 signed by the founding authority, five votes signed by the validators' identity keys, and seal 1 (section 4) threshold-signed by the first three approvers and attested (4.1) by all five at the ledger head where it passed. Rebuild proposal_signing_bytes from the fields and layer_files, hash it for the proposal id, verify the signature under the proposer key; rebuild each vote and verify it under the voter's identity key from genesis-v1.json; rebuild seal 1 from seal 0 and verify its signature under the group key; rebuild the ledger (proposal at 1, votes at 2..6) and verify each attestation of its head under the attester's identity key.",
        "genesis_digest": c.genesis.digest().to_hex(),
        "seal0_digest": seal0.digest().to_hex(),
        "proposal": {
            "base_version": proposal.base_version.0,
            "base_seal_digest": proposal.base_seal_digest.to_hex(),
            "layer_files": files,
            "layer_bytes": hex::encode(proposal.layer.as_slice()),
            "layer_digest": layer.digest().to_hex(),
            "justification": proposal.justification,
            "proposer": Key32::to_string(&proposal.proposer),
            "created_at_ms": proposal.created_at_ms,
            "signing_bytes": hex::encode(proposal.signing_bytes()),
            "proposal_id": id.to_string(),
            "signature": hex::encode(signed.signature.0),
            "signed_proposal": hex::encode(signed.encode()),
        },
        "votes": votes,
        "approvers": approvers.iter().map(|n| n.get()).collect::<Vec<_>>(),
        "seal1": {
            "version": seal1.version.0,
            "policy_digest": seal1.policy_digest.to_hex(),
            "prev_seal": seal1.prev_seal.to_hex(),
            "epoch": seal1.epoch.0,
            "signing_bytes": hex::encode(msg.as_slice()),
            "seal_digest": seal1.digest().to_hex(),
            "signature": hex::encode(sig),
            "ledger": ledger,
            "attestation_signing_bytes": hex::encode(
                senatus_genesis::seal::SealAttestations::signing_bytes(&seal1.digest(), head_index, &head_hash)
            ),
            "attested": {
                "ledger_index": head_index,
                "entry_hash": head_hash.to_hex(),
                "by": attested.by.iter().map(|a| json!({
                    "validator": a.validator.get(),
                    "signature": hex::encode(a.signature.0),
                })).collect::<Vec<_>>(),
            },
            "signed_seal_json": serde_json::to_value(&chain[1]).expect("json"),
        },
    });
    common::pin("amendment-v1.json", &value);
}

/// The byte layouts written out by hand (not with `Encoder`), so a change on
/// either side shows up here even before the JSON vector is consulted.
#[test]
fn amendment_layouts_are_pinned() {
    // The bounds PROTOCOL.md 16.1 and 16.4 state.
    assert_eq!(senatus_quorum::amend::PROPOSAL_OVERHEAD_BYTES, 182);
    assert_eq!(senatus_quorum::amend::SIGNED_VOTE_BYTES_MAX, 4359);
    let proposal = Proposal {
        base_version: senatus_genesis::PolicyVersion(1),
        base_seal_digest: senatus_genesis::Digest([0xaa; 32]),
        layer: b"L".to_vec(),
        justification: "why".into(),
        proposer: Key32([0xbb; 32]),
        created_at_ms: 0x0102,
    };
    let mut want = b"senatus/amendment-proposal/v1\0".to_vec();
    want.extend_from_slice(&1u64.to_be_bytes());
    want.extend_from_slice(&[0xaa; 32]);
    want.extend_from_slice(&[0, 0, 0, 1, b'L']);
    want.extend_from_slice(&[0, 0, 0, 3, b'w', b'h', b'y']);
    want.extend_from_slice(&[0xbb; 32]);
    want.extend_from_slice(&0x0102u64.to_be_bytes());
    assert_eq!(proposal.signing_bytes(), want);
    assert_eq!(proposal.id().0, senatus_genesis::sha3(&want));

    let vote = Vote {
        proposal: proposal.id(),
        voter: node(3),
        verdict: Verdict::Reject(vec!["a".into(), "b-c".into()]),
    };
    let mut want = b"senatus/amendment-vote/v1\0".to_vec();
    want.extend_from_slice(&proposal.id().0.0);
    want.extend_from_slice(&3u64.to_be_bytes());
    want.push(2);
    want.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 3, b'b', b'-', b'c']);
    assert_eq!(vote.signing_bytes(), want);
    let approve = Vote {
        verdict: Verdict::Approve,
        ..vote.clone()
    };
    let mut want = b"senatus/amendment-vote/v1\0".to_vec();
    want.extend_from_slice(&proposal.id().0.0);
    want.extend_from_slice(&3u64.to_be_bytes());
    want.extend_from_slice(&[1, 0, 0, 0, 0]);
    assert_eq!(approve.signing_bytes(), want);
    let recuse = Vote {
        verdict: Verdict::Recuse,
        ..vote
    };
    assert_eq!(recuse.signing_bytes()[want.len() - 5], 3);
}
