//! Writing Iceberg tables: appending data files as one snapshot, committed through the
//! table's catalog (spec: "Commit Conflict Resolution and Retry").
//!
//! Osprey's executors write the Parquet files (with the table's field ids); here the
//! coordinator reads their footers for the manifest's metrics, then for each attempt writes a
//! manifest, a manifest list (the new manifest and the parent snapshot's manifests) and, for
//! catalogs that point at metadata files, the next metadata file, and asks the catalog to
//! commit (a compare-and-swap of the metadata location, or REST's `updateTable` with the
//! requirement that `main` has not moved). An
//! never conflicts with another commit: when another writer came first, the table is loaded
//! again and the snapshot is rebuilt on top of it, up to `commit.retry.num-retries` times
//! (default 4) with a backoff from `commit.retry.min-wait-ms` (100) to
//! `commit.retry.max-wait-ms` (60 000). Whatever a failed attempt wrote is deleted; the data
//! files are the caller's to delete when the append fails, except after
//! [`IcebergError::CommitStateUnknown`]: the commit may have happened, so nothing is deleted.
//!
//! Written so far: format version 2 tables, partitioned by any spec of top-level columns
//! ([`partitioning`]): each file holds one partition, whose values the writer reports. Other
//! tables are refused by name.

mod manifests;
mod metrics;
mod new_table;
mod partition_values;
mod partitioning;
mod snapshot;

pub use manifests::AddedFile;
pub use metrics::{WrittenMetrics, parquet_metrics};
pub use new_table::{NewTable, create_table, schema_from_arrow};
pub use partitioning::{WritePartitionField, write_spec};
pub use snapshot::{AppendSummary, NewSnapshot};

use crate::catalog::{IcebergCatalog, SnapshotCommit};
use crate::error::IcebergError;
use crate::manifest::{ManifestContent, ManifestCounts, ManifestFile, read_manifest_list};
use crate::metadata::TableMetadata;
use crate::scan::location::StoreLocation;
use datafusion::common::ScalarValue;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What an append committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The new snapshot.
    pub snapshot_id: i64,
    /// How many attempts the commit took.
    pub attempts: u32,
}

/// A table as loaded for a write: its metadata, parsed, and the file's JSON (kept whole for
/// the next metadata).
struct Current {
    location: String,
    metadata: TableMetadata,
    json: serde_json::Value,
}

/// Why a table cannot be written yet, if it cannot.
pub fn check_writable(metadata: &TableMetadata) -> Result<(), IcebergError> {
    if metadata.format_version != 2 {
        return Err(IcebergError::Unsupported(format!(
            "format version {}, which Osprey does not write yet (it writes version 2 tables)",
            metadata.format_version
        )));
    }
    write_spec(metadata).map(|_| ())
}

/// A data file a write produced, ready to commit.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDataFile {
    /// Its full location, under the table's location.
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its partition values, one per field of the table's default spec (in order; a null
    /// scalar for a null value), as the writer computed them.
    pub partition: Vec<ScalarValue>,
}

/// How a write's files join the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Added to the table's files (`INSERT INTO`).
    Append,
    /// Replace every file of the table (`INSERT OVERWRITE`), whose current snapshot was
    /// `base` (`None`: no snapshot) when the statement read it. It conflicts with any commit
    /// since: replacing that commit's rows unseen would lose them.
    Overwrite {
        /// The snapshot the statement read.
        base: Option<i64>,
    },
}

impl WriteMode {
    fn replaces_all(self) -> bool {
        matches!(self, WriteMode::Overwrite { .. })
    }
}

