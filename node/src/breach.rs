//! Breach detection, lockdown and shutdown certificates on a validator
//! (DESIGN.md, flow 5; docs/PROTOCOL.md section 17).
//!
//! Two kinds of knowledge, kept apart on purpose:
//!
//! - [`Certified`] is derived from the ledger. Every validator validates a
//!   Certificate entry (kind 8) on apply, identically, so what it changes —
//!   a certified validator's votes are refused, a certified agent's later
//!   decisions are DENY — depends only on the ledger index (I7). A sealed
//!   amendment whose constitution lists a certificate id in
//!   `[breach] reinstate` lifts it from that seal's index on.
//! - [`Breach`] is this validator's own: certificates it issued or received
//!   by broadcast and validated itself, kept in `DATA_DIR/certificates/`
//!   so they survive restart. A validated certificate about a validator
//!   excludes it from every signing set here at once, before any ledger
//!   entry exists; one about this validator locks its gate.
//!
//! There is no flag, variable, RPC or config that unlocks a gate: only a
//! sealed amendment naming the certificate does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use senatus_genesis::{Digest, Genesis, NodeId};
use senatus_proto::reason::{Reason, Reasoned};
use senatus_proto::v1 as pb;
use senatus_proto::v1::peer_client::PeerClient;
use senatus_quorum::certificate::{
    BreachKind, CERTIFICATE_BYTES_MAX, Certificate, Evidence, SignedCertificate, Subject,
};
use tonic::Status;
use tonic::transport::Channel;

use crate::gate::{lock, now_ms};
use crate::ledger::EntryKind;
use crate::raft_types::Command;
use crate::service::Shared;

/// How often the in-memory policy layer and the cheap fingerprint of the
/// on-disk layer are re-checked.
pub const DRIFT_CHECK_MS: u64 = 10;
/// How often the on-disk layer is re-read and hashed in full, whatever its
/// fingerprint says.
pub const DISK_DIGEST_MS: u64 = 1_000;
/// How often a slice of the stored ledger chain is re-read and re-verified.
pub const LEDGER_CHECK_MS: u64 = 100;
/// Entries re-verified per slice: the whole chain is covered in
/// `head / LEDGER_CHECK_ENTRIES` slices, then again from entry 1, at a
/// bounded cost per tick however long the ledger grows.
pub const LEDGER_CHECK_ENTRIES: usize = 1_000;
/// Attempts to deliver a certificate to one peer.
pub const BROADCAST_ATTEMPTS_MAX: u32 = 8;
/// Pause between delivery attempts to one peer (doubles, up to 1 s).
pub const BROADCAST_RETRY_MS: u64 = 50;
/// Longest one `Certify` call may take.
pub const CERTIFY_TIMEOUT_MS: u64 = 1_000;
/// Attempts to append a certificate to the ledger.
pub const LEDGER_APPEND_ATTEMPTS_MAX: u32 = 20;
/// Most certificates this validator keeps (in memory and on disk); past
/// it, new ones are refused (they stay refused until an operator acts).
pub const CERTIFICATES_MAX: usize = 4096;

/// A certificate as the ledger recorded it.
#[derive(Debug, Clone)]
pub struct LedgerCertificate {
    /// Ledger index of its Certificate entry.
    pub index: u64,
    /// The certificate.
    pub cert: SignedCertificate,
}

/// Certificates on the ledger and the reinstatements sealed amendments
/// made: derived state, rebuilt from the ledger like the amendment tally.
#[derive(Debug, Clone, Default)]
pub struct Certified {
    on_ledger: BTreeMap<Digest, LedgerCertificate>,
    /// Certificate id -> ledger index of the seal that reinstated it.
    reinstated: BTreeMap<Digest, u64>,
    /// Vote equivocations seen on apply, awaiting a certificate (the leader
    /// issues it).
    equivocations: Vec<senatus_quorum::amend::Equivocation>,
}

impl Certified {
    /// Records a validated certificate appended at `index`.
    pub fn record(&mut self, index: u64, cert: SignedCertificate) {
        self.on_ledger
            .insert(cert.id().0, LedgerCertificate { index, cert });
    }

