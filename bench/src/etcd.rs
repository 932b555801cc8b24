//! [`EtcdCluster`]: a local etcd cluster on loopback, the benchmark's
//! baseline for replicated writes.
//!
//! The members run Debian's `etcd-server` (3.4 in bookworm), installed on
//! first use with apt-get if `etcd` is not on `PATH`. They keep etcd's
//! default durability: every committed write is fsynced to the member's
//! WAL before it is acknowledged (no `--unsafe-no-fsync`), which is the
//! fair comparison for a ledger that must survive a crash. All other
//! settings are etcd's defaults too (100 ms heartbeat, 1 s election
//! timeout, 100,000-entry snapshot interval).
//!
//! Layout of the directory given to [`EtcdCluster::start`]:
//!
//! | path | what |
//! |---|---|
//! | `etcd-<i>/` | member `i`'s data directory (WAL and bbolt database) |
//! | `etcd-<i>.log` | member `i`'s stdout and stderr (zap JSON), appended per start |
//!
//! The handle kills exactly the processes it started, on [`EtcdCluster::stop`]
//! or on drop (so also when a benchmark panics). The members stay in the
//! caller's process group, so Ctrl-C on a terminal reaches them too; only a
//! SIGKILL of the caller can orphan them.
//!
//! On a host with systemd, installing the package also enables and starts
//! the distribution's own `etcd.service` on ports 2379/2380. It is not
//! ours, so it is left alone; our members listen on fresh ports and do not
//! conflict with it.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tonic::transport::{Channel, Endpoint};

use self::pb::kv_client::KvClient;
use self::pb::{PutRequest, PutResponse};

/// A client-only subset of etcd's v3 `KV` service (`etcdserverpb.KV/Put`),
/// generated from `bench/proto/etcd/kv.proto` (see `build.rs`).
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod pb {
    tonic::include_proto!("etcdserverpb");
}

/// Longest wait for a TCP connection to a member on loopback.
const CONNECT_TIMEOUT_MS: u64 = 1000;

/// A plaintext channel to an etcd member that connects on first use.
fn plain_channel(addr: &str) -> anyhow::Result<Channel> {
    let ep = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| anyhow::anyhow!("bad etcd address {addr}: {e}"))?
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .tcp_nodelay(true);
    Ok(ep.connect_lazy())
}

/// The Debian package that provides `etcd`.
pub const ETCD_PACKAGE: &str = "etcd-server";
/// Environment variable naming the `etcd` executable to use instead of
/// the one on `PATH` (not `ETCD_*`: etcd reads those itself).
pub const ETCD_EXE_ENV: &str = "SENATUS_BENCH_ETCD";
/// Most members a cluster may have.
pub const MEMBERS_MAX: usize = 9;
/// Longest wait for a started cluster to accept a write on every member.
const READY_TIMEOUT_MS: u64 = 30_000;
/// Longest one readiness probe may take.
const PROBE_TIMEOUT_MS: u64 = 2_000;
/// How often readiness is polled.
const POLL_MS: u64 = 50;
/// Fresh-port attempts before giving up (another process can take a port
/// between our probe and etcd's bind).
const START_ATTEMPTS: usize = 3;
/// Lines of a member's log quoted in an error.
const LOG_TAIL_LINES: usize = 15;
/// Prefix of the line written into a member's log before each start.
const START_MARKER: &str = "=== senatus-bench: starting etcd member";

/// One member of an [`EtcdCluster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    /// etcd member name (`m<i>`).
    pub name: String,
    /// Where clients connect (gRPC and HTTP, plaintext).
    pub client_addr: SocketAddr,
    /// Where the other members connect.
    pub peer_addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

/// A running local etcd cluster started by this handle.
#[derive(Debug)]
pub struct EtcdCluster {
    exe: PathBuf,
    version: String,
    members: Vec<EtcdMember>,
    /// Started processes not yet reaped, in member order.
    children: Vec<Child>,
}

