//! The persistent query history, and `system.queries` over it.
//!
//! Every statement a front door receives becomes a [`TrackedQuery`]: recorded as RUNNING when
//! it arrives, then SUCCEEDED, FAILED (with the error) or CANCELLED (the client stopped reading,
//! or never fetched the result) with its rows and bytes scanned. Records go to the catalog
//! through one background writer, in order, so a slow catalog never slows queries; reads of
//! `system.queries` first wait for everything recorded so far to be written.

use crate::auth::Principal;
use crate::error::QueryError;
use crate::events::{StatementEvents, StatementListener};
use crate::retry::RetryLog;
use crate::system_tables::SystemTableSource;
use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array,
    UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::Session;
use datafusion::common::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::Token;
use futures::StreamExt;
use osprey_catalog::{CatalogStore, HistoryCursor, QueryRecord, QueryState, now_ms};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// How many records may wait for the writer before new ones are dropped (and logged).
const WRITER_BACKLOG: usize = 10_000;

/// The most records the writer commits in one transaction.
const WRITER_BATCH: usize = 500;

/// The last record of each query among `records` (later records replace earlier ones), in
/// the order of those last records.
fn latest_per_query(records: Vec<QueryRecord>) -> Vec<QueryRecord> {
    let mut seen = std::collections::HashSet::new();
    let mut latest: Vec<QueryRecord> = records
        .into_iter()
        .rev()
        .filter(|record| seen.insert(record.query_id.clone()))
        .collect();
    latest.reverse();
    latest
}

/// How many of the latest queries `system.queries` shows.
pub const SYSTEM_QUERIES_ROWS: u32 = 10_000;

enum Event {
    Record(Box<QueryRecord>),
    Flush(oneshot::Sender<()>),
}

/// Records statements in the catalog's query history. Every change of a statement is a
/// statement event ([`StatementEvents`]); the history's writer is the first subscriber.
#[derive(Clone, Debug)]
pub struct QueryHistory {
    store: CatalogStore,
    sender: mpsc::Sender<Event>,
    events: StatementEvents,
}

/// The history's own subscriber: hands each record to the background writer.
#[derive(Debug)]
struct HistoryWriter {
    sender: mpsc::Sender<Event>,
}

impl StatementListener for HistoryWriter {
    fn on_statement(&self, record: &QueryRecord) {
        if let Err(err) = self
            .sender
            .try_send(Event::Record(Box::new(record.clone())))
        {
            tracing::warn!(error = %err, "query history backlog full; a record was dropped");
        }
    }
}

