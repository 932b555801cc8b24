//! A validator's TLS identity: a TLS key certified by its identity key.
//!
//! Validators authenticate each other (and clients authenticate validators)
//! with TLS 1.3, pinned to the identity keys in genesis rather than to any
//! certificate authority. The identity key never enters rustls: each
//! validator holds a separate Ed25519 *TLS key* and an *endorsement*, the
//! identity key's signature over (chain id, node id, TLS public key,
//! validity). The endorsement travels inside the TLS certificate, in a
//! non-critical X.509 extension, so a peer learns everything it needs from
//! the handshake and checks it against genesis alone. The TLS key can be
//! replaced (`senatus genesis tls`) without any membership change.
//!
//! The certificate is self-signed by the TLS key; its self-signature and its
//! X.509 validity dates are not relied upon. What is: the TLS 1.3
//! `CertificateVerify` signature (proves possession of the certificate's
//! key, checked by the transport), and the endorsement checked here.
//! Byte layouts: `docs/PROTOCOL.md`, "TLS identities".

use std::path::Path;

use ed25519_dalek::{Signature, SigningKey};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::document::{Genesis, Key32, Sig64};
use crate::ids::NodeId;
use crate::keys::{KeyFileError, SecretKey};

/// Domain object of the endorsement's signed message.
pub const ENDORSEMENT_SIGNED_OBJECT: &str = "tls-key";
/// Domain object of the endorsement as carried in the certificate.
pub const ENDORSEMENT_OBJECT: &str = "tls-endorsement";
/// Version of both.
pub const ENDORSEMENT_VERSION: u8 = 1;
/// The X.509 extension carrying the endorsement: a UUID-based OID (ITU-T
/// X.667, arc 2.25), which needs no registration.
pub const ENDORSEMENT_OID: &[u128] = &[2, 25, 181_298_536_963_434_240_838_732_898_204_400_124_676];
/// The same OID as dotted text.
pub const ENDORSEMENT_OID_TEXT: &str = "2.25.181298536963434240838732898204400124676";
/// Key file format tag of a TLS key.
pub const TLS_KEY_FORMAT: &str = "senatus.tls-key.v1";
/// Largest certificate accepted from a file or a handshake.
pub const CERT_BYTES_MAX: usize = 16 * 1024;
/// Largest certificate file read: the PEM of [`CERT_BYTES_MAX`] bytes.
pub const CERT_PEM_BYTES_MAX: u64 = (CERT_BYTES_MAX as u64) * 2;
/// Longest chain id an endorsement may carry (genesis allows no longer).
pub const CHAIN_ID_BYTES_MAX: usize = 256;
/// How far a verifier's clock may be behind the issuer's when a certificate
/// becomes valid: five minutes.
pub const CLOCK_SKEW_MS_MAX: u64 = 5 * 60 * 1000;
/// Default validity of an endorsement made by the ceremony: one year.
pub const ENDORSEMENT_VALIDITY_MS_DEFAULT: u64 = 365 * 24 * 3600 * 1000;
/// Fixed PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410): the DER of
/// `PrivateKeyInfo` up to the 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER of the Ed25519 algorithm OID 1.3.101.112 (its content bytes).
const ED25519_OID_CONTENT: [u8; 3] = [0x2b, 0x65, 0x70];

/// The identity key's statement that a TLS key speaks for a validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endorsement {
    /// The chain (genesis `chain_id`).
    pub chain_id: String,
    /// The validator.
    pub node_id: NodeId,
    /// Not valid before, Unix milliseconds.
    pub issued_at_ms: u64,
    /// Not valid from, Unix milliseconds.
    pub expires_at_ms: u64,
    /// Ed25519 signature by the validator's identity key over
    /// [`Endorsement::signing_bytes`].
    pub signature: Sig64,
}

