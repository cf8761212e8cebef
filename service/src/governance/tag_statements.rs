//! The SQL of tags (`../shared/notes/governance.md` spells it):
//!
//! ```sql
//! CREATE TAG [IF NOT EXISTS] domain VALUES ('sales', 'hr');
//! ALTER TAG domain ADD VALUES ('ops');
//! DROP TAG [IF EXISTS] domain;
//! SHOW TAGS;                                  -- every tag and its values
//! SHOW TAGS ON [TABLE | SCHEMA | CATALOG] x;  -- what x and its columns carry, and from where
//! ALTER TABLE sales.orders SET TAG domain = 'sales' [, pii = 'false'];
//! ALTER TABLE sales.orders UNSET TAG domain [, pii];
//! ALTER TABLE sales.orders ALTER [COLUMN] ssn SET TAG pii = 'true';
//! ALTER SCHEMA sales SET TAG domain = 'sales';   ALTER CATALOG lake SET TAG ...;
//! GRANT SELECT ON TAGGED domain = 'sales' AND pii IN ('false') TO ROLE analysts;
//! ```
//!
//! `TAGS` and `TAG` are both accepted after `SET` and `UNSET`.

use super::object_names::{NamedObject, dotted, object, quoted, value_list};
use crate::admin_sql::{Tokens, syntax};
use crate::error::QueryError;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;
use std::collections::BTreeSet;

/// Tag keys, each with the value to set (`SET TAG`) or none (`UNSET TAG`).
pub type TagValues = Vec<(String, Option<String>)>;

/// What a tag statement changes or shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagStatement {
    /// `CREATE TAG [IF NOT EXISTS] key VALUES (...)`.
    Create {
        /// The key.
        key: String,
        /// Its allowed values.
        values: BTreeSet<String>,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `ALTER TAG key ADD VALUES (...)`.
    AddValues {
        /// The key.
        key: String,
        /// The values it may take from now on, besides its own.
        values: BTreeSet<String>,
    },
    /// `DROP TAG [IF EXISTS] key`.
    Drop {
        /// The key.
        key: String,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `SHOW TAGS [ON object]`.
    Show(Option<NamedObject>),
    /// `ALTER ... SET TAG k = 'v'` (values) or `UNSET TAG k` (no values).
    Assign {
        /// The catalog, schema or table.
        object: NamedObject,
        /// For `ALTER COLUMN c`: the column.
        column: Option<String>,
        /// Each key, with its value (`SET`) or none (`UNSET`).
        tags: TagValues,
    },
}

impl TagStatement {
    /// Its statement tag.
    pub fn tag(&self) -> &'static str {
        match self {
            TagStatement::Create { .. } => "CREATE TAG",
            TagStatement::AddValues { .. } => "ALTER TAG",
            TagStatement::Drop { .. } => "DROP TAG",
            TagStatement::Show(_) => "SHOW TAGS",
            TagStatement::Assign { tags, .. } => match tags.first() {
                Some((_, Some(_))) => "SET TAG",
                _ => "UNSET TAG",
            },
        }
    }
}

/// Recognizes a tag statement; `None` for anything else (`ALTER TABLE t ADD COLUMN ...` is
/// left to SQL).
pub fn parse(tokens: &[Token]) -> Result<Option<TagStatement>, QueryError> {
    let mut parser = Tokens::new(tokens);
    let statement = if parser.words(&["CREATE", "TAG"]) {
        let if_not_exists = parser.keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let key = parser.identifier("a tag name")?;
        if !parser.word("VALUES") {
            return Err(syntax("write CREATE TAG name VALUES ('a', 'b')"));
        }
        TagStatement::Create {
            key,
            values: value_list(&mut parser)?,
            if_not_exists,
        }
    } else if parser.words(&["ALTER", "TAG"]) {
        let key = parser.identifier("a tag name")?;
        if !parser.words(&["ADD", "VALUES"]) {
            return Err(syntax("write ALTER TAG name ADD VALUES ('c')"));
        }
        TagStatement::AddValues {
            key,
            values: value_list(&mut parser)?,
        }
    } else if parser.words(&["DROP", "TAG"]) {
        let if_exists = parser.keywords(&[Keyword::IF, Keyword::EXISTS]);
        TagStatement::Drop {
            key: parser.identifier("a tag name")?,
            if_exists,
        }
    } else if parser.words(&["SHOW", "TAGS"]) {
        match parser.word("ON") {
            true => TagStatement::Show(Some(object(&mut parser)?)),
            false => TagStatement::Show(None),
        }
    } else if parser.word("ALTER") {
        let Some(statement) = assignment(&mut parser)? else {
            return Ok(None);
        };
        statement
    } else {
        return Ok(None);
    };
    parser.end("a tag statement")?;
    Ok(Some(statement))
}

