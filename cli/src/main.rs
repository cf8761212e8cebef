//! `osprey`: the one binary. `osprey local` runs a whole cluster on this machine;
//! `osprey coordinator` and `osprey executor` run the two halves separately.

mod cluster_tls_args;
mod config_file;
mod local;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use cluster_tls_args::ClusterTlsArgs;
use config_file::{ByteSize, FileConfig, MemorySize};
use osprey_coordinator::{CoordinatorConfig, TlsFiles};
use osprey_engine::ExchangeCompression;
use osprey_executor::ExecutorConfig;
use osprey_proto::ClusterSecret;
use osprey_service::{CatalogConfig, LocationConfig, UserCredential, WorkgroupConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// The line an executor prints on standard output once it listens, for supervisors
/// (`osprey local`, tests) that start it on port 0.
pub const EXECUTOR_READY_PREFIX: &str = "OSPREY_EXECUTOR_LISTENING ";
/// The line a coordinator prints on standard output once Flight SQL accepts connections.
pub const COORDINATOR_READY_PREFIX: &str = "OSPREY_FLIGHT_SQL_LISTENING ";
/// Printed on stdout, followed by the address, once the HTTP API accepts connections.
pub const HTTP_READY_PREFIX: &str = "OSPREY_HTTP_LISTENING ";

/// `--http-listen`: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct HttpListen(pub Option<SocketAddr>);

impl std::str::FromStr for HttpListen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        text.parse().map(|addr| Self(Some(addr))).map_err(|err| {
            format!("{text:?} is neither an address (127.0.0.1:8080) nor `off`: {err}")
        })
    }
}

impl TryFrom<String> for HttpListen {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

const AFTER_HELP: &str = "\
Quick start:
  osprey local                      # coordinator + 2 executors, TPC-H SF0.1 in schema tpch
  # then connect any Flight SQL client to grpc://127.0.0.1:50051 as user `admin`

Configuration: each setting comes from, in order of precedence, a command-line flag, an
OSPREY_* environment variable, the TOML file given with --config, and the built-in default.
osprey.example.toml documents every key. Logs go to standard error; set the level with
RUST_LOG (for example RUST_LOG=debug) or [log] level.";

/// Osprey: a distributed SQL query engine for the lakehouse.
#[derive(Parser, Debug)]
#[command(name = "osprey", version, after_help = AFTER_HELP)]
struct Cli {
    /// TOML configuration file (see osprey.example.toml).
    #[arg(long, global = true, env = "OSPREY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, global = true, env = "OSPREY_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a coordinator and N executor processes on this machine (loopback only).
    ///
    /// Creates the user `admin` (password from OSPREY_ADMIN_PASSWORD, or generated on first
    /// start and kept in DATA_DIR/admin-password with mode 0600) and, on first start,
    /// generates TPC-H data registered as schema `tpch`. Ctrl-C stops every process it started.
    Local(LocalArgs),
    /// Run a coordinator: the Flight SQL front door, catalog and planner.
    Coordinator(CoordinatorArgs),
    /// Run an executor: a stateless worker that runs query stages for its coordinator.
    Executor(ExecutorArgs),
    /// Open a SQL shell on a coordinator (Flight SQL), or run SQL from -c, -f or a pipe.
    ///
    /// With no arguments it connects to `osprey local` on this machine as admin. Connection
    /// settings come from flags, then OSPREY_HOST, OSPREY_PORT, OSPREY_USER and
    /// OSPREY_PASSWORD, then a profile in ~/.config/osprey/config.toml.
    #[command(after_help = SHELL_AFTER_HELP)]
    Shell(osprey_shell::ShellArgs),
}

const SHELL_AFTER_HELP: &str = "\
Examples:
  osprey shell                                   # the local cluster, interactively
  osprey shell -c 'SELECT count(*) FROM tpch.orders'
  osprey shell -F csv -f report.sql > report.csv
  echo 'SELECT 1;' | osprey shell -F json
  osprey shell -H db.example.com -p 443 -U ana --tls --profile prod

Profile file (~/.config/osprey/config.toml):
  default = \"prod\"
  [profiles.prod]
  host = \"db.example.com\"
  port = 443
  user = \"ana\"
  tls = true

Inside the shell, \\? lists the meta-commands (\\d, \\dn, \\dt, \\x, \\timing, \\o, \\i, \\c, \\q).
Exit codes: 0 success, 1 a statement failed, 2 no connection.";

/// Settings shared by `coordinator` and `local`.
#[derive(Args, Debug, Clone)]
struct CoordinatorCommon {
    /// Address for Flight SQL clients. Use 0.0.0.0:PORT to accept remote clients.
    #[arg(long, env = "OSPREY_FLIGHT_LISTEN", value_name = "ADDR")]
    flight_listen: Option<SocketAddr>,

