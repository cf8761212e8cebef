//! A new snapshot as table metadata spells it (spec: "Snapshots"): its id, its summary, and
//! where the metadata file that makes it current goes. The metadata itself follows from
//! [`crate::updates`].

use serde_json::{Map, Value, json};

/// What a write adds, for the snapshot's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendSummary {
    /// Whether the write replaces every file of the table (an `overwrite`), rather than
    /// adding to them (an `append`).
    pub replaces_all: bool,
    /// Whether the write rewrites files without changing the table's rows (a `replace`:
    /// compaction).
    pub rewrite: bool,
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
    /// Data files removed (rewritten by copy-on-write, or compacted).
    pub removed_files: i64,
    /// Rows in them.
    pub removed_records: i64,
    /// Their bytes.
    pub removed_size: i64,
    /// Position delete files removed with the data files they were scoped to.
    pub removed_delete_files: i64,
    /// The deletes in them.
    pub removed_position_deletes: i64,
    /// Their bytes.
    pub removed_delete_size: i64,
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
        if self.rewrite {
            return "replace";
        }
        match (
            self.replaces_all || self.removed_files > 0,
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
    /// Format 3: its first row id and the rows it assigned ids to (row lineage).
    pub lineage: Option<(i64, i64)>,
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
    if let Some((first_row_id, added_rows)) = snapshot.lineage {
        snapshot_json["first-row-id"] = json!(first_row_id);
        snapshot_json["added-rows"] = json!(added_rows);
    }
    snapshot_json
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
    if summary.removed_files > 0 {
        for (key, removed) in [
            ("deleted-data-files", summary.removed_files),
            ("deleted-records", summary.removed_records),
            (
                "removed-files-size",
                summary.removed_size + summary.removed_delete_size,
            ),
        ] {
            out.insert(key.into(), json!(removed.to_string()));
        }
    }
    if summary.removed_delete_files > 0 {
        for (key, removed) in [
            ("removed-delete-files", summary.removed_delete_files),
            (
                "removed-position-delete-files",
                summary.removed_delete_files,
            ),
            ("removed-position-deletes", summary.removed_position_deletes),
        ] {
            out.insert(key.into(), json!(removed.to_string()));
        }
    }
    // An overwrite's totals are what it wrote; files removed leave the totals.
    let total = |key: &str| match summary.replaces_all {
        true => Some(0),
        false => parent_total(key).map(|total| {
            total
                - match key {
                    "total-data-files" => summary.removed_files,
                    "total-records" => summary.removed_records,
                    "total-files-size" => summary.removed_size + summary.removed_delete_size,
                    "total-delete-files" => summary.removed_delete_files,
                    "total-position-deletes" => summary.removed_position_deletes,
                    _ => 0,
                }
        }),
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
    let version = version_of(current);
    format!(
        "{}/{:05}-{}.metadata.json",
        metadata_dir.trim_end_matches('/'),
        version + 1,
        uuid::Uuid::new_v4()
    )
}

/// The location of the metadata file that follows `current` in a catalog that names them by
/// version (Hadoop): `.../metadata/v<N+1>.metadata.json`, `N` read from `current`'s name
/// (`v3.metadata.json` or `00003-<uuid>.metadata.json`).
pub fn next_versioned_location(current: &str, metadata_dir: &str) -> String {
    let version = version_of(current);
    format!(
        "{}/v{}.metadata.json",
        metadata_dir.trim_end_matches('/'),
        version + 1
    )
}

/// The version number of the metadata file at `location` (0 when its name has none).
fn version_of(location: &str) -> u64 {
    let file = location.rsplit('/').next().unwrap_or("");
    crate::load::metadata_version(file).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_metadata_files_count_on_from_either_naming() {
        let next = next_versioned_location(
            "file:///w/t/metadata/v3.metadata.json",
            "file:///w/t/metadata",
        );
        assert_eq!(next, "file:///w/t/metadata/v4.metadata.json");
        let next =
            next_versioned_location("/w/t/metadata/00002-ab.metadata.json", "/w/t/metadata/");
        assert_eq!(next, "/w/t/metadata/v3.metadata.json");
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
