//! The column metrics a manifest records for a data file Osprey wrote (spec: "Manifests",
//! `column_sizes` through `upper_bounds`), read back from the file's own Parquet footer, so they
//! describe exactly what was written.
//!
//! Bounds follow Iceberg's default metrics mode, `truncate(16)`: strings longer than 16
//! characters keep a 16-character lower bound and no upper bound (a truncated upper bound
//! would need incrementing; leaving it out only prunes less). Bounds are recorded for
//! booleans, integers, dates, times, timestamps and strings; floating-point columns (NaN
//! ordering) and decimals, binaries and UUIDs get counts only. Columns inside lists and maps
//! get sizes and counts, never bounds.

use crate::error::IcebergError;
use crate::schema::{PrimitiveType, Schema, Type};
use datafusion::parquet::basic::Type as PhysicalType;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::metadata::ParquetMetaDataReader;
use datafusion::parquet::file::statistics::Statistics;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How many characters a string bound keeps (`write.metadata.metrics.default` =
/// `truncate(16)`).
const TRUNCATE_CHARS: usize = 16;

/// How many bytes at the end of a file are read first for its footer.
const FOOTER_GUESS: u64 = 64 * 1024;

/// A data file's metrics, by field id, as the manifest stores them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrittenMetrics {
    /// Rows in the file.
    pub record_count: i64,
    /// Compressed bytes of each column.
    pub column_sizes: BTreeMap<i32, i64>,
    /// Values (nulls included) of each column.
    pub value_counts: BTreeMap<i32, i64>,
    /// Nulls of each column.
    pub null_value_counts: BTreeMap<i32, i64>,
    /// Lower bounds, in the single-value serialization.
    pub lower_bounds: BTreeMap<i32, Vec<u8>>,
    /// Upper bounds, in the single-value serialization.
    pub upper_bounds: BTreeMap<i32, Vec<u8>>,
}

/// Reads the footer of the Parquet file at `path` (`size` bytes) in `store` and gives its
/// metrics under `schema`.
pub async fn parquet_metrics(
    store: Arc<dyn ObjectStore>,
    path: &Path,
    size: u64,
    schema: &Schema,
) -> Result<WrittenMetrics, IcebergError> {
    let failed =
        |err: String| IcebergError::Invalid(format!("cannot read the footer of {path}: {err}"));
    // The footer is at the end: read a suffix that usually holds it, and more if it does not.
    let mut suffix = size.min(FOOTER_GUESS);
    loop {
        let bytes = store
            .get_range(path, size - suffix..size)
            .await
            .map_err(|err| failed(err.to_string()))?;
        let mut reader = ParquetMetaDataReader::new();
        match reader.try_parse_sized(&bytes, size) {
            Ok(()) => {
                let footer = reader.finish().map_err(|err| failed(err.to_string()))?;
                return Ok(metrics_of(&footer, schema));
            }
            Err(ParquetError::NeedMoreData(needed))
                if (needed as u64) > suffix && (needed as u64) <= size =>
            {
                suffix = needed as u64;
            }
            Err(err) => return Err(failed(err.to_string())),
        }
    }
}

