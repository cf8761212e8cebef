//! Pruning a scan's manifests and data files with the query's filters, before any data file is
//! opened (Parquet row groups are pruned afterwards, by the Parquet reader):
//!
//! - manifests by their partition field summaries (the manifest list);
//! - data files by their partition values and column metrics (lower and upper bounds, null
//!   counts).
//!
//! Both become bounds of the table's columns, so that one DataFusion `PruningPredicate` built
//! from the filters judges them: a partition value stands for the source values it covers
//! ([`ranges`]), and every bound is read from Iceberg's single-value serialization
//! ([`values`]). Floating-point bounds are used only where the file records that it holds no
//! NaN (bounds leave NaN out). What cannot be read only prunes less.

mod column_stats;
mod ranges;
mod stats;
mod values;

use crate::manifest::{ManifestContent, ManifestFile};
use crate::metadata::TableMetadata;
use crate::partition::Transform;
use crate::plan::LiveFile;
use crate::schema::{FIELD_ID_KEY, PrimitiveType, Type};
pub(crate) use column_stats::column_statistics;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::utils::conjunction;
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
pub(crate) use ranges::result_type;
use stats::{ColumnBounds, ColumnSlot, Containers};
use std::collections::HashMap;
use std::sync::Arc;
pub(crate) use values::decode;

/// The filters of a scan, ready to judge manifests and data files (see the module docs).
pub(crate) struct Pruner {
    predicate: Arc<PruningPredicate>,
    columns: Arc<Vec<ColumnSlot>>,
    metadata: Arc<TableMetadata>,
}

impl Pruner {
    /// A pruner for `filters` over the table `schema` (Arrow, with field ids) of `metadata`;
    /// `None` when the filters cannot prune (none, or none DataFusion can judge by bounds).
    pub(crate) fn new(
        filters: &[Expr],
        schema: &SchemaRef,
        metadata: &Arc<TableMetadata>,
        state: &dyn Session,
    ) -> Option<Self> {
        let expr = conjunction(filters.iter().cloned())?;
        let df_schema = DFSchema::try_from(schema.as_ref().clone()).ok()?;
        let physical = state.create_physical_expr(expr, &df_schema).ok()?;
        let predicate = PruningPredicateBuilder::new()
            .with_file_schema(Arc::clone(schema))
            .build(physical)?;
        let columns = schema
            .fields()
            .iter()
            .filter_map(|field| {
                let field_id: i32 = field.metadata().get(FIELD_ID_KEY)?.parse().ok()?;
                Some(ColumnSlot {
                    name: field.name().clone(),
                    field_id,
                    iceberg: primitive_type(metadata, field_id)?,
                    arrow: field.data_type().clone(),
                })
            })
            .collect();
        Some(Self {
            predicate,
            columns: Arc::new(columns),
            metadata: Arc::clone(metadata),
        })
    }

    /// Which of `manifests` may hold matching rows (delete manifests are always kept).
    pub(crate) fn keep_manifests(&self, manifests: &[ManifestFile]) -> Vec<bool> {
        let mut containers = Containers::new(Arc::clone(&self.columns));
        for manifest in manifests {
            let mut bounds: HashMap<usize, ColumnBounds> = HashMap::new();
            if manifest.content == ManifestContent::Data {
                for (field, summary) in self
                    .partition_fields(manifest.partition_spec_id)
                    .zip(&manifest.partitions)
                {
                    let Some((index, slot, result_type, transform)) = field else {
                        continue;
                    };
                    let floating =
                        matches!(slot.iceberg, PrimitiveType::Float | PrimitiveType::Double);
                    if floating && summary.contains_nan != Some(false) {
                        continue;
                    }
                    let decode = |bytes: &Option<Vec<u8>>| {
                        bytes
                            .as_deref()
                            .and_then(|b| values::decode(result_type, b))
                    };
                    let entry = bounds.entry(index).or_default();
                    if let Some(low) = decode(&summary.lower_bound) {
                        entry.raise_min(ranges::source_range(transform, slot.iceberg, &low).0);
                    }
                    if let Some(high) = decode(&summary.upper_bound) {
                        entry.lower_max(ranges::source_range(transform, slot.iceberg, &high).1);
                    }
                }
            }
            containers.push(bounds, None);
        }
        let mut keep = self.judge(&containers, manifests.len());
        for (kept, manifest) in keep.iter_mut().zip(manifests) {
            *kept |= manifest.content != ManifestContent::Data;
        }
        keep
    }

