//! Table metadata files (`metadata/vN.metadata.json`; spec: "Table Metadata").

use crate::error::IcebergError;
use crate::partition::{PartitionSpec, fields_from_json};
use crate::schema::Schema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// The format versions Osprey reads.
const SUPPORTED_VERSIONS: [i64; 3] = [1, 2, 3];

/// A table's metadata at one point of its history.
#[derive(Debug, Clone, PartialEq)]
pub struct TableMetadata {
    /// 1, 2 or 3.
    pub format_version: u8,
    /// The table's UUID (required from v2).
    pub table_uuid: Option<String>,
    /// Where the table's files live.
    pub location: String,
    /// The highest sequence number assigned (0 in v1).
    pub last_sequence_number: i64,
    /// When the metadata was written, in ms since the epoch.
    pub last_updated_ms: i64,
    /// Every schema the table has had.
    pub schemas: Vec<Schema>,
    /// The current schema's id.
    pub current_schema_id: i32,
    /// Every partition spec the table has had.
    pub partition_specs: Vec<PartitionSpec>,
    /// The spec new data is written with.
    pub default_spec_id: i32,
    /// The table's properties.
    pub properties: BTreeMap<String, String>,
    /// The snapshot `main` points at; `None` for a table with no data yet.
    pub current_snapshot_id: Option<i64>,
    /// The snapshots still reachable.
    pub snapshots: Vec<Snapshot>,
    /// Branches and tags, by name (`main` included when the table has a snapshot).
    pub refs: BTreeMap<String, SnapshotRef>,
    /// When each snapshot became current, oldest first: `(timestamp ms, snapshot id)`.
    pub snapshot_log: Vec<(i64, i64)>,
}

/// One snapshot: the table's state after one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Its id.
    pub snapshot_id: i64,
    /// The snapshot it was committed on.
    pub parent_snapshot_id: Option<i64>,
    /// Its sequence number (0 in v1).
    pub sequence_number: i64,
    /// When it was committed, in ms since the epoch.
    pub timestamp_ms: i64,
    /// Its manifest list (v2 and later; v1 may list manifests instead).
    pub manifest_list: Option<String>,
    /// v1 only: the manifests, when there is no manifest list.
    pub manifests: Vec<String>,
    /// The operation and figures of the commit (`operation`, `added-data-files`, ...).
    pub summary: BTreeMap<String, String>,
    /// The schema it was written with.
    pub schema_id: Option<i32>,
}

/// Whether a ref is a branch or a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotRefKind {
    /// A branch: commits move it.
    Branch,
    /// A tag: it stays on its snapshot.
    Tag,
}

/// A named ref to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRef {
    /// The snapshot it points at.
    pub snapshot_id: i64,
    /// Branch or tag.
    pub kind: SnapshotRefKind,
}

#[derive(Deserialize)]
struct SnapshotJson {
    #[serde(rename = "snapshot-id")]
    snapshot_id: i64,
    #[serde(rename = "parent-snapshot-id", default)]
    parent_snapshot_id: Option<i64>,
    #[serde(rename = "sequence-number", default)]
    sequence_number: i64,
    #[serde(rename = "timestamp-ms")]
    timestamp_ms: i64,
    #[serde(rename = "manifest-list", default)]
    manifest_list: Option<String>,
    #[serde(default)]
    manifests: Vec<String>,
    #[serde(default)]
    summary: HashMap<String, Value>,
    #[serde(rename = "schema-id", default)]
    schema_id: Option<i32>,
}

#[derive(Deserialize)]
struct RefJson {
    #[serde(rename = "snapshot-id")]
    snapshot_id: i64,
    #[serde(rename = "type")]
    kind: String,
}

