//! One commit of a change to a table, retried on top of other writers' commits (spec: "Commit
//! Conflict Resolution and Retry").
//!
//! Each attempt writes the change's manifests (one per partition spec and content), a
//! manifest list (those manifests, and the parent snapshot's unless the change replaces every
//! file) and, for catalogs that point at metadata files, the next metadata file; then asks the
//! catalog to commit (a compare-and-swap of the metadata location, or REST's `updateTable`
//! with the requirement that `main` has not moved). When another writer came first, the table
//! is loaded again, the change is checked against what was committed meanwhile
//! ([`Change::check`]), and the snapshot is rebuilt on top. Whatever a failed attempt wrote is
//! deleted, except after [`IcebergError::CommitStateUnknown`]: the commit may have happened.

use super::manifest_rewrite;
use super::manifests::{self, AddedFile};
use super::metadata_commit::{Current, RetryPolicy, load, now_ms, try_commit};
use super::partition_values;
use super::partitioning::WritePartitionField;
use super::snapshot::{self, AppendSummary, NewSnapshot};
use super::storage::{Written, read};
use super::{AppendOutcome, WriteMode, check_writable};
use crate::catalog::IcebergCatalog;
use crate::error::IcebergError;
use crate::manifest::{ManifestContent, ManifestCounts, ManifestFile, read_manifest_list};
use crate::metadata::TableMetadata;
use crate::scan::location::StoreLocation;
use crate::updates::{TableRequirement, TableUpdate};
use object_store::ObjectStore;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The files of one new manifest: all data files or all position delete files, of one
/// partition spec.
pub(super) struct ManifestGroup {
    /// Whether the files are position delete files.
    pub deletes: bool,
    /// The partition spec they were written with.
    pub spec_id: i32,
    /// Its fields.
    pub spec: Vec<WritePartitionField>,
    /// The files.
    pub files: Vec<AddedFile>,
}

/// What one commit adds.
pub(super) struct Change {
    /// The new manifests' files.
    pub groups: Vec<ManifestGroup>,
    /// How they join the table.
    pub mode: WriteMode,
    /// What they add, for the snapshot's summary.
    pub summary: AppendSummary,
    /// The schema the data files were written with.
    pub schema_id: i32,
    /// Data files of the base snapshot this change removes (copy-on-write rewrites them).
    pub removed: BTreeSet<String>,
    /// Whether the snapshot's manifests are merged, one per spec and content
    /// (`rewrite_manifests`).
    pub merge_manifests: bool,
    /// The branch the snapshot goes on (`main` unless the statement named one).
    pub branch: String,
    /// Data files whose delete files (a deletion vector, file-scoped position deletes) the
    /// change's new deletion vectors replace: those delete files leave the snapshot.
    pub superseded: BTreeSet<String>,
    /// A new schema and spec the snapshot comes with (`CREATE OR REPLACE`).
    pub replacement: Option<ReplaceParts>,
}

/// The metadata changes a replaced table's snapshot comes with.
#[derive(Debug, Clone)]
pub(super) struct ReplaceParts {
    /// The new schema and spec (and properties), made current.
    pub updates: Vec<TableUpdate>,
    /// The new schema, for the manifests' headers.
    pub schema_json: String,
    /// The schema the table had when the replacement was planned.
    pub base_schema_id: i32,
    /// The default spec it had then.
    pub base_spec_id: i32,
}