impl QueryHistory {
    /// Starts the background writer. Queries left RUNNING by a previous coordinator are marked
    /// FAILED first: they can never finish.
    pub async fn start(store: CatalogStore) -> Self {
        match store
            .fail_unfinished_queries("the coordinator stopped while the query ran")
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(queries = n, "marked queries of a previous run as failed"),
            Err(err) => tracing::warn!(error = %err, "cannot close unfinished queries"),
        }
        let (sender, mut receiver) = mpsc::channel(WRITER_BACKLOG);
        let writer_store = store.clone();
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                // Everything waiting goes in one transaction; flushes are answered after it.
                let mut records = Vec::new();
                let mut flushes = Vec::new();
                let mut next = Some(first);
                while let Some(event) = next {
                    match event {
                        Event::Record(record) => records.push(*record),
                        Event::Flush(done) => flushes.push(done),
                    }
                    next = match records.len() < WRITER_BATCH {
                        true => receiver.try_recv().ok(),
                        false => None,
                    };
                }
                let records = latest_per_query(records);
                if !records.is_empty()
                    && let Err(err) = writer_store.record_queries(&records).await
                {
                    // One bad record must not cost the others: write them one by one.
                    tracing::warn!(records = records.len(), error = %err, "cannot record a batch of queries; recording them one by one");
                    for record in &records {
                        if let Err(err) = writer_store.record_query(record).await {
                            tracing::warn!(query_id = %record.query_id, error = %err, "cannot record a query");
                        }
                    }
                }
                for done in flushes {
                    let _ = done.send(());
                }
            }
        });
        let events = StatementEvents::default();
        events.subscribe(Arc::new(HistoryWriter {
            sender: sender.clone(),
        }));
        Self {
            store,
            sender,
            events,
        }
    }

    /// The statement events every tracked statement publishes: subscribe to follow every
    /// statement from every front door (its record after each change).
    pub fn events(&self) -> &StatementEvents {
        &self.events
    }

    /// Starts tracking a statement from `user` through `front_door`.
    pub fn begin(&self, user: &str, front_door: &str, sql: &str) -> TrackedQuery {
        let record = QueryRecord {
            query_id: uuid::Uuid::new_v4().to_string(),
            user: user.to_string(),
            front_door: front_door.to_string(),
            sql: keep_bounded(redact_secrets(sql)),
            state: QueryState::Running,
            error_code: None,
            error_message: None,
            submitted_at_ms: now_ms(),
            finished_at_ms: None,
            rows: 0,
            bytes_scanned: 0,
            attempts: 1,
            retries: None,
            workgroup: None,
            queued_ms: 0,
        };
        self.send(record.clone());
        TrackedQuery {
            inner: Arc::new(Tracked {
                history: self.clone(),
                record: Mutex::new(record),
                finished: AtomicBool::new(false),
                rows: AtomicU64::new(0),
                bytes_scanned: AtomicU64::new(0),
                started: std::time::Instant::now(),
                retries: Mutex::new(None),
                queue: QueueClock::default(),
            }),
        }
    }

    /// The latest `limit` queries, newest first, including everything recorded so far; with
    /// `after`, the page that follows that record.
    pub async fn recent(
        &self,
        user: Option<&str>,
        after: Option<&HistoryCursor>,
        limit: u32,
    ) -> Result<Vec<QueryRecord>, QueryError> {
        let (done, flushed) = oneshot::channel();
        if self.sender.send(Event::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
        self.store
            .recent_queries(user, after, limit)
            .await
            .map_err(|err| QueryError::Execution(format!("reading the query history: {err}")))
    }

    /// Publishes a statement's record after a change.
    fn send(&self, record: QueryRecord) {
        self.events.publish(&record);
    }
}

/// A statement being tracked. Cheap to clone; when the last clone is dropped before the
/// statement finished, it is recorded as CANCELLED.
#[derive(Clone, Debug)]
pub struct TrackedQuery {
    inner: Arc<Tracked>,
}

#[derive(Debug)]
struct Tracked {
    history: QueryHistory,
    record: Mutex<QueryRecord>,
    finished: AtomicBool,
    rows: AtomicU64,
    bytes_scanned: AtomicU64,
    started: std::time::Instant,
    /// Why earlier runs failed, when the query ran again after losing executors.
    retries: Mutex<Option<Arc<RetryLog>>>,
    /// The statement's time in its workgroup's queue.
    queue: QueueClock,
}

/// A statement's time in its workgroup's queue, shared with whoever reports its state (it
/// does not keep the statement's record alive).
#[derive(Clone, Debug, Default)]
pub struct QueueClock {
    times: Arc<Mutex<QueueTimes>>,
}

#[derive(Debug, Default)]
struct QueueTimes {
    /// When the statement started to wait, while it waits.
    since: Option<std::time::Instant>,
    /// How long it waited, once admitted.
    waited: std::time::Duration,
}

impl QueueClock {
    /// Whether the statement waits in its workgroup's queue now.
    pub fn is_queued(&self) -> bool {
        lock(&self.times).since.is_some()
    }

    /// Milliseconds the statement waited, counting a wait in progress.
    pub fn queued_ms(&self) -> u64 {
        let times = lock(&self.times);
        let waited = match times.since {
            Some(since) => since.elapsed(),
            None => times.waited,
        };
        waited.as_millis() as u64
    }
}

