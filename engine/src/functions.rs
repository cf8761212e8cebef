//! SQL functions Osprey defines differently from DataFusion, registered on the coordinator and
//! on every executor (plans name functions, and each side looks them up by name).
//!
//! - `approx_distinct` returns `BIGINT`, as in Trino and Athena. DataFusion's returns an
//!   unsigned 64-bit integer, which SQL has no type for (clients saw `DECIMAL(20,0)`). The
//!   estimate is DataFusion's HyperLogLog; only the result type differs.
//! - `sum` of a `DECIMAL(p,s)` is a `DECIMAL(38,s)`, as in Trino, Athena and DuckDB.
//!   DataFusion's is `DECIMAL(p+10,s)` (Spark's rule): a Trino client would see another type
//!   for the same query. The sum is DataFusion's; only the result's precision differs.
//!   (`avg` of a decimal keeps DataFusion's `DECIMAL(p+4,s+4)`. Given Trino's `DECIMAL(p,s)`,
//!   DataFusion would truncate the average where Trino rounds it half up: another answer.
//!   Four more digits of the true average is the better one.)
//! - `iceberg_transform('<transform>', value)` computes Iceberg partition values in the
//!   executors that write a partitioned Iceberg table (`osprey_iceberg::partition_transform_udf`).

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DECIMAL128_MAX_PRECISION;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::SessionStateBuilder;
use datafusion::functions_aggregate::approx_distinct::approx_distinct_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Expr, GroupsAccumulator, Operator,
    ReversedUDAF, SetMonotonicity, Signature, StatisticsArgs,
};
use std::sync::Arc;

/// Adds Osprey's functions to a session being built, replacing DataFusion's of the same name.
pub fn with_osprey_functions(mut builder: SessionStateBuilder) -> SessionStateBuilder {
    // A builder without functions yet gets DataFusion's defaults first.
    let functions = builder
        .aggregate_functions()
        .get_or_insert_with(datafusion::functions_aggregate::all_default_aggregate_functions);
    functions.retain(|udaf| !matches!(udaf.name(), "approx_distinct" | "sum"));
    functions.push(Arc::new(AggregateUDF::from(ApproxDistinctBigint::new())));
    functions.push(Arc::new(AggregateUDF::from(DecimalSum38::new())));
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

/// `sum(x)` with a `DECIMAL(38,s)` result for a 128-bit decimal (see the module docs). Every
/// other part is DataFusion's `sum`, which sizes its accumulators by the result type given.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DecimalSum38 {
    inner: Arc<AggregateUDF>,
}

impl DecimalSum38 {
    fn new() -> Self {
        Self { inner: sum_udaf() }
    }
}

impl AggregateUDFImpl for DecimalSum38 {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(DataType::Decimal128(_, scale)) => {
                Ok(DataType::Decimal128(DECIMAL128_MAX_PRECISION, *scale))
            }
            _ => self.inner.return_type(arg_types),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.inner().create_sliding_accumulator(args)
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.inner().order_sensitivity()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.inner().set_monotonicity(data_type)
    }

    fn simplify_expr_op_literal(
        &self,
        agg_function: &AggregateFunction,
        arg: &Expr,
        op: Operator,
        lit: &Expr,
        arg_is_left: bool,
    ) -> Result<Option<Expr>> {
        self.inner
            .inner()
            .simplify_expr_op_literal(agg_function, arg, op, lit, arg_is_left)
    }

    fn value_from_stats(&self, statistics_args: &StatisticsArgs) -> Option<ScalarValue> {
        self.inner.inner().value_from_stats(statistics_args)
    }
}
