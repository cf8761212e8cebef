//! A small cursor over SQL tokens for the administration statements DataFusion's parser does
//! not know (`CREATE USER`, `CREATE WORKGROUP`, ...): [`crate::parser`] lexes a statement once
//! and recognises them on its tokens.

use crate::error::QueryError;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::MemTable;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;

/// A plan over one in-memory batch: what a `SHOW ...` listing answers.
pub(crate) fn listing_plan(
    name: &str,
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
) -> Result<LogicalPlan, QueryError> {
    let batch = RecordBatch::try_new(std::sync::Arc::clone(&schema), columns)
        .map_err(datafusion::error::DataFusionError::from)?;
    let table = MemTable::try_new(schema, vec![vec![batch]])?;
    Ok(LogicalPlanBuilder::scan(
        name,
        datafusion::datasource::provider_as_source(std::sync::Arc::new(table)),
        None,
    )?
    .build()?)
}

/// An `InvalidStatement` error with `message`.
pub(crate) fn syntax(message: &str) -> QueryError {
    QueryError::InvalidStatement(message.to_string())
}

/// A cursor over a statement's tokens, without whitespace.
pub(crate) struct Tokens<'a> {
    tokens: &'a [Token],
    at: usize,
}

impl<'a> Tokens<'a> {
    /// A cursor at the first token.
    pub(crate) fn new(tokens: &'a [Token]) -> Self {
        Self { tokens, at: 0 }
    }

    /// The next token, not consumed.
    pub(crate) fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    /// The token `ahead` places after the next one, not consumed.
    pub(crate) fn peek_at(&self, ahead: usize) -> Option<&'a Token> {
        self.tokens.get(self.at + ahead)
    }

    /// Whether the next token is `token`.
    pub(crate) fn next_is(&self, token: &Token) -> bool {
        self.peek() == Some(token)
    }

    /// Consumes `token` if it is next.
    pub(crate) fn consume(&mut self, token: &Token) -> bool {
        let matches = self.next_is(token);
        if matches {
            self.at += 1;
        }
        matches
    }

    /// Consumes `expected` if the next tokens are exactly those keywords (unquoted).
    pub(crate) fn keywords(&mut self, expected: &[Keyword]) -> bool {
        let matches = expected.iter().enumerate().all(|(i, keyword)| {
            matches!(self.tokens.get(self.at + i),
                Some(Token::Word(w)) if w.quote_style.is_none() && w.keyword == *keyword)
        });
        if matches {
            self.at += expected.len();
        }
        matches
    }

    /// Consumes an unquoted word equal to `expected` (for words that are not SQL keywords).
    pub(crate) fn word(&mut self, expected: &str) -> bool {
        self.words(&[expected])
    }

    /// Consumes `expected` if the next tokens are exactly those unquoted words (keywords or
    /// not), compared without case.
    pub(crate) fn words(&mut self, expected: &[&str]) -> bool {
        let matches = expected.iter().enumerate().all(|(i, word)| {
            matches!(self.tokens.get(self.at + i),
                Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
        });
        if matches {
            self.at += expected.len();
        }
        matches
    }

    /// Consumes a number literal, if one is next, as written.
    pub(crate) fn number(&mut self) -> Option<String> {
        let Some(Token::Number(number, _)) = self.peek() else {
            return None;
        };
        let number = number.clone();
        self.at += 1;
        Some(number)
    }

    /// Consumes a single-quoted string, if one is next.
    pub(crate) fn string(&mut self) -> Option<String> {
        let Some(Token::SingleQuotedString(text)) = self.peek() else {
            return None;
        };
        let text = text.clone();
        self.at += 1;
        Some(text)
    }

    /// Consumes a name: unquoted words fold to lower case, as SQL identifiers do; `"quoted"` and
    /// `'quoted'` names keep their case. `what` names it in the error.
    pub(crate) fn identifier(&mut self, what: &str) -> Result<String, QueryError> {
        let name = match self.peek() {
            Some(Token::Word(w)) if w.quote_style.is_none() => w.value.to_lowercase(),
            Some(Token::Word(w)) => w.value.clone(),
            Some(Token::SingleQuotedString(s)) => s.clone(),
            _ => return Err(syntax(&format!("expected {what}"))),
        };
        self.at += 1;
        Ok(name)
    }

    /// Checks that only an optional `;` is left; `statement` names the statement in the error.
    pub(crate) fn end(&mut self, statement: &str) -> Result<(), QueryError> {
        self.consume(&Token::SemiColon);
        match self.peek() {
            None | Some(Token::EOF) => Ok(()),
            Some(other) => Err(syntax(&format!("unexpected {other} in {statement}"))),
        }
    }
}
