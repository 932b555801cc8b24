//! `senatus-bench`: the benchmark (not a test), a binary of its own so the
//! validator binary links neither the harness nor etcd's definitions.
//! `senatus bench ARGS` runs this binary with the same ARGS.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use senatus_bench::gate_bench::{self, BenchArgs};

/// The validator binary the bench starts its testnets with, looked for
/// next to this executable unless `--senatus` names one.
const SENATUS_BIN: &str = "senatus";
/// Exit code of a failed run (the code `senatus` uses for errors that
/// carry none of their own).
const EXIT_FAILED: u8 = 2;

/// Benchmark (not a test): start a fresh local 5-validator testnet in
/// DIR, drive Decide at each concurrency level, measure broker
/// verifications/s on one core, then run the same load generator
/// against a 5-member etcd cluster (Debian's etcd-server, installed if
/// missing) and print a markdown report with the ratio and which
/// targets were met. Use a release build (scripts/bench.sh).
#[derive(Debug, Parser)]
#[command(name = "senatus-bench", version)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
    /// The `senatus` validator binary the testnets run (default: the
    /// `senatus` in this executable's directory).
    #[arg(long, value_name = "PATH")]
    senatus: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("senatus-bench: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let exe = senatus_exe(cli.senatus.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(gate_bench::run(&cli.bench, &exe))?;
    println!("{report}");
    Ok(())
}

/// The `senatus` executable to run: `given`, or `senatus` next to this
/// executable; an error naming the path when it is not a file.
fn senatus_exe(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        anyhow::ensure!(
            path.is_file(),
            "--senatus {}: no such file (the senatus validator binary)",
            path.display()
        );
        return Ok(path.to_path_buf());
    }
    let me = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot locate the senatus-bench executable: {e}"))?;
    let exe = me.with_file_name(SENATUS_BIN);
    anyhow::ensure!(
        exe.is_file(),
        "the senatus validator binary is not at {} (next to senatus-bench): build it \
         (`cargo build --release -p senatus-node`, or scripts/bench.sh) or name it with \
         --senatus PATH",
        exe.display()
    );
    Ok(exe)
}
