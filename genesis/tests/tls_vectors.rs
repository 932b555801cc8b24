//! Pins `docs/vectors/tls-v1.json` (PROTOCOL.md section 18): a validator's
//! TLS identity — the endorsement's signed message, its signature by the
//! identity key, the extension value and the whole certificate — for two
//! endorsements, one ending before 2050 (UTCTime) and one after
//! (GeneralizedTime, and times that are not whole seconds).
//!
//! The keys are throwaway vector keys from a seeded RNG; the JSON carries
//! both secret seeds so that `scripts/verify-vectors.py` can re-derive every
//! public key and rebuild every byte, certificate included, from the fields
//! alone. Regenerate deliberately with
//! `SENATUS_WRITE_VECTORS=1 cargo test -p senatus-genesis --test tls_vectors`,
//! then update docs/PROTOCOL.md and review the diff.

use std::path::PathBuf;

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use rand::{RngCore as _, SeedableRng as _};
use rand_chacha::ChaCha20Rng;
use senatus_genesis::ceremony::{Ceremony, CeremonyParams, NodeAddrs};
use senatus_genesis::keys::SecretKey;
use senatus_genesis::tls::{
    ENDORSEMENT_OID, ENDORSEMENT_OID_TEXT, Endorsement, PresentedIdentity, TlsIdentityError,
    TlsMaterial,
};
use senatus_genesis::{Genesis, Key32, NodeId, PolicyLayer, sha3};
use serde_json::json;

const CHAIN_ID: &str = "senatus-vector-chain";
const RNG_SEED: u64 = 18;
/// PKCS#8 v1 DER of an Ed25519 key (RFC 8410) up to the 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn vectors_dir() -> PathBuf {
    PathBuf::from(
        // At run time: cargo sets it to this checkout, while a binary reused
        // from a shared target dir may have another checkout compiled in.
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../docs/vectors")
}

fn node(n: u64) -> NodeId {
    NodeId::new(n).expect("node id")
}

