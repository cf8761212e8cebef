//! Trino's `EXECUTE IMMEDIATE 'statement' USING value, ...`: how the `trino` Python client (and
//! so its SQLAlchemy dialect) sends a statement with parameters. The statement's `?`
//! placeholders are bound to the values, which are SQL literals (`'text'`, `42`,
//! `DOUBLE '1.5'`, `DATE '2024-01-01'`, `ARRAY[1, 2]`, `NULL`).

use crate::query::QueryError;
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;

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
///
/// ```
/// use osprey_coordinator::trino::immediate::parse_execute_immediate;
///
/// let parsed = parse_execute_immediate("EXECUTE IMMEDIATE 'SELECT ?, ''x''' USING 42").unwrap().unwrap();
/// assert_eq!(parsed.statement, "SELECT ?, 'x'");
/// assert_eq!(parsed.using.as_deref(), Some("42"));
/// assert!(parse_execute_immediate("SELECT 1").is_none());
/// ```
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

/// Evaluates the literals of a `USING` list, in a context with no tables: only constant
/// expressions can be evaluated there.
pub async fn evaluate_parameters(using: &str) -> Result<Vec<ScalarValue>, QueryError> {
    let context = SessionContext::new();
    let values = context
        .sql(&format!("SELECT {using}"))
        .await
        .map_err(|err| {
            QueryError::InvalidStatement(format!(
                "EXECUTE IMMEDIATE ... USING {using}: the values must be literals: {}",
                err.strip_backtrace()
            ))
        })?
        .collect()
        .await
        .map_err(QueryError::from)?;
    let row = values
        .iter()
        .find(|batch| batch.num_rows() > 0)
        .ok_or_else(|| QueryError::InvalidStatement("EXECUTE IMMEDIATE: no values".into()))?;
    row.columns()
        .iter()
        .map(|column| ScalarValue::try_from_array(column, 0).map_err(QueryError::from))
        .collect()
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

    #[tokio::test]
    async fn literals_become_values() {
        let values = evaluate_parameters("'main', 42, DOUBLE '1.5', NULL, DATE '2024-02-29'")
            .await
            .unwrap();
        assert_eq!(values[0], ScalarValue::Utf8(Some("main".into())));
        assert_eq!(values[1], ScalarValue::Int64(Some(42)));
        assert_eq!(values[2], ScalarValue::Float64(Some(1.5)));
        assert!(values[3].is_null());
        assert_eq!(values[4], ScalarValue::Date32(Some(19782)));
        assert!(
            evaluate_parameters("(SELECT secret FROM users)")
                .await
                .is_err()
        );
    }
}
