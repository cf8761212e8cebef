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
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use std::ops::ControlFlow;
use std::sync::Arc;

/// A statement and the parameter list of an `EXECUTE IMMEDIATE`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteImmediate {
    /// The statement to run (the string literal, unescaped).
    pub statement: String,
    /// The tokens after `USING`, if any: comma-separated literals.
    pub using: Option<Vec<Token>>,
}

/// Recognizes `EXECUTE IMMEDIATE '...' [USING ...]` on a statement's tokens (whitespace left
/// out). `None` when it is something else; an error when it starts like one but is malformed.
pub fn parse_execute_immediate(tokens: &[Token]) -> Result<Option<ExecuteImmediate>, QueryError> {
    let is_word = |token: Option<&Token>, keyword: Keyword| matches!(token, Some(Token::Word(word)) if word.keyword == keyword && word.quote_style.is_none());
    if !(is_word(tokens.first(), Keyword::EXECUTE) && is_word(tokens.get(1), Keyword::IMMEDIATE)) {
        return Ok(None);
    }
    let bad = |why: &str| {
        QueryError::InvalidStatement(format!(
            "EXECUTE IMMEDIATE: {why}; write EXECUTE IMMEDIATE 'statement' [USING value, ...]"
        ))
    };
    let Some(Token::SingleQuotedString(statement)) = tokens.get(2) else {
        return Err(bad("the statement must be a single-quoted string"));
    };
    let mut rest = &tokens[3..];
    while let [before @ .., Token::SemiColon] = rest {
        rest = before;
    }
    let using = match rest {
        [] => None,
        [first, values @ ..] if is_word(Some(first), Keyword::USING) && !values.is_empty() => {
            Some(values.to_vec())
        }
        _ => return Err(bad("expected USING and the values after the statement")),
    };
    Ok(Some(ExecuteImmediate {
        statement: statement.clone(),
        using,
    }))
}

/// How deeply a `USING` value may nest (`ARRAY[ARRAY[1]]`, `-(1)`): parameters are constants.
const MAX_PARAMETER_DEPTH: usize = 16;

/// Evaluates the constants of a `USING` list. The list is parsed as expressions (never spliced
/// into SQL), and each must be a constant: a literal, a typed literal (`DATE '...'`), a cast,
/// a sign, arithmetic, an `ARRAY[...]` or an `INTERVAL` of those. Nothing here reads a table or calls a
/// function, so evaluating the values costs nothing the statement's workgroup would limit.
pub fn evaluate_parameters(using: &[Token]) -> Result<Vec<ScalarValue>, QueryError> {
    let refuse = |why: String| {
        QueryError::InvalidStatement(format!(
            "EXECUTE IMMEDIATE ... USING: {why}. The values must be constants: literals such as \
             'text', 42, DOUBLE '1.5', DATE '2024-01-01', ARRAY[1, 2] or NULL"
        ))
    };
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(MAX_PARAMETER_DEPTH)
        .with_tokens(using.to_vec());
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
        .map_err(|err| refuse(crate::error_text::plain_message(&err)))
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
    use crate::parser::tokens_of;

    fn parse(sql: &str) -> Result<Option<ExecuteImmediate>, QueryError> {
        parse_execute_immediate(&tokens_of(sql))
    }

    #[test]
    fn statements_and_values_are_split() {
        let parsed = parse(
            "execute   immediate\n'SELECT * FROM t WHERE a = ? AND b = ''it''''s''' USING 'x', 2;",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            parsed.statement,
            "SELECT * FROM t WHERE a = ? AND b = 'it''s'"
        );
        assert_eq!(parsed.using, Some(tokens_of("'x', 2")));
        let bare = parse("EXECUTE IMMEDIATE 'SELECT 1'").unwrap().unwrap();
        assert_eq!(bare.using, None);
        for bad in [
            "EXECUTE IMMEDIATE SELECT 1",
            "EXECUTE IMMEDIATE 'SELECT ?' 1",
            "EXECUTE IMMEDIATE 'SELECT ?' USING ",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("EXECUTED IMMEDIATELY").unwrap().is_none());
        assert!(parse("SELECT 'EXECUTE IMMEDIATE'").unwrap().is_none());
        assert!(parse("\"EXECUTE\" IMMEDIATE 'SELECT 1'").unwrap().is_none());
    }

    #[test]
    fn literals_become_values() {
        let values = evaluate_parameters(&tokens_of(
            "'main', 42, DOUBLE '1.5', NULL, DATE '2024-02-29', -7, CAST('3' AS INT)",
        ))
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
            let err = evaluate_parameters(&tokens_of(using)).unwrap_err();
            assert!(
                err.to_string().contains("must be constants"),
                "{using}: {err}"
            );
        }
        let deep = format!("1{}", "::INT".repeat(5000));
        assert!(evaluate_parameters(&tokens_of(&deep)).is_err());
    }

    #[test]
    fn recognizes_its_statements_and_nothing_else() {
        let parsed = parse("EXECUTE IMMEDIATE 'SELECT ?, ''x''' USING 42")
            .unwrap()
            .unwrap();
        assert_eq!(parsed.statement, "SELECT ?, 'x'");
        assert_eq!(parsed.using, Some(tokens_of("42")));
        assert!(parse("SELECT 1").unwrap().is_none());
    }
}
