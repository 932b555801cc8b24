//! Amendments on a validator: the replicated tally that Proposal and Vote
//! ledger entries feed on apply, and the voter that reviews every admitted
//! proposal independently and casts this validator's signed vote through
//! Raft.
//!
//! The tally is derived state: every validator rebuilds it from its own
//! ledger at boot and after installing a snapshot, and updates it on apply,
//! so it never needs storage of its own and cannot disagree with the ledger
//! (I7). A Proposal that is not admissible, and a Vote the tally refuses,
//! produce no ledger entry; every validator refuses them identically.
//!
//! A passed amendment takes effect only through its Seal entry (kind 6):
//! the leader has `t` of its approvers FROST-sign the next seal (each
//! computes it from its own tally and signs nothing else), appends the seal,
//! and every validator checks it against its active seal and swaps its
//! active policy at exactly that ledger index. Each validator then records
//! a signed Redeclaration (kind 7). The seal chain and every sealed layer
//! are derived from the ledger too (the layer bytes travel in the Proposal
//! entry), so a restarted or snapshot-fed validator reaches the same active
//! policy.

use std::collections::BTreeMap;
use std::sync::Arc;

use senatus_genesis::codec::{Decoder, Encoder};
use senatus_genesis::seal::SealAttestations;
use senatus_genesis::{Digest, Key32, LedgerIndex, NodeId, PolicyLayer, Seal, Sig64, SignedSeal};
use senatus_quorum::amend::{
    self, AdmissionError, ProposalDecodeError, ProposalId, ProposerRole, SignedProposal,
    SignedVote, Status, Tally, TallyError, TallyEvent, Verdict, VoteDecodeError,
};
use senatus_quorum::evaluate::Evaluator;

use crate::ledger::{EntryKind, LedgerEntry};

/// Why a Proposal or Vote command is refused on apply (no ledger entry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmendRejection {
    /// The store was opened without amendment state (storage tests).
    #[error("this node's state machine does not tally amendments")]
    NotEnabled,
    /// The proposal does not decode.
    #[error("proposal: {0}")]
    ProposalDecode(String),
    /// The proposal is not admissible (proposer, signature, sizes).
    #[error("proposal not admitted: {0}")]
    Admission(String),
    /// The vote does not decode.
    #[error("vote: {0}")]
    VoteDecode(String),
    /// The tally refused the input.
    #[error("{0}")]
    Tally(String),
    /// A Seal entry that does not decode or does not seal the passed
    /// amendment.
    #[error("seal entry: {0}")]
    Seal(String),
    /// A Redeclaration that does not decode, verify or match the active
    /// seal, or repeats one.
    #[error("redeclaration: {0}")]
    Redeclaration(String),
    /// A Certificate entry that does not decode or does not check out, or
    /// repeats one on the ledger.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The certificate is already on the ledger.
    #[error("certificate: certificate {id} is already on the ledger at index {first_index}")]
    CertificateOnLedger {
        /// The certificate.
        id: Digest,
        /// The ledger index of its Certificate entry.
        first_index: u64,
    },
    /// The identical vote is already on the ledger.
    #[error("the identical vote of {voter} on proposal {proposal} is already on the ledger")]
    RepeatedVote {
        /// The voter.
        voter: NodeId,
        /// The proposal.
        proposal: ProposalId,
    },
}

impl From<ProposalDecodeError> for AmendRejection {
    fn from(e: ProposalDecodeError) -> Self {
        AmendRejection::ProposalDecode(e.to_string())
    }
}

impl From<AdmissionError> for AmendRejection {
    fn from(e: AdmissionError) -> Self {
        AmendRejection::Admission(e.to_string())
    }
}

impl From<VoteDecodeError> for AmendRejection {
    fn from(e: VoteDecodeError) -> Self {
        AmendRejection::VoteDecode(e.to_string())
    }
}

impl From<TallyError> for AmendRejection {
    fn from(e: TallyError) -> Self {
        AmendRejection::Tally(e.to_string())
    }
}

/// A proposal as the ledger recorded it.
#[derive(Debug, Clone)]
pub struct ProposalRecord {
    /// Its id.
    pub id: ProposalId,
    /// Ledger index of its Proposal entry.
    pub index: u64,
    /// Who proposed it.
    pub proposer: Key32,
    /// In which capacity.
    pub role: ProposerRole,
    /// The proposer's justification.
    pub justification: String,
    /// Digest of the proposed layer's canonical bytes.
    pub layer_digest: Digest,
    /// Version the proposed constitution declares, if the layer parses.
    pub proposed_version: Option<u64>,
    /// The signed proposal, for this validator's own review.
    pub signed: SignedProposal,
}

/// A vote as the ledger recorded it.
#[derive(Debug, Clone)]
pub struct VoteRecord {
    /// Ledger index of its Vote entry.
    pub index: u64,
    /// The signed vote.
    pub vote: SignedVote,
    /// SHA3-256 of the signed vote's bytes (computed once, for the state
    /// digest).
    pub digest: Digest,
    /// How the tally took it: "counted", "late" or "equivocation".
    pub effect: &'static str,
}

/// Domain object of a Seal entry's payload.
pub const SEAL_ENTRY_OBJECT: &str = "seal-entry";
/// Domain object of a Redeclaration entry's payload.
pub const REDECLARATION_OBJECT: &str = "redeclaration";

/// The payload of a Seal entry (ledger kind 6):
///
/// ```text
/// "senatus/seal-entry/v2" 0x00
/// fixed32 proposal_id   the passed proposal
/// fixed32 seal_digest   SHA3-256(seal_signing_bytes) of the next seal
/// fixed64 signature     FROST (plain Ed25519) under the active group key
/// u64     ledger_index  the head: where the amendment passed
/// fixed32 entry_hash    the head's entry hash
/// list<u64 validator  fixed64 signature>   attestations (PROTOCOL 4.1)
/// ```
///
/// The seal itself is not carried: every validator computes it from its
/// own tally and checks that digest, signature, head and attestations
/// match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealEntry {
    /// The passed proposal.
    pub proposal: ProposalId,
    /// Digest of the next seal.
    pub seal_digest: Digest,
    /// Its threshold signature.
    pub signature: Sig64,
    /// The ledger head a quorum of members attested for it.
    pub attested: SealAttestations,
}