impl Endorsement {
    /// The signed message: `senatus/tls-key/v1\0`, chain id, node id, TLS
    /// public key, issued, expires.
    pub fn signing_bytes(
        chain_id: &str,
        node_id: NodeId,
        tls_key: &Key32,
        issued_at_ms: u64,
        expires_at_ms: u64,
    ) -> Vec<u8> {
        let mut e = Encoder::new(ENDORSEMENT_SIGNED_OBJECT, ENDORSEMENT_VERSION);
        e.str(chain_id)
            .u64(node_id.get())
            .fixed32(&tls_key.0)
            .u64(issued_at_ms)
            .u64(expires_at_ms);
        e.finish()
    }

    /// Signs an endorsement of `tls_key` with `identity`.
    pub fn sign(
        identity: &SecretKey,
        chain_id: &str,
        node_id: NodeId,
        tls_key: &Key32,
        issued_at_ms: u64,
        expires_at_ms: u64,
    ) -> Endorsement {
        let msg = Self::signing_bytes(chain_id, node_id, tls_key, issued_at_ms, expires_at_ms);
        Endorsement {
            chain_id: chain_id.to_string(),
            node_id,
            issued_at_ms,
            expires_at_ms,
            signature: Sig64(identity.sign(&msg)),
        }
    }

    /// The extension value: `senatus/tls-endorsement/v1\0`, chain id, node
    /// id, issued, expires, signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(ENDORSEMENT_OBJECT, ENDORSEMENT_VERSION);
        e.str(&self.chain_id)
            .u64(self.node_id.get())
            .u64(self.issued_at_ms)
            .u64(self.expires_at_ms);
        let mut out = e.finish();
        out.extend_from_slice(&self.signature.0);
        out
    }

    /// Parses [`Endorsement::encode`] output exactly.
    pub fn decode(bytes: &[u8]) -> Result<Endorsement, TlsIdentityError> {
        let mut d = Decoder::new(bytes, ENDORSEMENT_OBJECT, ENDORSEMENT_VERSION)?;
        let chain_id = d.str("chain_id")?;
        if chain_id.len() > CHAIN_ID_BYTES_MAX {
            return Err(TlsIdentityError::Malformed(format!(
                "chain id is {} bytes, above {CHAIN_ID_BYTES_MAX}",
                chain_id.len()
            )));
        }
        let chain_id = chain_id.to_string();
        let node = d.u64("node_id")?;
        let node_id = NodeId::new(node)
            .map_err(|e| TlsIdentityError::Malformed(format!("node id {node}: {e}")))?;
        let issued_at_ms = d.u64("issued_at_ms")?;
        let expires_at_ms = d.u64("expires_at_ms")?;
        let sig = d.array::<64>("signature")?;
        d.finish()?;
        Ok(Endorsement {
            chain_id,
            node_id,
            issued_at_ms,
            expires_at_ms,
            signature: Sig64(sig),
        })
    }
}

/// What a certificate says, before it is checked against genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedIdentity {
    /// The certificate's Ed25519 public key (the TLS key).
    pub tls_key: Key32,
    /// The endorsement found in the certificate.
    pub endorsement: Endorsement,
}

