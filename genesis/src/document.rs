//! The genesis document: who the validators are, which policy is sealed, and
//! the founding authority's signature over all of it.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::codec::{Digest, Encoder, sha3};
use crate::ids::{Epoch, NodeId, PolicyVersion};

/// The `format` value of a genesis JSON file.
pub const GENESIS_FORMAT: &str = "senatus.genesis.v1";

/// Limits on a genesis document, checked before anything else reads it.
pub const GENESIS_BYTES_MAX: u64 = 1 << 20;
/// Most validators a genesis may list.
pub const VALIDATORS_MAX: usize = 255;
/// Longest chain id.
pub const CHAIN_ID_BYTES_MAX: usize = 64;
/// Longest advertised address.
pub const ADDRESS_BYTES_MAX: usize = 255;

/// A 32-byte public key or share, hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key32(pub [u8; 32]);

impl fmt::Debug for Key32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Display for Key32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for Key32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Key32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
        let a: [u8; 32] = v
            .try_into()
            .map_err(|_| serde::de::Error::custom("want 32 bytes (64 hex characters)"))?;
        Ok(Key32(a))
    }
}

/// A 64-byte Ed25519 signature, hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sig64(pub [u8; 64]);

impl fmt::Debug for Sig64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for Sig64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Sig64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
        let a: [u8; 64] = v
            .try_into()
            .map_err(|_| serde::de::Error::custom("want 64 bytes (128 hex characters)"))?;
        Ok(Sig64(a))
    }
}

/// One validator as genesis (or a seal) lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    /// Validator id, also its FROST identifier.
    pub id: NodeId,
    /// Ed25519 identity key: signs votes, certificates, redeclarations.
    pub identity_key: Key32,
    /// The FROST verifying share of this validator (its share times the base
    /// point); lets anyone check its signature shares.
    pub verifying_share: Key32,
    /// Where peers reach its Raft/peer gRPC service (`host:port`).
    pub peer_addr: String,
    /// Where clients reach its public gRPC service (`host:port`).
    pub api_addr: String,
}

impl Validator {
    /// Appends the canonical encoding (shared by genesis and seals).
    pub fn encode(&self, e: &mut Encoder) {
        e.u64(self.id.get())
            .fixed32(&self.identity_key.0)
            .fixed32(&self.verifying_share.0)
            .str(&self.peer_addr)
            .str(&self.api_addr);
    }
}

/// Everything genesis says, without the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisBody {
    /// Names this cluster; every signed statement binds to it via genesis.
    pub chain_id: String,
    /// Creation time, Unix milliseconds (informational; signed).
    pub created_at_ms: u64,
    /// The founding authority's Ed25519 public key.
    pub authority_key: Key32,
    /// FROST threshold t: signers needed for a token or a seal.
    pub threshold: u16,
    /// The FROST group verifying key: tokens and seals are plain Ed25519
    /// signatures under it.
    pub group_key: Key32,
    /// The genesis validator set, sorted by id.
    pub validators: Vec<Validator>,
    /// Digest of the sealed policy layer (`docs/PROTOCOL.md`, policy digest).
    pub policy_digest: Digest,
    /// Version of that policy layer.
    pub policy_version: PolicyVersion,
    /// Epoch length in decisions.
    pub epoch_length_decisions: u64,
}

/// A signed genesis document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Always [`GENESIS_FORMAT`].
    pub format: String,
    /// The signed content.
    #[serde(flatten)]
    pub body: GenesisBody,
    /// Ed25519 signature of the authority over [`GenesisBody::signing_bytes`].
    pub signature: Sig64,
}

/// Why a genesis document was refused.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("cannot read genesis {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is larger than [`GENESIS_BYTES_MAX`].
    #[error("genesis {path} is {bytes} bytes, over the {max}-byte limit")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// Not valid genesis JSON (truncated, garbled, unknown or missing fields).
    #[error("genesis {path} is malformed: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// The `format` field names another format or version.
    #[error("genesis format is {found:?}, expected {GENESIS_FORMAT:?}")]
    Format {
        /// What the file says.
        found: String,
    },
    /// A field breaks a structural rule.
    #[error("genesis is invalid: {0}")]
    Invalid(String),
    /// The authority key is not a valid Ed25519 point.
    #[error("genesis authority key {0} is not a valid Ed25519 public key")]
    BadAuthorityKey(Key32),
    /// The signature does not verify under the authority key.
    #[error("genesis signature does not verify under authority key {0}")]
    BadSignature(Key32),
}

