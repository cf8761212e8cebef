//! Partition transforms applied to column values (spec: "Partition Transforms"), as a write
//! computes each row's partition: `bucket[N]` by the spec's 32-bit Murmur3 hash, `truncate[W]`,
//! and `year`, `month`, `day` and `hour` counted from 1970 in UTC.
//!
//! The SQL function [`partition_transform_udf`] (`iceberg_transform('day', ts)`) applies them
//! inside a distributed plan, so each executor partitions the rows it writes. It is registered
//! on the coordinator and every executor, as plans name functions.

use crate::partition::Transform;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, Date32Array, Int32Array, StringArray, new_null_array,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, FieldRef, Int32Type, Int64Type,
    Time64MicrosecondType, TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use std::sync::Arc;

const MICROS_PER_HOUR: i64 = 3_600_000_000;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// The Arrow type of `transform`'s values for a source column of type `source`; `None` when
/// the transform does not apply to that type.
pub fn result_arrow_type(transform: &Transform, source: &DataType) -> Option<DataType> {
    use DataType as D;
    let temporal = matches!(source, D::Date32 | D::Timestamp(TimeUnit::Microsecond, _));
    match transform {
        Transform::Identity | Transform::Void => Some(source.clone()),
        Transform::Bucket(_) => matches!(
            source,
            D::Int32
                | D::Int64
                | D::Date32
                | D::Time64(TimeUnit::Microsecond)
                | D::Timestamp(TimeUnit::Microsecond, _)
                | D::Utf8
                | D::Utf8View
                | D::LargeUtf8
                | D::Binary
                | D::FixedSizeBinary(_)
                | D::Decimal128(_, _)
        )
        .then_some(D::Int32),
        Transform::Truncate(_) => matches!(
            source,
            D::Int32 | D::Int64 | D::Utf8 | D::Binary | D::Decimal128(_, _)
        )
        .then(|| source.clone()),
        Transform::Year | Transform::Month => temporal.then_some(D::Int32),
        Transform::Day => temporal.then_some(D::Date32),
        Transform::Hour => {
            matches!(source, D::Timestamp(TimeUnit::Microsecond, _)).then_some(D::Int32)
        }
        Transform::Unknown(_) => None,
    }
}

/// `transform` of each value of `values`; nulls stay null.
pub fn apply(transform: &Transform, values: &ArrayRef) -> Result<ArrayRef> {
    let unsupported = || {
        plan_err!(
            "the partition transform {} does not apply to values of type {}",
            transform_text(transform),
            values.data_type()
        )
    };
    if result_arrow_type(transform, values.data_type()).is_none() {
        return unsupported();
    }
    Ok(match transform {
        Transform::Identity => Arc::clone(values),
        Transform::Void => new_null_array(values.data_type(), values.len()),
        Transform::Bucket(n) => Arc::new(bucket(values, *n)?),
        Transform::Truncate(width) => truncate(values, *width)?,
        Transform::Year | Transform::Month | Transform::Day | Transform::Hour => {
            temporal(transform, values)?
        }
        Transform::Unknown(_) => return unsupported(),
    })
}

/// A transform as metadata spells it (`bucket[16]`, `day`).
pub fn transform_text(transform: &Transform) -> String {
    match transform {
        Transform::Identity => "identity".to_string(),
        Transform::Bucket(n) => format!("bucket[{n}]"),
        Transform::Truncate(width) => format!("truncate[{width}]"),
        Transform::Year => "year".to_string(),
        Transform::Month => "month".to_string(),
        Transform::Day => "day".to_string(),
        Transform::Hour => "hour".to_string(),
        Transform::Void => "void".to_string(),
        Transform::Unknown(text) => text.clone(),
    }
}

