//! What statements do to the tables of an attached catalog (and to Osprey's own Iceberg
//! tables, which [`AttachedCatalogs::serve_warehouse`] serves the same way), by the name the
//! statement gives: each finds the catalog's provider, then hands the table to the module
//! that writes, changes, creates, alters or maintains it.

use super::{
    AttachedCatalogs, MergeStatement, RowChange, maintenance, merge, row_changes, table_ddl, writes,
};
use crate::error::QueryError;
use crate::lakehouse::committed::CommittedCatalog;
use crate::lakehouse::formats::iceberg_query_error;
use datafusion::catalog::CatalogProvider;
use datafusion::common::ResolvedTableReference;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use table_ddl::CreateRequest;

impl AttachedCatalogs {
    /// `INSERT INTO` (or, with `overwrite`, `INSERT OVERWRITE`) a table of an attached
    /// catalog; the rows written.
    pub(crate) async fn insert(
        &self,
        name: &ResolvedTableReference,
        state: &SessionState,
        committed: &CommittedCatalog,
        input: LogicalPlan,
        overwrite: bool,
    ) -> Result<u64, QueryError> {
        let provider = self.provider(&name.catalog)?;
        let target = provider.target();
        let (table, branch) = write_branch(name)?;
        let name = writes::WriteTable {
            namespace: &name.schema,
            table,
            branch: &branch,
        };
        writes::insert(&target, name, state, committed, input, overwrite).await
    }

    /// `DELETE` or `UPDATE` (`change`) on a table of an attached catalog, `input` being the
    /// DML plan's input; the rows changed.
    pub(crate) async fn change_rows(
        &self,
        name: &ResolvedTableReference,
        change: RowChange,
        state: &SessionState,
        committed: &CommittedCatalog,
        input: LogicalPlan,
    ) -> Result<u64, QueryError> {
        let provider = self.provider(&name.catalog)?;
        let target = provider.target();
        let (table, branch) = write_branch(name)?;
        let name = writes::WriteTable {
            namespace: &name.schema,
            table,
            branch: &branch,
        };
        row_changes::apply(&target, name, state, committed, input, change).await
    }

    /// `MERGE INTO` a table of an attached catalog; the rows inserted, updated and deleted.
    pub(crate) async fn merge(
        &self,
        name: &ResolvedTableReference,
        state: &SessionState,
        committed: &CommittedCatalog,
        statement: MergeStatement<'_>,
    ) -> Result<u64, QueryError> {
        let provider = self.provider(&name.catalog)?;
        let target = provider.target();
        let (table, branch) = write_branch(name)?;
        let name = writes::WriteTable {
            namespace: &name.schema,
            table,
            branch: &branch,
        };
        merge::merge(&target, name, state, committed, statement).await
    }

    /// `CREATE TABLE [IF NOT EXISTS] ... [WITH (...)] [AS SELECT]` in an attached catalog; the
    /// rows written.
    pub(crate) async fn create_table(
        &self,
        name: &ResolvedTableReference,
        request: &CreateRequest<'_>,
        input: Option<LogicalPlan>,
        state: &SessionState,
        committed: &CommittedCatalog,
    ) -> Result<u64, QueryError> {
        let provider = self.provider(&name.catalog)?;
        let target = provider.target();
        if request.or_replace && table_ddl::exists(&target, &name.schema, &name.table).await? {
            let (namespace, table) = (&name.schema, &name.table);
            return table_ddl::replace(
                &target,
                (namespace, table),
                request,
                input,
                state,
                committed,
            )
            .await;
        }
        let created = table_ddl::create(&target, &name.schema, &name.table, request).await?;
        let Some(input) = input.filter(|_| created) else {
            return Ok(0);
        };
        let inserted = self.insert(name, state, committed, input, false).await;
        if inserted.is_err() {
            // A CREATE TABLE AS that fails leaves no table behind.
            self.undo_create(&target, name, state).await;
        }
        inserted
    }

    /// Drops the table `name` this statement created, after its rows failed to be written;
    /// one of Osprey's own loses its files too. Failures are logged: the statement's error is
    /// what the user sees.
    async fn undo_create(
        &self,
        target: &writes::CatalogTarget<'_>,
        name: &ResolvedTableReference,
        state: &SessionState,
    ) {
        let loaded = target.client.load_table(&name.schema, &name.table).await;
        if let Err(err) = target.client.drop_table(&name.schema, &name.table).await {
            tracing::warn!(table = %name, error = %err, "cannot drop a table whose CREATE TABLE AS failed");
            return;
        }
        if !self.is_own_catalog(&name.catalog) {
            return;
        }
        if let Ok(Some(loaded)) = loaded {
            let root = osprey_iceberg::table_root(&loaded.metadata_location);
            let runtime = state.runtime_env();
            crate::lakehouse::formats::delete_owned_table_files(runtime, &name.to_string(), &root)
                .await;
        }
    }

    /// `ALTER TABLE [IF EXISTS]` of an attached catalog's table: one metadata change.
    pub(crate) async fn alter_table(
        &self,
        name: &ResolvedTableReference,
        alteration: &osprey_iceberg::TableAlteration,
        if_exists: bool,
    ) -> Result<(), QueryError> {
        let provider = self.provider(&name.catalog)?;
        let target = provider.target();
        table_ddl::alter(&target, &name.schema, &name.table, alteration, if_exists).await
    }

