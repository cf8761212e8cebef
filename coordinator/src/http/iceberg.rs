//! The Iceberg REST catalog protocol at `/iceberg/v1/...` on the HTTP port, over Osprey's own
//! catalog (`osprey_service::ServedCatalog`): a thin adapter that decodes requests, calls the
//! service, and encodes its answers and errors as the protocol spells them.
//!
//! A client points at `http://host:port/iceberg` with a user's name and password as OAuth2
//! client credentials (`credential = "user:password"` in pyiceberg and Spark): `POST
//! /iceberg/v1/oauth/tokens` exchanges them for one of Osprey's bearer tokens, which every
//! other call sends. Basic credentials are taken too.
//!
//! Errors are the protocol's `{"error": {"message", "type", "code"}}`, with its exception
//! names (`NoSuchTableException`, `CommitFailedException`, ...), so clients raise the
//! exceptions their users expect.

use super::HttpState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use osprey_service::{
    AuthError, NewServedTable, Principal, ServedCatalog, ServedCatalogError, TableName,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// The routes under `/iceberg`.
pub(super) fn routes() -> axum::Router<HttpState> {
    axum::Router::new()
        .route("/v1/oauth/tokens", post(issue_token))
        .route("/v1/config", get(config))
        .route(
            "/v1/namespaces",
            get(list_namespaces).post(create_namespace),
        )
        .route(
            "/v1/namespaces/{namespace}",
            get(load_namespace).delete(drop_namespace),
        )
        .route(
            "/v1/namespaces/{namespace}/tables",
            get(list_tables).post(create_table),
        )
        .route(
            "/v1/namespaces/{namespace}/tables/{table}",
            get(load_table).post(commit_table).delete(drop_table),
        )
        .route("/v1/namespaces/{namespace}/register", post(register_table))
        .route(
            "/v1/namespaces/{namespace}/properties",
            post(namespace_properties),
        )
        .route("/v1/tables/rename", post(rename_table))
        .fallback(unknown_route)
}

/// An error as the protocol answers it.
#[derive(Debug)]
pub(super) struct RestError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl RestError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequestException", message)
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "code": self.status.as_u16(),
        }});
        (self.status, Json(body)).into_response()
    }
}

impl From<ServedCatalogError> for RestError {
    fn from(err: ServedCatalogError) -> Self {
        use ServedCatalogError as E;
        let (status, kind) = match &err {
            E::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequestException"),
            E::NotSupported(_) => (StatusCode::NOT_ACCEPTABLE, "UnsupportedOperationException"),
            E::Forbidden(_) => (StatusCode::FORBIDDEN, "ForbiddenException"),
            E::NoSuchNamespace(_) => (StatusCode::NOT_FOUND, "NoSuchNamespaceException"),
            E::NoSuchTable(_) => (StatusCode::NOT_FOUND, "NoSuchTableException"),
            E::AlreadyExists(_) => (StatusCode::CONFLICT, "AlreadyExistsException"),
            E::NamespaceNotEmpty(_) => (StatusCode::CONFLICT, "NamespaceNotEmptyException"),
            E::CommitFailed(_) => (StatusCode::CONFLICT, "CommitFailedException"),
            E::CommitStateUnknown(_) => {
                (StatusCode::GATEWAY_TIMEOUT, "CommitStateUnknownException")
            }
            E::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
            ),
        };
        Self::new(status, kind, err.to_string())
    }
}

/// The user a call authenticated as (a bearer token, or Basic credentials).
struct IcebergUser(Principal);

impl FromRequestParts<HttpState> for IcebergUser {
    type Rejection = RestError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or_default());
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        let auth = state.service.engine().auth();
        match auth.check_authorization(header, peer).await {
            Ok(principal) => Ok(Self(principal)),
            Err(AuthError::Missing) => Err(RestError::new(
                StatusCode::UNAUTHORIZED,
                "NotAuthorizedException",
                "authentication required: configure the catalog with credential = \
                 'user:password' (OAuth2 client credentials at /iceberg/v1/oauth/tokens), or \
                 send a bearer token",
            )),
            Err(err @ (AuthError::Unavailable | AuthError::Busy)) => Err(RestError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                err.to_string(),
            )),
            Err(err) => Err(RestError::new(
                StatusCode::UNAUTHORIZED,
                "NotAuthorizedException",
                err.to_string(),
            )),
        }
    }
}

/// The served catalog, or `503` when this coordinator serves none.
fn catalog(state: &HttpState) -> Result<ServedCatalog, RestError> {
    state.service.served_catalog().ok_or_else(|| {
        RestError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "this coordinator serves no Iceberg catalog",
        )
    })
}

/// A JSON body of the protocol, or a `400` saying what is wrong with it.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, RestError> {
    serde_json::from_slice(bytes)
        .map_err(|err| RestError::bad_request(format!("malformed request body: {err}")))
}

