//! Why a statement failed: one taxonomy for every front door.

pub use crate::error_text::SourceLocation;
use crate::error_text::{parser_message, plain_message};
use crate::retry::{ExecutorLostAfterRows, ExecutorLostEveryRun, QueryTimedOut};
use datafusion::arrow::error::ArrowError;
use datafusion::common::DataFusionError;
use osprey_engine::NoLiveExecutors;

/// Why a statement failed, sorted by who can act on it.
///
/// Every refusal and failure is a `QueryError`: its variant is the kind (who can act on it, and
/// how), [`QueryError::code`] a stable name for it (the query history stores it, the HTTP API
/// returns it), and its text the message for people. Each front door maps kinds to its wire in
/// exactly one table, in its own `errors.rs`:
///
/// | kind | code | Flight SQL (gRPC) | HTTP | Trino |
/// |---|---|---|---|---|
/// | [`QueryError::SyntaxError`] | `SYNTAX_ERROR` | `INVALID_ARGUMENT` | 400 | `SYNTAX_ERROR`, with `errorLocation` |
/// | [`QueryError::TableNotFound`] | `TABLE_NOT_FOUND` | `INVALID_ARGUMENT` | 400 | `TABLE_NOT_FOUND` |
/// | [`QueryError::ColumnNotFound`] | `COLUMN_NOT_FOUND` | `INVALID_ARGUMENT` | 400 | `COLUMN_NOT_FOUND` |
/// | [`QueryError::InvalidStatement`] | `INVALID_STATEMENT` | `INVALID_ARGUMENT` | 400 | `GENERIC_USER_ERROR` |
/// | [`QueryError::NotFound`] | `NOT_FOUND` | `NOT_FOUND` | 404 | `NOT_FOUND` |
/// | [`QueryError::NotSupported`] | `NOT_SUPPORTED` | `UNIMPLEMENTED` | 501 | `NOT_SUPPORTED` |
/// | [`QueryError::PermissionDenied`] | `PERMISSION_DENIED` | `PERMISSION_DENIED` | 403 | `PERMISSION_DENIED` |
/// | [`QueryError::InvalidData`] | `INVALID_DATA` | `INVALID_ARGUMENT` | 400 | `INVALID_FUNCTION_ARGUMENT` |
/// | [`QueryError::Cancelled`] | `CANCELLED` | `CANCELLED` | 499 | `USER_CANCELED` |
/// | [`QueryError::QueueFull`] | `QUEUE_FULL` | `UNAVAILABLE` | 429, `Retry-After` | `QUERY_QUEUE_FULL` |
/// | [`QueryError::ScanLimitExceeded`] | `SCAN_LIMIT_EXCEEDED` | `RESOURCE_EXHAUSTED` | 429 | `EXCEEDED_SCAN_LIMIT` |
/// | [`QueryError::ResourcesExhausted`] | `RESOURCES_EXHAUSTED` | `RESOURCE_EXHAUSTED` | 429 | `EXCEEDED_LOCAL_MEMORY_LIMIT` |
/// | [`QueryError::ResultTooLarge`] | `RESULT_TOO_LARGE` | `RESOURCE_EXHAUSTED` | 429 | `GENERIC_INSUFFICIENT_RESOURCES` |
/// | [`QueryError::TimedOut`] | `QUERY_TIMEOUT` | `DEADLINE_EXCEEDED` | 504 | `EXCEEDED_TIME_LIMIT` |
/// | [`QueryError::NoExecutors`] | `NO_EXECUTORS` | `UNAVAILABLE` | 503 | `NO_NODES_AVAILABLE` |
/// | [`QueryError::ExecutorLost`] | `EXECUTOR_LOST` | `UNAVAILABLE` | 503 | `REMOTE_TASK_ERROR` |
/// | [`QueryError::CatalogUnavailable`] | `CATALOG_UNAVAILABLE` | `UNAVAILABLE` | 503 | `GENERIC_EXTERNAL` |
/// | [`QueryError::CommitConflict`] | `COMMIT_CONFLICT` | `ABORTED` | 409 | `TRANSACTION_CONFLICT` |
/// | [`QueryError::Execution`] | `EXECUTION_FAILED` | `INTERNAL` | 500 | `GENERIC_INTERNAL_ERROR` |
///
/// A statement that names a missing table or column is a wrong argument, not a missing
/// resource of the protocol, so those are `INVALID_ARGUMENT` and 400 like any other wrong
/// statement; Trino's clients tell them apart by name.
///
/// Messages are one sentence in Osprey's words: the engine's prefixes (`Error during
/// planning:`, `Arrow error:`, ...) are removed (the service's `error_text` module).
///
/// The gRPC codes are the ones gRPC defines for each case; the HTTP statuses follow the
/// canonical gRPC-to-HTTP mapping (499 is the "client closed request" status of that mapping);
/// the Trino names are Trino's own standard error codes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    /// The statement's text is not SQL Osprey can parse.
    #[error("{message}{}", crate::error_text::location_suffix(.location))]
    SyntaxError {
        /// What is wrong, as `syntax error: expected X, found Y`.
        message: String,
        /// Where, when the parser knows.
        location: Option<SourceLocation>,
    },
    /// A table or view the statement names does not exist (or is not visible to its user).
    #[error("{0}")]
    TableNotFound(String),
    /// A column the statement names does not exist in the tables it reads.
    #[error("{0}")]
    ColumnNotFound(String),
    /// The statement is wrong otherwise: a type error, an unknown function, a bad option.
    #[error("{0}")]
    InvalidStatement(String),
    /// Something the statement names does not exist: a query id, a user, a workgroup, a
    /// location.
    #[error("{0}")]
    NotFound(String),
    /// The statement uses something Osprey does not support yet.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// No executor is available to run the query.
    #[error("{0}")]
    NoExecutors(String),
    /// The query hit a memory or disk limit.
    #[error("resources exhausted: {0}")]
    ResourcesExhausted(String),
    /// The result is larger than the front door keeps for paging; streaming it works.
    #[error("{0}")]
    ResultTooLarge(String),
    /// The statement was cancelled: by its user, or because its client went away.
    #[error("{0}")]
    Cancelled(String),
    /// The data does not fit the query: division by zero, a value that does not cast,
    /// an overflow.
    #[error("{0}")]
    InvalidData(String),
    /// Storage refused Osprey's credentials for a location.
    #[error("{0}")]
    PermissionDenied(String),
    /// An executor was lost and the query could not be run again transparently (rows had
    /// already been sent, or every allowed run lost one). Running it again is safe.
    #[error("{0}")]
    ExecutorLost(String),
    /// An attached catalog could not be reached, or answered with a server error. Running the
    /// statement again later may work.
    #[error("{0}")]
    CatalogUnavailable(String),
    /// A write's commit lost to other writers' commits more times than its table allows;
    /// nothing it wrote is visible, and running the statement again may succeed.
    #[error("{0}")]
    CommitConflict(String),
    /// The query ran past its time limit and was stopped.
    #[error("{0}")]
    TimedOut(String),
    /// The query's workgroup had no free slot and a full queue: it was not run, and may be
    /// submitted again shortly.
    #[error("{0}")]
    QueueFull(String),
    /// The query would scan more bytes than its workgroup allows; it was not run.
    #[error("{0}")]
    ScanLimitExceeded(String),
    /// The query failed while running.
    #[error("query failed: {0}")]
    Execution(String),
}

