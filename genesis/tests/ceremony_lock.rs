//! The ceremony's output, the genesis lock and each of its rejections.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use senatus_genesis::ceremony::{Ceremony, CeremonyError, CeremonyParams, NodeAddrs};
use senatus_genesis::config::ConfigError;
use senatus_genesis::document::GenesisError;
use senatus_genesis::keys::KeyFileError;
use senatus_genesis::lock::{LockError, load_and_verify};
use senatus_genesis::policy::PolicyError;
use senatus_genesis::seal::{Seal, SealError, SignedSeal, verify_chain};
use senatus_genesis::{Genesis, NodeId, PolicyLayer, Sig64};

fn params(n: usize, threshold: u16) -> CeremonyParams {
    CeremonyParams {
        chain_id: "senatus-test".into(),
        threshold,
        nodes: (0..n)
            .map(|i| NodeAddrs {
                peer: format!("127.0.0.1:{}", 7000 + 10 * i),
                api: format!("127.0.0.1:{}", 7001 + 10 * i),
                metrics: format!("127.0.0.1:{}", 7002 + 10 * i),
            })
            .collect(),
        policy: PolicyLayer::example(),
        created_at_ms: 1_700_000_000_000,
    }
}

fn ceremony(seed: u64) -> Ceremony {
    Ceremony::run(params(5, 3), &mut ChaCha20Rng::seed_from_u64(seed)).expect("ceremony runs")
}

/// Writes a ceremony into a fresh temp dir and returns (guard, dir).
fn written(seed: u64) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    ceremony(seed).write(&dir).expect("write ceremony");
    (tmp, dir)
}

fn node_toml(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}")).join("node.toml")
}

fn a_clause_file(dir: &Path) -> PathBuf {
    let policies = dir.join("node-1/policy/policies");
    let mut files: Vec<_> = std::fs::read_dir(&policies)
        .expect("policies dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files.into_iter().next().expect("at least one clause")
}

#[test]
fn ceremony_output_verifies_on_every_node() {
    let (_tmp, dir) = written(1);
    let g = Genesis::load(&dir.join("genesis.json")).expect("genesis verifies");
    assert_eq!(g.body.validators.len(), 5);
    assert_eq!(g.body.threshold, 3);
    for id in 1..=5 {
        let m = load_and_verify(&node_toml(&dir, id)).expect("lock verifies");
        assert_eq!(m.lock.node_id.get(), id);
        assert_eq!(m.lock.policy_digest, PolicyLayer::example().digest());
        assert_eq!(m.lock.genesis_digest, g.digest());
    }
}

#[cfg(unix)]
#[test]
fn secret_files_are_0600() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_tmp, dir) = written(2);
    for f in [
        dir.join("authority.key"),
        dir.join("node-1/identity.key"),
        dir.join("node-1/frost-share.key"),
    ] {
        let mode = std::fs::metadata(&f).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
}

#[test]
fn ceremony_refuses_to_overwrite() {
    let (_tmp, dir) = written(3);
    let err = ceremony(4).write(&dir).expect_err("must not overwrite");
    assert!(matches!(err, CeremonyError::OutputNotEmpty(_)), "{err}");
}

#[test]
fn ceremony_checks_params_against_the_constitution() {
    let err = Ceremony::run(params(4, 3), &mut ChaCha20Rng::seed_from_u64(5)).expect_err("n");
    assert!(
        matches!(err, CeremonyError::Params(ref m) if m.contains("validators")),
        "{err}"
    );
    let err = Ceremony::run(params(5, 2), &mut ChaCha20Rng::seed_from_u64(5)).expect_err("t");
    assert!(
        matches!(err, CeremonyError::Params(ref m) if m.contains("threshold")),
        "{err}"
    );
}

#[test]
fn flipped_policy_byte_is_refused_with_the_digests() {
    let (_tmp, dir) = written(6);
    // A byte inside a comment keeps the policy valid Cedar, so the lock's
    // digest comparison (not the parser) must catch it.
    let constitution = dir.join("node-2/policy/constitution.toml");
    let mut text = std::fs::read(&constitution).expect("read");
    text.extend_from_slice(b"\n# tampered\n");
    std::fs::write(&constitution, text).expect("write");
    let err = load_and_verify(&node_toml(&dir, 2)).expect_err("tampered");
    match err {
        LockError::PolicyDigest {
            path,
            expected,
            found,
        } => {
            assert!(path.ends_with("policy"), "{path}");
            assert_eq!(expected, PolicyLayer::example().digest());
            assert_ne!(found, expected);
        }
        other => panic!("wrong error: {other}"),
    }
    // The other nodes are unaffected.
    load_and_verify(&node_toml(&dir, 1)).expect("node 1 fine");
}

