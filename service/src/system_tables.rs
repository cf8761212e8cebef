//! Tables in the `system` schema: read-only views of the coordinator's state, built afresh on
//! every scan.

use crate::discovery::{ExecutorHealth, ExecutorRegistry};
use datafusion::arrow::array::{
    ArrayRef, ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMillisecondArray,
    UInt64Array,
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

/// The most decisions `system.audit` shows (the latest).
const AUDIT_ROWS: usize = 10_000;

/// `system.audit`: the latest access decisions, allowed and denied, newest first. Only admins
/// read it (governance keeps it out of everyone else's `system`).
#[derive(Debug)]
pub struct AuditTable {
    governance: crate::governance::Governance,
}

impl AuditTable {
    /// The table of `governance`'s decisions.
    pub fn new(governance: crate::governance::Governance) -> Self {
        Self { governance }
    }
}

#[async_trait::async_trait]
impl SystemTableSource for AuditTable {
    fn schema(&self) -> SchemaRef {
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        let list = |name: &str| {
            Field::new(
                name,
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                false,
            )
        };
        Arc::new(Schema::new(vec![
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            text("statement_id"),
            text("user_name"),
            list("roles"),
            text("decision"),
            text("action"),
            list("objects"),
            list("filters"),
            list("masks"),
            text("message"),
        ]))
    }

    async fn snapshot(
        &self,
        _session: &dyn Session,
        limit: Option<usize>,
    ) -> Result<RecordBatch, DataFusionError> {
        let records = self
            .governance
            .recent_audit(limit.unwrap_or(AUDIT_ROWS).min(AUDIT_ROWS))
            .await
            .map_err(|err| DataFusionError::External(Box::new(err)))?;
        let text = |f: &dyn Fn(&osprey_catalog::AuditRecord) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(records.iter().map(f)))
        };
        let list = |f: &dyn Fn(&osprey_catalog::AuditRecord) -> &Vec<String>| -> ArrayRef {
            let mut builder = ListBuilder::new(StringBuilder::new());
            for record in &records {
                for value in f(record) {
                    builder.values().append_value(value);
                }
                builder.append(true);
            }
            Arc::new(builder.finish())
        };
        let at: TimestampMillisecondArray = records.iter().map(|r| Some(r.at_ms)).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(at.with_timezone("UTC")),
            text(&|r| r.statement_id.clone()),
            text(&|r| r.user_name.clone()),
            list(&|r| &r.roles),
            text(&|r| if r.allowed { "ALLOWED" } else { "DENIED" }.to_string()),
            text(&|r| r.action.clone()),
            list(&|r| &r.objects),
            list(&|r| &r.filters),
            list(&|r| &r.masks),
            text(&|r| r.message.clone()),
        ];
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}
