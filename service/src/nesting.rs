//! Bounds how deeply a parsed statement nests before anything else recurses over it.
//!
//! The parser bounds its own recursion (parentheses, function calls, subqueries: DataFusion's
//! `sql_parser.recursion_limit`, which Osprey sets to [`MAX_PARSER_RECURSION`]), but it builds
//! chains of binary and postfix operators (`1+1+...+1`, `x::int::int...`) in a loop, so a
//! 4 KB statement can parse into an expression thousands of levels deep. Everything after the
//! parser (SQL-to-plan, the optimizer, printing, cloning, even dropping the tree) recurses once
//! per level. [`check_nesting`] measures the depth with a visitor that cuts the tree at the
//! limit, so the measure itself and the refused statement's drop recurse at most that deep.

use datafusion::common::DataFusionError;
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, Value, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::Token;
use std::ops::ControlFlow;

/// How deeply expressions and subqueries may nest in one statement. DuckDB's default
/// `max_expression_depth` is 1,000 as well; the query runtime's stacks are sized to plan
/// statements this deep (see `query_runtime::QUERY_THREAD_STACK_BYTES`).
pub const MAX_STATEMENT_DEPTH: usize = 1_000;

/// How deeply the parser may recurse (nested parentheses, function calls, subqueries).
pub const MAX_PARSER_RECURSION: usize = 256;

/// How deeply subqueries may nest in one another. DataFusion's planner takes time exponential
/// in this depth for nested scalar and `IN` subqueries (about twice as long per level: seconds
/// at 20 levels, minutes at 25), and planning cannot be interrupted, so deeper statements are
/// refused before they are planned.
pub const MAX_SUBQUERY_DEPTH: usize = 16;

/// A statement nests deeper than Osprey plans.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "statement too deeply nested (limit {limit} {what}): write long chains as lists \
     (x IN (1, 2, 3) instead of x = 1 OR x = 2 OR ...), use WITH for nested subqueries, or \
     split the statement"
)]
pub struct TooDeeplyNested {
    /// The limit that was passed.
    pub limit: usize,
    /// What the limit counts.
    pub what: &'static str,
}

impl TooDeeplyNested {
    /// Past [`MAX_PARSER_RECURSION`].
    pub fn parser() -> Self {
        Self {
            limit: MAX_PARSER_RECURSION,
            what: "levels of parentheses, function calls and subqueries",
        }
    }

    fn expressions(limit: usize) -> Self {
        Self {
            limit,
            what: "levels of expressions and subqueries",
        }
    }

    fn subqueries() -> Self {
        Self {
            limit: MAX_SUBQUERY_DEPTH,
            what: "levels of subqueries",
        }
    }
}

/// Whether `err` is the parser giving up on a statement nested past its recursion limit.
pub fn is_parser_recursion_limit(err: &DataFusionError) -> bool {
    matches!(err, DataFusionError::SQL(inner, _)
        if matches!(inner.as_ref(), ParserError::RecursionLimitExceeded))
}

