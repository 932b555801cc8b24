//! `senatus replay DECISION_ID`: forensic replay of one decision from the
//! ledger.
//!
//! The ledger entry of a decision batch fixes everything a token says
//! beyond the evaluation itself (issue time, lifetime, policy version, seal,
//! epoch; docs/PROTOCOL.md section 13), so an auditor who holds genesis, the
//! seal chain, the sealed policy layer and the ledger can rebuild the
//! decision, the token payload (the Merkle leaf), the batch's Merkle root
//! and the exact message the validators threshold-signed, and compare them
//! with what was issued. Nothing here trusts the node it reads from: the
//! chain is verified from genesis through the decision's entry (and on to
//! the head), the seal is looked up in a verified seal chain, and the policy
//! layer must hash to that seal's digest.
//!
//! Exit codes: 0 replayed (and, with a token, byte-identical to it), 2
//! usage, input or trust-material error, 3 the issued token differs from the
//! replay, 4 the node did not answer.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use ed25519_dalek::Signature;
use senatus_genesis::{Digest, Genesis, LedgerIndex, PolicyLayer, SignedSeal};
use senatus_quorum::auth::SignedRequest;
use senatus_quorum::batch::{BuiltBatch, DecisionBatch};
use senatus_quorum::evaluate::Evaluator;
use senatus_quorum::request::DecisionRequest;
use senatus_quorum::token::{self, Token, TokenPayload};

use crate::cli::gate::{EXIT_CLUSTER, EXIT_REFUSED, EXIT_USAGE, Failure};
use crate::ledger::{ChainVerifier, EntryKind, LedgerEntry};

/// Help text appended to `senatus replay --help`.
pub const REPLAY_EXIT_CODES: &str = "\
Exit codes:
  0  the decision was rebuilt from a ledger verified from genesis; with
     --token/--token-file, the issued token is byte-identical to the replay
     (payload, Merkle root and proof) and its signature verifies under the
     epoch's group key
  2  usage, file or trust-material error; the decision id is not in the
     ledger; the ledger, seal chain or policy layer does not verify; the
     node is not a validator of --genesis (TLS refused)
  3  the issued token DIFFERS from the replay (the line names the field)
  4  the node did not answer";

/// `senatus replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The decision id (64 hex digits), as `senatus decide` prints it and
    /// every token carries.
    pub decision_id: String,
    /// The genesis to replay against (its signature is checked first).
    /// With --api the connection is TLS pinned to it too: the validator's
    /// certificate must verify under it.
    #[arg(long)]
    pub genesis: PathBuf,
    /// The seal chain (seals.json from `senatus broker fetch-chain`).
    /// Without it only seal 0 (from genesis) is known.
    #[arg(long)]
    pub seals: Option<PathBuf>,
    /// The policy layer genesis sealed (version 1). Default: `policy/`
    /// beside the genesis file. Later versions, and the shutdown
    /// certificates that make a request DENY, are taken from the verified
    /// ledger itself. A directory holding the decision's own sealed layer
    /// is accepted too.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Read the ledger from a running validator (host:port)...
    #[arg(long, conflicts_with = "file", required_unless_present = "file")]
    pub api: Option<String>,
    /// ...or from an export file (`senatus ledger export`).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// With --api: the caller's key file (auditor or operator, `senatus
    /// keygen`); ledger reads are signed (docs/PROTOCOL.md 10.2).
    #[arg(long, value_name = "KEY_FILE", env = crate::cli::api::KEY_ENV, hide_env_values = true)]
    pub key: Option<PathBuf>,
    /// The token that was issued for this decision (hex text), to compare
    /// byte for byte with the replay.
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the issued token's text.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The decision found in the ledger, and the chain that was verified.
struct Found {
    entry: LedgerEntry,
    batch: DecisionBatch,
    position: u32,
}

/// What a replay rebuilt.
#[derive(Debug)]
pub struct Replayed {
    /// Ledger index of the decision batch entry.
    pub ledger_index: u64,
    /// Its hash.
    pub entry_hash: Digest,
    /// The request's position in the batch.
    pub position: u32,
    /// Requests in the batch.
    pub batch_len: usize,
    /// The request as committed, with its agent's signature.
    pub request: SignedRequest,
    /// Who asked: the registered agent whose signature verifies (its name),
    /// or why the sealed registry refuses it.
    pub asked_by: Result<String, String>,
    /// The batch, evaluated again.
    pub built: BuiltBatch,
    /// The seal the batch was decided under.
    pub seal: SignedSeal,
    /// Last ledger index the chain was verified to.
    pub verified_to: u64,
}

