//! The partition tuples of written files as manifests record them (spec: "Manifests",
//! `data_file.partition`; "Manifest Lists", `partitions`): an Avro record with one field per
//! partition field (ids from 1000, each optional), and per manifest a summary of each field
//! (nulls, NaNs, lower and upper bound in the single-value serialization).

use super::partitioning::WritePartitionField;
use crate::error::IcebergError;
use crate::manifest::FieldSummary;
use crate::partition::Transform;
use crate::schema::{PrimitiveType, Type};
use crate::transform::decimal_bytes;
use apache_avro::types::Value;
use datafusion::common::ScalarValue;
use serde_json::{Value as Json, json};
use std::cmp::Ordering;

/// The type a partition field's values have in manifests. Like Java and pyiceberg, `day`
/// gives dates (an Avro `int` with `logicalType: date`); the other time transforms and
/// `bucket` give plain ints; `identity`, `truncate` and `void` keep the source type.
pub(crate) fn partition_type(field: &WritePartitionField) -> Result<PrimitiveType, IcebergError> {
    let Type::Primitive(source) = &field.source.field_type else {
        return Err(IcebergError::Unsupported(format!(
            "the partition field {} of a nested column",
            field.field.name
        )));
    };
    Ok(match field.field.transform {
        Transform::Day => PrimitiveType::Date,
        Transform::Bucket(_) | Transform::Year | Transform::Month | Transform::Hour => {
            PrimitiveType::Int
        }
        _ => *source,
    })
}

/// The Avro schema (JSON) of a value of `ty`.
fn avro_type(ty: PrimitiveType, name: &str) -> Json {
    match ty {
        PrimitiveType::Boolean => json!("boolean"),
        PrimitiveType::Int => json!("int"),
        PrimitiveType::Long => json!("long"),
        PrimitiveType::Float => json!("float"),
        PrimitiveType::Double => json!("double"),
        PrimitiveType::Date => json!({"type": "int", "logicalType": "date"}),
        PrimitiveType::Time => json!({"type": "long", "logicalType": "time-micros"}),
        PrimitiveType::Timestamp => {
            json!({"type": "long", "logicalType": "timestamp-micros", "adjust-to-utc": false})
        }
        PrimitiveType::Timestamptz => {
            json!({"type": "long", "logicalType": "timestamp-micros", "adjust-to-utc": true})
        }
        PrimitiveType::String => json!("string"),
        PrimitiveType::Binary => json!("bytes"),
        PrimitiveType::Uuid => {
            json!({"type": "fixed", "size": 16, "logicalType": "uuid", "name": format!("{name}_uuid")})
        }
        PrimitiveType::Fixed(length) => {
            json!({"type": "fixed", "size": length, "name": format!("{name}_fixed")})
        }
        PrimitiveType::Decimal { precision, scale } => json!({
            "type": "fixed",
            "size": decimal_size(precision),
            "logicalType": "decimal",
            "precision": precision,
            "scale": scale,
            "name": format!("{name}_decimal"),
        }),
        // Not produced by `result_arrow_type`'s writable transforms.
        PrimitiveType::TimestampNs | PrimitiveType::TimestamptzNs | PrimitiveType::Unknown => {
            json!("null")
        }
    }
}

/// The bytes a fixed-size decimal of `precision` digits takes (spec: "Avro").
fn decimal_size(precision: u8) -> usize {
    (1..=16)
        .find(|bytes| {
            let max_digits = ((2f64.powi(8 * *bytes as i32 - 1)) - 1.0).log10().floor();
            max_digits >= f64::from(precision)
        })
        .unwrap_or(16)
}

/// The Avro schema (JSON) of the `partition` record of `fields` (field id 102).
pub(crate) fn record_schema(fields: &[WritePartitionField]) -> Result<Json, IcebergError> {
    let fields = fields
        .iter()
        .map(|field| {
            let ty = partition_type(field)?;
            Ok(json!({
                "name": field.field.name,
                "type": ["null", avro_type(ty, &format!("p{}", field.field.field_id))],
                "default": null,
                "field-id": field.field.field_id,
            }))
        })
        .collect::<Result<Vec<_>, IcebergError>>()?;
    Ok(json!({"type": "record", "name": "r102", "fields": fields}))
}

