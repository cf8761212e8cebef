//! One parse for every statement.
//!
//! The text is lexed once, with the session's SQL dialect. Osprey's own statements are
//! recognised on those tokens: users (`CREATE | ALTER | DROP USER`, `SHOW USERS`), workgroups,
//! locations, attached catalogs, table procedures (`ALTER TABLE t EXECUTE optimize`) and
//! `EXECUTE IMMEDIATE`. Every other statement goes to
//! DataFusion's parser, built
//! on the same tokens: SQL, and what sqlparser reads for Osprey (`UNLOAD`, `USE`, `SET`,
//! `SHOW`). The statement router matches the one [`ParsedStatement`] this returns, and nothing
//! lexes a statement ahead of it.
//!
//! Osprey's statements are read by small recursive-descent parsers over the tokens
//! ([`crate::admin_sql::Tokens`]) rather than by a sqlparser `Dialect`: a dialect can add
//! statements only by replacing the whole statement parser of the dialect users choose.

use crate::catalogs::sql::{CatalogStatement, parse_catalog_statement};
use crate::error::QueryError;
use crate::immediate::{ExecuteImmediate, parse_execute_immediate};
use crate::locations_sql::{LocationStatement, parse_location_statement};
use crate::nesting::{
    MAX_PARSER_RECURSION, MAX_STATEMENT_DEPTH, TooDeeplyNested, check_nesting,
    is_parser_recursion_limit, token_nesting,
};
use crate::table_procedures::{TableProcedure, parse_table_procedure};
use crate::users::{UserStatement, parse_user_statement};
use crate::workgroups::{WorkgroupStatement, parse_workgroup_statement};
use datafusion::common::DataFusionError;
use datafusion::execution::context::SessionState;
use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::ast;
use datafusion::sql::sqlparser::dialect::{Dialect, dialect_from_str};
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

/// A statement, parsed once.
#[derive(Debug)]
pub(crate) enum ParsedStatement {
    /// `CREATE | ALTER | DROP USER`, `SHOW USERS`.
    User(UserStatement),
    /// `CREATE | ALTER | DROP WORKGROUP`, `SHOW WORKGROUPS`, `ALTER USER ... SET WORKGROUP`.
    Workgroup(WorkgroupStatement),
    /// `CREATE | DROP LOCATION`, `SHOW LOCATIONS`.
    Location(LocationStatement),
    /// `CREATE | DROP CATALOG`, `SHOW CATALOGS`, `SHOW CREATE CATALOG`.
    Catalog(CatalogStatement),
    /// Roles and privileges: `CREATE | DROP ROLE`, `GRANT`, `REVOKE`, `SHOW GRANTS | ROLES |
    /// CURRENT ROLES`, `SET ROLE`.
    Governance(crate::governance::GovernanceStatement),
    /// `ALTER TABLE t EXECUTE procedure(...)`: table maintenance.
    TableProcedure(TableProcedure),
    /// `EXECUTE IMMEDIATE 'statement' [USING ...]`: the statement inside is parsed in its turn.
    Immediate(ExecuteImmediate),
    /// Everything DataFusion's parser reads, `?` placeholders numbered `$1`, `$2`, ...
    Sql(Box<DFStatement>),
}

/// Parses `sql` with the dialect of `state`'s session.
pub(crate) fn parse_statement(
    state: &SessionState,
    sql: &str,
) -> Result<ParsedStatement, QueryError> {
    let dialect = session_dialect(state)?;
    let tokens = lex(dialect.as_ref(), sql)?;
    let significant = significant(&tokens);
    if let Some(statement) = parse_execute_immediate(&significant)? {
        return Ok(ParsedStatement::Immediate(statement));
    }
    if let Some(statement) = parse_user_statement(&significant)? {
        return Ok(ParsedStatement::User(statement));
    }
    if let Some(statement) = parse_workgroup_statement(&significant)? {
        return Ok(ParsedStatement::Workgroup(statement));
    }
    if let Some(statement) = parse_location_statement(&significant)? {
        return Ok(ParsedStatement::Location(statement));
    }
    if let Some(statement) = parse_catalog_statement(&significant)? {
        return Ok(ParsedStatement::Catalog(statement));
    }
    if let Some(statement) = crate::governance::parse_governance_statement(&significant)? {
        return Ok(ParsedStatement::Governance(statement));
    }
    if let Some(statement) = parse_table_procedure(&significant)? {
        return Ok(ParsedStatement::TableProcedure(statement));
    }
    let nesting = token_nesting(&significant);
    let tokens = crate::time_travel::rewrite(tokens)?;
    let is_catalog = |name: &str| state.catalog_list().catalog(name).is_some();
    let is_schema = |name: &str| {
        let current = &state.config_options().catalog.default_catalog;
        state
            .catalog_list()
            .catalog(current)
            .is_some_and(|catalog| catalog.schema_names().iter().any(|s| s == name))
    };
    let known = crate::time_travel::KnownNames {
        is_catalog: &is_catalog,
        is_schema: &is_schema,
    };
    let tokens = crate::time_travel::branch_names(tokens, &known);
    let tokens = set_properties_as_tblproperties(tokens);
    let tokens = view_security_first(tokens);
    let mut statement = parse_sql_tokens(state, dialect.as_ref(), tokens, nesting)
        .map_err(|err| located_at_end(err, sql))?;
    crate::time_travel::refuse_parsed_versions(&statement)?;
    number_placeholders(&mut statement);
    Ok(ParsedStatement::Sql(Box::new(statement)))
}

