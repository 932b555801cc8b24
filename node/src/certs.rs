//! The shutdown certificates this validator validated itself (issued here
//! or received by broadcast), kept in `DATA_DIR/certificates/` so they
//! survive restart, and the lockdown they impose: a validated certificate
//! about a validator excludes it from every signing set here at once,
//! before any ledger entry exists; one about this validator locks its gate.
//! Issuing and spreading certificates is `crate::breach`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use senatus_genesis::{Digest, Genesis, NodeId};
use senatus_proto::v1 as pb;
use senatus_quorum::certificate::{BreachKind, Evidence, SignedCertificate, Subject};
use tonic::Status;

use crate::clock::lock;
use crate::store::StateHandle;
use senatus_replica::certified::LedgerCertificate;

/// Most certificates about agents this validator keeps (in memory and on
/// disk); past it, new ones about agents are refused. Certificates about
/// validators are never counted against it and never refused for room:
/// agent offences cannot crowd out a breach by a validator (I12).
pub const AGENT_CERTIFICATES_MAX: usize = 16_384;

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
    pub fn error(&self, node: u64) -> crate::gate_error::GateCallError {
        crate::gate_error::GateCallError::LockedDown {
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

/// What [`Certificates::store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored, and enforced from now on.
    New,
    /// Already held, or redundant: a certificate by the same issuer about
    /// the same subject for the same breach kind is in force here (this
    /// one, by id). Nothing was written.
    Held(Digest),
}

/// The certificates this validator validated, bounded: at most one in
/// force per (issuer, subject, breach kind) — a repeated offence adds no
/// effect, so it adds no entry — and at most [`AGENT_CERTIFICATES_MAX`]
/// about agents. The count about validators is bounded by the first rule
/// (issuers, subjects and kinds are finite) and never by agents'.
pub struct Certificates {
    me: NodeId,
    dir: PathBuf,
    /// Validated certificates (issued here, or received and re-checked).
    known: Mutex<Known>,
    /// [`AGENT_CERTIFICATES_MAX`] (smaller in unit tests).
    agent_cap: usize,
}

/// Certificates by id, with an index by subject (checked for every
/// request and every signer: never a scan of all of them).
#[derive(Debug, Default, Clone)]
struct Known {
    by_id: BTreeMap<Digest, SignedCertificate>,
    by_subject: BTreeMap<Subject, Vec<Digest>>,
    agents: usize,
}

impl Known {
    fn insert(&mut self, cert: SignedCertificate) {
        let id = cert.id().0;
        let subject = cert.certificate.subject.clone();
        if matches!(subject, Subject::Agent { .. }) {
            self.agents += 1;
        }
        self.by_subject.entry(subject).or_default().push(id);
        self.by_id.insert(id, cert);
    }

    fn about(&self, subject: &Subject) -> impl Iterator<Item = (&Digest, &SignedCertificate)> {
        self.by_subject
            .get(subject)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get_key_value(id))
    }
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("me", &self.me)
            .field("dir", &self.dir)
            .field("known", &lock(&self.known).by_id.len())
            .finish()
    }
}

/// File name of a stored certificate.
fn file_name(id: &Digest) -> String {
    format!("{id}.cert")
}

