//! The HTTP API's streaming endpoint (`POST /v1/statement:stream`, Arrow IPC), through reqwest.
//!
//! The endpoint keeps no session, as Athena's API keeps none: the client sends its catalog and
//! schema with every statement and follows the `X-Osprey-Set-*` headers a `USE` answers. What a
//! `SET` changes lasts one statement, so the corpus marks records that read an earlier `SET`
//! with `skipif http`.

use datafusion::arrow::ipc::reader::StreamReader;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use std::net::SocketAddr;
use std::time::Duration;

/// Why a statement failed through the HTTP API: the status and the error's JSON body.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {body}")]
pub struct HttpError {
    status: u16,
    body: String,
}

impl HttpError {
    fn other(err: impl std::fmt::Display) -> Self {
        Self {
            status: 0,
            body: err.to_string(),
        }
    }
}

/// One client of the HTTP API, as sqllogictest drives it.
pub struct HttpSession {
    client: reqwest::Client,
    url: String,
    user: String,
    password: String,
    catalog: Option<String>,
    schema: Option<String>,
}

impl HttpSession {
    /// A client of the HTTP API at `addr`, with Basic credentials.
    pub fn new(addr: SocketAddr, user: &str, password: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
            url: format!("http://{addr}/v1/statement:stream"),
            user: user.to_string(),
            password: password.to_string(),
            catalog: None,
            schema: None,
        }
    }
}

#[async_trait::async_trait]
impl AsyncDB for HttpSession {
    type Error = HttpError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, HttpError> {
        let mut query = vec![("format", "arrow".to_string())];
        query.extend(self.catalog.clone().map(|c| ("catalog", c)));
        query.extend(self.schema.clone().map(|s| ("schema", s)));
        let response = self
            .client
            .post(&self.url)
            .basic_auth(&self.user, Some(&self.password))
            .header("content-type", "application/sql")
            .query(&query)
            .body(sql.to_string())
            .send()
            .await
            .map_err(HttpError::other)?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        if let Some(catalog) = header("x-osprey-set-catalog") {
            self.catalog = Some(catalog);
        }
        if let Some(schema) = header("x-osprey-set-schema") {
            self.schema = Some(schema);
        }
        let body = response.bytes().await.map_err(HttpError::other)?;
        if !status.is_success() {
            return Err(HttpError {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        let reader =
            StreamReader::try_new(std::io::Cursor::new(body), None).map_err(HttpError::other)?;
        let schema = reader.schema();
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(HttpError::other)?;
        super::arrow_output(&schema, &batches).map_err(HttpError::other)
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "osprey-http"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}