#[test]
fn a_flipped_byte_that_breaks_cedar_is_a_policy_error() {
    let (_tmp, dir) = written(7);
    let clause = a_clause_file(&dir);
    let mut bytes = std::fs::read(&clause).expect("read");
    // The '(' that opens the policy scope, not one in a comment.
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    let effect = text
        .find("permit (")
        .or_else(|| text.find("forbid ("))
        .expect("a clause starts with permit ( or forbid (");
    let pos = effect + "permit ".len();
    assert_eq!(bytes[pos], b'(');
    bytes[pos] ^= 0x01; // '(' -> ')'
    std::fs::write(&clause, bytes).expect("write");
    let err = load_and_verify(&node_toml(&dir, 1)).expect_err("broken cedar");
    assert!(
        matches!(err, LockError::Policy { .. }),
        "wrong error: {err}"
    );
}

#[test]
fn an_edited_immutable_clause_is_named() {
    let (_tmp, dir) = written(8);
    let layer = PolicyLayer::example();
    let immutable = &layer.constitution().immutable_clauses[0].id;
    let path = dir.join(format!("node-1/policy/policies/{immutable}.cedar"));
    let mut text = std::fs::read_to_string(&path).expect("read");
    text.push_str("\n// an innocent-looking comment\n");
    std::fs::write(&path, text).expect("write");
    let err = load_and_verify(&node_toml(&dir, 1)).expect_err("edited");
    match err {
        LockError::Policy {
            source: PolicyError::ImmutableClauseChanged { id, .. },
            ..
        } => assert_eq!(&id, immutable),
        other => panic!("wrong error: {other}"),
    }
}

#[test]
fn forged_or_missing_authority_signature_is_refused() {
    let (_tmp, dir) = written(9);
    let path = dir.join("node-1/genesis.json");
    let original = std::fs::read_to_string(&path).expect("read");

    // Forged: a genesis re-signed by a different authority key that claims
    // to be the original one.
    let mut g: Genesis = serde_json::from_str(&original).expect("parse");
    let forger = senatus_genesis::keys::SecretKey::generate(&mut ChaCha20Rng::seed_from_u64(99));
    g.signature = Sig64(forger.sign(&g.body.signing_bytes()));
    std::fs::write(&path, g.to_json()).expect("write");
    let err = load_and_verify(&node_toml(&dir, 1)).expect_err("forged");
    assert!(
        matches!(err, LockError::Genesis(GenesisError::BadSignature(_))),
        "wrong error: {err}"
    );

    // Content changed under a valid signature: same error.
    let mut g: Genesis = serde_json::from_str(&original).expect("parse");
    g.body.epoch_length_decisions += 1;
    std::fs::write(&path, g.to_json()).expect("write");
    let err = load_and_verify(&node_toml(&dir, 1)).expect_err("altered");
    assert!(
        matches!(err, LockError::Genesis(GenesisError::BadSignature(_))),
        "wrong error: {err}"
    );

    // Missing signature field.
    let mut v: serde_json::Value = serde_json::from_str(&original).expect("parse");
    v.as_object_mut().expect("object").remove("signature");
    std::fs::write(&path, v.to_string()).expect("write");
    let err = load_and_verify(&node_toml(&dir, 1)).expect_err("unsigned");
    assert!(
        matches!(err, LockError::Genesis(GenesisError::Malformed { ref message, .. }) if message.contains("signature")),
        "wrong error: {err}"
    );
}

#[test]
fn a_node_key_from_another_ceremony_is_refused() {
    let (_tmp, dir) = written(10);
    let (_tmp2, other) = written(11);
    std::fs::copy(
        other.join("node-1/identity.key"),
        dir.join("node-1/identity.key"),
    )
    .expect("copy");
    let err = load_and_verify(&node_toml(&dir, 1)).expect_err("foreign key");
    assert!(
        matches!(err, LockError::IdentityKey { .. }),
        "wrong error: {err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("identity.key") && msg.contains("node 1"),
        "{msg}"
    );
}

