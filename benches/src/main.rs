//! `osprey-benches`: Osprey side by side with single-process DataFusion, DuckDB and other peers
//! on TPC-H and TPC-DS, plus latency, exchange and planning micro-benchmarks. Prints figures
//! and writes JSON, Markdown and SVG; it is not a test and never gates CI (but for `smoke`).

mod answers;
mod engines;
mod memory;
mod micro;
mod policy;
mod report;
mod suite;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use engines::{Engine, EngineSetup, EngineSpec};
use report::{EngineFigures, QueryFigures, Status, SuiteReport};
use std::path::{Path, PathBuf};
use std::time::Duration;
use suite::Suite;

/// Benchmarks Osprey against the engines a user would otherwise pick, on the same machine, in
/// the same run.
#[derive(Parser)]
#[command(
    name = "osprey-benches",
    about,
    after_help = "\
Build first, with the same profile as the osprey binary it starts:
  cargo build --release --workspace --bins
  benches/setup.sh                      # DuckDB, tpcgen-cli (and optionally PySpark) in a venv

Examples:
  osprey-benches suite --suite tpch --scale 1       # all engines, TPC-H SF1
  osprey-benches suite --suite tpch --scale 10 --engines osprey-2,datafusion,duckdb
  osprey-benches suite --suite tpcds --scale 1 --queries 3,7,19
  osprey-benches suite --suite tpch --scale 1 --engines osprey-2,osprey-2-iceberg
  osprey-benches latency                            # SELECT 1 p50/p99 through Flight SQL
  osprey-benches exchange                           # GB/s of one executor exchange stream
  osprey-benches planning                           # distributed planner time, TPC-DS
  osprey-benches policy --scale 1                   # row filter and masks vs none, TPC-H
  osprey-benches smoke                              # seconds-long check that the harness works

Results go to --out-dir (default target/bench-results) as <name>.json, .md and (suites) .svg."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A query suite on several engines: per-query median/min/max, answers checked against
    /// DuckDB, totals, geometric means, ratios, bytes exchanged, peak memory, chart.
    Suite(SuiteArgs),
    /// Round-trip latency of `SELECT 1` through Flight SQL: p50 and p99.
    Latency {
        /// Measured queries.
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Throughput of one executor-to-consumer exchange stream on loopback, in GB/s.
    Exchange {
        /// Rows per stream (4 x 8-byte columns each).
        #[arg(long, default_value_t = 40_000_000)]
        rows: u64,
        /// Rows per record batch, i.e. per exchange message (DataFusion's default is 8192).
        #[arg(long, default_value_t = 8192)]
        batch_rows: usize,
        /// Measured streams per compression setting, after one warm-up.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Time from SQL to distributed physical plan, per TPC-DS query, against DataFusion's.
    Planning {
        /// Suite to plan.
        #[arg(long, value_enum, default_value_t = Suite::Tpcds)]
        suite: Suite,
        /// Scale of the data the tables point at (file listing and statistics are part of
        /// planning).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Executors the plans are split for.
        #[arg(long, default_value_t = 2)]
        executors: usize,
        /// Measured plannings per query, after one warm-up.
        #[arg(long, default_value_t = 5)]
        iterations: usize,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// What row filters and column masks cost: TPC-H as a user whose `lineitem` has a row
    /// filter and two masks (that keep every row and value) against one with none, on the
    /// same cluster; answers checked equal.
    Policy {
        /// TPC-H scale factor.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Timed runs per query and user, after one warm-up each.
        #[arg(long, default_value_t = 3)]
        iterations: usize,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// A seconds-long run of the harness itself for CI: TPC-H SF0.01 q1 and q6 on Osprey with
    /// DataFusion's answers as reference, then short latency and exchange runs. Fails on any
    /// failed query, wrong answer or missing output.
    Smoke {
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Args, Clone)]
struct SuiteArgs {
    /// Which suite.
    #[arg(long, value_enum, default_value_t = Suite::Tpch)]
    suite: Suite,
    /// Scale factor (1 is about 1 GB of raw data).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Engines, in the order they run each query. Engines that cannot start (not installed)
    /// are reported as skipped, with the reason.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "osprey-1,osprey-2,datafusion,duckdb,spark,ballista"
    )]
    engines: Vec<EngineSpec>,
    /// Timed runs per query, after one warm-up run; the median is reported.
    #[arg(long, default_value_t = 3)]
    iterations: usize,
    /// Only these queries (e.g. 1,3,18); all by default.
    #[arg(long, value_delimiter = ',')]
    queries: Vec<usize>,
    /// A run of one query longer than this counts as failed.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Memory pool of each Osprey executor (e.g. 8GiB); `osprey local`'s default otherwise.
    /// DataFusion and DuckDB run with their own defaults (no limit, 80% of RAM).
    #[arg(long, value_name = "SIZE")]
    osprey_executor_memory: Option<String>,
    /// Skip the extra EXPLAIN ANALYZE run per query that measures Osprey's exchanged bytes.
    #[arg(long)]
    no_exchange_bytes: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Clone)]
