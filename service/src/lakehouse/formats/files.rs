//! Files at a location, read with DataFusion's file formats: Parquet, CSV and JSON. External
//! tables of any of them are read where the user keeps them; Parquet is also the format of the
//! tables Osprey owns (managed tables), whose files the catalog lists.

use super::TableFormat;
use crate::error::QueryError;
use crate::lakehouse::committed::CommittedCatalog;
use crate::lakehouse::tables::{
    ManagedTable, encode_schema, external_table, file_extension, file_format,
    split_partition_columns,
};
use crate::lakehouse::writes::{StagedWrite, delete_prefix};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::common::DataFusionError;
use datafusion::common::config::ConfigOptions;
use datafusion::datasource::listing::{ListingOptions, ListingTableUrl};
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{CreateExternalTable, LogicalPlan};
use osprey_catalog::{DataFile, TableDefinition, TableEntry, TableKind};
use osprey_engine::WriteFormat;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Parquet, CSV or JSON files.
#[derive(Debug)]
pub struct FilesFormat {
    name: &'static str,
}

impl FilesFormat {
    /// Parquet: external tables, and the tables Osprey owns.
    pub fn parquet() -> Self {
        Self { name: "parquet" }
    }

    /// CSV: external tables.
    pub fn csv() -> Self {
        Self { name: "csv" }
    }

    /// Newline-delimited JSON: external tables.
    pub fn json() -> Self {
        Self { name: "json" }
    }

    fn ownable(&self) -> bool {
        self.name == "parquet"
    }

    /// Writes `input` as Parquet under a new staging prefix of the owned table at `location`.
    /// The returned write deletes its files when dropped, unless marked published.
    async fn write_parquet(
        catalog: &CommittedCatalog,
        state: &SessionState,
        location: &str,
        input: LogicalPlan,
    ) -> Result<(StagedWrite, Vec<DataFile>), QueryError> {
        let write_id = uuid::Uuid::new_v4().to_string();
        let prefix = format!("{location}data/{write_id}/");
        let write =
            StagedWrite::begin(catalog, Arc::clone(state.runtime_env()), write_id, prefix).await?;
        let files = write.run(state, input, WriteFormat::Parquet).await?;
        Ok((write, files))
    }
}

#[async_trait::async_trait]
impl TableFormat for FilesFormat {
    fn name(&self) -> &str {
        self.name
    }

    async fn open(
        &self,
        entry: &TableEntry,
        files: Vec<DataFile>,
        config: &ConfigOptions,
        _runtime: &Arc<RuntimeEnv>,
    ) -> Result<Arc<dyn TableProvider>> {
        match entry.kind {
            TableKind::Managed if self.ownable() => Ok(Arc::new(ManagedTable::new(entry, files)?)),
            TableKind::External => external_table(entry, config),
            kind => Err(DataFusionError::Plan(format!(
                "{} is a {kind:?} entry stored as {}, which Osprey cannot read",
                entry.qualified_name(),
                self.name
            ))),
        }
    }

    async fn define_external(
        &self,
        state: &SessionState,
        location: &str,
        cmd: &CreateExternalTable,
    ) -> Result<TableDefinition, QueryError> {
        let options: BTreeMap<String, String> = cmd
            .options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let format = file_format(self.name, &options, state.config_options())?;
        let url = ListingTableUrl::parse(location)?;
        let table_schema = if cmd.schema.fields().is_empty() {
            let listing = ListingOptions::new(Arc::clone(&format))
                .with_file_extension(file_extension(format.as_ref())?);
            let files = listing
                .infer_schema(state, &url)
                .await
                .map_err(|err| storage_error(location, err))?;
            if files.fields().is_empty() {
                return Err(QueryError::InvalidStatement(format!(
                    "no {} files found under {location}: check the location, or declare the \
                     columns to create a table over a location that is empty for now",
                    self.name
                )));
            }
            let mut fields: Vec<Field> =
                files.fields().iter().map(|f| f.as_ref().clone()).collect();
            for column in &cmd.table_partition_cols {
                if files.field_with_name(column).is_ok() {
                    return Err(QueryError::InvalidStatement(format!(
                        "partition column {column} is also a column inside the files"
                    )));
                }
                fields.push(Field::new(column, DataType::Utf8, true));
            }
            Schema::new(fields)
        } else {
            cmd.schema.as_arrow().clone()
        };
        split_partition_columns(&table_schema, &cmd.table_partition_cols)?;
        Ok(TableDefinition {
            location: Some(location.to_string()),
            format: Some(self.name.to_string()),
            options,
            partition_columns: cmd.table_partition_cols.clone(),
            arrow_schema: encode_schema(&table_schema)?,
            ..TableDefinition::default()
        })
    }

