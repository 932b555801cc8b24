//! A closed-loop load generator: `c` workers, each issuing one operation,
//! waiting for its result, and issuing the next, for a bounded time or a
//! bounded number of operations.
//!
//! Closed loop means the offered load adapts to the system: throughput is
//! what the system sustains with `c` requests in flight, and latency is
//! measured per operation from issue to completion. It understates tail
//! latency compared with an open-loop (fixed arrival rate) generator when
//! the system stalls, because a stalled worker issues nothing; the report
//! says how many workers there were so readers can tell.
//!
//! Everything is bounded: the concurrency ([`CONCURRENCY_MAX`]), the run
//! ([`StopAfter`], at most [`RUN_MAX`]), each operation ([`LoadSpec::op_timeout`],
//! a timed-out operation counts as an error) and the error table
//! ([`ERROR_KINDS_MAX`] distinct messages of at most [`ERROR_MESSAGE_CHARS_MAX`]
//! characters).
//!
//! Time is `tokio::time::Instant`, so tests can pause the clock and get
//! exact, machine-independent numbers.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

/// Most workers one run may have.
pub const CONCURRENCY_MAX: usize = 4096;
/// Longest measured phase or warmup a run may ask for.
pub const RUN_MAX: Duration = Duration::from_secs(3600);
/// Distinct error messages kept per run; further kinds are counted under
/// [`ERROR_KIND_OTHER`].
pub const ERROR_KINDS_MAX: usize = 16;
/// Characters of an error message kept (longer ones are cut).
pub const ERROR_MESSAGE_CHARS_MAX: usize = 200;
/// The error kind that collects messages beyond [`ERROR_KINDS_MAX`].
pub const ERROR_KIND_OTHER: &str = "<other error kinds>";
/// The error message recorded for an operation that exceeded
/// [`LoadSpec::op_timeout`].
pub const ERROR_TIMEOUT: &str = "operation timed out";

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAfter {
    /// Workers start no operation after this much time has passed; the
    /// ones in flight finish (or time out) and are counted.
    Elapsed(Duration),
    /// Exactly this many operations are issued (successes plus errors).
    Ops(u64),
}

/// What one run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSpec {
    /// Workers, each with one operation in flight at a time.
    pub concurrency: usize,
    /// Time spent issuing operations before measuring (connections are
    /// opened, caches and leaders settle); those operations are not
    /// recorded. Zero skips the warmup.
    pub warmup: Duration,
    /// When the measured phase ends.
    pub stop: StopAfter,
    /// Longest one operation may take; a slower one is abandoned and
    /// counted as [`ERROR_TIMEOUT`].
    pub op_timeout: Duration,
}

impl LoadSpec {
    /// A spec measuring for `measure` after a warmup of `warmup`, with a
    /// 10 s operation timeout.
    pub fn timed(concurrency: usize, warmup: Duration, measure: Duration) -> LoadSpec {
        LoadSpec {
            concurrency,
            warmup,
            stop: StopAfter::Elapsed(measure),
            op_timeout: Duration::from_secs(10),
        }
    }

    /// Checks the bounds between and on the fields.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.concurrency == 0 || self.concurrency > CONCURRENCY_MAX {
            anyhow::bail!(
                "load: concurrency {} is outside 1..={CONCURRENCY_MAX}",
                self.concurrency
            );
        }
        if self.warmup > RUN_MAX {
            anyhow::bail!("load: warmup {:?} exceeds {RUN_MAX:?}", self.warmup);
        }
        match self.stop {
            StopAfter::Elapsed(d) if d.is_zero() || d > RUN_MAX => {
                anyhow::bail!("load: measured time {d:?} is outside (0, {RUN_MAX:?}]")
            }
            StopAfter::Ops(0) => anyhow::bail!("load: op count 0; ask for at least one"),
            _ => {}
        }
        if self.op_timeout.is_zero() || self.op_timeout > RUN_MAX {
            anyhow::bail!(
                "load: op timeout {:?} is outside (0, {RUN_MAX:?}]",
                self.op_timeout
            );
        }
        Ok(())
    }
}

