//! `down` and `status` of a testnet directory, usable from another process
//! than the one that ran `up`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use senatus_proto::v1 as pb;

use crate::manifest::Manifest;
use crate::nodes::discover;
use crate::process::{self, ProcState, Signal};
use crate::rpc::{self, Head};

/// How often `down` checks whether signalled processes exited.
const DOWN_POLL_MS: u64 = 50;
/// Longest wait for SIGKILLed processes to disappear.
const KILL_WAIT_MS: u64 = 5_000;

/// What `down` did to one recorded node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownOutcome {
    /// Exited after SIGTERM.
    Stopped,
    /// Ignored SIGTERM for the grace period; SIGKILLed.
    Killed,
    /// Was not running any more.
    NotRunning,
    /// The pid now belongs to another program; left alone.
    PidReused,
    /// Still alive even after SIGKILL (should not happen).
    Survived,
}

/// One line of `down`'s report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownReport {
    /// Validator id.
    pub id: u64,
    /// The recorded pid.
    pub pid: u32,
    /// What happened.
    pub outcome: DownOutcome,
}

impl std::fmt::Display for DownReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.outcome {
            DownOutcome::Stopped => "stopped",
            DownOutcome::Killed => "did not stop within the grace period; killed",
            DownOutcome::NotRunning => "was not running",
            DownOutcome::PidReused => "pid now runs another program; left alone",
            DownOutcome::Survived => "STILL RUNNING after SIGKILL",
        };
        write!(f, "node {} (pid {}): {what}", self.id, self.pid)
    }
}

/// Stops exactly the processes recorded in `dir/testnet.json`: each pid is
/// signalled only while its command line still names that node's config.
/// SIGTERM, then SIGKILL for those still running after `grace`. Removes the
/// manifest when none survives.
pub async fn down(dir: &Path, grace: Duration) -> anyhow::Result<Vec<DownReport>> {
    let m = Manifest::load(dir)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{} has no {}: no testnet was started there (or it is already down)",
            dir.display(),
            crate::MANIFEST_FILE
        )
    })?;
    let mut reports = Vec::new();
    let mut signalled = Vec::new();
    for n in &m.nodes {
        let outcome = if process::runs_config(n.pid, &n.config) {
            process::signal(n.pid, Signal::Term).with_context(|| format!("node {}", n.id))?;
            signalled.push(reports.len());
            DownOutcome::Stopped
        } else if process::proc_state(n.pid) == ProcState::Alive {
            DownOutcome::PidReused
        } else {
            DownOutcome::NotRunning
        };
        reports.push(DownReport {
            id: n.id,
            pid: n.pid,
            outcome,
        });
    }
    let gone = |r: &DownReport| process::proc_state(r.pid) != ProcState::Alive;
    let deadline = Instant::now() + grace;
    while signalled.iter().any(|i| !gone(&reports[*i])) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(DOWN_POLL_MS)).await;
    }
    let mut killed = Vec::new();
    for i in &signalled {
        let (id, pid) = (reports[*i].id, reports[*i].pid);
        // Checked again: only a process still running that node is killed.
        let config = &m
            .nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.config.clone());
        if let Some(config) = config
            && process::runs_config(pid, config)
        {
            process::signal(pid, Signal::Kill).with_context(|| format!("node {id}"))?;
            reports[*i].outcome = DownOutcome::Killed;
            killed.push(*i);
        }
    }
    let deadline = Instant::now() + Duration::from_millis(KILL_WAIT_MS);
    while killed.iter().any(|i| !gone(&reports[*i])) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(DOWN_POLL_MS)).await;
    }
    for i in killed {
        if !gone(&reports[i]) {
            reports[i].outcome = DownOutcome::Survived;
        }
    }
    if reports.iter().all(|r| r.outcome != DownOutcome::Survived) {
        Manifest::remove(dir)?;
    }
    Ok(reports)
}

/// One node's view in `status`.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// Validator id.
    pub id: u64,
    /// Its public API address.
    pub api: String,
    /// The pid recorded in `testnet.json`, if any.
    pub pid: Option<u32>,
    /// Its `Status` answer, or why there is none.
    pub status: Result<pb::StatusReply, String>,
}

impl std::fmt::Display for NodeView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pid = self.pid.map_or_else(|| "-".to_string(), |p| p.to_string());
        write!(f, "node {:<3} pid {pid:<8} api {:<21} ", self.id, self.api)?;
        match &self.status {
            Ok(s) => write!(
                f,
                "{:<9} term {:<4} leader {:<3} commit {:<7} ledger {}",
                s.role,
                s.term,
                s.leader_id,
                s.commit_index,
                Head::of(s)
            ),
            Err(e) => write!(f, "down ({e})"),
        }
    }
}

