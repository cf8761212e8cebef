//! What manifests record for pruning: a data file's partition tuple and column metrics, and a
//! manifest's partition field summaries, all kept in Iceberg's single-value binary
//! serialization (spec, Appendix D) so that one decoder ([`crate::prune`]) reads bounds,
//! summaries and partition values alike.

use crate::avro_fields::{field_or_null, unwrap_union};
use apache_avro::types::Value;
use std::collections::BTreeMap;

/// A data file's partition tuple and column metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMetrics {
    /// The partition values in the order of the file's partition spec, serialized; `None` for
    /// null.
    pub partition: Vec<Option<Vec<u8>>>,
    /// The lowest value of each column, by field id (possibly truncated, still a bound).
    pub lower_bounds: BTreeMap<i32, Vec<u8>>,
    /// The highest value of each column, by field id (possibly truncated, still a bound).
    pub upper_bounds: BTreeMap<i32, Vec<u8>>,
    /// Nulls per column, by field id.
    pub null_value_counts: BTreeMap<i32, i64>,
    /// NaNs per floating-point column, by field id.
    pub nan_value_counts: BTreeMap<i32, i64>,
}

/// A manifest's summary of one partition field over all its files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSummary {
    /// Whether some file has a null value for the field.
    pub contains_null: bool,
    /// Whether some file has a NaN value for the field (unknown when absent).
    pub contains_nan: Option<bool>,
    /// The lowest value, serialized.
    pub lower_bound: Option<Vec<u8>>,
    /// The highest value, serialized.
    pub upper_bound: Option<Vec<u8>>,
}

/// The metrics of the `data_file` record of a manifest entry. Metrics that do not read are
/// left out: a missing metric only means less pruning.
pub(crate) fn file_metrics(file: &Value) -> FileMetrics {
    FileMetrics {
        partition: match unwrap_union(field_or_null(file, "partition")) {
            Value::Record(fields) => fields.iter().map(|(_, v)| serialized(v)).collect(),
            _ => Vec::new(),
        },
        lower_bounds: int_map(field_or_null(file, "lower_bounds"), bytes_of),
        upper_bounds: int_map(field_or_null(file, "upper_bounds"), bytes_of),
        null_value_counts: int_map(field_or_null(file, "null_value_counts"), long_of),
        nan_value_counts: int_map(field_or_null(file, "nan_value_counts"), long_of),
    }
}

/// The `partitions` field summaries of a manifest list entry.
pub(crate) fn field_summaries(manifest: &Value) -> Vec<FieldSummary> {
    let Value::Array(summaries) = unwrap_union(field_or_null(manifest, "partitions")) else {
        return Vec::new();
    };
    summaries
        .iter()
        .map(|summary| FieldSummary {
            contains_null: matches!(
                unwrap_union(field_or_null(summary, "contains_null")),
                Value::Boolean(true)
            ),
            contains_nan: match unwrap_union(field_or_null(summary, "contains_nan")) {
                Value::Boolean(b) => Some(*b),
                _ => None,
            },
            lower_bound: bytes_of(field_or_null(summary, "lower_bound")),
            upper_bound: bytes_of(field_or_null(summary, "upper_bound")),
        })
        .collect()
}

/// An Avro map with int keys, as Iceberg writes it: an array of `{key, value}` records.
fn int_map<T>(value: &Value, read: impl Fn(&Value) -> Option<T>) -> BTreeMap<i32, T> {
    let Value::Array(items) = unwrap_union(value) else {
        return BTreeMap::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let key = match unwrap_union(field_or_null(item, "key")) {
                Value::Int(key) => *key,
                Value::Long(key) => i32::try_from(*key).ok()?,
                _ => return None,
            };
            Some((key, read(field_or_null(item, "value"))?))
        })
        .collect()
}

fn bytes_of(value: &Value) -> Option<Vec<u8>> {
    match unwrap_union(value) {
        Value::Bytes(bytes) | Value::Fixed(_, bytes) => Some(bytes.clone()),
        _ => None,
    }
}

fn long_of(value: &Value) -> Option<i64> {
    match unwrap_union(value) {
        Value::Long(n) => Some(*n),
        Value::Int(n) => Some(i64::from(*n)),
        _ => None,
    }
}

/// A partition value as Avro decoded it, in the single-value serialization of its type.
fn serialized(value: &Value) -> Option<Vec<u8>> {
    Some(match unwrap_union(value) {
        Value::Null => return None,
        Value::Boolean(b) => vec![u8::from(*b)],
        Value::Int(n) | Value::Date(n) | Value::TimeMillis(n) => n.to_le_bytes().to_vec(),
        Value::Long(n)
        | Value::TimeMicros(n)
        | Value::TimestampMillis(n)
        | Value::TimestampMicros(n)
        | Value::TimestampNanos(n)
        | Value::LocalTimestampMillis(n)
        | Value::LocalTimestampMicros(n)
        | Value::LocalTimestampNanos(n) => n.to_le_bytes().to_vec(),
        Value::Float(x) => x.to_le_bytes().to_vec(),
        Value::Double(x) => x.to_le_bytes().to_vec(),
        Value::String(text) => text.as_bytes().to_vec(),
        Value::Bytes(bytes) | Value::Fixed(_, bytes) => bytes.clone(),
        Value::Uuid(uuid) => uuid.as_bytes().to_vec(),
        Value::Decimal(decimal) => Vec::<u8>::try_from(decimal).ok()?,
        _ => return None,
    })
}