impl Certificates {
    /// Opens `data_dir/certificates`, loading every stored certificate
    /// whose issuer signature verifies under `genesis`' validators (a file
    /// that does not is logged and left alone, never trusted).
    pub fn open(me: NodeId, data_dir: &Path, genesis: &Genesis) -> std::io::Result<Self> {
        let dir = data_dir.join("certificates");
        std::fs::create_dir_all(&dir)?;
        let mut known = Known::default();
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
            known.insert(cert);
        }
        if !known.by_id.is_empty() {
            tracing::warn!(node = %me, certificates = known.by_id.len(), "stored shutdown certificates loaded");
        }
        Ok(Certificates {
            me,
            dir,
            known: Mutex::new(known),
            agent_cap: AGENT_CERTIFICATES_MAX,
        })
    }

    /// This validator.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Whether certificate `id` was validated here.
    pub fn contains(&self, id: &Digest) -> bool {
        lock(&self.known).by_id.contains_key(id)
    }

    /// A certificate in force here (validated here or on the ledger, not
    /// reinstated) about `subject` for `kind`, by `issuer` when given.
    pub fn in_force_of(
        &self,
        subject: &Subject,
        kind: BreachKind,
        issuer: Option<NodeId>,
        amend: &StateHandle,
    ) -> Option<Digest> {
        let fits = |c: &SignedCertificate| {
            c.certificate.kind() == kind && issuer.is_none_or(|i| c.certificate.issuer == i)
        };
        let local: Vec<Digest> = lock(&self.known)
            .about(subject)
            .filter(|(_, c)| fits(c))
            .map(|(id, _)| *id)
            .collect();
        let found = amend.with(|s| {
            let certified = s.certified();
            local
                .iter()
                .copied()
                .chain(
                    certified
                        .about(subject)
                        .filter(|c| fits(&c.cert))
                        .map(|c| c.cert.id().0),
                )
                .find(|id| certified.reinstated(id).is_none())
        });
        found.unwrap_or_else(|| local.first().copied())
    }

    /// Stores a validated certificate (file first, then memory) and starts
    /// enforcing it. One already in force by the same issuer about the
    /// same subject for the same kind makes it redundant: [`Stored::Held`],
    /// nothing written. Past [`AGENT_CERTIFICATES_MAX`], one about an agent
    /// is refused; one about a validator never is.
    pub fn store(&self, cert: &SignedCertificate, amend: &StateHandle) -> Result<Stored, String> {
        let id = cert.id().0;
        if self.contains(&id) {
            return Ok(Stored::Held(id));
        }
        let c = &cert.certificate;
        if let Some(held) = self.in_force_of(&c.subject, c.kind(), Some(c.issuer), amend) {
            return Ok(Stored::Held(held));
        }
        let mut known = lock(&self.known);
        if known.by_id.contains_key(&id) {
            return Ok(Stored::Held(id));
        }
        let agent = matches!(c.subject, Subject::Agent { .. });
        if agent && known.agents >= self.agent_cap {
            return Err(format!(
                "this validator already holds agent_certificates_max = {} certificates about agents (certificates about validators are still accepted)",
                self.agent_cap
            ));
        }
        write_atomic(&self.dir.join(file_name(&id)), &cert.encode())
            .map_err(|e| format!("cannot store certificate {id}: {e}"))?;
        known.insert(cert.clone());
        drop(known);
        let c = &cert.certificate;
        if c.subject == Subject::Validator(self.me) {
            tracing::error!(node = %self.me, certificate = %id, kind = %c.kind(), issuer = %c.issuer, "LOCKED DOWN: a validated shutdown certificate names this validator");
        } else {
            tracing::warn!(node = %self.me, certificate = %id, kind = %c.kind(), subject = %c.subject, issuer = %c.issuer, "shutdown certificate validated");
        }
        Ok(Stored::New)
    }

    /// The certificate locking this validator, if any: one it validated
    /// itself or one on the ledger, about it, not reinstated.
    pub fn lockdown(&self, amend: &StateHandle) -> Option<Lockdown> {
        self.in_force_about(&Subject::Validator(self.me), amend)
    }

    /// The certificate excluding validator `node` from signing, if any.
    pub fn excluded(&self, node: NodeId, amend: &StateHandle) -> Option<Digest> {
        self.in_force_about(&Subject::Validator(node), amend)
            .map(|l| l.id)
    }

    /// A certificate about `subject`, validated here or on the ledger, that
    /// no sealed amendment reinstated. One lock of each kind, in the order
    /// used everywhere (known, then the amendment state), and nothing
    /// hashed unless a certificate names `subject`: this runs for every
    /// request and every signer.
    fn in_force_about(&self, subject: &Subject, amend: &StateHandle) -> Option<Lockdown> {
        let local: Vec<(Digest, BreachKind)> = lock(&self.known)
            .about(subject)
            .map(|(id, c)| (*id, c.certificate.kind()))
            .collect();
        let found = amend.with(|s| {
            let certified = s.certified();
            let on_ledger = certified
                .about(subject)
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
    pub fn views(&self, amend: &StateHandle) -> Vec<pb::CertificateView> {
        let mut all: BTreeMap<Digest, SignedCertificate> = lock(&self.known).by_id.clone();
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
        let certified = known
            .about(&Subject::Validator(c.issuer))
            .any(|(_, k)| is_head(&k.certificate.evidence));
        if certified {
            return None;
        }
        known
            .by_id
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

#[cfg(test)]
mod tests {
    use super::*;
    use senatus_genesis::{Key32, Sig64};
    use senatus_quorum::certificate::{Certificate, DriftLocation};
    use senatus_quorum::presentation::Presentation;

    fn node(n: u64) -> NodeId {
        NodeId::new(n).expect("node id")
    }

    fn signed(subject: Subject, evidence: Evidence, issuer: u64, at: u64) -> SignedCertificate {
        SignedCertificate {
            certificate: Certificate {
                subject,
                evidence,
                head_index: 1,
                head_hash: Digest([1; 32]),
                issuer: node(issuer),
                issued_at_ms: at,
            },
            // The store checks nothing: what reaches it was validated.
            signature: Sig64([0; 64]),
        }
    }

    fn agent(actor: &str, at: u64) -> SignedCertificate {
        let presentation = Presentation {
            token_digest: Digest([2; 32]),
            broker: "broker-1".into(),
            params_hash: Digest([3; 32]),
            presented_at_ms: at,
            key: Key32([4; 32]),
            signature: [5; 64],
        };
        signed(
            Subject::Agent {
                tenant: "acme".into(),
                actor: actor.into(),
            },
            Evidence::TokenForged {
                token: vec![6; 8],
                presentation,
            },
            1,
            at,
        )
    }

    fn drift(subject: u64, at: u64) -> SignedCertificate {
        signed(
            Subject::Validator(node(subject)),
            Evidence::PolicyDrift {
                location: DriftLocation::Disk,
                policy_version: 1,
                sealed_digest: Digest([7; 32]),
                observed_digest: Digest([8; 32]),
            },
            subject,
            at,
        )
    }

    #[test]
    fn agents_never_crowd_out_validators_and_a_repeated_offence_adds_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let certs = Certificates {
            me: node(1),
            dir: tmp.path().to_path_buf(),
            known: Mutex::new(Known::default()),
            agent_cap: 3,
        };
        let amend = StateHandle::default();
        for i in 0..3 {
            let c = agent(&format!("agent-{i}"), 10);
            assert_eq!(certs.store(&c, &amend), Ok(Stored::New));
        }
        // Full of agents: the next agent is refused, naming the bound...
        let err = certs
            .store(&agent("agent-9", 10), &amend)
            .expect_err("past the agent bound");
        assert!(err.contains("agent_certificates_max = 3"), "{err}");
        // ...and a validator's breach is still taken.
        let first = drift(2, 10);
        assert_eq!(certs.store(&first, &amend), Ok(Stored::New));
        // The same offence again, by the same issuer: nothing written.
        assert_eq!(
            certs.store(&drift(2, 11), &amend),
            Ok(Stored::Held(first.id().0))
        );
        let again = agent("agent-0", 11);
        assert_eq!(
            certs.store(&again, &amend),
            Ok(Stored::Held(agent("agent-0", 10).id().0))
        );
        assert!(!certs.contains(&again.id().0));
        let files = std::fs::read_dir(tmp.path()).expect("dir").count();
        assert_eq!(files, 4, "three agents and one validator on disk");
        assert_eq!(
            certs.lockdown(&amend),
            None,
            "node 1 is certified by nothing"
        );
        assert_eq!(
            certs.excluded(node(2), &amend),
            Some(first.id().0),
            "node 2 is excluded by its drift"
        );
    }
}