/// Asks every node of `dir` for its `Status` (bounded per node).
pub async fn status(dir: &Path) -> anyhow::Result<Vec<NodeView>> {
    let specs = discover(dir)?;
    let manifest = Manifest::load(dir)?;
    let pid_of = |id: u64| {
        manifest
            .as_ref()
            .and_then(|m| m.nodes.iter().find(|n| n.id == id))
            .map(|n| n.pid)
    };
    let genesis = rpc::load_genesis(dir)?;
    let mut nodes = Vec::new();
    for s in &specs {
        nodes.push((s.id, rpc::api_channel(&genesis, s.id, &s.api)?));
    }
    let mut answers = rpc::statuses(nodes).await;
    Ok(specs
        .iter()
        .map(|s| NodeView {
            id: s.id,
            api: s.api.clone(),
            pid: pid_of(s.id),
            status: answers
                .remove(&s.id)
                .unwrap_or_else(|| Err("status task failed".into())),
        })
        .collect())
}

/// Waits (bounded) until every node of `dir` answers `Status`, all name the
/// same leader in the same term, and all report the same ledger head.
/// Returns the leader and the head; on timeout the error lists each node.
pub async fn wait_healthy(dir: &Path, timeout: Duration) -> anyhow::Result<(u64, Head)> {
    let specs = discover(dir)?;
    let genesis = rpc::load_genesis(dir)?;
    let mut nodes = Vec::new();
    for s in &specs {
        nodes.push((s.id, rpc::api_channel(&genesis, s.id, &s.api)?));
    }
    let deadline = Instant::now() + timeout;
    loop {
        let answers = rpc::statuses(nodes.clone()).await;
        let ok: Vec<&pb::StatusReply> = answers.values().filter_map(|r| r.as_ref().ok()).collect();
        if ok.len() == specs.len()
            && let Some(leader) = rpc::agreed_leader(ok.iter().copied())
            && let Some(first) = ok.first()
            && ok.iter().all(|s| Head::of(s) == Head::of(first))
        {
            return Ok((leader, Head::of(first)));
        }
        if Instant::now() >= deadline {
            let lines: Vec<String> = answers
                .iter()
                .map(|(id, r)| match r {
                    Ok(s) => format!(
                        "  node {id}: {} term {} leader {} ledger {}",
                        s.role,
                        s.term,
                        s.leader_id,
                        Head::of(s)
                    ),
                    Err(e) => format!("  node {id}: {e}"),
                })
                .collect();
            anyhow::bail!(
                "testnet in {} not healthy within {timeout:?}:\n{}",
                dir.display(),
                lines.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(DOWN_POLL_MS)).await;
    }
}

/// Fault injection from another process: SIGKILLs node `id` of the testnet
/// in `dir` (a crash, no clean shutdown) if the pid recorded for it still
/// runs its config. Returns the pid killed.
pub async fn kill_node(dir: &Path, id: u64) -> anyhow::Result<u32> {
    let m = Manifest::load(dir)?
        .ok_or_else(|| anyhow::anyhow!("{} has no running testnet", dir.display()))?;
    let n = m.nodes.iter().find(|n| n.id == id).ok_or_else(|| {
        anyhow::anyhow!("node {id} is not part of the testnet in {}", dir.display())
    })?;
    anyhow::ensure!(
        process::runs_config(n.pid, &n.config),
        "node {id} (pid {}) is not running",
        n.pid
    );
    process::signal(n.pid, Signal::Kill).with_context(|| format!("node {id}"))?;
    let deadline = Instant::now() + Duration::from_millis(KILL_WAIT_MS);
    while process::proc_state(n.pid) == ProcState::Alive && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(DOWN_POLL_MS)).await;
    }
    anyhow::ensure!(
        process::proc_state(n.pid) != ProcState::Alive,
        "node {id} (pid {}) still runs after SIGKILL",
        n.pid
    );
    Ok(n.pid)
}