    /// Address for the HTTP API (query API, Trino client protocol, /healthz, /readyz), or
    /// `off`. Default 127.0.0.1:8080. Serves HTTPS with --tls-cert/--tls-key; without them it
    /// must stay on loopback unless --allow-insecure-remote.
    #[arg(long, env = "OSPREY_HTTP_LISTEN", value_name = "ADDR|off")]
    http_listen: Option<HttpListen>,

    /// Directory for data the coordinator keeps: built-in datasets, spill files.
    #[arg(long, env = "OSPREY_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Generate (once) and register TPC-H at this scale factor as schema `tpch`; 0 turns it off.
    #[arg(long, env = "OSPREY_TPCH_SCALE", value_name = "SF")]
    tpch_scale: Option<f64>,

    /// Seconds a query may run before it is stopped (DEADLINE_EXCEEDED); 0 means no limit.
    /// Default 1800.
    #[arg(long, env = "OSPREY_QUERY_TIMEOUT_SECS", value_name = "SECS")]
    query_timeout_secs: Option<u64>,

    /// Schema that unqualified table names resolve in.
    #[arg(long, env = "OSPREY_DEFAULT_SCHEMA", value_name = "NAME")]
    default_schema: Option<String>,

    /// Memory for the coordinator's share of queries, e.g. 2GiB.
    #[arg(long, env = "OSPREY_COORDINATOR_MEMORY", value_name = "SIZE")]
    coordinator_memory: Option<ByteSize>,

    /// Input bytes per scan task; smaller spreads scans over more tasks [default: 16MiB;
    /// `osprey local`: 4MiB, so that its TPC-H SF0.1 queries run as tasks on the executors].
    #[arg(long, env = "OSPREY_BYTES_PER_TASK", value_name = "SIZE")]
    bytes_per_task: Option<ByteSize>,

    /// Compression of data exchanged between executors: none, lz4 or zstd. Default lz4
    /// (`local`: none, since its traffic stays on loopback).
    #[arg(long, env = "OSPREY_EXCHANGE_COMPRESSION", value_name = "CODEC")]
    exchange_compression: Option<ExchangeCompression>,

    /// Partitions per task (parallelism within one process); defaults to the core count.
    #[arg(long, env = "OSPREY_TARGET_PARTITIONS", value_name = "N")]
    target_partitions: Option<usize>,

    /// The catalog database: sqlite:///path/catalog.db or postgres://user:pass@host/db.
    /// Default: catalog.db in the data directory.
    #[arg(long, env = "OSPREY_CATALOG_URL", value_name = "URL")]
    catalog_url: Option<String>,

    /// Where managed tables (CREATE TABLE, CTAS) keep their Parquet files: a path or a URL such
    /// as s3://bucket/warehouse/. Default: warehouse/ in the data directory.
    #[arg(long, env = "OSPREY_WAREHOUSE", value_name = "LOCATION")]
    warehouse: Option<String>,

    /// TLS certificate chain (PEM) for the Flight SQL and HTTP ports; needs --tls-key. TLS is
    /// required when --flight-listen or --http-listen is not a loopback address.
    #[arg(long, env = "OSPREY_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "OSPREY_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// Serve plaintext on a non-loopback --flight-listen or --http-listen. Only behind a
    /// TLS-terminating proxy or on a private network you trust: passwords and tokens cross it
    /// in the clear.
    #[arg(long, env = "OSPREY_ALLOW_INSECURE_REMOTE")]
    allow_insecure_remote: bool,
}

#[derive(Args, Debug)]
struct LocalArgs {
    /// Number of executor processes to start.
    #[arg(long, default_value_t = 2, value_name = "N")]
    executors: usize,

    /// Memory per executor, e.g. 4GiB.
    #[arg(long, env = "OSPREY_EXECUTOR_MEMORY", value_name = "SIZE")]
    executor_memory: Option<ByteSize>,

    /// Worker threads per executor; defaults to the number of cores.
    #[arg(long, env = "OSPREY_EXECUTOR_THREADS", value_name = "N")]
    executor_threads: Option<usize>,