impl Change {
    /// Whether the change can be committed on top of `current`: the schema and the spec the
    /// files were written with are still the table's, and nothing committed since the
    /// snapshot the statement read conflicts with it.
    fn check(&self, current: &Current, namespace: &str, name: &str) -> Result<(), IcebergError> {
        let conflict = |why: &str| {
            IcebergError::CommitConflict(format!(
                "{namespace}.{name}: {why} while Osprey wrote to it; run the statement again"
            ))
        };
        check_writable(&current.metadata)?;
        // A replacement brings its own schema and spec: the table must still have the ones it
        // replaces.
        let (schema_id, spec_id) = match &self.replacement {
            Some(parts) => (parts.base_schema_id, Some(parts.base_spec_id)),
            None => (
                self.schema_id,
                self.groups.iter().find(|g| !g.deletes).map(|g| g.spec_id),
            ),
        };
        if current.metadata.current_schema().schema_id != schema_id {
            return Err(conflict("its schema changed"));
        }
        if spec_id.is_some_and(|id| id != current.metadata.default_spec_id) {
            return Err(conflict("its partitioning changed"));
        }
        let now =
            branch_head(&current.metadata, &self.branch, namespace, name)?.map(|s| s.snapshot_id);
        match self.mode {
            WriteMode::Append => Ok(()),
            WriteMode::Overwrite { base } if now != base => {
                Err(conflict("another writer committed"))
            }
            WriteMode::Overwrite { .. } => Ok(()),
            WriteMode::RowDelta { base, serializable } => {
                for snapshot in since(&current.metadata, now, base) {
                    let operation = snapshot.summary.get("operation").map(String::as_str);
                    // Appends add files the statement did not see: under serializable
                    // isolation (the default) they might have held rows it would change.
                    if serializable || operation != Some("append") {
                        return Err(conflict(&format!(
                            "another writer committed (snapshot {}, {})",
                            snapshot.snapshot_id,
                            operation.unwrap_or("an unknown operation")
                        )));
                    }
                }
                Ok(())
            }
        }
    }
}

/// The snapshot `branch` points at (`None`: `main` of a table with no snapshot yet). A branch
/// other than `main` must exist.
pub(super) fn branch_head<'a>(
    metadata: &'a TableMetadata,
    branch: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<&'a crate::metadata::Snapshot>, IcebergError> {
    if branch == "main" {
        return Ok(metadata.current_snapshot());
    }
    match metadata.refs.get(branch) {
        Some(head) if head.kind == crate::metadata::SnapshotRefKind::Branch => {
            Ok(metadata.snapshot(head.snapshot_id))
        }
        Some(_) => Err(IcebergError::Invalid(format!(
            "{namespace}.{name}: {branch} is a tag, and a tag cannot be written to"
        ))),
        None => Err(IcebergError::Invalid(format!(
            "{namespace}.{name} has no branch {branch}: create it with ALTER TABLE ... CREATE \
             BRANCH {branch}"
        ))),
    }
}

/// The snapshots of a branch whose head is `head`, after `base`, newest first.
fn since(
    metadata: &TableMetadata,
    head: Option<i64>,
    base: Option<i64>,
) -> Vec<&crate::metadata::Snapshot> {
    let mut out = Vec::new();
    let mut next = head.and_then(|id| metadata.snapshot(id));
    while let Some(snapshot) = next {
        if Some(snapshot.snapshot_id) == base {
            break;
        }
        out.push(snapshot);
        next = snapshot
            .parent_snapshot_id
            .and_then(|parent| metadata.snapshot(parent));
    }
    out
}

