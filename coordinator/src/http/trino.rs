//! The Trino client protocol, so that unmodified Trino clients (the `trino` Python client and
//! its SQLAlchemy dialect, and what rides on them: pandas, Superset, dbt-trino) query Osprey.
//!
//! - `POST /v1/statement` with the SQL as the body starts a statement and answers at once with
//!   its id and a `nextUri`.
//! - `GET nextUri` long-polls (up to about a second) and answers the next page: `columns` (with
//!   Trino type names and signatures, see [`crate::trino::types`]), `data` (at most
//!   [`TrinoLimits::page_rows`] rows), `stats`, and the following `nextUri`; the last page has
//!   none. Results are pulled from the executors as pages are fetched, so a client that reads
//!   slowly slows the query instead of filling the coordinator's memory. Asking again for the
//!   page just served (a retry) answers it again.
//! - `DELETE nextUri` cancels the statement (`204`); its tasks stop on every executor.
//! - Headers: `X-Trino-Catalog`, `X-Trino-Schema` and `X-Trino-Session` (DataFusion settings,
//!   `key=value`) set the session; `USE`, `SET` and `RESET` answer with `X-Trino-Set-Catalog`,
//!   `X-Trino-Set-Schema`, `X-Trino-Set-Session` and `X-Trino-Clear-Session` so the client
//!   carries them to its next statement. `X-Trino-User`, when sent, must name the
//!   authenticated user (impersonation is refused).
//! - Parameters arrive as `EXECUTE IMMEDIATE '...' USING ...`, which the statement service
//!   unwraps for every front door; the session sees Trino's `information_schema` and `system`
//!   tables (see [`crate::trino::metadata`]).
//!
//! Authentication is the same as the rest of the HTTP API (Basic or Bearer), which Trino
//! clients send only over HTTPS unless told otherwise. A statement nobody polls for
//! [`TrinoLimits::abandoned_after`] is cancelled.

use super::{ApiError, Authenticated, HttpState};
use crate::trino::metadata::TrinoMetadata;
use crate::trino::types::{trino_json_values, trino_type_name, trino_type_signature};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use osprey_engine::{ProgressSnapshot, QueryProgress};
use osprey_service::{
    MetadataFlavor, OpenStatement, Principal, QueryError, Running, SessionSettings,
    StatementRequest,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The front door's name in the query history.
pub const FRONT_DOOR: &str = "trino";

/// Limits of the Trino endpoint.
#[derive(Debug, Clone)]
pub struct TrinoLimits {
    /// The most rows in one page.
    pub page_rows: usize,
    /// A page stops growing once its rows hold this many bytes (as Arrow).
    pub page_bytes: usize,
    /// How long one poll waits for the statement to make progress.
    pub max_wait: Duration,
    /// A running statement nobody polled for this long is cancelled.
    pub abandoned_after: Duration,
    /// A finished statement's last page is kept this long for a retried request.
    pub finished_kept: Duration,
}

impl Default for TrinoLimits {
    fn default() -> Self {
        Self {
            page_rows: 10_000,
            page_bytes: 4 << 20,
            max_wait: Duration::from_secs(1),
            abandoned_after: Duration::from_secs(5 * 60),
            finished_kept: Duration::from_secs(60),
        }
    }
}

/// The statements of the Trino endpoint, by id.
#[derive(Clone, Default)]
pub struct TrinoQueries {
    queries: Arc<Mutex<HashMap<String, Arc<TrinoQuery>>>>,
    limits: Arc<TrinoLimits>,
}

impl TrinoQueries {
    /// An empty registry with `limits`, and a task (ending with the registry) that cancels
    /// abandoned statements.
    pub fn new(limits: TrinoLimits) -> Self {
        let queries = Self {
            queries: Arc::default(),
            limits: Arc::new(limits),
        };
        let registry = Arc::downgrade(&queries.queries);
        let limits = Arc::clone(&queries.limits);
        tokio::spawn(reap_abandoned(registry, limits));
        queries
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TrinoQuery>>> {
        self.queries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: &str, slug: &str, owner: &Principal) -> Result<Arc<TrinoQuery>, ApiError> {
        let removed = purge(&mut self.lock(), &self.limits);
        drop(removed);
        match self.lock().get(id) {
            Some(query) if query.slug == slug && query.open.is_owned_by(owner) => {
                *query.last_seen.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                Ok(Arc::clone(query))
            }
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!(
                    "no statement {id} at this URI: it is unknown, another user's, finished a \
                     while ago, or was cancelled after nobody polled it"
                ),
            )),
        }
    }
}

