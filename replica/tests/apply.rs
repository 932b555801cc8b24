//! The replicated core fed one command at a time, the way openraft's engine
//! tests feed one event: each test asserts the exact effects or the exact
//! rejection, and that a refused command changes nothing.

use std::sync::Arc;

use rand::SeedableRng as _;
use senatus_genesis::codec::{Digest, Encoder, sha3};
use senatus_genesis::registry::{Identity, Registry, Role};
use senatus_genesis::{Epoch, Key32, LedgerIndex, PolicyLayer, PolicyVersion, Seal};
use senatus_quorum::Outcome;
use senatus_quorum::auth::{AuthError, CallAuth, SignedRequest};
use senatus_quorum::batch::DecisionBatch;
use senatus_quorum::presentation::{Presentation, PresentationError, token_wire_digest};
use senatus_quorum::request::{AgentContext, DecisionRequest};
use senatus_quorum::token::{Nonce, Token, TokenBatch, TokenPayload};
use senatus_replica::amend::AmendState;
use senatus_replica::command::{Command, CommandRejection};
use senatus_replica::ledger::{EntryKind, LEDGER_PAYLOAD_BYTES_MAX, LedgerEntry, LedgerHead};
use senatus_replica::records::{
    IdempotencyRecord, MemRecords, REDEEM_METHOD, REDEMPTION_OBJECT, Records, Redemption,
    idempotency_key, redemption_nonce,
};
use senatus_replica::state::{ApplyError, Effects, ReplayError, State};

fn genesis_digest() -> Digest {
    sha3(b"replica apply test genesis")
}

fn seed(b: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[b; 32])
}

fn public(b: u8) -> Key32 {
    Key32(seed(b).verifying_key().to_bytes())
}

/// Seeds of the keys redemptions are signed with: the example registry's
/// agent-7 and agent-9 (published seeds 0x07, 0x09), and brokers added to
/// it: broker-1 and broker-3 guard payments, broker-2 only data. 0x42 is
/// registered nowhere.
const AGENT_7: u8 = 0x07;
const AGENT_9: u8 = 0x09;
const BROKER_1: u8 = 0xb1;
const BROKER_2: u8 = 0xb2;
const BROKER_3: u8 = 0xb3;
const OUTSIDER: u8 = 0x42;

/// The example layer with three brokers added to its registry.
fn layer() -> PolicyLayer {
    let example = PolicyLayer::example();
    let mut ids = example.registry().identities().to_vec();
    for (name, b, surface) in [
        ("broker-1", BROKER_1, "payments"),
        ("broker-2", BROKER_2, "data"),
        ("broker-3", BROKER_3, "payments"),
    ] {
        ids.push(Identity {
            name: name.into(),
            role: Role::Broker,
            key: public(b),
            tenant: None,
            actors: Vec::new(),
            surfaces: vec![surface.into()],
        });
    }
    example
        .with_registry(&Registry::new(ids).expect("registry"))
        .expect("layer")
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
        policy: layer(),
        created_at_ms: 1_700_000_000_000,
    };
    senatus_genesis::ceremony::Ceremony::run(params, &mut rand::rngs::StdRng::seed_from_u64(3))
        .expect("ceremony")
}

