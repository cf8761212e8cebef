//! Osprey's native asynchronous query API.
//!
//! - `POST /v1/queries` `{sql, catalog?, schema?, wait_timeout?}` starts a statement. If it
//!   finishes within `wait_timeout` (default `10s`, cut to `50s`; `0s` returns at once) the
//!   answer carries its state and the first page of results; otherwise its id and state, and
//!   it keeps running.
//! - `GET /v1/queries/{id}`: state, rows, bytes scanned, timings, error.
//! - `GET /v1/queries/{id}/results?format=json|csv|arrow&page_token=T`: one bounded page; the
//!   next page's token is in the JSON body and in the `X-Osprey-Next-Page-Token` header.
//! - `DELETE /v1/queries/{id}`: cancels it (its tasks stop on every executor).
//! - `GET /v1/queries`: the history; users see their own queries, admins everyone's.
//!
//! Results are held in the coordinator's memory up to [`QueryApiLimits::max_result_bytes`] per
//! query and [`QueryApiLimits::max_retained_bytes_per_user`] per user, counted in the
//! coordinator's memory pool (past any of these the query fails with `RESULT_TOO_LARGE`:
//! stream it with `POST /v1/statement:stream` instead), and kept
//! [`QueryApiLimits::result_retention`] after the query ends; later they answer `410 Gone`.
//! Another user's query is a `404`.

use super::retention::{RetainedResults, Retention};
use super::{ApiError, Authenticated, HttpState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use futures::StreamExt;
use osprey_catalog::{HistoryCursor, QueryRecord, now_ms};
use osprey_engine::QueryProgress;
use osprey_service::{
    OpenStatement, Principal, QueryError, QueueClock, SessionSettings, Statement, StatementRequest,
    TypeNameCase, sql_type_name,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The front door's name in the query history.
pub const FRONT_DOOR: &str = "http";

/// Limits of the native query API.
#[derive(Debug, Clone)]
pub struct QueryApiLimits {
    /// The most result bytes (Arrow, in memory) one query may hold for paging.
    pub max_result_bytes: usize,
    /// The most rows in one page.
    pub max_page_rows: usize,
    /// How long results stay fetchable after the query ends.
    pub result_retention: Duration,
    /// The most result bytes one user's retained results hold, all together (they also count
    /// in the coordinator's memory pool).
    pub max_retained_bytes_per_user: usize,
}

impl Default for QueryApiLimits {
    fn default() -> Self {
        Self {
            max_result_bytes: 256 << 20,
            max_page_rows: 10_000,
            result_retention: Duration::from_secs(15 * 60),
            max_retained_bytes_per_user: 1 << 30,
        }
    }
}

/// A query's state, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiQueryState {
    /// Accepted, not started.
    Queued,
    /// Planning or running.
    Running,
    /// Finished; its results can be fetched.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Cancelled by its user.
    Cancelled,
}

impl ApiQueryState {
    fn as_str(self) -> &'static str {
        match self {
            ApiQueryState::Queued => "QUEUED",
            ApiQueryState::Running => "RUNNING",
            ApiQueryState::Succeeded => "SUCCEEDED",
            ApiQueryState::Failed => "FAILED",
            ApiQueryState::Cancelled => "CANCELLED",
        }
    }

    fn is_final(self) -> bool {
        !matches!(self, ApiQueryState::Queued | ApiQueryState::Running)
    }
}

