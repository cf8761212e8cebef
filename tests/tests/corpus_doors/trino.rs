//! The Trino protocol door, through the `trino` Python client (Trino's own), which a small
//! bridge process (`tests/python/trino_corpus_bridge.py`) runs for this Rust runner: one
//! statement per JSON line in, one answer per line out. The bridge holds one connection, so
//! what the door sets in the session (`USE`, `SET SESSION`) lasts, as for any Trino client.
//!
//! Needs `OSPREY_TEST_PYTHON`: the Python of the test virtualenv (scripts/test.sh sets it).

use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Why a statement failed through the Trino door: the server's message, or the bridge's.
#[derive(Debug, thiserror::Error)]
#[error("{message} ({error_name})")]
pub struct TrinoError {
    message: String,
    error_name: String,
}

impl TrinoError {
    fn bridge(err: impl std::fmt::Display) -> Self {
        Self {
            message: format!("the Trino client bridge failed: {err}"),
            error_name: "BRIDGE".to_string(),
        }
    }
}

/// One Trino client connection, as sqllogictest drives it.
pub struct TrinoSession {
    bridge: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl TrinoSession {
    /// Starts a bridge connected to the coordinator's HTTP port `addr`.
    pub fn connect(addr: SocketAddr, user: &str, password: &str) -> Result<Self, TrinoError> {
        let python = std::env::var("OSPREY_TEST_PYTHON").expect(
            "OSPREY_TEST_PYTHON must name the Python of the test virtualenv (with the trino \
             client) for the corpus through the Trino door; scripts/test.sh sets it",
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/trino_corpus_bridge.py");
        let mut bridge = Command::new(python)
            .arg(script)
            .args(["--url", &format!("http://{addr}")])
            .args(["--user", user, "--password", password])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(TrinoError::bridge)?;
        let stdin = bridge.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(bridge.stdout.take().expect("piped stdout")).lines();
        Ok(Self {
            bridge,
            stdin,
            stdout,
        })
    }
}

#[async_trait::async_trait]
impl AsyncDB for TrinoSession {
    type Error = TrinoError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, TrinoError> {
        let mut line = serde_json::json!({ "sql": sql }).to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(TrinoError::bridge)?;
        self.stdin.flush().await.map_err(TrinoError::bridge)?;
        let answer = self
            .stdout
            .next_line()
            .await
            .map_err(TrinoError::bridge)?
            .ok_or_else(|| TrinoError::bridge("it ended"))?;
        let answer: serde_json::Value =
            serde_json::from_str(&answer).map_err(TrinoError::bridge)?;
        let text = |key: &str| answer[key].as_str().unwrap_or_default().to_string();
        if answer["ok"] != true {
            return Err(TrinoError {
                message: text("message"),
                error_name: text("error_name"),
            });
        }
        if let Some(count) = answer["update_count"].as_u64() {
            return Ok(DBOutput::StatementComplete(count));
        }
        let columns = answer["columns"].as_array().cloned().unwrap_or_default();
        if columns.is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = columns
            .iter()
            .map(|column| column_type(column["type"].as_str().unwrap_or_default()))
            .collect();
        let rows = answer["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        row.as_array()
                            .map(|values| {
                                values
                                    .iter()
                                    .map(|value| value.as_str().unwrap_or_default().to_string())
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {
        let _ = self.bridge.kill().await;
    }

    fn engine_name(&self) -> &str {
        "osprey-trino"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

/// sqllogictest's column type for a Trino type name.
fn column_type(trino_type: &str) -> DefaultColumnType {
    let base = trino_type.split('(').next().unwrap_or_default();
    match base {
        "tinyint" | "smallint" | "integer" | "bigint" => DefaultColumnType::Integer,
        "real" | "double" | "decimal" => DefaultColumnType::FloatingPoint,
        "varchar" | "char" => DefaultColumnType::Text,
        _ => DefaultColumnType::Any,
    }
}