    /// The ledger index of certificate `id`, if it is on the ledger.
    pub fn ledger_index(&self, id: &Digest) -> Option<u64> {
        self.on_ledger.get(id).map(|c| c.index)
    }

    /// Marks `ids` reinstated by the seal at `index` (the first seal that
    /// names an id counts).
    pub fn reinstate(&mut self, ids: &[Digest], index: u64) {
        for id in ids {
            self.reinstated.entry(*id).or_insert(index);
        }
    }

    /// The seal index that reinstated certificate `id`, if one did.
    pub fn reinstated(&self, id: &Digest) -> Option<u64> {
        self.reinstated.get(id).copied()
    }

    /// True when certificate `id` is in force for a ledger entry at `at`:
    /// no seal before `at` reinstated it.
    fn in_force(&self, id: &Digest, at: u64) -> bool {
        self.reinstated.get(id).is_none_or(|r| *r >= at)
    }

    /// The certificate on the ledger before index `at`, still in force at
    /// `at`, whose subject is `subject`.
    pub fn subject_at(&self, subject: &Subject, at: u64) -> Option<Digest> {
        self.on_ledger
            .iter()
            .find(|(id, c)| {
                c.index < at && self.in_force(id, at) && &c.cert.certificate.subject == subject
            })
            .map(|(id, _)| *id)
    }

    /// The agents (tenant, actor) certified on the ledger before `at` and
    /// still in force at `at`, with the certificate.
    pub fn agents_at(&self, at: u64) -> BTreeMap<(String, String), Digest> {
        let mut out = BTreeMap::new();
        for (id, c) in &self.on_ledger {
            if let Subject::Agent { tenant, actor } = &c.cert.certificate.subject
                && c.index < at
                && self.in_force(id, at)
            {
                out.entry((tenant.clone(), actor.clone())).or_insert(*id);
            }
        }
        out
    }

    /// Every certificate on the ledger, by id.
    pub fn all(&self) -> impl Iterator<Item = &LedgerCertificate> {
        self.on_ledger.values()
    }

    /// Queues vote equivocation evidence seen on apply.
    pub fn push_equivocation(&mut self, e: senatus_quorum::amend::Equivocation) {
        self.equivocations.push(e);
    }

    /// Takes the queued equivocation evidence.
    pub fn take_equivocations(&mut self) -> Vec<senatus_quorum::amend::Equivocation> {
        std::mem::take(&mut self.equivocations)
    }
}

/// Why this validator is locked down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockdown {
    /// The certificate.
    pub id: Digest,
    /// Its breach kind.
    pub kind: BreachKind,
}

impl Lockdown {
    /// The error every gated call answers with while locked (reason
    /// `LOCKED_DOWN`).
    pub fn error(&self, node: u64) -> crate::gate::GateCallError {
        crate::gate::GateCallError::LockedDown {
            node,
            certificate: self.id,
            kind: self.kind,
        }
    }

    /// [`Lockdown::error`] as the status a client gets.
    pub fn status(&self, node: u64) -> Status {
        self.error(node).into()
    }
}

/// This validator's breach state: the certificates it validated itself,
/// its lockdown, and the fan-out to its peers.
pub struct Breach {
    me: NodeId,
    key: ed25519_dalek::SigningKey,
    dir: PathBuf,
    /// Validated certificates (issued here, or received and re-checked).
    known: Mutex<BTreeMap<Digest, SignedCertificate>>,
    peers: BTreeMap<u64, PeerClient<Channel>>,
}

impl std::fmt::Debug for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breach")
            .field("me", &self.me)
            .field("key", &"<redacted>")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// File name of a stored certificate.
fn file_name(id: &Digest) -> String {
    format!("{id}.cert")
}

