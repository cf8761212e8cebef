//! The listing statements, answered by the service the same way through every door, in the
//! shapes Trino and Athena give them, over the session's metadata tables (so with its SQL type
//! names, and only what the policy shows):
//!
//! | statement | columns |
//! |---|---|
//! | `SHOW SCHEMAS [FROM catalog] [LIKE 'p']` | `Schema` |
//! | `SHOW TABLES [FROM schema] [LIKE 'p']` | `Table` |
//! | `SHOW COLUMNS FROM t`, `DESCRIBE t` | `Column`, `Type`, `Extra`, `Comment` |
//! | `SHOW CREATE TABLE t`, `SHOW CREATE VIEW v` | `table_catalog`, `table_schema`, `table_name`, `definition` |
//!
//! A name that does not resolve is an error with a "did you mean" from the names the user may
//! see ([`suggest_table`]).

use super::*;
use crate::lakehouse::tables::{quote, quote_ident};
use datafusion::logical_expr::{LogicalPlanBuilder, lit};

/// The plan answering a listing statement, or `None` for any other statement.
pub(super) async fn listing_plan(
    state: &SessionState,
    statement: &DFStatement,
) -> Result<Option<LogicalPlan>, QueryError> {
    let DFStatement::Statement(statement) = statement else {
        return Ok(None);
    };
    let defaults = &state.config_options().catalog;
    let sql = match statement.as_ref() {
        ast::Statement::ShowSchemas { show_options, .. }
        | ast::Statement::ShowDatabases { show_options, .. } => {
            let catalog = match parent_name(show_options).as_deref() {
                None => defaults.default_catalog.clone(),
                Some([catalog]) => catalog.clone(),
                Some(other) => {
                    return Err(QueryError::InvalidStatement(format!(
                        "SHOW SCHEMAS FROM {}: name a catalog",
                        other.join(".")
                    )));
                }
            };
            if state.catalog_list().catalog(&catalog).is_none() {
                return Err(QueryError::NotFound(format!(
                    "catalog {catalog} does not exist: SHOW CATALOGS lists them"
                )));
            }
            format!(
                "SELECT schema_name AS \"Schema\" FROM {}.information_schema.schemata{} ORDER BY 1",
                quote_ident(&catalog),
                like_filter("schema_name", show_options, " WHERE ")?
            )
        }
        ast::Statement::ShowTables { show_options, .. } => {
            let (catalog, schema) = match parent_name(show_options).as_deref() {
                None => (
                    defaults.default_catalog.clone(),
                    defaults.default_schema.clone(),
                ),
                Some([schema]) => (defaults.default_catalog.clone(), schema.clone()),
                Some([catalog, schema]) => (catalog.clone(), schema.clone()),
                Some(other) => {
                    return Err(QueryError::InvalidStatement(format!(
                        "SHOW TABLES FROM {}: name a schema, as schema or catalog.schema",
                        other.join(".")
                    )));
                }
            };
            let exists = state
                .catalog_list()
                .catalog(&catalog)
                .is_some_and(|c| c.schema(&schema).is_some());
            if !exists {
                return Err(QueryError::NotFound(format!(
                    "schema {catalog}.{schema} does not exist: SHOW SCHEMAS lists them"
                )));
            }
            format!(
                "SELECT table_name AS \"Table\" FROM {}.information_schema.tables \
                 WHERE table_schema = {}{} ORDER BY 1",
                quote_ident(&catalog),
                quote(&schema),
                like_filter("table_name", show_options, " AND ")?
            )
        }
        ast::Statement::ShowColumns { show_options, .. } => {
            let Some(parts) = parent_name(show_options) else {
                return Err(QueryError::InvalidStatement(
                    "SHOW COLUMNS needs a table: SHOW COLUMNS FROM t".into(),
                ));
            };
            columns_sql(
                state,
                &parts,
                like_filter("column_name", show_options, " AND ")?,
            )
            .await?
        }
        ast::Statement::ExplainTable {
            describe_alias: ast::DescribeAlias::Describe | ast::DescribeAlias::Desc,
            hive_format: None,
            table_name,
            ..
        } => columns_sql(state, &name_parts(table_name), String::new()).await?,
        ast::Statement::ShowCreate {
            obj_type: ast::ShowCreateObject::Table | ast::ShowCreateObject::View,
            obj_name,
        } => return Ok(Some(show_create(state, obj_name).await?)),
        _ => return Ok(None),
    };
    Ok(Some(state.create_logical_plan(&sql).await?))
}

