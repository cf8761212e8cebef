//! `CREATE OR REPLACE TABLE [AS SELECT]` on an existing table (Iceberg's replace
//! transaction): the table keeps its identity, location and history; a new schema (fresh field
//! ids), a new partition spec and the new rows (if any) become current in one commit, and every
//! earlier file leaves the current snapshot (earlier snapshots still read them).
//!
//! The rows are written before the commit, with the table as it will be
//! ([`Replacement::metadata`]), so they carry the new field ids and partitions.

use super::alter::{last_column_id, last_partition_id, next_schema_id, next_spec_id};
use super::commit::{self, Change, ReplaceParts};
use super::metadata_commit::{load, now_ms};
use super::new_table::{NewTable, schema_with_ids_after};
use super::partitioning::{parse_partitioning, spec_json};
use super::snapshot::AppendSummary;
use super::{AppendOutcome, NewDataFile, WriteMode, check_writable, data_group};
use crate::catalog::IcebergCatalog;
use crate::error::IcebergError;
use crate::metadata::TableMetadata;
use crate::schema::Schema;
use crate::updates::{TableUpdate, next_metadata};
use object_store::ObjectStore;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A table about to be replaced.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// The table as it will be: the new schema and spec current. New rows are written with it.
    pub metadata: TableMetadata,
    parts: ReplaceParts,
    base_snapshot: Option<i64>,
}

/// Plans the replacement of `namespace.name` by `table`.
pub async fn prepare_replacement(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: &Arc<dyn ObjectStore>,
    table: &NewTable<'_>,
) -> Result<Replacement, IcebergError> {
    let current = load(catalog, namespace, name, store.as_ref()).await?;
    let metadata = &current.metadata;
    check_writable(metadata)?;
    if table.format_version != metadata.format_version {
        return Err(IcebergError::Unsupported(format!(
            "CREATE OR REPLACE of {namespace}.{name} with format_version = {}: a replaced table \
             keeps its format version ({})",
            table.format_version, metadata.format_version
        )));
    }
    let (mut schema, last_column_id) =
        schema_with_ids_after(table.schema, last_column_id(&current))?;
    schema["schema-id"] = serde_json::json!(next_schema_id(metadata));
    let mut fields = parse_partitioning(table.partitioning, &Schema::from_json(&schema)?)?;
    let mut next_field_id = last_partition_id(&current);
    for field in &mut fields {
        next_field_id += 1;
        field.field_id = next_field_id;
    }
    let spec_id = next_spec_id(metadata);
    let mut updates = vec![
        TableUpdate::AddSchema {
            schema: schema.clone(),
            last_column_id: Some(last_column_id),
        },
        TableUpdate::SetCurrentSchema { schema_id: -1 },
        TableUpdate::AddSpec {
            spec: spec_json(spec_id, &fields),
        },
        TableUpdate::SetDefaultSpec { spec_id: -1 },
    ];
    if !table.properties.is_empty() {
        updates.push(TableUpdate::SetProperties {
            updates: table.properties.clone(),
        });
    }
    let next = next_metadata(&current.json, &current.location, &updates, now_ms())?;
    let bytes = serde_json::to_vec(&next).map_err(|err| IcebergError::Invalid(err.to_string()))?;
    Ok(Replacement {
        metadata: TableMetadata::from_json(&bytes)?,
        parts: ReplaceParts {
            updates,
            schema_json: schema.to_string(),
            base_schema_id: metadata.current_schema_id,
            base_spec_id: metadata.default_spec_id,
        },
        base_snapshot: metadata.current_snapshot_id,
    })
}

/// Commits `replacement` with the data files `files` (written with its metadata) as one
/// snapshot on `main`. Any commit to the table since the replacement was planned conflicts
/// with it.
pub async fn commit_replacement(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: Arc<dyn ObjectStore>,
    replacement: Replacement,
    files: Vec<NewDataFile>,
) -> Result<AppendOutcome, IcebergError> {
    let current = load(catalog, namespace, name, store.as_ref()).await?;
    let prospective = &replacement.metadata;
    let group = data_group(&store, prospective, files, prospective.default_spec_id).await?;
    let mut summary = AppendSummary {
        replaces_all: true,
        ..AppendSummary::default()
    };
    summary.add_data(&group.files);
    let change = Change {
        groups: vec![group],
        mode: WriteMode::Overwrite {
            base: replacement.base_snapshot,
        },
        summary,
        schema_id: prospective.current_schema_id,
        removed: BTreeSet::new(),
        merge_manifests: false,
        branch: "main".to_string(),
        superseded: BTreeSet::new(),
        replacement: Some(replacement.parts),
    };
    commit::commit(catalog, namespace, name, store, current, change).await
}
