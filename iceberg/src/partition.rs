//! Partition specs and their transforms (spec: "Partitioning").

use crate::error::IcebergError;
use serde::Deserialize;
use serde_json::Value;

/// A partition spec: how a table's rows are grouped into partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSpec {
    /// The spec's id (`spec-id`).
    pub spec_id: i32,
    /// Its fields, in order.
    pub fields: Vec<PartitionField>,
}

/// One field of a partition spec: a transform of a source column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionField {
    /// The source column's field id.
    pub source_id: i32,
    /// The partition field's id (from 1000 up).
    pub field_id: i32,
    /// The partition field's name.
    pub name: String,
    /// The transform from the source value.
    pub transform: Transform,
}

/// A partition transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    /// The value itself.
    Identity,
    /// `bucket[N]`: a 32-bit Murmur3 hash of the value, modulo N.
    Bucket(u32),
    /// `truncate[W]`: the value cut to width W.
    Truncate(u32),
    /// Years since 1970.
    Year,
    /// Months since 1970-01.
    Month,
    /// Days since 1970-01-01.
    Day,
    /// Hours since 1970-01-01 00:00.
    Hour,
    /// Always null.
    Void,
    /// A transform this version of the spec does not define; a table partitioned by it can
    /// still be read without pruning on it.
    Unknown(String),
}

impl Transform {
    /// Parses a transform as metadata writes it (`bucket[16]`, `day`).
    pub fn parse(text: &str) -> Result<Self, IcebergError> {
        let argument = |prefix: &str| -> Option<Result<u32, IcebergError>> {
            let inner = text.strip_prefix(prefix)?.strip_suffix(']')?;
            Some(
                inner
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| IcebergError::Invalid(format!("transform {text:?}"))),
            )
        };
        if let Some(n) = argument("bucket[") {
            return Ok(Transform::Bucket(n?));
        }
        if let Some(width) = argument("truncate[") {
            return Ok(Transform::Truncate(width?));
        }
        Ok(match text {
            "identity" => Transform::Identity,
            "year" => Transform::Year,
            "month" => Transform::Month,
            "day" => Transform::Day,
            "hour" => Transform::Hour,
            "void" => Transform::Void,
            other => Transform::Unknown(other.to_string()),
        })
    }
}

#[derive(Deserialize)]
struct FieldJson {
    #[serde(rename = "source-id")]
    source_id: i32,
    #[serde(rename = "field-id")]
    field_id: Option<i32>,
    name: String,
    transform: String,
}

/// The fields of a spec as JSON writes them; v1 specs may leave out field ids, which are then
/// numbered from 1000 in order, as the spec says.
pub(crate) fn fields_from_json(value: &Value) -> Result<Vec<PartitionField>, IcebergError> {
    let fields: Vec<FieldJson> = serde_json::from_value(value.clone())
        .map_err(|err| IcebergError::Invalid(format!("partition fields: {err}")))?;
    fields
        .into_iter()
        .enumerate()
        .map(|(index, field)| {
            Ok(PartitionField {
                source_id: field.source_id,
                field_id: field.field_id.unwrap_or(1000 + index as i32),
                name: field.name,
                transform: Transform::parse(&field.transform)?,
            })
        })
        .collect()
}

impl PartitionSpec {
    /// Parses a spec object (`{"spec-id": .., "fields": [..]}`).
    pub(crate) fn from_json(value: &Value) -> Result<Self, IcebergError> {
        Ok(PartitionSpec {
            spec_id: value
                .get("spec-id")
                .and_then(Value::as_i64)
                .map_or(0, |id| id as i32),
            fields: fields_from_json(value.get("fields").unwrap_or(&Value::Null))?,
        })
    }

    /// Whether the spec partitions nothing (no fields, or only `void` ones).
    pub fn is_unpartitioned(&self) -> bool {
        self.fields
            .iter()
            .all(|field| field.transform == Transform::Void)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_parse_as_the_spec_writes_them() {
        assert_eq!(
            Transform::parse("bucket[16]").unwrap(),
            Transform::Bucket(16)
        );
        assert_eq!(
            Transform::parse("truncate[4]").unwrap(),
            Transform::Truncate(4)
        );
        assert_eq!(Transform::parse("day").unwrap(), Transform::Day);
        assert!(Transform::parse("bucket[0]").is_err());
        assert_eq!(
            Transform::parse("zorder").unwrap(),
            Transform::Unknown("zorder".into())
        );
    }
}
