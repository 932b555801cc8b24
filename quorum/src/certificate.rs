//! Shutdown certificates, the pure core: what a validator signs when it
//! detects a breach (DESIGN.md, "Breach"), and what every receiver can check
//! from public material alone.
//!
//! A certificate names a **subject** (a validator or an agent), a **breach
//! kind** with its **evidence**, the issuer's ledger head at lockdown, the
//! issuer and a time, and carries the issuer's Ed25519 identity-key
//! signature. A receiver checks it with [`SignedCertificate::check`]: the
//! signature, that the subject is the one the evidence names, and the
//! evidence itself where public material suffices (two conflicting signed
//! votes, a signed FROST share that does not verify, a token that verifies
//! or does not). Facts only the issuer's own node holds (its sealed policy
//! digest, its ledger hash at an index, its nonce store) are checked by the
//! node against its own state, not here.
//!
//! # Byte strings (version 2; `docs/PROTOCOL.md` section 17)
//!
//! ```text
//! attestation_signing_bytes =
//!     "senatus/share-attestation/v1" 0x00
//!     fixed32 request_digest      SHA3-256(sign_request wire bytes)
//!     bytes   share               share wire bytes
//! attested_share = bytes request || bytes share || fixed64 signature
//!
//! certificate_signing_bytes =
//!     "senatus/shutdown-certificate/v2" 0x00
//!     u8      subject_kind        1 validator, 2 agent
//!     u64     subject_node        validator id; 0 for an agent
//!     str     subject_tenant      "" for a validator
//!     str     subject_actor       "" for a validator
//!     u8      breach_kind         1..=10, see BreachKind
//!     bytes   evidence            at most EVIDENCE_BYTES_MAX bytes
//!     u64     head_index
//!     fixed32 head_hash
//!     u64     issuer
//!     u64     issued_at_ms
//! certificate_id = SHA3-256(certificate_signing_bytes)
//! certificate    = certificate_signing_bytes || fixed64 signature
//! ```
//!
//! Evidence is a plain concatenation of codec fields, without a tag of its
//! own (the certificate's tag and `breach_kind` already say what it is):
//!
//! ```text
//! 1 policy-drift       u8 location (1 memory, 2 disk)  u64 policy_version
//!                      fixed32 sealed_digest  fixed32 observed_digest
//! 2 ledger-break       u64 index  fixed32 expected  fixed32 found
//! 3 invalid-share      attested_share
//! 4 vote-equivocation  bytes first_signed_vote  bytes second_signed_vote
//! 5 token-modified     bytes token  str params_json  bytes presentation
//! 6 token-forged       bytes token  bytes presentation
//! 7 token-replayed     bytes token  u64 first_index  bytes first_token
//!                      bytes first_presentation  bytes second_presentation
//! 8 head-equivocation  bytes first_certificate  bytes second_certificate
//! 9 batch-lifetime     attested_batch
//! 10 ledger-fork       attested_batch
//!
//! batch_attestation_signing_bytes =
//!     "senatus/batch-attestation/v1" 0x00
//!     u64     leader  u64 ledger_index  fixed32 entry_hash
//!     u64     issued_at_ms  u64 expires_at_ms
//! attested_batch = u64 leader  u64 ledger_index  fixed32 entry_hash
//!                  u64 issued_at_ms  u64 expires_at_ms  fixed64 signature
//! ```
//!
//! A certificate about an agent (kinds 5, 6, 7) carries that agent's own
//! presentations (`crate::presentation`): evidence only the agent could
//! have produced. A made-up token, a stolen one, or one presentation sent
//! twice certifies nobody.

use std::collections::BTreeSet;
use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use frost_ed25519::keys::PublicKeyPackage;
use senatus_genesis::codec::{self, Decoder, ReadError, Reader};
use senatus_genesis::policy::TOKEN_LIFETIME_MS_HARD_MAX;
use senatus_genesis::registry::Registry;
use senatus_genesis::{Digest, Encoder, Key32, NodeId, Sig64, Validator, sha3};

use crate::amend::{Equivocation, EvidenceError, SignedVote};
use crate::broker::{Broker, VerifyError};
use crate::params::params_digest;
use crate::presentation::{Presentation, params_hash};
use crate::signing::{SHARE_BYTES, SIGN_REQUEST_BYTES_MAX, SignRequest, SignedShare, WireError};
use crate::token::{self, Nonce, Token};

/// Domain-separation object name of a certificate.
pub const CERTIFICATE_OBJECT: &str = "shutdown-certificate";
/// Domain-separation object name of a share attestation.
pub const ATTESTATION_OBJECT: &str = "share-attestation";
/// Version of the certificate encoding (2: agent evidence carries the
/// agent's presentations).
pub const CERTIFICATE_VERSION: u8 = 2;
/// Version of the share attestation encoding.
pub const ATTESTATION_VERSION: u8 = 1;
/// Largest evidence, in bytes.
pub const EVIDENCE_BYTES_MAX: usize = 64 * 1024;
/// Longest tenant or actor of an agent subject, in bytes (a token's limit,
/// since an agent is named by the token it presented).
pub const AGENT_FIELD_BYTES_MAX: usize = token::FIELD_BYTES_MAX;
/// Length of an Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;
/// Largest encoded [`AttestedShare`]: a sign request at its bound, a share,
/// a signature. Inside a certificate the tighter [`EVIDENCE_BYTES_MAX`]
/// applies.
pub const ATTESTED_SHARE_BYTES_MAX: usize =
    4 + SIGN_REQUEST_BYTES_MAX + 4 + SHARE_BYTES + SIGNATURE_BYTES;
/// Largest encoded certificate: tag, subject at its bounds, breach kind,
/// evidence at [`EVIDENCE_BYTES_MAX`], head, issuer, time, signature.
pub const CERTIFICATE_BYTES_MAX: usize = "senatus/shutdown-certificate/v2\0".len()
    + 1
    + 8
    + 2 * (4 + AGENT_FIELD_BYTES_MAX)
    + 1
    + 4
    + EVIDENCE_BYTES_MAX
    + 8
    + 32
    + 8
    + 8
    + SIGNATURE_BYTES;

const SUBJECT_VALIDATOR: u8 = 1;
const SUBJECT_AGENT: u8 = 2;

// ---------------------------------------------------------------------------
// Subject, breach kind, drift location
// ---------------------------------------------------------------------------

/// Whom a certificate is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A validator: excluded from signing once the certificate is validated.
    Validator(NodeId),
    /// A governed agent: every later decision for it is DENY.
    Agent {
        /// The tenant it acts for.
        tenant: String,
        /// The agent (a request's `actor`).
        actor: String,
    },
}

impl Subject {
    /// The wire code: 1 validator, 2 agent.
    pub fn code(&self) -> u8 {
        match self {
            Subject::Validator(_) => SUBJECT_VALIDATOR,
            Subject::Agent { .. } => SUBJECT_AGENT,
        }
    }

