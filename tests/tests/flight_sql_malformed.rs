//! Malformed Flight SQL requests get clean errors, and the service keeps answering: garbage
//! and forged tickets, truncated commands, unknown commands and actions, garbage DoPut.

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{Any, ProstMessageExt, TicketStatementQuery};
use arrow_flight::{Action, FlightData, FlightDescriptor, Ticket};
use osprey_tests::{TestCluster, rows};
use prost::Message;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// A raw Flight client (no Flight SQL helpers) sending `token` on every request.
struct Raw {
    client: FlightServiceClient<Channel>,
    token: String,
}

impl Raw {
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(format!("Bearer {}", self.token)).unwrap(),
        );
        request
    }
}

fn any_with(type_url: &str, value: Vec<u8>) -> Vec<u8> {
    Any {
        type_url: type_url.to_string(),
        value: value.into(),
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clean_errors() {
    let cluster = TestCluster::start_tpch(1);
    let mut sql = cluster.client().await;
    let token = sql.inner.token().cloned().expect("logged in");
    let channel = Channel::from_shared(format!("http://{}", cluster.coordinator.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw = Raw {
        client: FlightServiceClient::new(channel),
        token,
    };

    // Tickets: random bytes, a forged statement handle, a truncated command.
    let forged = TicketStatementQuery {
        statement_handle: "not-a-real-handle".into(),
    }
    .as_any()
    .encode_to_vec();
    let truncated = forged[..forged.len() / 2].to_vec();
    for (what, bytes, expected) in [
        ("garbage", b"\xff\x00garbage".to_vec(), None),
        ("forged", forged, Some(tonic::Code::NotFound)),
        ("truncated", truncated, None),
    ] {
        let request = raw.request(Ticket::new(bytes));
        let status = raw.client.do_get(request).await.expect_err(what);
        if let Some(code) = expected {
            assert_eq!(status.code(), code, "{what}: {status}");
        } else {
            assert!(
                matches!(
                    status.code(),
                    tonic::Code::InvalidArgument | tonic::Code::NotFound
                ),
                "{what}: {status}"
            );
        }
    }

    // Commands: truncated protobuf, an unknown command type, an empty descriptor.
    let query = any_with(
        "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery",
        vec![0x0a, 0x40, b'S'],
    );
    let unknown = any_with("type.googleapis.com/no.such.Command", vec![]);
    for (what, bytes) in [
        ("truncated query", query),
        ("unknown command", unknown),
        ("not protobuf", b"\xff\xff\xff".to_vec()),
    ] {
        let request = raw.request(FlightDescriptor::new_cmd(bytes));
        let status = raw.client.get_flight_info(request).await.expect_err(what);
        assert!(
            matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::Unimplemented
            ),
            "{what}: {status}"
        );
    }

    // Substrait: refused, saying so.
    let substrait = arrow_flight::sql::CommandStatementSubstraitPlan::default()
        .as_any()
        .encode_to_vec();
    let request = raw.request(FlightDescriptor::new_cmd(substrait));
    let status = raw
        .client
        .get_flight_info(request)
        .await
        .expect_err("substrait");
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status}");
    assert!(status.message().contains("Substrait"), "{status}");

    // DoPut with a garbage descriptor and garbage data.
    let message = FlightData {
        flight_descriptor: Some(FlightDescriptor::new_cmd(b"\x01\x02".to_vec())),
        data_header: b"garbage".to_vec().into(),
        ..Default::default()
    };
    let request = raw.request(futures::stream::iter(vec![message]));
    match raw.client.do_put(request).await {
        Err(status) => assert!(
            matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::Unimplemented
            ),
            "{status}"
        ),
        Ok(response) => {
            let mut stream = response.into_inner();
            let status = stream.message().await.expect_err("garbage DoPut");
            assert!(
                matches!(
                    status.code(),
                    tonic::Code::InvalidArgument | tonic::Code::Unimplemented
                ),
                "{status}"
            );
        }
    }

    // Unknown action; a known action with a garbage body.
    let request = raw.request(Action::new("Nope", vec![]));
    let status = raw.client.do_action(request).await.expect_err("unknown");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    let request = raw.request(Action::new("SetSessionOptions", b"\xff\xff".to_vec()));
    let status = raw.client.do_action(request).await.expect_err("garbage");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    let request = raw.request(Action::new("CreatePreparedStatement", b"\x0a\x7f".to_vec()));
    let status = raw.client.do_action(request).await.expect_err("truncated");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");

    // Still serving.
    assert_eq!(
        rows(&mut sql, "SELECT count(*) FROM region").await,
        vec!["5"]
    );
}
