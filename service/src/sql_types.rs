//! SQL names of Arrow types: the one mapping every front door shows users (`DESCRIBE`,
//! `SHOW COLUMNS`, `information_schema.columns`, the HTTP API's `columns[].type`, the Trino
//! protocol's `columns[].type`).
//!
//! | Arrow | SQL |
//! |---|---|
//! | Boolean | `BOOLEAN` |
//! | Int8, Int16, Int32, Int64 | `TINYINT`, `SMALLINT`, `INTEGER`, `BIGINT` |
//! | UInt8, UInt16, UInt32 | `SMALLINT`, `INTEGER`, `BIGINT` (the next wider signed type) |
//! | UInt64 | `DECIMAL(20,0)` (no signed type holds every value) |
//! | Float16, Float32 / Float64 | `REAL` / `DOUBLE` |
//! | Decimal(p, s) | `DECIMAL(p,s)` |
//! | Utf8, LargeUtf8, Utf8View | `VARCHAR` |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | `VARBINARY` |
//! | Date32, Date64 | `DATE` |
//! | Time32/Time64 | `TIME(p)` (p = 0, 3, 6, 9 digits of fractions) |
//! | Timestamp(unit) | `TIMESTAMP(p)` |
//! | Timestamp(unit, tz) | `TIMESTAMP(p) WITH TIME ZONE` |
//! | Interval(YearMonth) / Interval(DayTime) | `INTERVAL YEAR TO MONTH` / `INTERVAL DAY TO SECOND` |
//! | List, LargeList, FixedSizeList | `ARRAY(T)` |
//! | Map | `MAP(K,V)` |
//! | Struct | `ROW(name T, ...)` |
//! | Null | `UNKNOWN` |
//! | Dictionary, RunEndEncoded | the value type |
//! | IntervalMonthDayNano | `INTERVAL` |
//! | anything else (Duration, Union) | `VARCHAR` (values are shown as text) |
//!
//! Trino's clients expect the same names in lower case ([`TypeNameCase::Lower`]); struct field
//! names keep their own case either way.

use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit};

/// How type names are spelt: SQL's upper case, or Trino's lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TypeNameCase {
    /// `DECIMAL(12,2)`, as Osprey's own doors show types.
    #[default]
    Upper,
    /// `decimal(12,2)`, as Trino's protocol and metadata tables name them.
    Lower,
}

/// The SQL name of an Arrow type (see the module table).
///
/// ```
/// use datafusion::arrow::datatypes::{DataType, TimeUnit};
/// use osprey_service::{TypeNameCase, sql_type_name};
///
/// assert_eq!(sql_type_name(&DataType::Decimal128(15, 2), TypeNameCase::Upper), "DECIMAL(15,2)");
/// assert_eq!(sql_type_name(&DataType::Utf8View, TypeNameCase::Upper), "VARCHAR");
/// let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
/// assert_eq!(sql_type_name(&ts, TypeNameCase::Upper), "TIMESTAMP(6) WITH TIME ZONE");
/// assert_eq!(sql_type_name(&ts, TypeNameCase::Lower), "timestamp(6) with time zone");
/// ```
pub fn sql_type_name(data_type: &DataType, case: TypeNameCase) -> String {
    let word = |upper: &str| match case {
        TypeNameCase::Upper => upper.to_string(),
        TypeNameCase::Lower => upper.to_ascii_lowercase(),
    };
    match data_type {
        DataType::Null => word("UNKNOWN"),
        DataType::Boolean => word("BOOLEAN"),
        DataType::Int8 => word("TINYINT"),
        DataType::Int16 | DataType::UInt8 => word("SMALLINT"),
        DataType::Int32 | DataType::UInt16 => word("INTEGER"),
        DataType::Int64 | DataType::UInt32 => word("BIGINT"),
        DataType::UInt64 => word("DECIMAL(20,0)"),
        DataType::Float16 | DataType::Float32 => word("REAL"),
        DataType::Float64 => word("DOUBLE"),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => word(&format!("DECIMAL({p},{s})")),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            word(&format!("DECIMAL({p},{s})"))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => word("VARCHAR"),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => word("VARBINARY"),
        DataType::Date32 | DataType::Date64 => word("DATE"),
        DataType::Time32(unit) | DataType::Time64(unit) => {
            word(&format!("TIME({})", time_precision(unit)))
        }
        DataType::Timestamp(unit, None) => word(&format!("TIMESTAMP({})", time_precision(unit))),
        DataType::Timestamp(unit, Some(_)) => word(&format!(
            "TIMESTAMP({}) WITH TIME ZONE",
            time_precision(unit)
        )),
        DataType::Interval(IntervalUnit::YearMonth) => word("INTERVAL YEAR TO MONTH"),
        DataType::Interval(IntervalUnit::DayTime) => word("INTERVAL DAY TO SECOND"),
        DataType::Interval(IntervalUnit::MonthDayNano) => word("INTERVAL"),
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::FixedSizeList(item, _) => {
            format!(
                "{}({})",
                word("ARRAY"),
                sql_type_name(item.data_type(), case)
            )
        }
        DataType::Map(entries, _) => match map_key_value(entries.data_type()) {
            Some((key, value)) => format!(
                "{}({},{})",
                word("MAP"),
                sql_type_name(key, case),
                sql_type_name(value, case)
            ),
            None => word("VARCHAR"),
        },
        DataType::Struct(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|field| {
                    format!(
                        "{} {}",
                        field.name(),
                        sql_type_name(field.data_type(), case)
                    )
                })
                .collect();
            format!("{}({})", word("ROW"), fields.join(", "))
        }
        DataType::Dictionary(_, value) => sql_type_name(value, case),
        DataType::RunEndEncoded(_, value) => sql_type_name(value.data_type(), case),
        _ => word("VARCHAR"),
    }
}

/// Digits of second fractions a time unit carries: the `p` of `TIMESTAMP(p)`.
pub fn time_precision(unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

/// The key and value types of a map's entries struct.
pub fn map_key_value(entries: &DataType) -> Option<(&DataType, &DataType)> {
    match entries {
        DataType::Struct(fields) if fields.len() == 2 => {
            Some((fields[0].data_type(), fields[1].data_type()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Fields};
    use std::sync::Arc;

    #[test]
    fn nested_types_keep_field_names_and_case_the_keywords() {
        let row = DataType::Struct(Fields::from(vec![
            Field::new("Name", DataType::Utf8, true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
                true,
            ),
        ]));
        assert_eq!(
            sql_type_name(&row, TypeNameCase::Upper),
            "ROW(Name VARCHAR, tags ARRAY(INTEGER))"
        );
        assert_eq!(
            sql_type_name(&row, TypeNameCase::Lower),
            "row(Name varchar, tags array(integer))"
        );
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert_eq!(sql_type_name(&dictionary, TypeNameCase::Upper), "VARCHAR");
    }
}