#[test]
fn a_key_file_of_another_node_is_refused() {
    let (_tmp, dir) = written(12);
    std::fs::copy(
        dir.join("node-2/identity.key"),
        dir.join("node-1/identity.key"),
    )
    .expect("copy");
    let err = load_and_verify(&node_toml(&dir, 1)).expect_err("other node's key");
    assert!(
        matches!(err, LockError::WrongNode { .. }),
        "wrong error: {err}"
    );
}

#[test]
fn a_frost_share_from_another_ceremony_is_refused() {
    let (_tmp, dir) = written(13);
    let (_tmp2, other) = written(14);
    std::fs::copy(
        other.join("node-1/frost-share.key"),
        dir.join("node-1/frost-share.key"),
    )
    .expect("copy");
    let err = load_and_verify(&node_toml(&dir, 1)).expect_err("foreign share");
    match err {
        LockError::FrostShare { what, .. } => assert_eq!(what, "group key"),
        other => panic!("wrong error: {other}"),
    }
}

#[test]
fn truncated_and_garbled_key_and_config_files_are_refused() {
    let (_tmp, dir) = written(15);
    let toml = node_toml(&dir, 1);
    for name in ["identity.key", "frost-share.key"] {
        let path = dir.join("node-1").join(name);
        let good = std::fs::read(&path).expect("read");

        std::fs::write(&path, &good[..good.len() / 2]).expect("truncate");
        let err = load_and_verify(&toml).expect_err("truncated");
        assert!(
            matches!(err, LockError::KeyFile(KeyFileError::Malformed { .. })),
            "{name} truncated: wrong error: {err}"
        );
        assert!(
            !err.to_string()
                .contains(&String::from_utf8_lossy(&good[40..60]).to_string())
        );

        std::fs::write(&path, b"\x00\xffnot json at all").expect("garble");
        let err = load_and_verify(&toml).expect_err("garbled");
        assert!(
            matches!(err, LockError::KeyFile(KeyFileError::Malformed { .. })),
            "{name} garbled: wrong error: {err}"
        );

        // Valid JSON, invalid key material.
        let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
        let field = if name == "identity.key" {
            "secret_key"
        } else {
            "key_package"
        };
        v[field] = serde_json::Value::String("abcd".into());
        std::fs::write(&path, v.to_string()).expect("write");
        let err = load_and_verify(&toml).expect_err("bad key");
        assert!(
            matches!(err, LockError::KeyFile(KeyFileError::BadKey { .. })),
            "{name} bad key: wrong error: {err}"
        );
        std::fs::write(&path, &good).expect("restore");
    }

    let good = std::fs::read_to_string(&toml).expect("read");
    std::fs::write(&toml, &good[..good.len() / 2]).expect("truncate");
    let err = load_and_verify(&toml).expect_err("truncated config");
    assert!(
        matches!(err, LockError::Config(ConfigError::Malformed { .. })),
        "wrong error: {err}"
    );
    std::fs::write(&toml, b"\xff\xfe\x00garbage").expect("garble");
    let err = load_and_verify(&toml).expect_err("garbled config");
    assert!(
        matches!(err, LockError::Config(ConfigError::Malformed { .. })),
        "wrong error: {err}"
    );
}

#[test]
fn unknown_config_keys_are_refused() {
    let (_tmp, dir) = written(16);
    let toml = node_toml(&dir, 1);
    let good = std::fs::read_to_string(&toml).expect("read");
    std::fs::write(&toml, format!("skip_lock_check = true\n{good}")).expect("write");
    let err = load_and_verify(&toml).expect_err("unknown key");
    match err {
        LockError::Config(ConfigError::Malformed { message, .. }) => {
            assert!(message.contains("skip_lock_check"), "{message}")
        }
        other => panic!("wrong error: {other}"),
    }
    let nested = good.replace("[listen]", "[listen]\nbogus = \"x\"");
    std::fs::write(&toml, nested).expect("write");
    let err = load_and_verify(&toml).expect_err("unknown nested key");
    assert!(
        matches!(err, LockError::Config(ConfigError::Malformed { .. })),
        "{err}"
    );
}

