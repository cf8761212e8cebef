//! Iceberg schemas and types (spec: "Schemas and Data Types"), and their Arrow form.
//!
//! | Iceberg | Arrow |
//! |---|---|
//! | `boolean` | Boolean |
//! | `int`, `long` | Int32, Int64 |
//! | `float`, `double` | Float32, Float64 |
//! | `decimal(P,S)` | Decimal128(P, S) |
//! | `date` | Date32 |
//! | `time` | Time64(µs) |
//! | `timestamp`, `timestamptz` | Timestamp(µs), Timestamp(µs, "+00:00") |
//! | `timestamp_ns`, `timestamptz_ns` | Timestamp(ns), Timestamp(ns, "+00:00") |
//! | `string` | Utf8 |
//! | `uuid` | FixedSizeBinary(16) |
//! | `fixed[L]` | FixedSizeBinary(L) |
//! | `binary` | Binary |
//! | `unknown` (v3) | Null |
//! | `struct`, `list`, `map` | Struct, List, Map |
//!
//! Every Arrow field carries its Iceberg field id in the metadata key [`FIELD_ID_KEY`], as
//! Parquet files written by Iceberg do, so columns are matched by id, never by name. `variant`,
//! `geometry` and `geography` (v3) are refused by name.

use crate::error::IcebergError;
use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The Arrow field metadata key holding a field's Iceberg id (as in Parquet files).
pub const FIELD_ID_KEY: &str = "PARQUET:field_id";

/// A table schema: its id and top-level fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// The schema's id (`schema-id`; 0 in v1 metadata that has none).
    pub schema_id: i32,
    /// The top-level fields, in order.
    pub fields: Vec<NestedField>,
    /// The fields that identify a row (`identifier-field-ids`).
    pub identifier_field_ids: Vec<i32>,
}

/// A field of a struct (or a schema), with its id.
#[derive(Debug, Clone, PartialEq)]
pub struct NestedField {
    /// The field's id, unique in the table and stable across renames.
    pub id: i32,
    /// The field's current name.
    pub name: String,
    /// Whether every row has a value.
    pub required: bool,
    /// Its type.
    pub field_type: Type,
    /// Its documentation, if any.
    pub doc: Option<String>,
}

/// An Iceberg type.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// A primitive type.
    Primitive(PrimitiveType),
    /// A struct of fields.
    Struct(Vec<NestedField>),
    /// A list; its element is a field (id, required) named `element`.
    List(Box<NestedField>),
    /// A map; key and value are fields named `key` and `value`.
    Map {
        /// The key field (always required).
        key: Box<NestedField>,
        /// The value field.
        value: Box<NestedField>,
    },
}

/// An Iceberg primitive type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimitiveType {
    /// `boolean`
    Boolean,
    /// `int` (32-bit)
    Int,
    /// `long` (64-bit)
    Long,
    /// `float`
    Float,
    /// `double`
    Double,
    /// `decimal(P,S)`
    Decimal {
        /// Digits in all.
        precision: u8,
        /// Digits after the point.
        scale: i8,
    },
    /// `date`
    Date,
    /// `time` (microseconds)
    Time,
    /// `timestamp` (microseconds, no zone)
    Timestamp,
    /// `timestamptz` (microseconds, UTC)
    Timestamptz,
    /// `timestamp_ns` (v3)
    TimestampNs,
    /// `timestamptz_ns` (v3)
    TimestamptzNs,
    /// `string`
    String,
    /// `uuid`
    Uuid,
    /// `fixed[L]`
    Fixed(i32),
    /// `binary`
    Binary,
    /// `unknown` (v3): always null.
    Unknown,
}

