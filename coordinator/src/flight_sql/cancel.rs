//! Results being streamed: `CancelFlightInfo` (and Flight SQL's older `CancelQuery`) stop a
//! query whose ticket has not been fetched yet, or whose result is streaming, and the
//! `QueryProgress` action reports how far a streaming one has got.
//!
//! Stopping the stream drops the query's plan on the coordinator, which closes its exchange
//! streams to the executors; their tasks stop when their output has nowhere to go. A client
//! that disconnects gets the same treatment from tonic (the response stream is dropped).

use arrow_flight::FlightData;
use futures::future::{AbortHandle, AbortRegistration, Abortable};
use futures::{Stream, StreamExt};
use osprey_engine::{ProgressSnapshot, QueryProgress};
use osprey_service::QueueClock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tonic::Status;

/// Results being streamed, by ticket handle, with the user who may cancel them.
#[derive(Clone, Default)]
pub struct RunningResults {
    running: Arc<Mutex<HashMap<String, RunningResult>>>,
}

struct RunningResult {
    /// The identity of the user who owns it ([`osprey_service::Principal::user_id`]).
    owner: String,
    /// Stops the query while it starts (waiting in its workgroup's queue, planning) and while
    /// its result streams.
    aborts: [AbortHandle; 2],
    queue: QueueClock,
    started: Instant,
    bytes_planned: u64,
    progress: Option<Arc<QueryProgress>>,
    /// Whether the physical plan exists (set with the progress).
    planned: bool,
}

/// How far a streaming result has got, as the `QueryProgress` action reports it.
#[derive(Debug, serde::Serialize)]
pub struct ResultProgress {
    /// `queued` while the query waits in its workgroup's queue, `planning` until the physical
    /// plan exists, then `running` while the result streams.
    pub state: &'static str,
    /// Since the result was asked for (including the time queued).
    pub elapsed_ms: u64,
    /// How long the query waited (or has been waiting) in its workgroup's queue.
    pub queued_ms: u64,
    /// Bytes of data files the plan reads, known before it ran (an upper bound).
    pub bytes_planned: u64,
    /// The live figures.
    #[serde(flatten)]
    pub figures: ProgressSnapshot,
}

/// What a cancel stops: the start of the query (its wait for a workgroup slot, its planning),
/// then its result stream.
pub struct Registrations {
    /// For the future that starts the query.
    pub start: AbortRegistration,
    /// For the result stream ([`cancellable`]).
    pub stream: AbortRegistration,
}

/// Unregisters a result when its stream ends or is dropped.
pub struct Registered {
    running: RunningResults,
    handle: String,
}

impl Registered {
    /// Adds what the result's query reads at most and its live progress.
    pub fn set_progress(&self, bytes_planned: u64, progress: Option<Arc<QueryProgress>>) {
        if let Some(result) = self.running.lock().get_mut(&self.handle) {
            result.bytes_planned = bytes_planned;
            result.progress = progress;
            result.planned = true;
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.running.lock().remove(&self.handle);
    }
}

impl RunningResults {
    /// Registers the result of ticket `handle`, owned by the user with identity `owner`, as
    /// soon as its fetch starts; [`Registered::set_progress`] adds its live progress once it is planned.
    pub fn register(
        &self,
        handle: &str,
        owner: &str,
        queue: QueueClock,
    ) -> (Registrations, Registered) {
        let (abort_start, start) = AbortHandle::new_pair();
        let (abort_stream, stream) = AbortHandle::new_pair();
        self.lock().insert(
            handle.to_string(),
            RunningResult {
                owner: owner.to_string(),
                aborts: [abort_start, abort_stream],
                queue,
                started: Instant::now(),
                bytes_planned: 0,
                progress: None,
                planned: false,
            },
        );
        (
            Registrations { start, stream },
            Registered {
                running: self.clone(),
                handle: handle.to_string(),
            },
        )
    }

    /// Stops the result of ticket `handle` if the user with identity `owner` owns it; whether
    /// it did.
    pub fn cancel(&self, handle: &str, owner: &str) -> bool {
        match self.lock().get(handle) {
            Some(result) if result.owner == owner => {
                result.aborts.iter().for_each(AbortHandle::abort);
                true
            }
            _ => false,
        }
    }

    /// The progress of the result of ticket `handle` if the user with identity `owner` owns it
    /// and it is streaming.
    pub async fn progress(&self, handle: &str, owner: &str) -> Option<ResultProgress> {
        let (started, bytes_planned, progress, planned, queue) = match self.lock().get(handle) {
            Some(result) if result.owner == owner => (
                result.started,
                result.bytes_planned,
                result.progress.clone(),
                result.planned,
                result.queue.clone(),
            ),
            _ => return None,
        };
        let figures = match progress {
            Some(progress) => progress.snapshot().await,
            None => ProgressSnapshot::default(),
        };
        Some(ResultProgress {
            state: if planned {
                "running"
            } else if queue.is_queued() {
                "queued"
            } else {
                "planning"
            },
            elapsed_ms: started.elapsed().as_millis() as u64,
            queued_ms: queue.queued_ms(),
            bytes_planned,
            figures,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunningResult>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `messages`, ending with a `Cancelled` status if cancelled through `registration`.
pub fn cancellable(
    messages: impl Stream<Item = Result<FlightData, Status>> + Send + 'static,
    registration: AbortRegistration,
    registered: Registered,
) -> impl Stream<Item = Result<FlightData, Status>> + Send + 'static {
    let messages = Abortable::new(messages, registration);
    let state = (Box::pin(messages), Some(registered));
    let stream = futures::stream::unfold(state, |(mut messages, registered)| async move {
        let registered = registered?;
        match messages.next().await {
            Some(item) => Some((item, (messages, Some(registered)))),
            None if messages.is_aborted() => Some((
                Err(Status::cancelled(
                    "the query was cancelled (CancelFlightInfo)",
                )),
                (messages, None),
            )),
            None => None,
        }
    });
    // Callers may poll once more after the end.
    stream.fuse()
}