#[test]
fn a_config_for_another_chain_is_refused() {
    let (_tmp, dir) = written(17);
    let toml = node_toml(&dir, 1);
    let text = std::fs::read_to_string(&toml).expect("read");
    std::fs::write(&toml, text.replace("senatus-test", "other-chain")).expect("write");
    let err = load_and_verify(&toml).expect_err("chain id");
    assert!(
        matches!(err, LockError::ChainId { .. }),
        "wrong error: {err}"
    );
}

// ---- FROST: 3 of 5 sign a plain Ed25519 signature; 2 cannot ----

fn frost_sign(
    c: &Ceremony,
    signers: &[u64],
    msg: &[u8],
    rng: &mut ChaCha20Rng,
) -> Result<frost_ed25519::Signature, frost_ed25519::Error> {
    let packages: BTreeMap<_, _> = c
        .nodes
        .iter()
        .filter(|n| signers.contains(&n.id.get()))
        .map(|n| (n.id.frost_identifier(), &n.frost.key_package))
        .collect();
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
        shares.insert(*id, frost_ed25519::round2::sign(&package, &nonces[id], kp)?);
    }
    let public = public_key_package(&c.genesis);
    frost_ed25519::aggregate(&package, &shares, &public)
}

fn public_key_package(g: &Genesis) -> frost_ed25519::keys::PublicKeyPackage {
    let shares = g
        .body
        .validators
        .iter()
        .map(|v| {
            (
                v.id.frost_identifier(),
                frost_ed25519::keys::VerifyingShare::deserialize(&v.verifying_share.0)
                    .expect("share"),
            )
        })
        .collect();
    let key = frost_ed25519::VerifyingKey::deserialize(&g.body.group_key.0).expect("group key");
    frost_ed25519::keys::PublicKeyPackage::new(shares, key, Some(g.body.threshold))
}

#[test]
fn three_of_five_shares_make_a_plain_ed25519_signature() {
    let c = ceremony(20);
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let msg = b"senatus test message";
    let group = ed25519_dalek::VerifyingKey::from_bytes(&c.genesis.body.group_key.0).expect("key");
    for signers in [[1, 2, 3], [2, 4, 5], [1, 3, 5]] {
        let sig = frost_sign(&c, &signers, msg, &mut rng).expect("3 signers suffice");
        let bytes: [u8; 64] = sig.serialize().expect("ser").try_into().expect("64 bytes");
        let plain = ed25519_dalek::Signature::from_bytes(&bytes);
        group
            .verify_strict(msg, &plain)
            .expect("plain Ed25519 verification");
        assert!(group.verify_strict(b"another message", &plain).is_err());
    }
}

#[test]
fn two_shares_cannot_make_a_valid_signature() {
    let c = ceremony(22);
    let mut rng = ChaCha20Rng::seed_from_u64(23);
    let msg = b"senatus test message";
    // FROST refuses outright: a signing package with fewer than t
    // commitments is rejected by every signer.
    let err = frost_sign(&c, &[1, 2], msg, &mut rng).expect_err("2 < t");
    assert!(
        matches!(err, frost_ed25519::Error::IncorrectNumberOfCommitments),
        "wrong error: {err:?}"
    );
    // Even with the count check bypassed (two key packages that lie about
    // min_signers), two Lagrange-weighted shares of a degree-2 polynomial do
    // not interpolate the group secret, so no valid signature comes out.
    let forged: Vec<_> = c
        .nodes
        .iter()
        .filter(|n| [1u64, 2].contains(&n.id.get()))
        .map(|n| {
            let kp = &n.frost.key_package;
            frost_ed25519::keys::KeyPackage::new(
                *kp.identifier(),
                *kp.signing_share(),
                *kp.verifying_share(),
                *kp.verifying_key(),
                2,
            )
        })
        .collect();
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for kp in &forged {
        let (n, cm) = frost_ed25519::round1::commit(kp.signing_share(), &mut rng);
        nonces.insert(*kp.identifier(), n);
        commitments.insert(*kp.identifier(), cm);
    }
    let package = frost_ed25519::SigningPackage::new(commitments, msg);
    let mut shares = BTreeMap::new();
    for kp in &forged {
        let share = frost_ed25519::round2::sign(&package, &nonces[kp.identifier()], kp)
            .expect("signs with forged min_signers");
        shares.insert(*kp.identifier(), share);
    }
    let mut public = public_key_package(&c.genesis);
    public = frost_ed25519::keys::PublicKeyPackage::new(
        public.verifying_shares().clone(),
        *public.verifying_key(),
        Some(2),
    );
    let err = frost_ed25519::aggregate(&package, &shares, &public)
        .expect_err("two shares must not aggregate to a valid signature");
    assert!(
        matches!(err, frost_ed25519::Error::InvalidSignature),
        "wrong error: {err:?}"
    );
}

