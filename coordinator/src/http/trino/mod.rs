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
//!   carries them to its next statement; `SET ROLE` likewise answers `X-Trino-Set-Role`, and
//!   `X-Trino-Role` (`system=ROLE{r}`, `ALL`, `NONE`) carries it back. `X-Trino-User`, when
//!   sent, must name the authenticated user (impersonation is refused).
//! - Parameters arrive as `EXECUTE IMMEDIATE '...' USING ...`, which the statement service
//!   unwraps for every front door; the session sees Trino's `information_schema` and `system`
//!   tables (see [`crate::trino::TrinoMetadata`]).
//!
//! Authentication is the same as the rest of the HTTP API (Basic or Bearer), which Trino
//! clients send only over HTTPS unless told otherwise. A statement nobody polls for
//! [`TrinoLimits::abandoned_after`] is cancelled.

mod encode;
mod headers;
mod paging;
mod registry;
mod statement;

pub use registry::{TrinoLimits, TrinoQueries};

use super::{ApiError, Authenticated, HttpState};
use crate::trino::TrinoMetadata;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use encode::page_body;
use headers::{base_uri, header, session_properties};
use osprey_service::{MetadataFlavor, QueryError, SessionSettings, StatementRequest};
use paging::advance;
use registry::purge;
use statement::{Page, Phase, Run, Started, TrinoQuery, random_slug};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The front door's name in the query history.
pub const FRONT_DOOR: &str = "trino";

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
    let open = state
        .service
        .open_statement(&principal)
        .map_err(crate::http::too_many_statements)?;
    let mut session = SessionSettings {
        catalog: header(&headers, "x-trino-catalog")?.map(str::to_string),
        schema: header(&headers, "x-trino-schema")?.map(str::to_string),
        principal: Some(principal.clone()),
        metadata: Some(MetadataFlavor(Arc::new(TrinoMetadata))),
        role: headers::role_selection(header(&headers, "x-trino-role")?)?.unwrap_or_default(),
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
