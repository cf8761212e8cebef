//! `osprey-benches`: TPC-H through `osprey local` against single-process DataFusion on the same
//! Parquet files, side by side in one run. Prints figures; it is not a test and never gates CI.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use osprey_tests::{SqlClient, datafusion_last_result_rows, tpch_statements};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Benchmarks Osprey against single-process DataFusion.
#[derive(Parser)]
#[command(
    name = "osprey-benches",
    about,
    after_help = "\
Example (TPC-H SF1, 2 executors with 1 thread each vs DataFusion with 2 threads):
  cargo build --release --workspace --bins
  target/release/osprey-benches tpch --scale 1 --executors 2 --threads-per-executor 1"
)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// All 22 TPC-H queries: `osprey local` with N executors vs DataFusion in one process with
    /// the same total thread count.
    Tpch {
        /// TPC-H scale factor.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Executor processes.
        #[arg(long, default_value_t = 2)]
        executors: usize,
        /// Worker threads per executor; DataFusion gets executors x this many.
        #[arg(long, default_value_t = 1)]
        threads_per_executor: usize,
        /// Timed runs per query, after one warm-up run; the median is reported.
        #[arg(long, default_value_t = 3)]
        iterations: usize,
        /// Where generated data is cached between runs.
        #[arg(long, default_value = "target/bench-data")]
        data_dir: PathBuf,
        /// Only these queries (e.g. 1,3,18); all 22 by default.
        #[arg(long, value_delimiter = ',')]
        queries: Vec<usize>,
        /// Write the figures as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

const PASSWORD: &str = "osprey-bench-password";

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Bench::Tpch {
            scale,
            executors,
            threads_per_executor,
            iterations,
            data_dir,
            queries,
            json,
        } => {
            let total_threads = executors * threads_per_executor;
            // The bench process itself, and DataFusion inside it, use the same total thread count.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(total_threads.max(1))
                .enable_all()
                .build()?;
            let queries = if queries.is_empty() {
                (1..=22).collect()
            } else {
                queries
            };
            runtime.block_on(tpch(TpchBench {
                scale,
                executors,
                threads_per_executor,
                iterations: iterations.max(1),
                data_dir,
                queries,
                json,
            }))
        }
    }
}

struct TpchBench {
    scale: f64,
    executors: usize,
    threads_per_executor: usize,
    iterations: usize,
    data_dir: PathBuf,
    queries: Vec<usize>,
    json: Option<PathBuf>,
}

struct QueryFigures {
    query: usize,
    datafusion: Duration,
    osprey: Duration,
    same_answer: bool,
}

async fn tpch(bench: TpchBench) -> Result<()> {
    let total_threads = bench.executors * bench.threads_per_executor;
    std::fs::create_dir_all(&bench.data_dir)?;
    let data_dir = bench.data_dir.canonicalize()?;
    eprintln!(
        "Generating TPC-H SF{} (cached in {})...",
        bench.scale,
        data_dir.display()
    );
    let started = Instant::now();
    let dataset = osprey_coordinator::tpch::ensure_dataset(&data_dir, bench.scale, 8).await?;
    eprintln!("  data ready in {:.1?}", started.elapsed());

    // Single-process DataFusion, same version, same files, same total threads.
    let config = SessionConfig::new().with_target_partitions(total_threads);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .build();
    let datafusion = SessionContext::new_with_state(state);
    for table in osprey_coordinator::tpch::TABLES {
        let location = format!("{}/", dataset.join(table).display());
        datafusion
            .register_parquet(table, &location, ParquetReadOptions::default())
            .await?;
    }

    eprintln!(
        "Starting osprey local: {} executors x {} threads...",
        bench.executors, bench.threads_per_executor
    );
    let cluster = LocalCluster::start(&data_dir, &bench)?;
    let mut client = SqlClient::connect(cluster.addr, "admin", PASSWORD).await?;

    let mut figures = Vec::new();
    for &query in &bench.queries {
        let statements = tpch_statements(query);
        // Interleave the engines per query so machine noise hits both alike.
        let (df_time, df_rows) = time_runs(bench.iterations, async || {
            Ok(datafusion_last_result_rows(&datafusion, &statements).await?)
        })
        .await?;
        let (osprey_time, osprey_rows) = time_runs(bench.iterations, async || {
            Ok(client.last_result_rows(&statements).await?)
        })
        .await?;
        let same_answer = df_rows == osprey_rows;
        eprintln!(
            "  q{query:<2}  datafusion {:>8.1} ms   osprey {:>8.1} ms   ratio {:>5.2}{}",
            ms(df_time),
            ms(osprey_time),
            ms(osprey_time) / ms(df_time),
            if same_answer { "" } else { "   WRONG ANSWER" }
        );
        figures.push(QueryFigures {
            query,
            datafusion: df_time,
            osprey: osprey_time,
            same_answer,
        });
    }
    drop(client);
    cluster.stop();

    print_report(&bench, &figures);
    if let Some(path) = &bench.json {
        std::fs::write(path, json_report(&bench, &figures))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("JSON written to {}", path.display());
    }
    Ok(())
}

