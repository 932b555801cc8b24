//! Presentations (docs/PROTOCOL.md 10.3): an agent's signature handing one
//! token to one broker with an exact params text. `verify_for` and `admit`
//! accept exactly the honest hand-off and refuse every other with the code
//! of the rule it breaks; a changed byte anywhere never verifies. Also
//! pins `docs/vectors/presentation-v1.json`; regenerate deliberately with
//! `SENATUS_WRITE_VECTORS=1 cargo test -p senatus-quorum --test presentation`,
//! then update docs/PROTOCOL.md (10.3) and review the diff.

mod common;

use std::collections::BTreeSet;

use senatus_genesis::codec::Encoder;
use senatus_genesis::registry::{Identity, Registry, Role};
use senatus_genesis::{Digest, Epoch, Key32, LedgerIndex, PolicyLayer, PolicyVersion, sha3};
use senatus_quorum::Outcome;
use senatus_quorum::auth::AuthError;
use senatus_quorum::params::params_digest;
use senatus_quorum::presentation::{
    BROKER_NAME_BYTES_MAX, PRESENTATION_BYTES_MAX, Presentation, PresentationError, params_hash,
    presentation_signing_bytes, token_wire_digest,
};
use senatus_quorum::token::{Token, TokenBatch, TokenPayload, decision_id, derive_nonce};
use serde_json::{Value, json};

use common::vectors_dir;

const ISSUED_AT_MS: u64 = 1_767_225_600_000;
/// When the agent hands the token over: 2 s after issue.
const PRESENTED_AT_MS: u64 = ISSUED_AT_MS + 2_000;
/// The freshness window `admit` is given (the example constitution's
/// `requests.signed_skew_ms_max`).
const SKEW_MS: u64 = 120_000;
const PARAMS: &str = r#"{"amount":1200,"currency":"EUR","to_account":"acct-42"}"#;

fn seed(b: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[b; 32])
}

fn key(b: u8) -> Key32 {
    Key32(seed(b).verifying_key().to_bytes())
}

fn agent(name: &str, seed: u8, actors: &[&str]) -> Identity {
    Identity {
        name: name.into(),
        role: Role::Agent,
        key: key(seed),
        tenant: Some("acme".into()),
        actors: actors.iter().map(|a| a.to_string()).collect(),
        surfaces: Vec::new(),
    }
}

/// agent-7 (seed 0x07) and agent-9 (seed 0x09) of tenant acme, and
/// broker-1 (seed 0xb1) guarding payments.
fn registry() -> Registry {
    Registry::new(vec![
        agent("agent-7", 0x07, &["agent-7"]),
        agent("agent-9", 0x09, &["agent-9"]),
        Identity {
            name: "broker-1".into(),
            role: Role::Broker,
            key: key(0xb1),
            tenant: None,
            actors: Vec::new(),
            surfaces: vec!["payments".into()],
        },
    ])
    .expect("registry")
}

/// A token of acme/`actor` at ledger index `index`. Presentations do not
/// look at the token's signature, so it is made up.
fn token(actor: &str, index: u64) -> Token {
    let entry_hash = sha3(format!("presentation test entry {index}").as_bytes());
    let payload = TokenPayload {
        genesis_digest: sha3(b"presentation test genesis"),
        decision_id: decision_id(LedgerIndex(index), &entry_hash, 0),
        ledger_index: LedgerIndex(index),
        entry_hash,
        position: 0,
        outcome: Outcome::Permit,
        surface: "payments".into(),
        action: "transfer".into(),
        tenant: "acme".into(),
        actor: actor.into(),
        params_digest: params_digest(&serde_json::from_str(PARAMS).expect("json")).expect("digest"),
        policy_version: PolicyVersion(1),
        seal_digest: sha3(b"seal 0"),
        epoch: Epoch(0),
        nonce: derive_nonce(&entry_hash, 0),
        issued_at_ms: ISSUED_AT_MS,
        expires_at_ms: ISSUED_AT_MS + 60_000,
    };
    TokenBatch::new(vec![payload])
        .expect("batch")
        .tokens([0x5a; 64])
        .remove(0)
}

/// agent-7's honest hand-off of its token to broker-1.
fn honest() -> (Registry, Token, Presentation) {
    let t = token("agent-7", 9);
    let p = Presentation::sign(&seed(0x07), &t, "broker-1", PARAMS, PRESENTED_AT_MS);
    (registry(), t, p)
}

