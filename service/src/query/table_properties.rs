//! `CREATE TABLE ... WITH (...)` properties, in Trino's names. DataFusion plans no table
//! properties, so they are taken off the statement before it is planned, and read here for
//! the Iceberg tables of attached catalogs:
//!
//! - `partitioning = ARRAY['day(ts)', 'bucket(id, 16)']`: the partition spec;
//! - `format = 'PARQUET'`: the data file format (the only one Osprey writes); `'ICEBERG'` is
//!   taken too, as the table format;
//! - `table_type = 'ICEBERG' | 'PARQUET'` (Athena's name): in Osprey's own catalog, tables are
//!   Iceberg tables unless `'PARQUET'` asks for the legacy kind (Parquet files listed in
//!   Osprey's catalog database, with INSERT as their only write);
//! - `format_version = 2 | 3`: the table format version (2 by default; 3 adds row lineage and
//!   deletion vectors).

use crate::error::QueryError;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{self, CreateTableOptions, SqlOption};

/// The properties a `CREATE TABLE` statement was written with.
#[derive(Debug, Clone, Default)]
pub(super) struct TableProperties {
    entries: Vec<(String, ast::Expr)>,
}

/// What an Iceberg `CREATE TABLE` asks for beyond its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IcebergTableProperties {
    /// Trino's partitioning expressions.
    pub partitioning: Vec<String>,
    /// The format version (2 unless asked).
    pub format_version: u8,
}

impl Default for IcebergTableProperties {
    fn default() -> Self {
        Self {
            partitioning: Vec::new(),
            format_version: 2,
        }
    }
}

const KNOWN: &str = "partitioning, format, format_version, table_type";

/// The kinds of table `CREATE TABLE` makes in Osprey's own catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OwnedTableType {
    /// An Apache Iceberg table under the warehouse (the default).
    Iceberg,
    /// The legacy kind: Parquet files that Osprey's catalog database lists.
    LegacyParquet,
}

impl TableProperties {
    /// Takes the `WITH (...)` properties off `statement` when it is a `CREATE TABLE`.
    pub(super) fn take(statement: &mut DFStatement) -> Result<Self, QueryError> {
        let DFStatement::Statement(statement) = statement else {
            return Ok(Self::default());
        };
        let ast::Statement::CreateTable(create) = statement.as_mut() else {
            return Ok(Self::default());
        };
        let options = match std::mem::take(&mut create.table_options) {
            CreateTableOptions::None => return Ok(Self::default()),
            CreateTableOptions::With(options) => options,
            other => {
                return Err(QueryError::NotSupported(format!(
                    "table options written as {other}: write them as WITH (name = value, ...)"
                )));
            }
        };
        let mut entries = Vec::with_capacity(options.len());
        for option in options {
            let SqlOption::KeyValue { key, value } = option else {
                return Err(QueryError::InvalidStatement(format!(
                    "table property {option}: write it as name = value"
                )));
            };
            let name = key.value.to_ascii_lowercase();
            if entries.iter().any(|(seen, _)| *seen == name) {
                return Err(QueryError::InvalidStatement(format!(
                    "the table property {name} is given twice"
                )));
            }
            entries.push((name, value));
        }
        Ok(Self { entries })
    }

    /// Whether the statement had none (besides a `table_type`, which is the router's).
    pub(super) fn is_empty(&self) -> bool {
        self.entries.iter().all(|(name, _)| name == "table_type")
    }

    /// The kind of table a `CREATE TABLE` in Osprey's own catalog makes: Iceberg unless
    /// `table_type = 'PARQUET'`.
    pub(super) fn owned_table_type(&self) -> Result<OwnedTableType, QueryError> {
        let Some((name, value)) = self.entries.iter().find(|(name, _)| name == "table_type") else {
            return Ok(OwnedTableType::Iceberg);
        };
        let kind = string(name, value)?;
        match kind.to_ascii_uppercase().as_str() {
            "ICEBERG" => Ok(OwnedTableType::Iceberg),
            "PARQUET" => Ok(OwnedTableType::LegacyParquet),
            _ => Err(QueryError::NotSupported(format!(
                "table_type = '{kind}': Osprey's own tables are 'ICEBERG' (the default) or \
                 'PARQUET' (the legacy kind)"
            ))),
        }
    }

