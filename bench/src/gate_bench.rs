//! `senatus-bench` (also run as `senatus bench`): decisions/s and latency
//! of a live five-validator testnet at several concurrencies, broker
//! verifications/s on one core, and the same load generator against a
//! five-member etcd cluster in the same run, written as a markdown report.
//!
//! A benchmark, not a test: it asserts nothing, it measures and reports,
//! and says beside each target whether this run met it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use senatus_genesis::{Genesis, Seal, SignedSeal};
use senatus_proto::v1 as pb;
use senatus_quorum::broker::{Broker, Expectation};
use senatus_testnet::{Testnet, UpOptions};

use crate::bench::{self, LEVELS};
use crate::load::LoadReport;

/// Tokens collected (one decision at a time, so each has its own batch
/// signature) for the broker measurement.
const BROKER_TOKENS: usize = 500;
/// Passes over the collected tokens, each with a fresh broker (cold cache).
const BROKER_PASSES: usize = 5;
/// Amendments passed one after another for the passage latency.
const AMENDMENTS: u64 = 20;
/// Longest one amendment may take before the bench gives up on it.
const AMENDMENT_TIMEOUT_MS: u64 = 10_000;
/// How often the bench looks for the five redeclarations.
const AMENDMENT_POLL_MS: u64 = 2;
/// Fresh testnets for the breach measurement; each gives one sample per
/// validator (every validator is tampered with once).
const BREACH_NETS: usize = 4;
/// Longest a certificate may take to reach every validator.
const BREACH_TIMEOUT_MS: u64 = 5_000;

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Working directory for the testnet and etcd data (must not hold a
    /// testnet yet; created if absent).
    #[arg(long)]
    pub dir: PathBuf,
    /// Concurrency levels, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = LEVELS)]
    pub levels: Vec<usize>,
    /// Measured seconds per level (after a warmup of a fifth of it).
    #[arg(long, default_value_t = 10)]
    pub secs: u64,
    /// Skip the etcd baseline.
    #[arg(long)]
    pub no_etcd: bool,
    /// Write the markdown report here as well as to stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the whole benchmark; returns the markdown report.
pub async fn run(args: &BenchArgs, senatus_exe: &Path) -> anyhow::Result<String> {
    anyhow::ensure!(!args.levels.is_empty(), "--levels is empty");
    let per_level = Duration::from_secs(args.secs.max(1));
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let net_dir = args.dir.join("senatus");
    anyhow::ensure!(
        !net_dir.join("genesis.json").exists(),
        "{} already holds a testnet; the bench starts from a fresh genesis",
        net_dir.display()
    );
    let opts = UpOptions {
        log_filter: "warn".into(),
        ..UpOptions::default()
    };
    eprintln!(
        "bench: starting a 5-validator testnet in {}",
        net_dir.display()
    );
    let net = Testnet::up(&net_dir, senatus_exe, opts).await?;
    let genesis = Genesis::clone(net.genesis());
    let clients: Vec<_> = net
        .ids()
        .into_iter()
        .map(|id| net.client(id))
        .collect::<anyhow::Result<_>>()?;
    let clients = Arc::new(clients);
    // Every request is signed by a registered agent, as agents must
    // (docs/PROTOCOL.md 10.1): signing is part of what a decision costs.
    let agent = Arc::new(Agent {
        key: net.client_key("bench-agent")?,
        genesis_digest: genesis.digest(),
    });

    let mut senatus = Vec::new();
    for &c in &args.levels {
        eprintln!("bench: senatus Decide at concurrency {c} for {per_level:?}");
        let clients = clients.clone();
        let agent = agent.clone();
        let level = bench::run_series(&[c], per_level, move |w, seq| {
            let mut client = clients[w as usize % clients.len()].clone();
            let request = agent.permit_request(&format!("bench-{c}-{w}-{seq}"), seq);
            async move {
                let r = client
                    .decide(request)
                    .await
                    .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
                    .into_inner();
                if r.outcome == "PERMIT" {
                    Ok(())
                } else {
                    Err(format!(
                        "expected PERMIT, got {} {:?}",
                        r.outcome, r.reasons
                    ))
                }
            }
        })
        .await?;
        senatus.extend(level);
    }

    eprintln!("bench: collecting {BROKER_TOKENS} tokens for the broker measurement");
    let mut tokens = Vec::with_capacity(BROKER_TOKENS);
    let mut client = clients[0].clone();
    for i in 0..BROKER_TOKENS {
        let req = agent.permit_request(&format!("broker-{i}"), i as u64);
        let params: serde_json::Value = serde_json::from_str(&req.params_json)?;
        let r = client
            .decide(req)
            .await
            .map_err(|s| anyhow::anyhow!("collecting tokens: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        tokens.push((r.token, params));
    }
    eprintln!("bench: amendment passage ({AMENDMENTS} amendments, one at a time)");
    let passage = amendment_passage(&net, &net_dir, &genesis).await?;
    drop(net);
    eprintln!("bench: breach, tamper to certificate validated everywhere ({BREACH_NETS} testnets)");
    let breach = breach_latency(&args.dir, senatus_exe).await?;
    let broker = broker_rate(&genesis, &tokens)?;

    let etcd = if args.no_etcd {
        None
    } else {
        eprintln!("bench: etcd baseline (5 members)");
        Some(bench::etcd_baseline(&args.dir.join("etcd"), 5, &args.levels, per_level, 1).await?)
    };
    let report = render(args, &senatus, etcd.as_ref(), &broker, &passage, &breach);
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(report)
}

/// For each validator of [`BREACH_NETS`] fresh testnets in turn: appends a
/// byte to its on-disk copy of the sealed policy and measures the time
/// until every validator (the tampered one included) lists the
/// `policy-drift` certificate it issued about itself, validated: the
/// detection tick, the signature, the direct fan-out and each receiver's
/// own checks. Nothing else runs on the testnet meanwhile.
async fn breach_latency(dir: &Path, senatus_exe: &Path) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::new();
    for round in 0..BREACH_NETS {
        let net_dir = dir.join(format!("breach-{round}"));
        anyhow::ensure!(
            !net_dir.join("genesis.json").exists(),
            "{} already holds a testnet; the bench starts from a fresh genesis",
            net_dir.display()
        );
        let opts = UpOptions {
            log_filter: "warn".into(),
            ..UpOptions::default()
        };
        let net = Testnet::up(&net_dir, senatus_exe, opts).await?;
        let clients: Vec<(u64, _)> = net
            .ids()
            .into_iter()
            .map(|id| net.client(id).map(|c| (id, c)))
            .collect::<anyhow::Result<_>>()?;
        for id in net.ids() {
            let cfg = senatus_genesis::config::NodeConfig::load(&net.spec(id)?.config)
                .map_err(|e| anyhow::anyhow!("node {id} config: {e}"))?;
            let entities = cfg.policy_dir.join(senatus_genesis::policy::ENTITIES_FILE);
            let mut bytes = std::fs::read(&entities)
                .with_context(|| format!("reading {}", entities.display()))?;
            bytes.push(b'\n');
            let subject = format!("validator {id}");
            let mut seen = std::collections::BTreeSet::new();
            let start = Instant::now();
            std::fs::write(&entities, &bytes)
                .with_context(|| format!("writing {}", entities.display()))?;
            loop {
                for (n, c) in &clients {
                    if seen.contains(n) {
                        continue;
                    }
                    let mut c = c.clone();
                    if let Ok(r) = c.list_certificates(pb::ListCertificatesRequest {}).await
                        && r.into_inner()
                            .certificates
                            .iter()
                            .any(|v| v.subject == subject && v.kind == "policy-drift")
                    {
                        seen.insert(*n);
                    }
                }
                if seen.len() == clients.len() {
                    out.push(start.elapsed());
                    break;
                }
                anyhow::ensure!(
                    start.elapsed() < Duration::from_millis(BREACH_TIMEOUT_MS),
                    "the certificate about validator {id} reached only {seen:?} within {BREACH_TIMEOUT_MS} ms"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        drop(net);
    }
    Ok(out)
}

/// The bench's agent: the testnet's `bench-agent` key, and the chain.
struct Agent {
    key: senatus_genesis::keys::SecretKey,
    genesis_digest: senatus_genesis::Digest,
}

impl Agent {
    /// A transfer the example policy permits, signed now; amounts vary so
    /// params differ.
    fn permit_request(&self, key: &str, seq: u64) -> pb::DecideRequest {
        let params = serde_json::json!({
            "amount": 1 + seq % 90_000,
            "currency": "EUR",
            "to_account": "acct-supplier-7",
        });
        let request = permit(key, params.clone());
        let signed = senatus_quorum::auth::SignedRequest::sign(
            self.key.signing_key(),
            &self.genesis_digest,
            request,
            senatus_testnet::now_ms(),
        );
        pb::DecideRequest {
            surface: signed.request.surface,
            action: signed.request.action,
            actor: signed.request.actor,
            tenant: signed.request.tenant,
            params_json: params.to_string(),
            context: Some(pb::AgentContext::default()),
            idempotency_key: signed.request.idempotency_key,
            signed_at_ms: signed.signed_at_ms,
            agent_key: signed.key.0.to_vec(),
            signature: signed.signature.to_vec(),
        }
    }
}

/// The bench's request: a transfer by `bench-agent` of acme.
fn permit(key: &str, params: serde_json::Value) -> senatus_quorum::request::DecisionRequest {
    senatus_quorum::request::DecisionRequest {
        surface: "payments".into(),
        action: "transfer".into(),
        actor: "bench-agent".into(),
        tenant: "acme".into(),
        params,
        context: Default::default(),
        idempotency_key: key.into(),
    }
}

/// Broker verification throughput on one core.
#[derive(Debug, Clone)]
pub struct BrokerRate {
    /// Tokens verified per pass.
    pub tokens: usize,
    /// Full verifications per second (signature checked every time).
    pub per_s: f64,
}

fn broker_rate(
    genesis: &Genesis,
    tokens: &[(Vec<u8>, serde_json::Value)],
) -> anyhow::Result<BrokerRate> {
    let chain = [SignedSeal {
        seal: Seal::genesis(genesis),
        signature: None,
        attested: None,
    }];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let mut total = Duration::ZERO;
    for _ in 0..BROKER_PASSES {
        // A fresh broker per pass: its signature cache starts empty, and
        // every token here has a batch (and signature) of its own.
        let broker = Broker::new(genesis, &chain)?;
        let start = Instant::now();
        for (token, params) in tokens {
            let expect = Expectation {
                surface: "payments",
                action: "transfer",
                tenant: "acme",
                params,
            };
            broker
                .verify(token, &expect, now)
                .map_err(|e| anyhow::anyhow!("a collected token does not verify: {e}"))?;
        }
        total += start.elapsed();
    }
    let n = (tokens.len() * BROKER_PASSES) as f64;
    Ok(BrokerRate {
        tokens: tokens.len(),
        per_s: n / total.as_secs_f64().max(f64::EPSILON),
    })
}

/// Passes [`AMENDMENTS`] amendments one after another (each bumps the
/// constitution's version of the previous one) and measures, for each, the
/// time from `Propose` until the Redeclarations of all five validators are
/// on the ledger: proposal, five independent reviews and votes, the
/// approvers' threshold-signed seal, the swap, five redeclarations.
async fn amendment_passage(
    net: &Testnet,
    net_dir: &Path,
    genesis: &Genesis,
) -> anyhow::Result<Vec<Duration>> {
    let authority =
        senatus_genesis::keys::SecretKey::read_authority(&net_dir.join("authority.key"))
            .context("reading the testnet's authority key")?;
    let auditor = net.client_key("auditor-1")?;
    let base = senatus_genesis::PolicyLayer::load_dir(&net_dir.join("policy"))
        .context("reading the testnet's policy layer")?;
    let constitution = String::from_utf8(
        base.files()
            .get(senatus_genesis::policy::CONSTITUTION_FILE)
            .context("constitution missing")?
            .clone(),
    )?;
    let mut client = net.client(1)?;
    let members = genesis.body.validators.len();
    let mut seal = Seal::genesis(genesis);
    let mut next_index = 1u64;
    let mut out = Vec::new();
    for k in 0..AMENDMENTS {
        let version = seal.version.0 + 1;
        let mut files = base.files().clone();
        files.insert(
            senatus_genesis::policy::CONSTITUTION_FILE.into(),
            constitution
                .replacen("\nversion = 1\n", &format!("\nversion = {version}\n"), 1)
                .into_bytes(),
        );
        let layer = senatus_genesis::PolicyLayer::from_files(files)
            .with_context(|| format!("amendment {k}: the layer of version {version}"))?;
        let proposal = senatus_quorum::amend::Proposal {
            base_version: seal.version,
            base_seal_digest: seal.digest(),
            layer: layer.canonical_bytes(),
            justification: format!("bench amendment {k}"),
            proposer: senatus_genesis::Key32(authority.public()),
            created_at_ms: k,
        }
        .sign(authority.signing_key())
        .map_err(|e| anyhow::anyhow!("signing amendment {k}: {e}"))?;
        let started = Instant::now();
        client
            .propose(pb::ProposeRequest {
                signed_proposal: proposal.encode(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("amendment {k}: {:?}: {}", s.code(), s.message()))?;
        let mut redeclared = std::collections::BTreeSet::new();
        while redeclared.len() < members {
            anyhow::ensure!(
                started.elapsed() < Duration::from_millis(AMENDMENT_TIMEOUT_MS),
                "amendment {k} not redeclared by all {members} validators within {AMENDMENT_TIMEOUT_MS} ms ({redeclared:?})"
            );
            let body = senatus_quorum::auth::get_ledger_body(next_index, u64::MAX, 0);
            let page = client
                .get_ledger(pb::GetLedgerRequest {
                    from: next_index,
                    to: u64::MAX,
                    limit: 0,
                    auth: Some(net.call_auth(&auditor, "GetLedger", &body)),
                })
                .await
                .map_err(|s| anyhow::anyhow!("ledger: {:?}: {}", s.code(), s.message()))?
                .into_inner()
                .entries;
            for e in &page {
                next_index = e.index + 1;
                // redeclaration: tag (25 bytes), u64 node, u64 version, ...
                if e.kind == 7
                    && e.payload.len() >= 41
                    && e.payload[33..41] == version.to_be_bytes()
                {
                    redeclared.insert(e.payload[25..33].to_vec());
                }
            }
            if redeclared.len() < members {
                tokio::time::sleep(Duration::from_millis(AMENDMENT_POLL_MS)).await;
            }
        }
        out.push(started.elapsed());
        let chain = client
            .get_seal_chain(pb::SealChainRequest {})
            .await
            .map_err(|s| anyhow::anyhow!("seal chain: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        let last = chain.seals_json.last().context("empty seal chain")?;
        seal = serde_json::from_str::<SignedSeal>(last)?.seal;
        anyhow::ensure!(
            seal.version.0 == version,
            "amendment {k} did not seal version {version}"
        );
    }
    Ok(out)
}

fn level(r: &[LoadReport], c: usize) -> Option<&LoadReport> {
    r.iter().find(|x| x.concurrency == c)
}

fn render(
    args: &BenchArgs,
    senatus: &[LoadReport],
    etcd: Option<&bench::EtcdSeries>,
    broker: &BrokerRate,
    passage: &[Duration],
    breach: &[Duration],
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "## Run of {}\n", chrono_like_now());
    let _ = writeln!(out, "{}\n", bench::machine_description());
    let _ = writeln!(
        out,
        "Command: `senatus bench --dir {} --levels {} --secs {}` (release build, see scripts/bench.sh). \
         Five validators on 127.0.0.1, RocksDB with synced writes, Decide requests spread \
         round-robin over all five nodes, each a PERMIT transfer under the example policy.\n",
        args.dir.display(),
        args.levels
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(","),
        args.secs
    );
    out.push_str(&bench::render_table(
        "senatus Decide (PERMIT, threshold-signed token)",
        senatus,
    ));
    if let Some(e) = etcd {
        out.push('\n');
        out.push_str(&bench::render_table(
            &format!(
                "etcd {} puts, {} members, same load generator",
                e.version, e.members
            ),
            &e.reports,
        ));
        out.push('\n');
        out.push_str(&bench::render_comparison(
            "senatus", senatus, "etcd", &e.reports,
        ));
    }
    let _ = writeln!(
        out,
        "\n### Broker offline verification (one core)\n\n{:.0} tokens/s: full verification \
         (decode, chain, Merkle proof, Ed25519 signature, scope, params digest, expiry) of {} \
         tokens, each with its own batch signature, {BROKER_PASSES} passes with a cold signature cache.\n",
        broker.per_s, broker.tokens
    );
    let mut sorted = passage.to_vec();
    sorted.sort_unstable();
    let pct = |q: f64| percentile_ms(&sorted, q);
    let _ = writeln!(
        out,
        "### Amendment passage\n\n{} amendments one after another, each from `Propose` until all \
         five validators' redeclarations are on the ledger (five reviews and signed votes, the \
         approvers' FROST seal, the swap, five redeclarations): p50 {:.1} ms, p90 {:.1} ms, \
         max {:.1} ms.\n",
        sorted.len(),
        pct(0.5),
        pct(0.9),
        pct(1.0)
    );
    let mut b = breach.to_vec();
    b.sort_unstable();
    let bpct = |q: f64| percentile_ms(&b, q);
    let _ = writeln!(
        out,
        "### Breach: tamper to certificate validated everywhere\n\n{} samples (each validator of \
         {BREACH_NETS} fresh testnets in turn): a byte appended to its on-disk policy copy, until \
         every validator lists the validated policy-drift certificate (detection, signature, \
         direct fan-out, each receiver's own checks): p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms.\n",
        b.len(),
        bpct(0.5),
        bpct(0.9),
        bpct(1.0)
    );
    let _ = writeln!(out, "### Targets (issues 4, 5 and 6)\n");
    let c1 = level(senatus, 1);
    let c256 = level(senatus, 256);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    if let Some(r) = c1 {
        let _ = writeln!(
            out,
            "- p50 at concurrency 1 ≤ 3 ms: {:.2} ms — {}\n- p99 at concurrency 1 ≤ 15 ms: {:.2} ms — {}",
            ms(r.p50),
            verdict(ms(r.p50) <= 3.0),
            ms(r.p99),
            verdict(ms(r.p99) <= 15.0)
        );
    }
    if let Some(r) = c256 {
        let _ = writeln!(
            out,
            "- ≥ 4,000 PERMIT decisions/s at concurrency 256: {:.0}/s — {}",
            r.ops_per_s,
            verdict(r.ops_per_s >= 4000.0)
        );
        if let Some(e) = etcd.and_then(|e| level(&e.reports, 256)) {
            let ratio = r.ops_per_s / e.ops_per_s.max(f64::EPSILON);
            let _ = writeln!(
                out,
                "- ≥ 1.5× etcd puts at concurrency 256: {ratio:.2}× ({:.0} vs {:.0}/s) — {}",
                r.ops_per_s,
                e.ops_per_s,
                verdict(ratio >= 1.5)
            );
        }
    }
    let _ = writeln!(
        out,
        "- broker ≥ 15,000 verifications/s on one core: {:.0}/s — {}",
        broker.per_s,
        verdict(broker.per_s >= 15_000.0)
    );
    if !sorted.is_empty() {
        let _ = writeln!(
            out,
            "- amendment passage p50 ≤ 100 ms (issue 5): {:.1} ms — {}",
            pct(0.5),
            verdict(pct(0.5) <= 100.0)
        );
    }
    if !b.is_empty() {
        let _ = writeln!(
            out,
            "- tamper → certificate validated by every live validator p50 ≤ 25 ms (issue 6): {:.1} ms — {}",
            bpct(0.5),
            verdict(bpct(0.5) <= 25.0)
        );
    }
    out
}

/// The `q` quantile (nearest rank) of `sorted`, in milliseconds; 0 when
/// empty.
fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// UTC time of the run, `YYYY-MM-DD HH:MM UTC`, from the system clock.
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        (secs % 86_400) / 3600,
        (secs % 3600) / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn bench_requests_are_permits_under_the_example_policy() {
        let layer = senatus_genesis::PolicyLayer::example();
        let e = senatus_quorum::evaluate::Evaluator::new(&layer).expect("evaluator");
        for seq in [0, 1, 89_999, 90_000, 123_456] {
            let params = serde_json::json!({
                "amount": 1 + seq % 90_000,
                "currency": "EUR",
                "to_account": "acct-supplier-7",
            });
            let req = permit("k", params);
            let d = e.evaluate(&req, 0);
            assert_eq!(
                d.outcome,
                senatus_quorum::Outcome::Permit,
                "seq {seq}: {:?}",
                d.reasons
            );
        }
    }
}