/// The metrics of a file whose footer is `footer`.
fn metrics_of(footer: &ParquetMetaData, schema: &Schema) -> WrittenMetrics {
    let mut metrics = WrittenMetrics {
        record_count: footer.file_metadata().num_rows(),
        ..WrittenMetrics::default()
    };
    let descriptor = footer.file_metadata().schema_descr();
    // Per column: the lowest and highest values, and whether every row group counted nulls.
    let mut lows: BTreeMap<i32, Option<Bound>> = BTreeMap::new();
    let mut highs: BTreeMap<i32, Option<Bound>> = BTreeMap::new();
    let mut nulls_known: BTreeMap<i32, bool> = BTreeMap::new();
    for row_group in footer.row_groups() {
        for (index, chunk) in row_group.columns().iter().enumerate() {
            let column = descriptor.column(index);
            let info = column.self_type().get_basic_info();
            if !info.has_id() {
                continue;
            }
            let id = info.id();
            *metrics.column_sizes.entry(id).or_default() += chunk.compressed_size();
            *metrics.value_counts.entry(id).or_default() += chunk.num_values();
            let statistics = chunk.statistics();
            match statistics.and_then(Statistics::null_count_opt) {
                Some(nulls) => {
                    *metrics.null_value_counts.entry(id).or_default() += nulls as i64;
                    nulls_known.entry(id).or_insert(true);
                }
                None => {
                    nulls_known.insert(id, false);
                }
            }
            if column.max_rep_level() > 0 {
                continue;
            }
            let primitive = match schema.field_by_id(id).map(|f| &f.field_type) {
                Some(Type::Primitive(primitive)) => primitive,
                _ => continue,
            };
            let (low, high) = statistics
                .map(|s| bounds(s, column.physical_type(), primitive))
                .unwrap_or((None, None));
            fold(&mut lows, id, low, |new, old| new < old);
            fold(&mut highs, id, high, |new, old| new > old);
        }
    }
    for (id, known) in nulls_known {
        if !known {
            metrics.null_value_counts.remove(&id);
        }
    }
    metrics.lower_bounds = lows
        .into_iter()
        .filter_map(|(id, v)| Some((id, serialize_low(v?, schema, id)?)))
        .collect();
    metrics.upper_bounds = highs
        .into_iter()
        .filter_map(|(id, v)| Some((id, serialize_high(v?, schema, id)?)))
        .collect();
    metrics
}

/// A bound as its column orders: integer-like values (booleans as 0/1) as i64, strings by
/// their UTF-8 bytes (which order as their code points).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Bound {
    Int(i64),
    Text(Vec<u8>),
}

/// Keeps the lower (or higher) of the row groups' bounds; one row group without a bound
/// leaves the column without one.
fn fold(
    kept: &mut BTreeMap<i32, Option<Bound>>,
    id: i32,
    bound: Option<Bound>,
    keep_new: impl Fn(&Bound, &Bound) -> bool,
) {
    use std::collections::btree_map::Entry;
    match kept.entry(id) {
        Entry::Vacant(entry) => {
            entry.insert(bound);
        }
        Entry::Occupied(mut entry) => {
            let next = match (entry.get_mut().take(), bound) {
                (Some(old), Some(new)) => Some(if keep_new(&new, &old) { new } else { old }),
                _ => None,
            };
            *entry.get_mut() = next;
        }
    }
}

/// The exact bounds of one column chunk, when its type records bounds.
fn bounds(
    statistics: &Statistics,
    physical: PhysicalType,
    primitive: &PrimitiveType,
) -> (Option<Bound>, Option<Bound>) {
    use PrimitiveType as P;
    let integer = matches!(
        primitive,
        P::Boolean
            | P::Int
            | P::Long
            | P::Date
            | P::Time
            | P::Timestamp
            | P::Timestamptz
            | P::TimestampNs
            | P::TimestamptzNs
    );
    let read = |bytes: Option<&[u8]>| -> Option<Bound> {
        let bytes = bytes?;
        match (physical, integer, primitive) {
            (PhysicalType::BOOLEAN, true, _) => Some(Bound::Int(i64::from(bytes[0] != 0))),
            (PhysicalType::INT32, true, _) => Some(Bound::Int(i64::from(i32::from_le_bytes(
                bytes.try_into().ok()?,
            )))),
            (PhysicalType::INT64, true, _) => {
                Some(Bound::Int(i64::from_le_bytes(bytes.try_into().ok()?)))
            }
            (PhysicalType::BYTE_ARRAY, false, P::String) => {
                std::str::from_utf8(bytes).ok()?;
                Some(Bound::Text(bytes.to_vec()))
            }
            _ => None,
        }
    };
    (
        read(
            statistics
                .min_bytes_opt()
                .filter(|_| statistics.min_is_exact()),
        ),
        read(
            statistics
                .max_bytes_opt()
                .filter(|_| statistics.max_is_exact()),
        ),
    )
}

