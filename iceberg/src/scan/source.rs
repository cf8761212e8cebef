//! [`IcebergSource`]: DataFusion's Parquet source, with the scan's row-level deletes applied to
//! each data file as it is read.
//!
//! The scan stays a `DataSourceExec` over a `FileScanConfig`, so the distributed planner splits
//! its files across executors by bytes like any Parquet scan, and pruning, filter pushdown and
//! page skipping are DataFusion's own. The wrapper only adds deletes: a data file with deletes
//! is planned once they are read (its deleted positions become a row selection; its equality
//! deletes filter the batches it yields).

use super::deletes::{self, DeleteCache, EqualitySet, ScanDeletes};
use super::field_ids::field_id;
use super::name_mapping::NameMapping;
use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::Field;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
use datafusion::datasource::physical_plan::{FileOpener, FileScanConfig, FileSource};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::PhysicalSortExpr;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr};
use datafusion::physical_plan::DisplayFormatType;
use datafusion::physical_plan::filter_pushdown::{FilterPushdownPropagation, PushedDown};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::sort_pushdown::SortOrderPushdownResult;
use datafusion_datasource::morsel::{Morsel, MorselPlan, MorselPlanner, Morselizer};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::ObjectStore;
use std::fmt;
use std::sync::Arc;

/// A Parquet source that applies an Iceberg scan's deletes (see the module docs).
#[derive(Clone)]
pub struct IcebergSource {
    inner: Arc<dyn FileSource>,
    deletes: Arc<ScanDeletes>,
    /// The table's name mapping, which the scan's field-id adapter uses (kept here because
    /// DataFusion's plan encoding drops the adapter; the codec re-attaches it).
    name_mapping: Option<Arc<NameMapping>>,
    /// Delete files this process has read for the scan.
    cache: Arc<DeleteCache>,
    /// What pruning left of the snapshot's manifests and files, for `EXPLAIN` (planning side
    /// only: it does not travel to executors).
    pruning_summary: Option<String>,
}

impl IcebergSource {
    /// Wraps the Parquet source `inner` to apply `deletes`.
    pub fn new(inner: Arc<dyn FileSource>, deletes: Arc<ScanDeletes>) -> Self {
        Self {
            inner,
            deletes,
            name_mapping: None,
            cache: Arc::default(),
            pruning_summary: None,
        }
    }

    /// This source with the table's name mapping.
    pub fn with_name_mapping(mut self, name_mapping: Option<Arc<NameMapping>>) -> Self {
        self.name_mapping = name_mapping;
        self
    }

    /// Says, in `EXPLAIN`, what pruning left of the snapshot's manifests and files.
    pub fn with_pruning_summary(mut self, summary: Option<String>) -> Self {
        self.pruning_summary = summary;
        self
    }

    /// The table's name mapping.
    pub fn name_mapping(&self) -> Option<&Arc<NameMapping>> {
        self.name_mapping.as_ref()
    }

    /// The Parquet source inside.
    pub fn inner(&self) -> &Arc<dyn FileSource> {
        &self.inner
    }

    /// The deletes it applies.
    pub fn deletes(&self) -> &Arc<ScanDeletes> {
        &self.deletes
    }

    fn has_equality_deletes(&self) -> bool {
        self.deletes
            .files
            .values()
            .flat_map(|file| &file.deletes)
            .any(|delete| matches!(delete.kind, super::deletes::DeleteKind::Equality { .. }))
    }

    fn wrap(&self, inner: Arc<dyn FileSource>) -> Arc<dyn FileSource> {
        Arc::new(Self {
            inner,
            deletes: Arc::clone(&self.deletes),
            name_mapping: self.name_mapping.clone(),
            cache: Arc::clone(&self.cache),
            pruning_summary: self.pruning_summary.clone(),
        })
    }
}

impl FileSource for IcebergSource {
    fn create_file_opener(
        &self,
        _object_store: Arc<dyn ObjectStore>,
        _base_config: &FileScanConfig,
        _partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        Err(DataFusionError::Internal(
            "IcebergSource reads through the morsel API".to_string(),
        ))
    }

    fn create_morselizer(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        partition: usize,
    ) -> Result<Box<dyn Morselizer>> {
        let inner =
            self.inner
                .create_morselizer(Arc::clone(&object_store), base_config, partition)?;
        if self.deletes.files.is_empty() {
            return Ok(inner);
        }
        let table = Arc::clone(self.inner.table_schema().file_schema());
        // The projection may name columns beyond the file's (the `_file` and `_pos` of
        // row-level changes): it is projected from the whole table schema.
        let whole = self.inner.table_schema().table_schema();
        let output = match self.inner.projection() {
            Some(projection) => Arc::new(projection.project_schema(whole)?),
            None => Arc::clone(whole),
        };
        Ok(Box::new(DeletingMorselizer {
            inner: Arc::from(inner),
            store: object_store,
            deletes: Arc::clone(&self.deletes),
            cache: Arc::clone(&self.cache),
            table_fields: Arc::new(table.fields().iter().map(|f| f.as_ref().clone()).collect()),
            output_names: Arc::new(
                output
                    .fields()
                    .iter()
                    .map(|f| (field_id(f), f.name().clone()))
                    .collect(),
            ),
        }))
    }

