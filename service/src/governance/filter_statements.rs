//! The SQL of row filters and column masks (`../shared/notes/governance.md` spells it):
//!
//! ```sql
//! CREATE [OR REPLACE] ROW FILTER [IF NOT EXISTS] eu_only ON sales.orders
//!   FOR ROLE analysts | FOR PUBLIC USING (region = 'eu');
//! CREATE [OR REPLACE] COLUMN MASK [IF NOT EXISTS] ssn_mask ON sales.orders (ssn)
//!   FOR ROLE analysts USING ('***-' || substr(ssn, 8));
//! DROP ROW FILTER [IF EXISTS] eu_only ON sales.orders;
//! DROP COLUMN MASK [IF EXISTS] ssn_mask ON sales.orders;
//! SHOW ROW FILTERS [ON sales.orders];   SHOW COLUMN MASKS [ON sales.orders];
//! ```
//!
//! The expression is kept as SQL text and planned against the table's columns each time it
//! applies (see `data_filters`).

use crate::admin_sql::{Tokens, syntax};
use crate::error::QueryError;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;
use osprey_catalog::{DataFilterKind, Grantee};

/// A `CREATE ROW FILTER` or `CREATE COLUMN MASK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFilterDefinition {
    /// Filter or mask.
    pub kind: DataFilterKind,
    /// Its name.
    pub name: String,
    /// The table, as written (`[[c.]s.]t`).
    pub table: Vec<String>,
    /// For a mask: the column.
    pub column: Option<String>,
    /// The role it applies to (`public` for `FOR PUBLIC`).
    pub grantee: Grantee,
    /// The expression's SQL text.
    pub expression: String,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
}

/// A row filter or column mask statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataFilterStatement {
    /// `CREATE [OR REPLACE] ROW FILTER | COLUMN MASK ...`.
    Create(DataFilterDefinition),
    /// `DROP ROW FILTER | COLUMN MASK [IF EXISTS] name ON table`.
    Drop {
        /// Filter or mask.
        kind: DataFilterKind,
        /// Its name.
        name: String,
        /// Its table, as written.
        table: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `SHOW ROW FILTERS | COLUMN MASKS [ON table]`.
    Show {
        /// Filters or masks.
        kind: DataFilterKind,
        /// `ON table`.
        on: Option<Vec<String>>,
    },
}

impl DataFilterStatement {
    /// Its statement tag.
    pub fn tag(&self) -> &'static str {
        let kind = match self {
            DataFilterStatement::Create(definition) => definition.kind,
            DataFilterStatement::Drop { kind, .. } | DataFilterStatement::Show { kind, .. } => {
                *kind
            }
        };
        match (self, kind) {
            (DataFilterStatement::Create(_), DataFilterKind::RowFilter) => "CREATE ROW FILTER",
            (DataFilterStatement::Create(_), DataFilterKind::ColumnMask) => "CREATE COLUMN MASK",
            (DataFilterStatement::Drop { .. }, DataFilterKind::RowFilter) => "DROP ROW FILTER",
            (DataFilterStatement::Drop { .. }, DataFilterKind::ColumnMask) => "DROP COLUMN MASK",
            (DataFilterStatement::Show { .. }, DataFilterKind::RowFilter) => "SHOW ROW FILTERS",
            (DataFilterStatement::Show { .. }, DataFilterKind::ColumnMask) => "SHOW COLUMN MASKS",
        }
    }
}

/// Recognizes a row filter or column mask statement; `None` for anything else.
pub(super) fn parse(tokens: &[Token]) -> Result<Option<DataFilterStatement>, QueryError> {
    let mut parser = Tokens::new(tokens);
    let statement = parse_at(&mut parser)?;
    if statement.is_some() {
        parser.end("a row filter or column mask statement")?;
    }
    Ok(statement)
}