/// `TABLE t [ALTER [COLUMN] c] SET | UNSET TAG ...`, `SCHEMA s SET ...`, `CATALOG c SET ...`
/// after `ALTER`; `None` when it is some other `ALTER`.
fn assignment(parser: &mut Tokens<'_>) -> Result<Option<TagStatement>, QueryError> {
    let object = if parser.word("TABLE") {
        NamedObject::Table(dotted(parser)?)
    } else if parser.word("SCHEMA") || parser.word("DATABASE") {
        NamedObject::Schema(dotted(parser)?)
    } else if parser.word("CATALOG") {
        NamedObject::Catalog(parser.identifier("a catalog name")?)
    } else {
        return Ok(None);
    };
    let column = match matches!(object, NamedObject::Table(_)) && parser.word("ALTER") {
        true => {
            parser.word("COLUMN");
            Some(parser.identifier("a column name")?)
        }
        false => None,
    };
    let set = if parser.word("SET") {
        true
    } else if parser.word("UNSET") {
        false
    } else {
        return Ok(None);
    };
    if !(parser.word("TAG") || parser.word("TAGS")) {
        return Ok(None);
    }
    let mut tags = Vec::new();
    loop {
        let key = parser.identifier("a tag name")?;
        let value = match set {
            true => {
                if !parser.consume(&Token::Eq) {
                    return Err(syntax("write SET TAG name = 'value'"));
                }
                Some(quoted(parser)?)
            }
            false => None,
        };
        tags.push((key, value));
        if !parser.consume(&Token::Comma) {
            break;
        }
    }
    Ok(Some(TagStatement::Assign {
        object,
        column,
        tags,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn tokens(sql: &str) -> Vec<Token> {
        Tokenizer::new(&GenericDialect {}, sql)
            .tokenize()
            .unwrap()
            .into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .collect()
    }

    fn values(vs: &[&str]) -> BTreeSet<String> {
        vs.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn tag_statements_parse() {
        assert_eq!(
            parse(&tokens("CREATE TAG Domain VALUES ('sales', 'hr')")).unwrap(),
            Some(TagStatement::Create {
                key: "domain".into(),
                values: values(&["hr", "sales"]),
                if_not_exists: false,
            })
        );
        assert_eq!(
            parse(&tokens(
                "ALTER TABLE sales.orders ALTER COLUMN ssn SET TAG pii = 'true', domain = 'hr'"
            ))
            .unwrap(),
            Some(TagStatement::Assign {
                object: NamedObject::Table(vec!["sales".into(), "orders".into()]),
                column: Some("ssn".into()),
                tags: vec![
                    ("pii".into(), Some("true".into())),
                    ("domain".into(), Some("hr".into()))
                ],
            })
        );
        assert_eq!(
            parse(&tokens("ALTER SCHEMA sales UNSET TAGS domain")).unwrap(),
            Some(TagStatement::Assign {
                object: NamedObject::Schema(vec!["sales".into()]),
                column: None,
                tags: vec![("domain".into(), None)],
            })
        );
        // Other ALTERs are SQL's.
        assert_eq!(
            parse(&tokens("ALTER TABLE t ADD COLUMN c INT")).unwrap(),
            None
        );
        assert_eq!(
            parse(&tokens("ALTER TABLE t SET PROPERTIES a = 1")).unwrap(),
            None
        );
        assert_eq!(parse(&tokens("ALTER WORKGROUP w SET x = 1")).unwrap(), None);
        assert!(parse(&tokens("CREATE TAG d VALUES (sales)")).is_err());
        assert!(parse(&tokens("ALTER TABLE t SET TAG d = sales")).is_err());
    }

    #[test]
    fn tag_expressions_parse_in_any_order() {
        use super::super::object_names::expression;
        let expr = |sql: &str| expression(&mut Tokens::new(&tokens(sql)));
        let one = expr("domain = 'sales' AND pii IN ('false', 'low')").unwrap();
        let other = expr("PII in ('low', 'false') and domain = 'sales'").unwrap();
        assert_eq!(one, other);
        assert_eq!(
            one.to_string(),
            "domain = 'sales' AND pii IN ('false', 'low')"
        );
        assert!(expr("domain = 'a' AND domain = 'b'").is_err());
        assert!(expr("domain").is_err());
    }
}
