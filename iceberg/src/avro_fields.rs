//! Reading Avro's generic values by field name, as manifests and manifest lists are read: a
//! missing field and a null union branch both read as null.

use apache_avro::types::Value;

/// The field `name` of `record`; null when it has none.
pub(crate) fn field_or_null<'a>(record: &'a Value, name: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    match record {
        Value::Record(fields) => fields
            .iter()
            .find(|(field, _)| field == name)
            .map_or(&NULL, |(_, value)| value),
        _ => &NULL,
    }
}

/// The value inside a union (the value itself otherwise).
pub(crate) fn unwrap_union(value: &Value) -> &Value {
    match value {
        Value::Union(_, inner) => inner,
        other => other,
    }
}