/// Version of the Seal entry payload: 2 carries the attested head.
pub const SEAL_ENTRY_VERSION: u8 = 2;

impl SealEntry {
    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(SEAL_ENTRY_OBJECT, SEAL_ENTRY_VERSION);
        let (lo, hi) = self.signature.0.split_at(32);
        e.digest(&self.proposal.0)
            .digest(&self.seal_digest)
            .fixed32(lo.try_into().expect("32 bytes"))
            .fixed32(hi.try_into().expect("32 bytes"));
        self.attested.encode_into(&mut e);
        e.finish()
    }

    /// Strict inverse of [`SealEntry::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let err = |e: senatus_genesis::codec::DecodeError| e.to_string();
        let mut d = Decoder::new(bytes, SEAL_ENTRY_OBJECT, SEAL_ENTRY_VERSION).map_err(err)?;
        let proposal = ProposalId(d.digest("proposal_id").map_err(err)?);
        let seal_digest = d.digest("seal_digest").map_err(err)?;
        let lo = d.fixed32("signature").map_err(err)?;
        let hi = d.fixed32("signature").map_err(err)?;
        let attested = SealAttestations::decode_from(&mut d).map_err(|e| e.to_string())?;
        d.finish().map_err(err)?;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&lo);
        sig[32..].copy_from_slice(&hi);
        Ok(SealEntry {
            proposal,
            seal_digest,
            signature: Sig64(sig),
            attested,
        })
    }
}

/// The payload of a Redeclaration entry (ledger kind 7): a validator's
/// signed statement that it now enforces the active seal.
///
/// ```text
/// redeclaration_signing_bytes =
///     "senatus/redeclaration/v1" 0x00
///     u64     node
///     u64     policy_version
///     fixed32 seal_digest
///     fixed32 policy_digest
/// redeclaration = redeclaration_signing_bytes || fixed64 signature
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeclaration {
    /// The validator.
    pub node: NodeId,
    /// The version it enforces.
    pub policy_version: u64,
    /// The seal that made it active.
    pub seal_digest: Digest,
    /// The layer's digest.
    pub policy_digest: Digest,
}

impl Redeclaration {
    fn signing_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new(REDECLARATION_OBJECT, 1);
        e.u64(self.node.get())
            .u64(self.policy_version)
            .digest(&self.seal_digest)
            .digest(&self.policy_digest);
        e.finish()
    }

    /// Signed payload bytes.
    pub fn sign(&self, key: &ed25519_dalek::SigningKey) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        let mut b = self.signing_bytes();
        let sig = key.sign(&b);
        b.extend_from_slice(&sig.to_bytes());
        b
    }

    /// Decodes and verifies a signed redeclaration against `membership`.
    pub fn verify(bytes: &[u8], membership: &[senatus_genesis::Validator]) -> Result<Self, String> {
        if bytes.len() < 64 {
            return Err(format!("{} bytes, too short", bytes.len()));
        }
        let (body, sig) = bytes.split_at(bytes.len() - 64);
        let err = |e: senatus_genesis::codec::DecodeError| e.to_string();
        let mut d = Decoder::new(body, REDECLARATION_OBJECT, 1).map_err(err)?;
        let node = NodeId::new(d.u64("node").map_err(err)?).map_err(|e| e.to_string())?;
        let policy_version = d.u64("policy_version").map_err(err)?;
        let seal_digest = d.digest("seal_digest").map_err(err)?;
        let policy_digest = d.digest("policy_digest").map_err(err)?;
        d.finish().map_err(err)?;
        let r = Redeclaration {
            node,
            policy_version,
            seal_digest,
            policy_digest,
        };
        let v = membership
            .iter()
            .find(|v| v.id == node)
            .ok_or_else(|| format!("node {node} is not a member"))?;
        let key = senatus_genesis::ed25519::verifying_key(&v.identity_key.0)
            .map_err(|e| format!("identity key of {node}: {e}"))?;
        let sig: [u8; 64] = sig.try_into().map_err(|_| "signature length".to_string())?;
        key.verify_strict(
            &r.signing_bytes(),
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .map_err(|_| format!("signature of node {node} does not verify"))?;
        Ok(r)
    }
}

/// A sealed policy version: its seal, layer and compiled evaluator.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The seal (with its signature; none for seal 0).
    pub seal: SignedSeal,
    /// Its digest.
    pub digest: Digest,
    /// The layer it seals.
    pub layer: Arc<PolicyLayer>,
    /// The layer compiled.
    pub evaluator: Arc<Evaluator>,
    /// Ledger index of its Seal entry (0 for seal 0).
    pub index: u64,
}

impl Sealed {
    fn new(seal: SignedSeal, layer: Arc<PolicyLayer>, index: u64) -> Result<Self, String> {
        let evaluator = Evaluator::new(&layer).map_err(|e| format!("policy layer: {e}"))?;
        Ok(Sealed {
            digest: seal.seal.digest(),
            seal,
            layer,
            evaluator: Arc::new(evaluator),
            index,
        })
    }
}

