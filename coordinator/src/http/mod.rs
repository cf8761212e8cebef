//! The HTTP front door (default `127.0.0.1:8080`): health checks for load balancers and
//! orchestrators, with authentication shared with Flight SQL.
//!
//! - `GET /healthz`: the process is alive (no authentication).
//! - `GET /readyz`: the catalog answers and at least one executor is up (no authentication);
//!   `503` with the reasons otherwise.
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
pub mod queries;
mod retention;
pub mod serve;
pub mod stream;
pub mod tls;
pub mod trino;

use crate::auth::{AuthError, Principal};
use crate::discovery::{ExecutorHealth, ExecutorRegistry};
use crate::query::QueryEngine;
use crate::query::QueryError;
use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// Plans and runs statements; holds the users.
    pub engine: QueryEngine,
    /// Live executors, for readiness.
    pub registry: ExecutorRegistry,
    /// Queries of the native API.
    pub queries: queries::ApiQueries,
    /// Statements of the Trino protocol.
    pub trino: trino::TrinoQueries,
    /// Whether the port serves HTTPS (for the URIs in Trino answers).
    pub tls: bool,
}

/// The HTTP routes.
///
/// ```no_run
/// # async fn run(state: osprey_coordinator::http::HttpState) {
/// let app = osprey_coordinator::http::router(state);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
/// osprey_coordinator::http::serve::serve(listener, app, std::future::pending())
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
    if let Err(err) = state.engine.auth().store().users().await {
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

/// An error answered as `{"error": {"code", "message"}}` with an HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// A `401` challenges for Basic credentials (only when the client asked).
    basic_challenge: bool,
}

/// A malformed query string as a `400`, with a hint naming the parameters.
pub fn bad_parameters(
    rejection: axum::extract::rejection::QueryRejection,
    parameters: &str,
) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        format!("{}; the parameters are {parameters}", rejection.body_text()),
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

/// A statement's failure as an HTTP error: the client's mistakes (and queries over their scan
/// limit) are `400`, missing rights `403`, exhausted limits and full queues `429`, no
/// executors `503`, the rest `500`.
pub fn query_error(err: QueryError) -> ApiError {
    let status = match &err {
        QueryError::InvalidStatement(_)
        | QueryError::InvalidData(_)
        | QueryError::ScanLimitExceeded(_) => StatusCode::BAD_REQUEST,
        QueryError::QueueFull(_) => StatusCode::TOO_MANY_REQUESTS,
        QueryError::NotSupported(_) => StatusCode::NOT_IMPLEMENTED,
        QueryError::PermissionDenied(_) => StatusCode::FORBIDDEN,
        QueryError::ResourcesExhausted(_) => StatusCode::TOO_MANY_REQUESTS,
        QueryError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
        QueryError::NoExecutors(_) | QueryError::ExecutorLost(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, err.code(), err.to_string())
}

impl ApiError {
    /// An error with `status`, a stable machine-readable `code` and a message for people.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            basic_challenge: false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        if self.code == "QUEUE_FULL" {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // A Basic challenge makes browsers prompt for and cache credentials, which any web
            // page could then use: only clients that ask get one.
            let challenge = match self.basic_challenge {
                true => "Basic realm=\"osprey\"",
                false => "Bearer realm=\"osprey\"",
            };
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge),
            );
        }
        response
    }
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
        let refuse = |err: AuthError| {
            let mut refusal = auth_error(err);
            refusal.basic_challenge = asked_for_basic;
            refusal
        };
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
            .engine
            .auth()
            .check_authorization(header, peer)
            .await
            .map(Authenticated)
            .map_err(refuse)
    }
}

fn auth_error(err: AuthError) -> ApiError {
    match err {
        AuthError::Unavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            err.to_string(),
        ),
        AuthError::Busy => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_LOGINS",
            err.to_string(),
        ),
        _ => ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", err.to_string()),
    }
}
