//! Where each row is, and which row it is.
//!
//! - `_file` and `_pos`, the columns a row-level change reads (Iceberg's metadata columns of
//!   those names): `_file` is the data file's location as the metadata writes it (a constant
//!   per file, as DataFusion fills partition values); `_pos` is the row's position in the
//!   file, counted from 0 over every row of the file whatever was deleted or skipped (the
//!   Parquet reader's row number column).
//! - Format 3 row lineage (spec: "Row Lineage"), for writes that copy rows into new files and
//!   must keep their ids: `_row_id` and `_last_updated_sequence_number` as the file stores
//!   them (null where it does not), and the file's `_first_row_id` and
//!   `_data_sequence_number` they default to. [`row_lineage_values`] combines them.

use super::IcebergTable;
use crate::error::IcebergError;
use crate::plan::LiveFile;
use crate::schema::FIELD_ID_KEY;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::common::ScalarValue;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::logical_expr::{Expr, col};
use datafusion::parquet::arrow::RowNumber;
use std::collections::HashMap;
use std::sync::Arc;

/// The column that names each row's data file.
pub const FILE_COLUMN: &str = "_file";

/// The column that holds each row's position in its data file.
pub const POSITION_COLUMN: &str = "_pos";

/// Format 3: the row id column, as data files store it.
pub const ROW_ID_COLUMN: &str = "_row_id";

/// Format 3: the sequence number of the commit that last changed a row, as files store it.
pub const LAST_UPDATED_COLUMN: &str = "_last_updated_sequence_number";

/// The reserved field id of `_row_id` (spec: "Reserved Field IDs").
pub const ROW_ID_FIELD_ID: i32 = 2147483540;

/// The reserved field id of `_last_updated_sequence_number`.
pub const LAST_UPDATED_FIELD_ID: i32 = 2147483539;

/// The first row id of each row's data file (its own or inherited), a per-file value.
const FIRST_ROW_ID_COLUMN: &str = "_first_row_id";

/// The data sequence number of each row's data file, a per-file value.
const DATA_SEQUENCE_COLUMN: &str = "_data_sequence_number";

fn file_field() -> FieldRef {
    Arc::new(Field::new(FILE_COLUMN, DataType::Utf8, false))
}

fn position_field() -> FieldRef {
    Arc::new(Field::new(POSITION_COLUMN, DataType::Int64, false).with_extension_type(RowNumber))
}

/// `_row_id` and `_last_updated_sequence_number` as files store them: optional longs with
/// their reserved field ids.
pub fn row_lineage_fields() -> [FieldRef; 2] {
    let stored = |name: &str, id: i32| {
        Arc::new(
            Field::new(name, DataType::Int64, true)
                .with_metadata(HashMap::from([(FIELD_ID_KEY.to_string(), id.to_string())])),
        )
    };
    [
        stored(ROW_ID_COLUMN, ROW_ID_FIELD_ID),
        stored(LAST_UPDATED_COLUMN, LAST_UPDATED_FIELD_ID),
    ]
}

fn file_lineage_fields() -> [FieldRef; 2] {
    [
        Arc::new(Field::new(FIRST_ROW_ID_COLUMN, DataType::Int64, true)),
        Arc::new(Field::new(DATA_SEQUENCE_COLUMN, DataType::Int64, false)),
    ]
}

/// Each row's `_row_id` and `_last_updated_sequence_number`, over a scan of
/// [`IcebergTable::with_row_lineage`]: the file's value, else the file's first row id plus the
/// row's position, and the file's data sequence number (spec: "Row Lineage", inheritance).
/// Null only where no commit has assigned the file row ids yet.
pub fn row_lineage_values() -> [Expr; 2] {
    [
        coalesce(vec![
            col(ROW_ID_COLUMN),
            col(FIRST_ROW_ID_COLUMN) + col(POSITION_COLUMN),
        ])
        .alias(ROW_ID_COLUMN),
        coalesce(vec![col(LAST_UPDATED_COLUMN), col(DATA_SEQUENCE_COLUMN)])
            .alias(LAST_UPDATED_COLUMN),
    ]
}

