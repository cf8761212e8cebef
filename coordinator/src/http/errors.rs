//! The HTTP front door's errors: `{"error": {"code", "message"}}` with a status, and its one
//! table from error kinds to statuses (see [`osprey_service::QueryError`] for every door's table side by
//! side).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use osprey_service::{AuthError, HandleLimitReached, QueryError};
use serde_json::json;

/// "Client closed request": the status the canonical gRPC-to-HTTP mapping gives a cancelled
/// call.
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// An error answered as `{"error": {"code", "message"}}` with an HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// A `401` challenges for Basic credentials (only when the client asked).
    basic_challenge: bool,
    /// Waiting a second and sending the request again may succeed (`Retry-After: 1`).
    retry_after: bool,
    /// The statement it answers for, sent as `X-Osprey-Query-Id` (its history record).
    query_id: Option<String>,
}

impl ApiError {
    /// An error with `status`, a stable machine-readable `code` and a message for people.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            basic_challenge: false,
            retry_after: false,
            query_id: None,
        }
    }

    /// The same error, naming the statement it answers for (`X-Osprey-Query-Id`).
    pub(super) fn for_query(mut self, query_id: String) -> Self {
        self.query_id = Some(query_id);
        self
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A `401` that challenges for Basic credentials (for clients that asked for them).
    pub(super) fn with_basic_challenge(mut self, basic: bool) -> Self {
        self.basic_challenge = basic;
        self
    }
}

/// A statement's failure as an HTTP error.
pub fn query_error(err: QueryError) -> ApiError {
    let status = match &err {
        QueryError::SyntaxError { .. }
        | QueryError::TableNotFound(_)
        | QueryError::ColumnNotFound(_)
        | QueryError::InvalidStatement(_)
        | QueryError::InvalidData(_) => StatusCode::BAD_REQUEST,
        QueryError::NotFound(_) => StatusCode::NOT_FOUND,
        QueryError::NotSupported(_) => StatusCode::NOT_IMPLEMENTED,
        QueryError::PermissionDenied(_) => StatusCode::FORBIDDEN,
        QueryError::Cancelled(_) => {
            StatusCode::from_u16(CLIENT_CLOSED_REQUEST).unwrap_or(StatusCode::BAD_REQUEST)
        }
        QueryError::QueueFull(_)
        | QueryError::ScanLimitExceeded(_)
        | QueryError::ResourcesExhausted(_)
        | QueryError::ResultTooLarge(_) => StatusCode::TOO_MANY_REQUESTS,
        QueryError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
        QueryError::CommitConflict(_) => StatusCode::CONFLICT,
        QueryError::NoExecutors(_)
        | QueryError::ExecutorLost(_)
        | QueryError::CatalogUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        QueryError::Execution(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut api_error = ApiError::new(status, err.code(), err.to_string());
    // Only a full queue frees up by itself; over a limit, the same statement fails again.
    api_error.retry_after = matches!(err, QueryError::QueueFull(_));
    api_error
}

/// A statement refused because its user (or the coordinator) holds as many open statements as
/// it may: `429 TOO_MANY_QUERIES`, for the HTTP API and the Trino protocol alike.
pub fn too_many_statements(err: HandleLimitReached) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_QUERIES",
        err.to_string(),
    )
}

/// A refused login or token as an HTTP error.
pub(super) fn auth_error(err: AuthError) -> ApiError {
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
        // The service's message speaks of the Flight SQL handshake; HTTP clients send headers.
        AuthError::Missing => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "authentication required: send `Authorization: Basic <base64 of user:password>` \
             (curl: -u user:password), or a bearer token from a login as \
             `Authorization: Bearer <token>`",
        ),
        _ => ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", err.to_string()),
    }
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        if let Some(id) = self
            .query_id
            .as_deref()
            .and_then(|id| axum::http::HeaderValue::from_str(id).ok())
        {
            response.headers_mut().insert(super::QUERY_ID_HEADER, id);
        }
        if self.retry_after {
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
