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

use datafusion::arrow::array::{ArrayRef, BinaryArray, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::compute::partition;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
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
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
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
    /// of one key, written without those columns, and reports the key in its `partition`
    /// column (see [`written_files_schema`]). The rows are hash-partitioned by the key across
    /// tasks and sorted by it within each, so a key's rows go to as few files as they fill.
    #[serde(default)]
    pub partition_columns: usize,
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

/// The partition key a write reported for a file (the `partition` column of
/// [`written_files_schema`]), one row.
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
        let requirement = self.partition_key().and_then(|key| {
            LexRequirement::new(
                key.into_iter()
                    .map(|expr| PhysicalSortRequirement::new(expr, None)),
            )
        });
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

/// One file being written.
enum OpenFile {
    Parquet(Box<AsyncArrowWriter<BufWriter>>),
    Text { writer: Box<BufWriter>, bytes: u64 },
}

/// A file being written, with its rows so far and its partition key (encoded).
struct OpenWrite {
    path: Path,
    file: OpenFile,
    rows: u64,
    partition: Option<Arc<Vec<u8>>>,
}

/// The files one task writes: rows go to the open file until it is full, or until the
/// partition key changes.
struct TaskFiles<'a> {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    target: &'a WriteTarget,
    max_rows: u64,
    open: Option<OpenWrite>,
    done: Vec<ClosedFile>,
}

/// A file a task finished: what it reports.
struct ClosedFile {
    path: String,
    size: u64,
    rows: u64,
    partition: Option<Arc<Vec<u8>>>,
}

impl TaskFiles<'_> {
    /// Writes `batch`, all of one partition (`partition`, encoded), starting new files as
    /// they fill.
    async fn write(
        &mut self,
        mut batch: RecordBatch,
        partition: &Option<Arc<Vec<u8>>>,
    ) -> Result<()> {
        while batch.num_rows() > 0 {
            let open = match &mut self.open {
                Some(open) => open,
                None => {
                    let path = self.prefix.clone().join(format!(
                        "part-{}.{}",
                        uuid::Uuid::new_v4().simple(),
                        self.target.format.extension()
                    ));
                    let file = open_file(&self.store, &path, batch.schema(), &self.target.format)?;
                    self.open.insert(OpenWrite {
                        path,
                        file,
                        rows: 0,
                        partition: partition.clone(),
                    })
                }
            };
            let room = (self.max_rows - open.rows) as usize;
            let chunk = batch.slice(0, room.min(batch.num_rows()));
            batch = batch.slice(chunk.num_rows(), batch.num_rows() - chunk.num_rows());
            append(&mut open.file, &chunk, &self.target.format, open.rows == 0).await?;
            open.rows += chunk.num_rows() as u64;
            if open.rows >= self.max_rows {
                self.close().await?;
            }
        }
        Ok(())
    }

    /// Closes the open file, if any.
    async fn close(&mut self) -> Result<()> {
        if let Some(open) = self.open.take() {
            let size = close(open.file).await?;
            self.done.push(ClosedFile {
                path: open.path.to_string(),
                size,
                rows: open.rows,
                partition: open.partition,
            });
        }
        Ok(())
    }
}

