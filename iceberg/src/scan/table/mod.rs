//! [`IcebergTable`]: one snapshot of an Iceberg table as a DataFusion table.
//!
//! The coordinator reads the snapshot's manifests when a query is planned, and the plan pins
//! the files it found: executors never look at "current" again, so a query reads one snapshot
//! from start to end while other engines commit.

mod deletes;
mod row_ids;

pub use row_ids::{
    FILE_COLUMN, LAST_UPDATED_COLUMN, LAST_UPDATED_FIELD_ID, POSITION_COLUMN, ROW_ID_COLUMN,
    ROW_ID_FIELD_ID, row_lineage_fields, row_lineage_values,
};

use super::deletes::DeleteKind;
use super::field_ids::FieldIdAdapterFactory;
use super::location::StoreLocation;
use super::name_mapping::{NAME_MAPPING_PROPERTY, NameMapping};
use super::source::IcebergSource;
use crate::error::IcebergError;
use crate::manifest::{ManifestContent, ManifestFile};
use crate::metadata::{Snapshot, TableMetadata};
use crate::partition::Transform;
use crate::plan::{ManifestCache, SnapshotFiles, manifest_files, snapshot_manifests};
use crate::prune::{Pruner, column_statistics};
use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{DataFusionError, Result, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;
use std::collections::BTreeSet;
use std::sync::Arc;

/// One snapshot of an Iceberg table, read as DataFusion reads Parquet (see the module docs).
#[derive(Debug, Clone)]
pub struct IcebergTable {
    metadata: Arc<TableMetadata>,
    /// The snapshot read; `None` for a table with no snapshot yet (no rows).
    snapshot: Option<Snapshot>,
    /// The table's columns as Arrow, each with its field id.
    schema: SchemaRef,
    location: StoreLocation,
    name_mapping: Option<Arc<NameMapping>>,
    /// Whether strings and binaries read as Arrow's view types.
    view_types: bool,
    /// The statement that registered the table, for `SHOW CREATE TABLE`.
    definition: Option<String>,
    /// Manifests read before, shared by the tables of one coordinator.
    manifest_cache: Option<Arc<ManifestCache>>,
    /// Whether each row says where it is (`_file`, `_pos`; see [`IcebergTable::with_row_ids`]).
    row_ids: bool,
    /// Whether rows also carry their lineage (see [`IcebergTable::with_row_lineage`]).
    lineage: bool,
    /// The only data files scans read, when set (see [`IcebergTable::with_only_files`]).
    only_files: Option<Arc<BTreeSet<String>>>,
}

impl IcebergTable {
    /// The current snapshot of the table `metadata` describes, whose files must lie under
    /// `root` (the location the table was registered with). `view_types` reads strings and
    /// binaries as Arrow's view types, as DataFusion reads Parquet by default.
    pub fn new(
        metadata: Arc<TableMetadata>,
        root: &str,
        view_types: bool,
    ) -> Result<Self, IcebergError> {
        let snapshot = metadata.current_snapshot().cloned();
        let location = StoreLocation::parse(root)?;
        let name_mapping = metadata
            .properties
            .get(NAME_MAPPING_PROPERTY)
            .map(|json| NameMapping::parse(json).map(Arc::new))
            .transpose()?;
        let schema = Arc::new(table_schema(
            &metadata.current_schema().to_arrow(),
            view_types,
        ));
        Ok(Self {
            metadata,
            snapshot,
            schema,
            location,
            name_mapping,
            view_types,
            definition: None,
            manifest_cache: None,
            row_ids: false,
            lineage: false,
            only_files: None,
        })
    }

    /// The table as of snapshot `id`, read with the schema that snapshot was written with.
    pub fn at_snapshot(mut self, id: i64) -> Result<Self, IcebergError> {
        let snapshot = self.metadata.snapshot(id).cloned().ok_or_else(|| {
            IcebergError::Invalid(format!(
                "no snapshot {id}: the table's snapshots are listed in its $snapshots table"
            ))
        })?;
        if let Some(schema) = snapshot.schema_id.and_then(|id| self.metadata.schema(id)) {
            self.schema = Arc::new(table_schema(&schema.to_arrow(), self.view_types));
        }
        self.snapshot = Some(snapshot);
        Ok(self)
    }

    /// The table as of the branch or tag `name`.
    pub fn at_ref(self, name: &str) -> Result<Self, IcebergError> {
        let id = self
            .metadata
            .refs
            .get(name)
            .map(|r| r.snapshot_id)
            .ok_or_else(|| {
                let known: Vec<&str> = self.metadata.refs.keys().map(String::as_str).collect();
                IcebergError::Invalid(format!(
                    "no branch or tag {name:?} (the table has {})",
                    known.join(", ")
                ))
            })?;
        self.at_snapshot(id)
    }

    /// The table as it was at `ms` (since the epoch): the snapshot that was current then,
    /// from the table's snapshot log.
    pub fn as_of(self, ms: i64) -> Result<Self, IcebergError> {
        let log: Vec<(i64, i64)> = if self.metadata.snapshot_log.is_empty() {
            let mut log: Vec<(i64, i64)> = self
                .metadata
                .snapshots
                .iter()
                .map(|s| (s.timestamp_ms, s.snapshot_id))
                .collect();
            log.sort();
            log
        } else {
            self.metadata.snapshot_log.clone()
        };
        let id = log
            .iter()
            .rev()
            .find(|(at, _)| *at <= ms)
            .map(|(_, id)| *id)
            .ok_or_else(|| {
                IcebergError::Invalid(format!(
                    "no snapshot was current at {ms} ms since the epoch: the table's first \
                     snapshot is later (see its $history table)"
                ))
            })?;
        self.at_snapshot(id)
    }

    /// The table's metadata.
    pub fn metadata(&self) -> &Arc<TableMetadata> {
        &self.metadata
    }

    /// This table with the statement that registered it (what `SHOW CREATE TABLE` shows).
    pub fn with_definition(mut self, definition: String) -> Self {
        self.definition = Some(definition);
        self
    }

    /// The table's layout as SQL comment lines, for `SHOW CREATE TABLE`: its format version,
    /// its partitioning in Trino's spelling (`ARRAY['day(ts)', 'bucket(id, 16)']`) and its
    /// properties.
    pub fn layout_comment(&self) -> String {
        let mut lines = vec![format!(
            "-- Iceberg format version {}",
            self.metadata.format_version
        )];
        let fields = self.partitioning();
        if !fields.is_empty() {
            lines.push(format!("-- partitioning = {}", sql_array(&fields)));
        }
        lines.extend(self.properties_comment());
        lines.join("\n")
    }

    /// The `WITH (...)` clause of the `CREATE TABLE` that makes a table like this one, in
    /// Trino's names, followed by its properties as a comment line, for `SHOW CREATE TABLE`.
    pub fn create_clause(&self) -> String {
        let mut properties = vec![
            "format = 'ICEBERG'".to_string(),
            format!("format_version = {}", self.metadata.format_version),
        ];
        let fields = self.partitioning();
        if !fields.is_empty() {
            properties.push(format!("partitioning = {}", sql_array(&fields)));
        }
        let mut lines = vec![format!("WITH ({})", properties.join(", "))];
        lines.extend(self.properties_comment());
        lines.join("\n")
    }

    /// The current partition spec's fields, in Trino's spelling (`day(ts)`, `bucket(id, 16)`).
    pub fn partitioning(&self) -> Vec<String> {
        let metadata = &self.metadata;
        let schema = metadata.current_schema();
        let column = |id: i32| {
            schema
                .field_by_id(id)
                .map_or_else(|| format!("field {id}"), |field| field.name.clone())
        };
        metadata
            .partition_spec(metadata.default_spec_id)
            .map(|spec| spec.fields.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|field| {
                let name = column(field.source_id);
                match &field.transform {
                    Transform::Identity => name,
                    Transform::Bucket(n) => format!("bucket({name}, {n})"),
                    Transform::Truncate(w) => format!("truncate({name}, {w})"),
                    Transform::Year => format!("year({name})"),
                    Transform::Month => format!("month({name})"),
                    Transform::Day => format!("day({name})"),
                    Transform::Hour => format!("hour({name})"),
                    Transform::Void => format!("void({name})"),
                    Transform::Unknown(other) => format!("{other}({name})"),
                }
            })
            .collect()
    }

    /// The table's properties as a comment line, when it has any.
    fn properties_comment(&self) -> Option<String> {
        let properties: Vec<String> = self
            .metadata
            .properties
            .iter()
            .filter(|(key, _)| key.as_str() != NAME_MAPPING_PROPERTY)
            .map(|(key, value)| {
                let value: String = value.chars().take(80).collect();
                format!("'{key}' = '{}'", value.replace('\'', "''"))
            })
            .collect();
        (!properties.is_empty()).then(|| format!("-- properties: {}", properties.join(", ")))
    }

    /// Where the table's files are.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// The same table, its files read through the object store registered as `store` (one
    /// that stands for credentials a catalog vended; see [`StoreLocation::served_by`]).
    pub fn with_store_url(
        mut self,
        store: datafusion::execution::object_store::ObjectStoreUrl,
    ) -> Self {
        self.location = self.location.served_by(store);
        self
    }

    /// This table, reading manifests through `cache` (see [`ManifestCache`]).
    pub fn with_manifest_cache(mut self, cache: Arc<ManifestCache>) -> Self {
        self.manifest_cache = Some(cache);
        self
    }

    /// The table reading only the data files `files` (as the metadata names them) of its
    /// snapshot: what a copy-on-write change rewrites.
    pub fn with_only_files(mut self, files: BTreeSet<String>) -> Self {
        self.only_files = Some(Arc::new(files));
        self
    }

    /// The snapshot a scan reads.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The scan of `files` (a snapshot's live files) for `projection` and `limit`.
    fn plan(
        &self,
        state: &dyn Session,
        files: SnapshotFiles,
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
        pruned: Option<String>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let deletes = self.deletes(&files)?;
        // Equality deletes compare column values, so their columns are read even when the
        // query does not ask for them, and projected away afterwards.
        let equality_ids: BTreeSet<i32> = deletes
            .files
            .values()
            .flat_map(|file| &file.deletes)
            .flat_map(|delete| match &delete.kind {
                DeleteKind::Equality { field_ids } => field_ids.clone(),
                _ => Vec::new(),
            })
            .collect();
        let wanted: Vec<usize> = match projection {
            Some(projection) => projection.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let mut read = wanted.clone();
        for id in &equality_ids {
            let index = self
                .schema
                .fields()
                .iter()
                .position(|f| super::field_ids::field_id(f) == Some(*id))
                .ok_or_else(|| {
                    DataFusionError::NotImplemented(format!(
                        "equality deletes on field {id}, which is not a top-level column"
                    ))
                })?;
            if !read.contains(&index) {
                read.push(index);
            }
        }

        let mut groups: Vec<Vec<PartitionedFile>> =
            vec![Vec::new(); state.config().target_partitions().max(1)];
        let mut sizes = vec![0u64; groups.len()];
        for file in &files.data {
            let path = self.location.path_of(&file.file.file_path)?;
            let size = file.file.file_size_in_bytes.max(0) as u64;
            // The group with the fewest bytes so far takes the next file.
            let (smallest, _) = sizes
                .iter()
                .enumerate()
                .min_by_key(|(_, bytes)| **bytes)
                .expect("at least one group");
            sizes[smallest] += size;
            let mut partitioned = PartitionedFile::new(path.to_string(), size);
            if self.row_ids {
                partitioned = partitioned.with_partition_values(self.file_values(file));
            }
            groups[smallest].push(partitioned);
        }
        let mut groups: Vec<FileGroup> = groups
            .into_iter()
            .filter(|group| !group.is_empty())
            .map(FileGroup::new)
            .collect();
        // A scan with no file left still has one (empty) partition: plans that need a single
        // partition above it (a write's sort) stay valid.
        if groups.is_empty() {
            groups.push(FileGroup::new(Vec::new()));
        }

        // The files' rows, exact when no delete applies to any of them: DataFusion plans joins
        // by them, and answers `count(*)` from them when nothing filters.
        let rows: i64 = files.data.iter().map(|f| f.file.record_count.max(0)).sum();
        let bytes: u64 = sizes.iter().sum();
        let exact = deletes.files.is_empty();
        let mut statistics = Statistics::new_unknown(&self.schema);
        statistics.num_rows = match exact {
            true => Precision::Exact(rows as usize),
            false => Precision::Inexact(rows as usize),
        };
        statistics.column_statistics =
            column_statistics(&self.schema, &self.metadata, &files.data, exact);
        statistics.total_byte_size = Precision::Inexact(bytes as usize);
        let parquet = ParquetSource::new(self.scan_schema())
            .with_table_parquet_options(state.table_options().parquet.clone());
        // The projection goes into the Parquet source before it is wrapped: the wrapper
        // refuses to narrow a scan with equality deletes afterwards.
        let config = FileScanConfigBuilder::new(self.location.store_url(), Arc::new(parquet))
            .with_file_groups(groups)
            .with_projection_indices(Some(read.clone()))?
            .with_limit(if equality_ids.is_empty() { limit } else { None })
            .with_statistics(statistics)
            .with_expr_adapter(Some(Arc::new(FieldIdAdapterFactory::new(
                self.name_mapping.clone(),
            ))))
            .build();
        let source = IcebergSource::new(Arc::clone(config.file_source()), Arc::new(deletes))
            .with_name_mapping(self.name_mapping.clone())
            .with_pruning_summary(pruned);
        let config = FileScanConfigBuilder::from(config)
            .with_source(Arc::new(source))
            .build();
        let scan: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
        if read.len() == wanted.len() {
            return Ok(scan);
        }
        let scan_schema = scan.schema();
        let columns = (0..wanted.len())
            .map(|i| {
                let name = scan_schema.field(i).name().clone();
                (
                    Arc::new(Column::new(&name, i))
                        as Arc<dyn datafusion::physical_expr::PhysicalExpr>,
                    name,
                )
            })
            .collect::<Vec<_>>();
        Ok(Arc::new(ProjectionExec::try_new(columns, scan)?))
    }
}

#[async_trait]
impl TableProvider for IcebergTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.definition.as_deref()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // DataFusion keeps the filter and pushes it into the Parquet scan for pruning.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (mut files, pruned) = match &self.snapshot {
            Some(snapshot) => self.live_files(state, snapshot, filters).await?,
            None => (SnapshotFiles::default(), None),
        };
        if let Some(only) = &self.only_files {
            files
                .data
                .retain(|file| only.contains(&file.file.file_path));
        }
        for file in &files.data {
            if file.file.file_format != "PARQUET" {
                return Err(IcebergError::Unsupported(format!(
                    "{} data files ({})",
                    file.file.file_format, file.file.file_path
                ))
                .into());
            }
        }
        self.plan(state, files, projection, limit, pruned)
    }
}

