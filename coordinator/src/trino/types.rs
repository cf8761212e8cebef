//! Arrow types as Trino names them, and Arrow values as Trino's client protocol encodes them in
//! JSON.
//!
//! | Arrow | Trino | JSON value |
//! |---|---|---|
//! | Boolean | `boolean` | `true` |
//! | Int8, Int16, Int32, Int64 | `tinyint`, `smallint`, `integer`, `bigint` | number |
//! | UInt8, UInt16, UInt32 | `smallint`, `integer`, `bigint` (the next wider signed type) | number |
//! | UInt64 | `decimal(20,0)` | string |
//! | Float16, Float32 / Float64 | `real` / `double` | number, or `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | Decimal(p, s) | `decimal(p,s)` | string `"123.45"` |
//! | Utf8, LargeUtf8, Utf8View | `varchar` | string |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | `varbinary` | base64 string |
//! | Date32, Date64 | `date` | `"2024-02-29"` |
//! | Time32/Time64 | `time(p)` | `"13:14:15.123"` |
//! | Timestamp(unit) | `timestamp(p)` (p = 0, 3, 6, 9) | `"2024-02-29 13:14:15.123456"` |
//! | Timestamp(unit, tz) | `timestamp(p) with time zone` | `"2024-02-29 13:14:15.123 +01:00"` |
//! | Interval(YearMonth) | `interval year to month` | `"1-2"` |
//! | Interval(DayTime) | `interval day to second` | `"1 02:03:04.005"` |
//! | List, LargeList, FixedSizeList | `array(T)` | array |
//! | Map | `map(K,V)` | object (keys as strings) |
//! | Struct | `row(name T, ...)` | array of the fields' values |
//! | Null | `unknown` | `null` |
//! | Dictionary, RunEndEncoded | the value type | the value |
//! | anything else (IntervalMonthDayNano, Duration, Union) | `varchar` | Arrow's display text |

use base64::Engine as _;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    IntervalUnit, TimeUnit, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use osprey_service::{TypeNameCase, map_key_value, sql_type_name, time_precision as precision};
use serde_json::{Value, json};

/// Trino's length of an unbounded `varchar`.
const UNBOUNDED_VARCHAR: i64 = i32::MAX as i64;

/// The Trino type name of an Arrow type, as in `columns[].type`: `decimal(12,2)`,
/// `array(varchar)`, `timestamp(6) with time zone`. This is the SQL name every door shows
/// ([`osprey_service::sql_type_name`]), in Trino's lower case.
///
/// ```
/// use datafusion::arrow::datatypes::{DataType, TimeUnit};
/// use osprey_coordinator::trino_type_name;
///
/// assert_eq!(trino_type_name(&DataType::Decimal128(12, 2)), "decimal(12,2)");
/// assert_eq!(trino_type_name(&DataType::Timestamp(TimeUnit::Microsecond, None)), "timestamp(6)");
/// ```
pub fn trino_type_name(data_type: &DataType) -> String {
    match data_type {
        // Trino has no interval of months, days and nanoseconds: its values go as text.
        DataType::Interval(IntervalUnit::MonthDayNano) => "varchar".into(),
        _ => sql_type_name(data_type, TypeNameCase::Lower),
    }
}

/// The Trino type signature of an Arrow type, as in `columns[].typeSignature`: the raw type
/// and its arguments (lengths, precisions, element types, named row fields).
pub fn trino_type_signature(data_type: &DataType) -> Value {
    let long = |value: i64| json!({"kind": "LONG", "value": value});
    let nested =
        |data_type: &DataType| json!({"kind": "TYPE", "value": trino_type_signature(data_type)});
    let (raw, arguments): (&str, Vec<Value>) = match data_type {
        DataType::UInt64 => ("decimal", vec![long(20), long(0)]),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => {
            ("decimal", vec![long(*p as i64), long(*s as i64)])
        }
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            ("decimal", vec![long(*p as i64), long(*s as i64)])
        }
        DataType::Time32(unit) | DataType::Time64(unit) => ("time", vec![long(precision(unit))]),
        DataType::Timestamp(unit, None) => ("timestamp", vec![long(precision(unit))]),
        DataType::Timestamp(unit, Some(_)) => {
            ("timestamp with time zone", vec![long(precision(unit))])
        }
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::FixedSizeList(item, _) => ("array", vec![nested(item.data_type())]),
        DataType::Map(entries, _) => match map_key_value(entries.data_type()) {
            Some((key, value)) => ("map", vec![nested(key), nested(value)]),
            None => ("varchar", vec![long(UNBOUNDED_VARCHAR)]),
        },
        DataType::Struct(fields) => (
            "row",
            fields
                .iter()
                .map(|field| {
                    json!({"kind": "NAMED_TYPE", "value": {
                        "fieldName": {"name": field.name(), "delimited": false},
                        "typeSignature": trino_type_signature(field.data_type()),
                    }})
                })
                .collect(),
        ),
        DataType::Dictionary(_, value) => return trino_type_signature(value),
        DataType::RunEndEncoded(_, value) => return trino_type_signature(value.data_type()),
        other => {
            let name = trino_type_name(other);
            return if name == "varchar" {
                json!({"rawType": "varchar", "arguments": [long(UNBOUNDED_VARCHAR)]})
            } else {
                json!({"rawType": name, "arguments": []})
            };
        }
    };
    json!({"rawType": raw, "arguments": arguments})
}