impl TableMetadata {
    /// Parses a metadata file's JSON. A format version Osprey does not read, and anything
    /// missing that the version requires, are errors that say which.
    pub fn from_json(bytes: &[u8]) -> Result<Self, IcebergError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|err| IcebergError::Invalid(format!("not JSON: {err}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| IcebergError::Invalid("not a JSON object".into()))?;
        let missing = |key: &str| IcebergError::Invalid(format!("no {key}"));
        let int = |key: &str| object.get(key).and_then(Value::as_i64);
        let version = int("format-version").ok_or_else(|| missing("format-version"))?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(IcebergError::Unsupported(format!(
                "Iceberg format version {version} (Osprey reads versions 1, 2 and 3)"
            )));
        }
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
        let table_uuid = text("table-uuid");
        if version >= 2 && table_uuid.is_none() {
            return Err(missing("table-uuid"));
        }
        let location = text("location").ok_or_else(|| missing("location"))?;
        // Schemas: `schemas` (v2+, also written by newer v1 writers) or the v1 `schema`.
        let schemas: Vec<Schema> = match (object.get("schemas"), object.get("schema")) {
            (Some(Value::Array(schemas)), _) if !schemas.is_empty() => schemas
                .iter()
                .map(Schema::from_json)
                .collect::<Result<_, _>>()?,
            (_, Some(schema)) => vec![Schema::from_json(schema)?],
            _ => return Err(missing("schemas")),
        };
        let current_schema_id = match int("current-schema-id") {
            Some(id) => id as i32,
            None => schemas[0].schema_id,
        };
        if !schemas.iter().any(|s| s.schema_id == current_schema_id) {
            return Err(IcebergError::Invalid(format!(
                "current-schema-id {current_schema_id} names no schema"
            )));
        }
        let partition_specs: Vec<PartitionSpec> =
            match (object.get("partition-specs"), object.get("partition-spec")) {
                (Some(Value::Array(specs)), _) if !specs.is_empty() => specs
                    .iter()
                    .map(PartitionSpec::from_json)
                    .collect::<Result<_, _>>()?,
                (_, Some(fields)) => vec![PartitionSpec {
                    spec_id: 0,
                    fields: fields_from_json(fields)?,
                }],
                _ => vec![PartitionSpec {
                    spec_id: 0,
                    fields: Vec::new(),
                }],
            };
        let default_spec_id =
            int("default-spec-id").map_or(partition_specs[0].spec_id, |id| id as i32);
        let properties = object
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let snapshots: Vec<SnapshotJson> = match object.get("snapshots") {
            Some(snapshots) => serde_json::from_value(snapshots.clone())
                .map_err(|err| IcebergError::Invalid(format!("snapshots: {err}")))?,
            None => Vec::new(),
        };
        let snapshots: Vec<Snapshot> = snapshots
            .into_iter()
            .map(|s| Snapshot {
                snapshot_id: s.snapshot_id,
                parent_snapshot_id: s.parent_snapshot_id,
                sequence_number: s.sequence_number,
                timestamp_ms: s.timestamp_ms,
                manifest_list: s.manifest_list,
                manifests: s.manifests,
                summary: s
                    .summary
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect(),
                schema_id: s.schema_id,
            })
            .collect();
        if version >= 2 && snapshots.iter().any(|s| s.manifest_list.is_none()) {
            return Err(IcebergError::Invalid(format!(
                "a v{version} snapshot without a manifest-list"
            )));
        }
        // v1 writes -1 for "no current snapshot".
        let current_snapshot_id = int("current-snapshot-id").filter(|id| *id >= 0);
        if let Some(id) = current_snapshot_id
            && !snapshots.iter().any(|s| s.snapshot_id == id)
        {
            return Err(IcebergError::Invalid(format!(
                "current-snapshot-id {id} names no snapshot"
            )));
        }
        let mut refs: BTreeMap<String, SnapshotRef> = match object.get("refs") {
            Some(refs) => {
                let refs: HashMap<String, RefJson> = serde_json::from_value(refs.clone())
                    .map_err(|err| IcebergError::Invalid(format!("refs: {err}")))?;
                refs.into_iter()
                    .map(|(name, r)| {
                        let kind = match r.kind.as_str() {
                            "branch" => SnapshotRefKind::Branch,
                            "tag" => SnapshotRefKind::Tag,
                            other => {
                                return Err(IcebergError::Invalid(format!(
                                    "ref {name} of type {other:?}"
                                )));
                            }
                        };
                        Ok((
                            name,
                            SnapshotRef {
                                snapshot_id: r.snapshot_id,
                                kind,
                            },
                        ))
                    })
                    .collect::<Result<_, IcebergError>>()?
            }
            None => BTreeMap::new(),
        };
        // Older metadata has no refs: `main` is the current snapshot.
        if let Some(id) = current_snapshot_id {
            refs.entry("main".to_string()).or_insert(SnapshotRef {
                snapshot_id: id,
                kind: SnapshotRefKind::Branch,
            });
        }
        let snapshot_log = object
            .get("snapshot-log")
            .and_then(Value::as_array)
            .map(|log| {
                log.iter()
                    .filter_map(|entry| {
                        Some((
                            entry.get("timestamp-ms")?.as_i64()?,
                            entry.get("snapshot-id")?.as_i64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(TableMetadata {
            format_version: version as u8,
            table_uuid,
            location,
            last_sequence_number: int("last-sequence-number").unwrap_or(0),
            last_updated_ms: int("last-updated-ms").ok_or_else(|| missing("last-updated-ms"))?,
            schemas,
            current_schema_id,
            partition_specs,
            default_spec_id,
            properties,
            current_snapshot_id,
            snapshots,
            refs,
            snapshot_log,
        })
    }

    /// The current schema.
    pub fn current_schema(&self) -> &Schema {
        self.schema(self.current_schema_id)
            .unwrap_or(&self.schemas[0])
    }

    /// The schema with `id`.
    pub fn schema(&self, id: i32) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.schema_id == id)
    }

    /// The snapshot `main` points at, if the table has data.
    pub fn current_snapshot(&self) -> Option<&Snapshot> {
        self.snapshot(self.current_snapshot_id?)
    }

    /// The snapshot with `id`.
    pub fn snapshot(&self, id: i64) -> Option<&Snapshot> {
        self.snapshots.iter().find(|s| s.snapshot_id == id)
    }

    /// The partition spec with `id`.
    pub fn partition_spec(&self, id: i32) -> Option<&PartitionSpec> {
        self.partition_specs.iter().find(|s| s.spec_id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Transform;
    use serde_json::json;

    fn v2() -> Value {
        json!({
            "format-version": 2,
            "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1",
            "location": "s3://lake/sales/orders",
            "last-sequence-number": 2,
            "last-updated-ms": 1733400000000_i64,
            "last-column-id": 3,
            "current-schema-id": 1,
            "schemas": [
                {"type": "struct", "schema-id": 0, "fields": [
                    {"id": 1, "name": "id", "required": true, "type": "long"}]},
                {"type": "struct", "schema-id": 1, "fields": [
                    {"id": 1, "name": "id", "required": true, "type": "long"},
                    {"id": 2, "name": "day", "required": false, "type": "date"},
                    {"id": 3, "name": "amount", "required": false, "type": "decimal(10,2)"}]}
            ],
            "default-spec-id": 0,
            "partition-specs": [{"spec-id": 0, "fields": [
                {"source-id": 2, "field-id": 1000, "name": "day_day", "transform": "day"},
                {"source-id": 1, "field-id": 1001, "name": "id_bucket", "transform": "bucket[16]"}]}],
            "last-partition-id": 1001,
            "properties": {"write.format.default": "parquet"},
            "current-snapshot-id": 22,
            "snapshots": [
                {"snapshot-id": 11, "sequence-number": 1, "timestamp-ms": 1733300000000_i64,
                 "manifest-list": "s3://lake/sales/orders/metadata/snap-11.avro",
                 "summary": {"operation": "append"}, "schema-id": 0},
                {"snapshot-id": 22, "parent-snapshot-id": 11, "sequence-number": 2,
                 "timestamp-ms": 1733400000000_i64,
                 "manifest-list": "s3://lake/sales/orders/metadata/snap-22.avro",
                 "summary": {"operation": "append", "added-data-files": "3"}, "schema-id": 1}
            ],
            "refs": {"audit": {"snapshot-id": 11, "type": "tag"}},
            "sort-orders": [{"order-id": 0, "fields": []}],
            "default-sort-order-id": 0
        })
    }

    #[test]
    fn v2_metadata_reads_with_schemas_specs_snapshots_and_refs() {
        let metadata = TableMetadata::from_json(v2().to_string().as_bytes()).unwrap();
        assert_eq!(metadata.format_version, 2);
        assert_eq!(metadata.current_schema().fields.len(), 3);
        assert_eq!(metadata.current_snapshot().unwrap().snapshot_id, 22);
        assert_eq!(
            metadata.current_snapshot().unwrap().summary["added-data-files"],
            "3"
        );
        let spec = metadata.partition_spec(0).unwrap();
        assert_eq!(spec.fields[1].transform, Transform::Bucket(16));
        assert_eq!(metadata.refs["audit"].kind, SnapshotRefKind::Tag);
        // No `main` in refs: it is the current snapshot.
        assert_eq!(metadata.refs["main"].snapshot_id, 22);
    }

    #[test]
    fn v1_metadata_with_a_single_schema_and_spec_reads() {
        let v1 = json!({
            "format-version": 1,
            "location": "/warehouse/t",
            "last-updated-ms": 1,
            "last-column-id": 1,
            "schema": {"type": "struct", "fields": [
                {"id": 1, "name": "x", "required": false, "type": "int"}]},
            "partition-spec": [{"source-id": 1, "name": "x", "transform": "identity"}],
            "current-snapshot-id": -1,
            "snapshots": []
        });
        let metadata = TableMetadata::from_json(v1.to_string().as_bytes()).unwrap();
        assert_eq!(metadata.format_version, 1);
        assert!(metadata.current_snapshot().is_none());
        assert_eq!(metadata.partition_specs[0].fields[0].field_id, 1000);
        assert!(metadata.refs.is_empty());
    }

    #[test]
    fn bad_or_unsupported_metadata_is_refused_by_name() {
        let mut v4 = v2();
        v4["format-version"] = json!(4);
        let err = TableMetadata::from_json(v4.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, IcebergError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("format version 4"), "{err}");
        let mut dangling = v2();
        dangling["current-snapshot-id"] = json!(99);
        let err = TableMetadata::from_json(dangling.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("99"), "{err}");
        let mut no_uuid = v2();
        no_uuid.as_object_mut().unwrap().remove("table-uuid");
        let err = TableMetadata::from_json(no_uuid.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("table-uuid"), "{err}");
        assert!(TableMetadata::from_json(b"{not json").is_err());
    }
}