// ---- seals ----

#[test]
fn seal_zero_is_derived_from_genesis_and_chains() {
    let c = ceremony(30);
    let s0 = Seal::genesis(&c.genesis);
    assert_eq!(s0.prev_seal, c.genesis.digest());
    let chain = vec![SignedSeal {
        seal: s0.clone(),
        signature: None,
        attested: None,
    }];
    assert_eq!(verify_chain(&c.genesis, &chain).expect("chain"), &s0);

    let mut wrong = chain.clone();
    wrong[0].seal.policy_digest = senatus_genesis::sha3(b"other");
    assert_eq!(
        verify_chain(&c.genesis, &wrong),
        Err(SealError::GenesisMismatch {
            field: "policy_digest"
        })
    );
}

#[test]
fn a_next_seal_needs_a_threshold_signature_under_the_previous_group_key() {
    let c = ceremony(31);
    let chain = attested_seal_one(&c, &[1, 2, 3, 4]);
    let s1 = chain[1].seal.clone();
    assert_eq!(verify_chain(&c.genesis, &chain).expect("valid chain"), &s1);

    // Signature over a different digest.
    let mut other = chain.clone();
    other[1].seal.policy_digest = senatus_genesis::sha3(b"something else");
    assert!(matches!(
        verify_chain(&c.genesis, &other),
        Err(SealError::BadSignature { position: 1, .. })
    ));
    // No signature.
    let mut unsigned = chain.clone();
    unsigned[1].signature = None;
    assert!(matches!(
        verify_chain(&c.genesis, &unsigned),
        Err(SealError::SignaturePresence { position: 1, .. })
    ));
    // Broken link.
    let mut broken = chain.clone();
    broken[1].seal.prev_seal = senatus_genesis::sha3(b"elsewhere");
    assert!(matches!(
        verify_chain(&c.genesis, &broken),
        Err(SealError::BrokenLink { position: 1, .. })
    ));
    // Skipped version.
    let mut skipped = chain;
    skipped[1].seal.version.0 += 1;
    assert!(matches!(
        verify_chain(&c.genesis, &skipped),
        Err(SealError::BadVersion { position: 1, .. })
    ));
}

fn head() -> senatus_genesis::Digest {
    senatus_genesis::sha3(b"the entry at which the amendment passed")
}

/// Seal 1 of `c` over an amended layer, threshold-signed by 1, 2, 3 and
/// attested by `attesters` at ledger index 7.
fn attested_seal_one(c: &Ceremony, attesters: &[u64]) -> Vec<SignedSeal> {
    let mut rng = ChaCha20Rng::seed_from_u64(32);
    let s0 = Seal::genesis(&c.genesis);
    let mut s1 = s0.clone();
    s1.version = senatus_genesis::PolicyVersion(s0.version.0 + 1);
    s1.policy_digest = senatus_genesis::sha3(b"amended layer");
    s1.prev_seal = s0.digest();
    let sig = frost_sign(c, &[1, 2, 3], &s1.signing_bytes(), &mut rng).expect("sign");
    let sig = Sig64(sig.serialize().expect("ser").try_into().expect("64"));
    vec![
        SignedSeal {
            seal: s0,
            signature: None,
            attested: None,
        },
        SignedSeal {
            attested: Some(c.attest_seal(&s1, attesters, 7, head())),
            seal: s1,
            signature: Some(sig),
        },
    ]
}