fn admit_code(
    p: &Presentation,
    r: &Registry,
    t: &Token,
    broker: &str,
    params: &str,
    now: u64,
) -> Result<String, &'static str> {
    p.admit(r, t, broker, params, now, SKEW_MS)
        .map(|who| who.name.clone())
        .map_err(|e| e.code())
}

// ---- what must pass ----

#[test]
fn sign_encode_decode_is_the_identity_and_the_bytes_are_as_specified() {
    let (_, t, p) = honest();
    let wire = p.encode();
    assert!(wire.len() <= PRESENTATION_BYTES_MAX);
    let back = Presentation::decode(&wire).expect("decodes");
    assert_eq!(back, p);
    assert_eq!(back.encode(), wire);
    assert_eq!(p.digest(), sha3(&wire));
    // The token is named by its whole wire form (9.6: payload, proof and
    // signature), not by its payload digest (9.3).
    assert_eq!(p.token_digest, sha3(&t.to_bytes()));
    assert_eq!(p.token_digest, token_wire_digest(&t));
    assert_ne!(p.token_digest, t.digest());
    assert_eq!(p.params_hash, sha3(PARAMS.as_bytes()));
    assert_eq!(p.params_hash, params_hash(PARAMS));
    assert_eq!(p.key, key(0x07));

    // The bytes the agent signs, spelled out (PROTOCOL 10.3).
    let mut signing = b"senatus/presentation-signature/v1\0".to_vec();
    signing.extend_from_slice(&t.payload.genesis_digest.0);
    signing.extend_from_slice(&sha3(&t.to_bytes()).0);
    signing.extend_from_slice(&8u32.to_be_bytes());
    signing.extend_from_slice(b"broker-1");
    signing.extend_from_slice(&sha3(PARAMS.as_bytes()).0);
    signing.extend_from_slice(&PRESENTED_AT_MS.to_be_bytes());
    assert_eq!(
        presentation_signing_bytes(
            &t.payload.genesis_digest,
            &token_wire_digest(&t),
            "broker-1",
            &sha3(PARAMS.as_bytes()),
            PRESENTED_AT_MS
        ),
        signing
    );
    // A plain Ed25519 signature over them under the agent's key.
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&p.key.0).expect("key");
    vk.verify_strict(
        &signing,
        &ed25519_dalek::Signature::from_bytes(&p.signature),
    )
    .expect("plain Ed25519");

    // The wire, spelled out.
    let mut want = b"senatus/presentation/v1\0".to_vec();
    want.extend_from_slice(&sha3(&t.to_bytes()).0);
    want.extend_from_slice(&8u32.to_be_bytes());
    want.extend_from_slice(b"broker-1");
    want.extend_from_slice(&sha3(PARAMS.as_bytes()).0);
    want.extend_from_slice(&PRESENTED_AT_MS.to_be_bytes());
    want.extend_from_slice(&key(0x07).0);
    want.extend_from_slice(&p.signature);
    assert_eq!(wire, want);
    assert_eq!(wire.len(), 24 + 32 + 4 + 8 + 32 + 8 + 32 + 64);
}

#[test]
fn the_honest_hand_off_verifies_and_is_admitted() {
    let (r, t, p) = honest();
    assert_eq!(p.verify_for(&r, &t).map(|a| a.name.as_str()), Ok("agent-7"));
    // Admitted anywhere within the window, both bounds included.
    for now in [
        PRESENTED_AT_MS,
        PRESENTED_AT_MS + SKEW_MS,
        PRESENTED_AT_MS - SKEW_MS,
    ] {
        assert_eq!(
            admit_code(&p, &r, &t, "broker-1", PARAMS, now),
            Ok("agent-7".into()),
            "now {now}"
        );
    }
    // A token of agent-7 under another of its actors is agent-7's too.
    let r2 = Registry::new(vec![agent("agent-7", 0x07, &["agent-7", "agent-7b"])]).expect("r");
    let t2 = token("agent-7b", 10);
    let p2 = Presentation::sign(&seed(0x07), &t2, "broker-1", PARAMS, PRESENTED_AT_MS);
    assert_eq!(
        p2.verify_for(&r2, &t2).map(|a| a.name.as_str()),
        Ok("agent-7")
    );
}

