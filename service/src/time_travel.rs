//! Time travel in Trino's syntax: `t FOR VERSION AS OF 8954597067493422955`,
//! `t FOR VERSION AS OF 'branch_or_tag'` and `t FOR TIMESTAMP AS OF TIMESTAMP '2024-05-01
//! 10:00:00 UTC'`.
//!
//! sqlparser does not read Trino's clause, and DataFusion's planner ignores the versions it
//! does read (`TableFactor::Table::version`), which would silently read the current data. So
//! the clause is taken off the tokens before parsing and carried in the table's name, as
//! `"t$version=<id>"`, `"t$ref=<name>"` or `"t$timestamp=<ms>"`, which the table's format
//! resolves ([`crate::lakehouse::formats::TableFormat::metadata_table`]); a format without
//! versions refuses it. Any version clause sqlparser itself reads is refused
//! ([`refuse_parsed_versions`]).

use crate::error::QueryError;
use datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{TableFactor, Visit, Visitor};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Word};
use std::ops::ControlFlow;

/// The separator between a table's name and its version in the rewritten name.
pub(crate) const VERSION_SEPARATOR: char = '$';

/// What a rewritten name's suffix asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TableVersion {
    /// A snapshot, by id.
    Snapshot(i64),
    /// A branch or tag, by name.
    Ref(String),
    /// The snapshot current at this time (ms since the epoch, UTC).
    AsOfTime(i64),
}

impl TableVersion {
    /// The suffix that carries this version in a table's name.
    fn suffix(&self) -> String {
        match self {
            TableVersion::Snapshot(id) => format!("version={id}"),
            TableVersion::Ref(name) => format!("ref={name}"),
            TableVersion::AsOfTime(ms) => format!("timestamp={ms}"),
        }
    }

    /// The version a name's suffix (after [`VERSION_SEPARATOR`]) carries, if it is one.
    pub(crate) fn from_suffix(suffix: &str) -> Option<Self> {
        let (kind, value) = suffix.split_once('=')?;
        match kind {
            "version" => value.parse().ok().map(TableVersion::Snapshot),
            "ref" => Some(TableVersion::Ref(value.to_string())),
            "timestamp" => value.parse().ok().map(TableVersion::AsOfTime),
            _ => None,
        }
    }
}

fn keyword(token: &Token, expected: Keyword) -> bool {
    matches!(token, Token::Word(Word { keyword, quote_style: None, .. }) if *keyword == expected)
}

/// `tokens` with each `FOR VERSION | TIMESTAMP AS OF <value>` moved into the name of the table
/// before it (see the module docs).
pub(crate) fn rewrite(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, QueryError> {
    // Positions of the significant tokens.
    let significant: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .map(|(i, _)| i)
        .collect();
    let at = |k: usize| significant.get(k).map(|&i| &tokens[i].token);
    let mut drop = vec![false; tokens.len()];
    let mut renamed: Vec<(usize, String)> = Vec::new();
    let mut k = 0;
    while k < significant.len() {
        let is_clause = at(k).is_some_and(|t| keyword(t, Keyword::FOR))
            && at(k + 1)
                .is_some_and(|t| keyword(t, Keyword::VERSION) || keyword(t, Keyword::TIMESTAMP))
            && at(k + 2).is_some_and(|t| keyword(t, Keyword::AS))
            && at(k + 3).is_some_and(|t| keyword(t, Keyword::OF));
        if !is_clause {
            k += 1;
            continue;
        }
        let by_time = at(k + 1).is_some_and(|t| keyword(t, Keyword::TIMESTAMP));
        let mut end = k + 4;
        let version = if by_time {
            // `TIMESTAMP '...'`, or the bare string.
            if at(end).is_some_and(|t| keyword(t, Keyword::TIMESTAMP)) {
                end += 1;
            }
            match at(end) {
                Some(Token::SingleQuotedString(text)) => TableVersion::AsOfTime(parse_time(text)?),
                _ => {
                    return Err(QueryError::NotSupported(
                        "FOR TIMESTAMP AS OF takes a timestamp literal, such as TIMESTAMP \
                         '2024-05-01 10:00:00 UTC'"
                            .to_string(),
                    ));
                }
            }
        } else {
            match at(end) {
                Some(Token::Number(number, _)) => {
                    TableVersion::Snapshot(number.parse().map_err(|_| {
                        QueryError::InvalidStatement(format!(
                            "FOR VERSION AS OF {number}: a snapshot id is a 64-bit integer"
                        ))
                    })?)
                }
                Some(Token::SingleQuotedString(name)) => TableVersion::Ref(name.clone()),
                _ => {
                    return Err(QueryError::InvalidStatement(
                        "FOR VERSION AS OF takes a snapshot id or a quoted branch or tag name"
                            .to_string(),
                    ));
                }
            }
        };
        let Some(Token::Word(table)) = k.checked_sub(1).and_then(at) else {
            return Err(QueryError::InvalidStatement(
                "FOR VERSION | TIMESTAMP AS OF follows a table's name".to_string(),
            ));
        };
        renamed.push((
            significant[k - 1],
            format!("{}{VERSION_SEPARATOR}{}", table.value, version.suffix()),
        ));
        // The clause goes, with the whitespace before it.
        for dropped in &mut drop[significant[k - 1] + 1..=significant[end]] {
            *dropped = true;
        }
        k = end + 1;
    }
    if renamed.is_empty() {
        return Ok(tokens);
    }
    let mut tokens = tokens;
    for (index, name) in renamed {
        tokens[index].token = Token::Word(Word {
            value: name,
            quote_style: Some('"'),
            keyword: Keyword::NoKeyword,
        });
    }
    Ok(tokens
        .into_iter()
        .zip(drop)
        .filter(|(_, dropped)| !dropped)
        .map(|(token, _)| token)
        .collect())
}

/// What [`branch_names`] asks of the session's catalogs.
pub(crate) struct KnownNames<'a> {
    /// Whether a name is a catalog's.
    pub is_catalog: &'a dyn Fn(&str) -> bool,
    /// Whether a name is a schema of the current catalog.
    pub is_schema: &'a dyn Fn(&str) -> bool,
}

