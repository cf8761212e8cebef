//! Where each row is: the `_file` and `_pos` columns a row-level change reads (Iceberg's
//! metadata columns of those names). `_file` is the data file's location as the metadata
//! writes it (a constant per file, as DataFusion fills partition values); `_pos` is the row's
//! position in the file, counted from 0 over every row of the file whatever was deleted or
//! skipped (the Parquet reader's row number column).

use super::IcebergTable;
use crate::error::IcebergError;
use crate::plan::LiveFile;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::common::ScalarValue;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::parquet::arrow::RowNumber;
use std::sync::Arc;

/// The column that names each row's data file.
pub const FILE_COLUMN: &str = "_file";

/// The column that holds each row's position in its data file.
pub const POSITION_COLUMN: &str = "_pos";

fn file_field() -> FieldRef {
    Arc::new(Field::new(FILE_COLUMN, DataType::Utf8, false))
}

fn position_field() -> FieldRef {
    Arc::new(Field::new(POSITION_COLUMN, DataType::Int64, false).with_extension_type(RowNumber))
}

impl IcebergTable {
    /// The table with two more columns after its own, `_file` and `_pos`, saying where each
    /// row is, for DELETE, UPDATE and MERGE to name the rows they change. A table with its
    /// own column of either name cannot have them.
    pub fn with_row_ids(mut self) -> Result<Self, IcebergError> {
        if self.row_ids {
            return Ok(self);
        }
        if let Some(clash) = [FILE_COLUMN, POSITION_COLUMN]
            .into_iter()
            .find(|name| self.schema.field_with_name(name).is_ok())
        {
            return Err(IcebergError::Unsupported(format!(
                "row-level changes (DELETE, UPDATE, MERGE) on a table with a column named \
                 {clash}, the name Osprey gives a row's place in its data file"
            )));
        }
        let mut fields: Vec<FieldRef> = self.schema.fields().iter().cloned().collect();
        fields.push(file_field());
        fields.push(position_field());
        self.schema = Arc::new(Schema::new_with_metadata(
            fields,
            self.schema.metadata().clone(),
        ));
        self.row_ids = true;
        Ok(self)
    }

    /// What the Parquet source reads: the files' columns, then `_file` as a partition value
    /// and `_pos` as a virtual column, when the table has row ids.
    pub(super) fn scan_schema(&self) -> TableSchema {
        if !self.row_ids {
            return TableSchema::from(Arc::clone(&self.schema));
        }
        let own = self.schema.fields().len() - 2;
        let file_schema = Arc::new(Schema::new_with_metadata(
            self.schema.fields()[..own].to_vec(),
            self.schema.metadata().clone(),
        ));
        TableSchema::builder(file_schema)
            .with_table_partition_cols(vec![file_field()])
            .with_virtual_columns(vec![position_field()])
            .build()
    }

    /// The `_file` value of the rows of `file`.
    pub(super) fn file_values(file: &LiveFile) -> Vec<ScalarValue> {
        vec![ScalarValue::Utf8(Some(file.file.file_path.clone()))]
    }
}
