//! Changes to a table's metadata, as the REST catalog protocol spells them (`updateTable`'s
//! `requirements` and `updates`): the one vocabulary of every commit Osprey makes.
//!
//! A REST catalog is sent them as they are. For catalogs that point at metadata files (SQL,
//! and later Osprey's own), [`next_metadata`] applies them to the current metadata file's JSON
//! and the result is written as the next file. Whatever the change does not touch
//! (properties, statistics, other writers' extensions) is kept as it was.

mod apply;

pub use apply::next_metadata;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A condition the table must meet for a commit to apply (spec: REST `TableRequirement`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case"
)]
pub enum TableRequirement {
    /// The table does not exist yet.
    AssertCreate,
    /// The table's UUID is `uuid`.
    AssertTableUuid {
        /// The UUID.
        uuid: String,
    },
    /// The ref `ref` points at `snapshot_id` (`None`: the ref does not exist).
    AssertRefSnapshotId {
        /// The branch or tag.
        #[serde(rename = "ref")]
        reference: String,
        /// The snapshot it must point at.
        snapshot_id: Option<i64>,
    },
    /// The table's `last-column-id` is this.
    AssertLastAssignedFieldId {
        /// The id.
        last_assigned_field_id: i32,
    },
    /// The current schema is this one.
    AssertCurrentSchemaId {
        /// The schema id.
        current_schema_id: i32,
    },
    /// The table's `last-partition-id` is this.
    AssertLastAssignedPartitionId {
        /// The id.
        last_assigned_partition_id: i32,
    },
    /// The default partition spec is this one.
    AssertDefaultSpecId {
        /// The spec id.
        default_spec_id: i32,
    },
    /// The default sort order is this one.
    AssertDefaultSortOrderId {
        /// The order id.
        default_sort_order_id: i32,
    },
}

/// One change to a table's metadata (spec: REST `TableUpdate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case"
)]
pub enum TableUpdate {
    /// Sets the table's UUID (a new table only).
    AssignUuid {
        /// The UUID.
        uuid: String,
    },
    /// Raises the format version.
    UpgradeFormatVersion {
        /// The new version.
        format_version: i64,
    },
    /// Adds a schema.
    AddSchema {
        /// The schema, with its `schema-id`.
        schema: Value,
        /// The table's highest field id after it (deprecated in the protocol; derived from
        /// the schema when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_column_id: Option<i32>,
    },
    /// Makes a schema current; `-1` is the one last added by this commit.
    SetCurrentSchema {
        /// The schema id.
        schema_id: i32,
    },
    /// Adds a partition spec.
    AddSpec {
        /// The spec, with its `spec-id`.
        spec: Value,
    },
    /// Makes a spec the default; `-1` is the one last added by this commit.
    SetDefaultSpec {
        /// The spec id.
        spec_id: i32,
    },
    /// Adds a sort order.
    AddSortOrder {
        /// The order, with its `order-id`.
        sort_order: Value,
    },
    /// Makes a sort order the default; `-1` is the one last added by this commit.
    SetDefaultSortOrder {
        /// The order id.
        sort_order_id: i32,
    },
    /// Adds a snapshot (no ref moves until [`TableUpdate::SetSnapshotRef`]).
    AddSnapshot {
        /// The snapshot, as table metadata spells it.
        snapshot: Value,
    },
    /// Points a branch or tag at a snapshot; moving `main` makes it current.
    SetSnapshotRef {
        /// The ref's name.
        ref_name: String,
        /// `branch` or `tag`.
        #[serde(rename = "type")]
        kind: String,
        /// The snapshot.
        snapshot_id: i64,
        /// How long the ref lives (tags and branches other than `main`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_ref_age_ms: Option<i64>,
        /// How old a branch's snapshots may grow before they expire.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_snapshot_age_ms: Option<i64>,
        /// How many of a branch's snapshots expiry keeps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_snapshots_to_keep: Option<i32>,
    },
    /// Removes snapshots (and the refs that point at them).
    RemoveSnapshots {
        /// Their ids.
        snapshot_ids: Vec<i64>,
    },
    /// Removes a branch or tag.
    RemoveSnapshotRef {
        /// Its name.
        ref_name: String,
    },
    /// Moves the table's base location.
    SetLocation {
        /// The new location.
        location: String,
    },
    /// Sets table properties.
    SetProperties {
        /// The properties and their new values.
        updates: BTreeMap<String, String>,
    },
    /// Removes table properties.
    RemoveProperties {
        /// Their names.
        removals: Vec<String>,
    },
}

