//! `senatus decide` and `senatus broker fetch-chain|verify|redeem`: the
//! governed agent's and the broker's side of the publish gate, over the
//! public API.
//!
//! Fail closed throughout: a request that does not validate is refused
//! locally, a token that does not verify offline is refused without
//! contacting the cluster, and a redemption that does not come back
//! confirmed (unreachable cluster, timeout, replayed nonce, a reply for
//! another nonce) is a denial. Every network call has a bounded connect
//! timeout and a bounded call timeout.
//!
//! Exit codes (see [`EXIT_USAGE`], [`EXIT_REFUSED`], [`EXIT_CLUSTER`]):
//! 0 success (for `decide`: any decision, PERMIT, DENY or SILENCE), 2 usage,
//! input, file or trust-material errors, 3 token refused offline, 4 the
//! cluster did not answer as needed (unreachable, no quorum, timeout,
//! redemption refused).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use senatus_genesis::document::GENESIS_BYTES_MAX;
use senatus_genesis::{Genesis, Seal, SignedSeal};
use senatus_proto::reason::{Reason, reason_of};
use senatus_proto::v1 as pb;
use senatus_quorum::broker::{Broker, Expectation, VerifiedToken, VerifyError};
use senatus_quorum::request::{AgentContext, DecisionRequest, PARAMS_BYTES_WIRE_MAX};
use senatus_quorum::token::{DecodeError, TOKEN_TEXT_BYTES_MAX, Token};
use senatus_quorum::{canonical_params, params_digest};
use serde::Deserialize;

use crate::cli::api::{
    ApiArgs, GENESIS_ENV, KEY_ENV, api_client, api_client_pinned, explain, load_genesis,
    read_role_key,
};
use senatus_genesis::registry::Role;

/// Exit code for usage, input, file and trust-material errors (and for a
/// request refused locally by validation).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a token refused by offline verification.
pub const EXIT_REFUSED: u8 = 3;
/// Exit code when the cluster did not answer as needed: unreachable, no
/// quorum, timeout, an error status, or a redemption refused.
pub const EXIT_CLUSTER: u8 = 4;

/// Connect timeout of every API call these commands make (TCP and TLS).
pub const GATE_CONNECT_TIMEOUT_MS: u64 = crate::cli::api::API_CONNECT_TIMEOUT_MS;
/// Default call timeout (`--timeout-ms`).
pub const GATE_CALL_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Largest accepted `--timeout-ms`.
pub const GATE_CALL_TIMEOUT_MS_MAX: u64 = 120_000;
/// Largest request file (`decide --file`) and params file read.
pub const INPUT_FILE_BYTES_MAX: u64 = 4 * PARAMS_BYTES_WIRE_MAX as u64;
/// Largest seals file read, and largest seal chain reply accepted.
pub const SEALS_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Slack for whitespace around a token in a token file.
const TOKEN_FILE_SLACK_BYTES: u64 = 4096;

/// Help text appended to `senatus decide --help`.
pub const DECIDE_EXIT_CODES: &str = "\
Exit codes:
  0  the cluster answered; PERMIT, DENY and SILENCE are all answers
  2  usage, file or input error; an invalid request is refused here, naming
     the field, without contacting the cluster; no genesis given, or the
     server is not a validator of that genesis (TLS refused: nothing sent)
  4  the cluster did not answer: unreachable, no quorum (UNAVAILABLE: no
     token was issued), timeout, or another gRPC error (code and message
     are printed)";

const FETCH_EXIT_CODES: &str = "\
Exit codes:
  0  genesis and seal chain verified and saved
  2  usage or file error, no genesis held, the server is not a validator of
     the genesis held (TLS refused), or the fetched material does not verify
     or is for another genesis (nothing is written then)
  4  the cluster did not answer (unreachable, timeout, gRPC error)";

const VERIFY_EXIT_CODES: &str = "\
Exit codes:
  0  token OK: an authentic PERMIT for exactly this surface, action, tenant
     and params, within its validity window
  2  usage, file or trust-material error (genesis or seal chain does not
     verify, params are not JSON)
  3  token REFUSED; the line names the check that failed (malformed,
     another chain, bad signature, not PERMIT, wrong surface/action/tenant,
     params differ, expired, ...)";

const REDEEM_EXIT_CODES: &str = "\
Exit codes:
  0  redeemed: the nonce is consumed at the printed ledger index; execute
  2  usage, file or trust-material error, or the server is not a validator
     of --genesis (TLS refused) (nothing was redeemed)
  3  redemption DENIED: the token, or the agent's presentation (another
     token, another broker, other params text), is refused offline
     (cluster not contacted)
  4  redemption DENIED by or for lack of the cluster: unreachable, timeout,
     no quorum, nonce already redeemed (ALREADY_EXISTS or
     FAILED_PRECONDITION), this broker or the presentation refused
     (UNAUTHENTICATED, PERMISSION_DENIED), a quota reached
     (RESOURCE_EXHAUSTED), or any other error. Never execute on non-zero.";

/// A failure with its exit code; `main` prints the message and exits with
/// the code. Errors without one exit with [`EXIT_USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// One line saying what failed.
    pub message: String,
}

impl Failure {
    /// An [`anyhow::Error`] carrying this failure.
    pub fn error(code: u8, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Failure {
            code,
            message: message.into(),
        })
    }
}

/// The exit code for an error returned by a `senatus` command.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.downcast_ref::<Failure>()
        .map(|f| f.code)
        .unwrap_or(EXIT_USAGE)
}

