//! [`Testnet`]: a running local cluster and its fault injection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use senatus_genesis::Genesis;
use senatus_genesis::keys::SecretKey;
use senatus_proto::v1 as pb;
use senatus_proto::v1::senatus_client::SenatusClient;
use tonic::transport::Channel;

use crate::manifest::{MANIFEST_VERSION, Manifest, ManifestNode};
use crate::nodes::{NodeSpec, RaftOverrides, discover, patch_raft};
use crate::process::{self, START_MARKER, Signal};
use crate::rpc::{self, Head};

/// How often conditions are polled while waiting.
const POLL_MS: u64 = 20;
/// Longest wait for a node to exit after SIGTERM before SIGKILL.
pub(crate) const STOP_GRACE_MS: u64 = 10_000;
/// Longest a harness write may take (the node's own bound is about 7 s).
const WRITE_TIMEOUT_MS: u64 = 15_000;
/// Longest a `GetLedger` page may take.
const READ_TIMEOUT_MS: u64 = 5_000;
/// Entries asked for per `GetLedger` call (the node's cap).
const LEDGER_PAGE_ENTRIES: u32 = 1000;
/// Lines of a node's log quoted in an error.
const LOG_TAIL_LINES: usize = 15;

/// How [`Testnet::up`] starts a cluster.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// First port for a new ceremony (`genesis init --base-port`); free
    /// ports when `None`. Ignored when `genesis.json` already exists.
    pub base_port: Option<u16>,
    /// Written into every `node.toml` before the nodes start.
    pub raft: RaftOverrides,
    /// Longest wait for a leader and one ledger head on every node.
    pub ready_timeout: Duration,
    /// `SENATUS_LOG` for the nodes.
    pub log_filter: String,
    /// Start each node in its own process group, so it outlives the caller
    /// (the CLI's `up`); tests leave this off.
    pub detach: bool,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            base_port: None,
            raft: RaftOverrides::default(),
            ready_timeout: Duration::from_secs(20),
            log_filter: std::env::var("SENATUS_LOG").unwrap_or_else(|_| "info".into()),
            detach: false,
        }
    }
}

#[derive(Debug)]
enum Proc {
    NotStarted,
    Running(Child),
    Exited(ExitStatus),
}

#[derive(Debug)]
struct Slot {
    spec: NodeSpec,
    proc: Mutex<Proc>,
    channel: Channel,
    /// Extra environment for this node's next starts.
    env: Mutex<Vec<(String, String)>>,
}

/// A local cluster of `senatus node` processes started by this handle.
///
/// Dropping it kills every process it started (unless [`Testnet::detach`]
/// was called), so a failing test never leaks nodes.
#[derive(Debug)]
pub struct Testnet {
    dir: PathBuf,
    /// `dir/genesis.json`, loaded once; every channel is pinned to it.
    genesis: Arc<Genesis>,
    exe: PathBuf,
    log_filter: String,
    own_group: bool,
    slots: BTreeMap<u64, Slot>,
    detached: bool,
}

