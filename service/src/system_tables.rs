//! Tables in the `system` schema: read-only views of the coordinator's state, built afresh on
//! every scan.

use crate::discovery::{ExecutorHealth, ExecutorRegistry};
use datafusion::arrow::array::{
    ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// Where a system table's rows come from.
#[async_trait::async_trait]
pub trait SystemTableSource: std::fmt::Debug + Send + Sync + 'static {
    /// The table's columns.
    fn schema(&self) -> SchemaRef;

    /// The rows as of now, as `session` may see them. With `limit`, the scan needs only that
    /// many rows (any of them): a source may return fewer than all.
    async fn snapshot(
        &self,
        session: &dyn Session,
        limit: Option<usize>,
    ) -> Result<RecordBatch, DataFusionError>;
}

/// A read-only table that shows a fresh [`SystemTableSource::snapshot`] on every scan.
///
/// ```
/// use datafusion::arrow::array::RecordBatch;
/// use datafusion::arrow::datatypes::{Schema, SchemaRef};
/// use datafusion::catalog::{Session, TableProvider};
/// use osprey_service::{SystemTable, SystemTableSource};
/// use std::sync::Arc;
///
/// #[derive(Debug)]
/// struct Nothing;
///
/// #[async_trait::async_trait]
/// impl SystemTableSource for Nothing {
///     fn schema(&self) -> SchemaRef {
///         Arc::new(Schema::empty())
///     }
///     async fn snapshot(
///         &self,
///         _: &dyn Session,
///         _: Option<usize>,
///     ) -> datafusion::error::Result<RecordBatch> {
///         Ok(RecordBatch::new_empty(self.schema()))
///     }
/// }
///
/// let table = SystemTable(Nothing);
/// assert!(table.schema().fields().is_empty());
/// ```
#[derive(Debug)]
pub struct SystemTable<S>(pub S);

#[async_trait::async_trait]
impl<S: SystemTableSource> TableProvider for SystemTable<S> {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
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
        let rows = self.0.snapshot(state, limit).await?;
        let table = MemTable::try_new(self.0.schema(), vec![vec![rows]])?;
        table.scan(state, projection, filters, limit).await
    }
}

/// `system.executors`: every executor the coordinator knows, its health and its work so far.
#[derive(Debug)]
pub struct ExecutorsTable {
    registry: ExecutorRegistry,
}

impl ExecutorsTable {
    /// The table over `registry`.
    pub fn new(registry: ExecutorRegistry) -> Self {
        Self { registry }
    }
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
            Field::new("running_tasks", DataType::UInt64, true),
            Field::new("memory_reserved_bytes", DataType::UInt64, true),
        ]))
    }

    fn snapshot_now(&self) -> Result<RecordBatch, DataFusionError> {
        let statuses = self.registry.statuses();
        let url: StringArray = statuses.iter().map(|s| Some(s.url.to_string())).collect();
        let state: StringArray = statuses
            .iter()
            .map(|s| {
                Some(match &s.health {
                    ExecutorHealth::Up => "up",
                    ExecutorHealth::Down(reason) if reason.starts_with("draining") => "draining",
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
        // Only for executors that are up: a down one's last figures would mislead.
        let running: UInt64Array = statuses
            .iter()
            .map(|s| s.load.map(|load| load.running_tasks))
            .collect();
        let memory: UInt64Array = statuses
            .iter()
            .map(|s| s.load.map(|load| load.memory_reserved_bytes))
            .collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(url),
            Arc::new(state),
            Arc::new(reason),
            Arc::new(version),
            Arc::new(last_seen),
            Arc::new(tasks),
            Arc::new(running),
            Arc::new(memory),
        ];
        Ok(RecordBatch::try_new(Self::table_schema(), columns)?)
    }
}

#[async_trait::async_trait]
impl SystemTableSource for ExecutorsTable {
    fn schema(&self) -> SchemaRef {
        Self::table_schema()
    }

    async fn snapshot(
        &self,
        _session: &dyn Session,
        _limit: Option<usize>,
    ) -> Result<RecordBatch, DataFusionError> {
        self.snapshot_now()
    }
}
