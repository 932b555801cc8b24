//! The replicated core fed one command at a time, the way openraft's engine
//! tests feed one event: each test asserts the exact effects or the exact
//! rejection, and that a refused command changes nothing.

use std::sync::Arc;

use rand::SeedableRng as _;
use senatus_genesis::codec::{Digest, Encoder, sha3};
use senatus_genesis::{Epoch, PolicyLayer, PolicyVersion, Seal};
use senatus_quorum::auth::SignedRequest;
use senatus_quorum::batch::DecisionBatch;
use senatus_quorum::request::{AgentContext, DecisionRequest};
use senatus_replica::amend::AmendState;
use senatus_replica::command::{Command, CommandRejection};
use senatus_replica::ledger::{EntryKind, LEDGER_PAYLOAD_BYTES_MAX, LedgerEntry, LedgerHead};
use senatus_replica::records::{
    IdempotencyRecord, MemRecords, REDEMPTION_OBJECT, Records, idempotency_key,
};
use senatus_replica::state::{ApplyError, Effects, ReplayError, State};

fn genesis_digest() -> Digest {
    sha3(b"replica apply test genesis")
}

fn ceremony() -> senatus_genesis::ceremony::Ceremony {
    let params = senatus_genesis::ceremony::CeremonyParams {
        chain_id: "senatus-replica-test".into(),
        threshold: 3,
        nodes: (1..=5)
            .map(|i| senatus_genesis::ceremony::NodeAddrs {
                peer: format!("127.0.0.{i}:7000"),
                api: format!("127.0.0.{i}:7001"),
                metrics: format!("127.0.0.{i}:7002"),
            })
            .collect(),
        policy: PolicyLayer::example(),
        created_at_ms: 1_700_000_000_000,
    };
    senatus_genesis::ceremony::Ceremony::run(params, &mut rand::rngs::StdRng::seed_from_u64(3))
        .expect("ceremony")
}

/// A state that tallies amendments over the example layer, and its seal 0.
fn governed() -> (State, Seal) {
    let c = ceremony();
    let seal = Seal::genesis(&c.genesis);
    let amend = AmendState::new(
        Arc::new(PolicyLayer::example()),
        seal.clone(),
        c.genesis.body.authority_key,
    )
    .expect("amendment state")
    .with_genesis(c.genesis.clone());
    (State::new(c.genesis.digest(), Some(amend)), seal)
}

/// Applies or panics with the rejection.
fn apply(state: &mut State, records: &mut MemRecords, cmd: &Command) -> Effects {
    let effects = state.apply(&*records, cmd).expect("applies");
    records.absorb(&effects);
    effects
}

