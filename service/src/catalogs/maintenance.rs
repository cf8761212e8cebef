//! Table maintenance on the Iceberg tables of attached catalogs (`ALTER TABLE ... EXECUTE`,
//! see [`crate::table_procedures`]). Compaction reads the chosen files through the table's
//! own scan (so deletes are applied), has the executors write the rows again as every write
//! does (staged, clustered by partition), and commits one `replace` snapshot; expiry and
//! orphan removal are metadata and storage work on the coordinator
//! ([`osprey_iceberg::expire_snapshots`], [`osprey_iceberg::remove_orphan_files`]).

use super::writes::{
    CatalogTarget, OpenedTable, commit_detached, keeps_lineage, open, stage, write_copied_data,
};
use crate::error::QueryError;
use crate::lakehouse::committed::CommittedCatalog;
use crate::table_procedures::Procedure;
use datafusion::catalog::TableProvider;
use datafusion::common::ResolvedTableReference;
use datafusion::datasource::provider_as_source;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, ident};
use osprey_iceberg::{IcebergTable, StoreLocation, row_lineage_values};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Runs `procedure` on `name`, whose table as the statement opened it is `table`; answers the
/// figures of the procedure's result row, in the order of [`Procedure::result_columns`]
/// (none for a branch or tag change).
pub(super) async fn run(
    target: &CatalogTarget<'_>,
    name: &ResolvedTableReference,
    table: IcebergTable,
    state: &SessionState,
    committed: &CommittedCatalog,
    procedure: Procedure,
) -> Result<Vec<u64>, QueryError> {
    let opened = open(target, &name.schema, &name.table).await?;
    let client = target.client.as_ref();
    let store = Arc::clone(&opened.store);
    let (namespace, table_name) = (name.schema.as_ref(), name.table.as_ref());
    match procedure {
        Procedure::Optimize {
            file_size_threshold,
        } => {
            optimize(
                target,
                name,
                table,
                state,
                committed,
                &opened,
                file_size_threshold,
            )
            .await
        }
        Procedure::ExpireSnapshots {
            retention_threshold,
        } => {
            let outcome = osprey_iceberg::expire_snapshots(
                client,
                namespace,
                table_name,
                store,
                cutoff_ms(retention_threshold),
            )
            .await
            .map_err(|err| opened.failed(err))?;
            Ok(vec![
                outcome.expired_snapshots,
                outcome.deleted_data_files,
                outcome.deleted_delete_files,
                outcome.deleted_manifests,
                outcome.deleted_manifest_lists,
            ])
        }
        Procedure::RemoveOrphanFiles {
            retention_threshold,
        } => {
            let outcome = osprey_iceberg::remove_orphan_files(
                client,
                namespace,
                table_name,
                store,
                cutoff_ms(retention_threshold),
            )
            .await
            .map_err(|err| opened.failed(err))?;
            Ok(vec![outcome.scanned_files, outcome.deleted_files])
        }
        Procedure::SetRef(change) => {
            osprey_iceberg::set_ref(client, namespace, table_name, store, &change)
                .await
                .map_err(|err| opened.failed(err))?;
            Ok(Vec::new())
        }
        Procedure::DropRef {
            name: ref_name,
            kind,
            if_exists,
        } => {
            let dropped =
                osprey_iceberg::drop_ref(client, namespace, table_name, store, (&ref_name, kind))
                    .await
                    .map_err(|err| opened.failed(err))?;
            match dropped || if_exists {
                true => Ok(Vec::new()),
                false => Err(QueryError::NotFound(format!(
                    "{} has no {} {ref_name}",
                    opened.subject,
                    match kind {
                        osprey_iceberg::SnapshotRefKind::Branch => "branch",
                        osprey_iceberg::SnapshotRefKind::Tag => "tag",
                    }
                ))),
            }
        }
        Procedure::FastForward { branch, to } => {
            let (before, after) =
                osprey_iceberg::fast_forward(client, namespace, table_name, store, (&branch, &to))
                    .await
                    .map_err(|err| opened.failed(err))?;
            Ok(vec![before.unwrap_or(0) as u64, after as u64])
        }
        Procedure::RewriteManifests => {
            let outcome = osprey_iceberg::rewrite_manifests(client, namespace, table_name, store)
                .await
                .map_err(|err| opened.failed(err))?;
            Ok(vec![outcome.manifests_rewritten, outcome.manifests_added])
        }
    }
}

/// Compaction: the files [`osprey_iceberg::plan_compaction`] picks, read and written again.
async fn optimize(
    target: &CatalogTarget<'_>,
    name: &ResolvedTableReference,
    table: IcebergTable,
    state: &SessionState,
    committed: &CommittedCatalog,
    opened: &OpenedTable,
    threshold: u64,
) -> Result<Vec<u64>, QueryError> {
    let Some(snapshot) = table.snapshot().cloned() else {
        return Ok(vec![0; 4]);
    };
    let root = StoreLocation::parse(&opened.location).map_err(|err| opened.failed(err))?;
    let live =
        osprey_iceberg::snapshot_files(opened.store.as_ref(), &snapshot, |file| root.path_of(file))
            .await
            .map_err(|err| opened.failed(err))?;
    let plan = osprey_iceberg::plan_compaction(&live, threshold);
    if plan.files.is_empty() {
        return Ok(vec![0; 4]);
    }
    let write = stage(target, committed, opened).await?;
    // The rows are copied; on a format 3 table with their lineage (`rewrite_manifests` keeps
    // row ids by writing manifests' inherited ids out).
    let columns: Vec<Expr> = TableProvider::schema(&table)
        .fields()
        .iter()
        .map(|field| ident(field.name()))
        .chain(
            keeps_lineage(opened)
                .then(row_lineage_values)
                .into_iter()
                .flatten(),
        )
        .collect();
    let mut chosen = table.with_only_files(plan.files.clone());
    if keeps_lineage(opened) {
        chosen = chosen
            .with_row_lineage()
            .map_err(|err| opened.failed(err))?;
    }
    let rows = LogicalPlanBuilder::scan(
        datafusion::common::TableReference::from(name.clone()),
        provider_as_source(Arc::new(chosen)),
        None,
    )?
    .project(columns)?
    .build()?;
    let (data, _) = write_copied_data(&write, state, opened, rows).await?;
    let added = data.len() as u64;
    let rewrite = osprey_iceberg::Rewrite {
        base: Some(snapshot.snapshot_id),
        removed: plan.files.iter().cloned().collect(),
        data,
        data_spec_id: opened.metadata.default_spec_id,
    };
    let client = Arc::clone(target.client);
    let (namespace, table_name) = (name.schema.to_string(), name.table.to_string());
    let store = Arc::clone(&opened.store);
    let commit = async move {
        osprey_iceberg::commit_rewrite(client.as_ref(), &namespace, &table_name, store, rewrite)
            .await
    };
    commit_detached(opened, Some(write), commit).await?;
    Ok(vec![
        plan.files.len() as u64,
        plan.bytes.max(0) as u64,
        plan.delete_files as u64,
        added,
    ])
}

/// Milliseconds since the epoch, `retention` ago.
fn cutoff_ms(retention: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(retention).as_millis() as i64
}