impl GenesisBody {
    /// The exact bytes the founding authority signs (`docs/PROTOCOL.md`).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new("genesis", 1);
        e.str(&self.chain_id)
            .u64(self.created_at_ms)
            .fixed32(&self.authority_key.0)
            .u16(self.threshold)
            .fixed32(&self.group_key.0)
            .count(self.validators.len());
        for v in &self.validators {
            v.encode(&mut e);
        }
        e.digest(&self.policy_digest)
            .u64(self.policy_version.0)
            .u64(self.epoch_length_decisions);
        e.finish()
    }

    /// Structural rules between fields; the signature is checked separately.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad = |m: String| Err(GenesisError::Invalid(m));
        if self.chain_id.is_empty()
            || self.chain_id.len() > CHAIN_ID_BYTES_MAX
            || !self
                .chain_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return bad(format!(
                "chain_id {:?} must be 1..={CHAIN_ID_BYTES_MAX} characters of [A-Za-z0-9._-]",
                self.chain_id
            ));
        }
        let n = self.validators.len();
        if n == 0 || n > VALIDATORS_MAX {
            return bad(format!("{n} validators; want 1..={VALIDATORS_MAX}"));
        }
        if self.threshold < 2 || usize::from(self.threshold) > n {
            return bad(format!(
                "threshold {} with {n} validators; want 2 <= threshold <= validators",
                self.threshold
            ));
        }
        if self.epoch_length_decisions == 0 {
            return bad("epoch_length_decisions is 0; want at least 1".into());
        }
        let mut ids = BTreeSet::new();
        let mut keys = BTreeSet::new();
        let mut shares = BTreeSet::new();
        let mut prev: Option<NodeId> = None;
        for v in &self.validators {
            if prev.is_some_and(|p| p >= v.id) {
                return bad(format!("validators not sorted by id at id {}", v.id));
            }
            prev = Some(v.id);
            if !ids.insert(v.id) {
                return bad(format!("validator id {} appears twice", v.id));
            }
            if !keys.insert(v.identity_key) {
                return bad(format!("identity key {} appears twice", v.identity_key));
            }
            if !shares.insert(v.verifying_share) {
                return bad(format!(
                    "verifying share {} appears twice",
                    v.verifying_share
                ));
            }
            if crate::ed25519::verifying_key(&v.identity_key.0).is_err() {
                return bad(format!(
                    "validator {} identity key {} is not a valid Ed25519 public key",
                    v.id, v.identity_key
                ));
            }
            for (what, addr) in [("peer_addr", &v.peer_addr), ("api_addr", &v.api_addr)] {
                check_address(addr).map_err(|m| {
                    GenesisError::Invalid(format!("validator {} {what} {addr:?}: {m}", v.id))
                })?;
            }
        }
        if frost_ed25519::VerifyingKey::deserialize(&self.group_key.0).is_err() {
            return bad(format!("group key {} is not a valid point", self.group_key));
        }
        Ok(())
    }

    /// The validator entry for `id`.
    pub fn validator(&self, id: NodeId) -> Option<&Validator> {
        self.validators.iter().find(|v| v.id == id)
    }

    /// The genesis epoch.
    pub fn epoch(&self) -> Epoch {
        Epoch(0)
    }
}

/// Checks `host:port` shape: non-empty host, numeric non-zero port.
fn check_address(addr: &str) -> Result<(), String> {
    if addr.len() > ADDRESS_BYTES_MAX {
        return Err(format!("longer than {ADDRESS_BYTES_MAX} bytes"));
    }
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| "want host:port".to_string())?;
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err("bad host".into());
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(()),
        _ => Err(format!("bad port {port:?}")),
    }
}

impl Genesis {
    /// Signs `body` with the founding authority key.
    pub fn sign(
        body: GenesisBody,
        authority: &ed25519_dalek::SigningKey,
    ) -> Result<Self, GenesisError> {
        use ed25519_dalek::Signer as _;
        if authority.verifying_key().to_bytes() != body.authority_key.0 {
            return Err(GenesisError::Invalid(
                "authority_key is not the public key of the signing authority".into(),
            ));
        }
        body.validate()?;
        let sig = authority.sign(&body.signing_bytes());
        Ok(Genesis {
            format: GENESIS_FORMAT.to_string(),
            body,
            signature: Sig64(sig.to_bytes()),
        })
    }

    /// Structure, then the authority signature (`verify_strict`).
    pub fn verify(&self) -> Result<(), GenesisError> {
        if self.format != GENESIS_FORMAT {
            return Err(GenesisError::Format {
                found: self.format.clone(),
            });
        }
        self.body.validate()?;
        let key = crate::ed25519::verifying_key(&self.body.authority_key.0)
            .map_err(|_| GenesisError::BadAuthorityKey(self.body.authority_key))?;
        let sig = Signature::from_bytes(&self.signature.0);
        // Strict: rejects small-order keys and non-canonical encodings, so a
        // genesis has exactly one valid signature.
        key.verify_strict(&self.body.signing_bytes(), &sig)
            .map_err(|_| GenesisError::BadSignature(self.body.authority_key))
    }

    /// The genesis digest: SHA3-256 of the signing bytes. Ledger entry 1
    /// chains to it and seal 0 names it as its predecessor.
    pub fn digest(&self) -> Digest {
        sha3(&self.body.signing_bytes())
    }

    /// Parses genesis JSON (does not verify; call [`Genesis::verify`]).
    pub fn from_json(bytes: &[u8], path: &str) -> Result<Self, GenesisError> {
        serde_json::from_slice(bytes).map_err(|e| GenesisError::Malformed {
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    /// Reads, parses and verifies a genesis file.
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let shown = path.display().to_string();
        let io = |source| GenesisError::Io {
            path: shown.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > GENESIS_BYTES_MAX {
            return Err(GenesisError::TooLarge {
                path: shown,
                bytes: meta.len(),
                max: GENESIS_BYTES_MAX,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let g = Genesis::from_json(&bytes, &shown)?;
        g.verify()?;
        Ok(g)
    }

    /// Pretty JSON, newline-terminated.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("genesis serializes");
        s.push('\n');
        s
    }
}
