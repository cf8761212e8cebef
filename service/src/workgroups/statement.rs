//! The workgroup statements' syntax: the settings and their values, and recognising
//! `CREATE`/`ALTER`/`DROP WORKGROUP` and `SHOW WORKGROUPS` on a statement's tokens.

use super::limits::{DEFAULT_MAX_CONCURRENT_QUERIES, DEFAULT_MAX_QUEUED_QUERIES, check_name};
use crate::admin_sql::{Tokens, syntax};
use crate::error::QueryError;
use crate::units::{parse_byte_size, parse_seconds};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;
use osprey_catalog::WorkgroupRecord;

/// A workgroup setting in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkgroupSetting {
    /// `max_concurrent_queries`.
    MaxConcurrentQueries,
    /// `max_queued_queries`.
    MaxQueuedQueries,
    /// `query_timeout_secs`.
    QueryTimeoutSecs,
    /// `max_scan_bytes`.
    MaxScanBytes,
    /// `query_memory_bytes`.
    QueryMemoryBytes,
}

impl WorkgroupSetting {
    const ALL: [(&'static str, WorkgroupSetting); 5] = [
        (
            "max_concurrent_queries",
            WorkgroupSetting::MaxConcurrentQueries,
        ),
        ("max_queued_queries", WorkgroupSetting::MaxQueuedQueries),
        ("query_timeout_secs", WorkgroupSetting::QueryTimeoutSecs),
        ("max_scan_bytes", WorkgroupSetting::MaxScanBytes),
        ("query_memory_bytes", WorkgroupSetting::QueryMemoryBytes),
    ];

    fn parse(name: &str) -> Result<Self, QueryError> {
        Self::ALL
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, setting)| *setting)
            .ok_or_else(|| {
                syntax(&format!(
                    "unknown workgroup setting {name}: use {}",
                    Self::ALL.map(|(known, _)| known).join(", ")
                ))
            })
    }

    /// Applies `value` to `record`.
    pub(super) fn apply(
        self,
        record: &mut WorkgroupRecord,
        value: SettingValue,
    ) -> Result<(), QueryError> {
        let number = |what: &str| match value {
            SettingValue::Number(n) => Ok(n),
            SettingValue::Default | SettingValue::None => Err(syntax(&format!(
                "{what} takes a number (DEFAULT resets it)"
            ))),
        };
        match self {
            WorkgroupSetting::MaxConcurrentQueries => {
                record.max_concurrent_queries = match value {
                    SettingValue::Default => DEFAULT_MAX_CONCURRENT_QUERIES,
                    _ => number("max_concurrent_queries")?,
                }
            }
            WorkgroupSetting::MaxQueuedQueries => {
                record.max_queued_queries = match value {
                    SettingValue::Default => DEFAULT_MAX_QUEUED_QUERIES,
                    _ => number("max_queued_queries")?,
                }
            }
            WorkgroupSetting::QueryTimeoutSecs => {
                record.query_timeout_secs = match value {
                    SettingValue::Default => None,
                    SettingValue::None => Some(0),
                    SettingValue::Number(n) => Some(n),
                }
            }
            WorkgroupSetting::MaxScanBytes => {
                record.max_scan_bytes = match value {
                    SettingValue::Number(n) => Some(n),
                    _ => None,
                }
            }
            WorkgroupSetting::QueryMemoryBytes => {
                record.query_memory_bytes = match value {
                    SettingValue::Number(n) => Some(n),
                    _ => None,
                }
            }
        }
        Ok(())
    }
}

/// A value given to a workgroup setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingValue {
    /// `DEFAULT` (and `RESET`): the built-in default.
    Default,
    /// `NONE`: no limit.
    None,
    /// A number (sizes and durations already converted to bytes and seconds).
    Number(u64),
}

