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
//!
//! Format 3: a data file whose first row id its manifest assigned by inheritance gets it
//! written out (spec: "Row Lineage", an `EXISTING` file copies its `first_row_id`), so its rows
//! keep their ids in the new manifest whatever else the manifest lists. A manifest of the
//! table's format 2 days has no field to write it in: rewriting one that the table's format 3
//! snapshots gave ids is refused by name.

use super::manifests::mark_maps;
use super::storage::Written;
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

/// The entries of one or more manifests, restated for a new manifest of the snapshot
/// `snapshot_id`.
struct Restated {
    schema: apache_avro::Schema,
    header: std::collections::HashMap<String, Vec<u8>>,
    records: Vec<Value>,
    counts: ManifestCounts,
    min_sequence: i64,
    removed: Vec<String>,
    removed_rows: i64,
    removed_bytes: i64,
}

impl Restated {
    /// Nothing yet, for a manifest of the snapshot with sequence number `sequence_number`.
    fn new(
        manifest: &ManifestFile,
        bytes: &[u8],
        sequence_number: i64,
    ) -> Result<Self, IcebergError> {
        let reader = Reader::new(bytes).map_err(invalid(manifest))?;
        Ok(Self {
            schema: reader.writer_schema().clone(),
            header: reader.user_metadata().clone(),
            records: Vec::new(),
            counts: ManifestCounts {
                added_files: Some(0),
                existing_files: Some(0),
                deleted_files: Some(0),
                added_rows: Some(0),
                existing_rows: Some(0),
                deleted_rows: Some(0),
            },
            min_sequence: sequence_number,
            removed: Vec::new(),
            removed_rows: 0,
            removed_bytes: 0,
        })
    }

