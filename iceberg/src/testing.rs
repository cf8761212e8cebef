//! Avro fixtures for the unit tests: manifest lists and manifests written with the spec's
//! field names (the fields the readers use; real writers add more).

use apache_avro::types::Value;
use apache_avro::{Codec, Schema as AvroSchema, Writer};

/// The v2 `manifest_file` fields the reader uses (writers add more; they are skipped).
pub(crate) const MANIFEST_LIST_SCHEMA: &str = r#"{"type": "record", "name": "manifest_file", "fields": [
    {"name": "manifest_path", "type": "string", "field-id": 500},
    {"name": "manifest_length", "type": "long", "field-id": 501},
    {"name": "partition_spec_id", "type": "int", "field-id": 502},
    {"name": "content", "type": "int", "field-id": 517},
    {"name": "sequence_number", "type": "long", "field-id": 515},
    {"name": "min_sequence_number", "type": "long", "field-id": 516},
    {"name": "added_snapshot_id", "type": "long", "field-id": 503},
    {"name": "added_files_count", "type": "int", "field-id": 504}
]}"#;

/// The v2 `manifest_entry` fields the reader uses.
pub(crate) const MANIFEST_SCHEMA: &str = r#"{"type": "record", "name": "manifest_entry", "fields": [
    {"name": "status", "type": "int", "field-id": 0},
    {"name": "snapshot_id", "type": ["null", "long"], "field-id": 1},
    {"name": "sequence_number", "type": ["null", "long"], "field-id": 3},
    {"name": "data_file", "field-id": 2, "type": {"type": "record", "name": "r2", "fields": [
        {"name": "content", "type": "int", "field-id": 134},
        {"name": "file_path", "type": "string", "field-id": 100},
        {"name": "file_format", "type": "string", "field-id": 101},
        {"name": "record_count", "type": "long", "field-id": 103},
        {"name": "file_size_in_bytes", "type": "long", "field-id": 104},
        {"name": "equality_ids", "type": ["null", {"type": "array", "items": "int"}],
         "field-id": 135}
    ]}}
]}"#;

pub(crate) fn avro(schema: &str, records: Vec<Value>) -> Vec<u8> {
    let schema = AvroSchema::parse_str(schema).unwrap();
    let mut writer =
        Writer::with_codec(&schema, Vec::new(), Codec::Deflate(Default::default())).unwrap();
    for record in records {
        writer.append_value(record).unwrap();
    }
    writer.into_inner().unwrap()
}

pub(crate) fn record(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}
