//! Applying updates to a metadata file's JSON: the next metadata file of a commit.

use super::TableUpdate;
use crate::error::IcebergError;
use serde_json::{Map, Value, json};

/// How many earlier metadata files the metadata log keeps unless the table says
/// (`write.metadata.previous-versions-max`).
const PREVIOUS_VERSIONS_MAX: usize = 100;

/// The metadata JSON that follows `current` (the metadata file at `current_location`) once
/// `updates` are applied, at `now_ms`: the previous file joins the metadata log.
pub fn next_metadata(
    current: &Value,
    current_location: &str,
    updates: &[TableUpdate],
    now_ms: i64,
) -> Result<Value, IcebergError> {
    let invalid = |what: String| IcebergError::Invalid(format!("{current_location}: {what}"));
    let mut metadata = current.clone();
    let object = metadata
        .as_object_mut()
        .ok_or_else(|| invalid("metadata is not a JSON object".to_string()))?;
    let previous_updated = object
        .get("last-updated-ms")
        .and_then(Value::as_i64)
        .unwrap_or(now_ms);
    let mut applier = Applier {
        object,
        last_schema: None,
        last_spec: None,
        last_order: None,
        updated_ms: now_ms,
    };
    for update in updates {
        applier.apply(update).map_err(invalid)?;
    }
    let updated_ms = applier.updated_ms;
    push(
        object,
        "metadata-log",
        json!({"timestamp-ms": previous_updated, "metadata-file": current_location}),
    );
    let keep = object
        .get("properties")
        .and_then(|p| p.get("write.metadata.previous-versions-max"))
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(PREVIOUS_VERSIONS_MAX);
    if let Some(Value::Array(log)) = object.get_mut("metadata-log")
        && log.len() > keep
    {
        log.drain(..log.len() - keep);
    }
    object.insert("last-updated-ms".into(), json!(updated_ms));
    Ok(metadata)
}

/// Applies updates one by one, remembering what this commit added (for the `-1` ids).
struct Applier<'a> {
    object: &'a mut Map<String, Value>,
    last_schema: Option<i64>,
    last_spec: Option<i64>,
    last_order: Option<i64>,
    updated_ms: i64,
}

