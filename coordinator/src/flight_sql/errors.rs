//! The Flight SQL front door's one table from error kinds to gRPC statuses (see
//! [`osprey_service::QueryError`] for every door's table side by side).

use arrow_flight::error::FlightError;
use osprey_service::QueryError;
use tonic::Status;

/// The gRPC metadata key carrying a failure's code from the error taxonomy
/// ([`QueryError::code`], such as `TABLE_NOT_FOUND`), for clients that show or branch on it.
pub const ERROR_CODE_METADATA: &str = "x-osprey-error-code";

/// Maps a statement's failure to the gRPC status a client can act on, with the taxonomy's code
/// in the [`ERROR_CODE_METADATA`] metadata.
pub fn query_status(err: QueryError) -> Status {
    let code = err.code();
    let mut status = grpc_status(err);
    status.metadata_mut().insert(
        ERROR_CODE_METADATA,
        tonic::metadata::MetadataValue::from_static(code),
    );
    status
}

fn grpc_status(err: QueryError) -> Status {
    let message = err.to_string();
    match err {
        QueryError::SyntaxError { .. }
        | QueryError::TableNotFound(_)
        | QueryError::ColumnNotFound(_)
        | QueryError::InvalidStatement(_)
        | QueryError::InvalidData(_) => Status::invalid_argument(message),
        QueryError::NotFound(_) => Status::not_found(message),
        QueryError::NotSupported(_) => Status::unimplemented(message),
        QueryError::PermissionDenied(_) => Status::permission_denied(message),
        QueryError::Cancelled(_) => Status::cancelled(message),
        QueryError::QueueFull(_)
        | QueryError::NoExecutors(_)
        | QueryError::ExecutorLost(_)
        | QueryError::CatalogUnavailable(_) => Status::unavailable(message),
        QueryError::ScanLimitExceeded(_)
        | QueryError::ResourcesExhausted(_)
        | QueryError::ResultTooLarge(_) => Status::resource_exhausted(message),
        QueryError::TimedOut(_) => Status::deadline_exceeded(message),
        QueryError::CommitConflict(_) => Status::aborted(message),
        QueryError::Execution(_) => Status::internal(message),
    }
}

/// A failure while encoding a result stream: a DataFusion error is classified like any other
/// statement failure.
pub(super) fn flight_error_status(err: FlightError) -> Status {
    match err {
        FlightError::ExternalError(inner) => {
            match inner.downcast::<datafusion::error::DataFusionError>() {
                Ok(df) => query_status(QueryError::from(*df)),
                Err(other) => Status::internal(other.to_string()),
            }
        }
        other => Status::from(other),
    }
}