impl IcebergTable {
    /// The live files of `snapshot` that `filters` may match: manifests pruned by their
    /// partition summaries before they are read, then data files by partition values and
    /// column metrics. Also says what pruning left, for `EXPLAIN`.
    async fn live_files(
        &self,
        state: &dyn Session,
        snapshot: &Snapshot,
        filters: &[Expr],
    ) -> Result<(SnapshotFiles, Option<String>)> {
        let store = state
            .runtime_env()
            .object_store(self.location.store_url())?;
        let location = &self.location;
        let path_of = |file: &str| location.path_of(file);
        let pruner = Pruner::new(filters, &self.schema, &self.metadata, state);
        let cache = self.manifest_cache.as_deref();
        let mut manifests = snapshot_manifests(store.as_ref(), snapshot, path_of).await?;
        let Some(pruner) = pruner else {
            let files = manifest_files(store.as_ref(), manifests, path_of, cache).await?;
            return Ok((files, None));
        };
        let data_manifests = |m: &[ManifestFile]| {
            m.iter()
                .filter(|m| m.content == ManifestContent::Data)
                .count()
        };
        let all_manifests = data_manifests(&manifests);
        let keep = pruner.keep_manifests(&manifests);
        let mut kept = keep.into_iter();
        manifests.retain(|_| kept.next().unwrap_or(true));
        let read_manifests = data_manifests(&manifests);
        let mut files = manifest_files(store.as_ref(), manifests, path_of, cache).await?;
        let read_files = files.data.len();
        let keep = pruner.keep_files(&files.data);
        let mut kept = keep.into_iter();
        files.data.retain(|_| kept.next().unwrap_or(true));
        let summary = format!(
            "data manifests {read_manifests} of {all_manifests}, data files {} of {read_files} \
             in them",
            files.data.len()
        );
        Ok((files, Some(summary)))
    }
}

