//! Starting a statement: admission, the physical plan, reruns and the result stream.

use super::*;

impl QueryEngine {
    /// Runs a prepared statement and streams its result. A query first takes a slot in its
    /// workgroup (waiting in its queue if need be, which `tracked` is told), runs within the
    /// workgroup's limits, and gives the slot back when its stream ends or is dropped.
    ///
    /// Waiting for the slot costs the calling runtime nothing; planning and the stream run on
    /// the query runtime (one trip there and back), and the returned stream forwards batches
    /// from there. Dropping it stops the query.
    pub async fn execute(
        &self,
        session: &SessionSettings,
        statement: PreparedStatement,
        tracked: Option<&TrackedQuery>,
    ) -> Result<Execution, QueryError> {
        let plan = match statement {
            PreparedStatement::Done {
                schema,
                rows,
                bytes_scanned,
                ..
            } => return done_execution(schema, rows, bytes_scanned),
            PreparedStatement::Listing(plan) => {
                let state = self.state_for(session)?;
                let stream = plan_on(&self.query_runtime, async move {
                    let physical = state.create_physical_plan(&plan).await?;
                    let stream = execute_stream(physical, state.task_ctx())?;
                    Ok(stream_on(&Handle::current(), stream, None, None))
                })
                .await?;
                return Ok(Execution {
                    stream,
                    bytes_scanned: 0,
                    completed_rows: None,
                    progress: None,
                    retries: Arc::default(),
                });
            }
            PreparedStatement::Query(plan) => plan,
        };
        let mut state = self.state_for(session)?;
        match &plan {
            LogicalPlan::Explain(explain) => {
                let explain = explain.clone();
                return Ok(Execution {
                    stream: plan_on(&self.query_runtime, explain_distributed(state, explain))
                        .await?,
                    bytes_scanned: 0,
                    completed_rows: None,
                    progress: None,
                    retries: Arc::default(),
                });
            }
            LogicalPlan::Analyze(_) => with_metrics_collection(&mut state, true)?,
            _ => {}
        }
        let slot = self.admit(session, tracked).await?;
        if let Some(bytes) = slot.limits().query_memory_bytes {
            limit_query_memory(&mut state, bytes)?;
        }
        let progress = QueryProgress::attach(state.config_mut());
        let time_limit = self.time_limit(slot.limits());
        let registry = self.registry.clone();
        let policy = self.retry_policy;
        let record = tracked.cloned();
        let running = Arc::clone(&progress);
        // Planning, starting the plan and driving its stream all happen on the query runtime,
        // in one trip: every hop between runtimes costs a thread wake-up on the way to the
        // first row.
        let (stream, bytes_scanned, retries) = plan_on(&self.query_runtime, async move {
            let physical = state.create_physical_plan(&plan).await?;
            let bytes_scanned = planned_scan_bytes(physical.as_ref());
            slot.limits().check_scan(bytes_scanned)?;
            running.set_plan(&physical);
            let first = execute_stream(physical, state.task_ctx())?;
            let retries = Arc::new(RetryLog::default());
            let stream = if matches!(plan, LogicalPlan::Analyze(_)) {
                // EXPLAIN ANALYZE reports on the one run it watched.
                first
            } else {
                retry_on_executor_loss(
                    first,
                    Rerun {
                        state,
                        plan,
                        progress: running,
                        registry,
                        policy,
                        log: Arc::clone(&retries),
                    },
                )
            };
            let stream = stream_on(
                &Handle::current(),
                holding_slot(stream, slot),
                time_limit,
                record,
            );
            Ok((stream, bytes_scanned, retries))
        })
        .await?;
        Ok(Execution {
            stream,
            bytes_scanned,
            completed_rows: None,
            progress: Some(progress),
            retries,
        })
    }
}

/// The result of a statement that already ran while it was prepared: its row count, as one
/// `count` row (none for DDL, whose schema is empty).
pub(super) fn done_execution(
    schema: SchemaRef,
    rows: u64,
    bytes_scanned: u64,
) -> Result<Execution, QueryError> {
    let batches = if schema.fields().is_empty() {
        vec![]
    } else {
        vec![
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(UInt64Array::from(vec![rows]))],
            )
            .map_err(DataFusionError::from)?,
        ]
    };
    Ok(Execution {
        stream: Box::pin(MemoryStream::try_new(batches, schema, None)?),
        bytes_scanned,
        completed_rows: Some(rows),
        progress: None,
        retries: Arc::default(),
    })
}

/// EXPLAIN: the logical plan, and the physical plan split into stages and tasks.
pub(super) async fn explain_distributed(
    state: SessionState,
    explain: datafusion::logical_expr::Explain,
) -> Result<SendableRecordBatchStream, QueryError> {
    let optimized = state.optimize(&explain.plan)?;
    // Plan the already-optimized plan directly rather than optimizing it a second time.
    let physical: Arc<dyn ExecutionPlan> = state
        .query_planner()
        .create_physical_plan(&optimized, &state)
        .await?;
    let logical = optimized.display_indent().to_string();
    let distributed = render_distributed_plan(physical.as_ref(), false);
    let schema = Arc::new(Schema::new(vec![
        Field::new("plan_type", DataType::Utf8, false),
        Field::new("plan", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec!["logical_plan", "distributed_plan"])),
            Arc::new(StringArray::from(vec![logical, distributed])),
        ],
    )
    .map_err(DataFusionError::from)?;
    Ok(Box::pin(MemoryStream::try_new(vec![batch], schema, None)?))
}

/// `stream`, giving the workgroup `slot` back when it ends or is dropped.
pub(super) fn holding_slot(
    stream: SendableRecordBatchStream,
    slot: Slot,
) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let mut slot = Some(slot);
    let released = futures::stream::poll_fn(move |_| {
        slot.take();
        std::task::Poll::Ready(None)
    });
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        stream.chain(released),
    ))
}
