//! Files whose schema conflicts with the table's stored schema get a clear error.
//!
//! An external table's schema is fixed at CREATE time, but files keep arriving under its
//! location. DataFusion adapts each file to the table schema and casts where Arrow can, so a
//! file whose `amount` became a string fails deep inside a scan with "cannot cast 'abc' to
//! Int64", naming neither the file nor the column. Before a Parquet table is scanned, the
//! coordinator compares each file's schema (from its footer, which DataFusion caches and also
//! reads for statistics) with the table's, and refuses the query with the file, the column and
//! both types named. Widening (INT32 to BIGINT, FLOAT to DOUBLE, string encodings, timestamp
//! units) and missing or extra columns are fine.

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use std::collections::HashSet;
use std::sync::Arc;

/// How many file footers are read at once.
const FOOTER_READS: usize = 16;

/// Wraps an external Parquet table: every scan first checks the files it will read.
#[derive(Debug)]
pub struct CheckedParquetTable {
    inner: Arc<dyn TableProvider>,
    name: String,
    url: ListingTableUrl,
    format: Arc<dyn FileFormat>,
    /// The stored schema without partition columns (what the files should hold).
    file_schema: SchemaRef,
}

impl CheckedParquetTable {
    /// Checks scans of `inner`, the table `name` at `url`, against `file_schema`.
    pub fn new(
        inner: Arc<dyn TableProvider>,
        name: String,
        url: ListingTableUrl,
        format: Arc<dyn FileFormat>,
        file_schema: SchemaRef,
    ) -> Self {
        Self {
            inner,
            name,
            url,
            format,
            file_schema,
        }
    }

    /// Checks the columns in `read` of every file `plan` scans.
    async fn check_files(
        &self,
        state: &dyn Session,
        plan: &Arc<dyn ExecutionPlan>,
        read: &HashSet<String>,
    ) -> Result<()> {
        let mut files: Vec<ObjectMeta> = Vec::new();
        plan.apply(|node| {
            if let Some(source) = node.downcast_ref::<DataSourceExec>()
                && let Some(config) = source.data_source().downcast_ref::<FileScanConfig>()
            {
                for group in &config.file_groups {
                    files.extend(group.iter().map(|file| file.object_meta.clone()));
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        // A file split into byte ranges appears once per range.
        files.sort_by(|a, b| a.location.cmp(&b.location));
        files.dedup_by(|a, b| a.location == b.location);
        if files.is_empty() {
            return Ok(());
        }
        let store = state.runtime_env().object_store(self.url.object_store())?;
        let checks = futures::stream::iter(files)
            .map(|file| {
                let store = Arc::clone(&store);
                async move {
                    let schema = self
                        .format
                        .infer_schema(state, &store, std::slice::from_ref(&file))
                        .await?;
                    self.check_file(&file, &schema, read)
                }
            })
            .buffer_unordered(FOOTER_READS);
        checks.try_collect::<Vec<()>>().await?;
        Ok(())
    }

    fn check_file(
        &self,
        file: &ObjectMeta,
        file_schema: &Schema,
        read: &HashSet<String>,
    ) -> Result<()> {
        for table_field in self.file_schema.fields() {
            if !read.contains(table_field.name()) {
                continue;
            }
            let Ok(found) = file_schema.field_with_name(table_field.name()) else {
                continue;
            };
            if !compatible(found.data_type(), table_field.data_type()) {
                return Err(DataFusionError::Plan(format!(
                    "file {} of table {} stores column {} as {}, but the table has {} (its schema \
                     was fixed when the table was created). Fix or remove the file, or recreate \
                     the table to infer the schema again (DROP TABLE, then CREATE EXTERNAL TABLE)",
                    file.location,
                    self.name,
                    table_field.name(),
                    found.data_type(),
                    table_field.data_type()
                )));
            }
        }
        Ok(())
    }
}

/// Whether values of a file's type read safely as the table's type: the same kind of value,
/// possibly wider or differently encoded.
pub fn compatible(file: &DataType, table: &DataType) -> bool {
    use DataType::*;
    if file == table {
        return true;
    }
    match (file, table) {
        (Dictionary(_, value), other) | (other, Dictionary(_, value)) => {
            compatible(other, value) || compatible(value, other)
        }
        (a, b) if a.is_integer() && b.is_integer() => true,
        (a, b) if a.is_integer() && (b.is_floating() || matches!(b, Decimal128(..))) => true,
        (a, b) if a.is_floating() && b.is_floating() => true,
        (Decimal128(..) | Decimal256(..), Decimal128(..) | Decimal256(..)) => true,
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView) => true,
        (Date32 | Date64, Date32 | Date64) => true,
        (Timestamp(..), Timestamp(..)) => true,
        (Time32(_) | Time64(_), Time32(_) | Time64(_)) => true,
        (
            List(a) | LargeList(a) | ListView(a) | LargeListView(a) | FixedSizeList(a, _),
            List(b) | LargeList(b) | ListView(b) | LargeListView(b) | FixedSizeList(b, _),
        ) => compatible(a.data_type(), b.data_type()),
        (Struct(a), Struct(b)) => b.iter().all(|field| {
            a.iter()
                .find(|f| f.name() == field.name())
                .is_none_or(|f| compatible(f.data_type(), field.data_type()))
        }),
        (Map(a, _), Map(b, _)) => compatible(a.data_type(), b.data_type()),
        _ => false,
    }
}

#[async_trait::async_trait]
impl TableProvider for CheckedParquetTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.inner.get_table_definition()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, projection, filters, limit).await?;
        // Only the columns this scan reads matter: a conflict in another column does not
        // change this query's answer.
        let schema = self.inner.schema();
        let mut read: HashSet<String> = match projection {
            Some(indices) => indices
                .iter()
                .filter_map(|&i| schema.fields().get(i).map(|f| f.name().clone()))
                .collect(),
            None => schema.fields().iter().map(|f| f.name().clone()).collect(),
        };
        for filter in filters {
            read.extend(filter.column_refs().into_iter().map(|c| c.name.clone()));
        }
        self.check_files(state, &plan, &read).await?;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::compatible;
    use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
    use std::sync::Arc;

    #[test]
    fn widening_and_encodings_are_compatible_and_kind_changes_are_not() {
        assert!(compatible(&DataType::Int32, &DataType::Int64));
        assert!(compatible(&DataType::Float32, &DataType::Float64));
        assert!(compatible(&DataType::Utf8View, &DataType::Utf8));
        assert!(compatible(
            &DataType::Timestamp(TimeUnit::Microsecond, None),
            &DataType::Timestamp(TimeUnit::Nanosecond, None)
        ));
        assert!(compatible(
            &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            &DataType::Utf8
        ));
        assert!(!compatible(&DataType::Utf8, &DataType::Int64));
        assert!(!compatible(&DataType::Float64, &DataType::Int64));
        assert!(!compatible(&DataType::Boolean, &DataType::Utf8));
        let point = |x: DataType| DataType::Struct(Fields::from(vec![Field::new("x", x, true)]));
        assert!(compatible(&point(DataType::Int32), &point(DataType::Int64)));
        assert!(!compatible(&point(DataType::Utf8), &point(DataType::Int64)));
        let list = |x: DataType| DataType::List(Arc::new(Field::new("item", x, true)));
        assert!(!compatible(&list(DataType::Utf8), &list(DataType::Int64)));
    }
}
