//! The SQL corpus: every `tests/sql/*.slt` file, run by `sqllogictest` against a coordinator
//! in this process (its statement service, no front door) over two executor processes.
//!
//! Each file gets a session of its own, as a client connection would; the files share one
//! catalog, so each works in schemas of its own. The same files run through the Flight SQL
//! front door too, with arrow-flight's client against a coordinator process: the same rows and
//! the same errors, door for door (the HTTP and Trino doors are to follow).
//!
//! Run one file: `cargo test -p osprey-tests --test sql_corpus -- --nocapture` with
//! `OSPREY_SLT=basics` (a file name without `.slt`).

mod in_process;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::TryStreamExt;
use osprey_service::{Principal, QueryError, SessionSettings, StatementRequest, StatementService};
use osprey_tests::{
    ADMIN_PASSWORD, CoordinatorOptions, Process, SqlClient, TEST_SECRET, spawn_coordinator,
    spawn_executor,
};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use std::path::{Path, PathBuf};
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
            rows: text_rows(&batches)?,
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

/// One Flight SQL connection (one login, so one session), as sqllogictest drives it.
struct FlightSqlSession {
    client: SqlClient,
}

#[async_trait::async_trait]
impl AsyncDB for FlightSqlSession {
    type Error = arrow_flight::error::FlightError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Self::Error> {
        let (schema, batches) = self.client.query(sql).await?;
        // A statement that ran while planned (DDL, a write) answers its row count as one
        // UInt64 `count` column, or nothing.
        let fields = schema.fields();
        if fields.is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        if fields.len() == 1
            && fields[0].name() == "count"
            && fields[0].data_type() == &DataType::UInt64
        {
            let count = batches
                .first()
                .and_then(|batch| {
                    batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<datafusion::arrow::array::UInt64Array>()
                        .map(|counts| counts.value(0))
                })
                .unwrap_or(0);
            return Ok(DBOutput::StatementComplete(count));
        }
        let types = fields
            .iter()
            .map(|field| column_type(field.data_type()))
            .collect();
        let rows = text_rows(&batches)
            .map_err(|err| arrow_flight::error::FlightError::ExternalError(Box::new(err)))?;
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "osprey-flight-sql"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn column_type(data_type: &DataType) -> DefaultColumnType {
    if data_type.is_integer() {
        DefaultColumnType::Integer
    } else if data_type.is_floating() || matches!(data_type, DataType::Decimal128(..)) {
        DefaultColumnType::FloatingPoint
    } else if matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        DefaultColumnType::Text
    } else {
        DefaultColumnType::Any
    }
}

/// Every value as text: `NULL` for nulls, `(empty)` for empty strings (an empty field would
/// not survive the file format).
fn text_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, QueryError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| QueryError::Execution(err.to_string()))?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|formatter| match formatter.value(row).to_string() {
                        text if text.is_empty() => "(empty)".to_string(),
                        text => text,
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
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
async fn run_corpus<D, F, Fut>(connect: F) -> Vec<String>
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
        if let Err(err) = runner.run_file_async(file).await {
            failures.push(format!("{}: {}", file.display(), err.display(false)));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_corpus_passes_through_flight_sql() {
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
    let addr = coordinator.addr;
    let failures = run_corpus(move || async move {
        Ok(FlightSqlSession {
            client: SqlClient::connect(addr, "admin", ADMIN_PASSWORD).await?,
        })
    })
    .await;
    assert_passed(failures, "through Flight SQL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_corpus_passes_in_process() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (coordinator, _executors) = in_process::start_coordinator(data_dir.path()).await;
    let service = StatementService::new(coordinator.engine.clone());
    let admin = in_process::admin(&service).await;
    let failures = run_corpus(move || {
        let service = service.clone();
        let admin = admin.clone();
        async move {
            Ok(EngineSession {
                service,
                principal: admin.clone(),
                session: SessionSettings {
                    principal: Some(admin),
                    ..SessionSettings::default()
                },
            })
        }
    })
    .await;
    assert_passed(failures, "in process");
}