// ---- each rule, with its code ----

#[test]
fn a_presentation_of_another_token_is_other_token() {
    let (r, t, p) = honest();
    let other = token("agent-7", 10);
    let want = PresentationError::OtherToken {
        presented: token_wire_digest(&t),
        token: token_wire_digest(&other),
    };
    assert_eq!(want.code(), "other-token");
    assert_eq!(p.verify_for(&r, &other), Err(want.clone()));
    assert_eq!(
        p.admit(&r, &other, "broker-1", PARAMS, PRESENTED_AT_MS, SKEW_MS),
        Err(want)
    );
}

/// The same payload under another signature or another proof is another
/// token to a presentation: whoever holds the agent's presentation of a
/// genuine token cannot pass it off as the presentation of an altered (a
/// forged) one, nor of a reissue the agent never handed over.
#[test]
fn a_presentation_does_not_present_the_same_payload_with_another_signature_or_proof() {
    let (r, t, p) = honest();
    // Re-signed: the same batch of one under another signature (a reissue,
    // or a spoiled signature).
    let resigned = TokenBatch::new(vec![t.payload.clone()])
        .expect("batch")
        .tokens([0x5b; 64])
        .remove(0);
    let mut one_bit = t.clone();
    one_bit.signature[40] ^= 1;
    // Another proof: the same payload as leaf 0 of a batch of two, and the
    // carried root altered.
    let mut second = t.payload.clone();
    second.position = 1;
    let in_two = TokenBatch::new(vec![t.payload.clone(), second])
        .expect("batch")
        .tokens([0x5a; 64])
        .remove(0);
    let mut rerooted = t.clone();
    rerooted.root = sha3(b"another root");
    for (case, other) in [
        ("another signature", resigned),
        ("one signature bit flipped", one_bit),
        ("another inclusion proof", in_two),
        ("another root", rerooted),
    ] {
        assert_eq!(other.payload, t.payload, "{case}");
        assert_eq!(other.digest(), t.digest(), "{case}: one payload digest");
        let want = PresentationError::OtherToken {
            presented: token_wire_digest(&t),
            token: token_wire_digest(&other),
        };
        assert_ne!(token_wire_digest(&other), token_wire_digest(&t), "{case}");
        assert_eq!(p.verify_for(&r, &other), Err(want.clone()), "{case}");
        assert_eq!(
            p.admit(&r, &other, "broker-1", PARAMS, PRESENTED_AT_MS, SKEW_MS),
            Err(want),
            "{case}"
        );
    }
    // The token as handed over, decoded back from its bytes, still is.
    let back = Token::from_bytes(&t.to_bytes()).expect("decodes");
    assert_eq!(
        p.verify_for(&r, &back).map(|a| a.name.as_str()),
        Ok("agent-7")
    );
}

#[test]
fn a_presentation_to_another_broker_is_other_broker() {
    let (r, t, p) = honest();
    let want = PresentationError::OtherBroker {
        presented: "broker-1".into(),
        broker: "broker-2".into(),
    };
    assert_eq!(want.code(), "other-broker");
    assert_eq!(
        p.admit(&r, &t, "broker-2", PARAMS, PRESENTED_AT_MS, SKEW_MS),
        Err(want)
    );
    // No clock and no broker in `verify_for`: the hand-off itself is the
    // agent's, to whichever broker it named.
    assert!(p.verify_for(&r, &t).is_ok());
}

#[test]
fn params_other_than_the_text_presented_are_other_params() {
    let (r, t, p) = honest();
    // The same params in another spelling: the same canonical digest, but
    // not the text the agent signed.
    let spaced = r#"{"amount": 1200, "currency": "EUR", "to_account": "acct-42"}"#;
    assert_eq!(
        params_digest(&serde_json::from_str(spaced).expect("json")),
        params_digest(&serde_json::from_str(PARAMS).expect("json"))
    );
    for given in [
        spaced,
        r#"{"amount":999999,"currency":"EUR","to_account":"acct-42"}"#,
        "",
    ] {
        assert_eq!(
            p.admit(&r, &t, "broker-1", given, PRESENTED_AT_MS, SKEW_MS),
            Err(PresentationError::OtherParams {
                presented: sha3(PARAMS.as_bytes()),
                given: sha3(given.as_bytes()),
            }),
            "{given:?}"
        );
    }
    assert_eq!(
        PresentationError::OtherParams {
            presented: Digest::ZERO,
            given: Digest::ZERO
        }
        .code(),
        "other-params"
    );
}

