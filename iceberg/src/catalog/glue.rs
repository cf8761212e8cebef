//! The AWS Glue Data Catalog: databases are namespaces, and a table is an Iceberg table when
//! its `table_type` parameter is `ICEBERG` (as Athena, Trino, Spark and pyiceberg mark them);
//! its `metadata_location` parameter names the current metadata file.
//!
//! Writes go as Java's and pyiceberg's Glue catalogs make them: a commit reads the table,
//! checks that it still names the metadata file the change was built on, and updates it with
//! Glue's `VersionId` (optimistic locking: Glue refuses the update if another came first);
//! new tables are registered with their first metadata file, under `<warehouse>/<namespace>.db/
//! <table>`.
//!
//! Glue's API is JSON over HTTP (`X-Amz-Target: AWSGlue.<Operation>`), signed with AWS
//! Signature Version 4. Written on reqwest, signed by object_store's `AwsAuthorizer`, with
//! object_store's AWS credential chain (both already in the build for S3), rather than on the
//! AWS SDK, which would bring its own HTTP stack and runtime for three calls.
//!
//! Credentials are the static keys of the catalog's properties, or else the process's AWS
//! credentials as the SDKs find them (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, web
//! identity, the container and instance metadata endpoints). Secrets are never put into
//! messages.

use super::{IcebergCatalog, LoadedTable, TableCommit, error_chain};
use crate::error::IcebergError;
use object_store::aws::{AmazonS3Builder, AwsAuthorizer, AwsCredential, AwsCredentialProvider};
use object_store::client::{HttpRequest, HttpRequestBody};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long one call may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many pages a listing follows at most (a server that never stops paging).
const MAX_PAGES: usize = 1_000;

/// What a Glue catalog is reached with (pyiceberg's `glue.*` properties).
#[derive(Clone, Default)]
pub struct GlueCatalogConfig {
    /// The AWS region (`glue.region`); default `AWS_REGION`, then `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// The endpoint (`glue.endpoint`); default `https://glue.<region>.amazonaws.com`.
    pub endpoint: Option<String>,
    /// The catalog's id, the owning account (`glue.id`); default the caller's account.
    pub catalog_id: Option<String>,
    /// A static access key id (`glue.access-key-id`).
    pub access_key_id: Option<String>,
    /// Its secret (`glue.secret-access-key`).
    pub secret_access_key: Option<String>,
    /// A session token for temporary keys (`glue.session-token`).
    pub session_token: Option<String>,
    /// Where new tables go (`warehouse`), as `<warehouse>/<namespace>.db/<table>`.
    pub warehouse: Option<String>,
}

impl std::fmt::Debug for GlueCatalogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlueCatalogConfig")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("catalog_id", &self.catalog_id)
            .field("access_key_id", &self.access_key_id)
            .field("warehouse", &self.warehouse)
            .finish_non_exhaustive()
    }
}

/// A Glue Data Catalog (see the module docs).
#[derive(Debug)]
pub struct GlueCatalog {
    region: String,
    endpoint: String,
    catalog_id: Option<String>,
    credentials: AwsCredentialProvider,
    client: reqwest::Client,
    warehouse: Option<String>,
}

