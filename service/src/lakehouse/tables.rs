//! The table providers the built-in formats open: external tables (DataFusion's listing table
//! over a location), managed tables (Parquet files the catalog lists) and views (stored SQL,
//! planned when a query reads them).

use crate::auth::Principal;
use crate::error::QueryError;
use crate::policy::{PolicyContext, PolicySubject, RoleSelection, ViewSecurity};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::config::{ConfigFileType, ConfigOptions, TableOptions};
use datafusion::common::{Column, DataFusionError};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl, PartitionedFile,
};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use osprey_catalog::{DataFile, SecuredObject, TableDefinition, TableEntry, TableKind};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Encodes a schema for [`TableDefinition::arrow_schema`]: an Arrow IPC stream holding only
/// the schema message, base64.
pub fn encode_schema(schema: &Schema) -> Result<String> {
    use base64::Engine;
    let mut bytes = Vec::new();
    {
        let mut writer = StreamWriter::try_new(&mut bytes, schema)?;
        writer.finish()?;
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Decodes [`encode_schema`]'s output.
pub fn decode_schema(encoded: &str) -> Result<SchemaRef> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|err| DataFusionError::Internal(format!("stored schema is not base64: {err}")))?;
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    Ok(reader.schema())
}

/// The file formats tables can be stored as.
pub fn file_format(
    format: &str,
    options: &BTreeMap<String, String>,
    config: &ConfigOptions,
) -> Result<Arc<dyn FileFormat>> {
    let mut table_options = TableOptions::default_from_session_config(config);
    let file_type = match format {
        "parquet" => ConfigFileType::PARQUET,
        "csv" => ConfigFileType::CSV,
        "json" => ConfigFileType::JSON,
        other => {
            return Err(DataFusionError::Plan(format!(
                "unsupported format {other:?}: use STORED AS PARQUET, CSV or JSON"
            )));
        }
    };
    table_options.set_config_format(file_type);
    let options: HashMap<String, String> = options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    table_options.alter_with_string_hash_map(&options)?;
    Ok(match format {
        "parquet" => Arc::new(ParquetFormat::default().with_options(table_options.parquet)),
        "csv" => Arc::new(CsvFormat::default().with_options(table_options.csv)),
        _ => Arc::new(JsonFormat::default().with_options(table_options.json)),
    })
}

/// The extension listing keeps: `.parquet`, `.csv`, `.csv.gz`, `.json`, ...
pub fn file_extension(format: &dyn FileFormat) -> Result<String> {
    let ext = match format.compression_type() {
        Some(compression) => format.get_ext_with_compression(&compression)?,
        None => format.get_ext(),
    };
    Ok(format!(".{ext}"))
}

/// The table schema without its partition columns (what the files hold), and the partition
/// columns with their types.
pub fn split_partition_columns(
    table_schema: &Schema,
    partition_columns: &[String],
) -> Result<(SchemaRef, Vec<(String, DataType)>)> {
    let mut partitions = Vec::new();
    for name in partition_columns {
        let field = table_schema.field_with_name(name).map_err(|_| {
            DataFusionError::Plan(format!(
                "partition column {name} is not a column of the table"
            ))
        })?;
        partitions.push((name.clone(), field.data_type().clone()));
    }
    let file_fields: Vec<_> = table_schema
        .fields()
        .iter()
        .filter(|f| !partition_columns.contains(f.name()))
        .cloned()
        .collect();
    Ok((Arc::new(Schema::new(file_fields)), partitions))
}