impl Breach {
    /// Opens `data_dir/certificates`, loading every stored certificate
    /// whose issuer signature verifies under `genesis`' validators (a file
    /// that does not is logged and left alone, never trusted).
    pub fn open(
        me: NodeId,
        key: ed25519_dalek::SigningKey,
        data_dir: &Path,
        genesis: &Genesis,
        peers: BTreeMap<u64, PeerClient<Channel>>,
    ) -> std::io::Result<Breach> {
        let dir = data_dir.join("certificates");
        std::fs::create_dir_all(&dir)?;
        let mut known = BTreeMap::new();
        for e in std::fs::read_dir(&dir)? {
            let path = e?.path();
            if path.extension().and_then(|x| x.to_str()) != Some("cert") {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            let cert = match SignedCertificate::decode(&bytes) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "stored certificate does not decode; ignored");
                    continue;
                }
            };
            if let Err(e) = cert.verify_signature(&genesis.body.validators) {
                tracing::error!(file = %path.display(), error = %e, "stored certificate does not verify; ignored");
                continue;
            }
            known.insert(cert.id().0, cert);
        }
        if !known.is_empty() {
            tracing::warn!(node = %me, certificates = known.len(), "stored shutdown certificates loaded");
        }
        Ok(Breach {
            me,
            key,
            dir,
            known: Mutex::new(known),
            peers,
        })
    }

    /// This validator.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Signs `bytes` with this validator's identity key (share attestations).
    pub fn sign(&self, bytes: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.key.sign(bytes).to_bytes()
    }

    /// The certificate locking this validator, if any: one it validated
    /// itself or one on the ledger, about it, not reinstated.
    pub fn lockdown(&self, amend: &crate::amend::AmendHandle) -> Option<Lockdown> {
        self.in_force_about(&Subject::Validator(self.me), amend)
    }

    /// The certificate excluding validator `node` from signing, if any.
    pub fn excluded(&self, node: NodeId, amend: &crate::amend::AmendHandle) -> Option<Digest> {
        self.in_force_about(&Subject::Validator(node), amend)
            .map(|l| l.id)
    }

    /// A certificate about `subject`, validated here or on the ledger, that
    /// no sealed amendment reinstated. One lock of each kind, in the order
    /// used everywhere (known, then the amendment state), and nothing
    /// hashed unless a certificate names `subject`: this runs for every
    /// request and every signer.
    fn in_force_about(
        &self,
        subject: &Subject,
        amend: &crate::amend::AmendHandle,
    ) -> Option<Lockdown> {
        let local: Vec<(Digest, BreachKind)> = lock(&self.known)
            .iter()
            .filter(|(_, c)| &c.certificate.subject == subject)
            .map(|(id, c)| (*id, c.certificate.kind()))
            .collect();
        let found = amend.with(|s| {
            let certified = s.certified();
            let on_ledger = certified
                .all()
                .filter(|c| &c.cert.certificate.subject == subject)
                .map(|c| (c.cert.id().0, c.cert.certificate.kind()));
            local
                .iter()
                .copied()
                .chain(on_ledger)
                .find(|(id, _)| certified.reinstated(id).is_none())
        });
        // Without amendment state nothing can reinstate: the first local one.
        found
            .unwrap_or_else(|| local.first().copied())
            .map(|(id, kind)| Lockdown { id, kind })
    }

    /// Every certificate this validator validated, with the ledger's view.
    pub fn views(&self, amend: &crate::amend::AmendHandle) -> Vec<pb::CertificateView> {
        let mut all: BTreeMap<Digest, SignedCertificate> = lock(&self.known).clone();
        let ledger: Vec<LedgerCertificate> = amend
            .with(|s| s.certified().all().cloned().collect())
            .unwrap_or_default();
        for c in &ledger {
            all.entry(c.cert.id().0).or_insert_with(|| c.cert.clone());
        }
        all.into_iter()
            .map(|(id, c)| {
                let (index, reinstated) = amend
                    .with(|s| {
                        (
                            s.certified().ledger_index(&id).unwrap_or(0),
                            s.certified().reinstated(&id).unwrap_or(0),
                        )
                    })
                    .unwrap_or((0, 0));
                pb::CertificateView {
                    id: id.0.to_vec(),
                    certificate: c.encode(),
                    subject: c.certificate.subject.to_string(),
                    kind: c.certificate.kind().to_string(),
                    issuer: c.certificate.issuer.get(),
                    issued_at_ms: c.certificate.issued_at_ms,
                    ledger_index: index,
                    reinstated_at: reinstated,
                }
            })
            .collect()
    }

    /// Validates `cert` against this validator's own state (issuer
    /// signature, evidence, and the facts only this node's ledger holds),
    /// stores it and starts enforcing it. Returns its id; an invalid
    /// certificate changes nothing.
    pub fn accept(&self, shared: &Shared, cert: &SignedCertificate) -> Result<Digest, String> {
        self.accept_checked(shared, cert, true)
    }

    /// As [`Breach::accept`]; `local` = false skips the checks against this
    /// node's own ledger, for a certificate this node just issued from what
    /// its own detectors saw (a broken local ledger cannot confirm itself).
    fn accept_checked(
        &self,
        shared: &Shared,
        cert: &SignedCertificate,
        local: bool,
    ) -> Result<Digest, String> {
        let id = cert.id().0;
        if lock(&self.known).contains_key(&id) {
            return Ok(id);
        }
        if local {
            validate(shared, cert)?;
        } else {
            check_public(shared, cert)?;
        }
        let mut known = lock(&self.known);
        if known.len() >= CERTIFICATES_MAX {
            return Err(format!(
                "this validator already holds certificates_max = {CERTIFICATES_MAX} certificates"
            ));
        }
        write_atomic(&self.dir.join(file_name(&id)), &cert.encode())
            .map_err(|e| format!("cannot store certificate {id}: {e}"))?;
        known.insert(id, cert.clone());
        drop(known);
        let c = &cert.certificate;
        if c.subject == Subject::Validator(self.me) {
            tracing::error!(node = %self.me, certificate = %id, kind = %c.kind(), issuer = %c.issuer, "LOCKED DOWN: a validated shutdown certificate names this validator");
        } else {
            tracing::warn!(node = %self.me, certificate = %id, kind = %c.kind(), subject = %c.subject, issuer = %c.issuer, "shutdown certificate validated");
        }
        Ok(id)
    }

    /// A validated certificate by `cert`'s issuer that names another hash
    /// for the same ledger head index: two conflicting signed heads for one
    /// slot (I8). None when there is none, or when this validator already
    /// holds a head-equivocation certificate about that issuer.
    pub fn conflicting_head(&self, cert: &SignedCertificate) -> Option<SignedCertificate> {
        let c = &cert.certificate;
        let is_head = |e: &Evidence| matches!(e, Evidence::HeadEquivocation { .. });
        if is_head(&c.evidence) {
            return None;
        }
        let known = lock(&self.known);
        let certified = known.values().any(|k| {
            is_head(&k.certificate.evidence)
                && k.certificate.subject == Subject::Validator(c.issuer)
        });
        if certified {
            return None;
        }
        known
            .values()
            .find(|k| {
                let k = &k.certificate;
                k.issuer == c.issuer
                    && k.head_index == c.head_index
                    && k.head_hash != c.head_hash
                    && !is_head(&k.evidence)
            })
            .cloned()
    }

    /// Certifies `cert`'s issuer if it signed another head for the same
    /// index in a certificate this validator validated before.
    pub fn certify_head_conflict(self: &Arc<Self>, shared: &Shared, cert: &SignedCertificate) {
        let Some(other) = self.conflicting_head(cert) else {
            return;
        };
        let issuer = cert.certificate.issuer;
        let evidence = Evidence::HeadEquivocation {
            first: Box::new(other),
            second: Box::new(cert.clone()),
        };
        if let Err(why) = self.issue(shared, Subject::Validator(issuer), evidence) {
            tracing::error!(node = %self.me, %issuer, %why, "cannot certify a head equivocation");
        }
    }

    /// Issues a certificate about `subject` with `evidence`, signed by this
    /// validator, over its current ledger head; accepts it here, then fans
    /// it out to every validator and appends it to the ledger (in the
    /// background, with retries). A breach kind already certified about
    /// this validator itself is not certified again.
    pub fn issue(
        self: &Arc<Self>,
        shared: &Shared,
        subject: Subject,
        evidence: Evidence,
    ) -> Result<Digest, String> {
        // A breach this validator already certified about itself, and
        // that no sealed amendment lifted, is not certified again on every
        // check; one that persists past its reinstatement is.
        if subject == Subject::Validator(self.me) {
            let kind = evidence.kind();
            let amend = shared.sm.amendments();
            let in_force = lock(&self.known).iter().any(|(id, c)| {
                c.certificate.subject == subject
                    && c.certificate.kind() == kind
                    && amend
                        .with(|s| s.certified().reinstated(id).is_none())
                        .unwrap_or(true)
            });
            if in_force {
                return Err(format!(
                    "validator {} already certified a {kind} breach about itself",
                    self.me
                ));
            }
        }
        let head = shared
            .sm
            .ledger_head()
            .map_err(|e| format!("ledger head: {e}"))?;
        let cert = Certificate {
            subject,
            evidence,
            head_index: head.index,
            head_hash: head.hash,
            issuer: self.me,
            issued_at_ms: now_ms(),
        }
        .sign(&self.key);
        let id = self.accept_checked(shared, &cert, false)?;
        tracing::error!(node = %self.me, certificate = %id, kind = %cert.certificate.kind(), subject = %cert.certificate.subject, "shutdown certificate issued");
        let this = self.clone();
        let shared = shared.clone();
        tokio::spawn(async move { this.spread(&shared, cert).await });
        Ok(id)
    }

    /// Sends `cert` to every peer directly (not through the leader), with
    /// bounded retries, and appends it to the ledger once a quorum takes
    /// it.
    pub async fn spread(&self, shared: &Shared, cert: SignedCertificate) {
        let bytes = cert.encode();
        let mut calls = tokio::task::JoinSet::new();
        for (id, client) in &self.peers {
            let mut client = client.clone();
            let req = pb::CertifyRequest {
                from: self.me.get(),
                certificate: bytes.clone(),
            };
            let peer = *id;
            calls.spawn(async move {
                let mut pause = Duration::from_millis(BROADCAST_RETRY_MS);
                for attempt in 1..=BROADCAST_ATTEMPTS_MAX {
                    let call = client.certify(req.clone());
                    match tokio::time::timeout(Duration::from_millis(CERTIFY_TIMEOUT_MS), call)
                        .await
                    {
                        Ok(Ok(_)) => return,
                        Ok(Err(s)) if s.code() == tonic::Code::InvalidArgument => {
                            tracing::warn!(peer, code = ?s.code(), message = s.message(), "peer refused the certificate");
                            return;
                        }
                        Ok(Err(s)) => {
                            tracing::debug!(peer, attempt, message = s.message(), "certificate not delivered; retrying");
                        }
                        Err(_) => tracing::debug!(peer, attempt, "certificate delivery timed out"),
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                tracing::warn!(
                    peer,
                    "certificate not delivered after {BROADCAST_ATTEMPTS_MAX} attempts"
                );
            });
        }
        let id = cert.id().0;
        let append = async {
            for attempt in 1..=LEDGER_APPEND_ATTEMPTS_MAX {
                let on_ledger = shared
                    .sm
                    .amendments()
                    .with(|s| s.certified().ledger_index(&id))
                    .flatten();
                if let Some(index) = on_ledger {
                    tracing::info!(certificate = %id, ledger_index = index, "certificate on the ledger");
                    return;
                }
                match shared
                    .write(Command::new(EntryKind::Certificate, bytes.clone()))
                    .await
                {
                    Ok(w) => {
                        tracing::info!(certificate = %id, ledger_index = w.index, "certificate appended");
                        return;
                    }
                    // Another validator appended it first.
                    Err(e) if e.reason() == Some(Reason::CertificateOnLedger) => return,
                    Err(e) if e.code() == tonic::Code::InvalidArgument => {
                        tracing::error!(certificate = %id, message = %e, "the ledger refused the certificate");
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(certificate = %id, attempt, message = %e, "certificate not appended; retrying");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        };
        tokio::join!(append, async { while calls.join_next().await.is_some() {} });
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename,
/// so a crash leaves either the whole file or none.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Everything a receiver checks about a certificate: the public checks
/// (`Certificate::check`: signature, subject, evidence), the seal chain's
/// facts (the amendment state) and this node's own ledger and nonce store.
pub fn validate(shared: &Shared, cert: &SignedCertificate) -> Result<(), String> {
    check_public(shared, cert)?;
    local_facts(&shared.sm, cert, None)
}

fn check_public(shared: &Shared, cert: &SignedCertificate) -> Result<(), String> {
    shared
        .sm
        .amendments()
        .with(|s| s.check_certificate(cert))
        .ok_or_else(|| "this node does not track the seal chain".to_string())?
}

/// The checks that need this node's stored ledger: a ledger break's
/// `expected` hash is the hash this node holds at that index (the issuer's
/// copy differs from the chain everyone else holds), and a replayed
/// token's first redemption is in this node's nonce store. `pending`
/// holds entries applied earlier in the same apply call.
pub fn local_facts(
    sm: &crate::store::StateMachineStore,
    cert: &SignedCertificate,
    pending: Option<&crate::store::PendingApply<'_>>,
) -> Result<(), String> {
    match &cert.certificate.evidence {
        Evidence::LedgerBreak {
            index, expected, ..
        } => {
            let mine = match pending.and_then(|p| p.hash_at(*index)) {
                Some(h) => Some(h),
                None => sm
                    .ledger_entry(*index)
                    .map_err(|e| format!("ledger read failed: {e}"))?
                    .map(|e| e.hash),
            };
            match mine {
                Some(h) if h == *expected => Ok(()),
                Some(h) => Err(format!(
                    "ledger-break evidence: this validator's entry {index} has hash {h}, the certificate says the chain has {expected}"
                )),
                None => Err(format!(
                    "ledger-break evidence: this validator has no entry {index}"
                )),
            }
        }
        Evidence::TokenReplayed { token, first_index } => {
            let t = senatus_quorum::token::Token::from_bytes(token)
                .map_err(|e| format!("token-replayed evidence: {e}"))?;
            let nonce = t.payload.nonce.0.to_vec();
            let first = match pending.and_then(|p| p.redeemed(&nonce)) {
                Some(i) => Some(i),
                None => sm
                    .nonce_redemption(&nonce)
                    .map_err(|e| format!("nonce read failed: {e}"))?,
            };
            match first {
                Some(i) if i == *first_index => Ok(()),
                Some(i) => Err(format!(
                    "token-replayed evidence: nonce {} was redeemed at ledger index {i}, not {first_index}",
                    hex::encode(&nonce)
                )),
                None => Err(format!(
                    "token-replayed evidence: nonce {} was never redeemed here",
                    hex::encode(&nonce)
                )),
            }
        }
        _ => Ok(()),
    }
}

/// The public checks of a certificate under the newest seal of `chain`
/// (its membership and key package, and a broker over genesis and the
/// chain): what every validator and `senatus certificates verify` run.
pub fn check_against_chain(
    cert: &SignedCertificate,
    genesis: &senatus_genesis::Genesis,
    chain: &[senatus_genesis::SignedSeal],
) -> Result<(), String> {
    let seal = &chain
        .last()
        .ok_or_else(|| "empty seal chain".to_string())?
        .seal;
    let pubkeys = senatus_quorum::signing::public_key_package(seal).map_err(|e| e.to_string())?;
    let broker = senatus_quorum::broker::Broker::new(genesis, chain).map_err(|e| e.to_string())?;
    cert.check(&senatus_quorum::certificate::CheckContext {
        membership: &seal.membership,
        pubkeys: &pubkeys,
        broker: &broker,
    })
    .map_err(|e| e.to_string())
}

/// Decodes a certificate from the wire, bounded.
pub fn decode(bytes: &[u8]) -> Result<SignedCertificate, String> {
    if bytes.len() > CERTIFICATE_BYTES_MAX {
        return Err(format!(
            "certificate is {} bytes, above certificate_bytes_max {CERTIFICATE_BYTES_MAX}",
            bytes.len()
        ));
    }
    SignedCertificate::decode(bytes).map_err(|e| e.to_string())
}

/// The drift and ledger detectors: runs until `stop`, checking the active
/// policy layer in memory and its on-disk copy every [`DRIFT_CHECK_MS`]
/// (a full re-hash of the disk copy every [`DISK_DIGEST_MS`]), a rolling
/// slice of the stored ledger chain every [`LEDGER_CHECK_MS`], queued vote
/// equivocations, and enforcing this validator's lockdown on Raft (no
/// elections, no heartbeats: a locked leader gives way).
pub async fn run_detectors(
    shared: Shared,
    breach: Arc<Breach>,
    policy_dir: PathBuf,
    data_dir: PathBuf,
    mut stop: impl std::future::Future<Output = ()> + Unpin,
) {
    let mut fingerprint: Option<(u64, Fingerprint)> = None;
    let mut last_disk = Instant::now() - Duration::from_millis(DISK_DIGEST_MS);
    let mut last_ledger = Instant::now();
    let mut ledger_cursor = 1u64;
    let mut raft_quiet = false;
    loop {
        #[cfg(feature = "fault-injection")]
        crate::gate::fault::tamper_hooks(&shared, &data_dir);
        check_memory(&shared, &breach);
        let version = shared
            .sm
            .amendments()
            .with(|s| s.seal().version.0)
            .unwrap_or(1);
        let dir = if version <= 1 {
            policy_dir.clone()
        } else {
            data_dir.join("sealed").join(format!("v{version}"))
        };
        let fp = dir_fingerprint(&dir);
        let changed = fingerprint.as_ref() != Some(&(version, fp.clone()));
        if changed || last_disk.elapsed() >= Duration::from_millis(DISK_DIGEST_MS) {
            check_disk(&shared, &breach, &dir);
            fingerprint = Some((version, fp));
            last_disk = Instant::now();
        }
        if last_ledger.elapsed() >= Duration::from_millis(LEDGER_CHECK_MS) {
            check_ledger(&shared, &breach, &mut ledger_cursor);
            last_ledger = Instant::now();
        }
        certify_equivocations(&shared, &breach);
        if !raft_quiet && breach.lockdown(shared.sm.amendments()).is_some() {
            // A locked validator keeps replicating the ledger (so it sees
            // the amendment that may reinstate it) but never leads: no
            // elections, and no heartbeats, so a locked leader's followers
            // elect another.
            shared.raft.runtime_config().elect(false);
            shared.raft.runtime_config().heartbeat(false);
            raft_quiet = true;
        } else if raft_quiet && breach.lockdown(shared.sm.amendments()).is_none() {
            shared.raft.runtime_config().elect(true);
            shared.raft.runtime_config().heartbeat(true);
            raft_quiet = false;
            tracing::warn!(
                node = shared.id,
                "reinstated by a sealed amendment; gate open again"
            );
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(Duration::from_millis(DRIFT_CHECK_MS)) => {}
        }
    }
}

/// Path, length and modification time of every file of a directory.
type Fingerprint = Vec<(PathBuf, u64, SystemTime)>;

/// Path, length and modification time of every file under `dir`, sorted:
/// a change in any of them triggers a full re-hash.
fn dir_fingerprint(dir: &Path) -> Fingerprint {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(path);
            } else {
                let mtime = md.modified().unwrap_or(UNIX_EPOCH);
                out.push((path, md.len(), mtime));
            }
        }
    }
    out.sort();
    out
}

/// The active layer in memory must still hash to its seal's digest. Also
/// called before every decision batch. Returns the lockdown, if any.
pub fn check_memory(shared: &Shared, breach: &Arc<Breach>) -> Option<Lockdown> {
    let drift = shared.sm.amendments().with(|s| {
        let a = s.active_sealed();
        let sealed = a.seal.seal.policy_digest;
        let observed = a.layer.recompute_digest();
        (observed != sealed || a.layer.digest() != sealed).then_some((
            a.seal.seal.version.0,
            sealed,
            if observed != sealed {
                observed
            } else {
                a.layer.digest()
            },
        ))
    });
    if let Some(Some((policy_version, sealed_digest, observed_digest))) = drift {
        let _ = breach.issue(
            shared,
            Subject::Validator(breach.me()),
            Evidence::PolicyDrift {
                location: senatus_quorum::certificate::DriftLocation::Memory,
                policy_version,
                sealed_digest,
                observed_digest,
            },
        );
    }
    breach.lockdown(shared.sm.amendments())
}

fn check_disk(shared: &Shared, breach: &Arc<Breach>, dir: &Path) {
    let Some((version, sealed)) = shared
        .sm
        .amendments()
        .with(|s| (s.seal().version.0, s.seal().policy_digest))
    else {
        return;
    };
    if version > 1 && !dir.exists() {
        // Not written yet: the redeclaration writes it first.
        return;
    }
    let observed = match senatus_genesis::PolicyLayer::dir_digest(dir) {
        Ok(d) => d,
        // An unreadable layer (a file removed, a symlink planted) is drift
        // too: what the node would load is not what was sealed.
        Err(e) => {
            tracing::error!(node = shared.id, dir = %dir.display(), error = %e, "on-disk policy layer unreadable");
            senatus_genesis::codec::sha3(e.to_string().as_bytes())
        }
    };
    if observed != sealed {
        tracing::error!(node = shared.id, dir = %dir.display(), %sealed, %observed, "on-disk policy layer drifted from its seal");
        let _ = breach.issue(
            shared,
            Subject::Validator(breach.me()),
            Evidence::PolicyDrift {
                location: senatus_quorum::certificate::DriftLocation::Disk,
                policy_version: version,
                sealed_digest: sealed,
                observed_digest: observed,
            },
        );
    }
}

fn check_ledger(shared: &Shared, breach: &Arc<Breach>, cursor: &mut u64) {
    let Ok(head) = shared.sm.ledger_head() else {
        return;
    };
    if head.index == 0 {
        return;
    }
    if *cursor > head.index {
        *cursor = 1;
    }
    // One entry before the slice, so its first link is checked too.
    let from = cursor.saturating_sub(1).max(1);
    let e = match shared
        .sm
        .ledger_range(from, head.index, LEDGER_CHECK_ENTRIES + 1)
    {
        Ok(entries) => {
            *cursor = entries.last().map_or(1, |e| e.index + 1);
            return;
        }
        Err(crate::store::StoreError::Chain(e)) => e,
        Err(other) => {
            tracing::error!(node = shared.id, error = %other, "stored ledger unreadable");
            return;
        }
    };
    tracing::error!(node = shared.id, error = %e, "stored ledger chain is broken");
    let index = e.index();
    *cursor = index.saturating_add(1);
    // `expected` is the hash the chain holds at `index` (the stored hash,
    // which the next entry links to and every other validator holds);
    // `found` is what the stored bytes re-hash to. Other breaks (a missing
    // or undecodable entry) carry no such pair: the certificate still
    // locks this validator, and the others refuse evidence they cannot
    // check.
    let (expected, found) = match &e {
        crate::ledger::ChainError::HashMismatch {
            expected: recomputed,
            found: stored,
            ..
        } => (*stored, *recomputed),
        other => (
            Digest::ZERO,
            senatus_genesis::codec::sha3(other.to_string().as_bytes()),
        ),
    };
    let _ = breach.issue(
        shared,
        Subject::Validator(breach.me()),
        Evidence::LedgerBreak {
            index,
            expected,
            found,
        },
    );
}

/// The leader certifies vote equivocations its tally saw; every other
/// validator drops its copy (the leader's certificate reaches it).
fn certify_equivocations(shared: &Shared, breach: &Arc<Breach>) {
    let queued = shared
        .sm
        .amendments()
        .with(|s| s.certified_mut().take_equivocations())
        .unwrap_or_default();
    if queued.is_empty() {
        return;
    }
    let leads = shared.raft.metrics().borrow().state == openraft::ServerState::Leader;
    if !leads {
        return;
    }
    for e in queued {
        let voter = e.voter();
        if let Err(why) = breach.issue(
            shared,
            Subject::Validator(voter),
            Evidence::VoteEquivocation(e),
        ) {
            tracing::error!(node = shared.id, %voter, %why, "cannot certify a vote equivocation");
        }
    }
}