impl EtcdCluster {
    /// Starts `members` etcd processes under `dir` as one new cluster (a
    /// static `--initial-cluster` on free loopback ports) and waits until
    /// a put succeeds through every member.
    ///
    /// Installs `etcd` first if needed (see [`ensure_etcd`]). `dir` is
    /// created if missing; the members' data directories in it must not
    /// exist yet.
    pub async fn start(dir: &Path, members: usize) -> anyhow::Result<EtcdCluster> {
        if members == 0 || members > MEMBERS_MAX {
            anyhow::bail!("etcd: {members} members is outside 1..={MEMBERS_MAX}");
        }
        let exe = tokio::task::spawn_blocking(ensure_etcd)
            .await
            .context("etcd: install task failed")??;
        let version = etcd_version(&exe)?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for i in 0..members {
            let data = data_dir(dir, i);
            if data.exists() {
                anyhow::bail!(
                    "etcd: data directory {} already exists; start in a fresh directory",
                    data.display()
                );
            }
        }
        let mut last_err = None;
        for attempt in 0..START_ATTEMPTS {
            let mut cluster = EtcdCluster {
                exe: exe.clone(),
                version: version.clone(),
                members: plan(dir, members)?,
                children: Vec::new(),
            };
            match cluster.launch(attempt).await {
                Ok(()) => return Ok(cluster),
                Err(e) => {
                    // Kill before removing the data the members write to.
                    cluster.stop().context("etcd: stopping a failed start")?;
                    for m in &cluster.members {
                        if m.data_dir.exists() {
                            std::fs::remove_dir_all(&m.data_dir).with_context(|| {
                                format!("removing {} after a failed start", m.data_dir.display())
                            })?;
                        }
                    }
                    last_err = Some(e.context(format!(
                        "etcd: start attempt {} of {START_ATTEMPTS}",
                        attempt + 1
                    )));
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("etcd: no start attempt ran")))
    }

    /// Spawns every member and waits until each one accepts a put.
    async fn launch(&mut self, attempt: usize) -> anyhow::Result<()> {
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer_addr))
            .collect::<Vec<_>>()
            .join(",");
        // A token unique to this start keeps members of an earlier,
        // half-dead attempt from joining this cluster.
        let token = format!(
            "senatus-bench-{}-{}-{attempt}",
            std::process::id(),
            unix_ms()
        );
        for m in &self.members {
            let child = spawn_member(&self.exe, m, &initial_cluster, &token)?;
            self.children.push(child);
        }
        let channels = self.channels()?;
        let mut ready = vec![false; self.members.len()];
        let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
        let mut last_probe_err = String::new();
        loop {
            for (i, child) in self.children.iter_mut().enumerate() {
                if let Some(status) = child.try_wait().context("etcd: checking a member")? {
                    let m = &self.members[i];
                    anyhow::bail!(
                        "etcd member {} exited during start ({status}); log {}:\n{}",
                        m.name,
                        m.log.display(),
                        log_tail(&m.log)
                    );
                }
            }
            for (i, ch) in channels.iter().enumerate() {
                if ready[i] {
                    continue;
                }
                let key = format!("senatus-bench/ready/{}", self.members[i].name);
                let mut client = KvClient::new(ch.clone());
                let probe = put(&mut client, key.into_bytes(), b"1".to_vec());
                match tokio::time::timeout(Duration::from_millis(PROBE_TIMEOUT_MS), probe).await {
                    Ok(Ok(_)) => ready[i] = true,
                    Ok(Err(e)) => last_probe_err = format!("{}: {e}", self.members[i].name),
                    Err(_) => {
                        last_probe_err = format!(
                            "{}: no answer within {PROBE_TIMEOUT_MS} ms",
                            self.members[i].name
                        )
                    }
                }
            }
            if ready.iter().all(|r| *r) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let m = &self.members[ready.iter().position(|r| !r).unwrap_or(0)];
                anyhow::bail!(
                    "etcd: cluster not writable through every member within {READY_TIMEOUT_MS} ms \
                     (last error {last_probe_err}); log {}:\n{}",
                    m.log.display(),
                    log_tail(&m.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
    }

    /// The `etcd` executable the members run.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// etcd's version, as `etcd --version` reports it (e.g. `3.4.23`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The members, in start order.
    pub fn members(&self) -> &[EtcdMember] {
        &self.members
    }

    /// One lazily connecting gRPC channel per member, in member order:
    /// plaintext, etcd's own client protocol as the baseline runs it.
    pub fn channels(&self) -> anyhow::Result<Vec<Channel>> {
        self.members
            .iter()
            .map(|m| plain_channel(&m.client_addr.to_string()))
            .collect()
    }

    /// Pids of the processes this handle started and has not reaped yet.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Kills (SIGKILL) and reaps every process this handle started. The
    /// data is disposable, so there is no graceful shutdown to wait for.
    /// Idempotent; errors name the member and leave nothing unattempted.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        for (i, mut child) in std::mem::take(&mut self.children).into_iter().enumerate() {
            let name = self.members.get(i).map_or("?", |m| m.name.as_str());
            match child.try_wait() {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => failures.push(format!("{name} (pid {}): {e}", child.id())),
            }
            if let Err(e) = child.kill() {
                failures.push(format!("kill {name} (pid {}): {e}", child.id()));
            }
            if let Err(e) = child.wait() {
                failures.push(format!("reap {name} (pid {}): {e}", child.id()));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("etcd: stopping members: {}", failures.join("; "))
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("senatus-bench: {e:#}");
        }
    }
}

/// Writes `value` under `key` through `client`; the error is one line
/// with the gRPC code.
pub async fn put(
    client: &mut KvClient<Channel>,
    key: Vec<u8>,
    value: Vec<u8>,
) -> Result<PutResponse, String> {
    let req = PutRequest {
        key,
        value,
        lease: 0,
    };
    match client.put(req).await {
        Ok(r) => Ok(r.into_inner()),
        Err(s) => Err(format!("{:?}: {}", s.code(), s.message())),
    }
}

/// The path of an `etcd` executable, installing Debian's
/// [`ETCD_PACKAGE`] with apt-get (non-interactively, through `sudo -n`
/// when not root) if none is on `PATH`. [`ETCD_EXE_ENV`] overrides the
/// search. Idempotent.
pub fn ensure_etcd() -> anyhow::Result<PathBuf> {
    if let Some(exe) = std::env::var_os(ETCD_EXE_ENV) {
        let exe = PathBuf::from(exe);
        if !is_executable(&exe) {
            anyhow::bail!("{ETCD_EXE_ENV}={} is not an executable file", exe.display());
        }
        return Ok(exe);
    }
    if let Some(exe) = find_on_path("etcd") {
        return Ok(exe);
    }
    let policy = Command::new("apt-cache")
        .args(["policy", ETCD_PACKAGE])
        .stdin(Stdio::null())
        .output()
        .context("etcd is not installed and apt-cache could not run (not Debian?)")?;
    let policy = String::from_utf8_lossy(&policy.stdout);
    let candidate = apt_candidate(&policy).ok_or_else(|| {
        anyhow::anyhow!(
            "etcd is not installed and apt has no {ETCD_PACKAGE} candidate; \
             install etcd 3.4+ or set {ETCD_EXE_ENV}"
        )
    })?;
    eprintln!("senatus-bench: installing {ETCD_PACKAGE} {candidate} with apt-get");
    let sudo = !is_root();
    apt_get(sudo, &["update", "-qq"])?;
    apt_get(
        sudo,
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            ETCD_PACKAGE,
        ],
    )?;
    find_on_path("etcd")
        .ok_or_else(|| anyhow::anyhow!("installed {ETCD_PACKAGE} but etcd is not on PATH"))
}

