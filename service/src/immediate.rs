//! `EXECUTE IMMEDIATE 'statement' USING value, ...`, as Trino spells it: how the `trino` Python
//! client (and so its SQLAlchemy dialect) sends a statement with parameters. The statement
//! service unwraps it for every front door. The statement's `?`
//! placeholders are bound to the values, which are SQL literals (`'text'`, `42`,
//! `DOUBLE '1.5'`, `DATE '2024-01-01'`, `ARRAY[1, 2]`, `NULL`).

use crate::error::QueryError;
use crate::nesting::check_expr_nesting;
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::Schema;
use datafusion::common::{DFSchema, DataFusionError, ScalarValue};
use datafusion::logical_expr::ColumnarValue;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, Query, Value, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use std::ops::ControlFlow;
use std::sync::Arc;

/// A statement and the parameter list of an `EXECUTE IMMEDIATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteImmediate {
    /// The statement to run (the string literal, unescaped).
    pub statement: String,
    /// The SQL text after `USING`, if any: comma-separated literals.
    pub using: Option<String>,
}

/// Recognizes `EXECUTE IMMEDIATE '...' [USING ...]`. `None` when `sql` is something else;
/// an error when it starts like one but is malformed.
pub fn parse_execute_immediate(sql: &str) -> Option<Result<ExecuteImmediate, QueryError>> {
    let rest = keyword(sql, "EXECUTE")?;
    let rest = keyword(rest, "IMMEDIATE")?;
    let bad = |why: &str| {
        Some(Err(QueryError::InvalidStatement(format!(
            "EXECUTE IMMEDIATE: {why}; write EXECUTE IMMEDIATE 'statement' [USING value, ...]"
        ))))
    };
    let Some(body) = rest.strip_prefix('\'') else {
        return bad("the statement must be a single-quoted string");
    };
    let mut statement = String::new();
    let mut chars = body.char_indices();
    let after = loop {
        match chars.next() {
            None => return bad("the statement's string is not closed"),
            Some((i, '\'')) => {
                if body[i + 1..].starts_with('\'') {
                    statement.push('\'');
                    chars.next();
                } else {
                    break &body[i + 1..];
                }
            }
            Some((_, c)) => statement.push(c),
        }
    };
    let after = after.trim().trim_end_matches(';').trim_end();
    if after.is_empty() {
        return Some(Ok(ExecuteImmediate {
            statement,
            using: None,
        }));
    }
    match keyword(after, "USING") {
        Some(values) if !values.trim().is_empty() => Some(Ok(ExecuteImmediate {
            statement,
            using: Some(values.trim().to_string()),
        })),
        _ => bad("expected USING and the values after the statement"),
    }
}

/// The text after `word` (case-insensitive) and the whitespace around it, if `text` starts
/// with it as a whole word.
fn keyword<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let text = text.trim_start();
    let head = text.get(..word.len())?;
    let rest = &text[word.len()..];
    (head.eq_ignore_ascii_case(word) && rest.starts_with(|c: char| c.is_whitespace() || c == '\''))
        .then(|| rest.trim_start())
}

/// How deeply a `USING` value may nest (`ARRAY[ARRAY[1]]`, `-(1)`): parameters are constants.
const MAX_PARAMETER_DEPTH: usize = 16;

/// Evaluates the constants of a `USING` list. The list is parsed as expressions (never spliced
/// into SQL), and each must be a constant: a literal, a typed literal (`DATE '...'`), a cast,
/// a sign, arithmetic, an `ARRAY[...]` or an `INTERVAL` of those. Nothing here reads a table or calls a
/// function, so evaluating the values costs nothing the statement's workgroup would limit.
pub fn evaluate_parameters(using: &str) -> Result<Vec<ScalarValue>, QueryError> {
    let refuse = |why: String| {
        QueryError::InvalidStatement(format!(
            "EXECUTE IMMEDIATE ... USING: {why}. The values must be constants: literals such as \
             'text', 42, DOUBLE '1.5', DATE '2024-01-01', ARRAY[1, 2] or NULL"
        ))
    };
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(MAX_PARAMETER_DEPTH)
        .try_with_sql(using)
        .map_err(|err| refuse(err.to_string()))?;
    let mut values = parser
        .parse_comma_separated(Parser::parse_expr)
        .map_err(|err| refuse(err.to_string()))?;
    if parser.peek_token().token != Token::EOF {
        return Err(refuse(format!("unexpected {}", parser.peek_token())));
    }
    for value in &mut values {
        check_expr_nesting(value, MAX_PARAMETER_DEPTH).map_err(|err| refuse(err.to_string()))?;
        if let ControlFlow::Break(what) = value.visit(&mut ConstantsOnly) {
            return Err(refuse(format!("{what} is not a constant")));
        }
    }
    let state = SessionContext::new().state();
    let no_columns = DFSchema::empty();
    let one_row = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )
    .map_err(DataFusionError::from)?;
    values
        .iter()
        .map(|value| {
            // The value is re-printed from its checked syntax tree: a constant prints as one.
            let logical = state.create_logical_expr(&value.to_string(), &no_columns)?;
            let physical = state.create_physical_expr(logical, &no_columns)?;
            match physical.evaluate(&one_row)? {
                ColumnarValue::Scalar(scalar) => Ok(scalar),
                ColumnarValue::Array(array) => ScalarValue::try_from_array(&array, 0),
            }
        })
        .collect::<Result<Vec<_>, DataFusionError>>()
        .map_err(|err| refuse(err.strip_backtrace()))
}

