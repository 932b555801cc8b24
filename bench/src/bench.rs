//! Benchmark series and their report: run the same closed-loop load at
//! several concurrency levels against a system, render the results as
//! markdown for `docs/BENCHMARKS.md`, and describe the machine they were
//! measured on.
//!
//! The baseline is etcd ([`run_etcd_series`]): plain puts spread
//! round-robin over every member's client endpoint, the way governed
//! agents spread `Decide` calls over the validators. Numbers from one run
//! on one machine are comparable with each other and with nothing else, so
//! a report always carries [`machine_description`].

use std::fmt::Write as _;
use std::future::Future;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::etcd::pb::kv_client::KvClient;
use crate::etcd::{self, EtcdCluster};
use crate::load::{LoadReport, LoadSpec, run_load};

/// Concurrency levels of the standard series.
pub const LEVELS: [usize; 4] = [1, 16, 64, 256];
/// Bytes of each value the etcd series writes.
pub const ETCD_VALUE_BYTES: usize = 64;
/// Most connections per etcd member a series may open.
pub const CONNS_PER_MEMBER_MAX: usize = 64;
/// Longest warmup before a level's measured phase.
const WARMUP_MAX: Duration = Duration::from_secs(2);

/// The warmup used before measuring for `per_level`: a fifth of it, at
/// most [`WARMUP_MAX`] (2 s).
pub fn warmup_for(per_level: Duration) -> Duration {
    (per_level / 5).min(WARMUP_MAX)
}

/// Runs `op` at each concurrency in `levels`, each for `per_level` after a
/// [`warmup_for`] warmup, one level after the other. `op` is the
/// operation factory [`run_load`] takes, shared by every level.
pub async fn run_series<F, Fut>(
    levels: &[usize],
    per_level: Duration,
    op: F,
) -> anyhow::Result<Vec<LoadReport>>
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let mut reports = Vec::with_capacity(levels.len());
    for &c in levels {
        let spec = LoadSpec::timed(c, warmup_for(per_level), per_level);
        let op = Arc::clone(&op);
        reports.push(run_load(&spec, move |w, s| op(w, s)).await?);
    }
    Ok(reports)
}

/// Puts against `cluster` at each concurrency in `levels` for `per_level`
/// (see [`run_series`]). Worker `w` writes through member `w mod n`, over
/// one of `conns_per_member` HTTP/2 connections to it (round-robin), so
/// workers share connections the way many agents in one process would.
/// Every put writes a fresh key (`bench/<c>/<worker>/<seq>`) with a
/// [`ETCD_VALUE_BYTES`]-byte value.
pub async fn run_etcd_series(
    cluster: &EtcdCluster,
    levels: &[usize],
    per_level: Duration,
    conns_per_member: usize,
) -> anyhow::Result<Vec<LoadReport>> {
    if conns_per_member == 0 || conns_per_member > CONNS_PER_MEMBER_MAX {
        anyhow::bail!(
            "etcd series: {conns_per_member} connections per member is outside \
             1..={CONNS_PER_MEMBER_MAX}"
        );
    }
    // [m0, m1, …, m0, m1, …]: index w mod len lands on member w mod n.
    let mut channels = Vec::new();
    for _ in 0..conns_per_member {
        channels.extend(cluster.channels()?);
    }
    if channels.is_empty() {
        anyhow::bail!("etcd series: the cluster has no members");
    }
    let value = vec![b'v'; ETCD_VALUE_BYTES];
    let mut reports = Vec::with_capacity(levels.len());
    for &c in levels {
        let channels = channels.clone();
        let value = value.clone();
        let level = run_series(&[c], per_level, move |w, seq| {
            let mut client = KvClient::new(channels[w as usize % channels.len()].clone());
            let key = format!("bench/{c}/{w}/{seq}").into_bytes();
            let value = value.clone();
            async move { etcd::put(&mut client, key, value).await.map(|_| ()) }
        })
        .await?;
        reports.extend(level);
    }
    Ok(reports)
}

/// An etcd baseline series and what it ran on.
#[derive(Debug, Clone)]
pub struct EtcdSeries {
    /// etcd's version.
    pub version: String,
    /// Members in the cluster.
    pub members: usize,
    /// Client connections per member.
    pub conns_per_member: usize,
    /// One report per level, in level order.
    pub reports: Vec<LoadReport>,
}