/// One endorsement of the vector: name, validity, and what the time fields
/// of the certificate must be (tag byte and text).
struct Case {
    name: &'static str,
    issued_at_ms: u64,
    expires_at_ms: u64,
    not_before: (u8, &'static str),
    not_after: (u8, &'static str),
}

const CASES: [Case; 2] = [
    Case {
        name: "utc-time",
        // 2026-01-01T00:00:00Z to 2027-01-01T00:00:00Z.
        issued_at_ms: 1_767_225_600_000,
        expires_at_ms: 1_798_761_600_000,
        not_before: (0x17, "260101000000Z"),
        not_after: (0x17, "270101000000Z"),
    },
    Case {
        name: "generalized-time",
        // 2026-12-31T23:59:59.999Z to 2050-01-01T00:00:00.999Z: seconds
        // are floored, and 2050 is the first GeneralizedTime year.
        issued_at_ms: 1_798_761_599_999,
        expires_at_ms: 2_524_608_000_999,
        not_before: (0x17, "261231235959Z"),
        not_after: (0x18, "20500101000000Z"),
    },
];

/// The identity key and, per case, its TLS material and the TLS seed, all
/// drawn from one seeded RNG in this order.
fn issue_all() -> (SecretKey, Vec<(TlsMaterial, [u8; 32])>) {
    let mut rng = ChaCha20Rng::seed_from_u64(RNG_SEED);
    let identity = SecretKey::generate(&mut rng);
    let issued = CASES
        .iter()
        .map(|c| {
            // The TLS key's seed is the next 32 bytes of the RNG: replay
            // them, so the vector states where its secret came from.
            let mut seed = [0u8; 32];
            rng.clone().fill_bytes(&mut seed);
            let m = TlsMaterial::issue(
                &identity,
                CHAIN_ID,
                node(2),
                c.issued_at_ms,
                c.expires_at_ms,
                &mut rng,
            )
            .expect("issue");
            (m, seed)
        })
        .collect();
    (identity, issued)
}

/// The genesis of `genesis-v1.json`, re-made for this vector: its chain id
/// is [`CHAIN_ID`] and validator 2's identity key is the vector's, signed
/// again by the founding authority so that it verifies.
fn vector_genesis(identity: &SecretKey) -> Genesis {
    let params = CeremonyParams {
        chain_id: "senatus-vectors".into(),
        threshold: 3,
        nodes: (1..=5)
            .map(|i| NodeAddrs {
                peer: format!("10.0.0.{i}:7000"),
                api: format!("10.0.0.{i}:7001"),
                metrics: format!("10.0.0.{i}:7002"),
            })
            .collect(),
        policy: PolicyLayer::example(),
        created_at_ms: 1_767_225_600_000,
    };
    let c = Ceremony::run(params, &mut ChaCha20Rng::seed_from_u64(2026)).expect("ceremony");
    let mut body = c.genesis.body.clone();
    body.chain_id = CHAIN_ID.into();
    let v2 = body
        .validators
        .iter_mut()
        .find(|v| v.id == node(2))
        .expect("validator 2");
    v2.identity_key = Key32(identity.public());
    let g = Genesis::sign(body, c.authority.signing_key()).expect("sign genesis");
    g.verify().expect("the re-made genesis verifies");
    g
}

/// `needle` occurs in `haystack` exactly once.
fn occurs_once(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
        == 1
}

/// The content octets of an OBJECT IDENTIFIER (X.690 8.19): the first two
/// arcs as `40 * a + b`, every arc in base 128, high bit on all but the last
/// byte of each.
fn oid_content(arcs: &[u128]) -> Vec<u8> {
    let first = arcs[0] * 40 + arcs[1];
    let mut out = Vec::new();
    for &arc in std::iter::once(&first).chain(&arcs[2..]) {
        let mut groups = Vec::new();
        let mut v = arc;
        loop {
            groups.push((v & 0x7f) as u8);
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        for (i, g) in groups.iter().enumerate().rev() {
            out.push(if i == 0 { *g } else { g | 0x80 });
        }
    }
    out
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    assert!(content.len() < 0x80, "short form only");
    [&[tag, content.len() as u8][..], content].concat()
}

#[test]
fn tls_vector() {
    let (identity, issued) = issue_all();
    // The same seed gives the same bytes (make_cert is deterministic).
    let (_, again) = issue_all();
    for ((a, _), (b, _)) in issued.iter().zip(&again) {
        assert_eq!(a.cert_der, b.cert_der, "same inputs, different certificate");
    }
    let identity_public = identity.public();
    let identity_key = VerifyingKey::from_bytes(&identity_public).expect("identity key");

    let mut cases = Vec::new();
    for (c, (m, tls_seed)) in CASES.iter().zip(&issued) {
        let p = &m.presented;
        let e = &p.endorsement;
        // The TLS secret is the replayed seed; its PKCS#8 form carries it.
        let pkcs8 = m.pkcs8_der();
        assert_eq!(
            &pkcs8[..16],
            &PKCS8_ED25519_PREFIX[..],
            "{}: PKCS#8 prefix",
            c.name
        );
        assert_eq!(&pkcs8[16..], tls_seed, "{}: TLS seed", c.name);
        let tls_key = SigningKey::from_bytes(tls_seed);
        assert_eq!(
            tls_key.verifying_key().to_bytes(),
            p.tls_key.0,
            "{}",
            c.name
        );

        // The endorsement: what was signed, under which key.
        assert_eq!(
            (
                e.chain_id.as_str(),
                e.node_id,
                e.issued_at_ms,
                e.expires_at_ms
            ),
            (CHAIN_ID, node(2), c.issued_at_ms, c.expires_at_ms)
        );
        let signing = Endorsement::signing_bytes(
            CHAIN_ID,
            node(2),
            &p.tls_key,
            c.issued_at_ms,
            c.expires_at_ms,
        );
        assert!(signing.starts_with(b"senatus/tls-key/v1\0"), "{}", c.name);
        identity_key
            .verify_strict(&signing, &Signature::from_bytes(&e.signature.0))
            .expect("the endorsement verifies under the identity key");
        let extension_value = e.encode();
        assert!(extension_value.starts_with(b"senatus/tls-endorsement/v1\0"));
        assert_eq!(Endorsement::decode(&extension_value).expect("decode"), *e);

        // The template's parts an outsider is most likely to get wrong.
        let cert = &m.cert_der;
        let mut serial = sha3(&p.tls_key.0).0[..16].to_vec();
        serial[0] = (serial[0] & 0x7f) | 0x40;
        assert!(
            occurs_once(cert, &der_tlv(0x02, &serial)),
            "{}: serial",
            c.name
        );
        let (tag, text) = c.not_before;
        assert!(
            occurs_once(cert, &der_tlv(tag, text.as_bytes())),
            "{}: notBefore",
            c.name
        );
        let (tag, text) = c.not_after;
        assert!(
            occurs_once(cert, &der_tlv(tag, text.as_bytes())),
            "{}: notAfter",
            c.name
        );
        let cn = der_tlv(0x0c, b"senatus validator 2");
        assert_eq!(
            cert.windows(cn.len()).filter(|w| *w == cn).count(),
            2,
            "{}: issuer and subject CN",
            c.name
        );
        let inner = [
            &[0x04, 0x81, extension_value.len() as u8][..],
            &extension_value,
        ]
        .concat();
        assert!(extension_value.len() >= 0x80 && extension_value.len() < 0x100);
        assert!(occurs_once(cert, &inner), "{}: extension value", c.name);

        // Self-signed by the TLS key, over the TBSCertificate bytes.
        let (tbs, signature) = {
            use x509_parser::prelude::{FromDer as _, X509Certificate};
            let (rest, x) = X509Certificate::from_der(cert).expect("x509");
            assert!(rest.is_empty());
            let sig: [u8; 64] = x
                .signature_value
                .data
                .as_ref()
                .try_into()
                .expect("64 bytes");
            assert!(
                x.extensions()
                    .iter()
                    .all(|x| x.oid.as_bytes() == oid_content(ENDORSEMENT_OID) && !x.critical)
            );
            (x.tbs_certificate.as_ref().to_vec(), sig)
        };
        tls_key
            .verifying_key()
            .verify_strict(&tbs, &Signature::from_bytes(&signature))
            .expect("the certificate is self-signed by the TLS key");

        cases.push(json!({
            "name": c.name,
            "chain_id": CHAIN_ID,
            "node_id": 2,
            "issued_at_ms": c.issued_at_ms,
            "expires_at_ms": c.expires_at_ms,
            "identity_secret_key": hex::encode(identity.signing_key().to_bytes()),
            "identity_public_key": hex::encode(identity_public),
            "tls_secret_key": hex::encode(tls_seed),
            "tls_public_key": p.tls_key.to_string(),
            "endorsement_signing_bytes": hex::encode(&signing),
            "endorsement_signature": hex::encode(e.signature.0),
            "extension_value": hex::encode(&extension_value),
            "serial": hex::encode(&serial),
            "not_before": c.not_before.1,
            "not_after": c.not_after.1,
            "tbs_certificate": hex::encode(&tbs),
            "certificate_signature": hex::encode(signature),
            "certificate_der": hex::encode(cert),
            "certificate_pem": m.cert_pem(),
        }));
    }

    let value = json!({
        "description": "Two TLS identities of validator 2 (PROTOCOL.md section 18), endorsed by one identity key; throwaway keys from a seeded RNG, secrets included. Derive both public keys from their seeds; rebuild endorsement_signing_bytes (18.2) and verify endorsement_signature under identity_public_key; rebuild extension_value; rebuild the certificate from the template (18.3) byte for byte, verify its self-signature under tls_public_key, and compare with certificate_der and certificate_pem.",
        "endorsement_oid": ENDORSEMENT_OID_TEXT,
        "endorsement_oid_der": hex::encode(der_tlv(0x06, &oid_content(ENDORSEMENT_OID))),
        "cases": cases,
    });
    let path = vectors_dir().join("tls-v1.json");
    let text = format!("{}\n", serde_json::to_string_pretty(&value).expect("json"));
    if std::env::var_os("SENATUS_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &text).expect("write vector");
        return;
    }
    let pinned = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing vector {}: {e}", path.display()));
    assert_eq!(
        pinned, text,
        "docs/vectors/tls-v1.json no longer matches the code; if the protocol changed on \
         purpose, regenerate (see this file's header) and update docs/PROTOCOL.md"
    );
}

/// Each vector certificate gives back exactly its TLS key and endorsement.
/// Kept apart from [`tls_vector`], so that a parser fault and a byte change
/// fail separately.
#[test]
fn the_vector_certificates_give_back_their_endorsements() {
    let (_, issued) = issue_all();
    for (c, (m, _)) in CASES.iter().zip(&issued) {
        let back = PresentedIdentity::from_cert_der(&m.cert_der)
            .unwrap_or_else(|e| panic!("{}: the certificate does not parse: {e}", c.name));
        assert_eq!(
            back, m.presented,
            "{}: certificate does not give back the endorsement",
            c.name
        );
    }
}

/// The vector certificate, checked against a genesis whose validator 2 has
/// the vector's identity key: accepted as validator 2 within its validity,
/// refused with the specific error once one signature byte is flipped,
/// outside its validity, or on another chain.
#[test]
fn the_vector_certificate_against_genesis() {
    let (identity, issued) = issue_all();
    let genesis = vector_genesis(&identity);
    let (m, _) = &issued[0];
    let c = &CASES[0];
    let p = PresentedIdentity::from_cert_der(&m.cert_der).expect("parse");
    assert_eq!(p, m.presented);
    assert_eq!(p.check_endorsement(&genesis).expect("endorsed"), node(2));
    assert_eq!(
        p.check(&genesis, c.issued_at_ms).expect("valid at issue"),
        node(2)
    );
    assert_eq!(
        p.check(&genesis, c.expires_at_ms - 1).expect("valid"),
        node(2)
    );

    for byte in [0, 31, 32, 63] {
        let mut forged = p.clone();
        forged.endorsement.signature.0[byte] ^= 0x01;
        match forged.check_endorsement(&genesis) {
            Err(TlsIdentityError::BadSignature {
                node: n,
                identity_key,
                tls_key,
            }) => {
                assert_eq!(n, node(2));
                assert_eq!(identity_key.0, identity.public());
                assert_eq!(tls_key, p.tls_key);
            }
            other => panic!("flipped signature byte {byte}: {other:?}"),
        }
    }
    // The same flip inside the certificate's DER: it still parses, and is
    // refused by the same check.
    let ext = p.endorsement.encode();
    let at = m
        .cert_der
        .windows(ext.len())
        .position(|w| w == ext.as_slice())
        .expect("extension value in the certificate");
    let mut der = m.cert_der.clone();
    der[at + ext.len() - 1] ^= 0x01;
    let flipped = PresentedIdentity::from_cert_der(&der).expect("still parses");
    assert!(matches!(
        flipped.check_endorsement(&genesis),
        Err(TlsIdentityError::BadSignature { .. })
    ));

    assert!(matches!(
        p.check(&genesis, c.expires_at_ms),
        Err(TlsIdentityError::OutsideValidity { .. })
    ));
    // Up to five minutes early is clock skew; more is refused.
    let skew = senatus_genesis::tls::CLOCK_SKEW_MS_MAX;
    assert!(p.check(&genesis, c.issued_at_ms - skew).is_ok());
    assert!(matches!(
        p.check(&genesis, c.issued_at_ms - skew - 1),
        Err(TlsIdentityError::OutsideValidity { .. })
    ));
    let mut other_chain = genesis.clone();
    other_chain.body.chain_id = "senatus-vectors".into();
    assert!(matches!(
        p.check_endorsement(&other_chain),
        Err(TlsIdentityError::WrongChain { .. })
    ));
}
