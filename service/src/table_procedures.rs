//! Table maintenance, as Trino spells it: `ALTER TABLE t EXECUTE procedure(name => value,
//! ...)`, and Iceberg's branches and tags, as Spark spells them: `ALTER TABLE t CREATE [OR
//! REPLACE] BRANCH | TAG [IF NOT EXISTS] name [AS OF VERSION id] [RETAIN n DAYS | HOURS |
//! MINUTES]`, `REPLACE BRANCH | TAG name ...`, `DROP BRANCH | TAG [IF EXISTS] name`.
//! sqlparser reads none of them, so [`crate::parser`] recognises them on the statement's
//! tokens here.
//!
//! | Procedure | Arguments (default) | Does |
//! |---|---|---|
//! | `optimize` | `file_size_threshold` (`'100MB'`) | rewrites the data files smaller than the threshold, and every file rows were deleted from, into as few files as the partitioning allows, in one snapshot |
//! | `expire_snapshots` | `retention_threshold` (`'7d'`) | removes the snapshots older than the threshold (never the current one, nor a branch's or tag's) and deletes the files only they needed |
//! | `remove_orphan_files` | `retention_threshold` (`'7d'`) | deletes the files under the table's location that no snapshot or metadata file names, older than the threshold |
//! | `rewrite_manifests` (also `optimize_manifests`) | none | writes the current snapshot's manifests again as one per partition spec and content |
//! | `fast_forward` | `branch`, `to` | moves `branch` to the head of `to`, which must descend from it (write-audit-publish) |

use crate::admin_sql::{Tokens, syntax};
use crate::error::QueryError;
use crate::units::{parse_byte_size, parse_seconds};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;
use osprey_iceberg::{RefChange, SnapshotRefKind};
use std::time::Duration;

/// `ALTER TABLE name EXECUTE procedure(...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableProcedure {
    /// The table's name, as written (`[catalog.][schema.]table`), folded as SQL folds it.
    pub table: Vec<String>,
    /// What to run.
    pub procedure: Procedure,
}

/// A maintenance procedure and its arguments, or a change to a branch or tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Procedure {
    /// Compaction: files under `file_size_threshold` bytes, and files with deletes.
    Optimize {
        /// The size under which a file is rewritten.
        file_size_threshold: u64,
    },
    /// Snapshot expiry.
    ExpireSnapshots {
        /// How old a snapshot must be to expire.
        retention_threshold: Duration,
    },
    /// Orphan file removal.
    RemoveOrphanFiles {
        /// How old an unreferenced file must be to go.
        retention_threshold: Duration,
    },
    /// Manifest compaction.
    RewriteManifests,
    /// A branch or tag created or moved.
    SetRef(RefChange),
    /// A branch or tag dropped.
    DropRef {
        /// Its name.
        name: String,
        /// Branch or tag.
        kind: SnapshotRefKind,
        /// Whether a missing one is no error.
        if_exists: bool,
    },
    /// A branch moved to another's head.
    FastForward {
        /// The branch moved.
        branch: String,
        /// The branch whose head it moves to.
        to: String,
    },
}

impl Procedure {
    /// The procedure's name, for messages and the result's label.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Procedure::Optimize { .. } => "optimize",
            Procedure::ExpireSnapshots { .. } => "expire_snapshots",
            Procedure::RemoveOrphanFiles { .. } => "remove_orphan_files",
            Procedure::RewriteManifests => "rewrite_manifests",
            Procedure::SetRef(change) => match (change.create, change.kind) {
                (true, SnapshotRefKind::Branch) => "CREATE BRANCH",
                (true, SnapshotRefKind::Tag) => "CREATE TAG",
                (false, SnapshotRefKind::Branch) => "REPLACE BRANCH",
                (false, SnapshotRefKind::Tag) => "REPLACE TAG",
            },
            Procedure::DropRef { kind, .. } => match kind {
                SnapshotRefKind::Branch => "DROP BRANCH",
                SnapshotRefKind::Tag => "DROP TAG",
            },
            Procedure::FastForward { .. } => "fast_forward",
        }
    }
}

