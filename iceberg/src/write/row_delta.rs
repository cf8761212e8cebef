//! Row-level changes, merge-on-read (spec: "Position Delete Files"): `DELETE` and `UPDATE`.
//! Osprey's executors write, for each data file with rows to change, one Parquet file of
//! `file_path` and `pos` (sorted by position); here each becomes a file-scoped position delete
//! file (`referenced_data_file`) in the data file's partition. An UPDATE also writes the
//! changed rows as new data files. All are committed as one snapshot (`delete`, or
//! `overwrite` when rows are added) on top of the snapshot the statement read.
//!
//! Copy-on-write changes instead rewrite each data file with changed rows: its kept rows
//! (and the changed rows' new values) are new data files, and the old file leaves the table
//! in the same snapshot ([`RowDelta::removed`]).

use super::commit::{self, Change, ManifestGroup};
use super::manifests::AddedFile;
use super::metadata_commit::load;
use super::metrics::parquet_metrics;
use super::partition_values::partition_type;
use super::partitioning::spec_fields;
use super::snapshot::AppendSummary;
use super::vectors::write_vectors;
use super::{AppendOutcome, NewDataFile, WriteMode, check_writable, data_group};
use crate::catalog::IcebergCatalog;
use crate::error::IcebergError;
use crate::plan::{LiveFile, snapshot_files};
use crate::prune::decode;
use crate::scan::location::StoreLocation;
use crate::schema::{FIELD_ID_KEY, Schema};
use datafusion::arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
use datafusion::common::ScalarValue;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The reserved field id of a position delete file's `file_path`.
const FILE_PATH_ID: i32 = 2147483546;
/// The reserved field id of a position delete file's `pos`.
const POS_ID: i32 = 2147483545;

/// The Arrow schema of position delete files, with the spec's reserved field ids.
pub fn position_delete_schema() -> ArrowSchema {
    let field = |name: &str, data_type: DataType, id: i32| {
        Field::new(name, data_type, false)
            .with_metadata(HashMap::from([(FIELD_ID_KEY.to_string(), id.to_string())]))
    };
    ArrowSchema::new(vec![
        field("file_path", DataType::Utf8, FILE_PATH_ID),
        field("pos", DataType::Int64, POS_ID),
    ])
}

/// The same schema as Iceberg's, for the delete files' metrics.
fn iceberg_schema() -> Result<Schema, IcebergError> {
    Schema::from_json(
        &serde_json::json!({"type": "struct", "schema-id": 0, "fields": [
            {"id": FILE_PATH_ID, "name": "file_path", "required": true, "type": "string"},
            {"id": POS_ID, "name": "pos", "required": true, "type": "long"},
        ]}),
    )
}

/// A position delete file a write produced: every position in it is in `data_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionDeleteFile {
    /// Its full location, under the table's location.
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
    /// The data file its positions are in, as the metadata names it.
    pub data_file: String,
}

/// A row-level change of one statement.
#[derive(Debug, Clone, PartialEq)]
pub struct RowDelta {
    /// The snapshot the statement read, whose data files the positions are in (`None`: the
    /// table had none, so nothing is deleted).
    pub base: Option<i64>,
    /// The rows deleted (by a DELETE, or replaced by an UPDATE).
    pub deletes: Vec<PositionDeleteFile>,
    /// The rows added (an UPDATE's new rows), written with the default spec `data_spec_id`.
    pub data: Vec<NewDataFile>,
    /// The partition spec the data files were written with.
    pub data_spec_id: i32,
    /// Data files of `base` the change rewrote (copy-on-write): their kept rows are among
    /// `data`, and they leave the table.
    pub removed: Vec<String>,
    /// The branch the change is committed to (`main` unless the statement named one); `base`
    /// was its head.
    pub branch: String,
    /// The table property that sets the change's isolation level
    /// (`write.delete.isolation-level`, `write.update.isolation-level`): `serializable` (the
    /// default) or `snapshot`.
    pub isolation_property: &'static str,
}