    /// Adds the entries of `manifest` (its bytes `bytes`): those in `removed` as deleted by
    /// `snapshot_id`, the others as existing.
    fn add(
        &mut self,
        manifest: &ManifestFile,
        bytes: &[u8],
        removed: &BTreeSet<String>,
        snapshot_id: i64,
    ) -> Result<(), IcebergError> {
        // A data file goes by its path; a file-scoped delete file with the data file it
        // deletes from (it would apply to nothing once that file is gone).
        let key = match manifest.content {
            ManifestContent::Data => "file_path",
            ManifestContent::Deletes => "referenced_data_file",
        };
        // The next first row id the manifest assigns by inheritance: data files without one,
        // in order, each taking as many ids as it has rows (entries already deleted take none).
        let mut next_row_id = match manifest.content {
            ManifestContent::Data => manifest.first_row_id,
            ManifestContent::Deletes => None,
        };
        for record in Reader::new(bytes).map_err(invalid(manifest))? {
            let Value::Record(mut fields) = record.map_err(invalid(manifest))? else {
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
            let inherited = match (
                &mut next_row_id,
                data_file.and_then(|f| long_field(f, "first_row_id")),
            ) {
                (Some(next), None) => {
                    let assigned = *next;
                    *next += record_count;
                    Some(assigned)
                }
                _ => None,
            };
            if let Some(first_row_id) = inherited
                && !set_in_data_file(&mut fields, "first_row_id", present(first_row_id))
            {
                return Err(IcebergError::Unsupported(format!(
                    "rewriting {}, a manifest written before the table became format 3 whose \
                     files have row ids by inheritance (its format has no field to keep them \
                     in)",
                    manifest.path
                )));
            }
            let is_removed = path.as_ref().is_some_and(|p| removed.contains(p));
            let (status, entry_snapshot) = match is_removed {
                true => (DELETED, snapshot_id),
                false => (EXISTING, added_by),
            };
            set(&mut fields, "status", Value::Int(status));
            set(&mut fields, "snapshot_id", present(entry_snapshot));
            set(&mut fields, "sequence_number", present(data_sequence));
            set(&mut fields, "file_sequence_number", present(file_sequence));
            let counts = &mut self.counts;
            if is_removed {
                self.removed.extend(path);
                self.removed_rows += record_count;
                self.removed_bytes += file_size;
                counts.deleted_files = counts.deleted_files.map(|n| n + 1);
                counts.deleted_rows = counts.deleted_rows.map(|n| n + record_count);
            } else {
                self.min_sequence = self.min_sequence.min(data_sequence);
                counts.existing_files = counts.existing_files.map(|n| n + 1);
                counts.existing_rows = counts.existing_rows.map(|n| n + record_count);
            }
            self.records.push(Value::Record(fields));
        }
        Ok(())
    }

    /// Writes the entries as one manifest at `location`, like `like` (spec, content) but
    /// summarised by `partitions`; answers its list entry.
    async fn write(
        mut self,
        like: &ManifestFile,
        partitions: Vec<crate::manifest::FieldSummary>,
        (snapshot_id, sequence_number): (i64, i64),
        (table, location): (&StoreLocation, String),
        written: &mut Written,
    ) -> Result<ManifestFile, IcebergError> {
        // apache-avro's parser drops the `logicalType` of Iceberg's maps; readers need it.
        mark_maps(&mut self.schema);
        let mut writer = Writer::with_codec(
            &self.schema,
            Vec::new(),
            Codec::Deflate(DeflateSettings::default()),
        )
        .map_err(invalid(like))?;
        for (key, value) in self.header {
            writer
                .add_user_metadata(key, value)
                .map_err(invalid(like))?;
        }
        for record in self.records {
            writer.append_value(record).map_err(invalid(like))?;
        }
        let bytes = writer.into_inner().map_err(invalid(like))?;
        let length = bytes.len() as i64;
        written.create(&table.path_of(&location)?, bytes).await?;
        Ok(ManifestFile {
            path: location,
            length,
            partition_spec_id: like.partition_spec_id,
            content: like.content,
            sequence_number,
            min_sequence_number: self.min_sequence,
            added_snapshot_id: snapshot_id,
            counts: self.counts,
            partitions,
            // Every data file that had a first row id has it written out (see the module
            // docs): the one the manifest had assigns nothing more, and files without one
            // (manifests from before a format 3 upgrade) get theirs at the commit.
            first_row_id: like.first_row_id,
        })
    }
}

fn invalid(manifest: &ManifestFile) -> impl Fn(apache_avro::Error) -> IcebergError + '_ {
    move |err| IcebergError::Invalid(format!("{}: {err}", manifest.path))
}

/// The manifest `manifest` (whose bytes are `bytes`) without the files in `removed` (for a
/// delete manifest: without the delete files scoped to them), written to `location` for the
/// snapshot `snapshot_id` with sequence number `sequence_number`; `None` when it lists none
/// of them (it is kept as it is).
pub(super) async fn rewrite_without(
    manifest: &ManifestFile,
    bytes: &[u8],
    removed: &BTreeSet<String>,
    snapshot: (i64, i64),
    target: (&StoreLocation, String),
    written: &mut Written,
) -> Result<Option<Removed>, IcebergError> {
    let mut restated = Restated::new(manifest, bytes, snapshot.1)?;
    restated.add(manifest, bytes, removed, snapshot.0)?;
    if restated.removed.is_empty() {
        return Ok(None);
    }
    let (paths, rows, bytes) = (
        std::mem::take(&mut restated.removed),
        restated.removed_rows,
        restated.removed_bytes,
    );
    // The old summary still bounds what is left.
    let partitions = manifest.partitions.clone();
    let manifest = restated
        .write(manifest, partitions, snapshot, target, written)
        .await?;
    Ok(Some(Removed {
        manifest,
        paths,
        rows,
        bytes,
    }))
}

