//! Writes to attached Iceberg catalogs: `CREATE TABLE [AS SELECT]`, `DROP TABLE` (the
//! catalog forgets the table; its files stay, as they are not Osprey's), and
//! `INSERT INTO catalog.namespace.table`. For an insert, the
//! executors write Parquet files with the table's field ids under the table's `data/`
//! directory, as Osprey's own writes do (staged, deleted unless committed), and the
//! coordinator commits them as one snapshot through the catalog ([`osprey_iceberg::append_files`]).
//!
//! The pending-write record is dropped just before the commit: a coordinator that dies in the
//! commit leaves at worst unreferenced files (orphans), never a committed file deleted at
//! the next start.

use super::places::TablePlaces;
use crate::error::QueryError;
use crate::lakehouse::committed::CommittedCatalog;
use crate::lakehouse::formats::iceberg_query_error;
use crate::lakehouse::writes::StagedWrite;
use datafusion::common::ScalarValue;
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, lit};
use osprey_engine::WriteFormat;
use osprey_iceberg::{IcebergCatalog, StoreLocation};
use std::sync::Arc;

/// What writes to an attached catalog's tables need of it.
pub(super) struct CatalogTarget<'a> {
    /// The catalog's name in Osprey, for messages.
    pub catalog_name: &'a str,
    /// Its client.
    pub client: &'a Arc<dyn IcebergCatalog>,
    /// The coordinator's object stores.
    pub runtime: &'a Arc<RuntimeEnv>,
    /// Where the catalog's tables may keep their files.
    pub places: &'a TablePlaces,
    /// The coordinator's object stores, which keep credentials a catalog vends.
    pub storage: &'a Arc<osprey_engine::StorageRegistry>,
}

/// A table of an attached catalog as a write names it: its namespace and name, and the
/// branch the write goes on.
#[derive(Debug, Clone, Copy)]
pub(super) struct WriteTable<'a> {
    /// The namespace.
    pub namespace: &'a str,
    /// The table's name.
    pub table: &'a str,
    /// `main`, or the branch the statement named (`t.branch_audit`).
    pub branch: &'a str,
}

impl WriteTable<'_> {
    /// The name the statement's scan of the table goes by (the branch read is the branch
    /// written).
    pub fn scanned_as(&self) -> String {
        match self.branch {
            "main" => self.table.to_string(),
            branch => format!("{}$ref={branch}", self.table),
        }
    }

    /// The head of the branch in `metadata`, when no scan says which snapshot was read.
    pub fn head(&self, metadata: &osprey_iceberg::TableMetadata) -> Option<i64> {
        match self.branch {
            "main" => metadata.current_snapshot_id,
            branch => metadata.refs.get(branch).map(|r| r.snapshot_id),
        }
    }
}

/// A table of an attached catalog, opened for a write.
pub(super) struct OpenedTable {
    /// `catalog.namespace.table`, for messages.
    pub subject: String,
    /// The store its files are written through (vended credentials included).
    pub store_url: datafusion::execution::object_store::ObjectStoreUrl,
    /// That store.
    pub store: Arc<dyn object_store::ObjectStore>,
    /// Its current metadata.
    pub metadata: osprey_iceberg::TableMetadata,
    /// Its location, without a trailing `/`.
    pub location: String,
}

impl OpenedTable {
    /// The error of `err` for this table.
    pub fn failed(&self, err: osprey_iceberg::IcebergError) -> QueryError {
        iceberg_query_error(&self.subject, err)
    }
}

