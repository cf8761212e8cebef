//! The interactive loop: rustyline for editing, persistent history, multi-line statements ended
//! by `;`, and completion of keywords, schemas, tables and columns.

use crate::client::TableInfo;
use crate::session::{Next, Session};
use crate::split::{is_blank, split_statements};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// SQL keywords offered by completion.
const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT JOIN",
    "RIGHT JOIN",
    "FULL JOIN",
    "CROSS JOIN",
    "INNER JOIN",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "EXISTS",
    "BETWEEN",
    "LIKE",
    "ILIKE",
    "IS NULL",
    "IS NOT NULL",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "UNION",
    "UNION ALL",
    "INTERSECT",
    "EXCEPT",
    "WITH",
    "INSERT INTO",
    "VALUES",
    "CREATE TABLE",
    "CREATE EXTERNAL TABLE",
    "CREATE VIEW",
    "CREATE SCHEMA",
    "DROP TABLE",
    "DROP VIEW",
    "DROP SCHEMA",
    "ALTER",
    "EXPLAIN",
    "EXPLAIN ANALYZE",
    "DESCRIBE",
    "SHOW TABLES",
    "SHOW COLUMNS",
    "SHOW ALL",
    "SET",
    "RESET",
    "USE",
    "UNLOAD",
    "STORED AS",
    "LOCATION",
    "PARTITIONED BY",
    "CAST",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "ASC",
    "DESC",
    "NULLS FIRST",
    "NULLS LAST",
    "TRUE",
    "FALSE",
    "NULL",
    "INTERVAL",
    "DATE",
    "TIMESTAMP",
];

/// Meta-commands offered by completion.
const META: &[&str] = &[
    "\\d",
    "\\dn",
    "\\dt",
    "\\timing",
    "\\x",
    "\\o",
    "\\format",
    "\\i",
    "\\c",
    "\\conninfo",
    "\\?",
    "\\h",
    "\\q",
];

/// Completion and multi-line input for the editor.
pub struct ShellHelper {
    catalog: Arc<Mutex<Vec<TableInfo>>>,
}

impl ShellHelper {
    /// Completes from `catalog` (shared with the session, which refreshes it).
    pub fn new(catalog: Arc<Mutex<Vec<TableInfo>>>) -> Self {
        Self { catalog }
    }