/// `senatus decide`.
#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// Any validator (it forwards to the leader), and the genesis its TLS
    /// certificate must verify under.
    #[command(flatten)]
    pub target: ApiArgs,
    /// The request as JSON: {"surface","action","actor","tenant",
    /// "params":{...}, "context":{"uncertainty_permille":N,
    /// "resources":{NAME:AMOUNT}, "external_endpoints":[...]},
    /// "idempotency_key":"..."}. Unknown fields are refused; context and
    /// idempotency_key may be left out.
    #[arg(long, conflicts_with_all = ["surface", "action", "actor", "tenant", "params",
        "uncertainty", "resource", "endpoint", "idempotency_key"])]
    pub file: Option<PathBuf>,
    /// Execution surface, e.g. payments.
    #[arg(long, required_unless_present = "file")]
    pub surface: Option<String>,
    /// Action on that surface, e.g. transfer.
    #[arg(long, required_unless_present = "file")]
    pub action: Option<String>,
    /// The agent asking.
    #[arg(long, required_unless_present = "file")]
    pub actor: Option<String>,
    /// The tenant the action is for.
    #[arg(long, required_unless_present = "file")]
    pub tenant: Option<String>,
    /// Action params, a JSON object.
    #[arg(long, default_value = "{}")]
    pub params: String,
    /// The agent's uncertainty about the action, 0..=1000 permille.
    #[arg(long, default_value_t = 0)]
    pub uncertainty: u16,
    /// Declared resource use NAME=AMOUNT (repeatable).
    #[arg(long = "resource", value_name = "NAME=AMOUNT")]
    pub resource: Vec<String>,
    /// An external endpoint the action will reach (repeatable).
    #[arg(long = "endpoint", value_name = "URL")]
    pub endpoint: Vec<String>,
    /// Makes a retried request the same request. Without one a random key
    /// is generated and printed, so a retry can reuse it.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// The agent's key file (`senatus keygen --role agent`); its public key
    /// must be sealed in the registry as an agent of --tenant allowed to act
    /// as --actor. The request is signed with it (docs/PROTOCOL.md 10.1).
    #[arg(long, value_name = "KEY_FILE", env = KEY_ENV, hide_env_values = true)]
    pub key: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the token text to this file (refused if it exists).
    #[arg(long)]
    pub token_out: Option<PathBuf>,
    /// Call timeout in milliseconds (connecting is bounded separately at
    /// 3 s).
    #[arg(long, default_value_t = GATE_CALL_TIMEOUT_MS_DEFAULT)]
    pub timeout_ms: u64,
}

/// `senatus broker ...`
#[derive(Debug, clap::Subcommand)]
pub enum BrokerCommand {
    /// Fetch genesis and the seal chain from a validator, verify them
    /// (genesis signature, every seal from genesis on) and save
    /// DIR/genesis.json (the exact bytes sealed) and DIR/seals.json (a JSON
    /// array of SignedSeal, seal 0 first) for offline verification. The
    /// broker must already hold genesis, obtained out of band (--genesis,
    /// SENATUS_GENESIS, or DIR/genesis.json from an earlier fetch): the
    /// connection is TLS pinned to it, and the served genesis must be the
    /// same document (same digest): a broker never swaps its root of trust.
    /// seals.json is replaced atomically.
    #[command(after_help = FETCH_EXIT_CODES)]
    FetchChain(FetchChainArgs),
    /// Verify a governance token fully offline, with nothing but genesis
    /// and the seal chain: authentic (threshold signature under the sealed
    /// epoch key, inclusion proof, sealed policy version), a PERMIT, for
    /// exactly this surface, action, tenant and params, and within its
    /// validity window. Prints "token OK: ..." or "token REFUSED: <reason>".
    #[command(after_help = VERIFY_EXIT_CODES)]
    Verify(VerifyArgs),
    /// Verify a token offline (as `verify`; refused tokens never reach the
    /// cluster) and that the agent's presentation hands it to this broker
    /// with exactly --params, then redeem its nonce through the cluster,
    /// exactly once, with this broker's signed call (--key).
    /// Execute the action only on exit 0. An unreachable cluster, a timeout
    /// or a nonce already redeemed is "redemption DENIED": fail closed.
    #[command(after_help = REDEEM_EXIT_CODES)]
    Redeem(RedeemArgs),
}

/// Arguments of `senatus broker fetch-chain`.
#[derive(Debug, clap::Args)]
pub struct FetchChainArgs {
    /// Public API address of any validator (host:port).
    #[arg(long)]
    pub api: String,
    /// Directory to save into (created if absent).
    #[arg(long)]
    pub out: PathBuf,
    /// The genesis this broker holds, obtained out of band (e.g. from the
    /// ceremony). Default: DIR/genesis.json from an earlier fetch. The
    /// validator's TLS certificate must verify under it, and the genesis it
    /// serves must be the same; with both, they must agree.
    #[arg(long, value_name = "PATH", env = GENESIS_ENV, hide_env_values = true)]
    pub genesis: Option<PathBuf>,
    /// Call timeout in milliseconds.
    #[arg(long, default_value_t = GATE_CALL_TIMEOUT_MS_DEFAULT)]
    pub timeout_ms: u64,
}

/// Trust material, token and expectation shared by `verify` and `redeem`.
#[derive(Debug, clap::Args)]
pub struct TokenCheckArgs {
    /// The genesis this broker trusts (genesis.json). `redeem` also pins
    /// its TLS connection to it: the validator's certificate must verify
    /// under the identity key it lists.
    #[arg(long)]
    pub genesis: PathBuf,
    /// The seal chain (seals.json from fetch-chain: a JSON array of
    /// SignedSeal, with or without seal 0). Without it only seal 0 (from
    /// genesis) is known.
    #[arg(long)]
    pub seals: Option<PathBuf>,
    #[command(flatten)]
    pub token: TokenInput,
    /// The surface this broker guards.
    #[arg(long)]
    pub surface: String,
    /// The action about to run.
    #[arg(long)]
    pub action: String,
    /// The tenant it runs for.
    #[arg(long)]
    pub tenant: String,
    #[command(flatten)]
    pub params: ParamsInput,
    /// Check at this time (Unix milliseconds) instead of the system clock.
    #[arg(long)]
    pub now_ms: Option<u64>,
}