/// Commits `delta` to `namespace.name` of `catalog` as one snapshot; `store` is the table's
/// object store.
pub async fn commit_row_delta(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: Arc<dyn ObjectStore>,
    delta: RowDelta,
) -> Result<AppendOutcome, IcebergError> {
    let current = load(catalog, namespace, name, store.as_ref()).await?;
    check_writable(&current.metadata)?;
    let metadata = &current.metadata;
    let base = delta.base;
    let live = match base {
        Some(base) => {
            let snapshot = metadata.snapshot(base).ok_or_else(|| {
                IcebergError::CommitConflict(format!(
                    "{namespace}.{name}: the snapshot {base} the statement read was expired \
                     meanwhile; run the statement again"
                ))
            })?;
            let table = StoreLocation::parse(&metadata.location)?;
            snapshot_files(store.as_ref(), snapshot, |file| table.path_of(file)).await?
        }
        None => Default::default(),
    };
    let table = StoreLocation::parse(&metadata.location)?;
    let data_files: HashMap<&str, &LiveFile> = live
        .data
        .iter()
        .map(|file| (file.file.file_path.as_str(), file))
        .collect();
    let schema = iceberg_schema()?;
    let mut groups: BTreeMap<i32, ManifestGroup> = BTreeMap::new();
    let mut summary = AppendSummary::default();
    // Format 3 takes deletion vectors: the executors' position files become one Puffin file
    // (merged with each data file's earlier deletes), and are deleted once committed.
    let mut vectors = None;
    let mut delete_files: Vec<(AddedFile, String)> = Vec::with_capacity(delta.deletes.len());
    if metadata.format_version >= 3 && !delta.deletes.is_empty() {
        let positions: Vec<(String, String, u64)> = delta
            .deletes
            .iter()
            .map(|file| (file.location.clone(), file.data_file.clone(), file.size))
            .collect();
        let written = write_vectors(&store, &table, &metadata.location, &positions, &live).await?;
        delete_files.append(&mut written.files.clone());
        vectors = Some((written, positions));
    } else {
        for file in delta.deletes {
            let path = table.path_of(&file.location)?;
            let metrics = parquet_metrics(Arc::clone(&store), &path, file.size, &schema).await?;
            let added = AddedFile {
                location: file.location,
                size: file.size as i64,
                metrics,
                partition: Vec::new(),
                referenced_data_file: Some(file.data_file.clone()),
                vector: None,
            };
            delete_files.push((added, file.data_file));
        }
    }
    for (mut file, data_file) in delete_files {
        let Some(data) = data_files.get(data_file.as_str()) else {
            return Err(IcebergError::Invalid(format!(
                "a position delete file names {data_file}, which is not a data file of \
                 snapshot {base:?}"
            )));
        };
        let group = match groups.entry(data.partition_spec_id) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => entry.insert(ManifestGroup {
                deletes: true,
                spec_id: data.partition_spec_id,
                spec: spec_fields(metadata, data.partition_spec_id)?,
                files: Vec::new(),
            }),
        };
        file.partition = partition_of(data, group)?;
        summary.added_delete_files += 1;
        summary.added_position_deletes += file.metrics.record_count;
        // A Puffin file's bytes count once, however many vectors it holds.
        if file.vector.is_none_or(|(offset, _)| offset == 4) {
            summary.added_delete_size += file.size;
        }
        group.files.push(file);
    }
    for path in &delta.removed {
        if !data_files.contains_key(path.as_str()) {
            return Err(IcebergError::Invalid(format!(
                "a rewrite removes {path}, which is not a data file of snapshot {base:?}"
            )));
        }
    }
    let serializable = metadata
        .properties
        .get(delta.isolation_property)
        .is_none_or(|level| !level.eq_ignore_ascii_case("snapshot"));
    let mut groups: Vec<ManifestGroup> = groups.into_values().collect();
    if !delta.data.is_empty() {
        let data = data_group(&store, metadata, delta.data, delta.data_spec_id).await?;
        summary.add_data(&data.files);
        groups.push(data);
    }
    let change = Change {
        groups,
        mode: WriteMode::RowDelta { base, serializable },
        summary,
        schema_id: metadata.current_schema().schema_id,
        removed: delta.removed.into_iter().collect(),
        merge_manifests: false,
        branch: delta.branch,
        superseded: vectors
            .as_ref()
            .map(|(written, _)| written.superseded.clone())
            .unwrap_or_default(),
        replacement: None,
    };
    let outcome = commit::commit(
        catalog,
        namespace,
        name,
        Arc::clone(&store),
        current,
        change,
    )
    .await;
    if let Some((written, positions)) = vectors {
        match &outcome {
            // The positions now live in the vectors: their Parquet files go.
            Ok(_) => {
                for (location, _, _) in &positions {
                    if let Ok(path) = table.path_of(location) {
                        let _ = store.delete(&path).await;
                    }
                }
            }
            Err(IcebergError::CommitStateUnknown(_)) => {}
            Err(_) => {
                if let Some(puffin) = &written.puffin {
                    let _ = store.delete(puffin).await;
                }
            }
        }
    }
    outcome
}

/// The partition values of `data` (as its manifest serialized them) under `group`'s spec.
fn partition_of(data: &LiveFile, group: &ManifestGroup) -> Result<Vec<ScalarValue>, IcebergError> {
    group
        .spec
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let serialized = data.file.metrics.partition.get(index).cloned().flatten();
            match serialized {
                None => Ok(ScalarValue::Null),
                Some(bytes) => decode(partition_type(field)?, &bytes).ok_or_else(|| {
                    IcebergError::Invalid(format!(
                        "the partition value of {} in {} does not read",
                        field.field.name, data.file.file_path
                    ))
                }),
            }
        })
        .collect()
}
