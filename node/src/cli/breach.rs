//! `senatus certificates list|verify`: the shutdown certificates a
//! validator validated, and an offline check of one certificate with
//! nothing but genesis (and, for token evidence, the seal chain).
//!
//! Exit codes: 0 done (for `verify`: the certificate checks out), 2 usage
//! or file error, 3 the certificate does not check out, 4 the cluster did
//! not answer.

use std::path::{Path, PathBuf};

use senatus_proto::v1 as pb;

use crate::cli::amend::{cluster_error, fetch_chain, request, runtime};
use crate::cli::api::{ApiArgs, api_client};
use crate::cli::gate::{EXIT_REFUSED, EXIT_USAGE, Failure};

/// Exit codes of `senatus certificates`, for `--help`.
pub const CERTIFICATES_EXIT_CODES: &str = "Exit codes: 0 done (verify: the certificate checks out), 2 usage or file error, 3 the certificate does not check out, 4 the cluster did not answer.";

/// `senatus certificates ...`
#[derive(Debug, clap::Subcommand)]
pub enum CertificatesCommand {
    /// List the shutdown certificates a validator has validated (issued
    /// by it, received by broadcast and re-checked, or applied from the
    /// ledger): id, subject, breach kind, issuer, time, the Certificate
    /// ledger entry and any reinstating seal; and whether this validator
    /// is itself locked down.
    List {
        /// The validator, and the genesis its TLS certificate must verify
        /// under.
        #[command(flatten)]
        target: ApiArgs,
        /// Also write each certificate's bytes to DIR/<id>.cert, for
        /// `senatus certificates verify`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify one certificate file offline: its encoding, the issuer's
    /// Ed25519 signature, that the subject fits the evidence, and the
    /// evidence itself (conflicting signed votes, an attested FROST share
    /// that does not verify, a token that does not verify or was presented
    /// with other params). Facts only a validator's own ledger holds (the
    /// hash at a broken index, a nonce's first redemption) are not checked
    /// here.
    Verify {
        /// The certificate file (bytes as PROTOCOL.md section 17).
        file: PathBuf,
        /// The genesis file of the chain.
        #[arg(long)]
        genesis: PathBuf,
        /// A validator to fetch the seal chain from (verified from
        /// genesis, over TLS pinned to it); without it only seal 0 is
        /// known, which is enough for every evidence except tokens issued
        /// under later seals.
        #[arg(long)]
        api: Option<String>,
        /// The sealed policy layer (a directory) whose identity registry
        /// names the agent of a token certificate: its presentations must
        /// verify under that agent's registered key. Its digest must be
        /// one the seal chain sealed. Needed only for agent certificates.
        #[arg(long, value_name = "DIR")]
        policy: Option<PathBuf>,
    },
}

/// Runs a certificates subcommand.
pub fn run(cmd: &CertificatesCommand) -> anyhow::Result<()> {
    match cmd {
        CertificatesCommand::List { target, out, json } => {
            list(&target.api, target.genesis_path()?, out.as_ref(), *json)
        }
        CertificatesCommand::Verify {
            file,
            genesis,
            api,
            policy,
        } => verify(file, genesis, api.as_deref(), policy.as_deref()),
    }
}

fn list(api: &str, genesis: &Path, out: Option<&PathBuf>, json: bool) -> anyhow::Result<()> {
    let rt = runtime()?;
    let reply = rt.block_on(async {
        let mut c = api_client(api, genesis)?;
        c.list_certificates(request(pb::ListCertificatesRequest {}))
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| cluster_error("ListCertificates", api, &s))
    })?;
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::error(EXIT_USAGE, format!("{}: {e}", dir.display())))?;
        for c in &reply.certificates {
            let path = dir.join(format!("{}.cert", hex::encode(&c.id)));
            std::fs::write(&path, &c.certificate)
                .map_err(|e| Failure::error(EXIT_USAGE, format!("{}: {e}", path.display())))?;
        }
    }
    let locked = (!reply.locked_by.is_empty()).then(|| hex::encode(&reply.locked_by));
    if json {
        let certs: Vec<serde_json::Value> = reply
            .certificates
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": hex::encode(&c.id),
                    "subject": c.subject,
                    "kind": c.kind,
                    "issuer": c.issuer,
                    "issued_at_ms": c.issued_at_ms,
                    "ledger_index": c.ledger_index,
                    "reinstated_at": c.reinstated_at,
                    "certificate": hex::encode(&c.certificate),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"locked_by": locked, "certificates": certs})
        );
        return Ok(());
    }
    match &locked {
        Some(id) => println!("{api}: LOCKED DOWN by certificate {id}"),
        None => println!("{api}: not locked down"),
    }
    if reply.certificates.is_empty() {
        println!("no shutdown certificates");
    }
    for c in &reply.certificates {
        let ledger = match c.ledger_index {
            0 => "not on the ledger yet".to_string(),
            i => format!("ledger index {i}"),
        };
        let reinstated = match c.reinstated_at {
            0 => String::new(),
            i => format!("; reinstated by the seal at ledger index {i}"),
        };
        println!(
            "certificate {}\n  {} against {}, issued by validator {} at {} ms; {ledger}{reinstated}",
            hex::encode(&c.id),
            c.kind,
            c.subject,
            c.issuer,
            c.issued_at_ms
        );
    }
    Ok(())
}

fn verify(
    file: &Path,
    genesis: &Path,
    api: Option<&str>,
    policy: Option<&Path>,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::error(EXIT_USAGE, format!("{}: {e}", file.display())))?;
    let refused = |why: String| Failure::error(EXIT_REFUSED, format!("certificate refused: {why}"));
    let cert = crate::breach::decode(&bytes).map_err(refused)?;
    let (genesis, chain) = match api {
        Some(api) => runtime()?.block_on(fetch_chain(api, genesis))?,
        None => {
            let g = senatus_genesis::Genesis::load(genesis).map_err(|e| {
                Failure::error(EXIT_USAGE, format!("genesis {}: {e}", genesis.display()))
            })?;
            let zero = crate::gate::Gate::seal_zero(&g);
            (g, vec![zero])
        }
    };
    let registry = match (policy, cert.certificate.subject.clone()) {
        (Some(dir), _) => {
            let layer = senatus_genesis::PolicyLayer::load_dir(dir).map_err(|e| {
                Failure::error(EXIT_USAGE, format!("policy layer {}: {e}", dir.display()))
            })?;
            let digest = layer.digest();
            if !chain.iter().any(|s| s.seal.policy_digest == digest) {
                return Err(Failure::error(
                    EXIT_USAGE,
                    format!(
                        "policy layer {} has digest {digest}, which no seal of this chain sealed",
                        dir.display()
                    ),
                ));
            }
            layer.registry().clone()
        }
        (None, senatus_quorum::certificate::Subject::Agent { tenant, actor }) => {
            return Err(Failure::error(
                EXIT_USAGE,
                format!(
                    "certificate {} is about agent {tenant}/{actor}: give --policy DIR, the sealed layer whose registry holds its key",
                    cert.id()
                ),
            ));
        }
        (None, senatus_quorum::certificate::Subject::Validator(_)) => {
            senatus_genesis::registry::Registry::default()
        }
    };
    crate::breach::check_against_chain(&cert, &genesis, &chain, &registry).map_err(refused)?;
    let c = &cert.certificate;
    println!(
        "certificate {} verifies: {} against {}, signed by validator {} at {} ms over its ledger head #{}:{}",
        cert.id(),
        c.kind(),
        c.subject,
        c.issuer,
        c.issued_at_ms,
        c.head_index,
        c.head_hash
    );
    Ok(())
}
