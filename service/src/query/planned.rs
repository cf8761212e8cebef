//! A checked plan, run: the DDL, writes and session settings DataFusion plans are done here;
//! a query is answered for the caller to run.

use super::*;

impl QueryEngine {
    /// Runs a checked plan: the DDL, writes and settings are done here; a query is answered
    /// for the caller to run.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_planned(
        &self,
        plan: LogicalPlan,
        mut state: SessionState,
        session: &mut SessionSettings,
        sql: &str,
        create_has_query: bool,
        properties: table_properties::TableProperties,
        view: Option<(String, crate::policy::ViewSecurity)>,
    ) -> Result<PreparedStatement, QueryError> {
        match &plan {
            LogicalPlan::Statement(Statement::SetVariable(set)) => {
                session.set(self.ctx.state().config_options(), &set.variable, &set.value)?;
                return Ok(PreparedStatement::ddl_done("SET SESSION"));
            }
            LogicalPlan::Statement(Statement::ResetVariable(reset)) => {
                session.reset(&reset.variable);
                return Ok(PreparedStatement::ddl_done("RESET SESSION"));
            }
            _ => {}
        }
        refuse_session_statements(&plan)?;
        // Tables of attached catalogs are created, written and dropped by their catalog.
        if let Some(done) = self
            .attached_write(&plan, &mut state, session, create_has_query, &properties)
            .await
        {
            return done;
        }
        if !properties.is_empty() {
            return Err(QueryError::NotSupported(
                "table properties (WITH ...) on Osprey's own tables: they apply to the Iceberg \
                 tables of attached catalogs so far"
                    .to_string(),
            ));
        }
        let lakehouse = &self.lakehouse;
        match plan {
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd)) => {
                for location in &cmd.locations {
                    self.locations
                        .check(
                        session.principal.as_ref(),
                        location,
                        Access::Read,
                        &self.location_usage(session),
                    )?;
                }
                lakehouse.create_external_table(&state, &cmd).await?;
                Ok(PreparedStatement::ddl_done("CREATE TABLE"))
            }
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmd)) => {
                if cmd.temporary {
                    return Err(QueryError::NotSupported("TEMPORARY tables".to_string()));
                }
                let schema = cmd.input.schema().as_arrow().clone();
                let input = create_has_query.then(|| cmd.input.as_ref().clone());
                let slot = match create_has_query {
                    true => Some(self.admit_write(&mut state, session).await?),
                    false => None,
                };
                let create = async {
                    lakehouse
                        .create_managed_table(
                            &state,
                            &cmd.name,
                            input,
                            &schema,
                            cmd.if_not_exists,
                            cmd.or_replace,
                        )
                        .await
                };
                let rows = match &slot {
                    Some(slot) => self.within_time_limit(slot, create).await?,
                    None => create.await?,
                };
                Ok(if create_has_query {
                    PreparedStatement::done("CREATE TABLE", rows)
                } else {
                    PreparedStatement::ddl_done("CREATE TABLE")
                })
            }
            LogicalPlan::Ddl(DdlStatement::CreateView(cmd)) => {
                if cmd.temporary {
                    return Err(QueryError::NotSupported("TEMPORARY views".to_string()));
                }
                let (view_sql, security) =
                    view.unwrap_or_else(|| (sql.to_string(), Default::default()));
                lakehouse
                    .create_view(
                        &state,
                        &cmd.name,
                        &cmd.input,
                        (&view_sql, security),
                        cmd.or_replace,
                    )
                    .await?;
                Ok(PreparedStatement::ddl_done("CREATE VIEW"))
            }
            LogicalPlan::Ddl(DdlStatement::DropTable(cmd)) => {
                lakehouse
                    .drop_relation(&state, &cmd.name, cmd.if_exists, false)
                    .await?;
                Ok(PreparedStatement::ddl_done("DROP TABLE"))
            }
            LogicalPlan::Ddl(DdlStatement::DropView(cmd)) => {
                lakehouse
                    .drop_relation(&state, &cmd.name, cmd.if_exists, true)
                    .await?;
                Ok(PreparedStatement::ddl_done("DROP VIEW"))
            }
            LogicalPlan::Ddl(other) => Err(QueryError::NotSupported(format!(
                "{}: Osprey does not support this statement",
                other.name()
            ))),
            LogicalPlan::Dml(dml) => match dml.op {
                WriteOp::Insert(InsertOp::Append) => {
                    let slot = self.admit_write(&mut state, session).await?;
                    let insert = async {
                        lakehouse
                            .insert(&state, &dml.table_name, dml.input.as_ref().clone())
                            .await
                    };
                    let rows = self.within_time_limit(&slot, insert).await?;
                    Ok(PreparedStatement::done("INSERT", rows))
                }
                other => Err(QueryError::NotSupported(format!(
                    "{other}: managed tables take INSERT INTO ... SELECT / VALUES; \
                     to rewrite a table use CREATE OR REPLACE TABLE ... AS SELECT"
                ))),
            },
            LogicalPlan::Copy(_) => Err(QueryError::NotSupported(
                "COPY: export query results with UNLOAD (SELECT ...) TO 'location' WITH (format = 'PARQUET')"
                    .to_string(),
            )),
            plan => Ok(PreparedStatement::Query(plan)),
        }
    }
}