#[test]
fn a_next_seal_needs_its_ledger_head_attested_by_four_of_five() {
    use senatus_genesis::seal::{AttestationError, HeadAttestation, attestation_quorum};
    let c = ceremony(33);
    let n = |id: u64| NodeId::new(id).expect("id");
    let refused = |chain: &[SignedSeal]| match verify_chain(&c.genesis, chain) {
        Err(SealError::Attestation { position: 1, error }) => error,
        other => panic!("wrong result: {other:?}"),
    };
    // Four of five, and all five, verify; the quorum of five is four.
    assert_eq!(attestation_quorum(5), 4);
    verify_chain(&c.genesis, &attested_seal_one(&c, &[1, 2, 3, 4])).expect("4 of 5");
    verify_chain(&c.genesis, &attested_seal_one(&c, &[1, 2, 3, 4, 5])).expect("5 of 5");

    // Three (even the three whose shares signed it) are too few.
    assert_eq!(
        refused(&attested_seal_one(&c, &[1, 2, 3])),
        AttestationError::TooFew {
            found: 3,
            needed: 4,
            members: 5
        }
    );
    // None at all, and attestations on seal 0, are refused by presence.
    let mut bare = attested_seal_one(&c, &[1, 2, 3, 4]);
    bare[1].attested = None;
    assert!(matches!(
        verify_chain(&c.genesis, &bare),
        Err(SealError::AttestationPresence { position: 1, .. })
    ));
    let mut on_zero = attested_seal_one(&c, &[1, 2, 3, 4]);
    on_zero[0].attested = on_zero[1].attested.clone();
    assert!(matches!(
        verify_chain(&c.genesis, &on_zero),
        Err(SealError::AttestationPresence { position: 0, .. })
    ));
    // One validator counted twice is refused, not counted as two.
    let mut twice = attested_seal_one(&c, &[1, 2, 3, 4]);
    let a = twice[1].attested.as_mut().expect("attested");
    a.by[3] = a.by[2];
    assert_eq!(
        refused(&twice),
        AttestationError::NotAscending { validator: n(3) }
    );
    // A validator that is not a member (a sixth identity key) is refused.
    let outsider = ceremony(34);
    let mut foreign = attested_seal_one(&c, &[1, 2, 3]);
    let s1 = foreign[1].seal.clone();
    let extra = HeadAttestation::sign(
        n(6),
        outsider.nodes[0].identity.signing_key(),
        &s1.digest(),
        7,
        &head(),
    );
    foreign[1]
        .attested
        .as_mut()
        .expect("attested")
        .by
        .push(extra);
    assert_eq!(
        refused(&foreign),
        AttestationError::NotMember { validator: n(6) }
    );
    // Validator 4's key over another head, another index or another seal:
    // its attestation does not verify for this one.
    for (index, hash, seal) in [
        (7, senatus_genesis::sha3(b"another branch"), s1.clone()),
        (8, head(), s1.clone()),
        (
            7,
            head(),
            Seal {
                policy_digest: senatus_genesis::sha3(b"a competing layer"),
                ..s1.clone()
            },
        ),
    ] {
        let mut chain = attested_seal_one(&c, &[1, 2, 3, 4]);
        let other = c.attest_seal(&seal, &[4], index, hash);
        chain[1].attested.as_mut().expect("attested").by[3] = other.by[0];
        assert_eq!(
            refused(&chain),
            AttestationError::BadSignature { validator: n(4) }
        );
    }
}

/// Two quorums of attesters share more members than the membership has
/// Byzantine ones, for every membership size genesis allows: one honest
/// validator would have had to attest two seals for one version.
#[test]
fn two_attestation_quorums_always_share_an_honest_validator() {
    use senatus_genesis::seal::attestation_quorum;
    for n in 1..=senatus_genesis::document::VALIDATORS_MAX {
        let f = (n - 1) / 3;
        let q = attestation_quorum(n);
        assert!(
            q <= n - f,
            "n={n}: a quorum of {q} must be reachable without the {f} faulty"
        );
        // Two quorums share 2q - n members, more than the f faulty ones.
        assert!(
            2 * q - n > f,
            "n={n}: two quorums of {q} overlap in an honest member"
        );
    }
    assert_eq!(
        (1..=7).map(attestation_quorum).collect::<Vec<_>>(),
        [1, 2, 2, 3, 4, 4, 5]
    );
}

#[test]
fn node_ids_are_frost_identifiers() {
    let id = NodeId::new(3).expect("id");
    assert_eq!(
        id.frost_identifier(),
        frost_ed25519::Identifier::try_from(3u16).expect("identifier")
    );
}

