//! Statement events: every change in a statement's life, published by the statement service to
//! whoever subscribed. The query history is one subscriber (its writer keeps each record in the
//! catalog); metrics and audit subscribe the same way, with no front door involved.
//!
//! An event is the statement's record as it stands after the change: RUNNING when it is
//! registered, QUEUED while it waits in its workgroup's queue, RUNNING again when admitted, and
//! its end state (SUCCEEDED, FAILED or CANCELLED, with rows, bytes scanned, error and reruns)
//! exactly once.

use osprey_catalog::QueryRecord;
use std::sync::{Arc, RwLock};

/// Receives statement events. It is called on the thread that changed the statement, so it
/// must be quick: hand the record to a channel or bump a counter.
pub trait StatementListener: Send + Sync + std::fmt::Debug {
    /// `record` is the statement as it stands after a change.
    fn on_statement(&self, record: &QueryRecord);
}

/// The subscribers of statement events.
#[derive(Clone, Debug, Default)]
pub struct StatementEvents {
    listeners: Arc<RwLock<Vec<Arc<dyn StatementListener>>>>,
}

impl StatementEvents {
    /// Adds `listener`: it receives every event published from now on.
    pub fn subscribe(&self, listener: Arc<dyn StatementListener>) {
        self.listeners
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(listener);
    }

    /// Hands `record` to every subscriber, in the order they subscribed.
    pub(crate) fn publish(&self, record: &QueryRecord) {
        let listeners = self
            .listeners
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for listener in listeners.iter() {
            listener.on_statement(record);
        }
    }
}