    /// Candidates for the word `word` (which may be `schema.` or `table.` qualified).
    pub fn candidates(&self, word: &str) -> Vec<String> {
        let lower = word.to_ascii_lowercase();
        let catalog = self.catalog.lock().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = Vec::new();
        if word.starts_with('\\') {
            names.extend(META.iter().map(|m| m.to_string()));
        } else if let Some((qualifier, _)) = word.rsplit_once('.') {
            // Everything up to and including the last dot stays as typed.
            let prefix = &word[..=qualifier.len()];
            let qualifier = qualifier.to_ascii_lowercase();
            for table in catalog.iter() {
                if table.schema.to_ascii_lowercase() == qualifier {
                    names.push(format!("{}.{}", table.schema, table.name));
                }
                if table.name.to_ascii_lowercase() == qualifier
                    || format!("{}.{}", table.schema, table.name).to_ascii_lowercase() == qualifier
                {
                    names.extend(table.columns.iter().map(|(c, _, _)| format!("{prefix}{c}")));
                }
            }
        } else {
            let upper = word.chars().next().is_some_and(char::is_uppercase);
            names.extend(KEYWORDS.iter().map(|k| {
                if upper {
                    k.to_string()
                } else {
                    k.to_ascii_lowercase()
                }
            }));
            for table in catalog.iter() {
                names.push(table.schema.clone());
                names.push(table.name.clone());
                names.extend(table.columns.iter().map(|(c, _, _)| c.clone()));
            }
        }
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter(|name| name.to_ascii_lowercase().starts_with(&lower))
            .collect()
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '\\'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let pairs = self
            .candidates(word)
            .into_iter()
            .map(|name| Pair {
                display: name.clone(),
                replacement: name,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

// Every line is taken as typed: the loop in [`run`] gathers a statement over several lines,
// with its own continuation prompt.
impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

/// Whether the typed text is ready to run: empty, a meta-command, or ending with `;`.
pub fn input_complete(input: &str) -> bool {
    let trimmed = input.trim();
    if trimmed.is_empty() || trimmed.starts_with('\\') {
        return true;
    }
    let (_, rest) = split_statements(input);
    is_blank(&rest)
}

/// Where history is kept: `$OSPREY_HISTORY`, else `$XDG_STATE_HOME/osprey/history`, else
/// `~/.local/state/osprey/history`.
pub fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("OSPREY_HISTORY") {
        return Some(PathBuf::from(path));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local").join("state"))
        })?;
    Some(state.join("osprey").join("history"))
}

/// The prompt: `osprey:SCHEMA=> ` for a new statement and `osprey:SCHEMA-> ` while one
/// continues over more lines, as psql's `db=>` and `db->`.
fn prompt(schema: Option<&str>, continuing: bool) -> String {
    let place = schema.map_or_else(|| "osprey".to_string(), |s| format!("osprey:{s}"));
    format!("{place}{} ", if continuing { "->" } else { "=>" })
}

/// Whether `statement` may change the session's current schema (`USE ...`).
fn changes_schema(statement: &str) -> bool {
    statement
        .split_whitespace()
        .next()
        .is_some_and(|word| word.eq_ignore_ascii_case("use"))
}

/// Adds `entry` (a whole statement, however many lines it took) to the history, and appends it
/// to the history file at once, so a crash or a kill loses nothing.
fn remember(
    editor: &mut Editor<ShellHelper, DefaultHistory>,
    file: Option<&std::path::Path>,
    entry: &str,
) {
    let _ = editor.add_history_entry(entry);
    if let Some(path) = file {
        let _ = editor.append_history(path);
    }
}

/// Reads and runs input until `\q` or Ctrl-D.
pub async fn run(session: &mut Session) -> rustyline::Result<()> {
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .max_history_size(10_000)?
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(ShellHelper::new(Arc::clone(&session.catalog))));
    let history = history_path();
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.load_history(path);
    }
    eprintln!("Type \\? for help, \\q or Ctrl-D to leave. Statements end with `;`.");
    let mut schema = session.current_schema().await;
    // A statement typed over several lines gathers here until it ends with `;`.
    let mut pending = String::new();
    loop {
        let prompt = prompt(schema.as_deref(), !pending.is_empty());
        let line = tokio::task::block_in_place(|| editor.readline(&prompt));
        let input = match line {
            Ok(input) => input,
            // Ctrl-C at the prompt clears the statement being typed.
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(err) => return Err(err),
        };
        if pending.is_empty() && input.trim().is_empty() {
            continue;
        }
        let trimmed = input.trim();
        if pending.is_empty() && trimmed.starts_with('\\') {
            remember(&mut editor, history.as_deref(), trimmed);
            match session.meta(trimmed).await {
                Ok(Next::Quit) => break,
                Ok(Next::Continue) => {}
                Err(err) => session.report(&err),
            }
            continue;
        }
        pending.push_str(&input);
        pending.push('\n');
        if !input_complete(&pending) {
            continue;
        }
        let text = std::mem::take(&mut pending);
        remember(&mut editor, history.as_deref(), text.trim_end());
        let (statements, _) = split_statements(&text);
        for statement in statements {
            let result = session.run(&statement).await;
            if let Err(err) = result {
                session.report_in(&err, Some(&statement), None);
                break;
            }
            if changes_schema(&statement) {
                schema = session.current_schema().await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_continue_until_a_semicolon() {
        assert!(!input_complete("SELECT 1"));
        assert!(!input_complete("SELECT ';'"));
        assert!(input_complete("SELECT 1\nFROM t;"));
        assert!(input_complete("\\dt"));
        assert!(input_complete("   "));
    }

    #[test]
    fn completion_offers_tables_columns_and_keywords() {
        let catalog = Arc::new(Mutex::new(vec![TableInfo {
            schema: "tpch".into(),
            name: "lineitem".into(),
            kind: "BASE TABLE".into(),
            columns: vec![("l_orderkey".into(), "Int64".into(), false)],
        }]));
        let helper = ShellHelper::new(catalog);
        assert_eq!(helper.candidates("line"), vec!["lineitem"]);
        assert_eq!(helper.candidates("tpch.li"), vec!["tpch.lineitem"]);
        assert_eq!(
            helper.candidates("lineitem.l_o"),
            vec!["lineitem.l_orderkey"]
        );
        assert!(helper.candidates("SEL").contains(&"SELECT".to_string()));
        assert!(helper.candidates("sel").contains(&"select".to_string()));
        assert!(
            helper
                .candidates("\\co")
                .contains(&"\\conninfo".to_string())
        );
    }
}
