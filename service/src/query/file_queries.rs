//! Files queried directly, as DuckDB users write them:
//!
//! ```sql
//! SELECT * FROM 'data/orders/*.parquet';
//! SELECT * FROM read_parquet('s3://lake/orders/');
//! SELECT * FROM read_csv('exports/2026-12.csv');
//! SELECT * FROM read_json('logs/*.ndjson');
//! ```
//!
//! A quoted name in `FROM` is a path (its format told by its extension); `read_parquet`,
//! `read_csv` and `read_json` name the format. Paths may be local (relative to the
//! coordinator's working directory) or object storage URLs, with globs (`*`, `?`, `[...]`).
//!
//! Each path is checked against the locations its user may read, as `CREATE EXTERNAL TABLE`
//! is (an admin reaches any path outside Osprey's own storage; a user only their granted
//! locations), then the files' schema is inferred as for external tables. The reference is
//! rewritten to a table of the statement's own, seen only by that statement (the
//! [`FileOverlay`]), which the executors scan as any external table.

use super::*;
use crate::lakehouse::tables::file_format;
use datafusion::catalog::{CatalogProvider, CatalogProviderList};
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::sql::sqlparser::ast::{
    FunctionArg, FunctionArgExpr, Ident, ObjectName, ObjectNamePart, TableFactor, VisitMut,
    VisitorMut,
};
use futures::TryStreamExt;
use std::collections::HashMap;
use std::ops::ControlFlow;

/// A file reference found in a statement: the path and its format.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileReference {
    path: String,
    format: &'static str,
}

/// Finds file references in `FROM` clauses and renames each to its path (a quoted identifier),
/// which the statement's [`FileOverlay`] answers.
#[derive(Default)]
struct FileReferences {
    found: Vec<FileReference>,
}

impl VisitorMut for FileReferences {
    type Break = QueryError;

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<QueryError> {
        let TableFactor::Table { name, args, .. } = factor else {
            return ControlFlow::Continue(());
        };
        let reference = match args {
            Some(function) => {
                let called = name.to_string().to_ascii_lowercase();
                let Some(format) = reader_format(&called) else {
                    return ControlFlow::Continue(());
                };
                let path = match function.args.as_slice() {
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(ast::Expr::Value(value)))] => {
                        match &value.value {
                            ast::Value::SingleQuotedString(path) => path.clone(),
                            _ => return ControlFlow::Break(reader_usage(&called)),
                        }
                    }
                    _ => return ControlFlow::Break(reader_usage(&called)),
                };
                FileReference { path, format }
            }
            None => match name.0.as_slice() {
                [ObjectNamePart::Identifier(ident)] if ident.quote_style == Some('\'') => {
                    match format_of_path(&ident.value) {
                        Some(format) => FileReference {
                            path: ident.value.clone(),
                            format,
                        },
                        None => {
                            return ControlFlow::Break(QueryError::InvalidStatement(format!(
                                "cannot tell the format of '{}' from its name: use \
                                 read_parquet('...'), read_csv('...') or read_json('...')",
                                ident.value
                            )));
                        }
                    }
                }
                _ => return ControlFlow::Continue(()),
            },
        };
        *name = ObjectName::from(vec![Ident::with_quote('"', reference.path.clone())]);
        *args = None;
        self.found.push(reference);
        ControlFlow::Continue(())
    }
}

/// The format a reader function reads.
fn reader_format(function: &str) -> Option<&'static str> {
    match function {
        "read_parquet" => Some("parquet"),
        "read_csv" | "read_csv_auto" => Some("csv"),
        "read_json" | "read_json_auto" | "read_ndjson" => Some("json"),
        _ => None,
    }
}

fn reader_usage(function: &str) -> QueryError {
    QueryError::InvalidStatement(format!(
        "{function} takes one path in quotes, as {function}('data/*.parquet')"
    ))
}

