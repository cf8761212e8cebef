//! One statement of the Trino endpoint: who owns it, where it is (starting, streaming,
//! finished, failed), and the last page answered.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use osprey_engine::{ProgressSnapshot, QueryProgress};
use osprey_service::{OpenStatement, QueryError, Running, SessionSettings};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::task::JoinHandle;

/// One statement of the Trino endpoint.
pub(super) struct TrinoQuery {
    pub(super) id: String,
    /// A random part of its URIs, so that they cannot be guessed from the id.
    pub(super) slug: String,
    /// Its place among its owner's open statements; says who may page or cancel it.
    pub(super) open: OpenStatement,
    pub(super) started: Instant,
    pub(super) last_seen: Mutex<Instant>,
    pub(super) finished: std::sync::atomic::AtomicBool,
    /// Its time in its workgroup's queue.
    pub(super) queue: osprey_service::QueueClock,
    /// Polls take turns.
    pub(super) run: tokio::sync::Mutex<Run>,
    /// Told when a cancel arrives, so that a poll waiting for rows gives its turn up at once.
    pub(super) cancel_requested: tokio::sync::Notify,
}

/// Where a statement is, and what was last answered.
pub(super) struct Run {
    pub(super) phase: Phase,
    /// The token the next page will be asked for with.
    pub(super) next_token: u64,
    /// The last page served and its token, for a retried request.
    pub(super) last_page: Option<(u64, Page)>,
    pub(super) columns: Option<Value>,
    pub(super) update: Option<(String, u64)>,
    pub(super) rows: u64,
    pub(super) bytes_scanned: u64,
    /// The running plan's live progress, and its figures as of the last page.
    pub(super) progress: Option<Arc<QueryProgress>>,
    pub(super) figures: Option<ProgressSnapshot>,
    /// Session changes to announce (`USE`, `SET`, `RESET`) with the next page.
    pub(super) session_headers: Vec<(&'static str, String)>,
    pub(super) session: SessionSettings,
}

pub(super) enum Phase {
    /// Planning and starting; the task gives back the result stream, the session as the
    /// statement left it, and the statement (unwrapped from `EXECUTE IMMEDIATE`).
    Starting(JoinHandle<Result<Started, QueryError>>),
    /// Results are streaming; a batch larger than a page is finished over several pages.
    Streaming {
        stream: SendableRecordBatchStream,
        leftover: Option<RecordBatch>,
    },
    /// All rows were served.
    Finished,
    /// The statement failed.
    Failed(QueryError),
}

impl Run {
    /// Takes the live figures of the running plan for the next page's `stats`.
    pub(super) async fn refresh_figures(&mut self) {
        if let Some(progress) = &self.progress {
            self.figures = Some(progress.snapshot().await);
        }
    }

    /// A statement in `phase` whose next page is token 1, run with `session`.
    pub(super) fn new(phase: Phase, session: SessionSettings) -> Self {
        Self {
            phase,
            next_token: 1,
            last_page: None,
            columns: None,
            update: None,
            rows: 0,
            bytes_scanned: 0,
            progress: None,
            figures: None,
            session_headers: Vec::new(),
            session,
        }
    }
}

impl Drop for Phase {
    /// A statement dropped while starting (cancelled or abandoned) stops starting; its history
    /// entry is then recorded as CANCELLED.
    fn drop(&mut self) {
        if let Phase::Starting(task) = self {
            task.abort();
        }
    }
}

/// A statement that started.
pub(super) struct Started {
    pub(super) execution: Running,
    pub(super) session: SessionSettings,
}

/// One answer of the protocol: its JSON and the headers that go with it.
#[derive(Clone)]
pub(super) struct Page {
    pub(super) body: Value,
    pub(super) headers: Vec<(&'static str, String)>,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        (StatusCode::OK, headers, axum::Json(self.body)).into_response()
    }
}

pub(super) fn random_slug() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}