/// Commits `files` (Parquet files already written under the table's location, each holding
/// rows of one partition of the default spec `spec_id`) to `namespace.name` of `catalog` as
/// one snapshot; `store` is the table's object store.
pub async fn append(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: Arc<dyn ObjectStore>,
    files: Vec<NewDataFile>,
    spec_id: i32,
    mode: WriteMode,
) -> Result<AppendOutcome, IcebergError> {
    let mut current = load(catalog, namespace, name, store.as_ref()).await?;
    check_writable(&current.metadata)?;
    let spec = write_spec(&current.metadata)?;
    if current.metadata.default_spec_id != spec_id {
        return Err(spec_conflict(namespace, name));
    }
    if let WriteMode::Overwrite { base } = mode
        && current.metadata.current_snapshot().map(|s| s.snapshot_id) != base
    {
        return Err(overwrite_conflict(namespace, name));
    }
    let table = StoreLocation::parse(&current.metadata.location)?;
    let schema = current.metadata.current_schema().clone();

    let mut added = Vec::with_capacity(files.len());
    for file in files {
        let path = table.path_of(&file.location)?;
        let metrics = parquet_metrics(Arc::clone(&store), &path, file.size, &schema).await?;
        added.push(AddedFile {
            location: file.location,
            size: file.size as i64,
            metrics,
            partition: file.partition,
        });
    }
    let partition_summaries =
        partition_values::summaries(&spec, added.iter().map(|f| f.partition.as_slice()));
    // A required column must hold no null: the files say whether it does (top-level
    // columns; a null inside a required nested field is not caught yet).
    for field in schema.fields.iter().filter(|field| field.required) {
        let nulls: i64 = added
            .iter()
            .filter_map(|file| file.metrics.null_value_counts.get(&field.id))
            .sum();
        if nulls > 0 {
            return Err(IcebergError::ConstraintViolation(format!(
                "column {} is required (NOT NULL), and the write gave it {nulls} null value{}; \
                 nothing was committed",
                field.name,
                if nulls == 1 { "" } else { "s" }
            )));
        }
    }
    let summary = AppendSummary {
        replaces_all: mode.replaces_all(),
        added_files: added.len() as i64,
        added_records: added.iter().map(|f| f.metrics.record_count).sum(),
        added_size: added.iter().map(|f| f.size).sum(),
    };
    let metadata_dir = format!(
        "{}/metadata",
        current.metadata.location.trim_end_matches('/')
    );
    let write_id = uuid::Uuid::new_v4();
    let retry = RetryPolicy::of(&current.metadata);
    let mut written = Written::new(Arc::clone(&store));

    // A manifest per attempt: its entries name the attempt's snapshot id (their sequence
    // number is inherited from the manifest list).
    let mut attempt = 0u32;
    let result = loop {
        attempt += 1;
        let snapshot_id = snapshot::new_snapshot_id(&current.metadata);
        let sequence_number = current.metadata.last_sequence_number + 1;
        let manifest_location = format!("{metadata_dir}/{write_id}-m{attempt}.avro");
        let manifest_bytes = manifests::write_data_manifest(
            &added,
            snapshot_id,
            &current_schema_json(&current),
            schema.schema_id,
            spec_id,
            &spec,
        )?;
        let manifest = ManifestFile {
            path: manifest_location.clone(),
            length: manifest_bytes.len() as i64,
            partition_spec_id: spec_id,
            content: ManifestContent::Data,
            sequence_number,
            min_sequence_number: sequence_number,
            added_snapshot_id: snapshot_id,
            counts: ManifestCounts {
                added_files: Some(summary.added_files),
                existing_files: Some(0),
                deleted_files: Some(0),
                added_rows: Some(summary.added_records),
                existing_rows: Some(0),
                deleted_rows: Some(0),
            },
            partitions: partition_summaries.clone(),
        };
        written
            .create(&table.path_of(&manifest_location)?, manifest_bytes)
            .await?;
        let parent = current.metadata.current_snapshot().cloned();
        let mut listed = vec![manifest];
        if let (Some(parent), WriteMode::Append) = (&parent, mode) {
            let Some(list) = &parent.manifest_list else {
                break Err(IcebergError::Unsupported(
                    "a snapshot without a manifest list (v1's inline manifests), which Osprey \
                     does not append to"
                        .to_string(),
                ));
            };
            let path = table.path_of(list)?;
            let bytes = read(store.as_ref(), &path).await?;
            listed.extend(read_manifest_list(&bytes)?);
        }
        let list_location = format!("{metadata_dir}/snap-{snapshot_id}-{attempt}-{write_id}.avro");
        let list_bytes = manifests::write_manifest_list(
            &listed,
            snapshot_id,
            parent.as_ref().map(|p| p.snapshot_id),
            sequence_number,
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
            schema_id: schema.schema_id,
        };
        let snapshot = snapshot::snapshot_json(&current.json, &new_snapshot, summary);
        let mut metadata_location = String::new();
        if !catalog.writes_metadata() {
            metadata_location = snapshot::next_metadata_location(&current.location, &metadata_dir);
            let next = snapshot::append_metadata(&current.json, &current.location, &snapshot)?;
            written
                .create(&table.path_of(&metadata_location)?, next)
                .await?;
        }
        let commit = SnapshotCommit {
            base_location: current.location.clone(),
            base_snapshot_id: new_snapshot.parent_snapshot_id,
            snapshot,
            metadata_location,
        };
        match catalog.commit_snapshot(namespace, name, &commit).await {
            Ok(true) => {
                break Ok(AppendOutcome {
                    snapshot_id,
                    attempts: attempt,
                });
            }
            Err(IcebergError::CommitStateUnknown(message)) => {
                // The commit may have happened: what it references must stay.
                return Err(IcebergError::CommitStateUnknown(message));
            }
            Ok(false) if mode.replaces_all() => break Err(overwrite_conflict(namespace, name)),
            Ok(false) if attempt <= retry.retries => {
                written.delete_all().await;
                tracing::info!(table = %format!("{namespace}.{name}"), attempt, "an Iceberg commit lost to another writer's; retrying on top of it");
                tokio::time::sleep(retry.wait(attempt)).await;
                current = load(catalog, namespace, name, store.as_ref()).await?;
                check_writable(&current.metadata)?;
                if current.metadata.current_schema().schema_id != schema.schema_id {
                    break Err(IcebergError::CommitConflict(format!(
                        "{namespace}.{name}: its schema changed while Osprey wrote to it; \
                         run the statement again"
                    )));
                }
                if current.metadata.default_spec_id != spec_id {
                    break Err(spec_conflict(namespace, name));
                }
            }
            Ok(false) => {
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

fn spec_conflict(namespace: &str, name: &str) -> IcebergError {
    IcebergError::CommitConflict(format!(
        "{namespace}.{name}: its partitioning changed while Osprey wrote to it; run the \
         statement again"
    ))
}

fn overwrite_conflict(namespace: &str, name: &str) -> IcebergError {
    IcebergError::CommitConflict(format!(
        "{namespace}.{name}: another writer committed while it was being overwritten; run the \
         statement again"
    ))
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

/// Loads the current metadata of `namespace.name`, text and all.
async fn load(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: &dyn ObjectStore,
) -> Result<Current, IcebergError> {
    let loaded = catalog
        .load_table(namespace, name)
        .await?
        .ok_or_else(|| IcebergError::Catalog(format!("{namespace}.{name} does not exist")))?;
    let location = loaded.metadata_location;
    let path = StoreLocation::parse(&location)?.path_of(&location)?;
    let text = read(store, &path).await?;
    let metadata = TableMetadata::from_json(&text)?;
    let json = serde_json::from_slice(&text)
        .map_err(|err| IcebergError::Invalid(format!("{location}: {err}")))?;
    Ok(Current {
        location,
        metadata,
        json,
    })
}

async fn read(store: &dyn ObjectStore, path: &Path) -> Result<Vec<u8>, IcebergError> {
    let fail =
        |err: object_store::Error| IcebergError::Invalid(format!("cannot read {path}: {err}"));
    Ok(store
        .get(path)
        .await
        .map_err(fail)?
        .bytes()
        .await
        .map_err(fail)?
        .to_vec())
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The table's `commit.retry.*` properties.
struct RetryPolicy {
    retries: u32,
    min_wait: Duration,
    max_wait: Duration,
}

impl RetryPolicy {
    fn of(metadata: &TableMetadata) -> Self {
        let property = |key: &str, default: u64| {
            metadata
                .properties
                .get(key)
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Self {
            retries: property("commit.retry.num-retries", 4) as u32,
            min_wait: Duration::from_millis(property("commit.retry.min-wait-ms", 100)),
            max_wait: Duration::from_millis(property("commit.retry.max-wait-ms", 60_000)),
        }
    }

    /// The wait before retry `attempt` (1-based): doubling from the minimum, with jitter.
    fn wait(&self, attempt: u32) -> Duration {
        let doubled = self
            .min_wait
            .saturating_mul(1 << attempt.min(16).saturating_sub(1));
        let capped = doubled.min(self.max_wait);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 100) as u32;
        capped.mul_f64(0.9 + f64::from(jitter) / 1000.0)
    }
}

/// Files a commit attempt wrote, deleted when it does not become the table's.
struct Written {
    store: Arc<dyn ObjectStore>,
    paths: Vec<Path>,
}

impl Written {
    fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            paths: Vec::new(),
        }
    }

    /// Writes a new file (never over an existing one).
    async fn create(&mut self, path: &Path, bytes: Vec<u8>) -> Result<(), IcebergError> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.store
            .put_opts(path, bytes.into(), options)
            .await
            .map_err(|err| IcebergError::Invalid(format!("cannot write {path}: {err}")))?;
        self.paths.push(path.clone());
        Ok(())
    }

    async fn delete_all(&mut self) {
        for path in self.paths.drain(..) {
            if let Err(err) = self.store.delete(&path).await {
                tracing::warn!(%path, error = %err, "cannot delete a file of a failed Iceberg commit");
            }
        }
    }
}
