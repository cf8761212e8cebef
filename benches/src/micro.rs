//! Micro-benchmarks: `SELECT 1` latency through Flight SQL, exchange throughput between
//! processes, and distributed planning time.

use crate::engines::{LocalCluster, OSPREY_PASSWORD};
use crate::report::geometric_mean;
use crate::suite::{Dataset, Suite};
use anyhow::{Context, Result};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use futures::TryStreamExt;
use osprey_engine::{
    ClusterChannels, DistributedPlannerOptions, ExchangeCompression, ExecutorResolver,
    coordinator_session_state, measure_exchange_stream,
};
use osprey_proto::ClusterSecret;
use osprey_tests::SqlClient;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Percentiles of a set of durations, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Number of samples.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (which must not be empty).
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let rank = |p: f64| {
            let index = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            ms(samples[index.clamp(1, samples.len()) - 1])
        };
        Self {
            samples: samples.len(),
            p50_ms: rank(50.0),
            p90_ms: rank(90.0),
            p99_ms: rank(99.0),
            max_ms: ms(*samples.last().expect("samples")),
            mean_ms: samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64,
        }
    }
}

/// `SELECT 1` round trips through Flight SQL against `osprey local`.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    /// What one sample is.
    pub what: String,
    /// Percentiles.
    pub latency: Percentiles,
    /// Whether p50 is at or below 2 ms.
    pub goal_met: bool,
}

/// Measures `SELECT 1` through Flight SQL: GetFlightInfo then DoGet, a fresh statement each
/// time, on one connection, after `warmup` unmeasured queries.
pub async fn select_one_latency(
    work_dir: &Path,
    iterations: usize,
    warmup: usize,
) -> Result<LatencyReport> {
    let data_dir = work_dir.join("latency");
    std::fs::create_dir_all(&data_dir)?;
    let cluster = LocalCluster::start(&data_dir, 2, 1, None)?;
    let result = async {
        let mut client = SqlClient::connect(cluster.addr, "admin", OSPREY_PASSWORD).await?;
        for _ in 0..warmup {
            client.query("SELECT 1").await?;
        }
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations.max(1) {
            let started = Instant::now();
            let (_, batches) = client.query("SELECT 1").await?;
            samples.push(started.elapsed());
            anyhow::ensure!(
                batches.iter().map(|b| b.num_rows()).sum::<usize>() == 1,
                "SELECT 1 did not return one row"
            );
        }
        let latency = Percentiles::of(samples);
        Ok::<_, anyhow::Error>(LatencyReport {
            what: "SELECT 1 via Flight SQL (GetFlightInfo + DoGet), osprey local, loopback"
                .to_string(),
            goal_met: latency.p50_ms <= 2.0,
            latency,
        })
    }
    .await;
    cluster.stop();
    result
}

impl LatencyReport {
    /// Markdown lines.
    pub fn markdown(&self) -> String {
        let l = &self.latency;
        format!(
            "## Latency: {}\n\n| samples | p50 ms | p90 ms | p99 ms | max ms | mean ms |\n\
             |---:|---:|---:|---:|---:|---:|\n| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n\n\
             Goal: `SELECT 1` p50 at or below 2 ms: **{}** ({:.3} ms).\n",
            self.what,
            l.samples,
            l.p50_ms,
            l.p90_ms,
            l.p99_ms,
            l.max_ms,
            l.mean_ms,
            if self.goal_met { "met" } else { "MISSED" },
            l.p50_ms
        )
    }
}

/// Throughput of one exchange stream from an executor process to this process.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeReport {
    /// Rows per stream.
    pub rows: u64,
    /// Rows per record batch (one exchange message each).
    pub batch_rows: usize,
    /// Bytes per stream as encoded on the wire (with no compression).
    pub bytes: u64,
    /// How fast the producer plan runs in one process, with no exchange: GB/s of Arrow memory.
    pub producer_only_gb_per_s: f64,
    /// Per compression setting.
    pub by_compression: Vec<ExchangeFigures>,
    /// Whether the uncompressed stream reaches 1.5 GB/s (median).
    pub goal_met: bool,
}

