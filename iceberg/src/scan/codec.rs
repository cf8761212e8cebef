//! Iceberg scans inside plans sent to executors.
//!
//! datafusion-proto encodes Parquet scans, but not a wrapped file source nor a scan's
//! expression adapter. [`ScanCodec`] encodes an Iceberg scan as the plain Parquet scan inside
//! it (datafusion-proto's bytes) plus what Iceberg adds (the deletes and the name mapping, as
//! JSON), and rebuilds both wrappers on the executor.

use super::deletes::ScanDeletes;
use super::field_ids::{FieldIdAdapterFactory, is_virtual};
use super::name_mapping::NameMapping;
use super::source::IcebergSource;
use datafusion::arrow::datatypes::FieldRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::bytes::{
    physical_plan_from_bytes_with_proto_converter, physical_plan_to_bytes_with_proto_converter,
};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What an Iceberg scan adds to the Parquet scan inside it.
#[derive(Serialize, Deserialize)]
struct ScanExtras {
    deletes: Arc<ScanDeletes>,
    name_mapping: Option<NameMapping>,
}

/// Encodes and decodes Iceberg scans (see the module docs).
#[derive(Debug, Default)]
pub struct ScanCodec;

impl ScanCodec {
    /// The Iceberg scan `node` is, if it is one.
    fn scan(node: &dyn ExecutionPlan) -> Option<(&FileScanConfig, &IcebergSource)> {
        let exec = node.downcast_ref::<DataSourceExec>()?;
        let config = exec.data_source().downcast_ref::<FileScanConfig>()?;
        let source = config.file_source().downcast_ref::<IcebergSource>()?;
        Some((config, source))
    }

    /// Whether `node` is an Iceberg scan.
    pub fn handles(node: &dyn ExecutionPlan) -> bool {
        Self::scan(node).is_some()
    }

    /// Appends the encoding of the Iceberg scan `node` to `buf`; `codec` encodes the rest.
    pub fn encode(
        node: &dyn ExecutionPlan,
        buf: &mut Vec<u8>,
        codec: &dyn PhysicalExtensionCodec,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let (config, source) = Self::scan(node).ok_or_else(|| {
            DataFusionError::Internal(format!("{} is not an Iceberg scan", node.name()))
        })?;
        let extras = serde_json::to_vec(&ScanExtras {
            deletes: Arc::clone(source.deletes()),
            name_mapping: source.name_mapping().map(|m| m.as_ref().clone()),
        })
        .map_err(|err| {
            DataFusionError::Internal(format!("cannot encode an Iceberg scan: {err}"))
        })?;
        let parquet = FileScanConfigBuilder::from(config.clone())
            .with_source(virtual_as_partition_columns(source.inner())?)
            .with_expr_adapter(None)
            .build();
        let parquet = physical_plan_to_bytes_with_proto_converter(
            DataSourceExec::from_data_source(parquet),
            codec,
            proto_converter,
        )?;
        buf.extend_from_slice(&(extras.len() as u64).to_le_bytes());
        buf.extend_from_slice(&extras);
        buf.extend_from_slice(&parquet);
        Ok(())
    }

    /// Rebuilds the Iceberg scan [`encode`](Self::encode) wrote.
    pub fn decode(
        buf: &[u8],
        ctx: &TaskContext,
        codec: &dyn PhysicalExtensionCodec,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let undecodable = || DataFusionError::Internal("an undecodable Iceberg scan".to_string());
        let (length, rest) = buf.split_first_chunk::<8>().ok_or_else(undecodable)?;
        let length = usize::try_from(u64::from_le_bytes(*length)).map_err(|_| undecodable())?;
        if rest.len() < length {
            return Err(undecodable());
        }
        let (extras, parquet) = rest.split_at(length);
        let extras: ScanExtras = serde_json::from_slice(extras).map_err(|err| {
            DataFusionError::Internal(format!("an undecodable Iceberg scan: {err}"))
        })?;
        let parquet =
            physical_plan_from_bytes_with_proto_converter(parquet, ctx, codec, proto_converter)?;
        let config = Self::parquet_config(parquet.as_ref()).ok_or_else(undecodable)?;
        let name_mapping = extras.name_mapping.map(Arc::new);
        let inner = partition_columns_as_virtual(config.file_source())?;
        let source =
            IcebergSource::new(inner, extras.deletes).with_name_mapping(name_mapping.clone());
        let config = FileScanConfigBuilder::from(config.clone())
            .with_source(Arc::new(source))
            .with_expr_adapter(Some(Arc::new(FieldIdAdapterFactory::new(name_mapping))))
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }

    fn parquet_config(plan: &dyn ExecutionPlan) -> Option<&FileScanConfig> {
        plan.downcast_ref::<DataSourceExec>()?
            .data_source()
            .downcast_ref::<FileScanConfig>()
    }
}

/// datafusion-proto keeps a scan's partition columns but not its virtual ones (the `_pos` of
/// `IcebergTable::with_row_ids`): they travel as trailing partition columns, whose fields
/// keep the extension type that marks them, and [`partition_columns_as_virtual`] moves them
/// back. Column indices are the same either way (virtual columns follow partition columns).
fn virtual_as_partition_columns(inner: &Arc<dyn FileSource>) -> Result<Arc<dyn FileSource>> {
    let table_schema = inner.table_schema();
    if table_schema.virtual_columns().is_empty() {
        return Ok(Arc::clone(inner));
    }
    let partition: Vec<FieldRef> = table_schema
        .table_partition_cols()
        .iter()
        .chain(table_schema.virtual_columns().iter())
        .cloned()
        .collect();
    let schema = TableSchema::builder(Arc::clone(table_schema.file_schema()))
        .with_table_partition_cols(partition)
        .build();
    rebuilt(inner, schema)
}

/// Undoes [`virtual_as_partition_columns`] on a decoded scan.
fn partition_columns_as_virtual(inner: &Arc<dyn FileSource>) -> Result<Arc<dyn FileSource>> {
    let table_schema = inner.table_schema();
    let (virtual_columns, partition): (Vec<FieldRef>, Vec<FieldRef>) = table_schema
        .table_partition_cols()
        .iter()
        .cloned()
        .partition(|field| is_virtual(field));
    if virtual_columns.is_empty() {
        return Ok(Arc::clone(inner));
    }
    let schema = TableSchema::builder(Arc::clone(table_schema.file_schema()))
        .with_table_partition_cols(partition)
        .with_virtual_columns(virtual_columns)
        .build();
    rebuilt(inner, schema)
}

/// The Parquet source `inner` over `schema` (the same columns in the same order), with its
/// options and projection. It has no predicate: scans with virtual columns filter above.
fn rebuilt(inner: &Arc<dyn FileSource>, schema: TableSchema) -> Result<Arc<dyn FileSource>> {
    let parquet = inner.downcast_ref::<ParquetSource>().ok_or_else(|| {
        DataFusionError::Internal("an Iceberg scan over a source that is not Parquet".into())
    })?;
    let source: Arc<dyn FileSource> = Arc::new(
        ParquetSource::new(schema)
            .with_table_parquet_options(parquet.table_parquet_options().clone()),
    );
    match inner.projection() {
        Some(projection) => source.try_pushdown_projection(projection)?.ok_or_else(|| {
            DataFusionError::Internal("a Parquet scan that refused its projection".into())
        }),
        None => Ok(source),
    }
}
