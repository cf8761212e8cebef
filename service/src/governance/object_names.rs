//! How governance statements name what they are about: catalogs, schemas, tables, locations,
//! and tag expressions (`TAGGED domain = 'sales' AND pii IN ('false')`), parsed on the tokens.

use crate::admin_sql::{Tokens, syntax};
use crate::error::QueryError;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;
use osprey_catalog::TagExpression;
use std::collections::{BTreeMap, BTreeSet};

/// An object as a statement names it (resolved against the session's defaults later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedObject {
    /// `CATALOG c`.
    Catalog(String),
    /// `LOCATION name` (or its URL, resolved to its name before the statement runs).
    Location(String),
    /// `SCHEMA [c.]s`.
    Schema(Vec<String>),
    /// `[TABLE] [[c.]s.]t`.
    Table(Vec<String>),
    /// `TAGGED domain = 'sales' AND ...`: what carries those tags.
    Tagged(TagExpression),
}

/// `[TABLE | SCHEMA | CATALOG | LOCATION] name` or `TAGGED expression`.
pub(super) fn object(parser: &mut Tokens<'_>) -> Result<NamedObject, QueryError> {
    if parser.word("TAGGED") {
        return Ok(NamedObject::Tagged(expression(parser)?));
    }
    if parser.word("CATALOG") {
        return Ok(NamedObject::Catalog(parser.identifier("a catalog name")?));
    }
    if parser.word("LOCATION") {
        return Ok(NamedObject::Location(
            parser.identifier("a location's name or 'url'")?,
        ));
    }
    let is_schema = parser.word("SCHEMA") || parser.word("DATABASE");
    if !is_schema {
        parser.word("TABLE");
    }
    let mut parts = vec![parser.identifier("an object name")?];
    while parser.consume(&Token::Period) {
        parts.push(parser.identifier("an object name")?);
    }
    match (is_schema, parts.len()) {
        (true, 1 | 2) => Ok(NamedObject::Schema(parts)),
        (false, 1..=3) => Ok(NamedObject::Table(parts)),
        _ => Err(syntax(&format!(
            "{} is not a schema or table name",
            parts.join(".")
        ))),
    }
}

/// `TABLE sales.orders`, `TAGGED domain = 'sales'`, as a statement named it.
pub(super) fn object_text(object: &NamedObject) -> String {
    match object {
        NamedObject::Catalog(c) => format!("CATALOG {c}"),
        NamedObject::Location(l) => format!("LOCATION {l}"),
        NamedObject::Schema(parts) => format!("SCHEMA {}", parts.join(".")),
        NamedObject::Table(parts) => format!("TABLE {}", parts.join(".")),
        NamedObject::Tagged(expression) => format!("TAGGED {expression}"),
    }
}

/// `key = 'v' | key IN ('a', 'b') [AND ...]`, after `ON TAGGED`.
pub(super) fn expression(parser: &mut Tokens<'_>) -> Result<TagExpression, QueryError> {
    let mut terms: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    loop {
        let key = parser.identifier("a tag name")?;
        let values = if parser.consume(&Token::Eq) {
            BTreeSet::from([quoted(parser)?])
        } else if parser.keywords(&[Keyword::IN]) {
            value_list(parser)?
        } else {
            return Err(syntax(
                "write ON TAGGED name = 'value' [AND name IN ('a', 'b') ...]",
            ));
        };
        if terms.insert(key.clone(), values).is_some() {
            return Err(syntax(&format!(
                "tag {key} appears twice in the expression: list its values once, with IN \
                 ('a', 'b')"
            )));
        }
        if !parser.keywords(&[Keyword::AND]) {
            break;
        }
    }
    TagExpression::new(terms).ok_or_else(|| syntax("a tag expression needs a value per tag"))
}

/// `('a', 'b')`.
pub(super) fn value_list(parser: &mut Tokens<'_>) -> Result<BTreeSet<String>, QueryError> {
    if !parser.consume(&Token::LParen) {
        return Err(syntax("expected a list of values: ('a', 'b')"));
    }
    let mut values = BTreeSet::new();
    loop {
        values.insert(quoted(parser)?);
        if !parser.consume(&Token::Comma) {
            break;
        }
    }
    if !parser.consume(&Token::RParen) {
        return Err(syntax("expected ) after the values"));
    }
    Ok(values)
}

pub(super) fn quoted(parser: &mut Tokens<'_>) -> Result<String, QueryError> {
    parser
        .string()
        .ok_or_else(|| syntax("expected a tag value in single quotes: 'sales'"))
}

pub(super) fn dotted(parser: &mut Tokens<'_>) -> Result<Vec<String>, QueryError> {
    let mut parts = vec![parser.identifier("an object name")?];
    while parser.consume(&Token::Period) {
        parts.push(parser.identifier("an object name")?);
    }
    Ok(parts)
}