/// What a query has done so far.
#[derive(Debug, Clone)]
struct Progress {
    state: ApiQueryState,
    error: Option<(&'static str, String)>,
    rows: u64,
    bytes_scanned: u64,
    result_bytes: usize,
    schema: Option<SchemaRef>,
    batches: Vec<RecordBatch>,
    /// The running plan's live progress.
    live: Option<Arc<QueryProgress>>,
    finished: Option<Instant>,
    finished_at_ms: Option<i64>,
}

/// One query of the API.
struct ApiQuery {
    id: String,
    user: String,
    /// Its place among its owner's open statements; says who may see it.
    open: OpenStatement,
    submitted: Instant,
    submitted_at_ms: i64,
    progress: Mutex<Progress>,
    /// Bumped on every state change, for waiters.
    changed: watch::Sender<u64>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
    /// Its time in its workgroup's queue.
    queue: QueueClock,
    /// The memory its kept result holds.
    retention: Mutex<Option<Retention>>,
}

impl ApiQuery {
    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut Progress)) {
        {
            let mut progress = self.progress();
            if progress.state.is_final() {
                return;
            }
            change(&mut progress);
            if progress.state.is_final() && progress.state != ApiQueryState::Succeeded {
                // Nobody can fetch a failed or cancelled query's rows: give their memory back.
                progress.batches = Vec::new();
                progress.result_bytes = 0;
                self.retention
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
            }
            if progress.state.is_final() {
                progress.finished = Some(Instant::now());
                progress.finished_at_ms = Some(now_ms());
                // The plan it watches is no longer needed.
                progress.live = None;
            }
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Waits until the query ends or `timeout` passes.
    async fn wait(&self, timeout: Duration) {
        let mut changes = self.changed.subscribe();
        let ended = async {
            while !self.progress().state.is_final() {
                if changes.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, ended).await;
    }

    fn status(&self) -> Value {
        let progress = self.progress();
        let elapsed = progress
            .finished
            .unwrap_or_else(Instant::now)
            .duration_since(self.submitted);
        // A running statement may still wait for a slot in its workgroup.
        let state = match progress.state {
            ApiQueryState::Running if self.queue.is_queued() => ApiQueryState::Queued,
            state => state,
        };
        json!({
            "query_id": self.id,
            "user": self.user,
            "state": state.as_str(),
            "queued_ms": self.queue.queued_ms(),
            "rows": progress.rows,
            "bytes_scanned": progress.bytes_scanned,
            "submitted_at_ms": self.submitted_at_ms,
            "finished_at_ms": progress.finished_at_ms,
            "elapsed_ms": elapsed.as_millis() as u64,
            "error": progress.error.as_ref().map(|(code, message)| json!({"code": code, "message": message})),
        })
    }
}

/// The API's queries, by id.
#[derive(Clone, Default)]
pub struct ApiQueries {
    queries: Arc<Mutex<HashMap<String, Arc<ApiQuery>>>>,
    limits: Arc<QueryApiLimits>,
    retained: RetainedResults,
}

impl ApiQueries {
    /// An empty registry with `limits`.
    pub fn new(limits: QueryApiLimits) -> Self {
        Self {
            queries: Arc::default(),
            limits: Arc::new(limits),
            retained: RetainedResults::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ApiQuery>>> {
        self.queries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets queries whose results expired.
    fn purge(&self) {
        let retention = self.limits.result_retention;
        self.lock().retain(|_, query| {
            query
                .progress()
                .finished
                .is_none_or(|finished| finished.elapsed() < retention)
        });
    }

    /// The query `id` if `user` may see it: another user's query is "not found".
    fn get(&self, id: &str, user: &Principal) -> Result<Arc<ApiQuery>, ApiError> {
        self.purge();
        match self.lock().get(id) {
            Some(query) if query.open.is_owned_by(user) => Ok(Arc::clone(query)),
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!(
                    "no query {id}: it is unknown, another user's, or its results expired and it was forgotten"
                ),
            )),
        }
    }
}

/// `POST /v1/queries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The statement.
    pub sql: String,
    /// The catalog unqualified names resolve in.
    #[serde(default)]
    pub catalog: Option<String>,
    /// The schema unqualified names resolve in.
    #[serde(default)]
    pub schema: Option<String>,
    /// How long to wait for the result before answering with the query's state: `"10s"`,
    /// `"500ms"`, `"0s"`. Waits longer than 50 s are cut to 50 s.
    #[serde(default)]
    pub wait_timeout: Option<String>,
}

/// The longest `wait_timeout`; longer ones are cut to it.
const MAX_WAIT: Duration = Duration::from_secs(50);

fn parse_wait(text: Option<&str>) -> Result<Duration, ApiError> {
    let Some(text) = text else {
        return Ok(Duration::from_secs(10));
    };
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!(
                "wait_timeout {text:?}: use a duration such as \"10s\" or \"500ms\" (at most 50s is waited)"
            ),
        )
    };
    let trimmed = text.trim();
    let (number, unit_ms) = if let Some(ms) = trimmed.strip_suffix("ms") {
        (ms, 1)
    } else if let Some(s) = trimmed.strip_suffix('s') {
        (s, 1000)
    } else {
        return Err(bad());
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // Digits only: a value too long for u64 is far beyond the cap anyway.
    let amount: u64 = number.parse().unwrap_or(u64::MAX);
    Ok(Duration::from_millis(amount.saturating_mul(unit_ms)).min(MAX_WAIT))
}

/// `POST /v1/queries`: starts a statement and waits up to `wait_timeout` for it.
pub async fn submit(
    State(state): State<HttpState>,
    Authenticated(principal): Authenticated,
    body: Result<Json<SubmitRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            "INVALID_REQUEST",
            format!(
                "{}; send {{\"sql\": \"...\", \"catalog\"?, \"schema\"?, \"wait_timeout\"?}} as JSON",
                rejection.body_text()
            ),
        )
    })?;
    let wait = parse_wait(request.wait_timeout.as_deref())?;
    let queries = &state.queries;
    queries.purge();
    let open = state
        .service
        .open_statement(&principal)
        .map_err(super::too_many_statements)?;
    let statement = state
        .service
        .statement(&principal, StatementRequest::new(FRONT_DOOR, request.sql));
    let (changed, _) = watch::channel(0);
    let query = Arc::new(ApiQuery {
        id: statement.id(),
        user: principal.user.clone(),
        open,
        submitted: Instant::now(),
        submitted_at_ms: now_ms(),
        progress: Mutex::new(Progress {
            state: ApiQueryState::Queued,
            error: None,
            rows: 0,
            bytes_scanned: 0,
            result_bytes: 0,
            schema: None,
            batches: Vec::new(),
            live: None,
            finished: None,
            finished_at_ms: None,
        }),
        changed,
        task: Mutex::new(None),
        queue: statement.queue_clock(),
        retention: Mutex::new(None),
    });
    queries.lock().insert(query.id.clone(), Arc::clone(&query));
    let session = SessionSettings {
        catalog: request.catalog,
        schema: request.schema,
        principal: Some(principal),
        ..SessionSettings::default()
    };
    let runner = tokio::spawn(run(state.clone(), Arc::clone(&query), session, statement));
    *query.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(runner.abort_handle());
    query.wait(wait).await;
    let mut answer = query.status();
    if query.progress().state == ApiQueryState::Succeeded {
        answer["result"] = json_page(&query, 0, queries.limits.max_page_rows)?;
    }
    Ok((StatusCode::OK, Json(answer)).into_response())
}