    /// Which of `files` may hold matching rows.
    pub(crate) fn keep_files(&self, files: &[LiveFile]) -> Vec<bool> {
        let mut containers = Containers::new(Arc::clone(&self.columns));
        for live in files {
            let metrics = &live.file.metrics;
            let mut bounds: HashMap<usize, ColumnBounds> = HashMap::new();
            for (index, slot) in self.columns.iter().enumerate() {
                let id = slot.field_id;
                let floating = matches!(slot.iceberg, PrimitiveType::Float | PrimitiveType::Double);
                let entry = bounds.entry(index).or_default();
                entry.nulls = metrics
                    .null_value_counts
                    .get(&id)
                    .and_then(|n| u64::try_from(*n).ok());
                if floating && metrics.nan_value_counts.get(&id) != Some(&0) {
                    continue;
                }
                let decode =
                    |bytes: Option<&Vec<u8>>| bytes.and_then(|b| values::decode(slot.iceberg, b));
                entry.raise_min(decode(metrics.lower_bounds.get(&id)));
                entry.lower_max(decode(metrics.upper_bounds.get(&id)));
            }
            for (field, value) in self
                .partition_fields(live.partition_spec_id)
                .zip(&metrics.partition)
            {
                let (Some((index, slot, result_type, transform)), Some(bytes)) = (field, value)
                else {
                    continue;
                };
                if matches!(slot.iceberg, PrimitiveType::Float | PrimitiveType::Double) {
                    continue;
                }
                let Some(value) = values::decode(result_type, bytes) else {
                    continue;
                };
                let (low, high) = ranges::source_range(transform, slot.iceberg, &value);
                let entry = bounds.entry(index).or_default();
                entry.raise_min(low);
                entry.lower_max(high);
            }
            containers.push(bounds, u64::try_from(live.file.record_count).ok());
        }
        self.judge(&containers, files.len())
    }

    fn judge(&self, containers: &Containers, count: usize) -> Vec<bool> {
        // A predicate that cannot judge keeps everything.
        self.predicate
            .prune(containers)
            .unwrap_or_else(|_| vec![true; count])
    }

    /// For each field of partition spec `spec_id`, in order: the column its source is (index
    /// and slot), the type of its values and its transform; `None` for fields that cannot
    /// prune.
    fn partition_fields(
        &self,
        spec_id: i32,
    ) -> impl Iterator<Item = Option<(usize, &ColumnSlot, PrimitiveType, &Transform)>> + '_ {
        let fields = self
            .metadata
            .partition_spec(spec_id)
            .map(|spec| spec.fields.as_slice())
            .unwrap_or_default();
        fields.iter().map(|field| {
            let (index, slot) = self
                .columns
                .iter()
                .enumerate()
                .find(|(_, slot)| slot.field_id == field.source_id)?;
            let result_type = ranges::result_type(&field.transform, slot.iceberg)?;
            Some((index, slot, result_type, &field.transform))
        })
    }
}

/// The primitive type of field `id`, from the newest schema that has it.
fn primitive_type(metadata: &TableMetadata, id: i32) -> Option<PrimitiveType> {
    let current = metadata.current_schema();
    std::iter::once(current)
        .chain(metadata.schemas.iter().rev())
        .find_map(
            |schema| match &schema.fields.iter().find(|f| f.id == id)?.field_type {
                Type::Primitive(ty) => Some(*ty),
                _ => None,
            },
        )
}
