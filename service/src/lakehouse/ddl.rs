//! Statements that change the catalog or write data: each runs once, when prepared, and
//! reports how many rows it wrote (0 for pure DDL).

use super::Lakehouse;
use super::tables::encode_schema;
use super::writes::WriteError;
use crate::error::QueryError;
use datafusion::arrow::datatypes::Schema;
use datafusion::common::{ResolvedTableReference, TableReference};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{CreateExternalTable, LogicalPlan};
use datafusion::sql::sqlparser::ast::{Ident, ObjectName, ObjectNamePart};
use osprey_catalog::{CatalogError, TableDefinition, TableEntry, TableKind, check_name, now_ms};

impl From<CatalogError> for QueryError {
    fn from(err: CatalogError) -> Self {
        match err {
            CatalogError::AlreadyExists { .. }
            | CatalogError::NotFound { .. }
            | CatalogError::SchemaNotEmpty(_)
            | CatalogError::InvalidName { .. } => QueryError::InvalidStatement(err.to_string()),
            other => QueryError::Execution(format!("catalog: {other}")),
        }
    }
}

impl From<WriteError> for QueryError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::Query(err) => err.into(),
            WriteError::Catalog(err) => err.into(),
        }
    }
}

/// An identifier as SQL means it: unquoted names are lower-cased.
pub fn normalize_ident(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The parts of a dotted name, normalized.
pub fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => normalize_ident(ident),
            other => other.to_string(),
        })
        .collect()
}

impl Lakehouse {
    /// Resolves a table name against the session's current catalog and schema, and checks the
    /// catalog is this one.
    pub fn resolve(
        &self,
        name: &TableReference,
        state: &SessionState,
    ) -> Result<ResolvedTableReference, QueryError> {
        let defaults = &state.config_options().catalog;
        let resolved = name
            .clone()
            .resolve(&defaults.default_catalog, &defaults.default_schema);
        if resolved.catalog.as_ref() != self.catalog_name() {
            return Err(QueryError::InvalidStatement(format!(
                "catalog {} does not exist: this cluster's catalog is {}",
                resolved.catalog,
                self.catalog_name()
            )));
        }
        Ok(resolved)
    }

    /// Resolves `[catalog.]schema`.
    pub fn resolve_schema(&self, parts: &[String]) -> Result<String, QueryError> {
        match parts {
            [schema] => Ok(schema.clone()),
            [catalog, schema] if catalog == self.catalog_name() => Ok(schema.clone()),
            [catalog, _] => Err(QueryError::InvalidStatement(format!(
                "catalog {catalog} does not exist: this cluster's catalog is {}",
                self.catalog_name()
            ))),
            _ => Err(QueryError::InvalidStatement(
                "a schema name is [catalog.]schema".to_string(),
            )),
        }
    }

    fn require_user_schema(&self, schema: &str) -> Result<(), QueryError> {
        if self.is_builtin_schema(schema) {
            return Err(QueryError::InvalidStatement(format!(
                "schema {schema} is built in and read-only: create tables in a schema of your own \
                 (CREATE SCHEMA name)"
            )));
        }
        if !self.schema_exists(schema) {
            return Err(QueryError::InvalidStatement(format!(
                "schema {}.{schema} does not exist: create it first with CREATE SCHEMA {schema}",
                self.catalog_name()
            )));
        }
        Ok(())
    }

    /// CREATE EXTERNAL TABLE: its format defines it (inferring the columns now unless they
    /// are declared), and it is opened once, so a definition that cannot be read is refused
    /// now rather than at query time.
    pub async fn create_external_table(
        &self,
        state: &SessionState,
        cmd: &CreateExternalTable,
    ) -> Result<(), QueryError> {
        let name = self.resolve(&cmd.name, state)?;
        self.require_user_schema(&name.schema)?;
        if cmd.temporary || cmd.unbounded {
            return Err(QueryError::NotSupported(
                "TEMPORARY and UNBOUNDED external tables".to_string(),
            ));
        }
        let [location] = cmd.locations.as_slice() else {
            return Err(QueryError::NotSupported(
                "an external table reads one LOCATION; put the files under one prefix".to_string(),
            ));
        };
        let exists = self.table(&name.schema, &name.table).is_some();
        if exists && cmd.if_not_exists {
            return Ok(());
        }
        let format = self.formats.get(&cmd.file_type)?;
        // A directory location gets a trailing slash, so the files under it are read.
        let location = normalize_location(location);
        let definition = format.define_external(state, &location, cmd).await?;
        let entry = TableEntry {
            id: uuid::Uuid::new_v4().to_string(),
            catalog: name.catalog.to_string(),
            schema: name.schema.to_string(),
            name: name.table.to_string(),
            kind: TableKind::External,
            definition,
            created_at_ms: now_ms(),
        };
        format
            .open(&entry, vec![], state.config_options(), state.runtime_env())
            .await?;
        self.catalog
            .create_table(entry, vec![], cmd.or_replace, None)
            .await?;
        Ok(())
    }

