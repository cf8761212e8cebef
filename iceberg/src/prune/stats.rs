//! What is known of the table's columns over a list of containers (manifests or data files),
//! as DataFusion's pruning predicate asks for it.

use datafusion::arrow::array::{ArrayRef, BooleanArray, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A top-level column that metrics can describe.
#[derive(Debug, Clone)]
pub(crate) struct ColumnSlot {
    /// Its name in the table's schema.
    pub name: String,
    /// Its Iceberg field id.
    pub field_id: i32,
    /// Its Iceberg type.
    pub iceberg: crate::schema::PrimitiveType,
    /// Its type in the table's schema.
    pub arrow: DataType,
}

/// What one container says of one column.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColumnBounds {
    pub min: Option<ScalarValue>,
    pub max: Option<ScalarValue>,
    pub nulls: Option<u64>,
}

impl ColumnBounds {
    /// Narrows the bounds with another lower bound (both hold, so the higher is tighter).
    pub fn raise_min(&mut self, min: Option<ScalarValue>) {
        self.min = tighter(self.min.take(), min, std::cmp::Ordering::Greater);
    }

    /// Narrows the bounds with another upper bound.
    pub fn lower_max(&mut self, max: Option<ScalarValue>) {
        self.max = tighter(self.max.take(), max, std::cmp::Ordering::Less);
    }
}

fn tighter(
    a: Option<ScalarValue>,
    b: Option<ScalarValue>,
    better: std::cmp::Ordering,
) -> Option<ScalarValue> {
    match (a, b) {
        (Some(a), Some(b)) => match b.partial_cmp(&a) {
            Some(order) if order == better => Some(b),
            _ => Some(a),
        },
        (a, b) => a.or(b),
    }
}

/// The containers, one row each.
pub(crate) struct Containers {
    columns: Arc<Vec<ColumnSlot>>,
    /// Per container: bounds by column index.
    bounds: Vec<HashMap<usize, ColumnBounds>>,
    rows: Vec<Option<u64>>,
}

impl Containers {
    pub fn new(columns: Arc<Vec<ColumnSlot>>) -> Self {
        Self {
            columns,
            bounds: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Adds a container: its bounds by column index, its rows when known.
    pub fn push(&mut self, bounds: HashMap<usize, ColumnBounds>, rows: Option<u64>) {
        self.bounds.push(bounds);
        self.rows.push(rows);
    }

    fn slot(&self, column: &Column) -> Option<(usize, &ColumnSlot)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, slot)| slot.name == column.name)
    }

    fn values(
        &self,
        column: &Column,
        pick: impl Fn(&ColumnBounds) -> Option<&ScalarValue>,
    ) -> Option<ArrayRef> {
        let (index, slot) = self.slot(column)?;
        let null = ScalarValue::try_from(&slot.arrow).ok()?;
        let values = self.bounds.iter().map(|bounds| {
            bounds
                .get(&index)
                .and_then(&pick)
                .and_then(|value| value.cast_to(&slot.arrow).ok())
                .unwrap_or_else(|| null.clone())
        });
        ScalarValue::iter_to_array(values).ok()
    }
}

impl PruningStatistics for Containers {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, |b| b.min.as_ref())
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, |b| b.max.as_ref())
    }

    fn num_containers(&self) -> usize {
        self.bounds.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let (index, _) = self.slot(column)?;
        Some(Arc::new(UInt64Array::from_iter(
            self.bounds
                .iter()
                .map(|bounds| bounds.get(&index).and_then(|b| b.nulls)),
        )))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter(self.rows.iter().copied())))
    }

    #[allow(clippy::mutable_key_type)] // the trait's signature
    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}