/// A token, given inline or in a file.
#[derive(Debug, clap::Args)]
pub struct TokenInput {
    /// The token text (hex).
    #[arg(
        long,
        conflicts_with = "token_file",
        required_unless_present = "token_file"
    )]
    pub token: Option<String>,
    /// A file holding the token text.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// The params of the action, given inline or in a file.
#[derive(Debug, clap::Args)]
pub struct ParamsInput {
    /// The params the action runs with, a JSON object. Verifying a token
    /// compares their values (key order and whitespace do not matter); a
    /// presentation binds this exact text, byte for byte.
    #[arg(
        long,
        conflicts_with = "params_file",
        required_unless_present = "params_file"
    )]
    pub params: Option<String>,
    /// A file holding the params JSON text.
    #[arg(long)]
    pub params_file: Option<PathBuf>,
}

/// Arguments of `senatus present`.
#[derive(Debug, clap::Args)]
pub struct PresentArgs {
    /// The agent's key file: the agent the token names (its tenant and
    /// actor), as sealed in the registry.
    #[arg(long, value_name = "KEY_FILE", env = KEY_ENV, hide_env_values = true)]
    pub key: Option<PathBuf>,
    /// The registered name of the broker the token is handed to (e.g.
    /// broker-1); only that broker can redeem it.
    #[arg(long)]
    pub broker: String,
    #[command(flatten)]
    pub token: TokenInput,
    #[command(flatten)]
    pub params: ParamsInput,
    /// Write the presentation text to this file (refused if it exists)
    /// instead of printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Help text appended to `senatus present --help`.
pub const PRESENT_EXIT_CODES: &str = "\
Present a token once per hand-off: a broker's retry re-sends the same
presentation (it certifies nobody), but a second, different presentation of
a token already redeemed is a replay by the agent, and certifies it.

Exit codes:
  0  the presentation was written (or printed)
  2  usage, key or file error (no key, a key of another role, an unreadable
     token or params file, --out exists)";

/// Arguments of `senatus broker verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub check: TokenCheckArgs,
}

/// Arguments of `senatus broker redeem`.
#[derive(Debug, clap::Args)]
pub struct RedeemArgs {
    /// Public API address of any validator (host:port); TLS pinned to
    /// --genesis.
    #[arg(long)]
    pub api: String,
    #[command(flatten)]
    pub check: TokenCheckArgs,
    /// The agent's presentation (hex, from `senatus present`): the agent
    /// the token names hands it to this broker with exactly the --params
    /// text. Without it no token is redeemed.
    #[arg(
        long,
        conflicts_with = "presentation_file",
        required_unless_present = "presentation_file"
    )]
    pub presentation: Option<String>,
    /// A file holding the presentation text.
    #[arg(long)]
    pub presentation_file: Option<PathBuf>,
    /// This broker's key file (`senatus keygen --role broker`), sealed in
    /// the registry as a broker guarding --surface; the call is signed with
    /// it (docs/PROTOCOL.md 10.2).
    #[arg(long, value_name = "KEY_FILE", env = KEY_ENV, hide_env_values = true)]
    pub key: Option<PathBuf>,
    /// Call timeout in milliseconds.
    #[arg(long, default_value_t = GATE_CALL_TIMEOUT_MS_DEFAULT)]
    pub timeout_ms: u64,
}

// ---- the request file ------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestFile {
    surface: String,
    action: String,
    actor: String,
    tenant: String,
    /// Kept as text: parsed by `parse_params`, which refuses what JCS
    /// cannot bind (a repeated key, an inexact number).
    params: Box<serde_json::value::RawValue>,
    #[serde(default)]
    context: ContextFile,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextFile {
    #[serde(default)]
    uncertainty_permille: u16,
    #[serde(default)]
    resources: BTreeMap<String, u64>,
    #[serde(default)]
    external_endpoints: Vec<String>,
}

/// A request and whether its idempotency key was generated here.
struct Built {
    request: DecisionRequest,
    generated_key: bool,
}