/// Figures of one compression setting.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeFigures {
    /// `none`, `lz4` or `zstd`.
    pub compression: String,
    /// Encoded bytes per stream.
    pub bytes: u64,
    /// Median wire throughput, GB/s (10^9 bytes).
    pub median_gb_per_s: f64,
    /// Best run.
    pub best_gb_per_s: f64,
    /// Median rows per second.
    pub median_rows_per_s: f64,
}

/// The producer stage: four 8-byte columns computed from `generate_series`, cheap to make and
/// serializable, so the stream is what gets measured.
async fn exchange_producer_plan(rows: u64, batch_rows: usize) -> Result<Arc<dyn ExecutionPlan>> {
    let config = SessionConfig::new()
        .with_target_partitions(1)
        .with_batch_size(batch_rows);
    let ctx = SessionContext::new_with_config(config);
    let frame = ctx
        .sql(&format!(
            "SELECT value AS a, value * 7 AS b, value + 13 AS c, CAST(value AS DOUBLE) AS d \
             FROM generate_series(1, {rows})"
        ))
        .await?;
    Ok(frame.create_physical_plan().await?)
}

/// Measures the executor-to-executor exchange on loopback: a real `osprey executor` process
/// runs a producer stage and this process pulls its output over the cluster's worker protocol
/// (one gRPC stream, Arrow IPC), as a consuming stage on another executor does.
pub async fn exchange_throughput(
    rows: u64,
    batch_rows: usize,
    runs: usize,
) -> Result<ExchangeReport> {
    // A fresh secret per run: only this process and its executor know it.
    let secret = {
        use std::hash::BuildHasher;
        let keys = std::collections::hash_map::RandomState::new();
        format!("bench-{:016x}{:016x}", keys.hash_one(1), keys.hash_one(2))
    };
    let (mut executor, addr) = crate::engines::spawn_osprey(
        &["executor", "--listen", "127.0.0.1:0", "--memory", "2GiB"],
        &[("OSPREY_CLUSTER_SECRET", secret.as_str())],
        "OSPREY_EXECUTOR_LISTENING ",
    )?;
    let result = measure_streams(addr, &secret, rows, batch_rows, runs).await;
    let _ = executor.kill();
    let _ = executor.wait();
    result
}

async fn measure_streams(
    addr: std::net::SocketAddr,
    secret: &str,
    rows: u64,
    batch_rows: usize,
    runs: usize,
) -> Result<ExchangeReport> {
    let url = url::Url::parse(&format!("http://{addr}"))?;
    let channels = ClusterChannels::new(ClusterSecret::new(secret)?);

    // Producer alone, in this process: the ceiling the stream is measured against.
    let plan = exchange_producer_plan(rows, batch_rows).await?;
    let started = Instant::now();
    let local_bytes = execute_stream(plan, SessionContext::new().task_ctx())?
        .try_fold(0usize, |sum, batch| async move {
            Ok(sum + batch.get_array_memory_size())
        })
        .await?;
    let producer_only_gb_per_s = local_bytes as f64 / started.elapsed().as_secs_f64() / 1e9;

    let mut by_compression = Vec::new();
    let mut uncompressed_bytes = 0;
    for compression in [ExchangeCompression::None, ExchangeCompression::Lz4] {
        let mut rates = Vec::new();
        let mut row_rates = Vec::new();
        let mut bytes = 0;
        // One warm-up stream (connection set-up), then the measured ones.
        for run in 0..=runs.max(1) {
            let plan = exchange_producer_plan(rows, batch_rows).await?;
            let figures = measure_exchange_stream(&channels, &url, plan, compression)
                .await
                .context("exchange stream failed")?;
            anyhow::ensure!(
                figures.rows == rows,
                "the stream delivered {} rows, expected {rows}",
                figures.rows
            );
            if run == 0 {
                continue;
            }
            bytes = figures.bytes;
            rates.push(figures.bytes as f64 / figures.elapsed.as_secs_f64() / 1e9);
            row_rates.push(figures.rows as f64 / figures.elapsed.as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        row_rates.sort_by(f64::total_cmp);
        if compression == ExchangeCompression::None {
            uncompressed_bytes = bytes;
        }
        by_compression.push(ExchangeFigures {
            compression: compression.to_string(),
            bytes,
            median_gb_per_s: rates[rates.len() / 2],
            best_gb_per_s: *rates.last().expect("runs"),
            median_rows_per_s: row_rates[row_rates.len() / 2],
        });
    }
    let goal_met = by_compression
        .first()
        .is_some_and(|f| f.median_gb_per_s >= 1.5);
    Ok(ExchangeReport {
        rows,
        batch_rows,
        bytes: uncompressed_bytes,
        producer_only_gb_per_s,
        by_compression,
        goal_met,
    })
}

impl ExchangeReport {
    /// Markdown lines.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## Exchange: one stream, executor process -> consumer, loopback\n\n\
             {} rows of 4 x 8-byte columns per stream in batches of {} rows ({:.2} GB on the \
             wire uncompressed). The producer alone, in one process, makes {:.2} GB/s.\n\n\
             | compression | bytes on the wire | median GB/s | best GB/s | median Mrows/s |\n\
             |---|---:|---:|---:|---:|\n",
            self.rows,
            self.batch_rows,
            self.bytes as f64 / 1e9,
            self.producer_only_gb_per_s
        );
        for f in &self.by_compression {
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} | {:.2} | {:.1} |",
                f.compression,
                crate::report::bytes(Some(f.bytes)),
                f.median_gb_per_s,
                f.best_gb_per_s,
                f.median_rows_per_s / 1e6
            );
        }
        let _ = writeln!(
            out,
            "\nGoal: exchange at or above 1.5 GB/s per stream (uncompressed, median): **{}**.",
            if self.goal_met { "met" } else { "MISSED" }
        );
        out
    }
}