    #[command(flatten)]
    common: CoordinatorCommon,
}

#[derive(Args, Debug)]
struct CoordinatorArgs {
    /// Executor URL, e.g. http://10.0.0.5:50061. Repeat the flag or separate with commas.
    #[arg(
        long = "executor",
        env = "OSPREY_EXECUTORS",
        value_delimiter = ',',
        value_name = "URL"
    )]
    executors: Vec<String>,

    /// A host:port whose every DNS address is an executor (a Kubernetes headless Service).
    #[arg(
        long = "executor-dns",
        env = "OSPREY_EXECUTOR_DNS",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    executor_dns: Vec<String>,

    #[command(flatten)]
    common: CoordinatorCommon,

    #[command(flatten)]
    cluster_tls: ClusterTlsArgs,
}

#[derive(Args, Debug)]
struct ExecutorArgs {
    /// Address for the executor's gRPC service; port 0 picks a free one. Bind a non-loopback
    /// address only behind TLS (see the README's security section).
    #[arg(long, env = "OSPREY_EXECUTOR_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// Memory query operators may use before they spill: a size such as 4GiB, or a share of
    /// the container's memory limit (of the machine's memory without one) such as 75%.
    #[arg(long, env = "OSPREY_EXECUTOR_MEMORY", value_name = "SIZE|PERCENT")]
    memory: Option<MemorySize>,

    /// Directory for spill files (the only state an executor keeps).
    #[arg(long, env = "OSPREY_SPILL_DIR", value_name = "DIR")]
    spill_dir: Option<PathBuf>,

    /// Seconds running tasks may take to finish after SIGTERM (the drain).
    #[arg(long, env = "OSPREY_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    shutdown_grace_secs: Option<u64>,

    /// Milliseconds a draining executor waits, at the least, for the coordinator to notice
    /// (its health checks answer "draining") before it may stop. Default 2000.
    #[arg(long, env = "OSPREY_DRAIN_NOTICE_MS", value_name = "MS")]
    drain_notice_ms: Option<u64>,

    /// Worker threads; defaults to the number of cores.
    #[arg(long, env = "OSPREY_EXECUTOR_THREADS", value_name = "N")]
    threads: Option<usize>,

    /// Address for plain-HTTP health checks for probes: GET /healthz (alive) and GET /readyz
    /// (503 once draining). Off unless set; e.g. 0.0.0.0:8081 in a pod.
    #[arg(long, env = "OSPREY_EXECUTOR_HEALTH_LISTEN", value_name = "ADDR")]
    health_listen: Option<SocketAddr>,

    /// Serve plaintext gRPC on a non-loopback --listen, without --cluster-tls-cert: only on a
    /// network that encrypts (a service mesh with mutual TLS) or that admits only the
    /// coordinator and executors (a network policy).
    #[arg(long, env = "OSPREY_ALLOW_INSECURE_REMOTE")]
    allow_insecure_remote: bool,