impl From<DataFusionError> for QueryError {
    fn from(err: DataFusionError) -> Self {
        QueryError::from_ref(&err)
    }
}

impl QueryError {
    /// Classifies a DataFusion error without consuming it.
    pub fn from_ref(err: &DataFusionError) -> Self {
        if contains_no_live_executors(err) {
            return QueryError::NoExecutors(NoLiveExecutors.to_string());
        }
        if let DataFusionError::External(inner) = err.find_root()
            && (inner.is::<ExecutorLostAfterRows>() || inner.is::<ExecutorLostEveryRun>())
        {
            return QueryError::ExecutorLost(inner.to_string());
        }
        if let DataFusionError::External(inner) = err.find_root()
            && inner.is::<QueryTimedOut>()
        {
            return QueryError::TimedOut(inner.to_string());
        }
        // Osprey's own refusals raised inside DataFusion (a write's scan limit).
        if let DataFusionError::External(inner) = err.find_root()
            && let Some(refusal) = inner.downcast_ref::<QueryError>()
        {
            return refusal.clone();
        }
        let message = plain_message(err);
        match err.find_root() {
            DataFusionError::SQL(parser, _) => {
                let (message, location) = parser_message(parser);
                QueryError::SyntaxError { message, location }
            }
            DataFusionError::Plan(text) if missing_table(text).is_some() => {
                let name = missing_table(text).unwrap_or_default();
                QueryError::TableNotFound(format!("table {name} does not exist"))
            }
            DataFusionError::SchemaError(schema, _)
                if let datafusion::common::SchemaError::FieldNotFound {
                    field,
                    valid_fields,
                } = schema.as_ref() =>
            {
                QueryError::ColumnNotFound(missing_column(field, valid_fields))
            }
            DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::Configuration(_) => QueryError::InvalidStatement(message),
            DataFusionError::NotImplemented(_) => QueryError::NotSupported(message),
            // The variant's display already says "resources exhausted".
            DataFusionError::ResourcesExhausted(_) => QueryError::ResourcesExhausted(message),
            DataFusionError::ArrowError(arrow, _)
                if matches!(
                    arrow.as_ref(),
                    ArrowError::DivideByZero
                        | ArrowError::CastError(_)
                        | ArrowError::ArithmeticOverflow(_)
                        | ArrowError::ParseError(_)
                ) =>
            {
                QueryError::InvalidData(message)
            }
            DataFusionError::ObjectStore(store) if access_denied(store.as_ref()) => {
                QueryError::PermissionDenied(format!(
                    "{message}. Check the credentials in [[storage]] for this location (or the \
                     environment of the coordinator and executors)"
                ))
            }
            _ => QueryError::Execution(message),
        }
    }

