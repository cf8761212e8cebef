//! Engine errors in Osprey's words: the text of a DataFusion, Arrow or SQL parser error without
//! the engine's prefixes (`SQL error: ParserError(...)`, `Error during planning:`,
//! `Arrow error: Parser error:`, `Schema error:`, `External error:`), and where a syntax
//! error is.

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

/// The message of `err` without engine prefixes, for people.
pub(crate) fn plain_message(err: &DataFusionError) -> String {
    match err {
        DataFusionError::ArrowError(arrow, _) => arrow_message(arrow),
        DataFusionError::SQL(parser, _) => {
            let (message, location) = parser_message(parser);
            format!("{message}{}", location_suffix(&location))
        }
        DataFusionError::SchemaError(schema, _) => schema.to_string(),
        DataFusionError::External(inner) => {
            if let Some(inner) = inner.downcast_ref::<DataFusionError>() {
                plain_message(inner)
            } else if let Some(arrow) = inner.downcast_ref::<ArrowError>() {
                arrow_message(arrow)
            } else {
                inner.to_string()
            }
        }
        DataFusionError::Context(context, inner) => {
            format!("{context}: {}", plain_message(inner))
        }
        DataFusionError::Diagnostic(_, inner) => plain_message(inner),
        DataFusionError::Shared(inner) => plain_message(inner),
        DataFusionError::Collection(errors) => errors
            .first()
            .map(plain_message)
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
            Some(inner) => plain_message(inner),
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
            "Cannot cast string 'x' to value of Int64 type"
        );
        let err = DataFusionError::External(Box::new(DataFusionError::Execution("boom".into())));
        assert_eq!(plain_message(&err), "boom");
    }
}
