//! Statements DataFusion does not plan, handled on the parsed statement: schemas, renames,
//! UNLOAD, the listings (`SHOW ...`, `DESCRIBE`, in [`super::listings`]) and `USE`.

use super::*;

impl QueryEngine {
    /// Statements DataFusion does not plan, handled on the AST: schemas, renames, SHOW SCHEMAS.
    pub(super) async fn run_catalog_statement(
        &self,
        state: &mut SessionState,
        session: &SessionSettings,
        statement: &DFStatement,
    ) -> Result<Option<PreparedStatement>, QueryError> {
        if let Some(plan) = super::listings::listing_plan(state, statement).await? {
            return Ok(Some(PreparedStatement::Listing(plan)));
        }
        let DFStatement::Statement(statement) = statement else {
            return Ok(None);
        };
        let change = self
            .authorize_catalog_statement(state, session, statement.as_ref())
            .await?;
        let done = self
            .run_unplanned_statement(state, session, statement.as_ref())
            .await?;
        if done.is_some() {
            self.governance
                .record(session.principal.as_ref(), change)
                .await?;
        }
        Ok(done)
    }

    /// Checks a statement handled on the AST for the session's principal: `CREATE SCHEMA`
    /// needs `CREATE` on the catalog, `DROP SCHEMA` and `ALTER TABLE` the object's owner.
    /// Answers what it will change for owners.
    async fn authorize_catalog_statement(
        &self,
        state: &SessionState,
        session: &SessionSettings,
        statement: &ast::Statement,
    ) -> Result<Option<crate::governance::OwnershipChange>, QueryError> {
        use crate::governance::{OwnershipChange, Privilege};
        use osprey_catalog::SecuredObject;
        let _ = state;
        let (default_catalog, default_schema) = self.current_schema(session);
        let schema_of = |name: &ast::ObjectName| match name_parts(name).as_slice() {
            [catalog, schema] => SecuredObject::Schema(catalog.clone(), schema.clone()),
            parts => SecuredObject::Schema(default_catalog.clone(), parts.join(".")),
        };
        let table_of = |name: &ast::ObjectName| -> Result<SecuredObject, QueryError> {
            let name = table_reference(name)?.resolve(&default_catalog, &default_schema);
            Ok(SecuredObject::Table(
                name.catalog.to_string(),
                name.schema.to_string(),
                name.table.to_string(),
            ))
        };
        match statement {
            ast::Statement::CreateSchema {
                schema_name: ast::SchemaName::Simple(name),
                ..
            }
            | ast::Statement::CreateDatabase { db_name: name, .. } => {
                let schema = schema_of(name);
                let SecuredObject::Schema(catalog, _) = &schema else {
                    return Ok(None);
                };
                let catalog = SecuredObject::Catalog(catalog.clone());
                self.authorize(
                    session,
                    "CREATE SCHEMA in",
                    Some(Privilege::Create),
                    &catalog,
                )
                .await?;
                Ok(Some(OwnershipChange::Created(schema)))
            }
            ast::Statement::Drop {
                object_type: ast::ObjectType::Schema | ast::ObjectType::Database,
                names,
                ..
            } => {
                for name in names {
                    self.authorize(session, "DROP", None, &schema_of(name))
                        .await?;
                }
                Ok(names
                    .first()
                    .map(|n| OwnershipChange::Dropped(schema_of(n))))
            }
            ast::Statement::AlterTable(alter) => {
                let from = table_of(&alter.name)?;
                self.authorize(session, "ALTER", None, &from).await?;
                let [ast::AlterTableOperation::RenameTable { table_name }] =
                    alter.operations.as_slice()
                else {
                    return Ok(None);
                };
                let new_name = match table_name {
                    ast::RenameTableNameKind::As(name) | ast::RenameTableNameKind::To(name) => name,
                };
                let mut parts = name_parts(new_name);
                let SecuredObject::Table(catalog, schema, _) = &from else {
                    return Ok(None);
                };
                // An unqualified new name stays in the table's schema.
                if parts.len() == 1 {
                    parts.insert(0, schema.clone());
                }
                if parts.len() == 2 {
                    parts.insert(0, catalog.clone());
                }
                let to = match parts.as_slice() {
                    [c, s, t] => SecuredObject::Table(c.clone(), s.clone(), t.clone()),
                    _ => return Ok(None),
                };
                if let SecuredObject::Table(c, s, _) = &to {
                    let target = SecuredObject::Schema(c.clone(), s.clone());
                    self.authorize(session, "RENAME into", Some(Privilege::Create), &target)
                        .await?;
                }
                Ok(Some(OwnershipChange::Renamed(from, to)))
            }
            _ => Ok(None),
        }
    }