/// A namespace as the protocol names it (levels, or levels joined by the unit separator in a
/// path): Osprey's namespaces have one level.
fn one_level(levels: &[String]) -> Result<&str, RestError> {
    match levels {
        [name] if !name.contains('\u{1f}') => Ok(name),
        _ => Err(no_such_namespace(&levels.join("."))),
    }
}

fn path_namespace(namespace: &str) -> Result<&str, RestError> {
    match namespace.contains('\u{1f}') {
        false => Ok(namespace),
        true => Err(no_such_namespace(&namespace.replace('\u{1f}', "."))),
    }
}

fn no_such_namespace(name: &str) -> RestError {
    RestError::new(
        StatusCode::NOT_FOUND,
        "NoSuchNamespaceException",
        format!(
            "namespace {name} does not exist: Osprey's namespaces (its schemas) have one level"
        ),
    )
}

/// `POST /v1/oauth/tokens`: OAuth2 client credentials (a user's name and password) for a
/// bearer token, answered as RFC 6749 says, errors included.
async fn issue_token(State(state): State<HttpState>, request: axum::extract::Request) -> Response {
    // Set by `serve::serve`; absent when the router is served another way (tests).
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let body = match axum::body::to_bytes(request.into_body(), super::MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(err) => return RestError::bad_request(err.to_string()).into_response(),
    };
    let oauth_error = |status: StatusCode, code: &str, description: String| {
        (
            status,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response()
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "use grant_type=client_credentials with a user's name as client_id and password as \
             client_secret"
                .to_string(),
        );
    }
    let (Some(user), Some(password)) = (form.get("client_id"), form.get("client_secret")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id (a user's name) and client_secret (the password) are required".to_string(),
        );
    };
    let auth = state.service.engine().auth();
    match auth.login(user, password, peer).await {
        Ok(token) => Json(json!({
            "access_token": token,
            "token_type": "bearer",
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "expires_in": auth.token_ttl().as_secs(),
        }))
        .into_response(),
        Err(err @ (AuthError::Unavailable | AuthError::Busy)) => oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            err.to_string(),
        ),
        Err(err) => oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", err.to_string()),
    }
}

/// The endpoints served, as `GET /v1/config` lists them so that clients (Java's, Trino's) call
/// no other (views, multi-table transactions, metrics reports, namespace properties).
const ENDPOINTS: [&str; 13] = [
    "GET /v1/{prefix}/namespaces",
    "POST /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "HEAD /v1/{prefix}/namespaces/{namespace}",
    "DELETE /v1/{prefix}/namespaces/{namespace}",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "POST /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/register",
    "POST /v1/{prefix}/tables/rename",
];

/// `GET /v1/config`: no prefix, no overrides, the endpoints served.
async fn config(_user: IcebergUser) -> Json<Value> {
    Json(json!({"defaults": {}, "overrides": {}, "endpoints": ENDPOINTS}))
}

#[derive(Deserialize)]
struct ListNamespaces {
    parent: Option<String>,
}

async fn list_namespaces(
    State(state): State<HttpState>,
    IcebergUser(user): IcebergUser,
    Query(query): Query<ListNamespaces>,
) -> Result<Json<Value>, RestError> {
    let catalog = catalog(&state)?;
    // Namespaces have one level: none has children.
    let names = match query.parent.filter(|parent| !parent.is_empty()) {
        Some(_) => Vec::new(),
        None => catalog.namespaces(&user).await?,
    };
    let levels: Vec<[String; 1]> = names.into_iter().map(|name| [name]).collect();
    Ok(Json(json!({ "namespaces": levels })))
}

