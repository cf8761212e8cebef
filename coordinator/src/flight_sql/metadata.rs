//! What Flight SQL metadata calls answer: GetSqlInfo, catalogs, schemas, tables (with their
//! Arrow schemas), table types, and the key and type-info calls Osprey answers empty.
//!
//! Clients browse with unset filters meaning "everything" (ADBC's `adbc_get_objects` sends no
//! catalog at all), `%` and `_` patterns, and the table types `BASE TABLE` and `VIEW`.

use arrow_flight::sql::metadata::{
    GetCatalogsBuilder, GetDbSchemasBuilder, GetTablesBuilder, SqlInfoData, SqlInfoDataBuilder,
};
use arrow_flight::sql::{
    SqlInfo, SqlNullOrdering, SqlSupportedCaseSensitivity, SqlSupportedTransaction,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProviderList, TableProvider};
use datafusion::datasource::TableType;
use datafusion::prelude::SessionContext;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The table types Osprey reports.
pub const TABLE_TYPES: [&str; 2] = ["BASE TABLE", "VIEW"];

/// A table's Flight SQL type name.
pub fn table_type_name(table_type: TableType) -> &'static str {
    match table_type {
        TableType::Base => "BASE TABLE",
        TableType::View => "VIEW",
        TableType::Temporary => "LOCAL TEMPORARY",
    }
}

/// Every catalog the session sees.
pub fn append_catalogs(catalogs: &dyn CatalogProviderList, builder: &mut GetCatalogsBuilder) {
    for catalog in sorted(catalogs.catalog_names()) {
        builder.append(catalog);
    }
}

/// Every schema of every catalog; the builder applies the client's filters.
pub fn append_schemas(catalogs: &dyn CatalogProviderList, builder: &mut GetDbSchemasBuilder) {
    for catalog_name in sorted(catalogs.catalog_names()) {
        let Some(catalog) = catalogs.catalog(&catalog_name) else {
            continue;
        };
        for schema in sorted(catalog.schema_names()) {
            builder.append(&catalog_name, schema);
        }
    }
}

/// Every table of every schema, with its Arrow schema; the builder applies the client's
/// filters. Catalogs and schemas the filter rules out are not opened.
pub async fn append_tables(
    catalogs: &dyn CatalogProviderList,
    catalog_filter: Option<&str>,
    builder: &mut GetTablesBuilder,
) -> datafusion::error::Result<()> {
    for catalog_name in sorted(catalogs.catalog_names()) {
        if catalog_filter.is_some_and(|wanted| wanted != catalog_name) {
            continue;
        }
        let Some(catalog) = catalogs.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in sorted(catalog.schema_names()) {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            for table_name in sorted(schema.table_names()) {
                // A table that cannot be opened (a broken definition) is still listed, with
                // no columns, rather than failing the whole listing.
                let provider: Option<Arc<dyn TableProvider>> =
                    schema.table(&table_name).await.ok().flatten();
                let (table_type, table_schema) = match &provider {
                    Some(provider) => (provider.table_type(), provider.schema()),
                    None => (TableType::Base, Arc::new(Schema::empty())),
                };
                builder
                    .append(
                        &catalog_name,
                        &schema_name,
                        &table_name,
                        table_type_name(table_type),
                        &table_schema,
                    )
                    .map_err(|err| datafusion::error::DataFusionError::External(Box::new(err)))?;
            }
        }
    }
    Ok(())
}

fn sorted(names: Vec<String>) -> Vec<String> {
    let mut names = names;
    names.sort();
    names
}

/// GetPrimaryKeys' result schema (Osprey tables have no keys: always empty).
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// The result schema of GetImportedKeys, GetExportedKeys and GetCrossReference (always
/// empty: Osprey tables have no foreign keys).
pub fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