#[test]
fn a_presentation_by_another_registered_agent_is_other_agent() {
    let (r, t, _) = honest();
    // agent-9 presents agent-7's token (stolen, or made up).
    let p = Presentation::sign(&seed(0x09), &t, "broker-1", PARAMS, PRESENTED_AT_MS);
    let want = PresentationError::OtherAgent {
        key: key(0x09),
        tenant: "acme".into(),
        actor: "agent-7".into(),
        agent: Some("agent-7".into()),
    };
    assert_eq!(want.code(), "other-agent");
    assert_eq!(want.key(), Some(key(0x09)));
    assert!(
        want.to_string().contains("registered as \"agent-7\""),
        "{want}"
    );
    assert_eq!(p.verify_for(&r, &t), Err(want.clone()));
    assert_eq!(
        p.admit(&r, &t, "broker-1", PARAMS, PRESENTED_AT_MS, SKEW_MS),
        Err(want)
    );
    // A token for an actor no agent may act as: nobody's presentation
    // verifies, not even that of an agent of its tenant.
    let orphan = token("agent-8", 11);
    let p = Presentation::sign(&seed(0x07), &orphan, "broker-1", PARAMS, PRESENTED_AT_MS);
    let want = PresentationError::OtherAgent {
        key: key(0x07),
        tenant: "acme".into(),
        actor: "agent-8".into(),
        agent: None,
    };
    assert!(
        want.to_string()
            .contains("which no registered agent may act as"),
        "{want}"
    );
    assert_eq!(p.verify_for(&r, &orphan), Err(want));
}

#[test]
fn a_presentation_by_an_unregistered_key_is_unknown_key() {
    let (r, t, _) = honest();
    let p = Presentation::sign(&seed(0x42), &t, "broker-1", PARAMS, PRESENTED_AT_MS);
    let want = PresentationError::Auth(AuthError::UnknownKey { key: key(0x42) });
    assert_eq!(want.code(), "unknown-key");
    assert_eq!(p.verify_for(&r, &t), Err(want.clone()));
    assert_eq!(
        p.admit(&r, &t, "broker-1", PARAMS, PRESENTED_AT_MS, SKEW_MS),
        Err(want)
    );
    // The agent removed from the registry (an amendment): its own earlier
    // presentation no longer verifies.
    let (_, t, mine) = honest();
    let without = Registry::new(vec![agent("agent-9", 0x09, &["agent-9"])]).expect("r");
    assert_eq!(
        mine.verify_for(&without, &t).map_err(|e| e.code()),
        Err("unknown-key")
    );
}

#[test]
fn a_presentation_by_a_broker_key_is_wrong_role() {
    let (r, t, _) = honest();
    // The broker signs a hand-off to itself: it holds no agent's key.
    let p = Presentation::sign(&seed(0xb1), &t, "broker-1", PARAMS, PRESENTED_AT_MS);
    let want = PresentationError::Auth(AuthError::WrongRole {
        key: key(0xb1),
        name: "broker-1".into(),
        role: Role::Broker,
        needs: "agent".into(),
    });
    assert_eq!(want.code(), "wrong-role");
    assert_eq!(p.verify_for(&r, &t), Err(want.clone()));
    assert_eq!(
        p.admit(&r, &t, "broker-1", PARAMS, PRESENTED_AT_MS, SKEW_MS),
        Err(want)
    );
}

#[test]
fn a_presentation_outside_the_window_is_not_fresh_both_ways() {
    let (r, t, p) = honest();
    for (now, distance_ms) in [
        (PRESENTED_AT_MS + SKEW_MS + 1, SKEW_MS + 1),
        (PRESENTED_AT_MS - SKEW_MS - 1, SKEW_MS + 1),
        (PRESENTED_AT_MS + 600_000, 600_000),
    ] {
        let want = PresentationError::Auth(AuthError::NotFresh {
            key: key(0x07),
            signed_at_ms: PRESENTED_AT_MS,
            reference_ms: now,
            distance_ms,
            skew_ms: SKEW_MS,
        });
        assert_eq!(want.code(), "not-fresh");
        assert_eq!(
            p.admit(&r, &t, "broker-1", PARAMS, now, SKEW_MS),
            Err(want),
            "now {now}"
        );
    }
    // `verify_for` has no clock: an auditor reading an old export still
    // verifies it.
    assert!(p.verify_for(&r, &t).is_ok());
}