/// One warm-up run, then `iterations` timed runs; returns the median time and the rows.
async fn time_runs(
    iterations: usize,
    mut run: impl AsyncFnMut() -> Result<Vec<String>>,
) -> Result<(Duration, Vec<String>)> {
    let rows = run().await?;
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        run().await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((times[times.len() / 2], rows))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn geometric_mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, n), v| (sum + v.ln(), n + 1));
    if count == 0 {
        0.0
    } else {
        (sum / count as f64).exp()
    }
}

fn print_report(bench: &TpchBench, figures: &[QueryFigures]) {
    let total_df: f64 = figures.iter().map(|f| ms(f.datafusion)).sum();
    let total_osprey: f64 = figures.iter().map(|f| ms(f.osprey)).sum();
    let geo_ratio = geometric_mean(figures.iter().map(|f| ms(f.osprey) / ms(f.datafusion)));
    let wrong = figures.iter().filter(|f| !f.same_answer).count();
    println!(
        "\n## TPC-H SF{}: osprey local ({} executors x {} threads) vs DataFusion {} (1 process, {} threads)\n",
        bench.scale,
        bench.executors,
        bench.threads_per_executor,
        datafusion::DATAFUSION_VERSION,
        bench.executors * bench.threads_per_executor
    );
    println!(
        "Median of {} runs after one warm-up, milliseconds.\n",
        bench.iterations
    );
    println!("| query | DataFusion | Osprey | ratio | same answer |");
    println!("|---|---:|---:|---:|---|");
    for f in figures {
        println!(
            "| q{} | {:.1} | {:.1} | {:.2} | {} |",
            f.query,
            ms(f.datafusion),
            ms(f.osprey),
            ms(f.osprey) / ms(f.datafusion),
            if f.same_answer { "yes" } else { "NO" }
        );
    }
    println!(
        "| **total** | {:.1} | {:.1} | {:.2} | {} wrong |",
        total_df,
        total_osprey,
        total_osprey / total_df,
        wrong
    );
    println!(
        "\nGeometric mean of per-query ratios: {geo_ratio:.2}. Goal: total at most 1.15x single \
         process: {} ({:.2}x).",
        if total_osprey <= 1.15 * total_df {
            "met"
        } else {
            "MISSED"
        },
        total_osprey / total_df
    );
}

fn json_report(bench: &TpchBench, figures: &[QueryFigures]) -> String {
    let rows: Vec<String> = figures
        .iter()
        .map(|f| {
            format!(
                "    {{\"query\": {}, \"datafusion_ms\": {:.3}, \"osprey_ms\": {:.3}, \"same_answer\": {}}}",
                f.query,
                ms(f.datafusion),
                ms(f.osprey),
                f.same_answer
            )
        })
        .collect();
    format!(
        "{{\n  \"suite\": \"tpch\",\n  \"scale\": {},\n  \"executors\": {},\n  \"threads_per_executor\": {},\n  \"iterations\": {},\n  \"queries\": [\n{}\n  ]\n}}\n",
        bench.scale,
        bench.executors,
        bench.threads_per_executor,
        bench.iterations,
        rows.join(",\n")
    )
}

/// `osprey local`, started from the same target directory as this benchmark.
struct LocalCluster {
    child: Child,
    addr: std::net::SocketAddr,
}

impl LocalCluster {
    fn start(data_dir: &Path, bench: &TpchBench) -> Result<Self> {
        let exe = std::env::current_exe()?;
        let osprey = exe.with_file_name("osprey");
        if !osprey.exists() {
            bail!(
                "{} not found: build it with the same profile first (cargo build --release --workspace --bins)",
                osprey.display()
            );
        }
        let mut child = Command::new(&osprey)
            .arg("local")
            .args(["--executors", &bench.executors.to_string()])
            .args([
                "--executor-threads",
                &bench.threads_per_executor.to_string(),
            ])
            .args(["--tpch-scale", &bench.scale.to_string()])
            .args(["--default-schema", "tpch"])
            .args(["--flight-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .env("OSPREY_ADMIN_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", osprey.display()))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .context("osprey local exited before it was ready")??;
            if let Some(addr) = line.strip_prefix("OSPREY_FLIGHT_SQL_LISTENING ") {
                break addr.trim().parse()?;
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let _ = std::io::stderr().flush();
        Ok(Self { child, addr })
    }

    fn stop(mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let _ = self.child.wait();
    }
}