/// The manifests `manifests` (with their bytes; one spec, one content, written with one Avro
/// schema) as one manifest at `location` for the snapshot `snapshot`, summarised by
/// `partitions`.
pub(super) async fn merge(
    manifests: &[(ManifestFile, Vec<u8>)],
    partitions: Vec<crate::manifest::FieldSummary>,
    snapshot: (i64, i64),
    target: (&StoreLocation, String),
    written: &mut Written,
) -> Result<ManifestFile, IcebergError> {
    let Some((first, first_bytes)) = manifests.first() else {
        return Err(IcebergError::Invalid("no manifest to merge".to_string()));
    };
    let mut restated = Restated::new(first, first_bytes, snapshot.1)?;
    for (manifest, bytes) in manifests {
        restated.add(manifest, bytes, &BTreeSet::new(), snapshot.0)?;
    }
    restated
        .write(first, partitions, snapshot, target, written)
        .await
}

/// The Avro schema a manifest was written with, in canonical form: manifests merge only with
/// manifests of the same schema.
pub(super) fn schema_of(manifest: &ManifestFile, bytes: &[u8]) -> Result<String, IcebergError> {
    Ok(Reader::new(bytes)
        .map_err(invalid(manifest))?
        .writer_schema()
        .canonical_form())
}

/// What merging manifests did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Merged {
    /// Manifests merged into others.
    pub rewritten: u64,
    /// Manifests written for them.
    pub added: u64,
}

/// `listed` with the manifests of each spec and content (written with one Avro schema) merged
/// into one, for the snapshot `snapshot` of the table `metadata`; the new manifests are named
/// `<prefix>-<n>.avro`. A group whose partition summaries do not merge is kept as it is.
pub(super) async fn merge_all(
    listed: Vec<ManifestFile>,
    metadata: &crate::metadata::TableMetadata,
    store: &dyn object_store::ObjectStore,
    snapshot: (i64, i64),
    (table, prefix): (&StoreLocation, &str),
    written: &mut Written,
) -> Result<(Vec<ManifestFile>, Merged), IcebergError> {
    type Group = Vec<(ManifestFile, Vec<u8>)>;
    let mut groups: std::collections::BTreeMap<(bool, i32, String), Group> = Default::default();
    for manifest in listed {
        let bytes = super::storage::read(store, &table.path_of(&manifest.path)?).await?;
        let key = (
            manifest.content == ManifestContent::Deletes,
            manifest.partition_spec_id,
            schema_of(&manifest, &bytes)?,
        );
        groups.entry(key).or_default().push((manifest, bytes));
    }
    let mut out = Vec::new();
    let mut merged = Merged::default();
    for ((_, spec_id, _), members) in groups {
        let summaries: Vec<&[crate::manifest::FieldSummary]> = members
            .iter()
            .map(|(m, _)| m.partitions.as_slice())
            .collect();
        let partitions = super::partitioning::spec_fields(metadata, spec_id)
            .ok()
            .and_then(|fields| super::partition_values::merge_summaries(&fields, &summaries));
        match partitions {
            Some(partitions) if members.len() > 1 => {
                let location = format!("{prefix}-{}.avro", merged.added);
                out.push(merge(&members, partitions, snapshot, (table, location), written).await?);
                merged.rewritten += members.len() as u64;
                merged.added += 1;
            }
            _ => out.extend(members.into_iter().map(|(manifest, _)| manifest)),
        }
    }
    Ok((out, merged))
}

fn find<'a>(fields: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// Sets the field `name` of the entry's `data_file` record; `false` when the record has no such
/// field (a manifest written with an older format's schema).
fn set_in_data_file(fields: &mut [(String, Value)], name: &str, value: Value) -> bool {
    let Some((_, Value::Record(data_file))) = fields.iter_mut().find(|(n, _)| n == "data_file")
    else {
        return false;
    };
    match data_file.iter_mut().find(|(n, _)| n == name) {
        Some((_, slot)) => {
            *slot = value;
            true
        }
        None => false,
    }
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
