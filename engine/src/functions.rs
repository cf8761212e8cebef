//! SQL functions Osprey defines differently from DataFusion, registered on the coordinator and
//! on every executor (plans name functions, and each side looks them up by name).
//!
//! - `approx_distinct` returns `BIGINT`, as in Trino and Athena. DataFusion's returns an
//!   unsigned 64-bit integer, which SQL has no type for (clients saw `DECIMAL(20,0)`). The
//!   estimate is DataFusion's HyperLogLog; only the result type differs.
//! - `iceberg_transform('<transform>', value)` computes Iceberg partition values in the
//!   executors that write a partitioned Iceberg table (`osprey_iceberg::partition_transform_udf`).

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::SessionStateBuilder;
use datafusion::functions_aggregate::approx_distinct::approx_distinct_udaf;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature};
use std::sync::Arc;

/// Adds Osprey's functions to a session being built, replacing DataFusion's of the same name.
pub fn with_osprey_functions(mut builder: SessionStateBuilder) -> SessionStateBuilder {
    // A builder without functions yet gets DataFusion's defaults first.
    let functions = builder
        .aggregate_functions()
        .get_or_insert_with(datafusion::functions_aggregate::all_default_aggregate_functions);
    functions.retain(|udaf| udaf.name() != "approx_distinct");
    functions.push(Arc::new(AggregateUDF::from(ApproxDistinctBigint::new())));
    let scalars = builder
        .scalar_functions()
        .get_or_insert_with(datafusion::execution::SessionStateDefaults::default_scalar_functions);
    scalars.push(Arc::new(osprey_iceberg::partition_transform_udf()));
    builder
}

/// `approx_distinct(x)` as `BIGINT` (see the module docs).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ApproxDistinctBigint {
    inner: Arc<AggregateUDF>,
}

impl ApproxDistinctBigint {
    fn new() -> Self {
        Self {
            inner: approx_distinct_udaf(),
        }
    }
}

impl AggregateUDFImpl for ApproxDistinctBigint {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn default_value(&self, _: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.inner().state_fields(args)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SignedCount(self.inner.accumulator(args)?)))
    }
}

/// DataFusion's accumulator, its estimate given as a signed count.
#[derive(Debug)]
struct SignedCount(Box<dyn Accumulator>);

impl Accumulator for SignedCount {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0.update_batch(values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(match self.0.evaluate()? {
            // A count of distinct values never nears 2^63.
            ScalarValue::UInt64(count) => {
                ScalarValue::Int64(count.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
            }
            other => other.cast_to(&DataType::Int64)?,
        })
    }

    fn size(&self) -> usize {
        self.0.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.0.merge_batch(states)
    }
}
