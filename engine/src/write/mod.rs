//! Distributed writes: every task writes its own files, and reports them.
//!
//! [`StagedWriteExec`] sits under a `CoalescePartitionsExec`, so the distributed planner puts it
//! in an executor stage: each executor streams its share of the input straight into files under
//! the write's staging prefix, then returns one row per file (`path`, `size_bytes`,
//! `row_count`). The coordinator collects those rows and publishes the files in one catalog
//! transaction; nothing it has not published is ever read. [`WriteCodec`] carries the node to
//! executors, which resolve the object store (and its credentials) from their own
//! configuration: the plan holds only the target URL.
//!
//! Why our own node rather than DataFusion's `DataSinkExec`: that node requires a single input
//! partition, so the planner would funnel every row through one process, and it reports only a
//! row count, not the files it wrote.

mod tasks;

use tasks::write_partition;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef, DataFusionError};
use datafusion::error::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{
    Distribution, EquivalenceProperties, LexRequirement, OrderingRequirements, PhysicalExpr,
    PhysicalSortRequirement,
};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use url::Url;

/// The file format a write produces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Hash, Serialize, Deserialize)]
pub enum WriteFormat {
    /// Parquet, zstd-compressed.
    Parquet,
    /// CSV with the given delimiter, with or without a header line.
    Csv {
        /// The field delimiter.
        delimiter: u8,
        /// Whether each file starts with a header line.
        header: bool,
    },
    /// Newline-delimited JSON.
    Json,
}

impl WriteFormat {
    /// The file extension, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            WriteFormat::Parquet => "parquet",
            WriteFormat::Csv { .. } => "csv",
            WriteFormat::Json => "json",
        }
    }
}

/// Where and how a write puts its files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Hash, Serialize, Deserialize)]
pub struct WriteTarget {
    /// The directory URL (ending in `/`) every file goes under, e.g.
    /// `s3://lake/warehouse/sales/orders/data/<write id>/`.
    pub prefix: String,
    /// The format of the files.
    pub format: WriteFormat,
    /// A task starts a new file after this many rows.
    pub max_rows_per_file: usize,
    /// The exact schema of the files, Arrow field metadata included (an Iceberg table's field
    /// ids), as Arrow IPC bytes ([`WriteTarget::encode_file_schema`]); the input's own schema
    /// when absent. Carried here, not by the plan, since plan codecs may drop field metadata.
    #[serde(default)]
    pub file_schema: Option<Vec<u8>>,
    /// How many of the input's last columns are a partition key: each file then holds the rows
    /// of one key, written without those columns, and the write reports the key in the
    /// `partition` column of the file's row. The rows are hash-partitioned by the key across
    /// tasks and sorted by it within each, so a key's rows go to as few files as they fill.
    #[serde(default)]
    pub partition_columns: usize,
    /// Input columns (by index) each task's rows are sorted by after the partition key, so
    /// each file holds them in that order (position delete files must be sorted by position).
    #[serde(default)]
    pub sort_columns: Vec<usize>,
}

impl WriteTarget {
    /// `schema` as [`WriteTarget::file_schema`] carries it.
    pub fn encode_file_schema(schema: &Schema) -> Result<Vec<u8>> {
        let mut writer = datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), schema)?;
        writer.finish()?;
        Ok(writer.into_inner()?)
    }

    /// The schema of the files, when the target fixes it.
    fn decoded_file_schema(&self) -> Result<Option<SchemaRef>> {
        let Some(bytes) = &self.file_schema else {
            return Ok(None);
        };
        let reader = datafusion::arrow::ipc::reader::StreamReader::try_new(
            std::io::Cursor::new(bytes),
            None,
        )?;
        Ok(Some(reader.schema()))
    }

    fn store_url_and_prefix(&self) -> Result<(ObjectStoreUrl, Path)> {
        let url = Url::parse(&self.prefix).map_err(|err| {
            DataFusionError::Plan(format!("bad write location {}: {err}", self.prefix))
        })?;
        let store_url = ObjectStoreUrl::parse(&url[..url::Position::BeforePath])?;
        let prefix = Path::from_url_path(url.path())
            .map_err(|err| DataFusionError::External(Box::new(err)))?;
        Ok((store_url, prefix))
    }
}

/// The schema of what a write reports: one row per file written. `partition` holds the file's
/// partition key (with [`WriteTarget::partition_columns`]) as the Arrow IPC stream of a
/// one-row batch of the key columns, whose exact types it keeps; null otherwise.
pub fn written_files_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("size_bytes", DataType::UInt64, false),
        Field::new("row_count", DataType::UInt64, false),
        Field::new("partition", DataType::Binary, true),
    ]))
}

/// The partition key a write reported for a file (the `partition` column of the file's row
/// in what the write reports), one row.
pub fn decode_partition_key(bytes: &[u8]) -> Result<RecordBatch> {
    let mut reader =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    match reader.next() {
        Some(batch) => Ok(batch?),
        None => Err(DataFusionError::Internal(
            "a written file's partition key holds no row".to_string(),
        )),
    }
}

fn encode_partition_key(key: &RecordBatch) -> Result<Vec<u8>> {
    let mut writer =
        datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &key.schema())?;
    writer.write(key)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Writes each input partition to its own files under [`WriteTarget::prefix`]; outputs one row
/// per file written.
#[derive(Debug)]
pub struct StagedWriteExec {
    input: Arc<dyn ExecutionPlan>,
    target: WriteTarget,
    properties: Arc<PlanProperties>,
}

impl StagedWriteExec {
    /// A write of `input`'s rows to `target`.
    pub fn new(input: Arc<dyn ExecutionPlan>, target: WriteTarget) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(written_files_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            input,
            target,
            properties: Arc::new(properties),
        }
    }
}