/// How deeply a statement nests parentheses and `CASE ... END`, counted on its tokens. The parser does not always report its recursion limit as such (inside `CASE`
/// it reports the alternative it tried last), so a failed statement that nests this deeply is
/// parsed again with a higher limit to tell the two apart.
pub fn token_nesting(tokens: &[Token]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for token in tokens {
        match token {
            Token::LParen => depth += 1,
            Token::Word(word) if word.keyword == Keyword::CASE => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Word(word) if word.keyword == Keyword::END => depth = depth.saturating_sub(1),
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    deepest
}

/// Refuses `statement` when its expressions and subqueries nest deeper than `limit`, or its
/// subqueries deeper than [`MAX_SUBQUERY_DEPTH`]. On refusal the statement is left cut at the
/// limit (its deeper parts are dismantled here, piece by piece), so dropping it recurses no
/// deeper than the limit either.
pub fn check_nesting(statement: &mut DFStatement, limit: usize) -> Result<(), TooDeeplyNested> {
    let mut cutter = DepthCutter::new(limit);
    cut_statement(statement, &mut cutter);
    let too_many_subqueries = cutter.deepest_query > MAX_SUBQUERY_DEPTH;
    dismantle(cutter, limit)?;
    match too_many_subqueries {
        true => Err(TooDeeplyNested::subqueries()),
        false => Ok(()),
    }
}

/// [`check_nesting`] for one expression.
pub fn check_expr_nesting(expr: &mut Expr, limit: usize) -> Result<(), TooDeeplyNested> {
    let mut cutter = DepthCutter::new(limit);
    let _ = expr.visit(&mut cutter);
    dismantle(cutter, limit)
}

/// Drops what `cutter` cut off, if anything, and says whether it cut.
fn dismantle(mut cutter: DepthCutter, limit: usize) -> Result<(), TooDeeplyNested> {
    if cutter.cut.is_empty() {
        return Ok(());
    }
    let refused = TooDeeplyNested::expressions(limit);
    // Each piece cut off may itself be deeper than the limit: cut it again before dropping
    // it, so no drop recurses past the limit.
    let mut pieces = std::mem::take(&mut cutter.cut);
    while let Some(mut piece) = pieces.pop() {
        let mut cutter = DepthCutter::new(limit);
        let _ = piece.visit(&mut cutter);
        pieces.append(&mut cutter.cut);
    }
    Err(refused)
}

fn cut_statement(statement: &mut DFStatement, cutter: &mut DepthCutter) {
    match statement {
        DFStatement::Statement(statement) => {
            let _ = statement.visit(cutter);
        }
        DFStatement::CopyTo(copy) => {
            if let CopyToSource::Query(query) = &mut copy.source {
                let _ = query.visit(cutter);
            }
        }
        DFStatement::Explain(explain) => cut_statement(&mut explain.statement, cutter),
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => {}
    }
}

/// Tracks the nesting depth of expressions and queries; an expression found past the limit is
/// replaced by `NULL` and kept in `cut`.
struct DepthCutter {
    depth: usize,
    limit: usize,
    cut: Vec<Expr>,
    /// Queries open now, and the most ever open at once.
    queries: usize,
    deepest_query: usize,
}

impl DepthCutter {
    fn new(limit: usize) -> Self {
        Self {
            depth: 0,
            limit,
            cut: Vec::new(),
            queries: 0,
            deepest_query: 0,
        }
    }
}

impl VisitorMut for DepthCutter {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        self.queries += 1;
        self.deepest_query = self.deepest_query.max(self.queries);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        self.queries -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > self.limit {
            // The visitor then walks the NULL left in its place: no deeper.
            let deep = std::mem::replace(expr, Expr::value(Value::Null));
            self.cut.push(deep);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &mut Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn parse(sql: &str) -> DFStatement {
        let mut statements = DFParser::parse_sql(sql).unwrap();
        statements.pop_front().unwrap()
    }

    #[test]
    fn shallow_statements_pass() {
        let mut statement =
            parse("SELECT a + b * 2, (SELECT max(x) FROM t WHERE x IN (1, 2, 3)) FROM u");
        check_nesting(&mut statement, 10).unwrap();
    }

    #[test]
    fn a_long_operator_chain_is_refused_and_dropped_without_deep_recursion() {
        let terms = 200;
        let sql = format!("SELECT {}", vec!["1"; terms].join("+"));
        let mut statement = parse(&sql);
        let err = check_nesting(&mut statement, 50).unwrap_err();
        assert_eq!(err.limit, 50);
        assert!(
            err.to_string()
                .starts_with("statement too deeply nested (limit 50")
        );
        // What is left is cut at the limit.
        check_nesting(&mut statement, 60).unwrap();
        check_nesting(&mut parse(&sql), terms + 5).unwrap();
    }

    #[test]
    fn token_nesting_counts_parentheses_and_case() {
        let deep = format!(
            "SELECT {}(1){}",
            "CASE WHEN 1=2 THEN 0 ELSE ".repeat(30),
            " END".repeat(30)
        );
        assert_eq!(token_nesting(&crate::parser::tokens_of(&deep)), 31);
        assert_eq!(token_nesting(&crate::parser::tokens_of("SELECT 1")), 0);
    }

    #[test]
    fn subqueries_nest_at_most_so_deep() {
        let nested = |n: usize| format!("SELECT {}1{}", "(SELECT ".repeat(n), ")".repeat(n));
        check_nesting(&mut parse(&nested(MAX_SUBQUERY_DEPTH - 1)), 1000).unwrap();
        let err = check_nesting(&mut parse(&nested(MAX_SUBQUERY_DEPTH)), 1000).unwrap_err();
        assert_eq!(err.limit, MAX_SUBQUERY_DEPTH);
        assert!(err.to_string().contains("levels of subqueries"), "{err}");
        // Many subqueries side by side are fine.
        let wide = format!("SELECT {}", vec!["(SELECT 1)"; 200].join(", "));
        check_nesting(&mut parse(&wide), 1000).unwrap();
    }

    #[test]
    fn depth_counts_through_subqueries_and_explain() {
        let sql = format!(
            "EXPLAIN SELECT * FROM t WHERE x = {}",
            vec!["1"; 40].join(" * ")
        );
        check_nesting(&mut parse(&sql), 60).unwrap();
        assert!(check_nesting(&mut parse(&sql), 30).is_err());
    }
}