    fn table_schema(&self) -> &TableSchema {
        self.inner.table_schema()
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        self.wrap(self.inner.with_batch_size(batch_size))
    }

    fn filter(&self) -> Option<Arc<dyn PhysicalExpr>> {
        self.inner.filter()
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        self.inner.projection()
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        self.inner.metrics()
    }

    fn file_type(&self) -> &str {
        self.inner.file_type()
    }

    fn fmt_extra(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_extra(t, f)?;
        if let Some(summary) = &self.pruning_summary {
            write!(f, ", iceberg_pruning=[{summary}]")?;
        }
        if !self.deletes.files.is_empty() {
            write!(
                f,
                ", iceberg_deletes=[{} data files]",
                self.deletes.files.len()
            )?;
        }
        Ok(())
    }

    fn supports_repartitioning(&self) -> bool {
        self.inner.supports_repartitioning()
    }

    fn repartitioned(
        &self,
        target_partitions: usize,
        repartition_file_min_size: usize,
        output_ordering: Option<LexOrdering>,
        config: &FileScanConfig,
    ) -> Result<Option<FileScanConfig>> {
        self.inner.repartitioned(
            target_partitions,
            repartition_file_min_size,
            output_ordering,
            config,
        )
    }

    fn try_pushdown_filters(
        &self,
        filters: Vec<Arc<dyn PhysicalExpr>>,
        config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn FileSource>>> {
        // DataFusion 55 evaluates a pushed-down predicate against the file's columns with
        // the table's column indices when a scan has both partition values and virtual
        // columns (DELETE's `_file` and `_pos`), and panics: such a scan keeps its filter
        // above it, and is still pruned by manifests and file metrics when planned.
        if !self.inner.table_schema().virtual_columns().is_empty() {
            return Ok(FilterPushdownPropagation::with_parent_pushdown_result(
                vec![PushedDown::No; filters.len()],
            ));
        }
        let mut result = self.inner.try_pushdown_filters(filters, config)?;
        result.updated_node = result.updated_node.map(|inner| self.wrap(inner));
        Ok(result)
    }

    fn try_pushdown_sort(
        &self,
        _order: &[PhysicalSortExpr],
        _eq_properties: &EquivalenceProperties,
    ) -> Result<SortOrderPushdownResult<Arc<dyn FileSource>>> {
        // Iceberg files declare no order Osprey relies on yet, and reversed row groups would
        // not meet the row selections of position deletes.
        Ok(SortOrderPushdownResult::Unsupported)
    }

    fn reorder_files(&self, files: Vec<PartitionedFile>) -> Vec<PartitionedFile> {
        self.inner.reorder_files(files)
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn FileSource>>> {
        // Equality deletes compare columns the query may not select: the scan reads them and
        // a projection above drops them, so no projection may narrow the scan itself.
        if self.has_equality_deletes() {
            return Ok(None);
        }
        Ok(self
            .inner
            .try_pushdown_projection(projection)?
            .map(|inner| self.wrap(inner)))
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }
}

/// Plans data files with deletes once their deletes are read; others straight away.
struct DeletingMorselizer {
    inner: Arc<dyn Morselizer>,
    store: Arc<dyn ObjectStore>,
    deletes: Arc<ScanDeletes>,
    cache: Arc<DeleteCache>,
    /// The table's columns (with field ids): the types equality values compare as.
    table_fields: Arc<Vec<Field>>,
    /// The scan's output columns: field id and name.
    output_names: Arc<Vec<(Option<i32>, String)>>,
}

impl fmt::Debug for DeletingMorselizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeletingMorselizer")
            .field("files_with_deletes", &self.deletes.files.len())
            .finish()
    }
}

impl Morselizer for DeletingMorselizer {
    fn plan_file(&self, file: PartitionedFile) -> Result<Box<dyn MorselPlanner>> {
        let key = file.object_meta.location.to_string();
        let Some(file_deletes) = self.deletes.files.get(&key).cloned() else {
            return self.inner.plan_file(file);
        };
        Ok(Box::new(LoadDeletes {
            file: Some(file),
            file_deletes,
            inner: Arc::clone(&self.inner),
            store: Arc::clone(&self.store),
            cache: Arc::clone(&self.cache),
            table_fields: Arc::clone(&self.table_fields),
            output_names: Arc::clone(&self.output_names),
        }))
    }
}