    /// CREATE TABLE (empty) and CREATE TABLE AS SELECT (its data published in the same
    /// transaction that creates it) of a table Osprey owns, in the default format of owned
    /// tables. Returns rows written.
    pub async fn create_managed_table(
        &self,
        state: &SessionState,
        name: &TableReference,
        input: Option<LogicalPlan>,
        schema: &Schema,
        if_not_exists: bool,
        or_replace: bool,
    ) -> Result<u64, QueryError> {
        let name = self.resolve(name, state)?;
        self.require_user_schema(&name.schema)?;
        if let Some(existing) = self.table(&name.schema, &name.table) {
            if if_not_exists {
                return Ok(0);
            }
            if !or_replace {
                return Err(CatalogError::AlreadyExists {
                    kind: existing.kind.noun(),
                    name: existing.qualified_name(),
                }
                .into());
            }
        }
        // The names become path segments: check them before anything is written.
        check_name("schema", &name.schema)?;
        check_name("table", &name.table)?;
        let format = self.formats.owned_default()?;
        let id = uuid::Uuid::new_v4().to_string();
        let location = format!(
            "{}{}/{}-{}/",
            self.warehouse(),
            name.schema,
            name.table,
            &id[..8]
        );
        let entry = TableEntry {
            id,
            catalog: name.catalog.to_string(),
            schema: name.schema.to_string(),
            name: name.table.to_string(),
            kind: TableKind::Managed,
            definition: format.define_owned(&location, schema)?,
            created_at_ms: now_ms(),
        };
        let (replaced, rows) = format
            .create_owned(&self.catalog, state, entry, input, or_replace)
            .await?;
        if let Some(old) = replaced {
            self.purge(state, &old).await;
        }
        Ok(rows)
    }

    /// INSERT INTO a table, written and committed by its format. Returns rows written.
    pub async fn insert(
        &self,
        state: &SessionState,
        name: &TableReference,
        input: LogicalPlan,
    ) -> Result<u64, QueryError> {
        let name = self.resolve(name, state)?;
        let entry = self
            .table(&name.schema, &name.table)
            .ok_or_else(|| QueryError::InvalidStatement(format!("table {name} does not exist")))?;
        self.formats
            .of(&entry)?
            .insert(&self.catalog, state, &entry, input)
            .await
    }

    /// CREATE [OR REPLACE] VIEW.
    pub async fn create_view(
        &self,
        state: &SessionState,
        name: &TableReference,
        input: &LogicalPlan,
        (sql, security): (&str, crate::policy::ViewSecurity),
        or_replace: bool,
    ) -> Result<(), QueryError> {
        let name = self.resolve(name, state)?;
        self.require_user_schema(&name.schema)?;
        let defaults = &state.config_options().catalog;
        // A view may not read itself, directly or through other views.
        let mut seen = vec![];
        if self.view_reads(state, &name, input, &mut seen)? {
            return Err(QueryError::InvalidStatement(format!(
                "view {name} would read itself (through {}); views cannot be recursive",
                seen.join(" -> ")
            )));
        }
        let entry = TableEntry {
            id: uuid::Uuid::new_v4().to_string(),
            catalog: name.catalog.to_string(),
            schema: name.schema.to_string(),
            name: name.table.to_string(),
            kind: TableKind::View,
            definition: TableDefinition {
                arrow_schema: encode_schema(input.schema().as_arrow())?,
                view_sql: Some(sql.to_string()),
                view_search_path: Some((
                    defaults.default_catalog.clone(),
                    defaults.default_schema.clone(),
                )),
                view_security: (security == crate::policy::ViewSecurity::Invoker)
                    .then(|| "INVOKER".to_string()),
                ..TableDefinition::default()
            },
            created_at_ms: now_ms(),
        };
        self.catalog
            .create_table(entry, vec![], or_replace, None)
            .await?;
        Ok(())
    }