impl Replayed {
    /// The rebuilt token payload.
    pub fn payload(&self) -> &TokenPayload {
        &self.built.tokens.payloads()[self.position as usize]
    }
}

/// Parses a decision id: exactly 64 hex digits.
pub fn parse_decision_id(text: &str) -> anyhow::Result<Digest> {
    let bytes = hex::decode(text.trim())
        .map_err(|e| anyhow::anyhow!("decision id {text:?} is not hex: {e}"))?;
    let a: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("decision id is {} bytes, not 32", b.len()))?;
    Ok(Digest(a))
}

/// Runs `senatus replay`.
pub fn run(a: &ReplayArgs) -> anyhow::Result<()> {
    let id = parse_decision_id(&a.decision_id)?;
    let genesis = Genesis::load(&a.genesis)
        .map_err(|e| anyhow::anyhow!("genesis {}: {e}", a.genesis.display()))?;
    let chain = crate::cli::gate::read_seal_chain(&genesis, a.seals.as_deref())?;
    senatus_genesis::seal::verify_chain(&genesis, &chain)
        .map_err(|e| anyhow::anyhow!("seal chain does not verify: {e}"))?;
    let issued = match (&a.token, &a.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("token file {}", path.display()))?,
        ),
        (None, None) => None,
    };
    let issued = issued
        .map(|t| {
            Token::from_text(&t).map_err(|e| {
                Failure::error(EXIT_REFUSED, format!("issued token is malformed: {e}"))
            })
        })
        .transpose()?;
    let policy_dir = match &a.policy {
        Some(p) => p.clone(),
        None => a
            .genesis
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("policy"),
    };
    // With the layer genesis sealed, every later sealed layer and every
    // shutdown certificate comes from the verified ledger (as on a
    // validator); without it, the directory must be the decision's own.
    let mut amend = PolicyLayer::load_dir(&policy_dir)
        .ok()
        .filter(|l| l.digest() == genesis.body.policy_digest)
        .map(|layer| {
            crate::amend::AmendState::new(
                std::sync::Arc::new(layer),
                senatus_genesis::Seal::genesis(&genesis),
                genesis.body.authority_key,
            )
            .map(|s| s.with_genesis(genesis.clone()))
        })
        .transpose()
        .map_err(|e| anyhow::anyhow!("amendment state over genesis: {e}"))?;
    let key = match &a.api {
        Some(_) => Some(crate::cli::api::read_role_key(
            a.key.as_deref(),
            &crate::cli::ledger::READER_ROLES,
            "replay --api",
        )?),
        None => None,
    };
    let (found, verified_to) = find(
        &genesis,
        id,
        a.api.as_deref().zip(key.as_ref()),
        a.file.as_deref(),
        amend.as_mut(),
    )?;
    let replayed = rebuild(
        &genesis,
        &chain,
        &policy_dir,
        amend.as_ref(),
        found,
        verified_to,
    )?;
    if replayed.payload().decision_id != id {
        // `find` matched the id; a different one here is a broken build.
        panic!(
            "replay of decision {id} rebuilt decision {}",
            replayed.payload().decision_id
        );
    }
    let comparison = issued.as_ref().map(|t| compare(&replayed, t)).transpose()?;
    print(&replayed, comparison.as_ref(), a.json);
    Ok(())
}