struct CommonArgs {
    /// CPUs to pin every engine to (all processes started inherit it); all by default.
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    /// Threads each engine gets in total; the number of pinned CPUs by default.
    #[arg(long)]
    threads: Option<usize>,
    /// Where generated data is cached between runs.
    #[arg(long, default_value = "target/bench-data")]
    data_dir: PathBuf,
    /// Where results are written.
    #[arg(long, default_value = "target/bench-results")]
    out_dir: PathBuf,
    /// Python of the venv that has DuckDB and tpcgen-cli (benches/setup.sh makes one).
    /// Default: $OSPREY_BENCH_PYTHON, else ~/.cache/osprey/bench-venv/bin/python, else python3.
    #[arg(long)]
    python: Option<PathBuf>,
}

impl CommonArgs {
    fn cpus(&self) -> Vec<usize> {
        if self.cpus.is_empty() {
            (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
        } else {
            self.cpus.clone()
        }
    }

    fn threads(&self) -> usize {
        self.threads.unwrap_or(self.cpus().len()).max(1)
    }

    fn python(&self) -> PathBuf {
        if let Some(python) = &self.python {
            return python.clone();
        }
        if let Some(python) = std::env::var_os("OSPREY_BENCH_PYTHON") {
            return PathBuf::from(python);
        }
        let venv = std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cache/osprey/bench-venv/bin/python"));
        match venv {
            Some(path) if path.exists() => path,
            _ => PathBuf::from("python3"),
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let common = match &cli.command {
        Command::Suite(args) => &args.common,
        Command::Latency { common, .. }
        | Command::Exchange { common, .. }
        | Command::Planning { common, .. }
        | Command::Policy { common, .. }
        | Command::Smoke { common } => common,
    };
    // Before any thread exists, so that every thread and child process inherits it.
    memory::pin_to_cpus(&common.cpus()).context("cannot pin to the CPUs given")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(common.threads())
        .enable_all()
        .build()?;
    std::fs::create_dir_all(&common.out_dir)?;
    runtime.block_on(async {
        match cli.command {
            Command::Suite(args) => {
                let report = run_suite(&args).await?;
                write_suite_outputs(&report, &args.common.out_dir)?;
                Ok(())
            }
            Command::Latency { iterations, common } => {
                let report = micro::select_one_latency(&common.out_dir, iterations, 200).await?;
                write_outputs(
                    &common.out_dir,
                    "latency",
                    &report.markdown(),
                    &serde_json::to_string_pretty(&report)?,
                )
            }
            Command::Exchange {
                rows,
                batch_rows,
                runs,
                common,
            } => {
                let report = micro::exchange_throughput(rows, batch_rows, runs).await?;
                write_outputs(
                    &common.out_dir,
                    "exchange",
                    &report.markdown(),
                    &serde_json::to_string_pretty(&report)?,
                )
            }
            Command::Planning {
                suite,
                scale,
                executors,
                iterations,
                common,
            } => {
                let dataset =
                    suite::ensure_dataset(suite, &common.data_dir, scale, &common.python()).await?;
                let queries: Vec<usize> = (1..=suite.query_count()).collect();
                let report =
                    micro::planning_time(suite, &dataset, &queries, executors, iterations).await?;
                write_outputs(
                    &common.out_dir,
                    &format!("planning-{}", suite.name()),
                    &report.markdown(),
                    &serde_json::to_string_pretty(&report)?,
                )
            }
            Command::Policy {
                scale,
                iterations,
                common,
            } => {
                let dataset =
                    suite::ensure_dataset(Suite::Tpch, &common.data_dir, scale, &common.python())
                        .await?;
                let report = policy::policy_overhead(
                    &dataset,
                    scale,
                    &common.out_dir,
                    common.threads(),
                    iterations,
                )
                .await?;
                write_outputs(
                    &common.out_dir,
                    &format!("policy-tpch-sf{scale}"),
                    &report.markdown(),
                    &serde_json::to_string_pretty(&report)?,
                )
            }
            Command::Smoke { common } => smoke(common).await,
        }
    })
}

fn write_outputs(out_dir: &Path, name: &str, markdown: &str, json: &str) -> Result<()> {
    println!("{markdown}");
    let md = out_dir.join(format!("{name}.md"));
    let js = out_dir.join(format!("{name}.json"));
    std::fs::write(&md, markdown).with_context(|| format!("cannot write {}", md.display()))?;
    std::fs::write(&js, json).with_context(|| format!("cannot write {}", js.display()))?;
    eprintln!("Written: {} {}", md.display(), js.display());
    Ok(())
}

fn write_suite_outputs(report: &SuiteReport, out_dir: &Path) -> Result<()> {
    let name = format!("{}-sf{}", report.suite.name(), report.scale);
    write_outputs(
        out_dir,
        &name,
        &report.markdown(),
        &serde_json::to_string_pretty(report)?,
    )?;
    let svg = out_dir.join(format!("{name}.svg"));
    std::fs::write(&svg, report.svg())
        .with_context(|| format!("cannot write {}", svg.display()))?;
    eprintln!("Chart: {}", svg.display());
    Ok(())
}

async fn run_suite(args: &SuiteArgs) -> Result<SuiteReport> {
    let common = &args.common;
    let threads = common.threads();
    let python = common.python();
    eprintln!(
        "{} SF{}: preparing data (cached in {})...",
        args.suite.title(),
        args.scale,
        common.data_dir.display()
    );
    let dataset = suite::ensure_dataset(args.suite, &common.data_dir, args.scale, &python).await?;
    let work_dir = common
        .out_dir
        .join(format!("work-{}-sf{}", args.suite.name(), args.scale));
    std::fs::create_dir_all(&work_dir)?;
    // Absolute, because the engines' processes get paths inside it.
    let work_dir = work_dir.canonicalize()?;
    let setup = EngineSetup {
        threads,
        dataset: &dataset,
        python: &python,
        work_dir: &work_dir,
        osprey_executor_memory: args.osprey_executor_memory.as_deref(),
    };

    let sampler = memory::MemorySampler::start();
    let mut running: Vec<(EngineSpec, Engine)> = Vec::new();
    let mut figures: Vec<EngineFigures> = Vec::new();
    for &spec in &args.engines {
        eprintln!("Starting {spec}...");
        match Engine::start(spec, &setup).await {
            Ok((engine, version)) => {
                eprintln!("  {version}");
                let (pid, with_descendants) = engine.process();
                sampler.watch(&spec.to_string(), pid, with_descendants);
                figures.push(EngineFigures {
                    engine: spec.to_string(),
                    version: Some(version),
                    skipped: None,
                    peak_memory_bytes: None,
                    queries: vec![],
                });
                running.push((spec, engine));
            }
            Err(err) => {
                let reason = format!("{err:#}");
                eprintln!("  skipped: {reason}");
                figures.push(EngineFigures {
                    engine: spec.to_string(),
                    version: None,
                    skipped: Some(reason),
                    peak_memory_bytes: None,
                    queries: vec![],
                });
            }
        }
    }
    let reference = [EngineSpec::DuckDb, EngineSpec::DataFusion]
        .into_iter()
        .find(|spec| running.iter().any(|(s, _)| s == spec));

    let queries: Vec<usize> = if args.queries.is_empty() {
        (1..=args.suite.query_count()).collect()
    } else {
        args.queries.clone()
    };
    let timeout = Duration::from_secs(args.timeout_secs);
    for &query in &queries {
        let statements = suite::statements(args.suite, query)?;
        let mut answers = Vec::new();
        let mut line = format!("  q{query:<3}");
        for (spec, engine) in &mut running {
            let (mut result, answer) = run_query(engine, query, &statements, args, timeout).await;
            if result.status != Status::Failed
                && !args.no_exchange_bytes
                && let Some(bytes) = engine.exchange_bytes(&statements, timeout).await
            {
                match bytes {
                    Ok(bytes) => result.exchange = Some(bytes),
                    Err(err) => eprintln!("    {spec} q{query}: EXPLAIN ANALYZE failed: {err:#}"),
                }
            }
            line.push_str(&match result.median_ms {
                Some(ms) => format!("  {spec} {ms:>9.1} ms"),
                None => format!("  {spec}    FAILED"),
            });
            answers.push((*spec, answer));
            figures
                .iter_mut()
                .find(|f| f.engine == spec.to_string())
                .expect("figures for every running engine")
                .queries
                .push(result);
        }
        // Check answers against the reference engine's.
        let expected = reference.and_then(|r| {
            answers
                .iter()
                .find(|(spec, _)| *spec == r)
                .and_then(|(_, a)| a.clone())
        });
        for (spec, answer) in &answers {
            let engine = figures
                .iter_mut()
                .find(|f| f.engine == spec.to_string())
                .expect("figures");
            let result = engine.queries.last_mut().expect("this query");
            if result.status == Status::Failed {
                continue;
            }
            match (&expected, answer) {
                (Some(expected), Some(answer)) => {
                    if let Err(difference) = expected.compare(answer) {
                        result.status = Status::Wrong;
                        result.detail = Some(difference);
                        line.push_str(&format!("  [{spec} WRONG]"));
                    }
                }
                (None, _) if reference.is_some() => {
                    result.detail = Some("not checked: the reference engine failed".to_string());
                }
                _ => {}
            }
        }
        eprintln!("{line}");
    }

    for (spec, engine) in running {
        if let Some(f) = figures.iter_mut().find(|f| f.engine == spec.to_string()) {
            f.peak_memory_bytes = sampler.peak(&spec.to_string());
        }
        engine.stop().await;
    }
    drop(sampler);

    let mut report = SuiteReport {
        suite: args.suite,
        scale: args.scale,
        threads,
        cpus: common.cpus(),
        iterations: args.iterations.max(1),
        reference: reference.map(|r| r.to_string()),
        machine: report::machine_description(),
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        engines: figures,
        common_queries: vec![],
        summaries: vec![],
        goals: vec![],
    };
    report.summarize();
    Ok(report)
}

/// One warm-up run (whose answer is kept), then the timed runs.
async fn run_query(
    engine: &mut Engine,
    query: usize,
    statements: &[String],
    args: &SuiteArgs,
    timeout: Duration,
) -> (QueryFigures, Option<answers::Answer>) {
    let answer = match engine.run(statements, true, timeout).await {
        Ok(outcome) => outcome.answer,
        Err(err) => return (QueryFigures::failed(query, format!("{err:#}")), None),
    };
    let mut runs = Vec::new();
    for _ in 0..args.iterations.max(1) {
        match engine.run(statements, false, timeout).await {
            Ok(outcome) => runs.push(outcome.elapsed.as_secs_f64() * 1000.0),
            Err(err) => return (QueryFigures::failed(query, format!("{err:#}")), None),
        }
    }
    (QueryFigures::from_runs(query, runs), answer)
}

async fn smoke(common: CommonArgs) -> Result<()> {
    let args = SuiteArgs {
        suite: Suite::Tpch,
        scale: 0.01,
        engines: vec![
            EngineSpec::Osprey {
                executors: 2,
                iceberg: false,
            },
            EngineSpec::DataFusion,
        ],
        iterations: 1,
        queries: vec![1, 6],
        timeout_secs: 120,
        osprey_executor_memory: None,
        no_exchange_bytes: false,
        common: common.clone(),
    };
    let report = run_suite(&args).await?;
    write_suite_outputs(&report, &common.out_dir)?;
    let mut problems = Vec::new();
    for engine in &report.engines {
        if let Some(reason) = &engine.skipped {
            problems.push(format!("{} skipped: {reason}", engine.engine));
        }
        for q in engine.queries.iter().filter(|q| q.status != Status::Ok) {
            problems.push(format!(
                "{} q{}: {:?} {}",
                engine.engine,
                q.query,
                q.status,
                q.detail.as_deref().unwrap_or("")
            ));
        }
    }
    let osprey = report.summaries.iter().find(|s| s.engine == "osprey-2");
    if osprey.and_then(|s| s.peak_memory_bytes).unwrap_or(0) == 0 {
        problems.push("no peak memory measured for osprey-2".to_string());
    }
    let name = format!("tpch-sf{}", args.scale);
    for ext in ["json", "md", "svg"] {
        let path = common.out_dir.join(format!("{name}.{ext}"));
        if std::fs::metadata(&path).map_or(true, |m| m.len() == 0) {
            problems.push(format!("{} missing or empty", path.display()));
        }
    }

    let latency = micro::select_one_latency(&common.out_dir, 20, 5).await?;
    println!("{}", latency.markdown());
    let exchange = micro::exchange_throughput(200_000, 8192, 1).await?;
    println!("{}", exchange.markdown());
    if exchange.bytes < 200_000 * 32 {
        problems.push(format!(
            "the exchange reported {} bytes for 200000 rows of 32 bytes",
            exchange.bytes
        ));
    }
    if !problems.is_empty() {
        bail!("smoke run found problems:\n  {}", problems.join("\n  "));
    }
    eprintln!("Smoke run OK.");
    Ok(())
}
