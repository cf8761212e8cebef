//! The names in a parsed statement, and statements refused after parsing.

use super::*;

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

/// `plan` with the parameter values bound through the driver; a plan with placeholders and no
/// values is refused by name.
pub(super) fn bind_parameters(
    plan: LogicalPlan,
    parameters: Option<Vec<ScalarValue>>,
) -> Result<LogicalPlan, QueryError> {
    let Some(values) = parameters else {
        let placeholders = plan.get_parameter_fields()?;
        if !placeholders.is_empty() {
            let mut names: Vec<&str> = placeholders.keys().map(String::as_str).collect();
            names.sort();
            return Err(QueryError::InvalidStatement(format!(
                "the statement has placeholders ({}) but no parameter values: bind them \
                 through the driver (a prepared statement with parameters)",
                names.join(", ")
            )));
        }
        return Ok(plan);
    };
    Ok(plan.with_param_values(ParamValues::List(
        values.into_iter().map(ScalarAndMetadata::from).collect(),
    ))?)
}
