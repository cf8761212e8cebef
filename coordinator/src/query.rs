//! The query engine behind every front door: plans SQL against the shared catalog and runs it on
//! the executors.
//!
//! A statement goes through two steps, matching the Flight SQL flow:
//!
//! 1. [`QueryEngine::prepare`] parses and plans it. Statements with side effects on the catalog
//!    (DDL such as `CREATE EXTERNAL TABLE`, `CREATE VIEW`, `DROP TABLE`) run right here, exactly
//!    once, and leave an empty result. Queries are only planned.
//! 2. [`QueryEngine::execute`] runs a planned query on the executors and returns a stream; the
//!    coordinator never holds a whole result.

use crate::discovery::{ExecutorHealth, ExecutorRegistry};
use datafusion::arrow::array::{
    ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::datasource::{MemTable, TableType};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::SessionContext;
use osprey_engine::NoLiveExecutors;
use osprey_engine::distributed::{render_distributed_plan, with_metrics_collection};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// Why a statement failed, sorted by who can act on it.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement is wrong: bad SQL, an unknown table or column, a type error.
    #[error("{0}")]
    InvalidStatement(String),
    /// The statement uses something Osprey does not support yet.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// No executor is available to run the query.
    #[error("{0}")]
    NoExecutors(String),
    /// The query hit a memory or disk limit.
    #[error("resources exhausted: {0}")]
    ResourcesExhausted(String),
    /// The query failed while running.
    #[error("query failed: {0}")]
    Execution(String),
}

impl From<DataFusionError> for QueryError {
    fn from(err: DataFusionError) -> Self {
        if contains_no_live_executors(&err) {
            return QueryError::NoExecutors(NoLiveExecutors.to_string());
        }
        let message = err.strip_backtrace().to_string();
        match err.find_root() {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::Configuration(_) => QueryError::InvalidStatement(message),
            DataFusionError::NotImplemented(_) => QueryError::NotSupported(message),
            DataFusionError::ResourcesExhausted(_) => QueryError::ResourcesExhausted(message),
            _ => QueryError::Execution(message),
        }
    }
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

/// A statement after [`QueryEngine::prepare`].
#[derive(Debug, Clone)]
pub enum PreparedStatement {
    /// A query to run with [`QueryEngine::execute`].
    Query(LogicalPlan),
    /// A statement that already ran while being prepared; its result is empty.
    Done(SchemaRef),
}

impl PreparedStatement {
    /// The schema of the statement's result.
    pub fn schema(&self) -> SchemaRef {
        match self {
            PreparedStatement::Query(plan) => Arc::new(plan.schema().as_arrow().clone()),
            PreparedStatement::Done(schema) => Arc::clone(schema),
        }
    }
}

/// Plans and runs statements against the coordinator's catalog.
#[derive(Clone)]
pub struct QueryEngine {
    ctx: SessionContext,
}

impl QueryEngine {
    /// Wraps a session whose state carries the distributed planner, and registers the
    /// `system` schema (with `system.executors`) in its default catalog.
    pub fn new(ctx: SessionContext, registry: ExecutorRegistry) -> Result<Self, QueryError> {
        let state = ctx.state();
        let catalog_name = &state.config_options().catalog.default_catalog;
        let catalog = ctx.catalog(catalog_name).ok_or_else(|| {
            QueryError::Execution(format!("default catalog {catalog_name} is missing"))
        })?;
        let system = MemorySchemaProvider::new();
        system.register_table(
            "executors".to_string(),
            Arc::new(ExecutorsTable { registry }) as Arc<dyn TableProvider>,
        )?;
        catalog.register_schema("system", Arc::new(system))?;
        Ok(Self { ctx })
    }

    /// The session shared by every query (its catalog holds every registered table).
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// Parses and plans one SQL statement; runs it now if it changes the catalog.
    pub async fn prepare(&self, sql: &str) -> Result<PreparedStatement, QueryError> {
        let state = self.ctx.state();
        let plan = state.create_logical_plan(sql).await?;
        refuse_session_statements(&plan)?;
        if runs_while_planning(&plan) {
            let schema = Arc::new(plan.schema().as_arrow().clone());
            // Runs the DDL against the shared catalog. Its (empty) output is not needed.
            let df = self.ctx.execute_logical_plan(plan).await?;
            df.collect().await?;
            return Ok(PreparedStatement::Done(schema));
        }
        Ok(PreparedStatement::Query(plan))
    }