/// The first step of planning a data file with deletes: read them.
struct LoadDeletes {
    file: Option<PartitionedFile>,
    file_deletes: deletes::DataFileDeletes,
    inner: Arc<dyn Morselizer>,
    store: Arc<dyn ObjectStore>,
    cache: Arc<DeleteCache>,
    table_fields: Arc<Vec<Field>>,
    output_names: Arc<Vec<(Option<i32>, String)>>,
}

impl fmt::Debug for LoadDeletes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadDeletes")
            .field("data_file", &self.file_deletes.location)
            .finish()
    }
}

impl MorselPlanner for LoadDeletes {
    fn plan(mut self: Box<Self>) -> Result<Option<MorselPlan>> {
        let Some(file) = self.file.take() else {
            return Ok(None);
        };
        let Self {
            file_deletes,
            inner,
            store,
            cache,
            table_fields,
            output_names,
            ..
        } = *self;
        let loading = async move {
            let column_type = {
                let table_fields = Arc::clone(&table_fields);
                move |id: i32| {
                    table_fields
                        .iter()
                        .find(|f| field_id(f) == Some(id))
                        .cloned()
                }
            };
            let loaded = deletes::load(&store, &file_deletes, &cache, &column_type).await?;
            let file = if loaded.positions.is_empty() {
                file
            } else {
                file.with_extension(ParquetRowSelection::new(deletes::selection_without(
                    &loaded.positions,
                    file_deletes.record_count,
                )))
            };
            let planner = inner.plan_file(file)?;
            if loaded.equality.is_empty() {
                return Ok(planner);
            }
            Ok(Box::new(EqualityPlanner {
                inner: planner,
                filter: Arc::new(EqualityFilter {
                    sets: loaded.equality,
                    output_names,
                }),
            }) as Box<dyn MorselPlanner>)
        };
        Ok(Some(MorselPlan::new().with_pending_planner(loading)))
    }
}

/// The equality deletes of one data file, applied to its batches.
#[derive(Debug)]
struct EqualityFilter {
    sets: Vec<Arc<EqualitySet>>,
    output_names: Arc<Vec<(Option<i32>, String)>>,
}

impl EqualityFilter {
    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        deletes::drop_equal_rows(batch, &self.sets, &|set, batch| {
            set.field_ids
                .iter()
                .map(|id| {
                    let name = self
                        .output_names
                        .iter()
                        .find(|(field, _)| *field == Some(*id))
                        .map(|(_, name)| name)
                        .ok_or_else(|| {
                            DataFusionError::Internal(format!(
                                "equality delete column {id} is not in the scan's output"
                            ))
                        })?;
                    batch.column_by_name(name).cloned().ok_or_else(|| {
                        DataFusionError::Internal(format!("no column {name} in a scanned batch"))
                    })
                })
                .collect::<Result<Vec<ArrayRef>>>()
        })
    }
}

/// A planner whose morsels drop equality-deleted rows.
#[derive(Debug)]
struct EqualityPlanner {
    inner: Box<dyn MorselPlanner>,
    filter: Arc<EqualityFilter>,
}

impl EqualityPlanner {
    fn wrap(inner: Box<dyn MorselPlanner>, filter: &Arc<EqualityFilter>) -> Box<dyn MorselPlanner> {
        Box::new(EqualityPlanner {
            inner,
            filter: Arc::clone(filter),
        })
    }
}

impl MorselPlanner for EqualityPlanner {
    fn plan(self: Box<Self>) -> Result<Option<MorselPlan>> {
        let filter = self.filter;
        let Some(mut plan) = self.inner.plan()? else {
            return Ok(None);
        };
        let morsels = plan
            .take_morsels()
            .into_iter()
            .map(|inner| {
                Box::new(EqualityMorsel {
                    inner,
                    filter: Arc::clone(&filter),
                }) as Box<dyn Morsel>
            })
            .collect();
        let planners = plan
            .take_ready_planners()
            .into_iter()
            .map(|inner| EqualityPlanner::wrap(inner, &filter))
            .collect();
        let mut wrapped = MorselPlan::new()
            .with_morsels(morsels)
            .with_planners(planners);
        if let Some(pending) = plan.take_pending_planner() {
            let filter = Arc::clone(&filter);
            wrapped.set_pending_planner(async move {
                Ok(EqualityPlanner::wrap(pending.await?, &filter))
            });
        }
        Ok(Some(wrapped))
    }
}

#[derive(Debug)]
struct EqualityMorsel {
    inner: Box<dyn Morsel>,
    filter: Arc<EqualityFilter>,
}

impl Morsel for EqualityMorsel {
    fn into_stream(self: Box<Self>) -> BoxStream<'static, Result<RecordBatch>> {
        let filter = self.filter;
        self.inner
            .into_stream()
            .map(move |batch| batch.and_then(|batch| filter.apply(batch)))
            .boxed()
    }
}
