//! Writing manifests and manifest lists (spec: "Manifests", "Manifest Lists"), format version
//! 2, as Avro files whose schemas carry the spec's field ids (readers such as pyiceberg and
//! Java resolve fields by them) and whose headers carry the table schema and partition spec.
//!
//! Written with apache-avro's generic values against the spec's schemas below, kept as JSON
//! so they read like the spec's tables.

use super::metrics::WrittenMetrics;
use super::partition_values;
use super::partitioning::{WritePartitionField, fields_json};
use crate::error::IcebergError;
use crate::manifest::{ManifestContent, ManifestFile};
use apache_avro::types::Value;
use apache_avro::{Codec, DeflateSettings, Schema as AvroSchema, Writer};
use datafusion::common::ScalarValue;
use std::collections::BTreeMap;

/// A data file added by a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedFile {
    /// Its full location (`s3://bucket/table/data/...parquet`).
    pub location: String,
    /// Its size in bytes.
    pub size: i64,
    /// Its rows and column metrics.
    pub metrics: WrittenMetrics,
    /// Its partition values, one per field of its partition spec.
    pub partition: Vec<ScalarValue>,
    /// For a position delete file: the one data file its deletes are in.
    pub referenced_data_file: Option<String>,
    /// For a deletion vector (format 3): its blob's offset and length in the Puffin file
    /// `location`.
    pub vector: Option<(i64, i64)>,
}

/// What a manifest's header says of its table.
#[derive(Debug, Clone, Copy)]
pub struct ManifestTable<'a> {
    /// The table's current schema as metadata stores it.
    pub schema_json: &'a str,
    /// Its id.
    pub schema_id: i32,
    /// The table's format version (2 or 3).
    pub format_version: u8,
}

/// An `int -> <value_type>` map of a data file (counts are `long`, bounds `bytes`), as the
/// spec spells it in Avro: an array of key-value records, `k<id>`/`v<id>`.
fn int_map(name: &str, field_id: i32, key_id: i32, value_id: i32, value_type: &str) -> String {
    format!(
        r#"{{"name": "{name}", "field-id": {field_id}, "default": null, "type": ["null",
          {{"type": "array", "logicalType": "map", "items": {{"type": "record", "name": "k{key_id}_v{value_id}",
            "fields": [{{"name": "key", "type": "int", "field-id": {key_id}}},
                       {{"name": "value", "type": "{value_type}", "field-id": {value_id}}}]}}}}]}}"#
    )
}

/// The `manifest_entry` schema of format 2, or 3 with `v3` (row lineage and deletion vector
/// fields), with `partition` the Avro record schema (JSON) of the spec's partition tuples.
fn manifest_entry_schema(partition: &str, v3: bool) -> String {
    let v3_fields = match v3 {
        true => {
            r#",
    {"name": "first_row_id", "type": ["null", "long"], "default": null, "field-id": 142},
    {"name": "content_offset", "type": ["null", "long"], "default": null, "field-id": 144},
    {"name": "content_size_in_bytes", "type": ["null", "long"], "default": null, "field-id": 145}"#
        }
        false => "",
    };
    format!(
        r#"{{"type": "record", "name": "manifest_entry", "fields": [
  {{"name": "status", "type": "int", "field-id": 0}},
  {{"name": "snapshot_id", "type": ["null", "long"], "default": null, "field-id": 1}},
  {{"name": "sequence_number", "type": ["null", "long"], "default": null, "field-id": 3}},
  {{"name": "file_sequence_number", "type": ["null", "long"], "default": null, "field-id": 4}},
  {{"name": "data_file", "field-id": 2, "type": {{"type": "record", "name": "r2", "fields": [
    {{"name": "content", "type": "int", "field-id": 134}},
    {{"name": "file_path", "type": "string", "field-id": 100}},
    {{"name": "file_format", "type": "string", "field-id": 101}},
    {{"name": "partition", "field-id": 102, "type": {}}},
    {{"name": "record_count", "type": "long", "field-id": 103}},
    {{"name": "file_size_in_bytes", "type": "long", "field-id": 104}},
    {},
    {},
    {},
    {},
    {},
    {{"name": "split_offsets", "field-id": 132, "default": null,
      "type": ["null", {{"type": "array", "items": "long", "element-id": 133}}]}},
    {{"name": "sort_order_id", "type": ["null", "int"], "default": null, "field-id": 140}},
    {{"name": "referenced_data_file", "type": ["null", "string"], "default": null, "field-id": 143}}{}
  ]}}}}
]}}"#,
        partition,
        int_map("column_sizes", 108, 117, 118, "long"),
        int_map("value_counts", 109, 119, 120, "long"),
        int_map("null_value_counts", 110, 121, 122, "long"),
        int_map("lower_bounds", 125, 126, 127, "bytes"),
        int_map("upper_bounds", 128, 129, 130, "bytes"),
        v3_fields,
    )
}