/// Runs one statement, keeping its result for paging.
async fn run(
    state: HttpState,
    query: Arc<ApiQuery>,
    mut session: SessionSettings,
    statement: Statement,
) {
    query.update(|p| p.state = ApiQueryState::Running);
    let record = statement.record();
    let fail = |err: QueryError| {
        record.fail(&err);
        query.update(|p| {
            p.state = ApiQueryState::Failed;
            p.error = Some((err.code(), err.to_string()));
        });
    };
    let execution = match statement.run(&mut session).await {
        Ok(execution) => execution,
        Err(err) => return fail(err),
    };
    query.update(|p| {
        p.schema = Some(execution.stream.schema());
        p.bytes_scanned = execution.bytes_scanned;
        p.live = execution.progress.clone();
    });
    let mut stream = execution.stream;
    let limits = &state.queries.limits;
    let max_bytes = limits.max_result_bytes;
    let pool = Arc::clone(&state.service.engine().session().runtime_env().memory_pool);
    *query.retention.lock().unwrap_or_else(|p| p.into_inner()) = Some(
        state
            .queries
            .retained
            .start(query.open.owner(), &query.id, &pool),
    );
    while let Some(batch) = stream.next().await {
        let batch = match batch {
            Ok(batch) => batch,
            Err(err) => return fail(QueryError::from(err)),
        };
        let size = batch.get_array_memory_size();
        if query.progress().result_bytes + size > max_bytes {
            return fail(QueryError::ResultTooLarge(format!(
                "the result exceeds {max_bytes} bytes, the most one query keeps for paging; \
                 stream it with POST /v1/statement:stream, or UNLOAD it"
            )));
        }
        let counted = match query
            .retention
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            Some(retention) => retention.grow(size, limits.max_retained_bytes_per_user),
            // Cancelled meanwhile.
            None => return,
        };
        if let Err(refused) = counted {
            return fail(QueryError::ResultTooLarge(refused.to_string()));
        }
        query.update(|p| {
            p.result_bytes += size;
            p.rows += batch.num_rows() as u64;
            p.batches.push(batch);
        });
    }
    query.update(|p| p.state = ApiQueryState::Succeeded);
}