    /// The table a [`QueryError::TableNotFound`] names (`table X does not exist`).
    pub fn missing_table(&self) -> Option<&str> {
        let QueryError::TableNotFound(message) = self else {
            return None;
        };
        message
            .strip_prefix("table ")
            .and_then(|rest| rest.strip_suffix(" does not exist"))
    }

    /// A stable code for the kind of failure, as the query history stores it.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::SyntaxError { .. } => "SYNTAX_ERROR",
            QueryError::TableNotFound(_) => "TABLE_NOT_FOUND",
            QueryError::ColumnNotFound(_) => "COLUMN_NOT_FOUND",
            QueryError::InvalidStatement(_) => "INVALID_STATEMENT",
            QueryError::NotFound(_) => "NOT_FOUND",
            QueryError::NotSupported(_) => "NOT_SUPPORTED",
            QueryError::NoExecutors(_) => "NO_EXECUTORS",
            QueryError::ResourcesExhausted(_) => "RESOURCES_EXHAUSTED",
            QueryError::ResultTooLarge(_) => "RESULT_TOO_LARGE",
            QueryError::Cancelled(_) => "CANCELLED",
            QueryError::InvalidData(_) => "INVALID_DATA",
            QueryError::PermissionDenied(_) => "PERMISSION_DENIED",
            QueryError::ExecutorLost(_) => "EXECUTOR_LOST",
            QueryError::CatalogUnavailable(_) => "CATALOG_UNAVAILABLE",
            QueryError::CommitConflict(_) => "COMMIT_CONFLICT",
            QueryError::TimedOut(_) => "QUERY_TIMEOUT",
            QueryError::QueueFull(_) => "QUEUE_FULL",
            QueryError::ScanLimitExceeded(_) => "SCAN_LIMIT_EXCEEDED",
            QueryError::Execution(_) => "EXECUTION_FAILED",
        }
    }
}

/// `column x does not exist`, with the closest column of the statement's tables ("did you
/// mean"), or the columns there are when none is close.
fn missing_column(
    field: &datafusion::common::Column,
    valid: &[datafusion::common::Column],
) -> String {
    let wanted = field.flat_name();
    let closest = valid
        .iter()
        .filter_map(|column| {
            crate::error_text::slip_distance(&field.name, &column.name).map(|d| (d, column))
        })
        .min_by_key(|(distance, _)| *distance);
    if let Some((_, column)) = closest {
        return format!(
            "column {wanted} does not exist. Did you mean {}?",
            column.name
        );
    }
    let mut names: Vec<&str> = valid.iter().map(|c| c.name.as_str()).collect();
    names.dedup();
    const SHOWN: usize = 8;
    let more = if names.len() > SHOWN { ", ..." } else { "" };
    names.truncate(SHOWN);
    if names.is_empty() {
        return format!("column {wanted} does not exist: the statement reads no columns here");
    }
    format!(
        "column {wanted} does not exist; the columns here are {}{more}",
        names.join(", ")
    )
}

/// The table DataFusion's planner did not find: `table 'a.b.c' not found` names `a.b.c`.
fn missing_table(text: &str) -> Option<&str> {
    text.strip_prefix("table '")?.strip_suffix("' not found")
}

/// Whether storage refused the credentials (HTTP 401/403). object_store reports some of these
/// as `PermissionDenied`/`Unauthenticated`, but an S3 listing wraps them in a generic error
/// whose status is not public API, so the error chain's text is checked too.
fn access_denied(err: &object_store::Error) -> bool {
    if matches!(
        err,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) {
        return true;
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = current {
        let text = error.to_string();
        if text.contains("status code: 403") || text.contains("status code: 401") {
            return true;
        }
        current = error.source();
    }
    false
}

fn contains_no_live_executors(err: &DataFusionError) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = current {
        if error.is::<NoLiveExecutors>() {
            return true;
        }
        if let Some(DataFusionError::External(inner)) = error.downcast_ref::<DataFusionError>()
            && inner.is::<NoLiveExecutors>()
        {
            return true;
        }
        current = error.source();
    }
    false
}