/// Forgets finished statements kept long enough, and cancels abandoned ones. Returns them, to
/// be dropped once the registry is unlocked (dropping a statement drops its streams, which
/// stops its executor tasks).
#[must_use]
fn purge(
    queries: &mut HashMap<String, Arc<TrinoQuery>>,
    limits: &TrinoLimits,
) -> Vec<Arc<TrinoQuery>> {
    queries
        .extract_if(|_, query| {
            let idle = query
                .last_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed();
            let finished = query.finished.load(std::sync::atomic::Ordering::Relaxed);
            idle >= if finished {
                limits.finished_kept
            } else {
                limits.abandoned_after
            }
        })
        .map(|(_, query)| query)
        .collect()
}

async fn reap_abandoned(
    queries: Weak<Mutex<HashMap<String, Arc<TrinoQuery>>>>,
    limits: Arc<TrinoLimits>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(10));
    loop {
        every.tick().await;
        let Some(queries) = queries.upgrade() else {
            return;
        };
        let removed = purge(
            &mut queries.lock().unwrap_or_else(|p| p.into_inner()),
            &limits,
        );
        drop(removed);
    }
}

/// One statement of the Trino endpoint.
struct TrinoQuery {
    id: String,
    /// A random part of its URIs, so that they cannot be guessed from the id.
    slug: String,
    /// Its place among its owner's open statements; says who may page or cancel it.
    open: OpenStatement,
    started: Instant,
    last_seen: Mutex<Instant>,
    finished: std::sync::atomic::AtomicBool,
    /// Its time in its workgroup's queue.
    queue: osprey_service::QueueClock,
    /// Polls take turns.
    run: tokio::sync::Mutex<Run>,
    /// Told when a cancel arrives, so that a poll waiting for rows gives its turn up at once.
    cancel_requested: tokio::sync::Notify,
}

/// Where a statement is, and what was last answered.
struct Run {
    phase: Phase,
    /// The token the next page will be asked for with.
    next_token: u64,
    /// The last page served and its token, for a retried request.
    last_page: Option<(u64, Page)>,
    columns: Option<Value>,
    update: Option<(String, u64)>,
    rows: u64,
    bytes_scanned: u64,
    /// The running plan's live progress, and its figures as of the last page.
    progress: Option<Arc<QueryProgress>>,
    figures: Option<ProgressSnapshot>,
    /// Session changes to announce (`USE`, `SET`, `RESET`) with the next page.
    session_headers: Vec<(&'static str, String)>,
    session: SessionSettings,
}

enum Phase {
    /// Planning and starting; the task gives back the result stream, the session as the
    /// statement left it, and the statement (unwrapped from `EXECUTE IMMEDIATE`).
    Starting(JoinHandle<Result<Started, QueryError>>),
    /// Results are streaming; a batch larger than a page is finished over several pages.
    Streaming {
        stream: SendableRecordBatchStream,
        leftover: Option<RecordBatch>,
    },
    /// All rows were served.
    Finished,
    /// The statement failed.
    Failed(QueryError),
}

impl Run {
    /// Takes the live figures of the running plan for the next page's `stats`.
    async fn refresh_figures(&mut self) {
        if let Some(progress) = &self.progress {
            self.figures = Some(progress.snapshot().await);
        }
    }

