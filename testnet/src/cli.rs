//! `senatus testnet up|down|status`: a local five-validator cluster for
//! development and demos. The `senatus` binary embeds [`TestnetCommand`]
//! and calls [`run`] with its own path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;

use crate::nodes::RaftOverrides;
use crate::testnet::{STOP_GRACE_MS, Testnet, UpOptions};

/// Local testnet commands.
#[derive(Debug, Clone, Subcommand)]
pub enum TestnetCommand {
    /// Start a local cluster of validator processes on 127.0.0.1 and leave
    /// it running.
    ///
    /// Without DIR/genesis.json, runs `senatus genesis init --out DIR`
    /// first (five validators, free ports or --base-port). Then starts
    /// `senatus node --config DIR/node-<id>/node.toml` for every validator
    /// in the background, each logging to DIR/node-<id>/node.log, records
    /// the processes in DIR/testnet.json, waits until a leader is elected
    /// and every node reports the same ledger head, and prints the
    /// endpoints. Running `up` again on a stopped testnet restarts it with
    /// its data. Stop it with `senatus testnet down --dir DIR`.
    Up {
        /// Testnet directory (created if absent).
        #[arg(long)]
        dir: PathBuf,
        /// First port of a new ceremony: validator i gets peer
        /// base+10(i-1), api +1, metrics +2. Default: free ports.
        #[arg(long)]
        base_port: Option<u16>,
        /// Seconds to wait for a leader and one ledger head on every node.
        #[arg(long, default_value_t = 20)]
        timeout_s: u64,
        /// SENATUS_LOG filter for the nodes (default: $SENATUS_LOG, else
        /// "info").
        #[arg(long)]
        log: Option<String>,
        /// Write raft.heartbeat_ms into every node.toml.
        #[arg(long)]
        heartbeat_ms: Option<u64>,
        /// Write raft.election_timeout_min_ms into every node.toml.
        #[arg(long)]
        election_timeout_min_ms: Option<u64>,
        /// Write raft.election_timeout_max_ms into every node.toml.
        #[arg(long)]
        election_timeout_max_ms: Option<u64>,
        /// Write raft.snapshot_logs_since_last into every node.toml (a low
        /// value exercises snapshot transfer to lagging nodes).
        #[arg(long)]
        snapshot_logs_since_last: Option<u64>,
        /// Write raft.logs_kept_after_snapshot into every node.toml.
        #[arg(long)]
        logs_kept_after_snapshot: Option<u64>,
    },
    /// Stop the nodes a previous `up` started in DIR.
    ///
    /// Signals exactly the pids recorded in DIR/testnet.json, each only
    /// while its command line still names that node's config (a reused pid
    /// is left alone): SIGTERM, then SIGKILL for nodes still running after
    /// the grace period. Data is kept; `up` restarts the same cluster.
    Down {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
        /// Seconds to wait after SIGTERM before SIGKILL.
        #[arg(long, default_value_t = STOP_GRACE_MS / 1000)]
        grace_s: u64,
    },
    /// Show every node of DIR: role, term, leader, commit index and ledger
    /// head (index and short hash), or "down".
    Status {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Wait until every node of DIR answers, all agree on one leader and
    /// all report the same ledger head; print it. Fails after the timeout,
    /// listing what each node said.
    Wait {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
        /// Seconds to wait.
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
    },
    /// Fault injection: crash one node of a running testnet (SIGKILL, no
    /// clean shutdown). Only the pid recorded in DIR/testnet.json is
    /// signalled, and only while it still runs that node's config.
    Kill {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
        /// Validator id to crash.
        #[arg(long)]
        node: u64,
    },
    /// Start one stopped or crashed node of a testnet again (with its
    /// data), record its pid in DIR/testnet.json and wait until it answers.
    Start {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
        /// Validator id to start.
        #[arg(long)]
        node: u64,
        /// Seconds to wait for the node to answer Status.
        #[arg(long, default_value_t = 20)]
        timeout_s: u64,
        /// SENATUS_LOG filter for the node (default: $SENATUS_LOG, else
        /// "info").
        #[arg(long)]
        log: Option<String>,
    },
}

/// Runs `cmd`, starting nodes from `senatus_exe`.
pub fn run(cmd: &TestnetCommand, senatus_exe: &Path) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(cmd, senatus_exe))
}