/// `GET /v1/queries/{id}`, with live `progress` figures while it runs.
pub async fn status(
    State(state): State<HttpState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let query = state.queries.get(&id, &principal)?;
    let mut answer = query.status();
    let live = {
        let progress = query.progress();
        match progress.state {
            ApiQueryState::Running if !query.queue.is_queued() => progress.live.clone(),
            _ => None,
        }
    };
    if let Some(live) = live {
        answer["progress"] = json!(live.snapshot().await);
    }
    Ok(Json(answer))
}

/// `DELETE /v1/queries/{id}`: cancels a running query (no effect on a finished one) and
/// answers its status.
pub async fn cancel(
    State(state): State<HttpState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let query = state.queries.get(&id, &principal)?;
    if let Some(task) = query.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
        // Dropping the running statement drops its streams: executors stop its tasks.
        task.abort();
    }
    query.update(|p| p.state = ApiQueryState::Cancelled);
    Ok(Json(query.status()))
}

/// `GET /v1/queries/{id}/results` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsParams {
    /// `json` (default), `csv` or `arrow`.
    #[serde(default)]
    pub format: Option<String>,
    /// Where the page starts: a token from the previous page.
    #[serde(default)]
    pub page_token: Option<String>,
}

/// The header carrying the next page's token on CSV and Arrow pages.
pub const NEXT_PAGE_HEADER: &str = "x-osprey-next-page-token";

/// `GET /v1/queries/{id}/results`.
pub async fn results(
    State(state): State<HttpState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    params: Result<Query<ResultsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) =
        params.map_err(|rejection| super::bad_parameters(rejection, "format and page_token"))?;
    let query = state.queries.get(&id, &principal)?;
    let limits = &state.queries.limits;
    let (state_now, finished) = {
        let progress = query.progress();
        (progress.state, progress.finished)
    };
    match state_now {
        ApiQueryState::Succeeded => {}
        ApiQueryState::Queued | ApiQueryState::Running => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "NOT_FINISHED",
                format!(
                    "query {id} is {}: poll GET /v1/queries/{id} until SUCCEEDED",
                    state_now.as_str()
                ),
            ));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "NO_RESULT",
                format!("query {id} is {} and has no result", state_now.as_str()),
            ));
        }
    }
    if finished.is_some_and(|finished| finished.elapsed() >= limits.result_retention) {
        return Err(ApiError::new(
            StatusCode::GONE,
            "RESULT_EXPIRED",
            format!("the results of query {id} expired; run it again"),
        ));
    }
    let start = parse_page_token(params.page_token.as_deref())?;
    match params.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(json_page(&query, start, limits.max_page_rows)?).into_response()),
        "csv" => {
            let (batches, next) = page(&query, start, limits.max_page_rows)?;
            let body = super::encode::csv(&batches, start == 0)?;
            Ok(with_next(("text/csv; charset=utf-8", body), next))
        }
        "arrow" => {
            let (batches, next) = page(&query, start, limits.max_page_rows)?;
            let schema = query
                .progress()
                .schema
                .clone()
                .unwrap_or_else(|| Arc::new(datafusion::arrow::datatypes::Schema::empty()));
            let body = super::encode::arrow_ipc(&schema, &batches)?;
            Ok(with_next((super::encode::ARROW_STREAM, body), next))
        }
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("unknown format {other:?}: use json, csv or arrow"),
        )),
    }
}

fn with_next(body: (&'static str, Vec<u8>), next: Option<usize>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(body.0),
    );
    if let Some(next) = next
        && let Ok(value) = HeaderValue::from_str(&next.to_string())
    {
        headers.insert(NEXT_PAGE_HEADER, value);
    }
    (headers, body.1).into_response()
}

fn parse_page_token(token: Option<&str>) -> Result<usize, ApiError> {
    match token {
        None | Some("") => Ok(0),
        Some(token) => token.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                format!("page_token {token:?} is not a token this API gave out"),
            )
        }),
    }
}