/// Whether `metadata` (a metadata file's JSON) meets `requirement`; the unmet condition, in
/// words, when it does not.
pub fn unmet(metadata: &Value, requirement: &TableRequirement) -> Option<String> {
    let int = |key: &str| metadata.get(key).and_then(Value::as_i64);
    let differs = |what: &str, key: &str, expected: i64| {
        let actual = int(key);
        (actual != Some(expected)).then(|| {
            format!(
                "the table's {what} is {} (expected {expected})",
                actual.map_or("unset".to_string(), |v| v.to_string())
            )
        })
    };
    match requirement {
        // A metadata file means the table exists.
        TableRequirement::AssertCreate => Some("the table exists already".to_string()),
        TableRequirement::AssertTableUuid { uuid } => {
            let actual = metadata.get("table-uuid").and_then(Value::as_str);
            (actual != Some(uuid.as_str()))
                .then(|| format!("the table's UUID is not {uuid}: it was replaced"))
        }
        TableRequirement::AssertRefSnapshotId {
            reference,
            snapshot_id,
        } => {
            let actual = metadata
                .get("refs")
                .and_then(|refs| refs.get(reference))
                .and_then(|r| r.get("snapshot-id"))
                .and_then(Value::as_i64)
                // Metadata written before refs existed names `main` only by its current id.
                .or_else(|| {
                    (reference == "main")
                        .then(|| int("current-snapshot-id"))
                        .flatten()
                        .filter(|id| *id >= 0)
                });
            (actual != *snapshot_id).then(|| {
                format!(
                    "the branch {reference} moved (to {}) since the change was built",
                    actual.map_or("nothing".to_string(), |id| id.to_string())
                )
            })
        }
        TableRequirement::AssertLastAssignedFieldId {
            last_assigned_field_id,
        } => differs(
            "last column id",
            "last-column-id",
            (*last_assigned_field_id).into(),
        ),
        TableRequirement::AssertCurrentSchemaId { current_schema_id } => differs(
            "current schema",
            "current-schema-id",
            (*current_schema_id).into(),
        ),
        TableRequirement::AssertLastAssignedPartitionId {
            last_assigned_partition_id,
        } => differs(
            "last partition field id",
            "last-partition-id",
            (*last_assigned_partition_id).into(),
        ),
        TableRequirement::AssertDefaultSpecId { default_spec_id } => differs(
            "default partition spec",
            "default-spec-id",
            (*default_spec_id).into(),
        ),
        TableRequirement::AssertDefaultSortOrderId {
            default_sort_order_id,
        } => differs(
            "default sort order",
            "default-sort-order-id",
            (*default_sort_order_id).into(),
        ),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A format-2 table's metadata, for the tests of requirements and updates.
    pub(crate) fn table() -> Value {
        json!({"format-version": 2, "table-uuid": "u", "location": "/t",
            "last-sequence-number": 3, "last-updated-ms": 10, "current-snapshot-id": 7,
            "last-column-id": 2, "current-schema-id": 0,
            "schemas": [{"type": "struct", "schema-id": 0, "fields": [
                {"id": 1, "name": "a", "required": false, "type": "long"},
                {"id": 2, "name": "b", "required": false, "type": "string"}]}],
            "default-spec-id": 0, "partition-specs": [{"spec-id": 0, "fields": []}],
            "last-partition-id": 999,
            "snapshots": [{"snapshot-id": 7, "timestamp-ms": 5,
                "summary": {"operation": "append"}}],
            "refs": {"main": {"snapshot-id": 7, "type": "branch", "max-ref-age-ms": 99}},
            "properties": {"write.metadata.previous-versions-max": "1", "keep": "me"},
            "metadata-log": [{"timestamp-ms": 1, "metadata-file": "/t/metadata/00001-a.metadata.json"}],
            "x-extension": true})
    }

    #[test]
    fn requirements_name_what_moved() {
        let table = table();
        let main = |snapshot_id| TableRequirement::AssertRefSnapshotId {
            reference: "main".into(),
            snapshot_id,
        };
        assert_eq!(unmet(&table, &main(Some(7))), None);
        assert!(
            unmet(&table, &main(Some(6)))
                .unwrap()
                .contains("moved (to 7)")
        );
        let dev = TableRequirement::AssertRefSnapshotId {
            reference: "dev".into(),
            snapshot_id: None,
        };
        assert_eq!(unmet(&table, &dev), None);
        let schema = TableRequirement::AssertCurrentSchemaId {
            current_schema_id: 1,
        };
        assert!(
            unmet(&table, &schema)
                .unwrap()
                .contains("current schema is 0")
        );
        // The protocol's spelling, both ways.
        let parsed: TableRequirement = serde_json::from_value(
            json!({"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": null}),
        )
        .unwrap();
        assert_eq!(parsed, main(None));
        assert_eq!(
            serde_json::to_value(main(Some(7))).unwrap(),
            json!({"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": 7})
        );
    }
}
