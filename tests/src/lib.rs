//! Helpers for Osprey's end-to-end tests: start real `osprey` processes on loopback and talk to
//! them with the arrow-flight Flight SQL client.
//!
//! The tests run the `osprey` binary from the same target directory as the test executable
//! (build it first with `cargo build --bin osprey`; `OSPREY_BIN` overrides the path).

use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::arrow::array::{Array, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::{StreamExt, TryStreamExt};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// The cluster secret the tests' processes share.
pub const TEST_SECRET: &str = "osprey-test-cluster-secret-0123456789";
/// The admin password the tests' coordinators accept.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// Path of the `osprey` binary under test.
pub fn osprey_bin() -> PathBuf {
    if let Ok(path) = std::env::var("OSPREY_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/osprey
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("osprey"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --bin osprey` before the tests, or set OSPREY_BIN",
        bin.display()
    );
    bin
}

/// A child process that is killed when dropped, so a failing test leaves no orphans.
pub struct Process {
    /// The child.
    pub child: Child,
    /// The address it announced.
    pub addr: SocketAddr,
    /// The HTTP address a coordinator announces (after its Flight SQL address).
    http: Arc<Mutex<Option<SocketAddr>>>,
}

impl Process {
    /// The coordinator's HTTP address (it is announced right after the Flight SQL one).
    pub fn http_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(addr) = *self.http.lock().unwrap() {
                return addr;
            }
            assert!(Instant::now() < deadline, "no OSPREY_HTTP_LISTENING line");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The operating-system process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `libc::SIGKILL`) to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: plain kill(2) on a child we own and have not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }

    /// Waits up to `timeout` for the process to exit, returning its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `osprey <args>` and waits for the line `<ready_prefix><addr>` on its stdout.
pub fn spawn_osprey(args: &[&str], envs: &[(&str, &str)], ready_prefix: &str) -> Process {
    spawn_osprey_with(Command::new(osprey_bin()), args, envs, ready_prefix)
}

/// [`spawn_osprey`] inside the network namespace `netns` (`ip netns exec`, which runs the
/// program in place, so the process is osprey itself).
pub fn spawn_osprey_in_netns(
    netns: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    ready_prefix: &str,
) -> Process {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns]).arg(osprey_bin());
    spawn_osprey_with(command, args, envs, ready_prefix)
}

fn spawn_osprey_with(
    mut command: Command,
    args: &[&str],
    envs: &[(&str, &str)],
    ready_prefix: &str,
) -> Process {
    command
        .args(args)
        .env_remove("OSPREY_CONFIG")
        .env_remove("OSPREY_ADMIN_PASSWORD")
        .env_remove("OSPREY_CLUSTER_SECRET")
        .env(
            "RUST_LOG",
            std::env::var("OSPREY_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn osprey");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = ready_prefix.to_string();
    let http = Arc::new(Mutex::new(None));
    let http_seen = Arc::clone(&http);
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && let Some(addr) = line.strip_prefix(&prefix) {
                let _ = tx.send(addr.trim().to_string());
                sent = true;
            }
            if let Some(addr) = line.strip_prefix("OSPREY_HTTP_LISTENING ") {
                *http_seen.lock().unwrap() = addr.trim().parse().ok();
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("osprey {args:?} did not announce `{ready_prefix}` in time"));
    Process {
        child,
        addr: addr.parse().expect("announced address"),
        http,
    }
}

/// Starts an executor on `listen` (use port 0 for any free port).
pub fn spawn_executor(listen: &str, secret: &str) -> Process {
    spawn_osprey(
        &["executor", "--listen", listen, "--memory", "1GiB"],
        &[("OSPREY_CLUSTER_SECRET", secret)],
        "OSPREY_EXECUTOR_LISTENING ",
    )
}

/// Options for [`spawn_coordinator`].
pub struct CoordinatorOptions<'a> {
    /// Executor URLs.
    pub executors: Vec<String>,
    /// Data directory.
    pub data_dir: &'a Path,
    /// TPC-H scale factor to generate, if any.
    pub tpch_scale: Option<&'a str>,
    /// Default schema.
    pub default_schema: &'a str,
    /// More flags, e.g. `["--catalog-url", url]`.
    pub extra_args: &'a [&'a str],
}

/// Starts a coordinator with the test secret and admin password.
pub fn spawn_coordinator(options: CoordinatorOptions<'_>) -> Process {
    let data_dir = options.data_dir.display().to_string();
    let executors = options.executors.join(",");
    let mut args = vec![
        "coordinator",
        "--flight-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--data-dir",
        &data_dir,
        "--default-schema",
        options.default_schema,
        // Small scan tasks so SF0.1 tables split across both executors.
        "--bytes-per-task",
        "1MiB",
        "--executor",
        &executors,
    ];
    if let Some(scale) = options.tpch_scale {
        args.extend(["--tpch-scale", scale]);
    }
    args.extend_from_slice(options.extra_args);
    spawn_osprey(
        &args,
        &[
            ("OSPREY_CLUSTER_SECRET", TEST_SECRET),
            ("OSPREY_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
        "OSPREY_FLIGHT_SQL_LISTENING ",
    )
}

/// A coordinator and executors started for one test, with their data directory.
pub struct TestCluster {
    /// The coordinator.
    pub coordinator: Process,
    /// The executors, in start order.
    pub executors: Vec<Process>,
    /// Holds the data directory for the cluster's lifetime.
    pub data_dir: tempfile::TempDir,
}

impl TestCluster {
    /// `n` executors and a coordinator with TPC-H SF0.1 in schema `tpch` (the default schema).
    pub fn start_tpch(n: usize) -> Self {
        Self::start_tpch_with(n, &[])
    }

    /// [`TestCluster::start_tpch`], with `coordinator_args` added to the coordinator's flags.
    pub fn start_tpch_with(n: usize, coordinator_args: &[&str]) -> Self {
        let executors: Vec<Process> = (0..n)
            .map(|_| spawn_executor("127.0.0.1:0", TEST_SECRET))
            .collect();
        Self::start_tpch_over(
            executors,
            tempfile::tempdir().expect("temp dir"),
            coordinator_args,
        )
    }

    /// A coordinator with TPC-H SF0.1 (the default schema `tpch`) over executors the test
    /// started itself, keeping its data in `data_dir`.
    pub fn start_tpch_over(
        executors: Vec<Process>,
        data_dir: tempfile::TempDir,
        coordinator_args: &[&str],
    ) -> Self {
        let coordinator =
            Self::spawn_tpch_coordinator(&executors, data_dir.path(), coordinator_args);
        Self {
            coordinator,
            executors,
            data_dir,
        }
    }

    /// Starts a new coordinator on the cluster's data directory and executors (after the old
    /// one was stopped or killed) and makes it the cluster's.
    pub fn restart_coordinator(&mut self) {
        self.coordinator = Self::spawn_tpch_coordinator(&self.executors, self.data_dir.path(), &[]);
    }

    fn spawn_tpch_coordinator(
        executors: &[Process],
        data_dir: &Path,
        coordinator_args: &[&str],
    ) -> Process {
        spawn_coordinator(CoordinatorOptions {
            executors: executors
                .iter()
                .map(|e| format!("http://{}", e.addr))
                .collect(),
            data_dir,
            tpch_scale: Some("0.1"),
            default_schema: "tpch",
            extra_args: coordinator_args,
        })
    }

    /// Where the coordinator wrote TPC-H SF0.1.
    pub fn tpch_dir(&self) -> PathBuf {
        self.data_dir.path().join("tpch").join("sf0.1")
    }

    /// A logged-in Flight SQL client.
    pub async fn client(&self) -> SqlClient {
        SqlClient::connect(self.coordinator.addr, "admin", ADMIN_PASSWORD)
            .await
            .expect("login")
    }
}

/// A throwaway certificate authority and a server certificate for `localhost`/`127.0.0.1` it
/// signed, made by `scripts/make-test-certs.sh` (with the `openssl` command).
pub struct TestCerts {
    /// Holds the files.
    pub dir: tempfile::TempDir,
    /// The CA certificate clients trust (PEM).
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

/// Makes a fresh [`TestCerts`].
pub fn make_test_certs() -> TestCerts {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-test-certs.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(dir.path())
        .status()
        .expect("run make-test-certs.sh");
    assert!(status.success(), "{} failed", script.display());
    TestCerts {
        ca: dir.path().join("ca.pem"),
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
        dir,
    }
}

/// The resident memory of process `pid` in bytes (`VmRSS`), or 0 if it cannot be read.
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The CPU time process `pid` has used so far (user + system), or zero if it cannot be read.
pub fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) start at its closing parenthesis;
    // utime and stime are fields 14 and 15 of the line.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

/// The CPU time the processes `pids` use together during the next `window`.
pub fn cpu_used_during(pids: &[u32], window: Duration) -> Duration {
    let total = |pids: &[u32]| pids.iter().map(|&pid| cpu_time(pid)).sum::<Duration>();
    let before = total(pids);
    std::thread::sleep(window);
    total(pids).saturating_sub(before)
}

/// Runs `sql` and returns its canonical rows; panics (naming the statement) if it fails.
pub async fn rows(client: &mut SqlClient, sql: &str) -> Vec<String> {
    let (_, batches) = client
        .query(sql)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
    canonical_rows(&batches)
}

/// Runs `sql`, which must fail, and returns its gRPC code and message.
pub async fn error_of(client: &mut SqlClient, sql: &str) -> (Option<tonic::Code>, String) {
    let err = client
        .query(sql)
        .await
        .expect_err(&format!("{sql} should fail"));
    (status_code(&err), err.to_string())
}

/// A Flight SQL client logged in as one user.
pub struct SqlClient {
    /// The underlying arrow-flight client.
    pub inner: FlightSqlServiceClient<Channel>,
}

impl SqlClient {
    /// Runs the Flight action `name` with `body` and returns the body of its first result.
    pub async fn action(&mut self, name: &str, body: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
        let mut results = self
            .inner
            .do_action(arrow_flight::Action::new(name.to_string(), body))
            .await
            .map_err(|err| match err {
                FlightError::Tonic(status) => *status,
                other => tonic::Status::unknown(other.to_string()),
            })?;
        let result = results.message().await?.expect("a result");
        Ok(result.body.to_vec())
    }

    /// Connects and logs in with the Flight SQL Handshake.
    pub async fn connect(
        addr: SocketAddr,
        user: &str,
        password: &str,
    ) -> Result<Self, FlightError> {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("valid URL")
            .connect()
            .await
            .map_err(|e| FlightError::ExternalError(Box::new(e)))?;
        Self::login(channel, user, password).await
    }

    /// Connects over TLS, trusting the CA certificate `ca_pem` for `localhost`, and logs in.
    pub async fn connect_tls(
        addr: SocketAddr,
        ca_pem: &[u8],
        user: &str,
        password: &str,
    ) -> Result<Self, FlightError> {
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem))
            .domain_name("localhost");
        let channel = Channel::from_shared(format!("https://{addr}"))
            .expect("valid URL")
            .tls_config(tls)
            .map_err(|e| FlightError::ExternalError(Box::new(e)))?
            .connect()
            .await
            .map_err(|e| FlightError::ExternalError(Box::new(e)))?;
        Self::login(channel, user, password).await
    }

    async fn login(channel: Channel, user: &str, password: &str) -> Result<Self, FlightError> {
        // Like pyarrow's and ADBC's clients, accept messages of any size (a wide row is one
        // message), rather than tonic's 4 MiB default.
        let mut inner = FlightSqlServiceClient::new_from_inner(
            arrow_flight::flight_service_client::FlightServiceClient::new(channel)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        );
        inner.handshake(user, password).await?;
        Ok(Self { inner })
    }

    /// Runs one statement (GetFlightInfo, then DoGet on every endpoint) and collects the result.
    pub async fn query(&mut self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), FlightError> {
        let info = self.inner.execute(sql.to_string(), None).await?;
        let schema = info.clone().try_decode_schema()?;
        let mut batches = Vec::new();
        for endpoint in info.endpoint {
            let ticket = endpoint.ticket.expect("endpoint has a ticket");
            let stream = self.inner.do_get(ticket).await?;
            let mut part: Vec<RecordBatch> = stream.try_collect().await?;
            batches.append(&mut part);
        }
        Ok((std::sync::Arc::new(schema), batches))
    }

    /// Runs one statement and returns its result with the JSON app metadata the server sent:
    /// that of the FlightInfo (the query id) and that of the result stream's last message
    /// (the query's final figures).
    pub async fn query_with_metadata(
        &mut self,
        sql: &str,
    ) -> Result<(Vec<RecordBatch>, serde_json::Value, serde_json::Value), FlightError> {
        let info = self.inner.execute(sql.to_string(), None).await?;
        let json = |bytes: &[u8]| -> serde_json::Value {
            serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null)
        };
        let info_metadata = json(&info.app_metadata);
        let mut batches = Vec::new();
        let mut last_metadata = serde_json::Value::Null;
        for endpoint in info.endpoint {
            let ticket = endpoint.ticket.expect("endpoint has a ticket");
            let mut messages = self.inner.do_get(ticket).await?.into_inner();
            while let Some(message) = messages.next().await {
                let message = message?;
                if !message.inner.app_metadata.is_empty() {
                    last_metadata = json(&message.inner.app_metadata);
                }
                if let arrow_flight::decode::DecodedPayload::RecordBatch(batch) = message.payload {
                    batches.push(batch);
                }
            }
        }
        Ok((batches, info_metadata, last_metadata))
    }

    /// Runs statements in order (a TPC-H query file may hold several) and returns the canonical
    /// rows of the last one that produced columns.
    pub async fn last_result_rows(
        &mut self,
        statements: &[String],
    ) -> Result<Vec<String>, FlightError> {
        Ok(canonical_rows(&self.last_result(statements).await?))
    }

    /// Runs statements in order and returns the result of the last one that produced columns.
    pub async fn last_result(
        &mut self,
        statements: &[String],
    ) -> Result<Vec<RecordBatch>, FlightError> {
        let mut last = Vec::new();
        for statement in statements {
            let (schema, batches) = self.query(statement).await?;
            if !schema.fields().is_empty() {
                last = batches;
            }
        }
        Ok(last)
    }

    /// Tasks dispatched so far per executor URL, from `system.executors`, with its state.
    pub async fn executor_status(&mut self) -> Vec<(String, String, u64)> {
        let (_, batches) = self
            .query("SELECT url, state, tasks_dispatched FROM system.executors ORDER BY url")
            .await
            .expect("system.executors");
        let mut rows = Vec::new();
        for batch in batches {
            let urls = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            let states = batch
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            let tasks = batch
                .column(2)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .unwrap();
            for i in 0..batch.num_rows() {
                rows.push((
                    urls.value(i).to_string(),
                    states.value(i).to_string(),
                    tasks.value(i),
                ));
            }
        }
        rows
    }

    /// Polls `system.executors` until `url`'s state is `state`, for at most `timeout`.
    /// Returns how long it took, or `None` if it never happened.
    pub async fn wait_for_executor_state(
        &mut self,
        url: &str,
        state: &str,
        timeout: Duration,
    ) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            let status = self.executor_status().await;
            if status.iter().any(|(u, s, _)| u == url && s == state) {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

/// The gRPC status code of a failed call, when the server answered with one.
pub fn status_code(err: &FlightError) -> Option<tonic::Code> {
    match err {
        FlightError::Tonic(status) => Some(status.code()),
        _ => None,
    }
}

/// Rows of a result as strings, sorted, with floats rounded to 2 decimals: a canonical form
/// for comparing results of two engines.
pub fn canonical_rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|column| {
                (
                    column.data_type().clone(),
                    ArrayFormatter::try_new(column.as_ref(), &options).expect("formatter"),
                    column.clone(),
                )
            })
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|(data_type, formatter, column)| {
                    if column.is_null(row) {
                        return "NULL".to_string();
                    }
                    let text = formatter.value(row).to_string();
                    match data_type {
                        DataType::Float16 | DataType::Float32 | DataType::Float64 => text
                            .parse::<f64>()
                            .map(|v| format!("{v:.2}"))
                            .unwrap_or(text),
                        _ => text,
                    }
                })
                .collect();
            rows.push(cells.join(" | "));
        }
    }
    rows.sort();
    rows
}

/// Single-process DataFusion over the TPC-H Parquet files in `dir` (one directory per table):
/// the reference the distributed answers are compared with.
pub async fn tpch_reference(dir: &Path) -> datafusion::prelude::SessionContext {
    // Literals such as `0.06` are decimals in Osprey (as in SQL); so in the reference.
    let mut config = datafusion::prelude::SessionConfig::new();
    config.options_mut().sql_parser.parse_float_as_decimal = true;
    let reference = datafusion::prelude::SessionContext::new_with_config(config);
    for table in [
        "region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem",
    ] {
        let location = format!("{}/", dir.join(table).display());
        reference
            .register_parquet(
                table,
                &location,
                datafusion::prelude::ParquetReadOptions::default(),
            )
            .await
            .expect("register reference table");
    }
    reference
}

/// Runs all 22 TPC-H queries through `client` and returns how each answer that differs from
/// `reference`'s differs (empty when all match). Panics when a query fails on either side.
pub async fn tpch_mismatches(
    client: &mut SqlClient,
    reference: &datafusion::prelude::SessionContext,
) -> Vec<String> {
    let mut mismatches = Vec::new();
    for n in 1..=22 {
        let statements = tpch_statements(n);
        let expected = datafusion_last_result_rows(reference, &statements)
            .await
            .unwrap_or_else(|e| panic!("q{n} failed in DataFusion: {e}"));
        let actual = client
            .last_result_rows(&statements)
            .await
            .unwrap_or_else(|e| panic!("q{n} failed through Osprey: {e}"));
        assert!(!expected.is_empty(), "q{n}: reference returned no rows");
        if actual != expected {
            mismatches.push(format!(
                "q{n}: {} rows from Osprey, {} from DataFusion; first Osprey rows {:?}, first reference rows {:?}",
                actual.len(),
                expected.len(),
                actual.iter().take(3).collect::<Vec<_>>(),
                expected.iter().take(3).collect::<Vec<_>>()
            ));
        }
    }
    mismatches
}

/// [`SqlClient::last_result_rows`] for single-process DataFusion: the reference answers.
pub async fn datafusion_last_result_rows(
    ctx: &datafusion::prelude::SessionContext,
    statements: &[String],
) -> datafusion::error::Result<Vec<String>> {
    Ok(canonical_rows(
        &datafusion_last_result(ctx, statements).await?,
    ))
}

/// Runs statements in order in single-process DataFusion and returns the result of the last
/// one that produced columns (a TPC-H query file may hold a view's CREATE and DROP around it).
pub async fn datafusion_last_result(
    ctx: &datafusion::prelude::SessionContext,
    statements: &[String],
) -> datafusion::error::Result<Vec<RecordBatch>> {
    let mut last = Vec::new();
    for statement in statements {
        let df = ctx.sql(statement).await?;
        let has_columns = !df.schema().fields().is_empty();
        let batches = df.collect().await?;
        if has_columns {
            last = batches;
        }
    }
    Ok(last)
}

/// The SQL statements of a TPC-H query file, in order (q15 has three).
pub fn tpch_statements(query: usize) -> Vec<String> {
    let path = queries_dir().join("tpch").join(format!("q{query}.sql"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    split_statements(&text)
}

/// Splits a SQL script on `;` into statements, dropping `--` comment lines and empty
/// statements.
///
/// ```
/// let script = "-- a view\ncreate view v as select 1;\nselect * from v;\n";
/// assert_eq!(osprey_tests::split_statements(script).len(), 2);
/// ```
pub fn split_statements(text: &str) -> Vec<String> {
    text.split(';')
        .map(|statement| {
            statement
                .lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|statement| !statement.trim().is_empty())
        .collect()
}

/// `../shared/bench/queries` relative to the repository root (or `OSPREY_QUERIES_DIR`).
pub fn queries_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("OSPREY_QUERIES_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/queries")
}

/// One plain-HTTP/1.1 request to `addr` with Basic credentials: the status and the JSON body
/// (`Value::Null` when the body is empty or not JSON). Enough for the coordinator's JSON API.
pub fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    credentials: (&str, &str),
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    use base64::Engine as _;
    use std::io::{Read, Write};
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.0, credentials.1));
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to HTTP");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head}"));
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}
