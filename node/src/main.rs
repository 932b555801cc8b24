//! `senatus`: validator node, genesis ceremony and operator tools.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use senatus_node::cli;

/// The benchmark binary `senatus bench` runs, looked for next to this one.
const BENCH_BIN: &str = "senatus-bench";

/// senatus: a validator cluster that governs what autonomous agents may do
/// before they do it.
///
/// Five validators replicate a sealed policy layer and a hash-chained
/// decision ledger. Start with `senatus genesis init --out DIR`, then run
/// `senatus node --config DIR/node-<id>/node.toml` on each validator.
#[derive(Debug, Parser)]
#[command(name = "senatus", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make or check a genesis (the founding ceremony).
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Run a validator. Verifies the genesis lock before opening any port:
    /// the authority signature on genesis, the on-disk policy digest against
    /// the sealed one, the identity key and the FROST share. Any mismatch
    /// exits non-zero with one line naming the file and the values.
    Node(NodeArgs),
    /// Export, verify or append to the hash-chained ledger.
    #[command(subcommand)]
    Ledger(cli::ledger::LedgerCommand),
    /// Show one validator's view: role, term, leader, commit index, ledger
    /// head.
    Status(cli::api::ApiArgs),
    /// Run a local five-validator testnet on 127.0.0.1 (up, down, status).
    #[command(subcommand)]
    Testnet(senatus_testnet::cli::TestnetCommand),
    /// Make a client key (agent, operator, auditor or broker): writes the
    /// key file (0600) and prints its public key, to be sealed in the
    /// identity registry by amendment (`senatus agent add`).
    Keygen(cli::identity::KeygenArgs),
    /// Change the sealed identity registry: build the amended layer that
    /// adds, removes or re-keys an agent (or operator, auditor, broker),
    /// and optionally propose it.
    #[command(subcommand)]
    Agent(cli::identity::AgentCommand),
    /// Ask the cluster before acting: send a decision request (from --file
    /// or from flags) and print the outcome (PERMIT, DENY or SILENCE), the
    /// reasons, the ledger index, the decision id, the signers, the expiry
    /// and the threshold-signed token. The request is validated here first;
    /// an invalid one is refused naming the field and never sent. It is
    /// signed with the agent's key (--key), which the sealed registry must
    /// list for --tenant and --actor.
    #[command(after_help = cli::gate::DECIDE_EXIT_CODES)]
    Decide(cli::gate::DecideArgs),
    /// Hand a token to a broker: sign, with the agent's key, a presentation
    /// of the token to one registered broker with the exact params text
    /// (docs/PROTOCOL.md 10.3). A broker redeems a token only with the
    /// presentation of the agent the token names.
    #[command(after_help = cli::gate::PRESENT_EXIT_CODES)]
    Present(cli::gate::PresentArgs),
    /// Broker tools for an execution surface: fetch and verify the seal
    /// chain, verify tokens offline, redeem them exactly once.
    #[command(subcommand)]
    Broker(cli::gate::BrokerCommand),
    /// Amend the sealed policy: propose a new layer, follow the votes.
    #[command(subcommand)]
    Amend(cli::amend::AmendCommand),
    /// The seal chain: every seal, verified back to genesis.
    #[command(subcommand)]
    Seal(cli::amend::SealCommand),
    /// Shutdown certificates: list what a validator validated (and whether
    /// it is locked down), or verify one certificate offline.
    #[command(subcommand, after_help = cli::breach::CERTIFICATES_EXIT_CODES)]
    Certificates(cli::breach::CertificatesCommand),
    /// Forensic replay of one decision: rebuild it from a ledger verified
    /// from genesis (request, policy version, outcome, reasons, the token
    /// payload, Merkle root and the message the validators signed) and, given
    /// the issued token, show it is byte-identical and its signature verifies.
    #[command(after_help = cli::replay::REPLAY_EXIT_CODES)]
    Replay(cli::replay::ReplayArgs),
    /// Benchmark (not a test): start a fresh local 5-validator testnet in
    /// DIR, drive Decide at each concurrency level, measure broker
    /// verifications/s on one core, then run the same load generator
    /// against a 5-member etcd cluster (Debian's etcd-server, installed if
    /// missing) and print a markdown report with the ratio and which
    /// targets were met. Use a release build (scripts/bench.sh). Runs the
    /// `senatus-bench` binary beside this one with the same arguments
    /// (`senatus bench --help` lists them).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Bench(BenchArgs),
}

