//! Partition specs a write can produce: parsed from `CREATE TABLE ... WITH (partitioning =
//! ARRAY[...])` in Trino's spelling (`'day(ts)'`, `'bucket(id, 16)'`, `'truncate(name, 4)'`;
//! Spark's `bucket(16, id)` and `days(ts)` are accepted too), checked against the schema, and
//! written as metadata JSON.

use crate::error::IcebergError;
use crate::metadata::TableMetadata;
use crate::partition::{PartitionField, PartitionSpec, Transform};
use crate::schema::{NestedField, Schema, Type};
use crate::transform::{result_arrow_type, transform_text};
use serde_json::{Value, json};

/// The first partition field id of a table (spec: "Partition Specs").
const FIRST_PARTITION_FIELD_ID: i32 = 1000;

/// The fields of a new spec from Trino's `partitioning` expressions over `schema`.
pub fn parse_partitioning(
    expressions: &[String],
    schema: &Schema,
) -> Result<Vec<PartitionField>, IcebergError> {
    let mut fields: Vec<PartitionField> = Vec::with_capacity(expressions.len());
    for (index, text) in expressions.iter().enumerate() {
        let (transform, column) = parse_expression(text)?;
        let source = find_column(schema, &column).ok_or_else(|| {
            IcebergError::Invalid(format!(
                "partitioning {text:?} names the column {column}, which the table does not have"
            ))
        })?;
        check_transform(&transform, source, text)?;
        let name = match &transform {
            Transform::Identity => source.name.clone(),
            Transform::Bucket(_) => format!("{}_bucket", source.name),
            Transform::Truncate(_) => format!("{}_trunc", source.name),
            Transform::Year => format!("{}_year", source.name),
            Transform::Month => format!("{}_month", source.name),
            Transform::Day => format!("{}_day", source.name),
            Transform::Hour => format!("{}_hour", source.name),
            Transform::Void => format!("{}_null", source.name),
            Transform::Unknown(_) => unreachable!("parse_expression refuses unknown transforms"),
        };
        if fields
            .iter()
            .any(|f| f.source_id == source.id && f.transform == transform)
        {
            return Err(IcebergError::Invalid(format!(
                "partitioning {text:?} repeats an earlier field"
            )));
        }
        if fields.iter().any(|f| f.name == name) {
            return Err(IcebergError::Invalid(format!(
                "partitioning {text:?}: two partition fields would be named {name}"
            )));
        }
        fields.push(PartitionField {
            source_id: source.id,
            field_id: FIRST_PARTITION_FIELD_ID + index as i32,
            name,
            transform,
        });
    }
    Ok(fields)
}

/// `name(args)` or a bare column, with the column unquoted.
fn parse_expression(text: &str) -> Result<(Transform, String), IcebergError> {
    let bad = |why: &str| {
        IcebergError::Invalid(format!(
            "partitioning {text:?}: {why}; write a column, year(c), month(c), day(c), \
             hour(c), bucket(c, n), truncate(c, w) or void(c)"
        ))
    };
    let text = text.trim();
    let Some(open) = text.find('(') else {
        return Ok((Transform::Identity, unquote(text)));
    };
    let Some(inner) = text[open + 1..].strip_suffix(')') else {
        return Err(bad("unbalanced parentheses"));
    };
    let function = text[..open].trim().to_ascii_lowercase();
    let arguments: Vec<&str> = inner.split(',').map(str::trim).collect();
    let single = || match arguments.as_slice() {
        [column] if !column.is_empty() => Ok(unquote(column)),
        _ => Err(bad("this transform takes one column")),
    };
    // bucket and truncate take a column and a number, in either order (Trino and Spark).
    let with_number = || -> Result<(u32, String), IcebergError> {
        let [a, b] = arguments.as_slice() else {
            return Err(bad("this transform takes a column and a number"));
        };
        let (number, column) = match (a.parse::<u32>(), b.parse::<u32>()) {
            (Ok(n), Err(_)) => (n, b),
            (Err(_), Ok(n)) => (n, a),
            _ => return Err(bad("this transform takes a column and a number")),
        };
        if number == 0 {
            return Err(bad("the number must be positive"));
        }
        Ok((number, unquote(column)))
    };
    Ok(match function.as_str() {
        "year" | "years" => (Transform::Year, single()?),
        "month" | "months" => (Transform::Month, single()?),
        "day" | "days" => (Transform::Day, single()?),
        "hour" | "hours" => (Transform::Hour, single()?),
        "void" => (Transform::Void, single()?),
        "bucket" => {
            let (n, column) = with_number()?;
            (Transform::Bucket(n), column)
        }
        "truncate" => {
            let (width, column) = with_number()?;
            (Transform::Truncate(width), column)
        }
        other => return Err(bad(&format!("no transform is called {other}"))),
    })
}

fn unquote(column: &str) -> String {
    let column = column.trim();
    match column.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => column.to_string(),
    }
}