async fn write_partition(
    mut input: SendableRecordBatchStream,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    target: &WriteTarget,
) -> Result<RecordBatch> {
    let file_schema = target.decoded_file_schema()?;
    let key_columns = target.partition_columns;
    let mut files = TaskFiles {
        store,
        prefix,
        target,
        max_rows: target.max_rows_per_file.max(1) as u64,
        open: None,
        done: Vec::new(),
    };
    // The key of the open file, to compare with each run of equal keys.
    let mut converter: Option<RowConverter> = None;
    let mut current: Option<(OwnedRow, Option<Arc<Vec<u8>>>)> = None;
    while let Some(batch) = input.next().await {
        let batch = batch?;
        let data_columns = batch.num_columns().saturating_sub(key_columns);
        let conformed = |batch: RecordBatch| match &file_schema {
            Some(schema) => conform(batch, schema),
            None => Ok(batch),
        };
        if key_columns == 0 {
            files.write(conformed(batch)?, &None).await?;
            continue;
        }
        let keys = batch.project(&(data_columns..batch.num_columns()).collect::<Vec<_>>())?;
        let data = conformed(batch.project(&(0..data_columns).collect::<Vec<_>>())?)?;
        let converter = match &mut converter {
            Some(converter) => converter,
            None => converter.insert(RowConverter::new(
                keys.schema()
                    .fields()
                    .iter()
                    .map(|f| SortField::new(f.data_type().clone()))
                    .collect(),
            )?),
        };
        let rows = converter.convert_columns(keys.columns())?;
        // The input is sorted by the key: each run of equal keys is one partition's rows.
        for run in partition(keys.columns())?.ranges() {
            let key = rows.row(run.start);
            if current.as_ref().is_none_or(|(row, _)| row.row() != key) {
                files.close().await?;
                let encoded = encode_partition_key(&keys.slice(run.start, 1))?;
                current = Some((key.owned(), Some(Arc::new(encoded))));
            }
            let partition = current.as_ref().and_then(|(_, encoded)| encoded.clone());
            files
                .write(data.slice(run.start, run.end - run.start), &partition)
                .await?;
        }
    }
    files.close().await?;
    let done = files.done;
    let paths: StringArray = done.iter().map(|f| Some(f.path.as_str())).collect();
    let sizes = UInt64Array::from_iter_values(done.iter().map(|f| f.size));
    let rows = UInt64Array::from_iter_values(done.iter().map(|f| f.rows));
    let partitions: BinaryArray = done
        .iter()
        .map(|f| f.partition.as_ref().map(|key| key.as_slice()))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(paths),
        Arc::new(sizes),
        Arc::new(rows),
        Arc::new(partitions),
    ];
    Ok(RecordBatch::try_new(written_files_schema(), columns)?)
}

/// `batch` under `schema`: each column cast to its field's type where it differs (nested field
/// metadata differs in type too). A null in a non-nullable column fails the write.
fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.num_columns() != schema.fields().len() {
        return Err(DataFusionError::Internal(format!(
            "a write got {} columns for {} file columns",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(
            |(column, field)| match column.data_type() == field.data_type() {
                true => Ok(Arc::clone(column)),
                false => datafusion::arrow::compute::cast(column, field.data_type()),
            },
        )
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

fn open_file(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    schema: SchemaRef,
    format: &WriteFormat,
) -> Result<OpenFile> {
    Ok(match format {
        WriteFormat::Parquet => {
            let properties = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .build();
            let writer = BufWriter::new(Arc::clone(store), path.clone());
            OpenFile::Parquet(Box::new(AsyncArrowWriter::try_new(
                writer,
                schema,
                Some(properties),
            )?))
        }
        WriteFormat::Csv { .. } | WriteFormat::Json => OpenFile::Text {
            writer: Box::new(BufWriter::new(Arc::clone(store), path.clone())),
            bytes: 0,
        },
    })
}

async fn append(
    file: &mut OpenFile,
    batch: &RecordBatch,
    format: &WriteFormat,
    first: bool,
) -> Result<()> {
    match file {
        OpenFile::Parquet(writer) => writer.write(batch).await?,
        OpenFile::Text { writer, bytes } => {
            let mut buffer = Vec::new();
            match format {
                WriteFormat::Csv { delimiter, header } => {
                    let mut csv = datafusion::arrow::csv::WriterBuilder::new()
                        .with_delimiter(*delimiter)
                        .with_header(*header && first)
                        .build(&mut buffer);
                    csv.write(batch)?;
                }
                _ => {
                    let mut json = datafusion::arrow::json::LineDelimitedWriter::new(&mut buffer);
                    json.write(batch)?;
                    json.finish()?;
                }
            }
            writer.write_all(&buffer).await?;
            *bytes += buffer.len() as u64;
        }
    }
    Ok(())
}

async fn close(file: OpenFile) -> Result<u64> {
    match file {
        OpenFile::Parquet(mut writer) => {
            writer.finish().await?;
            Ok(writer.bytes_written() as u64)
        }
        OpenFile::Text { mut writer, bytes } => {
            writer.shutdown().await?;
            Ok(bytes)
        }
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
