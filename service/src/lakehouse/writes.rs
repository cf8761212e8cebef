//! Staged, distributed writes (INSERT, CTAS, UNLOAD).
//!
//! 1. The write gets an id and a staging prefix of its own, recorded in the catalog as pending
//!    before any byte is written.
//! 2. The plan `StagedWrite(input)` runs on the executors: each task writes its own files under
//!    the prefix and reports them (see `osprey_engine::write`).
//! 3. One catalog transaction publishes the files (and, for CTAS, the table) and forgets the
//!    pending write.
//!
//! If anything fails, or the statement is dropped (cancelled) before step 3, a guard deletes
//! everything under the prefix and forgets the pending write. If the coordinator itself dies,
//! the pending record remains and [`clean_abandoned_writes`] deletes the files at the next
//! start. Managed tables are read from the catalog's file list, never by listing storage, so a
//! file that is not published is never read.

use super::committed::CommittedCatalog;
use datafusion::arrow::array::{Array, BinaryArray, StringArray, UInt64Array};
use datafusion::common::DataFusionError;
use datafusion::execution::context::SessionState;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::collect;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use osprey_catalog::CatalogStore;
use osprey_catalog::{CatalogError, DataFile};
use osprey_engine::{StagedWriteNode, WriteFormat, WriteTarget};
use std::sync::Arc;

/// Rows per file before a task starts a new one.
const MAX_ROWS_PER_FILE: usize = 4_000_000;

/// Why a write failed. Nothing it wrote is visible.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Planning or running the write failed.
    #[error(transparent)]
    Query(#[from] DataFusionError),
    /// The catalog refused to publish it.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// A write in progress: deletes its staging prefix unless published.
pub struct StagedWrite {
    runtime: Arc<RuntimeEnv>,
    catalog: CommittedCatalog,
    /// The write's id.
    pub write_id: String,
    /// The URL (ending in `/`) its files go under.
    pub prefix: String,
    /// Further locations this write owns until published (write id, URL ending in `/`), such
    /// as an UNLOAD's target while files are moved into it.
    claimed: Vec<(String, String)>,
    published: bool,
}

impl StagedWrite {
    /// Records a pending write under `prefix` (a URL ending in `/`).
    pub async fn begin(
        catalog: &CommittedCatalog,
        runtime: Arc<RuntimeEnv>,
        write_id: String,
        prefix: String,
    ) -> Result<Self, WriteError> {
        catalog.store().begin_write(&write_id, &prefix).await?;
        Ok(Self {
            runtime,
            catalog: catalog.clone(),
            write_id,
            prefix,
            claimed: Vec::new(),
            published: false,
        })
    }

    /// Records `prefix` (a URL ending in `/`, known to hold nothing else) as owned by this
    /// write too: it is deleted with the staging prefix unless the write is published.
    pub async fn claim(&mut self, prefix: &str) -> Result<(), WriteError> {
        let write_id = format!("{}.{}", self.write_id, self.claimed.len() + 1);
        self.catalog.store().begin_write(&write_id, prefix).await?;
        self.claimed.push((write_id, prefix.to_string()));
        Ok(())
    }

    /// Forgets the pending records of the write and of its claims, for writes that are not
    /// published by a catalog transaction (UNLOAD). Call [`StagedWrite::published`] after.
    pub async fn forget(&self) -> Result<(), WriteError> {
        for (write_id, _) in &self.claimed {
            self.catalog.store().end_write(write_id).await?;
        }
        self.catalog.store().end_write(&self.write_id).await?;
        Ok(())
    }

    /// Runs `input` on the executors, writing files under the prefix; returns the files.
    pub async fn run(
        &self,
        state: &SessionState,
        input: LogicalPlan,
        format: WriteFormat,
    ) -> Result<Vec<DataFile>, WriteError> {
        let files = self
            .run_as(state, input, format, None, 0, Vec::new())
            .await?;
        Ok(files.into_iter().map(|(file, _)| file).collect())
    }

    /// [`StagedWrite::run`], with files of exactly `file_schema` (field metadata included)
    /// when given, partitioned by the input's last `partition_columns` columns (each file
    /// comes with its partition key, see `osprey_engine::decode_partition_key`), and each
    /// file's rows sorted by the input columns `sort_columns`.
    pub async fn run_as(
        &self,
        state: &SessionState,
        input: LogicalPlan,
        format: WriteFormat,
        file_schema: Option<&datafusion::arrow::datatypes::Schema>,
        partition_columns: usize,
        sort_columns: Vec<usize>,
    ) -> Result<Vec<(DataFile, Option<Vec<u8>>)>, WriteError> {
        let target = WriteTarget {
            prefix: self.prefix.clone(),
            format,
            max_rows_per_file: MAX_ROWS_PER_FILE,
            file_schema: file_schema
                .map(WriteTarget::encode_file_schema)
                .transpose()?,
            partition_columns,
            sort_columns,
        };
        let plan = StagedWriteNode::new(input, target)?.into_plan();
        let physical = state.create_physical_plan(&plan).await?;
        crate::statement_stats::StatementStats::add_plan(state, physical.as_ref())?;
        let batches = collect(physical, state.task_ctx()).await?;
        let mut files = Vec::new();
        for batch in batches {
            let column = |i: usize| batch.column(i).as_any();
            let (Some(paths), Some(sizes), Some(rows), Some(partitions)) = (
                column(0).downcast_ref::<StringArray>(),
                column(1).downcast_ref::<UInt64Array>(),
                column(2).downcast_ref::<UInt64Array>(),
                column(3).downcast_ref::<BinaryArray>(),
            ) else {
                return Err(DataFusionError::Internal(
                    "a write task reported files in an unexpected shape".to_string(),
                )
                .into());
            };
            for row in 0..paths.len() {
                let file = DataFile {
                    path: paths.value(row).to_string(),
                    size_bytes: sizes.value(row),
                    row_count: rows.value(row),
                };
                let partition = partitions
                    .is_valid(row)
                    .then(|| partitions.value(row).to_vec());
                files.push((file, partition));
            }
        }
        Ok(files)
    }

    /// Marks the write published: its files stay.
    pub fn published(mut self) {
        self.published = true;
    }
}

impl Drop for StagedWrite {
    fn drop(&mut self) {
        if self.published {
            return;
        }
        let runtime = Arc::clone(&self.runtime);
        let catalog = self.catalog.clone();
        let mut owned = vec![(self.write_id.clone(), self.prefix.clone())];
        owned.append(&mut self.claimed);
        // Cleanup must outlive a cancelled statement, so it runs as its own task. Tasks of a
        // failed query stop asynchronously and may still create files for a moment: the
        // prefix is deleted again after a pause, and the write is forgotten only once the last
        // pass succeeded (otherwise the next start retries).
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let mut last: Vec<Result<(), DataFusionError>> =
                    owned.iter().map(|_| Ok(())).collect();
                for pause in CLEANUP_PASSES {
                    tokio::time::sleep(pause).await;
                    for ((_, prefix), result) in owned.iter().zip(last.iter_mut()) {
                        *result = delete_prefix(&runtime, prefix).await;
                    }
                }
                for ((write_id, prefix), result) in owned.iter().zip(last) {
                    match result {
                        Ok(()) => {
                            if let Err(err) = catalog.store().end_write(write_id).await {
                                tracing::warn!(%write_id, error = %err, "cannot forget a cleaned-up write");
                            }
                        }
                        Err(err) => tracing::warn!(
                            %write_id,
                            %prefix,
                            error = %err,
                            "cannot delete an unpublished write's files; the next start retries"
                        ),
                    }
                }
            });
        }
    }
}

