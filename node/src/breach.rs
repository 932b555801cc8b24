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
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use senatus_genesis::{Digest, NodeId};
use senatus_proto::reason::{Reason, Reasoned};
use senatus_proto::v1 as pb;
use senatus_proto::v1::peer_client::PeerClient;
use senatus_quorum::certificate::{Certificate, Evidence, SignedCertificate, Subject};
use tonic::transport::Channel;

pub use crate::certs::{AGENT_CERTIFICATES_MAX, Certificates, Lockdown, Stored};
use crate::clock::now_ms;
use crate::cluster::Cluster;
use crate::ledger::EntryKind;
use crate::raft_types::Command;
pub use senatus_replica::certified::{Certified, LedgerCertificate, check_against_chain, decode};

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
/// This validator's breach state: the certificates it validated itself,
/// its lockdown, and the fan-out to its peers.
pub struct Breach {
    certs: Arc<Certificates>,
    key: ed25519_dalek::SigningKey,
    peers: BTreeMap<u64, PeerClient<Channel>>,
}

impl std::fmt::Debug for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breach")
            .field("certs", &self.certs)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Breach {
    /// The breach state over `certs` (loaded by [`Certificates::open`]),
    /// signing with `key` and spreading to `peers`.
    pub fn new(
        certs: Arc<Certificates>,
        key: ed25519_dalek::SigningKey,
        peers: BTreeMap<u64, PeerClient<Channel>>,
    ) -> Self {
        Breach { certs, key, peers }
    }

    /// A client of each other validator's peer port.
    pub fn peers(&self) -> &BTreeMap<u64, PeerClient<Channel>> {
        &self.peers
    }

    /// This validator.
    pub fn me(&self) -> NodeId {
        self.certs.me()
    }

    /// The certificates this validator validated.
    pub fn certs(&self) -> &Arc<Certificates> {
        &self.certs
    }

    /// The certificate locking this validator, if any.
    pub fn lockdown(&self, amend: &crate::store::StateHandle) -> Option<Lockdown> {
        self.certs.lockdown(amend)
    }

    /// The certificate excluding validator `node` from signing, if any.
    pub fn excluded(&self, node: NodeId, amend: &crate::store::StateHandle) -> Option<Digest> {
        self.certs.excluded(node, amend)
    }

    /// Every certificate this validator validated, with the ledger's view.
    pub fn views(&self, amend: &crate::store::StateHandle) -> Vec<pb::CertificateView> {
        self.certs.views(amend)
    }

    /// See [`Certificates::conflicting_head`].
    pub fn conflicting_head(&self, cert: &SignedCertificate) -> Option<SignedCertificate> {
        self.certs.conflicting_head(cert)
    }

    /// Signs `bytes` with this validator's identity key (share attestations).
    pub fn sign(&self, bytes: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.key.sign(bytes).to_bytes()
    }

    /// Validates `cert` against this validator's own state (issuer
    /// signature, evidence, and the facts only this node's ledger holds),
    /// stores it and starts enforcing it. Returns its id; an invalid
    /// certificate changes nothing.
    pub fn accept(&self, shared: &Cluster, cert: &SignedCertificate) -> Result<Digest, String> {
        self.accept_checked(shared, cert, true)
    }

    /// As [`Breach::accept`]; `local` = false skips the checks against this
    /// node's own ledger, for a certificate this node just issued from what
    /// its own detectors saw (a broken local ledger cannot confirm itself).
    fn accept_checked(
        &self,
        shared: &Cluster,
        cert: &SignedCertificate,
        local: bool,
    ) -> Result<Digest, String> {
        let id = cert.id().0;
        if self.certs.contains(&id) {
            return Ok(id);
        }
        if local {
            validate(shared, cert)?;
        } else {
            check_public(shared, cert)?;
        }
        match self.certs.store(cert, shared.sm.amendments())? {
            crate::certs::Stored::New => Ok(id),
            // Redundant: the one in force stands for it.
            crate::certs::Stored::Held(held) => Ok(held),
        }
    }

    /// Certifies `cert`'s issuer if it signed another head for the same
    /// index in a certificate this validator validated before.
    pub fn certify_head_conflict(self: &Arc<Self>, shared: &Cluster, cert: &SignedCertificate) {
        let Some(other) = self.conflicting_head(cert) else {
            return;
        };
        let issuer = cert.certificate.issuer;
        let evidence = Evidence::HeadEquivocation {
            first: Box::new(other),
            second: Box::new(cert.clone()),
        };
        if let Err(why) = self.issue(shared, Subject::Validator(issuer), evidence) {
            tracing::error!(node = %self.me(), %issuer, %why, "cannot certify a head equivocation");
        }
    }

    /// Certifies validator `node` with `evidence` (its own signature over a
    /// lie), unless a certificate about it is already in force here: one
    /// certificate per offender, not one per lie it repeats. Logs what
    /// happened; `what` names the breach for the log.
    pub fn certify_validator(
        self: &Arc<Self>,
        shared: &Cluster,
        node: NodeId,
        evidence: Evidence,
        what: &'static str,
    ) {
        if let Some(existing) = self.excluded(node, shared.sm.amendments()) {
            tracing::warn!(node = %self.me(), validator = %node, certificate = %existing, what, "already certified; not certified again");
            return;
        }
        match self.issue(shared, Subject::Validator(node), evidence) {
            Ok(id) => {
                tracing::error!(node = %self.me(), validator = %node, certificate = %id, what, "certified")
            }
            Err(why) => {
                tracing::error!(node = %self.me(), validator = %node, %why, what, "cannot certify")
            }
        }
    }

    /// Issues a certificate about `subject` with `evidence`, signed by this
    /// validator, over its current ledger head; accepts it here, then fans
    /// it out to every validator and appends it to the ledger (in the
    /// background, with retries). A subject already certified for this
    /// breach kind (by any validator, not reinstated) is not certified
    /// again: a repeated offence adds no effect, and so no certificate.
    pub fn issue(
        self: &Arc<Self>,
        shared: &Cluster,
        subject: Subject,
        evidence: Evidence,
    ) -> Result<Digest, String> {
        // One that persists past its reinstatement is certified again.
        let kind = evidence.kind();
        if let Some(held) = self
            .certs
            .in_force_of(&subject, kind, None, shared.sm.amendments())
        {
            return Err(format!(
                "{subject} is already certified for {kind} by certificate {held}"
            ));
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
            issuer: self.me(),
            issued_at_ms: now_ms(),
        }
        .sign(&self.key);
        let id = self.accept_checked(shared, &cert, false)?;
        tracing::error!(node = %self.me(), certificate = %id, kind = %cert.certificate.kind(), subject = %cert.certificate.subject, "shutdown certificate issued");
        let this = self.clone();
        let shared = shared.clone();
        tokio::spawn(async move { this.spread(&shared, cert).await });
        Ok(id)
    }

    /// Sends `cert` to every peer directly (not through the leader), with
    /// bounded retries, and appends it to the ledger once a quorum takes
    /// it.
    pub async fn spread(&self, shared: &Cluster, cert: SignedCertificate) {
        let bytes = cert.encode();
        let mut calls = tokio::task::JoinSet::new();
        for (id, client) in &self.peers {
            let mut client = client.clone();
            let req = pb::CertifyRequest {
                from: self.me().get(),
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

/// Everything a receiver checks about a certificate: the public checks
/// (`Certificate::check`: signature, subject, evidence), the seal chain's
/// facts (the amendment state) and this node's own ledger and nonce store.
pub fn validate(shared: &Cluster, cert: &SignedCertificate) -> Result<(), String> {
    check_public(shared, cert)?;
    // Everything this node's ledger holds counts: the certificate is not
    // being appended at an index, it arrived by broadcast.
    senatus_replica::state::local_facts(&shared.sm, cert, u64::MAX).map_err(|e| e.to_string())
}

fn check_public(shared: &Cluster, cert: &SignedCertificate) -> Result<(), String> {
    shared
        .sm
        .amendments()
        .with(|s| s.check_certificate(cert))
        .ok_or_else(|| "this node does not track the seal chain".to_string())?
}

/// The drift and ledger detectors: runs until `stop`, checking the active
/// policy layer in memory and its on-disk copy every [`DRIFT_CHECK_MS`]
/// (a full re-hash of the disk copy every [`DISK_DIGEST_MS`]), a rolling
/// slice of the stored ledger chain every [`LEDGER_CHECK_MS`], queued vote
/// equivocations, and enforcing this validator's lockdown on Raft (no
/// elections, no heartbeats: a locked leader gives way).
pub async fn run_detectors(
    shared: Cluster,
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
        crate::fault::tamper_hooks(shared.id, &shared.sm, &data_dir);
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
pub fn check_memory(shared: &Cluster, breach: &Arc<Breach>) -> Option<Lockdown> {
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

fn check_disk(shared: &Cluster, breach: &Arc<Breach>, dir: &Path) {
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

fn check_ledger(shared: &Cluster, breach: &Arc<Breach>, cursor: &mut u64) {
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
fn certify_equivocations(shared: &Cluster, breach: &Arc<Breach>) {
    // Only the leader certifies. The others keep the evidence queued rather
    // than drop it: a leader that changes between the vote's apply and this
    // check must not lose the equivocation (every validator queued it on
    // apply, so whoever leads next still holds it). The queue is bounded by
    // the ledger: a certified validator's later votes are refused.
    let leads = shared.raft.metrics().borrow().state == openraft::ServerState::Leader;
    if !leads {
        return;
    }
    let queued = shared
        .sm
        .amendments()
        .with(|s| s.certified_mut().take_equivocations())
        .unwrap_or_default();
    for e in queued {
        let voter = e.voter();
        // A validator already excluded by a certificate (this one, issued
        // by an earlier leader, or another) needs no second one.
        if let Some(id) = breach.excluded(voter, shared.sm.amendments()) {
            tracing::debug!(node = shared.id, %voter, certificate = %id, "equivocator already certified");
            continue;
        }
        if let Err(why) = breach.issue(
            shared,
            Subject::Validator(voter),
            Evidence::VoteEquivocation(e),
        ) {
            tracing::error!(node = shared.id, %voter, %why, "cannot certify a vote equivocation");
        }
    }
}