#[test]
fn a_signature_that_does_not_verify_is_bad_signature() {
    let (r, t, p) = honest();
    let bad = || PresentationError::Auth(AuthError::BadSignature { key: key(0x07) });
    assert_eq!(bad().code(), "bad-signature");
    // A flipped bit of the signature.
    let mut flipped = p.clone();
    flipped.signature[10] ^= 0x01;
    assert_eq!(flipped.verify_for(&r, &t), Err(bad()));
    assert_eq!(
        flipped.admit(&r, &t, "broker-1", PARAMS, PRESENTED_AT_MS, SKEW_MS),
        Err(bad())
    );
    // Fields changed after signing: the broker (redirected to another
    // broker), the params hash (other params), the time (made fresh again).
    let mut redirected = p.clone();
    redirected.broker = "broker-2".into();
    assert_eq!(
        redirected.admit(&r, &t, "broker-2", PARAMS, PRESENTED_AT_MS, SKEW_MS),
        Err(bad())
    );
    let other = r#"{"amount":999999,"currency":"EUR","to_account":"acct-42"}"#;
    let mut reparam = p.clone();
    reparam.params_hash = params_hash(other);
    assert_eq!(
        reparam.admit(&r, &t, "broker-1", other, PRESENTED_AT_MS, SKEW_MS),
        Err(bad())
    );
    let mut retimed = p.clone();
    retimed.presented_at_ms += 1;
    assert_eq!(retimed.verify_for(&r, &t), Err(bad()));
    // Signed for another chain: the same fields under another genesis
    // digest are other bytes.
    use ed25519_dalek::Signer as _;
    let elsewhere = presentation_signing_bytes(
        &sha3(b"another genesis"),
        &token_wire_digest(&t),
        "broker-1",
        &params_hash(PARAMS),
        PRESENTED_AT_MS,
    );
    let mut moved = p;
    moved.signature = seed(0x07).sign(&elsewhere).to_bytes();
    assert_eq!(moved.verify_for(&r, &t), Err(bad()));
}

#[test]
fn the_rules_apply_in_the_documented_order() {
    let (r, t, _) = honest();
    // Token before broker before params before agent before time before
    // signature: each presentation breaks the rule named and every later
    // one, and reports the first.
    let stale = PRESENTED_AT_MS - SKEW_MS - 1;
    let mut p = Presentation::sign(&seed(0x42), &t, "broker-2", "{}", stale);
    p.signature[0] ^= 1;
    let other = token("agent-7", 10);
    let cases: [(&Token, &str, &str, &str); 4] = [
        (&other, "broker-1", PARAMS, "other-token"),
        (&t, "broker-1", PARAMS, "other-broker"),
        (&t, "broker-2", PARAMS, "other-params"),
        (&t, "broker-2", "{}", "unknown-key"),
    ];
    for (token, broker, params, code) in cases {
        assert_eq!(
            admit_code(&p, &r, token, broker, params, PRESENTED_AT_MS),
            Err(code)
        );
    }
    // By agent-7 itself: then freshness, then the signature.
    let mut p = Presentation::sign(&seed(0x07), &t, "broker-1", PARAMS, stale);
    p.signature[0] ^= 1;
    assert_eq!(
        admit_code(&p, &r, &t, "broker-1", PARAMS, PRESENTED_AT_MS),
        Err("not-fresh")
    );
    assert_eq!(
        admit_code(&p, &r, &t, "broker-1", PARAMS, stale),
        Err("bad-signature")
    );
}

