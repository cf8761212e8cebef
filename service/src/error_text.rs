//! Engine errors in Osprey's words: the text of a DataFusion, Arrow or SQL parser error without
//! the engine's prefixes (`SQL error: ParserError(...)`, `Error during planning:`,
//! `Arrow error: Parser error:`, `Schema error:`, `External error:`), and where a syntax
//! error is.

use crate::sql_types::{TypeNameCase, sql_type_name};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use datafusion::common::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;

/// A place in a statement's text, counted from 1 (as the SQL parser and psql count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLocation {
    /// The line, from 1.
    pub line: u64,
    /// The column in that line, from 1 (in characters).
    pub column: u64,
}

/// The message of `err` without engine prefixes, for people, its Arrow type names in SQL
/// (`Int64` → `BIGINT`, `Decimal128(15, 2)` → `DECIMAL(15,2)`).
pub(crate) fn plain_message(err: &DataFusionError) -> String {
    with_sql_type_names(&engine_message(err))
}

/// The Arrow types that an engine message names: those whose name alone is the type, and
/// those with parameters in parentheses.
const ARROW_TYPE_NAMES: &[&str] = &[
    "Boolean",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "Float16",
    "Float32",
    "Float64",
    "Utf8",
    "Utf8View",
    "LargeUtf8",
    "Binary",
    "BinaryView",
    "LargeBinary",
    "Date32",
    "Date64",
];
const ARROW_TYPES_WITH_PARAMETERS: &[&str] = &[
    "Decimal32(",
    "Decimal64(",
    "Decimal128(",
    "Decimal256(",
    "Timestamp(",
    "Time32(",
    "Time64(",
];