    /// The schema of the statement's result, without running anything.
    pub async fn describe(&self, sql: &str) -> Result<SchemaRef, QueryError> {
        let plan = self.ctx.state().create_logical_plan(sql).await?;
        Ok(Arc::new(plan.schema().as_arrow().clone()))
    }

    /// Runs a prepared statement and streams its result.
    pub async fn execute(
        &self,
        statement: PreparedStatement,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        let plan = match statement {
            PreparedStatement::Done(schema) => {
                return Ok(Box::pin(MemoryStream::try_new(vec![], schema, None)?));
            }
            PreparedStatement::Query(plan) => plan,
        };
        let mut state = self.ctx.state();
        match &plan {
            LogicalPlan::Explain(explain) => {
                return self.explain_distributed(&state, explain).await;
            }
            LogicalPlan::Analyze(_) => with_metrics_collection(&mut state, true)?,
            _ => {}
        }
        let physical = state.create_physical_plan(&plan).await?;
        Ok(execute_stream(physical, state.task_ctx())?)
    }

    /// EXPLAIN: the logical plan, and the physical plan split into stages and tasks.
    async fn explain_distributed(
        &self,
        state: &SessionState,
        explain: &datafusion::logical_expr::Explain,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        let optimized = state.optimize(&explain.plan)?;
        // Plan the already-optimized plan directly rather than optimizing it a second time.
        let physical: Arc<dyn ExecutionPlan> = state
            .query_planner()
            .create_physical_plan(&optimized, state)
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
}

/// Statements that change the catalog run while being prepared, exactly once.
fn runs_while_planning(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Ddl(_))
}

/// `SET`, `RESET`, `PREPARE`, transactions: these act on a client session, and the coordinator
/// has no per-client sessions yet. Running them on the shared context would change settings
/// for every user, so they are refused.
fn refuse_session_statements(plan: &LogicalPlan) -> Result<(), QueryError> {
    if let LogicalPlan::Statement(statement) = plan {
        return Err(QueryError::NotSupported(format!(
            "{} acts on a client session, and Osprey has no per-client sessions yet; \
             the statement was not run",
            statement.name()
        )));
    }
    Ok(())
}

/// `system.executors`: every executor the coordinator knows, its health and its work so far.
#[derive(Debug)]
struct ExecutorsTable {
    registry: ExecutorRegistry,
}

impl ExecutorsTable {
    fn table_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("url", DataType::Utf8, false),
            Field::new("state", DataType::Utf8, false),
            Field::new("reason", DataType::Utf8, true),
            Field::new("version", DataType::Utf8, true),
            Field::new(
                "last_seen",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Field::new("tasks_dispatched", DataType::UInt64, false),
        ]))
    }

    fn snapshot(&self) -> Result<RecordBatch, DataFusionError> {
        let statuses = self.registry.statuses();
        let url: StringArray = statuses.iter().map(|s| Some(s.url.to_string())).collect();
        let state: StringArray = statuses
            .iter()
            .map(|s| {
                Some(match s.health {
                    ExecutorHealth::Up => "up",
                    ExecutorHealth::Down(_) => "down",
                })
            })
            .collect();
        let reason: StringArray = statuses
            .iter()
            .map(|s| match &s.health {
                ExecutorHealth::Up => None,
                ExecutorHealth::Down(reason) => Some(reason.clone()),
            })
            .collect();
        let version: StringArray = statuses.iter().map(|s| s.version.clone()).collect();
        let last_seen = TimestampMillisecondArray::from(
            statuses
                .iter()
                .map(|s| {
                    s.last_seen
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map(|d| d.as_millis() as i64)
                })
                .collect::<Vec<_>>(),
        )
        .with_timezone("UTC");
        let tasks = UInt64Array::from_iter_values(statuses.iter().map(|s| s.tasks_dispatched));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(url),
            Arc::new(state),
            Arc::new(reason),
            Arc::new(version),
            Arc::new(last_seen),
            Arc::new(tasks),
        ];
        Ok(RecordBatch::try_new(Self::table_schema(), columns)?)
    }
}

#[async_trait::async_trait]
impl TableProvider for ExecutorsTable {
    fn schema(&self) -> SchemaRef {
        Self::table_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        // A fresh snapshot per scan: the table always shows the current state.
        let table = MemTable::try_new(Self::table_schema(), vec![vec![self.snapshot()?]])?;
        table.scan(state, projection, filters, limit).await
    }
}