#[derive(Debug, Subcommand)]
enum GenesisCommand {
    /// Run the genesis ceremony: a founding authority key, validator
    /// identity keys, 3-of-5 FROST shares (trusted dealer), the signed
    /// genesis, and one folder per validator with its config, keys (0600)
    /// and a copy of the policy layer.
    Init(cli::genesis::InitArgs),
    /// Verify a genesis (signature, structure, policy digest) or a node's
    /// full genesis lock, and print a summary.
    Verify(cli::genesis::VerifyArgs),
    /// Re-issue this validator's TLS key and certificate from its identity
    /// key: a fresh TLS key, endorsed by the identity key for now..now+N
    /// days, written over the node's tls_key (0600) and tls_cert. Needs no
    /// membership change and no other validator; restart the node to use
    /// it. Run it before the old endorsement expires (peers and clients
    /// refuse an expired one).
    Tls(cli::genesis::TlsArgs),
}

/// `senatus bench ARGS`: every argument goes to `senatus-bench`.
#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Arguments for senatus-bench, e.g. --dir DIR --levels 1,16 --secs 5
    /// --no-etcd (see `senatus bench --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

#[derive(Debug, clap::Args)]
struct NodeArgs {
    /// The node's config file (node.toml written by `genesis init`).
    #[arg(long)]
    config: PathBuf,
    /// Verify the genesis lock, print it, and exit without serving.
    /// (Logging: set SENATUS_LOG, e.g. SENATUS_LOG=info.)
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match &cli.command {
        Command::Genesis(GenesisCommand::Init(a)) => cli::genesis::init(a),
        Command::Genesis(GenesisCommand::Verify(a)) => cli::genesis::verify(a),
        Command::Genesis(GenesisCommand::Tls(a)) => cli::genesis::tls(a),
        Command::Node(a) => run_node(a),
        Command::Ledger(c) => cli::ledger::run(c),
        Command::Status(a) => cli::ledger::status(a),
        Command::Testnet(c) => std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot locate the senatus executable: {e}"))
            .and_then(|exe| senatus_testnet::cli::run(c, &exe)),
        Command::Keygen(a) => cli::identity::keygen(a),
        Command::Agent(c) => cli::identity::run_agent(c),
        Command::Decide(a) => cli::gate::decide(a),
        Command::Present(a) => cli::gate::present_token(a),
        Command::Broker(c) => cli::gate::broker(c),
        Command::Amend(c) => cli::amend::run(c),
        Command::Seal(c) => cli::amend::run_seal(c),
        Command::Certificates(c) => cli::breach::run(c),
        Command::Replay(a) => cli::replay::run(a),
        Command::Bench(a) => run_bench(&a.args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("senatus: {e:#}");
            ExitCode::from(cli::gate::exit_code(&e))
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SENATUS_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    // Colour only on a terminal: log files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// The benchmark is a binary of its own (`senatus-bench`), so that this
/// one links neither the harness nor etcd's definitions: replaces this
/// process with the `senatus-bench` in this executable's directory, given
/// `args` and, unless they name one, `--senatus` this executable.
fn run_bench(args: &[OsString]) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot locate the senatus executable: {e}"))?;
    let bench = exe.with_file_name(BENCH_BIN);
    anyhow::ensure!(
        bench.is_file(),
        "senatus bench runs {BENCH_BIN}, which is not at {}: build it beside this \
         binary with `cargo build -p senatus-bench` (--release for a release senatus; \
         scripts/bench.sh builds both)",
        bench.display()
    );
    let names_senatus = args.iter().any(|a| {
        let a = a.as_encoded_bytes();
        a == b"--senatus" || a.starts_with(b"--senatus=")
    });
    let mut cmd = std::process::Command::new(&bench);
    if !names_senatus {
        cmd.arg("--senatus").arg(&exe);
    }
    let err = cmd.args(args).exec();
    Err(anyhow::anyhow!("running {}: {err}", bench.display()))
}

fn run_node(args: &NodeArgs) -> anyhow::Result<()> {
    // The lock is checked before any runtime or port exists.
    let material = senatus_genesis::lock::load_and_verify(&args.config)
        .map_err(|e| anyhow::anyhow!("genesis lock failed: {e}"))?;
    println!(
        "genesis lock verified: node {} chain {} policy {} lock {}",
        material.lock.node_id,
        material.genesis.body.chain_id,
        material.lock.policy_digest,
        material.lock.lock_digest
    );
    if args.check {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("senatus")
        .build()?;
    rt.block_on(senatus_node::runtime::run_until(
        material,
        shutdown_signal(),
    ))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