impl std::fmt::Display for PrimitiveType {
    /// The type as metadata spells it (`long`, `decimal(10, 2)`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            PrimitiveType::Boolean => "boolean",
            PrimitiveType::Int => "int",
            PrimitiveType::Long => "long",
            PrimitiveType::Float => "float",
            PrimitiveType::Double => "double",
            PrimitiveType::Decimal { precision, scale } => {
                return write!(f, "decimal({precision}, {scale})");
            }
            PrimitiveType::Date => "date",
            PrimitiveType::Time => "time",
            PrimitiveType::Timestamp => "timestamp",
            PrimitiveType::Timestamptz => "timestamptz",
            PrimitiveType::TimestampNs => "timestamp_ns",
            PrimitiveType::TimestamptzNs => "timestamptz_ns",
            PrimitiveType::String => "string",
            PrimitiveType::Uuid => "uuid",
            PrimitiveType::Fixed(length) => return write!(f, "fixed[{length}]"),
            PrimitiveType::Binary => "binary",
            PrimitiveType::Unknown => "unknown",
        };
        f.write_str(name)
    }
}

impl PrimitiveType {
    fn parse(name: &str) -> Result<Self, IcebergError> {
        let invalid = || IcebergError::Invalid(format!("unknown type {name:?}"));
        Ok(match name {
            "boolean" => PrimitiveType::Boolean,
            "int" => PrimitiveType::Int,
            "long" => PrimitiveType::Long,
            "float" => PrimitiveType::Float,
            "double" => PrimitiveType::Double,
            "date" => PrimitiveType::Date,
            "time" => PrimitiveType::Time,
            "timestamp" => PrimitiveType::Timestamp,
            "timestamptz" => PrimitiveType::Timestamptz,
            "timestamp_ns" => PrimitiveType::TimestampNs,
            "timestamptz_ns" => PrimitiveType::TimestamptzNs,
            "string" => PrimitiveType::String,
            "uuid" => PrimitiveType::Uuid,
            "binary" => PrimitiveType::Binary,
            "unknown" => PrimitiveType::Unknown,
            "variant" => {
                return Err(IcebergError::Unsupported("the Iceberg type variant".into()));
            }
            other if other.starts_with("geometry") || other.starts_with("geography") => {
                return Err(IcebergError::Unsupported(format!(
                    "the Iceberg type {other}"
                )));
            }
            other => {
                if let Some(length) = other
                    .strip_prefix("fixed[")
                    .and_then(|rest| rest.strip_suffix(']'))
                {
                    let length: i32 = length.trim().parse().map_err(|_| invalid())?;
                    if length <= 0 {
                        return Err(invalid());
                    }
                    return Ok(PrimitiveType::Fixed(length));
                }
                let arguments = other
                    .strip_prefix("decimal(")
                    .and_then(|rest| rest.strip_suffix(')'))
                    .ok_or_else(invalid)?;
                let (precision, scale) = arguments.split_once(',').ok_or_else(invalid)?;
                let precision: u8 = precision.trim().parse().map_err(|_| invalid())?;
                let scale: i8 = scale.trim().parse().map_err(|_| invalid())?;
                if precision == 0 || precision > 38 || scale < 0 || scale as u8 > precision {
                    return Err(invalid());
                }
                PrimitiveType::Decimal { precision, scale }
            }
        })
    }

    /// The Arrow type values of this type are read as.
    pub fn to_arrow(self) -> DataType {
        let utc = || Some(Arc::from("+00:00"));
        match self {
            PrimitiveType::Boolean => DataType::Boolean,
            PrimitiveType::Int => DataType::Int32,
            PrimitiveType::Long => DataType::Int64,
            PrimitiveType::Float => DataType::Float32,
            PrimitiveType::Double => DataType::Float64,
            PrimitiveType::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            PrimitiveType::Date => DataType::Date32,
            PrimitiveType::Time => DataType::Time64(TimeUnit::Microsecond),
            PrimitiveType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            PrimitiveType::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, utc()),
            PrimitiveType::TimestampNs => DataType::Timestamp(TimeUnit::Nanosecond, None),
            PrimitiveType::TimestamptzNs => DataType::Timestamp(TimeUnit::Nanosecond, utc()),
            PrimitiveType::String => DataType::Utf8,
            PrimitiveType::Uuid => DataType::FixedSizeBinary(16),
            PrimitiveType::Fixed(length) => DataType::FixedSizeBinary(length),
            PrimitiveType::Binary => DataType::Binary,
            PrimitiveType::Unknown => DataType::Null,
        }
    }
}

