//! A new snapshot and the table metadata that makes it current (spec: "Table Metadata",
//! "Snapshots", "Commit Conflict Resolution and Retry").
//!
//! The new metadata is the current metadata file's JSON with the snapshot added, `main`
//! moved to it, and the logs, sequence number and timestamps advanced. Everything else
//! (properties, fields of the spec Osprey does not model, other writers' extensions) is kept
//! as it was.

use crate::error::IcebergError;
use serde_json::{Map, Value, json};

/// How many earlier metadata files the metadata log keeps unless the table says
/// (`write.metadata.previous-versions-max`).
const PREVIOUS_VERSIONS_MAX: usize = 100;

/// What a write adds, for the snapshot's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendSummary {
    /// Whether the write replaces every file of the table (an `overwrite`), rather than
    /// adding to them (an `append`).
    pub replaces_all: bool,
    /// Data files added.
    pub added_files: i64,
    /// Rows in them.
    pub added_records: i64,
    /// Their bytes.
    pub added_size: i64,
    /// Position delete files added.
    pub added_delete_files: i64,
    /// Rows they delete.
    pub added_position_deletes: i64,
    /// Their bytes.
    pub added_delete_size: i64,
}

impl AppendSummary {
    /// Counts `files` as added data files.
    pub(crate) fn add_data(&mut self, files: &[super::AddedFile]) {
        self.added_files += files.len() as i64;
        self.added_records += files.iter().map(|f| f.metrics.record_count).sum::<i64>();
        self.added_size += files.iter().map(|f| f.size).sum::<i64>();
    }

    /// The snapshot's operation: `overwrite` when it replaces or deletes data and adds
    /// data, `delete` when it only removes, else `append`.
    fn operation(&self) -> &'static str {
        match (
            self.replaces_all,
            self.added_delete_files > 0,
            self.added_files > 0,
        ) {
            (true, _, true) | (false, true, true) => "overwrite",
            (true, _, false) | (false, true, false) => "delete",
            (false, false, _) => "append",
        }
    }
}

/// The snapshot a commit adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSnapshot {
    /// Its id.
    pub snapshot_id: i64,
    /// The snapshot it follows on `main`, if any.
    pub parent_snapshot_id: Option<i64>,
    /// Its sequence number.
    pub sequence_number: i64,
    /// When it was committed, in milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Where its manifest list is.
    pub manifest_list: String,
    /// The schema it was written with.
    pub schema_id: i32,
}

/// A snapshot id not used by `metadata` (random, positive, as Java's writers choose them).
pub fn new_snapshot_id(metadata: &crate::TableMetadata) -> i64 {
    loop {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        let id = ((high ^ low) & (i64::MAX as u64)) as i64;
        if id != 0 && metadata.snapshot(id).is_none() {
            return id;
        }
    }
}

/// The snapshot `snapshot`, an append described by `summary`, as table metadata spells it;
/// `current` is the metadata it follows (for the parent's totals).
pub fn snapshot_json(current: &Value, snapshot: &NewSnapshot, summary: AppendSummary) -> Value {
    let parent_summary = snapshot.parent_snapshot_id.and_then(|parent| {
        current
            .get("snapshots")?
            .as_array()?
            .iter()
            .find(|s| s["snapshot-id"].as_i64() == Some(parent))
            .and_then(|s| s.get("summary").cloned())
    });
    let mut snapshot_json = json!({
        "snapshot-id": snapshot.snapshot_id,
        "sequence-number": snapshot.sequence_number,
        "timestamp-ms": snapshot.timestamp_ms,
        "manifest-list": snapshot.manifest_list,
        "summary": summary_json(summary, parent_summary.as_ref(), snapshot.parent_snapshot_id),
        "schema-id": snapshot.schema_id,
    });
    if let Some(parent) = snapshot.parent_snapshot_id {
        snapshot_json["parent-snapshot-id"] = json!(parent);
    }
    snapshot_json
}