    /// `ALTER TABLE ... EXECUTE procedure` on a table of an attached catalog; the figures of
    /// its result row.
    pub(crate) async fn run_procedure(
        &self,
        name: &ResolvedTableReference,
        procedure: crate::table_procedures::Procedure,
        state: &SessionState,
        committed: &CommittedCatalog,
    ) -> Result<Vec<u64>, QueryError> {
        let provider = self.provider(&name.catalog)?;
        let missing = || QueryError::TableNotFound(format!("table {name} does not exist"));
        let opened = provider
            .schema(&name.schema)
            .ok_or_else(missing)?
            .table(&name.table)
            .await?
            .ok_or_else(missing)?;
        let table = opened
            .as_ref()
            .downcast_ref::<osprey_iceberg::IcebergTable>()
            .cloned()
            .ok_or_else(|| {
                QueryError::NotSupported(format!(
                    "{} on {name}, which is not an Iceberg table",
                    procedure.name()
                ))
            })?;
        let target = provider.target();
        maintenance::run(&target, name, table, state, committed, procedure).await
    }

    /// `ALTER TABLE [IF EXISTS] ... RENAME TO` of an attached catalog's table, to `to`
    /// (namespace, name) in the same catalog.
    pub(crate) async fn rename_table(
        &self,
        name: &ResolvedTableReference,
        to: (&str, &str),
        if_exists: bool,
    ) -> Result<(), QueryError> {
        let provider = self.provider(&name.catalog)?;
        let target = provider.target();
        let failed = |err| iceberg_query_error(&name.to_string(), err);
        target.client.check_writable().map_err(failed)?;
        if !table_ddl::exists(&target, &name.schema, &name.table).await? {
            return match if_exists {
                true => Ok(()),
                false => Err(QueryError::TableNotFound(format!(
                    "table {name} does not exist"
                ))),
            };
        }
        target
            .client
            .rename_table((&name.schema, &name.table), to)
            .await
            .map_err(failed)
    }

    /// `DROP TABLE [IF EXISTS]` of an attached catalog's table (its files stay).
    pub(crate) async fn drop_table(
        &self,
        name: &ResolvedTableReference,
        if_exists: bool,
    ) -> Result<(), QueryError> {
        let provider = self.provider(&name.catalog)?;
        table_ddl::drop(&provider.target(), &name.schema, &name.table, if_exists).await
    }

    /// `CREATE SCHEMA [IF NOT EXISTS] catalog.namespace` in an attached catalog.
    pub(crate) async fn create_namespace(
        &self,
        catalog: &str,
        namespace: &str,
        if_not_exists: bool,
    ) -> Result<(), QueryError> {
        let provider = self.provider(catalog)?;
        let target = provider.target();
        let failed = |err| iceberg_query_error(&format!("{catalog}.{namespace}"), err);
        let client = target.client;
        client.check_writable().map_err(failed)?;
        let exists = client
            .namespaces()
            .await
            .map_err(failed)?
            .iter()
            .any(|n| n == namespace);
        match (exists, if_not_exists) {
            (true, true) => Ok(()),
            (true, false) => Err(QueryError::InvalidStatement(format!(
                "schema {catalog}.{namespace} already exists"
            ))),
            (false, _) => client.create_namespace(namespace).await.map_err(failed),
        }
    }

    /// `DROP SCHEMA [IF EXISTS] catalog.namespace` of an attached catalog: only an empty one.
    pub(crate) async fn drop_namespace(
        &self,
        catalog: &str,
        namespace: &str,
        if_exists: bool,
    ) -> Result<(), QueryError> {
        let provider = self.provider(catalog)?;
        let target = provider.target();
        let failed = |err| iceberg_query_error(&format!("{catalog}.{namespace}"), err);
        target.client.check_writable().map_err(failed)?;
        match target
            .client
            .drop_namespace(namespace)
            .await
            .map_err(failed)?
            || if_exists
        {
            true => Ok(()),
            false => Err(QueryError::NotFound(format!(
                "schema {catalog}.{namespace} does not exist"
            ))),
        }
    }
}

/// The table a write names and the branch it goes on: `t` writes `main`; `t$ref=audit` (how
/// `t.branch_audit` and `FOR VERSION AS OF 'audit'` reach the planner) writes `audit`. A
/// snapshot id or a point in time cannot be written.
fn write_branch(name: &ResolvedTableReference) -> Result<(&str, String), QueryError> {
    let Some((table, suffix)) = name.table.split_once(crate::time_travel::VERSION_SEPARATOR) else {
        return Ok((&name.table, "main".to_string()));
    };
    match crate::time_travel::TableVersion::from_suffix(suffix) {
        Some(crate::time_travel::TableVersion::Ref(branch)) => Ok((table, branch)),
        _ => Err(QueryError::InvalidStatement(format!(
            "{}.{}.{table}: a write goes to the table's current snapshot or to a branch \
             ({table}.branch_<name>), not to a snapshot id or a point in time",
            name.catalog, name.schema
        ))),
    }
}