impl StagedWriteExec {
    /// The partition key columns of the input, when the write partitions.
    fn partition_key(&self) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        let schema = self.input.schema();
        let columns = schema.fields().len();
        let keys = self.target.partition_columns;
        (keys > 0 && keys <= columns).then(|| {
            (columns - keys..columns)
                .map(|index| {
                    Arc::new(Column::new(schema.field(index).name(), index))
                        as Arc<dyn PhysicalExpr>
                })
                .collect()
        })
    }
}

impl DisplayAs for StagedWriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "StagedWriteExec: format={}, prefix={}",
            self.target.format.extension(),
            self.target.prefix
        )
    }
}

impl ExecutionPlan for StagedWriteExec {
    fn name(&self) -> &str {
        "StagedWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        match self.partition_key() {
            Some(key) => vec![Distribution::KeyPartitioned(key)],
            None => vec![Distribution::UnspecifiedDistribution],
        }
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        let schema = self.input.schema();
        let sorted = self
            .target
            .sort_columns
            .iter()
            .filter(|index| **index < schema.fields().len())
            .map(|index| {
                Arc::new(Column::new(schema.field(*index).name(), *index)) as Arc<dyn PhysicalExpr>
            });
        let requirement = LexRequirement::new(
            self.partition_key()
                .unwrap_or_default()
                .into_iter()
                .chain(sorted)
                .map(|expr| PhysicalSortRequirement::new(expr, None)),
        );
        vec![requirement.map(OrderingRequirements::new)]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "StagedWriteExec takes exactly one input".to_string(),
            ));
        }
        Ok(Arc::new(Self::new(children.remove(0), self.target.clone())))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let (store_url, prefix) = self.target.store_url_and_prefix()?;
        let store = context.runtime_env().object_store(&store_url)?;
        let target = self.target.clone();
        let written =
            futures::stream::once(
                async move { write_partition(input, store, prefix, &target).await },
            );
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            written_files_schema(),
            written,
        )))
    }
}

/// Carries [`StagedWriteExec`] in plans sent to executors, inside [`crate::codec::OspreyCodec`].
#[derive(Debug, Default)]
pub struct WriteCodec;

impl PhysicalExtensionCodec for WriteCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let target: WriteTarget = serde_json::from_slice(buf).map_err(|err| {
            DataFusionError::Internal(format!("undecodable StagedWriteExec: {err}"))
        })?;
        let [input] = inputs else {
            return Err(DataFusionError::Internal(
                "StagedWriteExec takes exactly one input".to_string(),
            ));
        };
        Ok(Arc::new(StagedWriteExec::new(Arc::clone(input), target)))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(write) = node.downcast_ref::<StagedWriteExec>() else {
            return Err(DataFusionError::NotImplemented(format!(
                "Osprey cannot send plan node {} to executors",
                node.name()
            )));
        };
        serde_json::to_writer(buf, &write.target)
            .map_err(|err| DataFusionError::Internal(format!("cannot encode write: {err}")))
    }
}

/// The logical form of a staged write: `input`'s rows written to `target`. The planner turns it
/// into `CoalescePartitionsExec(StagedWriteExec(input))`, which the distributed planner splits so
/// that executors run the writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StagedWriteNode {
    input: LogicalPlan,
    target: WriteTarget,
    schema: DFSchemaRef,
}

impl StagedWriteNode {
    /// A write of `input` to `target`.
    pub fn new(input: LogicalPlan, target: WriteTarget) -> Result<Self> {
        let schema = Arc::new(DFSchema::try_from(written_files_schema().as_ref().clone())?);
        Ok(Self {
            input,
            target,
            schema,
        })
    }

    /// The node as a logical plan.
    pub fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(Extension {
            node: Arc::new(self),
        })
    }
}

// The schema is derived from nothing but the node kind, so ordering by input and target is total.
impl PartialOrd for StagedWriteNode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        match self.input.partial_cmp(&other.input) {
            Some(std::cmp::Ordering::Equal) => self.target.partial_cmp(&other.target),
            ordering => ordering,
        }
    }
}

impl UserDefinedLogicalNodeCore for StagedWriteNode {
    fn name(&self) -> &str {
        "StagedWrite"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "StagedWrite: format={}, prefix={}",
            self.target.format.extension(),
            self.target.prefix
        )
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        if inputs.len() != 1 {
            return Err(DataFusionError::Internal(
                "StagedWrite takes exactly one input".to_string(),
            ));
        }
        Self::new(inputs.remove(0), self.target.clone())
    }
}

/// Plans [`StagedWriteNode`]s; part of the coordinator's physical planner.
#[derive(Debug, Default)]
pub struct StagedWritePlanner;

#[async_trait::async_trait]
impl ExtensionPlanner for StagedWritePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _context: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(write) = node.as_any().downcast_ref::<StagedWriteNode>() else {
            return Ok(None);
        };
        let [input] = physical_inputs else {
            return Err(DataFusionError::Internal(
                "StagedWrite takes exactly one input".to_string(),
            ));
        };
        let exec = StagedWriteExec::new(Arc::clone(input), write.target.clone());
        Ok(Some(Arc::new(CoalescePartitionsExec::new(Arc::new(exec)))))
    }
}

/// The coordinator's single-node physical planner: DataFusion's, plus [`StagedWritePlanner`].
/// The distributed planner wraps it.
#[derive(Debug, Default)]
pub struct OspreyQueryPlanner;

#[async_trait::async_trait]
impl QueryPlanner for OspreyQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan =
            DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(StagedWritePlanner)])
                .create_physical_plan(logical_plan, session_state)
                .await?;
        crate::cooperative::yield_inside_joins(plan)
    }
}