fn random_key() -> String {
    format!("cli-{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// Params that do not parse make a request that is not sent, worded as
/// the validator's own check words it.
fn invalid_params(e: senatus_quorum::ParamsError) -> anyhow::Error {
    anyhow::anyhow!(
        "invalid request (not sent): {}",
        senatus_quorum::request::RequestError::from(e)
    )
}

/// Parses a request file strictly (unknown fields refused).
pub fn parse_request_file(bytes: &[u8]) -> anyhow::Result<(DecisionRequest, bool)> {
    let f: RequestFile = serde_json::from_slice(bytes)
        .map_err(|e| anyhow::anyhow!("request file is not a valid request: {e}"))?;
    let params = senatus_quorum::parse_params(f.params.get()).map_err(invalid_params)?;
    let (key, generated) = match f.idempotency_key {
        Some(k) => (k, false),
        None => (random_key(), true),
    };
    Ok((
        DecisionRequest {
            surface: f.surface,
            action: f.action,
            actor: f.actor,
            tenant: f.tenant,
            params,
            context: AgentContext {
                uncertainty_permille: f.context.uncertainty_permille,
                resources: f.context.resources,
                external_endpoints: f.context.external_endpoints,
            },
            idempotency_key: key,
        },
        generated,
    ))
}

fn build_request(a: &DecideArgs) -> anyhow::Result<Built> {
    let (request, generated_key) = match &a.file {
        Some(path) => {
            let bytes = read_bounded(path, INPUT_FILE_BYTES_MAX, "request file")?;
            parse_request_file(&bytes).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?
        }
        None => {
            let params = senatus_quorum::parse_params(&a.params).map_err(invalid_params)?;
            let mut resources = BTreeMap::new();
            for r in &a.resource {
                let (name, amount) = r
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--resource {r:?}: expected NAME=AMOUNT"))?;
                let amount: u64 = amount.parse().map_err(|_| {
                    anyhow::anyhow!("--resource {r:?}: amount is not an unsigned integer")
                })?;
                if resources.insert(name.to_string(), amount).is_some() {
                    anyhow::bail!("--resource {name:?} is given twice");
                }
            }
            let (key, generated) = match &a.idempotency_key {
                Some(k) => (k.clone(), false),
                None => (random_key(), true),
            };
            let field = |v: &Option<String>| v.clone().unwrap_or_default();
            (
                DecisionRequest {
                    surface: field(&a.surface),
                    action: field(&a.action),
                    actor: field(&a.actor),
                    tenant: field(&a.tenant),
                    params,
                    context: AgentContext {
                        uncertainty_permille: a.uncertainty,
                        resources,
                        external_endpoints: a.endpoint.clone(),
                    },
                    idempotency_key: key,
                },
                generated,
            )
        }
    };
    request
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid request (not sent): {e}"))?;
    Ok(Built {
        request,
        generated_key,
    })
}

fn to_wire(r: &DecisionRequest) -> anyhow::Result<pb::DecideRequest> {
    // validate() has accepted the params, so they canonicalize; sending the
    // canonical form means what is signed is what was shown.
    let params = canonical_params(&r.params).map_err(|e| anyhow::anyhow!("params: {e}"))?;
    Ok(pb::DecideRequest {
        surface: r.surface.clone(),
        action: r.action.clone(),
        actor: r.actor.clone(),
        tenant: r.tenant.clone(),
        params_json: String::from_utf8(params)
            .map_err(|_| anyhow::anyhow!("canonical params are not UTF-8"))?,
        context: Some(pb::AgentContext {
            uncertainty_permille: u32::from(r.context.uncertainty_permille),
            resources: r
                .context
                .resources
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            external_endpoints: r.context.external_endpoints.clone(),
        }),
        idempotency_key: r.idempotency_key.clone(),
        // Filled in by `sign_wire`.
        ..Default::default()
    })
}

// ---- network ---------------------------------------------------------------

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn check_timeout(timeout_ms: u64) -> anyhow::Result<Duration> {
    if timeout_ms == 0 || timeout_ms > GATE_CALL_TIMEOUT_MS_MAX {
        anyhow::bail!("--timeout-ms {timeout_ms} is outside 1..={GATE_CALL_TIMEOUT_MS_MAX}");
    }
    Ok(Duration::from_millis(timeout_ms))
}

/// Runs one call with a hard deadline on top of tonic's own, so nothing
/// (a stalled connect, a silent server) can hold the command past
/// connect + call timeout.
async fn call<T, F>(what: &str, api: &str, timeout: Duration, f: F) -> Result<T, tonic::Status>
where
    F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let bound = timeout + Duration::from_millis(GATE_CONNECT_TIMEOUT_MS);
    match tokio::time::timeout(bound, f).await {
        Ok(r) => r.map(tonic::Response::into_inner),
        Err(_) => Err(tonic::Status::deadline_exceeded(format!(
            "{what} on {api}: no answer within {} ms",
            bound.as_millis()
        ))),
    }
}

fn request<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    r
}

/// One line for a failed call on `api`: a TLS failure as such (see
/// [`explain`]), else the code, the message and a hint.
fn status_line(s: &tonic::Status) -> String {
    let e = explain(s);
    if e.tls_failed {
        return e.line;
    }
    let hint = match s.code() {
        // The validator answered: it is locked down, and says by what.
        tonic::Code::Unavailable if Reason::of(s) == Some(Reason::LockedDown) => "",
        tonic::Code::Unavailable => " (cluster unreachable or no quorum)",
        tonic::Code::DeadlineExceeded => " (timed out)",
        // tonic reports its own client-side timeout as CANCELLED.
        tonic::Code::Cancelled => " (timed out or connection dropped)",
        _ => "",
    };
    format!("{}{hint}", e.line)
}

/// The exit code of a failed call: a server whose certificate does not
/// verify under the genesis given is a trust-material error (the
/// operator's genesis is not this cluster's), anything else a cluster
/// that did not answer as needed.
fn failed_call_code(s: &tonic::Status) -> u8 {
    if explain(s).tls_refused {
        EXIT_USAGE
    } else {
        EXIT_CLUSTER
    }
}

// ---- decide ----------------------------------------------------------------