/// The `manifest_file` schema of manifest lists, format 2 (format 3 adds `first_row_id`).
const MANIFEST_FILE_SCHEMA: &str = r#"{"type": "record", "name": "manifest_file", "fields": [
  {"name": "manifest_path", "type": "string", "field-id": 500},
  {"name": "manifest_length", "type": "long", "field-id": 501},
  {"name": "partition_spec_id", "type": "int", "field-id": 502},
  {"name": "content", "type": "int", "field-id": 517},
  {"name": "sequence_number", "type": "long", "field-id": 515},
  {"name": "min_sequence_number", "type": "long", "field-id": 516},
  {"name": "added_snapshot_id", "type": "long", "field-id": 503},
  {"name": "added_files_count", "type": "int", "field-id": 504},
  {"name": "existing_files_count", "type": "int", "field-id": 505},
  {"name": "deleted_files_count", "type": "int", "field-id": 506},
  {"name": "added_rows_count", "type": "long", "field-id": 512},
  {"name": "existing_rows_count", "type": "long", "field-id": 513},
  {"name": "deleted_rows_count", "type": "long", "field-id": 514},
  {"name": "partitions", "field-id": 507, "default": null, "type": ["null",
    {"type": "array", "element-id": 508, "items": {"type": "record", "name": "r508", "fields": [
      {"name": "contains_null", "type": "boolean", "field-id": 509},
      {"name": "contains_nan", "type": ["null", "boolean"], "default": null, "field-id": 518},
      {"name": "lower_bound", "type": ["null", "bytes"], "default": null, "field-id": 510},
      {"name": "upper_bound", "type": ["null", "bytes"], "default": null, "field-id": 511}
    ]}}]}
]}"#;

/// The field format 3 adds to `manifest_file`.
const FIRST_ROW_ID_FIELD: &str =
    r#"{"name": "first_row_id", "type": ["null", "long"], "default": null, "field-id": 520}"#;

/// Marks the arrays of key-value records as Iceberg's maps (`"logicalType": "map"`), which
/// apache-avro's parser drops from the JSON above; readers such as pyiceberg need it.
pub(super) fn mark_maps(schema: &mut AvroSchema) {
    match schema {
        AvroSchema::Record(record) => {
            for field in &mut record.fields {
                mark_maps(&mut field.schema);
            }
        }
        AvroSchema::Union(union) => {
            let mut variants = union.variants().to_vec();
            variants.iter_mut().for_each(mark_maps);
            if let Ok(marked) = apache_avro::schema::UnionSchema::new(variants) {
                *union = marked;
            }
        }
        AvroSchema::Array(array) => {
            let is_map = matches!(array.items.as_ref(), AvroSchema::Record(items)
                if items.fields.len() == 2 && items.fields[0].name == "key" && items.fields[1].name == "value");
            if is_map {
                array
                    .attributes
                    .insert("logicalType".to_string(), "map".into());
            } else {
                mark_maps(&mut array.items);
            }
        }
        _ => {}
    }
}

fn avro_error(what: &str) -> impl Fn(apache_avro::Error) -> IcebergError + '_ {
    move |err| IcebergError::Invalid(format!("cannot write {what}: {err}"))
}

