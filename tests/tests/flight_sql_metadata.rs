//! Flight SQL metadata calls, checked at the protocol level: unset filters mean no filter,
//! `%`/`_` patterns, table types, `include_schema`, the empty key and type-info answers with
//! their schemas, and GetSqlInfo's value types.

use arrow_flight::FlightInfo;
use arrow_flight::sql::{
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetTables, CommandGetXdbcTypeInfo, SqlInfo,
};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::ipc::convert::try_schema_from_ipc_buffer;
use futures::TryStreamExt;
use osprey_tests::{SqlClient, TestCluster, rows};

async fn fetch(client: &mut SqlClient, info: FlightInfo) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let stream = client
            .inner
            .do_get(endpoint.ticket.expect("ticket"))
            .await
            .unwrap();
        batches.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    batches
}

/// `column` of every row, as strings.
fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let array = b.column_by_name(column).expect(column).as_string::<i32>();
            (0..array.len())
                .map(|i| array.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn tables(
    catalog: Option<&str>,
    schema: Option<&str>,
    table: Option<&str>,
    types: &[&str],
    include_schema: bool,
) -> CommandGetTables {
    CommandGetTables {
        catalog: catalog.map(str::to_string),
        db_schema_filter_pattern: schema.map(str::to_string),
        table_name_filter_pattern: table.map(str::to_string),
        table_types: types.iter().map(|t| t.to_string()).collect(),
        include_schema,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_calls_answer_like_the_spec_says() {
    let cluster = TestCluster::start_tpch(1);
    let mut c = cluster.client().await;
    rows(
        &mut c,
        "CREATE VIEW tpch.asia AS SELECT n_name FROM tpch.nation WHERE n_regionkey = 2",
    )
    .await;

    let info = c.inner.get_catalogs().await.unwrap();
    assert_eq!(
        strings(&fetch(&mut c, info).await, "catalog_name"),
        vec!["osprey"]
    );

    let info = c
        .inner
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .unwrap();
    let schemas = strings(&fetch(&mut c, info).await, "db_schema_name");
    assert!(schemas.contains(&"tpch".to_string()), "{schemas:?}");
    assert!(schemas.contains(&"system".to_string()), "{schemas:?}");
    let info = c
        .inner
        .get_db_schemas(CommandGetDbSchemas {
            catalog: Some("osprey".into()),
            db_schema_filter_pattern: Some("tp_h".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        strings(&fetch(&mut c, info).await, "db_schema_name"),
        vec!["tpch"]
    );

    // No filter at all: every table, sorted, with BASE TABLE / VIEW.
    let info = c
        .inner
        .get_tables(tables(None, None, None, &[], false))
        .await
        .unwrap();
    let batches = fetch(&mut c, info).await;
    let names = strings(&batches, "table_name");
    assert!(names.contains(&"lineitem".to_string()), "{names:?}");
    assert!(names.contains(&"queries".to_string()), "{names:?}");
    let types = strings(&batches, "table_type");
    assert!(
        types.iter().all(|t| t == "BASE TABLE" || t == "VIEW"),
        "{types:?}"
    );
    // Table types filter on the server.
    let info = c
        .inner
        .get_tables(tables(None, Some("tpch"), None, &["VIEW"], false))
        .await
        .unwrap();
    assert_eq!(
        strings(&fetch(&mut c, info).await, "table_name"),
        vec!["asia"]
    );
    // Patterns and include_schema: the Arrow schema of each table, IPC-encoded.
    let info = c
        .inner
        .get_tables(tables(Some("osprey"), Some("%"), Some("reg%"), &[], true))
        .await
        .unwrap();
    let batches = fetch(&mut c, info).await;
    assert_eq!(strings(&batches, "table_name"), vec!["region"]);
    let encoded = batches[0]
        .column_by_name("table_schema")
        .unwrap()
        .as_binary::<i32>()
        .value(0)
        .to_vec();
    let schema = try_schema_from_ipc_buffer(&encoded).unwrap();
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(columns, vec!["r_regionkey", "r_name", "r_comment"]);
    // An unknown catalog matches nothing (and is not an error).
    let info = c
        .inner
        .get_tables(tables(Some("elsewhere"), None, None, &[], false))
        .await
        .unwrap();
    assert!(strings(&fetch(&mut c, info).await, "table_name").is_empty());

    let info = c.inner.get_table_types().await.unwrap();
    assert_eq!(
        strings(&fetch(&mut c, info).await, "table_type"),
        vec!["BASE TABLE", "VIEW"]
    );

    // Keys and type info: empty, with the spec's schema.
    let table = |t: &str| {
        (
            Some("osprey".to_string()),
            Some("tpch".to_string()),
            t.to_string(),
        )
    };
    let (catalog, db_schema, name) = table("orders");
    let infos = vec![
        c.inner
            .get_primary_keys(CommandGetPrimaryKeys {
                catalog: catalog.clone(),
                db_schema: db_schema.clone(),
                table: name.clone(),
            })
            .await
            .unwrap(),
        c.inner
            .get_exported_keys(CommandGetExportedKeys {
                catalog: catalog.clone(),
                db_schema: db_schema.clone(),
                table: name.clone(),
            })
            .await
            .unwrap(),
        c.inner
            .get_imported_keys(CommandGetImportedKeys {
                catalog: catalog.clone(),
                db_schema: db_schema.clone(),
                table: name.clone(),
            })
            .await
            .unwrap(),
        c.inner
            .get_cross_reference(CommandGetCrossReference {
                pk_catalog: catalog.clone(),
                pk_db_schema: db_schema.clone(),
                pk_table: name.clone(),
                fk_catalog: catalog,
                fk_db_schema: db_schema,
                fk_table: "lineitem".into(),
            })
            .await
            .unwrap(),
        c.inner
            .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
            .await
            .unwrap(),
    ];
    let expected_first_columns = [
        "catalog_name",
        "pk_catalog_name",
        "pk_catalog_name",
        "pk_catalog_name",
        "type_name",
    ];
    for (info, first) in infos.into_iter().zip(expected_first_columns) {
        let schema = info.clone().try_decode_schema().unwrap();
        assert_eq!(schema.field(0).name(), first);
        let batches = fetch(&mut c, info).await;
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    }

    // GetSqlInfo: every field asked for answers, with the spec's value type.
    let asked = vec![
        SqlInfo::FlightSqlServerName,
        SqlInfo::FlightSqlServerVersion,
        SqlInfo::FlightSqlServerArrowVersion,
        SqlInfo::FlightSqlServerReadOnly,
        SqlInfo::FlightSqlServerTransaction,
        SqlInfo::SqlIdentifierQuoteChar,
        SqlInfo::SqlKeywords,
        SqlInfo::SqlNumericFunctions,
        SqlInfo::SqlStringFunctions,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlIdentifierCase,
    ];
    let info = c.inner.get_sql_info(asked.clone()).await.unwrap();
    let batches = fetch(&mut c, info).await;
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), asked.len());
    let names = batch
        .column(0)
        .as_primitive::<datafusion::arrow::datatypes::UInt32Type>();
    let values = batch.column(1).as_union();
    for row in 0..batch.num_rows() {
        let id = names.value(row) as i32;
        let type_id = values.type_id(row);
        let (_, field) = values.fields().iter().find(|(t, _)| *t == type_id).unwrap();
        let expected = match SqlInfo::try_from(id).unwrap() {
            SqlInfo::FlightSqlServerName
            | SqlInfo::FlightSqlServerVersion
            | SqlInfo::FlightSqlServerArrowVersion
            | SqlInfo::SqlIdentifierQuoteChar => "string_value",
            SqlInfo::FlightSqlServerReadOnly => "bool_value",
            SqlInfo::FlightSqlServerTransaction | SqlInfo::SqlIdentifierCase => "int32_bitmask",
            SqlInfo::SqlMaxColumnNameLength => "bigint_value",
            _ => "string_list",
        };
        assert_eq!(field.name(), expected, "SqlInfo {id}");
        if expected == "string_list" {
            let list = values.value(row);
            let list = list.as_list::<i32>();
            assert!(list.value(0).len() > 5, "SqlInfo {id} lists too little");
            assert_eq!(list.value(0).data_type(), &DataType::Utf8);
        }
    }
}