/// Planning time of each query: single-process DataFusion against Osprey's distributed planner.
#[derive(Debug, Clone, Serialize)]
pub struct PlanningReport {
    /// Suite planned.
    pub suite: Suite,
    /// Per query.
    pub queries: Vec<PlanningQuery>,
    /// Percentiles of the distributed planner's times.
    pub distributed: Option<Percentiles>,
    /// Percentiles of DataFusion's.
    pub datafusion: Option<Percentiles>,
    /// Geometric mean of per-query ratios distributed / DataFusion.
    pub geomean_ratio: Option<f64>,
}

/// Planning time of one query, medians in milliseconds; `None` where planning failed.
#[derive(Debug, Clone, Serialize)]
pub struct PlanningQuery {
    /// Query number.
    pub query: usize,
    /// Single-process DataFusion.
    pub datafusion_ms: Option<f64>,
    /// Osprey's distributed planner.
    pub distributed_ms: Option<f64>,
    /// Why planning failed.
    pub error: Option<String>,
}

/// A fixed set of executor URLs: planning needs their number, not live executors.
struct PlannedExecutors(Vec<url::Url>);

impl ExecutorResolver for PlannedExecutors {
    fn live_executors(&self) -> Vec<url::Url> {
        self.0.clone()
    }
}

/// Times SQL-to-physical-plan (parse, analyse, optimise, physical planning, and for Osprey the
/// stage split for `executors` executors) of every query, median of `iterations`.
pub async fn planning_time(
    suite: Suite,
    dataset: &Dataset,
    queries: &[usize],
    executors: usize,
    iterations: usize,
) -> Result<PlanningReport> {
    let config = || SessionConfig::new().with_target_partitions(2);
    let datafusion = SessionContext::new_with_state(
        SessionStateBuilder::new()
            .with_config(config())
            .with_default_features()
            .build(),
    );
    let resolver = Arc::new(PlannedExecutors(
        (0..executors)
            .map(|i| url::Url::parse(&format!("http://127.0.0.1:{}", 1 + i)).expect("url"))
            .collect(),
    ));
    let distributed = SessionContext::new_with_state(coordinator_session_state(
        config(),
        Arc::new(RuntimeEnv::default()),
        resolver,
        ClusterChannels::new(ClusterSecret::new(osprey_tests::TEST_SECRET)?),
        &DistributedPlannerOptions::default(),
    )?);
    for (table, dir) in &dataset.tables {
        let location = format!("{}/", dir.display());
        for ctx in [&datafusion, &distributed] {
            ctx.register_parquet(table, &location, ParquetReadOptions::default())
                .await?;
        }
    }
    let mut rows = Vec::new();
    let (mut df_all, mut dist_all) = (Vec::new(), Vec::new());
    for &query in queries {
        let statements = crate::suite::statements(suite, query)?;
        let df = plan_median(&datafusion, &statements, iterations).await;
        let dist = plan_median(&distributed, &statements, iterations).await;
        let error = match (&df, &dist) {
            (Err(e), _) | (_, Err(e)) => Some(e.to_string()),
            _ => None,
        };
        let (df, dist) = (df.ok(), dist.ok());
        if let (Some(a), Some(b)) = (df, dist) {
            df_all.push(a);
            dist_all.push(b);
        }
        rows.push(PlanningQuery {
            query,
            datafusion_ms: df.map(|d| d.as_secs_f64() * 1000.0),
            distributed_ms: dist.map(|d| d.as_secs_f64() * 1000.0),
            error,
        });
    }
    let geomean_ratio = geometric_mean(
        df_all
            .iter()
            .zip(&dist_all)
            .map(|(a, b)| b.as_secs_f64() / a.as_secs_f64()),
    );
    Ok(PlanningReport {
        suite,
        queries: rows,
        distributed: (!dist_all.is_empty()).then(|| Percentiles::of(dist_all)),
        datafusion: (!df_all.is_empty()).then(|| Percentiles::of(df_all)),
        geomean_ratio,
    })
}

