//! `"t$partitions"`, with Trino's columns: one row per partition of the snapshot read, with
//! its data files' rows, files and bytes. `partition` is a row of the partition fields of every
//! spec the table has had (a field a file's spec lacks is NULL); an unpartitioned table has no
//! `partition` column, as in Trino.

use crate::partition::Transform;
use crate::plan::{LiveFile, snapshot_files};
use crate::prune::{decode, result_type};
use crate::scan::table::IcebergTable;
use crate::schema::Type;
use datafusion::arrow::array::{ArrayRef, Int64Array, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{Result, ScalarValue};
use object_store::ObjectStore;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One partition field over all the table's specs.
struct UnionField {
    field_id: i32,
    name: String,
    data_type: DataType,
}

/// Rows, files and bytes of one partition.
#[derive(Default)]
struct Totals {
    records: i64,
    files: i64,
    bytes: i64,
}

/// The `$partitions` table of `table`'s snapshot (see the module docs).
pub(crate) async fn partitions(
    table: &IcebergTable,
    store: &dyn ObjectStore,
) -> Result<RecordBatch> {
    let metadata = table.metadata();
    let files = match table.snapshot() {
        Some(snapshot) => snapshot_files(store, snapshot, |f| table.location().path_of(f)).await?,
        None => Default::default(),
    };
    let source_type = |id: i32| match metadata
        .current_schema()
        .field_by_id(id)
        .map(|f| &f.field_type)
    {
        Some(Type::Primitive(ty)) => Some(*ty),
        _ => None,
    };
    // Every partition field of every spec, by field id, with the type of its values.
    let mut union: BTreeMap<i32, UnionField> = BTreeMap::new();
    for spec in &metadata.partition_specs {
        for field in &spec.fields {
            let Some(ty) =
                source_type(field.source_id).and_then(|t| result_type(&field.transform, t))
            else {
                continue;
            };
            // Days read as dates, as Java, pyiceberg and Trino show them.
            let data_type = match field.transform {
                Transform::Day => DataType::Date32,
                _ => ty.to_arrow(),
            };
            union.entry(field.field_id).or_insert(UnionField {
                field_id: field.field_id,
                name: field.name.clone(),
                data_type,
            });
        }
    }
    let union: Vec<UnionField> = union.into_values().collect();
    let values_of = |file: &LiveFile| -> Vec<ScalarValue> {
        let spec = metadata.partition_spec(file.partition_spec_id);
        union
            .iter()
            .map(|field| {
                let null = ScalarValue::try_from(&field.data_type).unwrap_or(ScalarValue::Null);
                let Some(spec) = spec else { return null };
                let position = spec
                    .fields
                    .iter()
                    .position(|f| f.field_id == field.field_id);
                let value = position.and_then(|i| {
                    let spec_field = &spec.fields[i];
                    let ty = source_type(spec_field.source_id)
                        .and_then(|t| result_type(&spec_field.transform, t))?;
                    decode(ty, file.file.metrics.partition.get(i)?.as_deref()?)
                });
                value
                    .and_then(|v| v.cast_to(&field.data_type).ok())
                    .unwrap_or(null)
            })
            .collect()
    };
    // Partitions in order of their values' text, so the listing is stable.
    let mut partitions: BTreeMap<String, (Vec<ScalarValue>, Totals)> = BTreeMap::new();
    for file in &files.data {
        let values = values_of(file);
        let key = format!("{values:?}");
        let (_, totals) = partitions
            .entry(key)
            .or_insert_with(|| (values, Totals::default()));
        totals.records += file.file.record_count;
        totals.files += 1;
        totals.bytes += file.file.file_size_in_bytes;
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    if !union.is_empty() {
        let struct_fields: Fields = union
            .iter()
            .map(|f| Field::new(&f.name, f.data_type.clone(), true))
            .collect();
        let mut children: Vec<ArrayRef> = Vec::new();
        for (index, field) in union.iter().enumerate() {
            let values = partitions.values().map(|(values, _)| values[index].clone());
            children.push(if partitions.is_empty() {
                datafusion::arrow::array::new_empty_array(&field.data_type)
            } else {
                ScalarValue::iter_to_array(values)?
            });
        }
        fields.push(Field::new(
            "partition",
            DataType::Struct(struct_fields.clone()),
            false,
        ));
        columns.push(Arc::new(StructArray::try_new(
            struct_fields,
            children,
            None,
        )?));
    }
    for (name, pick) in [
        (
            "record_count",
            (|t: &Totals| t.records) as fn(&Totals) -> i64,
        ),
        ("file_count", |t: &Totals| t.files),
        ("total_size", |t: &Totals| t.bytes),
    ] {
        fields.push(Field::new(name, DataType::Int64, false));
        columns.push(Arc::new(Int64Array::from_iter_values(
            partitions.values().map(|(_, totals)| pick(totals)),
        )));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
