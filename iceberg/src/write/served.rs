//! The server's side of the REST catalog protocol: tables created and commits applied as a
//! client of the Iceberg REST catalog Osprey serves asks, on a catalog whose tables point at
//! metadata files (Osprey's own).
//!
//! A client's commit is its requirements and updates, the vocabulary Osprey's own commits
//! speak ([`crate::updates`]), committed through the loop every metadata-only change shares
//! (`metadata_commit::commit_metadata`). Each attempt checks the requirements against the
//! table as it is now (one that fails is the client's conflict, answered at once); the
//! updates are applied to the current metadata file's JSON, the result must read back as
//! metadata, and it becomes the next metadata file, swapped in. A swap lost to another writer
//! is tried again on top of that writer's commit, as the table's `commit.retry.*` properties
//! say.

use super::metadata_commit::{Committed, Current, commit_metadata, now_ms};
use super::new_table::{first_metadata, first_metadata_location};
use super::storage::Written;
use crate::catalog::{IcebergCatalog, TableDefinition};
use crate::error::IcebergError;
use crate::metadata::TableMetadata;
use crate::scan::location::StoreLocation;
use crate::updates::{TableRequirement, TableUpdate, unmet};
use object_store::ObjectStore;
use serde_json::Value;
use std::sync::Arc;

/// A table as committed: its metadata file and what the file says.
#[derive(Debug, Clone, PartialEq)]
pub struct CommittedTable {
    /// Where the metadata file is.
    pub metadata_location: String,
    /// Its JSON.
    pub metadata: Value,
}

/// Applies a client's `requirements` and `updates` to `namespace.name` of `catalog` (see the
/// module docs); the table as committed. An unmet requirement is a
/// [`IcebergError::CommitConflict`] naming it.
pub async fn commit_requested(
    catalog: &dyn IcebergCatalog,
    (namespace, name): (&str, &str),
    store: &Arc<dyn ObjectStore>,
    requirements: &[TableRequirement],
    updates: &[TableUpdate],
) -> Result<CommittedTable, IcebergError> {
    if let Some(moved) = updates.iter().find_map(|update| match update {
        TableUpdate::SetLocation { location } => Some(location),
        _ => None,
    }) {
        return Err(IcebergError::Unsupported(format!(
            "moving a table (set-location to {moved}): the tables of this catalog stay where it \
             put them"
        )));
    }
    // The requirements are checked again on top of every other writer's commit.
    let build = |current: &Current| {
        if let Some(why) = requirements
            .iter()
            .find_map(|requirement| unmet(&current.json, requirement))
        {
            return Err(IcebergError::CommitConflict(format!(
                "{namespace}.{name}: {why}"
            )));
        }
        Ok(Some((requirements.to_vec(), updates.to_vec())))
    };
    let committed = commit_metadata(catalog, (namespace, name), store, build)
        .await?
        .map(|(_, committed)| committed);
    match committed {
        Some(Committed {
            location,
            metadata: Some(metadata),
        }) => Ok(CommittedTable {
            metadata_location: location,
            metadata,
        }),
        _ => Err(IcebergError::Catalog(format!(
            "{namespace}.{name}: the commit made no metadata file of Osprey's"
        ))),
    }
}

/// Creates `namespace.name` in `catalog` (one whose tables point at metadata files) as a
/// client's `definition` describes it, its ids as the client assigned them, at the catalog's
/// default location; the table as created. `store` answers the object store of a location.
pub async fn create_requested(
    catalog: &dyn IcebergCatalog,
    (namespace, name): (&str, &str),
    definition: &TableDefinition,
    store: impl AsyncFnOnce(&str) -> Result<Arc<dyn ObjectStore>, IcebergError>,
) -> Result<CommittedTable, IcebergError> {
    catalog.check_writable()?;
    let location = catalog
        .default_location(namespace, name)
        .ok_or_else(|| IcebergError::Catalog(format!("no location for {namespace}.{name}")))?;
    let metadata = first_metadata(&location, definition, now_ms());
    let bytes = serde_json::to_vec_pretty(&metadata)
        .map_err(|err| IcebergError::Invalid(err.to_string()))?;
    TableMetadata::from_json(&bytes)
        .map_err(|err| IcebergError::Invalid(format!("the table would be unreadable: {err}")))?;
    let metadata_location = first_metadata_location(catalog, &location);
    let store = store(&location).await?;
    let mut written = Written::new(store);
    let path = StoreLocation::parse(&location)?.path_of(&metadata_location)?;
    written.create(&path, bytes).await?;
    if let Err(err) = catalog
        .register_table(namespace, name, &metadata_location)
        .await
    {
        written.delete_all().await;
        return Err(err);
    }
    Ok(CommittedTable {
        metadata_location,
        metadata,
    })
}

/// A client's new table as a definition: its `schema` (the ids it assigned kept), its
/// partition spec and write order (unpartitioned and unsorted when absent) and `properties`
/// (`format-version` among them, 2 by default). Refused when the schema is not one Osprey
/// reads.
pub fn requested_definition(
    schema: Value,
    partition_spec: Option<Value>,
    write_order: Option<Value>,
    properties: std::collections::BTreeMap<String, String>,
) -> Result<TableDefinition, IcebergError> {
    crate::schema::Schema::from_json(&schema)?;
    let mut schema = schema;
    schema["schema-id"] = Value::from(0);
    let mut partition_spec =
        partition_spec.unwrap_or_else(|| serde_json::json!({"spec-id": 0, "fields": []}));
    partition_spec["spec-id"] = Value::from(0);
    if !partition_spec["fields"].is_array() {
        return Err(IcebergError::Invalid(
            "the partition spec has no list of fields".to_string(),
        ));
    }
    let sort_order = write_order.filter(|order| {
        order["fields"]
            .as_array()
            .is_some_and(|fields| !fields.is_empty())
    });
    Ok(TableDefinition {
        last_column_id: highest_field_id(&schema),
        schema,
        partition_spec,
        properties,
        sort_order,
    })
}

/// The highest field id anywhere in a schema's JSON (fields, list elements, map keys and
/// values).
fn highest_field_id(value: &Value) -> i32 {
    match value {
        Value::Object(object) => object
            .iter()
            .map(|(key, value)| match (key.as_str(), value) {
                ("id" | "element-id" | "key-id" | "value-id", Value::Number(id)) => id
                    .as_i64()
                    .and_then(|id| i32::try_from(id).ok())
                    .unwrap_or(0),
                (_, nested) => highest_field_id(nested),
            })
            .max()
            .unwrap_or(0),
        Value::Array(items) => items.iter().map(highest_field_id).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_requested_definition_keeps_the_clients_ids() {
        let schema = json!({"type": "struct", "schema-id": 5, "fields": [
            {"id": 1, "name": "id", "required": true, "type": "long"},
            {"id": 2, "name": "tags", "required": false, "type":
                {"type": "list", "element-id": 7, "element": "string", "element-required": false}},
        ]});
        let definition = requested_definition(schema, None, None, Default::default()).unwrap();
        assert_eq!(definition.last_column_id, 7);
        assert_eq!(definition.schema["schema-id"], 0);
        assert_eq!(
            definition.partition_spec,
            json!({"spec-id": 0, "fields": []})
        );
        assert!(definition.sort_order.is_none());
        let refused =
            requested_definition(json!({"type": "struct"}), None, None, Default::default());
        assert!(refused.is_err());
    }
}