/// `senatus decide`.
pub fn decide(a: &DecideArgs) -> anyhow::Result<()> {
    let timeout = check_timeout(a.timeout_ms)?;
    // An invalid request is refused before anything else: it needs no
    // trust material to be refused.
    let built = build_request(a)?;
    if let Some(out) = &a.token_out
        && out.exists()
    {
        anyhow::bail!(
            "--token-out {} exists; refusing to overwrite",
            out.display()
        );
    }
    let genesis = a.target.genesis_path()?;
    let key = read_role_key(a.key.as_deref(), &[Role::Agent], "decide")?;
    let mut wire = to_wire(&built.request)?;
    let genesis_digest = load_genesis(genesis)?.digest();
    crate::gate::sign_wire(&mut wire, key.signing_key(), &genesis_digest, now_ms())
        .map_err(|e| anyhow::anyhow!("invalid request (not sent): {e}"))?;
    if built.generated_key && !a.json {
        println!("idempotency key: {}", built.request.idempotency_key);
    }
    let api = &a.target.api;
    let rt = runtime()?;
    let reply = rt.block_on(async {
        let mut c = api_client(api, genesis)?;
        call("Decide", api, timeout, c.decide(request(wire, timeout)))
            .await
            .map_err(|s| {
                // A validator's refusal says itself that no token was
                // issued; a cluster that did not answer cannot.
                let no_token = if s.code() == tonic::Code::Unavailable && reason_of(&s).is_none() {
                    "; no token was issued"
                } else {
                    ""
                };
                Failure::error(
                    failed_call_code(&s),
                    format!("decide failed on {api}: {}{no_token}", status_line(&s)),
                )
            })
    })?;
    let token = check_reply(&built.request, &reply)?;
    if let Some(out) = &a.token_out {
        let t = token.as_ref().ok_or_else(|| {
            Failure::error(
                EXIT_CLUSTER,
                "the reply carries no token to write to --token-out",
            )
        })?;
        write_new(out, format!("{}\n", t.to_text()).as_bytes())?;
    }
    if a.json {
        let v = serde_json::json!({
            "outcome": reply.outcome,
            "reasons": reply.reasons,
            "ledger_index": reply.ledger_index,
            "entry_hash": hex::encode(&reply.entry_hash),
            "position": reply.position,
            "decision_id": hex::encode(&reply.decision_id),
            "policy_version": reply.policy_version,
            "expires_at_ms": reply.expires_at_ms,
            "signers": reply.signers,
            "idempotency_key": built.request.idempotency_key,
            "nonce": token.as_ref().map(|t| t.payload.nonce.to_hex()),
            "token": token.as_ref().map(Token::to_text),
        });
        println!("{v}");
    } else {
        println!("outcome: {}", reply.outcome);
        println!("reasons: {}", reply.reasons.join(", "));
        println!(
            "ledger index: {} (entry {}, position {})",
            reply.ledger_index,
            hex::encode(&reply.entry_hash),
            reply.position
        );
        println!("decision id: {}", hex::encode(&reply.decision_id));
        println!("policy version: {}", reply.policy_version);
        let signers: Vec<String> = reply.signers.iter().map(u64::to_string).collect();
        println!("signers: {}", signers.join(", "));
        println!(
            "expires at: {} ms ({})",
            reply.expires_at_ms,
            relative(reply.expires_at_ms, now_ms())
        );
        match &token {
            Some(t) => {
                println!("nonce: {}", t.payload.nonce);
                println!("token: {}", t.to_text());
            }
            None => println!("token: none"),
        }
        if let Some(out) = &a.token_out {
            println!("token written to {}", out.display());
        }
    }
    Ok(())
}

/// Decodes the reply's token and checks it says what the reply says, for
/// the request that was sent: a token that does not match is useless to a
/// broker and a sign of a faulty node, so it is an error, not an answer.
fn check_reply(r: &DecisionRequest, reply: &pb::DecideReply) -> anyhow::Result<Option<Token>> {
    let bad =
        |m: String| Failure::error(EXIT_CLUSTER, format!("cluster reply is inconsistent: {m}"));
    if !matches!(reply.outcome.as_str(), "PERMIT" | "DENY" | "SILENCE") {
        return Err(bad(format!("unknown outcome {:?}", reply.outcome)));
    }
    if reply.token.is_empty() {
        if reply.outcome == "PERMIT" {
            return Err(bad("a PERMIT without a token".into()));
        }
        return Ok(None);
    }
    let t = Token::from_bytes(&reply.token).map_err(|e| bad(format!("token: {e}")))?;
    let p = &t.payload;
    let digest = params_digest(&r.params).map_err(|e| bad(format!("params: {e}")))?;
    let checks: [(&str, String, String); 9] = [
        ("outcome", p.outcome.to_string(), reply.outcome.clone()),
        (
            "ledger index",
            p.ledger_index.0.to_string(),
            reply.ledger_index.to_string(),
        ),
        (
            "decision id",
            p.decision_id.to_hex(),
            hex::encode(&reply.decision_id),
        ),
        (
            "expiry",
            p.expires_at_ms.to_string(),
            reply.expires_at_ms.to_string(),
        ),
        ("surface", p.surface.clone(), r.surface.clone()),
        ("action", p.action.clone(), r.action.clone()),
        ("tenant", p.tenant.clone(), r.tenant.clone()),
        ("actor", p.actor.clone(), r.actor.clone()),
        ("params digest", p.params_digest.to_hex(), digest.to_hex()),
    ];
    for (what, in_token, expected) in checks {
        if in_token != expected {
            return Err(bad(format!(
                "token {what} is {in_token:?}, expected {expected:?}"
            )));
        }
    }
    Ok(Some(t))
}

// ---- broker ----------------------------------------------------------------

/// Runs `senatus present`.
pub fn present_token(a: &PresentArgs) -> anyhow::Result<()> {
    present(a)
}

/// Runs a broker subcommand.
pub fn broker(cmd: &BrokerCommand) -> anyhow::Result<()> {
    match cmd {
        BrokerCommand::FetchChain(a) => fetch_chain(a),
        BrokerCommand::Verify(a) => {
            let (_, v) = verify_offline(&a.check)?;
            println!(
                "token OK: {}",
                describe(&v, a.check.now_ms.unwrap_or_else(now_ms))
            );
            Ok(())
        }
        BrokerCommand::Redeem(a) => redeem(a),
    }
}

fn describe(v: &VerifiedToken, now: u64) -> String {
    let p = &v.token.payload;
    format!(
        "decision {} ledger index {} outcome {} nonce {} expires at {} ms ({}); {}/{} tenant {} actor {}",
        p.decision_id,
        p.ledger_index,
        p.outcome,
        p.nonce,
        p.expires_at_ms,
        relative(p.expires_at_ms, now),
        p.surface,
        p.action,
        p.tenant,
        p.actor
    )
}