/// The format a path's extension names (before any compression suffix).
fn format_of_path(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let name = [".gz", ".bz2", ".xz", ".zst"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(&name);
    let extension = name.rsplit_once('.')?.1;
    match extension {
        "parquet" | "parq" => Some("parquet"),
        "csv" | "tsv" => Some("csv"),
        "json" | "ndjson" | "jsonl" => Some("json"),
        _ => None,
    }
}

impl QueryEngine {
    /// Resolves the files `statement` reads directly (see the module docs): each path is
    /// checked for the session's user and opened, and `state` sees them through a
    /// [`FileOverlay`]. A statement without file references is left as it is.
    pub(super) async fn resolve_file_references(
        &self,
        state: &mut SessionState,
        session: &SessionSettings,
        statement: &mut DFStatement,
    ) -> Result<(), QueryError> {
        let DFStatement::Statement(ast_statement) = statement else {
            return Ok(());
        };
        let mut references = FileReferences::default();
        if let ControlFlow::Break(err) = ast_statement.as_mut().visit(&mut references) {
            return Err(err);
        }
        if references.found.is_empty() {
            return Ok(());
        }
        if matches!(ast_statement.as_ref(), ast::Statement::CreateView(_)) {
            return Err(QueryError::NotSupported(
                "a view over files read directly: create an external table over them \
                 (CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '...') and a view over \
                 that"
                    .into(),
            ));
        }
        let mut tables: HashMap<String, Arc<dyn TableProvider>> = HashMap::new();
        for reference in references.found {
            if tables.contains_key(&reference.path) {
                continue;
            }
            self.locations.check(
                session.principal.as_ref(),
                &reference.path,
                Access::Read,
                &self.location_usage(session),
            )?;
            let table = open_files(state, &reference).await?;
            tables.insert(reference.path, table);
        }
        let defaults = state.config_options().catalog.clone();
        let overlay = FileOverlay {
            inner: Arc::clone(state.catalog_list()),
            catalog: defaults.default_catalog,
            schema: defaults.default_schema,
            tables: Arc::new(tables),
        };
        *state = datafusion::execution::SessionStateBuilder::new_from_existing(state.clone())
            .with_catalog_list(Arc::new(overlay))
            .build();
        Ok(())
    }
}

/// The files `path` names. DataFusion reads a glob in a local path only; in an object
/// storage URL (`s3://lake/events/*.parquet`) the glob is split off here: the part up to the
/// last `/` before it is listed, and what follows is matched against what is found there.
fn listing_url(path: &str) -> datafusion::error::Result<ListingTableUrl> {
    let glob_at = path.find(['*', '?', '[']);
    let (Some(glob_at), true) = (glob_at, path.contains("://")) else {
        return ListingTableUrl::parse(path);
    };
    let Some(slash) = path[..glob_at].rfind('/') else {
        return ListingTableUrl::parse(path);
    };
    let (base, pattern) = path.split_at(slash + 1);
    let url = url::Url::parse(base).map_err(|err| DataFusionError::External(Box::new(err)))?;
    let pattern =
        glob::Pattern::new(pattern).map_err(|err| DataFusionError::External(Box::new(err)))?;
    ListingTableUrl::try_new(url, Some(pattern))
}

/// The files at `reference` as a table, their schema inferred as for external tables.
async fn open_files(
    state: &SessionState,
    reference: &FileReference,
) -> Result<Arc<dyn TableProvider>, QueryError> {
    let path = &reference.path;
    let storage = |err: DataFusionError| {
        QueryError::InvalidStatement(format!(
            "cannot read '{path}': {}",
            crate::error_text::plain_message(&err)
        ))
    };
    let url = listing_url(path).map_err(storage)?;
    let format = file_format(
        reference.format,
        &Default::default(),
        state.config_options(),
    )?;
    // A directory holds the format's files; a file or a glob names its files itself.
    let extension = if path.ends_with('/') {
        crate::lakehouse::tables::file_extension(format.as_ref())?
    } else {
        String::new()
    };
    let options = ListingOptions::new(format).with_file_extension(extension.clone());
    // One file is enough to know the path matches something (inference lists them all).
    let store = state.runtime_env().object_store(&url).map_err(storage)?;
    let first = url
        .list_all_files(state, store.as_ref(), &extension)
        .await
        .map_err(storage)?
        .try_next()
        .await
        .map_err(storage)?;
    if first.is_none() {
        return Err(QueryError::InvalidStatement(format!(
            "no {} files match '{path}': check the path (relative paths start at the \
             coordinator's working directory)",
            reference.format
        )));
    }
    let schema = options.infer_schema(state, &url).await.map_err(storage)?;
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// The session's catalogs with one statement's file tables added to its current schema, under
/// their paths (names no catalog table can have, as they are not identifiers users create).
#[derive(Debug)]
pub(super) struct FileOverlay {
    inner: Arc<dyn CatalogProviderList>,
    catalog: String,
    schema: String,
    tables: Arc<HashMap<String, Arc<dyn TableProvider>>>,
}

impl CatalogProviderList for FileOverlay {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.inner.catalog_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        let catalog = self.inner.catalog(name)?;
        if name != self.catalog {
            return Some(catalog);
        }
        Some(Arc::new(FileOverlayCatalog {
            inner: catalog,
            schema: self.schema.clone(),
            tables: Arc::clone(&self.tables),
        }))
    }
}

#[derive(Debug)]
struct FileOverlayCatalog {
    inner: Arc<dyn CatalogProvider>,
    schema: String,
    tables: Arc<HashMap<String, Arc<dyn TableProvider>>>,
}

impl CatalogProvider for FileOverlayCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.inner.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let schema = self.inner.schema(name)?;
        if name != self.schema {
            return Some(schema);
        }
        Some(Arc::new(FileOverlaySchema {
            inner: schema,
            tables: Arc::clone(&self.tables),
        }))
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> datafusion::error::Result<Option<Arc<dyn SchemaProvider>>> {
        self.inner.register_schema(name, schema)
    }

    fn deregister_schema(
        &self,
        name: &str,
        cascade: bool,
    ) -> datafusion::error::Result<Option<Arc<dyn SchemaProvider>>> {
        self.inner.deregister_schema(name, cascade)
    }
}

