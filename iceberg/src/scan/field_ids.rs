//! Columns matched by Iceberg field id, never by name.
//!
//! A Parquet file keeps the names its columns had when it was written; the table may have
//! renamed, reordered, dropped or re-added them since, and widened their types. Iceberg says a
//! column is its field id (`PARQUET:field_id` in the file's Arrow schema). DataFusion matches a
//! file's columns by name, so [`FieldIdAdapterFactory`] rewrites every expression of a scan
//! (its projection and its pushed-down predicate) onto the file's columns by id:
//!
//! - a column whose id the file has reads that file column, cast to the table's type where the
//!   table widened it (`int` to `long`, `float` to `double`, a wider decimal);
//! - a column the file lacks reads as NULL (added after the file was written);
//! - a nested column (struct, list, map) is rebuilt by id at every depth ([`NestedById`]).
//!
//! Files written without field ids (imported files) are matched through the table's name
//! mapping (`schema.name-mapping.default`); without one they are refused, as pyiceberg and
//! Java refuse them, since a guess by name could read the wrong column.

use super::name_mapping::{MappedField, NameMapping};
use crate::schema::FIELD_ID_KEY;
use datafusion::arrow::array::{Array, ArrayRef, ListArray, MapArray, StructArray, new_null_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{CastExpr, Column, Literal};
use datafusion::physical_expr_adapter::{PhysicalExprAdapter, PhysicalExprAdapterFactory};
use datafusion::physical_plan::ColumnarValue;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Rewrites a scan's expressions onto each file's columns by field id (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct FieldIdAdapterFactory {
    /// The table's name mapping, for files without field ids.
    pub(crate) name_mapping: Option<Arc<NameMapping>>,
}

impl FieldIdAdapterFactory {
    /// An adapter factory that falls back to `name_mapping` for files without field ids.
    pub fn new(name_mapping: Option<Arc<NameMapping>>) -> Self {
        Self { name_mapping }
    }
}

impl PhysicalExprAdapterFactory for FieldIdAdapterFactory {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> Result<Arc<dyn PhysicalExprAdapter>> {
        let mapping = self.name_mapping.as_deref().map(NameMapping::fields);
        let physical_with_ids = with_field_ids(physical_file_schema.fields(), mapping)?;
        let mut physical_by_id = HashMap::new();
        for (index, field) in physical_with_ids.iter().enumerate() {
            if let Some(id) = field_id(field) {
                physical_by_id.insert(id, index);
            }
        }
        Ok(Arc::new(FieldIdAdapter {
            logical: logical_file_schema,
            physical: physical_file_schema,
            physical_with_ids,
            physical_by_id,
        }))
    }
}

#[derive(Debug)]
struct FieldIdAdapter {
    logical: SchemaRef,
    physical: SchemaRef,
    /// The physical fields with ids filled in from the name mapping where the file has none.
    physical_with_ids: Fields,
    physical_by_id: HashMap<i32, usize>,
}

impl PhysicalExprAdapter for FieldIdAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        expr.transform(|expr| {
            let Some(column) = expr.downcast_ref::<Column>() else {
                return Ok(Transformed::no(expr));
            };
            let logical = match self.logical.field_with_name(column.name()) {
                Ok(logical) if !is_virtual(logical) => logical,
                // A virtual column the reader makes: DataFusion appends it to the file's
                // columns it gives the adapter, so it is read at its index there.
                Ok(_) => match self.physical.index_of(column.name()) {
                    Ok(index) => {
                        return Ok(Transformed::yes(Arc::new(Column::new(
                            column.name(),
                            index,
                        ))));
                    }
                    Err(_) => return Ok(Transformed::no(expr)),
                },
                // Not a table column: left as it is.
                Err(_) => return Ok(Transformed::no(expr)),
            };
            Ok(Transformed::yes(self.column(logical)?))
        })
        .data()
    }
}