#[test]
fn bytes_that_are_not_a_presentation_are_malformed() {
    let (_, _, p) = honest();
    let wire = p.encode();
    let malformed = |b: &[u8]| Presentation::decode(b).map_err(|e| e.code());
    assert_eq!(malformed(&[]), Err("malformed"));
    for cut in [1, 23, 24, 60, wire.len() - 65, wire.len() - 1] {
        assert_eq!(malformed(&wire[..cut]), Err("malformed"), "cut at {cut}");
    }
    let mut trailing = wire.clone();
    trailing.push(0);
    assert_eq!(malformed(&trailing), Err("malformed"));
    // Another tag, another version.
    for (object, version) in [
        ("presentation", 2),
        ("presentation-signature", 1),
        ("request", 1),
    ] {
        let mut e = Encoder::new(object, version);
        e.digest(&p.token_digest)
            .str(&p.broker)
            .digest(&p.params_hash)
            .u64(p.presented_at_ms)
            .fixed32(&p.key.0)
            .fixed64(&p.signature);
        assert_eq!(
            malformed(&e.finish()),
            Err("malformed"),
            "{object} v{version}"
        );
    }
    // A broker name over its bound (and so a presentation over its bound).
    let mut long = p.clone();
    long.broker = "b".repeat(BROKER_NAME_BYTES_MAX + 1);
    let e = Presentation::decode(&long.encode()).expect_err("oversized name");
    assert!(
        matches!(&e, PresentationError::Malformed(why) if why.contains("above")),
        "{e}"
    );
    // At its bound exactly, it decodes.
    let mut at_bound = p;
    at_bound.broker = "b".repeat(BROKER_NAME_BYTES_MAX);
    assert_eq!(at_bound.encode().len(), PRESENTATION_BYTES_MAX);
    assert_eq!(Presentation::decode(&at_bound.encode()), Ok(at_bound));
    let mut huge = vec![0u8; PRESENTATION_BYTES_MAX + 1];
    huge[..24].copy_from_slice(b"senatus/presentation/v1\0");
    assert_eq!(malformed(&huge), Err("malformed"));
    // A broker name that is not UTF-8.
    let mut bad_utf8 = wire.clone();
    bad_utf8[24 + 32 + 4] = 0xff;
    assert_eq!(malformed(&bad_utf8), Err("malformed"));
    assert_eq!(PresentationError::Missing.code(), "missing");
}

#[test]
fn a_changed_byte_anywhere_never_verifies() {
    let (r, t, p) = honest();
    let wire = p.encode();
    let mut codes = BTreeSet::new();
    for i in 0..wire.len() {
        for mask in [0x01u8, 0x80] {
            let mut w = wire.clone();
            w[i] ^= mask;
            let verdict = Presentation::decode(&w).and_then(|q| {
                let admitted = q.admit(&r, &t, "broker-1", PARAMS, PRESENTED_AT_MS, SKEW_MS);
                let verified = q.verify_for(&r, &t);
                assert!(admitted.is_err(), "byte {i} ^ {mask:#04x} is admitted");
                verified.map(|_| ())
            });
            let code = verdict
                .err()
                .unwrap_or_else(|| panic!("byte {i} ^ {mask:#04x} still verifies"))
                .code();
            codes.insert(code);
        }
    }
    // Every field is covered by some rule: the tag and lengths by decoding,
    // the token digest by the token, the key by the registry, the rest by
    // the signature.
    assert_eq!(
        codes,
        BTreeSet::from(["bad-signature", "malformed", "other-token", "unknown-key"])
    );
}

// ---- the pinned vector ----

fn read_vector(name: &str) -> Value {
    let path = vectors_dir().join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("missing vector {}: {e}", path.display())),
    )
    .expect("json")
}

