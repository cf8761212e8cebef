//! Comparing answers of different engines: the same rows, whatever the row order, with numbers
//! equal within a small relative tolerance.
//!
//! Engines type results differently (DataFusion's `avg` of a decimal is a decimal, DuckDB's a
//! double; Spark widens decimals), so every numeric cell is compared as a number and every other
//! cell as its display text.

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// One cell of a canonical row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// Any integer, decimal or floating-point value.
    Number(f64),
    /// Everything else, as displayed (dates as `YYYY-MM-DD`, strings as they are).
    Text(String),
}

/// A result reduced to comparable rows, sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Number of columns.
    pub columns: usize,
    /// Rows, sorted by a rounded rendering so that engines' orders agree.
    pub rows: Vec<Vec<Cell>>,
}

/// Relative tolerance between numbers: decimal and floating-point sums of the same values
/// differ in the last digits, and engines round decimal divisions differently.
const RELATIVE_TOLERANCE: f64 = 1e-5;

impl Answer {
    /// Canonical form of a result.
    pub fn from_batches(batches: &[RecordBatch]) -> Self {
        let options = FormatOptions::default().with_null("NULL");
        let columns = batches.first().map(|b| b.num_columns()).unwrap_or(0);
        let mut rows = Vec::new();
        for batch in batches {
            let mut cells_by_column: Vec<Vec<Cell>> = Vec::with_capacity(batch.num_columns());
            for column in batch.columns() {
                cells_by_column.push(column_cells(column.as_ref(), &options));
            }
            for row in 0..batch.num_rows() {
                rows.push(
                    cells_by_column
                        .iter()
                        .map(|cells| cells[row].clone())
                        .collect(),
                );
            }
        }
        rows.sort_by_cached_key(|row: &Vec<Cell>| sort_key(row));
        Self { columns, rows }
    }

    /// Whether `other` is the same answer; on a difference, says where.
    pub fn compare(&self, other: &Answer) -> Result<(), String> {
        if self.rows.len() != other.rows.len() {
            return Err(format!(
                "{} rows, expected {}",
                other.rows.len(),
                self.rows.len()
            ));
        }
        if !self.rows.is_empty() && self.columns != other.columns {
            return Err(format!(
                "{} columns, expected {}",
                other.columns, self.columns
            ));
        }
        for (index, (expected, actual)) in self.rows.iter().zip(&other.rows).enumerate() {
            let same = expected.len() == actual.len()
                && expected.iter().zip(actual).all(|(e, a)| same_cell(e, a));
            if !same {
                return Err(format!(
                    "row {index} (sorted) is {}, expected {}",
                    render(actual),
                    render(expected)
                ));
            }
        }
        Ok(())
    }
}

fn column_cells(column: &dyn Array, options: &FormatOptions) -> Vec<Cell> {
    let numeric = column.data_type().is_numeric();
    if numeric && let Ok(as_float) = cast(column, &DataType::Float64) {
        let values = as_float
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Float64Array>()
            .expect("cast to Float64 gives a Float64Array");
        return (0..values.len())
            .map(|i| {
                if values.is_null(i) {
                    Cell::Null
                } else {
                    Cell::Number(values.value(i))
                }
            })
            .collect();
    }
    match ArrayFormatter::try_new(column, options) {
        Ok(formatter) => (0..column.len())
            .map(|i| {
                if column.is_null(i) {
                    Cell::Null
                } else {
                    Cell::Text(formatter.value(i).to_string())
                }
            })
            .collect(),
        Err(err) => vec![Cell::Text(format!("<unprintable: {err}>")); column.len()],
    }
}

fn sort_key(row: &[Cell]) -> String {
    row.iter()
        .map(|cell| match cell {
            Cell::Null => "\u{0}NULL".to_string(),
            // Rounded, so that 0.30000000000000004 and 0.3 sort alike.
            Cell::Number(v) => format!("{v:+024.2}"),
            Cell::Text(text) => text.trim_end().to_string(),
        })
        .collect::<Vec<_>>()
        .join("\u{1}")
}

fn same_cell(expected: &Cell, actual: &Cell) -> bool {
    match (expected, actual) {
        (Cell::Null, Cell::Null) => true,
        (Cell::Number(e), Cell::Number(a)) => {
            e == a
                || (e.is_nan() && a.is_nan())
                || (e - a).abs() <= RELATIVE_TOLERANCE * e.abs().max(a.abs()).max(1.0)
        }
        // CHAR columns come back space-padded from some engines.
        (Cell::Text(e), Cell::Text(a)) => e.trim_end() == a.trim_end(),
        _ => false,
    }
}

fn render(row: &[Cell]) -> String {
    let cells: Vec<String> = row
        .iter()
        .map(|cell| match cell {
            Cell::Null => "NULL".to_string(),
            Cell::Number(v) => format!("{v}"),
            Cell::Text(text) => format!("{text:?}"),
        })
        .collect();
    let text = format!("({})", cells.join(", "));
    if text.chars().count() > 200 {
        format!("{}...", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Date32Array, Decimal128Array, Float64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch(names: Vec<&str>, price: Arc<dyn Array>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("price", price.data_type().clone(), true),
            Field::new("day", DataType::Date32, true),
        ]));
        let days = Date32Array::from(vec![Some(9000); names.len()]);
        RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(names)), price, Arc::new(days)],
        )
        .unwrap()
    }

    #[test]
    fn decimal_and_double_answers_agree_in_any_order() {
        let decimals = Decimal128Array::from(vec![Some(12_345_678), Some(100)])
            .with_precision_and_scale(19, 6)
            .unwrap();
        let left = batch(vec!["b", "a"], Arc::new(decimals));
        let right = batch(
            vec!["a", "b"],
            Arc::new(Float64Array::from(vec![0.0001000000001, 12.345678])),
        );
        let expected = Answer::from_batches(&[left]);
        assert_eq!(expected.compare(&Answer::from_batches(&[right])), Ok(()));
    }

    #[test]
    fn a_different_value_is_reported_with_its_row() {
        let left = batch(vec!["a"], Arc::new(Float64Array::from(vec![1.0])));
        let right = batch(vec!["a"], Arc::new(Float64Array::from(vec![1.1])));
        let err = Answer::from_batches(&[left])
            .compare(&Answer::from_batches(&[right]))
            .unwrap_err();
        assert!(err.contains("1.1"), "{err}");
    }

    #[test]
    fn missing_rows_are_wrong() {
        let left = batch(vec!["a", "b"], Arc::new(Float64Array::from(vec![1.0, 2.0])));
        let right = batch(vec!["a"], Arc::new(Float64Array::from(vec![1.0])));
        assert!(
            Answer::from_batches(&[left])
                .compare(&Answer::from_batches(&[right]))
                .is_err()
        );
    }
}
