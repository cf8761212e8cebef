//! The Iceberg REST catalog protocol (`rest-catalog-open-api.yaml` in the Iceberg repository),
//! what Osprey uses of it: configuration, namespaces, tables, loading a table, and creating,
//! committing to (`updateTable`) and dropping one.
//!
//! Authentication is either a bearer token given as is, or OAuth2 client credentials
//! (`credential = 'id:secret'`) exchanged at the token endpoint (`oauth2-server-uri`, by
//! default the catalog's own `v1/oauth/tokens`) for a token that is renewed before it expires
//! and once more when the server answers 401. Secrets are never put into messages. Loading a
//! table asks for vended credentials to its files (see [`super::vended`]).
//!
//! Written on reqwest (already in the build through object_store) rather than a generated
//! client: Osprey uses eight calls.

use super::vended::{StorageCredential, table_credentials};
use super::{IcebergCatalog, LoadedTable, TableCommit, TableDefinition, error_chain};
use crate::error::IcebergError;
use crate::metadata::TableMetadata;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long one call may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many pages a listing follows at most (a server that never stops paging).
const MAX_PAGES: usize = 1_000;

/// What a REST catalog is reached with.
#[derive(Clone, Default)]
pub struct RestCatalogConfig {
    /// The catalog's base URI (`https://host/api/catalog`), without `/v1`.
    pub uri: String,
    /// The warehouse to ask the server's configuration for.
    pub warehouse: Option<String>,
    /// The path prefix after `/v1`, when the server's configuration does not set it.
    pub prefix: Option<String>,
    /// OAuth2 client credentials, `client_id:client_secret`.
    pub credential: Option<String>,
    /// A bearer token, used as is.
    pub token: Option<String>,
    /// The OAuth2 token endpoint; default `<uri>/v1/oauth/tokens`.
    pub oauth2_server_uri: Option<String>,
    /// The OAuth2 scope; default `catalog`.
    pub scope: Option<String>,
}

impl std::fmt::Debug for RestCatalogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestCatalogConfig")
            .field("uri", &self.uri)
            .field("warehouse", &self.warehouse)
            .field("prefix", &self.prefix)
            .field("credential", &self.credential.as_ref().map(|_| "****"))
            .field("token", &self.token.as_ref().map(|_| "****"))
            .finish_non_exhaustive()
    }
}

/// An Iceberg REST catalog (see the module docs).
#[derive(Debug)]
pub struct RestCatalog {
    config: RestCatalogConfig,
    client: reqwest::Client,
    /// The state learned from the server: its prefix and the current OAuth2 token.
    state: Mutex<Session>,
}

#[derive(Debug, Default)]
struct Session {
    /// `<uri>/v1[/prefix]`, once the server's configuration was read.
    base: Option<String>,
    /// The token from the OAuth2 exchange, and when to renew it.
    token: Option<(String, Instant)>,
}