#[cfg(unix)]
#[test]
fn the_tls_key_is_0600_and_the_certificate_speaks_for_its_node() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_tmp, dir) = written(40);
    let g = Genesis::load(&dir.join("genesis.json")).expect("genesis");
    for id in 1..=5 {
        let nd = dir.join(format!("node-{id}"));
        let mode = std::fs::metadata(nd.join("tls.key"))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "node {id} tls.key");
        let m = load_and_verify(&node_toml(&dir, id)).expect("lock verifies");
        let node = m
            .tls
            .presented
            .check(&g, 1_700_000_000_000 + 1)
            .expect("endorsed");
        assert_eq!(node.get(), id);
        // The TLS key is not the identity key.
        assert_ne!(m.tls.presented.tls_key.0, m.identity.public());
    }
}

fn tls_refusal(dir: &Path) -> String {
    let err = load_and_verify(&node_toml(dir, 1)).expect_err("refused");
    assert!(matches!(err, LockError::Tls { .. }), "wrong error: {err}");
    err.to_string()
}

#[test]
fn a_missing_tls_key_is_refused_naming_the_file_and_how_to_make_one() {
    let (_tmp, dir) = written(41);
    std::fs::remove_file(dir.join("node-1/tls.key")).expect("rm");
    let msg = tls_refusal(&dir);
    assert!(
        msg.contains("node-1/tls.key")
            && msg.contains("missing")
            && msg.contains("senatus genesis tls"),
        "{msg}"
    );
    let (_tmp, dir) = written(42);
    std::fs::remove_file(dir.join("node-1/tls.crt")).expect("rm");
    let msg = tls_refusal(&dir);
    assert!(
        msg.contains("node-1/tls.crt") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn a_tls_certificate_endorsed_by_another_identity_is_refused_naming_both_keys() {
    let (_tmp, dir) = written(43);
    let (_tmp2, other) = written(44);
    for f in ["tls.key", "tls.crt"] {
        std::fs::copy(other.join("node-1").join(f), dir.join("node-1").join(f)).expect("copy");
    }
    let msg = tls_refusal(&dir);
    let g = Genesis::load(&dir.join("genesis.json")).expect("genesis");
    let identity = g.body.validators[0].identity_key.to_string();
    let foreign = senatus_genesis::tls::TlsMaterial::read(
        &other.join("node-1/tls.key"),
        &other.join("node-1/tls.crt"),
    )
    .expect("read");
    assert!(
        msg.contains("node-1/tls.crt")
            && msg.contains(&identity)
            && msg.contains(&foreign.presented.tls_key.to_string())
            && msg.contains("not endorsed by node 1's identity key"),
        "{msg}"
    );
}

#[test]
fn a_tls_key_that_does_not_match_its_certificate_is_refused_naming_both_files() {
    let (_tmp, dir) = written(45);
    std::fs::copy(dir.join("node-2/tls.key"), dir.join("node-1/tls.key")).expect("copy");
    let msg = tls_refusal(&dir);
    assert!(
        msg.contains("node-1/tls.key")
            && msg.contains("node-1/tls.crt")
            && msg.contains("does not match"),
        "{msg}"
    );
    // Both files of node 2: a consistent pair, for the wrong node.
    std::fs::copy(dir.join("node-2/tls.crt"), dir.join("node-1/tls.crt")).expect("copy");
    let msg = tls_refusal(&dir);
    assert!(msg.contains("endorses node 2, but this node is 1"), "{msg}");
}

#[test]
fn garbled_tls_files_are_refused_without_echoing_the_secret() {
    let (_tmp, dir) = written(46);
    let key = dir.join("node-1/tls.key");
    let good = std::fs::read_to_string(&key).expect("read");
    std::fs::write(&key, &good[..good.len() / 2]).expect("truncate");
    let msg = tls_refusal(&dir);
    assert!(
        msg.contains("node-1/tls.key") && msg.contains("not a TLS key file"),
        "{msg}"
    );
    let secret: serde_json::Value = serde_json::from_str(&good).expect("json");
    let secret = secret["secret_key"].as_str().expect("hex");
    assert!(
        !msg.contains(&secret[..16]),
        "the secret must not be echoed: {msg}"
    );

    let (_tmp, dir) = written(47);
    std::fs::write(
        dir.join("node-1/tls.crt"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .expect("garble");
    let msg = tls_refusal(&dir);
    assert!(
        msg.contains("node-1/tls.crt") && msg.contains("not an X.509 certificate"),
        "{msg}"
    );
}
