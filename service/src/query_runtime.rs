//! The runtime that plans and runs statements, apart from the runtime that serves the front
//! doors.
//!
//! Planning recurses over the statement and running a plan's head stage can compute for a long
//! time (a nested-loop join that stayed on the coordinator, a big sort). Neither may stall the
//! runtime that answers other users, health probes and cancels, so the front doors hand every
//! statement to this runtime and read results back through a small channel:
//!
//! - [`plan_on`] runs planning (and the DDL and writes that run while a statement is prepared)
//!   on a thread of its blocking pool: planning does not yield, so it must not hold a worker
//!   that drives other queries' streams. Dropping the wait stops the work at its next await.
//! - [`stream_on`] drives a result stream there and forwards its batches; dropping the
//!   forwarded stream aborts the driver, which drops the plan and so stops it everywhere.
//!
//! Its threads have large stacks ([`QUERY_THREAD_STACK_BYTES`]) so that a statement within the
//! nesting limit (`crate::nesting`) plans without overflowing them.

use crate::error::QueryError;
use crate::history::TrackedQuery;
use crate::retry::QueryTimedOut;
use datafusion::common::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use std::future::Future;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

/// Stack size of every thread of the query runtime. DataFusion's planner, optimizer and
/// expression code recurse once per level of nesting, with large frames in debug builds;
/// 64 MiB holds the deepest statement the nesting limit admits with room to spare. It is
/// address space: pages are only committed as a statement actually uses them.
pub const QUERY_THREAD_STACK_BYTES: usize = 64 << 20;

/// Batches buffered between the query runtime and a front door per result: enough to overlap
/// producing one batch with sending the last, few enough that a slow client holds back the
/// query instead of filling memory.
const FORWARDED_BATCHES: usize = 2;

/// A multi-threaded tokio runtime for planning and running statements, shut down (without
/// waiting for its tasks) when dropped.
pub struct QueryRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for QueryRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryRuntime").finish_non_exhaustive()
    }
}

impl QueryRuntime {
    /// Starts the runtime with `threads` worker threads (at least one).
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("osprey-query")
            .thread_stack_size(QUERY_THREAD_STACK_BYTES)
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// A handle to spawn work on the runtime. Work spawned after the runtime is gone is
    /// cancelled at once.
    pub fn handle(&self) -> Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle().clone(),
            None => unreachable!("the runtime is only taken when dropped"),
        }
    }
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its threads stop, which tokio forbids inside another
        // runtime (where the coordinator is dropped); the tasks are cancelled either way.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Aborts a task when dropped: a front door that stops waiting stops the work.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `work` on a thread of the blocking pool of the query runtime behind `handle` (driving
/// it with the runtime's reactor and timers) and waits for it. Use it for planning, which
/// computes without yielding: on a worker it would stall the streams that worker drives.
/// Dropping the returned future stops `work` at its next await; a stretch of planning that
/// never awaits runs to its end (the nesting limits of `crate::nesting` bound it).
pub async fn plan_on<T: Send + 'static>(
    handle: &Handle,
    work: impl Future<Output = Result<T, QueryError>> + Send + 'static,
) -> Result<T, QueryError> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime = handle.clone();
    let task = handle.spawn_blocking(move || {
        runtime.block_on(async move {
            tokio::select! {
                result = work => Some(result),
                // The sender is dropped when the caller stops waiting.
                _ = stopped => None,
            }
        })
    });
    let outcome = task.await;
    drop(stop);
    match outcome {
        Ok(Some(result)) => result,
        Ok(None) => Err(QueryError::Cancelled("the statement was cancelled".into())),
        Err(err) => Err(task_failed(err)),
    }
}