/// Plans every statement of a query (running the DDL ones, as a client would) and returns the
/// median planning time of the whole query.
async fn plan_median(
    ctx: &SessionContext,
    statements: &[String],
    iterations: usize,
) -> Result<Duration> {
    let mut samples = Vec::new();
    for _ in 0..=iterations.max(1) {
        let mut planning = Duration::ZERO;
        for statement in statements {
            let frame = ctx.sql(statement).await?;
            if frame.schema().fields().is_empty() {
                // DDL (q15's view): executed by `sql`; not a query to plan.
                continue;
            }
            let plan_started = Instant::now();
            frame.create_physical_plan().await?;
            planning += plan_started.elapsed();
        }
        samples.push(planning);
    }
    samples.remove(0); // warm-up
    samples.sort();
    Ok(samples[samples.len() / 2])
}

impl PlanningReport {
    /// Markdown lines.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## Planning time, {}: SQL to physical plan, median per query\n\n",
            self.suite.title()
        );
        let line = |name: &str, p: &Option<Percentiles>| match p {
            Some(p) => format!(
                "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
                p.samples, p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms
            ),
            None => format!("| {name} | 0 | - | - | - | - |\n"),
        };
        out.push_str("| planner | queries | p50 ms | p90 ms | p99 ms | max ms |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|\n");
        out.push_str(&line("DataFusion (one process)", &self.datafusion));
        out.push_str(&line("Osprey distributed planner", &self.distributed));
        if let Some(ratio) = self.geomean_ratio {
            let _ = writeln!(
                out,
                "\nGeometric mean of per-query ratios distributed / DataFusion: {ratio:.2}x."
            );
        }
        let failures: Vec<_> = self.queries.iter().filter(|q| q.error.is_some()).collect();
        if !failures.is_empty() {
            let _ = writeln!(out, "\nQueries that did not plan:\n");
            for q in failures {
                let error: String = q.error.as_deref().unwrap_or("").chars().take(200).collect();
                let _ = writeln!(out, "- q{}: {}", q.query, error.replace('\n', " "));
            }
        }
        out.push_str("\n| query | DataFusion ms | distributed ms |\n|---|---:|---:|\n");
        for q in &self.queries {
            let cell = |v: Option<f64>| v.map_or("failed".to_string(), |v| format!("{v:.2}"));
            let _ = writeln!(
                out,
                "| q{} | {} | {} |",
                q.query,
                cell(q.datafusion_ms),
                cell(q.distributed_ms)
            );
        }
        out
    }
}