/// The metadata JSON that follows `current` (the metadata file at `current_location`) once
/// `snapshot` (see [`snapshot_json`]) is committed and `main` points at it.
pub fn append_metadata(
    current: &Value,
    current_location: &str,
    snapshot: &Value,
) -> Result<Vec<u8>, IcebergError> {
    let invalid = |what: &str| IcebergError::Invalid(format!("{current_location}: {what}"));
    let mut metadata = current.clone();
    let object = metadata
        .as_object_mut()
        .ok_or_else(|| invalid("metadata is not a JSON object"))?;
    let field = |name: &str| snapshot[name].as_i64().unwrap_or(0);
    let (snapshot_id, sequence_number, timestamp_ms) = (
        field("snapshot-id"),
        field("sequence-number"),
        field("timestamp-ms"),
    );
    let previous_updated = object
        .get("last-updated-ms")
        .and_then(Value::as_i64)
        .unwrap_or(timestamp_ms);
    push(object, "snapshots", snapshot.clone());
    push(
        object,
        "snapshot-log",
        json!({"timestamp-ms": timestamp_ms, "snapshot-id": snapshot_id}),
    );
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
    object.insert("current-snapshot-id".into(), json!(snapshot_id));
    object.insert("last-sequence-number".into(), json!(sequence_number));
    object.insert("last-updated-ms".into(), json!(timestamp_ms));
    let refs = object
        .entry("refs")
        .or_insert_with(|| Value::Object(Map::new()));
    let main = refs
        .as_object_mut()
        .ok_or_else(|| invalid("refs is not an object"))?
        .entry("main")
        .or_insert_with(|| json!({"type": "branch"}));
    main["snapshot-id"] = json!(snapshot_id);
    main["type"] = json!("branch");
    serde_json::to_vec_pretty(&metadata).map_err(|err| invalid(&err.to_string()))
}

fn push(object: &mut Map<String, Value>, key: &str, value: Value) {
    match object.get_mut(key) {
        Some(Value::Array(items)) => items.push(value),
        _ => {
            object.insert(key.to_string(), Value::Array(vec![value]));
        }
    }
}

/// An append's summary: what it added, and the table's totals when the parent's summary has
/// them (or there is no parent).
fn summary_json(summary: AppendSummary, parent: Option<&Value>, parent_id: Option<i64>) -> Value {
    let mut out = Map::new();
    out.insert("operation".into(), json!(summary.operation()));
    out.insert(
        "added-data-files".into(),
        json!(summary.added_files.to_string()),
    );
    out.insert(
        "added-records".into(),
        json!(summary.added_records.to_string()),
    );
    out.insert(
        "added-files-size".into(),
        json!((summary.added_size + summary.added_delete_size).to_string()),
    );
    if summary.added_delete_files > 0 {
        for key in ["added-delete-files", "added-position-delete-files"] {
            out.insert(key.into(), json!(summary.added_delete_files.to_string()));
        }
        out.insert(
            "added-position-deletes".into(),
            json!(summary.added_position_deletes.to_string()),
        );
    }
    let parent_total = |key: &str| -> Option<i64> {
        match (parent, parent_id) {
            (_, None) => Some(0),
            (Some(parent), Some(_)) => parent.get(key)?.as_str()?.parse().ok(),
            (None, Some(_)) => None,
        }
    };
    if summary.replaces_all {
        for (total, deleted) in [
            ("total-data-files", "deleted-data-files"),
            ("total-records", "deleted-records"),
            ("total-files-size", "removed-files-size"),
        ] {
            if let Some(before) = parent_total(total) {
                out.insert(deleted.into(), json!(before.to_string()));
            }
        }
    }
    // An overwrite's totals are what it wrote.
    let total = |key: &str| match summary.replaces_all {
        true => Some(0),
        false => parent_total(key),
    };
    for (key, added) in [
        ("total-data-files", summary.added_files),
        ("total-records", summary.added_records),
        (
            "total-files-size",
            summary.added_size + summary.added_delete_size,
        ),
        ("total-delete-files", summary.added_delete_files),
        ("total-position-deletes", summary.added_position_deletes),
        ("total-equality-deletes", 0),
    ] {
        if let Some(before) = total(key) {
            out.insert(key.into(), json!((before + added).to_string()));
        }
    }
    Value::Object(out)
}