/// The spec's bucket hash: 32-bit Murmur3 (x86, seed 0) of the value's bytes (integers,
/// dates, times and timestamps as an 8-byte little-endian long; strings as UTF-8; decimals
/// as their unscaled value's shortest big-endian two's complement), then
/// `(hash & i32::MAX) % n`. The `murmur3` crate is the hash iceberg-rust uses too.
fn bucket(values: &ArrayRef, n: u32) -> Result<Int32Array> {
    fn hash(bytes: &[u8]) -> i32 {
        // Reading from a slice cannot fail.
        murmur3::murmur3_32(&mut &bytes[..], 0).unwrap_or(0) as i32
    }
    let of_long = |v: i64| hash(&v.to_le_bytes());
    let hashes: Vec<Option<i32>> = match values.data_type() {
        DataType::Int32 => values
            .as_primitive::<Int32Type>()
            .iter()
            .map(|v| v.map(|v| of_long(i64::from(v))))
            .collect(),
        DataType::Date32 => values
            .as_primitive::<Date32Type>()
            .iter()
            .map(|v| v.map(|v| of_long(i64::from(v))))
            .collect(),
        DataType::Int64 => values
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(of_long))
            .collect(),
        DataType::Time64(_) => values
            .as_primitive::<Time64MicrosecondType>()
            .iter()
            .map(|v| v.map(of_long))
            .collect(),
        DataType::Timestamp(_, _) => values
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|v| v.map(of_long))
            .collect(),
        DataType::Utf8 => values
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|v| hash(v.as_bytes())))
            .collect(),
        DataType::LargeUtf8 => values
            .as_string::<i64>()
            .iter()
            .map(|v| v.map(|v| hash(v.as_bytes())))
            .collect(),
        DataType::Utf8View => values
            .as_string_view()
            .iter()
            .map(|v| v.map(|v| hash(v.as_bytes())))
            .collect(),
        DataType::Binary => values
            .as_binary::<i32>()
            .iter()
            .map(|v| v.map(hash))
            .collect(),
        DataType::FixedSizeBinary(_) => values
            .as_fixed_size_binary()
            .iter()
            .map(|v| v.map(hash))
            .collect(),
        DataType::Decimal128(_, _) => values
            .as_primitive::<Decimal128Type>()
            .iter()
            .map(|v| v.map(|v| hash(&decimal_bytes(v))))
            .collect(),
        other => return exec_err!("bucket of {other}"),
    };
    let n = n as i32;
    Ok(hashes
        .into_iter()
        .map(|h| h.map(|h| (h & i32::MAX) % n))
        .collect())
}

/// A decimal's unscaled value in the fewest big-endian two's-complement bytes that hold it
/// (spec, Appendix D).
pub(crate) fn decimal_bytes(unscaled: i128) -> Vec<u8> {
    let bytes = unscaled.to_be_bytes();
    let fill = if unscaled < 0 { 0xff } else { 0 };
    // Drop leading fill bytes while the next byte's sign bit still says the same sign.
    let mut start = 0;
    while start < 15 && bytes[start] == fill && (bytes[start + 1] & 0x80) == (fill & 0x80) {
        start += 1;
    }
    bytes[start..].to_vec()
}

/// `truncate[W]`: integers and decimals down to a multiple of W (toward negative infinity),
/// strings to W code points, binaries to W bytes.
fn truncate(values: &ArrayRef, width: u32) -> Result<ArrayRef> {
    let w = i128::from(width);
    let down = |v: i128| v - (((v % w) + w) % w);
    Ok(match values.data_type() {
        DataType::Int32 => Arc::new(
            values
                .as_primitive::<Int32Type>()
                .unary::<_, Int32Type>(|v| down(i128::from(v)) as i32),
        ),
        DataType::Int64 => Arc::new(
            values
                .as_primitive::<Int64Type>()
                .unary::<_, Int64Type>(|v| down(i128::from(v)) as i64),
        ),
        DataType::Decimal128(_, _) => Arc::new(
            values
                .as_primitive::<Decimal128Type>()
                .unary::<_, Decimal128Type>(down)
                .with_data_type(values.data_type().clone()),
        ),
        DataType::Utf8 => Arc::new(
            values
                .as_string::<i32>()
                .iter()
                .map(|v| {
                    v.map(|v| match v.char_indices().nth(width as usize) {
                        Some((end, _)) => &v[..end],
                        None => v,
                    })
                })
                .collect::<StringArray>(),
        ),
        DataType::Binary => Arc::new(
            values
                .as_binary::<i32>()
                .iter()
                .map(|v| v.map(|v| &v[..v.len().min(width as usize)]))
                .collect::<BinaryArray>(),
        ),
        other => return exec_err!("truncate of {other}"),
    })
}

