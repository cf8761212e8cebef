//! Statements that change the catalog or write data: each runs once, when prepared, and
//! reports how many rows it wrote (0 for pure DDL).

use super::Lakehouse;
use super::tables::{encode_schema, file_extension, file_format, split_partition_columns};
use super::writes::{StagedWrite, WriteError, delete_prefix};
use crate::error::QueryError;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{DataFusionError, ResolvedTableReference, TableReference};
use datafusion::datasource::listing::{ListingOptions, ListingTableUrl};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{CreateExternalTable, LogicalPlan};
use datafusion::sql::sqlparser::ast::{Ident, ObjectName, ObjectNamePart};
use osprey_catalog::{CatalogError, TableDefinition, TableEntry, TableKind, check_name, now_ms};
use osprey_engine::WriteFormat;
use std::collections::BTreeMap;
use std::sync::Arc;

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

    /// CREATE EXTERNAL TABLE: infers the schema now (unless declared) and stores it.
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
        let format_name = cmd.file_type.to_lowercase();
        let options: BTreeMap<String, String> = cmd
            .options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let format = file_format(&format_name, &options, state.config_options())?;
        // A directory location gets a trailing slash, so the files under it are read.
        let location = normalize_location(location);
        let url = ListingTableUrl::parse(&location)?;
        let table_schema = if cmd.schema.fields().is_empty() {
            let listing = ListingOptions::new(Arc::clone(&format))
                .with_file_extension(file_extension(format.as_ref())?);
            let files = listing
                .infer_schema(state, &url)
                .await
                .map_err(|err| storage_error(&location, err))?;
            if files.fields().is_empty() {
                return Err(QueryError::InvalidStatement(format!(
                    "no {format_name} files found under {location}: check the location, or declare \
                     the columns to create a table over a location that is empty for now"
                )));
            }
            let mut fields: Vec<Field> =
                files.fields().iter().map(|f| f.as_ref().clone()).collect();
            for column in &cmd.table_partition_cols {
                if files.field_with_name(column).is_ok() {
                    return Err(QueryError::InvalidStatement(format!(
                        "partition column {column} is also a column inside the files"
                    )));
                }
                fields.push(Field::new(column, DataType::Utf8, true));
            }
            Schema::new(fields)
        } else {
            cmd.schema.as_arrow().clone()
        };
        split_partition_columns(&table_schema, &cmd.table_partition_cols)?;
        let entry = TableEntry {
            id: uuid::Uuid::new_v4().to_string(),
            catalog: name.catalog.to_string(),
            schema: name.schema.to_string(),
            name: name.table.to_string(),
            kind: TableKind::External,
            definition: TableDefinition {
                location: Some(location),
                format: Some(format_name),
                options,
                partition_columns: cmd.table_partition_cols.clone(),
                arrow_schema: encode_schema(&table_schema)?,
                ..TableDefinition::default()
            },
            created_at_ms: now_ms(),
        };
        // Open it once, so a definition that cannot be read is refused now, not at query time.
        super::tables::external_table(&entry, state.config_options())?;
        self.create_table(entry, vec![], cmd.or_replace, None)
            .await?;
        Ok(())
    }

    /// CREATE TABLE (managed, empty) and CREATE TABLE AS SELECT (managed, with its data
    /// published in the same transaction that creates it). Returns rows written.
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
            definition: TableDefinition {
                location: Some(location.clone()),
                format: Some("parquet".to_string()),
                arrow_schema: encode_schema(schema)?,
                ..TableDefinition::default()
            },
            created_at_ms: now_ms(),
        };
        let (replaced, rows) = match input {
            None => (self.create_table(entry, vec![], or_replace, None).await?, 0),
            Some(input) => {
                let (write, files) = self.write_parquet(state, &location, input).await?;
                let rows = files.iter().map(|f| f.row_count).sum();
                let replaced = self
                    .create_table(entry, files, or_replace, Some(&write.write_id))
                    .await?;
                write.published();
                (replaced, rows)
            }
        };
        if let Some(old) = replaced {
            self.delete_managed_data(state, &old).await;
        }
        Ok(rows)
    }

    /// INSERT INTO a managed table. Returns rows written.
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
        match entry.kind {
            TableKind::Managed => {}
            TableKind::View => {
                return Err(QueryError::InvalidStatement(format!(
                    "{name} is a view; INSERT needs a table"
                )));
            }
            TableKind::External => {
                return Err(QueryError::NotSupported(format!(
                    "INSERT into external table {name}: Osprey does not change data it does not own \
                     (like Trino's Hive connector by default). Write a managed table with CREATE TABLE \
                     ... AS SELECT, or export files with UNLOAD"
                )));
            }
        }
        let location = entry.definition.location.clone().unwrap_or_default();
        let (write, files) = self.write_parquet(state, &location, input).await?;
        let rows = files.iter().map(|f| f.row_count).sum();
        self.append_files(&entry.id, files, &write.write_id).await?;
        write.published();
        Ok(rows)
    }

    /// Writes `input` as Parquet under a new staging prefix of the managed table at `location`.
    /// The returned write deletes its files when dropped, unless marked published.
    async fn write_parquet(
        &self,
        state: &SessionState,
        location: &str,
        input: LogicalPlan,
    ) -> Result<(StagedWrite, Vec<osprey_catalog::DataFile>), QueryError> {
        let write_id = uuid::Uuid::new_v4().to_string();
        let prefix = format!("{location}data/{write_id}/");
        let write =
            StagedWrite::begin(self, Arc::clone(state.runtime_env()), write_id, prefix).await?;
        let files = write.run(state, input, WriteFormat::Parquet).await?;
        Ok((write, files))
    }

    /// CREATE [OR REPLACE] VIEW.
    pub async fn create_view(
        &self,
        state: &SessionState,
        name: &TableReference,
        input: &LogicalPlan,
        sql: &str,
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
                ..TableDefinition::default()
            },
            created_at_ms: now_ms(),
        };
        self.create_table(entry, vec![], or_replace, None).await?;
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
        let dropped = self.drop_table(&name.schema, &name.table).await?;
        self.delete_managed_data(state, &dropped).await;
        Ok(())
    }

    /// Deletes a dropped managed table's files. The catalog no longer lists them, so a failure
    /// here leaves only garbage, never visible data; it is logged.
    pub async fn delete_managed_data(&self, state: &SessionState, entry: &TableEntry) {
        if entry.kind != TableKind::Managed {
            return;
        }
        if let Some(location) = &entry.definition.location
            && let Err(err) = delete_prefix(state.runtime_env(), location).await
        {
            tracing::warn!(table = %entry.qualified_name(), %location, error = %err, "cannot delete a dropped table's files");
        }
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

/// Storage errors while reading a location, with the location named.
fn storage_error(location: &str, err: DataFusionError) -> QueryError {
    let message = err.strip_backtrace();
    match QueryError::from_ref(&err) {
        QueryError::PermissionDenied(_) => QueryError::PermissionDenied(format!(
            "cannot read {location}: {message}. Check the credentials in [[storage]] for this \
             location (or the environment of the coordinator and executors)"
        )),
        _ => QueryError::InvalidStatement(format!("cannot read {location}: {message}")),
    }
}