/// A field as metadata JSON writes it.
#[derive(Deserialize)]
struct FieldJson {
    id: i32,
    name: String,
    required: bool,
    #[serde(rename = "type")]
    field_type: Value,
    #[serde(default)]
    doc: Option<String>,
}

impl Type {
    /// Parses a type as metadata JSON writes it: a string for primitives, an object for
    /// `struct`, `list` and `map`.
    pub(crate) fn from_json(value: &Value) -> Result<Self, IcebergError> {
        let object = match value {
            Value::String(name) => return Ok(Type::Primitive(PrimitiveType::parse(name)?)),
            Value::Object(object) => object,
            other => return Err(IcebergError::Invalid(format!("a type cannot be {other}"))),
        };
        let int = |key: &str| -> Result<i32, IcebergError> {
            object
                .get(key)
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| IcebergError::Invalid(format!("a nested type without {key}")))
        };
        let required = |key: &str| object.get(key).and_then(Value::as_bool).unwrap_or(false);
        let nested = |key: &str| -> Result<Type, IcebergError> {
            Type::from_json(
                object
                    .get(key)
                    .ok_or_else(|| IcebergError::Invalid(format!("a nested type without {key}")))?,
            )
        };
        match object.get("type").and_then(Value::as_str) {
            Some("struct") => Ok(Type::Struct(fields_from_json(
                object.get("fields").unwrap_or(&Value::Null),
            )?)),
            Some("list") => Ok(Type::List(Box::new(NestedField {
                id: int("element-id")?,
                name: "element".into(),
                required: required("element-required"),
                field_type: nested("element")?,
                doc: None,
            }))),
            Some("map") => Ok(Type::Map {
                key: Box::new(NestedField {
                    id: int("key-id")?,
                    name: "key".into(),
                    required: true,
                    field_type: nested("key")?,
                    doc: None,
                }),
                value: Box::new(NestedField {
                    id: int("value-id")?,
                    name: "value".into(),
                    required: required("value-required"),
                    field_type: nested("value")?,
                    doc: None,
                }),
            }),
            other => Err(IcebergError::Invalid(format!(
                "unknown nested type {other:?}"
            ))),
        }
    }

    /// The Arrow type values of this type are read as (nested fields carry their ids).
    pub fn to_arrow(&self) -> DataType {
        match self {
            Type::Primitive(primitive) => primitive.to_arrow(),
            Type::Struct(fields) => DataType::Struct(Fields::from(
                fields.iter().map(NestedField::to_arrow).collect::<Vec<_>>(),
            )),
            Type::List(element) => DataType::List(Arc::new(element.to_arrow())),
            Type::Map { key, value } => {
                let entries = Field::new(
                    "key_value",
                    DataType::Struct(Fields::from(vec![key.to_arrow(), value.to_arrow()])),
                    false,
                );
                DataType::Map(Arc::new(entries), false)
            }
        }
    }
}

impl NestedField {
    /// The Arrow field: its name, type and nullability, with its id in [`FIELD_ID_KEY`].
    pub fn to_arrow(&self) -> Field {
        Field::new(&self.name, self.field_type.to_arrow(), !self.required).with_metadata(
            HashMap::from([(FIELD_ID_KEY.to_string(), self.id.to_string())]),
        )
    }
}

fn fields_from_json(value: &Value) -> Result<Vec<NestedField>, IcebergError> {
    let fields: Vec<FieldJson> = serde_json::from_value(value.clone())
        .map_err(|err| IcebergError::Invalid(format!("struct fields: {err}")))?;
    fields
        .into_iter()
        .map(|field| {
            Ok(NestedField {
                id: field.id,
                name: field.name,
                required: field.required,
                field_type: Type::from_json(&field.field_type)?,
                doc: field.doc,
            })
        })
        .collect()
}