#[derive(Deserialize)]
struct ConfigResponse {
    #[serde(default)]
    defaults: std::collections::HashMap<String, String>,
    #[serde(default)]
    overrides: std::collections::HashMap<String, String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct NamespacesResponse {
    namespaces: Vec<Vec<String>>,
    #[serde(rename = "next-page-token")]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct TableIdentifier {
    name: String,
}

#[derive(Deserialize)]
struct TablesResponse {
    #[serde(default)]
    identifiers: Vec<TableIdentifier>,
    #[serde(rename = "next-page-token")]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct LoadTableResponse {
    #[serde(rename = "metadata-location")]
    metadata_location: Option<String>,
    metadata: serde_json::Value,
    #[serde(default)]
    config: std::collections::HashMap<String, String>,
    #[serde(default, rename = "storage-credentials")]
    storage_credentials: Vec<StorageCredential>,
}

impl RestCatalog {
    /// A client for the catalog `config` describes. Nothing is called until the first use.
    pub fn new(config: RestCatalogConfig) -> Result<Self, IcebergError> {
        let uri = url::Url::parse(&config.uri).map_err(|err| {
            IcebergError::Catalog(format!("bad REST catalog uri {:?}: {err}", config.uri))
        })?;
        if !matches!(uri.scheme(), "http" | "https") {
            return Err(IcebergError::Catalog(format!(
                "the REST catalog's uri must be http:// or https:// (got {})",
                config.uri
            )));
        }
        if config
            .credential
            .as_deref()
            .is_some_and(|c| !c.contains(':'))
        {
            return Err(IcebergError::Catalog(
                "credential must be 'client_id:client_secret'".to_string(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|err| IcebergError::Catalog(format!("cannot build an HTTP client: {err}")))?;
        Ok(Self {
            config: RestCatalogConfig {
                uri: config.uri.trim_end_matches('/').to_string(),
                ..config
            },
            client,
            state: Mutex::new(Session::default()),
        })
    }

    fn unreachable(&self, err: reqwest::Error) -> IcebergError {
        // reqwest's message can hold the URL, never headers: no secret reaches it.
        IcebergError::CatalogUnavailable(format!(
            "the Iceberg REST catalog at {} cannot be reached: {}",
            self.config.uri,
            error_chain(&err)
        ))
    }

    /// A token for the next call: the configured one, or one from the OAuth2 exchange.
    async fn token(
        &self,
        session: &mut Session,
        renew: bool,
    ) -> Result<Option<String>, IcebergError> {
        let Some(credential) = &self.config.credential else {
            return Ok(self.config.token.clone());
        };
        if !renew
            && let Some((token, renew_at)) = &session.token
            && Instant::now() < *renew_at
        {
            return Ok(Some(token.clone()));
        }
        let (id, secret) = credential.split_once(':').unwrap_or((credential, ""));
        let endpoint = self
            .config
            .oauth2_server_uri
            .clone()
            .unwrap_or_else(|| format!("{}/v1/oauth/tokens", self.config.uri));
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", id)
            .append_pair("client_secret", secret)
            .append_pair("scope", self.config.scope.as_deref().unwrap_or("catalog"))
            .finish();
        let response = self
            .client
            .post(&endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|err| self.unreachable(err))?;
        let status = response.status();
        let text = response.text().await.map_err(|err| self.unreachable(err))?;
        if !status.is_success() {
            return Err(self.refused(status, "the OAuth2 token exchange", &text));
        }
        let token: TokenResponse = serde_json::from_str(&text).map_err(|err| {
            IcebergError::Catalog(format!(
                "the OAuth2 token endpoint {endpoint} answered {err}"
            ))
        })?;
        // Renew at 90% of the lifetime (an hour when the server does not say).
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600)).mul_f64(0.9);
        session.token = Some((token.access_token.clone(), Instant::now() + lifetime));
        Ok(Some(token.access_token))
    }

    /// An error for a call the server answered with `status`.
    fn refused(&self, status: StatusCode, call: &str, body: &str) -> IcebergError {
        // The spec's ErrorModel: {"error": {"message", "type", "code"}}.
        let detail = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.chars().take(200).collect());
        let message = format!(
            "the Iceberg REST catalog at {} refused {call} ({status}): {detail}",
            self.config.uri
        );
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                IcebergError::CatalogDenied(message)
            }
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                IcebergError::CatalogUnavailable(message)
            }
            _ => IcebergError::Catalog(message),
        }
    }

    /// `GET <base><path>`: the body of a successful answer, `None` for 404.
    async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<String>, IcebergError> {
        match self.send(Method::GET, path, query, None).await? {
            (s, text) if s.is_success() => Ok(Some(text)),
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (s, text) => Err(self.refused(s, &format!("GET {path}"), &text)),
        }
    }

    /// Sends `<method> <base><path>` (with a JSON `body`), exchanging the credentials once
    /// more when the token expired; the status and body of the answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, String), IcebergError> {
        let mut session = self.state.lock().await;
        let base = self.base(&mut session).await?;
        let url = format!("{base}{path}");
        let mut renew = false;
        loop {
            let token = self.token(&mut session, renew).await?;
            // As pyiceberg does, every call asks for credentials to the table's files; servers
            // that do not vend them ignore it.
            let mut request = self
                .client
                .request(method.clone(), &url)
                .query(query)
                .header("X-Iceberg-Access-Delegation", "vended-credentials");
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.map_err(|err| self.unreachable(err))?;
            let status = response.status();
            let text = response.text().await.map_err(|err| self.unreachable(err))?;
            match status {
                // An expired token: exchange the credentials once more.
                StatusCode::UNAUTHORIZED if !renew && self.config.credential.is_some() => {
                    renew = true;
                }
                status => return Ok((status, text)),
            }
        }
    }

    /// `<uri>/v1[/prefix]`, reading the server's configuration the first time.
    async fn base(&self, session: &mut Session) -> Result<String, IcebergError> {
        if let Some(base) = &session.base {
            return Ok(base.clone());
        }
        let token = self.token(session, false).await?;
        let mut request = self.client.get(format!("{}/v1/config", self.config.uri));
        if let Some(warehouse) = &self.config.warehouse {
            request = request.query(&[("warehouse", warehouse)]);
        }
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|err| self.unreachable(err))?;
        let status = response.status();
        let text = response.text().await.map_err(|err| self.unreachable(err))?;
        if !status.is_success() {
            return Err(self.refused(status, "GET /v1/config", &text));
        }
        let config: ConfigResponse = serde_json::from_str(&text).map_err(|err| {
            IcebergError::Catalog(format!(
                "GET /v1/config answered something unexpected: {err}"
            ))
        })?;
        // The server's overrides win over the client's settings, which win over its defaults.
        let prefix = config
            .overrides
            .get("prefix")
            .cloned()
            .or_else(|| self.config.prefix.clone())
            .or_else(|| config.defaults.get("prefix").cloned());
        let base = match prefix.as_deref().map(|p| p.trim_matches('/')) {
            Some(prefix) if !prefix.is_empty() => format!("{}/v1/{prefix}", self.config.uri),
            _ => format!("{}/v1", self.config.uri),
        };
        session.base = Some(base.clone());
        Ok(base)
    }

    fn unexpected(&self, call: &str, err: serde_json::Error) -> IcebergError {
        IcebergError::Catalog(format!(
            "the Iceberg REST catalog at {} answered {call} with something unexpected: {err}",
            self.config.uri
        ))
    }
}