/// The values of `array` as Trino encodes them in a result's `data` (see the module table).
///
/// ```
/// use datafusion::arrow::array::{ArrayRef, Int32Array};
/// use osprey_coordinator::trino_json_values;
/// use std::sync::Arc;
///
/// let column: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None]));
/// assert_eq!(trino_json_values(&column).unwrap(), vec![serde_json::json!(1), serde_json::Value::Null]);
/// ```
pub fn trino_json_values(array: &ArrayRef) -> Result<Vec<Value>, ArrowError> {
    let mut values = non_null_values(array)?;
    if array.logical_null_count() > 0
        && let Some(nulls) = array.logical_nulls()
    {
        for (value, valid) in values.iter_mut().zip(nulls.iter()) {
            if !valid {
                *value = Value::Null;
            }
        }
    }
    Ok(values)
}

/// The values of `array`, ignoring its nulls (the caller blanks them).
fn non_null_values(array: &ArrayRef) -> Result<Vec<Value>, ArrowError> {
    let numbers = |values: Vec<Value>| Ok(values);
    match array.data_type() {
        DataType::Null => Ok(vec![Value::Null; array.len()]),
        DataType::Boolean => numbers(array.as_boolean().iter().map(|v| json!(v)).collect()),
        DataType::Int8 => numbers(ints(array.as_primitive::<Int8Type>().values())),
        DataType::Int16 => numbers(ints(array.as_primitive::<Int16Type>().values())),
        DataType::Int32 => numbers(ints(array.as_primitive::<Int32Type>().values())),
        DataType::Int64 => numbers(ints(array.as_primitive::<Int64Type>().values())),
        DataType::UInt8 => numbers(ints(array.as_primitive::<UInt8Type>().values())),
        DataType::UInt16 => numbers(ints(array.as_primitive::<UInt16Type>().values())),
        DataType::UInt32 => numbers(ints(array.as_primitive::<UInt32Type>().values())),
        // decimal(20,0): Trino sends decimals as strings.
        DataType::UInt64 => numbers(
            array
                .as_primitive::<UInt64Type>()
                .values()
                .iter()
                .map(|v| Value::String(v.to_string()))
                .collect(),
        ),
        DataType::Float16 => numbers(
            array
                .as_primitive::<Float16Type>()
                .values()
                .iter()
                .map(|v| float(v.to_f64()))
                .collect(),
        ),
        DataType::Float32 => numbers(
            array
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|v| float(f64::from(*v)))
                .collect(),
        ),
        DataType::Float64 => numbers(
            array
                .as_primitive::<Float64Type>()
                .values()
                .iter()
                .map(|v| float(*v))
                .collect(),
        ),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let strings = cast(array, &DataType::Utf8)?;
            numbers(
                strings
                    .as_string::<i32>()
                    .iter()
                    .map(|v| Value::String(v.unwrap_or_default().to_string()))
                    .collect(),
            )
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => {
            let bytes = cast(array, &DataType::LargeBinary)?;
            let engine = base64::engine::general_purpose::STANDARD;
            numbers(
                bytes
                    .as_binary::<i64>()
                    .iter()
                    .map(|v| Value::String(engine.encode(v.unwrap_or_default())))
                    .collect(),
            )
        }
        DataType::Interval(IntervalUnit::YearMonth) => numbers(
            array
                .as_primitive::<datafusion::arrow::datatypes::IntervalYearMonthType>()
                .values()
                .iter()
                .map(|months| {
                    let sign = if *months < 0 { "-" } else { "" };
                    let months = months.unsigned_abs();
                    Value::String(format!("{sign}{}-{}", months / 12, months % 12))
                })
                .collect(),
        ),
        DataType::Interval(IntervalUnit::DayTime) => numbers(
            array
                .as_primitive::<datafusion::arrow::datatypes::IntervalDayTimeType>()
                .values()
                .iter()
                .map(|interval| {
                    let total =
                        i64::from(interval.days) * 86_400_000 + i64::from(interval.milliseconds);
                    let sign = if total < 0 { "-" } else { "" };
                    let ms = total.unsigned_abs();
                    Value::String(format!(
                        "{sign}{} {:02}:{:02}:{:02}.{:03}",
                        ms / 86_400_000,
                        ms / 3_600_000 % 24,
                        ms / 60_000 % 60,
                        ms / 1000 % 60,
                        ms % 1000
                    ))
                })
                .collect(),
        ),
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let items = trino_json_values(list.values())?;
            numbers(split_by_offsets(
                &items,
                list.value_offsets().iter().map(|o| *o as usize),
            ))
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            let items = trino_json_values(list.values())?;
            numbers(split_by_offsets(
                &items,
                list.value_offsets().iter().map(|o| *o as usize),
            ))
        }
        DataType::FixedSizeList(_, size) => {
            let list = array.as_fixed_size_list();
            let items = trino_json_values(list.values())?;
            let size = (*size).max(0) as usize;
            numbers(
                (0..list.len())
                    .map(|row| {
                        let start = (list.offset() + row) * size;
                        Value::Array(items.get(start..start + size).unwrap_or(&[]).to_vec())
                    })
                    .collect(),
            )
        }
        DataType::Struct(_) => {
            let row = array.as_struct();
            let mut fields = row
                .columns()
                .iter()
                .map(|field| trino_json_values(field).map(Vec::into_iter))
                .collect::<Result<Vec<_>, _>>()?;
            numbers(
                (0..row.len())
                    .map(|_| {
                        Value::Array(
                            fields
                                .iter_mut()
                                .map(|field| field.next().unwrap_or(Value::Null))
                                .collect(),
                        )
                    })
                    .collect(),
            )
        }
        DataType::Map(..) => {
            let map = array.as_map();
            let keys = trino_json_values(map.keys())?;
            let values = trino_json_values(map.values())?;
            let offsets: Vec<usize> = map.value_offsets().iter().map(|o| *o as usize).collect();
            numbers(
                offsets
                    .windows(2)
                    .map(|range| {
                        let object = (range[0]..range[1])
                            .map(|i| {
                                let key = match &keys[i] {
                                    Value::String(key) => key.clone(),
                                    other => other.to_string(),
                                };
                                (key, values[i].clone())
                            })
                            .collect();
                        Value::Object(object)
                    })
                    .collect(),
            )
        }
        DataType::Dictionary(_, value) => non_null_values(&cast(array, value)?),
        DataType::RunEndEncoded(_, value) => non_null_values(&cast(array, value.data_type())?),
        other => formatted(array, other),
    }
}

