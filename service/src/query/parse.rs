//! Parsing a statement within the nesting bounds, and the names in it.

use super::*;

/// Parses one statement, numbering `?` placeholders as `$1`, `$2`, ... in order (DataFusion
/// plans numbered placeholders; drivers such as ADBC's send `?`).
pub(super) fn parse(state: &SessionState, sql: &str) -> Result<DFStatement, QueryError> {
    let mut statement = parse_bounded(state, sql)?;
    if let DFStatement::Statement(ast_statement) = &mut statement {
        let mut next = 0;
        let _ = ast::visit_expressions_mut(ast_statement.as_mut(), |expr| {
            if let ast::Expr::Value(value) = expr
                && matches!(&value.value, ast::Value::Placeholder(p) if p == "?")
            {
                next += 1;
                value.value = ast::Value::Placeholder(format!("${next}"));
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
    Ok(statement)
}

/// Token nesting past which a failed parse is tried again with a higher recursion limit.
const MIN_NESTING_TO_RECHECK: usize = 32;
/// The recursion limit of that second parse.
const RECHECK_PARSER_RECURSION: usize = 16 * MAX_PARSER_RECURSION;

/// Parses one statement, refusing it when it nests too deeply to plan (see [`crate::nesting`]).
pub(crate) fn parse_bounded(state: &SessionState, sql: &str) -> Result<DFStatement, QueryError> {
    let dialect = state.config_options().sql_parser.dialect;
    let mut statement = match state.sql_to_statement(sql, &dialect) {
        Ok(statement) => statement,
        Err(err) if is_parser_recursion_limit(&err) => {
            return Err(TooDeeplyNested::parser().into());
        }
        // The parser reports its limit inside CASE as the alternative it tried last: a
        // statement that nests deeply and parses with a higher limit was refused for its depth.
        // (sqlparser grows its stack as it recurses, so the second parse is safe.)
        Err(err) if token_nesting(sql) >= MIN_NESTING_TO_RECHECK => {
            let mut deeper = state.clone();
            deeper.config_mut().options_mut().sql_parser.recursion_limit =
                datafusion::config::ConfigNonZeroUsize::try_new(RECHECK_PARSER_RECURSION)?;
            return Err(match deeper.sql_to_statement(sql, &dialect) {
                Ok(mut parsed) => {
                    // Cut before dropping: the tree may be deep.
                    let _ = check_nesting(&mut parsed, MAX_STATEMENT_DEPTH);
                    TooDeeplyNested::parser().into()
                }
                Err(_) => err.into(),
            });
        }
        Err(err) => return Err(err.into()),
    };
    check_nesting(&mut statement, MAX_STATEMENT_DEPTH)?;
    Ok(statement)
}

impl From<TooDeeplyNested> for QueryError {
    fn from(err: TooDeeplyNested) -> Self {
        QueryError::InvalidStatement(err.to_string())
    }
}

pub(super) fn unload_needs_query() -> QueryError {
    QueryError::InvalidStatement(
        "UNLOAD exports the result of a query: UNLOAD (SELECT ...) TO 'location'".to_string(),
    )
}

pub(super) fn table_reference(name: &ast::ObjectName) -> Result<TableReference, QueryError> {
    table_reference_from_parts(&name_parts(name))
}

pub(super) fn table_reference_from_parts(parts: &[String]) -> Result<TableReference, QueryError> {
    Ok(match parts {
        [table] => TableReference::bare(table.as_str()),
        [schema, table] => TableReference::partial(schema.as_str(), table.as_str()),
        [catalog, schema, table] => {
            TableReference::full(catalog.as_str(), schema.as_str(), table.as_str())
        }
        _ => {
            return Err(QueryError::InvalidStatement(format!(
                "{} is not a table name: use [catalog.][schema.]table",
                parts.join(".")
            )));
        }
    })
}

/// SQL `PREPARE`/`EXECUTE`/`DEALLOCATE` and transactions are refused: clients prepare through
/// their protocol (Flight SQL prepared statements), and Osprey has no transactions.
pub(super) fn refuse_session_statements(plan: &LogicalPlan) -> Result<(), QueryError> {
    if let LogicalPlan::Statement(statement) = plan {
        return Err(QueryError::NotSupported(format!(
            "{}: Osprey has no SQL-level prepared statements or transactions; prepare through \
             the client driver instead. The statement was not run",
            statement.name()
        )));
    }
    Ok(())
}