/// Loads `namespace.table` for a write, after checking that Osprey writes it.
pub(super) async fn open(
    target: &CatalogTarget<'_>,
    namespace: &str,
    table: &str,
) -> Result<OpenedTable, QueryError> {
    let subject = format!("{}.{namespace}.{table}", target.catalog_name);
    let failed = |err| iceberg_query_error(&subject, err);
    target.client.check_writable().map_err(failed)?;
    let loaded = target
        .client
        .load_table(namespace, table)
        .await
        .map_err(failed)?
        .ok_or_else(|| QueryError::TableNotFound(format!("table {subject} does not exist")))?;
    let metadata_store = StoreLocation::parse(&loaded.metadata_location).map_err(failed)?;
    // Credentials the catalog vended for the table write its files too (see
    // `osprey_engine::VENDED_SCHEME`); else the processes' own storage settings do.
    let store_url = match loaded.credentials {
        Some(credentials) => target
            .storage
            .vend(metadata_store.own_store_url().as_str(), vended(credentials))
            .map_err(|err| QueryError::InvalidStatement(format!("{subject}: {err}")))?,
        None => metadata_store.store_url(),
    };
    let store = target
        .runtime
        .object_store(&store_url)
        .map_err(QueryError::from)?;
    let metadata = match loaded.metadata {
        Some(metadata) => metadata,
        None => osprey_iceberg::read_metadata(store.as_ref(), &loaded.metadata_location)
            .await
            .map_err(failed)?,
    };
    osprey_iceberg::check_writable(&metadata).map_err(failed)?;
    target.places.check(&metadata.location)?;
    let location = metadata.location.trim_end_matches('/').to_string();
    Ok(OpenedTable {
        subject,
        store_url,
        store,
        metadata,
        location,
    })
}

/// A staged write of files under the table's `data/` directory.
pub(super) async fn stage(
    target: &CatalogTarget<'_>,
    committed: &CommittedCatalog,
    opened: &OpenedTable,
) -> Result<StagedWrite, QueryError> {
    let table_path = StoreLocation::parse(&opened.location)
        .and_then(|root| root.path_of(&opened.location))
        .map_err(|err| opened.failed(err))?;
    let write_id = uuid::Uuid::new_v4().to_string();
    // The staging prefix names the store the files are written through.
    let prefix = format!("{}{table_path}/data/{write_id}/", opened.store_url.as_str());
    Ok(StagedWrite::begin(committed, Arc::clone(target.runtime), write_id, prefix).await?)
}

/// Runs `commit` as a task of its own, keeping `write`'s files (if the change staged any)
/// when it commits (or may have) and deleting them when it fails. A statement cancelled or
/// timed out while the catalog commits must neither delete files a committed snapshot
/// references nor leave the files of a failed commit behind: the task decides, whatever
/// becomes of the statement.
pub(super) async fn commit_detached(
    opened: &OpenedTable,
    write: Option<StagedWrite>,
    commit: impl Future<Output = Result<osprey_iceberg::AppendOutcome, osprey_iceberg::IcebergError>>
    + Send
    + 'static,
) -> Result<(), QueryError> {
    if let Some(write) = &write {
        write.forget().await?;
    }
    let task = tokio::spawn(async move {
        let outcome = commit.await;
        match (&outcome, write) {
            // A commit that may have happened keeps its files.
            (Ok(_) | Err(osprey_iceberg::IcebergError::CommitStateUnknown(_)), Some(write)) => {
                write.published()
            }
            // The write is dropped: its files are deleted.
            (_, write) => std::mem::drop(write),
        }
        outcome
    });
    match task.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(opened.failed(err)),
        Err(join) => Err(QueryError::Execution(format!(
            "the commit of {} stopped: {join}",
            opened.subject
        ))),
    }
}

/// Writes `input` into `namespace.table` (replacing every file with `overwrite`) and commits
/// it; returns the rows written.
pub(super) async fn insert(
    target: &CatalogTarget<'_>,
    name: WriteTable<'_>,
    state: &SessionState,
    committed: &CommittedCatalog,
    input: LogicalPlan,
    overwrite: bool,
) -> Result<u64, QueryError> {
    let opened = open(target, name.namespace, name.table).await?;
    let metadata = &opened.metadata;
    // An overwrite replaces what the statement read (the snapshot its query's scan pinned,
    // else the branch's head now): any commit since conflicts with it.
    let scanned_as = name.scanned_as();
    let mode = match overwrite {
        true => osprey_iceberg::WriteMode::Overwrite {
            base: snapshot_read(
                &input,
                target.catalog_name,
                name.namespace,
                &scanned_as,
                state,
            )
            .unwrap_or_else(|| name.head(metadata)),
        },
        false => osprey_iceberg::WriteMode::Append,
    };
    // Dynamic overwrite replaces only the partitions written (an unpartitioned table has one).
    let partitioned = metadata
        .partition_spec(metadata.default_spec_id)
        .is_some_and(|spec| !spec.is_unpartitioned());
    let dynamic = match mode {
        osprey_iceberg::WriteMode::Overwrite { base } if partitioned => {
            let settings = crate::session_options::OspreySettings::of(state);
            (settings.partition_overwrite_mode
                == crate::session_options::PartitionOverwriteMode::Dynamic)
                .then_some(base)
        }
        _ => None,
    };
    let write = stage(target, committed, &opened).await?;
    let (new_files, rows) = write_data(&write, state, &opened, input).await?;
    let spec_id = metadata.default_spec_id;
    let client = Arc::clone(target.client);
    let (namespace, table, branch) = (
        name.namespace.to_string(),
        name.table.to_string(),
        name.branch.to_string(),
    );
    let store = Arc::clone(&opened.store);
    let commit = async move {
        let target = osprey_iceberg::BranchRef {
            namespace: &namespace,
            name: &table,
            branch: &branch,
        };
        let client = client.as_ref();
        match dynamic {
            // Nothing written replaces nothing.
            Some(_) if new_files.is_empty() => Ok(osprey_iceberg::AppendOutcome::default()),
            Some(base) => {
                osprey_iceberg::replace_partitions(client, target, store, new_files, spec_id, base)
                    .await
            }
            None => {
                osprey_iceberg::append_files(client, target, store, new_files, spec_id, mode).await
            }
        }
    };
    commit_detached(&opened, Some(write), commit).await?;
    Ok(rows)
}