/// `tokens` with Spark's branch names, `[catalog.][schema.]table.branch_<name>` after `FROM`,
/// `JOIN`, `INTO`, `UPDATE` or `TABLE`, carried as `"table$ref=<name>"` (the read of a branch
/// is the read of a ref; a write to it goes on the branch). A two- or three-part name is a
/// branch only when its first part is not a schema of the current catalog, or a catalog,
/// respectively: `sales.branch_x` stays the table `branch_x` of the schema `sales`.
pub(crate) fn branch_names(
    tokens: Vec<TokenWithSpan>,
    known: &KnownNames<'_>,
) -> Vec<TokenWithSpan> {
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    let word = |k: usize| match significant.get(k).map(|&i| &tokens[i].token) {
        Some(Token::Word(w)) => Some(w.clone()),
        _ => None,
    };
    let is_period = |k: usize| {
        matches!(
            significant.get(k).map(|&i| &tokens[i].token),
            Some(Token::Period)
        )
    };
    let starts_name = |k: usize| {
        k > 0
            && word(k - 1).is_some_and(|w| {
                w.quote_style.is_none()
                    && matches!(
                        w.keyword,
                        Keyword::FROM
                            | Keyword::JOIN
                            | Keyword::INTO
                            | Keyword::UPDATE
                            | Keyword::TABLE
                    )
            })
    };
    // (index of the table's word, index of the branch's word, branch name), in tokens.
    let mut rewrites: Vec<(usize, usize, String)> = Vec::new();
    let mut k = 0;
    while k < significant.len() {
        if !(starts_name(k) && word(k).is_some()) {
            k += 1;
            continue;
        }
        let mut parts = vec![k];
        while is_period(parts[parts.len() - 1] + 1) && word(parts[parts.len() - 1] + 2).is_some() {
            parts.push(parts[parts.len() - 1] + 2);
        }
        let names: Vec<String> = parts
            .iter()
            .filter_map(|&p| word(p).map(|w| w.value))
            .collect();
        let branch = names
            .last()
            .and_then(|last| last.strip_prefix("branch_"))
            .filter(|b| !b.is_empty());
        let is_branch = match names.len() {
            4 => true,
            3 => !(known.is_catalog)(&names[0]),
            2 => !(known.is_schema)(&names[0]),
            _ => false,
        };
        if let (Some(branch), true) = (branch, is_branch) {
            let [.., table, last] = parts.as_slice() else {
                unreachable!("a branch name has at least two parts");
            };
            rewrites.push((significant[*table], significant[*last], branch.to_string()));
        }
        k = parts[parts.len() - 1] + 1;
    }
    let mut tokens = tokens;
    for (table, last, branch) in rewrites.into_iter().rev() {
        let Token::Word(word) = &tokens[table].token else {
            continue;
        };
        let value = format!(
            "{}{VERSION_SEPARATOR}{}",
            word.value,
            TableVersion::Ref(branch).suffix()
        );
        tokens[table].token = Token::Word(Word {
            value,
            quote_style: Some('"'),
            keyword: Keyword::NoKeyword,
        });
        // The period and the branch's word go.
        tokens.drain(table + 1..=last);
    }
    tokens
}