#[derive(Debug)]
struct FileOverlaySchema {
    inner: Arc<dyn SchemaProvider>,
    tables: Arc<HashMap<String, Arc<dyn TableProvider>>>,
}

#[async_trait::async_trait]
impl SchemaProvider for FileOverlaySchema {
    fn table_names(&self) -> Vec<String> {
        // Listings show the schema's own tables, not one statement's files.
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        match self.tables.get(name) {
            Some(table) => Ok(Some(Arc::clone(table))),
            None => self.inner.table(name).await,
        }
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        self.inner.register_table(name, table)
    }

    fn deregister_table(
        &self,
        name: &str,
    ) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        self.inner.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name) || self.inner.table_exist(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn references(sql: &str) -> Result<(Vec<FileReference>, String), QueryError> {
        let mut statement = Parser::parse_sql(&GenericDialect {}, sql)
            .unwrap()
            .remove(0);
        let mut visitor = FileReferences::default();
        if let ControlFlow::Break(err) = statement.visit(&mut visitor) {
            return Err(err);
        }
        Ok((visitor.found, statement.to_string()))
    }

    #[test]
    fn quoted_paths_and_readers_become_file_tables() {
        let (found, rewritten) = references(
            "SELECT * FROM 'data/*.parquet' AS o JOIN read_csv('c.csv') c ON o.id = c.id",
        )
        .unwrap();
        assert_eq!(
            found,
            vec![
                FileReference {
                    path: "data/*.parquet".into(),
                    format: "parquet"
                },
                FileReference {
                    path: "c.csv".into(),
                    format: "csv"
                },
            ]
        );
        assert!(
            rewritten.contains(r#"FROM "data/*.parquet" AS o JOIN "c.csv" c"#),
            "{rewritten}"
        );
        // Other table functions and names are left alone.
        let (found, _) = references("SELECT * FROM generate_series(1, 3), t").unwrap();
        assert!(found.is_empty());
        let err = references("SELECT * FROM 'notes.txt'").unwrap_err();
        assert!(err.to_string().contains("read_csv"), "{err}");
        let err = references("SELECT * FROM read_parquet(1)").unwrap_err();
        assert!(err.to_string().contains("one path in quotes"), "{err}");
        assert_eq!(format_of_path("logs/day.ndjson.gz"), Some("json"));
    }
}
