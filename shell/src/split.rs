//! Splitting SQL text into statements at `;`, outside quotes and comments.

/// Where a scan of SQL text stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    SingleQuoted,
    DoubleQuoted,
    LineComment,
    BlockComment,
}

/// Splits `text` into complete statements (each without its `;`, trimmed, empty ones skipped)
/// and the unfinished rest after the last `;`.
///
/// ```
/// use osprey_shell::split::split_statements;
///
/// let (statements, rest) = split_statements("SELECT ';'; -- a ; comment\nSELECT 2;\nSELECT");
/// assert_eq!(statements, vec!["SELECT ';'", "-- a ; comment\nSELECT 2"]);
/// assert_eq!(rest, "SELECT");
/// ```
pub fn split_statements(text: &str) -> (Vec<String>, String) {
    let mut statements = Vec::new();
    let mut state = State::Code;
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        match state {
            State::Code => match c {
                b'\'' => state = State::SingleQuoted,
                b'"' => state = State::DoubleQuoted,
                b'-' if next == Some(b'-') => {
                    state = State::LineComment;
                    i += 1;
                }
                b'/' if next == Some(b'*') => {
                    state = State::BlockComment;
                    i += 1;
                }
                b';' => {
                    let statement = text[start..i].trim();
                    if !is_blank(statement) {
                        statements.push(statement.to_string());
                    }
                    start = i + 1;
                }
                _ => {}
            },
            // A doubled quote inside a literal leaves and re-enters it: the same state.
            State::SingleQuoted if c == b'\'' => state = State::Code,
            State::DoubleQuoted if c == b'"' => state = State::Code,
            State::LineComment if c == b'\n' => state = State::Code,
            State::BlockComment if c == b'*' && next == Some(b'/') => {
                state = State::Code;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    (statements, text[start..].trim().to_string())
}

/// Whether `text` holds nothing but whitespace and comments.
pub fn is_blank(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if rest.is_empty() {
            return true;
        }
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment
                .split_once('\n')
                .map_or("", |(_, after)| after)
                .trim_start();
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment
                .split_once("*/")
                .map_or("", |(_, after)| after)
                .trim_start();
        } else {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_comments_hide_semicolons() {
        let (statements, rest) = split_statements(
            "SELECT 'a;b', \"c;d\" /* e; */ FROM t;;\n-- only a comment;\nSELECT 'it''s';  ",
        );
        assert_eq!(
            statements,
            vec![
                "SELECT 'a;b', \"c;d\" /* e; */ FROM t",
                "-- only a comment;\nSELECT 'it''s'"
            ]
        );
        assert_eq!(rest, "");
        assert!(is_blank("  -- x\n /* y */ "));
        assert!(!is_blank("-- x\nSELECT 1"));
        let (statements, rest) = split_statements("SELECT 1\n");
        assert!(statements.is_empty());
        assert_eq!(rest, "SELECT 1");
    }
}