    /// Checks an agent's tenant and actor: each 1..=[`AGENT_FIELD_BYTES_MAX`]
    /// bytes. A validator subject is always well formed.
    pub fn validate(&self) -> Result<(), CertificateError> {
        if let Subject::Agent { tenant, actor } = self {
            for (field, v) in [("tenant", tenant), ("actor", actor)] {
                if v.is_empty() || v.len() > AGENT_FIELD_BYTES_MAX {
                    return Err(CertificateError::BadSubject {
                        why: format!(
                            "agent {field} is {} bytes, want 1..={AGENT_FIELD_BYTES_MAX}",
                            v.len()
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Validator(n) => write!(f, "validator {n}"),
            Subject::Agent { tenant, actor } => write!(f, "agent {tenant}/{actor}"),
        }
    }
}

/// What kind of breach a certificate reports; the wire code is the
/// discriminant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BreachKind {
    /// The issuer's active policy differs from its newest seal.
    PolicyDrift = 1,
    /// The issuer's ledger chain is broken.
    LedgerBreak = 2,
    /// A validator signed (attested) a FROST share that does not verify.
    InvalidShare = 3,
    /// A validator signed two different votes for one slot.
    VoteEquivocation = 4,
    /// An agent presented a genuine token with other params.
    TokenModified = 5,
    /// An agent presented a token the cluster did not sign.
    TokenForged = 6,
    /// An agent presented an already redeemed token.
    TokenReplayed = 7,
    /// A validator signed two different ledger heads for one index.
    HeadEquivocation = 8,
    /// A leader signed a decision batch whose tokens would live longer
    /// than any constitution allows.
    BatchLifetime = 9,
    /// A leader signed a ledger head (a batch attestation) that is not the
    /// entry committed at its index: it forked the ledger.
    LedgerFork = 10,
}

impl BreachKind {
    /// Every kind, in code order.
    pub const ALL: [BreachKind; 10] = [
        BreachKind::PolicyDrift,
        BreachKind::LedgerBreak,
        BreachKind::InvalidShare,
        BreachKind::VoteEquivocation,
        BreachKind::TokenModified,
        BreachKind::TokenForged,
        BreachKind::TokenReplayed,
        BreachKind::HeadEquivocation,
        BreachKind::BatchLifetime,
        BreachKind::LedgerFork,
    ];

    /// The wire code, 1..=10.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind of a wire code, if it is one.
    pub fn from_code(code: u8) -> Option<BreachKind> {
        BreachKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The stable name: `"policy-drift"`, `"ledger-break"`, `"invalid-share"`,
    /// `"vote-equivocation"`, `"token-modified"`, `"token-forged"`,
    /// `"token-replayed"`, `"head-equivocation"`, `"batch-lifetime"` or
    /// `"ledger-fork"`.
    pub fn name(self) -> &'static str {
        match self {
            BreachKind::PolicyDrift => "policy-drift",
            BreachKind::LedgerBreak => "ledger-break",
            BreachKind::InvalidShare => "invalid-share",
            BreachKind::VoteEquivocation => "vote-equivocation",
            BreachKind::TokenModified => "token-modified",
            BreachKind::TokenForged => "token-forged",
            BreachKind::TokenReplayed => "token-replayed",
            BreachKind::HeadEquivocation => "head-equivocation",
            BreachKind::BatchLifetime => "batch-lifetime",
            BreachKind::LedgerFork => "ledger-fork",
        }
    }
}

impl fmt::Display for BreachKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a validator found its active policy to differ from the seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DriftLocation {
    /// The policy layer held in memory.
    Memory = 1,
    /// The sealed layer files on disk.
    Disk = 2,
}

impl DriftLocation {
    /// The wire code: 1 memory, 2 disk.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The location of a wire code, if it is one.
    pub fn from_code(code: u8) -> Option<DriftLocation> {
        match code {
            1 => Some(DriftLocation::Memory),
            2 => Some(DriftLocation::Disk),
            _ => None,
        }
    }

    /// `"memory"` or `"disk"`.
    pub fn name(self) -> &'static str {
        match self {
            DriftLocation::Memory => "memory",
            DriftLocation::Disk => "disk",
        }
    }
}

impl fmt::Display for DriftLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a certificate (or a share attestation) is malformed, unauthentic, or
/// does not prove the breach it claims. One variant per rejection; each
/// names the values that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Input over its bound; refused before reading.
    #[error("{object} is {bytes} bytes, over the {max}-byte limit")]
    TooLarge {
        /// `"shutdown-certificate"` or `"attested share"`.
        object: &'static str,
        /// Input length.
        bytes: usize,
        /// The bound.
        max: usize,
    },
    /// Tag, truncation, UTF-8 or trailing bytes.
    #[error("{object}: {error}")]
    Decode {
        /// What was being read.
        object: &'static str,
        /// Why it failed.
        error: codec::DecodeError,
    },
    /// Evidence bytes that do not decode for their kind.
    #[error("{kind} evidence: {error}")]
    EvidenceDecode {
        /// The breach kind.
        kind: BreachKind,
        /// Why it failed.
        error: codec::DecodeError,
    },
    /// A subject kind other than 1 or 2.
    #[error("unknown subject kind {0} (want 1 validator or 2 agent)")]
    UnknownSubjectKind(u8),
    /// Subject fields that do not fit the subject kind.
    #[error("malformed subject: {why}")]
    BadSubject {
        /// What is wrong.
        why: String,
    },
    /// A breach kind code outside 1..=10.
    #[error("unknown breach kind code {0} (want 1..=10)")]
    UnknownBreachKind(u8),
    /// A drift location code other than 1 or 2.
    #[error("unknown policy-drift location code {0} (want 1 memory or 2 disk)")]
    UnknownDriftLocation(u8),
    /// A node id field outside 1..=65535.
    #[error("{field} {value} is not a node id (want 1..=65535)")]
    BadNodeId {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// Evidence over [`EVIDENCE_BYTES_MAX`].
    #[error("{kind} evidence is {bytes} bytes, over the {EVIDENCE_BYTES_MAX}-byte limit")]
    EvidenceTooLarge {
        /// The breach kind.
        kind: BreachKind,
        /// Its size.
        bytes: usize,
    },
    /// The sign request or share inside an attested share does not decode.
    #[error("attested share: {0}")]
    Wire(WireError),
    /// The issuer is not in the membership.
    #[error("certificate issuer {0} is not a member of the validator set")]
    UnknownIssuer(NodeId),
    /// The certificate signature does not verify under the issuer's key.
    #[error("certificate {id} does not verify under issuer {issuer}'s identity key {identity_key}")]
    BadSignature {
        /// The issuer.
        issuer: NodeId,
        /// Its identity key.
        identity_key: Key32,
        /// The certificate's id.
        id: CertificateId,
    },
    /// The signer of an attested share is not in the membership.
    #[error("share signer {0} is not a member of the validator set")]
    UnknownSigner(NodeId),
    /// A share attestation does not verify under the signer's key.
    #[error(
        "attestation of signer {signer}'s share does not verify under its identity key {identity_key}"
    )]
    BadAttestation {
        /// The signer named in the share.
        signer: NodeId,
        /// Its identity key.
        identity_key: Key32,
    },
    /// The subject is not the one the evidence names.
    #[error("{kind} certificate names {subject}, but its evidence names {expected}")]
    SubjectMismatch {
        /// The breach kind.
        kind: BreachKind,
        /// The certificate's subject.
        subject: Subject,
        /// The subject the evidence implies.
        expected: Subject,
    },
    /// The evidence is authentic but shows no breach.
    #[error("{kind} evidence shows no breach: {why}")]
    NoBreach {
        /// The breach kind.
        kind: BreachKind,
        /// Why not.
        why: String,
    },
    /// The evidence is malformed, unauthentic, or cannot be judged.
    #[error("{kind} evidence is not valid: {why}")]
    Evidence {
        /// The breach kind.
        kind: BreachKind,
        /// Why not.
        why: String,
    },
}

// ---------------------------------------------------------------------------
// Tagless field encoding (evidence and attested shares)
// ---------------------------------------------------------------------------

/// Appends codec fields without a tag (PROTOCOL.md section 1 primitives).
#[derive(Default)]
struct Fields {
    buf: Vec<u8>,
}

impl Fields {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn digest(&mut self, d: &Digest) -> &mut Self {
        self.buf.extend_from_slice(&d.0);
        self
    }

    fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// # Panics
    /// If `v` is longer than `u32::MAX` bytes; every caller is bounded far
    /// below that.
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).expect("evidence field longer than u32::MAX bytes");
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(v);
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Checks `signature` over `bytes`, strictly, under the identity key of
/// `signer` in `membership` (a share's or a batch's attestation); returns
/// the signer.
fn attested_by(
    membership: &[Validator],
    signer: NodeId,
    bytes: &[u8],
    signature: &Sig64,
) -> Result<NodeId, CertificateError> {
    let (identity_key, key) =
        verifying_key(membership, signer).ok_or(CertificateError::UnknownSigner(signer))?;
    let bad = CertificateError::BadAttestation {
        signer,
        identity_key,
    };
    key.ok_or_else(|| bad.clone())?
        .verify_strict(bytes, &Signature::from_bytes(&signature.0))
        .map_err(|_| bad)?;
    Ok(signer)
}

fn verifying_key(membership: &[Validator], node: NodeId) -> Option<(Key32, Option<VerifyingKey>)> {
    membership.iter().find(|m| m.id == node).map(|m| {
        (
            m.identity_key,
            senatus_genesis::ed25519::verifying_key(&m.identity_key.0).ok(),
        )
    })
}

// ---------------------------------------------------------------------------
// Attested shares
// ---------------------------------------------------------------------------

/// Domain-separation object name of a leader's batch attestation.
pub const BATCH_ATTESTATION_OBJECT: &str = "batch-attestation";
/// Length of an encoded [`AttestedBatch`].
pub const ATTESTED_BATCH_BYTES: usize = 8 + 8 + 32 + 8 + 8 + SIGNATURE_BYTES;

/// A leader's identity-key signature over the times of the decision batch
/// it asks signers to sign (docs/PROTOCOL.md 21.5): sent with every
/// `SignBatch`, so a batch whose times no honest leader proposes is
/// evidence against the leader that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedBatch {
    /// The leader that proposed the batch.
    pub leader: NodeId,
    /// The ledger index of its Decision entry.
    pub ledger_index: u64,
    /// The ledger hash of that Decision entry (section 6): a signed ledger
    /// head.
    pub entry_hash: Digest,
    /// The batch's `issued_at_ms`.
    pub issued_at_ms: u64,
    /// The batch's `expires_at_ms`.
    pub expires_at_ms: u64,
    /// The leader's identity-key signature over
    /// [`AttestedBatch::signing_bytes`].
    pub signature: Sig64,
}

impl AttestedBatch {
    /// The bytes the leader signs.
    pub fn signing_bytes(
        leader: NodeId,
        ledger_index: u64,
        entry_hash: &Digest,
        issued_at_ms: u64,
        expires_at_ms: u64,
    ) -> Vec<u8> {
        let mut e = Encoder::new(BATCH_ATTESTATION_OBJECT, ATTESTATION_VERSION);
        e.u64(leader.get())
            .u64(ledger_index)
            .digest(entry_hash)
            .u64(issued_at_ms)
            .u64(expires_at_ms);
        e.finish()
    }

    /// The attestation by `leader` of the entry at `ledger_index` with
    /// ledger hash `entry_hash` and the batch times, signed by `sign` (the
    /// leader's identity key, wherever it is held).
    pub fn new(
        leader: NodeId,
        ledger_index: u64,
        entry_hash: Digest,
        (issued_at_ms, expires_at_ms): (u64, u64),
        sign: impl FnOnce(&[u8]) -> [u8; 64],
    ) -> AttestedBatch {
        let bytes = Self::signing_bytes(
            leader,
            ledger_index,
            &entry_hash,
            issued_at_ms,
            expires_at_ms,
        );
        AttestedBatch {
            leader,
            ledger_index,
            entry_hash,
            issued_at_ms,
            expires_at_ms,
            signature: Sig64(sign(&bytes)),
        }
    }

    /// `expires_at_ms - issued_at_ms` (0 if it expires first).
    pub fn lifetime_ms(&self) -> u64 {
        self.expires_at_ms.saturating_sub(self.issued_at_ms)
    }

    /// True when this attests exactly `batch` as the entry at
    /// `ledger_index` with ledger hash `entry_hash`.
    pub fn attests(
        &self,
        ledger_index: u64,
        entry_hash: &Digest,
        batch: &crate::batch::DecisionBatch,
    ) -> bool {
        self.ledger_index == ledger_index
            && self.entry_hash == *entry_hash
            && self.issued_at_ms == batch.issued_at_ms
            && self.expires_at_ms == batch.expires_at_ms
    }

    /// Checks the signature, strictly, under the leader's identity key in
    /// `membership`; returns the leader.
    pub fn verify(&self, membership: &[Validator]) -> Result<NodeId, CertificateError> {
        let bytes = Self::signing_bytes(
            self.leader,
            self.ledger_index,
            &self.entry_hash,
            self.issued_at_ms,
            self.expires_at_ms,
        );
        attested_by(membership, self.leader, &bytes, &self.signature)
    }

    /// The wire form (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.u64(self.leader.get())
            .u64(self.ledger_index)
            .digest(&self.entry_hash)
            .u64(self.issued_at_ms)
            .u64(self.expires_at_ms)
            .raw(&self.signature.0);
        f.finish()
    }

    /// Strictly decodes the wire form: exactly [`ATTESTED_BATCH_BYTES`]
    /// bytes, a valid validator id.
    pub fn decode(kind: BreachKind, bytes: &[u8]) -> Result<AttestedBatch, CertificateError> {
        let decode = |e: ReadError| CertificateError::EvidenceDecode {
            kind,
            error: e.into(),
        };
        let mut r = Reader::new(bytes);
        let leader = r.u64("leader").map_err(decode)?;
        let leader = NodeId::new(leader).map_err(|e| CertificateError::Evidence {
            kind,
            why: format!("leader: {e}"),
        })?;
        let ledger_index = r.u64("ledger_index").map_err(decode)?;
        let entry_hash = r.digest("entry_hash").map_err(decode)?;
        let issued_at_ms = r.u64("issued_at_ms").map_err(decode)?;
        let expires_at_ms = r.u64("expires_at_ms").map_err(decode)?;
        let signature = Sig64(r.array::<SIGNATURE_BYTES>("signature").map_err(decode)?);
        r.finish().map_err(decode)?;
        Ok(AttestedBatch {
            leader,
            ledger_index,
            entry_hash,
            issued_at_ms,
            expires_at_ms,
            signature,
        })
    }
}

/// A FROST share together with the request it answers, signed by the
/// signer's Ed25519 identity key: whoever holds it can prove to anyone that
/// this signer produced this share for this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedShare {
    /// The request the share answers.
    pub request: SignRequest,
    /// The share.
    pub share: SignedShare,
    /// The signer's identity-key signature over
    /// [`AttestedShare::signing_bytes`].
    pub signature: Sig64,
}