    /// The properties of an Iceberg table.
    pub(super) fn iceberg(&self) -> Result<IcebergTableProperties, QueryError> {
        let mut properties = IcebergTableProperties::default();
        for (name, value) in &self.entries {
            match name.as_str() {
                "partitioning" => properties.partitioning = string_array(name, value)?,
                "format" => {
                    let format = string(name, value)?;
                    if !(format.eq_ignore_ascii_case("parquet")
                        || format.eq_ignore_ascii_case("iceberg"))
                    {
                        return Err(QueryError::NotSupported(format!(
                            "format = '{format}': Osprey writes Iceberg data files as PARQUET"
                        )));
                    }
                }
                "table_type" => {
                    let kind = string(name, value)?;
                    if !kind.eq_ignore_ascii_case("iceberg") {
                        return Err(QueryError::NotSupported(format!(
                            "table_type = '{kind}' here: this catalog's tables are Iceberg tables"
                        )));
                    }
                }
                "format_version" => {
                    let version = number(name, value)?;
                    properties.format_version = match version.as_str() {
                        "2" => 2,
                        "3" => 3,
                        _ => {
                            return Err(QueryError::NotSupported(format!(
                                "format_version = {version}: Osprey creates Iceberg tables of \
                                 format versions 2 and 3"
                            )));
                        }
                    };
                }
                "location"
                | "sorted_by"
                | "extra_properties"
                | "orc_bloom_filter_columns"
                | "parquet_bloom_filter_columns"
                | "max_commit_retry"
                | "object_store_layout_enabled"
                | "data_location" => {
                    return Err(QueryError::NotSupported(format!(
                        "the table property {name}; Osprey takes {KNOWN}"
                    )));
                }
                other => {
                    return Err(QueryError::InvalidStatement(format!(
                        "unknown table property {other}; the properties are {KNOWN}"
                    )));
                }
            }
        }
        Ok(properties)
    }
}

/// Adds what `ALTER TABLE ... SET PROPERTIES` (or Spark's `SET TBLPROPERTIES`) asks of an
/// Iceberg table to `alteration`. Trino's names (`partitioning`, `format`, `format_version`)
/// mean what they mean in `CREATE TABLE`; a dotted name is the Iceberg property itself
/// (`'write.delete.mode' = 'copy-on-write'`). `DEFAULT` removes a property, and an unpartitions.
pub(super) fn altered_properties(
    options: &[SqlOption],
    alteration: &mut osprey_iceberg::TableAlteration,
) -> Result<(), QueryError> {
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(QueryError::InvalidStatement(format!(
                "table property {option}: write it as name = value"
            )));
        };
        let is_default = matches!(value, ast::Expr::Identifier(word)
            if word.quote_style.is_none() && word.value.eq_ignore_ascii_case("default"));
        let name = &key.value;
        if name.contains('.') {
            if is_default {
                alteration.remove_properties.push(name.clone());
            } else {
                let text = match value {
                    ast::Expr::Value(literal) => match &literal.value {
                        ast::Value::SingleQuotedString(text) => text.clone(),
                        ast::Value::Number(number, _) => number.clone(),
                        ast::Value::Boolean(flag) => flag.to_string(),
                        _ => return Err(expected(name, "a string", value)),
                    },
                    other => return Err(expected(name, "a string", other)),
                };
                alteration.set_properties.insert(name.clone(), text);
            }
            continue;
        }
        let lowered = name.to_ascii_lowercase();
        match lowered.as_str() {
            "partitioning" if is_default => alteration.partitioning = Some(Vec::new()),
            "partitioning" => alteration.partitioning = Some(string_array(&lowered, value)?),
            "format" => {
                // Checked as CREATE TABLE checks it: only what Osprey writes.
                let entries = vec![(lowered.clone(), value.clone())];
                TableProperties { entries }.iceberg()?;
            }
            "format_version" => {
                // Which upgrades are possible is the table's to say (Osprey upgrades 2 to 3).
                let version = number(&lowered, value)?;
                alteration.format_version = Some(
                    version
                        .parse()
                        .map_err(|_| expected(&lowered, "a format version (3)", value))?,
                );
            }
            other => {
                return Err(QueryError::InvalidStatement(format!(
                    "unknown table property {other}; ALTER TABLE ... SET PROPERTIES takes {KNOWN}, \
                     or an Iceberg property by its dotted name ('write.delete.mode' = \
                     'copy-on-write')"
                )));
            }
        }
    }
    Ok(())
}

fn string(name: &str, value: &ast::Expr) -> Result<String, QueryError> {
    match value {
        ast::Expr::Value(value) => match &value.value {
            ast::Value::SingleQuotedString(text) => Ok(text.clone()),
            _ => Err(expected(name, "a string", value)),
        },
        other => Err(expected(name, "a string", other)),
    }
}

fn number(name: &str, value: &ast::Expr) -> Result<String, QueryError> {
    match value {
        ast::Expr::Value(value) => match &value.value {
            ast::Value::Number(number, _) => Ok(number.clone()),
            ast::Value::SingleQuotedString(text) => Ok(text.clone()),
            _ => Err(expected(name, "a number", value)),
        },
        other => Err(expected(name, "a number", other)),
    }
}

fn string_array(name: &str, value: &ast::Expr) -> Result<Vec<String>, QueryError> {
    match value {
        ast::Expr::Array(array) => array.elem.iter().map(|e| string(name, e)).collect(),
        other => Err(expected(name, "an ARRAY of strings", other)),
    }
}

fn expected(name: &str, what: &str, value: &dyn std::fmt::Display) -> QueryError {
    QueryError::InvalidStatement(format!(
        "the table property {name} takes {what}, not {value}"
    ))
}
