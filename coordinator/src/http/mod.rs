//! The HTTP front door (default `127.0.0.1:8080`): health checks for load balancers and
//! orchestrators, with authentication shared with Flight SQL.
//!
//! - `GET /healthz`: the process is alive (no authentication).
//! - `GET /readyz`: the catalog answers and at least one executor is up (no authentication);
//!   `503` with the reasons otherwise.
//!
//! - `/iceberg/v1/...`: Osprey's catalog as an Iceberg REST catalog (`iceberg`), for Spark,
//!   pyiceberg, Trino and DuckDB; OAuth2 client credentials at `/iceberg/v1/oauth/tokens`.
//!
//! Every other route authenticates with `Authorization: Basic ...` or `Bearer <token>` (the
//! tokens Flight SQL's Handshake issues) and answers errors as JSON:
//! `{"error": {"code": "...", "message": "..."}}`.
//!
//! Browsers must not be able to run SQL with credentials they cached for this port: requests
//! from another origin (`Origin` not this host, or `Sec-Fetch-Site` cross-site) are refused,
//! the statement stream takes only `Content-Type: application/sql` (a form or `text/plain`
//! POST needs no CORS preflight), and a `401` challenges for Basic credentials only when the
//! client asks with `X-Trino-User` (Trino clients), so a browser never caches them.

pub mod encode;
mod errors;
mod iceberg;
pub mod queries;
mod retention;
pub mod serve;
pub mod stream;
pub mod tls;
pub mod trino;

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use errors::auth_error;
pub use errors::{ApiError, bad_parameters, query_error, too_many_statements};
use osprey_service::{AuthError, ExecutorHealth, ExecutorRegistry, Principal, StatementService};
use serde_json::json;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// Runs statements; its engine holds the users.
    pub service: StatementService,
    /// Live executors, for readiness.
    pub registry: ExecutorRegistry,
    /// Queries of the native API.
    pub queries: queries::ApiQueries,
    /// Statements of the Trino protocol.
    pub trino: trino::TrinoQueries,
    /// Whether the port serves HTTPS (for the URIs in Trino answers).
    pub tls: bool,
}

/// The header that names the statement an answer is for (its id in the query history).
pub const QUERY_ID_HEADER: &str = "x-osprey-query-id";

/// The HTTP routes.
///
/// ```no_run
/// # async fn run(state: osprey_coordinator::HttpState) {
/// let app = osprey_coordinator::http_router(state);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
/// osprey_coordinator::serve_http(listener, app, std::future::pending())
///     .await
///     .unwrap();
/// # }
/// ```
pub fn router(state: HttpState) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/whoami", get(whoami))
        .route("/v1/queries", get(queries::history).post(queries::submit))
        .route(
            "/v1/queries/{id}",
            get(queries::status).delete(queries::cancel),
        )
        .route("/v1/queries/{id}/results", get(queries::results))
        .route(
            "/v1/statement:stream",
            axum::routing::post(stream::statement_stream),
        )
        .route("/v1/statement", axum::routing::post(trino::submit))
        .route(
            "/v1/statement/executing/{id}/{slug}/{token}",
            get(trino::next_page).delete(trino::cancel),
        )
        .nest("/iceberg", iceberg::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(refuse_cross_site))
        .fallback(not_found)
        .with_state(state)
}

/// Refuses requests a web page of another origin made: `Sec-Fetch-Site: cross-site` or
/// `same-site`, or an `Origin` whose host and port are not this request's `Host`.
async fn refuse_cross_site(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = headers.get(axum::http::header::ORIGIN).map(|origin| {
        origin
            .to_str()
            .ok()
            .and_then(|o| url::Url::parse(o).ok())
            .and_then(|u| {
                let host = u.host_str()?.to_string();
                Some(match u.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                })
            })
    });
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok());
    let cross_origin = match origin_host {
        None => false,
        Some(None) => true,
        Some(Some(origin)) => host.is_none_or(|host| !origin.eq_ignore_ascii_case(host)),
    };
    if cross_origin || matches!(fetch_site, "cross-site" | "same-site") {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "CROSS_ORIGIN",
            "requests from web pages of other origins are refused: call the API from a client \
             or a server, not from a browser page on another site",
        )
        .into_response();
    }
    next.run(request).await
}

/// The largest request body accepted (SQL text or JSON); larger ones get `413`.
pub const MAX_BODY_BYTES: usize = 1 << 20;

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "alive"}))
}

async fn readyz(State(state): State<HttpState>) -> Response {
    let mut problems = Vec::new();
    if let Err(err) = state.service.engine().auth().store().users().await {
        problems.push(format!("catalog unreachable: {err}"));
    }
    let up = state
        .registry
        .statuses()
        .iter()
        .filter(|status| matches!(status.health, ExecutorHealth::Up))
        .count();
    if up == 0 {
        problems.push("no live executor".to_string());
    }
    if problems.is_empty() {
        Json(json!({"status": "ready", "executors_up": up})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "executors_up": up, "problems": problems})),
        )
            .into_response()
    }
}

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

/// `GET /v1/whoami`: the authenticated user (a cheap way to check credentials).
async fn whoami(Authenticated(principal): Authenticated) -> Json<serde_json::Value> {
    Json(json!({"user": principal.user, "admin": principal.is_admin}))
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no such endpoint: the API is /v1/queries, /v1/statement:stream, /healthz and /readyz",
    )
}

/// A SQL statement sent as the request body: an unreadable body answers its rejection's
/// status, an empty one `400`.
pub fn sql_body(
    body: Result<String, axum::extract::rejection::StringRejection>,
) -> Result<String, ApiError> {
    let sql = body.map_err(|rejection| {
        ApiError::new(rejection.status(), "INVALID_REQUEST", rejection.body_text())
    })?;
    if sql.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "send the SQL statement as the request body",
        ));
    }
    Ok(sql)
}

/// The user a request authenticated as (Basic or Bearer), or a `401`.
pub struct Authenticated(pub Principal);

impl FromRequestParts<HttpState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        // Trino clients send X-Trino-User and expect a Basic challenge; a browser page of
        // another origin cannot send that header without a CORS preflight, which fails.
        let asked_for_basic = parts.headers.contains_key("x-trino-user");
        let refuse = |err: AuthError| auth_error(err).with_basic_challenge(asked_for_basic);
        let header = match parts.headers.get(axum::http::header::AUTHORIZATION) {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| refuse(AuthError::Malformed))?),
        };
        // Set by `serve::serve`; absent when the router is served another way (tests).
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        state
            .service
            .engine()
            .auth()
            .check_authorization(header, peer)
            .await
            .map(Authenticated)
            .map_err(refuse)
    }
}