/// Starts a `members`-member etcd cluster under `dir`, runs
/// [`run_etcd_series`] against it and stops it (also when the series
/// fails).
pub async fn etcd_baseline(
    dir: &Path,
    members: usize,
    levels: &[usize],
    per_level: Duration,
    conns_per_member: usize,
) -> anyhow::Result<EtcdSeries> {
    let mut cluster = EtcdCluster::start(dir, members).await?;
    let reports = run_etcd_series(&cluster, levels, per_level, conns_per_member).await;
    let stopped = cluster.stop();
    let reports = reports?;
    stopped?;
    Ok(EtcdSeries {
        version: cluster.version().to_string(),
        members,
        conns_per_member,
        reports,
    })
}

/// A markdown section: `### title`, a table with one row per report
/// (throughput, latency percentiles in ms, counts), and the error kinds
/// of any level that had errors.
pub fn render_table(title: &str, reports: &[LoadReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(
        out,
        "| concurrency | ops/s | p50 ms | p90 ms | p99 ms | max ms | ops | errors | measured s |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {:.1} |",
            r.concurrency,
            r.ops_per_s,
            millis(r.p50),
            millis(r.p90),
            millis(r.p99),
            millis(r.max),
            r.ops,
            r.errors,
            r.elapsed.as_secs_f64()
        );
    }
    for r in reports.iter().filter(|r| r.errors > 0) {
        let _ = writeln!(out, "\nErrors at concurrency {}:\n", r.concurrency);
        for (msg, n) in &r.error_kinds {
            let _ = writeln!(out, "- {n} × `{}`", msg.replace('`', "'"));
        }
    }
    out
}

/// A markdown table comparing two series level by level (matched on
/// concurrency): both throughputs and p99s and the throughput ratio
/// `a / b`. Levels present in only one series are left out.
pub fn render_comparison(a_name: &str, a: &[LoadReport], b_name: &str, b: &[LoadReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| concurrency | {a_name} ops/s | {b_name} ops/s | {a_name} / {b_name} | {a_name} p99 ms | {b_name} p99 ms |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|");
    for ra in a {
        let Some(rb) = b.iter().find(|r| r.concurrency == ra.concurrency) else {
            continue;
        };
        let ratio = if rb.ops_per_s > 0.0 {
            format!("{:.2}", ra.ops_per_s / rb.ops_per_s)
        } else {
            "n/a".to_string()
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {ratio} | {} | {} |",
            ra.concurrency,
            ra.ops_per_s,
            rb.ops_per_s,
            millis(ra.p99),
            millis(rb.p99)
        );
    }
    out
}

/// Milliseconds with three decimals (the histogram's resolution is 1 µs).
fn millis(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// A markdown list describing this machine: CPU model and logical cores,
/// memory, OS, kernel, and rustc version where available ("unknown"
/// otherwise).
pub fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let rustc = Command::new("rustc")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    describe(&cpuinfo, &meminfo, &os_release, &kernel, cores, &rustc)
}

fn describe(
    cpuinfo: &str,
    meminfo: &str,
    os_release: &str,
    kernel: &str,
    cores: usize,
    rustc: &str,
) -> String {
    let or_unknown = |s: Option<String>| {
        s.filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into())
    };
    let cpu = or_unknown(field(cpuinfo, "model name", ':'));
    let mem = or_unknown(field(meminfo, "MemTotal", ':').and_then(|v| {
        let kib: f64 = v.split_whitespace().next()?.parse().ok()?;
        Some(format!("{:.1} GiB", kib / (1024.0 * 1024.0)))
    }));
    let os =
        or_unknown(field(os_release, "PRETTY_NAME", '=').map(|v| v.trim_matches('"').to_string()));
    let cores = if cores == 0 {
        "unknown".to_string()
    } else {
        cores.to_string()
    };
    format!(
        "- CPU: {cpu}, {cores} logical cores available\n- memory: {mem}\n- OS: {os}, kernel {}\n- rustc: {}\n",
        or_unknown(Some(kernel.to_string())),
        or_unknown(Some(rustc.to_string()))
    )
}