impl GlueCatalog {
    /// A client for the catalog `config` describes. Nothing is called until the first use.
    pub fn new(config: GlueCatalogConfig) -> Result<Self, IcebergError> {
        let invalid = |message: String| IcebergError::Catalog(message);
        let region = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .filter(|region| !region.is_empty())
            .ok_or_else(|| {
                invalid(
                    "a Glue catalog needs its region: set glue.region (or AWS_REGION for the \
                     coordinator)"
                        .to_string(),
                )
            })?;
        // Values end up in signed headers: refuse what a header cannot hold, up front.
        for (name, value) in [
            ("glue.region", Some(&region)),
            ("glue.access-key-id", config.access_key_id.as_ref()),
            ("glue.secret-access-key", config.secret_access_key.as_ref()),
            ("glue.session-token", config.session_token.as_ref()),
        ] {
            if value.is_some_and(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic())) {
                return Err(invalid(format!(
                    "{name} must be non-empty printable ASCII without spaces"
                )));
            }
        }
        let endpoint = config
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://glue.{region}.amazonaws.com"));
        let parsed = url::Url::parse(&endpoint)
            .map_err(|err| invalid(format!("bad glue.endpoint {endpoint:?}: {err}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(invalid(format!(
                "glue.endpoint must be an http:// or https:// URL (got {endpoint})"
            )));
        }
        let credentials: AwsCredentialProvider =
            match (&config.access_key_id, &config.secret_access_key) {
                (Some(key_id), Some(secret_key)) => {
                    Arc::new(object_store::StaticCredentialProvider::new(AwsCredential {
                        key_id: key_id.clone(),
                        secret_key: secret_key.clone(),
                        token: config.session_token.clone(),
                    }))
                }
                (None, None) => {
                    // object_store keeps the AWS credential chain behind its S3 client; the
                    // bucket is never called.
                    AmazonS3Builder::from_env()
                        .with_region(&region)
                        .with_bucket_name("osprey-glue-credentials")
                        .build()
                        .map_err(|err| {
                            invalid(format!("cannot find AWS credentials for Glue: {err}"))
                        })?
                        .credentials()
                        .clone()
                }
                _ => {
                    return Err(invalid(
                        "give a Glue catalog both glue.access-key-id and glue.secret-access-key, \
                         or neither (to use the coordinator's AWS credentials)"
                            .to_string(),
                    ));
                }
            };
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|err| invalid(format!("cannot build an HTTP client: {err}")))?;
        Ok(Self {
            region,
            endpoint,
            catalog_id: config.catalog_id,
            credentials,
            client,
            warehouse: config
                .warehouse
                .map(|w| w.trim_end_matches('/').to_string()),
        })
    }

    /// Calls the Glue operation `operation` with `body` (the catalog id added); `None` when
    /// Glue answers that the entity does not exist.
    async fn call(&self, operation: &str, mut body: Value) -> Result<Option<Value>, IcebergError> {
        if let (Some(id), Some(fields)) = (&self.catalog_id, body.as_object_mut()) {
            fields.insert("CatalogId".to_string(), Value::String(id.clone()));
        }
        let payload = body.to_string().into_bytes();
        let credential = self.credentials.get_credential().await.map_err(|err| {
            IcebergError::CatalogDenied(format!(
                "no AWS credentials for the Glue catalog: {}",
                error_chain(&err)
            ))
        })?;
        let mut request = HttpRequest::new(HttpRequestBody::from(payload.clone()));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.endpoint.parse().map_err(|err| {
            IcebergError::Catalog(format!("bad glue.endpoint {}: {err}", self.endpoint))
        })?;
        let headers = request.headers_mut();
        headers.insert(
            "content-type",
            http::HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        headers.insert(
            "x-amz-target",
            http::HeaderValue::from_str(&format!("AWSGlue.{operation}"))
                .map_err(|err| IcebergError::Catalog(err.to_string()))?,
        );
        AwsAuthorizer::new(&credential, "glue", &self.region).authorize(&mut request, None);
        let response = self
            .client
            .post(&self.endpoint)
            .headers(request.headers().clone())
            .body(payload)
            .send()
            .await
            .map_err(|err| self.unreachable(err))?;
        let status = response.status();
        let text = response.text().await.map_err(|err| self.unreachable(err))?;
        if status.is_success() {
            // Some operations answer nothing (moto's CreateDatabase, for one).
            if text.trim().is_empty() {
                return Ok(Some(json!({})));
            }
            return serde_json::from_str(&text).map(Some).map_err(|err| {
                IcebergError::Catalog(format!(
                    "the Glue catalog at {} answered {operation} with something unexpected: {err}",
                    self.endpoint
                ))
            });
        }
        self.refused(status, operation, &text)
    }

    fn unreachable(&self, err: reqwest::Error) -> IcebergError {
        IcebergError::CatalogUnavailable(format!(
            "the Glue catalog at {} cannot be reached: {}",
            self.endpoint,
            error_chain(&err)
        ))
    }

    /// The error (or, for a missing entity, `None`) of a call Glue answered with `status`.
    fn refused(
        &self,
        status: StatusCode,
        operation: &str,
        body: &str,
    ) -> Result<Option<Value>, IcebergError> {
        // Glue's errors: {"__type": "...#EntityNotFoundException", "message": "..."}.
        let answer: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let kind = answer["__type"]
            .as_str()
            .unwrap_or("")
            .rsplit('#')
            .next()
            .unwrap_or("")
            .to_string();
        let detail = answer["message"]
            .as_str()
            .or(answer["Message"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| body.chars().take(200).collect());
        let message = format!(
            "the Glue catalog at {} refused {operation} ({status}{}): {detail}",
            self.endpoint,
            if kind.is_empty() {
                String::new()
            } else {
                format!(", {kind}")
            }
        );
        Err(match kind.as_str() {
            "EntityNotFoundException" => return Ok(None),
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "MissingAuthenticationTokenException" => IcebergError::CatalogDenied(message),
            "ThrottlingException" | "InternalServiceException" | "OperationTimeoutException" => {
                IcebergError::CatalogUnavailable(message)
            }
            _ if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED => {
                IcebergError::CatalogDenied(message)
            }
            _ if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
                IcebergError::CatalogUnavailable(message)
            }
            _ => IcebergError::Catalog(message),
        })
    }

    /// Every item of the paged listing `operation` answers under `field`.
    async fn list(
        &self,
        operation: &str,
        body: Value,
        field: &str,
    ) -> Result<Vec<Value>, IcebergError> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut page = body.clone();
            if let (Some(token), Some(fields)) = (&next, page.as_object_mut()) {
                fields.insert("NextToken".to_string(), Value::String(token.clone()));
            }
            let Some(mut answer) = self.call(operation, page).await? else {
                break;
            };
            if let Some(Value::Array(page_items)) = answer.get_mut(field).map(Value::take) {
                items.extend(page_items);
            }
            match answer["NextToken"].as_str() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => break,
            }
        }
        Ok(items)
    }
}