impl AttestedShare {
    /// The bytes the signer signs: tag, SHA3-256 of the request's wire
    /// bytes, the share's wire bytes.
    ///
    /// # Panics
    /// If the request is over its bounds (see [`SignRequest::to_bytes`]).
    pub fn signing_bytes(request: &SignRequest, share: &SignedShare) -> Vec<u8> {
        let mut e = Encoder::new(ATTESTATION_OBJECT, ATTESTATION_VERSION);
        e.digest(&sha3(&request.to_bytes()))
            .bytes(&share.to_bytes());
        e.finish()
    }

    /// Signs `share` for `request` with the signer's identity key.
    pub fn sign(request: SignRequest, share: SignedShare, key: &SigningKey) -> AttestedShare {
        let signature = Sig64(key.sign(&Self::signing_bytes(&request, &share)).to_bytes());
        AttestedShare {
            request,
            share,
            signature,
        }
    }

    /// Checks the attestation signature, strictly, under the identity key of
    /// the share's signer in `membership`; returns the signer.
    pub fn verify(&self, membership: &[Validator]) -> Result<NodeId, CertificateError> {
        let bytes = Self::signing_bytes(&self.request, &self.share);
        attested_by(membership, self.share.signer, &bytes, &self.signature)
    }

    /// True if the share verifies for the request's FROST signing package
    /// under `pubkeys` (the key package of the epoch the request was made
    /// in). False when it does not, and also when it cannot be judged
    /// against this request at all (see [`AttestedShare::share_verdict`] for
    /// which is which).
    pub fn share_is_valid(&self, pubkeys: &PublicKeyPackage) -> bool {
        matches!(self.share_verdict(pubkeys), Ok(true))
    }

    /// `Ok(true)` if the share verifies, `Ok(false)` if it does not, and
    /// `Err(why)` if this request cannot be evidence about this share: the
    /// share's signer or commitment is not the request's, a signer is listed
    /// twice or has no verifying share, or the request has fewer signers
    /// than the threshold (an honest signer refuses such a request, so a
    /// share for it proves nothing).
    ///
    /// Per-share verification is FROST's own
    /// (`frost_core::verify_signature_share`).
    pub fn share_verdict(&self, pubkeys: &PublicKeyPackage) -> Result<bool, String> {
        let me = self.share.signer;
        let entries = &self.request.commitments;
        let mut seen = BTreeSet::new();
        for c in entries {
            if !seen.insert(c.signer) {
                return Err(format!("the request lists signer {} twice", c.signer));
            }
            if !pubkeys
                .verifying_shares()
                .contains_key(&c.signer.frost_identifier())
            {
                return Err(format!(
                    "the request names signer {}, which has no verifying share in this key package",
                    c.signer
                ));
            }
        }
        let Some(own) = entries.iter().find(|c| c.signer == me) else {
            return Err(format!(
                "the request has no commitment for the share's signer {me}"
            ));
        };
        if own.id != self.share.id {
            return Err(format!(
                "the share is labelled with commitment {}, the request gives signer {me} commitment {}",
                self.share.id, own.id
            ));
        }
        let need = usize::from(pubkeys.min_signers().unwrap_or(2)).max(2);
        if entries.len() < need {
            return Err(format!(
                "the request has {} signers, fewer than the threshold {need}; an honest signer refuses it",
                entries.len()
            ));
        }
        let verifying_share = pubkeys
            .verifying_shares()
            .get(&me.frost_identifier())
            .ok_or_else(|| format!("signer {me} has no verifying share in this key package"))?;
        // FROST's own per-share check (RFC 9591, section 5.4), against the
        // request's signing package: exact, whatever the other shares were.
        Ok(frost_core::verify_signature_share(
            me.frost_identifier(),
            verifying_share,
            &self.share.share,
            &self.request.package(),
            pubkeys.verifying_key(),
        )
        .is_ok())
    }

    /// The encoding: `bytes request || bytes share || fixed64 signature`
    /// (no tag of its own; it is carried inside a certificate).
    ///
    /// # Panics
    /// If the request is over its bounds (see [`SignRequest::to_bytes`]).
    pub fn encode(&self) -> Vec<u8> {
        Fields::default()
            .bytes(&self.request.to_bytes())
            .bytes(&self.share.to_bytes())
            .raw(&self.signature.0)
            .finish()
    }

    /// Strict inverse of [`AttestedShare::encode`]: bounded, the request and
    /// share decode strictly, no trailing bytes. Does not check the
    /// signature: see [`AttestedShare::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        const OBJECT: &str = "attested share";
        if bytes.len() > ATTESTED_SHARE_BYTES_MAX {
            return Err(CertificateError::TooLarge {
                object: OBJECT,
                bytes: bytes.len(),
                max: ATTESTED_SHARE_BYTES_MAX,
            });
        }
        let decode = |e: ReadError| CertificateError::EvidenceDecode {
            kind: BreachKind::InvalidShare,
            error: e.into(),
        };
        let mut r = Reader::new(bytes);
        let request = r.bytes("request").map_err(decode)?;
        let request = SignRequest::from_bytes(request).map_err(CertificateError::Wire)?;
        let share = r.bytes("share").map_err(decode)?;
        let share = SignedShare::from_bytes(share).map_err(CertificateError::Wire)?;
        let signature = Sig64(r.array::<SIGNATURE_BYTES>("signature").map_err(decode)?);
        r.finish().map_err(decode)?;
        Ok(AttestedShare {
            request,
            share,
            signature,
        })
    }
}

// ---------------------------------------------------------------------------
// Evidence
// ---------------------------------------------------------------------------

/// What a certificate offers as proof, one variant per [`BreachKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// The issuer's own policy differs from its newest seal. Only the
    /// issuer can observe this; receivers check the sealed digest against
    /// their own seal chain.
    PolicyDrift {
        /// Where the drift was found.
        location: DriftLocation,
        /// The active (sealed) policy version.
        policy_version: u64,
        /// The policy digest the seal declares.
        sealed_digest: Digest,
        /// The digest actually found.
        observed_digest: Digest,
    },
    /// The issuer's own ledger chain is broken at `index`.
    LedgerBreak {
        /// The ledger index (1 or more) whose hash does not match.
        index: u64,
        /// The hash the chain requires there.
        expected: Digest,
        /// The hash found.
        found: Digest,
    },
    /// A share, attested by its signer, that does not verify.
    InvalidShare(AttestedShare),
    /// Two different signed votes of one validator on one proposal.
    VoteEquivocation(Equivocation),
    /// A genuine token its agent presented with params other than those
    /// decided on.
    TokenModified {
        /// The token's wire bytes.
        token: Vec<u8>,
        /// The params the agent presented, as received (JSON text).
        params_json: String,
        /// The agent's presentation of the token with those params.
        presentation: Presentation,
    },
    /// A token the cluster did not sign, presented by the agent it names.
    TokenForged {
        /// The token's wire bytes.
        token: Vec<u8>,
        /// The agent's presentation of it.
        presentation: Presentation,
    },
    /// A genuine token its agent presented twice: two distinct
    /// presentations of one nonce.
    TokenReplayed {
        /// The token's wire bytes, as presented the second time.
        token: Vec<u8>,
        /// Ledger index (1 or more) of the only valid redemption.
        first_index: u64,
        /// The token's wire bytes as redeemed at `first_index`: the same
        /// bytes, or another signature over the same payload (a reissued
        /// token).
        first_token: Vec<u8>,
        /// The presentation redeemed at `first_index` (of `first_token`).
        first: Presentation,
        /// Another presentation by the same agent (of `token`).
        second: Presentation,
    },
    /// Two certificates signed by one validator naming two different
    /// hashes for the same ledger head index: it signed two conflicting
    /// ledger heads for one slot.
    HeadEquivocation {
        /// The certificate seen first.
        first: Box<SignedCertificate>,
        /// The conflicting one.
        second: Box<SignedCertificate>,
    },
    /// A decision batch's times, signed by the leader that proposed it,
    /// giving its tokens a lifetime no constitution allows.
    BatchLifetime(AttestedBatch),
    /// A leader's attestation naming, for a ledger index, an entry hash
    /// other than the one committed there (checked by each receiver
    /// against its own ledger).
    LedgerFork(AttestedBatch),
}