/// Stops at the first part of an expression that is not a constant.
struct ConstantsOnly;

impl Visitor for ConstantsOnly {
    type Break = String;

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<String> {
        ControlFlow::Break("a subquery".to_string())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        match expr {
            Expr::Value(value) if !matches!(value.value, Value::Placeholder(_)) => {
                ControlFlow::Continue(())
            }
            Expr::TypedString(_)
            | Expr::UnaryOp { .. }
            | Expr::BinaryOp { .. }
            | Expr::Cast { .. }
            | Expr::Array(_)
            | Expr::Nested(_)
            | Expr::Interval(_) => ControlFlow::Continue(()),
            other => ControlFlow::Break(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_and_values_are_split() {
        let parsed = parse_execute_immediate(
            "execute   immediate\n'SELECT * FROM t WHERE a = ? AND b = ''it''''s''' USING 'x', 2;",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            parsed.statement,
            "SELECT * FROM t WHERE a = ? AND b = 'it''s'"
        );
        assert_eq!(parsed.using.as_deref(), Some("'x', 2"));
        let bare = parse_execute_immediate("EXECUTE IMMEDIATE 'SELECT 1'")
            .unwrap()
            .unwrap();
        assert_eq!(bare.using, None);
        for bad in [
            "EXECUTE IMMEDIATE SELECT 1",
            "EXECUTE IMMEDIATE 'SELECT 1",
            "EXECUTE IMMEDIATE 'SELECT ?' 1",
            "EXECUTE IMMEDIATE 'SELECT ?' USING ",
        ] {
            assert!(parse_execute_immediate(bad).unwrap().is_err(), "{bad}");
        }
        assert!(parse_execute_immediate("EXECUTED IMMEDIATELY").is_none());
        assert!(parse_execute_immediate("SELECT 'EXECUTE IMMEDIATE'").is_none());
    }

    #[test]
    fn literals_become_values() {
        let values = evaluate_parameters(
            "'main', 42, DOUBLE '1.5', NULL, DATE '2024-02-29', -7, CAST('3' AS INT)",
        )
        .unwrap();
        assert_eq!(values[0], ScalarValue::Utf8(Some("main".into())));
        assert_eq!(values[1], ScalarValue::Int64(Some(42)));
        assert_eq!(values[2], ScalarValue::Float64(Some(1.5)));
        assert!(values[3].is_null());
        assert_eq!(values[4], ScalarValue::Date32(Some(19782)));
        assert_eq!(values[5], ScalarValue::Int64(Some(-7)));
        assert_eq!(values[6], ScalarValue::Int32(Some(3)));
    }

    #[test]
    fn anything_but_constants_is_refused() {
        for using in [
            "(SELECT secret FROM users)",
            "(SELECT max(x) FROM generate_series(1, 4000000000) AS t(x))",
            "1 FROM big_table",
            "1, x",
            "now()",
            "?",
            "1; DROP TABLE t",
        ] {
            let err = evaluate_parameters(using).unwrap_err();
            assert!(
                err.to_string().contains("must be constants"),
                "{using}: {err}"
            );
        }
        let deep = format!("1{}", "::INT".repeat(5000));
        assert!(evaluate_parameters(&deep).is_err());
    }
}

#[cfg(test)]
mod recognizer_example {
    use super::*;

    #[test]
    fn recognizes_its_statements_and_nothing_else() {
        let parsed = parse_execute_immediate("EXECUTE IMMEDIATE 'SELECT ?, ''x''' USING 42")
            .unwrap()
            .unwrap();
        assert_eq!(parsed.statement, "SELECT ?, 'x'");
        assert_eq!(parsed.using.as_deref(), Some("42"));
        assert!(parse_execute_immediate("SELECT 1").is_none());
    }
}