/// Whether a Glue table (`GetTable`'s `Table`) is an Iceberg table.
fn is_iceberg(table: &Value) -> bool {
    table["Parameters"]["table_type"]
        .as_str()
        .is_some_and(|kind| kind.eq_ignore_ascii_case("iceberg"))
}

#[async_trait::async_trait]
impl IcebergCatalog for GlueCatalog {
    fn kind(&self) -> &'static str {
        "glue"
    }

    async fn namespaces(&self) -> Result<Vec<String>, IcebergError> {
        let databases = self.list("GetDatabases", json!({}), "DatabaseList").await?;
        let mut names: Vec<String> = databases
            .iter()
            .filter_map(|database| database["Name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn table_names(&self, namespace: &str) -> Result<Vec<String>, IcebergError> {
        let tables = self
            .list(
                "GetTables",
                json!({ "DatabaseName": namespace }),
                "TableList",
            )
            .await?;
        // Other tables of the database (Hive, views) are not Iceberg tables: left out.
        let mut names: Vec<String> = tables
            .iter()
            .filter(|table| is_iceberg(table))
            .filter_map(|table| table["Name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn load_table(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<LoadedTable>, IcebergError> {
        let Some(answer) = self
            .call(
                "GetTable",
                json!({ "DatabaseName": namespace, "Name": name }),
            )
            .await?
        else {
            return Ok(None);
        };
        let table = &answer["Table"];
        if !is_iceberg(table) {
            return Err(IcebergError::Catalog(format!(
                "{namespace}.{name} in the Glue catalog is not an Iceberg table (its table_type \
                 is {})",
                table["Parameters"]["table_type"]
                    .as_str()
                    .map(|kind| format!("'{kind}'"))
                    .unwrap_or_else(|| "not set".to_string())
            )));
        }
        let metadata_location = table["Parameters"]["metadata_location"]
            .as_str()
            .filter(|location| !location.is_empty())
            .ok_or_else(|| {
                IcebergError::Catalog(format!(
                    "{namespace}.{name} in the Glue catalog has no metadata_location parameter"
                ))
            })?;
        Ok(Some(LoadedTable {
            metadata_location: metadata_location.to_string(),
            metadata: None,
            credentials: None,
        }))
    }

    fn check_writable(&self) -> Result<(), IcebergError> {
        Ok(())
    }

    async fn commit_table(
        &self,
        namespace: &str,
        name: &str,
        commit: &TableCommit,
    ) -> Result<bool, IcebergError> {
        let key = json!({ "DatabaseName": namespace, "Name": name });
        let Some(answer) = self.call("GetTable", key).await? else {
            return Err(IcebergError::Catalog(format!(
                "{namespace}.{name} left the Glue catalog while Osprey wrote to it"
            )));
        };
        let table = &answer["Table"];
        if table["Parameters"]["metadata_location"].as_str() != Some(&commit.base_location) {
            return Ok(false);
        }
        let mut parameters = table["Parameters"].clone();
        parameters["metadata_location"] = json!(commit.metadata_location);
        parameters["previous_metadata_location"] = json!(commit.base_location);
        // UpdateTable replaces the whole definition: what the table had is kept.
        let mut input = json!({ "Name": name, "Parameters": parameters });
        for field in [
            "Description",
            "Owner",
            "StorageDescriptor",
            "PartitionKeys",
            "TableType",
        ] {
            if let Some(value) = table.get(field) {
                input[field] = value.clone();
            }
        }
        let mut body = json!({ "DatabaseName": namespace, "TableInput": input });
        if let Some(version) = table["VersionId"].as_str() {
            body["VersionId"] = json!(version);
        }
        match self.call("UpdateTable", body).await {
            Ok(_) => Ok(true),
            Err(IcebergError::Catalog(message)) if message.contains("ConcurrentModification") => {
                Ok(false)
            }
            // Sent, perhaps applied: the commit's outcome is unknown.
            Err(IcebergError::CatalogUnavailable(message)) => {
                Err(IcebergError::CommitStateUnknown(message))
            }
            Err(err) => Err(err),
        }
    }

    fn default_location(&self, namespace: &str, name: &str) -> Option<String> {
        Some(format!(
            "{}/{namespace}.db/{name}",
            self.warehouse.as_ref()?
        ))
    }

    async fn register_table(
        &self,
        namespace: &str,
        name: &str,
        metadata_location: &str,
    ) -> Result<(), IcebergError> {
        let input = json!({
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"table_type": "ICEBERG", "metadata_location": metadata_location},
        });
        self.call(
            "CreateTable",
            json!({ "DatabaseName": namespace, "TableInput": input }),
        )
        .await?
        .map(|_| ())
        .ok_or_else(|| {
            IcebergError::Catalog(format!(
                "namespace {namespace} does not exist in the Glue catalog"
            ))
        })
    }

    async fn create_namespace(&self, namespace: &str) -> Result<(), IcebergError> {
        self.call(
            "CreateDatabase",
            json!({ "DatabaseInput": { "Name": namespace } }),
        )
        .await
        .map(|_| ())
    }

    async fn drop_namespace(&self, namespace: &str) -> Result<bool, IcebergError> {
        let key = json!({ "Name": namespace });
        if self.call("GetDatabase", key.clone()).await?.is_none() {
            return Ok(false);
        }
        // Glue drops a database's tables with it: refuse one that has any, as SQL does.
        let tables = self
            .list(
                "GetTables",
                json!({ "DatabaseName": namespace }),
                "TableList",
            )
            .await?;
        if !tables.is_empty() {
            return Err(IcebergError::Catalog(format!(
                "namespace {namespace} is not empty: drop its tables first"
            )));
        }
        Ok(self.call("DeleteDatabase", key).await?.is_some())
    }

    async fn drop_table(&self, namespace: &str, name: &str) -> Result<bool, IcebergError> {
        Ok(self
            .call(
                "DeleteTable",
                json!({ "DatabaseName": namespace, "Name": name }),
            )
            .await?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked_before_any_call() {
        let config = |pairs: &[(&str, &str)]| {
            let get = |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            };
            GlueCatalogConfig {
                region: get("region"),
                endpoint: get("endpoint"),
                access_key_id: get("key"),
                secret_access_key: get("secret"),
                session_token: get("token"),
                catalog_id: None,
                warehouse: None,
            }
        };
        let ok = GlueCatalog::new(config(&[
            ("region", "eu-west-1"),
            ("key", "AKID"),
            ("secret", "s3cr3t"),
        ]))
        .unwrap();
        assert_eq!(ok.endpoint, "https://glue.eu-west-1.amazonaws.com");
        assert!(!format!("{ok:?}").contains("s3cr3t"));
        for (bad, why) in [
            (
                config(&[("region", "eu-west-1"), ("key", "AKID")]),
                "both glue.access-key-id",
            ),
            (
                config(&[
                    ("region", "eu-west-1"),
                    ("key", "AKID"),
                    ("secret", "s"),
                    ("token", "a\nb"),
                ]),
                "printable ASCII",
            ),
            (
                config(&[("region", "eu-west-1"), ("endpoint", "ftp://x")]),
                "http:// or https://",
            ),
        ] {
            let err = GlueCatalog::new(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn glue_errors_map_to_kinds() {
        let catalog = GlueCatalog::new(GlueCatalogConfig {
            region: Some("us-east-1".to_string()),
            access_key_id: Some("AKID".to_string()),
            secret_access_key: Some("secret".to_string()),
            ..Default::default()
        })
        .unwrap();
        let refused = |status: u16, body: &str| {
            catalog.refused(StatusCode::from_u16(status).unwrap(), "GetTable", body)
        };
        assert!(matches!(
            refused(
                400,
                r#"{"__type":"com.amazonaws#EntityNotFoundException","message":"no"}"#
            ),
            Ok(None)
        ));
        assert!(matches!(
            refused(400, r#"{"__type":"AccessDeniedException","message":"no"}"#),
            Err(IcebergError::CatalogDenied(_))
        ));
        assert!(matches!(
            refused(400, r#"{"__type":"ThrottlingException"}"#),
            Err(IcebergError::CatalogUnavailable(_))
        ));
        assert!(matches!(
            refused(503, "busy"),
            Err(IcebergError::CatalogUnavailable(_))
        ));
        let Err(IcebergError::Catalog(message)) = refused(
            400,
            r#"{"__type":"InvalidInputException","message":"bad name"}"#,
        ) else {
            panic!("an invalid input is a catalog error");
        };
        assert!(message.contains("bad name") && message.contains("InvalidInputException"));
    }
}
