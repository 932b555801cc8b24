//! Shutdown certificates on the ledger (kind 8) and their reinstatements:
//! derived state, rebuilt from the ledger like the amendment tally. Every
//! validator validates a Certificate entry on apply, identically, so what it
//! changes — a certified validator's votes are refused, a certified agent's
//! later decisions are DENY — depends only on the ledger index (I7). A
//! sealed amendment whose constitution lists a certificate id in
//! `[breach] reinstate` lifts it from that seal's index on.

use std::collections::BTreeMap;

use senatus_genesis::Digest;
use senatus_quorum::certificate::{CERTIFICATE_BYTES_MAX, SignedCertificate, Subject};

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
    /// Ids on the ledger by subject, in ledger order (checked per request:
    /// never a scan of every certificate).
    by_subject: BTreeMap<Subject, Vec<Digest>>,
    /// Certificate id -> ledger index of the seal that reinstated it.
    reinstated: BTreeMap<Digest, u64>,
    /// Vote equivocations seen on apply, awaiting a certificate (the leader
    /// issues it).
    equivocations: Vec<senatus_quorum::amend::Equivocation>,
}

impl Certified {
    /// Records a validated certificate appended at `index`.
    pub fn record(&mut self, index: u64, cert: SignedCertificate) {
        let id = cert.id().0;
        self.by_subject
            .entry(cert.certificate.subject.clone())
            .or_default()
            .push(id);
        self.on_ledger.insert(id, LedgerCertificate { index, cert });
    }

    /// The certificates on the ledger about `subject`, in ledger order.
    pub fn about(&self, subject: &Subject) -> impl Iterator<Item = &LedgerCertificate> {
        self.by_subject
            .get(subject)
            .into_iter()
            .flatten()
            .filter_map(|id| self.on_ledger.get(id))
    }

    /// A certificate on the ledger before `at`, in force at `at`, by
    /// `issuer` about `subject` for `kind`: what makes another such one
    /// redundant (the ledger holds at most one in force per issuer,
    /// subject and kind, so its certificates are bounded however often an
    /// offence is repeated).
    pub fn in_force_of(
        &self,
        issuer: senatus_genesis::NodeId,
        subject: &Subject,
        kind: senatus_quorum::certificate::BreachKind,
        at: u64,
    ) -> Option<&LedgerCertificate> {
        self.about(subject).find(|c| {
            c.index < at
                && c.cert.certificate.issuer == issuer
                && c.cert.certificate.kind() == kind
                && self.in_force(&c.cert.id().0, at)
        })
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
        self.by_subject
            .get(subject)
            .into_iter()
            .flatten()
            .find(|id| {
                self.on_ledger
                    .get(*id)
                    .is_some_and(|c| c.index < at && self.in_force(id, at))
            })
            .copied()
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

    /// Appends this set to a state digest: every certificate on the ledger
    /// by id (id, index), then every reinstatement by id (id, seal index).
    /// Queued equivocations are not state: the leader takes them.
    pub fn encode_into(&self, e: &mut senatus_genesis::codec::Encoder) {
        e.count(self.on_ledger.len());
        for (id, c) in &self.on_ledger {
            e.digest(id).u64(c.index);
        }
        e.count(self.reinstated.len());
        for (id, index) in &self.reinstated {
            e.digest(id).u64(*index);
        }
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

/// The public checks of a certificate under the newest seal of `chain`
/// (its membership and key package, and a broker over genesis and the
/// chain) and a sealed identity `registry` (the agent of a token kind):
/// what every validator and `senatus certificates verify` run.
pub fn check_against_chain(
    cert: &SignedCertificate,
    genesis: &senatus_genesis::Genesis,
    chain: &[senatus_genesis::SignedSeal],
    registry: &senatus_genesis::registry::Registry,
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
        registry,
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