/// Writes the rows of `input` (the table's columns) as data files of `opened`'s table through
/// `write`; returns them, ready to commit, and the rows written. The rows are new: on a
/// format 3 table the commit gives them row ids.
pub(super) async fn write_data(
    write: &StagedWrite,
    state: &SessionState,
    opened: &OpenedTable,
    input: LogicalPlan,
) -> Result<(Vec<osprey_iceberg::NewDataFile>, u64), QueryError> {
    write_data_files(write, state, opened, input, false).await
}

/// Writes rows copied from the table's files (copy-on-write, `optimize`), as
/// [`write_data`] does. On a format 3 table `input` ends with the rows'
/// [`osprey_iceberg::row_lineage_values`], which the files store: a copied row keeps its id
/// (spec: "Row Lineage").
pub(super) async fn write_copied_data(
    write: &StagedWrite,
    state: &SessionState,
    opened: &OpenedTable,
    input: LogicalPlan,
) -> Result<(Vec<osprey_iceberg::NewDataFile>, u64), QueryError> {
    write_data_files(write, state, opened, input, keeps_lineage(opened)).await
}

/// Whether rows copied from the table must carry their lineage: a format 3 table's do.
pub(super) fn keeps_lineage(opened: &OpenedTable) -> bool {
    opened.metadata.format_version >= 3
}

