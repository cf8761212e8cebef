//! A manifest of the parent snapshot written again without some of its data files (spec:
//! "Manifests", entry status): what a commit that replaces files (copy-on-write, compaction)
//! does to the manifests that list them.
//!
//! The manifest is rewritten record by record at the Avro level, with the schema and header
//! it was written with, so every field a writer put there (column sizes, split offsets, key
//! metadata, fields Osprey does not model) survives as written. A removed file's entry
//! becomes `DELETED` by the new snapshot; the others become `EXISTING` with their snapshot id
//! and sequence numbers written out (an `EXISTING` entry inherits nothing); entries already
//! `DELETED` are dropped, as they only record the snapshot that removed them.

use super::commit::Written;
use super::manifests::mark_maps;
use crate::error::IcebergError;
use crate::manifest::{ManifestContent, ManifestCounts, ManifestFile};
use crate::scan::location::StoreLocation;
use apache_avro::types::Value;
use apache_avro::{Codec, DeflateSettings, Reader, Writer};
use std::collections::BTreeSet;

const EXISTING: i32 = 0;
const DELETED: i32 = 2;

/// What a rewrite removed.
pub(super) struct Removed {
    /// The new manifest's list entry.
    pub manifest: ManifestFile,
    /// The paths of the files it marks deleted.
    pub paths: Vec<String>,
    /// Their rows.
    pub rows: i64,
    /// Their bytes.
    pub bytes: i64,
}

/// The manifest `manifest` (whose bytes are `bytes`) without the files in `removed` (for a
/// delete manifest: without the delete files scoped to them), written
/// to `location` for the snapshot `snapshot_id` with sequence number `sequence_number`;
/// `None` when it lists none of them (it is kept as it is).
pub(super) async fn rewrite_without(
    manifest: &ManifestFile,
    bytes: &[u8],
    removed: &BTreeSet<String>,
    (snapshot_id, sequence_number): (i64, i64),
    (table, location): (&StoreLocation, String),
    written: &mut Written,
) -> Result<Option<Removed>, IcebergError> {
    let invalid =
        |err: apache_avro::Error| IcebergError::Invalid(format!("{}: {err}", manifest.path));
    let reader = Reader::new(bytes).map_err(invalid)?;
    let mut schema = reader.writer_schema().clone();
    let header = reader.user_metadata().clone();
    let mut records = Vec::new();
    let mut found = Vec::new();
    let (mut rows, mut size) = (0, 0);
    let mut counts = ManifestCounts {
        added_files: Some(0),
        existing_files: Some(0),
        deleted_files: Some(0),
        added_rows: Some(0),
        existing_rows: Some(0),
        deleted_rows: Some(0),
    };
    let mut min_sequence = sequence_number;
    for record in reader {
        let Value::Record(mut fields) = record.map_err(invalid)? else {
            return Err(IcebergError::Invalid(format!(
                "{}: an entry that is not a record",
                manifest.path
            )));
        };
        let status = match find(&fields, "status") {
            Some(Value::Int(status)) => *status,
            _ => {
                return Err(IcebergError::Invalid(format!(
                    "{}: no status",
                    manifest.path
                )));
            }
        };
        if status == DELETED {
            continue;
        }
        let data_file = find(&fields, "data_file");
        // A data file goes by its path; a file-scoped delete file with the data file it
        // deletes from (it would apply to nothing once that file is gone).
        let key = match manifest.content {
            ManifestContent::Data => "file_path",
            ManifestContent::Deletes => "referenced_data_file",
        };
        let path = data_file.and_then(|f| string_field(f, key));
        let record_count = data_file
            .and_then(|f| long_field(f, "record_count"))
            .unwrap_or(0);
        let file_size = data_file
            .and_then(|f| long_field(f, "file_size_in_bytes"))
            .unwrap_or(0);
        // What an ADDED entry inherits from its manifest is written out.
        let added_by =
            optional_long(find(&fields, "snapshot_id")).unwrap_or(manifest.added_snapshot_id);
        let data_sequence =
            optional_long(find(&fields, "sequence_number")).unwrap_or(manifest.sequence_number);
        let file_sequence = optional_long(find(&fields, "file_sequence_number"))
            .unwrap_or(manifest.sequence_number);
        let is_removed = path.as_ref().is_some_and(|p| removed.contains(p));
        let (status, entry_snapshot) = match is_removed {
            true => (DELETED, snapshot_id),
            false => (EXISTING, added_by),
        };
        set(&mut fields, "status", Value::Int(status));
        set(&mut fields, "snapshot_id", present(entry_snapshot));
        set(&mut fields, "sequence_number", present(data_sequence));
        set(&mut fields, "file_sequence_number", present(file_sequence));
        if is_removed {
            found.extend(path);
            rows += record_count;
            size += file_size;
            counts.deleted_files = counts.deleted_files.map(|n| n + 1);
            counts.deleted_rows = counts.deleted_rows.map(|n| n + record_count);
        } else {
            min_sequence = min_sequence.min(data_sequence);
            counts.existing_files = counts.existing_files.map(|n| n + 1);
            counts.existing_rows = counts.existing_rows.map(|n| n + record_count);
        }
        records.push(Value::Record(fields));
    }
    if found.is_empty() {
        return Ok(None);
    }
    // apache-avro's parser drops the `logicalType` of Iceberg's maps; readers need it.
    mark_maps(&mut schema);
    let mut writer = Writer::with_codec(
        &schema,
        Vec::new(),
        Codec::Deflate(DeflateSettings::default()),
    )
    .map_err(invalid)?;
    for (key, value) in header {
        writer.add_user_metadata(key, value).map_err(invalid)?;
    }
    for record in records {
        writer.append_value(record).map_err(invalid)?;
    }
    let bytes = writer.into_inner().map_err(invalid)?;
    let length = bytes.len() as i64;
    written.create(&table.path_of(&location)?, bytes).await?;
    Ok(Some(Removed {
        manifest: ManifestFile {
            path: location,
            length,
            partition_spec_id: manifest.partition_spec_id,
            content: manifest.content,
            sequence_number,
            min_sequence_number: min_sequence,
            added_snapshot_id: snapshot_id,
            counts,
            // The old summary still bounds what is left.
            partitions: manifest.partitions.clone(),
        },
        paths: found,
        rows,
        bytes: size,
    }))
}

fn find<'a>(fields: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn set(fields: &mut [(String, Value)], name: &str, value: Value) {
    if let Some((_, slot)) = fields.iter_mut().find(|(n, _)| n == name) {
        *slot = value;
    }
}

/// A `["null", "long"]` union holding `value`.
fn present(value: i64) -> Value {
    Value::Union(1, Box::new(Value::Long(value)))
}

fn optional_long(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Union(_, inner) => optional_long(Some(inner)),
        Value::Long(n) => Some(*n),
        Value::Int(n) => Some(i64::from(*n)),
        _ => None,
    }
}

fn long_field(record: &Value, name: &str) -> Option<i64> {
    match record {
        Value::Record(fields) => optional_long(find(fields, name)),
        _ => None,
    }
}

fn string_field(record: &Value, name: &str) -> Option<String> {
    let Value::Record(fields) = record else {
        return None;
    };
    match find(fields, name)? {
        Value::String(text) => Some(text.clone()),
        Value::Union(_, inner) => match inner.as_ref() {
            Value::String(text) => Some(text.clone()),
            _ => None,
        },
        _ => None,
    }
}