/// The columns a table with row ids (and lineage) has after its own, in the order a scan
/// produces them: the files' columns, the per-file values, then `_pos`.
fn extra_fields(lineage: bool) -> (Vec<FieldRef>, Vec<FieldRef>, FieldRef) {
    let (stored, per_file) = match lineage {
        true => (
            row_lineage_fields().to_vec(),
            file_lineage_fields().to_vec(),
        ),
        false => (Vec::new(), Vec::new()),
    };
    let mut partition = vec![file_field()];
    partition.extend(per_file);
    (stored, partition, position_field())
}

impl IcebergTable {
    /// The table with two more columns after its own, `_file` and `_pos`, saying where each
    /// row is, for DELETE, UPDATE and MERGE to name the rows they change. A table with its
    /// own column of either name cannot have them.
    pub fn with_row_ids(self) -> Result<Self, IcebergError> {
        let lineage = self.lineage;
        self.with_extra_columns(lineage)
    }

    /// The table with row ids ([`IcebergTable::with_row_ids`]) and what a format 3 table's
    /// rows need to keep their lineage when they are copied into new files (see
    /// [`row_lineage_values`]).
    pub fn with_row_lineage(self) -> Result<Self, IcebergError> {
        if self.metadata.format_version < 3 {
            return Err(IcebergError::Unsupported(format!(
                "row lineage on a format {} table (it is format 3's)",
                self.metadata.format_version
            )));
        }
        self.with_extra_columns(true)
    }

    fn with_extra_columns(mut self, lineage: bool) -> Result<Self, IcebergError> {
        if self.row_ids && self.lineage == lineage {
            return Ok(self);
        }
        let own = self.own_columns();
        let (stored, partition, position) = extra_fields(lineage);
        let added: Vec<FieldRef> = stored
            .into_iter()
            .chain(partition)
            .chain([position])
            .collect();
        if let Some(clash) = added
            .iter()
            .find(|extra| own.iter().any(|field| field.name() == extra.name()))
        {
            return Err(IcebergError::Unsupported(format!(
                "row-level changes (DELETE, UPDATE, MERGE) and rewrites on a table with a \
                 column named {}, a name Osprey gives row metadata",
                clash.name()
            )));
        }
        let fields: Vec<FieldRef> = own.into_iter().chain(added).collect();
        self.schema = Arc::new(Schema::new_with_metadata(
            fields,
            self.schema.metadata().clone(),
        ));
        self.row_ids = true;
        self.lineage = lineage;
        Ok(self)
    }

    /// The table's own columns, without the ones row ids add.
    fn own_columns(&self) -> Vec<FieldRef> {
        let extra = match (self.row_ids, self.lineage) {
            (false, _) => 0,
            (true, false) => 2,
            (true, true) => 6,
        };
        let fields = self.schema.fields();
        fields[..fields.len() - extra].to_vec()
    }

    /// What the Parquet source reads: the files' columns, then the per-file values as
    /// partition values and `_pos` as a virtual column, when the table has row ids.
    pub(super) fn scan_schema(&self) -> TableSchema {
        if !self.row_ids {
            return TableSchema::from(Arc::clone(&self.schema));
        }
        let (stored, partition, position) = extra_fields(self.lineage);
        let file_fields: Vec<FieldRef> = self.own_columns().into_iter().chain(stored).collect();
        let file_schema = Arc::new(Schema::new_with_metadata(
            file_fields,
            self.schema.metadata().clone(),
        ));
        TableSchema::builder(file_schema)
            .with_table_partition_cols(partition)
            .with_virtual_columns(vec![position])
            .build()
    }

    /// The per-file values of the rows of `file`: `_file`, and with lineage its first row id
    /// and data sequence number.
    pub(super) fn file_values(&self, file: &LiveFile) -> Vec<ScalarValue> {
        let mut values = vec![ScalarValue::Utf8(Some(file.file.file_path.clone()))];
        if self.lineage {
            values.push(ScalarValue::Int64(file.file.first_row_id));
            values.push(ScalarValue::Int64(Some(file.sequence_number)));
        }
        values
    }
}