/// The version `exe --version` reports, e.g. `3.4.23`.
pub fn etcd_version(exe: &Path) -> anyhow::Result<String> {
    let out = Command::new(exe)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} --version", exe.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).ok_or_else(|| {
        anyhow::anyhow!(
            "{} --version printed no \"etcd Version:\" line: {:?}",
            exe.display(),
            text.trim()
        )
    })
}

/// `3.4.23` from `etcd Version: 3.4.23\nGit SHA: …`.
fn parse_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("etcd Version:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The `Candidate:` of `apt-cache policy` output, if there is one.
fn apt_candidate(policy: &str) -> Option<String> {
    policy
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && v != "(none)")
}

fn apt_get(sudo: bool, args: &[&str]) -> anyhow::Result<()> {
    let mut cmd = if sudo {
        let mut c = Command::new("sudo");
        c.args(["-n", "apt-get"]);
        c
    } else {
        Command::new("apt-get")
    };
    let out = cmd
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running apt-get {}", args.join(" ")))?;
    if !out.status.success() {
        anyhow::bail!(
            "apt-get {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn is_root() -> bool {
    // "Uid:\t<real>\t<effective>…" without libc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn data_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("etcd-{i}"))
}

/// Names, free loopback ports and paths for `n` members. All 2n probe
/// sockets are held until every port is chosen, so no two coincide.
fn plan(dir: &Path, n: usize) -> anyhow::Result<Vec<EtcdMember>> {
    let listeners = (0..2 * n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("etcd: finding free loopback ports")?;
    let addrs = listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<Result<Vec<_>, _>>()
        .context("etcd: reading probe socket addresses")?;
    drop(listeners);
    Ok((0..n)
        .map(|i| EtcdMember {
            name: format!("m{i}"),
            client_addr: addrs[2 * i],
            peer_addr: addrs[2 * i + 1],
            data_dir: data_dir(dir, i),
            log: dir.join(format!("etcd-{i}.log")),
        })
        .collect())
}

fn spawn_member(
    exe: &Path,
    m: &EtcdMember,
    initial_cluster: &str,
    token: &str,
) -> anyhow::Result<Child> {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&m.log)
        .with_context(|| format!("opening log {}", m.log.display()))?;
    writeln!(
        out,
        "{START_MARKER} {} client {} peer {} (unix ms {}) ===",
        m.name,
        m.client_addr,
        m.peer_addr,
        unix_ms()
    )
    .with_context(|| format!("writing log {}", m.log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("opening log {}", m.log.display()))?;
    let client_url = format!("http://{}", m.client_addr);
    let peer_url = format!("http://{}", m.peer_addr);
    let mut cmd = Command::new(exe);
    cmd.arg("--name")
        .arg(&m.name)
        .arg("--data-dir")
        .arg(&m.data_dir)
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", initial_cluster])
        .args(["--initial-cluster-state", "new"])
        .args(["--initial-cluster-token", token])
        .args(["--logger", "zap", "--log-outputs", "stderr"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // etcd reads ETCD_* variables as flags and refuses a flag given both
    // ways; the caller's environment must not configure our members.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ETCD_") {
            cmd.env_remove(k);
        }
    }
    cmd.spawn()
        .with_context(|| format!("starting {} for member {}", exe.display(), m.name))
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use senatus_testnet::{ProcState, proc_state};

    #[test]
    fn version_and_candidate_are_parsed() {
        let v = "etcd Version: 3.4.23\nGit SHA: Not provided\nGo Version: go1.19.8\n";
        assert_eq!(parse_version(v).as_deref(), Some("3.4.23"));
        assert_eq!(parse_version("etcdctl version: 3.4.23\n"), None);
        let policy = "etcd-server:\n  Installed: (none)\n  Candidate: 3.4.23-4+b4\n";
        assert_eq!(apt_candidate(policy).as_deref(), Some("3.4.23-4+b4"));
        assert_eq!(apt_candidate("etcd-server:\n  Candidate: (none)\n"), None);
        assert_eq!(apt_candidate(""), None);
    }

    #[test]
    fn plan_gives_distinct_loopback_ports_and_paths() {
        let dir = Path::new("/nonexistent/bench");
        let ms = plan(dir, 5).unwrap();
        let mut ports: Vec<u16> = ms
            .iter()
            .flat_map(|m| [m.client_addr.port(), m.peer_addr.port()])
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 10);
        assert!(ms.iter().all(|m| m.client_addr.ip().is_loopback()));
        assert_eq!(ms[3].name, "m3");
        assert_eq!(ms[3].data_dir, dir.join("etcd-3"));
        assert_eq!(ms[3].log, dir.join("etcd-3.log"));
    }

    #[tokio::test]
    async fn member_count_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for n in [0, MEMBERS_MAX + 1] {
            let err = EtcdCluster::start(dir.path(), n).await.unwrap_err();
            assert!(err.to_string().contains(&format!("{n} members")), "{err}");
        }
    }

    #[tokio::test]
    #[ignore = "starts 5 etcd processes (installs etcd-server with apt-get if missing)"]
    async fn five_members_start_accept_puts_and_stop_without_leaks() {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = EtcdCluster::start(dir.path(), 5).await.unwrap();
        let pids = cluster.pids();
        assert_eq!(pids.len(), 5);
        assert!(cluster.version().starts_with("3."), "{}", cluster.version());
        let mut revisions = Vec::new();
        for (i, ch) in cluster.channels().unwrap().into_iter().enumerate() {
            let r = put(
                &mut KvClient::new(ch),
                format!("k{i}").into_bytes(),
                b"v".to_vec(),
            )
            .await
            .unwrap();
            revisions.push(r.header.unwrap().revision);
        }
        assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
        // A second start in the same directory is refused, not clobbered.
        let err = EtcdCluster::start(dir.path(), 5).await.unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        cluster.stop().unwrap();
        assert!(cluster.pids().is_empty());
        for pid in pids {
            assert_eq!(
                proc_state(pid),
                ProcState::Gone,
                "etcd pid {pid} survived stop"
            );
        }
        cluster.stop().unwrap();
    }

    #[tokio::test]
    #[ignore = "starts 3 etcd processes (installs etcd-server with apt-get if missing)"]
    async fn drop_during_a_panic_kills_the_members() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = EtcdCluster::start(dir.path(), 3).await.unwrap();
        let pids = cluster.pids();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = cluster;
            panic!("benchmark failed");
        }));
        assert!(panicked.is_err());
        for pid in pids {
            assert_eq!(
                proc_state(pid),
                ProcState::Gone,
                "etcd pid {pid} survived a panic"
            );
        }
    }
}