    /// A statement in `phase` whose next page is token 1, run with `session`.
    fn new(phase: Phase, session: SessionSettings) -> Self {
        Self {
            phase,
            next_token: 1,
            last_page: None,
            columns: None,
            update: None,
            rows: 0,
            bytes_scanned: 0,
            progress: None,
            figures: None,
            session_headers: Vec::new(),
            session,
        }
    }
}

impl Drop for Phase {
    /// A statement dropped while starting (cancelled or abandoned) stops starting; its history
    /// entry is then recorded as CANCELLED.
    fn drop(&mut self) {
        if let Phase::Starting(task) = self {
            task.abort();
        }
    }
}

/// A statement that started.
struct Started {
    execution: Running,
    session: SessionSettings,
}

/// One answer of the protocol: its JSON and the headers that go with it.
#[derive(Clone)]
struct Page {
    body: Value,
    headers: Vec<(&'static str, String)>,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        (StatusCode::OK, headers, axum::Json(self.body)).into_response()
    }
}

/// `POST /v1/statement`: starts a statement.
pub async fn submit(
    State(state): State<HttpState>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    sql: Result<String, axum::extract::rejection::StringRejection>,
) -> Result<Response, ApiError> {
    let sql = super::sql_body(sql)?;
    // Checked before anything starts, so a refused request leaves nothing running.
    let base = base_uri(&state, &headers)?;
    if let Some(user) = header(&headers, "x-trino-user")?
        && user != principal.user
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            format!(
                "X-Trino-User {user:?} is not the authenticated user {:?}: Osprey does not \
                 impersonate; log in as {user:?} instead",
                principal.user
            ),
        ));
    }
    let trino = &state.trino;
    drop(purge(&mut trino.lock(), &trino.limits));
    let open = state.service.open_statement(&principal).map_err(|err| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_QUERIES",
            err.to_string(),
        )
    })?;
    let mut session = SessionSettings {
        catalog: header(&headers, "x-trino-catalog")?.map(str::to_string),
        schema: header(&headers, "x-trino-schema")?.map(str::to_string),
        principal: Some(principal.clone()),
        metadata: Some(MetadataFlavor(Arc::new(TrinoMetadata))),
        ..SessionSettings::default()
    };
    let defaults = state
        .service
        .engine()
        .session()
        .state()
        .config_options()
        .clone();
    for (key, value) in session_properties(header(&headers, "x-trino-session")?)? {
        session.set(&defaults, &key, &value).map_err(|err| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                format!("X-Trino-Session: {err}"),
            )
        })?;
    }
    let statement = state
        .service
        .statement(&principal, StatementRequest::new(FRONT_DOOR, sql));
    let starting_session = session.clone();
    let id = statement.id();
    let queue = statement.queue_clock();
    let starting = tokio::spawn(async move {
        let mut session = starting_session;
        let execution = statement.run(&mut session).await?;
        Ok(Started { execution, session })
    });
    let query = Arc::new(TrinoQuery {
        id,
        slug: random_slug(),
        open,
        started: Instant::now(),
        last_seen: Mutex::new(Instant::now()),
        finished: std::sync::atomic::AtomicBool::new(false),
        cancel_requested: tokio::sync::Notify::new(),
        queue,
        run: tokio::sync::Mutex::new(Run::new(Phase::Starting(starting), session)),
    });
    trino.lock().insert(query.id.clone(), Arc::clone(&query));
    let run = query.run.lock().await;
    let body = page_body(&query, &run, &base, "QUEUED", Some(run.next_token), None);
    Ok(Page {
        body,
        headers: Vec::new(),
    }
    .into_response())
}

/// The parts of a statement's URI: id, slug, token (a number; parsed by the handler so that
/// any malformed one is the same "not the next page").
type StatementPath = (String, String, String);

fn bad_path(rejection: PathRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        format!(
            "{}: follow the nextUri of the last answer",
            rejection.body_text()
        ),
    )
}

/// `GET /v1/statement/executing/{id}/{slug}/{token}`: the next page.
pub async fn next_page(
    State(state): State<HttpState>,
    Authenticated(principal): Authenticated,
    path: Result<Path<StatementPath>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((id, slug, token_text)) = path.map_err(bad_path)?;
    let query = state.trino.get(&id, &slug, &principal)?;
    let base = base_uri(&state, &headers)?;
    let mut run = query.run.lock().await;
    let token = token_text.parse::<u64>().ok();
    if let Some((served, page)) = &run.last_page
        && Some(*served) == token
    {
        return Ok(page.clone().into_response());
    }
    let Some(token) = token.filter(|token| *token == run.next_token) else {
        return Err(ApiError::new(
            StatusCode::GONE,
            "INVALID_TOKEN",
            format!(
                "token {token_text} of statement {id} is not the next page (expected {}): \
                 follow the nextUri of the last answer",
                run.next_token
            ),
        ));
    };
    run.next_token = token + 1;
    let page = advance(&query, &mut run, &base, &state.trino.limits).await;
    run.last_page = Some((token, page.clone()));
    Ok(page.into_response())
}

