//! The source values a partition value stands for: `day(ts) = 19000` covers that day's
//! timestamps, `truncate(10, id) = 40` the ids 40 to 49. A pruning statistic on the source
//! column then prunes by partition, whatever the transform, as Iceberg's "inclusive
//! projection" does; transforms with no range (bucket, void) do not prune.

use crate::partition::Transform;
use crate::schema::PrimitiveType;
use chrono::{Datelike, NaiveDate};
use datafusion::common::ScalarValue;

const MICROS_PER_HOUR: i64 = 3_600_000_000;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// The type of a partition field's values: the source type for identity and truncate, `int`
/// for the others.
pub(crate) fn result_type(transform: &Transform, source: PrimitiveType) -> Option<PrimitiveType> {
    match transform {
        Transform::Identity | Transform::Truncate(_) => Some(source),
        Transform::Bucket(_)
        | Transform::Year
        | Transform::Month
        | Transform::Day
        | Transform::Hour => Some(PrimitiveType::Int),
        Transform::Void | Transform::Unknown(_) => None,
    }
}

/// The lowest and highest source values that `value` (of the partition field) covers; `None`
/// where unknown.
pub(crate) fn source_range(
    transform: &Transform,
    source: PrimitiveType,
    value: &ScalarValue,
) -> (Option<ScalarValue>, Option<ScalarValue>) {
    match transform {
        Transform::Identity => (Some(value.clone()), Some(value.clone())),
        Transform::Truncate(width) => truncated(*width, value),
        Transform::Year | Transform::Month | Transform::Day | Transform::Hour => {
            let ScalarValue::Int32(Some(ordinal)) = value else {
                return (None, None);
            };
            match time_range(transform, source, i64::from(*ordinal)) {
                Some((low, high)) => (Some(low), Some(high)),
                None => (None, None),
            }
        }
        _ => (None, None),
    }
}

/// `truncate(W)`: numbers cover W values from the partition value; strings and binaries start
/// with it (so only the lower end is known).
fn truncated(width: u32, value: &ScalarValue) -> (Option<ScalarValue>, Option<ScalarValue>) {
    let high = match value {
        ScalarValue::Int32(Some(v)) => i32::try_from(width)
            .ok()
            .and_then(|w| v.checked_add(w - 1))
            .map(|h| ScalarValue::Int32(Some(h))),
        ScalarValue::Int64(Some(v)) => v
            .checked_add(i64::from(width) - 1)
            .map(|h| ScalarValue::Int64(Some(h))),
        ScalarValue::Decimal128(Some(v), precision, scale) => v
            .checked_add(i128::from(width) - 1)
            .map(|h| ScalarValue::Decimal128(Some(h), *precision, *scale)),
        _ => None,
    };
    (Some(value.clone()), high)
}

/// The first and last source value of year, month, day or hour number `ordinal` (counted from
/// 1970), for a date or timestamp source.
fn time_range(
    transform: &Transform,
    source: PrimitiveType,
    ordinal: i64,
) -> Option<(ScalarValue, ScalarValue)> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let day_of = |date: NaiveDate| date.signed_duration_since(epoch).num_days();
    let month_start = |months: i64| {
        let year = 1970 + months.div_euclid(12);
        let month = months.rem_euclid(12) as u32 + 1;
        NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, 1)
    };
    // The range as [first day, last day], or for hours as microseconds.
    let (first_day, last_day) = match transform {
        Transform::Year => {
            let start = NaiveDate::from_ymd_opt(i32::try_from(1970 + ordinal).ok()?, 1, 1)?;
            let next = NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)?;
            (day_of(start), day_of(next) - 1)
        }
        Transform::Month => (
            day_of(month_start(ordinal)?),
            day_of(month_start(ordinal + 1)?) - 1,
        ),
        Transform::Day => (ordinal, ordinal),
        Transform::Hour => {
            let start = ordinal.checked_mul(MICROS_PER_HOUR)?;
            return timestamps(source, start, start.checked_add(MICROS_PER_HOUR - 1)?);
        }
        _ => return None,
    };
    match source {
        PrimitiveType::Date => Some((
            ScalarValue::Date32(Some(i32::try_from(first_day).ok()?)),
            ScalarValue::Date32(Some(i32::try_from(last_day).ok()?)),
        )),
        _ => timestamps(
            source,
            first_day.checked_mul(MICROS_PER_DAY)?,
            (last_day + 1).checked_mul(MICROS_PER_DAY)? - 1,
        ),
    }
}

/// `[low, high]` microseconds as scalars of the timestamp type `source`.
fn timestamps(source: PrimitiveType, low: i64, high: i64) -> Option<(ScalarValue, ScalarValue)> {
    let utc = || Some(std::sync::Arc::from("+00:00"));
    Some(match source {
        PrimitiveType::Timestamp => (
            ScalarValue::TimestampMicrosecond(Some(low), None),
            ScalarValue::TimestampMicrosecond(Some(high), None),
        ),
        PrimitiveType::Timestamptz => (
            ScalarValue::TimestampMicrosecond(Some(low), utc()),
            ScalarValue::TimestampMicrosecond(Some(high), utc()),
        ),
        PrimitiveType::TimestampNs => (
            ScalarValue::TimestampNanosecond(Some(low.checked_mul(1000)?), None),
            ScalarValue::TimestampNanosecond(Some(high.checked_mul(1000)?.checked_add(999)?), None),
        ),
        PrimitiveType::TimestamptzNs => (
            ScalarValue::TimestampNanosecond(Some(low.checked_mul(1000)?), utc()),
            ScalarValue::TimestampNanosecond(
                Some(high.checked_mul(1000)?.checked_add(999)?),
                utc(),
            ),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_cover_their_source_ranges() {
        // Month 1 is February 1970: days 31 to 58.
        assert_eq!(
            source_range(
                &Transform::Month,
                PrimitiveType::Date,
                &ScalarValue::Int32(Some(1))
            ),
            (
                Some(ScalarValue::Date32(Some(31))),
                Some(ScalarValue::Date32(Some(58)))
            )
        );
        // Day 1 of timestamps: [86400 s, 172800 s) in microseconds.
        assert_eq!(
            source_range(
                &Transform::Day,
                PrimitiveType::Timestamp,
                &ScalarValue::Int32(Some(1))
            ),
            (
                Some(ScalarValue::TimestampMicrosecond(
                    Some(MICROS_PER_DAY),
                    None
                )),
                Some(ScalarValue::TimestampMicrosecond(
                    Some(2 * MICROS_PER_DAY - 1),
                    None
                ))
            )
        );
        // Year -1 is 1969.
        assert_eq!(
            source_range(
                &Transform::Year,
                PrimitiveType::Date,
                &ScalarValue::Int32(Some(-1))
            ),
            (
                Some(ScalarValue::Date32(Some(-365))),
                Some(ScalarValue::Date32(Some(-1)))
            )
        );
        assert_eq!(
            source_range(
                &Transform::Truncate(10),
                PrimitiveType::Long,
                &ScalarValue::Int64(Some(40))
            ),
            (
                Some(ScalarValue::Int64(Some(40))),
                Some(ScalarValue::Int64(Some(49)))
            )
        );
        assert_eq!(
            source_range(
                &Transform::Bucket(16),
                PrimitiveType::Long,
                &ScalarValue::Int32(Some(3))
            ),
            (None, None)
        );
    }
}
