//! The Trino front door's one table from error kinds to Trino's standard error codes (see
//! [`osprey_service::QueryError`] for every door's table side by side). Names and numbers are Trino's own
//! (`io.trino.spi.StandardErrorCode`), so clients that branch on them behave as with Trino.

use osprey_service::QueryError;
use serde_json::{Value, json};

/// A failure as Trino describes it: name, code and type (`USER_ERROR`, `INTERNAL_ERROR`,
/// `INSUFFICIENT_RESOURCES`), with Osprey's own code in `failureInfo.type`.
pub fn trino_error(err: &QueryError) -> Value {
    let (name, code, kind) = match err {
        QueryError::SyntaxError { .. } => ("SYNTAX_ERROR", 1, "USER_ERROR"),
        QueryError::TableNotFound(_) => ("TABLE_NOT_FOUND", 46, "USER_ERROR"),
        QueryError::ColumnNotFound(_) => ("COLUMN_NOT_FOUND", 47, "USER_ERROR"),
        QueryError::InvalidStatement(_) => ("GENERIC_USER_ERROR", 0, "USER_ERROR"),
        QueryError::Cancelled(_) => ("USER_CANCELED", 3, "USER_ERROR"),
        QueryError::PermissionDenied(_) => ("PERMISSION_DENIED", 4, "USER_ERROR"),
        QueryError::NotFound(_) => ("NOT_FOUND", 5, "USER_ERROR"),
        QueryError::InvalidData(_) => ("INVALID_FUNCTION_ARGUMENT", 7, "USER_ERROR"),
        QueryError::NotSupported(_) => ("NOT_SUPPORTED", 13, "USER_ERROR"),
        QueryError::CommitConflict(_) => ("TRANSACTION_CONFLICT", 17, "USER_ERROR"),
        QueryError::Execution(_) => ("GENERIC_INTERNAL_ERROR", 65536, "INTERNAL_ERROR"),
        QueryError::NoExecutors(_) => ("NO_NODES_AVAILABLE", 65541, "INTERNAL_ERROR"),
        QueryError::ExecutorLost(_) => ("REMOTE_TASK_ERROR", 65542, "INTERNAL_ERROR"),
        QueryError::CatalogUnavailable(_) => ("GENERIC_EXTERNAL", 16777216, "EXTERNAL"),
        QueryError::ResultTooLarge(_) => (
            "GENERIC_INSUFFICIENT_RESOURCES",
            131072,
            "INSUFFICIENT_RESOURCES",
        ),
        QueryError::QueueFull(_) => ("QUERY_QUEUE_FULL", 131074, "INSUFFICIENT_RESOURCES"),
        QueryError::TimedOut(_) => ("EXCEEDED_TIME_LIMIT", 131075, "INSUFFICIENT_RESOURCES"),
        QueryError::ResourcesExhausted(_) => (
            "EXCEEDED_LOCAL_MEMORY_LIMIT",
            131079,
            "INSUFFICIENT_RESOURCES",
        ),
        QueryError::ScanLimitExceeded(_) => {
            ("EXCEEDED_SCAN_LIMIT", 131081, "INSUFFICIENT_RESOURCES")
        }
    };
    let message = err.to_string();
    let mut error = json!({
        "message": message,
        "errorCode": code,
        "errorName": name,
        "errorType": kind,
        "failureInfo": {
            "type": format!("osprey.{}", err.code()),
            "message": message,
            "suppressed": [],
            "stack": [],
        },
    });
    if let QueryError::SyntaxError {
        location: Some(at), ..
    } = err
    {
        error["errorLocation"] = json!({"lineNumber": at.line, "columnNumber": at.column});
    }
    error
}