async fn run_async(cmd: &TestnetCommand, senatus_exe: &Path) -> anyhow::Result<()> {
    match cmd {
        TestnetCommand::Up {
            dir,
            base_port,
            timeout_s,
            log,
            heartbeat_ms,
            election_timeout_min_ms,
            election_timeout_max_ms,
            snapshot_logs_since_last,
            logs_kept_after_snapshot,
        } => {
            let mut opts = UpOptions {
                base_port: *base_port,
                raft: RaftOverrides {
                    heartbeat_ms: *heartbeat_ms,
                    election_timeout_min_ms: *election_timeout_min_ms,
                    election_timeout_max_ms: *election_timeout_max_ms,
                    snapshot_logs_since_last: *snapshot_logs_since_last,
                    logs_kept_after_snapshot: *logs_kept_after_snapshot,
                },
                ready_timeout: Duration::from_secs(*timeout_s),
                detach: true,
                ..UpOptions::default()
            };
            if let Some(l) = log {
                opts.log_filter = l.clone();
            }
            // On any error the handle is dropped, which stops what it started.
            let net = Testnet::up(dir, senatus_exe, opts).await?;
            let leader = net.leader().await.unwrap_or(0);
            println!(
                "testnet up in {}: {} validators, leader {leader}",
                net.dir().display(),
                net.ids().len()
            );
            print!("{}", net.describe());
            println!(
                "clients: the public API is TLS pinned to genesis; export SENATUS_GENESIS={} (or pass --genesis)",
                net.genesis_path().display()
            );
            println!(
                "status: senatus testnet status --dir {}\nstop:   senatus testnet down --dir {}",
                net.dir().display(),
                net.dir().display()
            );
            net.detach();
            Ok(())
        }
        TestnetCommand::Down { dir, grace_s } => {
            let reports = crate::ops::down(dir, Duration::from_secs(*grace_s)).await?;
            for r in &reports {
                println!("{r}");
            }
            let survived = reports
                .iter()
                .filter(|r| r.outcome == crate::DownOutcome::Survived)
                .count();
            anyhow::ensure!(survived == 0, "{survived} node(s) still running");
            Ok(())
        }
        TestnetCommand::Wait { dir, timeout_s } => {
            let (leader, head) =
                crate::ops::wait_healthy(dir, Duration::from_secs(*timeout_s)).await?;
            println!("healthy: leader {leader}, every node at ledger head {head}");
            Ok(())
        }
        TestnetCommand::Kill { dir, node } => {
            let pid = crate::ops::kill_node(dir, *node).await?;
            println!("node {node} (pid {pid}): killed");
            Ok(())
        }
        TestnetCommand::Start {
            dir,
            node,
            timeout_s,
            log,
        } => {
            let filter = log
                .clone()
                .unwrap_or_else(|| UpOptions::default().log_filter);
            let pid = crate::ops::start_node(dir, *node, &filter, Duration::from_secs(*timeout_s))
                .await?;
            println!("node {node} (pid {pid}): started");
            Ok(())
        }
        TestnetCommand::Status { dir } => {
            for v in crate::ops::status(dir).await? {
                println!("{v}");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: TestnetCommand,
    }

    #[test]
    fn commands_parse_and_explain_themselves() {
        Cli::command().debug_assert();
        let c = Cli::try_parse_from([
            "t",
            "up",
            "--dir",
            "/tmp/x",
            "--snapshot-logs-since-last",
            "50",
        ])
        .expect("parse");
        match c.cmd {
            TestnetCommand::Up {
                dir,
                snapshot_logs_since_last,
                timeout_s,
                ..
            } => {
                assert_eq!(dir, PathBuf::from("/tmp/x"));
                assert_eq!(snapshot_logs_since_last, Some(50));
                assert_eq!(timeout_s, 20);
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(
            Cli::try_parse_from(["t", "down"]).is_err(),
            "--dir required"
        );
        for sub in ["up", "down", "status", "wait", "kill", "start"] {
            let mut cmd = Cli::command();
            let help = cmd
                .find_subcommand_mut(sub)
                .expect("subcommand")
                .render_long_help()
                .to_string();
            assert!(help.contains("--dir"), "{sub}: {help}");
            assert!(help.lines().count() > 6, "{sub} help too thin: {help}");
        }
    }
}
