//! The engines a suite runs on: Osprey (`osprey local` processes, through Flight SQL),
//! single-process DataFusion (in this process), and peers hosted by Python (DuckDB, Spark).

use crate::answers::Answer;
use crate::suite::Dataset;
use anyhow::{Context, Result, anyhow, bail};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use osprey_tests::SqlClient;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// The admin password of the `osprey local` clusters the benchmark starts.
pub const OSPREY_PASSWORD: &str = "osprey-bench-password";

/// Which engine, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineSpec {
    /// `osprey local` with this many executors; the threads are split evenly between them.
    Osprey {
        /// Executor processes.
        executors: usize,
        /// The tables as Iceberg tables (`osprey-N-iceberg`): pyiceberg's metadata over the
        /// same Parquet files (see `suite::ensure_iceberg`).
        iceberg: bool,
    },
    /// DataFusion in this process, same version and settings as Osprey's.
    DataFusion,
    /// DuckDB through its Python package.
    DuckDb,
    /// Spark in local mode through PySpark.
    Spark,
    /// Ballista 55 (scheduler + executor processes).
    Ballista,
}

impl std::str::FromStr for EngineSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "datafusion" => Ok(Self::DataFusion),
            "duckdb" => Ok(Self::DuckDb),
            "spark" => Ok(Self::Spark),
            "ballista" => Ok(Self::Ballista),
            _ => {
                let (text, iceberg) = match text.strip_suffix("-iceberg") {
                    Some(plain) => (plain, true),
                    None => (text, false),
                };
                match text.strip_prefix("osprey-").map(str::parse::<usize>) {
                    Some(Ok(executors)) if executors > 0 => Ok(Self::Osprey { executors, iceberg }),
                    _ => Err(format!(
                        "unknown engine '{text}': use osprey-N (N executors; osprey-N-iceberg \
                         reads the tables as Iceberg), datafusion, duckdb, spark or ballista"
                    )),
                }
            }
        }
    }
}

impl std::fmt::Display for EngineSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Osprey {
                executors,
                iceberg: false,
            } => write!(f, "osprey-{executors}"),
            Self::Osprey {
                executors,
                iceberg: true,
            } => write!(f, "osprey-{executors}-iceberg"),
            Self::DataFusion => write!(f, "datafusion"),
            Self::DuckDb => write!(f, "duckdb"),
            Self::Spark => write!(f, "spark"),
            Self::Ballista => write!(f, "ballista"),
        }
    }
}

/// What every engine is started with.
pub struct EngineSetup<'a> {
    /// CPU threads every engine gets in total.
    pub threads: usize,
    /// The tables to register.
    pub dataset: &'a Dataset,
    /// Python interpreter of the venv with the peers (DuckDB, PySpark).
    pub python: &'a Path,
    /// Scratch directory of this run (results of peers, Osprey's data directories).
    pub work_dir: &'a Path,
    /// Memory pool of each Osprey executor (`osprey local --executor-memory`), when not the
    /// default.
    pub osprey_executor_memory: Option<&'a str>,
}

/// One timed run.
pub struct RunOutcome {
    /// Wall time of all the query's statements, including fetching the last result.
    pub elapsed: Duration,
    /// The last result, when asked for.
    pub answer: Option<Answer>,
}

/// A started engine.
pub enum Engine {
    /// `osprey local`, reached through Flight SQL.
    Osprey {
        /// The `osprey local` process tree.
        cluster: LocalCluster,
        /// A logged-in client.
        client: Box<SqlClient>,
    },
    /// DataFusion in this process.
    DataFusion {
        /// The session, with the tables registered.
        ctx: SessionContext,
    },
    /// A Python-hosted peer.
    Peer(Box<PythonPeer>),
}

/// Bytes an Osprey query moved across process boundaries, from its EXPLAIN ANALYZE metrics.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ExchangeBytes {
    /// Received by executors from executors.
    pub between_executors: u64,
    /// Received by the coordinator from executors (the final stage's output).
    pub to_coordinator: u64,
}