impl FieldIdAdapter {
    /// The expression that reads table column `logical` from this file.
    fn column(&self, logical: &Field) -> Result<Arc<dyn PhysicalExpr>> {
        let id = field_id(logical).ok_or_else(|| {
            DataFusionError::Internal(format!("table column {} has no field id", logical.name()))
        })?;
        let Some(&index) = self.physical_by_id.get(&id) else {
            let null = ScalarValue::try_from(logical.data_type())?;
            return Ok(Arc::new(Literal::new(null)));
        };
        let physical = self.physical.field(index);
        let column = Arc::new(Column::new(physical.name(), index)) as Arc<dyn PhysicalExpr>;
        if physical.data_type() == logical.data_type() {
            return Ok(column);
        }
        if is_nested(logical.data_type()) {
            return Ok(Arc::new(NestedById {
                input: column,
                physical: Arc::clone(&self.physical_with_ids[index]),
                logical: Arc::new(logical.clone()),
            }));
        }
        Ok(Arc::new(CastExpr::new(
            column,
            logical.data_type().clone(),
            None,
        )))
    }
}

/// The field id of `field`, from its Arrow metadata.
pub(crate) fn field_id(field: &Field) -> Option<i32> {
    field.metadata().get(FIELD_ID_KEY)?.parse().ok()
}

fn is_nested(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) | DataType::Map(_, _)
    )
}

/// `fields` with the ids of the name mapping where they have none, at every depth. `mapping`
/// is the mapping of this level (`None` when the table has none): a file whose columns have no
/// ids and no mapping is refused.
fn with_field_ids(fields: &Fields, mapping: Option<&[MappedField]>) -> Result<Fields> {
    fields
        .iter()
        .map(|field| match is_virtual(field) {
            true => Ok(Arc::clone(field)),
            false => with_field_id(field, mapping, None),
        })
        .collect()
}

/// Whether `field` is a column the Parquet reader makes rather than reads (the row number of
/// `_pos`, see `IcebergTable::with_row_ids`).
pub(super) fn is_virtual(field: &Field) -> bool {
    // The Parquet reader's virtual columns are marked by extension types of this prefix.
    field
        .extension_type_name()
        .is_some_and(|name| name.starts_with("parquet.virtual."))
}

/// One field of [`with_field_ids`]; `alias` is the name the mapping may know it by (`element`
/// for a list's element, whatever its name in Arrow).
fn with_field_id(
    field: &FieldRef,
    mapping: Option<&[MappedField]>,
    alias: Option<&str>,
) -> Result<FieldRef> {
    let mapped = mapping.and_then(|mapping| {
        NameMapping::lookup_in(mapping, field.name())
            .or_else(|| alias.and_then(|alias| NameMapping::lookup_in(mapping, alias)))
    });
    let mut field = field.as_ref().clone();
    if field_id(&field).is_none() {
        if mapping.is_none() {
            return Err(DataFusionError::Execution(format!(
                "a data file's column {} has no Iceberg field id, and the table has no name \
                 mapping (schema.name-mapping.default) to match it by name",
                field.name()
            )));
        }
        let Some(id) = mapped.and_then(|mapped| mapped.field_id) else {
            // Unmapped: no id, so no table column reads it.
            return Ok(Arc::new(field));
        };
        let mut metadata = field.metadata().clone();
        metadata.insert(FIELD_ID_KEY.to_string(), id.to_string());
        field = field.with_metadata(metadata);
    }
    let children = match (mapping, mapped) {
        (Some(_), Some(mapped)) => Some(mapped.fields.as_slice()),
        (Some(_), None) => Some(&[][..]),
        (None, _) => None,
    };
    let data_type = match field.data_type() {
        DataType::Struct(fields) => DataType::Struct(with_field_ids(fields, children)?),
        DataType::List(element) => {
            DataType::List(with_field_id(element, children, Some("element"))?)
        }
        DataType::LargeList(element) => {
            DataType::LargeList(with_field_id(element, children, Some("element"))?)
        }
        DataType::Map(entries, sorted) => match entries.data_type() {
            DataType::Struct(key_value) => DataType::Map(
                Arc::new(
                    entries
                        .as_ref()
                        .clone()
                        .with_data_type(DataType::Struct(with_field_ids(key_value, children)?)),
                ),
                *sorted,
            ),
            _ => field.data_type().clone(),
        },
        other => other.clone(),
    };
    Ok(Arc::new(field.with_data_type(data_type)))
}