    /// [`QueryEngine::run_catalog_statement`] once checked.
    async fn run_unplanned_statement(
        &self,
        state: &mut SessionState,
        session: &SessionSettings,
        statement: &ast::Statement,
    ) -> Result<Option<PreparedStatement>, QueryError> {
        let lakehouse = &self.lakehouse;
        match statement {
            ast::Statement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => {
                let ast::SchemaName::Simple(name) = schema_name else {
                    return Err(QueryError::NotSupported(
                        "CREATE SCHEMA ... AUTHORIZATION".to_string(),
                    ));
                };
                if let Some((catalog, namespace)) = self.attached_schema(state, name) {
                    self.attached_catalogs()
                        .create_namespace(&catalog, &namespace, *if_not_exists)
                        .await?;
                    self.catalogs.refresh(Some(&catalog)).await?;
                    return Ok(Some(PreparedStatement::ddl_done("CREATE SCHEMA")));
                }
                let schema = lakehouse.resolve_schema(&name_parts(name))?;
                lakehouse.create_schema(&schema, *if_not_exists).await?;
                Ok(Some(PreparedStatement::ddl_done("CREATE SCHEMA")))
            }
            ast::Statement::CreateDatabase {
                db_name,
                if_not_exists,
                ..
            } => {
                let schema = lakehouse.resolve_schema(&name_parts(db_name))?;
                lakehouse.create_schema(&schema, *if_not_exists).await?;
                Ok(Some(PreparedStatement::ddl_done("CREATE SCHEMA")))
            }
            ast::Statement::Drop {
                object_type: ast::ObjectType::Schema | ast::ObjectType::Database,
                if_exists,
                names,
                cascade,
                ..
            } => {
                for name in names {
                    if let Some((catalog, namespace)) = self.attached_schema(state, name) {
                        if *cascade {
                            return Err(QueryError::NotSupported(format!(
                                "DROP SCHEMA ... CASCADE in the attached catalog {catalog}: \
                                 drop its tables first"
                            )));
                        }
                        self.attached_catalogs()
                            .drop_namespace(&catalog, &namespace, *if_exists)
                            .await?;
                        self.catalogs.refresh(Some(&catalog)).await?;
                        continue;
                    }
                    let schema = lakehouse.resolve_schema(&name_parts(name))?;
                    lakehouse
                        .drop_schema(state, &schema, *if_exists, *cascade)
                        .await?;
                }
                Ok(Some(PreparedStatement::ddl_done("DROP SCHEMA")))
            }
            ast::Statement::AlterTable(alter) => {
                if let Some(altered) = self.alter_attached_table(state, alter).await {
                    return altered.map(Some);
                }
                let [ast::AlterTableOperation::RenameTable { table_name }] =
                    alter.operations.as_slice()
                else {
                    return Err(QueryError::NotSupported(
                        "ALTER TABLE supports RENAME TO only".to_string(),
                    ));
                };
                let new_name = match table_name {
                    ast::RenameTableNameKind::As(name) | ast::RenameTableNameKind::To(name) => name,
                };
                let from = lakehouse.resolve(&table_reference(&alter.name)?, state)?;
                let mut to_parts = name_parts(new_name);
                // An unqualified new name stays in the table's schema.
                if to_parts.len() == 1 {
                    to_parts.insert(0, from.schema.to_string());
                }
                let to = lakehouse.resolve(&table_reference_from_parts(&to_parts)?, state)?;
                if lakehouse.table(&from.schema, &from.table).is_none() {
                    if alter.if_exists {
                        return Ok(Some(PreparedStatement::ddl_done("RENAME TABLE")));
                    }
                    return Err(QueryError::InvalidStatement(format!(
                        "table {from} does not exist"
                    )));
                }
                lakehouse
                    .rename_table((&from.schema, &from.table), (&to.schema, &to.table))
                    .await?;
                Ok(Some(PreparedStatement::ddl_done("RENAME TABLE")))
            }
            ast::Statement::Unload {
                query,
                query_text,
                to,
                auth,
                with,
                options,
            } => {
                if auth.is_some() || !options.is_empty() {
                    return Err(QueryError::NotSupported(
                        "UNLOAD with IAM_ROLE or Redshift-style options: write UNLOAD (SELECT ...) \
                         TO 'location' WITH (format = 'PARQUET'); credentials come from the \
                         storage configuration"
                            .to_string(),
                    ));
                }
                let format = unload_format(with)?;
                self.locations.check(
                    session.principal.as_ref(),
                    &to.value,
                    Access::Write,
                    &self.location_usage(session),
                )?;
                // Redshift's string form, UNLOAD ('SELECT ...'), is parsed here; either way
                // only a query is accepted.
                let parsed;
                let query = match (query, query_text) {
                    (Some(query), _) => query,
                    (None, Some(text)) => {
                        parsed = crate::parser::parse_sql(state, text)?;
                        match &parsed {
                            DFStatement::Statement(s) => match s.as_ref() {
                                ast::Statement::Query(query) => query,
                                _ => return Err(unload_needs_query()),
                            },
                            _ => return Err(unload_needs_query()),
                        }
                    }
                    (None, None) => return Err(unload_needs_query()),
                };
                let statement = ast::Statement::Query(query.clone());
                let input = match state
                    .statement_to_plan(DFStatement::Statement(Box::new(statement)))
                    .await
                {
                    Ok(input) => input,
                    Err(err) => {
                        return Err(super::listings::suggest_table(state, err.into()).await);
                    }
                };
                let input = self.check_plan(state, session, input).await?;
                let slot = self.admit_write(state, session).await?;
                let state = &*state;
                let unload = async { lakehouse.unload(state, input, &to.value, format).await };
                let unloaded = self.within_time_limit(&slot, unload).await?;
                tracing::info!(rows = unloaded.rows, files = unloaded.files, manifest = %unloaded.manifest, "unloaded");
                Ok(Some(PreparedStatement::done("UNLOAD", unloaded.rows)))
            }
            _ => Ok(None),
        }
    }