impl Schema {
    /// Parses a schema object of table metadata.
    pub(crate) fn from_json(value: &Value) -> Result<Self, IcebergError> {
        let schema_id = value
            .get("schema-id")
            .and_then(Value::as_i64)
            .map_or(0, |id| id as i32);
        let identifier_field_ids = value
            .get("identifier-field-ids")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_i64())
                    .map(|id| id as i32)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Schema {
            schema_id,
            fields: fields_from_json(value.get("fields").unwrap_or(&Value::Null))?,
            identifier_field_ids,
        })
    }

    /// The schema as Arrow, each field with its Iceberg id.
    pub fn to_arrow(&self) -> datafusion::arrow::datatypes::Schema {
        datafusion::arrow::datatypes::Schema::new(
            self.fields
                .iter()
                .map(NestedField::to_arrow)
                .collect::<Vec<_>>(),
        )
    }

    /// The field with `id`, at any depth.
    pub fn field_by_id(&self, id: i32) -> Option<&NestedField> {
        fn find(fields: &[NestedField], id: i32) -> Option<&NestedField> {
            for field in fields {
                if field.id == id {
                    return Some(field);
                }
                let inner = match &field.field_type {
                    Type::Struct(children) => find(children, id),
                    Type::List(element) => find(std::slice::from_ref(element.as_ref()), id),
                    Type::Map { key, value } => find(std::slice::from_ref(key.as_ref()), id)
                        .or_else(|| find(std::slice::from_ref(value.as_ref()), id)),
                    Type::Primitive(_) => None,
                };
                if inner.is_some() {
                    return inner;
                }
            }
            None
        }
        find(&self.fields, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_type_maps_to_arrow_with_field_ids() {
        let schema = Schema::from_json(&json!({
            "type": "struct", "schema-id": 3, "identifier-field-ids": [1],
            "fields": [
                {"id": 1, "name": "id", "required": true, "type": "long"},
                {"id": 2, "name": "price", "required": false, "type": "decimal(12, 2)"},
                {"id": 3, "name": "at", "required": false, "type": "timestamptz"},
                {"id": 4, "name": "key", "required": false, "type": "fixed[8]"},
                {"id": 5, "name": "tags", "required": false, "type":
                    {"type": "list", "element-id": 6, "element": "string", "element-required": false}},
                {"id": 7, "name": "attrs", "required": false, "type":
                    {"type": "map", "key-id": 8, "key": "string", "value-id": 9, "value": "int",
                     "value-required": true}},
                {"id": 10, "name": "point", "required": false, "type":
                    {"type": "struct", "fields": [{"id": 11, "name": "x", "required": true, "type": "double"}]}}
            ]
        }))
        .unwrap();
        assert_eq!(schema.schema_id, 3);
        let arrow = schema.to_arrow();
        assert_eq!(arrow.field(0).data_type(), &DataType::Int64);
        assert!(!arrow.field(0).is_nullable());
        assert_eq!(arrow.field(1).data_type(), &DataType::Decimal128(12, 2));
        assert_eq!(
            arrow.field(2).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        );
        assert_eq!(arrow.field(3).data_type(), &DataType::FixedSizeBinary(8));
        assert_eq!(arrow.field(0).metadata()[FIELD_ID_KEY], "1");
        let DataType::List(element) = arrow.field(4).data_type() else {
            panic!("{arrow:?}")
        };
        assert_eq!(element.metadata()[FIELD_ID_KEY], "6");
        assert_eq!(schema.field_by_id(11).unwrap().name, "x");
        assert_eq!(schema.field_by_id(9).unwrap().name, "value");
    }

    #[test]
    fn unsupported_and_invalid_types_are_refused_by_name() {
        let err = Type::from_json(&json!("variant")).unwrap_err();
        assert!(matches!(err, IcebergError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("variant"), "{err}");
        let err = Type::from_json(&json!("decimal(40,2)")).unwrap_err();
        assert!(matches!(err, IcebergError::Invalid(_)), "{err}");
        let err = Type::from_json(&json!("geometry(srid:4326)")).unwrap_err();
        assert!(matches!(err, IcebergError::Unsupported(_)), "{err}");
    }
}
