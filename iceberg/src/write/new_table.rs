//! Creating a table: an Arrow schema as an Iceberg schema with fresh field ids, a partition
//! spec from Trino's `partitioning` expressions, and the first metadata file of a format-2,
//! unsorted table (spec: "Table Metadata").

use super::partitioning::{parse_partitioning, spec_json};
use crate::catalog::{IcebergCatalog, TableDefinition};
use crate::error::IcebergError;
use crate::scan::location::StoreLocation;
use crate::schema::Schema;
use datafusion::arrow::datatypes::{DataType, Field, Schema as ArrowSchema, TimeUnit};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Assigns field ids in order, depth first, as pyiceberg and Java do for a new table.
pub(super) struct Ids(pub(super) i32);

impl Ids {
    pub(super) fn next(&mut self) -> i32 {
        self.0 += 1;
        self.0
    }
}

/// `schema` as an Iceberg schema (`schema-id` 0) with fresh ids, and the last id used.
pub fn schema_from_arrow(schema: &ArrowSchema) -> Result<(Value, i32), IcebergError> {
    schema_with_ids_after(schema, 0)
}

/// `schema` as an Iceberg schema (`schema-id` 0) with ids after `last_id`, and the last id
/// used.
pub(super) fn schema_with_ids_after(
    schema: &ArrowSchema,
    last_id: i32,
) -> Result<(Value, i32), IcebergError> {
    let mut ids = Ids(last_id);
    let fields = struct_fields(schema.fields().iter().map(|f| f.as_ref()), &mut ids)?;
    Ok((
        json!({"type": "struct", "schema-id": 0, "fields": fields}),
        ids.0,
    ))
}

fn struct_fields<'a>(
    fields: impl Iterator<Item = &'a Field>,
    ids: &mut Ids,
) -> Result<Vec<Value>, IcebergError> {
    // Ids of one struct's fields come first, then those nested in them.
    let fields: Vec<&Field> = fields.collect();
    let own: Vec<i32> = fields.iter().map(|_| ids.next()).collect();
    fields
        .into_iter()
        .zip(own)
        .map(|(field, id)| {
            Ok(json!({
                "id": id,
                "name": field.name(),
                "required": !field.is_nullable(),
                "type": iceberg_type(field.data_type(), ids, field.name())?,
            }))
        })
        .collect()
}

pub(super) fn iceberg_type(
    data_type: &DataType,
    ids: &mut Ids,
    name: &str,
) -> Result<Value, IcebergError> {
    use DataType as D;
    let primitive = |name: &str| Ok(Value::String(name.to_string()));
    match data_type {
        D::Boolean => primitive("boolean"),
        D::Int8 | D::Int16 | D::Int32 | D::UInt8 | D::UInt16 => primitive("int"),
        D::Int64 | D::UInt32 => primitive("long"),
        D::Float16 | D::Float32 => primitive("float"),
        D::Float64 => primitive("double"),
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) if *p <= 38 => {
            primitive(&format!("decimal({p}, {s})"))
        }
        D::Date32 | D::Date64 => primitive("date"),
        D::Time32(_) | D::Time64(TimeUnit::Microsecond | TimeUnit::Millisecond) => {
            primitive("time")
        }
        // SQL's TIMESTAMP is nanoseconds in DataFusion; format 2 tables hold microseconds
        // (`timestamp_ns` is a format 3 type), as Trino maps its TIMESTAMP too.
        D::Timestamp(_, None) => primitive("timestamp"),
        D::Timestamp(_, Some(_)) => primitive("timestamptz"),
        D::Utf8 | D::LargeUtf8 | D::Utf8View => primitive("string"),
        D::Binary | D::LargeBinary | D::BinaryView => primitive("binary"),
        D::FixedSizeBinary(length) => primitive(&format!("fixed[{length}]")),
        D::Struct(fields) => Ok(json!({
            "type": "struct",
            "fields": struct_fields(fields.iter().map(|f| f.as_ref()), ids)?,
        })),
        D::List(element) | D::LargeList(element) | D::ListView(element) => {
            let element_id = ids.next();
            Ok(json!({
                "type": "list",
                "element-id": element_id,
                "element": iceberg_type(element.data_type(), ids, name)?,
                "element-required": !element.is_nullable(),
            }))
        }
        D::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(IcebergError::Unsupported(format!("the map column {name}")));
            };
            let (key_id, value_id) = (ids.next(), ids.next());
            Ok(json!({
                "type": "map",
                "key-id": key_id,
                "key": iceberg_type(kv[0].data_type(), ids, name)?,
                "value-id": value_id,
                "value": iceberg_type(kv[1].data_type(), ids, name)?,
                "value-required": !kv[1].is_nullable(),
            }))
        }
        D::Null => Err(IcebergError::Unsupported(format!(
            "column {name} of type NULL (give it a type with CAST)"
        ))),
        other => Err(IcebergError::Unsupported(format!(
            "column {name} of type {other}, which Iceberg tables cannot hold"
        ))),
    }
}

/// What `CREATE TABLE` asks for.
#[derive(Debug, Clone, Copy)]
pub struct NewTable<'a> {
    /// The columns.
    pub schema: &'a ArrowSchema,
    /// Trino's `partitioning` expressions (`'day(ts)'`, `'bucket(id, 16)'`); empty for none.
    pub partitioning: &'a [String],
    /// Table properties.
    pub properties: &'a BTreeMap<String, String>,
    /// The format version: 2 or 3.
    pub format_version: u8,
}