impl Engine {
    /// Starts `spec` and registers the dataset's tables. An error means the engine is skipped,
    /// and its message says why.
    pub async fn start(spec: EngineSpec, setup: &EngineSetup<'_>) -> Result<(Engine, String)> {
        match spec {
            EngineSpec::Osprey { executors, iceberg } => {
                let threads_per_executor = (setup.threads / executors).max(1);
                // A fresh catalog each run: tables of an earlier run would clash.
                let data_dir = setup.work_dir.join(spec.to_string());
                if data_dir.exists() {
                    std::fs::remove_dir_all(&data_dir)?;
                }
                std::fs::create_dir_all(&data_dir)?;
                let cluster = LocalCluster::start(
                    &data_dir,
                    executors,
                    threads_per_executor,
                    setup.osprey_executor_memory,
                )?;
                let mut client = SqlClient::connect(cluster.addr, "admin", OSPREY_PASSWORD)
                    .await
                    .context("cannot log in to osprey local")?;
                let (tables, format) = match iceberg {
                    false => (setup.dataset.tables.clone(), "PARQUET"),
                    true => (
                        crate::suite::ensure_iceberg(setup.dataset, setup.python)?,
                        "ICEBERG",
                    ),
                };
                for (table, dir) in &tables {
                    let sql = format!(
                        "CREATE EXTERNAL TABLE {table} STORED AS {format} LOCATION '{}/'",
                        dir.display()
                    );
                    client
                        .query(&sql)
                        .await
                        .with_context(|| format!("cannot register {table} in Osprey"))?;
                }
                let version = format!(
                    "Osprey {}{} ({executors} executor{} x {threads_per_executor} thread{})",
                    env!("CARGO_PKG_VERSION"),
                    if iceberg { ", Iceberg tables" } else { "" },
                    if executors == 1 { "" } else { "s" },
                    if threads_per_executor == 1 { "" } else { "s" },
                );
                Ok((
                    Engine::Osprey {
                        cluster,
                        client: Box::new(client),
                    },
                    version,
                ))
            }
            EngineSpec::DataFusion => {
                let mut config = SessionConfig::new().with_target_partitions(setup.threads);
                // The same SQL as Osprey's: `0.06` is a decimal literal.
                config.options_mut().sql_parser.parse_float_as_decimal = true;
                let state = SessionStateBuilder::new()
                    .with_config(config)
                    .with_default_features()
                    .build();
                let ctx = SessionContext::new_with_state(state);
                for (table, dir) in &setup.dataset.tables {
                    let location = format!("{}/", dir.display());
                    ctx.register_parquet(table, &location, ParquetReadOptions::default())
                        .await?;
                }
                let version = format!(
                    "DataFusion {} (1 process, {} threads)",
                    datafusion::DATAFUSION_VERSION,
                    setup.threads
                );
                Ok((Engine::DataFusion { ctx }, version))
            }
            EngineSpec::DuckDb | EngineSpec::Spark => {
                let kind = if spec == EngineSpec::DuckDb {
                    "duckdb"
                } else {
                    "spark"
                };
                let mut peer = PythonPeer::start(setup, kind).await?;
                let version = peer.hello().await?;
                peer.register(setup.dataset).await?;
                Ok((
                    Engine::Peer(Box::new(peer)),
                    format!("{version} ({} threads)", setup.threads),
                ))
            }
            EngineSpec::Ballista => Err(anyhow!(ballista_skip_reason())),
        }
    }

    /// The operating-system process this engine runs in, and whether the processes it starts
    /// (executors, a JVM) count too. DataFusion runs in this process, whose other children are
    /// the other engines: only the process itself counts.
    pub fn process(&self) -> (u32, bool) {
        match self {
            Engine::Osprey { cluster, .. } => (cluster.child.id(), true),
            Engine::DataFusion { .. } => (std::process::id(), false),
            Engine::Peer(peer) => (peer.child.id().unwrap_or(0), true),
        }
    }

    /// Runs a query's statements once. `want_answer` keeps the last result's canonical form.
    pub async fn run(
        &mut self,
        statements: &[String],
        want_answer: bool,
        timeout: Duration,
    ) -> Result<RunOutcome> {
        let started = Instant::now();
        let batches = match self {
            Engine::Osprey { client, .. } => {
                tokio::time::timeout(timeout, async {
                    Ok::<_, anyhow::Error>(client.last_result(statements).await?)
                })
                .await
            }
            Engine::DataFusion { ctx } => {
                tokio::time::timeout(timeout, async {
                    Ok::<_, anyhow::Error>(
                        osprey_tests::datafusion_last_result(ctx, statements).await?,
                    )
                })
                .await
            }
            Engine::Peer(peer) => return peer.run(statements, want_answer, timeout).await,
        }
        .map_err(|_| anyhow!("timed out after {timeout:?}"))??;
        Ok(RunOutcome {
            elapsed: started.elapsed(),
            answer: want_answer.then(|| Answer::from_batches(&batches)),
        })
    }