/// Streams the ledger (from a node or an export file), verifying the chain
/// from genesis to the end, and returns the batch that holds decision `id`.
fn find(
    genesis: &Genesis,
    id: Digest,
    api: Option<(&str, &senatus_genesis::keys::SecretKey)>,
    file: Option<&Path>,
    mut amend: Option<&mut crate::amend::AmendState>,
) -> anyhow::Result<(Found, u64)> {
    let gd = genesis.digest();
    let mut chain = ChainVerifier::new(gd);
    let mut found: Option<Found> = None;
    let mut visit = |e: LedgerEntry, _: Option<Digest>| -> anyhow::Result<()> {
        chain
            .push(&e)
            .map_err(|err| anyhow::anyhow!("ledger does not verify: {err}"))?;
        if let Some(st) = amend.as_deref_mut() {
            st.apply(e.index, e.kind, &e.payload).map_err(|r| {
                anyhow::anyhow!(
                    "ledger index {} ({}) is on the ledger but does not apply: {r}",
                    e.index,
                    e.kind
                )
            })?;
        }
        if found.is_some() || e.kind != EntryKind::Decision {
            return Ok(());
        }
        let batch = DecisionBatch::decode(&e.payload)
            .map_err(|err| anyhow::anyhow!("ledger index {}: {err}", e.index))?;
        let ids = (0u32..).take(batch.requests.len());
        for position in ids {
            if token::decision_id(LedgerIndex(e.index), &e.hash, position) == id {
                found = Some(Found {
                    entry: e,
                    batch,
                    position,
                });
                break;
            }
        }
        Ok(())
    };
    match (api, file) {
        (Some((api, key)), _) => {
            let rt = crate::cli::ledger::runtime()?;
            let pinned = std::sync::Arc::new(genesis.clone());
            let (head, _) = rt
                .block_on(crate::cli::ledger::fetch_ledger(
                    api, pinned, key, &mut visit,
                ))
                .map_err(
                    |e| match e.downcast_ref::<crate::cli::api::ApiCallFailed>() {
                        // Not a validator of this genesis: the auditor's trust
                        // material does not fit this node (exit 2).
                        Some(f) if f.why.tls_refused => {
                            Failure::error(EXIT_USAGE, format!("{e:#}"))
                        }
                        Some(_) => Failure::error(EXIT_CLUSTER, format!("{e:#}")),
                        None => e,
                    },
                )?;
            if head.genesis_digest != gd.0 {
                bail!(
                    "node {api} serves genesis {}, not {gd}",
                    hex::encode(&head.genesis_digest)
                );
            }
        }
        (None, Some(path)) => {
            crate::cli::ledger::read_export(path, gd, |e| visit(e, None))?;
        }
        (None, None) => bail!("give --api or --file"),
    }
    let verified_to = chain.head().index;
    let found = found.ok_or_else(|| {
        anyhow::anyhow!(
            "decision {id} is not in the ledger (verified from genesis to index {verified_to})"
        )
    })?;
    Ok((found, verified_to))
}

/// The seal a batch names must carry the version and epoch it names.
fn check_seal(found: &Found, seal: &SignedSeal) -> anyhow::Result<()> {
    let b = &found.batch;
    if seal.seal.version != b.policy_version || seal.seal.epoch != b.epoch {
        bail!(
            "ledger index {} names policy version {} epoch {}, but seal {} is version {} epoch {}",
            found.entry.index,
            b.policy_version,
            b.epoch,
            b.seal_digest,
            seal.seal.version,
            seal.seal.epoch
        );
    }
    Ok(())
}

/// Rebuilds the decision under the seal and policy its batch names.
fn rebuild(
    genesis: &Genesis,
    chain: &[SignedSeal],
    policy_dir: &Path,
    amend: Option<&crate::amend::AmendState>,
    found: Found,
    verified_to: u64,
) -> anyhow::Result<Replayed> {
    let b = &found.batch;
    // The layer and the certified agents from the verified ledger, as on a
    // validator; else the seal from the chain given and the layer from the
    // directory given, which must be the sealed one.
    let (seal, evaluator, barred) = match amend.and_then(|s| s.sealed(&b.seal_digest)) {
        Some(sealed) => (
            sealed.seal.clone(),
            sealed.evaluator.clone(),
            amend
                .map(|s| s.certified().agents_at(found.entry.index))
                .unwrap_or_default(),
        ),
        None => {
            let seal = chain
                .iter()
                .find(|s| s.seal.digest() == b.seal_digest)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "ledger index {} was decided under seal {}, which is not in the seal chain \
                         (give the chain with --seals)",
                        found.entry.index,
                        b.seal_digest
                    )
                })?
                .clone();
            let layer = PolicyLayer::load_dir(policy_dir)
                .map_err(|e| anyhow::anyhow!("policy layer {}: {e}", policy_dir.display()))?;
            if layer.digest() != seal.seal.policy_digest {
                bail!(
                    "policy layer {} has digest {}, but policy version {} was sealed with digest {}",
                    policy_dir.display(),
                    layer.digest(),
                    seal.seal.version,
                    seal.seal.policy_digest
                );
            }
            let evaluator =
                Evaluator::new(&layer).map_err(|e| anyhow::anyhow!("policy layer: {e}"))?;
            (seal, std::sync::Arc::new(evaluator), Default::default())
        }
    };
    check_seal(&found, &seal)?;
    let built = b
        .build_barred(
            &evaluator,
            genesis.digest(),
            LedgerIndex(found.entry.index),
            found.entry.hash,
            &seal.seal.group_key,
            &|r| {
                barred
                    .get(&(r.tenant.clone(), r.actor.clone()))
                    .map(|id| format!("senatus.certificate.{id}"))
            },
            &senatus_quorum::auth::VerifyAll,
        )
        .map_err(|e| anyhow::anyhow!("ledger index {}: {e}", found.entry.index))?;
    let request = b.requests[found.position as usize].clone();
    let asked_by = evaluator
        .authenticate(
            &request,
            &genesis.digest(),
            b.issued_at_ms,
            &senatus_quorum::auth::VerifyAll,
        )
        .map(|id| id.name.clone())
        .map_err(|e| e.to_string());
    Ok(Replayed {
        ledger_index: found.entry.index,
        entry_hash: found.entry.hash,
        position: found.position,
        batch_len: b.requests.len(),
        request,
        asked_by,
        built,
        seal,
        verified_to,
    })
}