/// The amendment state of one validator, derived from its ledger.
#[derive(Debug)]
pub struct AmendState {
    /// Every sealed version, seal 0 first; the last is active.
    chain: Vec<Sealed>,
    authority: Key32,
    tally: Tally,
    proposals: BTreeMap<ProposalId, ProposalRecord>,
    votes: BTreeMap<ProposalId, Vec<VoteRecord>>,
    /// Final statuses of proposals of earlier bases.
    archived: BTreeMap<ProposalId, Status>,
    /// Approvers of the proposals that were sealed.
    sealed_approvers: BTreeMap<ProposalId, Vec<NodeId>>,
    /// Redeclarations of the active seal: node -> ledger index.
    redeclared: BTreeMap<NodeId, u64>,
    /// Ledger index of the last entry seen.
    last_index: u64,
    /// Shutdown certificates on the ledger and their reinstatements.
    certified: crate::certified::Certified,
    /// Genesis, for the broker that checks certificates about tokens.
    genesis: Option<Arc<senatus_genesis::Genesis>>,
}

impl AmendState {
    /// An empty tally over seal 0 (from genesis) and its layer.
    pub fn new(layer: Arc<PolicyLayer>, seal: Seal, authority: Key32) -> Result<Self, String> {
        let tally = Tally::new(&layer, &seal).map_err(|e| e.to_string())?;
        let zero = Sealed::new(
            SignedSeal {
                seal,
                signature: None,
                attested: None,
            },
            layer,
            0,
        )?;
        Ok(AmendState {
            chain: vec![zero],
            authority,
            tally,
            proposals: BTreeMap::new(),
            votes: BTreeMap::new(),
            archived: BTreeMap::new(),
            sealed_approvers: BTreeMap::new(),
            redeclared: BTreeMap::new(),
            last_index: 0,
            certified: crate::certified::Certified::default(),
            genesis: None,
        })
    }

    /// The same state, able to check certificates about tokens (their
    /// broker needs genesis).
    pub fn with_genesis(mut self, genesis: senatus_genesis::Genesis) -> Self {
        self.genesis = Some(Arc::new(genesis));
        self
    }

    /// An empty state over the same seal 0 and authority (to rebuild from
    /// another ledger).
    pub fn fresh(&self) -> Result<Self, String> {
        let zero = &self.chain[0];
        let mut s = AmendState::new(zero.layer.clone(), zero.seal.seal.clone(), self.authority)?;
        s.genesis = self.genesis.clone();
        Ok(s)
    }

    /// Test hook (fault-injection builds only): replaces the active layer
    /// in memory with one whose bytes differ from the sealed ones, as an
    /// intruder editing the process's memory would.
    #[cfg(feature = "fault-injection")]
    pub fn tamper_active_layer(&mut self) {
        let active = self
            .chain
            .last_mut()
            .expect("the chain always holds seal 0");
        let mut files = active.layer.files().clone();
        if let Some(c) = files.get_mut(senatus_genesis::policy::CONSTITUTION_FILE) {
            c.extend_from_slice(b"\n# tampered in memory\n");
        }
        match PolicyLayer::from_files(files) {
            Ok(l) => active.layer = Arc::new(l),
            Err(e) => tracing::error!(error = %e, "tamper hook: layer does not rebuild"),
        }
    }

    /// Certificates on the ledger and their reinstatements.
    pub fn certified(&self) -> &crate::certified::Certified {
        &self.certified
    }

    /// Mutable access, to take queued equivocation evidence.
    pub fn certified_mut(&mut self) -> &mut crate::certified::Certified {
        &mut self.certified
    }

    /// Checks a shutdown certificate against public material and the seal
    /// chain: the issuer's signature, that the subject fits the evidence,
    /// the evidence itself, and for a policy drift that the sealed digest
    /// it names is the one this chain sealed for that version.
    pub fn check_certificate(
        &self,
        cert: &senatus_quorum::certificate::SignedCertificate,
    ) -> Result<(), String> {
        use senatus_quorum::certificate::Evidence;
        let genesis = self
            .genesis
            .as_ref()
            .ok_or_else(|| "no genesis to check token evidence against".to_string())?;
        crate::certified::check_against_chain(
            cert,
            genesis,
            &self.chain(),
            self.layer().registry(),
        )?;
        if let Evidence::PolicyDrift {
            policy_version,
            sealed_digest,
            ..
        } = &cert.certificate.evidence
        {
            let sealed = self
                .chain
                .iter()
                .find(|s| s.seal.seal.version.0 == *policy_version)
                .ok_or_else(|| {
                    format!("policy-drift evidence: no sealed version {policy_version}")
                })?;
            if sealed.seal.seal.policy_digest != *sealed_digest {
                return Err(format!(
                    "policy-drift evidence: version {policy_version} is sealed with digest {}, the certificate says {sealed_digest}",
                    sealed.seal.seal.policy_digest
                ));
            }
        }
        Ok(())
    }

    fn active(&self) -> &Sealed {
        self.chain.last().expect("the chain always holds seal 0")
    }

    /// The active layer (what every review is against).
    pub fn layer(&self) -> &PolicyLayer {
        &self.active().layer
    }

    /// The active seal.
    pub fn seal(&self) -> &Seal {
        &self.active().seal.seal
    }

    /// The active sealed version.
    pub fn active_sealed(&self) -> Sealed {
        self.active().clone()
    }

    /// The active layer compiled (a shared handle, not a copy of the seal):
    /// what the gate checks each caller against.
    pub fn active_evaluator(&self) -> Arc<Evaluator> {
        self.active().evaluator.clone()
    }

    /// The sealed version whose seal has `digest`, active or earlier.
    pub fn sealed(&self, digest: &Digest) -> Option<Sealed> {
        self.chain.iter().find(|s| s.digest == *digest).cloned()
    }

    /// The seal chain, seal 0 first.
    pub fn chain(&self) -> Vec<SignedSeal> {
        self.chain.iter().map(|s| s.seal.clone()).collect()
    }

    /// True when `(version, seal_digest)` is the active seal.
    pub fn is_active(&self, version: u64, seal_digest: &Digest) -> bool {
        let a = self.active();
        a.seal.seal.version.0 == version && a.digest == *seal_digest
    }

    /// The largest proposal layer accepted (the active constitution's).
    pub fn layer_bytes_max(&self) -> u32 {
        self.layer().constitution().limits.layer_bytes_max
    }

