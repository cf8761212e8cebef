//! Scripts (`-f`, `\\i`, piped input): their statements and meta-commands with the line each
//! starts on, and where in a statement an error points.

use crate::split::split_statements;

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScriptItem {
    /// A meta-command: a whole line starting with `\`, between statements.
    Meta(String),
    /// A SQL statement (ended by `;` or by the end of the script).
    Sql(String),
}

/// A script's meta-commands and statements in order, each with the line (from 1) where it
/// starts. Like psql, a backslash command is a line of its own and needs no `;`.
pub(crate) fn script_items(text: &str) -> Vec<(usize, ScriptItem)> {
    let mut items = Vec::new();
    let mut pending = String::new();
    // The line where the text in `pending` starts.
    let mut pending_line = 1;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if crate::split::is_blank(&pending) && line.trim_start().starts_with('\\') {
            items.push((number, ScriptItem::Meta(line.trim().to_string())));
            pending.clear();
            continue;
        }
        if crate::split::is_blank(&pending) {
            pending.clear();
            pending_line = number;
        }
        pending.push_str(line);
        pending.push('\n');
        let (statements, rest) = split_statements(&pending);
        if !statements.is_empty() {
            for statement in statements {
                items.push((
                    statement_line(&pending, &statement, pending_line),
                    ScriptItem::Sql(statement),
                ));
            }
            // What follows the last `;` starts on this line.
            pending_line = number;
        }
        pending = rest;
        if !pending.is_empty() {
            pending.push('\n');
        }
    }
    if !crate::split::is_blank(&pending) {
        let statement = pending.trim().to_string();
        items.push((
            statement_line(&pending, &statement, pending_line),
            ScriptItem::Sql(statement),
        ));
    }
    items
}

/// The line `statement` starts on, found in `text` (which starts on line `first`).
fn statement_line(text: &str, statement: &str, first: usize) -> usize {
    let Some(first_line) = statement.lines().next() else {
        return first;
    };
    match text.find(first_line) {
        Some(offset) => first + text[..offset].matches('\n').count(),
        None => first,
    }
}

/// `LINE n: text` and a caret under the column an error names (`at line L, column C`), as
/// psql prints under a syntax error; `None` when the message names no place in `sql`.
pub(crate) fn error_pointer(message: &str, sql: &str) -> Option<String> {
    let at = message.rfind("at line ")?;
    let (line, rest) = message[at + "at line ".len()..].split_once(", column ")?;
    let line: usize = line.trim().parse().ok()?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let column: usize = column.parse().ok()?;
    let text = sql.lines().nth(line.checked_sub(1)?)?;
    let label = format!("LINE {line}: ");
    let before: String = text.chars().take(column.saturating_sub(1)).collect();
    let indent = label.len() + unicode_width::UnicodeWidthStr::width(before.as_str());
    Some(format!("{label}{text}\n{}^\n", " ".repeat(indent)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_point_at_their_column() {
        let pointer = error_pointer(
            "syntax error: expected an expression, found = at line 2, column 9",
            "SELECT 1\nWHERE 1 = = 1",
        );
        assert_eq!(
            pointer.as_deref(),
            Some("LINE 2: WHERE 1 = = 1\n                ^\n")
        );
        assert_eq!(error_pointer("division by zero", "SELECT 1/0"), None);
    }

    #[test]
    fn scripts_mix_meta_commands_and_statements() {
        let items =
            script_items("\\timing on\nSELECT 1\n  AS a; SELECT ';' -- c\n;\n\\x\nSELECT 2");
        assert_eq!(
            items,
            vec![
                (1, ScriptItem::Meta("\\timing on".into())),
                (2, ScriptItem::Sql("SELECT 1\n  AS a".into())),
                (3, ScriptItem::Sql("SELECT ';' -- c".into())),
                (5, ScriptItem::Meta("\\x".into())),
                (6, ScriptItem::Sql("SELECT 2".into())),
            ]
        );
    }
}