fn parse_at(parser: &mut Tokens<'_>) -> Result<Option<DataFilterStatement>, QueryError> {
    let kind_at = |parser: &mut Tokens<'_>| {
        if parser.words(&["ROW", "FILTER"]) {
            Some(DataFilterKind::RowFilter)
        } else if parser.words(&["COLUMN", "MASK"]) {
            Some(DataFilterKind::ColumnMask)
        } else {
            None
        }
    };
    let starts_create = |parser: &Tokens<'_>| {
        let word = |at: usize, expected: &str| {
            matches!(parser.peek_at(at),
                Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(expected))
        };
        let after = if word(1, "OR") && word(2, "REPLACE") {
            3
        } else {
            1
        };
        word(0, "CREATE")
            && ((word(after, "ROW") && word(after + 1, "FILTER"))
                || (word(after, "COLUMN") && word(after + 1, "MASK")))
    };
    if starts_create(parser) {
        parser.word("CREATE");
        let or_replace = parser.words(&["OR", "REPLACE"]);
        let kind = kind_at(parser).ok_or_else(create_syntax)?;
        return create(parser, kind, or_replace).map(Some);
    }
    let dropped = if parser.words(&["DROP", "ROW", "FILTER"]) {
        Some(DataFilterKind::RowFilter)
    } else if parser.words(&["DROP", "COLUMN", "MASK"]) {
        Some(DataFilterKind::ColumnMask)
    } else {
        None
    };
    if let Some(kind) = dropped {
        let if_exists = parser.keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = parser.identifier(&format!("a {} name", kind.name_lowercase()))?;
        if !parser.word("ON") {
            return Err(syntax(&format!(
                "write DROP {} [IF EXISTS] name ON table",
                kind.name()
            )));
        }
        let table = table_name(parser)?;
        return Ok(Some(DataFilterStatement::Drop {
            kind,
            name,
            table,
            if_exists,
        }));
    }
    let kind = if parser.words(&["SHOW", "ROW", "FILTERS"]) {
        DataFilterKind::RowFilter
    } else if parser.words(&["SHOW", "COLUMN", "MASKS"]) {
        DataFilterKind::ColumnMask
    } else {
        return Ok(None);
    };
    let on = match parser.word("ON") {
        true => Some(table_name(parser)?),
        false => None,
    };
    Ok(Some(DataFilterStatement::Show { kind, on }))
}

fn create(
    parser: &mut Tokens<'_>,
    kind: DataFilterKind,
    or_replace: bool,
) -> Result<DataFilterStatement, QueryError> {
    let if_not_exists = parser.keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parser.identifier(&format!("a {} name", kind.name_lowercase()))?;
    if !parser.word("ON") {
        return Err(create_syntax());
    }
    let table = table_name(parser)?;
    let column = match kind {
        DataFilterKind::ColumnMask => {
            if !parser.consume(&Token::LParen) {
                return Err(syntax(
                    "a column mask names its column: CREATE COLUMN MASK m ON t (column) ...",
                ));
            }
            let column = parser.identifier("a column name")?;
            if !parser.consume(&Token::RParen) {
                return Err(create_syntax());
            }
            Some(column)
        }
        DataFilterKind::RowFilter => None,
    };
    if !parser.word("FOR") {
        return Err(create_syntax());
    }
    let grantee = if parser.word("PUBLIC") {
        Grantee::Role(super::model::PUBLIC_ROLE.to_string())
    } else {
        parser.word("ROLE");
        Grantee::Role(parser.identifier("a role name or PUBLIC")?)
    };
    if !parser.word("USING") || !parser.consume(&Token::LParen) {
        return Err(create_syntax());
    }
    let expression = balanced_text(parser)?;
    Ok(DataFilterStatement::Create(DataFilterDefinition {
        kind,
        name,
        table,
        column,
        grantee,
        expression,
        or_replace,
        if_not_exists,
    }))
}