/// A lower bound in the single-value serialization (strings truncated).
fn serialize_low(bound: Bound, schema: &Schema, id: i32) -> Option<Vec<u8>> {
    match bound {
        Bound::Text(bytes) => {
            let text = std::str::from_utf8(&bytes).ok()?;
            Some(
                text.chars()
                    .take(TRUNCATE_CHARS)
                    .collect::<String>()
                    .into_bytes(),
            )
        }
        Bound::Int(value) => Some(serialize_int(value, schema, id)?),
    }
}

/// An upper bound in the single-value serialization (none for a string that would need
/// truncating).
fn serialize_high(bound: Bound, schema: &Schema, id: i32) -> Option<Vec<u8>> {
    match bound {
        Bound::Text(bytes) => {
            let text = std::str::from_utf8(&bytes).ok()?;
            (text.chars().count() <= TRUNCATE_CHARS).then_some(bytes)
        }
        Bound::Int(value) => Some(serialize_int(value, schema, id)?),
    }
}

/// An integer-like value as its type serializes: 1 byte for booleans, 4 little-endian bytes
/// for `int` and `date`, 8 for the rest.
fn serialize_int(value: i64, schema: &Schema, id: i32) -> Option<Vec<u8>> {
    let Type::Primitive(primitive) = &schema.field_by_id(id)?.field_type else {
        return None;
    };
    Some(match primitive {
        PrimitiveType::Boolean => vec![u8::from(value != 0)],
        PrimitiveType::Int | PrimitiveType::Date => (value as i32).to_le_bytes().to_vec(),
        _ => value.to_le_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::NestedField;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::parquet::arrow::ArrowWriter;
    use object_store::memory::InMemory;

    fn field(id: i32, name: &str, primitive: PrimitiveType) -> NestedField {
        NestedField {
            id,
            name: name.to_string(),
            required: false,
            field_type: Type::Primitive(primitive),
            doc: None,
        }
    }

    #[tokio::test]
    async fn metrics_come_from_the_footer_by_field_id() {
        let schema = Schema {
            schema_id: 0,
            fields: vec![
                field(1, "id", PrimitiveType::Long),
                field(2, "name", PrimitiveType::String),
                field(3, "tag", PrimitiveType::String),
            ],
            identifier_field_ids: vec![],
        };
        let long_text = "z".repeat(TRUNCATE_CHARS + 4);
        let batch = RecordBatch::try_new(
            Arc::new(schema.to_arrow()),
            vec![
                Arc::new(Int64Array::from(vec![Some(7), None, Some(-3)])),
                Arc::new(StringArray::from(vec!["b", "a", "c"])),
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some(long_text.as_str()),
                    None,
                ])),
            ],
        )
        .unwrap();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("t/data/f.parquet");
        let size = bytes.len() as u64;
        store.put(&path, bytes.into()).await.unwrap();

        let metrics = parquet_metrics(store, &path, size, &schema).await.unwrap();
        assert_eq!(metrics.record_count, 3);
        assert_eq!(metrics.value_counts[&1], 3);
        assert_eq!(metrics.null_value_counts[&1], 1);
        assert_eq!(metrics.null_value_counts[&3], 1);
        assert_eq!(metrics.lower_bounds[&1], (-3i64).to_le_bytes().to_vec());
        assert_eq!(metrics.upper_bounds[&1], 7i64.to_le_bytes().to_vec());
        assert_eq!(metrics.lower_bounds[&2], b"a".to_vec());
        assert_eq!(metrics.upper_bounds[&2], b"c".to_vec());
        // A string longer than 16 characters: a lower bound kept, no upper bound.
        assert_eq!(metrics.lower_bounds[&3], b"a".to_vec());
        assert!(!metrics.upper_bounds.contains_key(&3));
        assert!(metrics.column_sizes.values().all(|size| *size > 0));
    }
}
