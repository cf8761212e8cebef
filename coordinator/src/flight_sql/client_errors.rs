//! The Flight service as clients see it: the Flight SQL front door, with undecodable requests
//! reported as the client's error.
//!
//! arrow-flight's Flight SQL dispatch answers a command or ticket it cannot decode (a truncated
//! protobuf, an unknown command type) with `Internal`, as if the server had failed. Osprey's
//! contract is `InvalidArgument` for bad input, so this wrapper maps exactly those decode
//! failures (arrow-flight renders them as `ParseError(...)`) and passes everything else through.
//!
//! tonic refuses a request larger than the server's decoding limit with `OutOfRange`; gRPC's
//! convention (and Osprey's) for an exceeded limit is `ResourceExhausted`. A request that is
//! refused before any handler runs never reaches [`ClientErrors`], so [`OversizedRequestsLayer`]
//! rewrites that status on the HTTP response.

use super::FlightSqlFrontDoor;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PollInfo,
    SchemaResult, Ticket,
};
use tonic::{Request, Response, Status, Streaming};

/// Wraps [`FlightSqlFrontDoor`]; mount with `FlightServiceServer::new(ClientErrors(front_door))`.
#[derive(Clone)]
pub struct ClientErrors(pub FlightSqlFrontDoor);

/// `Internal` from a request that could not be decoded becomes `InvalidArgument`; a message over
/// the size limit becomes `ResourceExhausted`.
fn client_error(status: Status) -> Status {
    if status.code() == tonic::Code::Internal && status.message().starts_with("ParseError(") {
        Status::invalid_argument(format!("malformed request: {}", status.message()))
    } else if is_oversized(status.code(), status.message()) {
        oversized(status.message())
    } else {
        status
    }
}

/// tonic's refusal of a message above the decoding limit.
fn is_oversized(code: tonic::Code, message: &str) -> bool {
    code == tonic::Code::OutOfRange && message.contains("message length too large")
}

fn oversized(message: &str) -> Status {
    Status::resource_exhausted(format!(
        "request too large ({message}): send less per request, such as fewer parameter rows per \
         DoPut, or raise max_request_bytes under [coordinator]"
    ))
}

/// A tower layer for the gRPC server that turns tonic's `OutOfRange` refusal of an oversized
/// request into `ResourceExhausted` (see the module documentation).
///
/// ```
/// use osprey_coordinator::OversizedRequestsLayer;
///
/// let server = tonic::transport::Server::builder().layer(OversizedRequestsLayer);
/// # drop(server);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct OversizedRequestsLayer;

impl<S> tower::Layer<S> for OversizedRequestsLayer {
    type Service = OversizedRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OversizedRequests(inner)
    }
}

/// The service [`OversizedRequestsLayer`] makes.
#[derive(Debug, Clone)]
pub struct OversizedRequests<S>(S);

impl<S, RequestBody, ResponseBody> tower::Service<http::Request<RequestBody>>
    for OversizedRequests<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
    ResponseBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let response = self.0.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            // Errors raised before a handler runs come as a trailers-only response: the status
            // is in the headers.
            if let Some(status) = Status::from_header_map(response.headers())
                && is_oversized(status.code(), status.message())
            {
                let replacement = oversized(status.message()).into_http::<ResponseBody>();
                for name in ["grpc-status", "grpc-message"] {
                    if let Some(value) = replacement.headers().get(name) {
                        response.headers_mut().insert(name, value.clone());
                    }
                }
            }
            Ok(response)
        })
    }
}

type Inner = FlightSqlFrontDoor;

#[tonic::async_trait]
impl FlightService for ClientErrors {
    type HandshakeStream = <Inner as FlightService>::HandshakeStream;
    type ListFlightsStream = <Inner as FlightService>::ListFlightsStream;
    type DoGetStream = <Inner as FlightService>::DoGetStream;
    type DoPutStream = <Inner as FlightService>::DoPutStream;
    type DoExchangeStream = <Inner as FlightService>::DoExchangeStream;
    type DoActionStream = <Inner as FlightService>::DoActionStream;
    type ListActionsStream = <Inner as FlightService>::ListActionsStream;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        self.0.handshake(request).await.map_err(client_error)
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        self.0.list_flights(request).await.map_err(client_error)
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.0.get_flight_info(request).await.map_err(client_error)
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        self.0.poll_flight_info(request).await.map_err(client_error)
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        self.0.get_schema(request).await.map_err(client_error)
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        self.0.do_get(request).await.map_err(client_error)
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        self.0.do_put(request).await.map_err(client_error)
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        self.0.do_exchange(request).await.map_err(client_error)
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        self.0.do_action(request).await.map_err(client_error)
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        self.0.list_actions(request).await.map_err(client_error)
    }
}
