//! Loading a table for a change, and committing a change of its metadata: the next metadata
//! file (for catalogs that point at them) and the catalog's compare-and-swap, retried as the
//! table's `commit.retry.*` properties say. Snapshot commits ([`super::commit`]) and
//! metadata-only ones (`ALTER TABLE`, branches and tags, expiry) both go through here.

use super::snapshot;
use super::storage::{Written, read};
use crate::catalog::{IcebergCatalog, TableCommit};
use crate::error::IcebergError;
use crate::metadata::TableMetadata;
use crate::scan::location::StoreLocation;
use crate::updates::{TableRequirement, TableUpdate, next_metadata};
use object_store::ObjectStore;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A table as loaded for a write: its metadata, parsed, and the file's JSON (kept whole for
/// the next metadata).
pub(super) struct Current {
    pub location: String,
    pub metadata: TableMetadata,
    pub json: serde_json::Value,
}

/// Loads the current metadata of `namespace.name`, text and all.
pub(super) async fn load(
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

/// What a commit made current.
pub(super) struct Committed {
    /// The new metadata file (empty for catalogs that write their own).
    pub location: String,
    /// Its JSON (`None` for catalogs that write their own).
    pub metadata: Option<serde_json::Value>,
}

/// Writes the metadata file that follows `current` once `updates` apply (for catalogs that
/// point at metadata files; its write is recorded in `written`), and asks the catalog to
/// commit. `None` when another commit came first. Metadata that would not read back as
/// metadata is never written.
pub(super) async fn try_commit(
    catalog: &dyn IcebergCatalog,
    (namespace, name): (&str, &str),
    current: &Current,
    requirements: Vec<TableRequirement>,
    updates: Vec<TableUpdate>,
    written: &mut Written,
) -> Result<Option<Committed>, IcebergError> {
    let mut metadata_location = String::new();
    let mut metadata = None;
    if !catalog.writes_metadata() {
        let table = StoreLocation::parse(&current.metadata.location)?;
        let metadata_dir = format!(
            "{}/metadata",
            current.metadata.location.trim_end_matches('/')
        );
        let next = next_metadata(&current.json, &current.location, &updates, now_ms())?;
        let bytes = serde_json::to_vec_pretty(&next)
            .map_err(|err| IcebergError::Invalid(format!("{namespace}.{name}: {err}")))?;
        TableMetadata::from_json(&bytes).map_err(|err| {
            IcebergError::Invalid(format!(
                "{namespace}.{name}: the commit would make unreadable metadata: {err}"
            ))
        })?;
        if catalog.versioned_metadata() {
            metadata_location = snapshot::next_versioned_location(&current.location, &metadata_dir);
            // Another writer made this version first: the commit lost.
            if !written
                .create_new(&table.path_of(&metadata_location)?, bytes)
                .await?
            {
                return Ok(None);
            }
        } else {
            metadata_location = snapshot::next_metadata_location(&current.location, &metadata_dir);
            written
                .create(&table.path_of(&metadata_location)?, bytes)
                .await?;
        }
        metadata = Some(next);
    }
    let commit = TableCommit {
        base_location: current.location.clone(),
        requirements,
        updates,
        metadata_location: metadata_location.clone(),
    };
    Ok(catalog
        .commit_table(namespace, name, &commit)
        .await?
        .then_some(Committed {
            location: metadata_location,
            metadata,
        }))
}

/// Commits a change to `namespace.name`'s metadata alone (no snapshot): `build` answers the
/// requirements and updates for the table as loaded (`None`: nothing to change), and is asked
/// again on top of another writer's commit, as the table's `commit.retry.*` properties say.
/// Answers the table as the committed change was built on, and what it made current, if one
/// was.
pub(super) async fn commit_metadata(
    catalog: &dyn IcebergCatalog,
    (namespace, name): (&str, &str),
    store: &Arc<dyn ObjectStore>,
    mut build: impl FnMut(
        &Current,
    )
        -> Result<Option<(Vec<TableRequirement>, Vec<TableUpdate>)>, IcebergError>,
) -> Result<Option<(Current, Committed)>, IcebergError> {
    catalog.check_writable()?;
    let mut current = load(catalog, namespace, name, store.as_ref()).await?;
    let retry = RetryPolicy::of(&current.metadata);
    let mut written = Written::new(Arc::clone(store));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some((requirements, updates)) = build(&current)? else {
            return Ok(None);
        };
        let committed = try_commit(
            catalog,
            (namespace, name),
            &current,
            requirements,
            updates,
            &mut written,
        )
        .await;
        match committed {
            Ok(Some(committed)) => return Ok(Some((current, committed))),
            Ok(None) if attempt <= retry.retries => {
                written.delete_all().await;
                tokio::time::sleep(retry.wait(attempt)).await;
                current = load(catalog, namespace, name, store.as_ref()).await?;
            }
            Ok(None) => {
                written.delete_all().await;
                return Err(IcebergError::CommitConflict(format!(
                    "{namespace}.{name}: other writers committed first {attempt} times; run \
                     the statement again"
                )));
            }
            Err(err @ IcebergError::CommitStateUnknown(_)) => return Err(err),
            Err(err) => {
                written.delete_all().await;
                return Err(err);
            }
        }
    }
}

/// The table's `commit.retry.*` properties.
pub(super) struct RetryPolicy {
    /// How many times a lost commit is tried again.
    pub retries: u32,
    min_wait: Duration,
    max_wait: Duration,
}

impl RetryPolicy {
    pub(super) fn of(metadata: &TableMetadata) -> Self {
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
    pub(super) fn wait(&self, attempt: u32) -> Duration {
        let doubled = self
            .min_wait
            .saturating_mul(1 << attempt.min(16).saturating_sub(1));
        let capped = doubled.min(self.max_wait);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 100) as u32;
        capped.mul_f64(0.9 + f64::from(jitter) / 1000.0)
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