    /// The catalog a `USE` statement switches in: the one it names, else the current one.
    pub(super) fn use_catalog(&self, session: &SessionSettings, target: &ast::Use) -> String {
        match target {
            ast::Use::Object(name) | ast::Use::Schema(name) | ast::Use::Database(name) => {
                match name_parts(name).as_slice() {
                    [catalog, _] => catalog.clone(),
                    _ => self.current_schema(session).0,
                }
            }
            ast::Use::Catalog(name) => name_parts(name).join("."),
            _ => self.current_schema(session).0,
        }
    }

    /// `USE [SCHEMA|DATABASE] [catalog.]schema` and `USE CATALOG catalog`: changes the
    /// session's current schema (or catalog), which must exist.
    pub(super) fn use_schema(
        &self,
        session: &mut SessionSettings,
        target: &ast::Use,
    ) -> Result<(), QueryError> {
        match target {
            ast::Use::Object(name) | ast::Use::Schema(name) | ast::Use::Database(name) => {
                match name_parts(name).as_slice() {
                    [schema] => self.switch_schema(session, None, schema),
                    [catalog, schema] => self.switch_schema(session, Some(catalog), schema),
                    _ => Err(QueryError::InvalidStatement(format!(
                        "USE {name}: name a schema, as USE schema or USE catalog.schema"
                    ))),
                }
            }
            ast::Use::Catalog(name) => self.switch_catalog(session, &name_parts(name).join(".")),
            ast::Use::Default => {
                session.catalog = None;
                session.schema = None;
                Ok(())
            }
            other => Err(QueryError::NotSupported(format!(
                "{other}: Osprey switches schemas and catalogs only"
            ))),
        }
    }