impl Evidence {
    /// The breach kind this evidence is for.
    pub fn kind(&self) -> BreachKind {
        match self {
            Evidence::PolicyDrift { .. } => BreachKind::PolicyDrift,
            Evidence::LedgerBreak { .. } => BreachKind::LedgerBreak,
            Evidence::InvalidShare(_) => BreachKind::InvalidShare,
            Evidence::VoteEquivocation(_) => BreachKind::VoteEquivocation,
            Evidence::TokenModified { .. } => BreachKind::TokenModified,
            Evidence::TokenForged { .. } => BreachKind::TokenForged,
            Evidence::TokenReplayed { .. } => BreachKind::TokenReplayed,
            Evidence::HeadEquivocation { .. } => BreachKind::HeadEquivocation,
            Evidence::BatchLifetime(_) => BreachKind::BatchLifetime,
            Evidence::LedgerFork(_) => BreachKind::LedgerFork,
        }
    }

    /// The kind-specific bytes (see the module documentation).
    ///
    /// # Panics
    /// For an attested share whose request is over its bounds (see
    /// [`SignRequest::to_bytes`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        match self {
            Evidence::PolicyDrift {
                location,
                policy_version,
                sealed_digest,
                observed_digest,
            } => {
                f.u8(location.code())
                    .u64(*policy_version)
                    .digest(sealed_digest)
                    .digest(observed_digest);
            }
            Evidence::LedgerBreak {
                index,
                expected,
                found,
            } => {
                f.u64(*index).digest(expected).digest(found);
            }
            Evidence::InvalidShare(a) => return a.encode(),
            Evidence::VoteEquivocation(e) => {
                f.bytes(&e.first.encode()).bytes(&e.second.encode());
            }
            Evidence::TokenModified {
                token,
                params_json,
                presentation,
            } => {
                f.bytes(token)
                    .bytes(params_json.as_bytes())
                    .bytes(&presentation.encode());
            }
            Evidence::TokenForged {
                token,
                presentation,
            } => {
                f.bytes(token).bytes(&presentation.encode());
            }
            Evidence::TokenReplayed {
                token,
                first_index,
                first_token,
                first,
                second,
            } => {
                f.bytes(token)
                    .u64(*first_index)
                    .bytes(first_token)
                    .bytes(&first.encode())
                    .bytes(&second.encode());
            }
            Evidence::HeadEquivocation { first, second } => {
                f.bytes(&first.encode()).bytes(&second.encode());
            }
            Evidence::BatchLifetime(a) | Evidence::LedgerFork(a) => return a.encode(),
        }
        f.finish()
    }

    /// Strictly decodes evidence of `kind`: bounded by
    /// [`EVIDENCE_BYTES_MAX`], known codes, inner objects (signed votes,
    /// sign requests, shares, tokens) decoding strictly, no trailing bytes.
    /// Checks no signature and judges nothing: see
    /// [`SignedCertificate::check`].
    pub fn decode(kind: BreachKind, bytes: &[u8]) -> Result<Self, CertificateError> {
        if bytes.len() > EVIDENCE_BYTES_MAX {
            return Err(CertificateError::EvidenceTooLarge {
                kind,
                bytes: bytes.len(),
            });
        }
        let decode = |e: ReadError| CertificateError::EvidenceDecode {
            kind,
            error: e.into(),
        };
        let invalid = |why: String| CertificateError::Evidence { kind, why };
        let token = |field: &str, bytes: &[u8]| -> Result<Vec<u8>, CertificateError> {
            Token::from_bytes(bytes).map_err(|e| invalid(format!("{field}: {e}")))?;
            Ok(bytes.to_vec())
        };
        let presentation = |field: &str, bytes: &[u8]| -> Result<Presentation, CertificateError> {
            Presentation::decode(bytes).map_err(|e| invalid(format!("{field}: {e}")))
        };
        let mut r = Reader::new(bytes);
        let evidence = match kind {
            BreachKind::PolicyDrift => {
                let code = r.u8("location").map_err(decode)?;
                let location = DriftLocation::from_code(code)
                    .ok_or(CertificateError::UnknownDriftLocation(code))?;
                Evidence::PolicyDrift {
                    location,
                    policy_version: r.u64("policy_version").map_err(decode)?,
                    sealed_digest: r.digest("sealed_digest").map_err(decode)?,
                    observed_digest: r.digest("observed_digest").map_err(decode)?,
                }
            }
            BreachKind::LedgerBreak => Evidence::LedgerBreak {
                index: r.u64("index").map_err(decode)?,
                expected: r.digest("expected").map_err(decode)?,
                found: r.digest("found").map_err(decode)?,
            },
            BreachKind::InvalidShare => {
                return AttestedShare::decode(bytes).map(Evidence::InvalidShare);
            }
            BreachKind::VoteEquivocation => {
                let first = r.bytes("first_signed_vote").map_err(decode)?;
                let first = SignedVote::decode(first)
                    .map_err(|e| invalid(format!("first signed vote: {e}")))?;
                let second = r.bytes("second_signed_vote").map_err(decode)?;
                let second = SignedVote::decode(second)
                    .map_err(|e| invalid(format!("second signed vote: {e}")))?;
                Evidence::VoteEquivocation(Equivocation { first, second })
            }
            BreachKind::TokenModified => Evidence::TokenModified {
                token: token("token", r.bytes("token").map_err(decode)?)?,
                params_json: r.str("params_json").map_err(decode)?.to_string(),
                presentation: presentation(
                    "presentation",
                    r.bytes("presentation").map_err(decode)?,
                )?,
            },
            BreachKind::TokenForged => Evidence::TokenForged {
                token: token("token", r.bytes("token").map_err(decode)?)?,
                presentation: presentation(
                    "presentation",
                    r.bytes("presentation").map_err(decode)?,
                )?,
            },
            BreachKind::TokenReplayed => Evidence::TokenReplayed {
                token: token("token", r.bytes("token").map_err(decode)?)?,
                first_index: r.u64("first_index").map_err(decode)?,
                first_token: token("first_token", r.bytes("first_token").map_err(decode)?)?,
                first: presentation(
                    "first_presentation",
                    r.bytes("first_presentation").map_err(decode)?,
                )?,
                second: presentation(
                    "second_presentation",
                    r.bytes("second_presentation").map_err(decode)?,
                )?,
            },
            BreachKind::HeadEquivocation => {
                // One level only: the two statements are certificates of
                // any other kind, so decoding never recurses further.
                let mut inner =
                    |field: &'static str| -> Result<Box<SignedCertificate>, CertificateError> {
                        let raw = r.bytes(field).map_err(decode)?;
                        let c = SignedCertificate::decode(raw)
                            .map_err(|e| invalid(format!("{field}: {e}")))?;
                        if c.certificate.kind() == BreachKind::HeadEquivocation {
                            return Err(invalid(format!(
                                "{field} is itself a head-equivocation certificate"
                            )));
                        }
                        Ok(Box::new(c))
                    };
                let first = inner("first_certificate")?;
                let second = inner("second_certificate")?;
                Evidence::HeadEquivocation { first, second }
            }
            BreachKind::BatchLifetime => {
                return AttestedBatch::decode(kind, bytes).map(Evidence::BatchLifetime);
            }
            BreachKind::LedgerFork => {
                return AttestedBatch::decode(kind, bytes).map(Evidence::LedgerFork);
            }
        };
        r.finish().map_err(decode)?;
        debug_assert_eq!(evidence.encode(), bytes);
        Ok(evidence)
    }

    /// The token bytes of token evidence (kinds 5, 6, 7); `None` otherwise.
    pub fn token_bytes(&self) -> Option<&[u8]> {
        match self {
            Evidence::TokenModified { token, .. }
            | Evidence::TokenForged { token, .. }
            | Evidence::TokenReplayed { token, .. } => Some(token),
            _ => None,
        }
    }

    /// For token-replayed evidence whose token decodes: the token's nonce
    /// and the claimed `first_index`, which the node checks against its own
    /// nonce store (the nonce must be redeemed, at exactly that index).
    pub fn replayed_nonce(&self) -> Option<(Nonce, u64)> {
        match self {
            Evidence::TokenReplayed {
                token, first_index, ..
            } => Token::from_bytes(token)
                .ok()
                .map(|t| (t.payload.nonce, *first_index)),
            _ => None,
        }
    }

    /// The subject a certificate with this evidence, issued by `issuer`,
    /// must name: the issuer itself for drift and ledger breaks, the share's
    /// signer, the equivocating voter, or the agent (tenant, actor) the
    /// token names.
    pub fn subject_for(&self, issuer: NodeId) -> Result<Subject, CertificateError> {
        Ok(match self {
            Evidence::PolicyDrift { .. } | Evidence::LedgerBreak { .. } => {
                Subject::Validator(issuer)
            }
            Evidence::InvalidShare(a) => Subject::Validator(a.share.signer),
            Evidence::VoteEquivocation(e) => Subject::Validator(e.voter()),
            Evidence::HeadEquivocation { first, .. } => {
                Subject::Validator(first.certificate.issuer)
            }
            Evidence::BatchLifetime(a) | Evidence::LedgerFork(a) => Subject::Validator(a.leader),
            Evidence::TokenModified { token, .. }
            | Evidence::TokenForged { token, .. }
            | Evidence::TokenReplayed { token, .. } => {
                let t = self.decode_token(token)?;
                Subject::Agent {
                    tenant: t.payload.tenant,
                    actor: t.payload.actor,
                }
            }
        })
    }

    fn decode_token(&self, bytes: &[u8]) -> Result<Token, CertificateError> {
        Token::from_bytes(bytes).map_err(|e| CertificateError::Evidence {
            kind: self.kind(),
            why: format!("token: {e}"),
        })
    }
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