/// The rows `start..start + max_rows` of a finished query, and the next page's start.
fn page(
    query: &ApiQuery,
    start: usize,
    max_rows: usize,
) -> Result<(Vec<RecordBatch>, Option<usize>), ApiError> {
    let progress = query.progress();
    let total = progress.rows as usize;
    if start > total {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("page_token {start} is past the end of the result ({total} rows)"),
        ));
    }
    let end = (start + max_rows).min(total);
    let mut out = Vec::new();
    let mut offset = 0;
    for batch in &progress.batches {
        let (batch_start, batch_end) = (offset, offset + batch.num_rows());
        offset = batch_end;
        let from = start.max(batch_start);
        let to = end.min(batch_end);
        if from < to {
            out.push(batch.slice(from - batch_start, to - from));
        }
    }
    Ok((out, (end < total).then_some(end)))
}

fn json_page(query: &ApiQuery, start: usize, max_rows: usize) -> Result<Value, ApiError> {
    let (batches, next) = page(query, start, max_rows)?;
    let schema = query.progress().schema.clone();
    let columns: Vec<Value> = schema
        .iter()
        .flat_map(|schema| schema.fields().iter())
        .map(|field| json!({"name": field.name(), "type": sql_type_name(field.data_type(), TypeNameCase::Upper)}))
        .collect();
    Ok(json!({
        "columns": columns,
        "rows": super::encode::json_rows(&batches)?,
        "next_page_token": next.map(|n| n.to_string()),
    }))
}

/// `GET /v1/queries` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// How many queries per page (default 100, at most 1,000).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Where the page starts: the `next_page_token` of the page before. The first page (the
    /// latest queries) without it.
    #[serde(default)]
    pub page_token: Option<String>,
}

/// The page token after `record`: its submission time and id.
fn history_page_token(record: &QueryRecord) -> String {
    format!("{}.{}", record.submitted_at_ms, record.query_id)
}

fn parse_history_page_token(token: &str) -> Result<HistoryCursor, ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_PAGE_TOKEN",
            format!(
                "page_token {token:?} is not one this API gave out: pass the next_page_token \
                 of the page before, or leave it out for the latest queries"
            ),
        )
    };
    let (time, id) = token.split_once('.').ok_or_else(invalid)?;
    let submitted_at_ms = time.parse::<i64>().map_err(|_| invalid())?;
    let plausible_id = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plausible_id {
        return Err(invalid());
    }
    Ok(HistoryCursor {
        submitted_at_ms,
        query_id: id.to_string(),
    })
}

/// `GET /v1/queries`: the query history (own, or everyone's for admins), newest first, a page
/// at a time.
pub async fn history(
    State(state): State<HttpState>,
    Authenticated(principal): Authenticated,
    params: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) =
        params.map_err(|rejection| super::bad_parameters(rejection, "limit, page_token"))?;
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let after = params
        .page_token
        .as_deref()
        .map(parse_history_page_token)
        .transpose()?;
    let only = (!principal.is_admin).then_some(principal.user.as_str());
    let records = state
        .service
        .engine()
        .history()
        .recent(only, after.as_ref(), limit)
        .await
        .map_err(|err| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                err.to_string(),
            )
        })?;
    // A full page may have more after it; a short one is the last.
    let next_page_token = (records.len() == limit as usize)
        .then(|| records.last().map(history_page_token))
        .flatten();
    let queries: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "query_id": r.query_id,
                "user": r.user,
                "front_door": r.front_door,
                "query": r.sql,
                "state": r.state.as_str(),
                "error": r.error_code.as_ref().map(|code| json!({"code": code, "message": r.error_message})),
                "submitted_at_ms": r.submitted_at_ms,
                "finished_at_ms": r.finished_at_ms,
                "rows": r.rows,
                "bytes_scanned": r.bytes_scanned,
            })
        })
        .collect();
    Ok(Json(
        json!({ "queries": queries, "next_page_token": next_page_token }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_timeouts_parse_and_are_bounded() {
        assert_eq!(parse_wait(None).unwrap(), Duration::from_secs(10));
        assert_eq!(parse_wait(Some("0s")).unwrap(), Duration::ZERO);
        assert_eq!(
            parse_wait(Some("250ms")).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_wait(Some("50s")).unwrap(), Duration::from_secs(50));
        assert_eq!(parse_wait(Some("3600s")).unwrap(), MAX_WAIT);
        assert_eq!(
            parse_wait(Some("99999999999999999999999s")).unwrap(),
            MAX_WAIT
        );
        for bad in ["10", "ten seconds", "-1s", "", "s", "1.5s"] {
            assert!(parse_wait(Some(bad)).is_err(), "{bad}");
        }
    }
}