impl PresentedIdentity {
    /// Reads the TLS key and the endorsement out of a DER certificate.
    /// Refuses anything but one Ed25519 key and exactly one endorsement.
    pub fn from_cert_der(der: &[u8]) -> Result<PresentedIdentity, TlsIdentityError> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        if der.len() > CERT_BYTES_MAX {
            return Err(TlsIdentityError::Malformed(format!(
                "certificate is {} bytes, above {CERT_BYTES_MAX}",
                der.len()
            )));
        }
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| TlsIdentityError::Malformed(format!("not an X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(TlsIdentityError::Malformed(format!(
                "{} trailing bytes after the certificate",
                rest.len()
            )));
        }
        let spki = cert.public_key();
        if spki.algorithm.algorithm.as_bytes() != ED25519_OID_CONTENT {
            return Err(TlsIdentityError::Malformed(format!(
                "certificate key algorithm is {}, not Ed25519 (1.3.101.112)",
                spki.algorithm.algorithm
            )));
        }
        let tls_key: [u8; 32] = spki
            .subject_public_key
            .data
            .as_ref()
            .try_into()
            .map_err(|_| {
                TlsIdentityError::Malformed(format!(
                    "certificate key is {} bytes, not 32",
                    spki.subject_public_key.data.len()
                ))
            })?;
        let oid = oid_content(ENDORSEMENT_OID);
        let mut found = None;
        for ext in cert.extensions() {
            if ext.oid.as_bytes() == oid.as_slice() {
                if found.is_some() {
                    return Err(TlsIdentityError::Malformed(
                        "certificate carries two endorsements".into(),
                    ));
                }
                found = Some(Endorsement::decode(unwrap_octet_string(ext.value)?)?);
            }
        }
        let endorsement = found.ok_or_else(|| {
            TlsIdentityError::Malformed(format!(
                "certificate carries no senatus endorsement (extension {ENDORSEMENT_OID_TEXT})"
            ))
        })?;
        Ok(PresentedIdentity {
            tls_key: Key32(tls_key),
            endorsement,
        })
    }

    /// Checks the endorsement against genesis at `now_ms`: the chain, a
    /// validator of genesis, its identity key's signature, the validity.
    /// Returns the validator it speaks for.
    pub fn check(&self, genesis: &Genesis, now_ms: u64) -> Result<NodeId, TlsIdentityError> {
        let node = self.check_endorsement(genesis)?;
        self.check_validity(now_ms)?;
        Ok(node)
    }

    /// The endorsement's validity window contains `now_ms`, allowing the
    /// verifier's clock to be up to [`CLOCK_SKEW_MS_MAX`] behind the
    /// issuer's at the start (a certificate issued a moment ago on a
    /// machine whose clock runs ahead). Expiry has no allowance.
    pub fn check_validity(&self, now_ms: u64) -> Result<(), TlsIdentityError> {
        let e = &self.endorsement;
        if now_ms.saturating_add(CLOCK_SKEW_MS_MAX) < e.issued_at_ms || now_ms >= e.expires_at_ms {
            return Err(TlsIdentityError::OutsideValidity {
                node: e.node_id,
                issued_at_ms: e.issued_at_ms,
                expires_at_ms: e.expires_at_ms,
                now_ms,
            });
        }
        Ok(())
    }

    /// [`PresentedIdentity::check`] without the clock: chain, validator,
    /// signature.
    pub fn check_endorsement(&self, genesis: &Genesis) -> Result<NodeId, TlsIdentityError> {
        let e = &self.endorsement;
        if e.chain_id != genesis.body.chain_id {
            return Err(TlsIdentityError::WrongChain {
                found: e.chain_id.clone(),
                expected: genesis.body.chain_id.clone(),
            });
        }
        let v = genesis
            .body
            .validators
            .iter()
            .find(|v| v.id == e.node_id)
            .ok_or(TlsIdentityError::NotAValidator(e.node_id))?;
        let msg = Endorsement::signing_bytes(
            &e.chain_id,
            e.node_id,
            &self.tls_key,
            e.issued_at_ms,
            e.expires_at_ms,
        );
        let key = crate::ed25519::verifying_key(&v.identity_key.0).map_err(|_| {
            TlsIdentityError::BadSignature {
                node: e.node_id,
                identity_key: v.identity_key,
                tls_key: self.tls_key,
            }
        })?;
        key.verify_strict(&msg, &Signature::from_bytes(&e.signature.0))
            .map_err(|_| TlsIdentityError::BadSignature {
                node: e.node_id,
                identity_key: v.identity_key,
                tls_key: self.tls_key,
            })?;
        Ok(e.node_id)
    }
}

