//! The query history: who ran what, when, how it ended, and what it cost.

use super::{CatalogError, CatalogStore, db};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Where a statement is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryState {
    /// Waiting in its workgroup's queue for a slot.
    Queued,
    /// Planned or running.
    Running,
    /// Finished, and its whole result was delivered.
    Succeeded,
    /// Failed; the record carries the error.
    Failed,
    /// Stopped by the client (cancel, disconnect) or never fetched.
    Cancelled,
}

impl QueryState {
    /// The name stored and shown (`QUEUED`, `RUNNING`, `SUCCEEDED`, `FAILED`, `CANCELLED`).
    pub fn as_str(self) -> &'static str {
        match self {
            QueryState::Queued => "QUEUED",
            QueryState::Running => "RUNNING",
            QueryState::Succeeded => "SUCCEEDED",
            QueryState::Failed => "FAILED",
            QueryState::Cancelled => "CANCELLED",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "QUEUED" => QueryState::Queued,
            "RUNNING" => QueryState::Running,
            "SUCCEEDED" => QueryState::Succeeded,
            "FAILED" => QueryState::Failed,
            "CANCELLED" => QueryState::Cancelled,
            _ => return None,
        })
    }
}

/// One statement in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRecord {
    /// The query's id (shown to the client).
    pub query_id: String,
    /// Who ran it.
    pub user: String,
    /// Which front door it came through (`flight_sql`, `http`, ...).
    pub front_door: String,
    /// The statement, with secrets (passwords) masked.
    pub sql: String,
    /// Its state.
    pub state: QueryState,
    /// Why it failed: a stable code (`INVALID_STATEMENT`, ...).
    pub error_code: Option<String>,
    /// Why it failed: the message the client saw.
    pub error_message: Option<String>,
    /// When it was submitted (ms since the Unix epoch).
    pub submitted_at_ms: i64,
    /// When it ended.
    pub finished_at_ms: Option<i64>,
    /// Rows returned to the client, or written by INSERT, CTAS and UNLOAD.
    pub rows: u64,
    /// Bytes of data files the query read (see `planned_scan_bytes` in osprey-engine).
    pub bytes_scanned: u64,
    /// How many times it was run: more than 1 when executors were lost and it ran again.
    pub attempts: u32,
    /// Why earlier attempts failed, one line each.
    pub retries: Option<String>,
    /// The workgroup it ran in (`None` for statements that take no slot: DDL, metadata).
    pub workgroup: Option<String>,
    /// Milliseconds it waited in its workgroup's queue.
    pub queued_ms: u64,
}

/// Where a page of the query history continues: right after the record with this submission
/// time and id (see [`CatalogStore::recent_queries`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryCursor {
    /// The last record's submission time.
    pub submitted_at_ms: i64,
    /// The last record's query id.
    pub query_id: String,
}

impl HistoryCursor {
    /// The cursor after `record`.
    pub fn after(record: &QueryRecord) -> Self {
        Self {
            submitted_at_ms: record.submitted_at_ms,
            query_id: record.query_id.clone(),
        }
    }
}

const COLUMNS: &str = "query_id, user_name, front_door, sql_text, state, error_code, \
                       error_message, submitted_at_ms, finished_at_ms, row_count, bytes_scanned, \
                       attempts, retries, workgroup, queued_ms";

fn record_from_row(row: &AnyRow) -> Result<QueryRecord, CatalogError> {
    let read = || db("reading the query history");
    let state: String = row.try_get(4).map_err(read())?;
    let count = |i: usize| -> Result<u64, CatalogError> {
        let value: i64 = row.try_get(i).map_err(read())?;
        Ok(value.max(0) as u64)
    };
    Ok(QueryRecord {
        query_id: row.try_get(0).map_err(read())?,
        user: row.try_get(1).map_err(read())?,
        front_door: row.try_get(2).map_err(read())?,
        sql: row.try_get(3).map_err(read())?,
        // An unknown state (from a newer version) reads as failed rather than breaking reads.
        state: QueryState::parse(&state).unwrap_or(QueryState::Failed),
        error_code: row.try_get(5).map_err(read())?,
        error_message: row.try_get(6).map_err(read())?,
        submitted_at_ms: row.try_get(7).map_err(read())?,
        finished_at_ms: row.try_get(8).map_err(read())?,
        rows: count(9)?,
        bytes_scanned: count(10)?,
        attempts: count(11)?.clamp(1, u64::from(u32::MAX)) as u32,
        retries: row.try_get(12).map_err(read())?,
        workgroup: row.try_get(13).map_err(read())?,
        queued_ms: count(14)?,
    })
}

fn clamp(value: u64) -> i64 {
    value.min(i64::MAX as u64) as i64
}

