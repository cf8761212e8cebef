//! Statements that create, write and drop the Iceberg tables of attached catalogs and of
//! Osprey's own catalog, routed to the catalog before Osprey's lakehouse sees them (see
//! `crate::catalogs`). Osprey's own Iceberg tables are dropped by the lakehouse, which purges
//! their files; its legacy Parquet tables, views and external tables are the lakehouse's.

use super::QueryEngine;
use super::prepared::PreparedStatement;
use super::table_properties::{OwnedTableType, TableProperties};
use crate::catalogs::{CreateRequest, MergeStatement, RowChange};
use crate::error::QueryError;
use crate::session::SessionSettings;
use datafusion::common::{ResolvedTableReference, TableReference};
use datafusion::execution::SessionState;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, LogicalPlanBuilder, WriteOp};
use std::sync::Arc;

impl QueryEngine {
    /// Runs `plan` when it creates, writes or drops an Iceberg table of an attached catalog,
    /// or creates or writes one of Osprey's own; `None` when it does not name one.
    /// `create_has_query` says whether a CREATE TABLE was written with `AS <query>`, and
    /// `properties` are its `WITH (...)` properties.
    pub(super) async fn attached_write(
        &self,
        plan: &LogicalPlan,
        state: &mut SessionState,
        session: &SessionSettings,
        create_has_query: bool,
        properties: &TableProperties,
    ) -> Option<Result<PreparedStatement, QueryError>> {
        let attached = self.attached_catalogs();
        let defaults = state.config_options().catalog.clone();
        let full_name = |name: &TableReference| -> ResolvedTableReference {
            name.clone()
                .resolve(&defaults.default_catalog, &defaults.default_schema)
        };
        let resolve = |name: &TableReference| -> Option<ResolvedTableReference> {
            let name = full_name(name);
            (attached.is_attached(&name.catalog) || attached.is_owned_iceberg(&name))
                .then_some(name)
        };
        let committed = self.lakehouse.committed();
        Some(match plan {
            LogicalPlan::Dml(dml) => {
                let name = resolve(&dml.table_name)?;
                match &dml.op {
                    WriteOp::Insert(op @ (InsertOp::Append | InsertOp::Overwrite)) => {
                        let input = dml.input.as_ref().clone();
                        let overwrite = *op == InsertOp::Overwrite;
                        match self.admit_write(state, session).await {
                            Ok(slot) => {
                                let insert =
                                    attached.insert(&name, state, committed, input, overwrite);
                                self.within_time_limit(&slot, insert)
                                    .await
                                    .map(|rows| PreparedStatement::done("INSERT", rows))
                            }
                            Err(err) => Err(err),
                        }
                    }
                    op @ (WriteOp::Delete | WriteOp::Update | WriteOp::Truncate) => {
                        // A DELETE without WHERE, and TRUNCATE, remove every file: metadata
                        // only. TRUNCATE's input is a placeholder: its scan is built here.
                        let (change, input) = match op {
                            WriteOp::Truncate => (
                                RowChange::DeleteAll,
                                match LogicalPlanBuilder::scan(
                                    dml.table_name.clone(),
                                    Arc::clone(&dml.target),
                                    None,
                                )
                                .and_then(|scan| scan.build())
                                {
                                    Ok(scan) => scan,
                                    Err(err) => return Some(Err(err.into())),
                                },
                            ),
                            WriteOp::Delete
                                if matches!(dml.input.as_ref(), LogicalPlan::TableScan(_)) =>
                            {
                                (RowChange::DeleteAll, dml.input.as_ref().clone())
                            }
                            WriteOp::Delete => (RowChange::Delete, dml.input.as_ref().clone()),
                            _ => (RowChange::Update, dml.input.as_ref().clone()),
                        };
                        match self.admit_write(state, session).await {
                            Ok(slot) => {
                                let apply =
                                    attached.change_rows(&name, change, state, committed, input);
                                self.within_time_limit(&slot, apply)
                                    .await
                                    .map(|rows| PreparedStatement::done(change.statement(), rows))
                            }
                            Err(err) => Err(err),
                        }
                    }
                    WriteOp::MergeInto(merge) => match self.admit_write(state, session).await {
                        Ok(slot) => {
                            let statement = MergeStatement {
                                name: &dml.table_name,
                                target: &dml.target,
                                source: dml.input.as_ref().clone(),
                                merge,
                            };
                            let apply = attached.merge(&name, state, committed, statement);
                            self.within_time_limit(&slot, apply)
                                .await
                                .map(|rows| PreparedStatement::done("MERGE", rows))
                        }
                        Err(err) => Err(err),
                    },
                    other => Err(QueryError::NotSupported(format!(
                        "{other} on {name}: Osprey writes the Iceberg tables of attached catalogs \
                         with INSERT, DELETE, UPDATE, MERGE and TRUNCATE so far"
                    ))),
                }
            }
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmd)) => {
                let name = full_name(&cmd.name);
                if !attached.is_attached(&name.catalog) {
                    // Osprey's own tables are Iceberg tables unless asked otherwise, or
                    // unless a table of the other kind has the name.
                    let own = committed;
                    let legacy = match properties.owned_table_type() {
                        Ok(kind) => kind == OwnedTableType::LegacyParquet,
                        Err(err) => return Some(Err(err)),
                    };
                    if !attached.is_own_catalog(&name.catalog)
                        || legacy
                        || own
                            .table(&name.schema, &name.table)
                            .is_some_and(|entry| !crate::catalogs::is_owned_iceberg(&entry))
                    {
                        return None;
                    }
                    if let Err(err) = check_new_owned_table(own, &name) {
                        return Some(Err(err));
                    }
                }
                if cmd.temporary {
                    return Some(Err(QueryError::NotSupported(format!(
                        "CREATE TEMPORARY TABLE in the catalog {}",
                        name.catalog
                    ))));
                }
                let properties = match properties.iceberg() {
                    Ok(properties) => properties,
                    Err(err) => return Some(Err(err)),
                };
                let schema = cmd.input.schema().as_arrow().clone();
                let input = create_has_query.then(|| cmd.input.as_ref().clone());
                let has_query = input.is_some();
                let slot = match has_query {
                    true => match self.admit_write(state, session).await {
                        Ok(slot) => Some(slot),
                        Err(err) => return Some(Err(err)),
                    },
                    false => None,
                };
                let request = CreateRequest {
                    schema: &schema,
                    partitioning: &properties.partitioning,
                    if_not_exists: cmd.if_not_exists,
                    or_replace: cmd.or_replace,
                    format_version: properties.format_version,
                };
                let create = attached.create_table(&name, &request, input, state, committed);
                let rows = match &slot {
                    Some(slot) => self.within_time_limit(slot, create).await,
                    None => create.await,
                };
                rows.map(|rows| match has_query {
                    true => PreparedStatement::done("CREATE TABLE", rows),
                    false => PreparedStatement::ddl_done("CREATE TABLE"),
                })
            }
            LogicalPlan::Ddl(DdlStatement::DropTable(cmd)) => {
                let name = full_name(&cmd.name);
                if !attached.is_attached(&name.catalog) {
                    return None;
                }
                attached
                    .drop_table(&name, cmd.if_exists)
                    .await
                    .map(|()| PreparedStatement::ddl_done("DROP TABLE"))
            }
            _ => return None,
        })
    }
}

/// Checks that a new Iceberg table `name` of Osprey's own catalog can go where its name says,
/// before anything is written: a user schema that exists, names that are path segments.
fn check_new_owned_table(
    own: &crate::lakehouse::committed::CommittedCatalog,
    name: &ResolvedTableReference,
) -> Result<(), QueryError> {
    osprey_catalog::check_name("schema", &name.schema)?;
    osprey_catalog::check_name("table", &name.table)?;
    if own.is_builtin_schema(&name.schema) {
        return Err(QueryError::InvalidStatement(format!(
            "schema {}.{} is built in and read-only: create tables in a schema of your own",
            name.catalog, name.schema
        )));
    }
    if !own.persistent_schema_exists(&name.schema) {
        return Err(QueryError::NotFound(format!(
            "schema {}.{} does not exist: CREATE SCHEMA {} first",
            name.catalog, name.schema, name.schema
        )));
    }
    Ok(())
}
