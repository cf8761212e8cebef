//! `ALTER TABLE` on an Iceberg table: schema evolution (spec: "Schema Evolution"), partition
//! spec evolution ("Partition Evolution") and table properties, committed as one metadata
//! change with no new snapshot.
//!
//! Columns are matched by field id, never by name, so every change here is metadata only:
//! - an added column gets a fresh id (older files lack it, and read it as null);
//! - a dropped column's id is never reused (its values in older files are never read again);
//! - a renamed column keeps its id;
//! - a column widens only as the spec allows (`int` to `long`, `float` to `double`, a decimal
//!   to a greater precision of the same scale), so older files read as the new type.
//!
//! A new partitioning becomes a new spec, the default for new data; the files written with
//! earlier specs stay as they are. A partition field the table had before keeps its id.

use super::metadata_commit::{Current, commit_metadata};
use super::partitioning::{parse_partitioning, spec_json};
use super::schema_evolution::{ColumnChange, SchemaEvolution};
use crate::catalog::IcebergCatalog;
use crate::error::IcebergError;
use crate::partition::PartitionField;
use crate::schema::Schema;
use crate::updates::{TableRequirement, TableUpdate};
use object_store::ObjectStore;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one `ALTER TABLE` changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableAlteration {
    /// Column changes, in order.
    pub columns: Vec<ColumnChange>,
    /// Table properties to set.
    pub set_properties: BTreeMap<String, String>,
    /// Table properties to remove.
    pub remove_properties: Vec<String>,
    /// A new partitioning, in Trino's spelling (`'day(ts)'`, `'bucket(id, 16)'`); empty for
    /// none.
    pub partitioning: Option<Vec<String>>,
    /// A format version to upgrade to (from 2, only 3).
    pub format_version: Option<u8>,
}

impl TableAlteration {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
            && self.set_properties.is_empty()
            && self.remove_properties.is_empty()
            && self.partitioning.is_none()
            && self.format_version.is_none()
    }
}

/// Commits `alteration` to `namespace.name` of `catalog` (whose files are in `store`),
/// rebuilt on top of other writers' commits as the table's `commit.retry.*` properties say.
pub async fn alter_table(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: Arc<dyn ObjectStore>,
    alteration: &TableAlteration,
) -> Result<(), IcebergError> {
    // An upgrade is checked against the table's live delete files, read first: the commit
    // must then be built on that very snapshot.
    let checked = match alteration.format_version {
        Some(version) => upgrade_checked(catalog, (namespace, name), &store, version).await?,
        None => None,
    };
    let build = |current: &Current| {
        if let Some(snapshot) = checked
            && current.metadata.current_snapshot_id != snapshot
        {
            return Err(IcebergError::CommitConflict(format!(
                "{namespace}.{name} changed while its format version was being upgraded; run \
                 the statement again"
            )));
        }
        let (requirements, mut updates) = changes(current, alteration)?;
        if let Some(version) = alteration.format_version
            && version > current.metadata.format_version
        {
            updates.push(TableUpdate::UpgradeFormatVersion {
                format_version: i64::from(version),
            });
        }
        Ok((!updates.is_empty()).then_some((requirements, updates)))
    };
    commit_metadata(catalog, (namespace, name), &store, build).await?;
    Ok(())
}

