//! The operator's journey through the `senatus` binary on a real local
//! testnet: `testnet up`, `status`, `testnet status`, records appended,
//! `ledger verify --api` (healthy, and refusing another genesis), the
//! Prometheus `/metrics` endpoint, and `testnet down` stopping exactly the
//! processes `up` started. Every process the test starts is killed on the
//! way out, passed or failed.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const STEP_LIMIT: Duration = Duration::from_secs(90);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// Runs `senatus ARGS`, killed if it outlives [`STEP_LIMIT`].
fn senatus(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_senatus"))
        .args(args)
        .env("SENATUS_LOG", "warn")
        .env_remove("SENATUS_GENESIS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn senatus");
    let started = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > STEP_LIMIT {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("senatus {args:?} ran past {STEP_LIMIT:?}: {}", show(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn ok(args: &[&str]) -> String {
    let out = senatus(args);
    assert!(out.status.success(), "senatus {args:?}: {}", show(&out));
    text(&out.stdout)
}

/// The node processes recorded in the testnet manifest.
fn manifest(dir: &Path) -> Vec<(u64, u32, String, String)> {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("testnet.json")).expect("testnet.json"))
            .expect("manifest json");
    m["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["id"].as_u64().expect("id"),
                u32::try_from(n["pid"].as_u64().expect("pid")).expect("pid fits"),
                n["api"].as_str().expect("api").to_string(),
                n["metrics"].as_str().expect("metrics").to_string(),
            )
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie still has /proc/PID but state Z: it no longer runs.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Kills every recorded node on drop, so a failing assertion leaks nothing.
struct Reaper(Vec<u32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in &self.0 {
            if alive(*pid) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// A plain HTTP/1.0 GET on loopback: the status line and the body.
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect metrics");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let (head, body) = resp.split_once("\r\n\r\n").expect("http response");
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing in:\n{body}"))
}

#[test]
fn an_operator_runs_a_testnet_from_up_to_down() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let d = dir.to_str().expect("utf-8 path");

    let up = senatus(&["testnet", "up", "--dir", d]);
    // Whatever happened, kill what `up` recorded.
    let mut reaper = Reaper(Vec::new());
    if dir.join("testnet.json").exists() {
        reaper.0 = manifest(&dir).iter().map(|n| n.1).collect();
    }
    assert!(up.status.success(), "testnet up: {}", show(&up));
    let up_out = text(&up.stdout);
    let nodes = manifest(&dir);
    assert_eq!(nodes.len(), 5, "{nodes:?}");
    for (id, pid, api, _) in &nodes {
        assert!(alive(*pid), "node {id} (pid {pid}) is not running");
        assert!(
            up_out.contains(api.as_str()),
            "up names node {id}'s api: {up_out}"
        );
    }

    // Every node answers `status` (over TLS pinned to the testnet's
    // genesis), and `testnet status` shows one leader.
    let genesis = dir.join("genesis.json");
    let g = genesis.to_str().expect("path");
    for (id, _, api, _) in &nodes {
        let s = ok(&["status", "--api", api, "--genesis", g]);
        assert!(s.contains(&format!("node {id} ")), "{s}");
    }
    let st = ok(&["testnet", "status", "--dir", d]);
    let lines: Vec<&str> = st.lines().filter(|l| l.starts_with("node ")).collect();
    assert_eq!(lines.len(), 5, "{st}");
    let leaders = lines
        .iter()
        .filter(|l| l.contains(" leader    term"))
        .count();
    assert_eq!(leaders, 1, "one node reports the leader role: {st}");

    // Records through two different nodes, then the chain verified live.
    let operator = dir.join("clients/operator-1.key");
    let operator = operator.to_str().expect("path");
    let auditor = dir.join("clients/auditor-1.key");
    let auditor = auditor.to_str().expect("path");
    for (_, _, api, _) in nodes.iter().take(2) {
        let out = ok(&[
            "ledger",
            "append",
            "--key",
            operator,
            "--api",
            api,
            "--genesis",
            g,
            "operator record",
        ]);
        assert!(out.contains("appended ledger index"), "{out}");
    }
    ok(&["testnet", "wait", "--dir", d]);
    let verified = ok(&[
        "ledger",
        "verify",
        "--genesis",
        g,
        "--key",
        auditor,
        "--api",
        &nodes[4].2,
    ]);
    assert!(verified.contains("ledger OK: 2 entries"), "{verified}");

    // Against another cluster's genesis: the validator is not one of its
    // validators (TLS refuses before any entry is read), and the same
    // ledger, exported, is refused as another genesis's export.
    let other = tmp.path().join("other");
    ok(&["genesis", "init", "--out", other.to_str().expect("path")]);
    let foreign = other.join("genesis.json");
    let foreign = foreign.to_str().expect("path");
    let out = senatus(&[
        "ledger",
        "verify",
        "--genesis",
        foreign,
        "--key",
        auditor,
        "--api",
        &nodes[0].2,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("not a validator of the genesis given"),
        "the TLS refusal, in one line: {}",
        show(&out)
    );
    let export = tmp.path().join("ledger.jsonl");
    let export = export.to_str().expect("path");
    ok(&[
        "ledger",
        "export",
        "--genesis",
        g,
        "--key",
        auditor,
        "--api",
        &nodes[0].2,
        "--out",
        export,
    ]);
    let out = senatus(&["ledger", "verify", "--genesis", foreign, "--file", export]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("export is for genesis"),
        "names the genesis the export links to: {}",
        show(&out)
    );

    // Metrics: the Prometheus text format, with the values the API shows.
    let (_, _, _, metrics) = &nodes[2];
    let (status_line, body) = http_get(metrics, "/metrics");
    assert!(status_line.contains("200"), "{status_line}");
    assert_eq!(metric(&body, "senatus_node_id"), 3.0, "{body}");
    assert!(metric(&body, "senatus_raft_term") >= 1.0, "{body}");
    assert!(metric(&body, "senatus_ledger_head_index") >= 2.0, "{body}");
    assert!(metric(&body, "senatus_raft_applied_index") >= 2.0, "{body}");
    assert!(body.contains("# TYPE senatus_raft_term gauge"), "{body}");
    assert!(body.contains("senatus_requests_total{"), "{body}");
    let (status_line, _) = http_get(metrics, "/no-such-page");
    assert!(status_line.contains("404"), "{status_line}");

    // Down stops exactly the recorded processes.
    let down = ok(&["testnet", "down", "--dir", d]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while nodes.iter().any(|n| alive(n.1)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (id, pid, ..) in &nodes {
        assert!(!alive(*pid), "node {id} (pid {pid}) survived down: {down}");
    }
    let st = ok(&["testnet", "status", "--dir", d]);
    let down_lines = st.lines().filter(|l| l.contains(" down (")).count();
    assert_eq!(down_lines, 5, "{st}");
    reaper.0.clear();
}