/// `DELETE /v1/statement/executing/{id}/{slug}/{token}`: cancels the statement.
pub async fn cancel(
    State(state): State<HttpState>,
    Authenticated(principal): Authenticated,
    path: Result<Path<StatementPath>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((id, slug, _token)) = path.map_err(bad_path)?;
    let query = state.trino.get(&id, &slug, &principal)?;
    state.trino.lock().remove(&id);
    // A poll waiting for rows holds the statement: make it answer now, not at its deadline.
    query.cancel_requested.notify_waiters();
    let mut run = query.run.lock().await;
    // Dropping the stream stops the executors' tasks; the history records CANCELLED once the
    // last handle on the statement is gone.
    if !matches!(run.phase, Phase::Finished | Phase::Failed(_)) {
        run.phase = Phase::Failed(QueryError::Cancelled("cancelled by the client".into()));
    }
    query
        .finished
        .store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Moves the statement on by one page: waits up to `max_wait` for it to start, then gathers
/// rows until the page is full, the wait is over (with at least one row), or the rows end.
async fn advance(query: &TrinoQuery, run: &mut Run, base: &str, limits: &TrinoLimits) -> Page {
    let deadline = tokio::time::Instant::now() + limits.max_wait;
    let mut rows: Vec<Value> = Vec::new();
    let mut page_bytes = 0usize;
    loop {
        match &mut run.phase {
            Phase::Starting(task) => {
                let joined = tokio::select! {
                    joined = task => Ok(joined),
                    _ = tokio::time::sleep_until(deadline) => Err(()),
                    _ = query.cancel_requested.notified() => Err(()),
                };
                let started = match joined {
                    Err(()) => {
                        // Still waiting for a slot in its workgroup, or planning.
                        let state = match query.queue.is_queued() {
                            true => "QUEUED",
                            false => "RUNNING",
                        };
                        let body = page_body(query, run, base, state, Some(run.next_token), None);
                        return Page {
                            body,
                            headers: Vec::new(),
                        };
                    }
                    Ok(Err(join)) => Err(QueryError::Execution(format!(
                        "the statement stopped unexpectedly: {join}"
                    ))),
                    Ok(Ok(started)) => started,
                };
                match started {
                    Ok(started) => start_streaming(run, started),
                    Err(err) => run.phase = Phase::Failed(err),
                }
            }
            Phase::Streaming { stream, leftover } => {
                let batch = match leftover.take() {
                    Some(batch) => Some(Ok(batch)),
                    None => tokio::select! {
                        next = stream.next() => next,
                        _ = tokio::time::sleep_until(deadline) => break,
                        _ = query.cancel_requested.notified() => break,
                    },
                };
                match batch {
                    None => {
                        run.phase = Phase::Finished;
                    }
                    Some(Err(err)) => {
                        run.phase = Phase::Failed(QueryError::from(err));
                    }
                    Some(Ok(batch)) => {
                        let room = limits.page_rows - rows.len();
                        let (now, later) = if batch.num_rows() > room {
                            (
                                batch.slice(0, room),
                                Some(batch.slice(room, batch.num_rows() - room)),
                            )
                        } else {
                            (batch, None)
                        };
                        page_bytes += now.get_array_memory_size();
                        match batch_rows(&now) {
                            Ok(mut more) => {
                                run.rows += more.len() as u64;
                                rows.append(&mut more);
                            }
                            Err(err) => {
                                run.phase = Phase::Failed(QueryError::Execution(format!(
                                    "cannot encode the result for Trino: {err}"
                                )));
                                continue;
                            }
                        }
                        if let Phase::Streaming { leftover, .. } = &mut run.phase {
                            *leftover = later;
                        }
                        if rows.len() >= limits.page_rows || page_bytes >= limits.page_bytes {
                            break;
                        }
                    }
                }
            }
            Phase::Finished => {
                query
                    .finished
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                if let Some(progress) = run.progress.take() {
                    run.figures = Some(progress.final_snapshot().await);
                }
                let data = (!rows.is_empty()).then_some(rows);
                let body = page_body(query, run, base, "FINISHED", None, data);
                return Page {
                    body,
                    headers: std::mem::take(&mut run.session_headers),
                };
            }
            Phase::Failed(err) => {
                query
                    .finished
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let error = crate::trino::errors::trino_error(err);
                let mut body = page_body(query, run, base, "FAILED", None, None);
                body["error"] = error;
                return Page {
                    body,
                    headers: Vec::new(),
                };
            }
        }
    }
    run.refresh_figures().await;
    let data = (!rows.is_empty()).then_some(rows);
    let body = page_body(query, run, base, "RUNNING", Some(run.next_token), data);
    Page {
        body,
        headers: std::mem::take(&mut run.session_headers),
    }
}

/// The statement started: records its columns (or its update) and the session changes.
fn start_streaming(run: &mut Run, started: Started) {
    let Started { execution, session } = started;
    run.bytes_scanned = execution.bytes_scanned;
    run.progress = execution.progress.clone();
    run.session_headers = session_changes(&run.session, &session);
    match execution.rows_written {
        Some(rows) => {
            let update_type = execution.update_kind.unwrap_or_default().to_string();
            if execution.stream.schema().fields().is_empty() {
                run.phase = Phase::Finished;
            } else {
                // Writes answer Trino's one `rows` column.
                run.columns = Some(json!([column_json(
                    "rows",
                    &datafusion::arrow::datatypes::DataType::Int64
                )]));
                run.phase = Phase::Streaming {
                    stream: rows_stream(rows),
                    leftover: None,
                };
            }
            run.update = Some((update_type, rows));
        }
        None => {
            let schema = execution.stream.schema();
            let columns: Vec<Value> = schema
                .fields()
                .iter()
                .map(|field| column_json(field.name(), field.data_type()))
                .collect();
            run.columns = Some(Value::Array(columns));
            run.phase = Phase::Streaming {
                stream: execution.stream,
                leftover: None,
            };
        }
    }
    run.session = session;
}

/// A one-row `rows BIGINT` result.
fn rows_stream(rows: u64) -> SendableRecordBatchStream {
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let schema = Arc::new(Schema::new(vec![Field::new(
        "rows",
        DataType::Int64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(Int64Array::from(vec![rows as i64]))],
    );
    Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter([batch.map_err(Into::into)]),
        ),
    )
}

fn column_json(name: &str, data_type: &datafusion::arrow::datatypes::DataType) -> Value {
    json!({
        "name": name,
        "type": trino_type_name(data_type),
        "typeSignature": trino_type_signature(data_type),
    })
}

/// A batch as Trino's `data`: one JSON array per row.
fn batch_rows(batch: &RecordBatch) -> Result<Vec<Value>, datafusion::arrow::error::ArrowError> {
    let mut columns = batch
        .columns()
        .iter()
        .map(|column| trino_json_values(column).map(Vec::into_iter))
        .collect::<Result<Vec<_>, _>>()?;
    // Values move from the columns into the rows (no copies).
    Ok((0..batch.num_rows())
        .map(|_| {
            Value::Array(
                columns
                    .iter_mut()
                    .map(|column| column.next().unwrap_or(Value::Null))
                    .collect(),
            )
        })
        .collect())
}

/// The headers that carry a statement's session changes back to the client.
fn session_changes(
    before: &SessionSettings,
    after: &SessionSettings,
) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if after.catalog != before.catalog
        && let Some(catalog) = &after.catalog
    {
        headers.push(("x-trino-set-catalog", catalog.clone()));
    }
    if after.schema != before.schema
        && let Some(schema) = &after.schema
    {
        headers.push(("x-trino-set-schema", schema.clone()));
    }
    for (key, value) in &after.options {
        if before.options.get(key) != Some(value) {
            let value =
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC);
            headers.push(("x-trino-set-session", format!("{key}={value}")));
        }
    }
    for key in before.options.keys() {
        if !after.options.contains_key(key) {
            headers.push(("x-trino-clear-session", key.clone()));
        }
    }
    headers
}