/// A parsed workgroup statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkgroupStatement {
    /// `CREATE WORKGROUP`.
    Create {
        /// Its name.
        name: String,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// Settings other than the defaults.
        settings: Vec<(WorkgroupSetting, SettingValue)>,
    },
    /// `ALTER WORKGROUP ... SET (...)` or `RESET (...)`.
    Alter {
        /// Its name.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
        /// The changes, in order.
        settings: Vec<(WorkgroupSetting, SettingValue)>,
    },
    /// `DROP WORKGROUP`.
    Drop {
        /// The workgroups dropped.
        names: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `SHOW WORKGROUPS`.
    Show,
}

/// Recognises a workgroup statement: `None` if `sql` is something else, an error if it starts
/// like one but is malformed.
pub fn parse_workgroup_statement(
    tokens: &[Token],
) -> Result<Option<WorkgroupStatement>, QueryError> {
    let mut parser = Tokens::new(tokens);
    let statement = if parser.words(&["CREATE", "WORKGROUP"]) {
        let if_not_exists = parser.keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = workgroup_name(&mut parser)?;
        let settings = if parser.keywords(&[Keyword::WITH]) {
            settings(&mut parser, true)?
        } else {
            Vec::new()
        };
        WorkgroupStatement::Create {
            name,
            if_not_exists,
            settings,
        }
    } else if parser.words(&["ALTER", "WORKGROUP"]) {
        let if_exists = parser.keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = workgroup_name(&mut parser)?;
        let settings = if parser.keywords(&[Keyword::SET]) {
            settings(&mut parser, true)?
        } else if parser.keywords(&[Keyword::RESET]) {
            settings(&mut parser, false)?
        } else {
            return Err(syntax(
                "ALTER WORKGROUP name SET (setting = value, ...) or RESET (setting, ...)",
            ));
        };
        WorkgroupStatement::Alter {
            name,
            if_exists,
            settings,
        }
    } else if parser.words(&["DROP", "WORKGROUP"]) {
        let if_exists = parser.keywords(&[Keyword::IF, Keyword::EXISTS]);
        let mut names = vec![workgroup_name(&mut parser)?];
        while parser.consume(&Token::Comma) {
            names.push(workgroup_name(&mut parser)?);
        }
        WorkgroupStatement::Drop { names, if_exists }
    } else if parser.words(&["SHOW", "WORKGROUPS"]) {
        WorkgroupStatement::Show
    } else {
        return Ok(None);
    };
    parser.end("a workgroup statement")?;
    Ok(Some(statement))
}

fn workgroup_name(parser: &mut Tokens<'_>) -> Result<String, QueryError> {
    let name = parser.identifier("a workgroup name")?;
    check_name(&name).map_err(|message| syntax(&message))?;
    Ok(name)
}

/// `(setting = value, ...)` when `with_values`, `(setting, ...)` (reset to defaults) otherwise.
fn settings(
    parser: &mut Tokens<'_>,
    with_values: bool,
) -> Result<Vec<(WorkgroupSetting, SettingValue)>, QueryError> {
    let shape = if with_values {
        "(setting = value, ...)"
    } else {
        "(setting, ...)"
    };
    if !parser.consume(&Token::LParen) {
        return Err(syntax(&format!("expected {shape}")));
    }
    let mut settings = Vec::new();
    loop {
        let setting = WorkgroupSetting::parse(&parser.identifier("a setting name")?)?;
        let value = if with_values {
            if !parser.consume(&Token::Eq) {
                return Err(syntax(&format!("expected {shape}")));
            }
            setting_value(parser, setting)?
        } else {
            SettingValue::Default
        };
        settings.push((setting, value));
        if parser.consume(&Token::RParen) {
            return Ok(settings);
        }
        if !parser.consume(&Token::Comma) {
            return Err(syntax(&format!("expected , or ) in {shape}")));
        }
    }
}