async fn write_data_files(
    write: &StagedWrite,
    state: &SessionState,
    opened: &OpenedTable,
    input: LogicalPlan,
    lineage: bool,
) -> Result<(Vec<osprey_iceberg::NewDataFile>, u64), QueryError> {
    let metadata = &opened.metadata;
    // The files' schema is the table's, field ids included, whatever the plan keeps: each
    // batch is cast to it as it is written. Its top-level columns are optional, so that a
    // null in a required column reaches the commit, which refuses it by name from the files'
    // null counts. Copied rows of a format 3 table add their lineage.
    let table_schema = metadata.current_schema().to_arrow();
    let mut file_fields: Vec<datafusion::arrow::datatypes::FieldRef> = table_schema
        .fields()
        .iter()
        .map(|field| Arc::new(field.as_ref().clone().with_nullable(true)))
        .collect();
    if lineage {
        file_fields.extend(osprey_iceberg::row_lineage_fields());
    }
    let file_schema = datafusion::arrow::datatypes::Schema::new_with_metadata(
        file_fields,
        table_schema.metadata().clone(),
    );
    // A partitioned table's rows carry their partition values, computed by the executors
    // that write them (see `partition_key_columns`).
    let spec = osprey_iceberg::write_spec(metadata).map_err(|err| opened.failed(err))?;
    let input = partition_key_columns(input, &spec, &table_schema)?;
    let files = write
        .run_as(
            state,
            input,
            WriteFormat::Parquet,
            Some(&file_schema),
            spec.len(),
            Vec::new(),
        )
        .await?;
    let rows = files.iter().map(|(file, _)| file.row_count).sum();
    let new_files = files
        .iter()
        .map(|(file, partition)| {
            Ok(osprey_iceberg::NewDataFile {
                location: file_location(&opened.location, &file.path),
                size: file.size_bytes,
                partition: match partition {
                    Some(key) => partition_values(key)?,
                    None => Vec::new(),
                },
            })
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    Ok((new_files, rows))
}

/// `input` with a column per partition field after the table's columns: the field's
/// transform (`iceberg_transform`) of its source column, cast to the table's type first.
fn partition_key_columns(
    input: LogicalPlan,
    spec: &[osprey_iceberg::WritePartitionField],
    table_schema: &datafusion::arrow::datatypes::Schema,
) -> Result<LogicalPlan, QueryError> {
    if spec.is_empty() {
        return Ok(input);
    }
    let columns: Vec<Expr> = input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let transform = Arc::new(osprey_iceberg::partition_transform_udf());
    let mut projection = columns.clone();
    for (index, field) in spec.iter().enumerate() {
        let source = columns.get(field.source_index).ok_or_else(|| {
            QueryError::Execution(format!(
                "the write has no column for the partition source {}",
                field.source.name
            ))
        })?;
        let source_type = table_schema.field(field.source_index).data_type().clone();
        let source = cast(source.clone(), source_type);
        let text = osprey_iceberg::transform_text(&field.field.transform);
        let key = transform.call(vec![lit(text), source]);
        projection.push(key.alias(format!("__osprey_partition_{index}")));
    }
    Ok(LogicalPlanBuilder::from(input)
        .project(projection)?
        .build()?)
}

/// The partition values a write reported for one file.
pub(super) fn partition_values(key: &[u8]) -> Result<Vec<ScalarValue>, QueryError> {
    let batch = osprey_engine::decode_partition_key(key)?;
    batch
        .columns()
        .iter()
        .map(|column| ScalarValue::try_from_array(column, 0).map_err(QueryError::from))
        .collect()
}

/// The location of a written file (`path` in the table's store) in the form of the table's
/// location: `s3://bucket/path`, `file:///path`, or `/path`.
pub(super) fn file_location(table_location: &str, path: &str) -> String {
    match table_location.split_once("://") {
        Some(("file", _)) => format!("file:///{path}"),
        Some((scheme, rest)) => {
            let bucket = rest.split('/').next().unwrap_or("");
            format!("{scheme}://{bucket}/{path}")
        }
        None => format!("/{path}"),
    }
}

/// The snapshot of `catalog.namespace.table` that `input` scans, when it scans that table
/// (`Some(None)`: the table had no snapshot).
pub(super) fn snapshot_read(
    input: &LogicalPlan,
    catalog: &str,
    namespace: &str,
    table: &str,
    state: &SessionState,
) -> Option<Option<i64>> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let defaults = &state.config_options().catalog;
    let mut found = None;
    let _ = input.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let name = scan
                .table_name
                .clone()
                .resolve(&defaults.default_catalog, &defaults.default_schema);
            let provider = datafusion::datasource::source_as_provider(&scan.source).ok();
            if (
                name.catalog.as_ref(),
                name.schema.as_ref(),
                name.table.as_ref(),
            ) == (catalog, namespace, table)
                && let Some(scanned) = provider
                    .as_ref()
                    .and_then(|p| p.as_ref().downcast_ref::<osprey_iceberg::IcebergTable>())
            {
                found = Some(scanned.snapshot().map(|s| s.snapshot_id));
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// What a catalog vended, as the object stores keep it.
pub(super) fn vended(
    credentials: osprey_iceberg::TableCredentials,
) -> osprey_engine::VendedCredentials {
    osprey_engine::VendedCredentials {
        access_key_id: credentials.access_key_id,
        secret_access_key: credentials.secret_access_key,
        session_token: credentials.session_token,
        expires_at_ms: credentials.expires_at_ms,
        region: credentials.region,
    }
}

/// An internal error: something Osprey built itself is not as it should be.
pub(super) fn internal(message: &str) -> QueryError {
    QueryError::from(datafusion::common::DataFusionError::Internal(
        message.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_locations_follow_the_table_location() {
        assert_eq!(
            file_location("s3://lake/db/t", "db/t/data/x.parquet"),
            "s3://lake/db/t/data/x.parquet"
        );
        assert_eq!(
            file_location("file:///wh/t", "wh/t/data/x.parquet"),
            "file:///wh/t/data/x.parquet"
        );
        assert_eq!(
            file_location("/wh/t", "wh/t/data/x.parquet"),
            "/wh/t/data/x.parquet"
        );
    }
}