fn relative(at_ms: u64, now: u64) -> String {
    if at_ms > now {
        format!("in {:.1} s", (at_ms - now) as f64 / 1000.0)
    } else {
        format!("{:.1} s ago", (now - at_ms) as f64 / 1000.0)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Builds the seal chain a [`Broker`] takes from seals as stored or served:
/// with seal 0 (unsigned, checked against genesis by the chain
/// verification) or without it (seal 0 is then derived from genesis).
pub fn full_chain(genesis: &Genesis, seals: Vec<SignedSeal>) -> Vec<SignedSeal> {
    if seals.first().is_some_and(|s| s.signature.is_none()) {
        return seals;
    }
    let mut chain = Vec::with_capacity(seals.len() + 1);
    chain.push(SignedSeal {
        seal: Seal::genesis(genesis),
        signature: None,
        attested: None,
    });
    chain.extend(seals);
    chain
}

fn load_broker(c: &TokenCheckArgs) -> anyhow::Result<Broker> {
    let genesis = Genesis::load(&c.genesis)
        .map_err(|e| anyhow::anyhow!("genesis {}: {e}", c.genesis.display()))?;
    let chain = read_seal_chain(&genesis, c.seals.as_deref())?;
    Broker::new(&genesis, &chain)
        .map_err(|e| anyhow::anyhow!("trust material does not verify: {e}"))
}

/// Reads a seals file (or none: seal 0 only) into a full chain, not yet
/// verified (the [`Broker`] and `senatus replay` verify it from genesis).
pub fn read_seal_chain(genesis: &Genesis, seals: Option<&Path>) -> anyhow::Result<Vec<SignedSeal>> {
    let seals: Vec<SignedSeal> = match seals {
        Some(path) => {
            let bytes = read_bounded(path, SEALS_BYTES_MAX, "seals file")?;
            serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "seals file {} is not a JSON array of SignedSeal: {e}",
                    path.display()
                )
            })?
        }
        None => Vec::new(),
    };
    Ok(full_chain(genesis, seals))
}

fn refused(prefix: &str, e: &VerifyError) -> anyhow::Error {
    Failure::error(EXIT_REFUSED, format!("{prefix}{e}"))
}

/// Loads the trust material and verifies the token; a refused token is a
/// [`Failure`] with [`EXIT_REFUSED`] and "token REFUSED: <reason>".
fn verify_offline(c: &TokenCheckArgs) -> anyhow::Result<(Token, VerifiedToken)> {
    verify_with_prefix(c, "token REFUSED: ")
}

fn verify_with_prefix(c: &TokenCheckArgs, prefix: &str) -> anyhow::Result<(Token, VerifiedToken)> {
    let broker = load_broker(c)?;
    let params: serde_json::Value = match (&c.params.params, &c.params.params_file) {
        // Params the token cannot be bound to refuse the token (9.7 step
        // 12), as a digest mismatch would.
        (Some(p), _) => {
            senatus_quorum::parse_params(p).map_err(|e| refused(prefix, &VerifyError::Params(e)))?
        }
        (None, Some(path)) => {
            let bytes = read_bounded(path, INPUT_FILE_BYTES_MAX, "params file")?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|e| anyhow::anyhow!("params file {} is not UTF-8: {e}", path.display()))?;
            senatus_quorum::parse_params(text)
                .map_err(|e| refused(prefix, &VerifyError::Params(e)))?
        }
        (None, None) => anyhow::bail!("give --params or --params-file"),
    };
    let text = match (&c.token.token, &c.token.token_file) {
        (Some(t), _) => t.clone(),
        (None, Some(path)) => {
            let max = TOKEN_TEXT_BYTES_MAX as u64 + TOKEN_FILE_SLACK_BYTES;
            let len = std::fs::metadata(path)
                .map_err(|e| anyhow::anyhow!("token file {}: {e}", path.display()))?
                .len();
            if len > max {
                let e = VerifyError::Malformed(DecodeError::TooLarge {
                    what: "token file",
                    len: usize::try_from(len).unwrap_or(usize::MAX),
                    max: max as usize,
                });
                return Err(refused(prefix, &e));
            }
            let bytes = read_bounded(path, max, "token file")?;
            match String::from_utf8(bytes) {
                Ok(s) => s,
                Err(_) => {
                    let e = VerifyError::Malformed(DecodeError::Text(
                        "token file is not UTF-8 text".into(),
                    ));
                    return Err(refused(prefix, &e));
                }
            }
        }
        (None, None) => anyhow::bail!("give --token or --token-file"),
    };
    let token = Token::from_text(&text).map_err(|e| refused(prefix, &VerifyError::Malformed(e)))?;
    let expect = Expectation {
        surface: &c.surface,
        action: &c.action,
        tenant: &c.tenant,
        params: &params,
    };
    let now = c.now_ms.unwrap_or_else(now_ms);
    let verified = broker
        .verify_token(token.clone(), &expect, now)
        .map_err(|e| refused(prefix, &e))?;
    Ok((token, verified))
}

/// Reads text given inline or in a file (bounded), trimmed of surrounding
/// whitespace.
fn text_arg(
    inline: Option<&String>,
    file: Option<&Path>,
    max: u64,
    what: &str,
) -> anyhow::Result<String> {
    match (inline, file) {
        (Some(t), _) => Ok(t.clone()),
        (None, Some(path)) => {
            let bytes = read_bounded(path, max, what)?;
            String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("{what} {} is not UTF-8 text", path.display()))
        }
        (None, None) => anyhow::bail!("give the {what} inline or as a file"),
    }
}

/// The params text exactly as given (`--params` or the file's bytes): a
/// presentation binds it byte for byte.
fn params_text(p: &ParamsInput) -> anyhow::Result<String> {
    text_arg(
        p.params.as_ref(),
        p.params_file.as_deref(),
        INPUT_FILE_BYTES_MAX,
        "params file",
    )
}