impl Procedure {
    /// The columns of the procedure's one result row (all BIGINT); none for a statement that
    /// answers no row (branch and tag changes).
    pub(crate) fn result_columns(&self) -> &'static [&'static str] {
        match self {
            Procedure::Optimize { .. } => &[
                "rewritten_data_files_count",
                "rewritten_bytes_count",
                "removed_delete_files_count",
                "added_data_files_count",
            ],
            Procedure::ExpireSnapshots { .. } => &[
                "expired_snapshots_count",
                "deleted_data_files_count",
                "deleted_delete_files_count",
                "deleted_manifest_files_count",
                "deleted_manifest_lists_count",
            ],
            Procedure::RemoveOrphanFiles { .. } => &["scanned_files_count", "deleted_files_count"],
            Procedure::RewriteManifests => &["rewritten_manifests_count", "added_manifests_count"],
            Procedure::FastForward { .. } => &["previous_ref", "updated_ref"],
            Procedure::SetRef(_) | Procedure::DropRef { .. } => &[],
        }
    }

    /// The schema of the result.
    pub(crate) fn result_schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        std::sync::Arc::new(Schema::new(
            self.result_columns()
                .iter()
                .map(|name| Field::new(*name, DataType::Int64, false))
                .collect::<Vec<_>>(),
        ))
    }
}

const PROCEDURES: &str =
    "optimize, expire_snapshots, remove_orphan_files, rewrite_manifests and fast_forward";

/// Reads `ALTER TABLE name EXECUTE procedure [(arguments)]`; `None` for any other statement.
pub(crate) fn parse_table_procedure(
    tokens: &[Token],
) -> Result<Option<TableProcedure>, QueryError> {
    let mut parser = Tokens::new(tokens);
    if !parser.keywords(&[Keyword::ALTER, Keyword::TABLE]) {
        return Ok(None);
    }
    // Only EXECUTE and the branch and tag forms are read here; every other ALTER TABLE goes
    // to sqlparser.
    let word = |expected: &str| {
        tokens.iter().any(
            |t| matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(expected)),
        )
    };
    if !word("EXECUTE") && !word("BRANCH") && !word("TAG") {
        return Ok(None);
    }
    let mut table = vec![parser.identifier("a table name")?];
    while parser.consume(&Token::Period) {
        table.push(parser.identifier("a table name")?);
    }
    if let Some(procedure) = parse_ref_change(&mut parser)? {
        parser.end("ALTER TABLE")?;
        return Ok(Some(TableProcedure { table, procedure }));
    }
    if !parser.keywords(&[Keyword::EXECUTE]) {
        return Ok(None);
    }
    let name = parser.identifier("a procedure name")?;
    let mut arguments: Vec<(Option<String>, String)> = Vec::new();
    if parser.consume(&Token::LParen) && !parser.consume(&Token::RParen) {
        loop {
            let named = match (parser.peek(), tokens_after(&parser)) {
                (Some(Token::Word(_)), Some(Token::RArrow)) => {
                    let argument = parser.identifier("an argument name")?;
                    parser.consume(&Token::RArrow);
                    Some(argument)
                }
                _ => None,
            };
            let value = parser
                .string()
                .or_else(|| parser.number())
                .ok_or_else(|| syntax("a procedure's argument is a 'string' or a number"))?;
            arguments.push((named, value));
            if parser.consume(&Token::RParen) {
                break;
            }
            if !parser.consume(&Token::Comma) {
                return Err(syntax("expected , or ) in the procedure's arguments"));
            }
        }
    }
    parser.end("ALTER TABLE ... EXECUTE")?;
    let procedure = procedure(&name, arguments)?;
    Ok(Some(TableProcedure { table, procedure }))
}

