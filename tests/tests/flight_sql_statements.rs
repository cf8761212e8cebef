//! Prepared statements at the protocol level: parameter schemas, parameters bound from DoPut
//! over several rows (one endpoint per row), updates with parameter rows, and oversized
//! parameter batches refused cleanly.

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use futures::TryStreamExt;
use osprey_tests::{TestCluster, canonical_rows, rows, status_code};
use std::sync::Arc;

fn ids(values: Vec<i64>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_bind_parameter_rows() {
    let cluster = TestCluster::start_tpch(1);
    let mut c = cluster.client().await;

    let mut prepared = c
        .inner
        .prepare(
            "SELECT n_name FROM tpch.nation WHERE n_nationkey = $1".to_string(),
            None,
        )
        .await
        .unwrap();
    let parameters = prepared.parameter_schema().unwrap().clone();
    assert_eq!(parameters.fields().len(), 1);
    assert_eq!(parameters.field(0).name(), "$1");
    assert_eq!(parameters.field(0).data_type(), &DataType::Int64);
    assert_eq!(prepared.dataset_schema().unwrap().field(0).name(), "n_name");

    // Two rows of parameters: two endpoints, answered in order.
    prepared.set_parameters(ids(vec![7, 2])).unwrap();
    let info = prepared.execute().await.unwrap();
    assert_eq!(info.endpoint.len(), 2);
    let mut names = Vec::new();
    for endpoint in info.endpoint {
        let batches: Vec<RecordBatch> = c
            .inner
            .do_get(endpoint.ticket.unwrap())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        names.extend(canonical_rows(&batches));
    }
    assert_eq!(names, vec!["GERMANY", "BRAZIL"]);

    // Too many parameter rows: refused, and the service answers the next call.
    prepared.set_parameters(ids((0..10_001).collect())).unwrap();
    let err = prepared.execute().await.expect_err("oversized parameters");
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::ResourceExhausted),
        "{err}"
    );
    assert!(err.to_string().contains("too many parameter rows"), "{err}");
    prepared.close().await.unwrap();

    // An update with parameter rows runs once per row; the counts add up.
    rows(&mut c, "CREATE SCHEMA app").await;
    rows(&mut c, "CREATE TABLE app.people (id BIGINT, name VARCHAR)").await;
    let mut insert = c
        .inner
        .prepare("INSERT INTO app.people VALUES ($1, $2)".to_string(), None)
        .await
        .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("$1", DataType::Int64, false),
        Field::new("$2", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec!["ana", "bo", "cy"])),
        ],
    )
    .unwrap();
    insert.set_parameters(batch).unwrap();
    assert_eq!(insert.execute_update().await.unwrap(), 3);
    assert_eq!(
        rows(&mut c, "SELECT id, name FROM app.people ORDER BY id").await,
        vec!["1 | ana", "2 | bo", "3 | cy"]
    );
}

/// A `SetSessionOptionsRequest` with string options, encoded by hand from Flight.proto (so the
/// test does not share the server's message definitions).
fn set_session_options(options: &[(&str, &str)]) -> Vec<u8> {
    fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
        assert!(bytes.len() < 128);
        let mut out = vec![(tag << 3) | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }
    let mut request = Vec::new();
    for (name, value) in options {
        let value = field(1, value.as_bytes()); // SessionOptionValue.string_value
        let mut entry = field(1, name.as_bytes());
        entry.extend(field(2, &value));
        request.extend(field(1, &entry)); // session_options map entry
    }
    request
}

async fn action(client: &mut osprey_tests::SqlClient, name: &str, body: Vec<u8>) -> Vec<u8> {
    let mut results = client
        .inner
        .do_action(arrow_flight::Action::new(name, body))
        .await
        .unwrap();
    results.message().await.unwrap().unwrap().body.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_options_set_the_schema_and_settings() {
    use osprey_coordinator::session_options::{
        GetSessionOptionsResult, OptionValue, SetSessionOptionsResult,
    };
    use prost::Message;

    let cluster = TestCluster::start_tpch(1);
    let mut c = cluster.client().await;
    rows(&mut c, "CREATE SCHEMA app").await;
    rows(&mut c, "CREATE TABLE app.things (id BIGINT)").await;

    let result = action(
        &mut c,
        "SetSessionOptions",
        set_session_options(&[
            ("catalog", "osprey"),
            ("schema", "app"),
            ("datafusion.execution.time_zone", "+03:00"),
            ("no.such.option", "1"),
            ("schema_typo", "x"),
        ]),
    )
    .await;
    let result = SetSessionOptionsResult::decode(result.as_slice()).unwrap();
    let mut refused: Vec<&String> = result.errors.keys().collect();
    refused.sort();
    assert_eq!(refused, vec!["no.such.option", "schema_typo"]);
    // SetSessionOptionsResult.ErrorValue.INVALID_NAME: neither names a setting.
    assert!(result.errors.values().all(|e| e.value == 1), "{result:?}");
    // Unqualified names now resolve in `app`.
    assert_eq!(rows(&mut c, "SELECT count(*) FROM things").await, vec!["0"]);

    let options = action(&mut c, "GetSessionOptions", vec![]).await;
    let options = GetSessionOptionsResult::decode(options.as_slice()).unwrap();
    let value = |name: &str| match options.session_options[name].option_value.clone() {
        Some(OptionValue::StringValue(s)) => s,
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(value("schema"), "app");
    assert_eq!(value("catalog"), "osprey");
    assert_eq!(value("datafusion.execution.time_zone"), "+03:00");

    // A schema that does not exist is refused, and the session keeps its schema.
    let result = action(
        &mut c,
        "SetSessionOptions",
        set_session_options(&[("schema", "nowhere")]),
    )
    .await;
    let result = SetSessionOptionsResult::decode(result.as_slice()).unwrap();
    assert!(result.errors.contains_key("schema"));
    assert_eq!(rows(&mut c, "SELECT count(*) FROM things").await, vec!["0"]);

    // CloseSession forgets it: back to the default schema.
    action(&mut c, "CloseSession", vec![]).await;
    let err = c
        .query("SELECT count(*) FROM things")
        .await
        .expect_err("default schema again");
    assert!(err.to_string().contains("things"), "{err}");
    let err = c
        .inner
        .do_action(arrow_flight::Action::new("NoSuchAction", vec![]))
        .await
        .expect_err("unknown action");
    assert_eq!(status_code(&err), Some(tonic::Code::InvalidArgument));
}
