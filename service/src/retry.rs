//! Queries survive the loss of an executor, and stop at their time limit.
//!
//! The distributed library fails the whole query when a worker dies. Osprey wraps each query's
//! result stream: when it fails because an executor was lost (a transport error: connection
//! refused or reset, a stream cut short) and no row has reached the client yet, the failed run
//! is dropped (its tasks on the surviving executors stop), discovery checks every executor at
//! once (the dead one drops out), and the query is planned and run again on the live ones, up
//! to [`RetryPolicy::max_attempts`] runs. The client sees only latency. Once rows have been
//! sent, a rerun could duplicate or miss rows, so the client gets a clear, retryable
//! `EXECUTOR_LOST` error instead.
//!
//! Reads only: writes run while they are prepared, and their staged files are cleaned up on
//! failure (see `lakehouse::ddl`).

use crate::discovery::ExecutorRegistry;
use datafusion::common::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use osprey_engine::{QueryProgress, is_executor_loss};
use std::sync::{Arc, Mutex};

/// How often a query may run when executors are lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Runs in all, the first included (1 turns retries off).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 3 }
    }
}

/// Why earlier runs of a query failed, one entry per failed run, for the query history.
#[derive(Debug, Default)]
pub struct RetryLog {
    reasons: Mutex<Vec<String>>,
}

impl RetryLog {
    /// Records that a run failed for `reason`.
    pub fn record(&self, reason: String) {
        self.lock().push(reason);
    }

    /// The reasons so far, oldest first.
    pub fn reasons(&self) -> Vec<String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.reasons.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The query lost an executor after some of its rows had reached the client: running it again
/// here could duplicate or miss rows, so the client should run it again.
#[derive(Debug, thiserror::Error)]
#[error(
    "an executor was lost after part of the result was sent ({cause}); the result is \
     incomplete: run the query again"
)]
pub struct ExecutorLostAfterRows {
    /// What the lost executor's peers saw.
    pub cause: String,
}

/// The query lost executors on every run it was allowed.
#[derive(Debug, thiserror::Error)]
#[error(
    "executors were lost on all {attempts} runs of the query (last: {cause}); check \
     `SELECT * FROM system.executors` and run the query again"
)]
pub struct ExecutorLostEveryRun {
    /// Runs made.
    pub attempts: u32,
    /// The last failure.
    pub cause: String,
}

/// What a rerun needs: the session state and logical plan to plan again, the progress to
/// reset, discovery to consult, and where to record why runs failed.
pub(crate) struct Rerun {
    pub state: SessionState,
    pub plan: LogicalPlan,
    pub progress: Arc<QueryProgress>,
    pub registry: ExecutorRegistry,
    pub policy: RetryPolicy,
    pub log: Arc<RetryLog>,
}

impl Rerun {
    async fn start(&self) -> Result<SendableRecordBatchStream, DataFusionError> {
        self.progress.reset();
        let physical = self.state.create_physical_plan(&self.plan).await?;
        self.progress.set_plan(&physical);
        execute_stream(physical, self.state.task_ctx())
    }
}

struct Retrying {
    current: Option<SendableRecordBatchStream>,
    rerun: Rerun,
    /// Whether a row has gone to the client.
    sent_rows: bool,
    attempt: u32,
}

/// `first` (the first run of `rerun.plan`), rerun on executor loss as the module describes.
pub(crate) fn retry_on_executor_loss(
    first: SendableRecordBatchStream,
    rerun: Rerun,
) -> SendableRecordBatchStream {
    let schema = first.schema();
    let state = Retrying {
        current: Some(first),
        rerun,
        sent_rows: false,
        attempt: 1,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        loop {
            let next = state.current.as_mut()?.next().await;
            let err = match next {
                None => return None,
                Some(Ok(batch)) => {
                    state.sent_rows |= batch.num_rows() > 0;
                    return Some((Ok(batch), state));
                }
                Some(Err(err)) if is_executor_loss(&err) => err,
                Some(Err(err)) => {
                    state.current = None;
                    return Some((Err(err), state));
                }
            };
            // Whatever is left of the failed run stops here.
            state.current = None;
            let cause = err.strip_backtrace().to_string();
            if state.sent_rows {
                tracing::warn!(%cause, "executor lost after rows were sent; not rerunning");
                let lost = ExecutorLostAfterRows { cause };
                return Some((Err(DataFusionError::External(Box::new(lost))), state));
            }
            let policy = state.rerun.policy;
            if state.attempt >= policy.max_attempts {
                let lost = ExecutorLostEveryRun {
                    attempts: state.attempt,
                    cause,
                };
                return Some((Err(DataFusionError::External(Box::new(lost))), state));
            }
            tracing::warn!(
                attempt = state.attempt,
                max_attempts = policy.max_attempts,
                %cause,
                "executor lost; running the query again on the live executors"
            );
            state
                .rerun
                .log
                .record(format!("run {} lost an executor: {cause}", state.attempt));
            state.attempt += 1;
            // The dead executor drops out at its first failed check.
            state.rerun.registry.refresh_now().await;
            match state.rerun.start().await {
                Ok(stream) => state.current = Some(stream),
                Err(err) => return Some((Err(err), state)),
            }
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

/// The query ran longer than its workgroup's `query_timeout_secs` (or the coordinator's).
#[derive(Debug)]
pub struct QueryTimedOut {
    /// The time limit.
    pub limit: std::time::Duration,
    /// The workgroup that set it; `None` for the coordinator's own limit.
    pub workgroup: Option<String>,
}

impl std::fmt::Display for QueryTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the query ran longer than its time limit of {:?} and was stopped; make it cheaper \
             (filter more, read fewer columns) or raise ",
            self.limit
        )?;
        match &self.workgroup {
            Some(name) => write!(
                f,
                "the workgroup's limit: ALTER WORKGROUP {name} SET (query_timeout_secs = ...)"
            ),
            None => write!(f, "query_timeout_secs under [coordinator]"),
        }
    }
}

impl std::error::Error for QueryTimedOut {}