/// `CREATE [OR REPLACE] BRANCH | TAG ...`, `REPLACE BRANCH | TAG ...` or `DROP BRANCH | TAG
/// ...`, after the table's name; `None` when the statement is none of them.
fn parse_ref_change(parser: &mut Tokens<'_>) -> Result<Option<Procedure>, QueryError> {
    let kind = |parser: &mut Tokens<'_>| {
        if parser.word("BRANCH") {
            Some(SnapshotRefKind::Branch)
        } else if parser.word("TAG") {
            Some(SnapshotRefKind::Tag)
        } else {
            None
        }
    };
    if parser.keywords(&[Keyword::DROP]) {
        let Some(kind) = kind(parser) else {
            return Ok(None);
        };
        let if_exists = parser.keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = parser.identifier("a branch or tag name")?;
        return Ok(Some(Procedure::DropRef {
            name,
            kind,
            if_exists,
        }));
    }
    let (create, replace) = if parser.keywords(&[Keyword::CREATE, Keyword::OR, Keyword::REPLACE]) {
        (true, true)
    } else if parser.keywords(&[Keyword::CREATE]) {
        (true, false)
    } else if parser.keywords(&[Keyword::REPLACE]) {
        (false, true)
    } else {
        return Ok(None);
    };
    let Some(kind) = kind(parser) else {
        return Ok(None);
    };
    let if_not_exists = parser.keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parser.identifier("a branch or tag name")?;
    let mut snapshot_id = None;
    if parser.keywords(&[Keyword::AS, Keyword::OF, Keyword::VERSION]) {
        let version = parser
            .number()
            .ok_or_else(|| syntax("AS OF VERSION takes a snapshot id"))?;
        snapshot_id = Some(
            version
                .parse::<i64>()
                .map_err(|_| syntax(&format!("{version} is not a snapshot id")))?,
        );
    }
    let mut max_ref_age_ms = None;
    if parser.word("RETAIN") {
        let amount: i64 = parser
            .number()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| syntax("RETAIN takes a whole number of DAYS, HOURS or MINUTES"))?;
        let unit_ms = if parser.word("DAYS") || parser.word("DAY") {
            86_400_000
        } else if parser.word("HOURS") || parser.word("HOUR") {
            3_600_000
        } else if parser.word("MINUTES") || parser.word("MINUTE") {
            60_000
        } else {
            return Err(syntax(
                "RETAIN takes a whole number of DAYS, HOURS or MINUTES",
            ));
        };
        max_ref_age_ms = Some(amount.saturating_mul(unit_ms));
    }
    Ok(Some(Procedure::SetRef(RefChange {
        name,
        kind,
        snapshot_id,
        create,
        replace,
        if_not_exists,
        max_ref_age_ms,
    })))
}

/// The token after the next one.
fn tokens_after<'a>(parser: &Tokens<'a>) -> Option<&'a Token> {
    parser.peek_at(1)
}

fn procedure(
    name: &str,
    arguments: Vec<(Option<String>, String)>,
) -> Result<Procedure, QueryError> {
    if name == "fast_forward" {
        return fast_forward(arguments);
    }
    let (takes, default): (&str, &str) = match name {
        "optimize" => ("file_size_threshold", "100MB"),
        "expire_snapshots" | "remove_orphan_files" => ("retention_threshold", "7d"),
        "rewrite_manifests" | "optimize_manifests" => ("", ""),
        other => {
            return Err(QueryError::InvalidStatement(format!(
                "unknown table procedure {other}; Osprey runs {PROCEDURES}"
            )));
        }
    };
    let mut value = None;
    for (argument, given) in arguments {
        match argument.as_deref() {
            Some(argument) if argument != takes => {
                return Err(QueryError::InvalidStatement(format!(
                    "{name} has no argument {argument}{}",
                    match takes {
                        "" => " (it takes none)".to_string(),
                        takes => format!("; it takes {takes}"),
                    }
                )));
            }
            _ if takes.is_empty() || value.is_some() => {
                return Err(QueryError::InvalidStatement(format!(
                    "{name} takes {}",
                    match takes {
                        "" => "no argument".to_string(),
                        takes => format!("one argument, {takes}"),
                    }
                )));
            }
            _ => value = Some(given),
        }
    }
    let value = value.unwrap_or_else(|| default.to_string());
    let invalid =
        |why: String| QueryError::InvalidStatement(format!("{name}({takes} => '{value}'): {why}"));
    Ok(match name {
        "optimize" => Procedure::Optimize {
            file_size_threshold: parse_byte_size(&value).map_err(invalid)?,
        },
        "expire_snapshots" => Procedure::ExpireSnapshots {
            retention_threshold: Duration::from_secs(parse_seconds(&value).map_err(invalid)?),
        },
        "remove_orphan_files" => Procedure::RemoveOrphanFiles {
            retention_threshold: Duration::from_secs(parse_seconds(&value).map_err(invalid)?),
        },
        _ => Procedure::RewriteManifests,
    })
}