fn ints<T: Copy + Into<i64>>(values: &[T]) -> Vec<Value> {
    values.iter().map(|v| json!((*v).into())).collect()
}

fn float(value: f64) -> Value {
    if value.is_nan() {
        Value::String("NaN".into())
    } else if value.is_infinite() {
        Value::String(if value > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        json!(value)
    }
}

fn split_by_offsets(items: &[Value], offsets: impl Iterator<Item = usize>) -> Vec<Value> {
    let offsets: Vec<usize> = offsets.collect();
    offsets
        .windows(2)
        .map(|range| Value::Array(items.get(range[0]..range[1]).unwrap_or(&[]).to_vec()))
        .collect()
}

/// Temporal and decimal values (and anything without a Trino equivalent) through Arrow's
/// formatter, with Trino's layouts.
fn formatted(array: &ArrayRef, data_type: &DataType) -> Result<Vec<Value>, ArrowError> {
    let fraction = |unit: &TimeUnit| match unit {
        TimeUnit::Second => "",
        TimeUnit::Millisecond => "%.3f",
        TimeUnit::Microsecond => "%.6f",
        TimeUnit::Nanosecond => "%.9f",
    };
    let (timestamp, time) = match data_type {
        DataType::Timestamp(unit, _) => (
            format!("%Y-%m-%d %H:%M:%S{}", fraction(unit)),
            "%H:%M:%S".to_string(),
        ),
        DataType::Time32(unit) | DataType::Time64(unit) => (
            "%Y-%m-%d %H:%M:%S".to_string(),
            format!("%H:%M:%S{}", fraction(unit)),
        ),
        _ => ("%Y-%m-%d %H:%M:%S".to_string(), "%H:%M:%S".to_string()),
    };
    let timestamp_tz = format!("{timestamp} %:z");
    let options = FormatOptions::new()
        .with_date_format(Some("%Y-%m-%d"))
        .with_timestamp_format(Some(&timestamp))
        .with_timestamp_tz_format(Some(&timestamp_tz))
        .with_time_format(Some(&time));
    let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
    (0..array.len())
        .map(|i| formatter.value(i).try_to_string().map(Value::String))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Date32Array, Decimal128Array, Float64Array, ListArray, StringArray, StructArray,
        TimestampMicrosecondArray, UInt64Array,
    };
    use datafusion::arrow::datatypes::{Field, Fields};
    use std::sync::Arc;

    #[test]
    fn names_and_signatures_follow_trino() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        assert_eq!(trino_type_name(&list), "array(varchar)");
        assert_eq!(
            trino_type_signature(&list),
            json!({"rawType": "array", "arguments": [{"kind": "TYPE", "value":
                {"rawType": "varchar", "arguments": [{"kind": "LONG", "value": 2147483647}]}}]})
        );
        let row = DataType::Struct(Fields::from(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("y", DataType::Decimal128(5, 2), true),
        ]));
        assert_eq!(trino_type_name(&row), "row(x bigint, y decimal(5,2))");
        assert_eq!(
            trino_type_signature(&row)["arguments"][1]["value"]["typeSignature"],
            json!({"rawType": "decimal", "arguments": [{"kind": "LONG", "value": 5}, {"kind": "LONG", "value": 2}]})
        );
        let tz = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        assert_eq!(trino_type_name(&tz), "timestamp(3) with time zone");
        assert_eq!(
            trino_type_signature(&tz)["rawType"],
            "timestamp with time zone"
        );
        assert_eq!(trino_type_name(&DataType::UInt64), "decimal(20,0)");
    }

    #[test]
    fn values_are_encoded_like_trino() {
        let check = |array: ArrayRef, expected: Value| {
            assert_eq!(Value::Array(trino_json_values(&array).unwrap()), expected);
        };
        check(
            Arc::new(Float64Array::from(vec![
                Some(1.5),
                Some(f64::NAN),
                None,
                Some(f64::NEG_INFINITY),
            ])),
            json!([1.5, "NaN", null, "-Infinity"]),
        );
        check(
            Arc::new(UInt64Array::from(vec![u64::MAX])),
            json!(["18446744073709551615"]),
        );
        check(
            Arc::new(
                Decimal128Array::from(vec![Some(12345), None])
                    .with_precision_and_scale(7, 2)
                    .unwrap(),
            ),
            json!(["123.45", null]),
        );
        check(
            Arc::new(Date32Array::from(vec![19782])),
            json!(["2024-02-29"]),
        );
        check(
            Arc::new(TimestampMicrosecondArray::from(vec![1_709_212_455_123_456])),
            json!(["2024-02-29 13:14:15.123456"]),
        );
        check(
            Arc::new(
                TimestampMicrosecondArray::from(vec![1_709_212_455_123_456])
                    .with_timezone("+01:00"),
            ),
            json!(["2024-02-29 14:14:15.123456 +01:00"]),
        );
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
            Some(vec![]),
        ]);
        check(Arc::new(list), json!([[1, null], null, []]));
        let row = StructArray::from(vec![
            (
                Arc::new(Field::new("a", DataType::Utf8, true)),
                Arc::new(StringArray::from(vec!["x"])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("b", DataType::Float64, true)),
                Arc::new(Float64Array::from(vec![2.0])) as ArrayRef,
            ),
        ]);
        check(Arc::new(row), json!([["x", 2.0]]));
    }
}