/// Checks that `namespace.name` may be upgraded to format `version`, and answers the snapshot
/// the check read (`Some(None)`: the table had none; `None`: nothing to upgrade).
///
/// Osprey upgrades format 2 to 3. Format 3 replaces position delete files with deletion
/// vectors, and a vector written for a data file must hold the positions earlier delete files
/// removed from it: Osprey merges those of file-scoped position deletes (its own, and what
/// `referenced_data_file` names), so a table whose partition-scoped position deletes still
/// apply to live data files is refused until `optimize` folds them into its data files.
async fn upgrade_checked(
    catalog: &dyn IcebergCatalog,
    (namespace, name): (&str, &str),
    store: &Arc<dyn ObjectStore>,
    version: u8,
) -> Result<Option<Option<i64>>, IcebergError> {
    let current = super::metadata_commit::load(catalog, namespace, name, store.as_ref()).await?;
    let from = current.metadata.format_version;
    match (from, version) {
        (from, to) if to == from => return Ok(None),
        (from, to) if to < from => {
            return Err(IcebergError::Unsupported(format!(
                "format version {to}: the table is at {from}, and format versions are never \
                 downgraded"
            )));
        }
        (2, 3) => {}
        (from, to) => {
            return Err(IcebergError::Unsupported(format!(
                "upgrading format version {from} to {to} (Osprey upgrades 2 to 3)"
            )));
        }
    }
    let snapshot = current.metadata.current_snapshot();
    if let Some(snapshot) = snapshot {
        let table = crate::scan::location::StoreLocation::parse(&current.metadata.location)?;
        let live =
            crate::plan::snapshot_files(store.as_ref(), snapshot, |file| table.path_of(file))
                .await?;
        let scoped_to_partitions = live
            .deletes
            .iter()
            .filter(|delete| {
                delete.file.content == crate::manifest::FileContent::PositionDeletes
                    && delete.file.referenced_data_file.is_none()
                    // Still deleting rows: some live data file is as old as it (after
                    // `optimize`, none is).
                    && live
                        .data
                        .iter()
                        .any(|data| data.sequence_number <= delete.sequence_number)
            })
            .count();
        if scoped_to_partitions > 0 {
            return Err(IcebergError::Unsupported(format!(
                "upgrading {namespace}.{name} to format 3 while {scoped_to_partitions} position \
                 delete file(s) apply to whole partitions: run ALTER TABLE ... EXECUTE optimize \
                 first, which folds them into the data files"
            )));
        }
    }
    Ok(Some(snapshot.map(|s| s.snapshot_id)))
}

/// The requirements and updates that make `alteration` of `current`.
fn changes(
    current: &Current,
    alteration: &TableAlteration,
) -> Result<(Vec<TableRequirement>, Vec<TableUpdate>), IcebergError> {
    let metadata = &current.metadata;
    let mut requirements = Vec::new();
    let mut updates = Vec::new();
    let schema_json = current_schema_json(current)?;
    let mut evolution = SchemaEvolution::new(schema_json.clone(), last_column_id(current));
    for change in &alteration.columns {
        evolution.apply(change)?;
    }
    let schema = match evolution.schema != schema_json {
        true => {
            let mut schema = evolution.schema.clone();
            schema["schema-id"] = json!(next_schema_id(metadata));
            requirements.push(TableRequirement::AssertCurrentSchemaId {
                current_schema_id: metadata.current_schema_id,
            });
            requirements.push(TableRequirement::AssertLastAssignedFieldId {
                last_assigned_field_id: last_column_id(current),
            });
            updates.push(TableUpdate::AddSchema {
                schema: schema.clone(),
                last_column_id: Some(evolution.ids.0),
            });
            updates.push(TableUpdate::SetCurrentSchema { schema_id: -1 });
            Schema::from_json(&schema)?
        }
        false => metadata.current_schema().clone(),
    };
    let default_spec = match &alteration.partitioning {
        Some(expressions) => {
            let fields = evolved_spec(current, expressions, &schema)?;
            let next_id = next_spec_id(metadata);
            requirements.push(TableRequirement::AssertDefaultSpecId {
                default_spec_id: metadata.default_spec_id,
            });
            requirements.push(TableRequirement::AssertLastAssignedPartitionId {
                last_assigned_partition_id: last_partition_id(current),
            });
            updates.push(TableUpdate::AddSpec {
                spec: spec_json(next_id, &fields),
            });
            updates.push(TableUpdate::SetDefaultSpec { spec_id: -1 });
            fields
        }
        None => metadata
            .partition_spec(metadata.default_spec_id)
            .map(|spec| spec.fields.clone())
            .unwrap_or_default(),
    };
    // The default spec must still find its sources.
    for field in &default_spec {
        if !schema.fields.iter().any(|f| f.id == field.source_id) {
            let name = metadata
                .current_schema()
                .field_by_id(field.source_id)
                .map_or_else(|| field.source_id.to_string(), |f| f.name.clone());
            return Err(IcebergError::Invalid(format!(
                "the column {name} partitions the table ({}): change the partitioning first \
                 (ALTER TABLE ... SET PROPERTIES partitioning = ARRAY[...])",
                field.name
            )));
        }
    }
    if !alteration.set_properties.is_empty() {
        updates.push(TableUpdate::SetProperties {
            updates: alteration.set_properties.clone(),
        });
    }
    let removals: Vec<String> = alteration
        .remove_properties
        .iter()
        .filter(|key| metadata.properties.contains_key(*key))
        .cloned()
        .collect();
    if !removals.is_empty() {
        updates.push(TableUpdate::RemoveProperties { removals });
    }
    if let Some(uuid) = &metadata.table_uuid {
        requirements.push(TableRequirement::AssertTableUuid { uuid: uuid.clone() });
    }
    Ok((requirements, updates))
}