fn refused(state: &mut State, records: &MemRecords, cmd: &Command) -> CommandRejection {
    let before = (state.head(), state.digest());
    let r = match state.apply(records, cmd) {
        Err(ApplyError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    };
    assert_eq!(
        (state.head(), state.digest()),
        before,
        "a refusal changes nothing"
    );
    r
}

fn record(payload: &[u8]) -> Command {
    Command::new(EntryKind::Record, payload.to_vec())
}

fn redemption(nonce: [u8; 16]) -> Command {
    let mut e = Encoder::new(REDEMPTION_OBJECT, 1);
    e.bytes(&nonce)
        .digest(&Digest([1; 32]))
        .digest(&Digest([2; 32]));
    Command::new(EntryKind::Redemption, e.finish())
}

/// A request by `actor`, signed with a key of its own (seeded by its name).
fn request(actor: &str, idempotency_key: &str) -> SignedRequest {
    signed_with(actor.as_bytes()[actor.len() - 1], actor, idempotency_key)
}

fn signed_with(seed: u8, actor: &str, idempotency_key: &str) -> SignedRequest {
    let r = DecisionRequest {
        surface: "payments".into(),
        action: "transfer".into(),
        actor: actor.into(),
        tenant: "acme".into(),
        params: serde_json::json!({ "amount": 100, "currency": "EUR", "to_account": "DE00" }),
        context: AgentContext::default(),
        idempotency_key: idempotency_key.into(),
    };
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    SignedRequest::sign(&key, &genesis_digest(), r, 1_700_000_000_000)
}

fn decisions(seal: &Seal, requests: Vec<SignedRequest>) -> Command {
    let batch = DecisionBatch {
        issued_at_ms: 1_700_000_000_000,
        expires_at_ms: 1_700_000_060_000,
        policy_version: PolicyVersion(seal.version.0),
        seal_digest: seal.digest(),
        epoch: Epoch(0),
        requests,
    };
    Command::new(EntryKind::Decision, batch.encode())
}

#[test]
fn a_record_appends_the_specified_entry_and_nothing_else() {
    let mut state = State::new(genesis_digest(), None);
    let mut records = MemRecords::new();
    let empty = state.digest();
    let e = apply(&mut state, &mut records, &record(b"r1"));
    assert_eq!(
        e.entry,
        LedgerEntry::next(
            &LedgerHead::genesis(genesis_digest()),
            EntryKind::Record,
            b"r1".to_vec()
        )
    );
    assert_eq!(e.redeemed, None);
    assert_eq!(e.idempotency, vec![]);
    assert_eq!(e.state_digest, state.digest());
    assert_ne!(e.state_digest, empty);
    assert_eq!(state.head(), e.entry.head());
}

#[test]
fn a_nonce_is_redeemed_once_and_the_second_attempt_names_the_first() {
    let mut state = State::new(genesis_digest(), None);
    let mut records = MemRecords::new();
    apply(&mut state, &mut records, &record(b"r1"));
    let first = apply(&mut state, &mut records, &redemption([7; 16]));
    assert_eq!(first.redeemed, Some((vec![7; 16], 2)));
    assert_eq!(
        refused(&mut state, &records, &redemption([7; 16])),
        CommandRejection::NonceReplayed {
            nonce: hex::encode([7; 16]),
            first_index: 2
        }
    );
    // Another nonce still redeems.
    let other = apply(&mut state, &mut records, &redemption([8; 16]));
    assert_eq!(other.redeemed, Some((vec![8; 16], 3)));
}

#[test]
fn malformed_and_oversized_commands_are_refused_with_their_reason() {
    let mut state = State::new(genesis_digest(), None);
    let records = MemRecords::new();
    assert_eq!(
        refused(
            &mut state,
            &records,
            &Command::new(EntryKind::Redemption, b"not a redemption".to_vec())
        ),
        CommandRejection::MalformedRedemption
    );
    assert_eq!(
        refused(
            &mut state,
            &records,
            &Command::new(EntryKind::Decision, b"not a batch".to_vec())
        ),
        CommandRejection::MalformedDecision
    );
    assert_eq!(
        refused(
            &mut state,
            &records,
            &record(&vec![0; LEDGER_PAYLOAD_BYTES_MAX + 1])
        ),
        CommandRejection::PayloadTooLarge {
            bytes: LEDGER_PAYLOAD_BYTES_MAX as u64 + 1,
            max: LEDGER_PAYLOAD_BYTES_MAX as u64
        }
    );
    // A certificate that does not decode is refused for that first.
    assert_eq!(
        refused(
            &mut state,
            &records,
            &Command::new(EntryKind::Certificate, b"x".to_vec())
        ),
        CommandRejection::Amendment(
            "certificate: shutdown-certificate: expected tag \"senatus/shutdown-certificate/v1\""
                .into()
        )
    );
    // Without a tally, every amendment kind is refused, by name.
    for kind in [
        EntryKind::Proposal,
        EntryKind::Vote,
        EntryKind::Seal,
        EntryKind::Redeclaration,
    ] {
        let r = refused(&mut state, &records, &Command::new(kind, b"x".to_vec()));
        assert_eq!(
            r,
            CommandRejection::Amendment(
                "this node's state machine does not tally amendments".into()
            ),
            "{kind}"
        );
    }
    assert_eq!(state.head().index, 0);
}

#[test]
fn each_idempotency_key_resolves_to_its_first_decision_only() {
    let (mut state, seal) = governed();
    let mut records = MemRecords::new();
    let a = request("agent-1", "k-a");
    let b = request("agent-1", "k-b");
    let a_again = request("agent-1", "k-a");
    let first = apply(
        &mut state,
        &mut records,
        &decisions(&seal, vec![a.clone(), b.clone(), a_again.clone()]),
    );
    assert_eq!(
        first.idempotency,
        vec![
            (
                idempotency_key(&a),
                IdempotencyRecord {
                    ledger_index: 1,
                    position: 0,
                    request_digest: a.request.digest()
                }
            ),
            (
                idempotency_key(&b),
                IdempotencyRecord {
                    ledger_index: 1,
                    position: 1,
                    request_digest: b.request.digest()
                }
            ),
        ]
    );
    // The same key from another actor is another key.
    let other_actor = request("agent-2", "k-a");
    let second = apply(
        &mut state,
        &mut records,
        &decisions(&seal, vec![a_again, other_actor.clone()]),
    );
    assert_eq!(
        second.idempotency,
        vec![(
            idempotency_key(&other_actor),
            IdempotencyRecord {
                ledger_index: 2,
                position: 1,
                request_digest: other_actor.request.digest()
            }
        )]
    );
}

#[test]
fn an_idempotency_key_belongs_to_the_key_that_signed_it() {
    let (mut state, seal) = governed();
    let mut records = MemRecords::new();
    // agent-1 under its first key, then the same request under a new key
    // (after a rotation): two keys, two records; the first key's retry
    // resolves to the first record and adds none.
    let first = request("agent-1", "k-r");
    let rotated = signed_with(0x42, "agent-1", "k-r");
    assert_eq!(first.request.digest(), rotated.request.digest());
    assert_ne!(idempotency_key(&first), idempotency_key(&rotated));
    let one = apply(
        &mut state,
        &mut records,
        &decisions(&seal, vec![first.clone()]),
    );
    assert_eq!(one.idempotency.len(), 1);
    let two = apply(
        &mut state,
        &mut records,
        &decisions(&seal, vec![first, rotated.clone()]),
    );
    assert_eq!(
        two.idempotency,
        vec![(
            idempotency_key(&rotated),
            IdempotencyRecord {
                ledger_index: 2,
                position: 1,
                request_digest: rotated.request.digest()
            }
        )]
    );
}

#[test]
fn a_batch_for_another_seal_is_refused_as_stale() {
    let (mut state, seal) = governed();
    let records = MemRecords::new();
    let mut other = seal.clone();
    other.version = PolicyVersion(seal.version.0 + 1);
    let r = refused(
        &mut state,
        &records,
        &decisions(&other, vec![request("agent-1", "k")]),
    );
    assert_eq!(
        r,
        CommandRejection::StalePolicy {
            batch_version: seal.version.0 + 1,
            active_version: seal.version.0,
            active_seal: seal.digest().to_hex(),
        }
    );
}

/// Applies a mixed ledger and returns it with the digest after each entry.
fn mixed_ledger() -> (Vec<LedgerEntry>, Vec<Digest>, MemRecords) {
    let (mut state, seal) = governed();
    let mut records = MemRecords::new();
    let mut ledger = Vec::new();
    let mut digests = Vec::new();
    let commands = [
        record(b"r1"),
        decisions(&seal, vec![request("a", "1"), request("a", "2")]),
        redemption([1; 16]),
        decisions(&seal, vec![request("a", "1"), request("b", "1")]),
        redemption([2; 16]),
        record(b"r2"),
    ];
    for c in &commands {
        let e = apply(&mut state, &mut records, c);
        digests.push(e.state_digest);
        ledger.push(e.entry);
    }
    (ledger, digests, records)
}

#[test]
fn replay_gives_the_same_digest_at_every_index_whatever_the_records_already_hold() {
    let (ledger, digests, all_records) = mixed_ledger();
    // From empty records (a snapshot install, an auditor).
    let (mut fresh, _) = governed();
    let mut records = MemRecords::new();
    for (entry, want) in ledger.iter().zip(&digests) {
        let e = fresh.replay(&records, entry).expect("replays");
        records.absorb(&e);
        assert_eq!(e.state_digest, *want, "index {}", entry.index);
    }
    assert_eq!(records, all_records);
    // Over the records the whole ledger already made (a node's own store
    // at boot): records from the entry itself or later are disregarded.
    let (mut boot, _) = governed();
    for (entry, want) in ledger.iter().zip(&digests) {
        let e = boot.replay(&all_records, entry).expect("replays");
        assert_eq!(e.state_digest, *want, "index {}", entry.index);
    }
    assert_eq!(all_records.redeemed(&[2; 16]), Ok(Some(5)));
}

#[test]
fn replay_names_an_entry_that_does_not_apply_or_diverges() {
    let (ledger, _, _) = mixed_ledger();
    let (mut state, _) = governed();
    let records = MemRecords::new();
    // Entry 3 redeems nonce 1; replaying it twice is a refusal, named.
    for e in &ledger[..3] {
        state.replay(&records, e).expect("replays");
    }
    let mut mem = MemRecords::new();
    let (mut again, _) = governed();
    for e in &ledger[..3] {
        let fx = again.replay(&mem, e).expect("replays");
        mem.absorb(&fx);
    }
    let replayed = LedgerEntry::next(&again.head(), ledger[2].kind, ledger[2].payload.clone());
    match again.replay(&mem, &replayed) {
        Err(ReplayError::Refused {
            index: 4,
            kind: EntryKind::Redemption,
            rejection: CommandRejection::NonceReplayed { first_index: 3, .. },
        }) => {}
        other => panic!("expected a named refusal, got {other:?}"),
    }
    // An entry whose hash is not the one apply computes.
    let mut forged = ledger[3].clone();
    forged.hash = Digest([0xee; 32]);
    match state.replay(&records, &forged) {
        Err(ReplayError::Diverged {
            index: 4,
            derived,
            recorded,
        }) => {
            assert_eq!(derived, ledger[3].hash);
            assert_eq!(recorded, Digest([0xee; 32]));
        }
        other => panic!("expected divergence, got {other:?}"),
    }
}

#[test]
fn the_state_digest_is_the_specified_bytes() {
    // docs/PROTOCOL.md, "State digest": the empty state's digest, spelled
    // out byte by byte.
    let state = State::new(genesis_digest(), None);
    let mut pre = b"senatus/state/v1\0".to_vec();
    pre.extend_from_slice(&0u64.to_be_bytes());
    pre.extend_from_slice(&genesis_digest().0);
    pre.extend_from_slice(&[0; 32]);
    pre.extend_from_slice(&0u64.to_be_bytes());
    pre.extend_from_slice(&[0; 32]);
    pre.extend_from_slice(&0u64.to_be_bytes());
    pre.extend_from_slice(&[0; 32]);
    assert_eq!(state.digest(), sha3(&pre));
}

/// A Seal entry's attested head (PROTOCOL 4.1, 16.9) must be an earlier
/// entry of this very ledger with the hash this validator holds there: a
/// seal attested on another branch of a forked log is refused before its
/// signature is even looked at, and nothing changes.
#[test]
fn a_seal_attested_over_another_branchs_entry_is_refused() {
    use senatus_quorum::amend::{Proposal, Verdict, Vote};
    let c = ceremony();
    let (mut state, seal0) = governed();
    let mut records = MemRecords::new();
    let mut files = PolicyLayer::example().files().clone();
    let text = String::from_utf8(files["constitution.toml"].clone()).expect("utf8");
    files.insert(
        "constitution.toml".into(),
        text.replace("\nversion = 1\n", "\nversion = 2\n")
            .into_bytes(),
    );
    let v2 = PolicyLayer::from_files(files).expect("v2");
    let proposal = Proposal {
        base_version: seal0.version,
        base_seal_digest: seal0.digest(),
        layer: v2.canonical_bytes(),
        justification: "v2".into(),
        proposer: c.genesis.body.authority_key,
        created_at_ms: 1,
    }
    .sign(c.authority.signing_key())
    .expect("signed");
    apply(
        &mut state,
        &mut records,
        &Command::new(EntryKind::Proposal, proposal.encode()),
    );
    for voter in 1..=3u64 {
        let vote = Vote {
            proposal: proposal.id(),
            voter: senatus_genesis::NodeId::new(voter).expect("id"),
            verdict: Verdict::Approve,
        }
        .sign(c.nodes[voter as usize - 1].identity.signing_key())
        .expect("vote");
        apply(
            &mut state,
            &mut records,
            &Command::new(EntryKind::Vote, vote.encode()),
        );
    }
    // Passed at index 4, the third approval.
    let head = records.entry_hash(4).expect("records").expect("entry 4");
    let next = Seal {
        version: PolicyVersion(2),
        policy_digest: v2.digest(),
        prev_seal: seal0.digest(),
        ..seal0.clone()
    };
    let entry = |at: u64, hash: Digest| senatus_replica::amend::SealEntry {
        proposal: proposal.id(),
        seal_digest: next.digest(),
        signature: senatus_genesis::Sig64([7; 64]),
        attested: c.attest_seal(&next, &[1, 2, 3, 4], at, hash),
    };
    let before = state.digest();
    let other = sha3(b"the entry at index 4 on the other branch");
    for (at, hash, why) in [
        (
            4,
            other,
            format!(
                "seal entry: the attested head is entry 4 with hash {other}, this validator's entry 4 has hash {head}"
            ),
        ),
        (
            5,
            head,
            "seal entry: the attested head 5 is not an earlier entry of this ledger".to_string(),
        ),
    ] {
        let cmd = Command::new(EntryKind::Seal, entry(at, hash).encode());
        assert_eq!(
            refused(&mut state, &records, &cmd),
            CommandRejection::Amendment(why)
        );
    }
    // Its own head gets past this check to the seal's signature, which
    // this one (seven bytes repeated) fails.
    let cmd = Command::new(EntryKind::Seal, entry(4, head).encode());
    match refused(&mut state, &records, &cmd) {
        CommandRejection::Amendment(why) => assert!(why.contains("signature"), "{why}"),
        other => panic!("wrong rejection: {other:?}"),
    }
    assert_eq!(state.digest(), before, "nothing changed");
}