    /// For Osprey: runs the query once more under EXPLAIN ANALYZE and sums the bytes its
    /// network boundaries received.
    pub async fn exchange_bytes(
        &mut self,
        statements: &[String],
        timeout: Duration,
    ) -> Option<Result<ExchangeBytes>> {
        let Engine::Osprey { client, .. } = self else {
            return None;
        };
        Some(
            tokio::time::timeout(timeout, osprey_exchange_bytes(client, statements))
                .await
                .unwrap_or_else(|_| Err(anyhow!("timed out after {timeout:?}"))),
        )
    }

    /// Stops the engine's processes.
    pub async fn stop(self) {
        match self {
            Engine::Osprey { cluster, client } => {
                drop(client);
                cluster.stop();
            }
            Engine::DataFusion { .. } => {}
            Engine::Peer(mut peer) => {
                let _ = peer.child.kill().await;
            }
        }
    }
}

fn ballista_skip_reason() -> String {
    let installed = ["ballista-scheduler", "ballista-executor"]
        .iter()
        .all(|binary| which(binary).is_some());
    if installed {
        "this harness does not drive Ballista yet (binaries found on PATH)".to_string()
    } else {
        "not installed (cargo install --locked ballista-scheduler ballista-executor; a \
         30-40 minute build here)"
            .to_string()
    }
}

fn which(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(binary))
            .find(|path| path.is_file())
    })
}

async fn osprey_exchange_bytes(
    client: &mut SqlClient,
    statements: &[String],
) -> Result<ExchangeBytes> {
    // The result-producing statement is the last SELECT-like one; the others (q15's view) run
    // around it as they are.
    let analyzed = statements
        .iter()
        .rposition(|s| {
            let head = s.trim_start().to_ascii_lowercase();
            head.starts_with("select") || head.starts_with("with") || head.starts_with('(')
        })
        .context("no query statement to analyze")?;
    let mut bytes = ExchangeBytes::default();
    for (index, statement) in statements.iter().enumerate() {
        if index != analyzed {
            client.query(statement).await?;
            continue;
        }
        let (_, batches) = client
            .query(&format!("EXPLAIN ANALYZE {statement}"))
            .await?;
        let mut text = String::new();
        for batch in &batches {
            for column in batch.columns() {
                let formatter = datafusion::arrow::util::display::ArrayFormatter::try_new(
                    column.as_ref(),
                    &Default::default(),
                )?;
                for row in 0..batch.num_rows() {
                    text.push_str(&formatter.value(row).to_string());
                    text.push('\n');
                }
            }
        }
        bytes = parse_exchange_bytes(&text);
    }
    Ok(bytes)
}

/// Sums `bytes_transferred=<size>` over the network boundaries of an EXPLAIN ANALYZE text of a
/// distributed plan. The coordinator's block (before the first `Stage` header) is what the
/// coordinator received; the stages' blocks are what executors received from each other.
pub fn parse_exchange_bytes(text: &str) -> ExchangeBytes {
    let mut bytes = ExchangeBytes::default();
    let mut in_stage = false;
    for line in text.lines() {
        if line.contains("Stage ") && line.contains('┌') {
            in_stage = true;
        }
        let mut rest = line;
        while let Some(at) = rest.find("bytes_transferred=") {
            rest = &rest[at + "bytes_transferred=".len()..];
            let mut parts = rest.split_whitespace();
            let value = parts.next().and_then(|v| v.parse::<f64>().ok());
            let unit = parts.next().map(|u| u.trim_end_matches([',', ']']));
            if let (Some(value), Some(unit)) = (value, unit) {
                let multiplier = match unit {
                    "B" => 1u64,
                    "KB" => 1 << 10,
                    "MB" => 1 << 20,
                    "GB" => 1 << 30,
                    "TB" => 1 << 40,
                    _ => 0,
                };
                let value = (value * multiplier as f64) as u64;
                if in_stage {
                    bytes.between_executors += value;
                } else {
                    bytes.to_coordinator += value;
                }
            }
        }
    }
    bytes
}

