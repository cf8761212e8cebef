//! The Flight SQL door, through arrow-flight's Flight SQL client: one connection (one login,
//! so one session) per corpus file.

use osprey_tests::SqlClient;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use std::net::SocketAddr;
use std::time::Duration;

/// One Flight SQL connection, as sqllogictest drives it.
pub struct FlightSqlSession {
    client: SqlClient,
}

impl FlightSqlSession {
    /// Logs in to the coordinator at `addr`.
    pub async fn connect(
        addr: SocketAddr,
        user: &str,
        password: &str,
    ) -> Result<Self, arrow_flight::error::FlightError> {
        Ok(Self {
            client: SqlClient::connect(addr, user, password).await?,
        })
    }
}

#[async_trait::async_trait]
impl AsyncDB for FlightSqlSession {
    type Error = arrow_flight::error::FlightError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Self::Error> {
        let (schema, batches) = self.client.query(sql).await?;
        Ok(super::arrow_output(&schema, &batches)?)
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "osprey-flight-sql"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}