/// `text` with every Arrow type name it holds as a word (parsed back by Arrow itself, so a
/// word that only looks like one stays) written as the SQL name every door shows.
fn with_sql_type_names(text: &str) -> String {
    let is_word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, c)) = rest.char_indices().next() {
        let starts_word = out.chars().last().is_none_or(|prev| !is_word_char(prev));
        if starts_word && c.is_ascii_uppercase() {
            let with_parameters = ARROW_TYPES_WITH_PARAMETERS
                .iter()
                .find(|head| rest.starts_with(**head))
                .and_then(|_| rest.find(')').map(|end| &rest[..=end]));
            let word_end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
            let plain = Some(&rest[..word_end]).filter(|w| ARROW_TYPE_NAMES.contains(w));
            if let Some(candidate) = with_parameters.or(plain)
                && let Ok(data_type) = candidate.parse::<DataType>()
            {
                out.push_str(&sql_type_name(&data_type, TypeNameCase::Upper));
                rest = &rest[candidate.len()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[at + c.len_utf8()..];
    }
    out
}

/// The message of `err` without engine prefixes, its type names as the engine wrote them.
fn engine_message(err: &DataFusionError) -> String {
    match err {
        DataFusionError::ArrowError(arrow, _) => arrow_message(arrow),
        DataFusionError::SQL(parser, _) => {
            let (message, location) = parser_message(parser);
            format!("{message}{}", location_suffix(&location))
        }
        DataFusionError::SchemaError(schema, _) => schema.to_string(),
        DataFusionError::External(inner) => {
            if let Some(inner) = inner.downcast_ref::<DataFusionError>() {
                engine_message(inner)
            } else if let Some(arrow) = inner.downcast_ref::<ArrowError>() {
                arrow_message(arrow)
            } else {
                inner.to_string()
            }
        }
        // Which optimizer rule met the error is the engine's business, not the user's.
        DataFusionError::Context(context, inner) if context.starts_with("Optimizer rule") => {
            engine_message(inner)
        }
        DataFusionError::Context(context, inner) => {
            format!("{context}: {}", engine_message(inner))
        }
        DataFusionError::Diagnostic(_, inner) => engine_message(inner),
        DataFusionError::Shared(inner) => engine_message(inner),
        DataFusionError::Collection(errors) => errors
            .first()
            .map(engine_message)
            .unwrap_or_else(|| err.message().into_owned()),
        DataFusionError::Internal(message) => {
            format!("internal error in the query engine: {message}")
        }
        DataFusionError::ParquetError(parquet) => {
            let text = parquet.to_string();
            let text = text.strip_prefix("Parquet error: ").unwrap_or(&text);
            format!("cannot read Parquet data: {text}")
        }
        other => other.message().into_owned(),
    }
}

/// The text of an Arrow error without Arrow's own prefix (`Parser error:`, `Cast error:`).
fn arrow_message(err: &ArrowError) -> String {
    match err {
        ArrowError::DivideByZero => "division by zero".to_string(),
        ArrowError::CastError(text) | ArrowError::ParseError(text) => text.clone(),
        ArrowError::ArithmeticOverflow(text) => format!("arithmetic overflow: {text}"),
        ArrowError::CsvError(text) => format!("bad CSV data: {text}"),
        ArrowError::JsonError(text) => format!("bad JSON data: {text}"),
        ArrowError::ComputeError(text)
        | ArrowError::InvalidArgumentError(text)
        | ArrowError::SchemaError(text)
        | ArrowError::NotYetImplemented(text)
        | ArrowError::ParquetError(text)
        | ArrowError::MemoryError(text)
        | ArrowError::IpcError(text)
        | ArrowError::AvroError(text)
        | ArrowError::CDataInterface(text) => text.clone(),
        ArrowError::ExternalError(inner) => match inner.downcast_ref::<DataFusionError>() {
            Some(inner) => engine_message(inner),
            None => inner.to_string(),
        },
        ArrowError::IoError(text, _) => text.clone(),
        other => other.to_string(),
    }
}

/// ` at line L, column C`, or nothing.
pub(crate) fn location_suffix(location: &Option<SourceLocation>) -> String {
    location
        .map(|at| format!(" at line {}, column {}", at.line, at.column))
        .unwrap_or_default()
}

/// The edits from `wanted` to `candidate` (ignoring case) when few enough to be a slip of
/// the keyboard: at most a third of the name, and at least two are allowed. The one rule of
/// every "did you mean".
pub(crate) fn slip_distance(wanted: &str, candidate: &str) -> Option<usize> {
    let wanted = wanted.to_lowercase();
    let distance = datafusion::common::utils::datafusion_strsim::levenshtein(
        &wanted,
        &candidate.to_lowercase(),
    );
    (distance <= (wanted.len() / 3).max(2)).then_some(distance)
}

/// A SQL parser error as `syntax error: expected X, found Y` and where it is, parsed from the
/// parser's `... at Line: L, Column: C` (sqlparser reports the place only in its text).
pub(crate) fn parser_message(err: &ParserError) -> (String, Option<SourceLocation>) {
    let text = match err {
        ParserError::TokenizerError(text) | ParserError::ParserError(text) => text.as_str(),
        ParserError::RecursionLimitExceeded => {
            return (
                "syntax error: the statement is nested too deeply".into(),
                None,
            );
        }
    };
    let (text, location) = match text.rfind(" at Line: ") {
        Some(at) => (
            &text[..at],
            source_location(&text[at + " at Line: ".len()..]),
        ),
        None => (text, None),
    };
    // "Expected: an SQL statement, found: SELCT" reads as a sentence without the colons.
    let text = text
        .replacen("Expected: ", "expected ", 1)
        .replacen(", found: ", ", found ", 1);
    let mut chars = text.chars();
    let text = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect::<String>(),
        None => text,
    };
    (format!("syntax error: {text}"), location)
}

/// `L, Column: C` as a location.
fn source_location(text: &str) -> Option<SourceLocation> {
    let (line, column) = text.split_once(", Column: ")?;
    let column: String = column.chars().take_while(char::is_ascii_digit).collect();
    Some(SourceLocation {
        line: line.trim().parse().ok()?,
        column: column.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_errors_read_as_sentences_with_their_place() {
        let err = ParserError::ParserError(
            "Expected: an SQL statement, found: SELCT at Line: 2, Column: 3".into(),
        );
        let (message, location) = parser_message(&err);
        assert_eq!(
            message,
            "syntax error: expected an SQL statement, found SELCT"
        );
        assert_eq!(location, Some(SourceLocation { line: 2, column: 3 }));
        let err = DataFusionError::SQL(Box::new(err), None);
        assert_eq!(
            plain_message(&err),
            "syntax error: expected an SQL statement, found SELCT at line 2, column 3"
        );
    }

    #[test]
    fn engine_prefixes_are_gone() {
        let err = DataFusionError::Plan("table 'a.b.c' not found".into());
        assert_eq!(plain_message(&err), "table 'a.b.c' not found");
        let err = DataFusionError::ArrowError(
            Box::new(ArrowError::CastError(
                "Cannot cast string 'x' to value of Int64 type".into(),
            )),
            None,
        );
        assert_eq!(
            plain_message(&err),
            "Cannot cast string 'x' to value of BIGINT type"
        );
        let err = DataFusionError::External(Box::new(DataFusionError::Execution("boom".into())));
        assert_eq!(plain_message(&err), "boom");
        let err = DataFusionError::Context(
            "Optimizer rule 'simplify_expressions' failed".into(),
            Box::new(DataFusionError::Execution("boom".into())),
        );
        assert_eq!(plain_message(&err), "boom");
    }

    #[test]
    fn arrow_type_names_become_sql_names() {
        assert_eq!(
            with_sql_type_names(
                "Cannot coerce arithmetic expression Utf8View + Int64 to valid types; \
                 Decimal128(15, 2) vs Timestamp(µs, \"UTC\")"
            ),
            "Cannot coerce arithmetic expression VARCHAR + BIGINT to valid types; \
             DECIMAL(15,2) vs TIMESTAMP(6) WITH TIME ZONE"
        );
        // Words that only look like types, and names in other words, stay.
        assert_eq!(
            with_sql_type_names("column Int64x, MyInt64 and Decimal128(x) and 'Null'"),
            "column Int64x, MyInt64 and Decimal128(x) and 'Null'"
        );
    }
}