fn present(a: &PresentArgs) -> anyhow::Result<()> {
    let key = crate::cli::api::read_role_key(a.key.as_deref(), &[Role::Agent], "senatus present")?;
    let max = TOKEN_TEXT_BYTES_MAX as u64 + TOKEN_FILE_SLACK_BYTES;
    let text = text_arg(
        a.token.token.as_ref(),
        a.token.token_file.as_deref(),
        max,
        "token file",
    )?;
    let token = Token::from_text(&text).map_err(|e| anyhow::anyhow!("token: {e}"))?;
    let params = params_text(&a.params)?;
    anyhow::ensure!(
        !a.broker.is_empty()
            && a.broker.len() <= senatus_quorum::presentation::BROKER_NAME_BYTES_MAX,
        "--broker must name a registered broker (1..={} bytes)",
        senatus_quorum::presentation::BROKER_NAME_BYTES_MAX
    );
    let p = senatus_quorum::presentation::Presentation::sign(
        key.signing_key(),
        &token,
        &a.broker,
        &params,
        now_ms(),
    );
    let out = hex::encode(p.encode());
    match &a.out {
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("--out {}: {e}", path.display()))?;
            writeln!(f, "{out}").map_err(|e| anyhow::anyhow!("--out {}: {e}", path.display()))?;
            println!(
                "presented: token {} of {}/{} to broker {:?} with params hashing to {}, signed by {}; written to {}",
                p.token_digest,
                token.payload.tenant,
                token.payload.actor,
                p.broker,
                p.params_hash,
                p.key,
                path.display()
            );
        }
        None => println!("{out}"),
    }
    Ok(())
}

fn redeem(a: &RedeemArgs) -> anyhow::Result<()> {
    let timeout = check_timeout(a.timeout_ms)?;
    let key =
        crate::cli::api::read_role_key(a.key.as_deref(), &[Role::Broker], "senatus broker redeem")?;
    let (token, verified) = verify_with_prefix(
        &a.check,
        "redemption DENIED: token refused offline (cluster not contacted): ",
    )?;
    let params_json = params_text(&a.check.params)?;
    let text = text_arg(
        a.presentation.as_ref(),
        a.presentation_file.as_deref(),
        2 * senatus_quorum::presentation::PRESENTATION_BYTES_MAX as u64 + 64,
        "presentation file",
    )?;
    let local = |m: String| {
        Failure::error(
            EXIT_REFUSED,
            format!("redemption DENIED: presentation refused (cluster not contacted): {m}"),
        )
    };
    let presentation =
        hex::decode(text.trim_ascii()).map_err(|e| local(format!("not hex: {e}")))?;
    let p = senatus_quorum::presentation::Presentation::decode(&presentation)
        .map_err(|e| local(e.to_string()))?;
    // What only the cluster can check (the registry) is left to it; what
    // this broker can see is checked before the cluster is contacted.
    let wire = senatus_quorum::presentation::token_wire_digest(&token);
    if p.token_digest != wire {
        return Err(local(format!(
            "it presents token {}, not this token {wire}",
            p.token_digest
        )));
    }
    if p.params_hash != senatus_quorum::presentation::params_hash(&params_json) {
        return Err(local(
            "the agent presented other params text (they are bound byte for byte)".into(),
        ));
    }
    let nonce = verified.nonce();
    let deny = |m: String| Failure::error(EXIT_CLUSTER, format!("redemption DENIED: {m}"));
    let genesis_digest = load_genesis(&a.check.genesis)?.digest();
    let rt = runtime()?;
    let reply = rt.block_on(async {
        let mut c = api_client(&a.api, &a.check.genesis).map_err(|e| deny(format!("{e:#}")))?;
        let msg = pb::RedeemRequest {
            token: token.to_bytes(),
            params_json,
            auth: Some(crate::cli::api::call_auth(
                &key,
                &genesis_digest,
                senatus_replica::records::REDEEM_METHOD,
                &presentation,
            )),
            presentation,
        };
        call("Redeem", &a.api, timeout, c.redeem(request(msg, timeout)))
            .await
            .map_err(|s| {
                let hint = match s.code() {
                    tonic::Code::AlreadyExists | tonic::Code::FailedPrecondition => {
                        " (nonce already redeemed?)"
                    }
                    _ => "",
                };
                Failure::error(
                    failed_call_code(&s),
                    format!(
                        "redemption DENIED: nonce {nonce} on {}: {}{hint}",
                        a.api,
                        status_line(&s)
                    ),
                )
            })
    })?;
    if !reply.nonce.is_empty() && reply.nonce != nonce.0 {
        return Err(deny(format!(
            "the cluster confirmed nonce {}, not {nonce}",
            hex::encode(&reply.nonce)
        )));
    }
    if reply.ledger_index == 0 {
        return Err(deny("the cluster confirmed no ledger index".into()));
    }
    println!(
        "redeemed: nonce {nonce} at ledger index {} (entry {}); decision {}; presented by {}/{} to {:?}",
        reply.ledger_index,
        hex::encode(&reply.entry_hash),
        verified.token.payload.decision_id,
        verified.token.payload.tenant,
        verified.token.payload.actor,
        p.broker
    );
    Ok(())
}