/// Commits `change` to `namespace.name` of `catalog`, loaded as `current`, retrying as the
/// table's `commit.retry.*` properties say; `store` is the table's object store.
pub(super) async fn commit(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: Arc<dyn ObjectStore>,
    mut current: Current,
    change: Change,
) -> Result<AppendOutcome, IcebergError> {
    change.check(&current, namespace, name)?;
    let table = StoreLocation::parse(&current.metadata.location)?;
    let metadata_dir = format!(
        "{}/metadata",
        current.metadata.location.trim_end_matches('/')
    );
    let write_id = uuid::Uuid::new_v4();
    let retry = RetryPolicy::of(&current.metadata);
    let mut written = Written::new(Arc::clone(&store));
    let mut attempt = 0u32;
    let result = loop {
        attempt += 1;
        let snapshot_id = snapshot::new_snapshot_id(&current.metadata);
        let sequence_number = current.metadata.last_sequence_number + 1;
        // Manifests per attempt: their entries name the attempt's snapshot id (their
        // sequence numbers are inherited from the manifest list).
        let mut listed = Vec::new();
        // A group without files (an overwrite that writes nothing) lists no manifest.
        let groups = change.groups.iter().filter(|group| !group.files.is_empty());
        for (index, group) in groups.enumerate() {
            let location = format!("{metadata_dir}/{write_id}-m{attempt}-{index}.avro");
            let schema_json = match &change.replacement {
                Some(parts) => parts.schema_json.clone(),
                None => current_schema_json(&current),
            };
            let header = manifests::ManifestTable {
                schema_json: &schema_json,
                schema_id: change.schema_id,
                format_version: current.metadata.format_version,
            };
            let bytes = manifests::write_manifest(
                &group.files,
                group.deletes,
                snapshot_id,
                header,
                group.spec_id,
                &group.spec,
            )?;
            listed.push(manifest_entry(
                group,
                location.clone(),
                bytes.len(),
                snapshot_id,
                sequence_number,
            ));
            written.create(&table.path_of(&location)?, bytes).await?;
        }
        let parent = match branch_head(&current.metadata, &change.branch, namespace, name) {
            Ok(parent) => parent.cloned(),
            Err(err) => break Err(err),
        };
        let mut summary = change.summary;
        if let Some(parent) = parent.as_ref().filter(|_| !change.mode.replaces_all()) {
            let Some(list) = &parent.manifest_list else {
                break Err(IcebergError::Unsupported(
                    "a snapshot without a manifest list (v1's inline manifests), which Osprey \
                     does not write on top of"
                        .to_string(),
                ));
            };
            let bytes = read(store.as_ref(), &table.path_of(list)?).await?;
            let parents = read_manifest_list(&bytes)?;
            if change.removed.is_empty() && change.superseded.is_empty() {
                listed.extend(parents);
            } else {
                // Delete files go with the data files removed, and with those whose deletes
                // a new vector replaces.
                let deletes_gone: BTreeSet<String> =
                    change.removed.union(&change.superseded).cloned().collect();
                let mut found = 0;
                for (index, manifest) in parents.into_iter().enumerate() {
                    let gone = match manifest.content {
                        ManifestContent::Data if change.removed.is_empty() => {
                            listed.push(manifest);
                            continue;
                        }
                        ManifestContent::Data => &change.removed,
                        ManifestContent::Deletes => &deletes_gone,
                    };
                    let bytes = read(store.as_ref(), &table.path_of(&manifest.path)?).await?;
                    let location = format!("{metadata_dir}/{write_id}-m{attempt}-r{index}.avro");
                    let rewritten = manifest_rewrite::rewrite_without(
                        &manifest,
                        &bytes,
                        gone,
                        (snapshot_id, sequence_number),
                        (&table, location),
                        &mut written,
                    )
                    .await?;
                    match rewritten {
                        Some(removed) if manifest.content == ManifestContent::Data => {
                            found += removed.paths.len();
                            summary.removed_files += removed.paths.len() as i64;
                            summary.removed_records += removed.rows;
                            summary.removed_size += removed.bytes;
                            listed.push(removed.manifest);
                        }
                        Some(removed) => {
                            summary.removed_delete_files += removed.paths.len() as i64;
                            summary.removed_position_deletes += removed.rows;
                            summary.removed_delete_size += removed.bytes;
                            listed.push(removed.manifest);
                        }
                        None => listed.push(manifest),
                    }
                }
                if found != change.removed.len() {
                    break Err(IcebergError::CommitConflict(format!(
                        "{namespace}.{name}: a data file the statement rewrote was removed by \
                         another writer meanwhile; run the statement again"
                    )));
                }
            }
        }
        let mut merged = manifest_rewrite::Merged::default();
        if change.merge_manifests {
            let prefix = format!("{metadata_dir}/{write_id}-m{attempt}-merged");
            (listed, merged) = manifest_rewrite::merge_all(
                listed,
                &current.metadata,
                store.as_ref(),
                (snapshot_id, sequence_number),
                (&table, &prefix),
                &mut written,
            )
            .await?;
        }
        // Format 3: the data manifests without a first row id get theirs, in order, from the
        // table's next row id (row lineage).
        let format_version = current.metadata.format_version;
        let lineage = (format_version >= 3).then(|| {
            let first = current.json["next-row-id"].as_i64().unwrap_or(0);
            let mut next = first;
            for manifest in listed
                .iter_mut()
                .filter(|m| m.content == ManifestContent::Data)
            {
                if manifest.first_row_id.is_none() {
                    manifest.first_row_id = Some(next);
                    next += manifest.counts.added_rows.unwrap_or(0)
                        + manifest.counts.existing_rows.unwrap_or(0);
                }
            }
            (first, next - first)
        });
        let list_location = format!("{metadata_dir}/snap-{snapshot_id}-{attempt}-{write_id}.avro");
        let list_bytes = manifests::write_manifest_list(
            &listed,
            snapshot_id,
            parent.as_ref().map(|p| p.snapshot_id),
            sequence_number,
            format_version,
        )?;
        written
            .create(&table.path_of(&list_location)?, list_bytes)
            .await?;
        let new_snapshot = NewSnapshot {
            snapshot_id,
            parent_snapshot_id: parent.as_ref().map(|p| p.snapshot_id),
            sequence_number,
            timestamp_ms: now_ms(),
            manifest_list: list_location,
            schema_id: change.schema_id,
            lineage,
        };
        let snapshot = snapshot::snapshot_json(&current.json, &new_snapshot, summary);
        let mut requirements = vec![TableRequirement::AssertRefSnapshotId {
            reference: change.branch.clone(),
            snapshot_id: new_snapshot.parent_snapshot_id,
        }];
        let mut updates = Vec::new();
        if let Some(parts) = &change.replacement {
            requirements.push(TableRequirement::AssertCurrentSchemaId {
                current_schema_id: parts.base_schema_id,
            });
            requirements.push(TableRequirement::AssertDefaultSpecId {
                default_spec_id: parts.base_spec_id,
            });
            updates.extend(parts.updates.iter().cloned());
        }
        updates.extend([
            TableUpdate::AddSnapshot { snapshot },
            TableUpdate::SetSnapshotRef {
                ref_name: change.branch.clone(),
                kind: "branch".to_string(),
                snapshot_id,
                max_ref_age_ms: None,
                max_snapshot_age_ms: None,
                min_snapshots_to_keep: None,
            },
        ]);
        let committed = try_commit(
            catalog,
            (namespace, name),
            &current,
            requirements,
            updates,
            &mut written,
        );
        match committed.await {
            Ok(Some(_)) => {
                break Ok(AppendOutcome {
                    snapshot_id,
                    attempts: attempt,
                    manifests_rewritten: merged.rewritten,
                    manifests_added: merged.added,
                });
            }
            Err(IcebergError::CommitStateUnknown(message)) => {
                // The commit may have happened: what it references must stay.
                return Err(IcebergError::CommitStateUnknown(message));
            }
            Ok(None) if attempt <= retry.retries => {
                written.delete_all().await;
                tracing::info!(table = %format!("{namespace}.{name}"), attempt, "an Iceberg commit lost to another writer's; retrying on top of it");
                tokio::time::sleep(retry.wait(attempt)).await;
                current = load(catalog, namespace, name, store.as_ref()).await?;
                if let Err(err) = change.check(&current, namespace, name) {
                    break Err(err);
                }
            }
            Ok(None) => {
                break Err(IcebergError::CommitConflict(format!(
                    "{namespace}.{name}: other writers committed first {attempt} times; \
                     run the statement again"
                )));
            }
            Err(err) => break Err(err),
        }
    };
    if result.is_err() {
        written.delete_all().await;
    }
    result
}