    /// Whether `node` has redeclared the active seal (always true for seal
    /// 0, which genesis declares).
    pub fn has_redeclared(&self, node: NodeId) -> bool {
        self.chain.len() == 1 || self.redeclared.contains_key(&node)
    }

    /// The ledger index at which proposal `id` passed under the active
    /// seal (the head its seal is attested over), if it did.
    pub fn passed_at(&self, id: &ProposalId) -> Option<u64> {
        match self.tally.status(id)? {
            Status::Passed { at } => Some(at.0),
            _ => None,
        }
    }

    /// The seal a passed, not yet sealed, amendment needs and who may sign
    /// it: every validator that approved it, in ledger order (the first `t`
    /// passed it; later approvals count here too, so one approver being
    /// down does not stall the seal while `t` others approved).
    pub fn pending_seal(&self) -> Option<(ProposalId, Seal, Vec<NodeId>)> {
        let passed = self.tally.passed()?;
        let seal = passed.next_seal(self.seal()).ok()?;
        let id = passed.proposal().id();
        let mut signers: Vec<NodeId> = passed.signers(self.seal()).ok()?.to_vec();
        for r in self.votes.get(&id).into_iter().flatten() {
            let v = &r.vote.vote;
            if v.verdict == Verdict::Approve
                && r.effect != "equivocation"
                && !signers.contains(&v.voter)
            {
                signers.push(v.voter);
            }
        }
        // A validator certified on the ledger signs no seal.
        let next = self.last_index.saturating_add(1);
        signers.retain(|n| {
            self.certified
                .subject_at(&senatus_quorum::certificate::Subject::Validator(*n), next)
                .is_none()
        });
        Some((id, seal, signers))
    }

    /// Checks and applies the command that would become ledger entry
    /// `index`. `Ok(())` means: append it. A refused command changes nothing.
    pub fn apply(
        &mut self,
        index: u64,
        kind: EntryKind,
        payload: &[u8],
    ) -> Result<(), AmendRejection> {
        let at = LedgerIndex(index);
        match kind {
            EntryKind::Proposal => {
                let signed = SignedProposal::decode(payload, self.layer_bytes_max())?;
                let admitted =
                    amend::admit(signed.clone(), &self.authority, self.layer(), self.seal())?;
                let events = self.tally.open(admitted.clone(), at)?;
                let p = admitted.proposal();
                let proposed_version = PolicyLayer::from_canonical_bytes(&p.layer)
                    .ok()
                    .map(|l| l.constitution().version);
                self.proposals.insert(
                    admitted.id(),
                    ProposalRecord {
                        id: admitted.id(),
                        index,
                        proposer: p.proposer,
                        role: admitted.role(),
                        justification: p.justification.clone(),
                        layer_digest: p.layer_digest(),
                        proposed_version,
                        signed,
                    },
                );
                log_events(&events);
            }
            EntryKind::Vote => {
                let vote = SignedVote::decode(payload)?;
                // A validator certified before this index votes no more.
                let subject = senatus_quorum::certificate::Subject::Validator(vote.vote.voter);
                if let Some(c) = self.certified.subject_at(&subject, index) {
                    return Err(AmendRejection::Tally(format!(
                        "validator {} is excluded by shutdown certificate {c}; its vote is refused",
                        vote.vote.voter
                    )));
                }
                // Check before counting: a repeated vote appends nothing.
                if let Some(prev) = self.votes.get(&vote.vote.proposal)
                    && prev.iter().any(|r| r.vote == vote)
                {
                    return Err(AmendRejection::RepeatedVote {
                        voter: vote.vote.voter,
                        proposal: vote.vote.proposal,
                    });
                }
                let events = self.tally.vote(&vote, at)?;
                for e in &events {
                    if let TallyEvent::Equivocation(ev) = e {
                        self.certified.push_equivocation((**ev).clone());
                    }
                }
                let effect = events
                    .iter()
                    .find_map(|e| match e {
                        TallyEvent::Counted { .. } => Some("counted"),
                        TallyEvent::Late { .. } => Some("late"),
                        TallyEvent::Equivocation(_) => Some("equivocation"),
                        _ => None,
                    })
                    .unwrap_or("recorded");
                log_events(&events);
                self.votes
                    .entry(vote.vote.proposal)
                    .or_default()
                    .push(VoteRecord {
                        index,
                        digest: senatus_genesis::codec::sha3(payload),
                        vote,
                        effect,
                    });
            }
            EntryKind::Seal => self.apply_seal(index, payload)?,
            EntryKind::Certificate => {
                let cert =
                    crate::certified::decode(payload).map_err(AmendRejection::Certificate)?;
                let id = cert.id().0;
                if let Some(first_index) = self.certified.ledger_index(&id) {
                    return Err(AmendRejection::CertificateOnLedger { id, first_index });
                }
                let c = &cert.certificate;
                if let Some(held) =
                    self.certified
                        .in_force_of(c.issuer, &c.subject, c.kind(), index)
                {
                    return Err(AmendRejection::Certificate(format!(
                        "redundant: certificate {} (ledger index {}) by validator {} about {} for {} is in force",
                        held.cert.id(),
                        held.index,
                        c.issuer,
                        c.subject,
                        c.kind()
                    )));
                }
                self.check_certificate(&cert)
                    .map_err(AmendRejection::Certificate)?;
                tracing::warn!(ledger_index = index, certificate = %id, subject = %cert.certificate.subject, kind = %cert.certificate.kind(), "shutdown certificate on the ledger");
                self.certified.record(index, cert);
                self.advance(at)?;
            }
            EntryKind::Redeclaration => {
                let r = Redeclaration::verify(payload, &self.seal().membership)
                    .map_err(AmendRejection::Redeclaration)?;
                let a = self.active();
                if r.seal_digest != a.digest
                    || r.policy_version != a.seal.seal.version.0
                    || r.policy_digest != a.seal.seal.policy_digest
                {
                    return Err(AmendRejection::Redeclaration(format!(
                        "node {} redeclares version {} seal {}, the active seal is version {} seal {}",
                        r.node, r.policy_version, r.seal_digest, a.seal.seal.version, a.digest
                    )));
                }
                if let Some(first) = self.redeclared.get(&r.node) {
                    return Err(AmendRejection::Redeclaration(format!(
                        "node {} already redeclared seal {} at ledger index {first}",
                        r.node, r.seal_digest
                    )));
                }
                self.redeclared.insert(r.node, index);
                self.advance(at)?;
            }
            _ => self.advance(at)?,
        }
        self.last_index = index;
        Ok(())
    }