/// A validator's TLS key and certificate.
pub struct TlsMaterial {
    /// The TLS secret key.
    key: SecretKey,
    /// The DER certificate carrying the endorsement.
    pub cert_der: Vec<u8>,
    /// What the certificate says.
    pub presented: PresentedIdentity,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("tls_key", &self.presented.tls_key)
            .field("node", &self.presented.endorsement.node_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl TlsMaterial {
    /// A fresh TLS key for `node_id`, endorsed by `identity` for
    /// `[issued_at_ms, expires_at_ms)`. Pure: randomness and time are inputs.
    pub fn issue<R: RngCore + CryptoRng>(
        identity: &SecretKey,
        chain_id: &str,
        node_id: NodeId,
        issued_at_ms: u64,
        expires_at_ms: u64,
        rng: &mut R,
    ) -> Result<TlsMaterial, TlsIdentityError> {
        if expires_at_ms <= issued_at_ms {
            return Err(TlsIdentityError::Malformed(format!(
                "validity [{issued_at_ms}, {expires_at_ms}) is empty"
            )));
        }
        let key = SecretKey::generate(rng);
        let tls_key = Key32(key.public());
        let endorsement = Endorsement::sign(
            identity,
            chain_id,
            node_id,
            &tls_key,
            issued_at_ms,
            expires_at_ms,
        );
        let cert_der = make_cert(key.signing_key(), &endorsement)?;
        Ok(TlsMaterial {
            key,
            cert_der,
            presented: PresentedIdentity {
                tls_key,
                endorsement,
            },
        })
    }

    /// The TLS secret key as PKCS#8 v1 DER (RFC 8410), for rustls.
    pub fn pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(48));
        out.extend_from_slice(&PKCS8_ED25519_PREFIX);
        out.extend_from_slice(self.key.signing_key().as_bytes());
        out
    }

    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.cert_der)
    }

    /// Writes the key file (0600) and the certificate (PEM).
    pub fn write(&self, key_path: &Path, cert_path: &Path) -> Result<(), TlsIdentityError> {
        let node = self.presented.endorsement.node_id;
        self.key.write_as(key_path, TLS_KEY_FORMAT, Some(node))?;
        std::fs::write(cert_path, self.cert_pem()).map_err(|source| {
            TlsIdentityError::KeyFile(KeyFileError::Io {
                path: cert_path.display().to_string(),
                source,
            })
        })
    }

    /// Reads a key file and a certificate and checks that they belong
    /// together: the certificate's key is the key file's public key, and
    /// both name the same validator. The endorsement itself is checked
    /// against genesis by [`PresentedIdentity::check`].
    pub fn read(key_path: &Path, cert_path: &Path) -> Result<TlsMaterial, TlsIdentityError> {
        let (key, node) =
            SecretKey::read_with_node(key_path, TLS_KEY_FORMAT).map_err(|e| match e {
                KeyFileError::Malformed { path, message } => TlsIdentityError::File {
                    path,
                    message: format!("not a TLS key file ({message})"),
                },
                e => TlsIdentityError::KeyFile(e),
            })?;
        let text = crate::keys::read_bounded(cert_path, CERT_PEM_BYTES_MAX)?;
        let cert_der = pem_decode("CERTIFICATE", &text).map_err(|why| TlsIdentityError::File {
            path: cert_path.display().to_string(),
            message: why,
        })?;
        let presented =
            PresentedIdentity::from_cert_der(&cert_der).map_err(|e| TlsIdentityError::File {
                path: cert_path.display().to_string(),
                message: e.to_string(),
            })?;
        let public = Key32(key.public());
        if public != presented.tls_key {
            return Err(TlsIdentityError::KeyMismatch {
                key_path: key_path.display().to_string(),
                cert_path: cert_path.display().to_string(),
                key: public,
                cert: presented.tls_key,
            });
        }
        if presented.endorsement.node_id != node {
            return Err(TlsIdentityError::File {
                path: cert_path.display().to_string(),
                message: format!(
                    "certificate endorses node {} but {} is node {node}'s",
                    presented.endorsement.node_id,
                    key_path.display()
                ),
            });
        }
        Ok(TlsMaterial {
            key,
            cert_der,
            presented,
        })
    }
}