impl Applier<'_> {
    fn apply(&mut self, update: &TableUpdate) -> Result<(), String> {
        match update {
            TableUpdate::AssignUuid { uuid } => {
                self.object.insert("table-uuid".into(), json!(uuid));
            }
            TableUpdate::UpgradeFormatVersion { format_version } => {
                let current = self.int("format-version").unwrap_or(1);
                if *format_version < current {
                    return Err(format!(
                        "cannot downgrade format version {current} to {format_version}"
                    ));
                }
                self.object
                    .insert("format-version".into(), json!(format_version));
                // Row lineage starts at the upgrade: the first row id assigned is 0.
                if *format_version >= 3 && !self.object.contains_key("next-row-id") {
                    self.object.insert("next-row-id".into(), json!(0));
                }
            }
            TableUpdate::AddSchema {
                schema,
                last_column_id,
            } => {
                let id = self.add("schemas", "schema-id", schema)?;
                self.last_schema = Some(id);
                let highest = last_column_id
                    .map(i64::from)
                    .unwrap_or_else(|| highest_field_id(schema));
                let last = self.int("last-column-id").unwrap_or(0).max(highest);
                self.object.insert("last-column-id".into(), json!(last));
            }
            TableUpdate::SetCurrentSchema { schema_id } => {
                let id = self.chosen("schemas", "schema-id", *schema_id, self.last_schema)?;
                self.object.insert("current-schema-id".into(), json!(id));
            }
            TableUpdate::AddSpec { spec } => {
                let id = self.add("partition-specs", "spec-id", spec)?;
                self.last_spec = Some(id);
                let highest = spec["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["field-id"].as_i64())
                    .max()
                    .unwrap_or(999);
                let last = self.int("last-partition-id").unwrap_or(999).max(highest);
                self.object.insert("last-partition-id".into(), json!(last));
            }
            TableUpdate::SetDefaultSpec { spec_id } => {
                let id = self.chosen("partition-specs", "spec-id", *spec_id, self.last_spec)?;
                self.object.insert("default-spec-id".into(), json!(id));
            }
            TableUpdate::AddSortOrder { sort_order } => {
                self.last_order = Some(self.add("sort-orders", "order-id", sort_order)?);
            }
            TableUpdate::SetDefaultSortOrder { sort_order_id } => {
                let id = self.chosen("sort-orders", "order-id", *sort_order_id, self.last_order)?;
                self.object
                    .insert("default-sort-order-id".into(), json!(id));
            }
            TableUpdate::AddSnapshot { snapshot } => {
                let sequence = snapshot["sequence-number"].as_i64().unwrap_or(0);
                let last = self.int("last-sequence-number").unwrap_or(0).max(sequence);
                self.object
                    .insert("last-sequence-number".into(), json!(last));
                if let Some(timestamp) = snapshot["timestamp-ms"].as_i64() {
                    self.updated_ms = timestamp;
                }
                // Format 3: the snapshot's rows took the ids from its first row id on.
                if let (Some(first), Some(added)) = (
                    snapshot["first-row-id"].as_i64(),
                    snapshot["added-rows"].as_i64(),
                ) {
                    let next = self.int("next-row-id").unwrap_or(0).max(first + added);
                    self.object.insert("next-row-id".into(), json!(next));
                }
                push(self.object, "snapshots", snapshot.clone());
            }
            TableUpdate::SetSnapshotRef {
                ref_name,
                kind,
                snapshot_id,
                max_ref_age_ms,
                max_snapshot_age_ms,
                min_snapshots_to_keep,
            } => {
                let timestamp = self
                    .snapshot(*snapshot_id)
                    .ok_or_else(|| format!("the ref {ref_name} names no snapshot {snapshot_id}"))?
                    .get("timestamp-ms")
                    .and_then(Value::as_i64)
                    .unwrap_or(self.updated_ms);
                let mut reference = json!({"snapshot-id": snapshot_id, "type": kind});
                let optional = [
                    ("max-ref-age-ms", max_ref_age_ms.map(|v| json!(v))),
                    ("max-snapshot-age-ms", max_snapshot_age_ms.map(|v| json!(v))),
                    (
                        "min-snapshots-to-keep",
                        min_snapshots_to_keep.map(|v| json!(v)),
                    ),
                ];
                for (key, value) in optional {
                    if let Some(value) = value {
                        reference[key] = value;
                    }
                }
                let refs = self
                    .object
                    .entry("refs")
                    .or_insert_with(|| Value::Object(Map::new()));
                let Some(refs) = refs.as_object_mut() else {
                    return Err("refs is not an object".to_string());
                };
                refs.insert(ref_name.clone(), reference);
                if ref_name == "main" {
                    self.object
                        .insert("current-snapshot-id".into(), json!(snapshot_id));
                    push(
                        self.object,
                        "snapshot-log",
                        json!({"timestamp-ms": timestamp, "snapshot-id": snapshot_id}),
                    );
                }
            }
            TableUpdate::RemoveSnapshots { snapshot_ids } => {
                let removed = |value: &Value| {
                    value["snapshot-id"]
                        .as_i64()
                        .is_some_and(|id| snapshot_ids.contains(&id))
                };
                if let Some(Value::Array(snapshots)) = self.object.get_mut("snapshots") {
                    snapshots.retain(|s| !removed(s));
                }
                if let Some(Value::Object(refs)) = self.object.get_mut("refs") {
                    refs.retain(|_, r| !removed(r));
                }
                if let Some(Value::Array(log)) = self.object.get_mut("snapshot-log") {
                    log.retain(|entry| !removed(entry));
                }
                if self
                    .int("current-snapshot-id")
                    .is_some_and(|id| snapshot_ids.contains(&id))
                {
                    self.object.insert("current-snapshot-id".into(), json!(-1));
                }
            }
            TableUpdate::RemoveSnapshotRef { ref_name } => {
                if let Some(Value::Object(refs)) = self.object.get_mut("refs") {
                    refs.remove(ref_name);
                }
                if ref_name == "main" {
                    self.object.insert("current-snapshot-id".into(), json!(-1));
                }
            }
            TableUpdate::SetLocation { location } => {
                self.object.insert("location".into(), json!(location));
            }
            TableUpdate::SetProperties { updates } => {
                let properties = self.properties()?;
                for (key, value) in updates {
                    properties.insert(key.clone(), json!(value));
                }
            }
            TableUpdate::RemoveProperties { removals } => {
                let properties = self.properties()?;
                for key in removals {
                    properties.remove(key);
                }
            }
        }
        Ok(())
    }

    fn int(&self, key: &str) -> Option<i64> {
        self.object.get(key).and_then(Value::as_i64)
    }

    fn snapshot(&self, id: i64) -> Option<&Value> {
        self.object
            .get("snapshots")?
            .as_array()?
            .iter()
            .find(|s| s["snapshot-id"].as_i64() == Some(id))
    }

    fn properties(&mut self) -> Result<&mut Map<String, Value>, String> {
        self.object
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| "properties is not an object".to_string())
    }

    /// Adds `item` to the list `key`, keeping its id `id_key` unless another item has it
    /// (then the next free id); answers the id. An item equal to an existing one but for its
    /// id is not added again: the existing id is answered.
    fn add(&mut self, key: &str, id_key: &str, item: &Value) -> Result<i64, String> {
        let list = self
            .object
            .entry(key)
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .ok_or_else(|| format!("{key} is not a list"))?;
        let without_id = |value: &Value| {
            let mut value = value.clone();
            if let Some(object) = value.as_object_mut() {
                object.remove(id_key);
            }
            value
        };
        let bare = without_id(item);
        if let Some(same) = list.iter().find(|existing| without_id(existing) == bare) {
            return same[id_key]
                .as_i64()
                .ok_or_else(|| format!("an item of {key} has no {id_key}"));
        }
        let ids: Vec<i64> = list.iter().filter_map(|i| i[id_key].as_i64()).collect();
        let id = match item[id_key].as_i64() {
            Some(id) if id >= 0 && !ids.contains(&id) => id,
            _ => ids.iter().max().map_or(0, |max| max + 1),
        };
        let mut item = item.clone();
        item[id_key] = json!(id);
        list.push(item);
        Ok(id)
    }

    /// The id `id` of the list `key`, `-1` meaning `last` (added by this commit).
    fn chosen(&self, key: &str, id_key: &str, id: i32, last: Option<i64>) -> Result<i64, String> {
        let id = match id {
            -1 => last.ok_or_else(|| format!("-1 names the last {key} added, and none was"))?,
            id => i64::from(id),
        };
        let exists = self
            .object
            .get(key)
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|i| i[id_key].as_i64() == Some(id)));
        match exists {
            true => Ok(id),
            false => Err(format!("{key} has no {id_key} {id}")),
        }
    }
}