/// The id of a certificate: SHA3-256 of its signing bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertificateId(pub Digest);

impl fmt::Debug for CertificateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertificateId({})", self.0.to_hex())
    }
}

impl fmt::Display for CertificateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

/// The content of a shutdown certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Whom it is about.
    pub subject: Subject,
    /// The proof; its variant is the breach kind.
    pub evidence: Evidence,
    /// The issuer's ledger head at lockdown: index ...
    pub head_index: u64,
    /// ... and that entry's hash.
    pub head_hash: Digest,
    /// The validator that detected the breach and signs.
    pub issuer: NodeId,
    /// The issuer's clock at issue, Unix ms (informational).
    pub issued_at_ms: u64,
}

impl Certificate {
    /// The breach kind (that of the evidence).
    pub fn kind(&self) -> BreachKind {
        self.evidence.kind()
    }

    /// The exact bytes the issuer signs (see the module documentation).
    ///
    /// # Panics
    /// As [`Evidence::encode`].
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new(CERTIFICATE_OBJECT, CERTIFICATE_VERSION);
        e.u8(self.subject.code());
        match &self.subject {
            Subject::Validator(n) => e.u64(n.get()).str("").str(""),
            Subject::Agent { tenant, actor } => e.u64(0).str(tenant).str(actor),
        };
        e.u8(self.kind().code())
            .bytes(&self.evidence.encode())
            .u64(self.head_index)
            .digest(&self.head_hash)
            .u64(self.issuer.get())
            .u64(self.issued_at_ms);
        e.finish()
    }

    /// SHA3-256 of [`Certificate::signing_bytes`].
    pub fn id(&self) -> CertificateId {
        CertificateId(sha3(&self.signing_bytes()))
    }

    /// Signs with the issuer's identity key. Nothing is checked: an issuer
    /// runs [`SignedCertificate::check`] on the result before broadcasting.
    pub fn sign(self, key: &SigningKey) -> SignedCertificate {
        let signature = Sig64(key.sign(&self.signing_bytes()).to_bytes());
        SignedCertificate {
            certificate: self,
            signature,
        }
    }

    /// What decoding enforces, for a certificate built in memory: a well
    /// formed subject and evidence within [`EVIDENCE_BYTES_MAX`].
    pub fn validate(&self) -> Result<(), CertificateError> {
        self.subject.validate()?;
        let bytes = self.evidence.encode().len();
        if bytes > EVIDENCE_BYTES_MAX {
            return Err(CertificateError::EvidenceTooLarge {
                kind: self.kind(),
                bytes,
            });
        }
        Ok(())
    }
}

/// What a receiver checks a certificate against: all public material.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext<'a> {
    /// The active validator set (the issuer, a share's signer and a voter
    /// must be in it; their identity keys verify).
    pub membership: &'a [Validator],
    /// The FROST public key package of the epoch an attested share's
    /// request was made in (the epoch active at the certificate's
    /// `head_index`). A share checked against another epoch's package would
    /// look invalid, so a receiver must never substitute a newer one.
    pub pubkeys: &'a PublicKeyPackage,
    /// A broker over the receiver's genesis and seal chain (token kinds).
    pub broker: &'a Broker,
    /// The sealed identity registry the agent of a token kind must be
    /// registered in (its presentations verify under its key there).
    pub registry: &'a Registry,
}

/// A certificate with the issuer's identity-key signature: what is
/// broadcast and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCertificate {
    /// The content.
    pub certificate: Certificate,
    /// Ed25519 signature by the issuer's identity key over the signing
    /// bytes.
    pub signature: Sig64,
}