/// What a client is told about its query when it ends (Flight SQL app metadata).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuerySummary {
    /// The query's id in `system.queries`.
    pub query_id: String,
    /// Rows returned or written so far.
    pub rows: u64,
    /// Bytes of data files the query read.
    pub bytes_scanned: u64,
    /// Milliseconds since the query arrived.
    pub elapsed_ms: u64,
    /// Milliseconds it waited in its workgroup's queue (so far, while it waits).
    pub queued_ms: u64,
}

impl TrackedQuery {
    /// The query's id.
    pub fn id(&self) -> String {
        self.lock().query_id.clone()
    }

    /// Counts rows returned or written.
    pub fn add_rows(&self, rows: u64) {
        self.inner.rows.fetch_add(rows, Ordering::Relaxed);
    }

    /// Counts bytes of data files read.
    pub fn add_bytes_scanned(&self, bytes: u64) {
        self.inner.bytes_scanned.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The figures so far.
    pub fn summary(&self) -> QuerySummary {
        QuerySummary {
            query_id: self.id(),
            rows: self.inner.rows.load(Ordering::Relaxed),
            bytes_scanned: self.inner.bytes_scanned.load(Ordering::Relaxed),
            elapsed_ms: self.inner.started.elapsed().as_millis() as u64,
            queued_ms: self.queued_ms(),
        }
    }

    /// The statement's time in its workgroup's queue.
    pub fn queue_clock(&self) -> QueueClock {
        self.inner.queue.clone()
    }

    /// Records that the statement waits in its workgroup's queue (state QUEUED).
    pub fn queued(&self) {
        lock(&self.inner.queue.times).since = Some(std::time::Instant::now());
        let record = {
            let mut record = self.lock();
            record.state = QueryState::Queued;
            record.clone()
        };
        if !self.inner.finished.load(Ordering::SeqCst) {
            self.inner.history.send(record);
        }
    }

    /// Records that the statement took a slot in `workgroup` after waiting `waited` (RUNNING
    /// again if it was QUEUED).
    pub fn admitted(&self, workgroup: &str, waited: std::time::Duration) {
        *lock(&self.inner.queue.times) = QueueTimes {
            since: None,
            waited,
        };
        let (was_queued, record) = {
            let mut record = self.lock();
            let was_queued = record.state == QueryState::Queued;
            record.state = QueryState::Running;
            record.workgroup = Some(workgroup.to_string());
            record.queued_ms = waited.as_millis() as u64;
            (was_queued, record.clone())
        };
        if was_queued && !self.inner.finished.load(Ordering::SeqCst) {
            self.inner.history.send(record);
        }
    }

    /// Whether the statement waits in its workgroup's queue now.
    pub fn is_queued(&self) -> bool {
        self.inner.queue.is_queued()
    }

    /// Milliseconds the statement waited in its workgroup's queue, counting a wait in progress.
    pub fn queued_ms(&self) -> u64 {
        self.inner.queue.queued_ms()
    }

    /// Records the statement as finished successfully.
    pub fn succeed(&self) {
        self.inner.finish(QueryState::Succeeded, None);
    }

    /// Records the runs of the statement that failed because executors were lost (read when
    /// the statement ends).
    pub fn attach_retries(&self, retries: &Arc<RetryLog>) {
        *self
            .inner
            .retries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::clone(retries));
    }

    /// Records the statement as failed with `err` (as cancelled, for a cancellation).
    pub fn fail(&self, err: &QueryError) {
        let state = match err {
            QueryError::Cancelled(_) => QueryState::Cancelled,
            _ => QueryState::Failed,
        };
        self.inner
            .finish(state, Some((err.code(), err.to_string())));
    }

