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

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_service::SourceLocation;

    /// Trino's `io.trino.spi.StandardErrorCode` entries this door can answer, as Trino 4xx
    /// releases define them (name, code).
    const TRINO_STANDARD_CODES: &[(&str, i64)] = &[
        ("GENERIC_USER_ERROR", 0),
        ("SYNTAX_ERROR", 1),
        ("USER_CANCELED", 3),
        ("PERMISSION_DENIED", 4),
        ("NOT_FOUND", 5),
        ("INVALID_FUNCTION_ARGUMENT", 7),
        ("NOT_SUPPORTED", 13),
        ("TRANSACTION_CONFLICT", 17),
        ("TABLE_NOT_FOUND", 46),
        ("COLUMN_NOT_FOUND", 47),
        ("GENERIC_INTERNAL_ERROR", 65536),
        ("NO_NODES_AVAILABLE", 65541),
        ("REMOTE_TASK_ERROR", 65542),
        ("GENERIC_INSUFFICIENT_RESOURCES", 131072),
        ("QUERY_QUEUE_FULL", 131074),
        ("EXCEEDED_TIME_LIMIT", 131075),
        ("EXCEEDED_LOCAL_MEMORY_LIMIT", 131079),
        ("EXCEEDED_SCAN_LIMIT", 131081),
    ];

    fn every_kind() -> Vec<QueryError> {
        let text = || "x".to_string();
        vec![
            QueryError::SyntaxError {
                message: text(),
                location: Some(SourceLocation { line: 2, column: 7 }),
            },
            QueryError::TableNotFound(text()),
            QueryError::ColumnNotFound(text()),
            QueryError::InvalidStatement(text()),
            QueryError::NotFound(text()),
            QueryError::NotSupported(text()),
            QueryError::NoExecutors(text()),
            QueryError::ResourcesExhausted(text()),
            QueryError::ResultTooLarge(text()),
            QueryError::Cancelled(text()),
            QueryError::InvalidData(text()),
            QueryError::PermissionDenied(text()),
            QueryError::ExecutorLost(text()),
            QueryError::CatalogUnavailable(text()),
            QueryError::CommitConflict(text()),
            QueryError::TimedOut(text()),
            QueryError::QueueFull(text()),
            QueryError::ScanLimitExceeded(text()),
            QueryError::Execution(text()),
        ]
    }

    /// Every kind gets a name and code Trino defines together, and the type Trino gives that
    /// code's range (user errors below 0x10000, then internal, resources, external).
    #[test]
    fn every_kind_has_trinos_name_code_and_type() {
        for err in every_kind() {
            let error = trino_error(&err);
            let name = error["errorName"].as_str().unwrap_or_default();
            let code = error["errorCode"].as_i64().unwrap_or(-1);
            let kind = error["errorType"].as_str().unwrap_or_default();
            let expected_kind = match code >> 16 {
                0 => "USER_ERROR",
                1 => "INTERNAL_ERROR",
                2 => "INSUFFICIENT_RESOURCES",
                _ => "EXTERNAL",
            };
            assert_eq!(kind, expected_kind, "{err:?}");
            if kind == "EXTERNAL" {
                // Connector codes: Trino's are from 0x0100_0000 on.
                assert!(code >= 0x0100_0000, "{err:?}");
                continue;
            }
            assert!(
                TRINO_STANDARD_CODES.contains(&(name, code)),
                "{err:?}: {name} {code} is not one of Trino's standard codes"
            );
            assert_eq!(
                error["failureInfo"]["type"],
                format!("osprey.{}", err.code())
            );
        }
    }

    /// A syntax error carries where it is, as Trino's `errorLocation`; other errors do not.
    #[test]
    fn syntax_errors_carry_their_location() {
        let kinds = every_kind();
        let error = trino_error(&kinds[0]);
        assert_eq!(
            error["errorLocation"],
            json!({"lineNumber": 2, "columnNumber": 7})
        );
        assert!(trino_error(&kinds[1]).get("errorLocation").is_none());
    }
}