/// Trino's `ALTER TABLE t SET PROPERTIES a = x, b = y` as Hive's `SET TBLPROPERTIES (a = x,
/// b = y)`, which sqlparser reads: the same statement, one spelling for the router.
fn set_properties_as_tblproperties(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let positions: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    let word = |i: usize, expected: &str| matches!(&tokens[i].token, Token::Word(w) if w.value.eq_ignore_ascii_case(expected));
    let starts_alter_table =
        positions.len() > 4 && word(positions[0], "ALTER") && word(positions[1], "TABLE");
    let Some(at) = positions
        .windows(2)
        .position(|pair| word(pair[0], "SET") && word(pair[1], "PROPERTIES"))
        .filter(|_| starts_alter_table)
    else {
        return tokens;
    };
    let properties = positions[at + 1];
    let span = tokens[properties].span;
    tokens[properties].token = Token::make_keyword("TBLPROPERTIES");
    // The closing parenthesis goes before a trailing `;`.
    let end = match positions.last() {
        Some(&last) if tokens[last].token == Token::SemiColon => last,
        _ => tokens.len(),
    };
    tokens.insert(end, TokenWithSpan::new(Token::RParen, span));
    tokens.insert(properties + 1, TokenWithSpan::new(Token::LParen, span));
    tokens
}

/// Trino's `CREATE [OR REPLACE] VIEW v SECURITY DEFINER | INVOKER AS ...` as MySQL's
/// `CREATE [OR REPLACE] SQL SECURITY ... VIEW v AS ...`, which sqlparser reads: the same
/// statement, one spelling for the planner.
fn view_security_first(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let positions: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    let word = |i: usize, expected: &str| matches!(&tokens[i].token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(expected));
    let view_at = match positions.as_slice() {
        [c, v, ..] if word(*c, "CREATE") && word(*v, "VIEW") => 1,
        [c, o, r, v, ..]
            if word(*c, "CREATE") && word(*o, "OR") && word(*r, "REPLACE") && word(*v, "VIEW") =>
        {
            3
        }
        _ => return tokens,
    };
    // `SECURITY X AS` before the query's first parenthesis: the view's clause, not a name.
    let Some(at) = positions.windows(3).position(|w| {
        word(w[0], "SECURITY")
            && (word(w[1], "DEFINER") || word(w[1], "INVOKER"))
            && word(w[2], "AS")
    }) else {
        return tokens;
    };
    if positions[..at]
        .iter()
        .any(|&i| tokens[i].token == Token::LParen)
    {
        return tokens;
    }
    let (security, mode) = (positions[at], positions[at + 1]);
    let mode_token = tokens[mode].clone();
    let span = tokens[security].span;
    // Remove the clause (mode first: it comes later), then insert it before VIEW.
    tokens.remove(mode);
    tokens.remove(security);
    let view = positions[view_at];
    let space = TokenWithSpan::new(Token::Whitespace(Whitespace::Space), span);
    tokens.splice(
        view..view,
        [
            TokenWithSpan::new(Token::make_keyword("SQL"), span),
            space.clone(),
            TokenWithSpan::new(Token::make_keyword("SECURITY"), span),
            space.clone(),
            mode_token,
            space,
        ],
    );
    tokens
}

/// A syntax error the parser found at the end of the text ("found EOF") has no place of its
/// own: it is just past the text's last character.
fn located_at_end(err: QueryError, sql: &str) -> QueryError {
    match err {
        QueryError::SyntaxError {
            message,
            location: None,
        } if message.ends_with("found EOF") => {
            let text = sql.trim_end();
            let line = text.lines().count().max(1) as u64;
            let last = text.rsplit('\n').next().unwrap_or("");
            QueryError::SyntaxError {
                message,
                location: Some(crate::error::SourceLocation {
                    line,
                    column: last.chars().count() as u64 + 1,
                }),
            }
        }
        other => other,
    }
}