/// The location of the metadata file that follows `current` (`.../metadata/00003-<uuid>.metadata.json`
/// becomes `.../metadata/00004-<new uuid>.metadata.json`), under the table's `metadata`
/// directory `metadata_dir`.
pub fn next_metadata_location(current: &str, metadata_dir: &str) -> String {
    let file = current.rsplit('/').next().unwrap_or("");
    let version = file
        .split(['-', '.'])
        .next()
        .and_then(|v| v.trim_start_matches('v').parse::<u64>().ok())
        .unwrap_or(0);
    format!(
        "{}/{:05}-{}.metadata.json",
        metadata_dir.trim_end_matches('/'),
        version + 1,
        uuid::Uuid::new_v4()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_advances_the_metadata_and_keeps_the_rest() {
        let current = br#"{"format-version": 2, "table-uuid": "u", "location": "/t",
            "last-sequence-number": 3, "last-updated-ms": 10, "current-snapshot-id": 7,
            "snapshots": [{"snapshot-id": 7, "summary": {"operation": "append",
                "total-records": "5", "total-data-files": "1"}}],
            "refs": {"main": {"snapshot-id": 7, "type": "branch", "max-ref-age-ms": 99}},
            "properties": {"write.metadata.previous-versions-max": "1"},
            "metadata-log": [{"timestamp-ms": 1, "metadata-file": "/t/metadata/00001-a.metadata.json"}],
            "x-extension": true}"#;
        let snapshot = NewSnapshot {
            snapshot_id: 8,
            parent_snapshot_id: Some(7),
            sequence_number: 4,
            timestamp_ms: 20,
            manifest_list: "/t/metadata/snap-8.avro".to_string(),
            schema_id: 0,
        };
        let summary = AppendSummary {
            replaces_all: false,
            added_files: 2,
            added_records: 10,
            added_size: 100,
            ..AppendSummary::default()
        };
        let current: Value = serde_json::from_slice(current).unwrap();
        let snapshot = snapshot_json(&current, &snapshot, summary);
        let next =
            append_metadata(&current, "/t/metadata/00002-b.metadata.json", &snapshot).unwrap();
        let next: Value = serde_json::from_slice(&next).unwrap();
        assert_eq!(next["current-snapshot-id"], 8);
        assert_eq!(next["last-sequence-number"], 4);
        assert_eq!(next["refs"]["main"]["snapshot-id"], 8);
        assert_eq!(next["refs"]["main"]["max-ref-age-ms"], 99);
        assert_eq!(next["x-extension"], true);
        assert_eq!(next["snapshots"][1]["summary"]["total-records"], "15");
        assert_eq!(next["snapshots"][1]["summary"]["total-data-files"], "3");
        assert_eq!(next["snapshots"][1]["parent-snapshot-id"], 7);
        // The log keeps one earlier file: the one just replaced.
        assert_eq!(
            next["metadata-log"],
            json!([{"timestamp-ms": 10, "metadata-file": "/t/metadata/00002-b.metadata.json"}])
        );
    }

    #[test]
    fn metadata_files_are_numbered_on() {
        let next = next_metadata_location(
            "s3://b/t/metadata/00009-x.metadata.json",
            "s3://b/t/metadata",
        );
        assert!(next.starts_with("s3://b/t/metadata/00010-"), "{next}");
        let next = next_metadata_location("/t/metadata/v3.metadata.json", "/t/metadata/");
        assert!(next.starts_with("/t/metadata/00004-"), "{next}");
    }
}