    /// Makes `[catalog.]schema` the session's current schema; it must exist.
    pub fn switch_schema(
        &self,
        session: &mut SessionSettings,
        catalog: Option<&str>,
        schema: &str,
    ) -> Result<(), QueryError> {
        if let Some(catalog) = catalog {
            self.check_catalog(catalog)?;
        }
        let (current, _) = self.current_schema(session);
        let in_catalog = catalog.map_or(current, str::to_string);
        if self.catalogs.contains(&in_catalog) {
            // An attached catalog: its namespaces as last listed (a USE statement lists them
            // again first).
            if !self.catalogs.has_namespace(&in_catalog, schema) {
                return Err(QueryError::InvalidStatement(format!(
                    "schema {in_catalog}.{schema} does not exist: SHOW SCHEMAS FROM                      {in_catalog} lists them"
                )));
            }
        } else if !self.lakehouse.schema_exists(schema) {
            return Err(QueryError::InvalidStatement(format!(
                "schema {schema} does not exist: SHOW SCHEMAS lists them, CREATE SCHEMA {schema} \
                 makes it"
            )));
        }
        session.catalog = catalog.map(str::to_string);
        session.schema = Some(schema.to_string());
        Ok(())
    }

    /// Makes `catalog` the session's current catalog; it must exist.
    pub fn switch_catalog(
        &self,
        session: &mut SessionSettings,
        catalog: &str,
    ) -> Result<(), QueryError> {
        self.check_catalog(catalog)?;
        session.catalog = Some(catalog.to_string());
        Ok(())
    }

    pub(super) fn check_catalog(&self, catalog: &str) -> Result<(), QueryError> {
        if catalog != self.lakehouse.catalog_name() && !self.catalogs.contains(catalog) {
            return Err(QueryError::InvalidStatement(format!(
                "catalog {catalog} does not exist: SHOW CATALOGS lists them"
            )));
        }
        Ok(())
    }

    /// The current catalog and schema of `session`.
    pub fn current_schema(&self, session: &SessionSettings) -> (String, String) {
        let defaults = &self.ctx.state().config_options().catalog.clone();
        (
            session
                .catalog
                .clone()
                .unwrap_or_else(|| defaults.default_catalog.clone()),
            session
                .schema
                .clone()
                .unwrap_or_else(|| defaults.default_schema.clone()),
        )
    }
}

impl QueryEngine {
    /// `(catalog, namespace)` when the schema `name` (`[catalog.]schema`) is in an attached
    /// catalog: named so, or the session's current catalog.
    fn attached_schema(
        &self,
        state: &SessionState,
        name: &ast::ObjectName,
    ) -> Option<(String, String)> {
        let attached = self.attached_catalogs();
        match name_parts(name).as_slice() {
            [catalog, namespace] if attached.is_attached(catalog) => {
                Some((catalog.clone(), namespace.clone()))
            }
            [namespace] => {
                let current = &state.config_options().catalog.default_catalog;
                attached
                    .is_attached(current)
                    .then(|| (current.clone(), namespace.clone()))
            }
            _ => None,
        }
    }
}
