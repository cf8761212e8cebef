//! One table schema changed column by column (spec: "Schema Evolution"), as metadata JSON:
//! what `ALTER TABLE` does to the columns (see [`super::alter`]).

use super::new_table::{Ids, iceberg_type};
use crate::error::IcebergError;
use datafusion::arrow::datatypes::DataType;
use serde_json::{Value, json};

/// A change to one top-level column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnChange {
    /// `ADD COLUMN [IF NOT EXISTS] name type [COMMENT '...']`: a new optional column.
    Add {
        /// Its name.
        name: String,
        /// Its type.
        data_type: DataType,
        /// Its documentation.
        comment: Option<String>,
        /// Whether an existing column of that name is no error.
        if_not_exists: bool,
    },
    /// `DROP COLUMN [IF EXISTS] name`.
    Drop {
        /// The column.
        name: String,
        /// Whether a missing column is no error.
        if_exists: bool,
    },
    /// `RENAME COLUMN from TO to`.
    Rename {
        /// The column.
        from: String,
        /// Its new name.
        to: String,
    },
    /// `ALTER COLUMN name SET DATA TYPE type`: a widening the spec allows.
    SetType {
        /// The column.
        name: String,
        /// The wider type.
        data_type: DataType,
    },
    /// `ALTER COLUMN name DROP NOT NULL`.
    DropNotNull {
        /// The column.
        name: String,
    },
}

/// A schema being changed column by column.
pub(super) struct SchemaEvolution {
    /// The schema as changed so far.
    pub schema: Value,
    /// The field ids assigned so far.
    pub ids: Ids,
}

impl SchemaEvolution {
    /// `schema` (JSON), in a table whose last field id is `last_column_id`.
    pub fn new(schema: Value, last_column_id: i32) -> Self {
        Self {
            schema,
            ids: Ids(last_column_id),
        }
    }

    fn fields(&mut self) -> Result<&mut Vec<Value>, IcebergError> {
        self.schema["fields"]
            .as_array_mut()
            .ok_or_else(|| IcebergError::Invalid("a schema without fields".to_string()))
    }

    /// The position of the column `name`: exactly, else its only case-insensitive match.
    fn position(&mut self, name: &str) -> Result<Option<usize>, IcebergError> {
        let fields = self.fields()?;
        let named = |field: &Value| field["name"].as_str().unwrap_or("").to_string();
        if let Some(exact) = fields.iter().position(|f| named(f) == name) {
            return Ok(Some(exact));
        }
        let folded: Vec<usize> = (0..fields.len())
            .filter(|&i| named(&fields[i]).eq_ignore_ascii_case(name))
            .collect();
        Ok(match folded.as_slice() {
            [only] => Some(*only),
            _ => None,
        })
    }

    fn existing(&mut self, name: &str) -> Result<usize, IcebergError> {
        self.position(name)?
            .ok_or_else(|| IcebergError::Invalid(format!("the table has no column {name}")))
    }

    /// Applies `change`.
    pub fn apply(&mut self, change: &ColumnChange) -> Result<(), IcebergError> {
        match change {
            ColumnChange::Add {
                name,
                data_type,
                comment,
                if_not_exists,
            } => {
                if self.position(name)?.is_some() {
                    return match if_not_exists {
                        true => Ok(()),
                        false => Err(IcebergError::Invalid(format!(
                            "the table has a column {name} already"
                        ))),
                    };
                }
                let id = self.ids.next();
                let mut field = json!({
                    "id": id,
                    "name": name,
                    "required": false,
                    "type": iceberg_type(data_type, &mut self.ids, name)?,
                });
                if let Some(comment) = comment {
                    field["doc"] = json!(comment);
                }
                self.fields()?.push(field);
            }
            ColumnChange::Drop { name, if_exists } => {
                let Some(index) = self.position(name)? else {
                    return match if_exists {
                        true => Ok(()),
                        false => Err(IcebergError::Invalid(format!(
                            "the table has no column {name}"
                        ))),
                    };
                };
                let id = self.fields()?[index]["id"].as_i64();
                let identifiers = self.schema["identifier-field-ids"].as_array();
                if identifiers.is_some_and(|ids| ids.iter().any(|i| i.as_i64() == id)) {
                    return Err(IcebergError::Invalid(format!(
                        "the column {name} identifies the table's rows (identifier-field-ids), \
                         so it cannot be dropped"
                    )));
                }
                if self.fields()?.len() == 1 {
                    return Err(IcebergError::Invalid(format!(
                        "{name} is the table's only column: a table needs one"
                    )));
                }
                self.fields()?.remove(index);
            }
            ColumnChange::Rename { from, to } => {
                let index = self.existing(from)?;
                if self.position(to)?.is_some_and(|other| other != index) {
                    return Err(IcebergError::Invalid(format!(
                        "the table has a column {to} already"
                    )));
                }
                self.fields()?[index]["name"] = json!(to);
            }
            ColumnChange::SetType { name, data_type } => {
                let index = self.existing(name)?;
                let wider = iceberg_type(data_type, &mut Ids(0), name)?;
                let field = &mut self.fields()?[index];
                let from = field["type"].clone();
                // Iceberg keeps the small integer types as int: asking for one is a
                // narrowing, not a no-op.
                let narrow = matches!(
                    data_type,
                    DataType::Int8 | DataType::Int16 | DataType::UInt8 | DataType::UInt16
                );
                if narrow {
                    return Err(IcebergError::Invalid(format!(
                        "the column {name} cannot change to {data_type}: Iceberg has no integer \
                         type narrower than int (32 bits)"
                    )));
                }
                if from != wider {
                    check_widening(name, &from, &wider)?;
                    field["type"] = wider;
                }
            }
            ColumnChange::DropNotNull { name } => {
                let index = self.existing(name)?;
                self.fields()?[index]["required"] = json!(false);
            }
        }
        Ok(())
    }
}

/// Whether a column of type `from` may become `to` (spec: "Schema Evolution", type
/// promotion).
fn check_widening(name: &str, from: &Value, to: &Value) -> Result<(), IcebergError> {
    let (from_text, to_text) = (from.as_str().unwrap_or(""), to.as_str().unwrap_or(""));
    let decimal = |text: &str| -> Option<(u32, u32)> {
        let inner = text.strip_prefix("decimal(")?.strip_suffix(')')?;
        let (precision, scale) = inner.split_once(',')?;
        Some((precision.trim().parse().ok()?, scale.trim().parse().ok()?))
    };
    let shown = |value: &Value| match value.as_str() {
        Some(text) => text.to_string(),
        None => value["type"]
            .as_str()
            .unwrap_or("a nested type")
            .to_string(),
    };
    let (from, to) = (shown(from), shown(to));
    let allowed = match (from_text, to_text) {
        ("int", "long") | ("float", "double") => true,
        _ => match (decimal(from_text), decimal(to_text)) {
            (Some((p1, s1)), Some((p2, s2))) => s1 == s2 && p2 >= p1,
            _ => false,
        },
    };
    match allowed {
        true => Ok(()),
        false => Err(IcebergError::Invalid(format!(
            "the column {name} cannot change from {from} to {to}: Iceberg widens int to bigint, \
             real to double, and decimal(P,S) to decimal(P2,S) with P2 > P; for another type, \
             add a new column and fill it with UPDATE"
        ))),
    }
}