/// The value of the first `key<sep>value` line, trimmed.
fn field(text: &str, key: &str, sep: char) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(sep)?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn report(c: usize, ops_per_s: f64, errors: u64) -> LoadReport {
        LoadReport {
            concurrency: c,
            ops: 1000,
            errors,
            error_kinds: if errors > 0 {
                vec![("Unavailable: no `leader`".to_string(), errors)]
            } else {
                Vec::new()
            },
            elapsed: Duration::from_secs(5),
            ops_per_s,
            p50: Duration::from_micros(1_500),
            p90: Duration::from_micros(2_000),
            p99: Duration::from_micros(12_345),
            max: Duration::from_millis(40),
        }
    }

    #[test]
    fn warmup_is_a_fifth_capped_at_two_seconds() {
        assert_eq!(warmup_for(Duration::from_secs(5)), Duration::from_secs(1));
        assert_eq!(warmup_for(Duration::from_secs(60)), WARMUP_MAX);
    }

    #[test]
    fn table_has_a_row_per_level_and_lists_errors() {
        let t = render_table(
            "etcd 3.4.23, 5 members",
            &[report(1, 250.4, 0), report(16, 1999.6, 3)],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "### etcd 3.4.23, 5 members");
        assert_eq!(
            lines[4],
            "| 1 | 250 | 1.500 | 2.000 | 12.345 | 40.000 | 1000 | 0 | 5.0 |"
        );
        assert_eq!(
            lines[5],
            "| 16 | 2000 | 1.500 | 2.000 | 12.345 | 40.000 | 1000 | 3 | 5.0 |"
        );
        assert!(t.contains("Errors at concurrency 16:"), "{t}");
        assert!(t.contains("- 3 × `Unavailable: no 'leader'`"), "{t}");
        assert!(!t.contains("Errors at concurrency 1:"), "{t}");
    }

    #[test]
    fn comparison_matches_levels_and_divides() {
        let a = [
            report(1, 300.0, 0),
            report(16, 1000.0, 0),
            report(64, 10.0, 0),
        ];
        let b = [report(1, 200.0, 0), report(16, 0.0, 0)];
        let t = render_comparison("senatus", &a, "etcd", &b);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].contains("senatus / etcd"));
        assert_eq!(lines[2], "| 1 | 300 | 200 | 1.50 | 12.345 | 12.345 |");
        assert_eq!(lines[3], "| 16 | 1000 | 0 | n/a | 12.345 | 12.345 |");
    }

    #[test]
    fn machine_is_described_from_proc_files() {
        let d = describe(
            "processor\t: 0\nmodel name\t: AMD EPYC 7B13\n",
            "MemTotal:       24683520 kB\n",
            "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
            "6.1.0-18-amd64",
            2,
            "rustc 1.88.0",
        );
        assert_eq!(
            d,
            "- CPU: AMD EPYC 7B13, 2 logical cores available\n- memory: 23.5 GiB\n\
             - OS: Debian GNU/Linux 12 (bookworm), kernel 6.1.0-18-amd64\n- rustc: rustc 1.88.0\n"
        );
        let empty = describe("", "", "", "", 0, "");
        assert_eq!(empty.matches("unknown").count(), 6, "{empty}");
        // And the real machine yields something.
        assert!(machine_description().starts_with("- CPU: "));
    }

    #[tokio::test(start_paused = true)]
    async fn series_runs_each_level_in_order() {
        let reports = run_series(&[1, 4], Duration::from_millis(100), |_w, _s| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(())
        })
        .await
        .unwrap();
        let got: Vec<(usize, u64)> = reports.iter().map(|r| (r.concurrency, r.ops)).collect();
        assert_eq!(got, vec![(1, 10), (4, 40)]);
    }

    #[tokio::test]
    #[ignore = "starts 5 etcd processes and loads them; SENATUS_BENCH_SECS (default 5), \
                SENATUS_BENCH_LEVELS (default 1,16,64,256), SENATUS_BENCH_CONNS (per member, \
                default 1) tune it"]
    async fn etcd_baseline_series() {
        let env = |k: &str| std::env::var(k).ok();
        let secs: u64 = env("SENATUS_BENCH_SECS").map_or(5, |s| s.parse().unwrap());
        let conns: usize = env("SENATUS_BENCH_CONNS").map_or(1, |s| s.parse().unwrap());
        let levels: Vec<usize> = env("SENATUS_BENCH_LEVELS").map_or(LEVELS.to_vec(), |s| {
            s.split(',').map(|l| l.trim().parse().unwrap()).collect()
        });
        let dir = tempfile::tempdir().unwrap();
        let series = etcd_baseline(dir.path(), 5, &levels, Duration::from_secs(secs), conns)
            .await
            .unwrap();
        let title = format!(
            "etcd {} ({} members, {} connection(s) per member, puts of {ETCD_VALUE_BYTES} B)",
            series.version, series.members, series.conns_per_member
        );
        println!(
            "{}\n{}",
            machine_description(),
            render_table(&title, &series.reports)
        );
        assert_eq!(series.reports.len(), levels.len());
        for r in &series.reports {
            assert!(
                r.ops > 0,
                "no put succeeded at concurrency {}",
                r.concurrency
            );
            assert!(r.p50 <= r.p90 && r.p90 <= r.p99 && r.p99 <= r.max, "{r:?}");
        }
    }
}