/// The manifest list's entry for a new manifest of `group`.
fn manifest_entry(
    group: &ManifestGroup,
    path: String,
    length: usize,
    snapshot_id: i64,
    sequence_number: i64,
) -> ManifestFile {
    let rows: i64 = group.files.iter().map(|f| f.metrics.record_count).sum();
    ManifestFile {
        path,
        length: length as i64,
        partition_spec_id: group.spec_id,
        content: match group.deletes {
            true => ManifestContent::Deletes,
            false => ManifestContent::Data,
        },
        sequence_number,
        min_sequence_number: sequence_number,
        added_snapshot_id: snapshot_id,
        counts: ManifestCounts {
            added_files: Some(group.files.len() as i64),
            existing_files: Some(0),
            deleted_files: Some(0),
            added_rows: Some(rows),
            existing_rows: Some(0),
            deleted_rows: Some(0),
        },
        partitions: partition_values::summaries(
            &group.spec,
            group.files.iter().map(|f| f.partition.as_slice()),
        ),
        first_row_id: None,
    }
}

/// The current schema of `current` as its metadata file spells it (for manifest headers).
fn current_schema_json(current: &Current) -> String {
    let id = i64::from(current.metadata.current_schema().schema_id);
    current.json["schemas"]
        .as_array()
        .and_then(|schemas| schemas.iter().find(|s| s["schema-id"].as_i64() == Some(id)))
        .or_else(|| current.json.get("schema"))
        .cloned()
        .unwrap_or(serde_json::Value::Null)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table whose `main` went 1 (append) -> 2 (`operation`) -> 3 (append).
    fn table(operation: &str) -> Current {
        let json = serde_json::json!({
            "format-version": 2, "table-uuid": "u", "location": "/t",
            "last-sequence-number": 3, "last-updated-ms": 1, "last-column-id": 1,
            "current-schema-id": 0,
            "schemas": [{"type": "struct", "schema-id": 0, "fields": [
                {"id": 1, "name": "id", "required": false, "type": "long"}]}],
            "default-spec-id": 0, "partition-specs": [{"spec-id": 0, "fields": []}],
            "last-partition-id": 999, "current-snapshot-id": 3,
            "snapshots": [
                {"snapshot-id": 1, "sequence-number": 1, "timestamp-ms": 1,
                 "manifest-list": "/t/1.avro", "summary": {"operation": "append"}},
                {"snapshot-id": 2, "parent-snapshot-id": 1, "sequence-number": 2,
                 "timestamp-ms": 2, "manifest-list": "/t/2.avro",
                 "summary": {"operation": operation}},
                {"snapshot-id": 3, "parent-snapshot-id": 2, "sequence-number": 3,
                 "timestamp-ms": 3, "manifest-list": "/t/3.avro",
                 "summary": {"operation": "append"}},
            ],
        });
        let bytes = serde_json::to_vec(&json).unwrap();
        Current {
            location: "/t/metadata/3.metadata.json".to_string(),
            metadata: TableMetadata::from_json(&bytes).unwrap(),
            json,
        }
    }

    fn change(mode: WriteMode) -> Change {
        Change {
            groups: Vec::new(),
            mode,
            summary: AppendSummary::default(),
            schema_id: 0,
            removed: BTreeSet::new(),
            merge_manifests: false,
            branch: "main".to_string(),
            superseded: BTreeSet::new(),
            replacement: None,
        }
    }

    fn conflicts(mode: WriteMode, operation: &str) -> bool {
        change(mode).check(&table(operation), "db", "t").is_err()
    }

    #[test]
    fn row_deltas_conflict_as_their_isolation_level_says() {
        let delta = |base, serializable| WriteMode::RowDelta { base, serializable };
        // Nothing committed since the statement read snapshot 3.
        assert!(!conflicts(delta(Some(3), true), "delete"));
        // Serializable: even an append since then conflicts.
        assert!(conflicts(delta(Some(2), true), "append"));
        // Snapshot isolation: appends do not, anything else does.
        assert!(!conflicts(delta(Some(2), false), "append"));
        assert!(!conflicts(delta(Some(1), false), "append"));
        assert!(conflicts(delta(Some(1), false), "overwrite"));
        assert!(conflicts(delta(Some(1), false), "delete"));
        // Appends never conflict; an overwrite does with any commit since its base.
        assert!(!conflicts(WriteMode::Append, "overwrite"));
        assert!(!conflicts(WriteMode::Overwrite { base: Some(3) }, "append"));
        assert!(conflicts(WriteMode::Overwrite { base: Some(2) }, "append"));
    }
}