/// The outcome of one measured phase.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// Workers.
    pub concurrency: usize,
    /// Operations that succeeded in the measured phase.
    pub ops: u64,
    /// Operations that failed (or timed out) in the measured phase.
    pub errors: u64,
    /// Failures by message, most frequent first; at most
    /// [`ERROR_KINDS_MAX`] + 1 rows (the last may be [`ERROR_KIND_OTHER`]).
    pub error_kinds: Vec<(String, u64)>,
    /// From the start of the measured phase until the last worker stopped.
    pub elapsed: Duration,
    /// Successful operations per second of `elapsed`.
    pub ops_per_s: f64,
    /// Latency of successful operations at the 50th percentile; zero when
    /// none succeeded (as are the other percentiles).
    pub p50: Duration,
    /// … at the 90th percentile.
    pub p90: Duration,
    /// … at the 99th percentile.
    pub p99: Duration,
    /// The slowest successful operation (exact, not bucketed).
    pub max: Duration,
}

/// Runs `spec` with `op(worker, seq)` as the operation and returns the
/// measured phase's report.
///
/// `worker` is in `0..concurrency`; `seq` counts that worker's operations
/// from 0 across warmup and measured phase, so `(worker, seq)` is unique
/// within a run (useful for keys). Only successful operations enter the
/// latency histogram; errors are counted by message. A panicking operation
/// is a bug in the caller and is re-raised here.
pub async fn run_load<F, Fut>(spec: &LoadSpec, op: F) -> anyhow::Result<LoadReport>
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    spec.validate()?;
    let op = Arc::new(op);
    let seqs: Arc<Vec<AtomicU64>> =
        Arc::new((0..spec.concurrency).map(|_| AtomicU64::new(0)).collect());
    if !spec.warmup.is_zero() {
        // Workers are fresh per phase: the warmup drains before measuring
        // starts, so no warmup operation overlaps the measured window.
        phase(spec, StopAfter::Elapsed(spec.warmup), &op, &seqs).await;
    }
    let start = Instant::now();
    let recorded = phase(spec, spec.stop, &op, &seqs).await;
    let elapsed = start.elapsed();
    Ok(recorded.into_report(spec.concurrency, elapsed))
}

/// What the workers of one phase recorded, merged.
struct Recorded {
    hist: Histogram,
    errors: ErrorTable,
}

impl Recorded {
    fn into_report(self, concurrency: usize, elapsed: Duration) -> LoadReport {
        let ops = self.hist.count();
        let secs = elapsed.as_secs_f64();
        LoadReport {
            concurrency,
            ops,
            errors: self.errors.total(),
            error_kinds: self.errors.rows(),
            elapsed,
            ops_per_s: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
            p50: self.hist.quantile(0.50),
            p90: self.hist.quantile(0.90),
            p99: self.hist.quantile(0.99),
            max: self.hist.max(),
        }
    }
}

/// Runs one phase's workers to completion and merges what they recorded.
async fn phase<F, Fut>(
    spec: &LoadSpec,
    stop: StopAfter,
    op: &Arc<F>,
    seqs: &Arc<Vec<AtomicU64>>,
) -> Recorded
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let deadline = match stop {
        StopAfter::Elapsed(d) => Some(Instant::now() + d),
        StopAfter::Ops(_) => None,
    };
    let budget = match stop {
        StopAfter::Elapsed(_) => None,
        StopAfter::Ops(n) => Some(n),
    };
    // Tickets for the op-count mode: a worker takes one before each op.
    let issued = Arc::new(AtomicU64::new(0));
    let op_timeout = spec.op_timeout;
    let mut workers = JoinSet::new();
    for w in 0..spec.concurrency {
        let op = Arc::clone(op);
        let seqs = Arc::clone(seqs);
        let issued = Arc::clone(&issued);
        workers.spawn(async move {
            let mut hist = Histogram::new();
            let mut errors = ErrorTable::new();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if budget.is_some_and(|n| issued.fetch_add(1, Ordering::Relaxed) >= n) {
                    break;
                }
                let seq = seqs[w].fetch_add(1, Ordering::Relaxed);
                let t0 = Instant::now();
                match tokio::time::timeout(op_timeout, op(w as u64, seq)).await {
                    Ok(Ok(())) => hist.record(t0.elapsed()),
                    Ok(Err(msg)) => errors.add(&msg),
                    Err(_) => errors.add(ERROR_TIMEOUT),
                }
            }
            (hist, errors)
        });
    }
    let mut hist = Histogram::new();
    let mut errors = ErrorTable::new();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok((h, e)) => {
                hist.merge(&h);
                errors.merge(&e);
            }
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => panic!("load worker cancelled: {err}"),
        }
    }
    Recorded { hist, errors }
}

/// Failure counts by message, bounded to [`ERROR_KINDS_MAX`] kinds.
#[derive(Debug, Clone, Default)]
struct ErrorTable {
    kinds: BTreeMap<String, u64>,
    other: u64,
}

