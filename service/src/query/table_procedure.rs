//! `ALTER TABLE t EXECUTE procedure(...)` and branch and tag changes (see
//! [`crate::table_procedures`]): run on the Iceberg tables of attached catalogs, admitted and
//! timed as a write, answered as one row of figures (or, for a branch or tag, as DDL).

use super::*;
use crate::table_procedures::TableProcedure;
use datafusion::arrow::array::{ArrayRef, Int64Array};

impl QueryEngine {
    /// Runs `call` for the session.
    pub(super) async fn run_table_procedure(
        &self,
        state: &SessionState,
        session: &SessionSettings,
        call: TableProcedure,
    ) -> Result<PreparedStatement, QueryError> {
        let procedure = call.procedure;
        let label = procedure.name();
        let schema = procedure.result_schema();
        let defaults = &state.config_options().catalog;
        let name = table_reference_from_parts(&call.table)?
            .resolve(&defaults.default_catalog, &defaults.default_schema);
        self.authorize(
            session,
            &format!("ALTER TABLE ... EXECUTE {label} on"),
            None,
            &osprey_catalog::SecuredObject::Table(
                name.catalog.to_string(),
                name.schema.to_string(),
                name.table.to_string(),
            ),
        )
        .await?;
        let attached = self.attached_catalogs();
        if !(attached.is_attached(&name.catalog) || attached.is_owned_iceberg(&name)) {
            return Err(QueryError::NotSupported(format!(
                "ALTER TABLE ... EXECUTE {} on {name}: table procedures run on Iceberg tables",
                label
            )));
        }
        let mut state = state.clone();
        let slot = self.admit_write(&mut state, session).await?;
        let committed = self.lakehouse.committed();
        let run = attached.run_procedure(&name, procedure, &state, committed);
        let figures = self.within_time_limit(&slot, run).await?;
        if schema.fields().is_empty() {
            return Ok(PreparedStatement::ddl_done(label));
        }
        let columns: Vec<ArrayRef> = figures
            .into_iter()
            .map(|figure| Arc::new(Int64Array::from(vec![figure as i64])) as ArrayRef)
            .collect();
        let plan = crate::admin_sql::listing_plan(label, schema, columns)?;
        Ok(PreparedStatement::Listing(plan))
    }
}