/// The certificate: a fixed X.509 v3 template (`docs/PROTOCOL.md`, "TLS
/// identities"), self-signed by the TLS key. Deterministic: the same key and
/// endorsement always give the same bytes.
fn make_cert(key: &SigningKey, endorsement: &Endorsement) -> Result<Vec<u8>, TlsIdentityError> {
    let public = key.verifying_key().to_bytes();
    // Positive, 16 bytes, no leading zero byte: a stable function of the key.
    let mut serial = crate::codec::sha3(&public).0[..16].to_vec();
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let ed25519_alg = der(0x30, &der(0x06, &ED25519_OID_CONTENT));
    let cn = format!("senatus validator {}", endorsement.node_id);
    let name = der(
        0x30,
        &der(
            0x31,
            &der(
                0x30,
                &[der(0x06, &[0x55, 0x04, 0x03]), der(0x0c, cn.as_bytes())].concat(),
            ),
        ),
    );
    let validity = der(
        0x30,
        &[
            der_time(endorsement.issued_at_ms)?,
            der_time(endorsement.expires_at_ms)?,
        ]
        .concat(),
    );
    let spki = der(
        0x30,
        &[
            ed25519_alg.clone(),
            der(0x03, &[&[0u8][..], &public].concat()),
        ]
        .concat(),
    );
    let extension = der(
        0x30,
        &[
            der(0x06, &oid_content(ENDORSEMENT_OID)),
            der(0x04, &der(0x04, &endorsement.encode())),
        ]
        .concat(),
    );
    let tbs = der(
        0x30,
        &[
            der(0xa0, &der(0x02, &[2])),
            der(0x02, &serial),
            ed25519_alg.clone(),
            name.clone(),
            validity,
            name,
            spki,
            der(0xa3, &der(0x30, &extension)),
        ]
        .concat(),
    );
    use ed25519_dalek::Signer as _;
    let sig = key.sign(&tbs).to_bytes();
    Ok(der(
        0x30,
        &[tbs, ed25519_alg, der(0x03, &[&[0u8][..], &sig].concat())].concat(),
    ))
}

/// One DER TLV.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let n = content.len();
    let mut out = vec![tag];
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = (n as u64).to_be_bytes();
        let skip = len.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// The content octets of an OBJECT IDENTIFIER (arcs up to 128 bits).
fn oid_content(arcs: &[u128]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |mut v: u128| {
        let mut groups = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            groups.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        groups.reverse();
        out.extend_from_slice(&groups);
    };
    put(arcs[0] * 40 + arcs[1]);
    for &a in &arcs[2..] {
        put(a);
    }
    out
}

/// UTCTime before 2050, GeneralizedTime from then on (RFC 5280 4.1.2.5).
fn der_time(ms: u64) -> Result<Vec<u8>, TlsIdentityError> {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let t = time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| TlsIdentityError::Malformed(format!("time {ms} ms is out of range")))?;
    let rest = format!(
        "{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    Ok(if (1950..2050).contains(&t.year()) {
        der(0x17, format!("{:02}{rest}", t.year() % 100).as_bytes())
    } else {
        der(0x18, format!("{:04}{rest}", t.year()).as_bytes())
    })
}

/// The content of a DER OCTET STRING that is the whole of `bytes`.
fn unwrap_octet_string(bytes: &[u8]) -> Result<&[u8], TlsIdentityError> {
    let bad = |why: &str| TlsIdentityError::Malformed(format!("endorsement extension: {why}"));
    let (&tag, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
    if tag != 0x04 {
        return Err(bad("not an OCTET STRING"));
    }
    let (&first, rest) = rest.split_first().ok_or_else(|| bad("no length"))?;
    let (len, body) = match first {
        n if n < 0x80 => (usize::from(n), rest),
        0x81 if rest.first().is_some_and(|b| *b >= 0x80) => (usize::from(rest[0]), &rest[1..]),
        0x82 if rest.len() >= 2 && rest[0] != 0 => (
            usize::from(u16::from_be_bytes([rest[0], rest[1]])),
            &rest[2..],
        ),
        _ => return Err(bad("length is not minimal DER or too long")),
    };
    if body.len() != len {
        return Err(bad("length does not match the content"));
    }
    Ok(body)
}

/// PEM with 64-column base64 lines (RFC 7468).
fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The single `label` block of a PEM text.
fn pem_decode(label: &str, text: &[u8]) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8 text".to_string())?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .ok_or_else(|| format!("no {begin} line"))?;
    let body = &text[start + begin.len()..];
    let stop = body.find(&end).ok_or_else(|| format!("no {end} line"))?;
    let b64: String = body[..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("bad base64 in the PEM block: {e}"))
}