/// `SHOW COLUMNS` / `DESCRIBE` of the table `parts` names, in Trino's four columns.
async fn columns_sql(
    state: &SessionState,
    parts: &[String],
    filter: String,
) -> Result<String, QueryError> {
    let (resolved, _) = resolve_existing(state, &table_reference_from_parts(parts)?).await?;
    Ok(format!(
        "SELECT column_name AS \"Column\", data_type AS \"Type\", \
         coalesce(extra_info, '') AS \"Extra\", coalesce(comment, '') AS \"Comment\" \
         FROM {}.information_schema.columns \
         WHERE table_schema = {} AND table_name = {}{filter} ORDER BY ordinal_position",
        quote_ident(&resolved.catalog),
        quote(&resolved.schema),
        quote(&resolved.table),
    ))
}

/// `SHOW CREATE TABLE | VIEW name`: the statement that recreates it, found through the
/// session's own catalogs (so through the policy's view of them, whatever the door's metadata
/// flavor), as DataFusion answers it: `table_catalog, table_schema, table_name, definition`.
async fn show_create(
    state: &SessionState,
    name: &ast::ObjectName,
) -> Result<LogicalPlan, QueryError> {
    let (resolved, table) = resolve_existing(state, &table_reference(name)?).await?;
    let definition = table.get_table_definition().map(str::to_string);
    let row = vec![
        lit(resolved.catalog.to_string()),
        lit(resolved.schema.to_string()),
        lit(resolved.table.to_string()),
        lit(ScalarValue::Utf8(definition)),
    ];
    let names = ["table_catalog", "table_schema", "table_name", "definition"];
    Ok(LogicalPlanBuilder::values(vec![row])?
        .project(names.iter().enumerate().map(|(index, name)| {
            datafusion::prelude::col(format!("column{}", index + 1)).alias(*name)
        }))?
        .build()?)
}

/// `reference` resolved against the session's current catalog and schema, with its table; a
/// table or view the session cannot see is [`QueryError::TableNotFound`], with a suggestion.
async fn resolve_existing(
    state: &SessionState,
    reference: &TableReference,
) -> Result<
    (
        datafusion::common::ResolvedTableReference,
        Arc<dyn TableProvider>,
    ),
    QueryError,
> {
    let defaults = &state.config_options().catalog;
    let resolved = reference
        .clone()
        .resolve(&defaults.default_catalog, &defaults.default_schema);
    match find_table(state, &resolved).await? {
        Some(table) => Ok((resolved, table)),
        None => {
            let err = QueryError::TableNotFound(format!("table {resolved} does not exist"));
            Err(suggest_table(state, err).await)
        }
    }
}

async fn find_table(
    state: &SessionState,
    resolved: &datafusion::common::ResolvedTableReference,
) -> Result<Option<Arc<dyn TableProvider>>, QueryError> {
    let Some(schema) = state
        .catalog_list()
        .catalog(&resolved.catalog)
        .and_then(|catalog| catalog.schema(&resolved.schema))
    else {
        return Ok(None);
    };
    Ok(schema.table(&resolved.table).await?)
}