#[derive(Deserialize)]
struct CreateNamespace {
    namespace: Vec<String>,
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

async fn create_namespace(
    State(state): State<HttpState>,
    IcebergUser(user): IcebergUser,
    bytes: Bytes,
) -> Result<Json<Value>, RestError> {
    let request: CreateNamespace = body(&bytes)?;
    let [name] = request.namespace.as_slice() else {
        return Err(RestError::bad_request(
            "Osprey's namespaces (its schemas) have one level",
        ));
    };
    if !request.properties.is_empty() {
        return Err(RestError::new(
            StatusCode::NOT_ACCEPTABLE,
            "UnsupportedOperationException",
            "namespace properties: Osprey's namespaces have none",
        ));
    }
    catalog(&state)?.create_namespace(&user, name).await?;
    Ok(Json(json!({"namespace": [name], "properties": {}})))
}

async fn load_namespace(
    State(state): State<HttpState>,
    IcebergUser(user): IcebergUser,
    Path(namespace): Path<String>,
) -> Result<Json<Value>, RestError> {
    let name = path_namespace(&namespace)?;
    if !catalog(&state)?.namespace_exists(&user, name) {
        return Err(ServedCatalogError::NoSuchNamespace(format!(
            "namespace {name} does not exist"
        ))
        .into());
    }
    Ok(Json(json!({"namespace": [name], "properties": {}})))
}

async fn drop_namespace(
    State(state): State<HttpState>,
    IcebergUser(user): IcebergUser,
    Path(namespace): Path<String>,
) -> Result<StatusCode, RestError> {
    let name = path_namespace(&namespace)?;
    catalog(&state)?.drop_namespace(&user, name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tables(
    State(state): State<HttpState>,
    IcebergUser(user): IcebergUser,
    Path(namespace): Path<String>,
) -> Result<Json<Value>, RestError> {
    let name = path_namespace(&namespace)?;
    let tables = catalog(&state)?.tables(&user, name).await?;
    let identifiers: Vec<Value> = tables
        .into_iter()
        .map(|table| json!({"namespace": [name], "name": table}))
        .collect();
    Ok(Json(json!({ "identifiers": identifiers })))
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CreateTable {
    name: String,
    schema: Value,
    location: Option<String>,
    partition_spec: Option<Value>,
    write_order: Option<Value>,
    #[serde(default)]
    stage_create: bool,
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

/// A table as `loadTable` and `createTable` answer it.
fn load_result(table: osprey_service::CommittedIcebergTable) -> Json<Value> {
    Json(json!({
        "metadata-location": table.metadata_location,
        "metadata": table.metadata,
        "config": {},
    }))
}

async fn create_table(
    State(state): State<HttpState>,
    IcebergUser(user): IcebergUser,
    Path(namespace): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, RestError> {
    let namespace = path_namespace(&namespace)?;
    let request: CreateTable = body(&bytes)?;
    let table = NewServedTable {
        schema: request.schema,
        partition_spec: request.partition_spec,
        write_order: request.write_order,
        location: request.location,
        stage_create: request.stage_create,
        properties: request.properties,
    };
    let created = catalog(&state)?
        .create_table(&user, (namespace, &request.name), table)
        .await?;
    Ok(load_result(created))
}

async fn load_table(
    State(state): State<HttpState>,
    IcebergUser(user): IcebergUser,
    Path((namespace, table)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    let name: TableName<'_> = (path_namespace(&namespace)?, &table);
    Ok(load_result(catalog(&state)?.load_table(&user, name).await?))
}

#[derive(Deserialize)]
struct CommitTable {
    #[serde(default)]
    requirements: Vec<osprey_service::IcebergTableRequirement>,
    #[serde(default)]
    updates: Vec<osprey_service::IcebergTableUpdate>,
}

async fn commit_table(
    State(state): State<HttpState>,
    IcebergUser(user): IcebergUser,
    Path((namespace, table)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Json<Value>, RestError> {
    let name: TableName<'_> = (path_namespace(&namespace)?, &table);
    let request: CommitTable = body(&bytes)?;
    let committed = catalog(&state)?
        .commit_table(&user, name, &request.requirements, &request.updates)
        .await?;
    Ok(Json(json!({
        "metadata-location": committed.metadata_location,
        "metadata": committed.metadata,
    })))
}

async fn drop_table(
    State(state): State<HttpState>,
    IcebergUser(user): IcebergUser,
    Path((namespace, table)): Path<(String, String)>,
) -> Result<StatusCode, RestError> {
    let name: TableName<'_> = (path_namespace(&namespace)?, &table);
    catalog(&state)?.drop_table(&user, name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct TableIdentifier {
    namespace: Vec<String>,
    name: String,
}

#[derive(Deserialize)]
struct RenameTable {
    source: TableIdentifier,
    destination: TableIdentifier,
}

async fn rename_table(
    State(state): State<HttpState>,
    IcebergUser(user): IcebergUser,
    bytes: Bytes,
) -> Result<StatusCode, RestError> {
    let request: RenameTable = body(&bytes)?;
    let from = (
        one_level(&request.source.namespace)?,
        request.source.name.as_str(),
    );
    let to = (
        one_level(&request.destination.namespace)?,
        request.destination.name.as_str(),
    );
    catalog(&state)?.rename_table(&user, from, to).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RegisterTable {
    name: String,
    metadata_location: String,
}

async fn register_table(
    State(state): State<HttpState>,
    IcebergUser(user): IcebergUser,
    Path(namespace): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, RestError> {
    let namespace = path_namespace(&namespace)?;
    let request: RegisterTable = body(&bytes)?;
    let registered = catalog(&state)?
        .register_table(
            &user,
            (namespace, &request.name),
            &request.metadata_location,
        )
        .await?;
    Ok(load_result(registered))
}

/// `POST /v1/namespaces/{namespace}/properties`: Osprey's namespaces have no properties.
async fn namespace_properties(_user: IcebergUser) -> RestError {
    RestError::new(
        StatusCode::NOT_ACCEPTABLE,
        "UnsupportedOperationException",
        "namespace properties: Osprey's namespaces (its schemas) have none",
    )
}

async fn unknown_route() -> RestError {
    RestError::new(
        StatusCode::NOT_FOUND,
        "NotFoundException",
        "no such endpoint of the Iceberg REST catalog: Osprey serves config, oauth/tokens, \
         namespaces, tables, register and tables/rename",
    )
}