/// A top-level column by name: exactly, else the one column equal ignoring case.
fn find_column<'a>(schema: &'a Schema, name: &str) -> Option<&'a NestedField> {
    schema.fields.iter().find(|f| f.name == name).or_else(|| {
        let mut matching = schema
            .fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name));
        let first = matching.next()?;
        matching.next().is_none().then_some(first)
    })
}

fn check_transform(
    transform: &Transform,
    source: &NestedField,
    text: &str,
) -> Result<(), IcebergError> {
    let Type::Primitive(primitive) = &source.field_type else {
        return Err(IcebergError::Invalid(format!(
            "partitioning {text:?}: the column {} is not of a primitive type",
            source.name
        )));
    };
    if result_arrow_type(transform, &primitive.to_arrow()).is_none() {
        return Err(IcebergError::Unsupported(format!(
            "partitioning {text:?}: {} of a {primitive} column, which Osprey cannot write",
            transform_text(transform),
        )));
    }
    Ok(())
}

/// The partition spec JSON of `fields` with id `spec_id`.
pub fn spec_json(spec_id: i32, fields: &[PartitionField]) -> Value {
    json!({"spec-id": spec_id, "fields": fields_json(fields)})
}

/// The fields of a spec as metadata and manifest headers spell them.
pub(crate) fn fields_json(fields: &[PartitionField]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|field| {
                json!({
                    "source-id": field.source_id,
                    "field-id": field.field_id,
                    "name": field.name,
                    "transform": transform_text(&field.transform),
                })
            })
            .collect(),
    )
}

/// A partition field a write computes: its spec field, the source column's position in the
/// current schema, and the source's type.
#[derive(Debug, Clone)]
pub struct WritePartitionField {
    /// The spec's field.
    pub field: PartitionField,
    /// The index of its source among the schema's top-level columns.
    pub source_index: usize,
    /// The source column.
    pub source: NestedField,
}

/// The default spec of `metadata` as a write computes it, after checking that Osprey can
/// write each field (top-level primitive sources, known transforms).
pub fn write_spec(metadata: &TableMetadata) -> Result<Vec<WritePartitionField>, IcebergError> {
    spec_fields(metadata, metadata.default_spec_id)
}

/// The spec `spec_id` of `metadata` as a write computes it (see [`write_spec`]).
pub(crate) fn spec_fields(
    metadata: &TableMetadata,
    spec_id: i32,
) -> Result<Vec<WritePartitionField>, IcebergError> {
    let spec: &PartitionSpec = metadata
        .partition_spec(spec_id)
        .ok_or_else(|| IcebergError::Invalid(format!("the partition spec {spec_id} is missing")))?;
    let schema = metadata.current_schema();
    spec.fields
        .iter()
        .map(|field| {
            let text = format!("{}({})", transform_text(&field.transform), field.source_id);
            let Some(source_index) = schema.fields.iter().position(|f| f.id == field.source_id)
            else {
                return Err(IcebergError::Unsupported(format!(
                    "the partition field {} of a nested or dropped column, which Osprey does \
                     not write yet",
                    field.name
                )));
            };
            let source = schema.fields[source_index].clone();
            if let Transform::Unknown(name) = &field.transform {
                return Err(IcebergError::Unsupported(format!(
                    "the partition transform {name}, which Osprey does not know"
                )));
            }
            check_transform(&field.transform, &source, &text)?;
            Ok(WritePartitionField {
                field: field.clone(),
                source_index,
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::from_json(&json!({"type": "struct", "schema-id": 0, "fields": [
            {"id": 1, "name": "id", "required": false, "type": "long"},
            {"id": 2, "name": "ts", "required": false, "type": "timestamptz"},
            {"id": 3, "name": "Name", "required": false, "type": "string"},
            {"id": 4, "name": "score", "required": false, "type": "double"},
        ]}))
        .unwrap()
    }

    #[test]
    fn trino_and_spark_spellings_parse_to_spec_fields() {
        let fields = parse_partitioning(
            &[
                "day(ts)".into(),
                "bucket(id, 16)".into(),
                "truncate(4, \"Name\")".into(),
                "id".into(),
            ],
            &schema(),
        )
        .unwrap();
        let summary: Vec<(i32, i32, &str, String)> = fields
            .iter()
            .map(|f| {
                (
                    f.source_id,
                    f.field_id,
                    f.name.as_str(),
                    transform_text(&f.transform),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (2, 1000, "ts_day", "day".to_string()),
                (1, 1001, "id_bucket", "bucket[16]".to_string()),
                (3, 1002, "Name_trunc", "truncate[4]".to_string()),
                (1, 1003, "id", "identity".to_string()),
            ]
        );
    }

    #[test]
    fn bad_partitioning_is_refused_by_name() {
        let refused = |text: &str| {
            parse_partitioning(&[text.to_string()], &schema())
                .unwrap_err()
                .to_string()
        };
        assert!(refused("day(nope)").contains("nope"));
        assert!(refused("bucket(id)").contains("a column and a number"));
        assert!(refused("zorder(id)").contains("zorder"));
        assert!(refused("day(id)").contains("day of a long column"));
        assert!(refused("bucket(score, 4)").contains("bucket[4] of a double"));
    }
}