    /// Wraps a result stream: counts its rows, and records success at its end or failure at
    /// its first error. Dropping it early leaves the query to be recorded as CANCELLED.
    pub fn track_stream(&self, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let schema = stream.schema();
        let tracked = self.clone();
        let counted = stream.map(move |item| {
            match &item {
                Ok(batch) => tracked.add_rows(batch.num_rows() as u64),
                Err(err) => tracked.fail(&QueryError::from_ref(err)),
            }
            item
        });
        let tracked = self.clone();
        let ended = counted.chain(futures::stream::poll_fn(move |_| {
            tracked.succeed();
            std::task::Poll::Ready(None)
        }));
        Box::pin(RecordBatchStreamAdapter::new(schema, ended))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueryRecord> {
        self.inner
            .record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Tracked {
    /// Records the end state once; later calls are ignored (the first outcome wins).
    fn finish(&self, state: QueryState, error: Option<(&'static str, String)>) {
        if self.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        let record = {
            let mut record = self
                .record
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            record.state = state;
            if let Some((code, message)) = error {
                record.error_code = Some(code.to_string());
                record.error_message = Some(message);
            }
            record.finished_at_ms = Some(now_ms());
            record.rows = self.rows.load(Ordering::Relaxed);
            record.bytes_scanned = self.bytes_scanned.load(Ordering::Relaxed);
            let reasons = self
                .retries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .as_ref()
                .map(|log| log.reasons())
                .unwrap_or_default();
            record.attempts = 1 + reasons.len() as u32;
            record.retries = (!reasons.is_empty()).then(|| reasons.join("\n"));
            record.clone()
        };
        self.history.send(record);
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.finish(
            QueryState::Cancelled,
            Some((
                "CANCELLED",
                "the client stopped before the result was complete, or never fetched it"
                    .to_string(),
            )),
        );
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Masks secrets in a statement before it is stored: the literal after any word or string that
/// names a password, secret, token or key (`PASSWORD '...'`, `'aws.secret_access_key' '...'`),
/// and the password of a URL (`'postgres://user:secret@host/db'`).
/// A statement that cannot be tokenized is stored only if it names no secret.
pub fn redact_secrets(sql: &str) -> String {
    fn sensitive(text: &str) -> bool {
        let lower = text.to_lowercase();
        // `REPLACE` introduces the current password in `ALTER USER ... PASSWORD ... REPLACE`.
        [
            "password",
            "secret",
            "token",
            "access_key",
            "credential",
            "replace",
        ]
        .iter()
        .any(|word| lower.contains(word))
    }
    // The lexer every statement is parsed with (`crate::parser`); the generic dialect, since
    // the text is recorded before a session's dialect applies.
    let Ok(tokens) = crate::parser::lex(&GenericDialect {}, sql) else {
        return if sensitive(sql) {
            "<not recorded: the statement could not be parsed and may hold a secret>".to_string()
        } else {
            sql.to_string()
        };
    };
    let mut out = String::with_capacity(sql.len());
    let mut mask_next = false;
    let mut masked = false;
    for token in tokens.into_iter().map(|token| token.token) {
        let is_literal = matches!(
            token,
            Token::SingleQuotedString(_) | Token::DoubleQuotedString(_)
        );
        if is_literal && mask_next {
            out.push_str("'***'");
            mask_next = false;
            masked = true;
            continue;
        }
        // A URL with a password in it (an attached catalog's `uri`) keeps all but the password.
        if let Token::SingleQuotedString(text) = &token {
            let redacted = osprey_catalog::redact_url(text);
            if redacted != *text {
                out.push_str(&Token::SingleQuotedString(redacted).to_string());
                masked = true;
                mask_next = false;
                continue;
            }
        }
        match &token {
            Token::Word(word) if sensitive(&word.value) => mask_next = true,
            // A statement inside a string (`EXECUTE IMMEDIATE 'CREATE USER ... PASSWORD ...'`)
            // has its own secrets masked; the literal after a string that names a secret
            // (`'aws.secret_access_key' '...'`) is masked whole.
            Token::SingleQuotedString(text) if sensitive(text) => {
                mask_next = true;
                let inner = redact_secrets(text);
                if inner != *text {
                    out.push_str(&Token::SingleQuotedString(inner).to_string());
                    masked = true;
                    continue;
                }
            }
            Token::Whitespace(_) | Token::Eq => {}
            _ => mask_next = false,
        }
        out.push_str(&token.to_string());
    }
    // Re-rendered tokens can differ from the text in small ways (quote escapes); keep the
    // statement exactly as sent unless something was masked.
    if masked { out } else { sql.to_string() }
}

/// The most of a statement's text the history keeps (64 KiB); longer statements are cut, with
/// a note of how much was left out.
pub const MAX_RECORDED_SQL_BYTES: usize = 64 << 10;

fn keep_bounded(mut sql: String) -> String {
    if sql.len() <= MAX_RECORDED_SQL_BYTES {
        return sql;
    }
    let mut end = MAX_RECORDED_SQL_BYTES;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    let left_out = sql.len() - end;
    sql.truncate(end);
    sql.push_str(&format!(" /* ... {left_out} more bytes not recorded */"));
    sql
}

/// `system.queries`: the query history, newest first.
#[derive(Debug)]
pub struct QueriesTable {
    history: QueryHistory,
}

impl QueriesTable {
    /// The table over `history`.
    pub fn new(history: QueryHistory) -> Self {
        Self { history }
    }

    fn table_schema() -> SchemaRef {
        let timestamp = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("query_id", DataType::Utf8, false),
            Field::new("user_name", DataType::Utf8, false),
            Field::new("front_door", DataType::Utf8, false),
            Field::new("query", DataType::Utf8, false),
            Field::new("state", DataType::Utf8, false),
            Field::new("error_code", DataType::Utf8, true),
            Field::new("error_message", DataType::Utf8, true),
            Field::new("submitted_at", timestamp.clone(), false),
            Field::new("finished_at", timestamp, true),
            Field::new("elapsed_ms", DataType::Int64, true),
            Field::new("rows", DataType::UInt64, false),
            Field::new("bytes_scanned", DataType::UInt64, false),
            Field::new("attempts", DataType::UInt32, false),
            Field::new("retries", DataType::Utf8, true),
            Field::new("workgroup", DataType::Utf8, true),
            Field::new("queued_ms", DataType::UInt64, false),
        ]))
    }

    fn batch(records: &[QueryRecord]) -> Result<RecordBatch, DataFusionError> {
        let text = |f: &dyn Fn(&QueryRecord) -> Option<&str>| -> ArrayRef {
            Arc::new(records.iter().map(f).collect::<StringArray>())
        };
        let submitted =
            TimestampMillisecondArray::from_iter_values(records.iter().map(|r| r.submitted_at_ms))
                .with_timezone("UTC");
        let finished = TimestampMillisecondArray::from(
            records.iter().map(|r| r.finished_at_ms).collect::<Vec<_>>(),
        )
        .with_timezone("UTC");
        let elapsed = Int64Array::from(
            records
                .iter()
                .map(|r| r.finished_at_ms.map(|end| end - r.submitted_at_ms))
                .collect::<Vec<_>>(),
        );
        let columns: Vec<ArrayRef> = vec![
            text(&|r| Some(&r.query_id)),
            text(&|r| Some(&r.user)),
            text(&|r| Some(&r.front_door)),
            text(&|r| Some(&r.sql)),
            text(&|r| Some(r.state.as_str())),
            text(&|r| r.error_code.as_deref()),
            text(&|r| r.error_message.as_deref()),
            Arc::new(submitted),
            Arc::new(finished),
            Arc::new(elapsed),
            Arc::new(UInt64Array::from_iter_values(
                records.iter().map(|r| r.rows),
            )),
            Arc::new(UInt64Array::from_iter_values(
                records.iter().map(|r| r.bytes_scanned),
            )),
            Arc::new(UInt32Array::from_iter_values(
                records.iter().map(|r| r.attempts),
            )),
            text(&|r| r.retries.as_deref()),
            text(&|r| r.workgroup.as_deref()),
            Arc::new(UInt64Array::from_iter_values(
                records.iter().map(|r| r.queued_ms),
            )),
        ];
        Ok(RecordBatch::try_new(Self::table_schema(), columns)?)
    }
}

#[async_trait::async_trait]
impl SystemTableSource for QueriesTable {
    fn schema(&self) -> SchemaRef {
        Self::table_schema()
    }

    /// Admins (and the coordinator itself) see every query; other users their own. A scan
    /// with a limit (`SELECT * FROM system.queries LIMIT 10`) reads only that many records.
    async fn snapshot(
        &self,
        session: &dyn Session,
        limit: Option<usize>,
    ) -> Result<RecordBatch, DataFusionError> {
        let viewer = session.config().get_extension::<Principal>();
        let only_user = viewer
            .as_deref()
            .filter(|viewer| !viewer.is_admin)
            .map(|viewer| viewer.user.as_str());
        let records = self
            .history
            .recent(
                only_user,
                None,
                limit.map_or(SYSTEM_QUERIES_ROWS, |limit| {
                    u32::try_from(limit).map_or(SYSTEM_QUERIES_ROWS, |l| l.min(SYSTEM_QUERIES_ROWS))
                }),
            )
            .await
            .map_err(|err| DataFusionError::External(Box::new(err)))?;
        Self::batch(&records)
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_RECORDED_SQL_BYTES, keep_bounded, redact_secrets};

    #[test]
    fn secrets_inside_a_quoted_statement_are_masked() {
        let attached = redact_secrets(
            "CREATE CATALOG c USING iceberg WITH (type = 'sql', uri = 'postgres://u:hunter2@db/x', \
             credential = 'id:hunter2')",
        );
        assert!(!attached.contains("hunter2"), "{attached}");
        assert!(attached.contains("postgres://u:***@db/x"), "{attached}");
        let redacted = redact_secrets("EXECUTE IMMEDIATE 'CREATE USER bob PASSWORD ''hunter2'''");
        assert!(!redacted.contains("hunter2"), "{redacted}");
        assert!(redacted.contains("CREATE USER bob PASSWORD"), "{redacted}");
    }

    #[test]
    fn long_statements_are_cut() {
        let long = format!("SELECT '{}'", "é".repeat(MAX_RECORDED_SQL_BYTES));
        let kept = keep_bounded(long.clone());
        assert!(kept.len() < MAX_RECORDED_SQL_BYTES + 64);
        assert!(
            kept.ends_with("more bytes not recorded */"),
            "{}",
            &kept[kept.len() - 60..]
        );
        assert_eq!(keep_bounded("SELECT 1".into()), "SELECT 1");
    }

    #[test]
    fn secrets_are_masked_and_the_rest_is_kept() {
        assert_eq!(
            redact_secrets("CREATE USER ana PASSWORD 'hunter2'"),
            "CREATE USER ana PASSWORD '***'"
        );
        assert_eq!(
            redact_secrets("ALTER USER ana SET PASSWORD = 'x''y'"),
            "ALTER USER ana SET PASSWORD = '***'"
        );
        assert_eq!(
            redact_secrets(
                "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION 's3://b/t' OPTIONS ('aws.secret_access_key' 'abc', 'format.delimiter' ';')"
            ),
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION 's3://b/t' OPTIONS ('aws.secret_access_key' '***', 'format.delimiter' ';')"
        );
        let plain = "SELECT 'it''s' AS x FROM t WHERE y = 'b' -- note";
        assert_eq!(redact_secrets(plain), plain);
        assert!(!redact_secrets("CREATE USER ana PASSWORD 'unterminated").contains("unterm"));
    }
}