/// `year`, `month`, `day` or `hour` of dates and timestamps (microseconds; UTC for
/// timestamps with a zone, as their values are).
fn temporal(transform: &Transform, values: &ArrayRef) -> Result<ArrayRef> {
    let days: Vec<Option<i64>>;
    let micros: Option<Vec<Option<i64>>>;
    match values.data_type() {
        DataType::Date32 => {
            days = values
                .as_primitive::<Date32Type>()
                .iter()
                .map(|v| v.map(i64::from))
                .collect();
            micros = None;
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let all: Vec<Option<i64>> = values
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .collect();
            days = all
                .iter()
                .map(|v| v.map(|v| v.div_euclid(MICROS_PER_DAY)))
                .collect();
            micros = Some(all);
        }
        other => return exec_err!("{} of {other}", transform_text(transform)),
    }
    let ordinal = |value: Option<i64>| value.and_then(|v| i32::try_from(v).ok());
    Ok(match transform {
        Transform::Day => Arc::new(days.into_iter().map(ordinal).collect::<Date32Array>()),
        Transform::Hour => {
            let Some(micros) = micros else {
                return exec_err!("hour of a date");
            };
            Arc::new(
                micros
                    .into_iter()
                    .map(|v| ordinal(v.map(|v| v.div_euclid(MICROS_PER_HOUR))))
                    .collect::<Int32Array>(),
            )
        }
        Transform::Year | Transform::Month => {
            let by_month = *transform == Transform::Month;
            Arc::new(
                days.into_iter()
                    .map(|day| {
                        let date = chrono::DateTime::from_timestamp(day? * 86_400, 0)?;
                        use chrono::Datelike;
                        let years = i64::from(date.year()) - 1970;
                        ordinal(Some(match by_month {
                            true => years * 12 + i64::from(date.month0()),
                            false => years,
                        }))
                    })
                    .collect::<Int32Array>(),
            )
        }
        _ => return exec_err!("{} is not a time transform", transform_text(transform)),
    })
}