/// A timestamp literal in ms since the epoch: with a zone (`... UTC`, `...+02:00`) as given,
/// without one as UTC.
fn parse_time(text: &str) -> Result<i64, QueryError> {
    let trimmed = text.trim();
    let trimmed = trimmed
        .strip_suffix(" UTC")
        .map(|t| format!("{t}+00:00"))
        .unwrap_or_else(|| trimmed.to_string());
    string_to_timestamp_nanos(&trimmed)
        .map(|nanos| nanos.div_euclid(1_000_000))
        .map_err(|_| {
            QueryError::InvalidStatement(format!(
                "FOR TIMESTAMP AS OF '{text}': not a timestamp (write TIMESTAMP '2024-05-01 \
                 10:00:00 UTC')"
            ))
        })
}

/// Refuses the version clauses sqlparser reads for some dialects (`FOR SYSTEM_TIME AS OF`,
/// `AT(...)`): DataFusion would plan them as reads of the current data.
pub(crate) fn refuse_parsed_versions(statement: &DFStatement) -> Result<(), QueryError> {
    struct Versions;
    impl Visitor for Versions {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            match factor {
                TableFactor::Table {
                    version: Some(_), ..
                } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    let DFStatement::Statement(statement) = statement else {
        return Ok(());
    };
    match statement.visit(&mut Versions) {
        ControlFlow::Break(()) => Err(QueryError::NotSupported(
            "this time travel clause: write FOR VERSION AS OF <snapshot id | 'branch' | 'tag'> \
             or FOR TIMESTAMP AS OF TIMESTAMP '...' (Iceberg tables)"
                .to_string(),
        )),
        ControlFlow::Continue(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn rewritten(sql: &str) -> String {
        let tokens = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        rewrite(tokens)
            .unwrap()
            .iter()
            .map(|t| t.token.to_string())
            .collect()
    }

    fn with_branches(sql: &str) -> String {
        let tokens = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        let is_catalog = |name: &str| name == "lake";
        let is_schema = |name: &str| name == "sales";
        let known = KnownNames {
            is_catalog: &is_catalog,
            is_schema: &is_schema,
        };
        branch_names(tokens, &known)
            .iter()
            .map(|t| t.token.to_string())
            .collect()
    }

    #[test]
    fn spark_branch_names_move_into_the_table_name() {
        assert_eq!(
            with_branches("INSERT INTO lake.db.t.branch_audit VALUES (1)"),
            "INSERT INTO lake.db.\"t$ref=audit\" VALUES (1)"
        );
        assert_eq!(
            with_branches("DELETE FROM db.t.branch_dev WHERE x = 1"),
            "DELETE FROM db.\"t$ref=dev\" WHERE x = 1"
        );
        assert_eq!(
            with_branches("SELECT * FROM t.branch_dev JOIN u ON true"),
            "SELECT * FROM \"t$ref=dev\" JOIN u ON true"
        );
        // Names that are tables: a catalog's schema, a schema's table, a column.
        for unchanged in [
            "SELECT * FROM lake.db.branch_x",
            "SELECT * FROM sales.branch_x",
            "SELECT o.branch_id FROM orders o",
            "UPDATE t SET branch_x = 1",
        ] {
            assert_eq!(with_branches(unchanged), unchanged);
        }
    }

    #[test]
    fn version_clauses_move_into_the_table_name() {
        assert_eq!(
            rewritten("SELECT * FROM lake.t FOR VERSION AS OF 42 AS x"),
            "SELECT * FROM lake.\"t$version=42\" AS x"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM t FOR VERSION AS OF 'audit' JOIN u ON true"),
            "SELECT 1 FROM \"t$ref=audit\" JOIN u ON true"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM t FOR TIMESTAMP AS OF TIMESTAMP '1970-01-01 00:00:01 UTC'"),
            "SELECT 1 FROM \"t$timestamp=1000\""
        );
        // Other FORs are left alone.
        assert_eq!(
            rewritten("SELECT substring(a FROM 1 FOR 2) FROM t"),
            "SELECT substring(a FROM 1 FOR 2) FROM t"
        );
        assert_eq!(
            TableVersion::from_suffix("version=42"),
            Some(TableVersion::Snapshot(42))
        );
        assert_eq!(TableVersion::from_suffix("snapshots"), None);
    }

    #[test]
    fn bad_version_clauses_are_errors() {
        let tokens = |sql: &str| {
            Tokenizer::new(&GenericDialect {}, sql)
                .tokenize_with_location()
                .unwrap()
        };
        assert!(rewrite(tokens("SELECT * FROM t FOR VERSION AS OF x")).is_err());
        assert!(rewrite(tokens("SELECT * FROM t FOR TIMESTAMP AS OF 'soon'")).is_err());
        assert!(rewrite(tokens("SELECT * FROM (SELECT 1) FOR VERSION AS OF 1")).is_err());
    }
}