/// When the files of an unpublished write are deleted: at once, then again after stragglers
/// (tasks still stopping) had time to finish.
const CLEANUP_PASSES: [std::time::Duration; 3] = [
    std::time::Duration::ZERO,
    std::time::Duration::from_secs(2),
    std::time::Duration::from_secs(5),
];

/// Deletes every object under `prefix` (a URL ending in `/`).
pub async fn delete_prefix(runtime: &RuntimeEnv, prefix: &str) -> Result<(), DataFusionError> {
    let url = url::Url::parse(prefix)
        .map_err(|err| DataFusionError::Plan(format!("bad location {prefix}: {err}")))?;
    if url.scheme() == "file" {
        // Local stores leave in-progress uploads as hidden temporary files that listing skips:
        // remove the directory itself.
        let path = url
            .to_file_path()
            .map_err(|_| DataFusionError::Plan(format!("bad local location {prefix}")))?;
        return match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err.into()),
        };
    }
    let store_url = ObjectStoreUrl::parse(&url[..url::Position::BeforePath])?;
    let store = runtime.object_store(&store_url)?;
    let path =
        Path::from_url_path(url.path()).map_err(|err| DataFusionError::External(Box::new(err)))?;
    let locations = store
        .list(Some(&path))
        .map_ok(|meta| meta.location)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|err| DataFusionError::External(Box::new(err)))?;
    for location in locations {
        match store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(err) => return Err(DataFusionError::External(Box::new(err))),
        }
    }
    Ok(())
}

/// Deletes what writes interrupted by a coordinator crash left behind; run at start-up.
pub async fn clean_abandoned_writes(store: &CatalogStore, runtime: &RuntimeEnv) {
    let pending = match store.pending_writes().await {
        Ok(pending) => pending,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read pending writes");
            return;
        }
    };
    for write in pending {
        match delete_prefix(runtime, &write.staging_prefix).await {
            Ok(()) => {
                tracing::info!(write_id = %write.write_id, prefix = %write.staging_prefix, "deleted an abandoned write");
                if let Err(err) = store.end_write(&write.write_id).await {
                    tracing::warn!(error = %err, "cannot forget an abandoned write");
                }
            }
            Err(err) => tracing::warn!(
                write_id = %write.write_id,
                prefix = %write.staging_prefix,
                error = %err,
                "cannot delete an abandoned write; will retry at the next start"
            ),
        }
    }
}
