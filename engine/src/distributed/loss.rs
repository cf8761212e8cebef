//! Telling the loss of an executor from a failure of the query itself.

use datafusion::common::DataFusionError;

/// Whether `err` says an executor went away (rather than something wrong with the query or
/// the data): the transport errors gRPC and HTTP/2 report for a peer that died or vanished.
pub fn is_executor_loss(err: &DataFusionError) -> bool {
    let text = err.to_string().to_ascii_lowercase();
    const SIGNS: [&str; 10] = [
        "transport error",
        "connection refused",
        "connection reset",
        "broken pipe",
        "h2 protocol error",
        "error reading a body from connection",
        "tcp connect error",
        "stream closed because of a broken pipe",
        "connection closed",
        "status: unavailable",
    ];
    SIGNS.iter().any(|sign| text.contains(sign))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_are_executor_loss_and_query_errors_are_not() {
        let lost = DataFusionError::External(Box::new(tonic::Status::unavailable(
            "error trying to connect: tcp connect error: Connection refused (os error 111)",
        )));
        assert!(is_executor_loss(&lost));
        let cut = DataFusionError::Execution(
            "h2 protocol error: error reading a body from connection".to_string(),
        );
        assert!(is_executor_loss(&cut));
        let plan = DataFusionError::Plan("table 'nope' not found".to_string());
        assert!(!is_executor_loss(&plan));
        let memory = DataFusionError::ResourcesExhausted("memory".to_string());
        assert!(!is_executor_loss(&memory));
    }
}
