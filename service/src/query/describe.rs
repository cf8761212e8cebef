//! A statement's result and parameter schemas, without running it.

use super::*;

impl QueryEngine {
    /// The schema of the statement's result, without running anything.
    pub async fn describe(
        &self,
        session: &SessionSettings,
        sql: &str,
    ) -> Result<Description, QueryError> {
        let engine = self.clone();
        let session = session.clone();
        let sql = sql.to_string();
        plan_on(&self.query_runtime, async move {
            engine.describe_here(&session, &sql).await
        })
        .await
    }

    /// [`QueryEngine::describe`] on the runtime it is called on.
    pub(super) async fn describe_here(
        &self,
        session: &SessionSettings,
        sql: &str,
    ) -> Result<Description, QueryError> {
        let mut state = self.state_for(session)?;
        let no_parameters = Arc::new(Schema::empty());
        let listing_or_ddl = |listing: Option<SchemaRef>| Description {
            schema: listing.unwrap_or_else(ddl_schema),
            parameters: Arc::clone(&no_parameters),
        };
        let statement = match parse_statement(&state, sql)? {
            ParsedStatement::Governance(statement) => {
                return Ok(listing_or_ddl(statement.listing_schema()));
            }
            ParsedStatement::User(statement) => {
                let show = matches!(statement, UserStatement::Show);
                return Ok(listing_or_ddl(show.then(users::listing_schema)));
            }
            ParsedStatement::Workgroup(statement) => {
                let show = matches!(statement, WorkgroupStatement::Show);
                return Ok(listing_or_ddl(show.then(crate::workgroups::listing_schema)));
            }
            ParsedStatement::Location(statement) => {
                let show = matches!(statement, LocationStatement::Show);
                return Ok(listing_or_ddl(
                    show.then(crate::locations_sql::listing_schema),
                ));
            }
            ParsedStatement::Catalog(statement) => {
                return Ok(listing_or_ddl(statement.listing_schema()));
            }
            ParsedStatement::TableProcedure(call) => {
                let schema = call.procedure.result_schema();
                let rows = !schema.fields().is_empty();
                return Ok(listing_or_ddl(rows.then_some(schema)));
            }
            // Describes the statement it wraps (its USING values are constants).
            ParsedStatement::Immediate(wrapped) => {
                return Box::pin(self.describe_here(session, &wrapped.statement)).await;
            }
            ParsedStatement::Sql(statement) => *statement,
        };
        let mut statement = statement;
        self.resolve_file_references(&mut state, session, &mut statement)
            .await?;
        // Statements Osprey runs itself, which DataFusion cannot plan.
        if let DFStatement::Statement(ast_statement) = &statement {
            let schema = match ast_statement.as_ref() {
                ast::Statement::Use(_) => Some(ddl_schema()),
                ast::Statement::Unload { .. } => Some(count_schema()),
                _ => None,
            };
            if let Some(schema) = schema {
                return Ok(Description {
                    schema,
                    parameters: no_parameters,
                });
            }
        }
        if let Some(plan) = super::listings::listing_plan(&state, &statement).await? {
            return Ok(Description {
                schema: Arc::new(plan.schema().as_arrow().clone()),
                parameters: no_parameters,
            });
        }
        let plan = match state.statement_to_plan(statement).await {
            Ok(plan) => plan,
            Err(err) => return Err(super::listings::suggest_table(&state, err.into()).await),
        };
        let plan = self.check_plan(&state, session, plan).await?;
        let mut fields: Vec<(usize, Field)> = Vec::new();
        for (name, field) in plan.get_parameter_fields()? {
            let position = name
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    QueryError::InvalidStatement(format!(
                        "placeholder {name}: use $1, $2, ... or ?"
                    ))
                })?;
            let data_type = field.map_or(DataType::Null, |f| f.data_type().clone());
            fields.push((position, Field::new(name, data_type, true)));
        }
        fields.sort_by_key(|(position, _)| *position);
        Ok(Description {
            schema: Arc::new(plan.schema().as_arrow().clone()),
            parameters: Arc::new(Schema::new(
                fields.into_iter().map(|(_, f)| f).collect::<Vec<_>>(),
            )),
        })
    }
}