/// An external table: DataFusion's listing table over the location, with the schema fixed at
/// CREATE time (no inference when it is read).
pub fn external_table(
    entry: &TableEntry,
    config: &ConfigOptions,
) -> Result<Arc<dyn TableProvider>> {
    let definition = &entry.definition;
    let format = file_format(
        definition.format.as_deref().unwrap_or("parquet"),
        &definition.options,
        config,
    )?;
    let table_schema = decode_schema(&definition.arrow_schema)?;
    let (file_schema, partitions) =
        split_partition_columns(&table_schema, &definition.partition_columns)?;
    let extension = file_extension(format.as_ref())?;
    let options = ListingOptions::new(Arc::clone(&format))
        .with_file_extension(extension)
        .with_table_partition_cols(partitions);
    let location = definition.location.as_deref().unwrap_or_default();
    let url = ListingTableUrl::parse(location)?;
    let config = ListingTableConfig::new(url.clone())
        .with_listing_options(options)
        .with_schema(Arc::clone(&file_schema));
    let table: Arc<dyn TableProvider> =
        Arc::new(ListingTable::try_new(config)?.with_definition(Some(show_create(entry))));
    if definition.format.as_deref().unwrap_or("parquet") == "parquet" {
        return Ok(Arc::new(super::schema_check::CheckedParquetTable::new(
            table,
            entry.qualified_name(),
            url,
            format,
            file_schema,
        )));
    }
    Ok(table)
}

/// A managed table: Parquet files listed by the catalog. Nothing is listed in storage, so a
/// file is part of the table exactly when the catalog says so.
#[derive(Debug)]
pub struct ManagedTable {
    schema: SchemaRef,
    location: String,
    files: Vec<DataFile>,
    definition: String,
}

impl ManagedTable {
    /// The table `entry` with its committed `files`.
    pub fn new(entry: &TableEntry, files: Vec<DataFile>) -> Result<Self> {
        Ok(Self {
            schema: decode_schema(&entry.definition.arrow_schema)?,
            location: entry.definition.location.clone().unwrap_or_default(),
            files,
            definition: show_create(entry),
        })
    }
}

#[async_trait::async_trait]
impl TableProvider for ManagedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_table_definition(&self) -> Option<&str> {
        Some(&self.definition)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // The physical optimizer pushes them into the Parquet scan (statistics pruning); a
        // filter above the scan still applies them exactly.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.files.is_empty() {
            let schema = match projection {
                Some(indices) => Arc::new(self.schema.project(indices)?),
                None => Arc::clone(&self.schema),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let url = url::Url::parse(&self.location).map_err(|err| {
            DataFusionError::Plan(format!("bad table location {}: {err}", self.location))
        })?;
        let store_url = ObjectStoreUrl::parse(&url[..url::Position::BeforePath])?;
        // Spread the files over the target partitions; the distributed planner then splits
        // the groups over tasks.
        let groups_wanted = state
            .config()
            .target_partitions()
            .max(1)
            .min(self.files.len());
        let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups_wanted];
        for (index, file) in self.files.iter().enumerate() {
            groups[index % groups_wanted]
                .push(PartitionedFile::new(file.path.clone(), file.size_bytes));
        }
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let source = format.file_source(TableSchema::from(Arc::clone(&self.schema)));
        let config = FileScanConfigBuilder::new(store_url, source)
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }
}

/// A view: its SQL is planned each time a query reads it, so it always sees the current
/// tables. Filters, projection and limit are applied on top and optimized together with it.
#[derive(Debug)]
pub struct SqlView {
    schema: SchemaRef,
    sql: String,
    search_path: (String, String),
    name: String,
    definition: String,
    /// Which view it is, for governance.
    object: SecuredObject,
    /// Whose rights its query runs with.
    security: ViewSecurity,
}

impl SqlView {
    /// The view `entry`.
    pub fn new(entry: &TableEntry) -> Result<Self> {
        let definition = &entry.definition;
        Ok(Self {
            schema: decode_schema(&definition.arrow_schema)?,
            sql: definition.view_sql.clone().unwrap_or_default(),
            search_path: definition
                .view_search_path
                .clone()
                .unwrap_or_else(|| (entry.catalog.clone(), entry.schema.clone())),
            name: entry.qualified_name(),
            definition: show_create(entry),
            object: SecuredObject::Table(
                entry.catalog.clone(),
                entry.schema.clone(),
                entry.name.clone(),
            ),
            security: match definition.view_security.as_deref() {
                Some("INVOKER") => ViewSecurity::Invoker,
                _ => ViewSecurity::Definer,
            },
        })
    }
}