fn lock(p: &Mutex<Proc>) -> std::sync::MutexGuard<'_, Proc> {
    // A panic while holding the lock leaves a consistent enum behind.
    p.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Testnet {
    /// Makes a ceremony in `dir` if it has none (`senatus genesis init`),
    /// applies `opts.raft` to every `node.toml`, starts every node, records
    /// them in `dir/testnet.json`, and waits until all agree on a leader and
    /// report the same ledger head.
    ///
    /// Refuses to start while a previous `up` in `dir` still runs.
    pub async fn up(dir: &Path, senatus_exe: &Path, opts: UpOptions) -> anyhow::Result<Testnet> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir =
            std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
        let exe = std::path::absolute(senatus_exe)
            .with_context(|| format!("resolving {}", senatus_exe.display()))?;
        if let Some(m) = Manifest::load(&dir)? {
            let alive: Vec<String> = m
                .nodes
                .iter()
                .filter(|n| process::runs_config(n.pid, &n.config))
                .map(|n| format!("node {} pid {}", n.id, n.pid))
                .collect();
            anyhow::ensure!(
                alive.is_empty(),
                "a testnet already runs in {} ({}); stop it with `senatus testnet down --dir {}`",
                dir.display(),
                alive.join(", "),
                dir.display()
            );
        }
        if !dir.join("genesis.json").exists() {
            genesis_init(&exe, &dir, opts.base_port)?;
        }
        let genesis = rpc::load_genesis(&dir)?;
        let specs = discover(&dir)?;
        for s in &specs {
            patch_raft(&s.config, &opts.raft).with_context(|| format!("node {}", s.id))?;
        }
        let mut slots = BTreeMap::new();
        for spec in specs {
            let channel = rpc::api_channel(&genesis, spec.id, &spec.api)?;
            slots.insert(
                spec.id,
                Slot {
                    spec,
                    proc: Mutex::new(Proc::NotStarted),
                    channel,
                    env: Mutex::new(Vec::new()),
                },
            );
        }
        let net = Testnet {
            dir,
            genesis,
            exe,
            log_filter: opts.log_filter,
            own_group: opts.detach,
            slots,
            detached: false,
        };
        for id in net.ids() {
            net.spawn(id)?;
        }
        net.save_manifest()?;
        net.wait_ready(opts.ready_timeout).await?;
        Ok(net)
    }

    /// Leaves the nodes running after this handle is gone (the CLI's `up`);
    /// `down` stops them through `testnet.json`.
    pub fn detach(mut self) {
        self.detached = true;
    }

    /// The testnet directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The testnet's genesis (`dir/genesis.json`, verified), which every
    /// connection to its nodes' public API is TLS pinned to.
    pub fn genesis(&self) -> &Arc<Genesis> {
        &self.genesis
    }

    /// The path of the testnet's genesis, for a client that needs it
    /// (`--genesis`, `SENATUS_GENESIS`).
    pub fn genesis_path(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }

    /// Node ids, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.slots.keys().copied().collect()
    }

    fn slot(&self, id: u64) -> anyhow::Result<&Slot> {
        self.slots
            .get(&id)
            .ok_or_else(|| anyhow::anyhow!("no node {id} in {}", self.dir.display()))
    }

    /// Config, addresses, log and database path of node `id`.
    pub fn spec(&self, id: u64) -> anyhow::Result<&NodeSpec> {
        Ok(&self.slot(id)?.spec)
    }

    /// One line per node: id, pid, addresses, log.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (id, s) in &self.slots {
            let pid = self
                .pid(*id)
                .map_or_else(|| "not running".to_string(), |p| format!("pid {p}"));
            out.push_str(&format!(
                "node {id} ({pid}): api {} metrics http://{}/metrics peer {} log {}\n",
                s.spec.api,
                s.spec.metrics,
                s.spec.peer,
                s.spec.log.display()
            ));
        }
        out
    }

    fn spawn(&self, id: u64) -> anyhow::Result<()> {
        let slot = self.slot(id)?;
        let mut p = lock(&slot.proc);
        if let Proc::Running(c) = &mut *p
            && c.try_wait().ok().flatten().is_none()
        {
            anyhow::bail!("node {id} is already running (pid {})", c.id());
        }
        let env = slot
            .env
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let child = process::spawn_node(
            &self.exe,
            &slot.spec.config,
            &slot.spec.log,
            &self.log_filter,
            self.own_group,
            &env,
        )?;
        *p = Proc::Running(child);
        Ok(())
    }

    fn save_manifest(&self) -> anyhow::Result<()> {
        let nodes = self
            .slots
            .values()
            .filter_map(|s| {
                let pid = self.pid(s.spec.id)?;
                Some(ManifestNode {
                    id: s.spec.id,
                    pid,
                    config: s.spec.config.clone(),
                    peer: s.spec.peer.clone(),
                    api: s.spec.api.clone(),
                    metrics: s.spec.metrics.clone(),
                    log: s.spec.log.clone(),
                })
            })
            .collect();
        Manifest {
            version: MANIFEST_VERSION,
            senatus_exe: self.exe.clone(),
            nodes,
        }
        .save(&self.dir)
    }

    /// Sets an environment variable for node `id`'s next starts (e.g. a
    /// test-only fault switch); takes effect at the next [`Testnet::start`].
    pub fn set_env(&self, id: u64, key: &str, value: &str) -> anyhow::Result<()> {
        let slot = self.slot(id)?;
        let mut env = slot
            .env
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
        Ok(())
    }

    /// Pid of node `id` while its process runs.
    pub fn pid(&self, id: u64) -> Option<u32> {
        let slot = self.slots.get(&id)?;
        let mut p = lock(&slot.proc);
        if let Proc::Running(c) = &mut *p {
            match c.try_wait() {
                Ok(None) => return Some(c.id()),
                Ok(Some(st)) => *p = Proc::Exited(st),
                Err(_) => {}
            }
        }
        None
    }

    /// True while node `id`'s process runs.
    pub fn is_running(&self, id: u64) -> bool {
        self.pid(id).is_some()
    }

    /// Ids of the nodes whose processes run.
    pub fn running(&self) -> Vec<u64> {
        self.ids()
            .into_iter()
            .filter(|id| self.is_running(*id))
            .collect()
    }

    /// SIGKILL node `id` (a crash) and reap it.
    pub fn kill(&self, id: u64) -> anyhow::Result<()> {
        let slot = self.slot(id)?;
        let mut p = lock(&slot.proc);
        let Proc::Running(c) = &mut *p else {
            anyhow::bail!("node {id} is not running");
        };
        if let Some(st) = c.try_wait().context("checking node")? {
            *p = Proc::Exited(st);
            anyhow::bail!("node {id} had already exited ({st})");
        }
        c.kill().with_context(|| format!("killing node {id}"))?;
        let st = c.wait().with_context(|| format!("reaping node {id}"))?;
        *p = Proc::Exited(st);
        Ok(())
    }

    /// SIGTERM node `id` (a clean shutdown) and wait for it to exit;
    /// SIGKILL after 10 s. Returns its exit status.
    pub async fn stop(&self, id: u64) -> anyhow::Result<ExitStatus> {
        let pid = self
            .pid(id)
            .ok_or_else(|| anyhow::anyhow!("node {id} is not running"))?;
        process::signal(pid, Signal::Term)?;
        match self
            .wait_exit(id, Duration::from_millis(STOP_GRACE_MS))
            .await
        {
            Ok(st) => Ok(st),
            Err(_) => {
                self.kill(id)?;
                anyhow::bail!("node {id} ignored SIGTERM for {STOP_GRACE_MS} ms; killed")
            }
        }
    }

    /// Starts node `id` again (its log is appended to) and records the new
    /// pid in `testnet.json`. Does not wait for it to serve.
    pub fn start(&self, id: u64) -> anyhow::Result<()> {
        self.spawn(id)?;
        self.save_manifest()
    }

    /// Waits (bounded) for node `id`'s process to exit.
    pub async fn wait_exit(&self, id: u64, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let slot = self.slot(id)?;
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut p = lock(&slot.proc);
                match &mut *p {
                    Proc::NotStarted => anyhow::bail!("node {id} was never started"),
                    Proc::Exited(st) => return Ok(*st),
                    Proc::Running(c) => {
                        if let Some(st) = c.try_wait().context("checking node")? {
                            *p = Proc::Exited(st);
                            return Ok(st);
                        }
                    }
                }
            }
            if Instant::now() >= deadline {
                anyhow::bail!("node {id} still running after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
    }

    /// Everything node `id` wrote to its log since its newest start.
    pub fn last_run_log(&self, id: u64) -> anyhow::Result<String> {
        let path = &self.slot(id)?.spec.log;
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(match text.rfind(START_MARKER) {
            Some(i) => text[i..].to_string(),
            None => text,
        })
    }

    fn log_tail(&self, id: u64) -> String {
        let text = self.last_run_log(id).unwrap_or_else(|e| e.to_string());
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n    ")
    }

    /// A channel to node `id`'s public API over TLS pinned to genesis (the
    /// node must present validator `id`'s certificate); connects on first
    /// use, reconnects after restarts.
    pub fn channel(&self, id: u64) -> anyhow::Result<Channel> {
        Ok(self.slot(id)?.channel.clone())
    }

    /// A client for node `id`'s public API.
    pub fn client(&self, id: u64) -> anyhow::Result<SenatusClient<Channel>> {
        Ok(rpc::client(self.slot(id)?.channel.clone()))
    }

    /// `Status` of node `id` (bounded to 1 s).
    pub async fn status(&self, id: u64) -> anyhow::Result<pb::StatusReply> {
        rpc::status(self.slot(id)?.channel.clone())
            .await
            .map_err(|e| anyhow::anyhow!("status of node {id}: {e}"))
    }

    /// `Status` of every running node, concurrently.
    pub async fn statuses(&self) -> BTreeMap<u64, Result<pb::StatusReply, String>> {
        let nodes = self
            .running()
            .into_iter()
            .filter_map(|id| Some((id, self.slots.get(&id)?.channel.clone())))
            .collect();
        rpc::statuses(nodes).await
    }

    /// The node that says it leads (the highest term wins), among running
    /// nodes that answer.
    pub async fn leader(&self) -> Option<u64> {
        self.statuses()
            .await
            .values()
            .filter_map(|s| s.as_ref().ok())
            .filter(|s| s.role == "leader")
            .max_by_key(|s| s.term)
            .map(|s| s.node_id)
    }

    /// Waits (bounded) until every running node answers and all name the
    /// same leader in the same term; returns it.
    pub async fn wait_leader(&self, timeout: Duration) -> anyhow::Result<u64> {
        self.poll(timeout, "an agreed leader", |st| {
            let answers = all_answered(st)?;
            rpc::agreed_leader(answers.iter().copied())
        })
        .await
    }

    /// Waits (bounded) until every running node answers with the same
    /// ledger head; returns it.
    pub async fn wait_converged(&self, timeout: Duration) -> anyhow::Result<Head> {
        self.poll(timeout, "one ledger head on every running node", |st| {
            same_head(&all_answered(st)?)
        })
        .await
    }

    /// Waits until all nodes run, agree on a leader and on the ledger head.
    async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<(u64, Head)> {
        let n = self.slots.len();
        self.poll(
            timeout,
            "every node up, an agreed leader and one ledger head",
            |st| {
                let answers = all_answered(st)?;
                if answers.len() != n {
                    return None;
                }
                Some((
                    rpc::agreed_leader(answers.iter().copied())?,
                    same_head(&answers)?,
                ))
            },
        )
        .await
    }

    /// Polls `Status` of the running nodes until `f` accepts; on timeout
    /// the error shows every node's last answer and, for nodes that exited,
    /// the end of their log.
    async fn poll<T>(
        &self,
        timeout: Duration,
        what: &str,
        f: impl Fn(&BTreeMap<u64, Result<pb::StatusReply, String>>) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.statuses().await;
            if let Some(t) = f(&st) {
                return Ok(t);
            }
            if Instant::now() >= deadline {
                anyhow::bail!("no {what} within {timeout:?}:\n{}", self.explain(&st));
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
    }

    fn explain(&self, st: &BTreeMap<u64, Result<pb::StatusReply, String>>) -> String {
        let mut out = String::new();
        for id in self.ids() {
            let line = match st.get(&id) {
                Some(Ok(s)) => format!(
                    "  node {id}: {} term {} leader {} commit {} ledger {}",
                    s.role,
                    s.term,
                    s.leader_id,
                    s.commit_index,
                    Head::of(s)
                ),
                Some(Err(e)) => format!("  node {id}: running, no status: {e}"),
                None => format!(
                    "  node {id}: not running; log {}:\n    {}",
                    self.slots[&id].spec.log.display(),
                    self.log_tail(id)
                ),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// The key file of the example identity `name` (`agent-7`,
    /// `auditor-1`, ...) that `senatus genesis init` made for this testnet.
    pub fn client_key_path(&self, name: &str) -> PathBuf {
        self.dir.join("clients").join(format!("{name}.key"))
    }

    /// The key of the example identity `name`.
    pub fn client_key(&self, name: &str) -> anyhow::Result<SecretKey> {
        let path = self.client_key_path(name);
        SecretKey::read_client(&path)
            .map(|(k, _)| k)
            .with_context(|| format!("client key of {name}"))
    }

    /// `key`'s signature on a call of `method` with `body`, made now
    /// (docs/PROTOCOL.md 10.2).
    pub fn call_auth(&self, key: &SecretKey, method: &str, body: &[u8]) -> pb::CallAuth {
        let a = senatus_quorum::auth::CallAuth::sign(
            key.signing_key(),
            &self.genesis.digest(),
            method,
            body,
            now_ms(),
        );
        pb::CallAuth {
            key: a.key.0.to_vec(),
            signed_at_ms: a.signed_at_ms,
            signature: a.signature.to_vec(),
        }
    }

    /// Agent `agent`'s presentation of `token` to broker `broker` with
    /// `params_json`, made at `presented_at_ms` (docs/PROTOCOL.md 10.3).
    pub fn presentation(
        &self,
        agent: &str,
        token: &[u8],
        broker: &str,
        params_json: &str,
        presented_at_ms: u64,
    ) -> anyhow::Result<senatus_quorum::presentation::Presentation> {
        let key = self.client_key(agent)?;
        let token = senatus_quorum::token::Token::from_bytes(token)
            .map_err(|e| anyhow::anyhow!("token: {e}"))?;
        Ok(senatus_quorum::presentation::Presentation::sign(
            key.signing_key(),
            &token,
            broker,
            params_json,
            presented_at_ms,
        ))
    }

    /// A `Redeem` call by broker `broker` (its example key) carrying
    /// `presentation` as given.
    pub fn redeem_with(
        &self,
        broker: &str,
        token: &[u8],
        params_json: &str,
        presentation: Vec<u8>,
    ) -> anyhow::Result<pb::RedeemRequest> {
        let key = self.client_key(broker)?;
        Ok(pb::RedeemRequest {
            token: token.to_vec(),
            params_json: params_json.to_string(),
            auth: Some(self.call_auth(&key, "Redeem", &presentation)),
            presentation,
        })
    }

    /// The `Redeem` call an honest hand-off makes: the agent the token
    /// names (in the example registry an agent acts as its own name)
    /// presents it to `broker-1`, which redeems it with `params_json`.
    pub fn redeem_request(
        &self,
        token: &[u8],
        params_json: &str,
    ) -> anyhow::Result<pb::RedeemRequest> {
        let t = senatus_quorum::token::Token::from_bytes(token)
            .map_err(|e| anyhow::anyhow!("token: {e}"))?;
        let p = self.presentation(&t.payload.actor, token, "broker-1", params_json, now_ms())?;
        self.redeem_with("broker-1", token, params_json, p.encode())
    }

    /// Appends an operator record through node `via` (which forwards to the
    /// leader); the node's answer, or `DEADLINE_EXCEEDED` if it gives none
    /// within 15 s.
    pub async fn append_record(
        &self,
        via: u64,
        payload: Vec<u8>,
    ) -> Result<pb::WriteReply, tonic::Status> {
        let mut c = self
            .client(via)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let operator = self
            .client_key("operator-1")
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let auth = self.call_auth(&operator, "AppendRecord", &payload);
        let call = c.append_record(pb::AppendRecordRequest {
            payload,
            auth: Some(auth),
        });
        match tokio::time::timeout(Duration::from_millis(WRITE_TIMEOUT_MS), call).await {
            Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                "harness: node {via} gave no answer within {WRITE_TIMEOUT_MS} ms"
            ))),
            Ok(r) => r.map(tonic::Response::into_inner),
        }
    }

    /// Ledger entries `from..=to` as node `id` serves them (paged).
    pub async fn ledger(
        &self,
        id: u64,
        from: u64,
        to: u64,
    ) -> anyhow::Result<Vec<pb::LedgerEntry>> {
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let mut c = self.client(id)?;
        let auditor = self.client_key("auditor-1")?;
        let mut next = from;
        while next <= to {
            let body = senatus_quorum::auth::get_ledger_body(next, to, LEDGER_PAGE_ENTRIES);
            let call = c.get_ledger(pb::GetLedgerRequest {
                from: next,
                to,
                limit: LEDGER_PAGE_ENTRIES,
                auth: Some(self.call_auth(&auditor, "GetLedger", &body)),
            });
            let page = tokio::time::timeout(Duration::from_millis(READ_TIMEOUT_MS), call)
                .await
                .map_err(|_| {
                    anyhow::anyhow!("GetLedger on node {id}: no answer in {READ_TIMEOUT_MS} ms")
                })?
                .map_err(|s| {
                    anyhow::anyhow!(
                        "GetLedger [{next}, {to}] on node {id}: {:?}: {}",
                        s.code(),
                        s.message()
                    )
                })?
                .into_inner()
                .entries;
            let Some(last) = page.last() else { break };
            anyhow::ensure!(
                last.index >= next,
                "node {id} answered GetLedger from {next} with index {}",
                last.index
            );
            next = last.index + 1;
            out.extend(page);
        }
        Ok(out)
    }
}

/// Unix milliseconds now (the clock a client signs its calls with).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Every answer, or `None` if some running node did not answer.
fn all_answered(
    st: &BTreeMap<u64, Result<pb::StatusReply, String>>,
) -> Option<Vec<&pb::StatusReply>> {
    if st.is_empty() {
        return None;
    }
    st.values().map(|r| r.as_ref().ok()).collect()
}

/// The head shared by every answer, if they all agree.
fn same_head(answers: &[&pb::StatusReply]) -> Option<Head> {
    let first = Head::of(answers.first()?);
    answers
        .iter()
        .all(|s| Head::of(s) == first)
        .then_some(first)
}

/// Runs `senatus genesis init --out dir [--base-port P]`.
fn genesis_init(exe: &Path, dir: &Path, base_port: Option<u16>) -> anyhow::Result<()> {
    let mut cmd = Command::new(exe);
    cmd.args(["genesis", "init", "--out"]).arg(dir);
    if let Some(p) = base_port {
        cmd.args(["--base-port", &p.to_string()]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} genesis init", exe.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "`{} genesis init --out {}` failed ({}): {}",
        exe.display(),
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

impl Drop for Testnet {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        for slot in self.slots.values() {
            let mut p = lock(&slot.proc);
            if let Proc::Running(c) = &mut *p {
                let _ = c.kill();
                if let Ok(st) = c.wait() {
                    *p = Proc::Exited(st);
                }
            }
        }
        // Nothing recorded runs any more.
        let _ = Manifest::remove(&self.dir);
    }
}