fn setting_value(
    parser: &mut Tokens<'_>,
    setting: WorkgroupSetting,
) -> Result<SettingValue, QueryError> {
    if parser.keywords(&[Keyword::DEFAULT]) {
        return Ok(SettingValue::Default);
    }
    if parser.keywords(&[Keyword::NONE]) || parser.keywords(&[Keyword::NULL]) {
        return Ok(SettingValue::None);
    }
    let text = parser.number().or_else(|| parser.string()).ok_or_else(|| {
        syntax("a workgroup setting takes a number, a quoted size or duration, DEFAULT or NONE")
    })?;
    let parsed = match setting {
        WorkgroupSetting::QueryTimeoutSecs => parse_seconds(&text),
        WorkgroupSetting::MaxScanBytes | WorkgroupSetting::QueryMemoryBytes => {
            parse_byte_size(&text)
        }
        WorkgroupSetting::MaxConcurrentQueries | WorkgroupSetting::MaxQueuedQueries => text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{text:?} is not a whole number")),
    };
    parsed
        .map(SettingValue::Number)
        .map_err(|message| syntax(&message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_accepted_forms() {
        let parse = |sql| {
            parse_workgroup_statement(&crate::parser::tokens_of(sql))
                .unwrap()
                .unwrap()
        };
        assert_eq!(
            parse(
                "create workgroup if not exists ETL with (max_concurrent_queries = 2, \
                 query_timeout_secs = '10m', max_scan_bytes = '1GiB', query_memory_bytes = NONE)"
            ),
            WorkgroupStatement::Create {
                name: "etl".into(),
                if_not_exists: true,
                settings: vec![
                    (
                        WorkgroupSetting::MaxConcurrentQueries,
                        SettingValue::Number(2)
                    ),
                    (
                        WorkgroupSetting::QueryTimeoutSecs,
                        SettingValue::Number(600)
                    ),
                    (
                        WorkgroupSetting::MaxScanBytes,
                        SettingValue::Number(1 << 30)
                    ),
                    (WorkgroupSetting::QueryMemoryBytes, SettingValue::None),
                ],
            }
        );
        assert_eq!(
            parse("ALTER WORKGROUP \"Etl\" RESET (max_scan_bytes);"),
            WorkgroupStatement::Alter {
                name: "Etl".into(),
                if_exists: false,
                settings: vec![(WorkgroupSetting::MaxScanBytes, SettingValue::Default)],
            }
        );
        assert_eq!(
            parse("drop workgroup if exists a, b"),
            WorkgroupStatement::Drop {
                names: vec!["a".into(), "b".into()],
                if_exists: true
            }
        );
        assert_eq!(parse("SHOW WORKGROUPS"), WorkgroupStatement::Show);
    }

    #[test]
    fn refuses_malformed_statements() {
        for sql in [
            "CREATE WORKGROUP",
            "CREATE WORKGROUP a WITH max_concurrent_queries = 1",
            "CREATE WORKGROUP a WITH (speed = 1)",
            "CREATE WORKGROUP a WITH (max_scan_bytes = 'lots')",
            "ALTER WORKGROUP a",
            "ALTER WORKGROUP a SET (max_concurrent_queries 1)",
            "DROP WORKGROUP a b",
        ] {
            assert!(
                parse_workgroup_statement(&crate::parser::tokens_of(sql)).is_err(),
                "{sql}"
            );
        }
        for sql in ["SELECT 1", "SHOW TABLES", "CREATE TABLE workgroup (a int)"] {
            assert!(
                parse_workgroup_statement(&crate::parser::tokens_of(sql))
                    .unwrap()
                    .is_none(),
                "{sql}"
            );
        }
    }
}

#[cfg(test)]
mod recognizer_example {
    use super::*;

    #[test]
    fn recognizes_its_statements_and_nothing_else() {
        let statement = parse_workgroup_statement(&crate::parser::tokens_of(
            "CREATE WORKGROUP etl WITH (max_concurrent_queries = 2, max_scan_bytes = '10GiB')",
        ))
        .unwrap()
        .unwrap();
        assert!(matches!(statement, WorkgroupStatement::Create { ref name, .. } if name == "etl"));
        assert!(
            parse_workgroup_statement(&crate::parser::tokens_of("SELECT 1"))
                .unwrap()
                .is_none()
        );
        assert!(parse_workgroup_statement(&crate::parser::tokens_of("DROP WORKGROUP")).is_err());
    }
}