/// How the issued token compared with the replay (only built when equal).
#[derive(Debug)]
pub struct Comparison {
    /// Length of the identical payload encoding.
    pub payload_bytes: usize,
    /// The issued token's digest (what a redemption records).
    pub token_digest: Digest,
}

fn differs(what: impl std::fmt::Display) -> anyhow::Error {
    Failure::error(
        EXIT_REFUSED,
        format!("replay MISMATCH: the issued token {what}"),
    )
}

/// Compares an issued token with the replay, byte for byte, and checks its
/// signature over the replayed batch message.
fn compare(r: &Replayed, t: &Token) -> anyhow::Result<Comparison> {
    let mine = r.payload();
    if t.payload != *mine {
        let field = first_difference(&t.payload, mine);
        return Err(differs(format!("differs from the replay in field {field}")));
    }
    let (a, b) = (t.payload.encode(), mine.encode());
    if a != b {
        // Equal fields but different bytes: the encoding is not canonical.
        panic!("equal token payloads encode differently");
    }
    let tree = r.built.tokens.tree();
    if t.leaf_count != tree.leaf_count() || t.leaf_index != r.position {
        return Err(differs(format!(
            "is leaf {} of {}, the replay has leaf {} of {}",
            t.leaf_index,
            t.leaf_count,
            r.position,
            tree.leaf_count()
        )));
    }
    if t.root != r.built.tokens.root() {
        return Err(differs(format!(
            "carries Merkle root {}, the replay {}",
            t.root,
            r.built.tokens.root()
        )));
    }
    let proof = tree
        .proof(r.position)
        .map_err(|e| anyhow::anyhow!("Merkle proof of leaf {}: {e}", r.position))?;
    if t.proof != proof {
        return Err(differs("carries a different Merkle proof"));
    }
    let key = senatus_genesis::ed25519::verifying_key(&r.seal.seal.group_key.0)
        .map_err(|e| anyhow::anyhow!("group key of seal {}: {e}", r.seal.seal.digest()))?;
    key.verify_strict(&r.built.message, &Signature::from_bytes(&t.signature))
        .map_err(|_| {
            differs(format!(
                "signature does not verify over the replayed batch message under the epoch {} group key",
                r.seal.seal.epoch
            ))
        })?;
    Ok(Comparison {
        payload_bytes: a.len(),
        token_digest: t.digest(),
    })
}