/// `X-Trino-Session: key=value,key=value` (values percent-encoded).
fn session_properties(header: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(header) = header else {
        return Ok(Vec::new());
    };
    header
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (key, value) = entry.split_once('=').ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    format!("X-Trino-Session entry {entry:?} is not key=value"),
                )
            })?;
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "INVALID_ARGUMENT",
                        format!("X-Trino-Session value of {key} is not UTF-8"),
                    )
                })?;
            Ok((key.trim().to_string(), value.into_owned()))
        })
        .collect()
}

/// A request header as text (`None` when absent or empty).
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|text| Some(text.trim()).filter(|text| !text.is_empty()))
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    format!("header {name} is not visible ASCII"),
                )
            }),
    }
}

/// `https://host:port` as the client reached the server, for the URIs in answers.
fn base_uri(state: &HttpState, headers: &HeaderMap) -> Result<String, ApiError> {
    let host = header(headers, "host")?
        .filter(|host| {
            host.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "the Host header is missing or malformed",
            )
        })?;
    let scheme = if state.tls { "https" } else { "http" };
    Ok(format!("{scheme}://{host}"))
}

fn random_slug() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

/// The JSON of one answer: id, URIs, columns, data, stats.
fn page_body(
    query: &TrinoQuery,
    run: &Run,
    base: &str,
    state: &str,
    next_token: Option<u64>,
    data: Option<Vec<Value>>,
) -> Value {
    let elapsed = query.started.elapsed().as_millis() as u64;
    let splits_total = run.figures.map_or(0, |f| f.tasks_total);
    let splits_done = match state {
        "FINISHED" => splits_total,
        _ => run.figures.map_or(0, |f| f.tasks_done.min(splits_total)),
    };
    let mut body = json!({
        "id": query.id,
        "infoUri": format!("{base}/v1/queries?limit=100"),
        "stats": {
            "state": state,
            "queued": state == "QUEUED",
            "scheduled": state != "QUEUED",
            "wallTimeMillis": elapsed,
            "elapsedTimeMillis": elapsed,
            "queuedTimeMillis": query.queue.queued_ms(),
            // Rows and bytes read by scans so far, measured on the executors; before the
            // plan runs, what is known: rows returned and bytes planned.
            "processedRows": run.figures.map_or(run.rows, |f| f.rows_read),
            "processedBytes": run.figures.map_or(run.bytes_scanned, |f| f.bytes_read),
            "physicalInputBytes": run.figures.map_or(run.bytes_scanned, |f| f.bytes_read),
            // Osprey's executor tasks stand in for Trino's splits (the Trino CLI's progress
            // bar is drawn from these).
            "totalSplits": splits_total,
            "completedSplits": splits_done,
            "runningSplits": splits_total.saturating_sub(splits_done),
            "queuedSplits": 0,
        },
        "warnings": [],
    });
    if let Some(token) = next_token {
        body["nextUri"] = json!(format!(
            "{base}/v1/statement/executing/{}/{}/{token}",
            query.id, query.slug
        ));
    }
    if let Some(columns) = &run.columns {
        body["columns"] = columns.clone();
    }
    if let Some(data) = data {
        body["data"] = Value::Array(data);
    }
    if let Some((update_type, count)) = &run.update {
        body["updateType"] = json!(update_type);
        body["updateCount"] = json!(count);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(id: &str, idle: Duration, finished: bool) -> Arc<TrinoQuery> {
        Arc::new(TrinoQuery {
            id: id.to_string(),
            slug: random_slug(),
            open: osprey_service::OpenStatements::default()
                .open(&Principal {
                    user: "u".to_string(),
                    user_id: "u".to_string(),
                    is_admin: false,
                    session_id: None,
                })
                .unwrap(),
            started: Instant::now(),
            last_seen: Mutex::new(Instant::now() - idle),
            finished: std::sync::atomic::AtomicBool::new(finished),
            queue: osprey_service::QueueClock::default(),
            run: tokio::sync::Mutex::new(Run::new(Phase::Finished, SessionSettings::default())),
            cancel_requested: tokio::sync::Notify::new(),
        })
    }

    #[test]
    fn abandoned_and_long_finished_statements_are_purged() {
        let limits = TrinoLimits {
            abandoned_after: Duration::from_secs(60),
            finished_kept: Duration::from_secs(5),
            ..TrinoLimits::default()
        };
        let mut queries: HashMap<String, Arc<TrinoQuery>> = [
            statement("polled", Duration::from_secs(1), false),
            statement("abandoned", Duration::from_secs(61), false),
            statement("just-finished", Duration::from_secs(1), true),
            statement("long-finished", Duration::from_secs(6), true),
        ]
        .into_iter()
        .map(|query| (query.id.clone(), query))
        .collect();
        let mut removed: Vec<String> = purge(&mut queries, &limits)
            .iter()
            .map(|query| query.id.clone())
            .collect();
        removed.sort();
        assert_eq!(removed, ["abandoned", "long-finished"]);
        let mut kept: Vec<&String> = queries.keys().collect();
        kept.sort();
        assert_eq!(kept, ["just-finished", "polled"]);
    }

    #[test]
    fn session_properties_are_decoded() {
        let parsed =
            session_properties(Some("datafusion.execution.time_zone=%2B01%3A00, a=b")).unwrap();
        assert_eq!(
            parsed,
            vec![
                (
                    "datafusion.execution.time_zone".to_string(),
                    "+01:00".to_string()
                ),
                ("a".to_string(), "b".to_string())
            ]
        );
        assert!(session_properties(Some("novalue")).is_err());
    }
}