    /// Whether `plan` reads the view `target`, directly or through stored views (whose SQL is
    /// walked, since a planned view is only a table scan). `path` collects the chain found.
    fn view_reads(
        &self,
        state: &SessionState,
        target: &ResolvedTableReference,
        plan: &LogicalPlan,
        path: &mut Vec<String>,
    ) -> Result<bool, QueryError> {
        let mut names = vec![];
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                names.push(scan.table_name.clone());
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })?;
        let defaults = &state.config_options().catalog;
        let start: Vec<ResolvedTableReference> = names
            .into_iter()
            .map(|n| n.resolve(&defaults.default_catalog, &defaults.default_schema))
            .collect();
        self.references_reach(state, target, start, path, 0)
    }

    fn references_reach(
        &self,
        state: &SessionState,
        target: &ResolvedTableReference,
        references: Vec<ResolvedTableReference>,
        path: &mut Vec<String>,
        depth: usize,
    ) -> Result<bool, QueryError> {
        for reference in references {
            if reference.catalog.as_ref() != self.catalog_name() {
                continue;
            }
            path.push(reference.to_string());
            if reference.schema == target.schema && reference.table == target.table {
                return Ok(true);
            }
            if let Some(entry) = self.table(&reference.schema, &reference.table)
                && entry.kind == TableKind::View
                && depth < 64
                && let Some(sql) = &entry.definition.view_sql
            {
                let (catalog, schema) = entry
                    .definition
                    .view_search_path
                    .clone()
                    .unwrap_or_else(|| (entry.catalog.clone(), entry.schema.clone()));
                let statement =
                    state.sql_to_statement(sql, &state.config_options().sql_parser.dialect)?;
                let inner: Vec<ResolvedTableReference> = state
                    .resolve_table_references(&statement)?
                    .into_iter()
                    .map(|r| r.resolve(&catalog, &schema))
                    .collect();
                if self.references_reach(state, target, inner, path, depth + 1)? {
                    return Ok(true);
                }
            }
            path.pop();
        }
        Ok(false)
    }

    /// DROP TABLE / DROP VIEW. Managed tables lose their data too.
    pub async fn drop_relation(
        &self,
        state: &SessionState,
        name: &TableReference,
        if_exists: bool,
        want_view: bool,
    ) -> Result<(), QueryError> {
        let name = self.resolve(name, state)?;
        let Some(entry) = self.table(&name.schema, &name.table) else {
            if if_exists {
                return Ok(());
            }
            return Err(QueryError::InvalidStatement(format!(
                "{} {name} does not exist",
                if want_view { "view" } else { "table" }
            )));
        };
        if want_view != (entry.kind == TableKind::View) {
            return Err(QueryError::InvalidStatement(format!(
                "{name} is a {}; use DROP {}",
                entry.kind.noun(),
                entry.kind.noun().to_uppercase()
            )));
        }
        let dropped = self.catalog.drop_table(&name.schema, &name.table).await?;
        self.purge(state, &dropped).await;
        Ok(())
    }

    /// Deletes the data Osprey owned for a dropped table, through its format. The catalog no
    /// longer lists it, so a failure leaves only garbage, never visible data; it is logged.
    pub async fn purge(&self, state: &SessionState, entry: &TableEntry) {
        match self.formats.of(entry) {
            Ok(format) => format.purge(state, entry).await,
            Err(err) => {
                tracing::warn!(table = %entry.qualified_name(), error = %err, "a dropped table's format is unknown; its data is left in place");
            }
        }
    }

    /// CREATE SCHEMA.
    pub async fn create_schema(&self, schema: &str, if_not_exists: bool) -> Result<(), QueryError> {
        Ok(self.catalog.create_schema(schema, if_not_exists).await?)
    }

    /// DROP SCHEMA, purging the data of the tables dropped with it (CASCADE).
    pub async fn drop_schema(
        &self,
        state: &SessionState,
        schema: &str,
        if_exists: bool,
        cascade: bool,
    ) -> Result<(), QueryError> {
        let dropped = self.catalog.drop_schema(schema, if_exists, cascade).await?;
        for entry in dropped {
            self.purge(state, &entry).await;
        }
        Ok(())
    }

    /// ALTER TABLE ... RENAME TO.
    pub async fn rename_table(
        &self,
        from: (&str, &str),
        to: (&str, &str),
    ) -> Result<(), QueryError> {
        Ok(self.catalog.rename_table(from, to).await?)
    }
}

/// A location as a listing URL: a directory (no file extension in its last part) gets a
/// trailing `/` so the files under it are read.
fn normalize_location(location: &str) -> String {
    let last = location.rsplit('/').next().unwrap_or("");
    if location.ends_with('/') || last.contains('.') || last.contains('*') {
        location.to_string()
    } else {
        format!("{location}/")
    }
}