/// The Avro value of the `partition` record of a file with partition `values`.
pub(crate) fn record(
    fields: &[WritePartitionField],
    values: &[ScalarValue],
) -> Result<Value, IcebergError> {
    if fields.len() != values.len() {
        return Err(IcebergError::Invalid(format!(
            "a written file has {} partition values for {} partition fields",
            values.len(),
            fields.len()
        )));
    }
    let entries = fields
        .iter()
        .zip(values)
        .map(|(field, value)| {
            let ty = partition_type(field)?;
            let avro = match value.is_null() {
                true => Value::Union(0, Box::new(Value::Null)),
                false => Value::Union(1, Box::new(avro_value(ty, value, &field.field.name)?)),
            };
            Ok((field.field.name.clone(), avro))
        })
        .collect::<Result<Vec<_>, IcebergError>>()?;
    Ok(Value::Record(entries))
}

fn avro_value(ty: PrimitiveType, value: &ScalarValue, name: &str) -> Result<Value, IcebergError> {
    use ScalarValue as S;
    Ok(match (ty, value) {
        (PrimitiveType::Boolean, S::Boolean(Some(b))) => Value::Boolean(*b),
        (PrimitiveType::Int, S::Int32(Some(n))) => Value::Int(*n),
        (PrimitiveType::Long, S::Int64(Some(n))) => Value::Long(*n),
        (PrimitiveType::Float, S::Float32(Some(x))) => Value::Float(*x),
        (PrimitiveType::Double, S::Float64(Some(x))) => Value::Double(*x),
        (PrimitiveType::Date, S::Date32(Some(days))) => Value::Date(*days),
        (PrimitiveType::Time, S::Time64Microsecond(Some(us))) => Value::TimeMicros(*us),
        (
            PrimitiveType::Timestamp | PrimitiveType::Timestamptz,
            S::TimestampMicrosecond(Some(us), _),
        ) => Value::TimestampMicros(*us),
        (
            PrimitiveType::String,
            S::Utf8(Some(text)) | S::Utf8View(Some(text)) | S::LargeUtf8(Some(text)),
        ) => Value::String(text.clone()),
        (PrimitiveType::Binary, S::Binary(Some(bytes)) | S::LargeBinary(Some(bytes))) => {
            Value::Bytes(bytes.clone())
        }
        (PrimitiveType::Uuid, S::FixedSizeBinary(16, Some(bytes))) => {
            let uuid = uuid::Uuid::from_slice(bytes)
                .map_err(|err| IcebergError::Invalid(format!("a uuid partition value: {err}")))?;
            Value::Uuid(uuid)
        }
        (PrimitiveType::Fixed(length), S::FixedSizeBinary(_, Some(bytes)))
            if bytes.len() == length as usize =>
        {
            Value::Fixed(bytes.len(), bytes.clone())
        }
        (PrimitiveType::Decimal { precision, .. }, S::Decimal128(Some(unscaled), _, _)) => {
            let size = decimal_size(precision);
            let fill = if *unscaled < 0 { 0xff } else { 0 };
            let mut bytes = vec![fill; size];
            let shortest = decimal_bytes(*unscaled);
            if shortest.len() > size {
                return Err(IcebergError::Invalid(format!(
                    "the partition value {value} of {name} does not fit decimal({precision})"
                )));
            }
            bytes[size - shortest.len()..].copy_from_slice(&shortest);
            Value::Decimal(apache_avro::Decimal::from(bytes))
        }
        _ => {
            return Err(IcebergError::Invalid(format!(
                "the partition value {value} of {name} is not a {ty}"
            )));
        }
    })
}

/// `value` in Iceberg's single-value serialization (spec, Appendix D); `None` for null.
pub(crate) fn serialize(value: &ScalarValue) -> Option<Vec<u8>> {
    use ScalarValue as S;
    Some(match value {
        S::Boolean(Some(b)) => vec![u8::from(*b)],
        S::Int32(Some(n)) | S::Date32(Some(n)) => n.to_le_bytes().to_vec(),
        S::Int64(Some(n)) | S::Time64Microsecond(Some(n)) | S::TimestampMicrosecond(Some(n), _) => {
            n.to_le_bytes().to_vec()
        }
        S::Float32(Some(x)) => x.to_le_bytes().to_vec(),
        S::Float64(Some(x)) => x.to_le_bytes().to_vec(),
        S::Utf8(Some(text)) | S::Utf8View(Some(text)) | S::LargeUtf8(Some(text)) => {
            text.as_bytes().to_vec()
        }
        S::Binary(Some(bytes))
        | S::LargeBinary(Some(bytes))
        | S::FixedSizeBinary(_, Some(bytes)) => bytes.clone(),
        S::Decimal128(Some(unscaled), _, _) => decimal_bytes(*unscaled),
        _ => return None,
    })
}