/// Drives `stream` on the query runtime behind `handle`, forwarding its batches. With a time
/// `limit`, the stream is dropped once the limit has passed, including time spent waiting for
/// a slow reader, so a client that stops reading cannot hold its workgroup slot past it; the
/// reader then gets [`QueryTimedOut`], and `tracked` records the failure at once.
pub fn stream_on(
    handle: &Handle,
    mut stream: SendableRecordBatchStream,
    limit: Option<QueryTimedOut>,
    tracked: Option<TrackedQuery>,
) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let (sender, mut receiver) = tokio::sync::mpsc::channel(FORWARDED_BATCHES);
    let deadline = limit
        .as_ref()
        .map(|limit| tokio::time::Instant::now() + limit.limit);
    let driver = handle.spawn(async move {
        let pump = async {
            while let Some(item) = stream.next().await {
                let failed = item.is_err();
                if sender.send(item).await.is_err() || failed {
                    break;
                }
            }
        };
        let (Some(deadline), Some(limit)) = (deadline, limit) else {
            return pump.await;
        };
        if tokio::time::timeout_at(deadline, pump).await.is_err() {
            // Stop the query (and give its slot back) before waiting to deliver the error.
            drop(stream);
            if let Some(tracked) = &tracked {
                tracked.fail(&QueryError::TimedOut(limit.to_string()));
            }
            let _ = sender
                .send(Err(DataFusionError::External(Box::new(limit))))
                .await;
        }
    });
    let abort = AbortOnDrop(driver.abort_handle());
    let forwarded = futures::stream::poll_fn(move |cx| {
        let _ = &abort;
        receiver.poll_recv(cx)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, forwarded))
}

fn task_failed(err: tokio::task::JoinError) -> QueryError {
    if err.is_panic() {
        let payload = err.into_panic();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        tracing::error!(panic = %message, "a statement panicked while planning or running");
        QueryError::Execution(format!(
            "internal error: {message}. The statement was stopped; the service is unaffected. \
             Please report it with the statement"
        ))
    } else {
        QueryError::Execution("the coordinator is shutting down: run the statement again".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    use std::time::Duration;

    fn batch(value: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![value]))]).unwrap()
    }

    #[tokio::test]
    async fn work_runs_on_the_query_runtime_and_a_panic_is_an_error() {
        let runtime = QueryRuntime::start(1).unwrap();
        let name = plan_on(&runtime.handle(), async {
            Ok(std::thread::current().name().map(str::to_string))
        })
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("osprey-query"));
        let panicked = plan_on::<()>(&runtime.handle(), async { panic!("boom") }).await;
        assert!(matches!(panicked, Err(QueryError::Execution(m)) if m.contains("boom")));
    }

    #[tokio::test]
    async fn planning_runs_beside_the_workers_and_stops_when_nobody_waits() {
        let runtime = QueryRuntime::start(1).unwrap();
        // The only worker is busy: planning still runs, on a thread of its own.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        runtime.handle().spawn(async move {
            let _ = hold.recv_timeout(Duration::from_secs(5));
        });
        let name = plan_on(&runtime.handle(), async {
            tokio::task::yield_now().await;
            Ok(std::thread::current().name().map(str::to_string))
        })
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("osprey-query"));
        release.send(()).unwrap();
        // A planning nobody waits for any more is stopped at its next await.
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&finished);
        let handle = runtime.handle();
        let waiting = plan_on(&handle, async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        let _ = tokio::time::timeout(Duration::from_millis(50), waiting).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!finished.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_slow_reader_is_timed_out_and_the_stream_dropped() {
        let runtime = QueryRuntime::start(1).unwrap();
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        struct Flag(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let flag = Flag(Arc::clone(&dropped));
        let endless = futures::stream::repeat_with(move || {
            let _ = &flag;
            Ok(batch(1))
        });
        let schema = batch(1).schema();
        let stream: SendableRecordBatchStream =
            Box::pin(RecordBatchStreamAdapter::new(schema, endless));
        let limit = QueryTimedOut {
            limit: Duration::from_millis(200),
            workgroup: None,
        };
        let mut forwarded = stream_on(&runtime.handle(), stream, Some(limit), None);
        // Read one batch, then stop reading: the limit still ends the query.
        assert!(forwarded.next().await.unwrap().is_ok());
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
        let mut last = None;
        while let Some(item) = forwarded.next().await {
            last = Some(item);
        }
        let err = last.unwrap().unwrap_err();
        assert!(err.to_string().contains("time limit"), "{err}");
    }
}