/// Names the first field in which two payloads differ.
fn first_difference(a: &TokenPayload, b: &TokenPayload) -> &'static str {
    let fields: [(&'static str, bool); 17] = [
        ("genesis_digest", a.genesis_digest == b.genesis_digest),
        ("decision_id", a.decision_id == b.decision_id),
        ("ledger_index", a.ledger_index == b.ledger_index),
        ("entry_hash", a.entry_hash == b.entry_hash),
        ("position", a.position == b.position),
        ("outcome", a.outcome == b.outcome),
        ("surface", a.surface == b.surface),
        ("action", a.action == b.action),
        ("tenant", a.tenant == b.tenant),
        ("actor", a.actor == b.actor),
        ("params_digest", a.params_digest == b.params_digest),
        ("policy_version", a.policy_version == b.policy_version),
        ("seal_digest", a.seal_digest == b.seal_digest),
        ("epoch", a.epoch == b.epoch),
        ("nonce", a.nonce == b.nonce),
        ("issued_at_ms", a.issued_at_ms == b.issued_at_ms),
        ("expires_at_ms", a.expires_at_ms == b.expires_at_ms),
    ];
    fields
        .iter()
        .find(|(_, same)| !same)
        .map_or("(none)", |(name, _)| name)
}

fn request_json(r: &DecisionRequest) -> serde_json::Value {
    serde_json::json!({
        "surface": r.surface,
        "action": r.action,
        "actor": r.actor,
        "tenant": r.tenant,
        "params": r.params,
        "context": {
            "uncertainty_permille": r.context.uncertainty_permille,
            "resources": r.context.resources,
            "external_endpoints": r.context.external_endpoints,
        },
        "idempotency_key": r.idempotency_key,
    })
}

fn print(r: &Replayed, c: Option<&Comparison>, json: bool) {
    let p = r.payload();
    let d = &r.built.decisions[r.position as usize];
    let payload = p.encode();
    let findings: Vec<String> = d.findings.iter().map(|f| format!("{f:?}")).collect();
    if json {
        let v = serde_json::json!({
            "decision_id": p.decision_id.to_hex(),
            "ledger_index": r.ledger_index,
            "entry_hash": r.entry_hash.to_hex(),
            "position": r.position,
            "batch_requests": r.batch_len,
            "chain_verified_to": r.verified_to,
            "request": request_json(&r.request.request),
            "signed_at_ms": r.request.signed_at_ms,
            "agent_key": r.request.key.to_string(),
            "signature": hex::encode(r.request.signature),
            "asked_by": r.asked_by.as_ref().ok(),
            "signature_refused": r.asked_by.as_ref().err(),
            "policy_version": p.policy_version.0,
            "seal_digest": p.seal_digest.to_hex(),
            "epoch": p.epoch.0,
            "outcome": p.outcome.as_str(),
            "reasons": d.reasons,
            "findings": findings,
            "payload": hex::encode(&payload),
            "leaf_hash": p.leaf_hash().to_hex(),
            "merkle_root": r.built.tokens.root().to_hex(),
            "signed_message": hex::encode(&r.built.message),
            "issued_token": c.map(|c| serde_json::json!({
                "identical": true,
                "payload_bytes": c.payload_bytes,
                "token_digest": c.token_digest.to_hex(),
            })),
        });
        println!("{v}");
        return;
    }
    println!("decision {}", p.decision_id);
    println!(
        "ledger: index {} entry {} position {} of {}; chain verified from genesis to index {}",
        r.ledger_index, r.entry_hash, r.position, r.batch_len, r.verified_to
    );
    println!("request: {}", request_json(&r.request.request));
    match &r.asked_by {
        Ok(name) => println!(
            "asked by: agent {name} (key {}), signed at {} ms; the signature verifies under the sealed registry",
            r.request.key, r.request.signed_at_ms
        ),
        Err(why) => println!("asked by: nobody the sealed registry accepts: {why}"),
    }
    println!(
        "policy: version {} seal {} epoch {}",
        p.policy_version, p.seal_digest, p.epoch
    );
    println!("outcome: {}", p.outcome);
    println!("reasons: {}", d.reasons.join(", "));
    if !findings.is_empty() {
        println!("findings: {}", findings.join(", "));
    }
    println!(
        "token payload ({} bytes): {}",
        payload.len(),
        hex::encode(&payload)
    );
    println!("leaf hash: {}", p.leaf_hash());
    println!("merkle root: {}", r.built.tokens.root());
    println!("signed message: {}", hex::encode(&r.built.message));
    match c {
        Some(c) => println!(
            "issued token: byte-identical to the replay ({} payload bytes, same root and proof); \
             signature verifies under the epoch {} group key; token digest {}",
            c.payload_bytes, p.epoch, c.token_digest
        ),
        None => println!("issued token: not given (--token-file compares it byte for byte)"),
    }
}