impl CatalogStore {
    /// Inserts or replaces a query's record.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), osprey_catalog::CatalogError> {
    /// use osprey_catalog::{CatalogStore, QueryRecord, QueryState, now_ms};
    ///
    /// let store = CatalogStore::open("sqlite:///tmp/osprey-catalog.db").await?;
    /// let mut record = QueryRecord {
    ///     query_id: "q1".into(),
    ///     user: "ana".into(),
    ///     front_door: "flight_sql".into(),
    ///     sql: "SELECT 1".into(),
    ///     state: QueryState::Running,
    ///     error_code: None,
    ///     error_message: None,
    ///     submitted_at_ms: now_ms(),
    ///     finished_at_ms: None,
    ///     rows: 0,
    ///     bytes_scanned: 0,
    ///     attempts: 1,
    ///     retries: None,
    ///     workgroup: Some("primary".into()),
    ///     queued_ms: 0,
    /// };
    /// store.record_query(&record).await?;
    /// record.state = QueryState::Succeeded;
    /// record.rows = 1;
    /// store.record_query(&record).await?;
    /// assert_eq!(store.recent_queries(None, None, 10).await?[0].rows, 1);
    /// # Ok(()) }
    /// ```
    pub async fn record_query(&self, record: &QueryRecord) -> Result<(), CatalogError> {
        self.record_queries(std::slice::from_ref(record)).await
    }

    /// Inserts or replaces several queries' records in one transaction (one commit for many
    /// records keeps up with a busy coordinator, where a commit per record does not).
    pub async fn record_queries(&self, records: &[QueryRecord]) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await.map_err(db("recording a query"))?;
        for record in records {
            Self::record_in(&mut tx, record).await?;
        }
        tx.commit().await.map_err(db("recording a query"))
    }

    async fn record_in(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        record: &QueryRecord,
    ) -> Result<(), CatalogError> {
        sqlx::query("DELETE FROM osprey_queries WHERE query_id = $1")
            .bind(&record.query_id)
            .execute(&mut **tx)
            .await
            .map_err(db("recording a query"))?;
        sqlx::query(&format!(
            "INSERT INTO osprey_queries ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&record.query_id)
        .bind(&record.user)
        .bind(&record.front_door)
        .bind(&record.sql)
        .bind(record.state.as_str())
        .bind(&record.error_code)
        .bind(&record.error_message)
        .bind(record.submitted_at_ms)
        .bind(record.finished_at_ms)
        .bind(clamp(record.rows))
        .bind(clamp(record.bytes_scanned))
        .bind(i64::from(record.attempts))
        .bind(&record.retries)
        .bind(&record.workgroup)
        .bind(clamp(record.queued_ms))
        .execute(&mut **tx)
        .await
        .map_err(db("recording a query"))?;
        Ok(())
    }

    /// The most recent `limit` queries, newest first; only `user`'s when given; with `after`,
    /// the page that follows that record.
    pub async fn recent_queries(
        &self,
        user: Option<&str>,
        after: Option<&HistoryCursor>,
        limit: u32,
    ) -> Result<Vec<QueryRecord>, CatalogError> {
        // Newest first; a page continues right after the last record of the one before
        // (keyset paging: no offset to skip, so every page costs the same).
        let mut conditions = Vec::new();
        let mut next = 2;
        if user.is_some() {
            conditions.push(format!("user_name = ${next}"));
            next += 1;
        }
        if after.is_some() {
            let (time, id) = (next, next + 1);
            conditions.push(format!(
                "(submitted_at_ms < ${time} OR (submitted_at_ms = ${time} AND query_id > ${id}))"
            ));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM osprey_queries {filter} \
             ORDER BY submitted_at_ms DESC, query_id LIMIT $1"
        );
        let mut query = sqlx::query(&sql).bind(i64::from(limit));
        if let Some(user) = user {
            query = query.bind(user);
        }
        if let Some(after) = after {
            query = query
                .bind(after.submitted_at_ms)
                .bind(after.query_id.clone());
        }
        query
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading the query history"))?
            .iter()
            .map(record_from_row)
            .collect()
    }

    /// Marks every query still QUEUED or RUNNING as FAILED with `reason`; returns how many. A
    /// coordinator runs this at start: queries in flight when it stopped can never finish.
    pub async fn fail_unfinished_queries(&self, reason: &str) -> Result<u64, CatalogError> {
        let result = sqlx::query(
            "UPDATE osprey_queries SET state = $1, error_code = $2, error_message = $3, \
             finished_at_ms = $4 WHERE state = $5 OR state = $6",
        )
        .bind(QueryState::Failed.as_str())
        .bind("COORDINATOR_RESTARTED")
        .bind(reason)
        .bind(super::now_ms())
        .bind(QueryState::Running.as_str())
        .bind(QueryState::Queued.as_str())
        .execute(&self.pool)
        .await
        .map_err(db("failing unfinished queries"))?;
        Ok(result.rows_affected())
    }
}