/// The SQL function `iceberg_transform('<transform>', value)`: the partition value of `value`
/// under a transform spelt as metadata spells it (see the module docs).
pub fn partition_transform_udf() -> ScalarUDF {
    ScalarUDF::from(PartitionTransform {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PartitionTransform {
    signature: Signature,
}

impl PartitionTransform {
    fn transform_of(argument: Option<&ScalarValue>) -> Result<Transform> {
        match argument {
            Some(ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text))) => {
                Transform::parse(text).map_err(|err| DataFusionError::Plan(err.to_string()))
            }
            _ => plan_err!("iceberg_transform takes the transform as a string literal"),
        }
    }
}

impl ScalarUDFImpl for PartitionTransform {
    fn name(&self) -> &str {
        "iceberg_transform"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        // The type depends on the transform: see `return_field_from_args`.
        Err(DataFusionError::Internal(
            "iceberg_transform's type depends on its arguments".to_string(),
        ))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let transform = Self::transform_of(args.scalar_arguments.first().copied().flatten())?;
        let source = args.arg_fields[1].data_type();
        let Some(result) = result_arrow_type(&transform, source) else {
            return plan_err!(
                "the partition transform {} does not apply to values of type {source}",
                transform_text(&transform)
            );
        };
        Ok(Arc::new(Field::new(self.name(), result, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let transform = match &args.args[0] {
            ColumnarValue::Scalar(scalar) => Self::transform_of(Some(scalar))?,
            ColumnarValue::Array(_) => {
                return plan_err!("iceberg_transform takes the transform as a string literal");
            }
        };
        let values = args.args[1].to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(apply(&transform, &values)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, FixedSizeBinaryArray, Int64Array};

    fn first_bucket(values: ArrayRef) -> i32 {
        // With N = i32::MAX the bucket is the hash's non-negative part, as the spec's table
        // lists hashes: compare `hash & i32::MAX`.
        apply(&Transform::Bucket(i32::MAX as u32), &values)
            .unwrap()
            .as_primitive::<Int32Type>()
            .value(0)
    }

    #[test]
    fn bucket_hashes_match_the_specs_examples() {
        let expect = |hash: i32| (hash & i32::MAX) % i32::MAX;
        assert_eq!(
            first_bucket(Arc::new(Int32Array::from(vec![34]))),
            expect(2017239379)
        );
        assert_eq!(
            first_bucket(Arc::new(Int64Array::from(vec![34]))),
            expect(2017239379)
        );
        // 2017-11-16
        assert_eq!(
            first_bucket(Arc::new(Date32Array::from(vec![17486]))),
            expect(-653330422)
        );
        // 2017-11-16T22:31:08
        let ts =
            datafusion::arrow::array::TimestampMicrosecondArray::from(vec![1_510_871_468_000_000]);
        assert_eq!(first_bucket(Arc::new(ts)), expect(-2047944441));
        assert_eq!(
            first_bucket(Arc::new(StringArray::from(vec!["iceberg"]))),
            expect(1210000089)
        );
        let uuid = uuid::Uuid::parse_str("f79c3e09-677c-4bbd-a479-3f349cb785e7").unwrap();
        let uuids = FixedSizeBinaryArray::try_from_iter([uuid.as_bytes().to_vec()].into_iter());
        assert_eq!(first_bucket(Arc::new(uuids.unwrap())), expect(1488055340));
        assert_eq!(
            first_bucket(Arc::new(BinaryArray::from(vec![&[0u8, 1, 2, 3][..]]))),
            expect(-188683207)
        );
        let decimal = Decimal128Array::from(vec![1420]).with_precision_and_scale(9, 2);
        assert_eq!(first_bucket(Arc::new(decimal.unwrap())), expect(-500754589));
    }

    #[test]
    fn truncate_and_time_transforms_round_toward_negative_infinity() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(-1), Some(10), None]));
        let truncated = apply(&Transform::Truncate(10), &ints).unwrap();
        let truncated: Vec<Option<i64>> = truncated.as_primitive::<Int64Type>().iter().collect();
        assert_eq!(truncated, vec![Some(0), Some(-10), Some(10), None]);
        let text: ArrayRef = Arc::new(StringArray::from(vec!["iceberg", "ice", "ßäöü€"]));
        let cut = apply(&Transform::Truncate(3), &text).unwrap();
        let cut: Vec<Option<&str>> = cut.as_string::<i32>().iter().collect();
        assert_eq!(cut, vec![Some("ice"), Some("ice"), Some("ßäö")]);

        // 1969-12-31T23:00:00 and 2017-11-16T22:31:08.
        let ts: ArrayRef = Arc::new(datafusion::arrow::array::TimestampMicrosecondArray::from(
            vec![-MICROS_PER_HOUR, 1_510_871_468_000_000],
        ));
        let of = |transform: Transform| -> Vec<i32> {
            let out = apply(&transform, &ts).unwrap();
            match out.data_type() {
                DataType::Date32 => out.as_primitive::<Date32Type>().values().to_vec(),
                _ => out.as_primitive::<Int32Type>().values().to_vec(),
            }
        };
        assert_eq!(of(Transform::Year), vec![-1, 47]);
        assert_eq!(of(Transform::Month), vec![-1, 47 * 12 + 10]);
        assert_eq!(of(Transform::Day), vec![-1, 17486]);
        assert_eq!(of(Transform::Hour), vec![-1, 419686]);
        assert_eq!(decimal_bytes(1420), vec![0x05, 0x8c]);
        assert_eq!(decimal_bytes(-1), vec![0xff]);
        assert_eq!(decimal_bytes(128), vec![0x00, 0x80]);
    }
}