fn table_name(parser: &mut Tokens<'_>) -> Result<Vec<String>, QueryError> {
    parser.word("TABLE");
    let mut parts = vec![parser.identifier("a table name")?];
    while parser.consume(&Token::Period) {
        parts.push(parser.identifier("a table name")?);
    }
    match parts.len() {
        1..=3 => Ok(parts),
        _ => Err(syntax(&format!("{} is not a table name", parts.join(".")))),
    }
}

/// The SQL text up to the parenthesis that closes the one just consumed, which is consumed.
fn balanced_text(parser: &mut Tokens<'_>) -> Result<String, QueryError> {
    let mut depth = 1usize;
    let mut parts = Vec::new();
    loop {
        let Some(token) = parser.peek().cloned() else {
            return Err(syntax("the USING expression is not closed: add a )"));
        };
        match &token {
            Token::EOF | Token::SemiColon => {
                return Err(syntax("the USING expression is not closed: add a )"));
            }
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    parser.consume(&Token::RParen);
                    break;
                }
            }
            _ => {}
        }
        parser.consume(&token);
        parts.push(token_text(&token));
    }
    if parts.is_empty() {
        return Err(syntax("USING () needs an expression"));
    }
    Ok(parts.join(" "))
}

/// `token` as SQL text. sqlparser's `Display` does not escape quotes inside strings and
/// quoted names, so those are written here.
fn token_text(token: &Token) -> String {
    match token {
        Token::SingleQuotedString(text) => format!("'{}'", text.replace('\'', "''")),
        Token::Word(word) if word.quote_style == Some('"') => {
            format!("\"{}\"", word.value.replace('"', "\"\""))
        }
        other => other.to_string(),
    }
}

fn create_syntax() -> QueryError {
    syntax(
        "write CREATE [OR REPLACE] ROW FILTER name ON table FOR ROLE role | PUBLIC USING \
         (condition), or CREATE [OR REPLACE] COLUMN MASK name ON table (column) FOR ROLE role \
         | PUBLIC USING (expression)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn parse_sql(sql: &str) -> Result<Option<DataFilterStatement>, QueryError> {
        let tokens: Vec<Token> = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize()
            .unwrap()
            .into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .collect();
        parse(&tokens)
    }

    #[test]
    fn filters_and_masks_parse_with_their_expressions() {
        let Some(DataFilterStatement::Create(mask)) = parse_sql(
            "CREATE OR REPLACE COLUMN MASK ssn_mask ON sales.orders (ssn) FOR ROLE analysts \
             USING ('it''s-' || substr(ssn, (8)))",
        )
        .unwrap() else {
            panic!("not a mask");
        };
        assert_eq!(mask.kind, DataFilterKind::ColumnMask);
        assert_eq!(mask.column.as_deref(), Some("ssn"));
        assert!(mask.or_replace);
        assert_eq!(mask.grantee, Grantee::Role("analysts".into()));
        assert_eq!(mask.expression, "'it''s-' || substr ( ssn , ( 8 ) )");
        let Some(DataFilterStatement::Create(filter)) =
            parse_sql("CREATE ROW FILTER eu ON orders FOR PUBLIC USING (region = 'eu')").unwrap()
        else {
            panic!("not a filter");
        };
        assert_eq!(filter.grantee, Grantee::Role("public".into()));
        assert_eq!(filter.table, vec!["orders".to_string()]);
        assert!(
            parse_sql("CREATE ROW FILTER eu ON orders FOR PUBLIC USING (region = 'eu'").is_err()
        );
        assert!(matches!(
            parse_sql("DROP COLUMN MASK IF EXISTS m ON s.t").unwrap(),
            Some(DataFilterStatement::Drop {
                kind: DataFilterKind::ColumnMask,
                if_exists: true,
                ..
            })
        ));
        assert!(matches!(
            parse_sql("SHOW ROW FILTERS ON t").unwrap(),
            Some(DataFilterStatement::Show { .. })
        ));
        assert_eq!(parse_sql("DROP TABLE t").unwrap(), None);
    }
}
