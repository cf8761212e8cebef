//! What the data files' metrics say of each whole column, as DataFusion's statistics: null
//! counts, and the lowest and highest values. DataFusion estimates filters and plans joins by
//! them, as it does from Parquet footers for plain Parquet tables.

use super::{primitive_type, values};
use crate::metadata::TableMetadata;
use crate::plan::LiveFile;
use crate::schema::{FIELD_ID_KEY, PrimitiveType};
use datafusion::arrow::datatypes::Schema;
use datafusion::common::ScalarValue;
use datafusion::common::stats::{ColumnStatistics, Precision};
use std::cmp::Ordering;

/// One [`ColumnStatistics`] per column of `schema` over `files`. Null counts are exact when
/// `exact` (no delete applies) and every file counted them; bounds are always inexact (writers
/// may truncate them), and left out for floating-point columns unless every file says it holds
/// no NaN.
pub(crate) fn column_statistics(
    schema: &Schema,
    metadata: &TableMetadata,
    files: &[LiveFile],
    exact: bool,
) -> Vec<ColumnStatistics> {
    schema
        .fields()
        .iter()
        .map(|field| {
            let mut stats = ColumnStatistics::new_unknown();
            let Some(id) = field
                .metadata()
                .get(FIELD_ID_KEY)
                .and_then(|id| id.parse::<i32>().ok())
            else {
                return stats;
            };
            let nulls: Option<usize> = files
                .iter()
                .map(|f| {
                    f.file
                        .metrics
                        .null_value_counts
                        .get(&id)
                        .and_then(|n| usize::try_from(*n).ok())
                })
                .sum();
            stats.null_count = match (nulls, exact) {
                (Some(n), true) => Precision::Exact(n),
                (Some(n), false) => Precision::Inexact(n),
                (None, _) => Precision::Absent,
            };
            let Some(ty) = primitive_type(metadata, id) else {
                return stats;
            };
            let floating = matches!(ty, PrimitiveType::Float | PrimitiveType::Double);
            if files.is_empty()
                || (floating
                    && files
                        .iter()
                        .any(|f| f.file.metrics.nan_value_counts.get(&id) != Some(&0)))
            {
                return stats;
            }
            let bound = |pick: fn(&LiveFile, i32) -> Option<&Vec<u8>>, keep: Ordering| {
                let mut best: Option<ScalarValue> = None;
                for file in files {
                    let value = pick(file, id)
                        .and_then(|bytes| values::decode(ty, bytes))
                        .and_then(|v| v.cast_to(field.data_type()).ok())?;
                    best = match best {
                        Some(current) if value.partial_cmp(&current) != Some(keep) => Some(current),
                        _ => Some(value),
                    };
                }
                best
            };
            if let Some(min) = bound(|f, id| f.file.metrics.lower_bounds.get(&id), Ordering::Less) {
                stats.min_value = Precision::Inexact(min);
            }
            if let Some(max) = bound(
                |f, id| f.file.metrics.upper_bounds.get(&id),
                Ordering::Greater,
            ) {
                stats.max_value = Precision::Inexact(max);
            }
            stats
        })
        .collect()
}
