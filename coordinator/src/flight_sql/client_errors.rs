//! The Flight service as clients see it: the Flight SQL front door, with undecodable requests
//! reported as the client's error.
//!
//! arrow-flight's Flight SQL dispatch answers a command or ticket it cannot decode (a truncated
//! protobuf, an unknown command type) with `Internal`, as if the server had failed. Osprey's
//! contract is `InvalidArgument` for bad input, so this wrapper maps exactly those decode
//! failures (arrow-flight renders them as `ParseError(...)`) and passes everything else through.

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

/// `Internal` from a request that could not be decoded becomes `InvalidArgument`.
fn client_error(status: Status) -> Status {
    if status.code() == tonic::Code::Internal && status.message().starts_with("ParseError(") {
        Status::invalid_argument(format!("malformed request: {}", status.message()))
    } else {
        status
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
