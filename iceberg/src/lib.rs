//! The Apache Iceberg table spec for Osprey (<https://iceberg.apache.org/spec/>), format
//! versions 1, 2 and 3.
//!
//! Why Osprey implements the spec itself: no release of iceberg-rust fits. `iceberg` 0.10.1
//! and its catalog crates need arrow/parquet 58, and `iceberg-datafusion` 0.10.1 needs
//! DataFusion 53, while Osprey is on DataFusion 55 / arrow 59 (which `datafusion-distributed`
//! 4.0 requires). iceberg-rust also reads no v3 deletion vectors and writes no position
//! deletes. Linking it would add a second arrow/parquet stack. Revisit when an iceberg-rust
//! release is built on DataFusion 55 or later.
//!
//! The spec is followed field by field, with the Java implementation and pyiceberg as the
//! references for behaviour. Built on well-kept pieces: `serde_json` for table metadata;
//! `apache-avro` for manifests and `roaring` for deletion vectors come with the readers.
//!
//! This first part reads table metadata files ([`TableMetadata`]): schemas and their types as
//! Arrow types with field ids ([`Schema::to_arrow`]), partition specs with their transforms,
//! snapshots and refs; and a snapshot's manifest list and manifests ([`read_manifest_list`],
//! [`read_manifest`]): its data and delete files with their sequence numbers, read from
//! storage with the manifests in parallel ([`snapshot_files`]), and which delete files may
//! apply to a data file by sequence number ([`SnapshotFiles::deletes_for`]). Anything the spec defines that Osprey cannot read yet is refused by
//! name ([`IcebergError::Unsupported`]), never read wrongly.

mod avro_fields;
mod catalog;
mod error;
mod load;
mod manifest;
mod manifest_metrics;
mod metadata;
mod metadata_tables;
mod partition;
mod partitions_table;
mod plan;
mod prune;
mod scan;
mod schema;
#[cfg(test)]
mod testing;
mod transform;
mod updates;
mod write;

pub use catalog::{
    GlueCatalog, GlueCatalogConfig, HadoopCatalog, IcebergCatalog, LoadedTable, RestCatalog,
    RestCatalogConfig, SqlCatalog, TableCommit, TableCredentials, TableDefinition,
};
pub use error::IcebergError;
pub use load::{is_metadata_file, metadata_location, read_metadata, table_root};
pub use manifest::{
    DataFile, EntryStatus, FieldSummary, FileContent, FileMetrics, ManifestContent, ManifestCounts,
    ManifestEntry, ManifestFile, read_manifest, read_manifest_list,
};
pub use metadata::{Snapshot, SnapshotRef, SnapshotRefKind, TableMetadata};
pub use metadata_tables::MetadataTable;
pub use partition::{PartitionField, PartitionSpec, Transform};
pub use plan::{
    LiveFile, ManifestCache, SnapshotFiles, manifest_files, snapshot_files, snapshot_manifests,
};
pub use scan::codec::ScanCodec;
pub use scan::deletes::{DataFileDeletes, DeleteFile, DeleteKind, ScanDeletes, encode_vector};
pub use scan::field_ids::FieldIdAdapterFactory;
pub use scan::location::StoreLocation;
pub use scan::name_mapping::{MappedField, NAME_MAPPING_PROPERTY, NameMapping};
pub use scan::source::IcebergSource;
pub use scan::table::{
    FILE_COLUMN, IcebergTable, LAST_UPDATED_COLUMN, LAST_UPDATED_FIELD_ID, POSITION_COLUMN,
    ROW_ID_COLUMN, ROW_ID_FIELD_ID, row_lineage_fields, row_lineage_values,
};
pub use schema::{FIELD_ID_KEY, NestedField, PrimitiveType, Schema, Type};
pub use transform::{partition_transform_udf, result_arrow_type, transform_text};
pub use updates::{TableRequirement, TableUpdate, next_metadata, unmet};
pub use write::{
    AppendOutcome, BranchRef, ColumnChange, CommittedTable, CompactionPlan, ExpiryOutcome,
    NewDataFile, NewTable, OrphanOutcome, PositionDeleteFile, RefChange, Replacement, Rewrite,
    RowDelta, TableAlteration, WriteMode, WritePartitionField, WrittenMetrics, alter_table,
    append as append_files, check_writable, commit_replacement, commit_requested, commit_rewrite,
    commit_row_delta, create_requested, create_table, drop_ref, expire_snapshots, fast_forward,
    parquet_metrics, plan_compaction, position_delete_schema, prepare_replacement,
    remove_orphan_files, replace_partitions, requested_definition, rewrite_manifests,
    schema_from_arrow, set_ref, write_spec,
};