impl ErrorTable {
    fn new() -> ErrorTable {
        ErrorTable::default()
    }

    fn add(&mut self, msg: &str) {
        self.add_n(msg, 1);
    }

    fn add_n(&mut self, msg: &str, n: u64) {
        let key: String = msg.chars().take(ERROR_MESSAGE_CHARS_MAX).collect();
        if let Some(count) = self.kinds.get_mut(&key) {
            *count += n;
        } else if self.kinds.len() < ERROR_KINDS_MAX {
            self.kinds.insert(key, n);
        } else {
            self.other += n;
        }
    }

    fn merge(&mut self, other: &ErrorTable) {
        for (msg, n) in &other.kinds {
            self.add_n(msg, *n);
        }
        self.other += other.other;
    }

    fn total(&self) -> u64 {
        self.kinds.values().sum::<u64>() + self.other
    }

    /// Most frequent first, ties by message; the overflow row last.
    fn rows(&self) -> Vec<(String, u64)> {
        let mut rows: Vec<(String, u64)> =
            self.kinds.iter().map(|(m, n)| (m.clone(), *n)).collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if self.other > 0 {
            rows.push((ERROR_KIND_OTHER.to_string(), self.other));
        }
        rows
    }
}

/// Values below this many microseconds get a bucket each (exact).
const EXACT_US: u64 = 1 << HIST_PRECISION_BITS;
/// Sub-buckets per power of two above [`EXACT_US`] is
/// `2^(HIST_PRECISION_BITS - 1)`, so a bucket is at most 1/64 (1.6 %) of
/// its values wide.
const HIST_PRECISION_BITS: u32 = 7;
/// Sub-buckets per power-of-two range.
const SUB_BUCKETS: u64 = 1 << (HIST_PRECISION_BITS - 1);
/// Buckets covering every `u64` microsecond value.
const BUCKETS: usize = (EXACT_US + (64 - HIST_PRECISION_BITS as u64) * SUB_BUCKETS) as usize;

/// A log-bucketed latency histogram with microsecond resolution.
///
/// Values below 128 µs get a bucket each; above, each power of two is
/// split into 64 buckets. A percentile is reported as the mean of the
/// values in the bucket that holds it, so it is exact when that bucket
/// holds one distinct value and within 1.6 % of the true value otherwise.
/// Fixed size (about 60 KiB); merging is addition.
#[derive(Clone)]
pub struct Histogram {
    /// Per bucket: values recorded.
    counts: Vec<u64>,
    /// Per bucket: sum of the values recorded, in µs.
    sums_us: Vec<u64>,
    count: u64,
    max_us: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("max_us", &self.max_us)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            sums_us: vec![0; BUCKETS],
            count: 0,
            max_us: 0,
        }
    }

    /// Records one value (rounded down to whole microseconds).
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let b = bucket_of(us);
        self.counts[b] += 1;
        self.sums_us[b] = self.sums_us[b].saturating_add(us);
        self.count += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        for (a, b) in self.sums_us.iter_mut().zip(&other.sums_us) {
            *a = a.saturating_add(*b);
        }
        self.count += other.count;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value recorded (exact); zero when empty.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    /// The nearest-rank `q` quantile (the `ceil(q * count)`-th smallest
    /// value), to bucket precision; `q` is clamped to `[0, 1]`. Zero when
    /// empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        // Nearest-rank: the ceil(q * n)-th smallest value, at least the 1st.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                // n > 0 here: seen only reaches rank >= 1 through a
                // non-empty bucket.
                return Duration::from_micros(self.sums_us[i] / n);
            }
        }
        unreachable!(
            "histogram count {} exceeds its buckets' sum {seen}",
            self.count
        )
    }
}

/// The bucket holding `us`.
fn bucket_of(us: u64) -> usize {
    if us < EXACT_US {
        return us as usize;
    }
    let top = 63 - u64::from(us.leading_zeros()); // >= HIST_PRECISION_BITS
    let shift = top - u64::from(HIST_PRECISION_BITS - 1);
    let sub = us >> shift; // in SUB_BUCKETS..2 * SUB_BUCKETS
    (EXACT_US + (top - u64::from(HIST_PRECISION_BITS)) * SUB_BUCKETS + (sub - SUB_BUCKETS)) as usize
}

