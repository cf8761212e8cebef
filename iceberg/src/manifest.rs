//! Manifest lists and manifests (spec: "Manifests", "Manifest Lists"): the Avro files that
//! list a snapshot's data and delete files.
//!
//! Fields are read by name from Avro's generic values, so the v1, v2 and v3 layouts (and
//! writers that add optional fields) read through the same code. Sequence numbers left null by
//! a writer are inherited as the spec says: a manifest from its manifest list entry, an added
//! file from its manifest.

use crate::avro_fields::{field_or_null, unwrap_union};
use crate::error::IcebergError;
pub use crate::manifest_metrics::{FieldSummary, FileMetrics};
use crate::manifest_metrics::{field_summaries, file_metrics};
use apache_avro::types::Value;

/// One manifest of a snapshot, as its manifest list describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Where the manifest is.
    pub path: String,
    /// Its size in bytes.
    pub length: i64,
    /// The partition spec its files were written with.
    pub partition_spec_id: i32,
    /// Whether it lists data files or delete files.
    pub content: ManifestContent,
    /// The sequence number of the commit that added it (0 in v1).
    pub sequence_number: i64,
    /// The lowest data sequence number of its live files.
    pub min_sequence_number: i64,
    /// The snapshot that added it.
    pub added_snapshot_id: i64,
    /// Files and rows it adds, keeps and removes, when the writer counted them.
    pub counts: ManifestCounts,
    /// The range of each partition field over its files, in the order of its spec.
    pub partitions: Vec<FieldSummary>,
    /// Format 3: the row id of the first row of its first data file that has none of its own
    /// (row lineage); `None` before a commit assigns it.
    pub first_row_id: Option<i64>,
}

/// The file and row counts of a manifest list entry (each optional in v1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ManifestCounts {
    /// Files added by the manifest's snapshot.
    pub added_files: Option<i64>,
    /// Files kept from earlier snapshots.
    pub existing_files: Option<i64>,
    /// Files removed by the manifest's snapshot.
    pub deleted_files: Option<i64>,
    /// Rows in the added files.
    pub added_rows: Option<i64>,
    /// Rows in the existing files.
    pub existing_rows: Option<i64>,
    /// Rows in the removed files.
    pub deleted_rows: Option<i64>,
}

/// What a manifest lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestContent {
    /// Data files.
    Data,
    /// Delete files (v2 and later).
    Deletes,
}

/// A manifest entry's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStatus {
    /// Carried over from an earlier snapshot.
    Existing,
    /// Added by the manifest's snapshot.
    Added,
    /// Removed by the manifest's snapshot: not part of the table any more.
    Deleted,
}

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileContent {
    /// Rows.
    Data,
    /// Positions of deleted rows (file path and row position), or a deletion vector (v3).
    PositionDeletes,
    /// Values of the equality fields of deleted rows.
    EqualityDeletes,
}

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Existing, added or deleted.
    pub status: EntryStatus,
    /// The snapshot that added or removed the file.
    pub snapshot_id: Option<i64>,
    /// The data sequence number of the file (inherited when the writer left it null).
    pub sequence_number: i64,
    /// The file.
    pub file: DataFile,
}

/// A data or delete file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Data, position deletes or equality deletes.
    pub content: FileContent,
    /// Where the file is.
    pub file_path: String,
    /// `PARQUET`, `AVRO`, `ORC` or `PUFFIN`.
    pub file_format: String,
    /// Rows in the file.
    pub record_count: i64,
    /// Size in bytes.
    pub file_size_in_bytes: i64,
    /// For equality deletes: the fields compared.
    pub equality_ids: Vec<i32>,
    /// For a deletion vector (v3): the data file it applies to.
    pub referenced_data_file: Option<String>,
    /// For a deletion vector: where its blob starts in the Puffin file.
    pub content_offset: Option<i64>,
    /// For a deletion vector: its blob's length.
    pub content_size_in_bytes: Option<i64>,
    /// The file's partition tuple, rendered so that equal tuples render equally (empty for
    /// unpartitioned files): deletes apply within their partition.
    pub partition_key: String,
    /// Its partition values and column metrics, for pruning.
    pub metrics: FileMetrics,
    /// Format 3, data files: the row id of its first row (row lineage), its own or inherited
    /// from the manifest (see [`read_manifest`]); `None` before a commit assigns row ids.
    pub first_row_id: Option<i64>,
}