    fn advance(&mut self, at: LedgerIndex) -> Result<(), AmendRejection> {
        if self.tally.open_count() > 0 {
            let events = self.tally.advance(at)?;
            log_events(&events);
        }
        Ok(())
    }

    /// A Seal entry: the next seal of the passed amendment, verified
    /// against the active seal, becomes active at `index`.
    fn apply_seal(&mut self, index: u64, payload: &[u8]) -> Result<(), AmendRejection> {
        let e = SealEntry::decode(payload).map_err(AmendRejection::Seal)?;
        let Some((pid, seal, _signers)) = self.pending_seal() else {
            return Err(AmendRejection::Seal(format!(
                "no passed amendment awaits a seal (entry names proposal {})",
                e.proposal
            )));
        };
        if e.proposal != pid {
            return Err(AmendRejection::Seal(format!(
                "entry seals proposal {}, the passed amendment is {pid}",
                e.proposal
            )));
        }
        if e.seal_digest != seal.digest() {
            return Err(AmendRejection::Seal(format!(
                "entry names seal {}, this validator's next seal is {}",
                e.seal_digest,
                seal.digest()
            )));
        }
        let passed_at = self
            .passed_at(&pid)
            .ok_or_else(|| AmendRejection::Seal(format!("proposal {pid} has no passing index")))?;
        if e.attested.ledger_index != passed_at {
            return Err(AmendRejection::Seal(format!(
                "entry attests the head at ledger index {}, the amendment passed at {passed_at}",
                e.attested.ledger_index
            )));
        }
        let signed = SignedSeal {
            seal,
            signature: Some(e.signature),
            attested: Some(e.attested),
        };
        senatus_genesis::seal::verify_successor(self.seal(), &signed, self.chain.len())
            .map_err(|err| AmendRejection::Seal(err.to_string()))?;
        let layer_bytes = &self
            .proposals
            .get(&pid)
            .ok_or_else(|| AmendRejection::Seal(format!("proposal {pid} is not recorded")))?
            .signed
            .proposal
            .layer;
        let layer = PolicyLayer::from_canonical_bytes(layer_bytes)
            .map_err(|err| AmendRejection::Seal(format!("sealed layer: {err}")))?;
        let next = Sealed::new(signed, Arc::new(layer), index).map_err(AmendRejection::Seal)?;
        let tally = Tally::new(&next.layer, &next.seal.seal)
            .map_err(|err| AmendRejection::Seal(format!("tally under the new seal: {err}")))?;
        // Everything checked: swap at exactly this index.
        for id in self.proposals.keys() {
            if let Some(st) = self.tally.status(id) {
                self.archived.insert(*id, st.clone());
            }
        }
        let first_t = self
            .tally
            .passed()
            .map(|p| p.approvers().to_vec())
            .unwrap_or_default();
        self.sealed_approvers.insert(pid, first_t);
        tracing::info!(
            ledger_index = index,
            version = next.seal.seal.version.0,
            seal = %next.digest,
            "amendment sealed; active policy swapped"
        );
        let reinstate = next.layer.constitution().breach.reinstate.clone();
        if !reinstate.is_empty() {
            tracing::warn!(ledger_index = index, certificates = ?reinstate, "sealed amendment reinstates certified subjects");
        }
        self.certified.reinstate(&reinstate, index);
        self.chain.push(next);
        self.tally = tally;
        self.redeclared.clear();
        Ok(())
    }