/// A [`QueryError::TableNotFound`] with "did you mean" added: the closest names among the
/// tables the session can see (its current schema's by their bare name, others qualified).
/// A name the policy hides is refused as `PERMISSION_DENIED` (whether it exists or not), and
/// the refusal gets the same hint, drawn from what the principal sees only, so it reads the
/// same whether the hidden table exists. Any other error is returned as it is.
pub(super) async fn suggest_table(state: &SessionState, err: QueryError) -> QueryError {
    let Some(missing) = err.missing_table().map(str::to_string) else {
        return err;
    };
    let defaults = &state.config_options().catalog;
    let err = match state
        .config()
        .get_extension::<crate::policy::PolicyContext>()
    {
        Some(policy) => {
            policy
                .refuse(&defaults.default_catalog, &defaults.default_schema, err)
                .await
        }
        None => err,
    };
    let closest = closest_table(state, &missing);
    match (err, closest) {
        (QueryError::TableNotFound(message), Some(name)) => {
            QueryError::TableNotFound(format!("{message}. Did you mean {name}?"))
        }
        (QueryError::TableNotFound(message), None) => {
            QueryError::TableNotFound(format!("{message}: SHOW TABLES lists them"))
        }
        (QueryError::PermissionDenied(message), Some(name)) => {
            QueryError::PermissionDenied(format!("{message}. Did you mean {name}?"))
        }
        (other, _) => other,
    }
}

/// The table the session can see whose name is closest to `missing` (a name as the planner
/// reported it, qualified or not), written as the user would name it from the current schema.
fn closest_table(state: &SessionState, missing: &str) -> Option<String> {
    let mut parts = missing.rsplit('.');
    let wanted = parts.next().unwrap_or(missing).to_lowercase();
    // The schema the name was looked for in: a table there is the likeliest meant.
    let wanted_schema = parts.next().map(str::to_string);
    let defaults = &state.config_options().catalog;
    // (edits, elsewhere than the schema looked in, the name to show)
    let mut best: Option<(usize, bool, String)> = None;
    for catalog_name in state.catalog_list().catalog_names() {
        let Some(catalog) = state.catalog_list().catalog(&catalog_name) else {
            continue;
        };
        for schema_name in catalog.schema_names() {
            if schema_name == "information_schema" {
                continue;
            }
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            let elsewhere = wanted_schema.as_deref() != Some(schema_name.as_str());
            for table in schema.table_names() {
                let Some(distance) = crate::error_text::slip_distance(&wanted, &table) else {
                    continue;
                };
                let better = best
                    .as_ref()
                    .is_none_or(|b| (distance, elsewhere) < (b.0, b.1));
                if !better {
                    continue;
                }
                let current = catalog_name == defaults.default_catalog
                    && schema_name == defaults.default_schema;
                let shown = if current {
                    table
                } else if catalog_name == defaults.default_catalog {
                    format!("{schema_name}.{table}")
                } else {
                    format!("{catalog_name}.{schema_name}.{table}")
                };
                best = Some((distance, elsewhere, shown));
            }
        }
    }
    best.map(|(_, _, name)| name)
}

/// The name after `FROM`/`IN` of a `SHOW` statement, as its parts.
fn parent_name(options: &ast::ShowStatementOptions) -> Option<Vec<String>> {
    options
        .show_in
        .as_ref()
        .and_then(|show_in| show_in.parent_name.as_ref())
        .map(name_parts)
}

/// `LIKE 'pattern'` of a `SHOW` statement as a condition on `column`, after `joiner`.
fn like_filter(
    column: &str,
    options: &ast::ShowStatementOptions,
    joiner: &str,
) -> Result<String, QueryError> {
    use ast::{ShowStatementFilter, ShowStatementFilterPosition};
    let filter = match &options.filter_position {
        Some(ShowStatementFilterPosition::Infix(filter))
        | Some(ShowStatementFilterPosition::Suffix(filter)) => filter,
        None => return Ok(String::new()),
    };
    match filter {
        ShowStatementFilter::Like(pattern) => {
            Ok(format!("{joiner}{column} LIKE {}", quote(pattern)))
        }
        ShowStatementFilter::ILike(pattern) => {
            Ok(format!("{joiner}{column} ILIKE {}", quote(pattern)))
        }
        _ => Err(QueryError::NotSupported(
            "SHOW ... WHERE: filter with LIKE 'pattern', or query information_schema".into(),
        )),
    }
}