/// GetSqlInfo's answers, with the value type the Flight SQL spec gives each field. Function
/// lists come from the session's registered functions, sorted into the spec's groups by their
/// documentation section.
pub fn build_sql_info(ctx: &SessionContext) -> SqlInfoData {
    let state = ctx.state();
    let mut numeric = BTreeSet::new();
    let mut string = BTreeSet::new();
    let mut datetime = BTreeSet::new();
    let mut system = BTreeSet::new();
    for (name, function) in state.scalar_functions() {
        let section = function
            .documentation()
            .map(|doc| doc.doc_section.label)
            .unwrap_or("");
        let group = match section {
            "Math Functions" => &mut numeric,
            "String Functions" | "Regular Expression Functions" | "Binary String Functions" => {
                &mut string
            }
            "Time and Date Functions" => &mut datetime,
            _ => &mut system,
        };
        group.insert(name.to_uppercase());
    }
    let list = |names: BTreeSet<String>| -> Vec<String> { names.into_iter().collect() };
    let keywords: Vec<String> = datafusion::sql::sqlparser::keywords::ALL_KEYWORDS
        .iter()
        .map(|k| k.to_string())
        .collect();

    let mut builder = SqlInfoDataBuilder::new();
    // Server.
    builder.append(SqlInfo::FlightSqlServerName, "Osprey");
    builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    // The Arrow IPC format version (Schema.fbs MetadataVersion V5 is format 1.5).
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
    builder.append(SqlInfo::FlightSqlServerReadOnly, false);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    builder.append(SqlInfo::FlightSqlServerCancel, true);
    builder.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    builder.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    builder.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    builder.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    // SQL language.
    builder.append(SqlInfo::SqlDdlCatalog, false);
    builder.append(SqlInfo::SqlDdlSchema, true);
    builder.append(SqlInfo::SqlDdlTable, true);
    builder.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    builder.append(SqlInfo::SqlAllTablesAreSelectable, true);
    builder.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    builder.append(SqlInfo::SqlKeywords, keywords);
    builder.append(SqlInfo::SqlNumericFunctions, list(numeric));
    builder.append(SqlInfo::SqlStringFunctions, list(string));
    builder.append(SqlInfo::SqlSystemFunctions, list(system));
    builder.append(SqlInfo::SqlDatetimeFunctions, list(datetime));
    builder.append(SqlInfo::SqlSearchStringEscape, "\\");
    builder.append(SqlInfo::SqlExtraNameCharacters, "");
    builder.append(SqlInfo::SqlSupportsColumnAliasing, true);
    builder.append(SqlInfo::SqlNullPlusNullIsNull, true);
    builder.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    builder.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    builder.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    builder.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    // Bitmasks: bit n set for enum value n.
    builder.append(SqlInfo::SqlSupportedGroupBy, 0b11i32);
    builder.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    builder.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    builder.append(SqlInfo::SqlSupportedGrammar, 0b11i32);
    builder.append(SqlInfo::SqlAnsi92SupportedLevel, 0b1i32);
    builder.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    builder.append(SqlInfo::SqlOuterJoinsSupportLevel, 2i32);
    builder.append(SqlInfo::SqlSchemaTerm, "schema");
    builder.append(SqlInfo::SqlProcedureTerm, "procedure");
    builder.append(SqlInfo::SqlCatalogTerm, "catalog");
    builder.append(SqlInfo::SqlCatalogAtStart, true);
    builder.append(SqlInfo::SqlSchemasSupportedActions, 0b111i32);
    builder.append(SqlInfo::SqlCatalogsSupportedActions, 0b1i32);
    builder.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    builder.append(SqlInfo::SqlSelectForUpdateSupported, false);
    builder.append(SqlInfo::SqlStoredProceduresSupported, false);
    builder.append(SqlInfo::SqlSupportedSubqueries, 0b1111i32);
    builder.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    builder.append(SqlInfo::SqlSupportedUnions, 0b11i32);
    // Limits: 0 means none or unknown.
    for limit in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxTablesInSelect,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        builder.append(limit, 0i64);
    }
    builder.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, true);
    builder.append(SqlInfo::SqlDefaultTransactionIsolation, 0i32);
    builder.append(SqlInfo::SqlTransactionsSupported, false);
    builder.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0i32);
    builder.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    builder.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, true);
    builder.append(SqlInfo::SqlSupportedResultSetTypes, 0b10i32);
    builder.append(SqlInfo::SqlBatchUpdatesSupported, false);
    builder.append(SqlInfo::SqlSavepointsSupported, false);
    builder.append(SqlInfo::SqlNamedParametersSupported, false);
    builder.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    builder.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    // Built from fixed values of consistent types: cannot fail.
    builder
        .build()
        .expect("SqlInfo values have consistent types")
}
