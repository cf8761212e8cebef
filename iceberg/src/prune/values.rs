//! Iceberg's single-value binary serialization (spec, Appendix D) read into DataFusion
//! scalars: the encoding of column bounds, partition field summaries and (as Osprey keeps
//! them) partition values.

use crate::schema::PrimitiveType;
use datafusion::common::ScalarValue;
use std::sync::Arc;

/// The value `bytes` holds for a field of type `ty`; `None` when it does not read (a bound
/// that does not read only means less pruning).
pub(crate) fn decode(ty: PrimitiveType, bytes: &[u8]) -> Option<ScalarValue> {
    let utc = || Some(Arc::from("+00:00"));
    Some(match ty {
        PrimitiveType::Boolean => ScalarValue::Boolean(Some(*bytes.first()? != 0)),
        PrimitiveType::Int => ScalarValue::Int32(Some(i32::from_le_bytes(bytes.try_into().ok()?))),
        // A column widened from int keeps the 4-byte bounds of its older files.
        PrimitiveType::Long => ScalarValue::Int64(Some(long(bytes)?)),
        PrimitiveType::Float => {
            ScalarValue::Float32(Some(f32::from_le_bytes(bytes.try_into().ok()?)))
        }
        PrimitiveType::Double => ScalarValue::Float64(Some(match bytes.len() {
            4 => f64::from(f32::from_le_bytes(bytes.try_into().ok()?)),
            _ => f64::from_le_bytes(bytes.try_into().ok()?),
        })),
        PrimitiveType::Date => {
            ScalarValue::Date32(Some(i32::from_le_bytes(bytes.try_into().ok()?)))
        }
        PrimitiveType::Time => ScalarValue::Time64Microsecond(Some(long(bytes)?)),
        PrimitiveType::Timestamp => ScalarValue::TimestampMicrosecond(Some(long(bytes)?), None),
        PrimitiveType::Timestamptz => ScalarValue::TimestampMicrosecond(Some(long(bytes)?), utc()),
        PrimitiveType::TimestampNs => ScalarValue::TimestampNanosecond(Some(long(bytes)?), None),
        PrimitiveType::TimestamptzNs => ScalarValue::TimestampNanosecond(Some(long(bytes)?), utc()),
        PrimitiveType::String => ScalarValue::Utf8(Some(String::from_utf8(bytes.to_vec()).ok()?)),
        PrimitiveType::Uuid if bytes.len() == 16 => {
            ScalarValue::FixedSizeBinary(16, Some(bytes.to_vec()))
        }
        PrimitiveType::Fixed(length) if bytes.len() == length as usize => {
            ScalarValue::FixedSizeBinary(length, Some(bytes.to_vec()))
        }
        PrimitiveType::Binary => ScalarValue::Binary(Some(bytes.to_vec())),
        PrimitiveType::Decimal { precision, scale } => {
            ScalarValue::Decimal128(Some(unscaled(bytes)?), precision, scale)
        }
        _ => return None,
    })
}

fn long(bytes: &[u8]) -> Option<i64> {
    match bytes.len() {
        4 => Some(i64::from(i32::from_le_bytes(bytes.try_into().ok()?))),
        _ => Some(i64::from_le_bytes(bytes.try_into().ok()?)),
    }
}

/// A decimal's unscaled value: big-endian two's complement in as few bytes as fit.
fn unscaled(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_read_as_the_spec_serializes_them() {
        assert_eq!(
            decode(PrimitiveType::Int, &7i32.to_le_bytes()),
            Some(ScalarValue::Int32(Some(7)))
        );
        assert_eq!(
            decode(PrimitiveType::Long, &(-3i32).to_le_bytes()),
            Some(ScalarValue::Int64(Some(-3))),
            "widened from int"
        );
        assert_eq!(
            decode(
                PrimitiveType::Decimal {
                    precision: 10,
                    scale: 2
                },
                &[0xff, 0x38]
            ),
            Some(ScalarValue::Decimal128(Some(-200), 10, 2))
        );
        assert_eq!(
            decode(PrimitiveType::String, b"abc"),
            Some(ScalarValue::Utf8(Some("abc".into())))
        );
        assert_eq!(decode(PrimitiveType::Int, &[1, 2]), None);
        assert_eq!(decode(PrimitiveType::Uuid, &[1, 2]), None);
    }
}
