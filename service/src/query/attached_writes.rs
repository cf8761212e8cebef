//! Statements that create, write and drop tables of attached catalogs, routed to the catalog
//! before Osprey's own lakehouse sees them (see `crate::catalogs`).

use super::QueryEngine;
use super::prepared::PreparedStatement;
use super::table_properties::TableProperties;
use crate::catalogs::{CreateRequest, MergeStatement, RowChange};
use crate::error::QueryError;
use crate::session::SessionSettings;
use datafusion::common::{ResolvedTableReference, TableReference};
use datafusion::execution::SessionState;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, LogicalPlanBuilder, WriteOp};
use std::sync::Arc;

impl QueryEngine {
    /// Runs `plan` when it creates, writes or drops a table of an attached catalog; `None`
    /// when it does not name one. `create_has_query` says whether a CREATE TABLE was written
    /// with `AS <query>`, and `properties` are its `WITH (...)` properties.
    pub(super) async fn attached_write(
        &self,
        plan: &LogicalPlan,
        state: &mut SessionState,
        session: &SessionSettings,
        create_has_query: bool,
        properties: &TableProperties,
    ) -> Option<Result<PreparedStatement, QueryError>> {
        let attached = self.attached_catalogs();
        if attached.is_empty() {
            return None;
        }
        let defaults = state.config_options().catalog.clone();
        let resolve = |name: &TableReference| -> Option<ResolvedTableReference> {
            let name = name
                .clone()
                .resolve(&defaults.default_catalog, &defaults.default_schema);
            attached.is_attached(&name.catalog).then_some(name)
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
                let name = resolve(&cmd.name)?;
                if cmd.temporary {
                    return Some(Err(QueryError::NotSupported(format!(
                        "CREATE TEMPORARY TABLE in the attached catalog {}",
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
                let name = resolve(&cmd.name)?;
                attached
                    .drop_table(&name, cmd.if_exists)
                    .await
                    .map(|()| PreparedStatement::ddl_done("DROP TABLE"))
            }
            _ => return None,
        })
    }
}