/// A child process of the `osprey` binary that sits beside this benchmark's executable (same
/// target directory and profile), started and waited for until it prints its ready line.
pub fn spawn_osprey(
    args: &[&str],
    envs: &[(&str, &str)],
    ready_prefix: &str,
) -> Result<(std::process::Child, std::net::SocketAddr)> {
    let exe = std::env::current_exe()?;
    let osprey = exe.with_file_name("osprey");
    if !osprey.exists() {
        bail!(
            "{} not found: build it with the same profile first (cargo build --release \
             --workspace --bins)",
            osprey.display()
        );
    }
    let mut child = std::process::Command::new(&osprey)
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", osprey.display()))?;
    let stdout = child.stdout.take().context("piped stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let Some(line) = lines.next() else {
            let _ = child.kill();
            bail!("osprey {} exited before it was ready", args[0]);
        };
        if let Some(addr) = line?.strip_prefix(ready_prefix) {
            break addr.trim().parse()?;
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((child, addr))
}

/// `osprey local`, started from the same target directory as this benchmark.
pub struct LocalCluster {
    child: std::process::Child,
    /// Flight SQL address.
    pub addr: std::net::SocketAddr,
}

impl LocalCluster {
    /// Starts `osprey local` with no built-in dataset and waits until it serves Flight SQL.
    pub fn start(
        data_dir: &Path,
        executors: usize,
        threads_per_executor: usize,
        executor_memory: Option<&str>,
    ) -> Result<Self> {
        let data_dir = data_dir.display().to_string();
        let (executors, threads) = (executors.to_string(), threads_per_executor.to_string());
        let mut args = vec![
            "local",
            "--executors",
            &executors,
            "--executor-threads",
            &threads,
            "--tpch-scale",
            "0",
            "--default-schema",
            "bench",
            "--flight-listen",
            "127.0.0.1:0",
            "--http-listen",
            "off",
            "--data-dir",
            &data_dir,
        ];
        if let Some(memory) = executor_memory {
            args.extend(["--executor-memory", memory]);
        }
        let (child, addr) = spawn_osprey(
            &args,
            &[("OSPREY_ADMIN_PASSWORD", OSPREY_PASSWORD)],
            "OSPREY_FLIGHT_SQL_LISTENING ",
        )?;
        Ok(Self { child, addr })
    }

    /// Stops it (SIGINT stops every process it started) and waits.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for LocalCluster {
    /// Also on early returns, so a failed start never leaves a cluster running.
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let _ = self.child.wait();
    }
}

/// A DuckDB or Spark session in a Python process, driven by `benches/peers/runner.py`.
pub struct PythonPeer {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    replies: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    result_path: PathBuf,
    // What a restart after a timeout needs to start an identical peer.
    kind: &'static str,
    threads: usize,
    python: PathBuf,
    work_dir: PathBuf,
    tables: Vec<(String, PathBuf)>,
}