/// A nested file column rebuilt as the table's type, matching children by field id at every
/// depth (see [`adapt_array`]). Built per file by the adapter; never sent between processes.
#[derive(Debug)]
pub(crate) struct NestedById {
    input: Arc<dyn PhysicalExpr>,
    /// The file's field, with ids at every depth.
    physical: FieldRef,
    /// The table's field.
    logical: FieldRef,
}

impl PartialEq for NestedById {
    fn eq(&self, other: &Self) -> bool {
        self.input.as_ref() == other.input.as_ref()
            && self.physical == other.physical
            && self.logical == other.logical
    }
}

impl Eq for NestedById {}

impl Hash for NestedById {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.physical.hash(state);
        self.logical.hash(state);
    }
}

impl fmt::Display for NestedById {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "by_field_id({})", self.input)
    }
}

impl PhysicalExpr for NestedById {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(self.logical.data_type().clone())
    }

    fn nullable(&self, _input_schema: &Schema) -> Result<bool> {
        Ok(self.logical.is_nullable())
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let array = self.input.evaluate(batch)?.into_array(batch.num_rows())?;
        Ok(ColumnarValue::Array(adapt_array(
            &array,
            &self.physical,
            &self.logical,
        )?))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let input = children
            .pop()
            .ok_or_else(|| DataFusionError::Internal("by_field_id takes one child".to_string()))?;
        Ok(Arc::new(NestedById {
            input,
            physical: Arc::clone(&self.physical),
            logical: Arc::clone(&self.logical),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.input.fmt_sql(f)
    }
}

/// `array`, read from the file as `physical`, as the table's `logical` field: struct children
/// matched by id (missing ones NULL), list elements and map entries adapted the same way,
/// primitives cast where the table widened them.
pub(crate) fn adapt_array(array: &ArrayRef, physical: &Field, logical: &Field) -> Result<ArrayRef> {
    let mismatch = || {
        DataFusionError::Execution(format!(
            "a data file's column {} is {}, which cannot be read as the table's {}",
            physical.name(),
            physical.data_type(),
            logical.data_type()
        ))
    };
    match (logical.data_type(), physical.data_type()) {
        (DataType::Struct(logical_children), DataType::Struct(physical_children)) => {
            let array = array
                .as_any()
                .downcast_ref::<StructArray>()
                .ok_or_else(mismatch)?;
            let columns = logical_children
                .iter()
                .map(|child| {
                    let found = field_id(child).and_then(|id| {
                        physical_children
                            .iter()
                            .position(|p| field_id(p) == Some(id))
                    });
                    match found {
                        Some(index) => {
                            adapt_array(array.column(index), &physical_children[index], child)
                        }
                        None => Ok(new_null_array(child.data_type(), array.len())),
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Arc::new(StructArray::try_new(
                logical_children.clone(),
                columns,
                array.nulls().cloned(),
            )?))
        }
        (DataType::List(logical_element), DataType::List(physical_element)) => {
            let array = array
                .as_any()
                .downcast_ref::<ListArray>()
                .ok_or_else(mismatch)?;
            let values = adapt_array(array.values(), physical_element, logical_element)?;
            Ok(Arc::new(ListArray::try_new(
                Arc::clone(logical_element),
                array.offsets().clone(),
                values,
                array.nulls().cloned(),
            )?))
        }
        (DataType::List(_), DataType::LargeList(_)) => {
            let narrowed = cast(
                array,
                &DataType::List(match physical.data_type() {
                    DataType::LargeList(element) => Arc::clone(element),
                    _ => unreachable!("matched LargeList"),
                }),
            )?;
            let list_field = physical
                .clone()
                .with_data_type(narrowed.data_type().clone());
            adapt_array(&narrowed, &list_field, logical)
        }
        (DataType::Map(logical_entries, sorted), DataType::Map(physical_entries, _)) => {
            let array = array
                .as_any()
                .downcast_ref::<MapArray>()
                .ok_or_else(mismatch)?;
            let entries: ArrayRef = Arc::new(array.entries().clone());
            let entries = adapt_array(&entries, physical_entries, logical_entries)?;
            let entries = entries
                .as_any()
                .downcast_ref::<StructArray>()
                .ok_or_else(mismatch)?
                .clone();
            Ok(Arc::new(MapArray::try_new(
                Arc::clone(logical_entries),
                array.offsets().clone(),
                entries,
                array.nulls().cloned(),
                *sorted,
            )?))
        }
        (logical_type, physical_type) if is_nested(logical_type) || is_nested(physical_type) => {
            Err(mismatch())
        }
        (logical_type, physical_type) if logical_type == physical_type => Ok(Arc::clone(array)),
        (logical_type, _) => Ok(cast(array, logical_type)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, Int64Array, StringArray};
    use datafusion::physical_expr::expressions::col;

    fn with_id(field: Field, id: i32) -> Field {
        field.with_metadata(HashMap::from([(FIELD_ID_KEY.to_string(), id.to_string())]))
    }

    #[test]
    fn columns_are_matched_by_id_renamed_widened_and_missing_alike() {
        // The file: `id` (1, int) and `old_name` (2). The table renamed 2 to `name`, widened 1
        // to long, and added `added` (3).
        let physical = Arc::new(Schema::new(vec![
            with_id(Field::new("old_name", DataType::Utf8, true), 2),
            with_id(Field::new("id", DataType::Int32, true), 1),
        ]));
        let logical = Arc::new(Schema::new(vec![
            with_id(Field::new("id", DataType::Int64, true), 1),
            with_id(Field::new("name", DataType::Utf8, true), 2),
            with_id(Field::new("added", DataType::Utf8, true), 3),
        ]));
        let adapter = FieldIdAdapterFactory::default()
            .create(Arc::clone(&logical), Arc::clone(&physical))
            .unwrap();
        let batch = RecordBatch::try_new(
            physical,
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Int32Array::from(vec![1, 2])),
            ],
        )
        .unwrap();
        let read = |name: &str| {
            adapter
                .rewrite(col(name, &logical).unwrap())
                .unwrap()
                .evaluate(&batch)
                .unwrap()
                .into_array(2)
                .unwrap()
        };
        assert_eq!(
            read("id").as_ref(),
            &Int64Array::from(vec![1, 2]) as &dyn Array
        );
        assert_eq!(
            read("name").as_ref(),
            &StringArray::from(vec!["a", "b"]) as &dyn Array
        );
        assert_eq!(read("added").null_count(), 2);
    }

    #[test]
    fn files_without_ids_need_a_name_mapping() {
        let physical = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, true)]));
        let logical = Arc::new(Schema::new(vec![with_id(
            Field::new("id", DataType::Int32, true),
            1,
        )]));
        let err = FieldIdAdapterFactory::default()
            .create(Arc::clone(&logical), Arc::clone(&physical))
            .unwrap_err();
        assert!(err.to_string().contains("name mapping"), "{err}");
        let mapping = NameMapping::parse(r#"[{"field-id": 1, "names": ["id"]}]"#).unwrap();
        let adapter = FieldIdAdapterFactory::new(Some(Arc::new(mapping)))
            .create(Arc::clone(&logical), physical)
            .unwrap();
        let rewritten = adapter.rewrite(col("id", &logical).unwrap()).unwrap();
        assert!(rewritten.downcast_ref::<Column>().is_some(), "{rewritten}");
    }

    #[test]
    fn struct_children_are_matched_by_id() {
        let physical_children = Fields::from(vec![
            with_id(Field::new("x_old", DataType::Int32, true), 11),
            with_id(Field::new("dropped", DataType::Int32, true), 12),
        ]);
        let logical_children = Fields::from(vec![
            with_id(Field::new("new", DataType::Utf8, true), 13),
            with_id(Field::new("x", DataType::Int64, true), 11),
        ]);
        let array: ArrayRef = Arc::new(StructArray::new(
            physical_children.clone(),
            vec![
                Arc::new(Int32Array::from(vec![7, 8])),
                Arc::new(Int32Array::from(vec![0, 0])),
            ],
            None,
        ));
        let adapted = adapt_array(
            &array,
            &Field::new("s", DataType::Struct(physical_children), true),
            &Field::new("s", DataType::Struct(logical_children), true),
        )
        .unwrap();
        let adapted = adapted.as_any().downcast_ref::<StructArray>().unwrap();
        assert_eq!(adapted.column(0).null_count(), 2);
        assert_eq!(
            adapted.column(1).as_ref(),
            &Int64Array::from(vec![7, 8]) as &dyn Array
        );
    }
}