/// A namespace as a path segment: levels split on `.`, each percent-encoded, joined by the
/// unit separator (0x1F) as the spec says.
fn namespace_path(namespace: &str) -> String {
    namespace
        .split('.')
        .map(segment)
        .collect::<Vec<_>>()
        .join("%1F")
}

/// `name` percent-encoded as one path segment.
fn segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[async_trait::async_trait]
impl IcebergCatalog for RestCatalog {
    fn kind(&self) -> &'static str {
        "rest"
    }

    async fn namespaces(&self) -> Result<Vec<String>, IcebergError> {
        let mut names = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let query: Vec<(&str, &str)> = page.iter().map(|p| ("pageToken", p.as_str())).collect();
            let Some(body) = self.get("/namespaces", &query).await? else {
                break;
            };
            let answer: NamespacesResponse = serde_json::from_str(&body)
                .map_err(|err| self.unexpected("GET /namespaces", err))?;
            names.extend(answer.namespaces.into_iter().map(|levels| levels.join(".")));
            match answer.next_page_token {
                Some(next) if !next.is_empty() => page = Some(next),
                _ => break,
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn table_names(&self, namespace: &str) -> Result<Vec<String>, IcebergError> {
        let path = format!("/namespaces/{}/tables", namespace_path(namespace));
        let mut names = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let query: Vec<(&str, &str)> = page.iter().map(|p| ("pageToken", p.as_str())).collect();
            let Some(body) = self.get(&path, &query).await? else {
                break;
            };
            let answer: TablesResponse =
                serde_json::from_str(&body).map_err(|err| self.unexpected(&path, err))?;
            names.extend(answer.identifiers.into_iter().map(|id| id.name));
            match answer.next_page_token {
                Some(next) if !next.is_empty() => page = Some(next),
                _ => break,
            }
        }
        names.sort();
        Ok(names)
    }

    async fn load_table(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<LoadedTable>, IcebergError> {
        let path = format!(
            "/namespaces/{}/tables/{}",
            namespace_path(namespace),
            segment(name)
        );
        let Some(body) = self.get(&path, &[]).await? else {
            return Ok(None);
        };
        let answer: LoadTableResponse =
            serde_json::from_str(&body).map_err(|err| self.unexpected(&path, err))?;
        let metadata = TableMetadata::from_json(answer.metadata.to_string().as_bytes())?;
        let metadata_location = answer.metadata_location.ok_or_else(|| {
            IcebergError::Catalog(format!(
                "the REST catalog sent {namespace}.{name} without its metadata-location"
            ))
        })?;
        let credentials = table_credentials(
            &metadata.location,
            &answer.storage_credentials,
            &answer.config,
        );
        Ok(Some(LoadedTable {
            metadata_location,
            metadata: Some(metadata),
            credentials,
        }))
    }

    fn check_writable(&self) -> Result<(), IcebergError> {
        Ok(())
    }

    fn writes_metadata(&self) -> bool {
        true
    }

    /// The spec's `updateTable`: the snapshot added and `main` moved to it, on the condition
    /// that `main` is still where the commit started.
    async fn commit_table(
        &self,
        namespace: &str,
        name: &str,
        commit: &TableCommit,
    ) -> Result<bool, IcebergError> {
        let path = format!(
            "/namespaces/{}/tables/{}",
            namespace_path(namespace),
            segment(name)
        );
        let body = serde_json::json!({
            "identifier": {"namespace": namespace.split('.').collect::<Vec<_>>(), "name": name},
            "requirements": commit.requirements,
            "updates": commit.updates,
        });
        let call = format!("POST {path}");
        match self.send(Method::POST, &path, &[], Some(&body)).await {
            Ok((status, _)) if status.is_success() => Ok(true),
            Ok((StatusCode::CONFLICT, _)) => Ok(false),
            // The spec's CommitStateUnknown: the commit may have happened.
            Ok((
                status @ (StatusCode::INTERNAL_SERVER_ERROR
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT),
                text,
            )) => Err(IcebergError::CommitStateUnknown(
                self.refused(status, &call, &text).to_string(),
            )),
            Ok((status, text)) => Err(self.refused(status, &call, &text)),
            Err(IcebergError::CatalogUnavailable(message)) => {
                Err(IcebergError::CommitStateUnknown(message))
            }
            Err(err) => Err(err),
        }
    }

    async fn create_table(
        &self,
        namespace: &str,
        name: &str,
        definition: &TableDefinition,
    ) -> Result<(), IcebergError> {
        let path = format!("/namespaces/{}/tables", namespace_path(namespace));
        let body = serde_json::json!({
            "name": name,
            "schema": definition.schema,
            "partition-spec": definition.partition_spec,
            "properties": definition.properties,
            "stage-create": false,
        });
        match self.send(Method::POST, &path, &[], Some(&body)).await? {
            (status, _) if status.is_success() => Ok(()),
            (StatusCode::CONFLICT, _) => Err(IcebergError::Catalog(format!(
                "table {namespace}.{name} already exists"
            ))),
            (status, text) => Err(self.refused(status, &format!("POST {path}"), &text)),
        }
    }

    async fn create_namespace(&self, namespace: &str) -> Result<(), IcebergError> {
        let levels: Vec<&str> = namespace.split('.').collect();
        let body = serde_json::json!({"namespace": levels, "properties": {}});
        match self
            .send(Method::POST, "/namespaces", &[], Some(&body))
            .await?
        {
            (status, _) if status.is_success() => Ok(()),
            (StatusCode::CONFLICT, _) => Err(IcebergError::Catalog(format!(
                "namespace {namespace} already exists"
            ))),
            (status, text) => Err(self.refused(status, "POST /namespaces", &text)),
        }
    }

    async fn drop_namespace(&self, namespace: &str) -> Result<bool, IcebergError> {
        let path = format!("/namespaces/{}", namespace_path(namespace));
        match self.send(Method::DELETE, &path, &[], None).await? {
            (status, _) if status.is_success() => Ok(true),
            (StatusCode::NOT_FOUND, _) => Ok(false),
            (StatusCode::CONFLICT, _) => Err(IcebergError::Catalog(format!(
                "namespace {namespace} holds tables: drop them first"
            ))),
            (status, text) => Err(self.refused(status, &format!("DELETE {path}"), &text)),
        }
    }

    async fn rename_table(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), IcebergError> {
        let ident = |(namespace, name): (&str, &str)| serde_json::json!({"namespace": namespace.split('.').collect::<Vec<_>>(), "name": name});
        let body = serde_json::json!({"source": ident(from), "destination": ident(to)});
        match self
            .send(Method::POST, "/tables/rename", &[], Some(&body))
            .await?
        {
            (status, _) if status.is_success() => Ok(()),
            (status, text) => Err(self.refused(status, "POST /tables/rename", &text)),
        }
    }

    async fn drop_table(&self, namespace: &str, name: &str) -> Result<bool, IcebergError> {
        let path = format!(
            "/namespaces/{}/tables/{}",
            namespace_path(namespace),
            segment(name)
        );
        match self
            .send(Method::DELETE, &path, &[("purgeRequested", "false")], None)
            .await?
        {
            (status, _) if status.is_success() => Ok(true),
            (StatusCode::NOT_FOUND, _) => Ok(false),
            (status, text) => Err(self.refused(status, &format!("DELETE {path}"), &text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_become_one_path_segment() {
        assert_eq!(namespace_path("sales"), "sales");
        assert_eq!(namespace_path("sales.eu west"), "sales%1Feu%20west");
        let config = RestCatalogConfig {
            uri: "http://x".into(),
            credential: Some("id:secret".into()),
            ..Default::default()
        };
        assert!(!format!("{config:?}").contains("secret"));
    }
}