/// The table's Arrow schema as scans produce it: every column nullable (files written before a
/// required column was added read it as NULL until rewritten), and, with `view_types`,
/// top-level strings and binaries as view types.
fn table_schema(schema: &Schema, view_types: bool) -> Schema {
    fn nullable(field: &Field) -> Field {
        let data_type = match field.data_type() {
            DataType::Struct(children) => DataType::Struct(Fields::from(
                children.iter().map(|c| nullable(c)).collect::<Vec<_>>(),
            )),
            DataType::List(element) => DataType::List(Arc::new(nullable(element))),
            DataType::Map(entries, sorted) => {
                let DataType::Struct(key_value) = entries.data_type() else {
                    return field.clone().with_nullable(true);
                };
                // A map's keys stay required, as Arrow requires.
                let key_value: Vec<Field> = key_value
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        if i == 0 {
                            f.as_ref().clone()
                        } else {
                            nullable(f)
                        }
                    })
                    .collect();
                DataType::Map(
                    Arc::new(
                        entries
                            .as_ref()
                            .clone()
                            .with_data_type(DataType::Struct(Fields::from(key_value))),
                    ),
                    *sorted,
                )
            }
            other => other.clone(),
        };
        field.clone().with_data_type(data_type).with_nullable(true)
    }
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|field| {
                let field = nullable(field);
                let view = match field.data_type() {
                    DataType::Utf8 if view_types => Some(DataType::Utf8View),
                    DataType::Binary if view_types => Some(DataType::BinaryView),
                    _ => None,
                };
                match view {
                    Some(data_type) => field.with_data_type(data_type),
                    None => field,
                }
            })
            .collect::<Vec<_>>(),
    )
}

/// `ARRAY['a', 'b']`, quotes doubled.
fn sql_array(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|item| format!("'{}'", item.replace('\'', "''")))
        .collect();
    format!("ARRAY[{}]", quoted.join(", "))
}