fn is_nan(value: &ScalarValue) -> bool {
    match value {
        ScalarValue::Float32(Some(x)) => x.is_nan(),
        ScalarValue::Float64(Some(x)) => x.is_nan(),
        _ => false,
    }
}

/// The manifest list's summary of each partition field over `tuples`.
pub(crate) fn summaries<'a>(
    fields: &[WritePartitionField],
    tuples: impl Iterator<Item = &'a [ScalarValue]> + Clone,
) -> Vec<FieldSummary> {
    (0..fields.len())
        .map(|index| {
            let values = tuples.clone().filter_map(|tuple| tuple.get(index));
            let mut lower: Option<&ScalarValue> = None;
            let mut upper: Option<&ScalarValue> = None;
            let (mut contains_null, mut contains_nan) = (false, false);
            for value in values {
                if value.is_null() {
                    contains_null = true;
                } else if is_nan(value) {
                    contains_nan = true;
                } else {
                    if lower.is_none_or(|l| value.partial_cmp(l) == Some(Ordering::Less)) {
                        lower = Some(value);
                    }
                    if upper.is_none_or(|u| value.partial_cmp(u) == Some(Ordering::Greater)) {
                        upper = Some(value);
                    }
                }
            }
            FieldSummary {
                contains_null,
                contains_nan: Some(contains_nan),
                lower_bound: lower.and_then(serialize),
                upper_bound: upper.and_then(serialize),
            }
        })
        .collect()
}

/// The summaries of manifests `summaries` (each one per field of `fields`) as one: what a
/// manifest holding all their files would have. `None` when a bound does not read.
pub(crate) fn merge_summaries(
    fields: &[WritePartitionField],
    summaries: &[&[FieldSummary]],
) -> Option<Vec<FieldSummary>> {
    let mut merged = Vec::with_capacity(fields.len());
    for (index, field) in fields.iter().enumerate() {
        let ty = partition_type(field).ok()?;
        let mut out = FieldSummary {
            contains_null: false,
            contains_nan: Some(false),
            lower_bound: None,
            upper_bound: None,
        };
        let (mut lower, mut upper): (Option<ScalarValue>, Option<ScalarValue>) = (None, None);
        for summary in summaries {
            let summary = summary.get(index)?;
            out.contains_null |= summary.contains_null;
            out.contains_nan = match (out.contains_nan, summary.contains_nan) {
                (Some(a), Some(b)) => Some(a || b),
                (Some(true), None) => Some(true),
                _ => None,
            };
            if let Some(bytes) = &summary.lower_bound {
                let value = crate::prune::decode(ty, bytes)?;
                if lower
                    .as_ref()
                    .is_none_or(|l| value.partial_cmp(l) == Some(Ordering::Less))
                {
                    lower = Some(value);
                }
            }
            if let Some(bytes) = &summary.upper_bound {
                let value = crate::prune::decode(ty, bytes)?;
                if upper
                    .as_ref()
                    .is_none_or(|u| value.partial_cmp(u) == Some(Ordering::Greater))
                {
                    upper = Some(value);
                }
            }
        }
        out.lower_bound = lower.as_ref().and_then(serialize);
        out.upper_bound = upper.as_ref().and_then(serialize);
        merged.push(out);
    }
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_take_the_specs_fixed_sizes() {
        assert_eq!(decimal_size(9), 4);
        assert_eq!(decimal_size(10), 5);
        assert_eq!(decimal_size(18), 8);
        assert_eq!(decimal_size(38), 16);
    }

    #[test]
    fn partition_values_serialize_as_bounds_read() {
        use crate::prune::decode;
        for (ty, value) in [
            (PrimitiveType::Int, ScalarValue::Int32(Some(-7))),
            (PrimitiveType::Date, ScalarValue::Date32(Some(17486))),
            (PrimitiveType::String, ScalarValue::Utf8(Some("ice".into()))),
            (
                PrimitiveType::Decimal {
                    precision: 9,
                    scale: 2,
                },
                ScalarValue::Decimal128(Some(-1420), 9, 2),
            ),
        ] {
            assert_eq!(decode(ty, &serialize(&value).unwrap()), Some(value));
        }
    }
}