    #[command(flatten)]
    cluster_tls: ClusterTlsArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::Shell(args) = cli.command {
        // The shell is a client: no server configuration file, no server logging.
        return match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => {
                std::process::ExitCode::from(runtime.block_on(osprey_shell::run(args)) as u8)
            }
            Err(err) => {
                eprintln!("error: cannot start the async runtime: {err}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let file = match FileConfig::load(cli.config.as_deref()) {
        Ok(file) => file,
        Err(err) => {
            eprintln!("error: {err:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&file, cli.log_format.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Local(args) => local::run(args, file).await,
            Command::Coordinator(args) => run_coordinator(args, file).await,
            Command::Executor(args) => run_executor(args, file).await,
            Command::Shell(_) => unreachable!("handled before the server configuration is read"),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(file: &FileConfig, format_flag: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| file.log.level.clone())
        .unwrap_or_else(|| "info".to_string());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|err| {
        eprintln!("warning: invalid log filter {filter:?} ({err}); using `info`");
        EnvFilter::new("info")
    });
    let json = format_flag.or(file.log.format.as_deref()) == Some("json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The cluster secret: OSPREY_CLUSTER_SECRET, else `[cluster] secret`, else `secret_file`.
fn cluster_secret(file: &FileConfig) -> Result<ClusterSecret> {
    let value = if let Ok(value) = std::env::var("OSPREY_CLUSTER_SECRET") {
        value
    } else if let Some(value) = &file.cluster.secret {
        value.clone()
    } else if let Some(path) = &file.cluster.secret_file {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read cluster secret file {}", path.display()))?
            .trim()
            .to_string()
    } else {
        bail!(
            "no cluster secret: set OSPREY_CLUSTER_SECRET (the same value on the coordinator and \
             every executor), or `[cluster] secret` / `secret_file` in the configuration file. \
             Generate one with `openssl rand -hex 32`"
        );
    };
    ClusterSecret::new(value).context("invalid cluster secret")
}

/// Users from `[[users]]`, plus `admin` when OSPREY_ADMIN_PASSWORD is set.
fn configured_users(file: &FileConfig) -> Vec<UserCredential> {
    let mut users: Vec<UserCredential> = file
        .users
        .iter()
        .map(|u| UserCredential {
            name: u.name.clone(),
            password: u.password.clone(),
            admin: u.admin,
        })
        .collect();
    if let Ok(password) = std::env::var("OSPREY_ADMIN_PASSWORD")
        && !password.is_empty()
    {
        users.retain(|u| u.name != "admin");
        users.push(UserCredential {
            name: "admin".into(),
            password,
            admin: true,
        });
    }
    users
}

/// Builds a coordinator configuration from flags, environment and file.
fn coordinator_config(
    common: &CoordinatorCommon,
    file: &FileConfig,
    secret: ClusterSecret,
) -> Result<CoordinatorConfig> {
    let section = &file.coordinator;
    let mut config = CoordinatorConfig::new(secret);
    if let Some(http) = common.http_listen.or(section.http_listen) {
        config.http_listen = http.0;
    }
    if let Some(addr) = common.flight_listen.or(section.flight_listen) {
        config.flight_listen = addr;
    }
    if let Some(dir) = common.data_dir.clone().or(section.data_dir.clone()) {
        config.data_dir = dir;
    }
    config.tpch_scale_factor = common
        .tpch_scale
        .or(section.tpch_scale_factor)
        .filter(|sf| *sf > 0.0);
    if let Some(schema) = common
        .default_schema
        .clone()
        .or(section.default_schema.clone())
    {
        config.default_schema = schema;
    }
    if let Some(size) = common.coordinator_memory.or(section.memory_limit) {
        config.memory_limit_bytes = size.0 as usize;
    }
    if let Some(size) = common.bytes_per_task.or(section.bytes_per_task) {
        config.bytes_per_task = size.0 as usize;
    }
    config.target_partitions = common.target_partitions.or(section.target_partitions);
    if let Some(codec) = common.exchange_compression.or(section.exchange_compression) {
        config.exchange_compression = codec;
    }
    if let Some(ms) = section.discovery_interval_ms {
        config.discovery.refresh_interval = Duration::from_millis(ms.max(100));
    }
    let tls_cert = common.tls_cert.clone().or(section.tls_cert.clone());
    let tls_key = common.tls_key.clone().or(section.tls_key.clone());
    config.tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        (Some(_), None) => bail!("--tls-cert needs --tls-key (or OSPREY_TLS_KEY, or tls_key)"),
        (None, Some(_)) => bail!("--tls-key needs --tls-cert (or OSPREY_TLS_CERT, or tls_cert)"),
    };
    config.allow_insecure_remote =
        common.allow_insecure_remote || section.allow_insecure_remote.unwrap_or(false);
    if let Some(size) = section.max_request_bytes {
        config.flight_limits.max_request_bytes = (size.0 as usize).max(1 << 20);
    }
    if let Some(secs) = common.query_timeout_secs.or(section.query_timeout_secs) {
        config.query_timeout = (secs > 0).then(|| Duration::from_secs(secs));
    }
    if let Some(attempts) = section.query_attempts {
        config.retry.max_attempts = attempts.max(1);
    }
    if let Some(secs) = section.token_ttl_secs {
        config.auth.token_ttl = Duration::from_secs(secs);
    }
    if let Some(secs) = section.ticket_ttl_secs {
        config.flight_limits.ticket_ttl = Duration::from_secs(secs.max(1));
    }
    if let Some(bytes) = section.max_put_bytes {
        config.flight_limits.max_put_bytes = bytes.0 as usize;
    }
    if let Some(handles) = section.max_handles_per_user {
        config.auth.max_tokens_per_user = handles.max(1);
    }
    if let Some(open) = file.limits.open_statements_per_user {
        config.statement_limits.open_per_user = open.max(1);
    }
    if let Some(open) = file.limits.open_statements {
        config.statement_limits.open_total = open.max(1);
    }
    config.auth.users = configured_users(file);
    if let Some(name) = &section.default_workgroup {
        config.workgroups.default_workgroup = name.clone();
    }
    config.workgroups.workgroups = file
        .workgroups
        .iter()
        .map(|entry| WorkgroupConfig {
            name: entry.name.clone(),
            max_concurrent_queries: entry.max_concurrent_queries,
            max_queued_queries: entry.max_queued_queries,
            query_timeout_secs: entry.query_timeout_secs,
            max_scan_bytes: entry.max_scan_bytes.map(|size| size.0),
            query_memory_bytes: entry.query_memory.map(|size| size.0),
            users: entry.users.clone(),
        })
        .collect();
    config.locations = file
        .locations
        .iter()
        .map(|entry| LocationConfig {
            name: entry.name.clone(),
            url: entry.url.clone(),
            users: entry.users.clone(),
            read_only: entry.read_only,
        })
        .collect();
    config.catalogs = file
        .catalogs
        .iter()
        .map(|entry| CatalogConfig {
            name: entry.name.clone(),
            connector: entry.connector.clone(),
            properties: entry.properties.clone(),
        })
        .collect();
    config.catalog_url = common.catalog_url.clone().or(section.catalog_url.clone());
    config.warehouse = common.warehouse.clone().or(section.warehouse.clone());
    config.storage = file.storage_locations()?;
    Ok(config)
}

fn parse_executor_urls(values: &[String]) -> Result<Vec<Url>> {
    values
        .iter()
        .filter(|v| !v.trim().is_empty())
        .map(|value| {
            let value = value.trim();
            let with_scheme = if value.contains("://") {
                value.to_string()
            } else {
                format!("http://{value}")
            };
            Url::parse(&with_scheme).with_context(|| {
                format!("invalid executor URL {value:?}: expected http://HOST:PORT")
            })
        })
        .collect()
}

async fn run_coordinator(args: CoordinatorArgs, file: FileConfig) -> Result<()> {
    let secret = cluster_secret(&file)?;
    let mut config = coordinator_config(&args.common, &file, secret)?;
    let executors = if args.executors.is_empty() {
        file.coordinator.executors.clone().unwrap_or_default()
    } else {
        args.executors.clone()
    };
    config.discovery.static_executors = parse_executor_urls(&executors)?;
    config.cluster_tls = args.cluster_tls.resolve(&file.cluster)?;
    config.discovery.dns_names = if args.executor_dns.is_empty() {
        file.coordinator.executor_dns.clone().unwrap_or_default()
    } else {
        args.executor_dns.clone()
    };
    if config.discovery.static_executors.is_empty() && config.discovery.dns_names.is_empty() {
        bail!(
            "no executors configured: pass --executor http://HOST:PORT (repeatable) or \
             --executor-dns HOST:PORT, or set `executors` under [coordinator]"
        );
    }
    osprey_coordinator::run_coordinator(
        config,
        |listening| {
            announce(COORDINATOR_READY_PREFIX, listening.flight);
            if let Some(http) = listening.http {
                announce(HTTP_READY_PREFIX, http);
            }
        },
        osprey_executor::shutdown_signal(),
    )
    .await?;
    Ok(())
}

async fn run_executor(args: ExecutorArgs, file: FileConfig) -> Result<()> {
    let section = &file.executor;
    let mut config = ExecutorConfig::new(cluster_secret(&file)?);
    if let Some(addr) = args.listen.or(section.listen) {
        config.listen = addr;
    }
    if let Some(size) = args.memory.or(section.memory_limit) {
        config.memory_limit_bytes = size.resolve()? as usize;
    }
    config.spill_dir = args.spill_dir.clone().or(section.spill_dir.clone());
    if let Some(ms) = args.drain_notice_ms {
        config.drain_notice = Duration::from_millis(ms);
    }
    if let Some(secs) = args.shutdown_grace_secs.or(section.shutdown_grace_secs) {
        config.shutdown_grace = Duration::from_secs(secs);
    }
    config.health_listen = args.health_listen.or(section.health_listen);
    config.allow_insecure_remote =
        args.allow_insecure_remote || section.allow_insecure_remote.unwrap_or(false);
    config.storage = file.storage_locations()?;
    config.cluster_tls = args.cluster_tls.resolve(&file.cluster)?;
    osprey_executor::run_executor(
        config,
        |addr| announce(EXECUTOR_READY_PREFIX, addr),
        osprey_executor::shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// Prints the machine-readable "ready" line on standard output.
fn announce(prefix: &str, addr: SocketAddr) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{prefix}{addr}");
    let _ = stdout.flush();
}

/// Writes `contents` to `path` readable by the owner only.
fn write_private_file(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
