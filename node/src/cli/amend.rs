//! `senatus amend propose|status`: submit a signed amendment proposal and
//! follow the validators' independent reviews and votes.
//!
//! Exit codes as for the other gate commands: 0 done, 2 usage, file or
//! input error (including a proposal the cluster refuses to admit), 4 the
//! cluster did not answer.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use senatus_genesis::keys::SecretKey;
use senatus_genesis::{Genesis, Key32, PolicyLayer, SignedSeal};
use senatus_proto::v1 as pb;
use senatus_quorum::amend::{Proposal, ProposalId};

use crate::cli::api::{
    ApiArgs, GENESIS_ENV, api_client, api_client_pinned, explain, load_genesis, require_genesis,
};
use crate::cli::gate::{EXIT_CLUSTER, EXIT_USAGE, Failure};

/// Call timeout of the amendment commands.
pub const AMEND_CALL_TIMEOUT_MS: u64 = 15_000;

/// `senatus amend ...`
#[derive(Debug, clap::Subcommand)]
pub enum AmendCommand {
    /// Propose a new policy layer. The proposal names the active seal as
    /// its base, carries the layer's canonical bytes and a justification,
    /// and is signed with KEY: the founding authority's key, a validator's
    /// identity key, or a key the active constitution lists in
    /// amendment.proposers. The cluster appends it to the ledger only if
    /// every validator admits it; each then reviews it against its own
    /// active policy and casts a signed vote.
    Propose {
        /// Public API address of any validator (host:port).
        #[arg(long)]
        api: String,
        /// The proposed policy layer directory (constitution version =
        /// active + 1).
        #[arg(long)]
        policy: PathBuf,
        /// Why the policy should change (recorded on the ledger; at most
        /// 4 KiB).
        #[arg(long)]
        justification: String,
        /// Signing key file: authority.key or a node's identity.key.
        #[arg(long)]
        key: PathBuf,
        /// The chain's genesis.json. The validator's TLS certificate must
        /// verify under it (the public API is TLS pinned to genesis), and
        /// the seal chain the proposal builds on is verified from it.
        #[arg(long, value_name = "PATH", env = GENESIS_ENV, hide_env_values = true)]
        genesis: Option<PathBuf>,
    },
    /// Show proposals on a validator's ledger: status (open, passed,
    /// rejected, expired, superseded) and every vote with its voter,
    /// verdict and reasons.
    Status {
        /// Any validator, and the genesis its TLS certificate must verify
        /// under.
        #[command(flatten)]
        target: ApiArgs,
        /// One proposal id (64 hex digits); default every proposal.
        id: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub(crate) fn request<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(Duration::from_millis(AMEND_CALL_TIMEOUT_MS));
    r
}

/// A failed call as a [`Failure`]: a refused request or a server that is
/// not a validator of the genesis given exits 2, anything else 4.
pub(crate) fn cluster_error(what: &str, api: &str, s: &tonic::Status) -> anyhow::Error {
    let e = explain(s);
    let code = match s.code() {
        _ if e.tls_refused => EXIT_USAGE,
        tonic::Code::InvalidArgument | tonic::Code::NotFound => EXIT_USAGE,
        _ => EXIT_CLUSTER,
    };
    Failure::error(code, format!("{what} on {api}: {}", e.line))
}

/// Reads a signing key file: an identity key or the authority key.
fn read_key(path: &Path) -> anyhow::Result<SecretKey> {
    match SecretKey::read_identity(path) {
        Ok((k, _)) => Ok(k),
        Err(identity_err) => SecretKey::read_authority(path).map_err(|_| {
            anyhow::anyhow!(
                "key file {}: neither an identity nor an authority key: {identity_err}",
                path.display()
            )
        }),
    }
}

/// Runs an amend subcommand.
pub fn run(cmd: &AmendCommand) -> anyhow::Result<()> {
    match cmd {
        AmendCommand::Propose {
            api,
            policy,
            justification,
            key,
            genesis,
        } => propose(
            api,
            policy,
            justification,
            key,
            require_genesis(genesis.as_deref())?,
        ),
        AmendCommand::Status { target, id, json } => {
            status(&target.api, target.genesis_path()?, id.as_deref(), *json)
        }
    }
}

pub(crate) fn propose(
    api: &str,
    policy: &Path,
    justification: &str,
    key: &Path,
    genesis: &Path,
) -> anyhow::Result<()> {
    let layer = PolicyLayer::load_dir(policy)
        .with_context(|| format!("proposed policy layer {}", policy.display()))?;
    let key = read_key(key)?;
    let rt = runtime()?;
    rt.block_on(async {
        let (_, chain) = fetch_chain(api, genesis).await?;
        let active = &chain.last().expect("a verified chain holds seal 0").seal;
        let mut c = api_client(api, genesis)?;
        let created_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let proposal = Proposal {
            base_version: active.version,
            base_seal_digest: active.digest(),
            layer: layer.canonical_bytes(),
            justification: justification.to_string(),
            proposer: Key32(key.public()),
            created_at_ms,
        };
        let signed = proposal
            .sign(key.signing_key())
            .map_err(|e| anyhow::anyhow!("cannot sign the proposal: {e}"))?;
        let id = signed.id();
        let reply = c
            .propose(request(pb::ProposeRequest {
                signed_proposal: signed.encode(),
            }))
            .await
            .map_err(|s| cluster_error("Propose", api, &s))?
            .into_inner();
        println!(
            "proposal {id} recorded at ledger index {}: version {} -> {} (layer {})",
            reply.index,
            active.version,
            layer.constitution().version,
            layer.digest()
        );
        println!(
            "follow the votes: senatus amend status --api {api} --genesis {} {id}",
            genesis.display()
        );
        Ok(())
    })
}

fn parse_id(text: &str) -> anyhow::Result<ProposalId> {
    let d = crate::cli::replay::parse_decision_id(text)
        .map_err(|e| anyhow::anyhow!("proposal id: {e}"))?;
    Ok(ProposalId(d))
}

fn status(api: &str, genesis: &Path, id: Option<&str>, json: bool) -> anyhow::Result<()> {
    let only = id.map(parse_id).transpose()?;
    let rt = runtime()?;
    let reply = rt.block_on(async {
        let mut c = api_client(api, genesis)?;
        c.amend_status(request(pb::AmendStatusRequest {
            proposal_id: only.map(|p| p.0.0.to_vec()).unwrap_or_default(),
        }))
        .await
        .map_err(|s| cluster_error("AmendStatus", api, &s))
        .map(tonic::Response::into_inner)
    })?;
    if json {
        let v: Vec<serde_json::Value> = reply.proposals.iter().map(view_json).collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    if reply.proposals.is_empty() {
        println!("no amendment proposals on the ledger of {api}");
    }
    for p in &reply.proposals {
        let decided = if p.decided_at == 0 {
            String::new()
        } else {
            format!(" at ledger index {}", p.decided_at)
        };
        println!(
            "proposal {} (ledger index {}): {}{decided}",
            hex::encode(&p.id),
            p.ledger_index,
            p.status.to_uppercase()
        );
        println!(
            "  proposer {} ({}); layer {} version {}",
            hex::encode(&p.proposer),
            p.role,
            hex::encode(&p.layer_digest),
            p.proposed_version
        );
        println!("  justification: {}", p.justification);
        if !p.approvers.is_empty() {
            let a: Vec<String> = p.approvers.iter().map(u64::to_string).collect();
            println!("  approvers: {}", a.join(", "));
        }
        for v in &p.votes {
            let why = if v.reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", v.reasons.join(", "))
            };
            println!(
                "  vote of validator {} at ledger index {}: {}{why} ({})",
                v.voter, v.ledger_index, v.verdict, v.effect
            );
        }
    }
    Ok(())
}

fn view_json(p: &pb::ProposalView) -> serde_json::Value {
    serde_json::json!({
        "id": hex::encode(&p.id),
        "ledger_index": p.ledger_index,
        "proposer": hex::encode(&p.proposer),
        "role": p.role,
        "justification": p.justification,
        "layer_digest": hex::encode(&p.layer_digest),
        "proposed_version": p.proposed_version,
        "status": p.status,
        "decided_at": p.decided_at,
        "approvers": p.approvers,
        "votes": p.votes.iter().map(|v| serde_json::json!({
            "voter": v.voter,
            "verdict": v.verdict,
            "reasons": v.reasons,
            "ledger_index": v.ledger_index,
            "effect": v.effect,
        })).collect::<Vec<_>>(),
    })
}

/// `senatus seal ...`
#[derive(Debug, clap::Subcommand)]
pub enum SealCommand {
    /// Fetch a validator's seal chain and verify it from genesis: seal 0
    /// against the genesis document, every later seal's Ed25519 signature
    /// (FROST-produced) under the group key of the seal before it, its
    /// link and its version or epoch step. Prints every seal. Exits 2 if
    /// anything does not verify, 4 if the validator does not answer.
    Chain {
        /// Public API address of any validator (host:port).
        #[arg(long)]
        api: String,
        /// The genesis to verify against. The validator's TLS certificate
        /// must verify under it (the public API is TLS pinned to genesis),
        /// and the genesis it serves must be this one.
        #[arg(long, value_name = "PATH", env = GENESIS_ENV, hide_env_values = true)]
        genesis: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a seal subcommand.
pub fn run_seal(cmd: &SealCommand) -> anyhow::Result<()> {
    let SealCommand::Chain { api, genesis, json } = cmd;
    let genesis = require_genesis(genesis.as_deref())?;
    let rt = runtime()?;
    let (genesis, chain) = rt.block_on(fetch_chain(api, genesis))?;
    let mut out = Vec::new();
    for (i, s) in chain.iter().enumerate() {
        let how = match (&s.signature, i) {
            (None, 0) => "authenticated by the genesis signature".to_string(),
            (Some(sig), _) => {
                let attested = s
                    .attested
                    .as_ref()
                    .expect("verify_chain refuses an unattested later seal");
                let by: Vec<String> = attested
                    .by
                    .iter()
                    .map(|a| a.validator.to_string())
                    .collect();
                format!(
                    "signature {} verifies under the group key {} of seal {}; its ledger head (entry {}, hash {}) attested by [{}], {} of {} needed",
                    hex::encode(sig.0),
                    chain[i - 1].seal.group_key,
                    i - 1,
                    attested.ledger_index,
                    attested.entry_hash,
                    by.join(", "),
                    senatus_genesis::seal::attestation_quorum(chain[i - 1].seal.membership.len()),
                    chain[i - 1].seal.membership.len()
                )
            }
            (None, _) => unreachable!("verify_chain refuses an unsigned later seal"),
        };
        out.push((i, s, how));
    }
    if *json {
        let v: Vec<serde_json::Value> = out
            .iter()
            .map(|(i, s, how)| {
                serde_json::json!({
                    "position": i,
                    "digest": s.seal.digest().to_hex(),
                    "seal": s,
                    "verified": how,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    println!(
        "seal chain of {} ({} seals) verified from genesis {}",
        genesis.body.chain_id,
        chain.len(),
        genesis.digest()
    );
    for (i, s, how) in out {
        let members: Vec<String> = s.seal.membership.iter().map(|v| v.id.to_string()).collect();
        println!(
            "seal {i}: version {} epoch {} digest {}\n  policy {} prev {}\n  threshold {} of [{}]; {how}",
            s.seal.version,
            s.seal.epoch,
            s.seal.digest(),
            s.seal.policy_digest,
            s.seal.prev_seal,
            s.seal.threshold,
            members.join(", ")
        );
    }
    Ok(())
}

/// The cluster's seal chain, verified from the genesis at `genesis_path`,
/// over a connection pinned to that genesis; the genesis the validator
/// serves must be the same document.
pub(crate) async fn fetch_chain(
    api: &str,
    genesis_path: &Path,
) -> anyhow::Result<(Genesis, Vec<SignedSeal>)> {
    let pinned = load_genesis(genesis_path)?;
    let mut c = api_client_pinned(api, pinned.clone())?;
    let chain = c
        .get_seal_chain(request(pb::SealChainRequest {}))
        .await
        .map_err(|s| cluster_error("GetSealChain", api, &s))?
        .into_inner();
    let served: Genesis = serde_json::from_str(&chain.genesis_json)
        .context("the cluster's genesis does not parse")?;
    served
        .verify()
        .map_err(|e| anyhow::anyhow!("the cluster's genesis does not verify: {e}"))?;
    if pinned.digest() != served.digest() {
        anyhow::bail!(
            "{api} serves genesis {}, not {} ({})",
            served.digest(),
            pinned.digest(),
            genesis_path.display()
        );
    }
    let genesis = Genesis::clone(&pinned);
    let seals = chain
        .seals_json
        .iter()
        .map(|s| serde_json::from_str::<SignedSeal>(s))
        .collect::<Result<Vec<_>, _>>()
        .context("the cluster's seal chain does not parse")?;
    let chain = crate::cli::gate::full_chain(&genesis, seals);
    senatus_genesis::seal::verify_chain(&genesis, &chain)
        .map_err(|e| anyhow::anyhow!("the cluster's seal chain does not verify: {e}"))?;
    Ok((genesis, chain))
}