/// The fields of the spec `expressions` ask for over `schema`, reusing the id of every field
/// an earlier spec had (same source, same transform), and numbering new ones after the
/// table's last.
fn evolved_spec(
    current: &Current,
    expressions: &[String],
    schema: &Schema,
) -> Result<Vec<PartitionField>, IcebergError> {
    let mut next_id = last_partition_id(current);
    let mut fields = parse_partitioning(expressions, schema)?;
    for field in &mut fields {
        let earlier = current
            .metadata
            .partition_specs
            .iter()
            .flat_map(|spec| &spec.fields)
            .find(|f| f.source_id == field.source_id && f.transform == field.transform);
        field.field_id = match earlier {
            Some(earlier) => earlier.field_id,
            None => {
                next_id += 1;
                next_id
            }
        };
    }
    Ok(fields)
}

/// The id a new schema of `metadata` takes.
pub(super) fn next_schema_id(metadata: &crate::metadata::TableMetadata) -> i32 {
    metadata
        .schemas
        .iter()
        .map(|s| s.schema_id)
        .max()
        .unwrap_or(0)
        + 1
}

/// The id a new partition spec of `metadata` takes.
pub(super) fn next_spec_id(metadata: &crate::metadata::TableMetadata) -> i32 {
    metadata
        .partition_specs
        .iter()
        .map(|s| s.spec_id)
        .max()
        .unwrap_or(0)
        + 1
}

/// The table's highest field id.
pub(super) fn last_column_id(current: &Current) -> i32 {
    current.json["last-column-id"].as_i64().unwrap_or(0) as i32
}

/// The table's highest partition field id (999 when it has none).
pub(super) fn last_partition_id(current: &Current) -> i32 {
    current.json["last-partition-id"]
        .as_i64()
        .map_or_else(
            || {
                current
                    .metadata
                    .partition_specs
                    .iter()
                    .flat_map(|s| &s.fields)
                    .map(|f| f.field_id)
                    .max()
                    .unwrap_or(999)
            },
            |id| id as i32,
        )
        .max(999)
}