impl SignedCertificate {
    /// The wire form: signing bytes, then the 64 signature bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.certificate.signing_bytes();
        out.extend_from_slice(&self.signature.0);
        out
    }

    /// Strict inverse of [`SignedCertificate::encode`]: bounded by
    /// [`CERTIFICATE_BYTES_MAX`], exact tag, known subject and breach codes,
    /// subject fields that fit the subject kind, evidence within
    /// [`EVIDENCE_BYTES_MAX`] that decodes for its kind, an issuer that is a
    /// node id, no trailing bytes. Checks no signature: see
    /// [`SignedCertificate::check`].
    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        if bytes.len() > CERTIFICATE_BYTES_MAX {
            return Err(CertificateError::TooLarge {
                object: CERTIFICATE_OBJECT,
                bytes: bytes.len(),
                max: CERTIFICATE_BYTES_MAX,
            });
        }
        let decode = |error| CertificateError::Decode {
            object: CERTIFICATE_OBJECT,
            error,
        };
        let mut d = Decoder::new(bytes, CERTIFICATE_OBJECT, CERTIFICATE_VERSION).map_err(decode)?;
        let subject_kind = d.u8("subject_kind").map_err(decode)?;
        let subject_node = d.u64("subject_node").map_err(decode)?;
        let tenant = d.str("subject_tenant").map_err(decode)?;
        let actor = d.str("subject_actor").map_err(decode)?;
        let subject = match subject_kind {
            SUBJECT_VALIDATOR => {
                let node = NodeId::new(subject_node).map_err(|_| CertificateError::BadNodeId {
                    field: "subject_node",
                    value: subject_node,
                })?;
                if !tenant.is_empty() || !actor.is_empty() {
                    return Err(CertificateError::BadSubject {
                        why: format!(
                            "validator {node} with tenant {tenant:?} and actor {actor:?}, want both empty"
                        ),
                    });
                }
                Subject::Validator(node)
            }
            SUBJECT_AGENT => {
                if subject_node != 0 {
                    return Err(CertificateError::BadSubject {
                        why: format!("agent with subject_node {subject_node}, want 0"),
                    });
                }
                let s = Subject::Agent {
                    tenant: tenant.to_string(),
                    actor: actor.to_string(),
                };
                s.validate()?;
                s
            }
            other => return Err(CertificateError::UnknownSubjectKind(other)),
        };
        let code = d.u8("breach_kind").map_err(decode)?;
        let kind = BreachKind::from_code(code).ok_or(CertificateError::UnknownBreachKind(code))?;
        let len = d.u32("evidence").map_err(decode)? as usize;
        if len > EVIDENCE_BYTES_MAX {
            return Err(CertificateError::EvidenceTooLarge { kind, bytes: len });
        }
        let evidence = d.take(len, "evidence").map_err(decode)?;
        let head_index = d.u64("head_index").map_err(decode)?;
        let head_hash = d.digest("head_hash").map_err(decode)?;
        let raw_issuer = d.u64("issuer").map_err(decode)?;
        let issuer = NodeId::new(raw_issuer).map_err(|_| CertificateError::BadNodeId {
            field: "issuer",
            value: raw_issuer,
        })?;
        let issued_at_ms = d.u64("issued_at_ms").map_err(decode)?;
        let signature = d.array::<SIGNATURE_BYTES>("signature").map_err(decode)?;
        d.finish().map_err(decode)?;
        let evidence = Evidence::decode(kind, evidence)?;
        let out = SignedCertificate {
            certificate: Certificate {
                subject,
                evidence,
                head_index,
                head_hash,
                issuer,
                issued_at_ms,
            },
            signature: Sig64(signature),
        };
        debug_assert_eq!(out.encode(), bytes);
        Ok(out)
    }

    /// The certificate id (the signature is not covered).
    pub fn id(&self) -> CertificateId {
        self.certificate.id()
    }

    /// The issuer is in `membership` and the signature verifies strictly
    /// under its identity key.
    pub fn verify_signature(&self, membership: &[Validator]) -> Result<(), CertificateError> {
        let issuer = self.certificate.issuer;
        let (identity_key, key) =
            verifying_key(membership, issuer).ok_or(CertificateError::UnknownIssuer(issuer))?;
        let bad = CertificateError::BadSignature {
            issuer,
            identity_key,
            id: self.id(),
        };
        key.ok_or_else(|| bad.clone())?
            .verify_strict(
                &self.certificate.signing_bytes(),
                &Signature::from_bytes(&self.signature.0),
            )
            .map_err(|_| bad)
    }

    /// Everything a receiver can check from public material alone, in this
    /// order: the issuer's signature ([`SignedCertificate::verify_signature`]),
    /// the certificate's form ([`Certificate::validate`]), that the subject
    /// is the one the evidence names ([`Evidence::subject_for`]), and the
    /// evidence itself:
    ///
    /// * policy-drift: the digests differ;
    /// * ledger-break: `1 <= index <= head_index` and the hashes differ;
    /// * invalid-share: the attestation verifies under the signer's
    ///   identity key, and the share does not verify for the request
    ///   ([`AttestedShare::share_verdict`]) under `ctx.pubkeys`;
    /// * vote-equivocation: [`Equivocation::verify`];
    /// * every token kind: each presentation presents its token by the
    ///   token's wire bytes and is signed by the agent of `ctx.registry`
    ///   the token names ([`Presentation::verify_for`]);
    /// * token-modified: the presentation is the agent's, its params hash
    ///   is that of the params given, the token verifies as a receipt
    ///   ([`Broker::verify_receipt_token`]) and the presented params are not
    ///   JSON, cannot be digested, or digest to something else;
    /// * token-forged: the presentation is the agent's, and the token fails
    ///   receipt verification because its signature or inclusion proof
    ///   fails, or it names another genesis (an unknown epoch is not proof:
    ///   this receiver's chain may lag);
    /// * token-replayed: `1 <= first_index <= head_index`; `first_token`
    ///   has the token's payload (the same decision, perhaps re-signed) and
    ///   verifies as a receipt; `first` is the agent's presentation of
    ///   `first_token` and `second` of the token; the two presentations
    ///   differ (one presentation sent twice is a retry, not a replay); and
    ///   the token verifies as a receipt.
    ///
    /// Node-local facts (its own seal chain's policy digest, its ledger hash
    /// at an index, its nonce store) are the node's job.
    pub fn check(&self, ctx: &CheckContext<'_>) -> Result<(), CertificateError> {
        self.verify_signature(ctx.membership)?;
        let c = &self.certificate;
        c.validate()?;
        let kind = c.kind();
        let expected = c.evidence.subject_for(c.issuer)?;
        if c.subject != expected {
            return Err(CertificateError::SubjectMismatch {
                kind,
                subject: c.subject.clone(),
                expected,
            });
        }
        let no_breach = |why: String| CertificateError::NoBreach { kind, why };
        let invalid = |why: String| CertificateError::Evidence { kind, why };
        match &c.evidence {
            Evidence::PolicyDrift {
                sealed_digest,
                observed_digest,
                ..
            } => {
                if sealed_digest == observed_digest {
                    return Err(no_breach(format!(
                        "observed policy digest {observed_digest} equals the sealed one"
                    )));
                }
            }
            Evidence::LedgerBreak {
                index,
                expected,
                found,
            } => {
                if *index == 0 || *index > c.head_index {
                    return Err(invalid(format!(
                        "index {index} is outside the issuer's ledger 1..={}",
                        c.head_index
                    )));
                }
                if expected == found {
                    return Err(no_breach(format!(
                        "hash found at index {index} is the expected {expected}"
                    )));
                }
            }
            Evidence::InvalidShare(a) => {
                a.verify(ctx.membership)?;
                match a.share_verdict(ctx.pubkeys) {
                    Ok(true) => {
                        return Err(no_breach(format!(
                            "the share of signer {} verifies for its request",
                            a.share.signer
                        )));
                    }
                    Ok(false) => {}
                    Err(why) => return Err(invalid(why)),
                }
            }
            Evidence::VoteEquivocation(e) => match e.verify(ctx.membership) {
                Ok(_) => {}
                Err(
                    err @ (EvidenceError::SameContent { .. }
                    | EvidenceError::DifferentProposals { .. }
                    | EvidenceError::DifferentVoters { .. }),
                ) => return Err(no_breach(err.to_string())),
                Err(err @ EvidenceError::Vote { .. }) => return Err(invalid(err.to_string())),
            },
            Evidence::TokenModified {
                token,
                params_json,
                presentation,
            } => {
                let t = c.evidence.decode_token(token)?;
                presented_by_agent(ctx, presentation, &t).map_err(invalid)?;
                if presentation.params_hash != params_hash(params_json) {
                    return Err(invalid(format!(
                        "the params given hash to {}, the agent presented params hashing to {}",
                        params_hash(params_json),
                        presentation.params_hash
                    )));
                }
                let signed = t.payload.params_digest;
                ctx.broker
                    .verify_receipt_token(t)
                    .map_err(|e| invalid(format!("the token does not verify: {e}")))?;
                // Unparseable or undigestible params cannot match any
                // decided params: modified.
                let presented = crate::params::parse_params(params_json)
                    .ok()
                    .and_then(|v| params_digest(&v).ok());
                if presented == Some(signed) {
                    return Err(no_breach(format!(
                        "the presented params digest to the token's {signed}"
                    )));
                }
            }
            Evidence::TokenForged {
                token,
                presentation,
            } => {
                let t = c.evidence.decode_token(token)?;
                presented_by_agent(ctx, presentation, &t).map_err(invalid)?;
                match ctx.broker.verify_receipt_token(t) {
                    Ok(_) => return Err(no_breach("the token verifies".into())),
                    Err(
                        VerifyError::BadSignature { .. }
                        | VerifyError::BadInclusionProof { .. }
                        | VerifyError::ChainMismatch { .. },
                    ) => {}
                    Err(
                        e @ (VerifyError::UnknownPolicyVersion { .. }
                        | VerifyError::SealEpochMismatch { .. }),
                    ) => {
                        return Err(no_breach(format!(
                            "the token's signature verifies (the cluster signed it): {e}"
                        )));
                    }
                    Err(e) => {
                        return Err(invalid(format!("not proof of forgery: {e}")));
                    }
                }
            }
            Evidence::HeadEquivocation { first, second } => {
                first
                    .verify_signature(ctx.membership)
                    .map_err(|e| invalid(format!("first certificate: {e}")))?;
                second
                    .verify_signature(ctx.membership)
                    .map_err(|e| invalid(format!("second certificate: {e}")))?;
                let (a, b) = (&first.certificate, &second.certificate);
                if a.issuer != b.issuer {
                    return Err(no_breach(format!(
                        "the two certificates have two issuers, {} and {}",
                        a.issuer, b.issuer
                    )));
                }
                if a.head_index != b.head_index {
                    return Err(no_breach(format!(
                        "the two certificates name heads at two indexes, {} and {}",
                        a.head_index, b.head_index
                    )));
                }
                if a.head_hash == b.head_hash {
                    return Err(no_breach(format!(
                        "both certificates name the same head #{}:{}",
                        a.head_index, a.head_hash
                    )));
                }
            }
            Evidence::BatchLifetime(a) => {
                a.verify(ctx.membership)?;
                let lifetime_ms = a.lifetime_ms();
                if lifetime_ms <= TOKEN_LIFETIME_MS_HARD_MAX {
                    return Err(no_breach(format!(
                        "the signed lifetime of {lifetime_ms} ms is within the {TOKEN_LIFETIME_MS_HARD_MAX} ms any constitution may allow"
                    )));
                }
            }
            Evidence::LedgerFork(a) => {
                a.verify(ctx.membership)?;
                // Which hash is committed there is a fact of each
                // receiver's own ledger (local facts).
                if a.ledger_index == 0 || a.ledger_index > c.head_index {
                    return Err(invalid(format!(
                        "ledger index {} is outside the issuer's ledger 1..={}",
                        a.ledger_index, c.head_index
                    )));
                }
            }
            Evidence::TokenReplayed {
                token,
                first_index,
                first_token,
                first,
                second,
            } => {
                if *first_index == 0 || *first_index > c.head_index {
                    return Err(invalid(format!(
                        "first_index {first_index} is outside the issuer's ledger 1..={}",
                        c.head_index
                    )));
                }
                let t = c.evidence.decode_token(token)?;
                let t1 = c.evidence.decode_token(first_token)?;
                if t1.payload != t.payload {
                    return Err(invalid(
                        "the first token is not the same decision (its payload differs)".into(),
                    ));
                }
                ctx.broker
                    .verify_receipt_token(t1.clone())
                    .map_err(|e| invalid(format!("the first token does not verify: {e}")))?;
                presented_by_agent(ctx, first, &t1)
                    .map_err(|e| invalid(format!("first presentation: {e}")))?;
                presented_by_agent(ctx, second, &t)
                    .map_err(|e| invalid(format!("second presentation: {e}")))?;
                if first == second {
                    return Err(no_breach(
                        "one presentation, sent twice: a broker's retry or replay, not the agent's"
                            .into(),
                    ));
                }
                ctx.broker
                    .verify_receipt_token(t)
                    .map_err(|e| invalid(format!("the token does not verify: {e}")))?;
            }
        }
        Ok(())
    }
}