/// Parses a statement that DataFusion's parser reads (the query inside an `UNLOAD`), within
/// the nesting bounds.
pub(crate) fn parse_sql(state: &SessionState, sql: &str) -> Result<DFStatement, QueryError> {
    let dialect = session_dialect(state)?;
    let tokens = lex(dialect.as_ref(), sql)?;
    let nesting = token_nesting(&significant(&tokens));
    parse_sql_tokens(state, dialect.as_ref(), tokens, nesting)
}

/// The lexer every statement goes through: sqlparser's, with `dialect`.
pub(crate) fn lex(dialect: &dyn Dialect, sql: &str) -> Result<Vec<TokenWithSpan>, QueryError> {
    Tokenizer::new(dialect, sql)
        .tokenize_with_location()
        .map_err(|err| DataFusionError::from(ParserError::from(err)).into())
}

/// The tokens that carry meaning: whitespace and comments left out.
pub(crate) fn significant(tokens: &[TokenWithSpan]) -> Vec<Token> {
    tokens
        .iter()
        .map(|token| &token.token)
        .filter(|token| !matches!(token, Token::Whitespace(_)))
        .cloned()
        .collect()
}

/// The meaningful tokens of `sql` in the generic dialect (for tests of the parsers).
#[cfg(test)]
pub(crate) fn tokens_of(sql: &str) -> Vec<Token> {
    let dialect = datafusion::sql::sqlparser::dialect::GenericDialect {};
    significant(&lex(&dialect, sql).expect("the test's SQL lexes"))
}

fn session_dialect(state: &SessionState) -> Result<Box<dyn Dialect>, QueryError> {
    let name = &state.config_options().sql_parser.dialect;
    dialect_from_str(name).ok_or_else(|| {
        QueryError::InvalidStatement(format!(
            "unknown SQL dialect {name}: SET datafusion.sql_parser.dialect to one DataFusion knows"
        ))
    })
}

/// Token nesting past which a failed parse is tried again with a higher recursion limit.
const MIN_NESTING_TO_RECHECK: usize = 32;
/// The recursion limit of that second parse.
const RECHECK_PARSER_RECURSION: usize = 16 * MAX_PARSER_RECURSION;

/// One statement from DataFusion's parser over `tokens`, refused when it nests too deeply to
/// plan (see [`crate::nesting`]); `nesting` is [`token_nesting`] of the tokens.
fn parse_sql_tokens(
    state: &SessionState,
    dialect: &dyn Dialect,
    tokens: Vec<TokenWithSpan>,
    nesting: usize,
) -> Result<DFStatement, QueryError> {
    let limit = state.config_options().sql_parser.recursion_limit.get();
    // Kept for a second parse only when the first may have failed for its depth.
    let retry = (nesting >= MIN_NESTING_TO_RECHECK).then(|| tokens.clone());
    let mut statement = match parse_one(dialect, tokens, limit) {
        Ok(statement) => statement,
        Err(err) if is_parser_recursion_limit(&err) => {
            return Err(TooDeeplyNested::parser().into());
        }
        // The parser reports its limit inside CASE as the alternative it tried last: a
        // statement that nests deeply and parses with a higher limit was refused for its depth.
        // (sqlparser grows its stack as it recurses, so the second parse is safe.)
        Err(err) if retry.is_some() => {
            let tokens = retry.unwrap_or_default();
            return Err(match parse_one(dialect, tokens, RECHECK_PARSER_RECURSION) {
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

/// Exactly one statement from `tokens`.
fn parse_one(
    dialect: &dyn Dialect,
    tokens: Vec<TokenWithSpan>,
    recursion_limit: usize,
) -> Result<DFStatement, DataFusionError> {
    let mut statements = DFParserBuilder::new(tokens)
        .with_dialect(dialect)
        .with_recursion_limit(recursion_limit)
        .build()?
        .parse_statements()?;
    if statements.len() > 1 {
        return Err(DataFusionError::NotImplemented(
            "one statement at a time: send the statements separately".to_string(),
        ));
    }
    statements
        .pop_front()
        .ok_or_else(|| DataFusionError::Plan("no SQL statement was given".to_string()))
}

/// Numbers `?` placeholders as `$1`, `$2`, ... in order: DataFusion plans numbered
/// placeholders, and drivers such as ADBC's send `?`.
fn number_placeholders(statement: &mut DFStatement) {
    if let DFStatement::Statement(ast_statement) = statement {
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
}