#[test]
fn presentation_vector() {
    // Leaf 0 of the token vector: a PERMIT of payments/transfer for
    // acme/agent-1.
    let tv = read_vector("token-v1.json");
    let leaf = &tv["leaves"][0];
    let wire = hex::decode(leaf["token_wire"].as_str().expect("token_wire")).expect("hex");
    let t = Token::from_bytes(&wire).expect("the token vector's token");
    assert_eq!(
        t.digest().to_hex(),
        leaf["token_digest"].as_str().expect("digest")
    );
    assert_eq!(
        t.payload.genesis_digest.to_hex(),
        read_vector("genesis-v1.json")["genesis_digest"]
            .as_str()
            .expect("genesis digest")
    );
    assert_eq!(
        (t.payload.tenant.as_str(), t.payload.actor.as_str()),
        ("acme", "agent-1")
    );
    // The published agent-7 key, registered here as the agent that may act
    // as acme/agent-1 (the example layer's registry lets it act only as
    // agent-7: there this very presentation is another agent's).
    let registry = Registry::new(vec![agent("agent-7", 0x07, &["agent-1"])]).expect("registry");
    let example = PolicyLayer::example();
    let broker = "broker-1";
    // The params as the agent hands them over: the token's params, spelled
    // with spaces. The presentation binds this text, not its canonical form.
    let params_json = r#"{"amount": 1200, "currency": "EUR", "to": "acct-42"}"#;
    let presented_at_ms = t.payload.issued_at_ms + 2_000;
    let p = Presentation::sign(&seed(0x07), &t, broker, params_json, presented_at_ms);

    assert_eq!(
        p.verify_for(&registry, &t).map(|a| a.name.as_str()),
        Ok("agent-7")
    );
    assert_eq!(
        p.admit(
            &registry,
            &t,
            broker,
            params_json,
            presented_at_ms + 1_500,
            SKEW_MS
        )
        .map(|a| a.name.as_str()),
        Ok("agent-7")
    );
    assert_eq!(
        p.verify_for(example.registry(), &t).map_err(|e| e.code()),
        Err("other-agent")
    );
    assert_eq!(
        params_digest(&serde_json::from_str(params_json).expect("json")).expect("digest"),
        t.payload.params_digest,
        "the same params as the token's"
    );
    assert_ne!(p.params_hash, t.payload.params_digest);
    // It names the token by its wire bytes: leaf 0 with one signature bit
    // flipped is another token to it.
    assert_eq!(p.token_digest, sha3(&wire));
    let mut spoiled = t.clone();
    spoiled.signature[0] ^= 1;
    assert_eq!(
        p.verify_for(&registry, &spoiled).map_err(|e| e.code()),
        Err("other-token")
    );
    let wire_p = p.encode();
    assert_eq!(Presentation::decode(&wire_p).as_ref(), Ok(&p));
    let signing = presentation_signing_bytes(
        &t.payload.genesis_digest,
        &p.token_digest,
        broker,
        &p.params_hash,
        presented_at_ms,
    );

    let value = json!({
        "description": "An agent's presentation (PROTOCOL.md 10.3): the published agent-7 key (secret seed 07 x 32) hands leaf 0 of token-v1.json (a PERMIT of payments/transfer for acme/agent-1) to broker-1 with the params text params_json, 2 s after the token's issue. In this vector the agent-7 key is the registered agent of acme/agent-1 (agent.registry); under the example layer's registry, where agent-7 acts only as agent-7, the same presentation is refused as other-agent. params_hash is SHA3-256 of the params text exactly as handed over (here with spaces), not of its canonical form: token_params_digest is SHA3-256 of the JCS of the same params. token_digest is SHA3-256 of the token's wire bytes (token.token_wire: payload, proof and signature), not the payload digest token-v1.json lists for the leaf (token.payload_digest): the same payload under another signature or proof is another token to a presentation. Rebuild token_digest from token_wire, params_hash from params_json, presentation_signing_bytes and the presentation bytes from the fields; verify the signature under the key.",
        "genesis_digest": t.payload.genesis_digest.to_hex(),
        "token": {
            "source": "token-v1.json leaves[0]",
            "token_wire": hex::encode(&wire),
            "payload_digest": t.digest().to_hex(),
            "surface": t.payload.surface,
            "tenant": t.payload.tenant,
            "actor": t.payload.actor,
            "token_params_digest": t.payload.params_digest.to_hex(),
        },
        "agent": {
            "name": "agent-7",
            "secret_seed": hex::encode([0x07u8; 32]),
            "key": p.key.to_string(),
            "registry": {
                "role": "agent",
                "tenant": "acme",
                "actors": ["agent-1"],
            },
        },
        "token_digest": p.token_digest.to_hex(),
        "broker": broker,
        "params_json": params_json,
        "params_hash": p.params_hash.to_hex(),
        "presented_at_ms": presented_at_ms,
        "signing_bytes": hex::encode(&signing),
        "signature": hex::encode(p.signature),
        "presentation": hex::encode(&wire_p),
        "presentation_digest": p.digest().to_hex(),
    });
    common::pin("presentation-v1.json", &value);
}
