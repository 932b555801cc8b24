//! Prometheus text metrics: request counters and latency histograms kept
//! here, Raft and ledger gauges read live when scraped.
//!
//! Served over plain HTTP (`GET /metrics`) by a deliberately small server:
//! one request per connection, bounded request size and read time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS_S: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.5, 1.0,
];
/// Largest HTTP request head the metrics server reads.
pub const METRICS_REQUEST_BYTES_MAX: usize = 4096;
/// How long a scrape connection may take to send its request.
pub const METRICS_READ_TIMEOUT_MS: u64 = 2000;

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS_S.len()],
    count: u64,
    sum_s: f64,
}

/// Request counters and latency histograms, by method.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    peer_refusals: Mutex<BTreeMap<(u64, &'static str), u64>>,
}

/// Gauges read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// This node.
    pub node_id: u64,
    /// Raft term.
    pub term: u64,
    /// Current leader (0 if unknown).
    pub leader: u64,
    /// 1 if this node is the leader.
    pub is_leader: bool,
    /// Committed Raft log index.
    pub commit_index: u64,
    /// Applied Raft log index.
    pub applied_index: u64,
    /// Last Raft log index.
    pub last_log_index: u64,
    /// Ledger head index.
    pub ledger_index: u64,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, method: &'static str, code: tonic::Code, elapsed: Duration) {
        let code = code_name(code);
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method, code)).or_default() += 1;
        }
        let s = elapsed.as_secs_f64();
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(method).or_default();
            for (i, bound) in LATENCY_BUCKETS_S.iter().enumerate() {
                if s <= *bound {
                    h.buckets[i] += 1;
                }
            }
            h.count += 1;
            h.sum_s += s;
        }
    }

    /// Counts one message refused from authenticated validator `sender`
    /// (a lie nobody else could verify: see `crate::peer_guard`).
    pub fn peer_refused(&self, sender: u64, reason: &'static str) {
        if let Ok(mut m) = self.peer_refusals.lock() {
            *m.entry((sender, reason)).or_default() += 1;
        }
    }

    /// Renders everything in the Prometheus text format.
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            &mut out,
            "senatus_node_id",
            "This validator's id.",
            g.node_id,
        );
        gauge(&mut out, "senatus_raft_term", "Current Raft term.", g.term);
        gauge(
            &mut out,
            "senatus_raft_leader",
            "Current leader id (0 if unknown).",
            g.leader,
        );
        gauge(
            &mut out,
            "senatus_raft_is_leader",
            "1 if this node leads.",
            u64::from(g.is_leader),
        );
        gauge(
            &mut out,
            "senatus_raft_commit_index",
            "Committed Raft log index.",
            g.commit_index,
        );
        gauge(
            &mut out,
            "senatus_raft_applied_index",
            "Applied Raft log index.",
            g.applied_index,
        );
        gauge(
            &mut out,
            "senatus_raft_last_log_index",
            "Last Raft log index.",
            g.last_log_index,
        );
        gauge(
            &mut out,
            "senatus_ledger_head_index",
            "Ledger head index.",
            g.ledger_index,
        );

        let _ = writeln!(
            out,
            "# HELP senatus_requests_total Public API requests by method and gRPC code.\n# TYPE senatus_requests_total counter"
        );
        if let Ok(m) = self.requests.lock() {
            for ((method, code), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "senatus_requests_total{{method=\"{method}\",code=\"{code}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP senatus_request_seconds Public API latency by method.\n# TYPE senatus_request_seconds histogram"
        );
        if let Ok(m) = self.latency.lock() {
            for (method, h) in m.iter() {
                for (i, bound) in LATENCY_BUCKETS_S.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "senatus_request_seconds_bucket{{method=\"{method}\",le=\"{bound}\"}} {}",
                        h.buckets[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "senatus_request_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}} {}\nsenatus_request_seconds_sum{{method=\"{method}\"}} {}\nsenatus_request_seconds_count{{method=\"{method}\"}} {}",
                    h.count, h.sum_s, h.count
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP senatus_peer_refusals_total Messages refused from authenticated validators, by sender and reason.\n# TYPE senatus_peer_refusals_total counter"
        );
        if let Ok(m) = self.peer_refusals.lock() {
            for ((sender, reason), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "senatus_peer_refusals_total{{sender=\"{sender}\",reason=\"{reason}\"}} {n}"
                );
            }
        }
        out
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Serves `GET /metrics` until `shutdown` resolves; `render` is awaited
/// once per scrape.
pub async fn serve<F, G, R>(listener: TcpListener, render: G, shutdown: F)
where
    F: std::future::Future<Output = ()>,
    G: Fn() -> R + Clone + Send + Sync + 'static,
    R: std::future::Future<Output = String> + Send,
{
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => a,
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; METRICS_REQUEST_BYTES_MAX];
            let mut read = 0;
            let deadline = Duration::from_millis(METRICS_READ_TIMEOUT_MS);
            let head_done = tokio::time::timeout(deadline, async {
                while read < buf.len() {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => read += n,
                    }
                    if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        return true;
                    }
                }
                false
            })
            .await
            .unwrap_or(false);
            let response = if !head_done {
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            } else if buf[..read].starts_with(b"GET /metrics ") {
                let body = render().await;
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            };
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