#[async_trait::async_trait]
impl TableProvider for SqlView {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_table_definition(&self) -> Option<&str> {
        Some(&self.definition)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
            return Err(DataFusionError::Internal(
                "views need a full session state".to_string(),
            ));
        };
        let mut state = state.clone();
        let options = state.config_mut().options_mut();
        options.catalog.default_catalog = self.search_path.0.clone();
        options.catalog.default_schema = self.search_path.1.clone();
        let (state, plan) = match state.config().get_extension::<PolicyContext>() {
            Some(policy) => self.plan_governed(state, &policy).await?,
            None => {
                let plan = state.create_logical_plan(&self.sql).await?;
                (state, plan)
            }
        };
        let columns: Vec<(&str, &DataType)> = plan
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        let expected: Vec<(&str, &DataType)> = self
            .schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        if columns != expected {
            return Err(DataFusionError::Plan(format!(
                "view {} is out of date: the tables it reads changed, and its query now returns \
                 {} instead of {}. Recreate it with CREATE OR REPLACE VIEW",
                self.name,
                describe_columns(&columns),
                describe_columns(&expected)
            )));
        }
        let output: Vec<Column> = plan.schema().columns();
        let mut builder = LogicalPlanBuilder::from(plan);
        // Filters name the view's columns; the view's plan names them by the same unqualified
        // names (its output columns are the view's columns, in order).
        let unqualified: Vec<Expr> = filters
            .iter()
            .map(|f| datafusion::logical_expr::expr_rewriter::unnormalize_col(f.clone()))
            .collect();
        if let Some(predicate) = conjunction(unqualified) {
            builder = builder.filter(predicate)?;
        }
        if let Some(indices) = projection {
            builder = builder.project(
                indices
                    .iter()
                    .map(|&i| Expr::Column(output[i].clone()))
                    .collect::<Vec<_>>(),
            )?;
        }
        if let Some(limit) = limit {
            builder = builder.limit(0, Some(limit))?;
        }
        let optimized = state.optimize(&builder.build()?)?;
        DefaultPhysicalPlanner::default()
            .create_physical_plan(&optimized, &state)
            .await
    }
}

impl SqlView {
    /// The view's query, planned against what the principal it runs as may see (its owner, or
    /// for `SECURITY INVOKER` its reader: [`crate::policy::StatementPolicy::view_principal`])
    /// and checked for that principal, and the state to plan the rest with: the views it
    /// reads run on from there.
    async fn plan_governed(
        &self,
        state: SessionState,
        policy: &PolicyContext,
    ) -> Result<(SessionState, LogicalPlan)> {
        let refused = |err: QueryError| DataFusionError::External(Box::new(err));
        let runner = policy
            .policy
            .view_principal(policy.principal.as_ref(), &self.object, self.security)
            .await
            .map_err(refused)?;
        let same =
            |a: Option<&Principal>, b: Option<&Principal>| a.map(|p| &p.user) == b.map(|p| &p.user);
        // The reader keeps its session's roles; an owner acts with all of its own.
        let role = match same(runner.as_ref(), policy.principal.as_ref()) {
            true => policy.role.clone(),
            false => RoleSelection::All,
        };
        let subject = PolicySubject {
            principal: runner.as_ref(),
            role: &role,
            catalog: &self.search_path.0,
            schema: &self.search_path.1,
            statement_id: policy.statement_id.as_deref(),
        };
        let visible = policy
            .policy
            .visible_catalogs(&subject, Arc::clone(&policy.server_catalogs));
        let mut state = SessionStateBuilder::new_from_existing(state)
            .with_catalog_list(visible)
            .build();
        state.config_mut().set_extension(Arc::new(PolicyContext {
            policy: Arc::clone(&policy.policy),
            principal: runner.clone(),
            role: role.clone(),
            server_catalogs: Arc::clone(&policy.server_catalogs),
            statement_id: policy.statement_id.clone(),
        }));
        let plan = match state.create_logical_plan(&self.sql).await {
            Ok(plan) => plan,
            Err(err) => {
                let err = policy.policy.refusal(&subject, err.into()).await;
                return Err(refused(err));
            }
        };
        let plan = policy
            .policy
            .check_plan(&subject, plan)
            .await
            .map_err(refused)?;
        Ok((state, plan))
    }
}