/// The current schema as the metadata file spells it (docs and all).
fn current_schema_json(current: &Current) -> Result<Value, IcebergError> {
    let id = i64::from(current.metadata.current_schema_id);
    current.json["schemas"]
        .as_array()
        .and_then(|schemas| schemas.iter().find(|s| s["schema-id"].as_i64() == Some(id)))
        .or_else(|| current.json.get("schema"))
        .cloned()
        .ok_or_else(|| IcebergError::Invalid(format!("the current schema {id} is missing")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::TableMetadata;
    use datafusion::arrow::datatypes::DataType;

    fn table() -> Current {
        let json = json!({
            "format-version": 2, "table-uuid": "u", "location": "/t",
            "last-sequence-number": 0, "last-updated-ms": 1, "last-column-id": 3,
            "current-schema-id": 0,
            "schemas": [{"type": "struct", "schema-id": 0, "fields": [
                {"id": 1, "name": "id", "required": true, "type": "int"},
                {"id": 2, "name": "ts", "required": false, "type": "timestamptz"},
                {"id": 3, "name": "price", "required": false, "type": "decimal(9, 2)"}]}],
            "default-spec-id": 1,
            "partition-specs": [
                {"spec-id": 0, "fields": [{"source-id": 1, "field-id": 1000,
                    "name": "id_bucket", "transform": "bucket[4]"}]},
                {"spec-id": 1, "fields": [{"source-id": 2, "field-id": 1001,
                    "name": "ts_day", "transform": "day"}]}],
            "last-partition-id": 1001,
            "properties": {"a": "1"},
        });
        let bytes = serde_json::to_vec(&json).unwrap();
        Current {
            location: "/t/metadata/1.metadata.json".into(),
            metadata: TableMetadata::from_json(&bytes).unwrap(),
            json,
        }
    }

    fn alter(columns: Vec<ColumnChange>) -> Result<Vec<TableUpdate>, IcebergError> {
        let alteration = TableAlteration {
            columns,
            ..TableAlteration::default()
        };
        changes(&table(), &alteration).map(|(_, updates)| updates)
    }

    #[test]
    fn columns_evolve_by_id() {
        let updates = alter(vec![
            ColumnChange::Add {
                name: "tags".into(),
                data_type: DataType::new_list(DataType::Utf8, true),
                comment: Some("labels".into()),
                if_not_exists: false,
            },
            ColumnChange::Rename {
                from: "price".into(),
                to: "amount".into(),
            },
            ColumnChange::SetType {
                name: "id".into(),
                data_type: DataType::Int64,
            },
            ColumnChange::SetType {
                name: "amount".into(),
                data_type: DataType::Decimal128(18, 2),
            },
            ColumnChange::DropNotNull { name: "id".into() },
        ])
        .unwrap();
        let TableUpdate::AddSchema {
            schema,
            last_column_id,
        } = &updates[0]
        else {
            panic!("{updates:?}");
        };
        assert_eq!(*last_column_id, Some(5));
        assert_eq!(schema["schema-id"], 1);
        let fields = &schema["fields"];
        assert_eq!(
            fields[0],
            json!({"id": 1, "name": "id", "required": false, "type": "long"})
        );
        assert_eq!(fields[2]["name"], "amount");
        assert_eq!(fields[2]["type"], "decimal(18, 2)");
        assert_eq!(fields[3]["id"], 4);
        assert_eq!(fields[3]["type"]["element-id"], 5);
        assert_eq!(fields[3]["doc"], "labels");
        assert_eq!(updates[1], TableUpdate::SetCurrentSchema { schema_id: -1 });
    }

    #[test]
    fn bad_changes_say_why() {
        let refused = |change| alter(vec![change]).unwrap_err().to_string();
        let narrow = refused(ColumnChange::SetType {
            name: "ts".into(),
            data_type: DataType::Utf8,
        });
        assert!(narrow.contains("cannot change from"), "{narrow}");
        let partition = refused(ColumnChange::Drop {
            name: "ts".into(),
            if_exists: false,
        });
        assert!(
            partition.contains("partitions the table (ts_day)"),
            "{partition}"
        );
        assert!(
            refused(ColumnChange::Drop {
                name: "nope".into(),
                if_exists: false
            })
            .contains("no column nope")
        );
        assert!(
            alter(vec![ColumnChange::Drop {
                name: "nope".into(),
                if_exists: true
            }])
            .unwrap()
            .is_empty()
        );
        // A column only an earlier spec used may go.
        assert!(
            alter(vec![ColumnChange::Drop {
                name: "id".into(),
                if_exists: false
            }])
            .is_ok()
        );
        assert!(
            refused(ColumnChange::Rename {
                from: "id".into(),
                to: "ts".into()
            })
            .contains("has a column ts already")
        );
    }

    #[test]
    fn a_new_partitioning_reuses_earlier_field_ids() {
        let alteration = TableAlteration {
            partitioning: Some(vec!["bucket(id, 4)".into(), "month(ts)".into()]),
            ..TableAlteration::default()
        };
        let (requirements, updates) = changes(&table(), &alteration).unwrap();
        assert!(
            requirements.contains(&TableRequirement::AssertDefaultSpecId { default_spec_id: 1 })
        );
        let TableUpdate::AddSpec { spec } = &updates[0] else {
            panic!("{updates:?}");
        };
        assert_eq!(spec["spec-id"], 2);
        assert_eq!(spec["fields"][0]["field-id"], 1000);
        assert_eq!(spec["fields"][1]["field-id"], 1002);
    }
}
