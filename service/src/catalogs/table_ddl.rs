//! `CREATE [OR REPLACE] TABLE`, `ALTER TABLE` and `DROP TABLE` of an Iceberg catalog's
//! tables (an attached catalog's, or Osprey's own): the first metadata written and
//! registered, a replace transaction, a metadata-only change, the catalog forgetting a table.

use super::writes::{CatalogTarget, OpenedTable, commit_detached, open, stage, write_data};
use crate::error::QueryError;
use crate::lakehouse::committed::CommittedCatalog;
use crate::lakehouse::formats::iceberg_query_error;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use osprey_iceberg::StoreLocation;
use std::sync::Arc;

/// A `CREATE TABLE` in an attached catalog.
pub(crate) struct CreateRequest<'a> {
    /// The columns.
    pub schema: &'a datafusion::arrow::datatypes::Schema,
    /// Trino's `partitioning` expressions (`'day(ts)'`); empty for none.
    pub partitioning: &'a [String],
    /// Whether an existing table is left alone (`IF NOT EXISTS`).
    pub if_not_exists: bool,
    /// Whether an existing table is replaced (`CREATE OR REPLACE`).
    pub or_replace: bool,
    /// The table format version (`format_version = 2 | 3`).
    pub format_version: u8,
}

/// `CREATE TABLE namespace.table` as `request` asks; `false` when it exists and
/// `IF NOT EXISTS` allows that.
pub(super) async fn create(
    target: &CatalogTarget<'_>,
    namespace: &str,
    table: &str,
    request: &CreateRequest<'_>,
) -> Result<bool, QueryError> {
    let subject = format!("{}.{namespace}.{table}", target.catalog_name);
    let failed = |err| iceberg_query_error(&subject, err);
    if exists(target, namespace, table).await? {
        return match request.if_not_exists {
            true => Ok(false),
            false => Err(QueryError::InvalidStatement(format!(
                "table {subject} already exists"
            ))),
        };
    }
    let runtime = Arc::clone(target.runtime);
    let places = target.places.clone();
    let store = async move |location: &str| {
        places
            .check(location)
            .map_err(|err| osprey_iceberg::IcebergError::Catalog(err.to_string()))?;
        let url = StoreLocation::parse(location)?.store_url();
        runtime
            .object_store(&url)
            .map_err(|err| osprey_iceberg::IcebergError::Invalid(err.to_string()))
    };
    let new_table = osprey_iceberg::NewTable {
        schema: request.schema,
        partitioning: request.partitioning,
        properties: &std::collections::BTreeMap::new(),
        format_version: request.format_version,
    };
    osprey_iceberg::create_table(target.client.as_ref(), namespace, table, &new_table, store)
        .await
        .map_err(failed)?;
    Ok(true)
}

/// Whether the catalog has `namespace.table`.
pub(super) async fn exists(
    target: &CatalogTarget<'_>,
    namespace: &str,
    table: &str,
) -> Result<bool, QueryError> {
    let subject = format!("{}.{namespace}.{table}", target.catalog_name);
    Ok(target
        .client
        .load_table(namespace, table)
        .await
        .map_err(|err| iceberg_query_error(&subject, err))?
        .is_some())
}

/// `CREATE OR REPLACE TABLE namespace.table [AS SELECT]` of an existing table: its new schema,
/// spec and rows become current in one commit (see `osprey_iceberg::prepare_replacement`);
/// the rows written.
pub(super) async fn replace(
    target: &CatalogTarget<'_>,
    (namespace, table): (&str, &str),
    request: &CreateRequest<'_>,
    input: Option<LogicalPlan>,
    state: &SessionState,
    committed: &CommittedCatalog,
) -> Result<u64, QueryError> {
    let opened = open(target, namespace, table).await?;
    let new_table = osprey_iceberg::NewTable {
        schema: request.schema,
        partitioning: request.partitioning,
        properties: &std::collections::BTreeMap::new(),
        format_version: request.format_version,
    };
    let client = Arc::clone(target.client);
    let replacement = osprey_iceberg::prepare_replacement(
        client.as_ref(),
        namespace,
        table,
        &opened.store,
        &new_table,
    )
    .await
    .map_err(|err| opened.failed(err))?;
    // The rows are written as the table will be: new field ids, new partitions.
    let replaced = OpenedTable {
        subject: opened.subject.clone(),
        store_url: opened.store_url.clone(),
        store: Arc::clone(&opened.store),
        metadata: replacement.metadata.clone(),
        location: opened.location.clone(),
    };
    let (write, files, rows) = match input {
        Some(input) => {
            let write = stage(target, committed, &replaced).await?;
            let (files, rows) = write_data(&write, state, &replaced, input).await?;
            (Some(write), files, rows)
        }
        None => (None, Vec::new(), 0),
    };
    let (namespace, table) = (namespace.to_string(), table.to_string());
    let store = Arc::clone(&opened.store);
    let commit = async move {
        let client = client.as_ref();
        osprey_iceberg::commit_replacement(client, &namespace, &table, store, replacement, files)
            .await
    };
    commit_detached(&opened, write, commit).await?;
    Ok(rows)
}

/// `ALTER TABLE namespace.table`: one metadata change, no new snapshot.
pub(super) async fn alter(
    target: &CatalogTarget<'_>,
    namespace: &str,
    table: &str,
    alteration: &osprey_iceberg::TableAlteration,
    if_exists: bool,
) -> Result<(), QueryError> {
    let opened = match open(target, namespace, table).await {
        Ok(opened) => opened,
        Err(QueryError::TableNotFound(_)) if if_exists => return Ok(()),
        Err(err) => return Err(err),
    };
    let store = Arc::clone(&opened.store);
    osprey_iceberg::alter_table(target.client.as_ref(), namespace, table, store, alteration)
        .await
        .map_err(|err| opened.failed(err))
}

/// `DROP TABLE namespace.table`: the catalog forgets it; its files stay.
pub(super) async fn drop(
    target: &CatalogTarget<'_>,
    namespace: &str,
    table: &str,
    if_exists: bool,
) -> Result<(), QueryError> {
    let subject = format!("{}.{namespace}.{table}", target.catalog_name);
    let dropped = target
        .client
        .drop_table(namespace, table)
        .await
        .map_err(|err| iceberg_query_error(&subject, err))?;
    match dropped || if_exists {
        true => Ok(()),
        false => Err(QueryError::TableNotFound(format!(
            "table {subject} does not exist"
        ))),
    }
}