/// Reads a manifest list.
pub fn read_manifest_list(bytes: &[u8]) -> Result<Vec<ManifestFile>, IcebergError> {
    records(bytes, "manifest list")?
        .iter()
        .map(|record| {
            let content = match optional_int(record, "content")?.unwrap_or(0) {
                0 => ManifestContent::Data,
                1 => ManifestContent::Deletes,
                other => {
                    return Err(IcebergError::Invalid(format!(
                        "manifest content {other} (0: data, 1: deletes)"
                    )));
                }
            };
            let sequence_number = optional_long(record, "sequence_number")?.unwrap_or(0);
            Ok(ManifestFile {
                path: string(record, "manifest_path")?,
                length: long(record, "manifest_length")?,
                partition_spec_id: int(record, "partition_spec_id")?,
                content,
                sequence_number,
                min_sequence_number: optional_long(record, "min_sequence_number")?
                    .unwrap_or(sequence_number),
                added_snapshot_id: long(record, "added_snapshot_id")?,
                counts: ManifestCounts {
                    added_files: optional_long(record, "added_files_count")?
                        .or(optional_long(record, "added_data_files_count")?),
                    existing_files: optional_long(record, "existing_files_count")?
                        .or(optional_long(record, "existing_data_files_count")?),
                    deleted_files: optional_long(record, "deleted_files_count")?
                        .or(optional_long(record, "deleted_data_files_count")?),
                    added_rows: optional_long(record, "added_rows_count")?,
                    existing_rows: optional_long(record, "existing_rows_count")?,
                    deleted_rows: optional_long(record, "deleted_rows_count")?,
                },
                partitions: field_summaries(record),
                first_row_id: optional_long(record, "first_row_id")?,
            })
        })
        .collect()
}