impl PythonPeer {
    async fn start(setup: &EngineSetup<'_>, kind: &'static str) -> Result<Self> {
        let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/runner.py");
        let mut child = tokio::process::Command::new(setup.python)
            .arg(&runner)
            .arg(kind)
            .arg(setup.threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (run benches/setup.sh, or pass --python)",
                    setup.python.display()
                )
            })?;
        let stdin = child.stdin.take().context("piped stdin")?;
        let stdout = child.stdout.take().context("piped stdout")?;
        Ok(Self {
            child,
            stdin,
            replies: tokio::io::BufReader::new(stdout).lines(),
            result_path: setup.work_dir.join(format!("{kind}-result.arrow")),
            kind,
            threads: setup.threads,
            python: setup.python.to_path_buf(),
            work_dir: setup.work_dir.to_path_buf(),
            tables: vec![],
        })
    }

    async fn request(
        &mut self,
        request: serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value> {
        let mut line = request.to_string();
        line.push('\n');
        // A runner that failed to start has already said why and exited: read that first.
        if self.stdin.write_all(line.as_bytes()).await.is_err() {
            return self.reply(timeout).await;
        }
        self.stdin.flush().await.ok();
        self.reply(timeout).await
    }

    async fn reply(&mut self, timeout: Duration) -> Result<serde_json::Value> {
        let line = tokio::time::timeout(timeout, self.replies.next_line())
            .await
            .map_err(|_| anyhow!("timed out after {timeout:?}"))??
            .with_context(|| format!("the {} runner exited", self.kind))?;
        let reply: serde_json::Value = serde_json::from_str(&line)?;
        if reply["ok"].as_bool() != Some(true) {
            bail!("{}", reply["error"].as_str().unwrap_or("unknown error"));
        }
        Ok(reply)
    }

    async fn hello(&mut self) -> Result<String> {
        // Spark takes a while to start its JVM.
        let reply = self
            .request(serde_json::json!({"op": "hello"}), Duration::from_secs(180))
            .await?;
        Ok(reply["version"].as_str().unwrap_or("?").to_string())
    }

    async fn register(&mut self, dataset: &Dataset) -> Result<()> {
        let tables: serde_json::Map<String, serde_json::Value> = dataset
            .tables
            .iter()
            .map(|(name, dir)| (name.clone(), dir.display().to_string().into()))
            .collect();
        self.tables = dataset.tables.clone();
        self.request(
            serde_json::json!({"op": "register", "tables": tables}),
            Duration::from_secs(300),
        )
        .await?;
        Ok(())
    }

    async fn run(
        &mut self,
        statements: &[String],
        want_answer: bool,
        timeout: Duration,
    ) -> Result<RunOutcome> {
        // A query whose last statement returns nothing writes no file: never read the
        // previous query's result instead.
        let _ = std::fs::remove_file(&self.result_path);
        let result_path = want_answer.then(|| self.result_path.display().to_string());
        let request = serde_json::json!({
            "op": "run", "statements": statements, "result": result_path,
        });
        let reply = match self.request(request, timeout).await {
            Ok(reply) => reply,
            Err(err) => {
                if err.to_string().starts_with("timed out") {
                    // The runner is still busy with the query: replace it.
                    self.restart().await?;
                }
                return Err(err);
            }
        };
        let elapsed = Duration::from_secs_f64(reply["ms"].as_f64().unwrap_or(0.0) / 1000.0);
        let answer = match want_answer {
            true => Some(read_ipc_answer(&self.result_path)?),
            false => None,
        };
        Ok(RunOutcome { elapsed, answer })
    }

    async fn restart(&mut self) -> Result<()> {
        let _ = self.child.kill().await;
        let work_dir = self.work_dir.clone();
        let dataset = Dataset {
            tables: self.tables.clone(),
        };
        let setup = EngineSetup {
            threads: self.threads,
            dataset: &dataset,
            python: &self.python,
            work_dir: &work_dir,
            osprey_executor_memory: None,
        };
        let mut fresh = PythonPeer::start(&setup, self.kind).await?;
        fresh.hello().await?;
        fresh.register(&dataset).await?;
        *self = fresh;
        Ok(())
    }
}

fn read_ipc_answer(path: &Path) -> Result<Answer> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the peer's result {}", path.display()))?;
    let reader = datafusion::arrow::ipc::reader::FileReader::try_new(file, None)?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok(Answer::from_batches(&batches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_round_trip() {
        for name in [
            "osprey-1",
            "osprey-2",
            "datafusion",
            "duckdb",
            "spark",
            "ballista",
        ] {
            let spec: EngineSpec = name.parse().unwrap();
            assert_eq!(spec.to_string(), name);
        }
        assert!("osprey-0".parse::<EngineSpec>().is_err());
        assert!("trino".parse::<EngineSpec>().is_err());
    }

    #[test]
    fn exchange_bytes_split_coordinator_and_stages() {
        let text = "\
┌───── DistributedExec ── metrics
│ NetworkCoalesceExec: bytes_transferred=2.0 KB, max_mem_used=3
└──────────
  ┌───── Stage 1 ── Tasks: t0 t1
  │ NetworkShuffleExec: bytes_transferred=1.5 MB, msg_count=4
  │   NetworkShuffleExec: bytes_transferred=10 B
  └──────────";
        let bytes = parse_exchange_bytes(text);
        assert_eq!(bytes.to_coordinator, 2048);
        assert_eq!(bytes.between_executors, (1.5 * 1048576.0) as u64 + 10);
    }
}