fn describe_columns(columns: &[(&str, &DataType)]) -> String {
    let parts: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
    format!("({})", parts.join(", "))
}

/// `text` as a SQL string literal.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `name` as a SQL identifier, quoted when it must be.
pub(crate) fn quote_ident(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The statement that recreates `entry` (shown by `SHOW CREATE TABLE` and
/// `information_schema.views`).
pub fn show_create(entry: &TableEntry) -> String {
    let name = format!(
        "{}.{}.{}",
        quote_ident(&entry.catalog),
        quote_ident(&entry.schema),
        quote_ident(&entry.name)
    );
    let definition: &TableDefinition = &entry.definition;
    if entry.kind == TableKind::View {
        let security = match definition.view_security.as_deref() {
            Some("INVOKER") => " SECURITY INVOKER",
            _ => "",
        };
        return format!(
            "CREATE VIEW {name}{security} AS {}",
            definition.view_sql.as_deref().unwrap_or_default()
        );
    }
    let columns = decode_schema(&definition.arrow_schema)
        .map(|schema| {
            schema
                .fields()
                .iter()
                .map(|f| {
                    format!(
                        "  {} {}{}",
                        quote_ident(f.name()),
                        sql_type_name(f.data_type()),
                        if f.is_nullable() { "" } else { " NOT NULL" }
                    )
                })
                .collect::<Vec<_>>()
                .join(",\n")
        })
        .unwrap_or_default();
    // An external Iceberg table's columns come from its metadata: its statement has none.
    if definition.format.as_deref() == Some("iceberg") && entry.kind == TableKind::External {
        return format!(
            "CREATE EXTERNAL TABLE {name}\nSTORED AS ICEBERG\nLOCATION {}",
            quote(definition.location.as_deref().unwrap_or_default())
        );
    }
    match entry.kind {
        TableKind::Managed => format!("CREATE TABLE {name} (\n{columns}\n)"),
        _ => {
            let mut text = format!(
                "CREATE EXTERNAL TABLE {name} (\n{columns}\n)\nSTORED AS {}",
                definition
                    .format
                    .as_deref()
                    .unwrap_or("parquet")
                    .to_uppercase()
            );
            if !definition.partition_columns.is_empty() {
                let cols: Vec<String> = definition
                    .partition_columns
                    .iter()
                    .map(|c| quote_ident(c))
                    .collect();
                text.push_str(&format!("\nPARTITIONED BY ({})", cols.join(", ")));
            }
            text.push_str(&format!(
                "\nLOCATION {}",
                quote(definition.location.as_deref().unwrap_or_default())
            ));
            if !definition.options.is_empty() {
                let options: Vec<String> = definition
                    .options
                    .iter()
                    .map(|(k, v)| format!("{} {}", quote(k), quote(v)))
                    .collect();
                text.push_str(&format!("\nOPTIONS ({})", options.join(", ")));
            }
            text
        }
    }
}

/// SQL spelling of an Arrow type, for SHOW CREATE TABLE.
fn sql_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "TINYINT UNSIGNED".into(),
        DataType::UInt16 => "SMALLINT UNSIGNED".into(),
        DataType::UInt32 => "INT UNSIGNED".into(),
        DataType::UInt64 => "BIGINT UNSIGNED".into(),
        DataType::Float16 | DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTEA".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Dictionary(_, value) => sql_type_name(value),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;

    #[test]
    fn schemas_round_trip_through_the_catalog_encoding() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(12, 2), true),
        ]);
        let decoded = decode_schema(&encode_schema(&schema).unwrap()).unwrap();
        assert_eq!(decoded.as_ref(), &schema);
    }

    #[test]
    fn partition_columns_are_split_from_the_file_schema() {
        let schema = Schema::new(vec![
            Field::new("v", DataType::Int64, true),
            Field::new("year", DataType::Utf8, true),
        ]);
        let (files, parts) = split_partition_columns(&schema, &["year".to_string()]).unwrap();
        assert_eq!(files.fields().len(), 1);
        assert_eq!(parts, vec![("year".to_string(), DataType::Utf8)]);
        assert!(split_partition_columns(&schema, &["nope".to_string()]).is_err());
    }
}
