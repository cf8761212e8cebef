//! The health check discovery runs on every executor: its version and its load, within a
//! time limit.

use super::channels::ClusterChannels;
use super::worker::DRAINING;
use datafusion::error::Result;
use datafusion_distributed::GetWorkerInfoRequest;
use datafusion_distributed::grpc::{BoxCloneSyncChannel, create_worker_client};
use osprey_proto::progress::{ExecutorStatusRequest, ExecutorStatusResponse, STATUS_METHOD};
use std::time::Duration;
use url::Url;

async fn ask_status(channel: BoxCloneSyncChannel) -> Result<ExecutorStatusResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    grpc.unary(
        tonic::Request::new(ExecutorStatusRequest {}),
        http::uri::PathAndQuery::from_static(STATUS_METHOD),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// Why a health check of an executor failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorProbeError {
    /// Nothing answered at the address, or the connection broke.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The executor answered but refused our cluster credential.
    #[error(
        "refused our cluster credential: the coordinator and the executor must be started \
         with the same cluster secret"
    )]
    Rejected,
    /// No answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The executor is shutting down: it finishes its tasks but takes no new ones.
    #[error("draining: finishing its running tasks before it stops")]
    Draining,
}

/// What a health check learns of a live executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorReport {
    /// The version it runs.
    pub version: String,
    /// Its load, when it reported it (an executor of an older version does not).
    pub load: Option<ExecutorStatusResponse>,
}

/// Asks the executor at `url` for its version and its load, within `timeout`. Used as the
/// health check.
pub async fn probe_executor(
    channels: &ClusterChannels,
    url: &Url,
    timeout: Duration,
) -> Result<ExecutorReport, ExecutorProbeError> {
    let started = std::time::Instant::now();
    let channel = channels
        .channel(url)
        .map_err(|err| ExecutorProbeError::Unreachable(err.to_string()))?;
    let mut client = create_worker_client(channel.clone());
    match tokio::time::timeout(timeout, client.get_worker_info(GetWorkerInfoRequest {})).await {
        Err(_) => Err(ExecutorProbeError::Timeout(timeout)),
        Ok(Ok(info)) => {
            let left = timeout.saturating_sub(started.elapsed());
            let load = tokio::time::timeout(left, ask_status(channel))
                .await
                .ok()
                .and_then(Result::ok);
            Ok(ExecutorReport {
                version: info.version,
                load,
            })
        }
        Ok(Err(err)) => {
            let message = err.to_string();
            if message.contains("cluster credential") {
                Err(ExecutorProbeError::Rejected)
            } else if message.contains(DRAINING) {
                Err(ExecutorProbeError::Draining)
            } else {
                Err(ExecutorProbeError::Unreachable(root_cause(&err)))
            }
        }
    }
}

/// The innermost error's message: "Connection refused (os error 111)" rather than four layers
/// of wrapping.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