impl NewTable<'_> {
    /// The table as metadata spells its parts.
    pub fn definition(&self) -> Result<TableDefinition, IcebergError> {
        let (schema, last_column_id) = schema_from_arrow(self.schema)?;
        let fields = parse_partitioning(self.partitioning, &Schema::from_json(&schema)?)?;
        if !matches!(self.format_version, 2 | 3) {
            return Err(IcebergError::Unsupported(format!(
                "format version {}: Osprey creates tables of format versions 2 and 3",
                self.format_version
            )));
        }
        let mut properties = self.properties.clone();
        // How the REST protocol asks a server for a version (a reserved property, which the
        // metadata records as `format-version` instead).
        properties.insert(
            "format-version".to_string(),
            self.format_version.to_string(),
        );
        Ok(TableDefinition {
            schema,
            partition_spec: spec_json(0, &fields),
            last_column_id,
            properties,
            sort_order: None,
        })
    }
}

/// The first metadata of a table at `location` as `definition` describes it (its format
/// version in the property `format-version`, which the metadata takes out).
pub(super) fn first_metadata(location: &str, definition: &TableDefinition, now_ms: i64) -> Value {
    let last_partition_id = definition.partition_spec["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|field| field["field-id"].as_i64())
        .max()
        .unwrap_or(999);
    let sort_order = definition
        .sort_order
        .clone()
        .unwrap_or_else(|| json!({"order-id": 0, "fields": []}));
    let mut properties = definition.properties.clone();
    let format_version: u8 = properties
        .remove("format-version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let mut metadata = json!({
        "format-version": format_version,
        "table-uuid": uuid::Uuid::new_v4().to_string(),
        "location": location.trim_end_matches('/'),
        "last-sequence-number": 0,
        "last-updated-ms": now_ms,
        "last-column-id": definition.last_column_id,
        "current-schema-id": 0,
        "schemas": [definition.schema],
        "default-spec-id": 0,
        "partition-specs": [definition.partition_spec],
        "last-partition-id": last_partition_id,
        "default-sort-order-id": sort_order["order-id"],
        "sort-orders": [sort_order],
        "properties": properties,
        "refs": {},
        "snapshots": [],
        "snapshot-log": [],
        "metadata-log": [],
    });
    if format_version >= 3 {
        // Row lineage: the first row written gets id 0.
        metadata["next-row-id"] = json!(0);
    }
    metadata
}

/// Creates `namespace.name` in `catalog` as `table` asks. A catalog that keeps metadata files
/// itself (REST) is asked to create it; otherwise the first metadata file is written under the
/// catalog's default location for the table, in `store`, and registered.
pub async fn create_table(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    table: &NewTable<'_>,
    store: impl AsyncFnOnce(&str) -> Result<Arc<dyn ObjectStore>, IcebergError>,
) -> Result<(), IcebergError> {
    catalog.check_writable()?;
    let definition = table.definition()?;
    if catalog.writes_metadata() {
        return catalog.create_table(namespace, name, &definition).await;
    }
    let location = catalog.default_location(namespace, name).ok_or_else(|| {
        IcebergError::Catalog(
            "the catalog has no warehouse: attach it again with a warehouse property to create \
             tables in it"
                .to_string(),
        )
    })?;
    let metadata = first_metadata(&location, &definition, super::now_ms());
    let metadata_location = first_metadata_location(catalog, &location);
    let store = store(&location).await?;
    let path = StoreLocation::parse(&location)?.path_of(&metadata_location)?;
    let bytes = serde_json::to_vec_pretty(&metadata)
        .map_err(|err| IcebergError::Invalid(err.to_string()))?;
    let options = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    store
        .put_opts(&path, bytes.into(), options)
        .await
        .map_err(|err| IcebergError::Invalid(format!("cannot write {metadata_location}: {err}")))?;
    if let Err(err) = catalog
        .register_table(namespace, name, &metadata_location)
        .await
    {
        let _ = store.delete(&path).await;
        return Err(err);
    }
    Ok(())
}

/// Where the first metadata file of a table at `location` goes: `v1.metadata.json` for a
/// catalog that finds metadata by version, else `00000-<uuid>.metadata.json`.
pub(super) fn first_metadata_location(catalog: &dyn IcebergCatalog, location: &str) -> String {
    match catalog.versioned_metadata() {
        true => format!(
            "{}/metadata/v1.metadata.json",
            location.trim_end_matches('/')
        ),
        false => format!(
            "{}/metadata/00000-{}.metadata.json",
            location.trim_end_matches('/'),
            uuid::Uuid::new_v4()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Fields;

    #[test]
    fn arrow_schemas_get_fresh_ids_depth_first() {
        let schema = ArrowSchema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
            Field::new(
                "point",
                DataType::Struct(Fields::from(vec![Field::new("x", DataType::Float64, true)])),
                true,
            ),
        ]);
        let (json, last) = schema_from_arrow(&schema).unwrap();
        assert_eq!(last, 5);
        let parsed = crate::schema::Schema::from_json(&json).unwrap();
        assert_eq!(parsed.fields[0].id, 1);
        assert!(parsed.fields[0].required);
        assert_eq!(
            parsed.field_by_id(4).map(|f| f.name.as_str()),
            Some("element")
        );
        assert_eq!(parsed.field_by_id(5).map(|f| f.name.as_str()), Some("x"));
        let refused = schema_from_arrow(&ArrowSchema::new(vec![Field::new(
            "d",
            DataType::Duration(TimeUnit::Second),
            true,
        )]));
        assert!(matches!(refused, Err(IcebergError::Unsupported(_))));
    }
}