/// A state that tallies amendments over the example layer with brokers
/// ([`layer`]), and its seal 0.
fn governed() -> (State, Seal) {
    let c = ceremony();
    let seal = Seal::genesis(&c.genesis);
    let amend = AmendState::new(
        Arc::new(layer()),
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

const PARAMS: &str = r#"{"amount":100,"currency":"EUR","to_account":"DE00"}"#;
const REDEEMED_AT_MS: u64 = 1_700_000_001_000;

/// A payments/transfer token of acme/`actor` on the chain `gd` with
/// `nonce`. `apply` does not verify a token's signature (the leader's
/// broker did before appending), so it is made up.
fn token(gd: Digest, actor: &str, nonce: [u8; 16]) -> Token {
    let entry_hash = sha3(&nonce);
    let payload = TokenPayload {
        genesis_digest: gd,
        decision_id: sha3(b"a decision"),
        ledger_index: LedgerIndex(1),
        entry_hash,
        position: 0,
        outcome: Outcome::Permit,
        surface: "payments".into(),
        action: "transfer".into(),
        tenant: "acme".into(),
        actor: actor.into(),
        params_digest: sha3(b"params"),
        policy_version: PolicyVersion(1),
        seal_digest: sha3(b"seal"),
        epoch: Epoch(0),
        nonce: Nonce(nonce),
        issued_at_ms: 1_700_000_000_000,
        expires_at_ms: 1_700_000_060_000,
    };
    TokenBatch::new(vec![payload])
        .expect("batch")
        .tokens([0x5a; 64])
        .remove(0)
}

/// `agent`'s presentation of `t` to `broker`.
fn present(agent: u8, t: &Token, broker: &str) -> Presentation {
    Presentation::sign(&seed(agent), t, broker, PARAMS, REDEEMED_AT_MS)
}

/// `broker`'s signed `Redeem` call for `presentation` on the chain `gd`.
fn redeem_call(gd: Digest, broker: u8, presentation: &Presentation) -> CallAuth {
    CallAuth::sign(
        &seed(broker),
        &gd,
        REDEEM_METHOD,
        &presentation.encode(),
        REDEEMED_AT_MS + 100,
    )
}

fn redemption_of(t: &Token, presentation: Presentation, broker: CallAuth) -> Command {
    let r = Redemption {
        token_bytes: t.to_bytes(),
        token: t.clone(),
        presentation,
        broker,
    };
    Command::new(EntryKind::Redemption, r.encode())
}

/// agent-7's token with `nonce` on the chain `gd`, handed to broker-1,
/// which redeems it.
fn redemption(gd: Digest, nonce: [u8; 16]) -> Command {
    let t = token(gd, "agent-7", nonce);
    let p = present(AGENT_7, &t, "broker-1");
    let call = redeem_call(gd, BROKER_1, &p);
    redemption_of(&t, p, call)
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
    let gd = state.genesis();
    let mut records = MemRecords::new();
    apply(&mut state, &mut records, &record(b"r1"));
    let first = apply(&mut state, &mut records, &redemption(gd, [7; 16]));
    assert_eq!(first.redeemed, Some((vec![7; 16], 2)));
    assert_eq!(
        refused(&mut state, &records, &redemption(gd, [7; 16])),
        CommandRejection::NonceReplayed {
            nonce: hex::encode([7; 16]),
            first_index: 2
        }
    );
    // Another nonce still redeems.
    let other = apply(&mut state, &mut records, &redemption(gd, [8; 16]));
    assert_eq!(other.redeemed, Some((vec![8; 16], 3)));
}

#[test]
fn malformed_and_oversized_commands_are_refused_with_their_reason() {
    let mut state = State::new(genesis_digest(), None);
    let gd = state.genesis();
    let records = MemRecords::new();
    assert_eq!(
        refused(
            &mut state,
            &records,
            &Command::new(EntryKind::Redemption, b"not a redemption".to_vec())
        ),
        CommandRejection::MalformedRedemption
    );
    // A version 1 redemption (nonce, decision id, token digest) is not one.
    let mut v1 = Encoder::new(REDEMPTION_OBJECT, 1);
    v1.bytes(&[7; 16])
        .digest(&Digest([1; 32]))
        .digest(&Digest([2; 32]));
    let v1 = v1.finish();
    assert_eq!(redemption_nonce(&v1), None);
    assert_eq!(
        refused(
            &mut state,
            &records,
            &Command::new(EntryKind::Redemption, v1)
        ),
        CommandRejection::MalformedRedemption
    );
    // A version 2 redemption a byte short, or with a byte after it.
    let good = redemption(gd, [7; 16]).payload;
    assert_eq!(redemption_nonce(&good), Some(vec![7; 16]));
    let mut long = good.clone();
    long.push(0);
    for bad in [&good[..good.len() - 1], &long[..]] {
        assert_eq!(redemption_nonce(bad), None);
        assert_eq!(
            refused(
                &mut state,
                &records,
                &Command::new(EntryKind::Redemption, bad.to_vec())
            ),
            CommandRejection::MalformedRedemption
        );
    }
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
            "certificate: shutdown-certificate: expected tag \"senatus/shutdown-certificate/v2\""
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
    let gd = state.genesis();
    let mut records = MemRecords::new();
    let mut ledger = Vec::new();
    let mut digests = Vec::new();
    let commands = [
        record(b"r1"),
        decisions(&seal, vec![request("a", "1"), request("a", "2")]),
        redemption(gd, [1; 16]),
        decisions(&seal, vec![request("a", "1"), request("b", "1")]),
        redemption(gd, [2; 16]),
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
    let mut files = layer().files().clone();
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

/// With amendments, every validator checks a Redemption against the
/// registry sealed at its index (PROTOCOL 15.2): the agent's own
/// presentation, to the registered broker that signed the call, which
/// guards the token's surface. A refused one appends nothing and burns no
/// nonce; the honest one then redeems.
#[test]
fn a_redemption_needs_the_agents_presentation_and_the_named_brokers_signature() {
    let (mut state, _) = governed();
    let mut records = MemRecords::new();
    let gd = state.genesis();
    let nonce = [3; 16];
    let t = token(gd, "agent-7", nonce);
    let honest = present(AGENT_7, &t, "broker-1");
    let elsewhere = token(gd, "agent-7", [4; 16]);

    let stolen = present(AGENT_9, &t, "broker-1");
    let of_other = present(AGENT_7, &elsewhere, "broker-1");
    let to_broker_2 = present(AGENT_7, &t, "broker-2");
    // The same payload under another signature: the agent's presentation
    // of `t` does not present it (PROTOCOL 10.3 binds the wire bytes).
    let mut resigned = t.clone();
    resigned.signature[0] ^= 1;
    assert_eq!(resigned.digest(), t.digest());
    // The same token, nonce and agent, of another chain.
    let foreign_gd = sha3(b"another genesis");
    let foreign = token(foreign_gd, "agent-7", nonce);
    let of_foreign = present(AGENT_7, &foreign, "broker-1");
    let cases: Vec<(&str, Command, String)> =
        vec![
        (
            "a token of another chain",
            redemption_of(
                &foreign,
                of_foreign.clone(),
                redeem_call(gd, BROKER_1, &of_foreign),
            ),
            format!("the token is of genesis {foreign_gd}, this ledger's is {gd}"),
        ),
        (
            "the presented token with another signature",
            redemption_of(&resigned, honest.clone(), redeem_call(gd, BROKER_1, &honest)),
            format!(
                "presentation (other-token): {}",
                PresentationError::OtherToken {
                    presented: token_wire_digest(&t),
                    token: token_wire_digest(&resigned),
                }
            ),
        ),
        (
            "presented by another agent",
            redemption_of(&t, stolen.clone(), redeem_call(gd, BROKER_1, &stolen)),
            format!(
                "presentation (other-agent): {}",
                PresentationError::OtherAgent {
                    key: public(AGENT_9),
                    tenant: "acme".into(),
                    actor: "agent-7".into(),
                    agent: Some("agent-7".into()),
                }
            ),
        ),
        (
            "a presentation of another token",
            redemption_of(&t, of_other.clone(), redeem_call(gd, BROKER_1, &of_other)),
            format!(
                "presentation (other-token): {}",
                PresentationError::OtherToken {
                    presented: token_wire_digest(&elsewhere),
                    token: token_wire_digest(&t),
                }
            ),
        ),
        (
            "redeemed by an unregistered broker",
            redemption_of(&t, honest.clone(), redeem_call(gd, OUTSIDER, &honest)),
            format!(
                "broker (unknown-key): {}",
                AuthError::UnknownKey {
                    key: public(OUTSIDER)
                }
            ),
        ),
        (
            "redeemed by the agent itself",
            redemption_of(&t, honest.clone(), redeem_call(gd, AGENT_7, &honest)),
            format!(
                "broker (wrong-role): {}",
                AuthError::WrongRole {
                    key: public(AGENT_7),
                    name: "agent-7".into(),
                    role: Role::Agent,
                    needs: "broker".into(),
                }
            ),
        ),
        (
            "redeemed by a broker the agent did not hand it to",
            redemption_of(&t, honest.clone(), redeem_call(gd, BROKER_3, &honest)),
            "broker \"broker-3\" redeemed a token the agent handed to \"broker-1\"".into(),
        ),
        (
            "redeemed by a broker that does not guard its surface",
            redemption_of(
                &t,
                to_broker_2.clone(),
                redeem_call(gd, BROKER_2, &to_broker_2),
            ),
            "broker \"broker-2\" does not guard surface \"payments\" (its surfaces: [\"data\"])"
                .into(),
        ),
        (
            "a broker signature over another presentation",
            redemption_of(&t, honest.clone(), redeem_call(gd, BROKER_1, &of_other)),
            format!(
                "broker (bad-signature): {}",
                AuthError::BadSignature {
                    key: public(BROKER_1)
                }
            ),
        ),
        (
            "a broker signature over another method",
            redemption_of(
                &t,
                honest.clone(),
                CallAuth::sign(
                    &seed(BROKER_1),
                    &gd,
                    "AppendRecord",
                    &honest.encode(),
                    REDEEMED_AT_MS,
                ),
            ),
            format!(
                "broker (bad-signature): {}",
                AuthError::BadSignature {
                    key: public(BROKER_1)
                }
            ),
        ),
        (
            "a broker signature for another chain",
            redemption_of(
                &t,
                honest.clone(),
                CallAuth::sign(
                    &seed(BROKER_1),
                    &sha3(b"another genesis"),
                    REDEEM_METHOD,
                    &honest.encode(),
                    REDEEMED_AT_MS,
                ),
            ),
            format!(
                "broker (bad-signature): {}",
                AuthError::BadSignature {
                    key: public(BROKER_1)
                }
            ),
        ),
    ];
    for (case, cmd, why) in cases {
        assert_eq!(
            refused(&mut state, &records, &cmd),
            CommandRejection::RedemptionRefused(why),
            "{case}"
        );
        assert_eq!(state.head().index, 0, "{case}: nothing appended");
    }
    assert_eq!(records.redeemed(&nonce), Ok(None), "no nonce burnt");

    let fx = apply(
        &mut state,
        &mut records,
        &redemption_of(&t, honest.clone(), redeem_call(gd, BROKER_1, &honest)),
    );
    assert_eq!(fx.redeemed, Some((nonce.to_vec(), 1)));
    assert_eq!(
        Redemption::decode(&fx.entry.payload).map(|r| r.presentation),
        Ok(honest)
    );
    // The same redemption again is a replay of the nonce, refused as such.
    assert_eq!(
        refused(&mut state, &records, &redemption(gd, nonce)),
        CommandRejection::NonceReplayed {
            nonce: hex::encode(nonce),
            first_index: 1
        }
    );
}

/// Without amendments (storage tests) a redemption is only decoded: the
/// registry it would be checked against is the amendment state's.
#[test]
fn without_amendments_a_decodable_redemption_is_not_judged() {
    let mut state = State::new(genesis_digest(), None);
    let gd = state.genesis();
    let mut records = MemRecords::new();
    let t = token(gd, "agent-7", [5; 16]);
    let stolen = present(AGENT_9, &t, "broker-1");
    let fx = apply(
        &mut state,
        &mut records,
        &redemption_of(&t, stolen.clone(), redeem_call(gd, OUTSIDER, &stolen)),
    );
    assert_eq!(fx.redeemed, Some((vec![5; 16], 1)));
}

/// The ledger holds at most one certificate in force per (issuer, subject,
/// breach kind) (PROTOCOL 17.8): the same issuer certifying the same
/// subject for the same kind again appends nothing and names the one in
/// force; another kind, or another issuer, is a new certificate.
#[test]
fn a_certificate_like_one_in_force_by_the_same_issuer_is_redundant() {
    use senatus_genesis::NodeId;
    use senatus_quorum::amend::{Equivocation, ProposalId, Verdict, Vote};
    use senatus_quorum::certificate::{
        Certificate, DriftLocation, Evidence, SignedCertificate, Subject,
    };
    let c = ceremony();
    let (mut state, seal) = governed();
    let mut records = MemRecords::new();
    let node = |n: u64| NodeId::new(n).expect("node id");
    let key = |n: u64| c.nodes[n as usize - 1].identity.signing_key();
    let certify = |state: &State, subject: Subject, evidence: Evidence, issuer: u64| {
        let head = state.head();
        Certificate {
            subject,
            evidence,
            head_index: head.index,
            head_hash: head.hash,
            issuer: node(issuer),
            issued_at_ms: 1_700_000_000_000,
        }
        .sign(key(issuer))
    };
    let entry = |cert: &SignedCertificate| Command::new(EntryKind::Certificate, cert.encode());
    let drift = |observed: &[u8]| Evidence::PolicyDrift {
        location: DriftLocation::Disk,
        policy_version: seal.version.0,
        sealed_digest: seal.policy_digest,
        observed_digest: sha3(observed),
    };
    let equivocation = |proposal: &[u8]| {
        let vote = |verdict| {
            Vote {
                proposal: ProposalId(sha3(proposal)),
                voter: node(2),
                verdict,
            }
            .sign(key(2))
            .expect("vote")
        };
        Evidence::VoteEquivocation(Equivocation {
            first: vote(Verdict::Approve),
            second: vote(Verdict::Reject(vec!["floor-lowered".into()])),
        })
    };
    let two = Subject::Validator(node(2));

    // Validator 2 reports its own drift: on the ledger at index 1.
    let first = certify(&state, two.clone(), drift(b"tampered once"), 2);
    apply(&mut state, &mut records, &entry(&first));
    // Again, another observation: in force already.
    let again = certify(&state, two.clone(), drift(b"tampered twice"), 2);
    assert_ne!(again.id(), first.id());
    assert_eq!(
        refused(&mut state, &records, &entry(&again)),
        CommandRejection::Amendment(format!(
            "certificate: redundant: certificate {} (ledger index 1) by validator 2 about validator 2 for policy-drift is in force",
            first.id()
        ))
    );
    // The same certificate again is not redundant but a repeat, named so.
    assert_eq!(
        refused(&mut state, &records, &entry(&first)),
        CommandRejection::CertificateOnLedger {
            id: first.id().0.to_hex(),
            first_index: 1
        }
    );
    // Another kind about the same subject: validator 1 certifies its vote
    // equivocation, at index 2; then another of its equivocations is
    // redundant from validator 1, not from validator 4.
    let by_1 = certify(&state, two.clone(), equivocation(b"proposal one"), 1);
    apply(&mut state, &mut records, &entry(&by_1));
    let by_1_again = certify(&state, two.clone(), equivocation(b"proposal two"), 1);
    assert_eq!(
        refused(&mut state, &records, &entry(&by_1_again)),
        CommandRejection::Amendment(format!(
            "certificate: redundant: certificate {} (ledger index 2) by validator 1 about validator 2 for vote-equivocation is in force",
            by_1.id()
        ))
    );
    let by_4 = certify(&state, two, equivocation(b"proposal two"), 4);
    let fx = apply(&mut state, &mut records, &entry(&by_4));
    assert_eq!(fx.entry.index, 3);
}