/// `fast_forward('main', 'dev')` or `fast_forward(branch => 'main', to => 'dev')`.
fn fast_forward(arguments: Vec<(Option<String>, String)>) -> Result<Procedure, QueryError> {
    let usage = || {
        QueryError::InvalidStatement(
            "fast_forward takes two branches: fast_forward(branch => 'main', to => 'audit')"
                .to_string(),
        )
    };
    let (mut branch, mut to) = (None, None);
    for (position, (argument, value)) in arguments.into_iter().enumerate() {
        match (argument.as_deref(), position) {
            (Some("branch"), _) | (None, 0) => branch = Some(value),
            (Some("to"), _) | (None, 1) => to = Some(value),
            _ => return Err(usage()),
        }
    }
    match (branch, to) {
        (Some(branch), Some(to)) => Ok(Procedure::FastForward { branch, to }),
        _ => Err(usage()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::tokens_of;

    fn parsed(sql: &str) -> Result<Option<TableProcedure>, QueryError> {
        parse_table_procedure(&tokens_of(sql))
    }

    #[test]
    fn trino_spellings_parse() {
        let optimize =
            parsed("ALTER TABLE lake.db.t EXECUTE optimize(file_size_threshold => '128MB')")
                .unwrap()
                .unwrap();
        assert_eq!(optimize.table, ["lake", "db", "t"]);
        assert_eq!(
            optimize.procedure,
            Procedure::Optimize {
                file_size_threshold: 128 * 1024 * 1024
            }
        );
        let expire = parsed("alter table t execute expire_snapshots('1d');")
            .unwrap()
            .unwrap();
        assert_eq!(
            expire.procedure,
            Procedure::ExpireSnapshots {
                retention_threshold: Duration::from_secs(86_400)
            }
        );
        let defaults = parsed("ALTER TABLE t EXECUTE remove_orphan_files")
            .unwrap()
            .unwrap();
        assert_eq!(
            defaults.procedure,
            Procedure::RemoveOrphanFiles {
                retention_threshold: Duration::from_secs(7 * 86_400)
            }
        );
        assert_eq!(
            parsed("ALTER TABLE t EXECUTE optimize_manifests()")
                .unwrap()
                .unwrap()
                .procedure,
            Procedure::RewriteManifests
        );
        assert!(parsed("ALTER TABLE t ADD COLUMN c INT").unwrap().is_none());
    }

    #[test]
    fn branches_and_tags_parse_in_sparks_spelling() {
        let procedure = |sql: &str| parsed(sql).unwrap().unwrap().procedure;
        assert_eq!(
            procedure(
                "ALTER TABLE t CREATE BRANCH IF NOT EXISTS audit AS OF VERSION 42 RETAIN 7 DAYS"
            ),
            Procedure::SetRef(RefChange {
                name: "audit".into(),
                kind: SnapshotRefKind::Branch,
                snapshot_id: Some(42),
                create: true,
                replace: false,
                if_not_exists: true,
                max_ref_age_ms: Some(7 * 86_400_000),
            })
        );
        let Procedure::SetRef(replace) = procedure("ALTER TABLE t CREATE OR REPLACE TAG v1") else {
            panic!("not a ref change");
        };
        assert!(replace.create && replace.replace && replace.kind == SnapshotRefKind::Tag);
        assert_eq!(
            procedure("ALTER TABLE db.t DROP TAG IF EXISTS v1"),
            Procedure::DropRef {
                name: "v1".into(),
                kind: SnapshotRefKind::Tag,
                if_exists: true
            }
        );
        assert_eq!(
            procedure("ALTER TABLE t EXECUTE fast_forward('main', 'audit')"),
            Procedure::FastForward {
                branch: "main".into(),
                to: "audit".into()
            }
        );
        // Not a ref statement, even with the word in it.
        assert!(
            parsed("ALTER TABLE t ADD COLUMN branch INT")
                .unwrap()
                .is_none()
        );
        assert!(parsed("ALTER TABLE t CREATE BRANCH b RETAIN 3 WEEKS").is_err());
    }

    #[test]
    fn bad_calls_say_what_is_known() {
        let message = |sql: &str| parsed(sql).unwrap_err().to_string();
        assert!(message("ALTER TABLE t EXECUTE vacuum").contains("optimize, expire_snapshots"));
        assert!(
            message("ALTER TABLE t EXECUTE optimize(retention_threshold => '1d')")
                .contains("it takes file_size_threshold")
        );
        assert!(
            message("ALTER TABLE t EXECUTE expire_snapshots(retention_threshold => 'soon')")
                .contains("expire_snapshots(retention_threshold => 'soon')")
        );
        assert!(message("ALTER TABLE t EXECUTE rewrite_manifests('x')").contains("no argument"));
    }
}