/// The highest field id anywhere in a schema or type (`value`).
fn highest_field_id(value: &Value) -> i64 {
    match value {
        Value::Object(object) => {
            let own = ["id", "element-id", "key-id", "value-id"]
                .iter()
                .filter_map(|key| object.get(*key).and_then(Value::as_i64));
            let nested = ["fields", "type", "element", "key", "value"]
                .iter()
                .filter_map(|key| object.get(*key))
                .map(highest_field_id);
            own.chain(nested).max().unwrap_or(0)
        }
        Value::Array(items) => items.iter().map(highest_field_id).max().unwrap_or(0),
        _ => 0,
    }
}

fn push(object: &mut Map<String, Value>, key: &str, value: Value) {
    match object.get_mut(key) {
        Some(Value::Array(items)) => items.push(value),
        _ => {
            object.insert(key.to_string(), Value::Array(vec![value]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::updates::tests::table;

    #[test]
    fn a_snapshot_moves_main_and_keeps_the_rest() {
        let snapshot = json!({"snapshot-id": 8, "parent-snapshot-id": 7,
            "sequence-number": 4, "timestamp-ms": 20, "summary": {"operation": "append"}});
        let updates = [
            TableUpdate::AddSnapshot { snapshot },
            TableUpdate::SetSnapshotRef {
                ref_name: "main".into(),
                kind: "branch".into(),
                snapshot_id: 8,
                max_ref_age_ms: None,
                max_snapshot_age_ms: None,
                min_snapshots_to_keep: None,
            },
        ];
        let next =
            next_metadata(&table(), "/t/metadata/00002-b.metadata.json", &updates, 30).unwrap();
        assert_eq!(next["current-snapshot-id"], 8);
        assert_eq!(next["last-sequence-number"], 4);
        assert_eq!(next["last-updated-ms"], 20);
        assert_eq!(
            next["refs"]["main"],
            json!({"snapshot-id": 8, "type": "branch"})
        );
        assert_eq!(
            next["snapshot-log"],
            json!([{"timestamp-ms": 20, "snapshot-id": 8}])
        );
        assert_eq!(next["x-extension"], true);
        // The log keeps one earlier file: the one just replaced.
        assert_eq!(
            next["metadata-log"],
            json!([{"timestamp-ms": 10, "metadata-file": "/t/metadata/00002-b.metadata.json"}])
        );
    }

    #[test]
    fn schemas_specs_and_properties_evolve() {
        let schema = json!({"type": "struct", "schema-id": 0, "fields": [
            {"id": 1, "name": "a", "required": false, "type": "long"},
            {"id": 3, "name": "c", "required": false,
             "type": {"type": "list", "element-id": 4, "element": "int",
                      "element-required": false}}]});
        let updates: Vec<TableUpdate> = serde_json::from_value(json!([
            {"action": "add-schema", "schema": schema},
            {"action": "set-current-schema", "schema-id": -1},
            {"action": "add-spec", "spec": {"spec-id": 0, "fields": [
                {"source-id": 1, "field-id": 1000, "name": "a", "transform": "identity"}]}},
            {"action": "set-default-spec", "spec-id": -1},
            {"action": "set-properties", "updates": {"owner": "osprey"}},
            {"action": "remove-properties", "removals": ["keep"]},
        ]))
        .unwrap();
        let next = next_metadata(&table(), "/t/m.json", &updates, 30).unwrap();
        // Both ids were taken, so the next free ones are used.
        assert_eq!(next["current-schema-id"], 1);
        assert_eq!(next["schemas"][1]["schema-id"], 1);
        assert_eq!(next["last-column-id"], 4);
        assert_eq!(next["default-spec-id"], 1);
        assert_eq!(next["last-partition-id"], 1000);
        assert_eq!(next["properties"]["owner"], "osprey");
        assert!(next["properties"].get("keep").is_none());
        assert_eq!(next["last-updated-ms"], 30);
        // Setting the first spec again reuses its id rather than adding a copy.
        let back = [
            TableUpdate::AddSpec {
                spec: json!({"spec-id": 5, "fields": []}),
            },
            TableUpdate::SetDefaultSpec { spec_id: -1 },
        ];
        let again = next_metadata(&next, "/t/m2.json", &back, 40).unwrap();
        assert_eq!(again["default-spec-id"], 0);
        assert_eq!(again["partition-specs"].as_array().unwrap().len(), 2);
    }
}