fn optional(value: Option<Value>) -> Value {
    match value {
        Some(value) => Value::Union(1, Box::new(value)),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

fn entries<T>(map: &BTreeMap<i32, T>, value: impl Fn(&T) -> Value) -> Value {
    optional(Some(Value::Array(
        map.iter()
            .map(|(key, v)| {
                Value::Record(vec![
                    ("key".to_string(), Value::Int(*key)),
                    ("value".to_string(), value(v)),
                ])
            })
            .collect(),
    )))
}

/// The bytes of a manifest listing `files` (data files, or position delete files with
/// `deletes`) as added by `snapshot_id` (their sequence numbers inherited from the manifest
/// list). `schema_json` is the table's current schema as metadata stores it; `spec_id` and
/// `spec` the partition spec the files were written with.
pub fn write_manifest(
    files: &[AddedFile],
    deletes: bool,
    snapshot_id: i64,
    table: ManifestTable<'_>,
    spec_id: i32,
    spec: &[WritePartitionField],
) -> Result<Vec<u8>, IcebergError> {
    let what = "a manifest";
    let v3 = table.format_version >= 3;
    let partition_schema = partition_values::record_schema(spec)?.to_string();
    let mut schema = AvroSchema::parse_str(&manifest_entry_schema(&partition_schema, v3))
        .map_err(avro_error(what))?;
    mark_maps(&mut schema);
    let mut writer = Writer::with_codec(
        &schema,
        Vec::new(),
        Codec::Deflate(DeflateSettings::default()),
    )
    .map_err(avro_error(what))?;
    for (key, value) in [
        ("schema", table.schema_json.to_string()),
        ("schema-id", table.schema_id.to_string()),
        (
            "partition-spec",
            fields_json(&spec.iter().map(|f| f.field.clone()).collect::<Vec<_>>()).to_string(),
        ),
        ("partition-spec-id", spec_id.to_string()),
        ("format-version", table.format_version.to_string()),
        (
            "content",
            if deletes { "deletes" } else { "data" }.to_string(),
        ),
    ] {
        writer
            .add_user_metadata(key.to_string(), value)
            .map_err(avro_error(what))?;
    }
    for file in files {
        let metrics = &file.metrics;
        let format = match file.vector {
            Some(_) => "PUFFIN",
            None => "PARQUET",
        };
        let mut data_file = vec![
            ("content".to_string(), Value::Int(i32::from(deletes))),
            (
                "file_path".to_string(),
                Value::String(file.location.clone()),
            ),
            ("file_format".to_string(), Value::String(format.to_string())),
            (
                "partition".to_string(),
                partition_values::record(spec, &file.partition)?,
            ),
            (
                "record_count".to_string(),
                Value::Long(metrics.record_count),
            ),
            ("file_size_in_bytes".to_string(), Value::Long(file.size)),
            (
                "column_sizes".to_string(),
                entries(&metrics.column_sizes, |v| Value::Long(*v)),
            ),
            (
                "value_counts".to_string(),
                entries(&metrics.value_counts, |v| Value::Long(*v)),
            ),
            (
                "null_value_counts".to_string(),
                entries(&metrics.null_value_counts, |v| Value::Long(*v)),
            ),
            (
                "lower_bounds".to_string(),
                entries(&metrics.lower_bounds, |v| Value::Bytes(v.clone())),
            ),
            (
                "upper_bounds".to_string(),
                entries(&metrics.upper_bounds, |v| Value::Bytes(v.clone())),
            ),
            ("split_offsets".to_string(), optional(None)),
            ("sort_order_id".to_string(), optional(None)),
            (
                "referenced_data_file".to_string(),
                optional(file.referenced_data_file.clone().map(Value::String)),
            ),
        ];
        if v3 {
            // A new data file's first row id is inherited from its manifest's.
            data_file.push(("first_row_id".to_string(), optional(None)));
            let (offset, length) = file.vector.unzip();
            data_file.push((
                "content_offset".to_string(),
                optional(offset.map(Value::Long)),
            ));
            data_file.push((
                "content_size_in_bytes".to_string(),
                optional(length.map(Value::Long)),
            ));
        }
        let data_file = Value::Record(data_file);
        let entry = Value::Record(vec![
            ("status".to_string(), Value::Int(1)),
            (
                "snapshot_id".to_string(),
                optional(Some(Value::Long(snapshot_id))),
            ),
            ("sequence_number".to_string(), optional(None)),
            ("file_sequence_number".to_string(), optional(None)),
            ("data_file".to_string(), data_file),
        ]);
        writer.append_value(entry).map_err(avro_error(what))?;
    }
    writer.into_inner().map_err(avro_error(what))
}

/// The bytes of a manifest list of `manifests` for the snapshot `snapshot_id` (with sequence
/// number `sequence_number`, inherited by new manifests whose own is 0 here).
pub fn write_manifest_list(
    manifests: &[ManifestFile],
    snapshot_id: i64,
    parent_snapshot_id: Option<i64>,
    sequence_number: i64,
    format_version: u8,
) -> Result<Vec<u8>, IcebergError> {
    let what = "a manifest list";
    let v3 = format_version >= 3;
    let schema_text = match v3 {
        true => MANIFEST_FILE_SCHEMA.replacen(
            r#"  {"name": "partitions""#,
            &format!("  {FIRST_ROW_ID_FIELD},\n  {{\"name\": \"partitions\""),
            1,
        ),
        false => MANIFEST_FILE_SCHEMA.to_string(),
    };
    let schema = AvroSchema::parse_str(&schema_text).map_err(avro_error(what))?;
    let mut writer = Writer::with_codec(
        &schema,
        Vec::new(),
        Codec::Deflate(DeflateSettings::default()),
    )
    .map_err(avro_error(what))?;
    let mut header = vec![
        ("snapshot-id", snapshot_id.to_string()),
        ("sequence-number", sequence_number.to_string()),
        ("format-version", format_version.to_string()),
    ];
    if let Some(parent) = parent_snapshot_id {
        header.push(("parent-snapshot-id", parent.to_string()));
    }
    for (key, value) in header {
        writer
            .add_user_metadata(key.to_string(), value)
            .map_err(avro_error(what))?;
    }
    for manifest in manifests {
        let counts = &manifest.counts;
        let int = |v: Option<i64>| Value::Int(v.unwrap_or(0) as i32);
        let long = |v: Option<i64>| Value::Long(v.unwrap_or(0));
        let summaries = Value::Array(
            manifest
                .partitions
                .iter()
                .map(|summary| {
                    Value::Record(vec![
                        (
                            "contains_null".to_string(),
                            Value::Boolean(summary.contains_null),
                        ),
                        (
                            "contains_nan".to_string(),
                            optional(summary.contains_nan.map(Value::Boolean)),
                        ),
                        (
                            "lower_bound".to_string(),
                            optional(summary.lower_bound.clone().map(Value::Bytes)),
                        ),
                        (
                            "upper_bound".to_string(),
                            optional(summary.upper_bound.clone().map(Value::Bytes)),
                        ),
                    ])
                })
                .collect(),
        );
        let record = Value::Record(vec![
            (
                "manifest_path".to_string(),
                Value::String(manifest.path.clone()),
            ),
            ("manifest_length".to_string(), Value::Long(manifest.length)),
            (
                "partition_spec_id".to_string(),
                Value::Int(manifest.partition_spec_id),
            ),
            (
                "content".to_string(),
                Value::Int(match manifest.content {
                    ManifestContent::Data => 0,
                    ManifestContent::Deletes => 1,
                }),
            ),
            (
                "sequence_number".to_string(),
                Value::Long(manifest.sequence_number),
            ),
            (
                "min_sequence_number".to_string(),
                Value::Long(manifest.min_sequence_number),
            ),
            (
                "added_snapshot_id".to_string(),
                Value::Long(manifest.added_snapshot_id),
            ),
            ("added_files_count".to_string(), int(counts.added_files)),
            (
                "existing_files_count".to_string(),
                int(counts.existing_files),
            ),
            ("deleted_files_count".to_string(), int(counts.deleted_files)),
            ("added_rows_count".to_string(), long(counts.added_rows)),
            (
                "existing_rows_count".to_string(),
                long(counts.existing_rows),
            ),
            ("deleted_rows_count".to_string(), long(counts.deleted_rows)),
        ]);
        let Value::Record(mut fields) = record else {
            unreachable!("built as a record above");
        };
        if v3 {
            fields.push((
                "first_row_id".to_string(),
                optional(manifest.first_row_id.map(Value::Long)),
            ));
        }
        fields.push(("partitions".to_string(), optional(Some(summaries))));
        let record = Value::Record(fields);
        writer.append_value(record).map_err(avro_error(what))?;
    }
    writer.into_inner().map_err(avro_error(what))
}