/// Reads the entries of `manifest` from its bytes.
///
/// A live data file with no `first_row_id` of its own inherits one (spec: "Row Lineage"): its
/// manifest's, plus the rows of the live data files before it in the manifest that inherit
/// too. Removed entries take no ids: a manifest's range counts only its added and existing
/// rows.
pub fn read_manifest(
    bytes: &[u8],
    manifest: &ManifestFile,
) -> Result<Vec<ManifestEntry>, IcebergError> {
    let mut next_row_id = match manifest.content {
        ManifestContent::Data => manifest.first_row_id,
        ManifestContent::Deletes => None,
    };
    records(bytes, &manifest.path)?
        .iter()
        .map(|record| {
            let status = match int(record, "status")? {
                0 => EntryStatus::Existing,
                1 => EntryStatus::Added,
                2 => EntryStatus::Deleted,
                other => {
                    return Err(IcebergError::Invalid(format!(
                        "manifest entry status {other} in {}",
                        manifest.path
                    )));
                }
            };
            let file = field(record, "data_file")?;
            let content = match optional_int(file, "content")?.unwrap_or(0) {
                0 => FileContent::Data,
                1 => FileContent::PositionDeletes,
                2 => FileContent::EqualityDeletes,
                other => {
                    return Err(IcebergError::Invalid(format!(
                        "file content {other} in {}",
                        manifest.path
                    )));
                }
            };
            // An added file's null sequence number is its manifest's; others keep theirs.
            let sequence_number = match optional_long(record, "sequence_number")? {
                Some(number) => number,
                None if status == EntryStatus::Added || manifest.sequence_number == 0 => {
                    manifest.sequence_number
                }
                None => {
                    return Err(IcebergError::Invalid(format!(
                        "an existing entry without a sequence number in {}",
                        manifest.path
                    )));
                }
            };
            let equality_ids = match unwrap_union(field_or_null(file, "equality_ids")) {
                Value::Array(ids) => ids
                    .iter()
                    .map(|id| match unwrap_union(id) {
                        Value::Int(id) => Ok(*id),
                        // pyiceberg writes the ids as longs.
                        Value::Long(id) => i32::try_from(*id).map_err(|_| {
                            IcebergError::Invalid(format!(
                                "equality field id {id} in {}",
                                manifest.path
                            ))
                        }),
                        other => Err(IcebergError::Invalid(format!(
                            "equality field id {other:?} in {}",
                            manifest.path
                        ))),
                    })
                    .collect::<Result<Vec<i32>, _>>()?,
                _ => Vec::new(),
            };
            // With no columns to compare, an equality delete would delete every row.
            if content == FileContent::EqualityDeletes && equality_ids.is_empty() {
                return Err(IcebergError::Invalid(format!(
                    "an equality delete file without equality field ids in {}",
                    manifest.path
                )));
            }
            let record_count = long(file, "record_count")?;
            let first_row_id = match (optional_long(file, "first_row_id")?, &mut next_row_id) {
                (Some(own), _) => Some(own),
                (None, Some(next))
                    if content == FileContent::Data && status != EntryStatus::Deleted =>
                {
                    let inherited = *next;
                    *next += record_count.max(0);
                    Some(inherited)
                }
                (None, _) => None,
            };
            Ok(ManifestEntry {
                status,
                snapshot_id: optional_long(record, "snapshot_id")?,
                sequence_number,
                file: DataFile {
                    content,
                    file_path: string(file, "file_path")?,
                    file_format: string(file, "file_format")?.to_ascii_uppercase(),
                    record_count,
                    file_size_in_bytes: long(file, "file_size_in_bytes")?,
                    equality_ids,
                    referenced_data_file: optional_string(file, "referenced_data_file")?,
                    content_offset: optional_long(file, "content_offset")?,
                    content_size_in_bytes: optional_long(file, "content_size_in_bytes")?,
                    partition_key: partition_key(field_or_null(file, "partition")),
                    metrics: file_metrics(file),
                    first_row_id,
                },
            })
        })
        .collect()
}

/// A partition tuple as a string: its values in order, so that tuples written by different
/// writers under one spec compare equal (field names may differ; positions do not).
fn partition_key(partition: &Value) -> String {
    match unwrap_union(partition) {
        Value::Record(fields) => fields
            .iter()
            .map(|(_, value)| format!("{:?}", unwrap_union(value)))
            .collect::<Vec<_>>()
            .join("\u{1f}"),
        _ => String::new(),
    }
}

/// The records of an Avro object container file.
fn records(bytes: &[u8], what: &str) -> Result<Vec<Value>, IcebergError> {
    let invalid = |err: apache_avro::Error| IcebergError::Invalid(format!("{what}: {err}"));
    let reader = apache_avro::Reader::new(bytes).map_err(invalid)?;
    reader.map(|record| record.map_err(invalid)).collect()
}

fn field<'a>(record: &'a Value, name: &str) -> Result<&'a Value, IcebergError> {
    match unwrap_union(field_or_null(record, name)) {
        Value::Null => Err(IcebergError::Invalid(format!("no {name}"))),
        value => Ok(value),
    }
}

fn optional_long(record: &Value, name: &str) -> Result<Option<i64>, IcebergError> {
    match unwrap_union(field_or_null(record, name)) {
        Value::Null => Ok(None),
        Value::Long(n) => Ok(Some(*n)),
        Value::Int(n) => Ok(Some(i64::from(*n))),
        other => Err(IcebergError::Invalid(format!("{name} is {other:?}"))),
    }
}

fn long(record: &Value, name: &str) -> Result<i64, IcebergError> {
    optional_long(record, name)?.ok_or_else(|| IcebergError::Invalid(format!("no {name}")))
}

fn optional_int(record: &Value, name: &str) -> Result<Option<i32>, IcebergError> {
    optional_long(record, name)?
        .map(|n| i32::try_from(n).map_err(|_| IcebergError::Invalid(format!("{name} is {n}"))))
        .transpose()
}