/// Starts node `id` of the testnet in `dir` again (detached, appending to
/// its log), records its new pid, and waits (bounded) until it answers
/// `Status`. Refuses while it still runs. Returns the new pid.
pub async fn start_node(
    dir: &Path,
    id: u64,
    log_filter: &str,
    timeout: Duration,
) -> anyhow::Result<u32> {
    let mut m = Manifest::load(dir)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{} has no testnet.json; start the whole testnet with `senatus testnet up`",
            dir.display()
        )
    })?;
    let spec = discover(dir)?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| anyhow::anyhow!("no node-{id}/node.toml in {}", dir.display()))?;
    if let Some(n) = m.nodes.iter().find(|n| n.id == id) {
        anyhow::ensure!(
            !process::runs_config(n.pid, &n.config),
            "node {id} already runs (pid {})",
            n.pid
        );
    }
    let child = process::spawn_node(
        &m.senatus_exe,
        &spec.config,
        &spec.log,
        log_filter,
        true,
        &[],
    )?;
    let pid = child.id();
    // The child runs in its own process group and is reaped by init once
    // this process exits; `down` finds it through the manifest.
    drop(child);
    let entry = crate::manifest::ManifestNode {
        id,
        pid,
        config: spec.config.clone(),
        peer: spec.peer.clone(),
        api: spec.api.clone(),
        metrics: spec.metrics.clone(),
        log: spec.log.clone(),
    };
    match m.nodes.iter_mut().find(|n| n.id == id) {
        Some(n) => *n = entry,
        None => {
            m.nodes.push(entry);
            m.nodes.sort_by_key(|n| n.id);
        }
    }
    m.save(dir)?;
    let channel = rpc::api_channel(&rpc::load_genesis(dir)?, id, &spec.api)?;
    let deadline = Instant::now() + timeout;
    loop {
        match rpc::status(channel.clone()).await {
            Ok(_) => return Ok(pid),
            Err(e) if Instant::now() >= deadline => anyhow::bail!(
                "node {id} (pid {pid}) gave no status within {timeout:?}: {e}; see {}",
                spec.log.display()
            ),
            Err(_) if process::proc_state(pid) != ProcState::Alive => anyhow::bail!(
                "node {id} (pid {pid}) exited during start; see {}",
                spec.log.display()
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(DOWN_POLL_MS)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt as _;
    use std::process::{Child, Command};

    use super::*;
    use crate::manifest::{MANIFEST_VERSION, ManifestNode};

    /// Test processes never outlive a failing test.
    struct KillOnDrop(Child);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn recorded(id: u64, pid: u32, config: &Path) -> ManifestNode {
        ManifestNode {
            id,
            pid,
            config: config.to_path_buf(),
            peer: String::new(),
            api: String::new(),
            metrics: String::new(),
            log: config.with_file_name("node.log"),
        }
    }

    #[tokio::test]
    async fn down_stops_only_processes_that_still_run_their_config() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mine = tmp.path().join("node-1/node.toml");
        let other = tmp.path().join("node-2/node.toml");
        // One process whose command line holds the path (as argv[0]).
        let spawn = |arg0: &Path| {
            KillOnDrop(
                Command::new("sleep")
                    .arg0(arg0)
                    .arg("60")
                    .spawn()
                    .expect("spawn sleep"),
            )
        };
        let mut ours = spawn(&mine);
        let mut foreign = spawn(&other);
        // Both command lines visible before `down` looks at them (bounded).
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(process::runs_config(ours.0.id(), &mine)
            && process::runs_config(foreign.0.id(), &other))
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let m = Manifest {
            version: MANIFEST_VERSION,
            senatus_exe: "senatus".into(),
            nodes: vec![
                recorded(1, ours.0.id(), &mine),
                // Recorded for node 3's config, but the pid runs node 2's:
                // as if the pid had been reused.
                recorded(3, foreign.0.id(), &tmp.path().join("node-3/node.toml")),
                recorded(4, u32::MAX - 1, &tmp.path().join("node-4/node.toml")),
            ],
        };
        m.save(tmp.path()).expect("save");

        let reports = down(tmp.path(), Duration::from_secs(5))
            .await
            .expect("down");
        let outcomes: Vec<_> = reports.iter().map(|r| (r.id, r.outcome)).collect();
        assert_eq!(
            outcomes,
            vec![
                (1, DownOutcome::Stopped),
                (3, DownOutcome::PidReused),
                (4, DownOutcome::NotRunning),
            ]
        );
        assert!(
            ours.0.wait().expect("wait").code().is_none(),
            "ended by a signal"
        );
        assert_eq!(foreign.0.try_wait().expect("try_wait"), None, "left alone");
        assert!(!Manifest::path(tmp.path()).exists());

        let err = down(tmp.path(), Duration::from_secs(1))
            .await
            .expect_err("nothing recorded");
        assert!(err.to_string().contains("no testnet.json"), "{err}");
    }
}