fn fetch_chain(a: &FetchChainArgs) -> anyhow::Result<()> {
    let timeout = check_timeout(a.timeout_ms)?;
    let genesis_path = a.out.join("genesis.json");
    let seals_path = a.out.join("seals.json");
    // The genesis this broker holds, checked before anything is fetched:
    // the one given (--genesis or SENATUS_GENESIS) and the one already
    // saved in the directory, which must agree. The connection is pinned
    // to it, and the served genesis must be it.
    let mut held: Vec<(PathBuf, Arc<Genesis>)> = Vec::new();
    if let Some(p) = &a.genesis {
        held.push((p.clone(), load_genesis(p)?));
    }
    if genesis_path.exists() {
        held.push((genesis_path.clone(), load_genesis(&genesis_path)?));
    }
    let Some((pin_path, pin)) = held.first().cloned() else {
        anyhow::bail!(
            "{}; a broker fetches the seal chain only from validators of the genesis it already holds (from the ceremony), which it keeps as {}",
            crate::cli::api::GENESIS_MISSING,
            genesis_path.display()
        );
    };
    for (path, g) in &held[1..] {
        if g.digest() != pin.digest() {
            anyhow::bail!(
                "{} is genesis {}, but {} is genesis {}; refusing to switch",
                pin_path.display(),
                pin.digest(),
                path.display(),
                g.digest()
            );
        }
    }
    let rt = runtime()?;
    let reply = rt.block_on(async {
        let mut c = api_client_pinned(&a.api, pin.clone())?;
        call(
            "GetSealChain",
            &a.api,
            timeout,
            c.get_seal_chain(request(pb::SealChainRequest {}, timeout)),
        )
        .await
        .map_err(|s| {
            let e = explain(&s);
            if let Some(reason) = e.refused_because {
                Failure::error(
                    EXIT_USAGE,
                    format!(
                        "fetching the seal chain from {}: TLS: not a validator of genesis {} ({}): {reason}; refusing to switch",
                        a.api,
                        pin.digest(),
                        pin_path.display(),
                    ),
                )
            } else {
                Failure::error(
                    EXIT_CLUSTER,
                    format!(
                        "fetching the seal chain from {}: {}",
                        a.api,
                        status_line(&s)
                    ),
                )
            }
        })
    })?;
    if reply.genesis_json.len() as u64 > GENESIS_BYTES_MAX {
        anyhow::bail!(
            "{} served a genesis of {} bytes, over the {GENESIS_BYTES_MAX}-byte limit",
            a.api,
            reply.genesis_json.len()
        );
    }
    let shown = format!("genesis from {}", a.api);
    let genesis = Genesis::from_json(reply.genesis_json.as_bytes(), &shown)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    genesis
        .verify()
        .map_err(|e| anyhow::anyhow!("{shown} does not verify: {e}"))?;
    let digest = genesis.digest();
    if digest != pin.digest() {
        anyhow::bail!(
            "{} serves genesis {digest}, but {} is genesis {}; refusing to switch",
            a.api,
            pin_path.display(),
            pin.digest()
        );
    }
    let mut seals = Vec::with_capacity(reply.seals_json.len());
    for (i, s) in reply.seals_json.iter().enumerate() {
        let seal: SignedSeal = serde_json::from_str(s)
            .map_err(|e| anyhow::anyhow!("seal {i} from {} is malformed: {e}", a.api))?;
        seals.push(seal);
    }
    let chain = full_chain(&genesis, seals);
    Broker::new(&genesis, &chain)
        .map_err(|e| anyhow::anyhow!("material from {} does not verify: {e}", a.api))?;
    std::fs::create_dir_all(&a.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", a.out.display()))?;
    if !genesis_path.exists() {
        write_new(&genesis_path, reply.genesis_json.as_bytes())?;
    }
    let mut json = serde_json::to_string_pretty(&chain).expect("seals serialize");
    json.push('\n');
    write_replace(&seals_path, json.as_bytes())?;
    let newest = &chain[chain.len() - 1].seal;
    println!(
        "saved genesis {digest} (chain {}) and {} seals (newest: policy version {}, epoch {}, \
         seal {}) to {}",
        genesis.body.chain_id,
        chain.len(),
        newest.version,
        newest.epoch,
        newest.digest(),
        a.out.display()
    );
    Ok(())
}

// ---- files -----------------------------------------------------------------

fn read_bounded(path: &Path, max: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    let f =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        anyhow::bail!("{what} {} is over the {max}-byte limit", path.display());
    }
    Ok(bytes)
}

fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot create {} (refusing to overwrite): {e}",
                path.display()
            )
        })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

/// Writes next to `path`, syncs, then renames over it: readers see the old
/// file or the new one, never a torn one.
fn write_replace(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("replacing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_files_are_strict() {
        let ok = br#"{"surface":"payments","action":"transfer","actor":"a","tenant":"t",
            "params":{"x":1},"context":{"uncertainty_permille":5,"resources":{"cpu":1},
            "external_endpoints":["https://h.example/x"]},"idempotency_key":"k"}"#;
        let (r, generated) = parse_request_file(ok).expect("parses");
        assert!(!generated);
        assert_eq!(r.context.uncertainty_permille, 5);
        r.validate().expect("valid");
        let unknown = br#"{"surface":"p","action":"a","actor":"a","tenant":"t","params":{},"x":1}"#;
        let e = parse_request_file(unknown).expect_err("unknown field");
        assert!(e.to_string().contains("unknown field `x`"), "{e}");
        let ctx = br#"{"surface":"p","action":"a","actor":"a","tenant":"t","params":{},
            "context":{"uncertainty":1}}"#;
        let e = parse_request_file(ctx).expect_err("unknown context field");
        assert!(e.to_string().contains("unknown field `uncertainty`"), "{e}");
        let (r, generated) = parse_request_file(
            br#"{"surface":"p","action":"a","actor":"a","tenant":"t","params":{}}"#,
        )
        .expect("minimal");
        assert!(generated);
        assert!(r.idempotency_key.starts_with("cli-"));
        r.validate().expect("generated key is valid");
        // Params inside the file are parsed from their own text: a repeated
        // key or an inexact number is refused here, not collapsed.
        let repeated = br#"{"surface":"p","action":"a","actor":"a","tenant":"t",
            "params":{"to":"x","to":"y"}}"#;
        let e = parse_request_file(repeated).expect_err("repeated key");
        assert!(e.to_string().contains(r#"repeat the key "to""#), "{e}");
        let inexact = br#"{"surface":"p","action":"a","actor":"a","tenant":"t",
            "params":{"rate":0.10000000000000001}}"#;
        let e = parse_request_file(inexact).expect_err("inexact number");
        assert!(e.to_string().contains("RFC 8785 makes it 0.1"), "{e}");
    }

    #[test]
    fn exit_codes_survive_context() {
        let e = Failure::error(EXIT_REFUSED, "token REFUSED: x").context("outer");
        assert_eq!(exit_code(&e), EXIT_REFUSED);
        assert_eq!(exit_code(&anyhow::anyhow!("plain")), EXIT_USAGE);
    }
}
