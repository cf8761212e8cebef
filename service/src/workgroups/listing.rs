//! `SHOW WORKGROUPS`: its columns and the plan over each workgroup's limits and queue.

use super::admission::WorkgroupStatus;
use crate::admin_sql::listing_plan;
use crate::error::QueryError;
use datafusion::arrow::array::{BooleanArray, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::LogicalPlan;
use std::sync::Arc;

/// The columns of `SHOW WORKGROUPS`.
pub fn listing_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("workgroup_name", DataType::Utf8, false),
        Field::new("is_default", DataType::Boolean, false),
        Field::new("max_concurrent_queries", DataType::UInt64, false),
        Field::new("max_queued_queries", DataType::UInt64, false),
        Field::new("query_timeout_secs", DataType::UInt64, true),
        Field::new("max_scan_bytes", DataType::UInt64, true),
        Field::new("query_memory_bytes", DataType::UInt64, true),
        Field::new("managed_by", DataType::Utf8, false),
        Field::new("running_queries", DataType::UInt64, false),
        Field::new("queued_queries", DataType::UInt64, false),
    ]))
}

/// `SHOW WORKGROUPS`: each workgroup's limits (NULL: none, or for the time limit the
/// coordinator's) and its queries running and waiting now.
pub(super) fn listing(status: &[WorkgroupStatus]) -> Result<LogicalPlan, QueryError> {
    let schema = listing_schema();
    let numbers = |value: fn(&WorkgroupStatus) -> Option<u64>| {
        Arc::new(UInt64Array::from_iter(status.iter().map(value)))
    };
    listing_plan(
        "workgroups",
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                status.iter().map(|s| &s.record.name),
            )),
            Arc::new(BooleanArray::from_iter(
                status.iter().map(|s| Some(s.is_default)),
            )),
            numbers(|s| Some(s.record.max_concurrent_queries)),
            numbers(|s| Some(s.record.max_queued_queries)),
            numbers(|s| s.record.query_timeout_secs),
            numbers(|s| s.record.max_scan_bytes),
            numbers(|s| s.record.query_memory_bytes),
            Arc::new(StringArray::from_iter_values(
                status.iter().map(|s| s.record.managed_by.as_str()),
            )),
            numbers(|s| Some(s.running)),
            numbers(|s| Some(s.queued)),
        ],
    )
}