    fn define_owned(&self, location: &str, schema: &Schema) -> Result<TableDefinition, QueryError> {
        if !self.ownable() {
            return Err(QueryError::NotSupported(format!(
                "tables that Osprey owns stored as {}: they are Parquet",
                self.name.to_uppercase()
            )));
        }
        Ok(TableDefinition {
            location: Some(location.to_string()),
            format: Some(self.name.to_string()),
            arrow_schema: encode_schema(schema)?,
            ..TableDefinition::default()
        })
    }

    async fn create_owned(
        &self,
        catalog: &CommittedCatalog,
        state: &SessionState,
        entry: TableEntry,
        input: Option<LogicalPlan>,
        replace: bool,
    ) -> Result<(Option<TableEntry>, u64), QueryError> {
        let Some(input) = input else {
            return Ok((catalog.create_table(entry, vec![], replace, None).await?, 0));
        };
        let location = entry.definition.location.clone().unwrap_or_default();
        let (write, files) = Self::write_parquet(catalog, state, &location, input).await?;
        let rows = files.iter().map(|f| f.row_count).sum();
        let replaced = catalog
            .create_table(entry, files, replace, Some(&write.write_id))
            .await?;
        write.published();
        Ok((replaced, rows))
    }

    async fn insert(
        &self,
        catalog: &CommittedCatalog,
        state: &SessionState,
        entry: &TableEntry,
        input: LogicalPlan,
    ) -> Result<u64, QueryError> {
        if entry.kind != TableKind::Managed {
            return Err(QueryError::NotSupported(format!(
                "INSERT into external table {}: Osprey does not change data it does not own \
                 (like Trino's Hive connector by default). Write a managed table with CREATE \
                 TABLE ... AS SELECT, or export files with UNLOAD",
                entry.qualified_name()
            )));
        }
        let location = entry.definition.location.clone().unwrap_or_default();
        let (write, files) = Self::write_parquet(catalog, state, &location, input).await?;
        let rows = files.iter().map(|f| f.row_count).sum();
        catalog
            .append_files(&entry.id, files, &write.write_id)
            .await?;
        write.published();
        Ok(rows)
    }

    async fn purge(&self, state: &SessionState, entry: &TableEntry) {
        if entry.kind != TableKind::Managed {
            return;
        }
        if let Some(location) = &entry.definition.location
            && let Err(err) = delete_prefix(state.runtime_env(), location).await
        {
            tracing::warn!(table = %entry.qualified_name(), %location, error = %err, "cannot delete a dropped table's files");
        }
    }
}

/// Storage errors while reading a location, with the location named.
fn storage_error(location: &str, err: DataFusionError) -> QueryError {
    let message = crate::error_text::plain_message(&err);
    match QueryError::from_ref(&err) {
        QueryError::PermissionDenied(_) => QueryError::PermissionDenied(format!(
            "cannot read {location}: {message}. Check the credentials in [[storage]] for this \
             location (or the environment of the coordinator and executors)"
        )),
        _ => QueryError::InvalidStatement(format!("cannot read {location}: {message}")),
    }
}