/// The largest value that falls into bucket `i` (the tests check the
/// bucket layout with it).
#[cfg(test)]
fn bucket_upper(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT_US {
        return i;
    }
    let range = (i - EXACT_US) / SUB_BUCKETS;
    let sub = (i - EXACT_US) % SUB_BUCKETS + SUB_BUCKETS;
    let shift = range + 1;
    // (sub + 1) << shift drops its only set bit in the topmost bucket,
    // whose upper bound is then u64::MAX.
    ((sub + 1) << shift).wrapping_sub(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn buckets_are_exact_below_128_us_and_contain_their_values() {
        for us in 0..EXACT_US {
            assert_eq!(bucket_of(us), us as usize);
            assert_eq!(bucket_upper(us as usize), us);
        }
        let mut probes = vec![
            128,
            129,
            255,
            256,
            257,
            1_000,
            65_535,
            1 << 40,
            u64::MAX - 1,
            u64::MAX,
        ];
        probes.extend((7..64).map(|k| 1u64 << k));
        probes.extend((8..64).map(|k| (1u64 << k) - 1));
        for us in probes {
            let b = bucket_of(us);
            assert!(b < BUCKETS, "{us} -> bucket {b} out of range");
            assert!(bucket_upper(b) >= us, "{us} above its bucket's upper bound");
            if b > 0 {
                assert!(
                    bucket_upper(b - 1) < us,
                    "{us} also fits the previous bucket"
                );
            }
            // Width bound: upper - value < value / 64 + 1.
            assert!(
                bucket_upper(b) - us <= us / SUB_BUCKETS,
                "{us} bucket too wide"
            );
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn bucket_upper_bounds_increase_strictly() {
        for i in 1..BUCKETS {
            assert!(bucket_upper(i) > bucket_upper(i - 1), "bucket {i}");
        }
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let mut h = Histogram::new();
        // 1..=100 µs, exact buckets.
        for us in 1..=100 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile(0.0), Duration::from_micros(1));
        assert_eq!(h.quantile(0.5), Duration::from_micros(50));
        assert_eq!(h.quantile(0.9), Duration::from_micros(90));
        assert_eq!(h.quantile(0.99), Duration::from_micros(99));
        assert_eq!(h.quantile(1.0), Duration::from_micros(100));
        assert_eq!(h.quantile(7.0), Duration::from_micros(100), "q is clamped");
        assert_eq!(h.max(), Duration::from_micros(100));
    }

    #[test]
    fn quantiles_of_large_values_are_bucket_means() {
        let mut h = Histogram::new();
        h.record(ms(10));
        h.record(ms(20));
        assert_eq!(h.quantile(0.5), ms(10), "one value per bucket is exact");
        assert_eq!(h.quantile(1.0), ms(20));
        // 10.000 and 10.100 ms share a bucket (9.984..10.111 ms): the mean.
        h.record(Duration::from_micros(10_100));
        assert_eq!(bucket_of(10_000), bucket_of(10_100));
        assert_eq!(h.quantile(0.5), Duration::from_micros(10_050));
        assert_eq!(h.max(), ms(20));
    }

    #[test]
    fn empty_histogram_reports_zero() {
        let h = Histogram::new();
        assert_eq!(h.count(), 0);
        assert_eq!(h.quantile(0.99), Duration::ZERO);
        assert_eq!(h.max(), Duration::ZERO);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for _ in 0..9 {
            a.record(ms(1));
        }
        b.record(ms(5));
        a.merge(&b);
        assert_eq!(a.count(), 10);
        assert_eq!(a.quantile(0.9), ms(1));
        assert_eq!(a.quantile(0.91), ms(5));
        assert_eq!(a.max(), ms(5));
    }

    #[test]
    fn error_table_is_bounded_and_sorted() {
        let mut t = ErrorTable::new();
        for i in 0..(ERROR_KINDS_MAX + 5) {
            t.add(&format!("kind {i:02}"));
        }
        t.add("kind 03");
        t.add(&"x".repeat(ERROR_MESSAGE_CHARS_MAX + 50));
        assert_eq!(t.total(), (ERROR_KINDS_MAX + 7) as u64);
        let rows = t.rows();
        assert_eq!(rows.len(), ERROR_KINDS_MAX + 1);
        assert_eq!(rows[0], ("kind 03".to_string(), 2));
        assert_eq!(rows.last().unwrap(), &(ERROR_KIND_OTHER.to_string(), 6));
        assert!(
            rows.iter()
                .all(|(m, _)| m.chars().count() <= ERROR_MESSAGE_CHARS_MAX)
        );
    }

    #[test]
    fn invalid_specs_are_rejected_with_the_bad_value() {
        let ok = LoadSpec::timed(4, ms(0), ms(100));
        ok.validate().unwrap();
        let cases = [
            (
                LoadSpec {
                    concurrency: 0,
                    ..ok
                },
                "concurrency 0",
            ),
            (
                LoadSpec {
                    concurrency: CONCURRENCY_MAX + 1,
                    ..ok
                },
                "concurrency 4097",
            ),
            (
                LoadSpec {
                    stop: StopAfter::Ops(0),
                    ..ok
                },
                "op count 0",
            ),
            (
                LoadSpec {
                    stop: StopAfter::Elapsed(Duration::ZERO),
                    ..ok
                },
                "measured time 0ns",
            ),
            (
                LoadSpec {
                    warmup: RUN_MAX + ms(1),
                    ..ok
                },
                "warmup",
            ),
            (
                LoadSpec {
                    op_timeout: Duration::ZERO,
                    ..ok
                },
                "op timeout 0ns",
            ),
        ];
        for (spec, want) in cases {
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn op_count_run_is_exact_under_a_paused_clock() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&calls);
        let spec = LoadSpec {
            concurrency: 4,
            warmup: Duration::ZERO,
            stop: StopAfter::Ops(100),
            op_timeout: Duration::from_secs(1),
        };
        let report = run_load(&spec, move |_w, _s| {
            let c = Arc::clone(&c);
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(ms(10)).await;
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 100);
        assert_eq!(report.ops, 100);
        assert_eq!(report.errors, 0);
        assert_eq!(report.concurrency, 4);
        // 100 ops / 4 workers = 25 rounds of 10 ms.
        assert_eq!(report.elapsed, ms(250));
        assert!(
            (report.ops_per_s - 400.0).abs() < 1e-9,
            "{}",
            report.ops_per_s
        );
        assert_eq!(
            (report.p50, report.p90, report.p99, report.max),
            (ms(10), ms(10), ms(10), ms(10))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn timed_run_skips_warmup_and_gives_unique_worker_seq_pairs() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let spec = LoadSpec::timed(3, ms(50), ms(100));
        let report = run_load(&spec, move |w, seq| {
            s.lock().unwrap().push((w, seq));
            async move {
                // Worker 0 is slow, so percentiles differ.
                tokio::time::sleep(if w == 0 { ms(20) } else { ms(5) }).await;
                Ok(())
            }
        })
        .await
        .unwrap();
        // Warmup: 50 ms -> worker 0 does 3 ops (0, 20, 40; the third ends at
        // 60), workers 1 and 2 do 10 each. Measured 100 ms: 5 + 20 + 20.
        assert_eq!(report.ops, 45);
        assert_eq!(report.elapsed, ms(100));
        let mut pairs = seen.lock().unwrap().clone();
        let issued = pairs.len();
        assert_eq!(issued, 3 + 10 + 10 + 45);
        pairs.sort_unstable();
        pairs.dedup();
        assert_eq!(pairs.len(), issued, "(worker, seq) repeated");
        assert_eq!(report.p50, ms(5));
        assert_eq!(report.p90, ms(20));
        assert_eq!(report.max, ms(20));
        assert!(report.p50 <= report.p90 && report.p90 <= report.p99 && report.p99 <= report.max);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_and_timeouts_are_counted_not_timed() {
        let spec = LoadSpec {
            concurrency: 2,
            warmup: Duration::ZERO,
            stop: StopAfter::Ops(30),
            op_timeout: ms(100),
        };
        let report = run_load(&spec, |_w, seq| async move {
            match seq % 3 {
                0 => Ok(()),
                1 => Err("refused".to_string()),
                _ => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(())
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(report.ops + report.errors, 30);
        assert_eq!(report.ops, 10);
        assert_eq!(
            report.error_kinds,
            // Equal counts: ordered by message.
            vec![(ERROR_TIMEOUT.to_string(), 10), ("refused".to_string(), 10)]
        );
        // Ten timeouts of 100 ms per worker pair, five per worker.
        assert_eq!(report.elapsed, ms(500));
        assert_eq!(report.max, Duration::ZERO, "successes took no time");
    }

    #[tokio::test]
    async fn invalid_spec_fails_before_running() {
        let spec = LoadSpec::timed(0, ms(0), ms(10));
        let err = run_load(&spec, |_w, _s| async { Ok(()) })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("concurrency 0"), "{err}");
    }
}