/// Why a TLS identity was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsIdentityError {
    /// The certificate or endorsement does not parse.
    #[error("malformed TLS identity: {0}")]
    Malformed(String),
    /// The endorsement's bytes do not decode.
    #[error("malformed TLS endorsement: {0}")]
    Decode(#[from] DecodeError),
    /// Endorsed for another chain.
    #[error("TLS certificate is for chain {found:?}, not {expected:?}")]
    WrongChain {
        /// What the endorsement names.
        found: String,
        /// Genesis `chain_id`.
        expected: String,
    },
    /// The endorsed node id is not a validator of genesis.
    #[error("TLS certificate names node {0}, which is not a validator of genesis")]
    NotAValidator(NodeId),
    /// The endorsement does not verify under the validator's identity key.
    #[error(
        "TLS key {tls_key} is not endorsed by node {node}'s identity key {identity_key} (signature does not verify)"
    )]
    BadSignature {
        /// The node claimed.
        node: NodeId,
        /// Its identity key in genesis.
        identity_key: Key32,
        /// The TLS key presented.
        tls_key: Key32,
    },
    /// Not yet valid, or expired.
    #[error(
        "TLS endorsement of node {node} is valid from {issued_at_ms} to {expires_at_ms} (Unix ms), not at {now_ms}; renew it with `senatus genesis tls`"
    )]
    OutsideValidity {
        /// The node.
        node: NodeId,
        /// Start of validity.
        issued_at_ms: u64,
        /// End of validity.
        expires_at_ms: u64,
        /// The verifier's clock.
        now_ms: u64,
    },
    /// The key file and the certificate hold different keys.
    #[error(
        "TLS key {key_path} (public key {key}) does not match certificate {cert_path} (key {cert})"
    )]
    KeyMismatch {
        /// The key file.
        key_path: String,
        /// The certificate file.
        cert_path: String,
        /// The key file's public key.
        key: Key32,
        /// The certificate's key.
        cert: Key32,
    },
    /// A file is not what it should be.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }

    #[test]
    fn an_endorsement_round_trips_through_its_certificate() {
        let mut r = rng();
        let id = SecretKey::generate(&mut r);
        let node = NodeId::new(2).expect("id");
        let m = TlsMaterial::issue(&id, "chain-x", node, 1_000, 2_000, &mut r).expect("issue");
        let p = PresentedIdentity::from_cert_der(&m.cert_der).expect("parse");
        assert_eq!(p, m.presented);
        assert_eq!(
            Endorsement::decode(&p.endorsement.encode()).expect("decode"),
            p.endorsement
        );
        // PEM round trip.
        assert_eq!(
            pem_decode("CERTIFICATE", m.cert_pem().as_bytes()).expect("pem"),
            m.cert_der
        );
    }

    #[test]
    fn an_endorsement_with_trailing_or_missing_bytes_is_refused() {
        let mut r = rng();
        let id = SecretKey::generate(&mut r);
        let node = NodeId::new(1).expect("id");
        let e = Endorsement::sign(&id, "c", node, &Key32([9; 32]), 1, 2);
        let mut bytes = e.encode();
        bytes.push(0);
        assert!(matches!(
            Endorsement::decode(&bytes),
            Err(TlsIdentityError::Decode(DecodeError::Trailing { count: 1 }))
        ));
        bytes.truncate(bytes.len() - 2);
        assert!(matches!(
            Endorsement::decode(&bytes),
            Err(TlsIdentityError::Decode(DecodeError::Truncated { .. }))
        ));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let err = PresentedIdentity::from_cert_der(b"not a certificate").expect_err("garbage");
        assert!(
            err.to_string().contains("not an X.509 certificate"),
            "{err}"
        );
        let err =
            PresentedIdentity::from_cert_der(&vec![0x30; CERT_BYTES_MAX + 1]).expect_err("big");
        assert!(err.to_string().contains("above"), "{err}");
    }
}
