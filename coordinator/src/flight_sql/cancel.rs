//! Cancelling results: `CancelFlightInfo` (and Flight SQL's older `CancelQuery`) stop a query
//! whose ticket has not been fetched yet, or whose result is streaming.
//!
//! Stopping the stream drops the query's plan on the coordinator, which closes its exchange
//! streams to the executors; their tasks stop when their output has nowhere to go. A client
//! that disconnects gets the same treatment from tonic (the response stream is dropped).

use arrow_flight::FlightData;
use futures::future::{AbortHandle, AbortRegistration, Abortable};
use futures::{Stream, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tonic::Status;

/// Results being streamed, by ticket handle, with the user who may cancel them.
#[derive(Clone, Default)]
pub struct RunningResults {
    running: Arc<Mutex<HashMap<String, (String, AbortHandle)>>>,
}

/// Unregisters a result when its stream ends or is dropped.
pub struct Registered {
    running: RunningResults,
    handle: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.running.lock().remove(&self.handle);
    }
}

impl RunningResults {
    /// Registers the result of ticket `handle`, owned by `user`.
    pub fn register(&self, handle: &str, user: &str) -> (AbortRegistration, Registered) {
        let (abort, registration) = AbortHandle::new_pair();
        self.lock()
            .insert(handle.to_string(), (user.to_string(), abort));
        (
            registration,
            Registered {
                running: self.clone(),
                handle: handle.to_string(),
            },
        )
    }

    /// Stops the result of ticket `handle` if `user` owns it; whether it did.
    pub fn cancel(&self, handle: &str, user: &str) -> bool {
        match self.lock().get(handle) {
            Some((owner, abort)) if owner == user => {
                abort.abort();
                true
            }
            _ => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, AbortHandle)>> {
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