fn int(record: &Value, name: &str) -> Result<i32, IcebergError> {
    optional_int(record, name)?.ok_or_else(|| IcebergError::Invalid(format!("no {name}")))
}

fn optional_string(record: &Value, name: &str) -> Result<Option<String>, IcebergError> {
    match unwrap_union(field_or_null(record, name)) {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        other => Err(IcebergError::Invalid(format!("{name} is {other:?}"))),
    }
}

fn string(record: &Value, name: &str) -> Result<String, IcebergError> {
    optional_string(record, name)?.ok_or_else(|| IcebergError::Invalid(format!("no {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{MANIFEST_LIST_SCHEMA, MANIFEST_SCHEMA, avro, record};

    #[test]
    fn manifest_lists_and_manifests_read_with_inherited_sequence_numbers() {
        let list = avro(
            MANIFEST_LIST_SCHEMA,
            vec![record(vec![
                ("manifest_path", Value::String("/t/metadata/m1.avro".into())),
                ("manifest_length", Value::Long(4096)),
                ("partition_spec_id", Value::Int(0)),
                ("content", Value::Int(0)),
                ("sequence_number", Value::Long(7)),
                ("min_sequence_number", Value::Long(3)),
                ("added_snapshot_id", Value::Long(42)),
                ("added_files_count", Value::Int(1)),
            ])],
        );
        let manifests = read_manifest_list(&list).unwrap();
        assert_eq!(manifests.len(), 1);
        assert_eq!(manifests[0].path, "/t/metadata/m1.avro");
        assert_eq!(manifests[0].min_sequence_number, 3);
        let file = |path: &str, content: i32| {
            record(vec![
                ("content", Value::Int(content)),
                ("file_path", Value::String(path.into())),
                ("file_format", Value::String("parquet".into())),
                ("record_count", Value::Long(10)),
                ("file_size_in_bytes", Value::Long(1000)),
                (
                    "equality_ids",
                    if content == 2 {
                        Value::Union(1, Box::new(Value::Array(vec![Value::Int(1)])))
                    } else {
                        Value::Union(0, Box::new(Value::Null))
                    },
                ),
            ])
        };
        let entries = avro(
            MANIFEST_SCHEMA,
            vec![
                record(vec![
                    ("status", Value::Int(1)),
                    ("snapshot_id", Value::Union(1, Box::new(Value::Long(42)))),
                    ("sequence_number", Value::Union(0, Box::new(Value::Null))),
                    ("data_file", file("/t/data/a.parquet", 0)),
                ]),
                record(vec![
                    ("status", Value::Int(0)),
                    ("snapshot_id", Value::Union(1, Box::new(Value::Long(40)))),
                    ("sequence_number", Value::Union(1, Box::new(Value::Long(3)))),
                    ("data_file", file("/t/data/eq.parquet", 2)),
                ]),
            ],
        );
        let read = read_manifest(&entries, &manifests[0]).unwrap();
        assert_eq!(read[0].status, EntryStatus::Added);
        assert_eq!(read[0].sequence_number, 7, "inherited from the manifest");
        assert_eq!(read[0].file.file_format, "PARQUET");
        assert_eq!(read[1].sequence_number, 3);
        assert_eq!(read[1].file.content, FileContent::EqualityDeletes);
        assert_eq!(read[1].file.equality_ids, vec![1]);
    }

    #[test]
    fn corrupt_manifests_are_errors_naming_the_file() {
        let manifest = ManifestFile {
            path: "/t/metadata/broken.avro".into(),
            length: 3,
            partition_spec_id: 0,
            content: ManifestContent::Data,
            sequence_number: 1,
            min_sequence_number: 1,
            added_snapshot_id: 1,
            counts: ManifestCounts::default(),
            partitions: Vec::new(),
            first_row_id: None,
        };
        let err = read_manifest(b"not avro", &manifest).unwrap_err();
        assert!(err.to_string().contains("/t/metadata/broken.avro"), "{err}");
    }
}