/// The presentation is of `token`, by the agent of `ctx.registry` the token
/// names, with a valid signature.
fn presented_by_agent(
    ctx: &CheckContext<'_>,
    presentation: &Presentation,
    token: &Token,
) -> Result<(), String> {
    presentation
        .verify_for(ctx.registry, token)
        .map(|_| ())
        .map_err(|e| format!("presentation: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_as_documented() {
        assert_eq!("senatus/shutdown-certificate/v2\0".len(), 32);
        assert_eq!(
            CERTIFICATE_BYTES_MAX,
            32 + 1 + 8 + 2 * 260 + 1 + 4 + 65_536 + 8 + 32 + 8 + 8 + 64
        );
        assert_eq!(CERTIFICATE_BYTES_MAX, 66_222);
    }

    #[test]
    fn codes_round_trip_and_names_are_stable() {
        for (i, k) in BreachKind::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(k.code()), i + 1);
            assert_eq!(BreachKind::from_code(k.code()), Some(k));
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!(BreachKind::from_code(0), None);
        assert_eq!(BreachKind::from_code(11), None);
        assert_eq!(BreachKind::BatchLifetime.name(), "batch-lifetime");
        assert_eq!(BreachKind::TokenForged.name(), "token-forged");
        assert_eq!(DriftLocation::from_code(2), Some(DriftLocation::Disk));
        assert_eq!(DriftLocation::from_code(3), None);
    }

    #[test]
    fn subjects_display_as_documented() {
        let n = NodeId::new(3).expect("node id");
        assert_eq!(Subject::Validator(n).to_string(), "validator 3");
        let a = Subject::Agent {
            tenant: "acme".into(),
            actor: "agent-7".into(),
        };
        assert_eq!(a.to_string(), "agent acme/agent-7");
    }

    /// [`Fields`] output read back by the shared [`Reader`], with the
    /// errors evidence decoding reports.
    #[test]
    fn field_reader_refuses_truncation_and_trailing_bytes() {
        let bytes = Fields::default().u64(7).bytes(b"ab").finish();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u64("a"), Ok(7));
        assert_eq!(r.bytes("b"), Ok(&b"ab"[..]));
        assert_eq!(r.finish(), Ok(()));
        let mut r = Reader::new(&bytes[..9]);
        r.u64("a").expect("u64");
        assert!(matches!(
            r.bytes("b").map_err(codec::DecodeError::from),
            Err(codec::DecodeError::Truncated { field: "b", .. })
        ));
        let mut r = Reader::new(&bytes);
        r.u64("a").expect("u64");
        assert_eq!(
            r.finish().map_err(codec::DecodeError::from),
            Err(codec::DecodeError::Trailing { count: 6 })
        );
    }
}
