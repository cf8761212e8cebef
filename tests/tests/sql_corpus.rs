//! The SQL corpus: every `tests/sql/*.slt` file, run by `sqllogictest` against a coordinator
//! in this process (its statement service, no front door) over two executor processes, and
//! through each front door of a coordinator process with that door's own client: Flight SQL
//! (arrow-flight), the HTTP API (reqwest) and the Trino protocol (the `trino` Python client).
//! The same rows and the same errors, door for door.
//!
//! Each file gets a session of its own, as a client connection would; the files share one
//! catalog, so each works in schemas of its own. Records a door cannot run for a reason of its
//! protocol carry `skipif <door>` with that reason (labels: `in-process`, `flight-sql`, `http`,
//! `trino`).
//!
//! A record `\connect USER PASSWORD` turns its connection into that user's, through the same
//! door (`corpus_doors::login`): `policies.slt` shows what each user sees.
//!
//! Run one file: `cargo build --workspace --bins`, then `cargo test --workspace --test
//! sql_corpus -- --nocapture` with `OSPREY_SLT=basics` (a file name without `.slt`).

mod corpus_doors;
mod in_process;

use corpus_doors::flight::FlightSqlSession;
use corpus_doors::http::HttpSession;
use corpus_doors::login::{Login, LoginFn};
use corpus_doors::trino::TrinoSession;
use corpus_doors::{column_type, text_rows};
use datafusion::arrow::array::RecordBatch;
use futures::TryStreamExt;
use osprey_service::{Principal, QueryError, SessionSettings, StatementRequest, StatementService};
use osprey_tests::{
    ADMIN_PASSWORD, CoordinatorOptions, Process, TEST_SECRET, spawn_coordinator, spawn_executor,
};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// One session of the coordinator's statement service, as sqllogictest drives it.
struct EngineSession {
    service: StatementService,
    principal: Principal,
    session: SessionSettings,
}

#[async_trait::async_trait]
impl AsyncDB for EngineSession {
    type Error = QueryError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, QueryError> {
        let request = StatementRequest::new("sql_corpus", sql);
        let statement = self.service.statement(&self.principal, request);
        let execution = statement.run(&mut self.session).await?;
        let completed = execution.rows_written;
        let schema = execution.stream.schema();
        let batches: Vec<RecordBatch> = execution.stream.try_collect().await?;
        if let Some(rows) = completed {
            return Ok(DBOutput::StatementComplete(rows));
        }
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = schema
            .fields()
            .iter()
            .map(|field| column_type(field.data_type()))
            .collect();
        Ok(DBOutput::Rows {
            types,
            rows: text_rows(&batches).map_err(|err| QueryError::Execution(err.to_string()))?,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "osprey"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sql")
}

/// The corpus files, by name; only `OSPREY_SLT`'s when it is set.
fn corpus_files() -> Vec<PathBuf> {
    let only = std::env::var("OSPREY_SLT").ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/sql exists")
        .map(|entry| entry.expect("readable directory").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "slt"))
        .filter(|path| {
            only.as_deref()
                .is_none_or(|name| path.file_stem().is_some_and(|stem| stem == name))
        })
        .collect();
    files.sort();
    files
}

/// Runs every corpus file with a fresh connection from `connect`; the failures, by file.
async fn run_corpus<D, F, Fut>(door: &str, connect: F) -> Vec<String>
where
    D: AsyncDB + Send + 'static,
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<D, D::Error>> + Send + 'static,
{
    let files = corpus_files();
    assert!(
        !files.is_empty(),
        "no .slt file in {}",
        corpus_dir().display()
    );
    let mut failures = Vec::new();
    for file in &files {
        let mut runner = Runner::new(connect.clone());
        runner.add_label("osprey");
        runner.add_label(door);
        if let Err(err) = runner.run_file_async(file).await {
            failures.push(format!(
                "{door}: {}: {}",
                file.display(),
                err.display(false)
            ));
        }
    }
    failures
}

fn assert_passed(failures: Vec<String>, door: &str) {
    assert!(
        failures.is_empty(),
        "{} corpus files failed {door}:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// One coordinator process serves the three doors in turn (each door's run cleans up the
/// schemas it made, as every file drops its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_corpus_passes_through_every_front_door() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let executors: Vec<Process> = (0..2)
        .map(|_| spawn_executor("127.0.0.1:0", TEST_SECRET))
        .collect();
    let coordinator = spawn_coordinator(CoordinatorOptions {
        executors: executors
            .iter()
            .map(|executor| format!("http://{}", executor.addr))
            .collect(),
        data_dir: data_dir.path(),
        tpch_scale: None,
        default_schema: "public",
        extra_args: &[],
    });
    let flight = coordinator.addr;
    let http = coordinator.http_addr();
    let flight_login: LoginFn<FlightSqlSession> = Arc::new(move |user, password| {
        Box::pin(async move { FlightSqlSession::connect(flight, &user, &password).await })
    });
    let http_login: LoginFn<HttpSession> = Arc::new(move |user, password| {
        Box::pin(async move { Ok(HttpSession::new(http, &user, &password)) })
    });
    let trino_login: LoginFn<TrinoSession> = Arc::new(move |user, password| {
        Box::pin(async move { TrinoSession::connect(http, &user, &password) })
    });
    let mut failures = run_corpus("flight-sql", move || {
        Login::open(flight_login.clone(), "admin", ADMIN_PASSWORD)
    })
    .await;
    failures.extend(
        run_corpus("http", move || {
            Login::open(http_login.clone(), "admin", ADMIN_PASSWORD)
        })
        .await,
    );
    failures.extend(
        run_corpus("trino", move || {
            Login::open(trino_login.clone(), "admin", ADMIN_PASSWORD)
        })
        .await,
    );
    assert_passed(failures, "through the front doors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_corpus_passes_in_process() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (coordinator, _executors) = in_process::start_coordinator(data_dir.path()).await;
    let service = StatementService::new(coordinator.engine.clone());
    let admin = in_process::admin(&service).await;
    let session_of = |service: StatementService, principal: Principal| EngineSession {
        service,
        principal: principal.clone(),
        session: SessionSettings {
            principal: Some(principal),
            ..SessionSettings::default()
        },
    };
    let login: LoginFn<EngineSession> = {
        let service = service.clone();
        Arc::new(move |user, password| {
            let service = service.clone();
            Box::pin(async move {
                let principal = in_process::log_in(&service, &user, &password).await?;
                Ok(session_of(service, principal))
            })
        })
    };
    let failures = run_corpus("in-process", move || {
        let session = session_of(service.clone(), admin.clone());
        let login = login.clone();
        async move { Ok(Login::new(session, login)) }
    })
    .await;
    assert_passed(failures, "in process");
}