    /// Feeds an already verified ledger (boot, snapshot install) through
    /// [`AmendState::apply`]. An entry that was appended must apply again;
    /// if one does not, the ledger and this code disagree: a broken
    /// invariant, named.
    pub fn replay<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a LedgerEntry>,
    ) -> Result<(), String> {
        for e in entries {
            self.apply(e.index, e.kind, &e.payload).map_err(|r| {
                format!(
                    "ledger index {} ({}) was appended but does not apply again: {r}",
                    e.index, e.kind
                )
            })?;
        }
        Ok(())
    }

    /// Proposals the tally still counts votes for.
    pub fn open_count(&self) -> usize {
        self.tally.open_count()
    }

    /// Digest of this state's contents (`docs/PROTOCOL.md`, "State
    /// digest"): the seal chain, every proposal with its status and votes,
    /// the approvers of sealed amendments, the redeclarations of the active
    /// seal, and the certificates with their reinstatements.
    pub fn digest(&self) -> Digest {
        let mut e = Encoder::new(STATE_AMEND_OBJECT, 1);
        e.count(self.chain.len());
        for s in &self.chain {
            e.digest(&s.digest).u64(s.index);
        }
        e.count(self.proposals.len());
        for p in self.proposals.values() {
            e.digest(&p.id.0).u64(p.index);
            encode_status(&mut e, &self.status_of(&p.id));
            let votes = self.votes.get(&p.id).map(Vec::as_slice).unwrap_or_default();
            e.count(votes.len());
            for v in votes {
                e.u64(v.index).digest(&v.digest).str(v.effect);
            }
        }
        e.count(self.sealed_approvers.len());
        for (id, approvers) in &self.sealed_approvers {
            e.digest(&id.0).count(approvers.len());
            for n in approvers {
                e.u64(n.get());
            }
        }
        e.count(self.redeclared.len());
        for (node, index) in &self.redeclared {
            e.u64(node.get()).u64(*index);
        }
        self.certified.encode_into(&mut e);
        e.u64(self.last_index);
        e.digest_of()
    }

    fn status_of(&self, id: &ProposalId) -> Status {
        self.archived
            .get(id)
            .or_else(|| self.tally.status(id))
            .cloned()
            .unwrap_or(Status::Open)
    }

    /// Proposals `voter` has not voted on and still may, oldest first: open
    /// ones, and those decided by votes under the active seal (passed and
    /// not yet sealed, or rejected). A vote after the decision is recorded
    /// as "late": every validator's own review reaches the ledger however
    /// quickly the first `t` decided, and a late approver may sign the
    /// seal in place of a first approver that is down (`pending_seal`).
    pub fn unvoted(&self, voter: NodeId) -> Vec<ProposalRecord> {
        self.proposals
            .values()
            .filter(|p| !self.archived.contains_key(&p.id))
            .filter(|p| {
                matches!(
                    self.tally.status(&p.id),
                    Some(Status::Open | Status::Passed { .. } | Status::Rejected { .. })
                )
            })
            .filter(|p| {
                !self
                    .votes
                    .get(&p.id)
                    .is_some_and(|vs| vs.iter().any(|r| r.vote.vote.voter == voter))
            })
            .cloned()
            .collect()
    }

    /// Every proposal (or the one named), oldest first, with its status,
    /// votes and (when passed) its approvers.
    pub fn view(
        &self,
        only: Option<ProposalId>,
    ) -> Vec<(ProposalRecord, Status, Vec<VoteRecord>, Vec<NodeId>)> {
        self.proposals
            .values()
            .filter(|p| only.is_none_or(|id| id == p.id))
            .map(|p| {
                let approvers = self.sealed_approvers.get(&p.id).cloned().or_else(|| {
                    self.tally
                        .passed()
                        .filter(|x| x.proposal().id() == p.id)
                        .map(|x| x.approvers().to_vec())
                });
                (
                    p.clone(),
                    self.status_of(&p.id),
                    self.votes.get(&p.id).cloned().unwrap_or_default(),
                    approvers.unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// A validator's own review of a recorded proposal against the active
/// layer and seal, as its signed vote.
pub fn review_vote(
    state: &AmendState,
    p: &ProposalRecord,
    voter: NodeId,
    key: &ed25519_dalek::SigningKey,
) -> Result<SignedVote, String> {
    let review = amend::review(state.layer(), state.seal(), &p.signed.proposal);
    if let amend::Review::Reject(reasons) = &review {
        let why: Vec<String> = reasons.iter().map(ToString::to_string).collect();
        tracing::info!(proposal = %p.id, reasons = ?why, "review rejects the proposal");
    }
    senatus_quorum::amend::Vote::from_review(p.id, voter, &review)
        .sign(key)
        .map_err(|e| format!("cannot sign the vote on {}: {e}", p.id))
}

/// Domain object of the amendment state's digest.
pub const STATE_AMEND_OBJECT: &str = "state-amend";

/// A proposal status in the state digest: `u8` code (0 open, 1 passed,
/// 2 rejected, 3 expired, 4 superseded), then `u64` index, then for
/// superseded the proposal that passed.
fn encode_status(e: &mut Encoder, st: &Status) {
    match st {
        Status::Open => e.u8(0).u64(0),
        Status::Passed { at } => e.u8(1).u64(at.0),
        Status::Rejected { at } => e.u8(2).u64(at.0),
        Status::Expired { at } => e.u8(3).u64(at.0),
        Status::Superseded { by, at } => e.u8(4).u64(at.0).digest(&by.0),
    };
}

fn log_events(events: &[TallyEvent]) {
    for e in events {
        match e {
            TallyEvent::Equivocation(ev) => {
                tracing::warn!(evidence = ?ev, "amendment vote equivocation");
            }
            other => tracing::info!(event = ?other, "amendment tally"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn member(id: u64, key: &SigningKey) -> senatus_genesis::Validator {
        senatus_genesis::Validator {
            id: NodeId::new(id).expect("id"),
            identity_key: Key32(key.verifying_key().to_bytes()),
            verifying_share: Key32([9; 32]),
            peer_addr: "127.0.0.1:1".into(),
            api_addr: "127.0.0.1:2".into(),
        }
    }

    #[test]
    fn a_seal_entry_has_pinned_bytes_and_decodes_strictly() {
        let e = SealEntry {
            proposal: ProposalId(Digest([1; 32])),
            seal_digest: Digest([2; 32]),
            signature: Sig64([3; 64]),
            attested: SealAttestations {
                ledger_index: 9,
                entry_hash: Digest([4; 32]),
                by: [5u64, 6]
                    .map(|id| senatus_genesis::seal::HeadAttestation {
                        validator: NodeId::new(id).expect("id"),
                        signature: Sig64([id as u8; 64]),
                    })
                    .to_vec(),
            },
        };
        let bytes = e.encode();
        let mut want = b"senatus/seal-entry/v2\0".to_vec();
        want.extend([1u8; 32]);
        want.extend([2u8; 32]);
        want.extend([3u8; 64]);
        want.extend(9u64.to_be_bytes());
        want.extend([4u8; 32]);
        want.extend(2u32.to_be_bytes());
        for id in [5u8, 6] {
            want.extend(u64::from(id).to_be_bytes());
            want.extend([id; 64]);
        }
        assert_eq!(bytes, want, "docs/PROTOCOL.md 16.9");
        assert_eq!(SealEntry::decode(&bytes), Ok(e));
        assert!(SealEntry::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(SealEntry::decode(&long).is_err());
        assert!(SealEntry::decode(b"senatus/vote/v1\0").is_err());
        // The first version (no head) is refused, not read as this one.
        let mut v1 = b"senatus/seal-entry/v1\0".to_vec();
        v1.extend(&bytes[b"senatus/seal-entry/v2\0".len()..]);
        assert!(SealEntry::decode(&v1).is_err());
        // An attester id of 0, and a count beyond any membership, refused.
        let mut zero = bytes.clone();
        let at = want.len() - 2 * (8 + 64);
        zero[at..at + 8].copy_from_slice(&0u64.to_be_bytes());
        assert!(
            SealEntry::decode(&zero)
                .expect_err("id 0")
                .contains("not a node id")
        );
        let mut many = bytes.clone();
        many[at - 4..at].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(SealEntry::decode(&many).is_err());
    }

    #[test]
    fn a_redeclaration_is_signed_by_its_member_and_nothing_else_verifies() {
        let k1 = SigningKey::from_bytes(&[7; 32]);
        let k2 = SigningKey::from_bytes(&[8; 32]);
        let members = [member(1, &k1), member(2, &k2)];
        let r = Redeclaration {
            node: NodeId::new(1).expect("id"),
            policy_version: 2,
            seal_digest: Digest([4; 32]),
            policy_digest: Digest([5; 32]),
        };
        let signed = r.sign(&k1);
        let mut body = b"senatus/redeclaration/v1\0".to_vec();
        body.extend(1u64.to_be_bytes());
        body.extend(2u64.to_be_bytes());
        body.extend([4u8; 32]);
        body.extend([5u8; 32]);
        assert_eq!(
            &signed[..signed.len() - 64],
            &body[..],
            "docs/PROTOCOL.md 16.9"
        );
        assert_eq!(Redeclaration::verify(&signed, &members), Ok(r.clone()));

        // Signed by another member's key: refused, naming the node.
        let forged = r.sign(&k2);
        assert_eq!(
            Redeclaration::verify(&forged, &members),
            Err("signature of node 1 does not verify".into())
        );
        // A node outside the membership.
        let r3 = Redeclaration {
            node: NodeId::new(3).expect("id"),
            ..r.clone()
        };
        assert_eq!(
            Redeclaration::verify(&r3.sign(&k1), &members),
            Err("node 3 is not a member".into())
        );
        // A flipped byte of the body, a truncation.
        let mut flipped = signed.clone();
        flipped[30] ^= 1;
        assert!(Redeclaration::verify(&flipped, &members).is_err());
        assert!(Redeclaration::verify(&signed[..40], &members).is_err());
    }

    /// A seeded 3-of-5 ceremony over the example policy.
    fn ceremony(seed: u64) -> senatus_genesis::ceremony::Ceremony {
        use rand::SeedableRng as _;
        let params = senatus_genesis::ceremony::CeremonyParams {
            chain_id: "senatus-amend-node-test".into(),
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
        senatus_genesis::ceremony::Ceremony::run(
            params,
            &mut rand::rngs::StdRng::seed_from_u64(seed),
        )
        .expect("ceremony")
    }

    /// FROST-signs `msg` with the shares of `signers` of ceremony `c`.
    fn frost_sign(
        c: &senatus_genesis::ceremony::Ceremony,
        signers: &[NodeId],
        msg: &[u8],
    ) -> [u8; 64] {
        use senatus_quorum::signing::{self, CommitmentBook, NoncePool, Signer};
        let mut book = CommitmentBook::default();
        let mut pool = BTreeMap::new();
        for &id in signers {
            let kp = c.nodes[(id.get() - 1) as usize].frost.key_package.clone();
            let mut s = Signer::new(kp, NoncePool::new(id, 1)).expect("own key");
            for cm in s.replenish(1, &mut rand::rngs::OsRng) {
                book.insert(cm).expect("filed");
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
                .sign(&req, msg)
                .expect("share");
            shares.insert(id, plan.accept(id, &share).expect("planned"));
        }
        let seal0 = Seal::genesis(&c.genesis);
        let public = signing::public_key_package(&seal0).expect("public keys");
        signing::aggregate(&plan.package(msg), &shares, &public).expect("aggregate")
    }

    #[test]
    fn only_the_seal_the_tally_computes_signed_by_the_approvers_swaps_the_policy() {
        let c = ceremony(11);
        let seal0 = Seal::genesis(&c.genesis);
        let mut st = AmendState::new(
            Arc::new(PolicyLayer::example()),
            seal0.clone(),
            c.genesis.body.authority_key,
        )
        .expect("state");
        // Version 2 of the example: the constitution's version bumped.
        let mut files = PolicyLayer::example().files().clone();
        let text = String::from_utf8(files["constitution.toml"].clone()).expect("utf8");
        files.insert(
            "constitution.toml".into(),
            text.replace("\nversion = 1\n", "\nversion = 2\n")
                .into_bytes(),
        );
        let v2 = PolicyLayer::from_files(files).expect("v2");
        let proposal = amend::Proposal {
            base_version: seal0.version,
            base_seal_digest: seal0.digest(),
            layer: v2.canonical_bytes(),
            justification: "v2".into(),
            proposer: c.genesis.body.authority_key,
            created_at_ms: 1,
        }
        .sign(c.authority.signing_key())
        .expect("signed");
        let pid = proposal.id();
        st.apply(1, EntryKind::Proposal, &proposal.encode())
            .expect("admitted");
        for (i, voter) in [2u64, 4, 5].into_iter().enumerate() {
            let v = review_vote(
                &st,
                &st.unvoted(NodeId::new(voter).expect("id"))[0],
                NodeId::new(voter).expect("id"),
                c.nodes[(voter - 1) as usize].identity.signing_key(),
            )
            .expect("vote");
            st.apply(2 + i as u64, EntryKind::Vote, &v.encode())
                .expect("counted");
        }
        let (id, next, signers) = st.pending_seal().expect("passed, awaiting its seal");
        assert_eq!(id, pid);
        assert_eq!(
            signers.iter().map(|n| n.get()).collect::<Vec<_>>(),
            [2, 4, 5]
        );
        // Passed, not yet sealed: the two who have not voted still review
        // it (their votes count as late); the three who did are done.
        for (voter, still) in [(1u64, true), (3, true), (2, false), (4, false)] {
            let open = st.unvoted(NodeId::new(voter).expect("id"));
            assert_eq!(open.iter().any(|p| p.id == pid), still, "voter {voter}");
        }
        let msg = next.signing_bytes();
        assert_eq!(
            st.passed_at(&pid),
            Some(4),
            "the third approval, at index 4"
        );
        let good = SealEntry {
            proposal: pid,
            seal_digest: next.digest(),
            signature: Sig64(frost_sign(&c, &signers, &msg)),
            attested: c.attest_seal(&next, &[1, 2, 4, 5], 4, Digest([4; 32])),
        };

        // Refused, each naming why, and nothing changes:
        // another cluster's approvers (a valid signature under another key);
        let other = ceremony(12);
        let foreign = SealEntry {
            signature: Sig64(frost_sign(&other, &signers, &msg)),
            ..good.clone()
        };
        let e = st
            .apply(5, EntryKind::Seal, &foreign.encode())
            .expect_err("foreign key");
        assert!(e.to_string().contains("signature"), "{e}");
        // a seal over a different digest;
        let mut wrong = next.clone();
        wrong.policy_digest = Digest([0xee; 32]);
        let e = st
            .apply(
                5,
                EntryKind::Seal,
                &SealEntry {
                    seal_digest: wrong.digest(),
                    signature: Sig64(frost_sign(&c, &signers, &wrong.signing_bytes())),
                    ..good.clone()
                }
                .encode(),
            )
            .expect_err("other digest");
        assert!(
            e.to_string().contains("this validator's next seal is"),
            "{e}"
        );
        // an entry for another proposal;
        let e = st
            .apply(
                5,
                EntryKind::Seal,
                &SealEntry {
                    proposal: ProposalId(Digest([1; 32])),
                    ..good.clone()
                }
                .encode(),
            )
            .expect_err("other proposal");
        assert!(e.to_string().contains("the passed amendment is"), "{e}");
        // a head other than the one where it passed;
        let e = st
            .apply(
                5,
                EntryKind::Seal,
                &SealEntry {
                    attested: c.attest_seal(&next, &[1, 2, 4, 5], 3, Digest([4; 32])),
                    ..good.clone()
                }
                .encode(),
            )
            .expect_err("other head");
        assert!(e.to_string().contains("the amendment passed at 4"), "{e}");
        // three attestations, the threshold's worth but not the quorum's;
        let e = st
            .apply(
                5,
                EntryKind::Seal,
                &SealEntry {
                    attested: c.attest_seal(&next, &[2, 4, 5], 4, Digest([4; 32])),
                    ..good.clone()
                }
                .encode(),
            )
            .expect_err("three attestations");
        assert!(
            e.to_string()
                .contains("3 attestations, 4 of the 5 members needed"),
            "{e}"
        );
        assert_eq!(st.seal(), &seal0, "nothing swapped");

        // The approvers' seal swaps the policy at exactly this index.
        st.apply(5, EntryKind::Seal, &good.encode())
            .expect("sealed");
        assert_eq!(st.seal(), &next);
        assert!(
            st.unvoted(NodeId::new(1).expect("id")).is_empty(),
            "a sealed proposal is archived: no vote on it is cast any more"
        );
        assert_eq!(st.layer().digest(), v2.digest());
        assert_eq!(st.chain().len(), 2);
        senatus_genesis::seal::verify_chain(&c.genesis, &st.chain()).expect("chain verifies");
        assert!(st.is_active(2, &next.digest()));
        assert!(!st.is_active(1, &seal0.digest()));
        assert!(
            st.sealed(&seal0.digest()).is_some(),
            "v1 stays known for its batches"
        );
        // A second seal for it: nothing awaits one.
        let e = st
            .apply(6, EntryKind::Seal, &good.encode())
            .expect_err("twice");
        assert!(
            e.to_string().contains("no passed amendment awaits a seal"),
            "{e}"
        );

        // Redeclarations: once per node, of the active seal only.
        let me = NodeId::new(3).expect("id");
        assert!(!st.has_redeclared(me));
        let r = Redeclaration {
            node: me,
            policy_version: 2,
            seal_digest: next.digest(),
            policy_digest: next.policy_digest,
        };
        let key = c.nodes[2].identity.signing_key();
        let stale = Redeclaration {
            policy_version: 1,
            seal_digest: seal0.digest(),
            policy_digest: seal0.policy_digest,
            ..r.clone()
        };
        assert!(
            st.apply(6, EntryKind::Redeclaration, &stale.sign(key))
                .is_err()
        );
        st.apply(6, EntryKind::Redeclaration, &r.sign(key))
            .expect("redeclared");
        assert!(st.has_redeclared(me));
        let e = st
            .apply(7, EntryKind::Redeclaration, &r.sign(key))
            .expect_err("twice");
        assert!(e.to_string().contains("already redeclared"), "{e}");

        // Replaying the same entries gives the same state (boot, snapshot).
        let mut again = st.fresh().expect("fresh");
        let entries = [
            (1, EntryKind::Proposal, proposal.encode()),
            (5, EntryKind::Seal, good.encode()),
        ];
        again
            .apply(entries[0].0, entries[0].1, &entries[0].2)
            .expect("proposal");
        for (i, voter) in [2u64, 4, 5].into_iter().enumerate() {
            let v = review_vote(
                &again,
                &again.unvoted(NodeId::new(voter).expect("id"))[0],
                NodeId::new(voter).expect("id"),
                c.nodes[(voter - 1) as usize].identity.signing_key(),
            )
            .expect("vote");
            again
                .apply(2 + i as u64, EntryKind::Vote, &v.encode())
                .expect("vote");
        }
        again
            .apply(entries[1].0, entries[1].1, &entries[1].2)
            .expect("seal");
        assert_eq!(again.chain(), st.chain());
    }
}
